//! Crash test: the real binary as a child process, edits streaming in from several players,
//! `kill -9` at a random moment while they stream, restart on the same data directory: every
//! acknowledged edit must be there, and nothing from earlier rounds may be lost.
//!
//! Each player owns one track and sets its volume to an ever-increasing value, so "every
//! acknowledged edit survived" reads as: after restart, the track's volume is at least the last
//! acknowledged value (edits committed but not yet acknowledged may push it higher).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use keyboardia_conformance::Target;
use rand::Rng;
use serde_json::json;

struct Server {
    child: Child,
    base: String,
}

fn start(data: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyboardia"))
        .args(["--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split("open ")
        .nth(1)
        .expect("the server prints its URL")
        .trim()
        .trim_end_matches('/')
        .to_string();
    Server { child, base }
}

const PLAYERS: usize = 8;
/// Edits per second per player: under the per-connection limit (50/s).
const PACE: Duration = Duration::from_millis(25);

/// What one round left behind: the session, each player's last acknowledged volume, the
/// highest acknowledged seq.
struct Round {
    id: String,
    acked: Vec<(String, f64)>,
    max_seq: u64,
    count: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_edit_survives_kill_9() {
    let data = std::env::temp_dir().join(format!("kbd-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut rng = rand::rng();
    let mut rounds: Vec<Round> = Vec::new();
    for round in 0..5 {
        let mut server = start(&data);
        let t = Target::new(server.base.clone());
        for r in &rounds {
            check(&t, r).await;
        }
        let id = t.create().await.unwrap();
        // One track per player.
        let (mut setup, _) = t.join(&id, "setup", None).await.unwrap();
        let mut last = String::new();
        for p in 0..PLAYERS {
            let track =
                json!({"id": format!("p{p}"), "name": format!("P{p}"), "instrument": "synth/lead"});
            last = setup
                .edit(json!({"type": "ADD_TRACK", "track": track}))
                .await
                .unwrap();
        }
        assert_eq!(setup.ack(&last).await.unwrap()["type"], "ADD_TRACK");
        setup.close().await;

        let kill_after = Duration::from_millis(rng.random_range(200..1500));
        let mut tasks = Vec::new();
        for p in 0..PLAYERS {
            let t = t.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move { stream(t, id, p).await }));
        }
        tokio::time::sleep(kill_after).await;
        server.child.kill().unwrap(); // SIGKILL: no chance to flush anything
        server.child.wait().unwrap();
        let mut r = Round {
            id,
            acked: Vec::new(),
            max_seq: 0,
            count: 0,
        };
        for (p, task) in tasks.into_iter().enumerate() {
            let (vol, seq, n, sent) = task.await.unwrap();
            // The sender only stops when the socket dies, so every player was cut off mid-stream.
            assert!(
                n <= sent,
                "player {p}: {n} acknowledged but only {sent} sent"
            );
            r.acked.push((format!("p{p}"), vol));
            r.max_seq = r.max_seq.max(seq);
            r.count += n;
        }
        eprintln!(
            "round {round}: killed after {kill_after:?}; {} edits acknowledged",
            r.count
        );
        rounds.push(r);
    }
    let mut server = start(&data);
    let t = Target::new(server.base.clone());
    for r in &rounds {
        check(&t, r).await;
    }
    assert!(
        rounds.iter().all(|r| r.count > 0),
        "a round acknowledged nothing"
    );
    server.child.kill().unwrap();
    let _ = server.child.wait();
    let _ = std::fs::remove_dir_all(&data);
}

/// Streams ever-increasing volumes until the socket dies. Returns the last acknowledged volume,
/// the highest acknowledged seq, how many were acknowledged and how many were sent.
async fn stream(t: Target, id: String, p: usize) -> (f64, u64, usize, usize) {
    let Ok((ws, _)) = t.join(&id, &format!("player{p}"), None).await else {
        return (0.0, 0, 0, 0);
    };
    let (mut sink, mut source) = futures_util::StreamExt::split(ws.stream);
    let sender = tokio::spawn(async move {
        use futures_util::SinkExt;
        let mut k = 0usize;
        loop {
            k += 1;
            // Above the default volume (0.8), so a lost edit cannot pass for a kept one.
            let vol = 0.8 + k as f64 / 1_000_000.0;
            let msg = json!({"type": "SET_TRACK_VOLUME", "trackId": format!("p{p}"), "volume": vol, "mid": format!("v{k}")});
            let frame = tokio_tungstenite::tungstenite::Message::Text(msg.to_string().into());
            if sink.send(frame).await.is_err() {
                return k - 1;
            }
            tokio::time::sleep(PACE).await;
        }
    });
    let (mut vol, mut seq, mut n) = (0.0, 0, 0);
    while let Some(Ok(m)) = futures_util::StreamExt::next(&mut source).await {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(m.to_text().unwrap_or("")) else {
            continue;
        };
        if v["playerId"] == format!("player{p}") {
            if let (Some(s), Some(x)) = (v["seq"].as_u64(), v["volume"].as_f64()) {
                seq = s;
                vol = x;
                n += 1;
            }
        }
    }
    let sent = sender.await.unwrap();
    (vol, seq, n, sent)
}

async fn check(t: &Target, r: &Round) {
    let doc = t.get(&format!("/api/sessions/{}", r.id)).await.unwrap();
    assert_eq!(doc.status, 200);
    let seq = doc.body["seq"].as_u64().unwrap();
    assert!(seq >= r.max_seq, "seq {seq} < acknowledged {}", r.max_seq);
    for (track, acked) in &r.acked {
        let tr = doc.body["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == track.as_str())
            .unwrap();
        let vol = tr["volume"].as_f64().unwrap();
        assert!(
            vol >= acked - 1e-6,
            "track {track}: volume {vol} is older than the acknowledged {acked}"
        );
    }
}

#[tokio::test]
async fn sigterm_closes_sockets_cleanly_and_keeps_everything() {
    let data = std::env::temp_dir().join(format!("kbd-term-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut server = start(&data);
    let t = Target::new(server.base.clone());
    let id = t.create().await.unwrap();
    let (mut ws, _) = t.join(&id, "alice", None).await.unwrap();
    let mid = ws
        .edit(json!({"type": "SET_TEMPO", "tempo": 111}))
        .await
        .unwrap();
    ws.ack(&mid).await.unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        ws.closed().await,
        keyboardia_conformance::Closed::Code(1001),
        "players are told the server is going away"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "clean exit, got {exit}");
    let mut server = start(&data);
    let t = Target::new(server.base.clone());
    let doc = t.get(&format!("/api/sessions/{id}")).await.unwrap();
    assert_eq!(doc.body["tempo"], 111);
    server.child.kill().unwrap();
    let _ = server.child.wait();
    let _ = std::fs::remove_dir_all(&data);
}
