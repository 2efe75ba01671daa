//! Reading a prepared instrument back, and the benchmark of 16 busy sampled tracks (measured by
//! `tests/library.rs`'s speed test and profiled with `examples/sampled_render.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use keyboardia_audio::engine::{Pattern, Track};
use keyboardia_audio::sampler::decode_flac;
use keyboardia_audio::{Instrument, SampledInstrument};
use keyboardia_core::manifest::Manifest;

/// A prepared instrument of the library at `lib`: its manifest and the PCM of each zone (zones
/// sharing a file each get a copy), checked against the manifest's rate and length.
pub fn load(lib: &Path, id: &str) -> Result<(Manifest, Vec<Vec<i16>>)> {
    let dir = lib.join(id);
    let path = dir.join("manifest.json");
    let m = Manifest::from_json(&std::fs::read(&path).with_context(|| path.display().to_string())?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut files: BTreeMap<&str, Vec<i16>> = BTreeMap::new();
    let mut pcm = Vec::with_capacity(m.zones.len());
    for z in &m.zones {
        if !files.contains_key(z.file.as_str()) {
            let bytes =
                std::fs::read(dir.join(&z.file)).with_context(|| format!("{id}/{}", z.file))?;
            let (p, rate) =
                decode_flac(&bytes).map_err(|e| anyhow::anyhow!("{id}/{}: {e}", z.file))?;
            if rate != z.sample_rate || p.len() != z.frames as usize {
                bail!(
                    "{id}/{}: {} frames at {rate} Hz, the manifest says {} at {}",
                    z.file,
                    p.len(),
                    z.frames,
                    z.sample_rate
                );
            }
            files.insert(&z.file, p);
        }
        pcm.push(files[z.file.as_str()].clone());
    }
    Ok((m, pcm))
}

/// The engine's instrument for a prepared instrument of the library at `lib`.
pub fn engine_instrument(lib: &Path, id: &str) -> Result<SampledInstrument> {
    let (m, pcm) = load(lib, id)?;
    Ok(crate::level::engine_instrument(&m, &pcm))
}

/// The 16 instruments of the busy sampled benchmark, one per track (slot = position).
pub const BUSY_SAMPLED: [&str; 16] = [
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

/// The busy sampled pattern: track `i` plays [`BUSY_SAMPLED`]`[i]` (engine slot `i`) on every
/// one of 16 steps; melodic tracks play a line, kit pieces their own pitch unless
/// `pitched_drums`.
pub fn busy_sampled_pattern(pitched_drums: bool) -> Pattern {
    let mut p = Pattern::default();
    for (i, id) in BUSY_SAMPLED.iter().enumerate() {
        let mut t = Track::new(Instrument::Sampled(i as u8), &(0..16).collect::<Vec<_>>());
        if !id.starts_with("kit-") || pitched_drums {
            for k in 0..16 {
                t.locks[k].pitch = Some([0, 3, 7, 10, 12, 7, 5, 3][(k + i) % 8]);
            }
        }
        p.push(t);
    }
    p
}
