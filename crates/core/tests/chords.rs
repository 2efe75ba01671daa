//! Chords: a step of a melodic track holding up to four notes. Canonical JSON (old documents
//! unchanged), validation, key lock, the pattern tools, SET_KEY's moving of notes, and undo.

mod common;

use common::Sim;
use keyboardia_core::model::{to_canonical_json, validate_lock, Chord, Lock, SessionState};
use keyboardia_core::music::{Key, PatternOp, Scale};
use keyboardia_core::protocol::*;
use keyboardia_core::*;

fn ctx() -> ResolveCtx {
    ResolveCtx {
        now: 1_000.0,
        lead_ms: 100.0,
    }
}

fn chord_lock(track: &str, step: i64, pitch: Option<i64>, chord: &[i64]) -> Edit {
    Edit::SetParameterLock {
        track_id: track.into(),
        step,
        lock: Some(LockRequest {
            pitch,
            chord: chord.to_vec(),
            ..LockRequest::default()
        }),
    }
}

fn resolved_lock(s: &SessionState, e: &Edit) -> Result<Option<Lock>, EditError> {
    match resolve(s, e, ctx())? {
        Change::SetParameterLock { lock, .. } => Ok(lock),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_chord_is_sorted_without_repeats_and_omitted_when_empty() {
    let c = Chord::new(&[7, 4, 7]).unwrap();
    assert_eq!(c.as_slice(), &[4, 7]);
    let l = Lock {
        pitch: Some(0),
        chord: c,
        ..Lock::default()
    };
    assert_eq!(to_canonical_json(&l), r#"{"pitch":0,"chord":[4,7]}"#);
    // Any order reads back as the one canonical order.
    let read: Lock = serde_json::from_str(r#"{"chord":[7,-5,4]}"#).unwrap();
    assert_eq!(to_canonical_json(&read), r#"{"chord":[-5,4,7]}"#);
    assert_eq!(read.notes().collect::<Vec<_>>(), [0, -5, 4, 7]);
    // A lock without a chord is the bytes it always was.
    for old in [
        r#"{"pitch":3}"#,
        r#"{"volume":0.5,"tie":true}"#,
        r#"{"pitch":-2,"volume":0.25}"#,
    ] {
        let l: Lock = serde_json::from_str(old).unwrap();
        assert!(l.chord.is_empty());
        assert_eq!(to_canonical_json(&l), old);
    }
}

#[test]
fn an_old_document_loads_and_saves_byte_identical() {
    let path = format!(
        "{}/tests/data/storage/v1/snapshot.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let state = storage::decode_snapshot(text.trim()).unwrap();
    assert!(
        !state.tracks.iter().all(|t| t.locks.is_empty()),
        "it has locks"
    );
    assert!(state
        .tracks
        .iter()
        .all(|t| t.locks.values().all(|l| l.chord.is_empty())));
    // The v1 snapshot is the bare state: it encodes to exactly its bytes.
    assert_eq!(to_canonical_json(&state), text.trim());
}

#[test]
fn chords_are_validated() {
    let e = Chord::new(&[1, 2, 3, 5]).unwrap_err();
    assert!(e.0.contains("at most 4 notes"), "{e}");
    let e = Chord::new(&[30]).unwrap_err();
    assert!(e.0.contains("chord note must be between -24 and 24"), "{e}");
    assert!(serde_json::from_str::<Lock>(r#"{"chord":[1,2,3,4]}"#).is_err());
    assert!(serde_json::from_str::<Lock>(r#"{"chord":[-25]}"#).is_err());
    // A chord note may not repeat the step's own pitch (a stored or pasted lock).
    let l = Lock {
        pitch: Some(4),
        chord: Chord::new(&[4, 7]).unwrap(),
        ..Lock::default()
    };
    assert!(validate_lock(&l).unwrap_err().0.contains("repeats"));
    assert!(validate_lock(&l.normalized()).is_ok());
    assert_eq!(l.normalized().chord.as_slice(), &[7]);
}

#[test]
fn a_chord_lock_is_accepted_on_melodic_tracks_only() {
    let s = SessionState::starter();
    let l = resolved_lock(&s, &chord_lock("bass", 0, None, &[7, 4]))
        .unwrap()
        .unwrap();
    assert_eq!(l.chord.as_slice(), &[4, 7]);
    assert_eq!(l.pitch, None);
    // The root repeated in the chord is one note.
    let l = resolved_lock(&s, &chord_lock("bass", 0, Some(0), &[0, 4, 7]))
        .unwrap()
        .unwrap();
    assert_eq!(l.chord.as_slice(), &[4, 7]);
    // Five notes: refused, with the rule.
    let e = resolved_lock(&s, &chord_lock("bass", 0, Some(0), &[2, 4, 7, 11])).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidEdit);
    assert!(e.to_string().contains("at most 4 notes"), "{e}");
    // A drum track: refused, saying why.
    let e = resolved_lock(&s, &chord_lock("kick", 0, None, &[4])).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidEdit);
    assert!(e.to_string().contains("not melodic"), "{e}");
    // A single note on a drum track is still a pitch lock.
    assert!(resolved_lock(&s, &chord_lock("kick", 0, Some(2), &[])).is_ok());
    // Out of range.
    assert!(resolved_lock(&s, &chord_lock("bass", 0, None, &[25])).is_err());
    // The request travels as JSON with wide numbers (a bad one is a range error).
    let frame = ClientMessage::decode(
        r#"{"type":"SET_PARAMETER_LOCK","trackId":"bass","step":2,"lock":{"chord":[3,7.0]},"mid":"a"}"#,
    )
    .unwrap();
    let ClientMessage::Edit(f) = frame else {
        panic!()
    };
    let l = resolved_lock(&s, &f.edit).unwrap().unwrap();
    assert_eq!(l.chord.as_slice(), &[3, 7]);
    let frame = ClientMessage::decode(
        r#"{"type":"SET_PARAMETER_LOCK","trackId":"bass","step":2,"lock":{"chord":[3.5]},"mid":"a"}"#,
    )
    .unwrap();
    let ClientMessage::Edit(f) = frame else {
        panic!()
    };
    assert!(resolved_lock(&s, &f.edit).is_err());
}

fn c_major(s: &mut SessionState) {
    s.key = Key {
        root: 0,
        scale: Scale::Major,
        free: false,
    };
}

#[test]
fn key_lock_snaps_every_note_of_a_chord() {
    let mut s = SessionState::starter();
    c_major(&mut s);
    // The bass plays C; C# snaps down to C (the root: one note), F# down to F.
    let l = resolved_lock(&s, &chord_lock("bass", 0, None, &[1, 6, 8]))
        .unwrap()
        .unwrap();
    assert_eq!(l.chord.as_slice(), &[5, 7]);
    // Key lock off: the notes stay.
    s.key.free = true;
    let l = resolved_lock(&s, &chord_lock("bass", 0, None, &[1, 6, 8]))
        .unwrap()
        .unwrap();
    assert_eq!(l.chord.as_slice(), &[1, 6, 8]);
}

#[test]
fn set_key_moves_chord_notes_into_the_key() {
    let mut s = SessionState::starter();
    let lock = Lock {
        pitch: Some(0),
        chord: Chord::new(&[3, 6, 10]).unwrap(),
        ..Lock::default()
    };
    s.track_mut("bass").unwrap().locks.insert(0, lock);
    let c = resolve(
        &s,
        &Edit::SetKey {
            root: 0,
            scale: Scale::Major,
            free: false,
            move_notes: true,
        },
        ctx(),
    )
    .unwrap();
    apply(&mut s, &c);
    let l = s.track("bass").unwrap().locks[&0];
    // Eb -> D, F# -> F, Bb -> A (ties go down).
    assert_eq!(l.chord.as_slice(), &[2, 5, 9]);
    let base = music::track_base(s.track("bass").unwrap());
    assert!(l.notes().all(|n| s.key.contains(base + n as i32)));
}

#[test]
fn shifting_moves_the_whole_chord_and_rotating_carries_it() {
    let mut s = SessionState::starter();
    c_major(&mut s);
    let lock = Lock {
        pitch: None,
        chord: Chord::new(&[4, 7]).unwrap(),
        ..Lock::default()
    };
    let t = s.track_mut("bass").unwrap();
    t.locks.clear();
    t.locks.insert(0, lock);
    let t = s.track("bass").unwrap().clone();
    // C E G up one degree: D F A.
    let (_, locks) = music::transform(&s, &t, PatternOp::ShiftUp).unwrap();
    assert_eq!(locks[&0].pitch, Some(2));
    assert_eq!(locks[&0].chord.as_slice(), &[5, 9]);
    let (_, locks) = music::transform(&s, &t, PatternOp::ShiftDown).unwrap();
    assert_eq!(locks[&0].pitch, Some(-1));
    assert_eq!(locks[&0].chord.as_slice(), &[2, 5]);
    // Rotating moves the chord with its step.
    let (_, locks) = music::transform(&s, &t, PatternOp::RotateRight).unwrap();
    assert_eq!(locks[&1].chord.as_slice(), &[4, 7]);
    // A chord at the top of the range cannot go higher: refused, not clipped.
    let mut high = t.clone();
    high.locks.insert(
        0,
        Lock {
            pitch: Some(20),
            chord: Chord::new(&[24]).unwrap(),
            ..Lock::default()
        },
    );
    let e = music::transform(&s, &high, PatternOp::ShiftUp).unwrap_err();
    assert!(e.0.contains("beyond the pitch range"), "{e}");
}

#[test]
fn a_chord_travels_to_every_player_and_undoes_as_one_lock() {
    let mut sim = Sim::new(2, LiveConfig::default());
    sim.connect(0);
    sim.connect(1);
    sim.settle();
    let before = sim.server.state().track("bass").unwrap().locks.clone();
    sim.edit(0, chord_lock("bass", 6, Some(3), &[7, 10]))
        .unwrap();
    sim.settle();
    let l = sim.server.state().track("bass").unwrap().locks[&6];
    assert_eq!(l.pitch, Some(3));
    assert_eq!(l.chord.as_slice(), &[7, 10]);
    assert_eq!(sim.view(1), sim.server.state());
    assert_eq!(sim.undo(0, false), Some(0));
    sim.settle();
    assert_eq!(sim.server.state().track("bass").unwrap().locks, before);
    assert_eq!(sim.undo(0, true), Some(0));
    sim.settle();
    assert_eq!(
        sim.server.state().track("bass").unwrap().locks[&6]
            .chord
            .as_slice(),
        &[7, 10]
    );
    assert_eq!(sim.view(1), sim.server.state());
    // A chord on a drum track is refused by the server too.
    sim.send_raw(
        1,
        r#"{"type":"SET_PARAMETER_LOCK","mid":"d1","trackId":"kick","step":0,"lock":{"chord":[4]}}"#,
    );
    sim.settle();
    assert!(sim.errors(1).contains(&ErrorCode::InvalidEdit));
    assert!(sim.server.state().track("kick").unwrap().locks.is_empty());
}
