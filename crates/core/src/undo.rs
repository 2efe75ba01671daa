//! Undo and redo of one player's own edits, in a session others edit at the same time.
//!
//! An undo is an ordinary edit (usually a `BATCH`) sent through the protocol, so it is validated,
//! broadcast and persisted like any other. Entries are recorded from the *server's* order: when
//! the server acknowledges one of our edits, the confirmed state just before it and the change
//! it became give the exact inverse ([`History::record`]).
//!
//! Another player's later change is never silently overwritten. Each inverse part names what it
//! touches (a [`Target`]: a step, a lock, a track's field, a whole track, the tempo, ...). A
//! confirmed change by someone else that touches the same thing marks the part as taken over;
//! when the undo is made, such parts (and any whose value is no longer the one our edit left,
//! e.g. after a reconnect that skipped the details) are left out, and the caller tells the player
//! how many were skipped.

use std::collections::VecDeque;

use serde_json::Value;

use crate::limits::UNDO_LEVELS;
use crate::model::{Lock, SessionState};
use crate::protocol::{apply, Change, Edit, LockRequest};

/// One thing an edit can change.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Step(String, u8),
    Lock(String, u8),
    /// All steps and locks of a track.
    Pattern(String),
    /// A track as a whole: whether it exists, and everything in it.
    Track(String),
    /// Where a track is in the list.
    Position(String),
    Field(String, Field),
    Tempo,
    Swing,
    SessionName,
    Key,
    /// One effect parameter: of the master chain, or of a track.
    Effect(Option<String>, crate::effects::Fx),
    LoopRegion,
}

/// A track's setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Instrument,
    Volume,
    Pan,
    Transpose,
    Swing,
    StepCount,
    Name,
    Muted,
    Soloed,
}

impl Target {
    /// The track this target belongs to, if any.
    pub fn track(&self) -> Option<&str> {
        match self {
            Target::Step(t, _)
            | Target::Lock(t, _)
            | Target::Pattern(t)
            | Target::Track(t)
            | Target::Position(t)
            | Target::Field(t, _)
            | Target::Effect(Some(t), _) => Some(t),
            _ => None,
        }
    }

    /// Whether a change to `self` also changes `other` (or the other way round).
    pub fn overlaps(&self, other: &Target) -> bool {
        use Target as T;
        if self == other {
            return true;
        }
        match (self.track(), other.track()) {
            (Some(a), Some(b)) if a == b => matches!(
                (self, other),
                (T::Track(_), _)
                    | (_, T::Track(_))
                    | (T::Pattern(_), T::Step(..) | T::Lock(..))
                    | (T::Step(..) | T::Lock(..), T::Pattern(_))
            ),
            _ => false,
        }
    }

    /// The current value of this target in `s` (`null` when its track is gone).
    pub fn read(&self, s: &SessionState) -> Value {
        let j = |v: &dyn erased::Ser| v.json();
        let Some(id) = self.track() else {
            return match self {
                Target::Tempo => j(&s.tempo),
                Target::Swing => j(&s.swing),
                Target::SessionName => j(&s.name),
                Target::Key => j(&s.key),
                Target::Effect(None, p) => j(&s.effects.get(*p)),
                Target::LoopRegion => j(&s.loop_region),
                _ => Value::Null,
            };
        };
        let Some((index, t)) = s.tracks.iter().enumerate().find(|(_, t)| t.id == id) else {
            return Value::Null;
        };
        match self {
            Target::Step(_, i) => j(&t.steps.get(*i as usize)),
            Target::Lock(_, i) => j(&t.locks.get(i)),
            Target::Pattern(_) => j(&(&t.steps, &t.locks)),
            Target::Track(_) => j(t),
            Target::Position(_) => j(&index),
            Target::Field(_, f) => match f {
                Field::Instrument => j(&t.instrument),
                Field::Volume => j(&t.volume),
                Field::Pan => j(&t.pan),
                Field::Transpose => j(&t.transpose),
                Field::Swing => j(&t.swing),
                Field::StepCount => j(&t.step_count),
                Field::Name => j(&t.name),
                Field::Muted => j(&t.muted),
                Field::Soloed => j(&t.soloed),
            },
            Target::Effect(_, p) => j(&t.fx.get(*p)),
            _ => Value::Null,
        }
    }
}

mod erased {
    /// Any serializable value as JSON (one helper instead of a generic closure).
    pub trait Ser {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}

/// What a change touches (for marking others' changes against our entries).
pub fn touched(change: &Change) -> Vec<Target> {
    use Change as C;
    let one = |t: Target| vec![t];
    match change {
        C::SetStep { track_id, step, .. } => one(Target::Step(track_id.clone(), *step)),
        C::SetParameterLock { track_id, step, .. } => one(Target::Lock(track_id.clone(), *step)),
        C::AddTrack { track } => one(Target::Track(track.id.clone())),
        C::DeleteTrack { track_id } => one(Target::Track(track_id.clone())),
        C::ClearTrack { track_id } | C::SetTrackPattern { track_id, .. } => {
            one(Target::Pattern(track_id.clone()))
        }
        C::ReorderTrack { track_id, .. } => one(Target::Position(track_id.clone())),
        C::SetTrackInstrument { track_id, .. } => field(track_id, Field::Instrument),
        C::SetTrackVolume { track_id, .. } => field(track_id, Field::Volume),
        C::SetTrackPan { track_id, .. } => field(track_id, Field::Pan),
        C::SetTrackTranspose { track_id, .. } => field(track_id, Field::Transpose),
        C::SetTrackSwing { track_id, .. } => field(track_id, Field::Swing),
        C::SetTrackStepCount { track_id, .. } => field(track_id, Field::StepCount),
        C::SetTrackName { track_id, .. } => field(track_id, Field::Name),
        C::SetTrackMute { track_id, .. } => field(track_id, Field::Muted),
        C::SetTrackSolo { track_id, .. } => field(track_id, Field::Soloed),
        C::SetTempo { .. } => one(Target::Tempo),
        C::SetSwing { .. } => one(Target::Swing),
        C::SetSessionName { .. } => one(Target::SessionName),
        C::SetKey { .. } => one(Target::Key),
        C::SetEffect {
            track_id, param, ..
        } => one(Target::Effect(track_id.clone(), *param)),
        C::SetLoopRegion { .. } => one(Target::LoopRegion),
        C::PlaybackStarted { .. } | C::PlaybackStopped { .. } | C::SampleAdded { .. } => vec![],
        C::Batch { changes } => changes.iter().flat_map(touched).collect(),
    }
}

fn field(track_id: &str, f: Field) -> Vec<Target> {
    vec![Target::Field(track_id.to_string(), f)]
}

/// One inverse part: put `target` back with `restore`, if it still holds `after`.
#[derive(Clone, Debug)]
struct Part {
    target: Target,
    after: Value,
    restore: Edit,
    taken_over: bool,
}

/// The inverse of one acknowledged edit.
#[derive(Clone, Debug)]
struct Entry {
    parts: Vec<Part>,
}

/// Whether an acknowledged edit was a new edit, an undo or a redo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    New,
    Undo,
    Redo,
}

/// What [`History::undo`] or [`History::redo`] produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The edit to send (`None` when every part was taken over by someone else).
    pub edit: Option<Edit>,
    /// Parts left out because another player changed them since.
    pub skipped: usize,
}

/// A player's undo and redo stacks.
#[derive(Clone, Debug, Default)]
pub struct History {
    undo: VecDeque<Entry>,
    redo: Vec<Entry>,
}

impl History {
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    pub fn undo_levels(&self) -> usize {
        self.undo.len()
    }

    /// Our edit was acknowledged as `change`, applied to `before` (the confirmed state just
    /// before it, in the server's order).
    pub fn record(&mut self, before: &SessionState, change: &Change, kind: Kind) {
        let Some(entry) = inverse(before, change) else {
            return;
        };
        match kind {
            Kind::New => {
                self.redo.clear();
                self.push_undo(entry);
            }
            Kind::Redo => self.push_undo(entry),
            Kind::Undo => self.redo.push(entry),
        }
    }

    fn push_undo(&mut self, e: Entry) {
        self.undo.push_back(e);
        while self.undo.len() > UNDO_LEVELS {
            self.undo.pop_front();
        }
    }

    /// Someone else's change was confirmed: parts it touches are theirs now.
    pub fn taken_over(&mut self, change: &Change) {
        let touched = touched(change);
        if touched.is_empty() {
            return;
        }
        for e in self.undo.iter_mut().chain(self.redo.iter_mut()) {
            for p in &mut e.parts {
                if touched.iter().any(|t| t.overlaps(&p.target)) {
                    p.taken_over = true;
                }
            }
        }
    }

    /// Takes the newest undo entry and makes its edit against the current state.
    pub fn undo(&mut self, current: &SessionState) -> Option<Step> {
        let e = self.undo.pop_back()?;
        Some(make(e, current))
    }

    pub fn redo(&mut self, current: &SessionState) -> Option<Step> {
        let e = self.redo.pop()?;
        Some(make(e, current))
    }
}

fn make(e: Entry, current: &SessionState) -> Step {
    let mut edits = Vec::new();
    let mut skipped = 0;
    for p in e.parts {
        if p.taken_over || p.target.read(current) != p.after {
            skipped += 1;
            continue;
        }
        let mut restore = p.restore;
        if let Edit::ReorderTrack { to_index, .. } = &mut restore {
            // Tracks deleted since: as far as the list now goes.
            *to_index = (*to_index).min(current.tracks.len().saturating_sub(1) as i64);
        }
        edits.push(restore);
    }
    let edit = match edits.len() {
        0 => None,
        1 => edits.pop(),
        _ => Some(Edit::Batch { edits }),
    };
    Step { edit, skipped }
}

/// The inverse of `change` applied to `before`, or `None` if it changed nothing undoable.
fn inverse(before: &SessionState, change: &Change) -> Option<Entry> {
    let mut state = before.clone();
    let mut parts = Vec::new();
    collect(&mut state, change, &mut parts);
    // Later parts are undone first; a part that changed nothing is dropped.
    parts.reverse();
    let mut kept = Vec::new();
    for (target, prior, restore) in parts {
        let after = target.read(&state);
        if after != prior {
            kept.push(Part {
                target,
                after,
                restore,
                taken_over: false,
            });
        }
    }
    (!kept.is_empty()).then_some(Entry { parts: kept })
}

/// Applies `change` to `state`, noting for each thing it touches its prior value and the edit
/// that puts it back.
fn collect(state: &mut SessionState, change: &Change, out: &mut Vec<(Target, Value, Edit)>) {
    use Change as C;
    if let C::Batch { changes } = change {
        for c in changes {
            collect(state, c, out);
        }
        return;
    }
    let s: &SessionState = state;
    let track = |id: &str| s.track(id);
    let index = |id: &str| s.tracks.iter().position(|t| t.id == id);
    let mut note = |target: Target, restore: Edit| {
        let prior = target.read(s);
        out.push((target, prior, restore));
    };
    match change {
        C::SetStep { track_id, step, .. } => {
            if let Some(t) = track(track_id) {
                note(
                    Target::Step(track_id.clone(), *step),
                    Edit::SetStep {
                        track_id: track_id.clone(),
                        step: *step as i64,
                        active: t.steps.get(*step as usize),
                    },
                );
            }
        }
        C::SetParameterLock { track_id, step, .. } => {
            if let Some(t) = track(track_id) {
                note(
                    Target::Lock(track_id.clone(), *step),
                    Edit::SetParameterLock {
                        track_id: track_id.clone(),
                        step: *step as i64,
                        lock: t.locks.get(step).map(lock_request),
                    },
                );
            }
        }
        C::AddTrack { track: t } => {
            if track(&t.id).is_none() {
                note(
                    Target::Track(t.id.clone()),
                    Edit::DeleteTrack {
                        track_id: t.id.clone(),
                    },
                );
            }
        }
        C::DeleteTrack { track_id } => {
            if let (Some(t), Some(i)) = (track(track_id), index(track_id)) {
                note(
                    Target::Track(track_id.clone()),
                    Edit::PutTrack {
                        track: t.clone(),
                        index: i as i64,
                    },
                );
            }
        }
        C::ClearTrack { track_id } | C::SetTrackPattern { track_id, .. } => {
            if let Some(t) = track(track_id) {
                note(
                    Target::Pattern(track_id.clone()),
                    Edit::SetTrackPattern {
                        track_id: track_id.clone(),
                        steps: t.steps,
                        locks: t.locks.clone(),
                    },
                );
            }
        }
        C::ReorderTrack { track_id, .. } => {
            if let Some(i) = index(track_id) {
                note(
                    Target::Position(track_id.clone()),
                    Edit::ReorderTrack {
                        track_id: track_id.clone(),
                        to_index: i as i64,
                    },
                );
            }
        }
        C::SetTempo { .. } => note(
            Target::Tempo,
            Edit::SetTempo {
                tempo: s.tempo as i64,
            },
        ),
        C::SetSwing { .. } => note(
            Target::Swing,
            Edit::SetSwing {
                swing: s.swing as i64,
            },
        ),
        C::SetSessionName { .. } => note(
            Target::SessionName,
            Edit::SetSessionName {
                name: s.name.clone(),
            },
        ),
        C::SetKey { .. } => note(
            Target::Key,
            Edit::SetKey {
                root: s.key.root as i64,
                scale: s.key.scale,
                free: s.key.free,
                move_notes: false,
            },
        ),
        C::SetEffect {
            track_id, param, ..
        } => {
            let before = match track_id {
                None => Some(s.effects.get(*param)),
                Some(id) => track(id).map(|t| t.fx.get(*param)),
            };
            if let Some(v) = before {
                note(
                    Target::Effect(track_id.clone(), *param),
                    Edit::SetEffect {
                        track_id: track_id.clone(),
                        param: *param,
                        value: v as f64,
                    },
                );
            }
        }
        C::SetLoopRegion { .. } => note(
            Target::LoopRegion,
            Edit::SetLoopRegion {
                region: s.loop_region.map(|r| crate::protocol::LoopRegionRequest {
                    start: r.start as i64,
                    end: r.end as i64,
                }),
            },
        ),
        C::PlaybackStarted { .. } | C::PlaybackStopped { .. } | C::SampleAdded { .. } => {}
        C::Batch { .. } => unreachable!("handled above"),
        other => {
            // The per-track settings.
            let targets = touched(other);
            let [Target::Field(id, f)] = targets.as_slice() else {
                return;
            };
            let f = *f;
            if let Some(t) = track(id) {
                let track_id = id.clone();
                let restore = match f {
                    Field::Instrument => Edit::SetTrackInstrument {
                        track_id,
                        instrument: t.instrument.clone(),
                    },
                    Field::Volume => Edit::SetTrackVolume {
                        track_id,
                        volume: t.volume as f64,
                    },
                    Field::Pan => Edit::SetTrackPan {
                        track_id,
                        pan: t.pan as f64,
                    },
                    Field::Transpose => Edit::SetTrackTranspose {
                        track_id,
                        transpose: t.transpose as i64,
                    },
                    Field::Swing => Edit::SetTrackSwing {
                        track_id,
                        swing: t.swing as i64,
                    },
                    Field::StepCount => Edit::SetTrackStepCount {
                        track_id,
                        step_count: t.step_count as i64,
                    },
                    Field::Name => Edit::SetTrackName {
                        track_id,
                        name: t.name.clone(),
                    },
                    Field::Muted => Edit::SetTrackMute {
                        track_id,
                        muted: t.muted,
                    },
                    Field::Soloed => Edit::SetTrackSolo {
                        track_id,
                        soloed: t.soloed,
                    },
                };
                note(Target::Field(id.clone(), f), restore);
            }
        }
    }
    apply(state, change);
}

fn lock_request(l: &Lock) -> LockRequest {
    LockRequest {
        pitch: l.pitch.map(i64::from),
        volume: l.volume.map(f64::from),
        tie: l.tie,
        cutoff: l.cutoff.map(f64::from),
        chord: l.chord.iter().map(i64::from).collect(),
    }
}
