//! Sessions from the core model render as a musician would expect.

use keyboardia_audio::offline::{
    export_steps, pattern_from_session, render_session, render_session_with, to_wav, TAIL_FLOOR,
};
use keyboardia_audio::{Drum, Instrument};
use keyboardia_core::model::SessionState;

#[test]
fn the_starter_beat_renders_to_a_wav() {
    let s = SessionState::starter();
    let p = pattern_from_session(&s, |_| None);
    assert_eq!(p.track_count, 4);
    assert_eq!(p.tracks[0].instrument, Some(Instrument::Drum(Drum::Kick)));
    let pcm = render_session(&s, 44_100.0, 1, Vec::new());
    // One bar at 120 BPM (2 s) plus what still rings, cut once below -60 dBFS.
    assert!(
        pcm.left.len() > 2 * 44_100 && pcm.left.len() < 4 * 44_100,
        "{}",
        pcm.left.len()
    );
    let loud = pcm.left.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(loud > 0.1, "starter beat peak {loud}");
    let wav = to_wav(&pcm);
    let r = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    assert_eq!(r.spec().channels, 2);
    assert_eq!(r.duration() as usize, pcm.left.len());
}

#[test]
fn recordings_play_as_instruments() {
    let mut s = SessionState::starter();
    s.tracks.truncate(1);
    s.tracks[0].instrument = "recording/r1".into();
    let silent = render_session(&s, 44_100.0, 1, Vec::new());
    assert!(
        silent.left.iter().all(|x| *x == 0.0),
        "a missing recording is silence"
    );
    let loaded = vec![keyboardia_audio::offline::LoadedSample {
        id: "r1".into(),
        pcm: (0..4410).map(|i| (i as f32 * 0.05).sin() * 0.8).collect(),
        rate: 44_100.0,
    }];
    let pcm = render_session(&s, 44_100.0, 1, loaded);
    let peak = pcm.left.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(peak > 0.1, "the recording is heard: {peak}");
}

#[test]
fn unknown_instruments_stay_silent_rather_than_sounding_like_something_else() {
    let mut s = SessionState::starter();
    s.tracks[0].instrument = "drums/theremin".into();
    s.tracks[1].instrument = "recording/not-loaded".into();
    let p = pattern_from_session(&s, |_| None);
    assert_eq!(p.tracks[0].instrument, None);
    assert_eq!(p.tracks[1].instrument, None);
}

#[test]
fn exports_cover_a_full_polyrhythmic_cycle() {
    let mut s = SessionState::starter();
    s.tracks[1].step_count = 12;
    s.tracks[2].step_count = 5;
    let p = pattern_from_session(&s, |_| None);
    assert_eq!(export_steps(&p), 240); // lcm(16, 12, 5)
}

/// Exactly the loops asked for: at 121 BPM one bar is 16 steps of 60/121/4 s, and 1, 2, 4 and
/// 8 loops are that many bars to the frame (rounded once), without the tail; with the tail the
/// file ends in what rang on (no new notes), faded out below -60 dBFS.
#[test]
fn exports_are_exactly_the_loops_then_only_the_tail() {
    let mut s = SessionState::starter();
    s.tempo = 121;
    let bar = 44_100.0 * 60.0 / 121.0 / 4.0 * 16.0;
    for loops in [1u32, 2, 4, 8] {
        let pcm = render_session_with(&s, 44_100.0, loops, Vec::new(), Vec::new(), false);
        assert_eq!(
            pcm.left.len(),
            (bar * loops as f64).round() as usize,
            "{loops} loops"
        );
    }
    let with_tail = render_session_with(&s, 44_100.0, 2, Vec::new(), Vec::new(), true);
    let body = (bar * 2.0).round() as usize;
    assert!(with_tail.left.len() > body, "a tail follows the loops");
    let tail = &with_tail.left[body..];
    // No new note starts in the tail: it only decays (its loudest part is at its start).
    let first = tail[..2048].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let rest = tail[2048..].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        rest <= first + 1e-6,
        "the tail only decays: {first} then {rest}"
    );
    assert!(tail.last().unwrap().abs() < TAIL_FLOOR);
}

/// Without the tail the file loops seamlessly: its two loops are alike, and the end runs on into
/// the start as the pattern does when it repeats.
#[test]
fn a_loop_without_tail_is_seamless() {
    // The bass is fully deterministic: its two loops are the same to the bit.
    let mut s = SessionState::starter();
    s.tracks.retain(|t| t.id == "bass");
    let pcm = render_session_with(&s, 44_100.0, 2, Vec::new(), Vec::new(), false);
    let half = pcm.left.len() / 2;
    assert_eq!(pcm.left[..half], pcm.left[half..], "the two loops are one");
    // The whole beat (drums have noise, new on every hit): each loop carries the same energy
    // window by window, and the wrap from the last frame to the first is an ordinary step.
    let s = SessionState::starter();
    let pcm = render_session_with(&s, 44_100.0, 2, Vec::new(), Vec::new(), false);
    let half = pcm.left.len() / 2;
    let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    for w in (0..half - 2048).step_by(2048) {
        let (a, b) = (
            rms(&pcm.left[w..w + 2048]),
            rms(&pcm.left[half + w..half + w + 2048]),
        );
        let db = 20.0 * ((a + 1e-6) / (b + 1e-6)).log10();
        assert!(db.abs() < 1.0, "window at {w}: {a} vs {b}");
    }
    let largest = pcm
        .left
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0f32, f32::max);
    let wrap = (pcm.left[0] - pcm.left[pcm.left.len() - 1]).abs();
    assert!(wrap <= largest, "wrap {wrap} vs the largest step {largest}");
    // With the tail instead, the file starts silent (no earlier loop rings into it).
    let song = render_session_with(&s, 44_100.0, 2, Vec::new(), Vec::new(), true);
    assert_ne!(song.left[..100], pcm.left[..100]);
}

#[test]
fn every_effect_parameter_reaches_the_engine_and_the_worklet_message() {
    use keyboardia_audio::effects::MasterFx;
    use keyboardia_audio::offline::{master_fx, track_fx};
    use keyboardia_core::effects::{Fx, FxValues, Kind, Scope};
    // Each parameter moved away from its default changes what the engine plays, and the
    // worklet's numbers (`to_array`, `from_array`) carry it unchanged.
    for p in Fx::ALL.iter().copied() {
        let spec = p.spec();
        let other = match spec.kind {
            Kind::Range { min, max, .. } => {
                if spec.default == max {
                    min
                } else {
                    max
                }
            }
            Kind::Choice(names) => {
                if spec.default == 0.0 {
                    (names.len() - 1) as f32
                } else {
                    0.0
                }
            }
            Kind::Toggle => 1.0 - spec.default,
        };
        let mut v = FxValues::default();
        v.set(p, other);
        match p.scope() {
            Scope::Session => {
                let fx = master_fx(&v);
                assert_ne!(fx, master_fx(&FxValues::default()), "{p:?} changes nothing");
                assert_eq!(MasterFx::from_array(&fx.to_array()), fx, "{p:?} round trip");
            }
            Scope::Track => {
                assert_ne!(
                    track_fx(&v),
                    track_fx(&FxValues::default()),
                    "{p:?} changes nothing"
                );
            }
        }
    }
}
