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
