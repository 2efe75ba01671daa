//! The manifest of a sampled instrument: which sample file plays which keys and velocities,
//! how it is tuned and looped, and the instrument's envelope and level.
//!
//! `crates/samples` writes one `manifest.json` per sampled instrument (next to its FLAC files,
//! under the instrument's id); the hosts serve it; the browser and the native renderer read it
//! and hand the engine (`keyboardia_audio::sampler`) plain structs built from it.
//! [`Manifest::validate`] rejects anything the engine could not play safely, with a message
//! that names the field.

use serde::{Deserialize, Serialize};

use crate::model::{check_instrument, Invalid};

/// The manifest format this build writes and reads.
pub const MANIFEST_SCHEMA: u32 = 1;
/// At most this many zones per instrument.
pub const MAX_ZONES: usize = 256;
/// At most this many seconds of audio per zone.
pub const MAX_ZONE_SECONDS: u32 = 20;

/// One sampled instrument.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_SCHEMA`].
    pub schema: u32,
    /// The catalogue id (`sampled/piano`, `kit-808/kick`).
    pub id: String,
    /// Level-matching gain of the whole instrument, in dB.
    pub gain_db: f32,
    pub envelope: Envelope,
    /// Instruments with the same choke group cut each other (across tracks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choke: Option<String>,
    /// Drums: every note plays to the end of its sample (or its envelope), whatever the step's
    /// length; otherwise the release starts when the note's gate closes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub one_shot: bool,
    /// Key of the licence and credit text ([`crate::catalogue::credit`]).
    pub credit: String,
    pub zones: Vec<Zone>,
}

/// The amplitude envelope of every note, in seconds, with the SoundFont's conventions: a linear
/// attack to full level, a hold, then a decay that falls 100 dB in `decay` seconds (exponential
/// in amplitude) until it reaches `sustain` (a level, 0..=1); when the gate closes, a release
/// that falls 100 dB in `release` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    pub attack: f32,
    pub hold: f32,
    pub decay: f32,
    pub sustain: f32,
    pub release: f32,
}

/// One sample and the keys and velocities it plays. Zones may share a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Zone {
    /// File name next to the manifest: 16-bit mono FLAC.
    pub file: String,
    pub key_lo: u8,
    pub key_hi: u8,
    pub vel_lo: u8,
    pub vel_hi: u8,
    /// The MIDI note at which the sample plays at its recorded speed.
    pub root: u8,
    /// Tuning correction in cents, added to the root's pitch.
    pub fine_tune: i16,
    pub sample_rate: u32,
    /// Length in frames.
    pub frames: u32,
    /// Sustain loop `[loop_start, loop_end)` in frames; both or neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_start: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_end: Option<u32>,
    /// This zone's gain in dB (differences between velocity layers).
    pub gain_db: f32,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn bad(id: &str, msg: String) -> Invalid {
    Invalid(format!("manifest of {id:?}: {msg}"))
}

fn finite_in(v: f32, lo: f32, hi: f32) -> bool {
    v.is_finite() && v >= lo && v <= hi
}

impl Manifest {
    /// Parses and validates a `manifest.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, Invalid> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Invalid(format!("manifest is not valid JSON for schema 1: {e}")))?;
        m.validate()?;
        Ok(m)
    }

    /// The canonical encoding (pretty JSON, fields in declaration order, trailing newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a manifest always serializes");
        s.push('\n');
        s
    }

    /// Checks everything the engine relies on.
    pub fn validate(&self) -> Result<(), Invalid> {
        let id = self.id.as_str();
        if self.schema != MANIFEST_SCHEMA {
            return Err(bad(
                id,
                format!(
                    "schema {} is not supported (this build reads {MANIFEST_SCHEMA})",
                    self.schema
                ),
            ));
        }
        check_instrument(id).map_err(|e| bad(id, e.0))?;
        if id.contains("..") || id.starts_with('/') || id.ends_with('/') {
            return Err(bad(id, "the id is not a relative path".into()));
        }
        if !finite_in(self.gain_db, -60.0, 24.0) {
            return Err(bad(
                id,
                format!("gainDb {} is outside -60..=24", self.gain_db),
            ));
        }
        let e = &self.envelope;
        for (name, v) in [
            ("attack", e.attack),
            ("hold", e.hold),
            ("decay", e.decay),
            ("release", e.release),
        ] {
            if !finite_in(v, 0.0, 30.0) {
                return Err(bad(id, format!("envelope.{name} {v} is outside 0..=30 s")));
            }
        }
        if !finite_in(e.sustain, 0.0, 1.0) {
            return Err(bad(
                id,
                format!("envelope.sustain {} is outside 0..=1", e.sustain),
            ));
        }
        if let Some(c) = &self.choke {
            check_instrument(c).map_err(|e| bad(id, format!("choke group: {}", e.0)))?;
        }
        if crate::catalogue::credit(&self.credit).is_none() {
            return Err(bad(id, format!("unknown credit key {:?}", self.credit)));
        }
        if self.zones.is_empty() || self.zones.len() > MAX_ZONES {
            return Err(bad(
                id,
                format!("needs 1 to {MAX_ZONES} zones, has {}", self.zones.len()),
            ));
        }
        for (i, z) in self.zones.iter().enumerate() {
            let zb = |msg: String| bad(id, format!("zone {i} ({}): {msg}", z.file));
            let name_ok = z.file.len() <= 64
                && z.file.ends_with(".flac")
                && !z.file.starts_with('.')
                && z.file
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
            if !name_ok {
                return Err(zb("file must be a plain name like `c4-v1.flac`".into()));
            }
            if z.key_lo > z.key_hi || z.key_hi > 127 {
                return Err(zb(format!("key range {}..={}", z.key_lo, z.key_hi)));
            }
            if z.vel_lo > z.vel_hi || z.vel_hi > 127 {
                return Err(zb(format!("velocity range {}..={}", z.vel_lo, z.vel_hi)));
            }
            if z.root > 127 {
                return Err(zb(format!("root {} is not a MIDI note", z.root)));
            }
            if !(-1200..=1200).contains(&z.fine_tune) {
                return Err(zb(format!(
                    "fineTune {} is outside ±1200 cents",
                    z.fine_tune
                )));
            }
            if !(8_000..=192_000).contains(&z.sample_rate) {
                return Err(zb(format!("sample rate {} Hz", z.sample_rate)));
            }
            if z.frames < 2 || z.frames > MAX_ZONE_SECONDS * z.sample_rate {
                return Err(zb(format!(
                    "{} frames (must be 2 to {MAX_ZONE_SECONDS} s)",
                    z.frames
                )));
            }
            match (z.loop_start, z.loop_end) {
                (None, None) => {}
                (Some(s), Some(e)) => {
                    if !(s < e && e <= z.frames && e - s >= 8) {
                        return Err(zb(format!(
                            "loop {s}..{e} must lie in 0..{} and be at least 8 frames",
                            z.frames
                        )));
                    }
                }
                _ => return Err(zb("loopStart and loopEnd come together".into())),
            }
            if !finite_in(z.gain_db, -96.0, 24.0) {
                return Err(zb(format!("gainDb {} is outside -96..=24", z.gain_db)));
            }
        }
        Ok(())
    }

    /// The zone that plays `key` at `velocity` (1..=127): the first whose ranges contain both,
    /// else the nearest by key among those whose velocity range fits, else the nearest by key.
    pub fn zone_for(&self, key: u8, velocity: u8) -> Option<&Zone> {
        pick_zone(
            self.zones
                .iter()
                .map(|z| (z.key_lo, z.key_hi, z.vel_lo, z.vel_hi)),
            key,
            velocity,
        )
        .map(|i| &self.zones[i])
    }
}

impl Manifest {
    /// The zones that play these (key, velocity) pairs: what to fetch first for a pattern, so
    /// a track sounds before the whole instrument has arrived (the engine plays the nearest
    /// loaded zone meanwhile).
    pub fn zones_for(
        &self,
        notes: impl IntoIterator<Item = (u8, u8)>,
    ) -> std::collections::BTreeSet<usize> {
        // Extended, not collected: collecting a set sorts (see crate::sorted).
        let mut zones = std::collections::BTreeSet::new();
        zones.extend(notes.into_iter().filter_map(|(k, v)| {
            pick_zone(
                self.zones
                    .iter()
                    .map(|z| (z.key_lo, z.key_hi, z.vel_lo, z.vel_hi)),
                k,
                v,
            )
        }));
        zones
    }
}

/// Zone selection shared by everything that plays manifests: the index of the zone for `key`
/// and `velocity` among `(key_lo, key_hi, vel_lo, vel_hi)` ranges.
pub fn pick_zone(
    zones: impl Iterator<Item = (u8, u8, u8, u8)>,
    key: u8,
    velocity: u8,
) -> Option<usize> {
    let dist = |lo: u8, hi: u8, k: u8| {
        if k < lo {
            lo - k
        } else {
            k.saturating_sub(hi)
        }
    };
    let mut best: Option<(u16, usize)> = None;
    for (i, (klo, khi, vlo, vhi)) in zones.enumerate() {
        let score = dist(klo, khi, key) as u16 * 256 + dist(vlo, vhi, velocity) as u16;
        if best.is_none_or(|(b, _)| score < b) {
            best = Some((score, i));
        }
    }
    best.map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piano() -> Manifest {
        Manifest {
            schema: MANIFEST_SCHEMA,
            id: "sampled/piano".into(),
            gain_db: -1.5,
            envelope: Envelope {
                attack: 0.001,
                hold: 0.0,
                decay: 2.0,
                sustain: 0.5,
                release: 0.3,
            },
            choke: None,
            one_shot: false,
            credit: "musescore-general".into(),
            zones: vec![
                Zone {
                    file: "60-v1.flac".into(),
                    key_lo: 0,
                    key_hi: 62,
                    vel_lo: 1,
                    vel_hi: 100,
                    root: 60,
                    fine_tune: -3,
                    sample_rate: 44_100,
                    frames: 44_100,
                    loop_start: Some(20_000),
                    loop_end: Some(40_000),
                    gain_db: 0.0,
                },
                Zone {
                    file: "60-v2.flac".into(),
                    key_lo: 0,
                    key_hi: 62,
                    vel_lo: 101,
                    vel_hi: 127,
                    root: 60,
                    fine_tune: 0,
                    sample_rate: 44_100,
                    frames: 44_100,
                    loop_start: None,
                    loop_end: None,
                    gain_db: 0.0,
                },
                Zone {
                    file: "72-v1.flac".into(),
                    key_lo: 63,
                    key_hi: 127,
                    vel_lo: 1,
                    vel_hi: 127,
                    root: 72,
                    fine_tune: 0,
                    sample_rate: 44_100,
                    frames: 44_100,
                    loop_start: None,
                    loop_end: None,
                    gain_db: 0.0,
                },
            ],
        }
    }

    #[test]
    fn round_trips_and_validates() {
        let m = piano();
        m.validate().unwrap();
        let json = m.to_json();
        assert!(json.contains("\"loopStart\": 20000"));
        assert_eq!(Manifest::from_json(json.as_bytes()).unwrap(), m);
    }

    #[test]
    fn rejects_nonsense_clearly() {
        type Edit = Box<dyn Fn(&mut Manifest)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|m| m.schema = 2), "schema 2"),
            (Box::new(|m| m.id = "../x".into()), "relative path"),
            (Box::new(|m| m.zones.clear()), "zones"),
            (
                Box::new(|m| m.zones[0].file = "../a.flac".into()),
                "plain name",
            ),
            (Box::new(|m| m.zones[0].key_lo = 90), "key range"),
            (Box::new(|m| m.zones[0].vel_hi = 200), "velocity range"),
            (Box::new(|m| m.zones[0].loop_end = Some(50_000)), "loop"),
            (Box::new(|m| m.zones[0].loop_end = None), "come together"),
            (Box::new(|m| m.zones[0].sample_rate = 100), "sample rate"),
            (Box::new(|m| m.envelope.sustain = 2.0), "sustain"),
            (Box::new(|m| m.envelope.release = f32::NAN), "release"),
            (Box::new(|m| m.gain_db = 100.0), "gainDb"),
            (Box::new(|m| m.credit = "who".into()), "credit"),
        ];
        for (edit, words) in cases {
            let mut m = piano();
            edit(&mut m);
            let e = m.validate().expect_err(words);
            assert!(e.0.contains(words), "{e} (wanted {words:?})");
        }
        let e = Manifest::from_json(b"{\"schema\":1}").unwrap_err();
        assert!(e.0.contains("missing field"), "{e}");
        let mut v = serde_json::to_value(piano()).unwrap();
        v["extra"] = 1.into();
        assert!(Manifest::from_json(v.to_string().as_bytes()).is_err());
    }

    #[test]
    fn zones_for_a_pattern() {
        let m = piano();
        let z: Vec<_> = m
            .zones_for([(60, 100), (61, 100), (70, 100)])
            .into_iter()
            .collect();
        assert_eq!(z, vec![0, 2]);
    }

    #[test]
    fn zones_by_key_and_velocity() {
        let m = piano();
        assert_eq!(m.zone_for(60, 64).unwrap().file, "60-v1.flac");
        assert_eq!(m.zone_for(60, 120).unwrap().file, "60-v2.flac");
        assert_eq!(m.zone_for(80, 10).unwrap().file, "72-v1.flac");
    }
}
