//! Musical rules shared by every host and the browser: the session's key and scale (and snapping
//! a pitch into it), and the pattern tools (rotate, shift within the scale, reverse, invert,
//! mirror, euclidean fill, seeded randomize). Each tool is a pure function of a track and the
//! session, so every host computes the same result and it travels as one edit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Invalid, Lock, SessionState, Steps, Track};

/// A scale: which of the twelve semitones above the root belong to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scale {
    Major,
    NaturalMinor,
    Dorian,
    Phrygian,
    Lydian,
    Mixolydian,
    Locrian,
    HarmonicMinor,
    MelodicMinor,
    MajorPentatonic,
    MinorPentatonic,
    Blues,
    #[default]
    Chromatic,
}

impl Scale {
    pub const ALL: [Scale; 13] = [
        Scale::Major,
        Scale::NaturalMinor,
        Scale::Dorian,
        Scale::Phrygian,
        Scale::Lydian,
        Scale::Mixolydian,
        Scale::Locrian,
        Scale::HarmonicMinor,
        Scale::MelodicMinor,
        Scale::MajorPentatonic,
        Scale::MinorPentatonic,
        Scale::Blues,
        Scale::Chromatic,
    ];

    /// Semitones above the root.
    pub fn intervals(self) -> &'static [u8] {
        match self {
            Scale::Major => &[0, 2, 4, 5, 7, 9, 11],
            Scale::NaturalMinor => &[0, 2, 3, 5, 7, 8, 10],
            Scale::Dorian => &[0, 2, 3, 5, 7, 9, 10],
            Scale::Phrygian => &[0, 1, 3, 5, 7, 8, 10],
            Scale::Lydian => &[0, 2, 4, 6, 7, 9, 11],
            Scale::Mixolydian => &[0, 2, 4, 5, 7, 9, 10],
            Scale::Locrian => &[0, 1, 3, 5, 6, 8, 10],
            Scale::HarmonicMinor => &[0, 2, 3, 5, 7, 8, 11],
            Scale::MelodicMinor => &[0, 2, 3, 5, 7, 9, 11],
            Scale::MajorPentatonic => &[0, 2, 4, 7, 9],
            Scale::MinorPentatonic => &[0, 3, 5, 7, 10],
            Scale::Blues => &[0, 3, 5, 6, 7, 10],
            Scale::Chromatic => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scale::Major => "Major",
            Scale::NaturalMinor => "Natural minor",
            Scale::Dorian => "Dorian",
            Scale::Phrygian => "Phrygian",
            Scale::Lydian => "Lydian",
            Scale::Mixolydian => "Mixolydian",
            Scale::Locrian => "Locrian",
            Scale::HarmonicMinor => "Harmonic minor",
            Scale::MelodicMinor => "Melodic minor",
            Scale::MajorPentatonic => "Major pentatonic",
            Scale::MinorPentatonic => "Minor pentatonic",
            Scale::Blues => "Blues",
            Scale::Chromatic => "Chromatic",
        }
    }
}

/// The session's key: a root (0 = C .. 11 = B) and a scale. The default (C chromatic) leaves
/// every note as it is, so sessions from before keys existed play unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Key {
    pub root: u8,
    pub scale: Scale,
    /// Key lock off: pitch edits may leave the scale (on by default: they snap into it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub free: bool,
}

impl Key {
    pub fn is_default(&self) -> bool {
        *self == Key::default()
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if self.root > 11 {
            return Err(Invalid(format!(
                "key root must be 0 (C) to 11 (B), not {}",
                self.root
            )));
        }
        Ok(())
    }

    /// Whether MIDI note `note` is in this key.
    pub fn contains(&self, note: i32) -> bool {
        let degree = (note - self.root as i32).rem_euclid(12) as u8;
        self.scale.intervals().contains(&degree)
    }

    /// The note of this key nearest to `note` (the lower one on a tie).
    pub fn snap(&self, note: i32) -> i32 {
        (0..=6)
            .flat_map(|d| [note - d, note + d])
            .find(|&n| self.contains(n))
            .unwrap_or(note)
    }

    /// The note `steps` scale degrees above (or below) `note`, which is first snapped.
    pub fn step(&self, note: i32, steps: i32) -> i32 {
        let mut n = self.snap(note);
        for _ in 0..steps.unsigned_abs() {
            n += steps.signum();
            while !self.contains(n) {
                n += steps.signum();
            }
        }
        n
    }
}

/// The MIDI note a track's step plays before its pitch lock: the instrument's base note plus
/// the track's transpose (60 for an instrument the catalogue does not know).
pub fn track_base(t: &Track) -> i32 {
    let base = crate::catalogue::lookup(&t.instrument).map_or(60, |e| e.base) as i32;
    base + t.transpose as i32
}

/// Whether a track plays pitches (not a drum or kit piece): the ones key lock applies to.
pub fn is_melodic(t: &Track) -> bool {
    use crate::catalogue::Category;
    match crate::catalogue::lookup(&t.instrument) {
        Some(e) => e.kit.is_none() && !matches!(e.category, Category::Drums | Category::Fx),
        None => !t.instrument.starts_with("recording/"),
    }
}

/// Moves a pitch lock into `key` for track `t` (the step's sounding note is snapped; the lock
/// stays within the allowed range).
pub fn snap_pitch(key: &Key, t: &Track, pitch: i8) -> i8 {
    let base = track_base(t);
    let snapped = key.snap(base + pitch as i32) - base;
    snapped.clamp(
        crate::limits::PITCH_MIN as i32,
        crate::limits::PITCH_MAX as i32,
    ) as i8
}

/// A pattern tool. Every tool works within the track's loop (`0..step_count`); steps beyond it
/// keep their data.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum PatternOp {
    /// Every step (and its lock) one step earlier; the first wraps to the end.
    RotateLeft,
    RotateRight,
    /// Every active step's pitch one scale degree up (down).
    ShiftUp,
    ShiftDown,
    /// The loop played backwards.
    Reverse,
    /// Active steps off, inactive on (new steps have no lock).
    Invert,
    /// The first half mirrored onto the second.
    Mirror,
    /// `hits` onsets spread as evenly as possible over the loop (Bjorklund), rotated.
    Euclid {
        hits: u16,
        rotation: u16,
    },
    /// Random steps (about `density` percent on) with pitches within the key, from `seed`: the
    /// same seed gives the same pattern on every host.
    Randomize {
        seed: u32,
        density: u8,
    },
}

/// The steps and locks `op` makes of track `t` in session `s`.
pub fn transform(
    s: &SessionState,
    t: &Track,
    op: PatternOp,
) -> Result<(Steps, BTreeMap<u8, Lock>), Invalid> {
    let n = t.step_count as usize;
    let get = |i: usize| (t.steps.get(i), t.locks.get(&(i as u8)).copied());
    // Start from the whole track; rewrite the loop's slots.
    let mut steps = t.steps;
    let mut locks = t.locks.clone();
    let mut put = |i: usize, (on, lock): (bool, Option<Lock>)| {
        steps.set(i, on);
        match lock {
            Some(l) if !l.is_empty() => {
                locks.insert(i as u8, l);
            }
            _ => {
                locks.remove(&(i as u8));
            }
        }
    };
    let old: Vec<(bool, Option<Lock>)> = (0..n).map(get).collect();
    match op {
        PatternOp::RotateLeft => (0..n).for_each(|i| put(i, old[(i + 1) % n])),
        PatternOp::RotateRight => (0..n).for_each(|i| put(i, old[(i + n - 1) % n])),
        PatternOp::Reverse => (0..n).for_each(|i| put(i, old[n - 1 - i])),
        PatternOp::Mirror => (n / 2..n).for_each(|i| put(i, old[n - 1 - i])),
        PatternOp::Invert => (0..n).for_each(|i| {
            let (on, lock) = old[i];
            put(i, (!on, if on { None } else { lock }));
        }),
        PatternOp::ShiftUp | PatternOp::ShiftDown => {
            let by = if op == PatternOp::ShiftUp { 1 } else { -1 };
            let base = track_base(t);
            for (i, &(on, lock)) in old.iter().enumerate() {
                if !on {
                    continue;
                }
                let mut l = lock.unwrap_or_default();
                let note = base + l.pitch.unwrap_or(0) as i32;
                let moved = s.key.step(note, by) - base;
                if !(crate::limits::PITCH_MIN as i32..=crate::limits::PITCH_MAX as i32)
                    .contains(&moved)
                {
                    return Err(Invalid(format!(
                        "shifting would take step {i} beyond the pitch range"
                    )));
                }
                l.pitch = (moved != 0).then_some(moved as i8);
                // A chord moves as a whole, each note one degree.
                let mut chord = [0i64; crate::limits::CHORD_MAX_NOTES];
                for (c, n) in chord.iter_mut().zip(l.chord.iter()) {
                    *c = (s.key.step(base + n as i32, by) - base) as i64;
                }
                l.chord = crate::model::Chord::new(&chord[..l.chord.len()]).map_err(|_| {
                    Invalid(format!(
                        "shifting would take a chord note of step {i} beyond the pitch range"
                    ))
                })?;
                put(i, (on, Some(l.normalized())));
            }
        }
        PatternOp::Euclid { hits, rotation } => {
            if hits as usize > n {
                return Err(Invalid(format!(
                    "at most {n} hits over this track's {n} steps, not {hits}"
                )));
            }
            for (i, &(_, lock)) in old.iter().enumerate() {
                let j = (i + n - (rotation as usize % n.max(1))) % n;
                // Bresenham's spread gives the Bjorklund rhythm (up to rotation).
                let on = hits > 0 && (j * hits as usize) % n < hits as usize;
                put(i, (on, lock.filter(|_| on)));
            }
        }
        PatternOp::Randomize { seed, density } => {
            if density > 100 {
                return Err(Invalid(format!(
                    "density is a percentage (0-100), not {density}"
                )));
            }
            let mut rng = seed as u64 ^ 0x9e37_79b9_7f4a_7c15;
            let mut next = move || {
                // xorshift64*: tiny, and the same everywhere.
                rng ^= rng >> 12;
                rng ^= rng << 25;
                rng ^= rng >> 27;
                rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32
            };
            let melodic = is_melodic(t);
            let base = track_base(t);
            for i in 0..n {
                let on = (next() % 100) < density as u64;
                let lock = if on && melodic {
                    let offset = (next() % 13) as i32 - 6;
                    let p = s.key.snap(base + offset) - base;
                    (p != 0).then(|| Lock {
                        pitch: Some(p as i8),
                        ..Lock::default()
                    })
                } else {
                    None
                };
                put(i, (on, lock));
            }
        }
    }
    Ok((steps, locks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(steps: &[usize], n: u16) -> Track {
        let mut t = Track::new("t", "T", "synth/lead");
        t.steps = Steps::from_indices(steps);
        t.step_count = n;
        t
    }

    fn on(steps: &Steps, n: usize) -> Vec<usize> {
        (0..n).filter(|&i| steps.get(i)).collect()
    }

    #[test]
    fn keys_snap_and_step_within_the_scale() {
        let c_major = Key {
            root: 0,
            scale: Scale::Major,
            free: false,
        };
        assert!(c_major.contains(60) && !c_major.contains(61));
        assert_eq!(c_major.snap(61), 60);
        assert_eq!(c_major.snap(66), 65, "a tie goes down");
        assert_eq!(c_major.step(60, 1), 62);
        assert_eq!(c_major.step(64, 1), 65);
        assert_eq!(c_major.step(60, -1), 59);
        let a_minor_penta = Key {
            root: 9,
            scale: Scale::MinorPentatonic,
            free: false,
        };
        assert_eq!(a_minor_penta.step(57, 1), 60);
        assert!(Key::default().contains(61), "chromatic holds everything");
        for s in Scale::ALL {
            assert_eq!(s.intervals()[0], 0, "{s:?} starts at the root");
        }
    }

    #[test]
    fn tools_stay_within_the_loop() {
        let s = SessionState::starter();
        let mut t = track(&[0, 1, 5, 20], 8);
        t.locks.insert(
            1,
            Lock {
                pitch: Some(3),
                ..Lock::default()
            },
        );
        let (st, lk) = transform(&s, &t, PatternOp::RotateLeft).unwrap();
        assert_eq!(
            on(&st, 24),
            vec![0, 4, 7, 20],
            "step 20 is outside the loop"
        );
        assert_eq!(lk[&0].pitch, Some(3), "the lock moves with its step");
        let (st, _) = transform(&s, &t, PatternOp::RotateRight).unwrap();
        assert_eq!(on(&st, 8), vec![1, 2, 6]);
        let (st, _) = transform(&s, &t, PatternOp::Reverse).unwrap();
        assert_eq!(on(&st, 8), vec![2, 6, 7]);
        let (st, lk) = transform(&s, &t, PatternOp::Invert).unwrap();
        assert_eq!(on(&st, 8), vec![2, 3, 4, 6, 7]);
        assert!(!lk.contains_key(&1), "an inverted-off step loses its lock");
        let (st, _) = transform(&s, &t, PatternOp::Mirror).unwrap();
        assert_eq!(on(&st, 8), vec![0, 1, 6, 7]);
    }

    #[test]
    fn euclid_spreads_hits_evenly() {
        let s = SessionState::starter();
        let t = track(&[], 8);
        let (st, _) = transform(
            &s,
            &t,
            PatternOp::Euclid {
                hits: 3,
                rotation: 0,
            },
        )
        .unwrap();
        assert_eq!(on(&st, 8).len(), 3);
        let gaps: Vec<usize> = {
            let o = on(&st, 8);
            (0..3).map(|i| (o[(i + 1) % 3] + 8 - o[i]) % 8).collect()
        };
        assert!(gaps.iter().all(|&g| g == 2 || g == 3), "{gaps:?}");
        let t16 = track(&[], 16);
        let (st, _) = transform(
            &s,
            &t16,
            PatternOp::Euclid {
                hits: 4,
                rotation: 1,
            },
        )
        .unwrap();
        assert_eq!(on(&st, 16), vec![1, 5, 9, 13]);
        assert!(transform(
            &s,
            &t,
            PatternOp::Euclid {
                hits: 9,
                rotation: 0
            }
        )
        .is_err());
    }

    #[test]
    fn shifting_and_randomizing_keep_to_the_key() {
        let mut s = SessionState::starter();
        s.key = Key {
            root: 0,
            scale: Scale::Major,
            free: false,
        };
        let t = track(&[0, 4], 16);
        let base = track_base(&t);
        let (_, lk) = transform(&s, &t, PatternOp::ShiftUp).unwrap();
        let note = base + lk[&0].pitch.unwrap() as i32;
        assert_eq!(note, s.key.step(base, 1));
        let a = transform(
            &s,
            &t,
            PatternOp::Randomize {
                seed: 7,
                density: 50,
            },
        )
        .unwrap();
        let b = transform(
            &s,
            &t,
            PatternOp::Randomize {
                seed: 7,
                density: 50,
            },
        )
        .unwrap();
        assert_eq!(a, b, "the same seed, the same pattern");
        for (i, l) in &a.1 {
            assert!(
                s.key.contains(base + l.pitch.unwrap_or(0) as i32),
                "step {i}"
            );
        }
        let c = transform(
            &s,
            &t,
            PatternOp::Randomize {
                seed: 8,
                density: 50,
            },
        )
        .unwrap();
        assert_ne!(a, c);
    }
}
