//! `cargo xtask <command>`: the project's build, run, test and bench orchestration, in plain
//! Rust. Its only dependencies are wasm-bindgen's library (so no wasm-bindgen CLI is installed)
//! and the compressors for the web app's precompressed files.
//!
//! - `run [server flags...]`: builds and starts the native server (release), which prints the
//!   URL to open; on first run it renders the built-in kit into `data/blobs/samples/`.
//! - `test`: every test: formatting and lints, the workspace's tests (core, sound engine, native
//!   server, conformance suite against the native host), the wasm32 builds, the browser tests
//!   (the worklet check, the web app end to end, sync measured on the audio output), a build of
//!   the benchmarks and the Cloudflare host in workerd. `test --quick`: only the workspace's
//!   tests (the inner loop).
//! - `bench [flags...]`: the benchmarks in crates/bench (see docs/BENCHMARKS.md).
//! - `bench-worklet [seconds]`: render speed of the sound engine in Chromium's AudioWorklet.
//! - `worker <build|dev|seed-kit|test|dry-run|deploy>`: the Cloudflare host (crates/worker); see
//!   [`worker`].

#![forbid(unsafe_code)]

mod firstrun;
mod tools;
mod web;
mod worker;

use std::process::{exit, Command};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Started as `wasm-bindgen` (by worker-build, see `web::bindgen_command`).
    if std::env::args()
        .next()
        .is_some_and(|a| a.ends_with("wasm-bindgen"))
    {
        web::bindgen_cli(&args);
    }
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r.to_vec()),
        None => ("help", Vec::new()),
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf();
    std::env::set_current_dir(&root).expect("workspace root");
    match cmd {
        "run" => {
            // The release binary with the web app built in; it prints the URL to open (and
            // renders the built-in kit into an empty sample store itself).
            let bin = dist();
            let status = Command::new(&bin).args(&rest).status();
            match status {
                Ok(s) => exit(s.code().unwrap_or(1)),
                Err(e) => {
                    eprintln!("xtask: could not start {bin}: {e}");
                    exit(1)
                }
            }
        }
        "dist" => {
            let bin = dist();
            println!("the one-binary server (web app built in): {bin}");
        }
        "first-run-test" => firstrun::test(),
        "e2e" => {
            // One or more browser suites against the debug server, e.g.
            // `cargo xtask e2e ui` runs crates/web/e2e/ui.mjs (the inner loop for the web app).
            let lib = std::env::current_dir().expect("cwd").join(samples());
            std::env::set_var("KEYBOARDIA_LIBRARY", &lib);
            build_web();
            cargo(&["build", "-p", "keyboardia-server"]);
            npm_ci("crates/web/e2e", "axe-core");
            ensure_chromium();
            let suites = if rest.is_empty() {
                vec!["e2e".to_string(), "ui".to_string(), "sampled".to_string()]
            } else {
                rest.clone()
            };
            for s in suites {
                step(&format!("browser suite crates/web/e2e/{s}.mjs"));
                run(
                    "node",
                    &[
                        &format!("crates/web/e2e/{s}.mjs"),
                        "target/debug/keyboardia",
                        "target/web-dist",
                    ],
                );
            }
        }
        "samples" => {
            let dir = samples();
            println!("the instrument library is in {dir}");
        }
        "test" => {
            let quick = rest.iter().any(|a| a == "--quick");
            if !quick {
                step("formatting (cargo fmt --check) and lints (clippy, warnings are errors)");
                cargo(&["fmt", "--all", "--check"]);
                cargo(&[
                    "clippy",
                    "--workspace",
                    "--exclude",
                    "keyboardia-worker",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ]);
                // The Cloudflare host only builds for wasm32.
                ensure_wasm_target();
                cargo(&[
                    "clippy",
                    "-p",
                    "keyboardia-worker",
                    "--target",
                    "wasm32-unknown-unknown",
                    "--",
                    "-D",
                    "warnings",
                ]);
            }
            step("the sampled-instrument library (prepared once from the npm registry and the Debian archive; then up to date)");
            // Every server the tests start (conformance, browser tests) installs it from here.
            let lib = std::env::current_dir().expect("cwd").join(samples());
            std::env::set_var("KEYBOARDIA_LIBRARY", &lib);
            step("workspace tests (core, sound engine, sample library, server, conformance on the native host)");
            cargo(&[
                "test",
                "--workspace",
                "--exclude",
                "keyboardia-bench",
                "--exclude",
                "xtask",
                "--exclude",
                "keyboardia-worker",
            ]);
            if quick {
                println!("\nxtask test --quick: native tests and conformance passed (the full run adds lints, wasm, browsers and the Cloudflare host)");
                return;
            }
            step("core builds for wasm32-unknown-unknown");
            ensure_wasm_target();
            cargo(&[
                "build",
                "-p",
                "keyboardia-core",
                "--target",
                "wasm32-unknown-unknown",
            ]);
            step("sound engine builds for wasm32-unknown-unknown (as the AudioWorklet uses it)");
            cargo(&[
                "build",
                "-p",
                "keyboardia-audio",
                "--lib",
                "--no-default-features",
                "--target",
                "wasm32-unknown-unknown",
            ]);
            step("sound engine in headless Chromium: the AudioWorklet render is bit-identical to native");
            worklet_check(&[]);
            step("web app end to end in headless Chromium against the real server");
            build_web();
            cargo(&["build", "-p", "keyboardia-server"]);
            npm_ci("crates/web/e2e", "axe-core");
            ensure_chromium();
            run(
                "node",
                &[
                    "crates/web/e2e/e2e.mjs",
                    "target/debug/keyboardia",
                    "target/web-dist",
                ],
            );
            run(
                "node",
                &[
                    "crates/web/e2e/ui.mjs",
                    "target/debug/keyboardia",
                    "target/web-dist",
                ],
            );
            run(
                "node",
                &[
                    "crates/web/e2e/compose.mjs",
                    "target/debug/keyboardia",
                    "target/web-dist",
                ],
            );
            step("effects end to end: two players, the reverb heard in the other's output, late joiner, undo");
            run(
                "node",
                &[
                    "crates/web/e2e/effects.mjs",
                    "target/debug/keyboardia",
                    "target/web-dist",
                ],
            );
            step("sampled instruments end to end: the picker, two players hearing the piano, bytes and time to first sound");
            run(
                "node",
                &[
                    "crates/web/e2e/sampled.mjs",
                    "target/debug/keyboardia",
                    "target/web-dist",
                ],
            );
            step("the sync measure itself: clicks scheduled for known moments are heard then");
            run("node", &["crates/web/e2e/measure-control.mjs"]);
            step("sync on the audio output: every heard step, every player, slow links (about 4 minutes)");
            run(
                "node",
                &[
                    "crates/web/e2e/sync.mjs",
                    "target/debug/keyboardia",
                    "target/web-dist",
                    "--host",
                    "native",
                    "--retries",
                    "2",
                ],
            );
            step("the README's run command on a fresh clone with no tools installed: cold, then warm (about 10 minutes)");
            firstrun::test();
            step("benchmarks build");
            cargo(&["build", "-p", "keyboardia-bench"]);
            // The engine's AVX2 render against its baseline build: only an optimised build
            // vectorises, so only it can tell them apart.
            step("sound engine: the AVX2 render is bit-identical to the baseline (release build)");
            if has_avx2() {
                cargo(&[
                    "test",
                    "--release",
                    "-p",
                    "keyboardia-audio",
                    "--lib",
                    "avx2",
                    "--",
                    "--ignored",
                ]);
            } else {
                println!("skipped: this CPU has no AVX2, so the engine never takes that path here");
            }
            worker::test();
            println!("\nxtask test: all steps passed");
        }
        "bench" => {
            cargo(&[
                "build",
                "--release",
                "-p",
                "keyboardia-server",
                "-p",
                "keyboardia-bench",
            ]);
            let mut a = vec!["run", "--release", "-q", "-p", "keyboardia-bench", "--"];
            a.extend(rest.iter().map(String::as_str));
            cargo(&a);
        }
        "build-web" => build_web(),
        "worker" => worker::main(&rest),
        "bench-worklet" => {
            let seconds = rest.first().map(String::as_str).unwrap_or("60");
            worklet_check(&["--bench", seconds]);
        }
        _ => {
            eprintln!(
                "usage: cargo xtask run [server flags] | test [--quick] | e2e [suite...] | bench [bench flags] | bench-worklet [seconds] | worker <build|dev|seed-kit|test|dry-run|deploy>"
            );
            exit(2);
        }
    }
}

pub fn step(what: &str) {
    println!("\n==> {what}");
}

pub fn cargo(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo).args(args).status().expect("cargo runs");
    if !status.success() {
        eprintln!("xtask: `cargo {}` failed", args.join(" "));
        fail(status.code().unwrap_or(1));
    }
}

/// The sampled-instrument library, prepared once from the npm registry and the Debian archive
/// (crates/samples):
/// `target/sample-library`. Later calls find it up to date and fetch nothing.
pub fn samples() -> String {
    let dir = "target/sample-library";
    cargo(&[
        "run",
        "-q",
        "--release",
        "-p",
        "keyboardia-samples",
        "--",
        "prepare",
        "--out",
        dir,
    ]);
    dir.into()
}

/// The release server with the web app and the instrument library built in:
/// `target/release/keyboardia`.
pub fn dist() -> String {
    build_web();
    samples();
    cargo(&[
        "build",
        "--release",
        "-p",
        "keyboardia-server",
        "--features",
        "embed-web,embed-samples",
    ]);
    "target/release/keyboardia".into()
}

/// The web app, ready to serve, in `target/web-dist/` (see [`web`]).
pub fn build_web() {
    web::build();
}

/// The sound engine's AudioWorklet module.
fn build_worklet() -> String {
    web::build_wasm(
        "release",
        "keyboardia-audio-worklet",
        "keyboardia_audio_worklet",
    )
}

/// Builds the worklet module and the native reference render, then renders the same pattern in
/// headless Chromium's AudioWorklet and compares (crates/audio-worklet/browser/check.mjs).
fn worklet_check(extra: &[&str]) {
    let engine = build_worklet();
    npm_ci("crates/audio-worklet/browser", "playwright-core");
    ensure_chromium();
    // The dry mix, then with every effect on (sends, filters, cutoff locks, the master chain),
    // then every track sampled (the benchmark of 16 busy sampled tracks; only with the library).
    let library = "target/sample-library";
    let have_library = std::path::Path::new(library)
        .join("sampled/piano/manifest.json")
        .exists();
    if !have_library {
        eprintln!("worklet check: no {library} (prepare it first): synthesized voices only");
    }
    for (reference, flag) in [
        ("target/worklet-check", None),
        ("target/worklet-check-fx", Some("--effects")),
        ("target/worklet-check-sampled", Some("--all-sampled")),
    ] {
        if flag == Some("--all-sampled") && !have_library {
            continue;
        }
        let mut tool = vec![reference];
        if have_library {
            tool.extend(["--library", library]);
        }
        tool.extend(flag);
        audio_tool("render-reference", &tool);
        let mut args = vec!["crates/audio-worklet/browser/check.mjs", reference, &engine];
        args.extend_from_slice(extra);
        run("node", &args);
    }
}

/// Runs one of the sound engine's command-line tools (crates/audio/src/bin).
pub fn audio_tool(bin: &str, args: &[&str]) {
    let mut a = vec![
        "run",
        "-q",
        "--release",
        "-p",
        "keyboardia-audio",
        "--features",
        "tools",
        "--bin",
        bin,
        "--",
    ];
    a.extend_from_slice(args);
    cargo(&a);
}

/// Installs the npm packages of `dir` (from its lock file) if `probe` is missing.
pub fn npm_ci(dir: &str, probe: &str) {
    if !std::path::Path::new(dir)
        .join("node_modules")
        .join(probe)
        .exists()
    {
        run("npm", &["ci", "--no-audit", "--no-fund", "--prefix", dir]);
    }
}

pub fn ensure_chromium() {
    tools::chromium();
}

pub fn run(program: &str, args: &[&str]) {
    must(
        Command::new(program).args(args),
        &format!("`{program} {}`", args.join(" ")),
    );
}

/// Runs a command to completion; if it fails, says `what` failed and exits.
pub fn must(cmd: &mut Command, what: &str) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(_) => {
            eprintln!("xtask: {what} failed (its output above says why)");
            fail(1);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let program = cmd.get_program().to_string_lossy().into_owned();
            let hint = match program.as_str() {
                "node" | "npm" | "npx" => "install Node.js 20 or newer (https://nodejs.org) and make sure it is on PATH",
                "rustup" => "install Rust with rustup (https://rustup.rs), or run the rustup command above yourself",
                "apt-get" => "install Chromium with your system's package manager and set CHROMIUM to its path",
                _ => "install it, or put it on PATH",
            };
            eprintln!("xtask: {what} needs `{program}`, which is not installed: {hint}");
            fail(1);
        }
        Err(e) => {
            eprintln!("xtask: {what} could not start: {e}");
            fail(1);
        }
    }
}

/// Shell commands to run before exiting on a failure (e.g. stop a server a step started).
pub static CLEANUP: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Exits with `code` after the registered cleanup (`exit` itself skips destructors).
pub fn fail(code: i32) -> ! {
    let cleanup = std::mem::take(&mut *CLEANUP.lock().unwrap_or_else(|e| e.into_inner()));
    for c in cleanup {
        let _ = Command::new("bash").args(["-c", &c]).status();
    }
    exit(code)
}

/// Where rustup keeps its toolchains: `RUSTUP_HOME`, or `~/.rustup`.
pub fn rustup_home() -> std::path::PathBuf {
    std::env::var_os("RUSTUP_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".rustup")
        })
}

pub fn ensure_wasm_target() {
    // The standard library for wasm32 is what matters (rustup may not be on PATH).
    let installed = Command::new("rustc")
        .args([
            "--print",
            "target-libdir",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .is_some_and(|dir| {
            std::fs::read_dir(dir)
                .map(|mut d| d.any(|e| e.is_ok()))
                .unwrap_or(false)
        });
    if !installed {
        step("adding Rust's wasm32-unknown-unknown target (the web app and the sound engine run as wasm; about a minute)");
        run("rustup", &["target", "add", "wasm32-unknown-unknown"]);
    }
}

/// Whether this machine can run the sound engine's AVX2 render.
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    false
}
