//! The tools the tests need beyond Rust and Node, each pinned in one place and fetched by xtask
//! itself when missing: `worker-build` (for the Cloudflare host) and Debian's Chromium (for the
//! browser tests). Cargo tools go into `target/tools/` of this checkout, never the user's global
//! cargo bin; a matching version already on `PATH` is used as it is. (wasm-bindgen needs no
//! tool: xtask links it as a library, see `web.rs`.)

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{fail, must, step};

/// `worker-build`, which builds the Cloudflare Worker (it must match the `worker` crate).
pub const WORKER_BUILD: &str = "0.8.7";

const ROOT: &str = "target/tools";

/// The version of the `wasm-bindgen` crate in Cargo.lock: the generated glue must match it.
pub fn wasm_bindgen_version() -> String {
    locked_version("wasm-bindgen").unwrap_or_else(|| {
        eprintln!("xtask: Cargo.lock pins no wasm-bindgen");
        fail(1)
    })
}

/// The version of package `name` in Cargo.lock (the first, if there are several).
pub fn locked_version(name: &str) -> Option<String> {
    let lock = std::fs::read_to_string("Cargo.lock").expect("Cargo.lock");
    let mut lines = lock.lines();
    let want = format!("name = \"{name}\"");
    while let Some(l) = lines.next() {
        if l == want {
            if let Some(v) = lines.next().and_then(|v| v.strip_prefix("version = \"")) {
                return Some(v.trim_end_matches('"').to_string());
            }
        }
    }
    None
}

/// `worker-build` at [`WORKER_BUILD`].
pub fn worker_build() -> PathBuf {
    ensure(
        "worker-build",
        "worker-build",
        WORKER_BUILD,
        WORKER_BUILD,
        true,
        "10-15 minutes",
    )
}

/// A cargo-installed tool: ours in target/tools, or one on PATH that says `expect` for
/// `--version`; otherwise installed into target/tools now.
fn ensure(
    bin: &str,
    package: &str,
    version: &str,
    expect: &str,
    locked: bool,
    how_long: &str,
) -> PathBuf {
    let ours = Path::new(ROOT).join("bin").join(bin);
    let says = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(expect))
            .unwrap_or(false)
    };
    if says(&ours) {
        return absolute(&ours);
    }
    if let Some(found) = on_path(bin).filter(|p| says(p)) {
        return found;
    }
    step(&format!(
        "installing {package} {version} into {ROOT} (needed once; {how_long} on two cores)"
    ));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.args(["install", package, "--version", version, "--root", ROOT]);
    if locked {
        c.arg("--locked");
    }
    must(&mut c, &format!("installing {package} {version}"));
    absolute(&ours)
}

fn on_path(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

fn absolute(p: &Path) -> PathBuf {
    std::env::current_dir().expect("cwd").join(p)
}

/// Debian's Chromium for the browser tests (`CHROMIUM` may name another): installed with apt
/// when it is missing and we are root; otherwise one sentence saying what to run.
pub fn chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if Path::new(&chromium).exists() {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if std::env::var_os("CHROMIUM").is_none() && root {
        step(
            "installing Debian's chromium (the browser tests need a real browser; about 2 minutes)",
        );
        must(
            Command::new("apt-get")
                .args(["update", "-qq"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get update",
        );
        must(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "chromium"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install chromium",
        );
        if Path::new(&chromium).exists() {
            return;
        }
    }
    eprintln!(
        "xtask: the browser tests need Chromium at {chromium}: run `sudo apt-get install chromium` (Debian/Ubuntu), or set CHROMIUM to a Chromium binary"
    );
    fail(1)
}
