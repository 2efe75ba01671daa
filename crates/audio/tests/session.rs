//! Sessions from the core model render as a musician would expect.

use keyboardia_audio::offline::{export_steps, pattern_from_session, render_session, to_wav};
use keyboardia_audio::{Drum, Instrument};
use keyboardia_core::model::SessionState;

#[test]
fn the_starter_beat_renders_to_a_wav() {
    let s = SessionState::starter();
    let p = pattern_from_session(&s, |_| None);
    assert_eq!(p.track_count, 4);
    assert_eq!(p.tracks[0].instrument, Some(Instrument::Drum(Drum::Kick)));
    let pcm = render_session(&s, 44_100.0, 1, Vec::new());
    // One bar at 120 BPM (2 s) plus a 1 s tail.
    assert_eq!(pcm.left.len(), 3 * 44_100);
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
