//! The session model: what a beat is, and the rules that keep it valid.
//!
//! A session is its metadata ([`SessionMeta`], the index row / KV value) plus its musical state
//! ([`SessionState`], which the live session edits). Every field has one canonical JSON encoding
//! (camelCase, defaults omitted the same way everywhere) so that client and server agree byte for
//! byte.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock;
use crate::effects::{FxValues, Scope};
use crate::limits::*;

/// Metadata of a session: the session index (native: a table; Cloudflare: KV `session:{uuid}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionMeta {
    pub id: Uuid,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub last_accessed_at: i64,
    pub remixed_from: Option<Uuid>,
    pub remix_count: u32,
    /// Published sessions are immutable snapshots.
    pub immutable: bool,
    /// For a published session, the session it was published from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_from: Option<Uuid>,
}

/// The musical state of a session: everything the live session edits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionState {
    pub name: String,
    pub tempo: u16,
    pub swing: u8,
    pub tracks: Vec<Track>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<SampleRef>,
    #[serde(default)]
    pub transport: Transport,
    /// The key and scale melodic tracks keep to (C chromatic, the default, keeps every note).
    #[serde(default, skip_serializing_if = "crate::music::Key::is_default")]
    pub key: crate::music::Key,
    /// The master chain's settings that differ from their defaults (see [`crate::effects`]).
    #[serde(default, skip_serializing_if = "FxValues::is_default")]
    pub effects: FxValues,
    /// The shared loop region every player hears (none: each track loops its whole length).
    #[serde(rename = "loop", default, skip_serializing_if = "Option::is_none")]
    pub loop_region: Option<LoopRegion>,
}

/// A loop region: global 16th steps `start..end` (end exclusive, `0 <= start < end <= 128`).
///
/// Playback counts global steps `n` from the transport's anchor as always; with a region, step
/// `n` plays slot [`LoopRegion::wrap`]`(n)`: itself before the region's start, then the region
/// over and over. Each track then plays that slot modulo its own step count (polyrhythms stay).
/// The engine (`keyboardia_audio::engine::LoopRegion`, which must agree: tested) and the app's
/// playhead use the same rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopRegion {
    pub start: u8,
    pub end: u8,
}

impl LoopRegion {
    pub fn new(start: i64, end: i64) -> Result<LoopRegion, Invalid> {
        let start = check_range_i64("loop start", start, 0, STEP_SLOTS as i64 - 1)?;
        let end = check_range_i64("loop end", end, 1, STEP_SLOTS as i64)?;
        if start >= end {
            return Err(invalid(format!(
                "the loop region must end after it starts, got start {start} and end {end}"
            )));
        }
        Ok(LoopRegion {
            start: start as u8,
            end: end as u8,
        })
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        LoopRegion::new(self.start as i64, self.end as i64).map(|_| ())
    }

    /// Steps in the region.
    pub fn len(&self) -> i64 {
        (self.end as i64 - self.start as i64).max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether slot `slot` is in the region.
    pub fn contains(&self, slot: i64) -> bool {
        (self.start as i64..self.end as i64).contains(&slot)
    }

    /// The slot global step `n` plays: `n` before the region, then `start..end` again and again.
    pub fn wrap(&self, n: i64) -> i64 {
        let start = self.start as i64;
        if n < start {
            n
        } else {
            start + (n - start).rem_euclid(self.len())
        }
    }

    /// Whether step `step` of a track of `step_count` steps sounds while the region loops: the
    /// track plays the wrapped slot modulo its own length, so a track shorter than the region
    /// plays all of its steps, and a longer one the steps the region's slots fall on.
    pub fn sounds(&self, step: usize, step_count: usize) -> bool {
        let n = step_count.max(1) as i64;
        self.len() >= n || (step as i64 - self.start as i64).rem_euclid(n) < self.len()
    }

    /// [`LoopRegion::wrap`] of a fractional step position (the phase within the step is kept).
    pub fn wrap_position(&self, p: f64) -> f64 {
        let start = self.start as f64;
        if p < start {
            p
        } else {
            start + (p - start).rem_euclid(self.len() as f64)
        }
    }
}

/// One row of the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Track {
    pub id: String,
    pub name: String,
    pub instrument: String,
    /// Which of the 128 step slots are on (encoded as the sorted list of active indices).
    pub steps: Steps,
    /// Per-step parameter locks, keyed by step index.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de_locks"
    )]
    pub locks: BTreeMap<u8, Lock>,
    /// Loop length: steps `0..step_count` play; the slots beyond keep their data.
    pub step_count: u16,
    pub volume: f32,
    pub pan: f32,
    pub transpose: i8,
    pub swing: u8,
    #[serde(default)]
    pub muted: bool,
    #[serde(default)]
    pub soloed: bool,
    /// The track's sends, filter and drive that differ from their defaults.
    #[serde(default, skip_serializing_if = "FxValues::is_default")]
    pub fx: FxValues,
}

/// A parameter lock on one step. An all-empty lock is the same as no lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lock {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitch: Option<i8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<f32>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tie: bool,
    /// The track filter's cutoff on this step, in Hz (a filter sweep drawn into the pattern).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutoff: Option<f32>,
    /// The step's other notes (a chord on a melodic track), besides `pitch`.
    #[serde(default, skip_serializing_if = "Chord::is_empty")]
    pub chord: Chord,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Lock {
    pub fn is_empty(&self) -> bool {
        self.pitch.is_none()
            && self.volume.is_none()
            && !self.tie
            && self.cutoff.is_none()
            && self.chord.is_empty()
    }

    /// Every note the step plays, in semitones from the track's base note: `pitch` (0 when
    /// unset) first, then the chord's.
    pub fn notes(&self) -> impl Iterator<Item = i8> + '_ {
        std::iter::once(self.pitch.unwrap_or(0)).chain(self.chord.iter())
    }

    /// The chord made canonical: a chord note that repeats `pitch` (after snapping into a key,
    /// say) is dropped.
    pub fn normalized(mut self) -> Lock {
        self.chord = self.chord.without(self.pitch.unwrap_or(0));
        self
    }
}

/// The extra notes of a chord: up to [`CHORD_MAX_NOTES`] - 1 pitches (semitones from the
/// instrument's base note, like a lock's `pitch`), kept sorted and without repeats so that
/// every host stores the same bytes. JSON: a list, e.g. `[4, 7]`. Fixed-size, so a [`Lock`]
/// stays `Copy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Chord {
    notes: [i8; CHORD_MAX_NOTES - 1],
    len: u8,
}

impl Chord {
    /// A chord of `notes` (any order; repeats are dropped). Each must be within
    /// `PITCH_MIN..=PITCH_MAX`, and a step holds at most [`CHORD_MAX_NOTES`] notes.
    pub fn new(notes: &[i64]) -> Result<Chord, Invalid> {
        if notes.len() > CHORD_MAX_NOTES - 1 {
            return Err(invalid(format!(
                "a step holds at most {CHORD_MAX_NOTES} notes (its pitch and {} chord notes), got {}",
                CHORD_MAX_NOTES - 1,
                notes.len() + 1
            )));
        }
        let mut c = Chord::default();
        for &n in notes {
            let n = check_range_i64("chord note", n, PITCH_MIN as i64, PITCH_MAX as i64)? as i8;
            c = c.with(n);
        }
        Ok(c)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn as_slice(&self) -> &[i8] {
        &self.notes[..self.len as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = i8> + '_ {
        self.as_slice().iter().copied()
    }

    /// This chord with `note` added in order (unchanged if it is already there or full).
    fn with(mut self, note: i8) -> Chord {
        if self.as_slice().contains(&note) || self.len() >= self.notes.len() {
            return self;
        }
        let at = self.as_slice().iter().take_while(|&&x| x < note).count();
        let len = self.len();
        self.notes.copy_within(at..len, at + 1);
        self.notes[at] = note;
        self.len += 1;
        self
    }

    /// This chord without `note`.
    pub fn without(&self, note: i8) -> Chord {
        self.iter()
            .filter(|&x| x != note)
            .fold(Chord::default(), Chord::with)
    }

    /// Each note mapped through `f` (which may make two the same: they become one).
    pub fn map(&self, f: impl FnMut(i8) -> i8) -> Chord {
        self.iter().map(f).fold(Chord::default(), Chord::with)
    }
}

impl Serialize for Chord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Chord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: Vec<i64> = Vec::deserialize(d)?;
        Chord::new(&v).map_err(|e| serde::de::Error::custom(e.0))
    }
}

/// A recording (or other user sample) stored in the sample store and usable as an instrument
/// (`recording/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SampleRef {
    pub id: String,
    pub name: String,
    /// Path in the sample store, e.g. `recordings/{sessionId}/{sampleId}.wav`.
    pub path: String,
    pub duration_ms: u32,
}

impl SampleRef {
    /// The instrument id that plays this sample.
    pub fn instrument(&self) -> String {
        format!("recording/{}", self.id)
    }
}

/// The shared transport: where playback is, in server time.
///
/// While playing, the step position at server time `t` (ms) is
/// `anchor_step + (t - anchor_time) * steps_per_ms(tempo)`. Stopped, playback halts at
/// `anchor_time` on `anchor_step`. Anchors are set slightly in the future so every client can
/// schedule the change at the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transport {
    pub playing: bool,
    pub anchor_time: f64,
    pub anchor_step: f64,
    pub tempo: u16,
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            playing: false,
            anchor_time: 0.0,
            anchor_step: 0.0,
            tempo: 120,
        }
    }
}

impl Transport {
    /// Step position (16th notes since the start of playback) at server time `t`.
    pub fn position_at(&self, t: f64) -> f64 {
        if !self.playing {
            return self.anchor_step;
        }
        self.anchor_step + (t - self.anchor_time) * clock::steps_per_ms(self.tempo)
    }
}

/// The on/off bits of a track's 128 step slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Steps(pub u128);

impl Steps {
    pub fn get(&self, i: usize) -> bool {
        i < STEP_SLOTS && self.0 & (1u128 << i) != 0
    }
    pub fn set(&mut self, i: usize, on: bool) {
        if i < STEP_SLOTS {
            if on {
                self.0 |= 1u128 << i;
            } else {
                self.0 &= !(1u128 << i);
            }
        }
    }
    pub fn active(&self) -> impl Iterator<Item = usize> + '_ {
        (0..STEP_SLOTS).filter(|&i| self.get(i))
    }
    pub fn from_indices(indices: &[usize]) -> Steps {
        let mut s = Steps(0);
        for &i in indices {
            s.set(i, true);
        }
        s
    }
}

impl Serialize for Steps {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.active().map(|i| i as u8))
    }
}

impl<'de> Deserialize<'de> for Steps {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: Vec<u8> = Vec::deserialize(d)?;
        let mut steps = Steps(0);
        for i in v {
            if i as usize >= STEP_SLOTS {
                return Err(serde::de::Error::custom(format!(
                    "step index {i} is out of range 0..{STEP_SLOTS}"
                )));
            }
            steps.set(i as usize, true);
        }
        Ok(steps)
    }
}

/// Lock maps are keyed by step index; JSON keys are strings, and serde's buffered path (tagged
/// enums) does not turn them back into integers by itself.
pub(crate) fn de_locks<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<u8, Lock>, D::Error> {
    let raw: BTreeMap<String, Lock> = BTreeMap::deserialize(d)?;
    // Inserted one by one, not collected: collecting a map sorts (see crate::sorted).
    let mut locks = BTreeMap::new();
    for (k, v) in raw {
        let i = k
            .parse::<u8>()
            .ok()
            .filter(|i| (*i as usize) < STEP_SLOTS)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid lock step {k:?}")))?;
        locks.insert(i, v);
    }
    Ok(locks)
}

/// A rule a value broke. The message is written for the person who sent it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(msg: impl Into<String>) -> Invalid {
    Invalid(msg.into())
}

pub fn check_range_i64(what: &str, v: i64, lo: i64, hi: i64) -> Result<i64, Invalid> {
    if v < lo || v > hi {
        return Err(invalid(format!(
            "{what} must be between {lo} and {hi}, got {v}"
        )));
    }
    Ok(v)
}

pub fn check_range_f64(what: &str, v: f64, lo: f64, hi: f64) -> Result<f32, Invalid> {
    if !v.is_finite() || v < lo || v > hi {
        return Err(invalid(format!(
            "{what} must be between {lo} and {hi}, got {v}"
        )));
    }
    Ok(v as f32)
}

pub fn check_tempo(v: i64) -> Result<u16, Invalid> {
    check_range_i64("tempo", v, TEMPO_MIN as i64, TEMPO_MAX as i64).map(|v| v as u16)
}

pub fn check_swing(v: i64) -> Result<u8, Invalid> {
    check_range_i64("swing", v, 0, SWING_MAX as i64).map(|v| v as u8)
}

pub fn check_step_index(v: i64) -> Result<usize, Invalid> {
    check_range_i64("step", v, 0, STEP_SLOTS as i64 - 1).map(|v| v as usize)
}

pub fn check_step_count(v: i64) -> Result<u16, Invalid> {
    if v >= 0 && v <= u16::MAX as i64 && STEP_COUNTS.contains(&(v as u16)) {
        Ok(v as u16)
    } else {
        Err(invalid(format!(
            "stepCount must be one of {STEP_COUNTS:?}, got {v}"
        )))
    }
}

/// A human-facing name: trimmed of nothing, at most `max` characters, no control characters.
pub fn check_name(what: &str, s: &str, max: usize, allow_empty: bool) -> Result<String, Invalid> {
    let n = s.chars().count();
    if n > max {
        return Err(invalid(format!(
            "{what} must be at most {max} characters, got {n}"
        )));
    }
    if !allow_empty && s.trim().is_empty() {
        return Err(invalid(format!("{what} must not be empty")));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(s.to_string())
}

/// An identifier: 1..=max characters from `[A-Za-z0-9_-]` (plus `extra`).
pub fn check_ident(what: &str, s: &str, max: usize, extra: &str) -> Result<(), Invalid> {
    if s.is_empty() || s.len() > max {
        return Err(invalid(format!("{what} must be 1 to {max} characters")));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra.contains(c))
    {
        return Err(invalid(format!(
            "{what} may contain only letters, digits, '_', '-'{}",
            if extra.is_empty() {
                String::new()
            } else {
                format!(" and {extra:?}")
            }
        )));
    }
    Ok(())
}

pub fn check_track_id(s: &str) -> Result<(), Invalid> {
    check_ident("trackId", s, TRACK_ID_MAX_CHARS, "")
}

pub fn check_instrument(s: &str) -> Result<(), Invalid> {
    check_ident("instrument", s, INSTRUMENT_ID_MAX_CHARS, "/.:")
}

impl Track {
    /// A new track with default mix settings and no steps.
    pub fn new(id: &str, name: &str, instrument: &str) -> Track {
        Track {
            id: id.to_string(),
            name: name.to_string(),
            instrument: instrument.to_string(),
            steps: Steps(0),
            locks: BTreeMap::new(),
            step_count: 16,
            volume: 0.8,
            pan: 0.0,
            transpose: 0,
            swing: 0,
            muted: false,
            soloed: false,
            fx: FxValues::default(),
        }
    }

    /// Checks every field against the limits (used when loading untrusted documents).
    pub fn validate(&self) -> Result<(), Invalid> {
        check_track_id(&self.id)?;
        check_name("track name", &self.name, TRACK_NAME_MAX_CHARS, true)?;
        check_instrument(&self.instrument)?;
        check_step_count(self.step_count as i64)?;
        check_range_f64("volume", self.volume as f64, 0.0, 1.0)?;
        check_range_f64("pan", self.pan as f64, -1.0, 1.0)?;
        check_range_i64(
            "transpose",
            self.transpose as i64,
            TRANSPOSE_MIN as i64,
            TRANSPOSE_MAX as i64,
        )?;
        check_swing(self.swing as i64)?;
        self.fx.validate(Scope::Track)?;
        for (step, lock) in &self.locks {
            check_step_index(*step as i64)?;
            validate_lock(lock)?;
        }
        Ok(())
    }
}

pub fn validate_lock(lock: &Lock) -> Result<(), Invalid> {
    if let Some(p) = lock.pitch {
        check_range_i64("pitch", p as i64, PITCH_MIN as i64, PITCH_MAX as i64)?;
    }
    if let Some(v) = lock.volume {
        check_range_f64("lock volume", v as f64, 0.0, 1.0)?;
    }
    if let Some(c) = lock.cutoff {
        crate::effects::check_cutoff(c as f64)?;
    }
    for n in lock.chord.iter() {
        check_range_i64("chord note", n as i64, PITCH_MIN as i64, PITCH_MAX as i64)?;
        if n == lock.pitch.unwrap_or(0) {
            return Err(invalid(format!("chord note {n} repeats the step's pitch")));
        }
    }
    Ok(())
}

impl SessionState {
    /// An empty session.
    pub fn empty() -> SessionState {
        SessionState {
            name: String::new(),
            tempo: 120,
            swing: 0,
            tracks: Vec::new(),
            samples: Vec::new(),
            transport: Transport::default(),
            key: crate::music::Key::default(),
            effects: FxValues::default(),
            loop_region: None,
        }
    }

    /// The short starter beat a new session opens with: kick, snare, hats and bass.
    pub fn starter() -> SessionState {
        let mut kick = Track::new("kick", "Kick", "drums/kick");
        kick.steps = Steps::from_indices(&[0, 4, 8, 12]);
        let mut snare = Track::new("snare", "Snare", "drums/snare");
        snare.steps = Steps::from_indices(&[4, 12]);
        let mut hat = Track::new("hat", "Hi-hat", "drums/hihat-closed");
        hat.steps = Steps::from_indices(&[0, 2, 4, 6, 8, 10, 12, 14]);
        hat.volume = 0.6;
        let mut bass = Track::new("bass", "Bass", "synth/bass");
        bass.steps = Steps::from_indices(&[0, 3, 6, 10]);
        bass.locks.insert(
            6,
            Lock {
                pitch: Some(3),
                ..Lock::default()
            },
        );
        bass.locks.insert(
            10,
            Lock {
                pitch: Some(-2),
                ..Lock::default()
            },
        );
        SessionState {
            name: "Untitled beat".to_string(),
            tracks: vec![kick, snare, hat, bass],
            ..SessionState::empty()
        }
    }

    pub fn track(&self, id: &str) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }

    pub fn track_mut(&mut self, id: &str) -> Option<&mut Track> {
        self.tracks.iter_mut().find(|t| t.id == id)
    }

    /// Checks a whole document against the limits (for loading or importing).
    pub fn validate(&self) -> Result<(), Invalid> {
        check_name("session name", &self.name, SESSION_NAME_MAX_CHARS, true)?;
        check_tempo(self.tempo as i64)?;
        check_swing(self.swing as i64)?;
        self.key.validate()?;
        self.effects.validate(Scope::Session)?;
        if let Some(r) = &self.loop_region {
            r.validate()?;
        }
        if self.tracks.len() > MAX_TRACKS {
            return Err(invalid(format!("at most {MAX_TRACKS} tracks")));
        }
        for (i, t) in self.tracks.iter().enumerate() {
            t.validate()?;
            if self.tracks[..i].iter().any(|o| o.id == t.id) {
                return Err(invalid(format!("duplicate track id {:?}", t.id)));
            }
        }
        Ok(())
    }

    /// The slot playback is on at step position `p` (a transport's position): within the loop
    /// region if there is one, else along the longest track (what the grid shows).
    pub fn slot_at(&self, p: f64) -> f64 {
        match self.loop_region {
            Some(r) => r.wrap_position(p),
            None => {
                let longest = self.tracks.iter().map(|t| t.step_count).max().unwrap_or(16);
                p.rem_euclid(longest.max(1) as f64)
            }
        }
    }

    /// The transport after the loop region becomes `region` at server time `at`. Stopped: as it
    /// is. Playing, it is re-anchored at `at` so every player moves at the same instant: a
    /// position inside the new region keeps its phase; one outside it jumps to the region's
    /// start; clearing the region goes on from the slot playing then (no jump).
    pub fn transport_for_loop(&self, region: Option<LoopRegion>, at: f64) -> Transport {
        let tr = self.transport;
        if !tr.playing {
            return tr;
        }
        let p = tr.position_at(at);
        let anchor_step = match (self.loop_region, region) {
            (None, None) => p,
            (Some(old), None) => old.wrap_position(p),
            (_, Some(r)) => {
                let slot = self.slot_at(p);
                if r.contains(slot.floor() as i64) {
                    slot
                } else {
                    r.start as f64
                }
            }
        };
        Transport {
            anchor_time: at,
            anchor_step,
            ..tr
        }
    }

    /// The same pattern with playback stopped (for remix and publish).
    pub fn stopped(&self) -> SessionState {
        let mut s = self.clone();
        s.transport = Transport {
            playing: false,
            anchor_time: 0.0,
            anchor_step: 0.0,
            tempo: s.tempo,
        };
        s
    }
}

/// Canonical JSON of any model or protocol value (the one encoding both sides use).
pub fn to_canonical_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("model values always serialize")
}
