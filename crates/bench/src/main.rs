//! # keyboardia-bench
//!
//! Benchmarks of a Keyboardia host over real sockets (run with `cargo xtask bench`):
//!
//! - `fanout`: R rooms x C clients; edits at a fixed total rate from random clients; measures the
//!   time from an edit being sent to *all* its room's other clients receiving it (p50/p99/max),
//!   and the edits per second sustained.
//! - `idle`: resident memory of the server per idle WebSocket connection.
//!
//! By default each run starts the release server binary (`target/release/keyboardia`) on a
//! fresh data directory, so its memory can be read from /proc; `--url` targets a running host.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(about = "Keyboardia benchmarks")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
    /// Benchmark a running host instead of starting one.
    #[arg(long, global = true)]
    url: Option<String>,
    /// Which host to start: `native` (target/release/keyboardia) or `ws-relay` (the Node peer in
    /// crates/bench/peers; run `npm ci --prefix crates/bench/peers` first).
    #[arg(long, global = true, default_value = "native")]
    host: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Edit fan-out latency and throughput.
    Fanout {
        #[arg(long, default_value_t = 500)]
        rooms: usize,
        #[arg(long, default_value_t = 10)]
        clients: usize,
        /// Edits per second, in total.
        #[arg(long, default_value_t = 2000.0)]
        rate: f64,
        /// Measured seconds (after a warm-up of 2 s).
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
    },
    /// Sound engine render speed (the busy 16-track reference pattern), natively on one core.
    Render {
        /// Seconds of audio per run.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        #[arg(long, default_value_t = 48_000.0)]
        sample_rate: f32,
        /// Only the cases whose name starts with this (e.g. `dry`, `every effect`, `reverb`); one
        /// run each instead of the best of three (for instruction counts under callgrind).
        #[arg(long)]
        only: Option<String>,
        /// Runs of each case, the best one reported (default: 3, or 1 with `--only`).
        #[arg(long)]
        runs: Option<usize>,
    },
    /// Server memory per idle connection.
    Idle {
        #[arg(long, default_value_t = 5000)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        per_room: usize,
    },
}

/// A server started for the run.
struct Spawned {
    child: Child,
    base: String,
    dir: std::path::PathBuf,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn_server(host: &str) -> anyhow::Result<Spawned> {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!("kbd-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = match host {
        "native" => {
            let exe = std::env::current_exe()?
                .parent()
                .context("exe dir")?
                .join("keyboardia");
            if !exe.exists() {
                bail!(
                    "{} is missing: run `cargo build --release -p keyboardia-server`",
                    exe.display()
                );
            }
            let mut c = Command::new(exe);
            c.args([
                "--addr",
                "127.0.0.1:0",
                "--api-rate",
                "100000",
                "--api-burst",
                "100000",
            ])
            .args(["--idle-unload-secs", "3600", "--data-dir"])
            .arg(&dir)
            .env("RUST_LOG", "warn");
            c
        }
        "ws-relay" => {
            let script =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/ws-relay.mjs");
            let mut c = Command::new("node");
            c.arg(script);
            c
        }
        other => bail!("unknown host {other:?}: native or ws-relay"),
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let base = line
        .split("open ")
        .nth(1)
        .context("server did not print its URL")?
        .trim()
        .trim_end_matches('/')
        .to_string();
    Ok(Spawned { child, base, dir })
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
}

async fn create_rooms(http: &reqwest::Client, base: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let r: Value = http
            .post(format!("{base}/api/sessions"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ids.push(r["id"].as_str().context("id")?.to_string());
    }
    Ok(ids)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn join(base: &str, room: &str, player: &str) -> anyhow::Result<Ws> {
    let url = format!(
        "{}/api/sessions/{room}/ws",
        base.replacen("http://", "ws://", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
    let hello = json!({"type": "HELLO", "protocol": 1, "playerId": player});
    ws.send(Message::Text(hello.to_string().into())).await?;
    while let Some(m) = ws.next().await {
        if let Message::Text(t) = m? {
            let v: Value = serde_json::from_str(&t)?;
            match v["type"].as_str() {
                Some("WELCOME") => return Ok(ws),
                Some("ERROR") => bail!("join refused: {v}"),
                _ => {}
            }
        }
    }
    bail!("socket closed before WELCOME")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Cmd::Render {
        seconds,
        sample_rate,
        only,
        runs,
    } = args.cmd
    {
        let runs = runs.unwrap_or(if only.is_some() { 1 } else { 3 }).max(1);
        return render_speed(seconds, sample_rate, only.as_deref(), runs);
    }
    let spawned = match &args.url {
        Some(_) => None,
        None => Some(spawn_server(&args.host)?),
    };
    let base = args
        .url
        .clone()
        .unwrap_or_else(|| spawned.as_ref().unwrap().base.clone());
    let pid = spawned.as_ref().map(|s| s.child.id());
    println!("host: {}", args.url.as_deref().unwrap_or(&args.host));
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_string())
            )
            .unwrap_or_default()
    );
    let http = reqwest::Client::new();
    match args.cmd {
        Cmd::Fanout {
            rooms,
            clients,
            rate,
            seconds,
        } => fanout(&http, &base, pid, rooms, clients, rate, seconds).await,
        Cmd::Idle {
            connections,
            per_room,
        } => idle(&http, &base, pid, connections, per_room).await,
        Cmd::Render { .. } => unreachable!("handled above"),
    }
}

/// Seconds to render `frames` of `pattern` with `fx` in 128-frame blocks, as the AudioWorklet
/// does: the best of `runs`. `hit_then_silence`: one loud hit, then nothing (the tails of the
/// reverb and delay decaying into silence, where denormal numbers would slow a loop down).
fn time_render(
    pattern: &keyboardia_audio::engine::Pattern,
    fx: &keyboardia_audio::effects::MasterFx,
    frames: usize,
    sample_rate: f32,
    hit_then_silence: bool,
    runs: usize,
) -> (f64, f64) {
    use keyboardia_audio::engine::{Engine, Transport};
    let (mut l, mut r) = ([0.0f32; 128], [0.0f32; 128]);
    let mut best = f64::INFINITY;
    let mut checksum = 0.0f64;
    for _ in 0..runs {
        let mut e = Engine::new(sample_rate);
        e.set_pattern(pattern);
        e.set_master_fx(fx);
        e.set_transport(Transport::play(0.0, 0.0, 120.0));
        e.settle_effects();
        if hit_then_silence {
            // The first step's hits, then the pattern is emptied.
            for _ in 0..(sample_rate as usize / 8 / 128) {
                e.render(&mut l, &mut r);
            }
            let mut quiet = pattern.clone();
            quiet.tracks.iter_mut().for_each(|t| t.steps = 0);
            e.set_pattern(&quiet);
        }
        let t0 = Instant::now();
        let mut done = 0;
        while done < frames {
            e.render(&mut l, &mut r);
            checksum += l[0] as f64;
            done += 128;
        }
        best = best.min(t0.elapsed().as_secs_f64());
    }
    (best, checksum)
}

/// Render speed of the 16-track reference pattern: dry, with every effect on, with each effect
/// alone (its cost against the dry render measured in the same run), and the tails of a loud
/// hit decaying into a long silence. `only` picks cases by name; each case's best of `runs`.
fn render_speed(
    seconds: f64,
    sample_rate: f32,
    only: Option<&str>,
    runs: usize,
) -> anyhow::Result<()> {
    use keyboardia_audio::demo::{all_effects, busy_pattern, busy_pattern_with_effects};
    use keyboardia_audio::effects::{FilterMode, MasterFx, TrackFx};
    use keyboardia_audio::engine::Pattern;
    let frames = (seconds * sample_rate as f64) as usize;
    let dry = busy_pattern();
    let all = all_effects();
    let none = MasterFx::default();
    // The dry pattern with every send closed and `f` applied to each track's effects.
    let with_tracks = |f: &dyn Fn(&mut TrackFx)| {
        let mut p = dry.clone();
        for t in p.tracks.iter_mut() {
            t.fx.send_reverb = 0.0;
            f(&mut t.fx);
        }
        p
    };
    let sends = |reverb: f32, delay: f32| {
        with_tracks(&move |f: &mut TrackFx| {
            f.send_reverb = reverb;
            f.send_delay = delay;
        })
    };
    let cases: Vec<(&str, Pattern, MasterFx, bool)> = vec![
        ("dry (no effects)", dry.clone(), none, false),
        (
            "every effect on (16 tracks' drive, filter with cutoff locks and sends; reverb, delay, chorus, drive, EQ, compressor)",
            busy_pattern_with_effects(),
            all,
            false,
        ),
        (
            "reverb alone (sends 0.3)",
            sends(0.3, 0.0),
            MasterFx {
                reverb_mix: 0.5,
                ..none
            },
            false,
        ),
        (
            "delay alone (sends 0.3)",
            sends(0.0, 0.3),
            MasterFx {
                delay_mix: 0.5,
                ..none
            },
            false,
        ),
        (
            "chorus alone",
            sends(0.0, 0.0),
            MasterFx {
                chorus_mix: 0.5,
                ..none
            },
            false,
        ),
        (
            "master drive alone",
            sends(0.0, 0.0),
            MasterFx { drive: 0.4, ..none },
            false,
        ),
        (
            "3-band EQ alone",
            sends(0.0, 0.0),
            MasterFx {
                eq: [3.0, -2.0, 4.0],
                ..none
            },
            false,
        ),
        (
            "compressor alone",
            sends(0.0, 0.0),
            MasterFx {
                comp: all.comp,
                ..none
            },
            false,
        ),
        (
            "16 track filters alone",
            with_tracks(&|f| {
                f.filter = FilterMode::LowPass;
                f.cutoff = 1200.0;
            }),
            none,
            false,
        ),
        (
            "16 track drives alone",
            with_tracks(&|f| f.drive = 0.3),
            none,
            false,
        ),
        (
            "tails into silence (every effect on, no notes after the first step)",
            busy_pattern_with_effects(),
            all,
            true,
        ),
    ];
    let mut dry_time = None;
    for (name, p, fx, silence) in cases {
        if only.is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        let (t, c) = time_render(&p, &fx, frames, sample_rate, silence, runs);
        let vs = match dry_time {
            None => {
                dry_time = Some(t);
                String::new()
            }
            Some(d) => format!(", {:.2}x the dry render's time", t / d),
        };
        println!(
            "native render, {name}: {seconds} s at {sample_rate} Hz in {:.0} ms = {:.0}x real time{vs} (checksum {c:.3})",
            t * 1000.0,
            seconds / t
        );
    }
    Ok(())
}

/// The fields of a server frame the benchmark reads (cheaper than a full parse, so the client
/// takes less of the CPU it shares with the server).
#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    ty: &'a str,
    mid: Option<&'a str>,
    seq: Option<u64>,
    #[serde(rename = "playerId")]
    player_id: Option<&'a str>,
}

/// Per-edit delivery tracking: how many peers still have to receive it, and the slowest so far.
struct Tracker {
    start: Instant,
    /// Per edit in flight: peers still to receive it, slowest delivery so far, and whether it was
    /// sent in the measured window (warm-up edits are delivered but not counted).
    pending: Mutex<HashMap<String, (usize, f64, bool)>>,
    /// Latency (ms) until the last peer received each edit.
    all_peers: Mutex<Vec<f64>>,
    /// Latency (ms) of every single delivery.
    each: Mutex<Vec<f64>>,
    errors: std::sync::atomic::AtomicU64,
}

async fn fanout(
    http: &reqwest::Client,
    base: &str,
    pid: Option<u32>,
    rooms: usize,
    clients: usize,
    rate: f64,
    seconds: f64,
) -> anyhow::Result<()> {
    println!("fanout: {rooms} rooms x {clients} clients, {rate} edits/s for {seconds} s");
    let ids = create_rooms(http, base, rooms).await?;
    let tracker = Arc::new(Tracker {
        start: Instant::now(),
        pending: Mutex::new(HashMap::new()),
        all_peers: Mutex::new(Vec::new()),
        each: Mutex::new(Vec::new()),
        errors: 0.into(),
    });
    // Connect everyone; keep a sender per client.
    let mut senders: Vec<tokio::sync::mpsc::UnboundedSender<String>> = Vec::new();
    let t0 = Instant::now();
    for (r, id) in ids.iter().enumerate() {
        for c in 0..clients {
            let ws = join(base, id, &format!("r{r}c{c}")).await?;
            let (mut sink, mut stream) = ws.split();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            senders.push(tx);
            tokio::spawn(async move {
                while let Some(text) = rx.recv().await {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
            });
            let tracker = tracker.clone();
            let me = format!("r{r}c{c}");
            tokio::spawn(async move {
                while let Some(Ok(m)) = stream.next().await {
                    let Message::Text(t) = m else { continue };
                    let now = tracker.start.elapsed().as_secs_f64() * 1000.0;
                    let Ok(v) = serde_json::from_str::<Frame>(&t) else {
                        continue;
                    };
                    if v.ty == "ERROR" {
                        tracker
                            .errors
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    let (Some(mid), Some(_)) = (v.mid, v.seq) else {
                        continue;
                    };
                    if v.player_id == Some(me.as_str()) {
                        continue; // our own acknowledgement
                    }
                    let sent: f64 = mid
                        .split('-')
                        .next()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(now);
                    let lat = now - sent;
                    let mut p = tracker.pending.lock().unwrap();
                    if let Some(e) = p.get_mut(mid) {
                        e.0 -= 1;
                        e.1 = e.1.max(lat);
                        let (done, worst, measured) = (e.0 == 0, e.1, e.2);
                        if measured {
                            tracker.each.lock().unwrap().push(lat);
                        }
                        if done {
                            p.remove(mid);
                            if measured {
                                tracker.all_peers.lock().unwrap().push(worst);
                            }
                        }
                    }
                }
            });
        }
    }
    println!(
        "connected {} clients in {:.1} s",
        rooms * clients,
        t0.elapsed().as_secs_f64()
    );
    let rss_before = pid.map(rss_kib).transpose()?;

    let interval = Duration::from_secs_f64(1.0 / rate);
    let warmup = 2.0;
    let total = ((seconds + warmup) * rate) as u64;
    let mut rng = rand::rng();
    let mut next = tokio::time::Instant::now();
    let mut measured_from = None;
    let mut sent_measured = 0u64;
    for n in 0..total {
        if n == (warmup * rate) as u64 {
            measured_from = Some(Instant::now());
        }
        let r = rng.random_range(0..rooms);
        let c = rng.random_range(0..clients);
        let now = tracker.start.elapsed().as_secs_f64() * 1000.0;
        let mid = format!("{now:.4}-{n}");
        if measured_from.is_some() {
            sent_measured += 1;
        }
        tracker
            .pending
            .lock()
            .unwrap()
            .insert(mid.clone(), (clients - 1, 0.0, measured_from.is_some()));
        let step = rng.random_range(0..16);
        let edit = json!({"type": "SET_STEP", "trackId": "hat", "step": step, "active": n % 2 == 0, "mid": mid});
        let _ = senders[r * clients + c].send(edit.to_string());
        next += interval;
        tokio::time::sleep_until(next).await;
    }
    let send_secs = measured_from
        .map(|t| t.elapsed().as_secs_f64())
        .unwrap_or(seconds);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut all = tracker.all_peers.lock().unwrap().clone();
    let mut each = tracker.each.lock().unwrap().clone();
    all.sort_by(f64::total_cmp);
    each.sort_by(f64::total_cmp);
    let lost = tracker.pending.lock().unwrap().len();
    println!(
        "edits sent (measured): {sent_measured} in {send_secs:.2} s = {:.0} edits/s offered",
        sent_measured as f64 / send_secs
    );
    println!(
        "edits delivered to all {} peers: {} ({:.0} edits/s sustained); still pending after 2 s: {lost}; errors: {}",
        clients - 1,
        all.len(),
        all.len() as f64 / send_secs,
        tracker.errors.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "latency to the LAST peer (ms): p50 {:.2}  p99 {:.2}  max {:.2}",
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "latency per delivery (ms):     p50 {:.2}  p99 {:.2}  max {:.2}  ({} deliveries)",
        percentile(&each, 0.5),
        percentile(&each, 0.99),
        each.last().copied().unwrap_or(f64::NAN),
        each.len()
    );
    if let (Some(pid), Some(before)) = (pid, rss_before) {
        println!(
            "server RSS: {} KiB before the edits, {} KiB after",
            before,
            rss_kib(pid)?
        );
    }
    Ok(())
}

async fn idle(
    http: &reqwest::Client,
    base: &str,
    pid: Option<u32>,
    connections: usize,
    per_room: usize,
) -> anyhow::Result<()> {
    let rooms = connections.div_ceil(per_room);
    println!("idle: {connections} connections in {rooms} rooms of {per_room}");
    let ids = create_rooms(http, base, rooms).await?;
    // Load every room (its coordinator) before the baseline, so the difference is connections.
    for id in &ids {
        http.get(format!("{base}/api/sessions/{id}"))
            .send()
            .await?
            .error_for_status()?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = pid.map(rss_kib).transpose()?;
    let mut sockets = Vec::with_capacity(connections);
    for i in 0..connections {
        sockets.push(join(base, &ids[i / per_room], &format!("idle{i}")).await?);
    }
    // Let PLAYER_JOINED traffic settle; read it so the server's queues empty.
    let deadline = Instant::now() + Duration::from_secs(3);
    for ws in sockets.iter_mut() {
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), ws.next()).await {
            if Instant::now() > deadline {
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let (Some(pid), Some(before)) = (pid, before) {
        let after = rss_kib(pid)?;
        println!("server RSS: {before} KiB with {rooms} rooms loaded, {after} KiB with {connections} connections");
        println!(
            "per idle connection: {:.1} KiB",
            (after.saturating_sub(before)) as f64 / connections as f64
        );
    } else {
        println!("(memory is only measured for a server this benchmark starts)");
    }
    drop(sockets);
    Ok(())
}
