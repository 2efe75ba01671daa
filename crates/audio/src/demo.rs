//! Reference patterns shared by the tests, the benchmarks and the browser check.

use crate::engine::{Pattern, Track};
use crate::instrument::{Drum, Instrument, Synth};

/// A busy 16-track pattern touching every kind of voice, parameter lock, swing and an
/// assortment of step counts (polyrhythm).
pub fn busy_pattern() -> Pattern {
    use Drum::*;
    let kinds = [
        Instrument::Drum(Kick),
        Instrument::Drum(Snare),
        Instrument::Drum(HatClosed),
        Instrument::Drum(HatOpen),
        Instrument::Drum(Clap),
        Instrument::Drum(TomLow),
        Instrument::Drum(Rim),
        Instrument::Drum(Shaker),
        Instrument::Synth(Synth::Bass),
        Instrument::Synth(Synth::Acid),
        Instrument::Synth(Synth::Lead),
        Instrument::Synth(Synth::Pad),
        Instrument::Synth(Synth::Keys),
        Instrument::Synth(Synth::Pluck),
        Instrument::Synth(Synth::Organ),
        Instrument::Drum(Cowbell),
    ];
    let counts = [16, 16, 16, 8, 12, 7, 5, 16, 16, 15, 32, 64, 9, 11, 13, 3];
    let mut p = Pattern {
        swing: 20,
        ..Pattern::default()
    };
    for (i, (k, c)) in kinds.iter().zip(counts).enumerate() {
        let steps: Vec<usize> = (0..c as usize).filter(|s| (s * 7 + i) % 3 != 0).collect();
        let mut t = Track::new(*k, &steps);
        t.step_count = c;
        t.volume = 0.9;
        t.pan = (i as f32 / 7.5) - 1.0;
        t.swing = (i * 5) as u8;
        t.transpose = (i as i8 % 5) - 2;
        t.locks[2].pitch = Some(7);
        t.locks[3].volume = Some(0.4);
        t.locks[4].tie = true;
        p.push(t);
    }
    p
}

/// Every effect of the master chain on, at settings a producer might use: the reference for
/// the tests, the benchmarks and the browser check of the effects.
pub fn all_effects() -> crate::effects::MasterFx {
    use crate::effects::{CompParams, Division, Feel, MasterFx, ReverbParams};
    MasterFx {
        bypass: false,
        reverb_mix: 0.5,
        reverb: ReverbParams {
            size: 0.7,
            decay: 2.5,
            damping: 0.5,
            predelay_ms: 15.0,
        },
        delay_mix: 0.4,
        delay_division: Division::Eighth,
        delay_feel: Feel::Dotted,
        delay_feedback: 0.5,
        delay_tone: 0.4,
        delay_ping_pong: true,
        chorus_mix: 0.5,
        chorus_rate: 0.8,
        chorus_depth: 0.6,
        drive: 0.3,
        eq: [3.0, -2.0, 4.0],
        comp: CompParams {
            threshold_db: -18.0,
            ratio: 4.0,
            attack_ms: 5.0,
            release_ms: 120.0,
            makeup_db: 6.0,
        },
    }
}

/// [`busy_pattern`] with every track's sends, drive and filter on (the filter modes
/// alternating, a few steps with cutoff locks).
pub fn busy_pattern_with_effects() -> Pattern {
    use crate::effects::{FilterMode, TrackFx};
    let mut p = busy_pattern();
    for (i, t) in p.tracks[..p.track_count].iter_mut().enumerate() {
        t.fx = TrackFx {
            send_reverb: 0.2 + 0.05 * (i % 5) as f32,
            send_delay: 0.1 * (i % 4) as f32,
            filter: [
                FilterMode::LowPass,
                FilterMode::HighPass,
                FilterMode::BandPass,
            ][i % 3],
            cutoff: 400.0 + 300.0 * i as f32,
            resonance: 0.3,
            drive: 0.2,
        };
        t.locks[1].cutoff = Some(2500.0);
        t.locks[5].cutoff = Some(300.0);
    }
    p
}
