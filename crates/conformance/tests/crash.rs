//! The crash test against a host this process does not own (e.g. the Cloudflare host in
//! workerd): `KEYBOARDIA_START_CMD` starts it on its storage (in the background) and
//! `KEYBOARDIA_KILL_CMD` kills it with SIGKILL; `KEYBOARDIA_BASE_URL` is where it answers. Run by
//! `cargo xtask worker test`. (The native server runs the same rounds in
//! crates/server/tests/crash.rs.)

use std::process::Command;
use std::time::{Duration, Instant};

use keyboardia_conformance::crash::{every_acknowledged_edit_survives, Crashable};

struct External {
    base: String,
    start: String,
    kill: String,
}

fn sh(cmd: &str) {
    let ok = Command::new("bash")
        .args(["-c", cmd])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "`{cmd}` failed");
}

impl Crashable for External {
    fn start(&mut self) -> String {
        sh(&self.start);
        let health = format!("{}/healthz", self.base);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(90) {
            if probe::healthy(&health) {
                return self.base.clone();
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("the host did not come up at {health}");
    }
    fn kill(&mut self) {
        sh(&self.kill);
    }
}

/// A tiny blocking health probe over a plain TCP connection (no second HTTP client).
mod probe {
    use std::io::{Read, Write};
    pub fn healthy(url: &str) -> bool {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let Ok(mut s) = std::net::TcpStream::connect(host) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        if write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .is_err()
        {
            return false;
        }
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        buf.starts_with(b"HTTP/1.1 200")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a host it can kill and start: cargo xtask worker test"]
async fn every_acknowledged_edit_survives_kill_9() {
    every_acknowledged_edit_survives(&mut external(), 3).await;
}

fn var(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"))
}

/// The host named by `KEYBOARDIA_BASE_URL`, `KEYBOARDIA_START_CMD` and `KEYBOARDIA_KILL_CMD`.
fn external() -> External {
    External {
        base: var("KEYBOARDIA_BASE_URL").trim_end_matches('/').to_string(),
        start: var("KEYBOARDIA_START_CMD"),
        kill: var("KEYBOARDIA_KILL_CMD"),
    }
}

/// Storage written by a build from before schema versions (v1, the core's fixtures in
/// crates/core/tests/data/storage/v1) loads on the Cloudflare host: a session's Durable Object
/// SQLite rows (metadata, snapshot, log) are replaced by v1 rows while workerd is down
/// (`KEYBOARDIA_DO_DIR`: the folder of the object class's SQLite files under wrangler's
/// `--persist-to`), and after a restart the object replays them into today's model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a host it can kill and start, and its storage: cargo xtask worker test"]
async fn a_v1_durable_object_loads() {
    let mut host = external();
    let dir = std::path::PathBuf::from(var("KEYBOARDIA_DO_DIR"));
    let t = keyboardia_conformance::Target::new(tokio::task::block_in_place(|| host.start()));
    let id = t.create().await.unwrap();
    tokio::task::block_in_place(|| host.kill());
    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/../core/tests/data/storage/v1/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .trim()
        .to_string()
    };
    // The object's file is the one whose metadata names the session.
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sqlite"))
        .find(|p| {
            rusqlite::Connection::open(p)
                .and_then(|db| db.query_row("SELECT body FROM meta", [], |r| r.get::<_, String>(0)))
                .is_ok_and(|body| body.contains(&id))
        })
        .unwrap_or_else(|| panic!("no Durable Object file in {} holds {id}", dir.display()));
    {
        let db = rusqlite::Connection::open(&file).unwrap();
        let fixture_id = "3d833cc4-2995-4565-a609-3523601f71b0";
        db.execute(
            "UPDATE meta SET body = ?1",
            [fixture("meta.json").replace(fixture_id, &id)],
        )
        .unwrap();
        db.execute(
            "UPDATE snapshot SET seq = 3, state = ?1",
            [fixture("snapshot.json")],
        )
        .unwrap();
        db.execute("DELETE FROM log", []).unwrap();
        for (i, row) in fixture("log.jsonl").lines().enumerate() {
            db.execute(
                "INSERT INTO log (seq, applied) VALUES (?1, ?2)",
                rusqlite::params![4 + i as i64, row],
            )
            .unwrap();
        }
    }
    let t = keyboardia_conformance::Target::new(tokio::task::block_in_place(|| host.start()));
    let doc = t.get(&format!("/api/sessions/{id}")).await.unwrap();
    assert_eq!(doc.status, 200, "{:?}", doc.body);
    assert_eq!(doc.body["name"], "Renamed in the log", "{:?}", doc.body);
    assert_eq!(doc.body["seq"], 6);
    assert_eq!(doc.body["remixCount"], 2);
    assert_eq!(doc.body["tracks"][1]["volume"], 0.75);
    assert!(doc.body["tracks"][0]["steps"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(2)));
    // Leave the host stopped, as this test found it.
    tokio::task::block_in_place(|| host.kill());
}
