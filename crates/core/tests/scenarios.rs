//! Scenarios on simulated time with in-memory clients.

mod common;

use common::Sim;
use keyboardia_core::client::Event;
use keyboardia_core::live::close;
use keyboardia_core::model::Steps;
use keyboardia_core::protocol::*;
use keyboardia_core::*;

fn set_step(track: &str, step: i64, active: bool) -> Edit {
    Edit::SetStep {
        track_id: track.into(),
        step,
        active,
    }
}

fn joined(n: usize) -> Sim {
    let mut sim = Sim::new(n, LiveConfig::default());
    for i in 0..n {
        sim.connect(i);
    }
    sim.settle();
    sim
}

#[test]
fn two_clients_see_each_others_edits_in_the_same_order() {
    let mut sim = joined(2);
    sim.edit(0, set_step("kick", 1, true)).unwrap();
    sim.edit(1, set_step("kick", 1, false)).unwrap();
    sim.edit(1, set_step("snare", 7, true)).unwrap();
    sim.edit(0, Edit::SetTempo { tempo: 133 }).unwrap();
    sim.settle();
    let server = sim.server.state().clone();
    assert_eq!(sim.view(0), &server);
    assert_eq!(sim.view(1), &server);
    assert_eq!(server.tempo, 133);
    assert_eq!(sim.log.len(), 4);
    assert_eq!(
        sim.log.iter().map(|a| a.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    // Each client got every change in the same order.
    for i in 0..2 {
        let seqs: Vec<u64> = sim.clients[i]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Changed { seq, .. } => Some(*seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        assert_eq!(sim.clients[i].sync.pending_count(), 0);
    }
}

#[test]
fn toggle_resolves_to_a_set_and_a_retry_applies_once() {
    let mut sim = joined(2);
    let before = sim.server.state().track("kick").unwrap().steps.get(1);
    let frame = EditFrame {
        mid: "m-1".into(),
        edit: Edit::ToggleStep {
            track_id: "kick".into(),
            step: 1,
        },
    };
    sim.send(0, ClientMessage::Edit(frame.clone()));
    sim.send(0, ClientMessage::Edit(frame));
    sim.settle();
    assert_eq!(sim.log.len(), 1, "the retry must not be applied again");
    assert_eq!(
        sim.log[0].change,
        Change::SetStep {
            track_id: "kick".into(),
            step: 1,
            active: !before
        }
    );
    assert_eq!(
        sim.server.state().track("kick").unwrap().steps.get(1),
        !before
    );
    // The sender got two acknowledgements with the same seq; the peer only one change.
    let acks0 = sim.clients[0]
        .events
        .iter()
        .filter(|e| matches!(e, Event::Changed { seq: 1, .. }))
        .count();
    let acks1 = sim.clients[1]
        .events
        .iter()
        .filter(|e| matches!(e, Event::Changed { .. }))
        .count();
    assert_eq!((acks0, acks1), (2, 1));
}

#[test]
fn reconnect_with_last_seq_replays_what_was_missed() {
    let mut sim = joined(2);
    sim.edit(0, set_step("kick", 2, true)).unwrap();
    sim.settle();
    sim.disconnect(1, true);
    for s in 3..8 {
        sim.edit(0, set_step("kick", s, true)).unwrap();
    }
    sim.settle();
    sim.connect(1);
    sim.settle();
    let welcome = sim.clients[1]
        .events
        .iter()
        .rev()
        .find(|e| matches!(e, Event::Welcomed { .. }));
    assert!(welcome.is_some());
    assert_eq!(sim.view(1), sim.server.state());
    assert_eq!(sim.clients[1].sync.seq(), 6);
}

#[test]
fn reconnect_too_far_behind_gets_a_snapshot() {
    let config = LiveConfig {
        replay_window: 4,
        ..LiveConfig::default()
    };
    let mut sim = Sim::new(2, config);
    sim.connect(0);
    sim.connect(1);
    sim.settle();
    sim.disconnect(1, true);
    for s in 0..20 {
        sim.edit(0, set_step("bass", s, true)).unwrap();
    }
    sim.settle();
    sim.connect(1);
    sim.settle();
    assert_eq!(sim.view(1), sim.server.state());
    assert_eq!(sim.clients[1].sync.seq(), 20);
}

#[test]
fn unconfirmed_edits_survive_a_reconnect_and_apply_once() {
    let mut sim = joined(2);
    // Client 0 sends; the server applies it, but the ack is lost with the socket.
    sim.edit(0, set_step("kick", 9, true)).unwrap();
    sim.deliver_up(0);
    sim.disconnect(0, true);
    // While offline, client 0 edits more; these wait in its queue.
    sim.edit(0, set_step("kick", 10, true)).unwrap();
    assert_eq!(sim.clients[0].sync.pending_count(), 2);
    assert!(sim.view(0).track("kick").unwrap().steps.get(10));
    sim.connect(0);
    sim.settle();
    assert_eq!(sim.clients[0].sync.pending_count(), 0);
    assert_eq!(
        sim.log.len(),
        2,
        "the first edit was re-sent but applied once"
    );
    assert_eq!(sim.view(0), sim.server.state());
    assert_eq!(sim.view(1), sim.server.state());
}

#[test]
fn eleventh_player_is_refused_but_a_reconnecting_player_is_not() {
    let mut sim = Sim::new(11, LiveConfig::default());
    for i in 0..10 {
        sim.connect(i);
    }
    sim.settle();
    assert_eq!(sim.server.players().count(), 10);
    sim.connect(10);
    sim.settle();
    assert_eq!(sim.errors(10), [ErrorCode::SessionFull]);
    assert_eq!(sim.clients[10].closed_with, Some(close::SESSION_FULL));
    assert_eq!(sim.server.players().count(), 10);
    // Player 3's socket dies silently; the same tab reconnects and replaces it (no ghost).
    sim.disconnect(3, false);
    sim.connect(3);
    sim.settle();
    assert_eq!(sim.server.players().count(), 10);
    assert_eq!(sim.server.connection_count(), 10);
    assert!(sim.clients[3].sync.view().is_some());
}

#[test]
fn presence_names_and_colours_are_distinct() {
    let sim = joined(10);
    let players: Vec<_> = sim.server.players().cloned().collect();
    let mut colors: Vec<_> = players.iter().map(|p| p.color.clone()).collect();
    colors.sort();
    colors.dedup();
    assert_eq!(colors.len(), 10);
    assert_eq!(sim.clients[9].sync.players.len(), 10);
    assert!(players.iter().all(|p| p.name.contains(' ')));
}

#[test]
fn leaving_is_broadcast_and_the_session_goes_idle() {
    let mut sim = joined(2);
    sim.edit(0, set_step("kick", 5, true)).unwrap();
    sim.settle();
    sim.disconnect(1, true);
    sim.settle();
    assert_eq!(sim.clients[0].sync.players.len(), 1);
    sim.disconnect(0, true);
    // Last player left: a snapshot is requested.
    assert_eq!(sim.snapshots.last().map(|s| s.0), Some(1));
    let t = sim.server.poll_timeout().expect("idle timer");
    assert!(!sim.idle);
    sim.advance(t - sim.now + 1.0);
    assert!(sim.idle);
}

#[test]
fn flood_is_rate_limited_and_the_session_keeps_working() {
    let mut sim = joined(2);
    for s in 0..300 {
        sim.edit(0, set_step("hat", s % 128, s % 2 == 0)).unwrap();
    }
    sim.settle();
    let limited = sim
        .errors(0)
        .iter()
        .filter(|c| **c == ErrorCode::RateLimited)
        .count();
    assert!(limited >= 150, "limited {limited}");
    assert_eq!(
        sim.clients[0].sync.pending_count(),
        0,
        "rejected edits roll back"
    );
    assert_eq!(sim.view(0), sim.server.state());
    sim.advance(5_000.0);
    sim.edit(1, set_step("kick", 1, true)).unwrap();
    sim.edit(0, set_step("kick", 2, true)).unwrap();
    sim.settle();
    assert!(sim.server.state().track("kick").unwrap().steps.get(2));
}

#[test]
fn bad_input_gets_clear_errors_and_the_session_keeps_working() {
    let mut sim = joined(2);
    let cases: &[(&str, ErrorCode)] = &[
        ("{not json", ErrorCode::BadJson),
        ("[1,2]", ErrorCode::BadJson),
        (
            r#"{"type":"LAUNCH_ROCKET","mid":"x"}"#,
            ErrorCode::UnknownType,
        ),
        (r#"{"mid":"x"}"#, ErrorCode::InvalidMessage),
        (
            r#"{"type":"SET_TEMPO","mid":"x","tempo":"fast"}"#,
            ErrorCode::InvalidMessage,
        ),
        (
            r#"{"type":"SET_TEMPO","tempo":120}"#,
            ErrorCode::InvalidMessage,
        ),
        (
            r#"{"type":"SET_TEMPO","mid":"a","tempo":500}"#,
            ErrorCode::InvalidEdit,
        ),
        (
            r#"{"type":"SET_TRACK_VOLUME","mid":"b","trackId":"kick","volume":1.5}"#,
            ErrorCode::InvalidEdit,
        ),
        (
            r#"{"type":"SET_STEP","mid":"c","trackId":"nope","step":1,"active":true}"#,
            ErrorCode::InvalidEdit,
        ),
        (
            r#"{"type":"SET_STEP","mid":"d","trackId":"kick","step":128,"active":true}"#,
            ErrorCode::InvalidEdit,
        ),
        (
            r#"{"type":"SET_TRACK_STEP_COUNT","mid":"e","trackId":"kick","stepCount":17}"#,
            ErrorCode::InvalidEdit,
        ),
        (
            r#"{"type":"SET_SESSION_NAME","mid":"f","name":"a\u0007b"}"#,
            ErrorCode::InvalidEdit,
        ),
        (
            r#"{"type":"HELLO","protocol":1,"playerId":"p0"}"#,
            ErrorCode::InvalidMessage,
        ),
    ];
    for (text, _) in cases {
        sim.send_raw(0, text);
    }
    let big = format!(
        r#"{{"type":"SET_SESSION_NAME","mid":"g","name":"{}"}}"#,
        "x".repeat(70_000)
    );
    sim.send_raw(0, &big);
    sim.settle();
    let mut expected: Vec<ErrorCode> = cases.iter().map(|c| c.1).collect();
    expected.push(ErrorCode::TooLarge);
    assert_eq!(sim.errors(0), expected);
    assert!(sim.log.is_empty());
    sim.edit(0, set_step("kick", 1, true)).unwrap();
    sim.settle();
    assert_eq!(sim.log.len(), 1);
    assert_eq!(sim.view(1), sim.server.state());
}

#[test]
fn messages_before_hello_are_refused_and_old_protocols_closed() {
    let mut sim = Sim::new(2, LiveConfig::default());
    sim.connect(0);
    sim.clients[0].outbox.clear(); // drop the HELLO
    sim.send_raw(0, r#"{"type":"SET_TEMPO","mid":"a","tempo":100}"#);
    sim.settle();
    assert_eq!(sim.errors(0), [ErrorCode::HelloRequired]);
    sim.connect(1);
    sim.clients[1].outbox.clear();
    sim.send_raw(1, r#"{"type":"HELLO","protocol":99,"playerId":"p1"}"#);
    sim.settle();
    assert_eq!(sim.errors(1), [ErrorCode::UnsupportedProtocol]);
    assert_eq!(
        sim.clients[1].closed_with,
        Some(close::UNSUPPORTED_PROTOCOL)
    );
}

#[test]
fn published_sessions_refuse_edits_but_allow_listening_together() {
    let mut sim = Sim::with_state(1, LiveConfig::default(), SessionState::starter(), true);
    sim.connect(0);
    sim.settle();
    assert!(sim.clients[0].sync.read_only);
    // The client refuses locally, and the server refuses a hand-made frame too.
    assert_eq!(
        sim.edit(0, set_step("kick", 1, true)),
        Err(EditError::ReadOnly)
    );
    sim.send_raw(
        0,
        r#"{"type":"SET_STEP","mid":"x","trackId":"kick","step":1,"active":true}"#,
    );
    sim.settle();
    assert_eq!(sim.errors(0), [ErrorCode::ReadOnly]);
    assert!(sim
        .server
        .system_edit(sim.now, &Edit::SetSessionName { name: "x".into() })
        .is_err());
    sim.edit(0, Edit::Play { from_step: None }).unwrap();
    sim.settle();
    assert!(sim.server.state().transport.playing);
}

#[test]
fn play_anchors_in_the_future_and_tempo_changes_keep_position_continuous() {
    let mut sim = joined(2);
    let t0 = sim.now;
    sim.edit(0, Edit::Play { from_step: None }).unwrap();
    sim.settle();
    let tr = sim.server.state().transport;
    assert!(tr.playing);
    assert_eq!(tr.anchor_time, t0 + LiveConfig::default().lead_ms);
    assert_eq!(tr.anchor_step, 0.0);
    assert_eq!(sim.view(1).transport, tr);
    // 10 seconds later at 120 BPM: 80 steps in.
    sim.now += 10_000.0;
    let at = sim.now + LiveConfig::default().lead_ms;
    let expected = tr.position_at(at);
    sim.edit(1, Edit::SetTempo { tempo: 90 }).unwrap();
    sim.settle();
    let tr2 = sim.server.state().transport;
    assert_eq!(tr2.tempo, 90);
    assert_eq!(tr2.anchor_time, at);
    assert!((tr2.anchor_step - expected).abs() < 1e-9);
    // Both formulas agree at the switch: no jump.
    assert!((tr.position_at(at) - tr2.position_at(at)).abs() < 1e-9);
    sim.now += 1_000.0;
    sim.edit(0, Edit::Stop {}).unwrap();
    sim.settle();
    let tr3 = sim.server.state().transport;
    assert!(!tr3.playing);
    assert!((tr3.anchor_step - tr2.position_at(tr3.anchor_time)).abs() < 1e-9);
}

#[test]
fn shrinking_the_step_count_keeps_the_pattern() {
    let mut sim = joined(1);
    sim.edit(0, set_step("kick", 20, true)).unwrap();
    for n in [8, 64] {
        sim.edit(
            0,
            Edit::SetTrackStepCount {
                track_id: "kick".into(),
                step_count: n,
            },
        )
        .unwrap();
    }
    sim.settle();
    let kick = sim.server.state().track("kick").unwrap();
    assert_eq!(kick.step_count, 64);
    assert!(kick.steps.get(20) && kick.steps.get(0) && kick.steps.get(12));
}

#[test]
fn clock_sync_answers_with_server_time() {
    let mut sim = joined(1);
    sim.send_raw(0, r#"{"type":"CLOCK_SYNC","clientTime":42.5}"#);
    sim.settle();
    let ev = sim.clients[0].events.last().unwrap().clone();
    assert_eq!(
        ev,
        Event::ClockSync {
            client_time: 42.5,
            server_time: sim.now
        }
    );
}

#[test]
fn the_transport_lead_covers_the_slowest_players_round_trip() {
    let mut sim = joined(2);
    // Player 1 is on a slow link (300 ms round trips); player 0 is local.
    sim.send_raw(0, r#"{"type":"CLOCK_SYNC","clientTime":1,"rtt":2}"#);
    sim.send_raw(1, r#"{"type":"CLOCK_SYNC","clientTime":1,"rtt":300}"#);
    sim.settle();
    let t0 = sim.now;
    sim.edit(0, Edit::Play { from_step: None }).unwrap();
    sim.settle();
    assert_eq!(sim.server.state().transport.anchor_time, t0 + 450.0);
    // Once the slow player is gone, the base lead is enough again.
    sim.disconnect(1, true);
    sim.settle();
    let t1 = sim.now;
    sim.edit(0, Edit::Stop {}).unwrap();
    sim.settle();
    assert_eq!(sim.server.state().transport.anchor_time, t1 + 250.0);
}

/// A reloaded tab keeps its player id; a mutation id it used before, now on a different edit,
/// is refused by name (acknowledging the old change would silently drop the new edit). The
/// same edit under the same id is a resend and is acknowledged.
#[test]
fn a_reused_mutation_id_with_a_different_edit_is_refused() {
    let mut sim = joined(2);
    let set = |step: u8| {
        format!(
            r#"{{"type":"SET_STEP","trackId":"kick","step":{step},"active":true,"mid":"tab-1"}}"#
        )
    };
    sim.send_raw(0, &set(1));
    sim.settle();
    let seq = sim.server.seq();
    sim.disconnect(0, true);
    sim.connect(0);
    sim.settle();
    sim.send_raw(0, &set(2));
    sim.settle();
    assert_eq!(sim.errors(0), [ErrorCode::MidReused]);
    let kick = sim.server.state().track("kick").unwrap().clone();
    assert!(kick.steps.get(1) && !kick.steps.get(2));
    assert_eq!(sim.server.seq(), seq, "nothing was applied");
    // The true resend is acknowledged, not applied again.
    sim.send_raw(0, &set(1));
    sim.settle();
    assert_eq!(sim.errors(0), [ErrorCode::MidReused]);
    assert_eq!(sim.server.seq(), seq);
}

/// Mutation ids carry the client instance, so a reloaded tab (same player, counter from 1
/// again) never repeats one.
#[test]
fn client_instances_never_repeat_mutation_ids() {
    use keyboardia_core::client::SyncClient;
    let mut first = SyncClient::new("tab-abc", None).with_instance("0001");
    let mut second = SyncClient::new("tab-abc", None).with_instance("0002");
    let edit = || Edit::ToggleStep {
        track_id: "kick".into(),
        step: 1,
    };
    let (ClientMessage::Edit(a), ClientMessage::Edit(b)) =
        (first.edit(edit()).unwrap(), second.edit(edit()).unwrap())
    else {
        panic!("edits")
    };
    assert_eq!(a.mid, "tab-abc-0001-1");
    assert_ne!(a.mid, b.mid);
}

#[test]
fn snapshots_are_requested_periodically() {
    let config = LiveConfig {
        snapshot_every: 10,
        ..LiveConfig::default()
    };
    let mut sim = Sim::new(1, config);
    sim.connect(0);
    sim.settle();
    for s in 0..25 {
        sim.advance(100.0);
        sim.edit(0, set_step("bass", s, true)).unwrap();
        sim.settle();
    }
    let seqs: Vec<u64> = sim.snapshots.iter().map(|s| s.0).collect();
    assert_eq!(seqs, [10, 20]);
    // A restore from snapshot + log tail equals the live state.
    let (seq, mut state) = sim.snapshots.last().cloned().unwrap();
    for a in sim.log.iter().filter(|a| a.seq > seq) {
        apply(&mut state, &a.change);
    }
    assert_eq!(&state, sim.server.state());
}

#[test]
fn every_edit_type_is_wired_end_to_end() {
    // A compile-time exhaustive list: adding an Edit variant without a case here fails to build.
    fn name(e: &Edit) -> &'static str {
        match e {
            Edit::ToggleStep { .. } => "TOGGLE_STEP",
            Edit::SetStep { .. } => "SET_STEP",
            Edit::SetParameterLock { .. } => "SET_PARAMETER_LOCK",
            Edit::AddTrack { .. } => "ADD_TRACK",
            Edit::DeleteTrack { .. } => "DELETE_TRACK",
            Edit::ClearTrack { .. } => "CLEAR_TRACK",
            Edit::ReorderTrack { .. } => "REORDER_TRACK",
            Edit::SetTrackInstrument { .. } => "SET_TRACK_INSTRUMENT",
            Edit::SetTrackVolume { .. } => "SET_TRACK_VOLUME",
            Edit::SetTrackPan { .. } => "SET_TRACK_PAN",
            Edit::SetTrackTranspose { .. } => "SET_TRACK_TRANSPOSE",
            Edit::SetTrackSwing { .. } => "SET_TRACK_SWING",
            Edit::SetTrackStepCount { .. } => "SET_TRACK_STEP_COUNT",
            Edit::SetTrackName { .. } => "SET_TRACK_NAME",
            Edit::SetTrackMute { .. } => "SET_TRACK_MUTE",
            Edit::SetTrackSolo { .. } => "SET_TRACK_SOLO",
            Edit::SetTempo { .. } => "SET_TEMPO",
            Edit::SetSwing { .. } => "SET_SWING",
            Edit::SetSessionName { .. } => "SET_SESSION_NAME",
            Edit::PutTrack { .. } => "PUT_TRACK",
            Edit::SetTrackPattern { .. } => "SET_TRACK_PATTERN",
            Edit::SetKey { .. } => "SET_KEY",
            Edit::TransformPattern { .. } => "TRANSFORM_PATTERN",
            Edit::DuplicateTrack { .. } => "DUPLICATE_TRACK",
            Edit::SetEffect { .. } => "SET_EFFECT",
            Edit::Batch { .. } => "BATCH",
            Edit::SetLoopRegion { .. } => "SET_LOOP_REGION",
            Edit::Play { .. } => "PLAY",
            Edit::Stop { .. } => "STOP",
        }
    }
    let t = || "kick".to_string();
    let edits = vec![
        Edit::ToggleStep {
            track_id: t(),
            step: 3,
        },
        Edit::SetStep {
            track_id: t(),
            step: 5,
            active: true,
        },
        Edit::SetParameterLock {
            track_id: t(),
            step: 5,
            lock: Some(LockRequest {
                pitch: Some(-3),
                volume: Some(0.5),
                tie: true,
                chord: vec![],
                ..LockRequest::default()
            }),
        },
        Edit::AddTrack {
            track: NewTrack {
                id: "perc".into(),
                name: "Perc".into(),
                instrument: "drums/cowbell".into(),
                step_count: Some(12),
            },
        },
        Edit::ClearTrack {
            track_id: "snare".into(),
        },
        Edit::ReorderTrack {
            track_id: "perc".into(),
            to_index: 0,
        },
        Edit::SetTrackInstrument {
            track_id: t(),
            instrument: "drums/kick-808".into(),
        },
        Edit::SetTrackVolume {
            track_id: t(),
            volume: 0.25,
        },
        Edit::SetTrackPan {
            track_id: t(),
            pan: -0.5,
        },
        Edit::SetTrackTranspose {
            track_id: t(),
            transpose: 7,
        },
        Edit::SetTrackSwing {
            track_id: t(),
            swing: 30,
        },
        Edit::SetTrackStepCount {
            track_id: t(),
            step_count: 7,
        },
        Edit::SetTrackName {
            track_id: t(),
            name: "Boom".into(),
        },
        Edit::SetTrackMute {
            track_id: t(),
            muted: true,
        },
        Edit::SetTrackSolo {
            track_id: t(),
            soloed: true,
        },
        Edit::SetTempo { tempo: 97 },
        Edit::SetSwing { swing: 55 },
        Edit::SetSessionName {
            name: "Nachtmusik ♪".into(),
        },
        Edit::SetLoopRegion {
            region: Some(LoopRegionRequest { start: 4, end: 12 }),
        },
        Edit::Play { from_step: Some(4) },
        Edit::Stop {},
        Edit::DeleteTrack {
            track_id: "hat".into(),
        },
        Edit::PutTrack {
            track: {
                let mut t = Track::new("hat2", "Hats again", "drums/hihat-open");
                t.steps = Steps::from_indices(&[2, 6]);
                t
            },
            index: 1,
        },
        Edit::SetTrackPattern {
            track_id: "snare".into(),
            steps: Steps::from_indices(&[1, 9]),
            locks: [(
                9u8,
                Lock {
                    pitch: Some(2),
                    ..Lock::default()
                },
            )]
            .into_iter()
            .collect(),
        },
        Edit::SetKey {
            root: 2,
            scale: keyboardia_core::music::Scale::Dorian,
            free: false,
            move_notes: true,
        },
        Edit::TransformPattern {
            track_id: "snare".into(),
            op: keyboardia_core::music::PatternOp::RotateRight,
        },
        Edit::DuplicateTrack {
            track_id: "snare".into(),
            new_id: "snare2".into(),
        },
        Edit::SetEffect {
            track_id: None,
            param: keyboardia_core::effects::Fx::ReverbMix,
            value: 0.5,
        },
        Edit::SetEffect {
            track_id: Some("snare".into()),
            param: keyboardia_core::effects::Fx::FilterCutoff,
            value: 900.0,
        },
        Edit::Batch {
            edits: vec![
                Edit::SetSwing { swing: 10 },
                Edit::ToggleStep {
                    track_id: "snare".into(),
                    step: 2,
                },
            ],
        },
    ];
    let mut names: Vec<&str> = edits.iter().map(name).collect();
    names.sort();
    names.dedup();
    let mut all = EDIT_TYPES.to_vec();
    all.sort();
    assert_eq!(names, all, "every edit type has a case");

    let mut sim = joined(2);
    for e in edits {
        // Each edit survives the wire...
        let frame = ClientMessage::Edit(EditFrame {
            mid: "m".into(),
            edit: e.clone(),
        });
        assert_eq!(ClientMessage::decode(&frame.encode()).unwrap(), frame);
        // ...and changes the state on the server and on the other client.
        let before = sim.server.state().clone();
        sim.edit(0, e.clone()).unwrap();
        sim.settle();
        assert_ne!(&before, sim.server.state(), "{} changed nothing", name(&e));
        assert_eq!(
            sim.view(1),
            sim.server.state(),
            "{} did not reach the peer",
            name(&e)
        );
    }
    let kick = sim.server.state().track("kick").unwrap();
    assert_eq!(kick.steps, Steps::from_indices(&[0, 3, 4, 5, 8, 12]));
    assert_eq!(sim.server.state().tracks[0].id, "perc");
    assert_eq!(sim.server.state().tracks[1].id, "hat2");
    let snare = sim.server.state().track("snare").unwrap();
    // [1, 9] rotated right by one (and copied), then step 2 toggled off.
    assert_eq!(snare.steps, Steps::from_indices(&[10]));
    assert_eq!(
        snare.locks[&10].pitch,
        Some(2),
        "the lock moved with its step"
    );
    assert_eq!(sim.server.state().key.root, 2);
    let copy = sim.server.state().track("snare2").unwrap();
    assert_eq!(copy.steps, Steps::from_indices(&[2, 10]));
    assert_eq!(sim.server.state().swing, 10);
}
