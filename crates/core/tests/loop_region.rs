//! The shared loop region: validation, its JSON (omitted when there is none), the wrap rule, the
//! re-anchoring of a running transport (on a simulated clock), PLAY, remix/publish and undo.

mod common;

use common::Sim;
use keyboardia_core::model::{to_canonical_json, LoopRegion, SessionState, Transport};
use keyboardia_core::protocol::*;
use keyboardia_core::*;

fn region(start: i64, end: i64) -> Edit {
    Edit::SetLoopRegion {
        region: Some(LoopRegionRequest { start, end }),
    }
}

fn clear() -> Edit {
    Edit::SetLoopRegion { region: None }
}

#[test]
fn a_region_is_validated() {
    assert_eq!(
        LoopRegion::new(4, 8).unwrap(),
        LoopRegion { start: 4, end: 8 }
    );
    assert!(LoopRegion::new(0, 128).is_ok());
    for (s, e) in [(8, 4), (5, 5), (-1, 4), (0, 129), (128, 129), (0, 0)] {
        let err = LoopRegion::new(s, e).unwrap_err();
        assert!(err.0.contains("loop"), "{s}..{e}: {err}");
    }
    let st = SessionState::starter();
    let ctx = ResolveCtx {
        now: 0.0,
        lead_ms: 100.0,
    };
    let e = resolve(&st, &region(6, 2), ctx).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidEdit);
    assert!(e.to_string().contains("must end after it starts"), "{e}");
    // A stored document with a bad region is refused when loaded.
    let mut bad = st.clone();
    bad.loop_region = Some(LoopRegion { start: 9, end: 3 });
    assert!(bad.validate().is_err());
}

#[test]
fn the_region_is_in_the_json_only_when_set() {
    let mut s = SessionState::starter();
    let json = to_canonical_json(&s);
    assert!(!json.contains("loop"), "{json}");
    s.loop_region = Some(LoopRegion { start: 4, end: 12 });
    let json = to_canonical_json(&s);
    assert!(json.ends_with(r#","loop":{"start":4,"end":12}}"#), "{json}");
    let back: SessionState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    // Remix and publish keep it.
    assert_eq!(s.stopped().loop_region, s.loop_region);
}

#[test]
fn steps_wrap_into_the_region() {
    let r = LoopRegion { start: 4, end: 8 };
    let slots: Vec<i64> = (0..14).map(|n| r.wrap(n)).collect();
    assert_eq!(slots, [0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5]);
    assert_eq!(r.wrap(1_000_003), 7);
    assert_eq!(r.wrap_position(9.25), 5.25);
    assert_eq!(r.wrap_position(2.5), 2.5);
}

/// A session playing from step 0 at server time 0, at 120 BPM (8 steps a second).
fn playing() -> SessionState {
    let mut s = SessionState::starter();
    s.transport = Transport {
        playing: true,
        anchor_time: 0.0,
        anchor_step: 0.0,
        tempo: 120,
    };
    s
}

fn set_at(s: &SessionState, edit: &Edit, now: f64) -> SessionState {
    let c = resolve(
        s,
        edit,
        ResolveCtx {
            now,
            lead_ms: 100.0,
        },
    )
    .unwrap();
    let Change::SetLoopRegion { transport, .. } = &c else {
        panic!("{c:?}")
    };
    assert_eq!(transport.anchor_time, now + 100.0, "anchored ahead");
    let mut s = s.clone();
    apply(&mut s, &c);
    s
}

#[test]
fn a_running_transport_moves_into_the_region_in_phase_or_to_its_start() {
    let s = playing();
    // At 550 ms + 100 ms lead: step 5.2 of 16, inside 4..8: the phase is kept.
    let a = set_at(&s, &region(4, 8), 550.0);
    assert!(
        (a.transport.anchor_step - 5.2).abs() < 1e-9,
        "{:?}",
        a.transport
    );
    assert_eq!(a.loop_region, Some(LoopRegion { start: 4, end: 8 }));
    // At 1,000 ms: step 8.8, outside 4..8: to the region's start.
    let b = set_at(&s, &region(4, 8), 1_000.0);
    assert_eq!(b.transport.anchor_step, 4.0);
    // Many bars in, the grid's position counts: step 100.25 is step 4.25 of 16 (inside).
    let c = set_at(&s, &region(4, 8), 100.25 * 125.0 - 100.0);
    assert!(
        (c.transport.anchor_step - 4.25).abs() < 1e-9,
        "{:?}",
        c.transport
    );
    // A new region while in one: the slot playing is what counts (7.5 is in 6..10).
    let d = set_at(&c, &region(6, 10), 100.25 * 125.0 - 100.0 + 3.25 * 125.0);
    assert!(
        (d.transport.anchor_step - 7.5).abs() < 1e-9,
        "{:?}",
        d.transport
    );
    // Clearing goes on from the slot playing, without a jump (4.25 + 2 steps = 6.25).
    let e = set_at(&c, &clear(), 100.25 * 125.0 - 100.0 + 2.0 * 125.0);
    assert!(
        (e.transport.anchor_step - 6.25).abs() < 1e-9,
        "{:?}",
        e.transport
    );
    assert_eq!(e.loop_region, None);
    // Stopped: the transport stays as it is.
    let mut stopped = SessionState::starter();
    stopped.transport.anchor_step = 3.0;
    let c = resolve(
        &stopped,
        &region(4, 8),
        ResolveCtx {
            now: 5.0,
            lead_ms: 100.0,
        },
    )
    .unwrap();
    assert_eq!(
        c,
        Change::SetLoopRegion {
            region: Some(LoopRegion { start: 4, end: 8 }),
            transport: stopped.transport,
        }
    );
}

/// The slot of a 16-step track at server time `t` (as the playhead computes it).
fn slot(s: &SessionState, t: f64) -> i64 {
    let n = s.transport.position_at(t).floor() as i64;
    s.loop_region.map_or(n, |r| r.wrap(n)).rem_euclid(16)
}

#[test]
fn every_player_moves_into_the_region_at_the_same_instant() {
    let mut sim = Sim::new(2, LiveConfig::default());
    sim.connect(0);
    sim.connect(1);
    sim.settle();
    sim.edit(0, Edit::Play { from_step: None }).unwrap();
    sim.settle();
    let start = sim.server.state().transport.anchor_time;
    sim.advance(start - sim.now + 12.0 * 125.0); // step 12
    let before = sim.view(1).transport;
    sim.edit(1, region(4, 8)).unwrap();
    // Before the server answers, the player's own view shows the region but keeps playing as
    // confirmed: where playback goes is the server's to say, at its own time.
    assert_eq!(
        sim.view(1).loop_region,
        Some(LoopRegion { start: 4, end: 8 })
    );
    assert_eq!(sim.view(1).transport, before);
    sim.settle();
    let s = sim.server.state().clone();
    assert_eq!(sim.view(0), &s);
    assert_eq!(sim.view(1), &s);
    let at = s.transport.anchor_time;
    assert!(at > sim.now, "anchored in the future");
    // Outside the region at the anchor: from its start, then 4..8 over and over.
    let slots: Vec<i64> = (0..10)
        .map(|i| slot(&s, at + i as f64 * 125.0 + 1.0))
        .collect();
    assert_eq!(slots, [4, 5, 6, 7, 4, 5, 6, 7, 4, 5]);
    // Cleared: on from the slot playing, no jump.
    sim.advance(2.0 * 125.0 + 300.0);
    sim.edit(0, clear()).unwrap();
    sim.settle();
    let c = sim.server.state().clone();
    let at2 = c.transport.anchor_time;
    let before = slot(&s, at2 - 1.0);
    let after = slot(&c, at2 + 1.0);
    assert!(
        after == before || after == (before + 1) % 16,
        "{before} -> {after}"
    );
    assert_eq!(
        slot(&c, at2 + 4.0 * 125.0 + 1.0),
        (after + 4) % 16,
        "no more region"
    );
    assert_eq!(sim.view(1), &c);
}

#[test]
fn play_starts_at_the_region_and_published_sessions_refuse_it() {
    let mut s = SessionState::starter();
    s.loop_region = Some(LoopRegion { start: 8, end: 16 });
    let ctx = ResolveCtx {
        now: 0.0,
        lead_ms: 100.0,
    };
    let Change::PlaybackStarted { transport } =
        resolve(&s, &Edit::Play { from_step: None }, ctx).unwrap()
    else {
        panic!()
    };
    assert_eq!(transport.anchor_step, 8.0);
    let Change::PlaybackStarted { transport } =
        resolve(&s, &Edit::Play { from_step: Some(2) }, ctx).unwrap()
    else {
        panic!()
    };
    assert_eq!(transport.anchor_step, 2.0, "an explicit fromStep wins");

    let mut sim = Sim::with_state(1, LiveConfig::default(), s, true);
    sim.connect(0);
    sim.settle();
    sim.send_raw(
        0,
        r#"{"type":"SET_LOOP_REGION","mid":"l1","region":{"start":0,"end":4}}"#,
    );
    sim.settle();
    assert!(sim.errors(0).contains(&ErrorCode::ReadOnly));
}

#[test]
fn a_region_change_undoes_and_redoes_unless_someone_else_moved_it() {
    let mut sim = Sim::new(2, LiveConfig::default());
    sim.connect(0);
    sim.connect(1);
    sim.settle();
    sim.edit(0, region(4, 8)).unwrap();
    sim.settle();
    sim.edit(0, region(0, 12)).unwrap();
    sim.settle();
    assert_eq!(sim.undo(0, false), Some(0));
    sim.settle();
    assert_eq!(
        sim.server.state().loop_region,
        Some(LoopRegion { start: 4, end: 8 })
    );
    assert_eq!(sim.undo(0, true), Some(0));
    sim.settle();
    assert_eq!(
        sim.server.state().loop_region,
        Some(LoopRegion { start: 0, end: 12 })
    );
    // B moves it: A's undo leaves B's region alone and says so.
    sim.edit(1, region(2, 3)).unwrap();
    sim.settle();
    assert_eq!(sim.undo(0, false), Some(1));
    sim.settle();
    assert_eq!(
        sim.server.state().loop_region,
        Some(LoopRegion { start: 2, end: 3 })
    );
    assert_eq!(sim.view(0), sim.server.state());
}

/// The steps a track sounds while a region loops are exactly those the wrap rule reaches.
#[test]
fn sounds_matches_the_wrap_rule_for_every_track_length() {
    for (start, end) in [(0, 4), (4, 12), (16, 32), (3, 5), (0, 128), (100, 128)] {
        let r = LoopRegion::new(start, end).unwrap();
        for sc in [1usize, 3, 5, 7, 12, 16, 24, 32, 64, 128] {
            let reached: std::collections::BTreeSet<usize> = (start..end + 2 * 128)
                .map(|n| r.wrap(n).rem_euclid(sc as i64) as usize)
                .collect();
            for k in 0..sc {
                assert_eq!(
                    r.sounds(k, sc),
                    reached.contains(&k),
                    "region {start}..{end}, {sc} steps, step {k}"
                );
            }
        }
    }
    // A 16-step track under the second bar of a 32-step region plays every step.
    let r = LoopRegion::new(16, 32).unwrap();
    assert!((0..16).all(|k| r.sounds(k, 16)));
    // A 32-step track under 4..8 plays only 4..8.
    let r = LoopRegion::new(4, 8).unwrap();
    assert_eq!(
        (0..32).filter(|&k| r.sounds(k, 32)).collect::<Vec<_>>(),
        vec![4, 5, 6, 7]
    );
}
