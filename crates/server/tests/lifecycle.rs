//! The native host's own behaviour, in-process on real sockets and a real SQLite file:
//! restart recovery, idle unload, graceful shutdown, the per-address HTTP limit, the Origin check.

use std::path::PathBuf;
use std::time::Duration;

use keyboardia_conformance::{Closed, Target};
use keyboardia_server::{run, Config};
use serde_json::json;
use tokio::sync::oneshot;

struct Running {
    target: Target,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("shutdown finishes")
            .unwrap()
            .unwrap();
    }
}

fn data_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kbd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn start(config: Config) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(run(config, listener, async move {
        let _ = rx.await;
    }));
    Running {
        target: Target::new(base),
        stop: Some(stop),
        task,
    }
}

#[tokio::test]
async fn a_restart_recovers_everything_and_shutdown_closes_sockets_cleanly() {
    let dir = data_dir("restart");
    let s = start(Config::with_data_dir(&dir)).await;
    let t = s.target.clone();
    let id = t.create().await.unwrap();
    let (mut ws, _) = t.join(&id, "alice", None).await.unwrap();
    for step in 0..300u32 {
        // Paced under the per-connection rate limit; crosses a snapshot boundary (200).
        let last = ws
            .edit(json!({"type": "SET_PARAMETER_LOCK", "trackId": "bass", "step": step % 128, "lock": {"pitch": (step % 49) as i64 - 24}}))
            .await
            .unwrap();
        if step % 50 == 49 {
            ws.ack(&last).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
    }
    let before = t.get(&format!("/api/sessions/{id}")).await.unwrap().body;
    assert_eq!(before["seq"], 300);
    let stopping = tokio::spawn(s.stop());
    assert_eq!(
        ws.closed().await,
        Closed::Code(1001),
        "clients are told the server is going away"
    );
    stopping.await.unwrap();

    let s = start(Config::with_data_dir(&dir)).await;
    let mut after = s
        .target
        .get(&format!("/api/sessions/{id}"))
        .await
        .unwrap()
        .body;
    // Only the access time may differ (the shutdown snapshot touches it).
    after["lastAccessedAt"] = before["lastAccessedAt"].clone();
    assert_eq!(after, before);
    // A client that saw seq 250 before the restart gets a replay of the last 50 changes.
    let (_ws, w) = s.target.join(&id, "alice", Some(250)).await.unwrap();
    assert_eq!(w["missed"].as_array().unwrap().len(), 50);
    s.stop().await;
}

#[tokio::test]
async fn idle_sessions_leave_memory_and_come_back_on_demand() {
    let dir = data_dir("idle");
    let mut config = Config::with_data_dir(&dir);
    config.idle_unload_secs = 0.2;
    let s = start(config).await;
    let t = s.target.clone();
    let id = t.create().await.unwrap();
    let (mut ws, _) = t.join(&id, "alice", None).await.unwrap();
    let mid = ws
        .edit(json!({"type": "SET_TEMPO", "tempo": 99}))
        .await
        .unwrap();
    ws.ack(&mid).await.unwrap();
    ws.close().await;
    let live = |body: String| -> i64 {
        body.lines()
            .find(|l| l.starts_with("keyboardia_live_sessions "))
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let mut unloaded = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let m = t
            .http
            .get(t.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if live(m) == 0 {
            unloaded = true;
            break;
        }
    }
    assert!(unloaded, "the idle session was not unloaded");
    let doc = t.get(&format!("/api/sessions/{id}")).await.unwrap().body;
    assert_eq!(doc["tempo"], 99);
    assert_eq!(doc["seq"], 1);
    s.stop().await;
}

#[tokio::test]
async fn creating_too_fast_from_one_address_gets_429() {
    let dir = data_dir("rate");
    let mut config = Config::with_data_dir(&dir);
    config.api_rate = 0.5;
    config.api_burst = 3.0;
    let s = start(config).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(s.target.post("/api/sessions", None).await.unwrap());
    }
    let codes: Vec<u16> = statuses.iter().map(|a| a.status).collect();
    assert_eq!(codes, [201, 201, 201, 429, 429]);
    assert_eq!(statuses[3].body["error"], "RATE_LIMITED");
    // Reads are not limited.
    assert_eq!(s.target.get("/api/sessions").await.unwrap().status, 200);
    s.stop().await;
}

#[tokio::test]
async fn websocket_upgrades_check_the_origin() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let dir = data_dir("origin");
    let mut config = Config::with_data_dir(&dir);
    config.allowed_origins = vec!["https://friend.example".into()];
    let s = start(config).await;
    let id = s.target.create().await.unwrap();
    let url = s.target.ws_url(&id);
    let host = s.target.base.trim_start_matches("http://").to_string();
    for (origin, ok) in [
        ("https://evil.example".to_string(), false),
        ("https://friend.example".to_string(), true),
        (format!("http://{host}"), true),
    ] {
        let mut req = url.clone().into_client_request().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        let r = tokio_tungstenite::connect_async(req).await;
        assert_eq!(r.is_ok(), ok, "origin {origin}");
        if let Err(tokio_tungstenite::tungstenite::Error::Http(resp)) = r {
            assert_eq!(resp.status(), 403);
        }
    }
    s.stop().await;
}

/// A database written by a build from before schema versions (v1: bare JSON rows, SQLite
/// user_version 0) loads: the snapshot and the log after it replay into today's model, and new
/// writes carry today's version. The rows are the core's v1 fixtures, written as that build did.
#[tokio::test]
async fn a_database_written_by_a_v1_build_loads() {
    let dir = data_dir("v1-db");
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/../core/tests/data/storage/v1/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let id = "3d833cc4-2995-4565-a609-3523601f71b0";
    {
        let db = rusqlite::Connection::open(dir.join("keyboardia.db")).unwrap();
        // The v1 build's tables, exactly.
        db.execute_batch(
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, name TEXT NOT NULL, tempo INTEGER NOT NULL,
               track_count INTEGER NOT NULL, created_at INTEGER NOT NULL, last_accessed_at INTEGER NOT NULL,
               remixed_from TEXT, remix_count INTEGER NOT NULL DEFAULT 0, immutable INTEGER NOT NULL DEFAULT 0,
               published_from TEXT, snapshot_seq INTEGER NOT NULL, snapshot TEXT NOT NULL);
             CREATE TABLE edits (session_id TEXT NOT NULL, seq INTEGER NOT NULL, applied TEXT NOT NULL,
               PRIMARY KEY (session_id, seq)) WITHOUT ROWID;",
        )
        .unwrap();
        db.execute(
            "INSERT INTO sessions VALUES (?1, 'Stored by a v1 build', 97, 2, 1764000000000, 1764000500000, NULL, 2, 0, NULL, 3, ?2)",
            rusqlite::params![id, fixture("snapshot.json").trim()],
        )
        .unwrap();
        for (i, row) in fixture("log.jsonl")
            .lines()
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            db.execute(
                "INSERT INTO edits VALUES (?1, ?2, ?3)",
                rusqlite::params![id, 4 + i as i64, row],
            )
            .unwrap();
        }
    }
    let s = start(Config::with_data_dir(&dir)).await;
    let t = s.target.clone();
    let doc = t.get(&format!("/api/sessions/{id}")).await.unwrap();
    assert_eq!(doc.status, 200, "{:?}", doc.body);
    assert_eq!(doc.body["name"], "Renamed in the log");
    assert_eq!(doc.body["seq"], 6);
    assert_eq!(doc.body["remixCount"], 2);
    assert!(doc.body["tracks"][0]["steps"]
        .as_array()
        .unwrap()
        .contains(&json!(2)));
    assert_eq!(doc.body["tracks"][1]["volume"], 0.75);
    // It stays editable, and what is written now carries the version.
    let (mut ws, _) = t.join(id, "alice", None).await.unwrap();
    let mid = ws
        .edit(json!({"type": "SET_STEP", "trackId": "kick", "step": 5, "active": true}))
        .await
        .unwrap();
    let ack = ws.ack(&mid).await.unwrap();
    assert_eq!(ack["seq"], 7, "{ack}");
    s.stop().await;
    let db = rusqlite::Connection::open(dir.join("keyboardia.db")).unwrap();
    let rows: Vec<(i64, String)> = db
        .prepare("SELECT seq, applied FROM edits ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let newest = rows.last().unwrap();
    assert_eq!(newest.0, 7, "{rows:?}");
    assert!(newest.1.starts_with("{\"v\":2,"), "{rows:?}");
}

/// The binary alone is enough: an empty data directory gets the built-in kit on first start,
/// rendered by the sound engine, and serves it.
#[tokio::test]
async fn an_empty_store_gets_the_built_in_kit() {
    let dir = data_dir("kit");
    let mut config = Config::with_data_dir(&dir);
    config.kit = true;
    let s = start(config).await;
    let t = s.target.clone();
    let mut status = 0;
    for _ in 0..600 {
        status = t.get("/api/samples/drums/kick.wav").await.unwrap().status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the kit's kick was never served");
    s.stop().await;
}
