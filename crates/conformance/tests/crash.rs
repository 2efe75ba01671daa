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
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let mut host = External {
        base: var("KEYBOARDIA_BASE_URL").trim_end_matches('/').to_string(),
        start: var("KEYBOARDIA_START_CMD"),
        kill: var("KEYBOARDIA_KILL_CMD"),
    };
    every_acknowledged_edit_survives(&mut host, 3).await;
}
