//! Level matching: each instrument plays a standard phrase through the real engine
//! (`keyboardia_audio`), its integrated loudness is measured (ITU-R BS.1770: K-weighting, 400 ms
//! blocks with 75 % overlap, an absolute gate at -70 LUFS and a relative gate 10 dB under the
//! ungated level; one channel), and its manifest gain is set so that it measures
//! [`TARGET_LUFS`]. The same measurement checks the prepared library in the tests.

use std::collections::BTreeMap;

use keyboardia_audio::engine::{Engine, Pattern, StepLock, Track, Transport};
use keyboardia_audio::{Instrument as EngineInstrument, SampledInstrument};
use keyboardia_core::catalogue;
use keyboardia_core::manifest::Manifest;

use crate::Instrument;

/// The loudness every instrument's phrase is set to, in LUFS (at track volume
/// [`PHRASE_VOLUME`], before the master bus).
pub const TARGET_LUFS: f32 = -36.0;
/// The phrase's track volume: low enough that the engine's limiter never acts.
pub const PHRASE_VOLUME: f32 = 0.25;
const SR: f32 = 48_000.0;

/// The engine's instrument for a manifest and its zones' PCM (`pcm[i]` for zone `i`).
pub fn engine_instrument(m: &Manifest, pcm: &[Vec<i16>]) -> SampledInstrument {
    let by_file: BTreeMap<&str, &Vec<i16>> = m
        .zones
        .iter()
        .zip(pcm)
        .map(|(z, p)| (z.file.as_str(), p))
        .collect();
    let base = catalogue::lookup(&m.id).map_or(60, |e| e.base);
    SampledInstrument::from_manifest(m, base, |f| by_file.get(f).map(|p| (*p).clone()))
}

/// The standard phrase: melodic instruments play a broken chord around their base note (each
/// note two steps long), kit pieces a hit every two steps; 120 BPM, 16 steps, then a 1 s tail.
pub fn render_phrase(inst: &SampledInstrument) -> Vec<f32> {
    let mut e = Engine::new(SR);
    e.load_instrument(0, inst.clone());
    let steps: Vec<usize> = (0..16).step_by(2).collect();
    let mut t = Track::new(EngineInstrument::Sampled(0), &steps);
    t.volume = PHRASE_VOLUME;
    if !inst.one_shot {
        const NOTES: [i8; 8] = [0, 4, 7, 12, 7, 4, 0, -5];
        for (i, &k) in steps.iter().enumerate() {
            t.locks[k] = StepLock {
                pitch: Some(NOTES[i]),
                ..StepLock::default()
            };
            t.steps |= 1 << (k + 1);
            t.locks[k + 1] = StepLock {
                tie: true,
                ..StepLock::default()
            };
        }
    }
    let mut p = Pattern::default();
    p.push(t);
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    // 16 steps at 120 BPM are 2 s; stop after them and let the tail ring for 1 s.
    let frames = (3.0 * SR) as usize;
    let mut out = Vec::with_capacity(frames);
    let (mut l, mut r) = ([0.0f32; 128], [0.0f32; 128]);
    while out.len() < frames {
        if out.len() == (2.0 * SR) as usize {
            e.set_transport(Transport::STOPPED);
        }
        e.render(&mut l, &mut r);
        out.extend_from_slice(&l);
    }
    out
}

/// BS.1770 K-weighting at 48 kHz (a high shelf, then a high-pass), as two biquads.
fn k_weight(x: &[f32]) -> Vec<f64> {
    let stages: [([f64; 3], [f64; 3]); 2] = [
        (
            [
                1.535_124_859_586_97,
                -2.691_696_189_406_38,
                1.198_392_810_852_85,
            ],
            [1.0, -1.690_659_293_182_41, 0.732_480_774_215_85],
        ),
        (
            [1.0, -2.0, 1.0],
            [1.0, -1.990_047_454_833_98, 0.990_072_250_366_21],
        ),
    ];
    let mut y: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    for (b, a) in stages {
        let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
        for v in y.iter_mut() {
            let x0 = *v;
            let y0 = b[0] * x0 + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2;
            x2 = x1;
            x1 = x0;
            y2 = y1;
            y1 = y0;
            *v = y0;
        }
    }
    y
}

/// Integrated loudness (LUFS) of one channel at 48 kHz; -inf for silence.
pub fn loudness(x: &[f32]) -> f32 {
    let y = k_weight(x);
    let block = (0.4 * SR) as usize;
    let hop = block / 4;
    let mut blocks = Vec::new();
    let mut i = 0;
    while i + block <= y.len() {
        let ms = y[i..i + block].iter().map(|v| v * v).sum::<f64>() / block as f64;
        blocks.push(ms);
        i += hop;
    }
    let lufs = |ms: f64| -0.691 + 10.0 * ms.log10();
    let gated: Vec<f64> = blocks.into_iter().filter(|&m| lufs(m) > -70.0).collect();
    if gated.is_empty() {
        return f32::NEG_INFINITY;
    }
    let mean = gated.iter().sum::<f64>() / gated.len() as f64;
    let rel = lufs(mean) - 10.0;
    let kept: Vec<f64> = gated.into_iter().filter(|&m| lufs(m) > rel).collect();
    lufs(kept.iter().sum::<f64>() / kept.len() as f64) as f32
}

/// Measures every instrument and sets its gain; returns (loudness before, gain) per instrument.
pub fn match_levels(instruments: &mut [Instrument]) -> Vec<(f32, f32)> {
    instruments
        .iter_mut()
        .map(|(m, pcm)| {
            m.gain_db = 0.0;
            let measured = loudness(&render_phrase(&engine_instrument(m, pcm)));
            let gain = if measured.is_finite() {
                // Rounded to 0.1 dB, so manifests read well.
                ((TARGET_LUFS - measured).clamp(-24.0, 24.0) * 10.0).round() / 10.0
            } else {
                0.0
            };
            m.gain_db = gain;
            (measured, gain)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_scale_1k_sine_measures_about_minus_3_lufs() {
        // BS.1770: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS.
        let x: Vec<f32> = (0..96_000)
            .map(|i| (2.0 * std::f64::consts::PI * 997.0 * i as f64 / 48_000.0).sin() as f32)
            .collect();
        let l = loudness(&x);
        assert!((l + 3.01).abs() < 0.1, "{l}");
        assert_eq!(loudness(&[0.0; 48_000]), f32::NEG_INFINITY);
    }
}
