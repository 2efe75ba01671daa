//! A session as a Standard MIDI File (format 1): a tempo track, then one track per pattern
//! track. Drums play General MIDI percussion on channel 10; each other track gets its own
//! channel and plays the notes the engine would (base note + transpose + pitch lock, and every
//! note of a chord), with tied steps held and lock volume as velocity.

use keyboardia_core::model::SessionState;
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use crate::instrument::{Drum, Instrument};
use crate::offline::{export_span, pattern_from_session};

/// MIDI ticks per 16th-note step (96 per quarter note).
const TICKS_PER_STEP: u32 = 24;

/// The General MIDI percussion note of a drum voice.
pub fn gm_drum_note(d: Drum) -> u8 {
    match d {
        Drum::Kick => 36,
        Drum::Kick808 => 35,
        Drum::Snare => 38,
        Drum::Clap => 39,
        Drum::HatClosed => 42,
        Drum::HatOpen => 46,
        Drum::TomLow => 45,
        Drum::TomMid => 47,
        Drum::TomHigh => 50,
        Drum::Rim => 37,
        Drum::Cowbell => 56,
        Drum::Shaker => 70,
        Drum::Clave => 75,
        Drum::Zap => 81,
        Drum::Blip => 80,
        Drum::Riser => 49,
    }
}

/// Encodes the session as a `.mid` file covering `loops` full cycles of every track (with a
/// loop region: `loops` times the region, from its start, as the WAV export and live playback
/// play it).
pub fn session_to_midi(s: &SessionState, loops: u32) -> Vec<u8> {
    let p = pattern_from_session(s, |_| None);
    let (first, cycle) = export_span(&p);
    let steps = cycle * loops.max(1) as u64;
    let us_per_quarter = (60_000_000 / s.tempo.max(1) as u32).min(0xFF_FFFF);
    let name = s.name.clone();
    let mut tracks: Vec<Vec<TrackEvent<'_>>> = Vec::new();
    let mut tempo = vec![
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::TrackName(name.as_bytes())),
        },
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us_per_quarter))),
        },
    ];
    tempo.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    tracks.push(tempo);
    let mut next_channel = 0u8;
    for (ti, t) in p.tracks[..p.track_count].iter().enumerate() {
        let Some(instrument) = t.instrument else {
            continue;
        };
        let (channel, drum) = match instrument {
            Instrument::Drum(d) => (9u8, Some(d)),
            _ => {
                let c = next_channel;
                next_channel = (next_channel + 1) % 16;
                if next_channel == 9 {
                    next_channel = 10;
                }
                (c, None)
            }
        };
        // (tick, on?, key, velocity)
        let mut events: Vec<(u64, bool, u8, u8)> = Vec::new();
        for n in 0..steps {
            // The same notes, ties and loop region as the engine plays.
            let Some((k, len)) = t.note_at((first + n) as i64, p.loop_region) else {
                continue;
            };
            let lock = t.locks[k];
            let len = len as u64;
            let vel = ((lock.volume.unwrap_or(1.0) * t.volume).clamp(0.0, 1.0) * 126.0) as u8 + 1;
            let on = n * TICKS_PER_STEP as u64;
            let off = on
                + if drum.is_some() {
                    TICKS_PER_STEP as u64 / 2
                } else {
                    len * TICKS_PER_STEP as u64
                };
            // Every note of a chord (a drum plays its one note).
            for (j, pitch) in lock.notes().enumerate() {
                let key = match drum {
                    Some(_) if j > 0 => break,
                    Some(d) => gm_drum_note(d) as i32,
                    None => instrument.base_note() as i32 + t.transpose as i32 + pitch as i32,
                }
                .clamp(0, 127) as u8;
                events.push((on, true, key, vel));
                events.push((off, false, key, 0));
            }
        }
        // Offs before ons at the same tick, so a repeated note restarts cleanly.
        events.sort_by_key(|e| (e.0, e.1));
        let mut out = vec![TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::TrackName(s.tracks[ti].name.as_bytes())),
        }];
        let mut last = 0u64;
        for (tick, on, key, vel) in events {
            let delta = (tick - last).min(0x0FFF_FFFF) as u32;
            last = tick;
            let message = if on {
                MidiMessage::NoteOn {
                    key: u7::new(key),
                    vel: u7::new(vel.min(127)),
                }
            } else {
                MidiMessage::NoteOff {
                    key: u7::new(key),
                    vel: u7::new(0),
                }
            };
            out.push(TrackEvent {
                delta: u28::new(delta),
                kind: TrackEventKind::Midi {
                    channel: u4::new(channel),
                    message,
                },
            });
        }
        out.push(TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
        });
        tracks.push(out);
    }
    let smf = Smf {
        header: Header::new(
            Format::Parallel,
            Timing::Metrical(u15::new((TICKS_PER_STEP * 4) as u16)),
        ),
        tracks,
    };
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes).expect("writing MIDI to memory");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each note-on of a track: (absolute tick, key).
    fn note_ons(t: &[TrackEvent]) -> Vec<(u32, u8)> {
        let mut tick = 0;
        let mut v = Vec::new();
        for e in t {
            tick += e.delta.as_int();
            if let TrackEventKind::Midi {
                message: MidiMessage::NoteOn { key, .. },
                ..
            } = e.kind
            {
                v.push((tick, key.as_int()));
            }
        }
        v
    }

    #[test]
    fn the_starter_beat_as_midi() {
        let s = SessionState::starter();
        let bytes = session_to_midi(&s, 1);
        let smf = Smf::parse(&bytes).unwrap();
        assert_eq!(smf.tracks.len(), 5, "tempo track + 4 tracks");
        // The kick: four on the floor, GM note 36.
        assert_eq!(
            note_ons(&smf.tracks[1]),
            [(0, 36), (96, 36), (192, 36), (288, 36)]
        );
        // The bass: C2 (36) with its pitch locks (+3 at step 6, -2 at step 10).
        let bass: Vec<u8> = note_ons(&smf.tracks[4]).iter().map(|x| x.1).collect();
        assert_eq!(bass, [36, 36, 39, 34]);
    }

    #[test]
    fn with_a_loop_region_the_file_loops_the_region() {
        let mut s = SessionState::starter();
        s.loop_region = Some(keyboardia_core::model::LoopRegion { start: 4, end: 12 });
        let smf_bytes = session_to_midi(&s, 2);
        let smf = Smf::parse(&smf_bytes).unwrap();
        let ons = |t: &[TrackEvent]| -> Vec<(u32, u8)> {
            note_ons(t)
                .into_iter()
                .map(|(tick, key)| (tick / TICKS_PER_STEP, key))
                .collect()
        };
        // The bass's steps 6 (+3) and 10 (-2) of the region 4..12, twice.
        assert_eq!(ons(&smf.tracks[4]), [(2, 39), (6, 34), (10, 39), (14, 34)]);
        // The kick's 4 and 8.
        let kick: Vec<u32> = ons(&smf.tracks[1]).iter().map(|x| x.0).collect();
        assert_eq!(kick, [0, 4, 8, 12]);
    }

    #[test]
    fn every_note_of_a_chord_is_a_note_on_at_the_same_tick() {
        let mut s = SessionState::starter();
        let bass = s.track_mut("bass").unwrap();
        bass.locks.insert(
            3,
            keyboardia_core::Lock {
                chord: keyboardia_core::model::Chord::new(&[4, 7]).unwrap(),
                ..Default::default()
            },
        );
        // A chord on a drum track (stored before its instrument changed) plays its one note.
        s.track_mut("kick").unwrap().locks.insert(
            0,
            keyboardia_core::Lock {
                chord: keyboardia_core::model::Chord::new(&[4]).unwrap(),
                ..Default::default()
            },
        );
        let smf_bytes = session_to_midi(&s, 1);
        let smf = Smf::parse(&smf_bytes).unwrap();
        let events = |t: &[TrackEvent]| -> Vec<(u32, bool, u8)> {
            let mut tick = 0;
            let mut v = Vec::new();
            for e in t {
                tick += e.delta.as_int();
                match e.kind {
                    TrackEventKind::Midi {
                        message: MidiMessage::NoteOn { key, .. },
                        ..
                    } => v.push((tick, true, key.as_int())),
                    TrackEventKind::Midi {
                        message: MidiMessage::NoteOff { key, .. },
                        ..
                    } => v.push((tick, false, key.as_int())),
                    _ => {}
                }
            }
            v
        };
        let bass = events(&smf.tracks[4]);
        let at_step_3: Vec<u8> = bass
            .iter()
            .filter(|e| e.0 == 3 * TICKS_PER_STEP && e.1)
            .map(|e| e.2)
            .collect();
        assert_eq!(at_step_3, [36, 40, 43], "C E G at step 3");
        let offs: Vec<u8> = bass
            .iter()
            .filter(|e| e.0 == 4 * TICKS_PER_STEP && !e.1)
            .map(|e| e.2)
            .collect();
        assert_eq!(offs, [36, 40, 43], "all three end a step later");
        let kick_at_0 = events(&smf.tracks[1])
            .iter()
            .filter(|e| e.0 == 0 && e.1)
            .count();
        assert_eq!(kick_at_0, 1);
    }
}
