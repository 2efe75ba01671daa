//! The effects in the engine's mix: every effect on renders the same whatever the block size,
//! a delayed echo lands on exactly its frame, a cutoff lock changes the sound from its step's
//! frame, the bypass returns exactly the dry mix without a click, and with every effect off the
//! mix is unchanged.

use keyboardia_audio::demo::{all_effects, busy_pattern, busy_pattern_with_effects};
use keyboardia_audio::effects::{delay_frames, Division, Feel, FilterMode, MasterFx, TrackFx};
use keyboardia_audio::engine::{Engine, Pattern, Track, Transport};
use keyboardia_audio::offline::{render_engine, Stereo};
use keyboardia_audio::{Drum, Instrument, Synth};

const SR: f32 = 48_000.0;
/// Frames per 16th note at 120 BPM and 48 kHz.
const FPS: usize = 6000;

fn engine(p: &Pattern, fx: &MasterFx, tempo: f64) -> Box<Engine> {
    let mut e = Engine::new(SR);
    e.set_pattern(p);
    e.set_master_fx(fx);
    e.set_transport(Transport::play(0.0, 0.0, tempo));
    e.settle_effects();
    e
}

fn render(p: &Pattern, fx: &MasterFx, frames: usize, block: usize) -> Stereo {
    render_engine(&mut engine(p, fx, 120.0), frames, block)
}

fn same(a: &Stereo, b: &Stereo) -> bool {
    a.left.len() == b.left.len()
        && a.left
            .iter()
            .zip(&b.left)
            .chain(a.right.iter().zip(&b.right))
            .all(|(x, y)| x.to_bits() == y.to_bits())
}

fn first_difference(a: &[f32], b: &[f32]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
}

#[test]
fn every_effect_on_renders_the_same_whatever_the_block_size() {
    let p = busy_pattern_with_effects();
    let fx = all_effects();
    let reference = render(&p, &fx, 3 * SR as usize, 128);
    let dry = render(&busy_pattern(), &MasterFx::default(), 3 * SR as usize, 128);
    assert!(!same(&reference, &dry), "the effects changed nothing");
    assert!(reference
        .left
        .iter()
        .all(|v| v.is_finite() && v.abs() <= 1.0));
    for block in [1, 37, 100] {
        let r = render(&p, &fx, 3 * SR as usize, block);
        assert!(
            same(&r, &reference),
            "block size {block} changed the output"
        );
    }
}

#[test]
fn with_every_effect_off_the_mix_is_unchanged() {
    // The defaults: sends open (0.3) into a reverb whose return is off; no filter, no drive.
    let p = busy_pattern();
    let mut with_fx = Engine::new(SR);
    with_fx.set_pattern(&p);
    with_fx.set_master_fx(&MasterFx::default());
    with_fx.set_transport(Transport::play(0.0, 0.0, 133.0));
    let a = render_engine(&mut with_fx, SR as usize, 128);
    let b = keyboardia_audio::offline::render(&p, 133.0, SR, SR as usize, 128);
    assert!(same(&a, &b));
}

/// One rim shot at frame 0, sent only to the delay.
fn rim_to_delay(send: f32) -> Pattern {
    let mut t = Track::new(Instrument::Drum(Drum::Rim), &[0]);
    t.step_count = 128;
    t.volume = 0.5;
    t.fx = TrackFx {
        send_reverb: 0.0,
        send_delay: send,
        ..TrackFx::DEFAULT
    };
    let mut p = Pattern::default();
    p.push(t);
    p
}

#[test]
fn a_delayed_echo_lands_on_exactly_its_frame() {
    for (tempo, division, feel) in [
        (120.0, Division::Eighth, Feel::Dotted),
        (97.0, Division::Quarter, Feel::Straight),
        (143.0, Division::Sixteenth, Feel::Triplet),
    ] {
        let fx = MasterFx {
            delay_mix: 1.0,
            delay_division: division,
            delay_feel: feel,
            delay_feedback: 0.0,
            delay_tone: 0.0,
            delay_ping_pong: false,
            ..MasterFx::default()
        };
        let frames = 2 * SR as usize;
        let wet = render_engine(&mut engine(&rim_to_delay(1.0), &fx, tempo), frames, 128);
        let dry = render_engine(&mut engine(&rim_to_delay(0.0), &fx, tempo), frames, 128);
        let expected = delay_frames(tempo, division, feel, SR);
        assert_eq!(
            first_difference(&wet.left, &dry.left),
            Some(expected),
            "{tempo} BPM {division:?} {feel:?}"
        );
        // The echo is the hit itself, delayed (the dry hit is silent by then).
        let onset = dry.left.iter().position(|v| *v != 0.0).unwrap();
        assert_eq!(onset, 0);
        let echo = &wet.left[expected..expected + 200];
        let hit = &dry.left[..200];
        let err = echo
            .iter()
            .zip(hit)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let peak = hit.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(
            err < peak * 0.05,
            "echo differs from the hit by {err} (peak {peak})"
        );
    }
}

/// A pad holding a note across every step, through a low-pass filter.
fn filtered_pad(lock_at: Option<usize>) -> Pattern {
    let mut t = Track::new(Instrument::Synth(Synth::Pad), &(0..16).collect::<Vec<_>>());
    for k in 1..16 {
        t.locks[k].tie = true;
    }
    t.fx = TrackFx {
        filter: FilterMode::LowPass,
        cutoff: 6000.0,
        resonance: 0.3,
        ..TrackFx::DEFAULT
    };
    if let Some(k) = lock_at {
        t.locks[k].cutoff = Some(300.0);
    }
    let mut p = Pattern::default();
    p.push(t);
    p
}

#[test]
fn a_cutoff_lock_changes_the_sound_from_its_steps_frame() {
    let frames = 8 * FPS;
    let plain = render(&filtered_pad(None), &MasterFx::default(), frames, 128);
    let locked = render(&filtered_pad(Some(4)), &MasterFx::default(), frames, 128);
    assert_eq!(first_difference(&plain.left, &locked.left), Some(4 * FPS));
    // From step 5 the lock is gone and the filter glides back: the step after ends unlike the
    // locked step (darker while locked: less high-frequency energy).
    let hf = |x: &[f32]| x.windows(2).map(|w| (w[1] - w[0]).powi(2)).sum::<f32>();
    let during = hf(&locked.left[4 * FPS + 600..5 * FPS]);
    let before = hf(&locked.left[3 * FPS + 600..4 * FPS]);
    assert!(during < before * 0.3, "locked {during} vs open {before}");
}

#[test]
fn the_bypass_returns_the_dry_mix_without_a_click() {
    // Quiet enough that the dry mix never reaches the limiter (whose recovery after the
    // louder wet mix would otherwise take a while to end exactly).
    let mut p = busy_pattern_with_effects();
    for t in p.tracks.iter_mut() {
        t.volume = 0.15;
    }
    let frames = 4 * SR as usize;
    let switch = SR as usize;
    let mut e = engine(&p, &all_effects(), 120.0);
    let before = render_engine(&mut e, switch, 128);
    let mut fx = all_effects();
    fx.bypass = true;
    e.set_master_fx(&fx);
    let after = render_engine(&mut e, frames - switch, 128);
    // The same pattern with no master effects at all (the tracks' own filters stay).
    let dry = render(&p, &MasterFx::default(), frames, 128);
    // Settled (the crossfade and the limiter's recovery), bypassed output is exactly the dry
    // mix.
    let settled = (2.0 * SR) as usize;
    assert_eq!(
        first_difference(&after.left[settled..], &dry.left[switch + settled..]),
        None
    );
    // No click at the switch: no sample-to-sample step larger than the loudest step the music
    // itself makes around it.
    let steps = |x: &[f32]| {
        x.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0f32, f32::max)
    };
    let around: Vec<f32> = before.left[switch - 2000..]
        .iter()
        .chain(&after.left[..2000])
        .copied()
        .collect();
    let music = steps(&before.left[..switch - 2000]).max(steps(&dry.left[switch..]));
    assert!(steps(&around) <= music, "{} vs {music}", steps(&around));
}
