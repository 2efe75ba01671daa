//! Undo and redo through the real protocol: a player's own edits only, never someone else's.

mod common;

use common::Sim;
use keyboardia_core::protocol::*;
use keyboardia_core::*;

fn set(sim: &mut Sim, c: usize, track: &str, step: i64, active: bool) {
    sim.edit(
        c,
        Edit::SetStep {
            track_id: track.into(),
            step,
            active,
        },
    )
    .unwrap();
    sim.settle();
}

fn two() -> Sim {
    let mut sim = Sim::new(2, LiveConfig::default());
    sim.connect(0);
    sim.connect(1);
    sim.settle();
    sim
}

fn step(sim: &Sim, track: &str, i: usize) -> bool {
    sim.server.state().track(track).unwrap().steps.get(i)
}

#[test]
fn undo_and_redo_a_step_for_everyone() {
    let mut sim = two();
    assert!(!step(&sim, "kick", 1));
    set(&mut sim, 0, "kick", 1, true);
    assert!(step(&sim, "kick", 1));
    assert_eq!(sim.undo(0, false), Some(0));
    sim.settle();
    assert!(!step(&sim, "kick", 1), "undone on the server");
    assert_eq!(sim.view(1), sim.server.state(), "and for the other player");
    assert_eq!(sim.undo(0, true), Some(0));
    sim.settle();
    assert!(step(&sim, "kick", 1), "redone");
    assert_eq!(sim.view(0), sim.server.state());
    assert_eq!(sim.view(1), sim.server.state());
}

#[test]
fn only_own_edits_are_undone() {
    let mut sim = two();
    set(&mut sim, 0, "kick", 1, true);
    set(&mut sim, 1, "kick", 2, true);
    assert_eq!(sim.undo(1, false), Some(0));
    sim.settle();
    assert!(!step(&sim, "kick", 2), "B's own edit undone");
    assert!(step(&sim, "kick", 1), "A's edit stays");
    assert_eq!(sim.undo(1, false), None, "B has nothing more to undo");
}

#[test]
fn a_later_change_by_someone_else_is_never_overwritten() {
    let mut sim = two();
    set(&mut sim, 0, "kick", 1, true);
    set(&mut sim, 1, "kick", 1, true); // the same value: still B's now
    let before = sim.server.seq();
    assert_eq!(sim.undo(0, false), Some(1), "the one part was skipped");
    sim.settle();
    assert_eq!(sim.server.seq(), before, "nothing was sent");
    assert!(step(&sim, "kick", 1), "B's step stays on");
}

#[test]
fn a_batch_undo_skips_only_the_parts_taken_over() {
    let mut sim = two();
    // A clears the bass track (steps and locks), B then sets one of its steps again.
    let bass = sim.server.state().track("bass").unwrap().clone();
    sim.edit(
        0,
        Edit::ClearTrack {
            track_id: "bass".into(),
        },
    )
    .unwrap();
    sim.settle();
    sim.edit(0, Edit::SetTempo { tempo: 150 }).unwrap();
    sim.settle();
    set(&mut sim, 1, "bass", 5, true);
    // Undo the tempo: A's own, untouched.
    assert_eq!(sim.undo(0, false), Some(0));
    sim.settle();
    assert_eq!(sim.server.state().tempo, 120);
    // Undo the clear: B changed the pattern since, so it is skipped.
    assert_eq!(sim.undo(0, false), Some(1));
    sim.settle();
    let now = sim.server.state().track("bass").unwrap();
    assert!(now.steps.get(5) && now.steps.active().count() == 1);
    assert_ne!(now.steps, bass.steps);
}

#[test]
fn a_deleted_track_comes_back_whole_in_its_place() {
    let mut sim = two();
    set(&mut sim, 1, "snare", 7, true); // B's step on the snare
    let snare = sim.server.state().track("snare").unwrap().clone();
    let index = sim
        .server
        .state()
        .tracks
        .iter()
        .position(|t| t.id == "snare")
        .unwrap();
    sim.edit(
        0,
        Edit::DeleteTrack {
            track_id: "snare".into(),
        },
    )
    .unwrap();
    sim.settle();
    assert!(sim.server.state().track("snare").is_none());
    assert_eq!(sim.undo(0, false), Some(0));
    sim.settle();
    let s = sim.server.state();
    assert_eq!(
        s.track("snare"),
        Some(&snare),
        "with B's step and every setting"
    );
    assert_eq!(s.tracks[index].id, "snare", "at the same index");
    assert_eq!(sim.view(1), s);
}

#[test]
fn a_hundred_and_fifty_levels_and_a_new_edit_clears_redo() {
    let mut sim = two();
    let start = sim.server.state().clone();
    for i in 0..150 {
        sim.edit(
            0,
            Edit::SetTrackVolume {
                track_id: "kick".into(),
                volume: (i % 100) as f64 / 100.0,
            },
        )
        .unwrap();
        sim.advance(200.0);
        sim.settle();
    }
    for _ in 0..150 {
        assert!(sim.undo(0, false).is_some());
        sim.advance(200.0);
        sim.settle();
    }
    assert_eq!(sim.server.state().track("kick"), start.track("kick"));
    assert!(sim.clients[0].sync.can_redo());
    set(&mut sim, 0, "kick", 3, true);
    assert!(
        !sim.clients[0].sync.can_redo(),
        "a new edit ends the redo chain"
    );
}

#[test]
fn history_survives_a_reconnect() {
    let mut sim = two();
    set(&mut sim, 0, "hat", 1, true);
    sim.disconnect(0, true);
    set(&mut sim, 1, "kick", 9, true);
    sim.connect(0);
    sim.settle();
    assert_eq!(sim.undo(0, false), Some(0));
    sim.settle();
    assert!(!step(&sim, "hat", 1));
    assert!(step(&sim, "kick", 9));
}

#[test]
fn undo_waits_for_the_acknowledgement_of_an_own_edit() {
    let mut sim = two();
    sim.edit(
        0,
        Edit::SetStep {
            track_id: "kick".into(),
            step: 1,
            active: true,
        },
    )
    .unwrap();
    assert_eq!(sim.undo(0, false), None, "not acknowledged yet");
    sim.settle();
    assert_eq!(sim.undo(0, false), Some(0));
}

#[test]
fn a_batch_is_one_edit_all_or_nothing() {
    let mut sim = two();
    let seq = sim.server.seq();
    sim.edit(
        0,
        Edit::Batch {
            edits: vec![
                Edit::SetStep {
                    track_id: "kick".into(),
                    step: 1,
                    active: true,
                },
                Edit::SetTempo { tempo: 90 },
            ],
        },
    )
    .unwrap();
    sim.settle();
    assert_eq!(sim.server.seq(), seq + 1, "one log entry");
    assert!(step(&sim, "kick", 1) && sim.server.state().tempo == 90);
    // A bad part refuses the whole batch.
    let bad = ClientMessage::Edit(EditFrame {
        mid: "p1-x-1".into(),
        edit: Edit::Batch {
            edits: vec![
                Edit::SetTempo { tempo: 100 },
                Edit::SetStep {
                    track_id: "nope".into(),
                    step: 1,
                    active: true,
                },
            ],
        },
    });
    sim.send(1, bad);
    sim.settle();
    assert_eq!(sim.server.state().tempo, 90, "nothing of it applied");
    assert_eq!(sim.server.seq(), seq + 1);
    // Transport edits and nesting are refused.
    let nested = Edit::Batch {
        edits: vec![Edit::Batch { edits: vec![] }],
    };
    assert!(sim.clients[0].sync.edit(nested).is_err());
    assert!(sim.clients[0]
        .sync
        .edit(Edit::Batch {
            edits: vec![Edit::Play { from_step: None }]
        })
        .is_err());
}

mod property {
    use super::common::{edit, Sim, TRACKS};
    use keyboardia_core::protocol::apply;
    use keyboardia_core::undo::{touched, Field, Target};
    use keyboardia_core::*;
    use proptest::prelude::*;

    /// Every single thing a test edit can change (positions aside: they shift with others).
    fn atoms() -> Vec<Target> {
        let mut out = vec![Target::Tempo, Target::Swing, Target::SessionName];
        for id in TRACKS {
            let id = id.to_string();
            for s in 0..20 {
                out.push(Target::Step(id.clone(), s));
                out.push(Target::Lock(id.clone(), s));
            }
            for f in [
                Field::Instrument,
                Field::Volume,
                Field::Pan,
                Field::Transpose,
                Field::Swing,
                Field::StepCount,
                Field::Name,
                Field::Muted,
                Field::Soloed,
            ] {
                out.push(Target::Field(id.clone(), f));
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// Three players edit, with deliveries interleaved at random; then player 0 undoes
        /// everything it did. Whatever the others changed last is still theirs, and everyone
        /// converges.
        #[test]
        fn undoing_all_of_one_players_edits_keeps_the_others(
            ops in prop::collection::vec((0usize..3, any::<u8>(), any::<u8>(), any::<u8>(), 0u8..4), 0..120)
        ) {
            let mut sim = Sim::new(3, LiveConfig::default());
            for i in 0..3 {
                sim.connect(i);
            }
            sim.settle();
            for (c, k, a, b, deliver) in ops {
                sim.advance(150.0);
                let _ = sim.edit(c, edit(k, a, b));
                match deliver {
                    0 => sim.settle(),
                    1 => {
                        sim.deliver_up(c);
                    }
                    2 => {
                        for i in 0..3 {
                            sim.deliver_down(i);
                        }
                    }
                    _ => {}
                }
            }
            sim.settle();
            let mut undos = 0;
            while sim.clients[0].sync.can_undo() {
                sim.advance(500.0);
                prop_assert!(sim.undo(0, false).is_some());
                sim.settle();
                undos += 1;
                prop_assert!(undos < 1000);
            }
            // What the others left, replayed from the log in the server's order.
            let atoms = atoms();
            let mut state = SessionState::starter();
            // (value, the incarnation of its track when it was set)
            let mut expected: Vec<Option<(serde_json::Value, u32)>> = vec![None; atoms.len()];
            let mut incarnation = std::collections::HashMap::<String, u32>::new();
            for a in &sim.log {
                let existed: Vec<bool> = TRACKS.iter().map(|id| state.track(id).is_some()).collect();
                apply(&mut state, &a.change);
                for (id, was) in TRACKS.iter().zip(existed) {
                    if !was && state.track(id).is_some() {
                        *incarnation.entry(id.to_string()).or_default() += 1;
                    }
                }
                if a.player_id.as_deref() == Some("p0") {
                    continue;
                }
                let t = touched(&a.change);
                // An edit inside a track accepts the track that is there now (say one that
                // player 0 added after deleting the old one): what was set on an older track of
                // that id no longer decides anything.
                for x in &t {
                    if let Some(id) = x.track().filter(|_| !matches!(x, Target::Track(_))) {
                        let now = incarnation.get(id).copied().unwrap_or(0);
                        for (i, atom) in atoms.iter().enumerate() {
                            if atom.track() == Some(id)
                                && expected[i].as_ref().is_some_and(|(_, inc)| *inc < now)
                            {
                                expected[i] = None;
                            }
                        }
                    }
                }
                for (i, atom) in atoms.iter().enumerate() {
                    if t.iter().any(|x| x.overlaps(atom)) {
                        let inc = atom.track()
                            .and_then(|id| incarnation.get(id).copied())
                            .unwrap_or(0);
                        expected[i] = Some((atom.read(&state), inc));
                    }
                }
            }
            let end = sim.server.state().clone();
            for (atom, want) in atoms.iter().zip(expected) {
                if let Some((want, _)) = want {
                    prop_assert_eq!(atom.read(&end), want, "{:?} lost another player's change", atom);
                }
            }
            for i in 0..3 {
                prop_assert_eq!(sim.view(i), &end);
            }
        }
    }
}

#[test]
fn a_key_change_moves_notes_in_one_edit_and_one_undo() {
    use keyboardia_core::music::Scale;
    let mut sim = two();
    // The starter's bass has pitch locks +3 and -2 (Eb and Bb over C).
    let before = sim.server.state().clone();
    let seq = sim.server.seq();
    sim.edit(
        0,
        Edit::SetKey {
            root: 0,
            scale: Scale::MajorPentatonic,
            free: false,
            move_notes: true,
        },
    )
    .unwrap();
    sim.settle();
    assert_eq!(sim.server.seq(), seq + 1, "one edit");
    let key = sim.server.state().key;
    let bass = sim.server.state().track("bass").unwrap().clone();
    let base = keyboardia_core::music::track_base(&bass);
    for (step, l) in &bass.locks {
        let note = base + l.pitch.unwrap_or(0) as i32;
        assert!(key.contains(note), "step {step}: {note} is in the key");
    }
    assert_ne!(bass.locks, before.track("bass").unwrap().locks);
    // Key lock: a new pitch snaps into the key.
    sim.edit(
        1,
        Edit::SetParameterLock {
            track_id: "bass".into(),
            step: 0,
            lock: Some(LockRequest {
                pitch: Some(1),
                volume: None,
                tie: false,
                chord: vec![],
                ..LockRequest::default()
            }),
        },
    )
    .unwrap();
    sim.settle();
    let p = sim.server.state().track("bass").unwrap().locks[&0].pitch;
    assert!(key.contains(base + p.unwrap_or(0) as i32), "{p:?} snapped");
    // Undo the key change: B changed the bass line since, so its notes stay (one part
    // skipped); the key goes back.
    assert_eq!(sim.undo(0, false), Some(1));
    sim.settle();
    let s = sim.server.state().clone();
    assert_eq!(s.key, before.key);
    assert_eq!(
        s.track("bass").unwrap().locks[&0].pitch,
        p,
        "B's note stays"
    );
    // Untouched, a key change and its undo give back exactly the notes.
    let bass = s.track("bass").unwrap().clone();
    sim.edit(
        0,
        Edit::SetKey {
            root: 4,
            scale: Scale::Phrygian,
            free: false,
            move_notes: true,
        },
    )
    .unwrap();
    sim.settle();
    assert_ne!(sim.server.state().track("bass").unwrap().locks, bass.locks);
    assert_eq!(sim.undo(0, false), Some(0));
    sim.settle();
    assert_eq!(sim.server.state().track("bass"), Some(&bass));
    assert_eq!(sim.server.state().key, before.key);
}
