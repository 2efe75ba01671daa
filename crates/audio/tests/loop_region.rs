//! The loop region in the engine: which slot each track plays and on exactly which frame, a
//! region that arrives while playing taking effect with its transport's anchor, the same rule
//! as the core's, and exports that loop the region.

use keyboardia_audio::engine::{Engine, LoopRegion, Pattern, Track, Transport};
use keyboardia_audio::offline::{export_span, render_engine};
use keyboardia_audio::{Drum, Instrument};

const SR: f32 = 48_000.0;
/// Frames per 16th note at 120 BPM and 48 kHz.
const FPS: u64 = 6000;

fn every_step(count: u16) -> Track {
    let mut t = Track::new(
        Instrument::Drum(Drum::Rim),
        &(0..count as usize).collect::<Vec<_>>(),
    );
    t.step_count = count;
    t
}

fn pattern(tracks: &[Track], region: Option<LoopRegion>) -> Pattern {
    let mut p = Pattern::default();
    for t in tracks {
        p.push(*t);
    }
    p.loop_region = region;
    p
}

/// (frame, slot) of each trigger of track `track`.
fn hits(e: &Engine, track: u8) -> Vec<(u64, u8)> {
    e.triggers()
        .filter(|t| t.track == track)
        .map(|t| (t.frame, t.slot))
        .collect()
}

#[test]
fn a_region_plays_its_slots_over_and_over_on_exact_frames() {
    let region = LoopRegion::new(4, 8);
    // A 16-step track and a 3-step one (the polyrhythm stays: the wrapped step modulo 3).
    let p = pattern(&[every_step(16), every_step(3)], region);
    let mut e = Engine::new(SR);
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 4.0, 120.0));
    render_engine(&mut e, 10 * FPS as usize, 128);
    let expect: Vec<(u64, u8)> = [4, 5, 6, 7, 4, 5, 6, 7, 4, 5]
        .iter()
        .enumerate()
        .map(|(i, &s)| (i as u64 * FPS, s))
        .collect();
    assert_eq!(hits(&e, 0), expect);
    let three: Vec<u8> = hits(&e, 1).iter().map(|h| h.1).collect();
    assert_eq!(three, [1, 2, 0, 1, 1, 2, 0, 1, 1, 2]);
    // From step 0, the steps before the region play once, then the region.
    let mut e = Engine::new(SR);
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    render_engine(&mut e, 12 * FPS as usize, 128);
    let slots: Vec<u8> = hits(&e, 0).iter().map(|h| h.1).collect();
    assert_eq!(slots, [0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7]);
    let frames: Vec<u64> = hits(&e, 0).iter().map(|h| h.0).collect();
    assert_eq!(frames, (0..12).map(|n| n * FPS).collect::<Vec<_>>());
}

#[test]
fn a_region_set_while_playing_starts_at_its_transports_anchor() {
    let mut e = Engine::new(SR);
    e.set_pattern(&pattern(&[every_step(16)], None));
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    render_engine(&mut e, (9 * FPS + 100) as usize, 128);
    // The region and its re-anchor (to the region's start at step 12's frame) arrive early:
    // nothing changes before that frame, everything after it.
    e.set_pattern(&pattern(&[every_step(16)], LoopRegion::new(4, 8)));
    assert_eq!(
        e.loop_region(),
        None,
        "not yet: the old transport still plays"
    );
    render_engine(&mut e, FPS as usize, 128);
    e.set_transport(Transport::play((12 * FPS) as f64, 4.0, 120.0));
    render_engine(&mut e, 6 * FPS as usize, 128);
    assert_eq!(e.loop_region(), LoopRegion::new(4, 8));
    let got = hits(&e, 0);
    let expect: Vec<(u64, u8)> = (0..12)
        .map(|n| (n * FPS, n as u8))
        .chain(
            [4, 5, 6, 7, 4]
                .iter()
                .enumerate()
                .map(|(i, &s)| ((12 + i as u64) * FPS, s)),
        )
        .collect();
    assert_eq!(got, expect);
    // Stopped, a region applies at once.
    e.set_transport(Transport::STOPPED);
    e.set_pattern(&pattern(&[every_step(16)], None));
    assert_eq!(e.loop_region(), None);
    e.set_loop_region(LoopRegion::new(2, 3));
    assert_eq!(e.loop_region(), LoopRegion::new(2, 3));
}

#[test]
fn the_engine_wraps_as_the_core_does() {
    for start in 0..128u8 {
        for end in start + 1..=128u8 {
            let core = keyboardia_core::model::LoopRegion { start, end };
            let engine = LoopRegion::new(start as u32, end as u32).unwrap();
            for n in (-3..300).chain([10_000, 1 << 40]) {
                assert_eq!(core.wrap(n), engine.wrap(n), "{start}..{end} at {n}");
            }
        }
    }
    assert_eq!(LoopRegion::new(5, 5), None);
    assert_eq!(LoopRegion::new(0, 129), None);
}

#[test]
fn an_export_loops_the_region() {
    use keyboardia_core::model::{LoopRegion as CoreRegion, SessionState};
    let mut s = SessionState::starter();
    assert_eq!(
        export_span(&keyboardia_audio::offline::pattern_from_session(&s, |_| {
            None
        })),
        (0, 16)
    );
    s.loop_region = Some(CoreRegion { start: 4, end: 12 });
    // Noisy voices differ from one loop to the next (their noise follows the global step).
    s.tracks.retain(|t| t.id == "bass");
    let p = keyboardia_audio::offline::pattern_from_session(&s, |_| None);
    assert_eq!(export_span(&p), (4, 8));
    // Two loops of the region, seamless: exactly 16 steps long, and the second loop is the
    // first again.
    let pcm = keyboardia_audio::offline::render_session_with(
        &s,
        48_000.0,
        2,
        Vec::new(),
        Vec::new(),
        false,
    );
    assert_eq!(pcm.left.len(), 16 * FPS as usize);
    let half = 8 * FPS as usize;
    let diff = pcm.left[..half]
        .iter()
        .zip(&pcm.left[half..])
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff < 1e-3, "the two loops differ by {diff}");
    // And it is the region: the bass (steps 0, 3, 6, 10) plays slots 6 and 10 of 4..12, at 2
    // and 6 steps into each loop; slot 3 (which step 3 would be without it) stays silent.
    let peak = |from: u64, steps: u64| {
        pcm.left[(from * FPS) as usize..((from + steps) * FPS) as usize]
            .iter()
            .fold(0f32, |m, x| m.max(x.abs()))
    };
    assert!(
        peak(2, 1) > 0.05 && peak(6, 1) > 0.05,
        "{} {}",
        peak(2, 1),
        peak(6, 1)
    );
    assert!(
        peak(0, 2) < 0.2 * peak(2, 1),
        "{} {}",
        peak(0, 2),
        peak(2, 1)
    );
}
