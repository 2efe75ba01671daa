//! Does each instrument sound like what a musician expects? Checked by its envelope (windowed
//! RMS over time) and spectrum (a plain DFT): kicks are low and punchy, hats high and short,
//! open hats ring longer than closed ones, synths play the note they are asked for, pads swell.

use keyboardia_audio::engine::{Pattern, Track};
use keyboardia_audio::offline::render;
use keyboardia_audio::{Drum, Instrument, Synth, CATALOG};

const SR: f32 = 48_000.0;

fn hit(i: Instrument, hold_steps: usize) -> Vec<f32> {
    let mut t = Track::new(i, &[0]);
    t.volume = 1.0;
    for k in 1..hold_steps {
        t.steps |= 1 << k;
        t.locks[k].tie = true;
    }
    let mut p = Pattern::default();
    p.push(t);
    // A 32-step loop at 120 BPM lasts 4 s: one hit (or one held note), then silence.
    let mut t16 = p.tracks[0];
    t16.step_count = 32;
    p.tracks[0] = t16;
    render(&p, 120.0, SR, (3.0 * SR) as usize, 128).left
}

fn ms(x: f32) -> usize {
    (x / 1000.0 * SR) as usize
}

fn rms(x: &[f32], from_ms: f32, to_ms: f32) -> f32 {
    let s = &x[ms(from_ms)..ms(to_ms)];
    (s.iter().map(|v| v * v).sum::<f32>() / s.len() as f32).sqrt()
}

/// Magnitudes of a Hann-windowed DFT of `x[start..start+n]` at `bins` frequencies.
fn spectrum(x: &[f32], start: usize, n: usize, freqs: &[f32]) -> Vec<f32> {
    freqs
        .iter()
        .map(|&f| {
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for i in 0..n {
                let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos();
                let v = x[start + i] as f64 * w;
                let ph = std::f64::consts::TAU * f as f64 * i as f64 / SR as f64;
                re += v * ph.cos();
                im -= v * ph.sin();
            }
            (re * re + im * im).sqrt() as f32
        })
        .collect()
}

fn grid(lo: f32, hi: f32, step: f32) -> Vec<f32> {
    let mut v = Vec::new();
    let mut f = lo;
    while f <= hi {
        v.push(f);
        f += step;
    }
    v
}

/// Spectral centroid (Hz) of the first `len_ms` after `from_ms`.
fn centroid(x: &[f32], from_ms: f32, len_ms: f32) -> f32 {
    let freqs = grid(40.0, 16_000.0, 40.0);
    let mag = spectrum(x, ms(from_ms), ms(len_ms), &freqs);
    let total: f32 = mag.iter().sum();
    freqs.iter().zip(&mag).map(|(f, m)| f * m).sum::<f32>() / total
}

/// The strongest frequency between `lo` and `hi`.
fn dominant(x: &[f32], from_ms: f32, len_ms: f32, lo: f32, hi: f32) -> f32 {
    let freqs = grid(lo, hi, 1.0);
    let mag = spectrum(x, ms(from_ms), ms(len_ms), &freqs);
    let i = mag
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    freqs[i]
}

fn drum(d: Drum) -> Vec<f32> {
    hit(Instrument::Drum(d), 1)
}

#[test]
fn every_instrument_sounds_and_stays_in_range() {
    for e in CATALOG {
        let x = hit(e.instrument, 4);
        let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(x.iter().all(|v| v.is_finite()), "{}", e.id);
        assert!(peak > 0.02, "{} is (nearly) silent: peak {peak}", e.id);
        assert!(peak < 1.0, "{} clips: {peak}", e.id);
        // Starts silent (nothing before the hit) and ends silent (voices are freed).
        assert!(rms(&x, 2900.0, 3000.0) < 1e-3, "{} never stops", e.id);
    }
}

#[test]
fn kicks_are_low_and_punchy() {
    let k = drum(Drum::Kick);
    assert!(
        centroid(&k, 0.0, 80.0) < 300.0,
        "kick centroid {}",
        centroid(&k, 0.0, 80.0)
    );
    assert!(rms(&k, 0.0, 50.0) > 5.0 * rms(&k, 400.0, 450.0));
    let f = dominant(&k, 150.0, 200.0, 30.0, 200.0);
    assert!((40.0..80.0).contains(&f), "kick body at {f} Hz");
    let k808 = drum(Drum::Kick808);
    // The 808 booms longer than the punchy kick.
    let tail = |x: &[f32]| rms(x, 400.0, 500.0) / rms(x, 0.0, 50.0);
    assert!(
        tail(&k808) > 2.0 * tail(&k),
        "808 tail {} vs kick {}",
        tail(&k808),
        tail(&k)
    );
}

#[test]
fn snare_and_clap_sit_in_the_middle() {
    let s = drum(Drum::Snare);
    let c = centroid(&s, 0.0, 80.0);
    assert!((800.0..6000.0).contains(&c), "snare centroid {c}");
    assert!(rms(&s, 400.0, 450.0) < 0.05 * rms(&s, 0.0, 50.0));
    let cl = drum(Drum::Clap);
    let c = centroid(&cl, 0.0, 100.0);
    assert!((600.0..4000.0).contains(&c), "clap centroid {c}");
}

#[test]
fn hats_are_high_and_open_rings_longer_than_closed() {
    let ch = drum(Drum::HatClosed);
    let oh = drum(Drum::HatOpen);
    for (name, x) in [("closed", &ch), ("open", &oh)] {
        let c = centroid(x, 0.0, 40.0);
        assert!(c > 5000.0, "{name} hat centroid {c}");
    }
    assert!(
        rms(&ch, 200.0, 250.0) < 0.01 * rms(&ch, 0.0, 20.0),
        "closed hat is short"
    );
    assert!(
        rms(&oh, 200.0, 250.0) > 0.1 * rms(&oh, 0.0, 20.0),
        "open hat rings"
    );
    let sh = drum(Drum::Shaker);
    assert!(centroid(&sh, 0.0, 60.0) > 4000.0);
}

#[test]
fn toms_are_tuned_low_to_high_and_small_percussion_is_short_and_pitched() {
    let f = |d| dominant(&drum(d), 60.0, 120.0, 50.0, 400.0);
    let (l, m, h) = (f(Drum::TomLow), f(Drum::TomMid), f(Drum::TomHigh));
    assert!(l < m && m < h, "toms {l} {m} {h}");
    let rim = drum(Drum::Rim);
    assert!(
        rms(&rim, 60.0, 100.0) < 0.01 * rms(&rim, 0.0, 10.0),
        "rim is a click"
    );
    let cl = dominant(&drum(Drum::Clave), 0.0, 30.0, 1000.0, 5000.0);
    assert!((cl - 2500.0).abs() < 60.0, "clave at {cl}");
    let cb = dominant(&drum(Drum::Cowbell), 0.0, 80.0, 300.0, 1500.0);
    assert!(
        (cb - 587.0).abs() < 30.0 || (cb - 845.0).abs() < 30.0,
        "cowbell at {cb}"
    );
}

#[test]
fn synths_play_the_note_they_are_given() {
    let c2 = 65.41;
    let c4 = 261.63;
    for (s, expect) in [
        (Synth::SubBass, c2),
        (Synth::Lead, c4),
        (Synth::Pluck, c4),
        (Synth::Keys, c4),
        (Synth::Organ, c4),
        (Synth::Pad, c4),
    ] {
        let x = hit(Instrument::Synth(s), 8);
        let f = dominant(&x, 400.0, 400.0, 25.0, 1200.0);
        assert!(
            (f - expect).abs() / expect < 0.03,
            "{s:?} at {f} Hz, want {expect}"
        );
    }
    // The bass has a sub-octave: its strongest partial is C1 or C2.
    let f = dominant(
        &hit(Instrument::Synth(Synth::Bass), 8),
        200.0,
        400.0,
        25.0,
        400.0,
    );
    assert!(
        (f - c2).abs() < 3.0 || (f - c2 / 2.0).abs() < 2.0,
        "bass at {f}"
    );
    // A pitch lock moves the note: +12 semitones doubles it.
    let mut t = Track::new(Instrument::Synth(Synth::SubBass), &[0]);
    t.locks[0].pitch = Some(12);
    t.volume = 1.0;
    let mut p = Pattern::default();
    p.push(t);
    let x = render(&p, 60.0, SR, SR as usize, 128).left;
    let f = dominant(&x, 50.0, 200.0, 25.0, 400.0);
    assert!((f - 2.0 * c2).abs() < 3.0, "locked +12 at {f}");
}

#[test]
fn envelopes_have_their_shapes() {
    let pad = hit(Instrument::Synth(Synth::Pad), 8);
    assert!(
        rms(&pad, 0.0, 30.0) < 0.3 * rms(&pad, 400.0, 500.0),
        "pads swell in"
    );
    let pluck = hit(Instrument::Synth(Synth::Pluck), 8);
    assert!(
        rms(&pluck, 700.0, 800.0) < 0.2 * rms(&pluck, 10.0, 60.0),
        "plucks fade"
    );
    let organ = hit(Instrument::Synth(Synth::Organ), 8);
    let ratio = rms(&organ, 700.0, 800.0) / rms(&organ, 100.0, 200.0);
    assert!((0.8..1.2).contains(&ratio), "organs sustain: {ratio}");
    // Held notes release after the gate: 8 steps at 120 BPM = 1 s.
    assert!(rms(&organ, 1300.0, 1400.0) < 0.01 * rms(&organ, 100.0, 200.0));
}

#[test]
#[ignore]
fn print_stats() {
    for e in CATALOG {
        let x = hit(e.instrument, 4);
        println!(
            "{:22} peak {:.3} rms0-50 {:.4} rms400-450 {:.5} rms2900 {:.6} centroid {:.0}",
            e.id,
            x.iter().fold(0.0f32, |m, v| m.max(v.abs())),
            rms(&x, 0.0, 50.0),
            rms(&x, 400.0, 450.0),
            rms(&x, 2900.0, 3000.0),
            centroid(&x, 0.0, 80.0)
        );
    }
}

#[test]
fn fx_have_their_shapes() {
    let zap = drum(Drum::Zap);
    let early = dominant(&zap, 2.0, 10.0, 100.0, 4000.0);
    let late = dominant(&zap, 80.0, 60.0, 30.0, 1000.0);
    assert!(
        early > 4.0 * late,
        "the zap dives: {early} Hz then {late} Hz"
    );
    let riser = drum(Drum::Riser);
    assert!(
        rms(&riser, 300.0, 400.0) > 2.0 * rms(&riser, 0.0, 50.0),
        "the riser swells"
    );
    let blip = drum(Drum::Blip);
    assert!(
        rms(&blip, 200.0, 250.0) < 0.01 * rms(&blip, 0.0, 20.0),
        "the blip is short"
    );
}
