//! Where each sampled catalogue instrument comes from: a preset of MuseScore_General
//! (bank:program) for melodic instruments, a kit preset and General MIDI drum note for kit
//! pieces, the recordings of Sonic Pi's pack for the acoustic kit ([`crate::sonic_pi`]), and
//! how much of it to keep.

use keyboardia_core::catalogue::{KITS, KIT_PIECES};

/// Bump whenever a recipe, the trimming or the encoding changes, or the engine's sampler
/// renders differently (level matching measures through it): the stamp then no longer matches
/// and the next `prepare` rebuilds the library.
pub const RECIPE_VERSION: u32 = 11;

#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A melodic preset.
    Preset {
        bank: u16,
        program: u16,
        /// Velocity layers to keep (1..=3).
        layers: usize,
        /// Least distance in semitones between kept roots.
        spacing: u8,
        /// Unlooped samples are cut (with a fade) after this many seconds.
        max_seconds: f32,
    },
    /// One drum of a kit preset (bank 128).
    KitPiece { program: u16, note: u8 },
    /// One drum recorded at one or more strengths, softest first: files of Sonic Pi's pack.
    Recorded { files: &'static [&'static str] },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    pub id: String,
    pub source: Source,
}

/// The acoustic kit's pieces → their recordings in Sonic Pi's pack, softest first.
pub const RECORDED: &[(&str, &[&str])] = &[
    ("kick", &["drum_bass_soft.flac", "drum_bass_hard.flac"]),
    ("snare", &["drum_snare_soft.flac", "drum_snare_hard.flac"]),
    ("hat-closed", &["drum_cymbal_closed.flac"]),
    ("hat-pedal", &["drum_cymbal_pedal.flac"]),
    ("hat-open", &["drum_cymbal_open.flac"]),
    (
        "tom-low",
        &["drum_tom_lo_soft.flac", "drum_tom_lo_hard.flac"],
    ),
    (
        "tom-mid",
        &["drum_tom_mid_soft.flac", "drum_tom_mid_hard.flac"],
    ),
    (
        "tom-high",
        &["drum_tom_hi_soft.flac", "drum_tom_hi_hard.flac"],
    ),
    ("crash", &["drum_cymbal_soft.flac", "drum_cymbal_hard.flac"]),
    ("cowbell", &["drum_cowbell.flac"]),
];

/// The kit whose pieces are [`RECORDED`].
pub const RECORDED_KIT: &str = "acoustic";

/// Every file of Sonic Pi's pack that a recipe uses.
pub fn recorded_files() -> Vec<&'static str> {
    RECORDED
        .iter()
        .flat_map(|(_, f)| f.iter().copied())
        .collect()
}

/// Kit id fragment → kit preset program (bank 128).
const KIT_PROGRAMS: &[(&str, u16)] = &[
    ("standard", 0),
    ("power", 16),
    ("electronic", 24),
    ("808", 25),
    ("brush", 40),
];

/// Kit piece → General MIDI drum note.
const PIECE_NOTES: &[(&str, u8)] = &[
    ("kick", 36),
    ("snare", 38),
    ("rim", 37),
    ("clap", 39),
    ("hat-closed", 42),
    ("hat-pedal", 44),
    ("hat-open", 46),
    ("tom-low", 45),
    ("tom-mid", 47),
    ("tom-high", 50),
    ("crash", 49),
    ("ride", 51),
    ("cowbell", 56),
];

/// Melodic instrument → (program in bank 0, velocity layers, root spacing, seconds kept).
const MELODIC: &[(&str, u16, usize, u8, f32)] = &[
    ("sampled/piano", 0, 2, 3, 3.0),
    ("sampled/epiano", 4, 1, 3, 3.0),
    ("sampled/harpsichord", 6, 1, 3, 2.5),
    ("sampled/organ", 18, 1, 3, 3.0),
    ("sampled/organ-drawbar", 16, 1, 3, 3.0),
    ("sampled/guitar-nylon", 24, 1, 3, 3.0),
    ("sampled/guitar-steel", 25, 1, 3, 3.0),
    ("sampled/guitar-clean", 27, 1, 3, 3.0),
    ("sampled/guitar-muted", 28, 1, 3, 1.5),
    ("sampled/guitar-overdrive", 29, 1, 3, 3.0),
    ("sampled/bass-acoustic", 32, 1, 3, 3.0),
    ("sampled/bass-finger", 33, 1, 3, 3.0),
    ("sampled/bass-slap", 36, 1, 3, 3.0),
    ("sampled/bass-synth", 38, 1, 3, 3.0),
    ("sampled/strings", 48, 1, 3, 3.0),
    ("sampled/strings-pizzicato", 45, 1, 3, 2.0),
    ("sampled/strings-synth", 50, 1, 3, 3.0),
    ("sampled/violin", 40, 1, 3, 3.0),
    ("sampled/cello", 42, 1, 3, 3.0),
    ("sampled/harp", 46, 1, 3, 3.0),
    ("sampled/choir", 52, 1, 3, 3.0),
    ("sampled/trumpet", 56, 1, 3, 3.0),
    ("sampled/trombone", 57, 1, 3, 3.0),
    ("sampled/french-horn", 60, 1, 3, 3.0),
    ("sampled/brass", 61, 1, 3, 3.0),
    ("sampled/brass-synth", 62, 1, 3, 3.0),
    ("sampled/sax-alto", 65, 1, 3, 3.0),
    ("sampled/clarinet", 71, 1, 3, 3.0),
    ("sampled/flute", 73, 1, 3, 3.0),
    ("sampled/oboe", 68, 1, 3, 3.0),
    ("sampled/vibraphone", 11, 1, 3, 3.0),
    ("sampled/marimba", 12, 1, 3, 2.0),
    ("sampled/xylophone", 13, 1, 3, 1.5),
    ("sampled/glockenspiel", 9, 1, 3, 2.5),
    ("sampled/celesta", 8, 1, 3, 2.5),
    ("sampled/music-box", 10, 1, 3, 2.5),
    ("sampled/kalimba", 108, 1, 3, 2.0),
    ("sampled/steel-drums", 114, 1, 3, 2.0),
    ("sampled/tubular-bells", 14, 1, 3, 4.0),
    ("sampled/lead-saw", 81, 1, 3, 3.0),
    ("sampled/lead-square", 80, 1, 3, 3.0),
    ("sampled/pad-warm", 89, 1, 3, 4.0),
    ("sampled/pad-halo", 94, 1, 3, 4.0),
];

/// Instruments whose heard pitch is not a partial at the note's frequency, with the partial
/// that stands for it (its frequency divided by the note's).
///
/// A tubular bell (a chime) has no partial at its strike tone: its modes lie near 0.22, 0.62,
/// 1.21, 2, 3 and 4.2 times it (those of a free bar, as (2n+1)^2), and the ear hears modes 4, 5
/// and 6 (near 2:3:4) as harmonics of a missing fundamental an octave below mode 4 (Rossing,
/// "Science of Percussion Instruments", on chimes). Measured in the library's sample: modes at
/// 0.624, 1.22, 2.002, 2.955, 4.06 and 5.30 times its root, and nothing within 60 dB of the
/// strongest at the root itself. Its pitch is therefore measured (and tuned) as half the
/// frequency of mode 4.
pub const PITCH_PARTIAL: &[(&str, f64)] = &[("sampled/tubular-bells", 2.0)];

/// The partial (multiple of the note's frequency) that carries instrument `id`'s heard pitch:
/// 1 (the fundamental) but for [`PITCH_PARTIAL`].
pub fn pitch_partial(id: &str) -> f64 {
    PITCH_PARTIAL
        .iter()
        .find(|(i, _)| *i == id)
        .map_or(1.0, |(_, p)| *p)
}

/// Every recipe, in catalogue order of ids.
pub fn recipes() -> Vec<Recipe> {
    let mut out = Vec::new();
    for kit in KITS {
        let program = KIT_PROGRAMS
            .iter()
            .find(|(k, _)| *k == kit.id)
            .map(|(_, p)| *p);
        for (piece, _, _) in KIT_PIECES {
            if !kit.has(piece) {
                continue;
            }
            let id = format!("kit-{}/{piece}", kit.id);
            if kit.id == RECORDED_KIT {
                if let Some((_, files)) = RECORDED.iter().find(|(p, _)| p == piece) {
                    out.push(Recipe {
                        id,
                        source: Source::Recorded { files },
                    });
                }
                continue;
            }
            let note = PIECE_NOTES
                .iter()
                .find(|(p, _)| p == piece)
                .map(|(_, n)| *n);
            if let (Some(program), Some(note)) = (program, note) {
                out.push(Recipe {
                    id,
                    source: Source::KitPiece { program, note },
                });
            }
        }
    }
    for &(id, program, layers, spacing, max_seconds) in MELODIC {
        out.push(Recipe {
            id: id.to_string(),
            source: Source::Preset {
                bank: 0,
                program,
                layers,
                spacing,
                max_seconds,
            },
        });
    }
    out
}

/// The recipe of one instrument.
pub fn recipe(id: &str) -> Option<Recipe> {
    recipes().into_iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyboardia_core::catalogue::{lookup, sampled, Kind};

    #[test]
    fn every_sampled_instrument_has_a_recipe_and_back() {
        for e in sampled() {
            assert!(recipe(e.id).is_some(), "{} has no recipe", e.id);
        }
        for r in recipes() {
            let e = lookup(&r.id).unwrap_or_else(|| panic!("{} is not in the catalogue", r.id));
            assert_eq!(e.kind, Kind::Sampled, "{}", r.id);
        }
        let mut ids: Vec<_> = recipes().into_iter().map(|r| r.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate recipes");
    }
}
