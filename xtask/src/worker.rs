//! `cargo xtask worker ...`: the Cloudflare host (crates/worker), built with worker-build and run
//! in workerd by wrangler, offline.
//!
//! - `build`: the web app (into the Worker's assets) and the Worker (`crates/worker/build/`).
//! - `dev [--port P] [--persist-to DIR]`: builds, seeds the built-in kit into the local R2
//!   bucket once, and runs `wrangler dev` (state persists in DIR, default `data/worker`).
//! - `seed-kit [--remote | --persist-to DIR]`: renders the built-in kit and puts it into R2.
//! - `test`: builds, starts `wrangler dev` on a free port with fresh state, runs the conformance
//!   suite (with the listed differences), the eviction test and the web app's end-to-end tests in
//!   Chromium against it, then checks that `wrangler deploy --dry-run` accepts the bundle and
//!   reports its size.
//! - `crash-test`: builds and runs only the `kill -9` crash test against workerd.
//! - `dry-run`: builds and runs `wrangler deploy --dry-run` only.
//! - `deploy`: builds and runs `wrangler deploy` (needs a Cloudflare account; see
//!   docs/CLOUDFLARE.md).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{exit, Command};
use std::time::{Duration, Instant};

use crate::{audio_tool, build_web, ensure_chromium, fail, must, npm_ci, step, CLEANUP};

const DIR: &str = "crates/worker";
const BUCKET: &str = "keyboardia-samples";

pub fn main(args: &[String]) {
    let sub = args.first().map(String::as_str).unwrap_or("help");
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match sub {
        "build" => build(),
        "dev" => {
            build();
            let persist = flag("--persist-to").unwrap_or_else(|| "data/worker".into());
            let persist = absolute(&persist);
            if !Path::new(&persist).join(".kit-seeded").exists() {
                seed_kit(&["--local", "--persist-to", &persist]);
                std::fs::write(Path::new(&persist).join(".kit-seeded"), "").expect("marker");
            }
            let port = flag("--port").unwrap_or_else(|| "8788".into());
            println!("Keyboardia (Cloudflare host in workerd) will be at http://127.0.0.1:{port}/");
            wrangler(&[
                "dev",
                "--ip",
                "127.0.0.1",
                "--port",
                &port,
                "--persist-to",
                &persist,
                "--show-interactive-dev-session=false",
            ]);
        }
        "seed-kit" => {
            if args.iter().any(|a| a == "--remote") {
                seed_kit(&["--remote"]);
            } else {
                let persist =
                    absolute(&flag("--persist-to").unwrap_or_else(|| "data/worker".into()));
                seed_kit(&["--local", "--persist-to", &persist]);
            }
        }
        "test" => test(),
        "crash-test" => {
            build();
            let persist = absolute("target/worker-crash-state");
            let _ = std::fs::remove_dir_all(&persist);
            crash_test(&dev_cmds(free_port(), &persist));
        }
        "dry-run" => {
            build();
            dry_run();
        }
        "deploy" => {
            build();
            wrangler(&["deploy"]);
        }
        _ => {
            eprintln!(
                "usage: cargo xtask worker <build|dev|seed-kit|test|crash-test|dry-run|deploy>"
            );
            exit(2);
        }
    }
}

fn absolute(p: &str) -> String {
    std::env::current_dir()
        .expect("cwd")
        .join(p)
        .to_string_lossy()
        .into_owned()
}

/// The web app into `target/web-dist` (the Worker's assets), then the Worker.
pub fn build() {
    build_web();
    step("Cloudflare Worker (worker-build)");
    let worker_build = crate::tools::worker_build();
    npm_ci(DIR, "wrangler");
    // worker-build runs wasm-bindgen: this xtask, under that name (no CLI to install).
    let wasm_bindgen = crate::web::bindgen_command();
    let esbuild = absolute(&format!(
        "{DIR}/node_modules/@esbuild/linux-x64/bin/esbuild"
    ));
    // Everything worker-build would download comes from here instead.
    must(
        Command::new(&worker_build)
            .args(["--profile", "worker", "--no-opt"])
            .current_dir(DIR)
            .env("WASM_BINDGEN_BIN", &wasm_bindgen)
            .env("ESBUILD_BIN", &esbuild),
        "worker-build",
    );
}

/// Runs wrangler (from crates/worker/node_modules) quietly and offline.
fn wrangler_cmd(args: &[&str]) -> Command {
    let mut c = Command::new("npx");
    c.arg("wrangler")
        .args(args)
        .current_dir(DIR)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false");
    c
}

fn wrangler(args: &[&str]) {
    must(
        &mut wrangler_cmd(args),
        &format!("`wrangler {}`", args.join(" ")),
    );
}

/// Renders the built-in kit and puts every file into the R2 bucket under `samples/`.
fn seed_kit(where_: &[&str]) {
    step("built-in kit into R2");
    let out = absolute("target/kit");
    audio_tool("render-kit", &[&out]);
    let mut entries = Vec::new();
    let mut dirs = vec![Path::new(&out).join("samples")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("kit dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let key = p
                    .strip_prefix(&out)
                    .expect("under out")
                    .to_string_lossy()
                    .into_owned();
                entries.push(format!(
                    "{{\"key\":\"{key}\",\"file\":\"{}\"}}",
                    p.to_string_lossy()
                ));
            }
        }
    }
    bulk_put(&entries, "audio/wav", where_);
    println!("{} kit samples are in R2 bucket {BUCKET}", entries.len());
    // The sampled-instrument library, at the same keys the native host uses.
    let lib = absolute(&crate::samples());
    let mut by_type: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    let mut dirs = vec![Path::new(&lib).to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("library dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let rel = p
                .strip_prefix(&lib)
                .expect("under lib")
                .to_string_lossy()
                .into_owned();
            if rel.ends_with(".part") {
                continue;
            }
            let key = format!("samples/{rel}");
            let ct = keyboardia_content_type(&key);
            by_type.entry(ct).or_default().push(format!(
                "{{\"key\":\"{key}\",\"file\":\"{}\"}}",
                p.to_string_lossy()
            ));
        }
    }
    let mut n = 0;
    for (ct, entries) in &by_type {
        bulk_put(entries, ct, where_);
        n += entries.len();
    }
    println!("{n} files of the instrument library are in R2 bucket {BUCKET}");
}

/// The content type the hosts give a sample-store key (keyboardia_core::api::blob_content_type,
/// which xtask does not link).
fn keyboardia_content_type(key: &str) -> &'static str {
    match key.rsplit('.').next() {
        Some("flac") => "audio/flac",
        Some("json") => "application/json",
        Some("wav") => "audio/wav",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `wrangler r2 bulk put` of `entries` (`{"key","file"}` JSON objects) with one content type.
fn bulk_put(entries: &[String], content_type: &str, where_: &[&str]) {
    let list = absolute("target/r2-bulk.json");
    std::fs::write(&list, format!("[{}]", entries.join(","))).expect("write list");
    let mut args = vec![
        "r2",
        "bulk",
        "put",
        BUCKET,
        "--filename",
        &list,
        "--ct",
        content_type,
    ];
    args.extend_from_slice(where_);
    wrangler(&args);
    let _ = std::fs::remove_file(&list);
}

/// A free local TCP port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A plain HTTP GET; `(status, body)`.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let buf = String::from_utf8_lossy(&raw);
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Shell commands that start `wrangler dev` in the background in its own session (its process
/// group id in a pid file) and kill that whole group (wrangler, workerd) with SIGKILL.
struct DevCmds {
    port: u16,
    start: String,
    kill: String,
    do_dir: String,
}

fn dev_cmds(port: u16, persist: &str) -> DevCmds {
    let dir = absolute(DIR);
    let log = absolute("target/wrangler-dev.log");
    let pidfile = absolute("target/wrangler-dev.pid");
    let inspector = free_port();
    // Every test request comes from one address: no per-address limit here (the native
    // server's own tests cover it).
    let start = format!(
        "cd {dir} && WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false \
         CLOUDFLARE_CF_FETCH_ENABLED=false setsid bash -c 'echo $$ > {pidfile}; exec npx wrangler dev \
         --ip 127.0.0.1 --port {port} --inspector-port {inspector} --persist-to {persist} \
         --show-interactive-dev-session=false --var API_RATE:100000 --var API_BURST:100000' \
         >> {log} 2>&1 < /dev/null &"
    );
    // Kill the group, then wait (bounded) until its processes are gone and the port is free.
    let kill = format!(
        "g=$(cat {pidfile} 2>/dev/null) && kill -KILL -- -$g 2>/dev/null; \
         for i in $(seq 100); do kill -0 -- -$g 2>/dev/null || break; sleep 0.1; done; \
         for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null || break; sleep 0.1; done; true"
    );
    // Where workerd keeps each Durable Object's SQLite file (the v1 storage test rewrites one).
    let do_dir = format!("{persist}/v3/do/keyboardia-LiveSessionDurableObject");
    DevCmds {
        port,
        start,
        kill,
        do_dir,
    }
}

/// A running `wrangler dev`, killed when dropped (or by [`fail`] if a step fails meanwhile).
struct Dev {
    kill: String,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = Command::new("bash").args(["-c", &self.kill]).status();
        CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

fn start_dev(c: &DevCmds) -> Dev {
    let _ = std::fs::remove_file("target/wrangler-dev.log");
    CLEANUP
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(c.kill.clone());
    must(
        Command::new("bash").args(["-c", &c.start]),
        "starting wrangler dev",
    );
    let dev = Dev {
        kill: c.kill.clone(),
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(90) {
        if let Some((200, body)) = http_get(c.port, "/healthz") {
            if body.contains("ok") {
                println!(
                    "wrangler dev is up on port {} after {:?}",
                    c.port,
                    started.elapsed()
                );
                return dev;
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("xtask: wrangler dev did not start; see target/wrangler-dev.log");
    fail(1);
}

/// Builds, runs the suites against workerd, and checks a deployable bundle.
pub fn test() {
    build();
    step("Cloudflare host in workerd: conformance suite, eviction test");
    let persist = absolute("target/worker-test-state");
    let _ = std::fs::remove_dir_all(&persist);
    let port = free_port();
    let cmds = dev_cmds(port, &persist);
    let dev = start_dev(&cmds);
    seed_kit(&["--local", "--persist-to", &persist]);
    match http_get(port, "/api/samples/drums/kick.wav") {
        Some((200, _)) => println!("a kit sample is served from R2"),
        other => {
            eprintln!("xtask: the kit sample is not served from R2: {other:?}");
            fail(1);
        }
    }
    // An object with no storage of its own imports a session that only the KV index knows.
    let id = "5e55c0de-0000-4000-8000-00000000c0de";
    let doc = format!(
        r#"{{"id":"{id}","createdAt":1,"lastAccessedAt":1,"remixedFrom":null,"remixCount":0,"immutable":false,"name":"From the index","tempo":97,"swing":0,"tracks":[],"seq":0}}"#
    );
    let key = format!("session:{id}");
    wrangler(&[
        "kv",
        "key",
        "put",
        "--binding",
        "SESSIONS",
        &key,
        &doc,
        "--local",
        "--persist-to",
        &persist,
    ]);
    match http_get(port, &format!("/api/sessions/{id}")) {
        Some((200, body)) if body.contains("From the index") && body.contains("97") => {
            println!("a session only the KV index knew was imported by its Durable Object")
        }
        other => {
            eprintln!("xtask: the session in the KV index was not imported: {other:?}");
            fail(1);
        }
    }
    let differences = std::fs::read_to_string("crates/conformance/differences/cloudflare.txt")
        .expect("differences file");
    println!("listed differences (crates/conformance/differences/cloudflare.txt):");
    for l in differences.lines().filter(|l| !l.starts_with('#')) {
        println!("  {l}");
    }
    let base = format!("http://127.0.0.1:{port}");
    let suite = |extra: &[&str]| {
        let mut a = vec!["test", "-p", "keyboardia-conformance", "--test"];
        a.extend_from_slice(extra);
        must(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(&a)
                .env("KEYBOARDIA_BASE_URL", &base)
                .env("KEYBOARDIA_HOST", "cloudflare"),
            &format!(
                "`cargo {}` against workerd (log: target/wrangler-dev.log)",
                a.join(" ")
            ),
        );
    };
    suite(&["suite"]);
    suite(&["hibernation", "--", "--ignored"]);
    step("web app end to end in headless Chromium against the Cloudflare host");
    npm_ci("crates/web/e2e", "axe-core");
    ensure_chromium();
    must(
        Command::new("node")
            .args(["crates/web/e2e/e2e.mjs", "--base-url", &base])
            .env("KEYBOARDIA_KILL_CMD", &cmds.kill)
            .env("KEYBOARDIA_START_CMD", &cmds.start),
        "the web app's end-to-end tests against workerd",
    );
    step("sync on the audio output against the Cloudflare host (about 4 minutes)");
    must(
        Command::new("node").args([
            "crates/web/e2e/sync.mjs",
            "--base-url",
            &base,
            "--host",
            "cloudflare",
            "--retries",
            "2",
        ]),
        "the sync measurement against workerd",
    );
    drop(dev);
    crash_test(&cmds);
    dry_run();
}

/// The crash test: the test starts and kills `wrangler dev` itself (`cmds`).
fn crash_test(cmds: &DevCmds) {
    step("Cloudflare host: kill -9 workerd while edits stream, restart on the same storage");
    // The test starts and kills the host itself; whatever happens, nothing is left running.
    let crash_host = Dev {
        kill: cmds.kill.clone(),
    };
    CLEANUP
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(cmds.kill.clone());
    must(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "test",
                "-p",
                "keyboardia-conformance",
                "--test",
                "crash",
                "--",
                "--ignored",
                "--nocapture",
                // Both tests stop and start the one host.
                "--test-threads=1",
            ])
            .env(
                "KEYBOARDIA_BASE_URL",
                format!("http://127.0.0.1:{}", cmds.port),
            )
            .env("KEYBOARDIA_START_CMD", &cmds.start)
            .env("KEYBOARDIA_KILL_CMD", &cmds.kill)
            .env("KEYBOARDIA_DO_DIR", &cmds.do_dir),
        "the crash test and the v1 storage test against workerd (log: target/wrangler-dev.log)",
    );
    drop(crash_host);
}

/// `wrangler deploy --dry-run`: the bundle is valid and deployable; prints its size.
fn dry_run() {
    step("wrangler deploy --dry-run (bundle size)");
    let out = absolute("target/worker-dry-run");
    let output = wrangler_cmd(&["deploy", "--dry-run", "--outdir", &out])
        .output()
        .expect("wrangler runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        eprintln!("{text}\nxtask: wrangler deploy --dry-run failed");
        fail(1);
    }
    for l in text.lines().filter(|l| l.contains("Total Upload")) {
        println!("bundle: {}", l.trim());
    }
}
