//! `cargo xtask <command>`: the project's build, run, test and bench orchestration, in plain
//! Rust with no dependencies so it builds in seconds.
//!
//! - `run [server flags...]`: builds and starts the native server (release), which prints the
//!   URL to open.
//! - `test`: every test: the workspace's tests (core, sound engine, native server, conformance
//!   suite against the native host), the wasm32 builds, and a build of the benchmarks.
//! - `bench [flags...]`: the fan-out benchmark (see docs/BENCHMARKS.md).

use std::process::{exit, Command};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
            let mut a = vec!["run", "--release", "-p", "keyboardia-server", "--"];
            a.extend(rest.iter().map(String::as_str));
            cargo(&a);
        }
        "test" => {
            step("workspace tests (core, server, conformance on the native host)");
            cargo(&[
                "test",
                "--workspace",
                "--exclude",
                "keyboardia-bench",
                "--exclude",
                "xtask",
            ]);
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
            step("benchmarks build");
            cargo(&["build", "-p", "keyboardia-bench"]);
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
        _ => {
            eprintln!("usage: cargo xtask run [server flags] | test | bench [bench flags]");
            exit(2);
        }
    }
}

fn step(what: &str) {
    println!("\n==> {what}");
}

fn cargo(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo).args(args).status().expect("cargo runs");
    if !status.success() {
        eprintln!("xtask: `cargo {}` failed", args.join(" "));
        exit(status.code().unwrap_or(1));
    }
}

fn ensure_wasm_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"))
        .unwrap_or(false);
    if !installed {
        let ok = Command::new("rustup")
            .args(["target", "add", "wasm32-unknown-unknown"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("xtask: could not add the wasm32-unknown-unknown target");
            exit(1);
        }
    }
}
