//! The wire protocol: JSON text frames, each a tagged message (`"type"`), one enum per direction.
//!
//! Client → server: [`ClientMessage`]: `HELLO` (first, states the protocol version), `CLOCK_SYNC`,
//! and the edits ([`Edit`]), each carrying the client's mutation id `mid`.
//!
//! Server → client: [`ServerMessage`]: `WELCOME` (snapshot and/or missed changes), presence,
//! `CLOCK_SYNC_RESPONSE`, `ERROR`, and every accepted edit as an [`Applied`] [`Change`] with its
//! `seq`. A client's edit is acknowledged by its own copy of the broadcast (same `mid`).
//!
//! Edits are *requests* (`TOGGLE_STEP` flips, `PLAY` asks to start); changes are their resolved,
//! set-to-value form (`SET_STEP` with `active`, `PLAYBACK_STARTED` with its anchor), so applying a
//! change is deterministic and the log replays exactly. See docs/PROTOCOL.md.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::limits::*;
use crate::model::*;

/// An edit a client asks for. Integer and float fields are wide on purpose so that an
/// out-of-range value gets a range error rather than a parse error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "SCREAMING_SNAKE_CASE",
    rename_all_fields = "camelCase"
)]
pub enum Edit {
    ToggleStep {
        track_id: String,
        #[serde(deserialize_with = "wide::int")]
        step: i64,
    },
    SetStep {
        track_id: String,
        #[serde(deserialize_with = "wide::int")]
        step: i64,
        active: bool,
    },
    /// Sets (or with `lock: null`, clears) the parameter lock of one step.
    SetParameterLock {
        track_id: String,
        #[serde(deserialize_with = "wide::int")]
        step: i64,
        lock: Option<LockRequest>,
    },
    AddTrack {
        track: NewTrack,
    },
    DeleteTrack {
        track_id: String,
    },
    /// Turns every step off and removes every lock.
    ClearTrack {
        track_id: String,
    },
    ReorderTrack {
        track_id: String,
        #[serde(deserialize_with = "wide::int")]
        to_index: i64,
    },
    SetTrackInstrument {
        track_id: String,
        instrument: String,
    },
    SetTrackVolume {
        track_id: String,
        volume: f64,
    },
    SetTrackPan {
        track_id: String,
        pan: f64,
    },
    SetTrackTranspose {
        track_id: String,
        #[serde(deserialize_with = "wide::int")]
        transpose: i64,
    },
    SetTrackSwing {
        track_id: String,
        #[serde(deserialize_with = "wide::int")]
        swing: i64,
    },
    SetTrackStepCount {
        track_id: String,
        #[serde(deserialize_with = "wide::int")]
        step_count: i64,
    },
    SetTrackName {
        track_id: String,
        name: String,
    },
    SetTrackMute {
        track_id: String,
        muted: bool,
    },
    SetTrackSolo {
        track_id: String,
        soloed: bool,
    },
    SetTempo {
        #[serde(deserialize_with = "wide::int")]
        tempo: i64,
    },
    SetSwing {
        #[serde(deserialize_with = "wide::int")]
        swing: i64,
    },
    SetSessionName {
        name: String,
    },
    /// Puts a whole track back at `index` (undoing a delete), or at the end if there are fewer
    /// tracks now: every field is validated like a loaded document's.
    PutTrack {
        track: Track,
        #[serde(deserialize_with = "wide::int")]
        index: i64,
    },
    /// Replaces a track's steps and locks (undoing a clear; pasting a pattern).
    SetTrackPattern {
        track_id: String,
        steps: Steps,
        #[serde(default, deserialize_with = "de_locks")]
        locks: BTreeMap<u8, Lock>,
    },
    /// Sets the session's key (`root` 0-11, `scale`, `free`: key lock off); with `moveNotes`,
    /// every melodic track's pitches move into it in the same edit.
    SetKey {
        #[serde(deserialize_with = "wide::int")]
        root: i64,
        scale: crate::music::Scale,
        #[serde(default)]
        free: bool,
        #[serde(default)]
        move_notes: bool,
    },
    /// A pattern tool on one track (see [`crate::music::PatternOp`]), resolved here so every
    /// player gets the same steps.
    TransformPattern {
        track_id: String,
        #[serde(flatten)]
        op: crate::music::PatternOp,
    },
    /// A copy of a track (steps, locks, settings) with a new id, right after it.
    DuplicateTrack {
        track_id: String,
        new_id: String,
    },
    /// Sets one effect parameter: of the master chain (no `trackId`) or of a track (see
    /// [`crate::effects::Fx`] for the names, ranges and scopes).
    SetEffect {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        track_id: Option<String>,
        param: crate::effects::Fx,
        value: f64,
    },
    /// Several edits as one: resolved in order against the state each leaves, all or none, one
    /// log entry (an undo or a redo). No transport edits and no nesting.
    Batch {
        edits: Vec<Edit>,
    },
    /// Sets (or with `region: null`, clears) the shared loop region; while playing, the
    /// transport is re-anchored so every player moves into it at the same instant.
    SetLoopRegion {
        region: Option<LoopRegionRequest>,
    },
    /// Starts shared playback (at `fromStep`; by default the loop region's start, or 0)
    /// slightly in the future.
    Play {
        #[serde(default)]
        #[serde(deserialize_with = "wide::opt_int")]
        from_step: Option<i64>,
    },
    Stop {},
}

/// Integers as clients send them: any JSON number is taken, so a well-formed edit with a bad
/// value (`1e308`, `-5`, `120.5`) reaches the range checks and gets `INVALID_EDIT` with the
/// allowed range, not a parse error. Out-of-range and non-whole numbers become values that no
/// range admits.
mod wide {
    use serde::{Deserialize, Deserializer};

    fn whole(v: f64) -> i64 {
        if v.is_finite() && v.fract() == 0.0 {
            v as i64 // saturates beyond the i64 range
        } else {
            i64::MIN
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Int(i64),
        /// Anything else, integers beyond `i64` included (they saturate: every range refuses
        /// them).
        Float(f64),
    }

    impl Number {
        fn get(self) -> i64 {
            match self {
                Number::Int(v) => v,
                Number::Float(v) => whole(v),
            }
        }
    }

    pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        Number::deserialize(d).map(Number::get)
    }

    pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Option::<Number>::deserialize(d).map(|n| n.map(Number::get))
    }

    pub fn int_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
        Vec::<Number>::deserialize(d).map(|v| v.into_iter().map(Number::get).collect())
    }
}

/// A parameter lock as a client sends it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "wide::opt_int")]
    pub pitch: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tie: bool,
    /// The track filter's cutoff on this step, in Hz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutoff: Option<f64>,
    /// The step's other notes (a chord, melodic tracks only), besides `pitch`: at most three.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[serde(deserialize_with = "wide::int_vec")]
    pub chord: Vec<i64>,
}

/// A loop region as a client sends it: global steps `start..end` (end exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopRegionRequest {
    #[serde(deserialize_with = "wide::int")]
    pub start: i64,
    #[serde(deserialize_with = "wide::int")]
    pub end: i64,
}

/// A track as a client adds it. The client picks the id, so it can edit the track before the
/// server confirms it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTrack {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub instrument: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "wide::opt_int")]
    pub step_count: Option<i64>,
}

crate::tagged::tagged_enum! {
    /// An accepted edit in its resolved, set-to-value form: what the log stores and every client
    /// applies with [`apply`].
    #[derive(Clone, Debug, PartialEq)]
    pub enum Change {
        "SET_STEP" => SetStep {
            track_id: String,
            step: u8,
            active: bool,
        },
        "SET_PARAMETER_LOCK" => SetParameterLock {
            track_id: String,
            step: u8,
            lock: Option<Lock>,
        },
        "ADD_TRACK" => AddTrack {
            track: Track,
        },
        "DELETE_TRACK" => DeleteTrack {
            track_id: String,
        },
        "CLEAR_TRACK" => ClearTrack {
            track_id: String,
        },
        "REORDER_TRACK" => ReorderTrack {
            track_id: String,
            to_index: u8,
        },
        "SET_TRACK_INSTRUMENT" => SetTrackInstrument {
            track_id: String,
            instrument: String,
        },
        "SET_TRACK_VOLUME" => SetTrackVolume {
            track_id: String,
            volume: f32,
        },
        "SET_TRACK_PAN" => SetTrackPan {
            track_id: String,
            pan: f32,
        },
        "SET_TRACK_TRANSPOSE" => SetTrackTranspose {
            track_id: String,
            transpose: i8,
        },
        "SET_TRACK_SWING" => SetTrackSwing {
            track_id: String,
            swing: u8,
        },
        "SET_TRACK_STEP_COUNT" => SetTrackStepCount {
            track_id: String,
            step_count: u16,
        },
        "SET_TRACK_NAME" => SetTrackName {
            track_id: String,
            name: String,
        },
        "SET_TRACK_MUTE" => SetTrackMute {
            track_id: String,
            muted: bool,
        },
        "SET_TRACK_SOLO" => SetTrackSolo {
            track_id: String,
            soloed: bool,
        },
        /// A tempo change; while playing it re-anchors the transport so the position is continuous.
        "SET_TEMPO" => SetTempo {
            tempo: u16,
            transport: Transport,
        },
        "SET_SWING" => SetSwing {
            swing: u8,
        },
        "SET_SESSION_NAME" => SetSessionName {
            name: String,
        },
        "PLAYBACK_STARTED" => PlaybackStarted {
            transport: Transport,
        },
        "PLAYBACK_STOPPED" => PlaybackStopped {
            transport: Transport,
        },
        /// A recording was uploaded to the sample store and can be used as an instrument.
        "SAMPLE_ADDED" => SampleAdded {
            sample: SampleRef,
        },
        "SET_TRACK_PATTERN" => SetTrackPattern {
            track_id: String,
            steps: Steps,
            #[serde(
                default,
                skip_serializing_if = "BTreeMap::is_empty",
                deserialize_with = "de_locks"
            )]
            locks: BTreeMap<u8, Lock>,
        },
        "SET_KEY" => SetKey {
            key: crate::music::Key,
        },
        "SET_EFFECT" => SetEffect {
            #[serde(default, skip_serializing_if = "Option::is_none")]
            track_id: Option<String>,
            param: crate::effects::Fx,
            value: f32,
        },
        /// The loop region, with the transport it leaves (re-anchored while playing).
        "SET_LOOP_REGION" => SetLoopRegion {
            region: Option<LoopRegion>,
            transport: Transport,
        },
        /// Several changes applied in order (a resolved `BATCH`).
        "BATCH" => Batch {
            changes: Vec<Change>,
        },
    }
}

/// Why an edit was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("no track with id {0:?}")]
    UnknownTrack(String),
    #[error("this session is published and read-only; remix it to make changes")]
    ReadOnly,
}

impl EditError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EditError::Invalid(_) | EditError::UnknownTrack(_) => ErrorCode::InvalidEdit,
            EditError::ReadOnly => ErrorCode::ReadOnly,
        }
    }
}

/// What [`resolve`] needs besides the state: the server clock and the playback lead.
#[derive(Clone, Copy, Debug)]
pub struct ResolveCtx {
    pub now: f64,
    pub lead_ms: f64,
}

fn track<'a>(s: &'a SessionState, id: &str) -> Result<&'a Track, EditError> {
    s.track(id)
        .ok_or_else(|| EditError::UnknownTrack(id.to_string()))
}

/// Validates an edit against the current state and turns it into the change to apply.
/// This is the one place where edit rules live; the server and the optimistic client share it.
pub fn resolve(s: &SessionState, edit: &Edit, ctx: ResolveCtx) -> Result<Change, EditError> {
    use Change as C;
    Ok(match edit {
        Edit::ToggleStep { track_id, step } => {
            let step = check_step_index(*step)?;
            let t = track(s, track_id)?;
            C::SetStep {
                track_id: t.id.clone(),
                step: step as u8,
                active: !t.steps.get(step),
            }
        }
        Edit::SetStep {
            track_id,
            step,
            active,
        } => {
            let step = check_step_index(*step)?;
            track(s, track_id)?;
            C::SetStep {
                track_id: track_id.clone(),
                step: step as u8,
                active: *active,
            }
        }
        Edit::SetParameterLock {
            track_id,
            step,
            lock,
        } => {
            let step = check_step_index(*step)?;
            let t = track(s, track_id)?;
            // Key lock: a melodic track's pitch snaps into the session's key.
            let snap = |p: i8| {
                if !s.key.free && crate::music::is_melodic(t) {
                    crate::music::snap_pitch(&s.key, t, p)
                } else {
                    p
                }
            };
            let lock = match lock {
                None => None,
                Some(l) => {
                    let chord = Chord::new(&l.chord)?;
                    if !chord.is_empty() && !crate::music::is_melodic(t) {
                        return Err(Invalid(format!(
                            "track {:?} plays {}, which is not melodic: a step of it holds one note, not a chord",
                            t.id, t.instrument
                        ))
                        .into());
                    }
                    let lock = Lock {
                        pitch: l
                            .pitch
                            .map(|p| {
                                check_range_i64("pitch", p, PITCH_MIN as i64, PITCH_MAX as i64)
                            })
                            .transpose()?
                            .map(|p| snap(p as i8)),
                        volume: l
                            .volume
                            .map(|v| check_range_f64("lock volume", v, 0.0, 1.0))
                            .transpose()?,
                        tie: l.tie,
                        cutoff: l.cutoff.map(crate::effects::check_cutoff).transpose()?,
                        chord: chord.map(snap),
                    }
                    .normalized();
                    (!lock.is_empty()).then_some(lock)
                }
            };
            C::SetParameterLock {
                track_id: track_id.clone(),
                step: step as u8,
                lock,
            }
        }
        Edit::AddTrack { track: nt } => {
            if s.tracks.len() >= MAX_TRACKS {
                return Err(Invalid(format!("a session has at most {MAX_TRACKS} tracks")).into());
            }
            check_track_id(&nt.id)?;
            if s.track(&nt.id).is_some() {
                return Err(Invalid(format!("a track with id {:?} already exists", nt.id)).into());
            }
            let name = check_name("track name", &nt.name, TRACK_NAME_MAX_CHARS, true)?;
            crate::catalogue::check_known(&nt.instrument, &s.samples)?;
            let mut t = Track::new(&nt.id, &name, &nt.instrument);
            if let Some(n) = nt.step_count {
                t.step_count = check_step_count(n)?;
            }
            C::AddTrack { track: t }
        }
        Edit::DeleteTrack { track_id } => {
            track(s, track_id)?;
            C::DeleteTrack {
                track_id: track_id.clone(),
            }
        }
        Edit::ClearTrack { track_id } => {
            track(s, track_id)?;
            C::ClearTrack {
                track_id: track_id.clone(),
            }
        }
        Edit::ReorderTrack { track_id, to_index } => {
            track(s, track_id)?;
            let to = check_range_i64("toIndex", *to_index, 0, s.tracks.len() as i64 - 1)?;
            C::ReorderTrack {
                track_id: track_id.clone(),
                to_index: to as u8,
            }
        }
        Edit::SetTrackInstrument {
            track_id,
            instrument,
        } => {
            track(s, track_id)?;
            // Only instruments this build knows, or this session's recordings (a stored session
            // naming an unknown one still loads; it just cannot be chosen).
            crate::catalogue::check_known(instrument, &s.samples)?;
            C::SetTrackInstrument {
                track_id: track_id.clone(),
                instrument: instrument.clone(),
            }
        }
        Edit::SetTrackVolume { track_id, volume } => {
            track(s, track_id)?;
            C::SetTrackVolume {
                track_id: track_id.clone(),
                volume: check_range_f64("volume", *volume, 0.0, 1.0)?,
            }
        }
        Edit::SetTrackPan { track_id, pan } => {
            track(s, track_id)?;
            C::SetTrackPan {
                track_id: track_id.clone(),
                pan: check_range_f64("pan", *pan, -1.0, 1.0)?,
            }
        }
        Edit::SetTrackTranspose {
            track_id,
            transpose,
        } => {
            track(s, track_id)?;
            let v = check_range_i64(
                "transpose",
                *transpose,
                TRANSPOSE_MIN as i64,
                TRANSPOSE_MAX as i64,
            )?;
            C::SetTrackTranspose {
                track_id: track_id.clone(),
                transpose: v as i8,
            }
        }
        Edit::SetTrackSwing { track_id, swing } => {
            track(s, track_id)?;
            C::SetTrackSwing {
                track_id: track_id.clone(),
                swing: check_swing(*swing)?,
            }
        }
        Edit::SetTrackStepCount {
            track_id,
            step_count,
        } => {
            track(s, track_id)?;
            C::SetTrackStepCount {
                track_id: track_id.clone(),
                step_count: check_step_count(*step_count)?,
            }
        }
        Edit::SetTrackName { track_id, name } => {
            track(s, track_id)?;
            C::SetTrackName {
                track_id: track_id.clone(),
                name: check_name("track name", name, TRACK_NAME_MAX_CHARS, true)?,
            }
        }
        Edit::SetTrackMute { track_id, muted } => {
            track(s, track_id)?;
            C::SetTrackMute {
                track_id: track_id.clone(),
                muted: *muted,
            }
        }
        Edit::SetTrackSolo { track_id, soloed } => {
            track(s, track_id)?;
            C::SetTrackSolo {
                track_id: track_id.clone(),
                soloed: *soloed,
            }
        }
        Edit::SetTempo { tempo } => {
            let tempo = check_tempo(*tempo)?;
            let tr = &s.transport;
            let transport = if tr.playing {
                // Re-anchor in the future at the position the old tempo reaches then, so every
                // client switches tempo at the same instant with no jump.
                let at = ctx.now + ctx.lead_ms;
                Transport {
                    playing: true,
                    anchor_time: at,
                    anchor_step: tr.position_at(at),
                    tempo,
                }
            } else {
                Transport { tempo, ..*tr }
            };
            C::SetTempo { tempo, transport }
        }
        Edit::SetSwing { swing } => C::SetSwing {
            swing: check_swing(*swing)?,
        },
        Edit::SetSessionName { name } => C::SetSessionName {
            name: check_name("session name", name, SESSION_NAME_MAX_CHARS, true)?,
        },
        Edit::Play { from_step } => {
            let step = match from_step {
                Some(v) => check_range_i64("fromStep", *v, 0, i64::from(u32::MAX))? as f64,
                None => s.loop_region.map_or(0.0, |r| r.start as f64),
            };
            let at = ctx.now + ctx.lead_ms;
            let anchor_step = if s.transport.playing {
                // Already playing: keep going from where we are (idempotent PLAY).
                s.transport.position_at(at)
            } else {
                step
            };
            C::PlaybackStarted {
                transport: Transport {
                    playing: true,
                    anchor_time: at,
                    anchor_step,
                    tempo: s.tempo,
                },
            }
        }
        Edit::PutTrack { track: t, index } => {
            if s.tracks.len() >= MAX_TRACKS {
                return Err(Invalid(format!("a session has at most {MAX_TRACKS} tracks")).into());
            }
            t.validate()?;
            crate::catalogue::check_known(&t.instrument, &s.samples)?;
            if s.track(&t.id).is_some() {
                return Err(Invalid(format!("a track with id {:?} already exists", t.id)).into());
            }
            // Past the end (tracks were deleted since): at the end.
            let index =
                check_range_i64("index", *index, 0, MAX_TRACKS as i64)?.min(s.tracks.len() as i64);
            C::Batch {
                changes: vec![
                    C::AddTrack { track: t.clone() },
                    C::ReorderTrack {
                        track_id: t.id.clone(),
                        to_index: index as u8,
                    },
                ],
            }
        }
        Edit::SetTrackPattern {
            track_id,
            steps,
            locks,
        } => {
            track(s, track_id)?;
            for (step, lock) in locks {
                check_step_index(*step as i64)?;
                validate_lock(lock)?;
            }
            let mut locks = locks.clone();
            locks.retain(|_, l| !l.is_empty());
            C::SetTrackPattern {
                track_id: track_id.clone(),
                steps: *steps,
                locks,
            }
        }
        Edit::SetKey {
            root,
            scale,
            free,
            move_notes,
        } => {
            let key = crate::music::Key {
                root: check_range_i64("root", *root, 0, 11)? as u8,
                scale: *scale,
                free: *free,
            };
            let mut changes = vec![C::SetKey { key }];
            if *move_notes {
                for t in s.tracks.iter().filter(|t| crate::music::is_melodic(t)) {
                    let mut locks = t.locks.clone();
                    for l in locks.values_mut() {
                        if let Some(p) = l.pitch {
                            let q = crate::music::snap_pitch(&key, t, p);
                            l.pitch = (q != 0).then_some(q);
                        }
                        l.chord = l.chord.map(|p| crate::music::snap_pitch(&key, t, p));
                        *l = l.normalized();
                    }
                    locks.retain(|_, l| !l.is_empty());
                    if locks != t.locks {
                        changes.push(C::SetTrackPattern {
                            track_id: t.id.clone(),
                            steps: t.steps,
                            locks,
                        });
                    }
                }
            }
            if changes.len() == 1 {
                changes.pop().expect("one")
            } else {
                C::Batch { changes }
            }
        }
        Edit::TransformPattern { track_id, op } => {
            let t = track(s, track_id)?;
            let (steps, locks) = crate::music::transform(s, t, *op)?;
            C::SetTrackPattern {
                track_id: track_id.clone(),
                steps,
                locks,
            }
        }
        Edit::DuplicateTrack { track_id, new_id } => {
            let t = track(s, track_id)?;
            if s.tracks.len() >= MAX_TRACKS {
                return Err(Invalid(format!("a session has at most {MAX_TRACKS} tracks")).into());
            }
            check_track_id(new_id)?;
            if s.track(new_id).is_some() {
                return Err(Invalid(format!("a track with id {new_id:?} already exists")).into());
            }
            let index = s.tracks.iter().position(|x| x.id == t.id).unwrap_or(0) + 1;
            let mut copy = t.clone();
            copy.id = new_id.clone();
            C::Batch {
                changes: vec![
                    C::AddTrack { track: copy },
                    C::ReorderTrack {
                        track_id: new_id.clone(),
                        to_index: index as u8,
                    },
                ],
            }
        }
        Edit::SetEffect {
            track_id,
            param,
            value,
        } => {
            use crate::effects::Scope;
            match (param.scope(), track_id) {
                (Scope::Session, Some(_)) => {
                    return Err(Invalid(format!(
                        "effect {} belongs to the session: send it without a trackId",
                        param.name()
                    ))
                    .into())
                }
                (Scope::Track, None) => {
                    return Err(Invalid(format!(
                        "effect {} belongs to a track: say which with trackId",
                        param.name()
                    ))
                    .into())
                }
                (_, Some(id)) => {
                    track(s, id)?;
                }
                (Scope::Session, None) => {}
            }
            C::SetEffect {
                track_id: track_id.clone(),
                param: *param,
                value: param.check(*value)?,
            }
        }
        Edit::Batch { edits } => {
            if edits.len() > MAX_BATCH_EDITS {
                return Err(Invalid(format!(
                    "a batch holds at most {MAX_BATCH_EDITS} edits, not {}",
                    edits.len()
                ))
                .into());
            }
            let mut scratch = s.clone();
            let mut changes = Vec::with_capacity(edits.len());
            for e in edits {
                if edit_is_transport(e) || matches!(e, Edit::Batch { .. }) {
                    return Err(Invalid(
                        "a batch holds only pattern edits (no PLAY, STOP or BATCH)".into(),
                    )
                    .into());
                }
                let c = resolve(&scratch, e, ctx)?;
                apply(&mut scratch, &c);
                changes.push(c);
            }
            C::Batch { changes }
        }
        Edit::SetLoopRegion { region } => {
            let region = region
                .map(|r| LoopRegion::new(r.start, r.end))
                .transpose()?;
            C::SetLoopRegion {
                region,
                transport: s.transport_for_loop(region, ctx.now + ctx.lead_ms),
            }
        }
        Edit::Stop {} => {
            let at = ctx.now + ctx.lead_ms;
            C::PlaybackStopped {
                transport: Transport {
                    playing: false,
                    anchor_time: at,
                    anchor_step: s.transport.position_at(at),
                    tempo: s.tempo,
                },
            }
        }
    })
}

/// Whether an edit changes the pattern (refused on published sessions) rather than only the
/// shared transport (allowed: listeners may play a published beat together).
pub fn edit_is_transport(edit: &Edit) -> bool {
    matches!(edit, Edit::Play { .. } | Edit::Stop {})
}

/// Applies a resolved change. Deterministic and total: a change that no longer fits (its track
/// was deleted meanwhile, on an optimistic client) does nothing.
pub fn apply(s: &mut SessionState, change: &Change) {
    use Change as C;
    match change {
        C::SetStep {
            track_id,
            step,
            active,
        } => {
            if let Some(t) = s.track_mut(track_id) {
                t.steps.set(*step as usize, *active);
            }
        }
        C::SetParameterLock {
            track_id,
            step,
            lock,
        } => {
            if let Some(t) = s.track_mut(track_id) {
                match lock {
                    Some(l) => {
                        t.locks.insert(*step, *l);
                    }
                    None => {
                        t.locks.remove(step);
                    }
                }
            }
        }
        C::AddTrack { track } => {
            if s.tracks.len() < MAX_TRACKS && s.track(&track.id).is_none() {
                s.tracks.push(track.clone());
            }
        }
        C::DeleteTrack { track_id } => s.tracks.retain(|t| &t.id != track_id),
        C::ClearTrack { track_id } => {
            if let Some(t) = s.track_mut(track_id) {
                t.steps = Steps(0);
                t.locks.clear();
            }
        }
        C::ReorderTrack { track_id, to_index } => {
            if let Some(from) = s.tracks.iter().position(|t| &t.id == track_id) {
                let t = s.tracks.remove(from);
                let to = (*to_index as usize).min(s.tracks.len());
                s.tracks.insert(to, t);
            }
        }
        C::SetTrackInstrument {
            track_id,
            instrument,
        } => with_track(s, track_id, |t| t.instrument = instrument.clone()),
        C::SetTrackVolume { track_id, volume } => with_track(s, track_id, |t| t.volume = *volume),
        C::SetTrackPan { track_id, pan } => with_track(s, track_id, |t| t.pan = *pan),
        C::SetTrackTranspose {
            track_id,
            transpose,
        } => with_track(s, track_id, |t| t.transpose = *transpose),
        C::SetTrackSwing { track_id, swing } => with_track(s, track_id, |t| t.swing = *swing),
        C::SetTrackStepCount {
            track_id,
            step_count,
        } => with_track(s, track_id, |t| t.step_count = *step_count),
        C::SetTrackName { track_id, name } => with_track(s, track_id, |t| t.name = name.clone()),
        C::SetTrackMute { track_id, muted } => with_track(s, track_id, |t| t.muted = *muted),
        C::SetTrackSolo { track_id, soloed } => with_track(s, track_id, |t| t.soloed = *soloed),
        C::SetTempo { tempo, transport } => {
            s.tempo = *tempo;
            s.transport = *transport;
        }
        C::SetSwing { swing } => s.swing = *swing,
        C::SetSessionName { name } => s.name = name.clone(),
        C::PlaybackStarted { transport } | C::PlaybackStopped { transport } => {
            s.transport = *transport
        }
        C::SampleAdded { sample } => {
            if !s.samples.iter().any(|x| x.id == sample.id) {
                s.samples.push(sample.clone());
            }
        }
        C::SetTrackPattern {
            track_id,
            steps,
            locks,
        } => with_track(s, track_id, |t| {
            t.steps = *steps;
            t.locks = locks.clone();
        }),
        C::SetKey { key } => s.key = *key,
        C::SetEffect {
            track_id: None,
            param,
            value,
        } => s.effects.set(*param, *value),
        C::SetEffect {
            track_id: Some(id),
            param,
            value,
        } => with_track(s, id, |t| t.fx.set(*param, *value)),
        C::SetLoopRegion { region, transport } => {
            s.loop_region = *region;
            s.transport = *transport;
        }
        C::Batch { changes } => {
            for c in changes {
                apply(s, c);
            }
        }
    }
}

fn with_track(s: &mut SessionState, id: &str, f: impl FnOnce(&mut Track)) {
    if let Some(t) = s.track_mut(id) {
        f(t)
    }
}

/// A player as everyone sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Player {
    pub id: String,
    pub name: String,
    pub color: String,
}

/// The first message on every connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    pub protocol: u32,
    /// Stable per browser tab; a reconnect with the same id replaces the old socket.
    pub player_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The last `seq` this client applied; the server replays what it missed, or sends a snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
}

/// A message from a client.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ClientMessage {
    Control(Control),
    Edit(EditFrame),
}

/// Client messages that are not edits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "SCREAMING_SNAKE_CASE",
    rename_all_fields = "camelCase"
)]
pub enum Control {
    Hello(Hello),
    /// `rtt`: the client's best recent round trip (ms), so the session can anchor transport
    /// changes far enough ahead for its slowest player. Optional (older clients omit it).
    ClockSync {
        client_time: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt: Option<f64>,
    },
}

/// An edit with the client's mutation id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EditFrame {
    #[serde(flatten)]
    pub edit: Edit,
    pub mid: String,
}

/// An accepted change as broadcast: `{"type": <change>, "seq", "mid"?, "playerId"?, ...fields}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    #[serde(flatten)]
    pub change: Change,
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_id: Option<String>,
}

/// Read without serde's buffered path for `flatten` (see `crate::tagged`).
impl<'de> Deserialize<'de> for Applied {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Applied::from_raw(&crate::tagged::raw(d)?)
    }
}

impl Applied {
    fn from_raw<E: serde::de::Error>(raw: &serde_json::value::RawValue) -> Result<Self, E> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Rest {
            seq: u64,
            #[serde(default)]
            mid: Option<String>,
            #[serde(default)]
            player_id: Option<String>,
        }
        let change = Change::from_raw(raw)?;
        let Rest {
            seq,
            mid,
            player_id,
        } = crate::tagged::body(raw)?;
        Ok(Applied {
            change,
            seq,
            mid,
            player_id,
        })
    }
}

/// The server's answer to `HELLO`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    pub protocol: u32,
    pub session_id: String,
    /// The player this connection is (with the name and colour the server settled on).
    pub you: Player,
    pub players: Vec<Player>,
    pub server_time: f64,
    /// The seq of the last change, after `missed` is applied.
    pub seq: u64,
    pub read_only: bool,
    /// The whole state at `snapshot_seq`, when the client is new or too far behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SessionState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_seq: Option<u64>,
    /// Changes after the client's `lastSeq` (or after the snapshot), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<Applied>,
}

/// Error codes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    InvalidMessage,
    InvalidEdit,
    ReadOnly,
    RateLimited,
    TooLarge,
    SessionFull,
    UnsupportedProtocol,
    HelloRequired,
    Replaced,
    /// A mutation id this player already used for a different edit (the edit is not applied).
    MidReused,
}

/// A message from the server.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "SCREAMING_SNAKE_CASE",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    Welcome(Box<Welcome>),
    PlayerJoined {
        player: Player,
    },
    PlayerLeft {
        player_id: String,
    },
    ClockSyncResponse {
        client_time: f64,
        server_time: f64,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mid: Option<String>,
    },
    /// Every other type is a [`Change`] (`SET_STEP`, `PLAYBACK_STARTED`, ...).
    #[serde(untagged)]
    Applied(Applied),
}

/// Read without serde's buffered path for tagged and untagged enums (see `crate::tagged`); the
/// fields are those of the variants above.
impl<'de> Deserialize<'de> for ServerMessage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::tagged::body;
        #[derive(Deserialize)]
        struct Joined {
            player: Player,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Left {
            player_id: String,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ClockSyncResponse {
            client_time: f64,
            server_time: f64,
        }
        #[derive(Deserialize)]
        struct Error {
            code: ErrorCode,
            message: String,
            #[serde(default)]
            mid: Option<String>,
        }
        let raw = crate::tagged::raw(d)?;
        Ok(match crate::tagged::tag::<D::Error>(&raw)?.as_ref() {
            "WELCOME" => ServerMessage::Welcome(body(&raw)?),
            "PLAYER_JOINED" => {
                let Joined { player } = body(&raw)?;
                ServerMessage::PlayerJoined { player }
            }
            "PLAYER_LEFT" => {
                let Left { player_id } = body(&raw)?;
                ServerMessage::PlayerLeft { player_id }
            }
            "CLOCK_SYNC_RESPONSE" => {
                let ClockSyncResponse {
                    client_time,
                    server_time,
                } = body(&raw)?;
                ServerMessage::ClockSyncResponse {
                    client_time,
                    server_time,
                }
            }
            "ERROR" => {
                let Error { code, message, mid } = body(&raw)?;
                ServerMessage::Error { code, message, mid }
            }
            _ => ServerMessage::Applied(Applied::from_raw(&raw)?),
        })
    }
}

/// Why a client frame could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    pub code: ErrorCode,
    pub message: String,
    pub mid: Option<String>,
}

/// Every edit type name, for dispatch and for tests that every edit is wired.
pub const EDIT_TYPES: &[&str] = &[
    "TOGGLE_STEP",
    "SET_STEP",
    "SET_PARAMETER_LOCK",
    "ADD_TRACK",
    "DELETE_TRACK",
    "CLEAR_TRACK",
    "REORDER_TRACK",
    "SET_TRACK_INSTRUMENT",
    "SET_TRACK_VOLUME",
    "SET_TRACK_PAN",
    "SET_TRACK_TRANSPOSE",
    "SET_TRACK_SWING",
    "SET_TRACK_STEP_COUNT",
    "SET_TRACK_NAME",
    "SET_TRACK_MUTE",
    "SET_TRACK_SOLO",
    "SET_TEMPO",
    "SET_SWING",
    "SET_SESSION_NAME",
    "PUT_TRACK",
    "SET_TRACK_PATTERN",
    "SET_KEY",
    "TRANSFORM_PATTERN",
    "DUPLICATE_TRACK",
    "SET_EFFECT",
    "BATCH",
    "SET_LOOP_REGION",
    "PLAY",
    "STOP",
];

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    ty: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    mid: Option<serde_json::Value>,
}

impl ClientMessage {
    /// Decodes a client frame with an error precise enough to show the sender.
    pub fn decode(text: &str) -> Result<ClientMessage, DecodeError> {
        let err = |code, message: String, mid: Option<String>| DecodeError { code, message, mid };
        let head: Head = serde_json::from_str(text).map_err(|e| {
            err(
                ErrorCode::BadJson,
                format!("message is not a JSON object: {e}"),
                None,
            )
        })?;
        let mid = match &head.mid {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let Some(ty) = head.ty else {
            return Err(err(
                ErrorCode::InvalidMessage,
                "message has no \"type\"".into(),
                mid,
            ));
        };
        if EDIT_TYPES.contains(&ty.as_ref()) {
            let frame: EditFrame = serde_json::from_str(text).map_err(|e| {
                err(
                    ErrorCode::InvalidMessage,
                    format!("invalid {ty} message: {e}"),
                    mid.clone(),
                )
            })?;
            if frame.mid.is_empty()
                || frame.mid.chars().count() > MUTATION_ID_MAX_CHARS
                || frame.mid.chars().any(char::is_control)
            {
                return Err(err(
                    ErrorCode::InvalidMessage,
                    format!("mid must be 1 to {MUTATION_ID_MAX_CHARS} printable characters"),
                    None,
                ));
            }
            return Ok(ClientMessage::Edit(frame));
        }
        match ty.as_ref() {
            "HELLO" | "CLOCK_SYNC" => serde_json::from_str(text)
                .map(ClientMessage::Control)
                .map_err(|e| {
                    err(
                        ErrorCode::InvalidMessage,
                        format!("invalid {ty} message: {e}"),
                        None,
                    )
                }),
            other => Err(err(
                ErrorCode::UnknownType,
                format!("unknown message type {other:?}"),
                mid,
            )),
        }
    }

    pub fn encode(&self) -> String {
        to_canonical_json(self)
    }
}

impl ServerMessage {
    pub fn encode(&self) -> String {
        to_canonical_json(self)
    }

    /// Decodes a server frame. Clients ignore types they do not know (an old tab talking to a
    /// newer server), so this returns `None` for them rather than an error.
    pub fn decode(text: &str) -> Option<ServerMessage> {
        serde_json::from_str(text).ok()
    }
}

/// A fingerprint of an edit (FNV-1a over its canonical JSON): tells a true resend (same mutation
/// id, same edit) from a reused mutation id carrying a different edit.
pub fn edit_fingerprint(edit: &Edit) -> u64 {
    let text = serde_json::to_string(edit).unwrap_or_default();
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}
