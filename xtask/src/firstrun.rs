//! `cargo xtask first-run-test`: the README's run command on a fresh machine, simulated.
//!
//! Clones this repository (its last commit) into a temporary folder and runs `cargo xtask run`
//! there with an empty `CARGO_HOME` and a `PATH` holding only the Rust toolchain, Node and the
//! system's folders (so no wasm-bindgen, worker-build or other cargo-installed tool). It waits
//! for the printed URL, then a real Chromium makes a first visit (crates/web/e2e/first-visit.mjs:
//! the app, a new live session, the built-in kit). Then it runs the same command again and checks
//! that nothing is rebuilt. Prints the cold and warm times from start to URL.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{fail, must, step, CLEANUP};

pub fn test() {
    let root = std::env::current_dir().expect("cwd");
    let tmp = std::env::temp_dir().join(format!("keyboardia-first-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let clone = tmp.join("keyboardia");
    step(&format!(
        "a fresh clone in {} with an empty CARGO_HOME and no cargo-installed tools on PATH",
        clone.display()
    ));
    must(
        Command::new("git")
            .args(["clone", "--quiet"])
            .arg(&root)
            .arg(&clone),
        "git clone",
    );
    let path = fresh_path();
    println!("PATH={path}");
    let env = |c: &mut Command| {
        c.current_dir(&clone)
            .env_clear()
            .env("PATH", &path)
            .env("HOME", tmp.join("home"))
            .env("CARGO_HOME", tmp.join("cargo-home"))
            .env("RUSTUP_HOME", crate::rustup_home())
            .env("TERM", "dumb");
    };
    for tool in ["wasm-bindgen", "worker-build"] {
        if path.split(':').any(|d| Path::new(d).join(tool).exists()) {
            eprintln!("xtask: the simulated fresh PATH still has {tool}");
            fail(1);
        }
    }
    let data = tmp.join("data");
    let args = [
        "xtask",
        "run",
        "--addr",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().expect("utf-8 temp path"),
    ];

    step("cold: cargo xtask run, from nothing to the printed URL");
    let (cold, url, log) = start(&args, &env);
    println!("cold start: {:.0} s to {url}", cold.as_secs_f64());
    must(
        Command::new("node").args(["crates/web/e2e/first-visit.mjs", &url]),
        "the first visit in Chromium",
    );
    stop();
    let built = log
        .iter()
        .filter(|l| l.trim_start().starts_with("Compiling"))
        .count();

    step("warm: the same command again changes nothing");
    let dist = clone.join("target/web-dist");
    let before = snapshot(&dist);
    let bin_before = modified(&clone.join("target/release/keyboardia"));
    let (warm, url2, log2) = start(&args, &env);
    println!("warm start: {:.1} s to {url2}", warm.as_secs_f64());
    stop();
    let rebuilt: Vec<&String> = log2
        .iter()
        .filter(|l| l.trim_start().starts_with("Compiling") || l.contains("installing"))
        .collect();
    let mut problems = Vec::new();
    if !rebuilt.is_empty() {
        problems.push(format!("the second run rebuilt: {rebuilt:?}"));
    }
    if snapshot(&dist) != before {
        problems.push("the second run rewrote files of the web app".into());
    }
    if modified(&clone.join("target/release/keyboardia")) != bin_before {
        problems.push("the second run relinked the server".into());
    }
    let summary = format!(
        "first run (fresh clone, empty CARGO_HOME, no tools): {:.0} s to the URL, {built} crates compiled; second run: {:.1} s",
        cold.as_secs_f64(),
        warm.as_secs_f64()
    );
    println!("{summary}");
    let _ = std::fs::write(root.join("target/first-run.txt"), format!("{summary}\n"));
    if !problems.is_empty() {
        for p in problems {
            eprintln!("xtask: {p}");
        }
        fail(1);
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The Rust toolchain's own bin folder (cargo, rustc), Node's, and the system's: no ~/.cargo/bin.
fn fresh_path() -> String {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc");
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut dirs = vec![format!("{sysroot}/bin")];
    if let Some(node) = which("node") {
        dirs.push(node.parent().expect("dir").to_string_lossy().into_owned());
    }
    dirs.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(String::from));
    dirs.dedup();
    dirs.join(":")
}

fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// Starts `cargo <args>` in its own process group; returns the time to the printed URL, the URL
/// and everything it printed until then.
fn start(args: &[&str], env: &dyn Fn(&mut Command)) -> (Duration, String, Vec<String>) {
    let mut c = Command::new("cargo");
    c.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    env(&mut c);
    let t0 = Instant::now();
    let mut child: Child = c.spawn().expect("cargo starts");
    let pgid = child.id();
    CLEANUP
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(format!("kill -TERM -{pgid} 2>/dev/null"));
    let (tx, rx) = mpsc::channel::<String>();
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                println!("  | {line}");
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    // Reaped when it ends (`stop` ends it).
    std::thread::spawn(move || child.wait());
    let mut log = Vec::new();
    let deadline = Duration::from_secs(40 * 60);
    loop {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(line) => {
                if let Some(url) = line
                    .split("open ")
                    .nth(1)
                    .filter(|u| u.starts_with("http://"))
                {
                    let url = url.trim().trim_end_matches('/').to_string();
                    return (t0.elapsed(), url, log);
                }
                log.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) if t0.elapsed() < deadline => {}
            _ => {
                eprintln!("xtask: `cargo xtask run` in the fresh clone never printed its URL");
                crate::fail(1);
            }
        }
    }
}

/// Stops the started server (its whole process group).
fn stop() {
    let cmds = std::mem::take(&mut *CLEANUP.lock().unwrap_or_else(|e| e.into_inner()));
    for c in cmds {
        let _ = Command::new("bash").args(["-c", &c]).status();
    }
    std::thread::sleep(Duration::from_millis(500));
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Every file under `dir` with its modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Option<std::time::SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), modified(&p)));
            }
        }
    }
    out.sort();
    out
}
