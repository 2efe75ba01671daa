//! Renders the sampled-instrument speed test's pattern (16 busy tracks of the prepared library,
//! as in `tests/library.rs`) once, for profiling the engine:
//! `valgrind --tool=callgrind --toggle-collect='*Engine::render*' \
//!  target/release/examples/sampled_render [seconds] [pitched]`.

use std::collections::BTreeMap;

use keyboardia_audio::engine::{Engine, Pattern, Track, Transport};
use keyboardia_audio::sampler::decode_flac;
use keyboardia_audio::Instrument;
use keyboardia_core::manifest::Manifest;

const SR: f32 = 48_000.0;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let pitched_drums = args.get(2).is_some_and(|s| s == "pitched");
    let (lib, _) = keyboardia_samples::default_dirs();
    let ids = [
        "kit-standard/kick",
        "kit-standard/snare",
        "kit-standard/hat-closed",
        "kit-standard/hat-open",
        "kit-808/clap",
        "kit-808/tom-low",
        "kit-standard/ride",
        "sampled/piano",
        "sampled/bass-finger",
        "sampled/pad-warm",
        "sampled/strings",
        "sampled/guitar-nylon",
        "sampled/epiano",
        "sampled/brass",
        "sampled/marimba",
        "sampled/flute",
    ];
    let mut e = Engine::new(SR);
    let mut p = Pattern::default();
    for (i, id) in ids.iter().enumerate() {
        let dir = lib.join(id);
        let m = Manifest::from_json(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
            .expect("a manifest");
        let mut files: BTreeMap<String, Vec<i16>> = BTreeMap::new();
        let pcm: Vec<Vec<i16>> = m
            .zones
            .iter()
            .map(|z| {
                files
                    .entry(z.file.clone())
                    .or_insert_with(|| {
                        decode_flac(&std::fs::read(dir.join(&z.file)).expect("a zone file"))
                            .expect("FLAC")
                            .0
                    })
                    .clone()
            })
            .collect();
        e.load_instrument(i, keyboardia_samples::level::engine_instrument(&m, &pcm));
        let mut t = Track::new(Instrument::Sampled(i as u8), &(0..16).collect::<Vec<_>>());
        if !id.starts_with("kit-") || pitched_drums {
            for k in 0..16 {
                t.locks[k].pitch = Some([0, 3, 7, 10, 12, 7, 5, 3][(k + i) % 8]);
            }
        }
        p.push(t);
    }
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    let (mut l, mut r) = ([0.0f32; 128], [0.0f32; 128]);
    let mut sum = 0.0f64;
    let t0 = std::time::Instant::now();
    for _ in 0..(seconds * SR / 128.0) as usize {
        e.render(&mut l, &mut r);
        sum += l.iter().chain(&r).map(|v| v.abs() as f64).sum::<f64>();
    }
    println!(
        "{seconds} s in {:.0} ms (checksum {sum:.6})",
        t0.elapsed().as_secs_f64() * 1000.0
    );
}
