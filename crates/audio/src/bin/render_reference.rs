//! Writes what the browser check compares against: the busy reference pattern as the
//! AudioWorklet processor's control message (`pattern.json`), and its native render as raw
//! little-endian f32 (`left.f32`, `right.f32`).
//!
//! With `--library DIR` (the prepared sample library, `target/sample-library`), four of the
//! busy pattern's tracks play sampled instruments instead (the grand piano and the TR-808's
//! kick, closed and open hat, whose hats choke each other): each instrument is decoded from
//! its FLAC files with the same Rust decoder the browser app uses, loaded with only the zones
//! the pattern plays (as the app loads them first), and described in `instruments.json`
//! (`[{ message, zones: [[zone, file]] }]`, the processor's `instrument` message and the raw
//! little-endian i16 PCM file of each loaded zone).
//!
//! Usage: `render-reference <out-dir> [seconds] [sample-rate] [tempo] [--library DIR]
//! [--all-sampled]` (all 16 tracks sampled: the benchmark of busy sampled tracks)
//! `[--effects]` (every effect on: the tracks' sends, drive, filters with cutoff locks, and the
//! master chain)

use keyboardia_audio::control::{effects_message, instrument_message, pattern_message};
use keyboardia_audio::demo::{all_effects, busy_pattern, busy_pattern_with_effects};
use keyboardia_audio::effects::MasterFx;
use keyboardia_audio::engine::{Engine, Transport};
use keyboardia_audio::offline::render_engine;
use keyboardia_audio::sampler::{decode_flac, SampledInstrument};
use keyboardia_audio::Instrument;
use keyboardia_core::manifest::Manifest;
use serde_json::json;

/// Which tracks of the busy pattern become which sampled instrument (slot = position here).
const SAMPLED_TRACKS: &[(usize, &str)] = &[
    (12, "sampled/piano"),
    (0, "kit-808/kick"),
    (2, "kit-808/hat-closed"),
    (3, "kit-808/hat-open"),
];

/// With `--all-sampled`: every track of the busy pattern plays a sampled instrument (the
/// benchmark of 16 busy sampled tracks).
const ALL_SAMPLED_TRACKS: &[(usize, &str)] = &[
    (0, "kit-808/kick"),
    (1, "kit-808/snare"),
    (2, "kit-808/hat-closed"),
    (3, "kit-808/hat-open"),
    (4, "kit-808/clap"),
    (5, "kit-standard/tom-low"),
    (6, "kit-standard/rim"),
    (7, "kit-standard/ride"),
    (8, "sampled/bass-finger"),
    (9, "sampled/bass-synth"),
    (10, "sampled/lead-saw"),
    (11, "sampled/pad-warm"),
    (12, "sampled/piano"),
    (13, "sampled/guitar-nylon"),
    (14, "sampled/organ"),
    (15, "kit-808/cowbell"),
];

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let all_sampled = args.iter().any(|a| a == "--all-sampled");
    // Every effect on: the tracks' sends, drive, filters and cutoff locks, and the master chain.
    let effects = args.iter().any(|a| a == "--effects");
    args.retain(|a| a != "--all-sampled" && a != "--effects");
    let tracks = if all_sampled {
        ALL_SAMPLED_TRACKS
    } else {
        SAMPLED_TRACKS
    };
    let library = args.iter().position(|a| a == "--library").map(|i| {
        let dir = args.get(i + 1).cloned().unwrap_or_default();
        args.drain(i..(i + 2).min(args.len()));
        dir
    });
    let mut args = args.into_iter();
    let Some(out) = args.next() else {
        eprintln!(
            "usage: render-reference <out-dir> [seconds] [sample-rate] [tempo] [--library DIR]"
        );
        std::process::exit(2);
    };
    let seconds: f32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(4.0);
    let sr: f32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(48_000.0);
    let tempo: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(120.0);
    let dir = std::path::Path::new(&out);
    std::fs::create_dir_all(dir).expect("create out dir");
    let mut p = if effects {
        busy_pattern_with_effects()
    } else {
        busy_pattern()
    };
    let fx = if effects {
        all_effects()
    } else {
        MasterFx::default()
    };
    let mut e = Engine::new(sr);
    let mut described = Vec::new();
    if let Some(lib) = &library {
        for (slot, &(track, id)) in tracks.iter().enumerate() {
            let base = keyboardia_core::catalogue::lookup(id)
                .unwrap_or_else(|| panic!("{id} is not in the catalogue"))
                .base;
            let folder = std::path::Path::new(lib).join(id);
            let bytes = std::fs::read(folder.join("manifest.json"))
                .unwrap_or_else(|e| panic!("{}: {e}", folder.display()));
            let m = Manifest::from_json(&bytes).expect("a valid manifest");
            p.tracks[track].instrument = Some(Instrument::Sampled(slot as u8));
            let wanted = m.zones_for(p.tracks[track].notes(base));
            let mut files = Vec::new();
            let inst = SampledInstrument::from_manifest(&m, base, |_| None);
            let mut loaded = inst.clone();
            for &z in &wanted {
                let file = &m.zones[z].file;
                let flac = std::fs::read(folder.join(file)).expect("a zone's file");
                let (pcm, _) = decode_flac(&flac).expect("a 16-bit mono FLAC file");
                let name = format!("slot{slot}-zone{z}.i16");
                let raw: Vec<u8> = pcm.iter().flat_map(|x| x.to_le_bytes()).collect();
                std::fs::write(dir.join(&name), raw).expect("write pcm");
                files.push(json!([z, name]));
                loaded.zones[z].pcm = pcm;
            }
            described
                .push(json!({ "message": instrument_message(slot as u8, &inst), "zones": files }));
            e.load_instrument(slot, loaded);
        }
    }
    std::fs::write(
        dir.join("instruments.json"),
        serde_json::Value::Array(described).to_string(),
    )
    .expect("write instruments");
    e.set_pattern(&p);
    e.set_master_fx(&fx);
    e.set_transport(Transport::play(0.0, 0.0, tempo));
    e.settle_effects();
    let pcm = render_engine(&mut e, (seconds * sr) as usize, 128);
    if library.is_some() {
        // The sampled instruments must be heard in the reference, or the check proves nothing:
        // the same pattern with the slots empty must differ clearly.
        let mut silent = Engine::new(sr);
        silent.set_pattern(&p);
        silent.set_master_fx(&fx);
        silent.set_transport(Transport::play(0.0, 0.0, tempo));
        silent.settle_effects();
        let without = render_engine(&mut silent, (seconds * sr) as usize, 128);
        let diff = pcm
            .left
            .iter()
            .zip(&without.left)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            diff > 0.05,
            "the sampled instruments are not heard in the reference (peak difference {diff})"
        );
        println!("sampled instruments' peak contribution: {diff:.3}");
    }
    let mut msg = pattern_message(&p);
    // The check starts the transport at this tempo.
    msg["tempo"] = json!(tempo);
    // The master chain, sent (settling) after the pattern.
    msg["effects"] = effects_message(&fx, true);
    std::fs::write(dir.join("pattern.json"), msg.to_string()).expect("write pattern");
    for (name, ch) in [("left.f32", &pcm.left), ("right.f32", &pcm.right)] {
        let bytes: Vec<u8> = ch.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(dir.join(name), bytes).expect("write pcm");
    }
    println!(
        "{} frames at {sr} Hz, tempo {tempo}, {} sampled instruments, in {}",
        pcm.left.len(),
        tracks.len() * library.is_some() as usize,
        dir.display()
    );
}
