//! Chords in the engine: every note of a step's chord sounds at the step's frame (synths, recorded
//! samples and sampled instruments), within the track's polyphony, held together by a tie; a
//! drum voice plays one note; the notes to load first include the chord's.

use keyboardia_audio::engine::{Engine, Pattern, StepLock, Track, Transport, VOICES_PER_TRACK};
use keyboardia_audio::offline::render_engine;
use keyboardia_audio::sampler::{EnvelopeSpec, SampledInstrument, SampledZone};
use keyboardia_audio::{Drum, Instrument, Synth};

const SR: f32 = 48_000.0;
/// Frames per 16th note at 120 BPM and 48 kHz.
const FPS: u64 = 6000;

fn chord(pitch: Option<i8>, notes: &[i8]) -> StepLock {
    let mut l = StepLock {
        pitch,
        ..StepLock::default()
    };
    for (c, &n) in l.chord.iter_mut().zip(notes) {
        *c = Some(n);
    }
    l
}

fn engine(tracks: &[Track]) -> Box<Engine> {
    let mut p = Pattern::default();
    for t in tracks {
        p.push(*t);
    }
    let mut e = Engine::new(SR);
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    e
}

fn triggers_at(e: &Engine, track: u8, frame: u64) -> usize {
    e.triggers()
        .filter(|t| t.track == track && t.frame == frame)
        .count()
}

fn sine_pcm(frames: usize, amp: f32) -> Vec<f32> {
    (0..frames)
        .map(|i| amp * (2.0 * std::f32::consts::PI * 220.0 * i as f32 / SR).sin())
        .collect()
}

fn sampled_sine() -> SampledInstrument {
    let pcm: Vec<i16> = sine_pcm(48_000, 0.3)
        .iter()
        .map(|x| (x * 32767.0) as i16)
        .collect();
    SampledInstrument {
        base_note: 60,
        gain: 1.0,
        envelope: EnvelopeSpec {
            attack: 0.0,
            hold: 0.0,
            decay: 1.0,
            sustain: 1.0,
            release: 0.05,
        },
        one_shot: false,
        choke: 0,
        zones: vec![SampledZone {
            key_lo: 0,
            key_hi: 127,
            vel_lo: 1,
            vel_hi: 127,
            root: 57,
            fine_tune: 0,
            sample_rate: 48_000,
            loop_points: None,
            gain: 1.0,
            pcm,
        }],
    }
}

#[test]
fn every_note_of_a_chord_sounds_at_the_step_frame() {
    let mut synth = Track::new(Instrument::Synth(Synth::Keys), &[0, 8]);
    synth.locks[0] = chord(Some(0), &[4, 7]);
    // Four notes: the track's whole polyphony.
    synth.locks[8] = chord(Some(-12), &[0, 3, 7]);
    let mut sample = Track::new(Instrument::Sample(0), &[0]);
    sample.locks[0] = chord(None, &[5, 9]);
    let mut sampled = Track::new(Instrument::Sampled(0), &[0]);
    sampled.locks[0] = chord(Some(2), &[-3]);
    let mut e = engine(&[synth, sample, sampled]);
    e.load_sample(0, sine_pcm(48_000, 0.2), SR);
    assert!(e.load_instrument(0, sampled_sine()));
    render_engine(&mut e, 256, 128);
    assert_eq!(triggers_at(&e, 0, 0), 3, "C E G on the synth");
    assert_eq!(e.active_voices_on(0), 3);
    assert_eq!(triggers_at(&e, 1, 0), 3, "three notes of the recording");
    assert_eq!(e.active_voices_on(1), 3);
    assert_eq!(
        triggers_at(&e, 2, 0),
        2,
        "two notes of the sampled instrument"
    );
    assert_eq!(e.active_voices_on(2), 2);
    assert_eq!(e.triggers().count(), 8, "nothing else");
    render_engine(&mut e, 8 * FPS as usize, 128);
    assert_eq!(triggers_at(&e, 0, 8 * FPS), 4);
    assert_eq!(e.active_voices_on(0), VOICES_PER_TRACK);
}

/// Renders the left channel of `frames` frames with a sine recording in sample slot 0.
fn render_with_sample(tracks: &[Track], frames: usize) -> Vec<f32> {
    let mut e = engine(tracks);
    e.load_sample(0, sine_pcm(48_000, 0.1), SR);
    render_engine(&mut e, frames, 128).left
}

#[test]
fn a_chord_sounds_as_its_notes_on_three_tracks() {
    let mut one = Track::new(Instrument::Sample(0), &[0]);
    one.locks[0] = chord(None, &[4, 7]);
    let mut three = Vec::new();
    for p in [0, 4, 7] {
        let mut t = Track::new(Instrument::Sample(0), &[0]);
        t.locks[0] = chord(Some(p), &[]);
        three.push(t);
    }
    let frames = 3 * FPS as usize;
    let a = render_with_sample(&[one], frames);
    let b = render_with_sample(&three, frames);
    let peak = a.iter().fold(0f32, |m, x| m.max(x.abs()));
    assert!(peak > 0.05, "it sounds: {peak}");
    let diff = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff < 1e-5, "the chord differs from its notes by {diff}");
    // And it is not just the root.
    let root = render_with_sample(&three[..1], frames);
    let diff = a
        .iter()
        .zip(&root)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff > 0.02, "{diff}");
}

#[test]
fn a_tie_holds_the_whole_chord() {
    let mut t = Track::new(Instrument::Synth(Synth::Organ), &[0, 1, 2]);
    t.locks[0] = chord(Some(0), &[3, 7]);
    t.locks[1] = StepLock {
        tie: true,
        ..chord(Some(0), &[3, 7])
    };
    let mut e = engine(&[t]);
    render_engine(&mut e, (FPS + FPS / 2) as usize, 128);
    assert_eq!(triggers_at(&e, 0, 0), 3);
    assert_eq!(triggers_at(&e, 0, FPS), 0, "the tied step strikes nothing");
    assert_eq!(e.active_voices_on(0), 3, "all three notes still held");
    render_engine(&mut e, FPS as usize, 128);
    assert_eq!(triggers_at(&e, 0, 2 * FPS), 1, "step 2 has no chord");
}

#[test]
fn a_drum_plays_one_note_and_the_notes_to_load_include_the_chord() {
    let mut d = Track::new(Instrument::Drum(Drum::Kick), &[0]);
    d.locks[0] = chord(None, &[4, 7]);
    let mut e = engine(&[d]);
    render_engine(&mut e, 256, 128);
    assert_eq!(e.triggers().count(), 1);

    let mut t = Track::new(Instrument::Sampled(0), &[0, 1]);
    t.locks[0] = chord(None, &[4, 7]);
    t.locks[1] = chord(Some(12), &[0]);
    assert_eq!(
        t.notes(60),
        vec![(60, 100), (64, 100), (67, 100), (72, 100)],
        "each key once"
    );
}
