//! Crash tests of the real binary as a child process: `kill -9` while edits stream in, restarted
//! on the same data directory (the shared rounds in `keyboardia_conformance::crash`), and a
//! clean SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use keyboardia_conformance::Target;
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

/// The native server as a child process on one data directory.
struct Native {
    data: std::path::PathBuf,
    server: Option<Server>,
}

impl keyboardia_conformance::crash::Crashable for Native {
    fn start(&mut self) -> String {
        let s = start(&self.data);
        let base = s.base.clone();
        self.server = Some(s);
        base
    }
    fn kill(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.child.kill().unwrap(); // SIGKILL: no chance to flush anything
            s.child.wait().unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_edit_survives_kill_9() {
    let data = std::env::temp_dir().join(format!("kbd-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut host = Native {
        data: data.clone(),
        server: None,
    };
    keyboardia_conformance::crash::every_acknowledged_edit_survives(&mut host, 5).await;
    let _ = std::fs::remove_dir_all(&data);
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

/// Bad set-ups stop with one sentence saying what is wrong and what to do, never a backtrace:
/// an address already in use, a data folder that cannot be written.
#[test]
fn bad_setups_get_one_clear_sentence() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = std::env::temp_dir().join(format!("kbd-setup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, b"").unwrap();
    for (args, expect) in [
        (
            vec![
                "--addr".to_string(),
                addr.clone(),
                "--data-dir".into(),
                dir.join("d").display().to_string(),
            ],
            "already in use",
        ),
        (
            vec![
                "--addr".to_string(),
                "127.0.0.1:0".into(),
                "--data-dir".into(),
                file.join("sub").display().to_string(),
            ],
            "cannot use the data folder",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyboardia"))
            .args(&args)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("keyboardia:"))
            .collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(lines[0].contains(expect), "{err}");
        assert!(
            !err.contains("backtrace") && !err.contains("panicked"),
            "{err}"
        );
    }
}
