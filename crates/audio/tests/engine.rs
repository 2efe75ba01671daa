//! The sequencer and mixer: onsets land on exactly the expected frame (straight, swung,
//! polyrhythmic, across a tempo change, when joining mid-play), rendering does not depend on block
//! size, reset reproduces the output, and the mix never clips.

use keyboardia_audio::engine::{Engine, Pattern, Track, Transport, CEILING};
use keyboardia_audio::offline::{render, render_engine};
use keyboardia_audio::{Drum, Instrument, Synth};

const SR: f32 = 48_000.0;
/// Frames per 16th note at 120 BPM and 48 kHz.
const FPS: u64 = 6000;

fn pattern(tracks: &[Track]) -> Pattern {
    let mut p = Pattern::default();
    for t in tracks {
        p.push(*t);
    }
    p
}

fn all_steps(i: Instrument, count: u16) -> Track {
    let mut t = Track::new(i, &(0..count as usize).collect::<Vec<_>>());
    t.step_count = count;
    t
}

fn onsets(e: &Engine, track: u8) -> Vec<u64> {
    e.triggers()
        .filter(|t| t.track == track)
        .map(|t| t.frame)
        .collect()
}

fn run(p: &Pattern, t: Transport, frames: usize, block: usize) -> Box<Engine> {
    let mut e = Engine::new(SR);
    e.set_pattern(p);
    e.set_transport(t);
    render_engine(&mut e, frames, block);
    e
}

fn busy() -> Pattern {
    keyboardia_audio::demo::busy_pattern()
}

#[test]
fn straight_sixteenths_land_on_exact_frames() {
    let p = pattern(&[all_steps(Instrument::Drum(Drum::Rim), 16)]);
    let e = run(&p, Transport::play(0.0, 0.0, 120.0), 16 * FPS as usize, 128);
    let expect: Vec<u64> = (0..16).map(|n| n * FPS).collect();
    assert_eq!(onsets(&e, 0), expect);
}

#[test]
fn the_audio_starts_on_the_onset_frame() {
    // A sample of ones: the first non-zero output sample is the onset frame.
    let mut e = Engine::new(SR);
    e.load_sample(0, vec![1.0; 48_000], SR);
    let p = pattern(&[Track::new(Instrument::Sample(0), &[1])]);
    e.set_pattern(&p);
    e.set_transport(Transport::play(1234.0, 0.0, 120.0));
    let out = render_engine(&mut e, 20_000, 128);
    let first = out.left.iter().position(|x| *x != 0.0).unwrap();
    assert_eq!(first as u64, 1234 + FPS);
}

#[test]
fn swing_delays_the_off_beats() {
    let mut t = all_steps(Instrument::Drum(Drum::Rim), 16);
    t.swing = 30;
    let mut p = pattern(&[t]);
    p.swing = 20; // global and track swing add up: 50 = a quarter step late
    let e = run(&p, Transport::play(0.0, 0.0, 120.0), 8 * FPS as usize, 64);
    let expect: Vec<u64> = (0..8)
        .map(|n| n * FPS + if n % 2 == 1 { FPS / 4 } else { 0 })
        .collect();
    assert_eq!(onsets(&e, 0), expect);
}

#[test]
fn each_track_loops_its_own_step_count() {
    let three = Track {
        step_count: 3,
        ..Track::new(Instrument::Drum(Drum::Rim), &[0])
    };
    let four = Track {
        step_count: 4,
        ..Track::new(Instrument::Drum(Drum::Clave), &[0])
    };
    let e = run(
        &pattern(&[three, four]),
        Transport::play(0.0, 0.0, 120.0),
        12 * FPS as usize + 1,
        128,
    );
    assert_eq!(onsets(&e, 0), [0, 3 * FPS, 6 * FPS, 9 * FPS, 12 * FPS]);
    assert_eq!(onsets(&e, 1), [0, 4 * FPS, 8 * FPS, 12 * FPS]);
}

#[test]
fn a_tempo_change_reanchors_without_a_jump() {
    let mut e = rim_engine();
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    render_engine(&mut e, 1000, 128);
    // At frame 30,000 (step 5 at 120 BPM) switch to 60 BPM: 12,000 frames per step after that.
    e.set_transport(Transport::play(30_000.0, 5.0, 60.0));
    render_engine(&mut e, 80_000, 100);
    let expect: Vec<u64> = (0..5)
        .map(|n| n * FPS)
        .chain((0..5).map(|k| 30_000 + k * 12_000))
        .collect();
    assert_eq!(onsets(&e, 0), expect, "no step repeated, skipped or early");
}

#[test]
fn joining_mid_play_comes_in_on_the_right_step() {
    let p = pattern(&[all_steps(Instrument::Drum(Drum::Rim), 16)]);
    // Playback started (in someone else's engine) at frame -X; we join at frame 0.
    for (offset, first_step, first_frame) in [
        (3 * FPS as i64, 3, 0),                 // exactly on a boundary: step 3 now
        (3 * FPS as i64 - 1, 3, 1),             // just before: step 3 one frame later
        (3 * FPS as i64 + 1, 4, FPS - 1),       // just after: step 3 is gone, step 4 next
        (3 * FPS as i64 + 2000, 4, FPS - 2000), // mid-step: no replay of step 3
    ] {
        let e = run(
            &p,
            Transport::play(-offset as f64, 0.0, 120.0),
            2 * FPS as usize,
            128,
        );
        let t: Vec<_> = e.triggers().collect();
        assert_eq!(t[0].step, first_step, "offset {offset}");
        assert_eq!(t[0].frame, first_frame, "offset {offset}");
    }
}

#[test]
fn play_anchored_in_the_future_starts_exactly_there_and_stop_stops() {
    let mut e = rim_engine();
    e.set_transport(Transport::play(10_007.0, 0.0, 120.0));
    render_engine(&mut e, 25_000, 128);
    e.set_transport(Transport {
        playing: false,
        ..Transport::play(30_000.0, 0.0, 120.0)
    });
    render_engine(&mut e, 40_000, 128);
    assert_eq!(onsets(&e, 0), [10_007, 16_007, 22_007, 28_007]);
}

#[test]
fn rendering_does_not_depend_on_block_size() {
    let p = busy();
    let reference = render(&p, 133.0, SR, 3 * SR as usize, 128);
    for block in [1, 7, 64, 100, 127] {
        let r = render(&p, 133.0, SR, 3 * SR as usize, block);
        assert!(
            r.left
                .iter()
                .zip(&reference.left)
                .all(|(a, b)| a.to_bits() == b.to_bits())
                && r.right
                    .iter()
                    .zip(&reference.right)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
            "block size {block} changed the output"
        );
    }
}

#[test]
fn reset_reproduces_the_output() {
    let mut e = Engine::new(SR);
    e.set_pattern(&busy());
    e.set_transport(Transport::play(0.0, 0.0, 128.0));
    let a = render_engine(&mut e, 2 * SR as usize, 128);
    e.reset();
    let b = render_engine(&mut e, 2 * SR as usize, 128);
    assert_eq!(a, b);
}

#[test]
fn the_limiter_never_lets_a_peak_past_full_scale() {
    let mut p = Pattern::default();
    for i in 0..16 {
        let mut t = all_steps(
            if i % 2 == 0 {
                Instrument::Drum(Drum::Kick808)
            } else {
                Instrument::Synth(Synth::Acid)
            },
            16,
        );
        t.volume = 1.0;
        p.push(t);
    }
    let out = render(&p, 180.0, SR, 4 * SR as usize, 128);
    let peak = out
        .left
        .iter()
        .chain(&out.right)
        .fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(peak <= CEILING, "peak {peak}");
    assert!(peak > 0.5, "and it is still loud: {peak}");
}

#[test]
fn mute_and_solo() {
    let a = Track::new(Instrument::Drum(Drum::Kick), &[0, 4, 8, 12]);
    let b = Track::new(Instrument::Drum(Drum::HatClosed), &[2, 6, 10, 14]);
    let energy = |p: &Pattern| -> f32 {
        render(p, 120.0, SR, SR as usize, 128)
            .left
            .iter()
            .map(|x| x * x)
            .sum()
    };
    let both = energy(&pattern(&[a, b]));
    let muted = energy(&pattern(&[Track { muted: true, ..a }, b]));
    let solo = energy(&pattern(&[Track { soloed: true, ..a }, b]));
    let only_a = energy(&pattern(&[a]));
    let only_b = energy(&pattern(&[b]));
    assert!(
        (muted - only_b).abs() <= only_b * 1e-4,
        "mute silences a track"
    );
    assert!(
        (solo - only_a).abs() <= only_a * 1e-4,
        "solo silences the others"
    );
    assert!(both > only_a && both > only_b);
}

#[test]
fn ties_hold_the_note_instead_of_striking_again() {
    let mut t = Track::new(Instrument::Synth(Synth::Organ), &[0, 1, 2, 4]);
    t.locks[1].tie = true;
    t.locks[2].tie = true;
    let e = run(
        &pattern(&[t]),
        Transport::play(0.0, 0.0, 120.0),
        16 * FPS as usize,
        128,
    );
    let steps: Vec<i64> = e.triggers().map(|t| t.step).collect();
    assert_eq!(steps, [0, 4], "tied steps 1 and 2 continue step 0");
}

#[test]
fn a_closed_hat_chokes_the_open_hat() {
    let open = Track::new(Instrument::Drum(Drum::HatOpen), &[0]);
    let closed = Track {
        volume: 0.0, // silent itself: only its choke is heard
        ..Track::new(Instrument::Drum(Drum::HatClosed), &[1])
    };
    let tail = |p: &Pattern| -> f32 {
        let x = render(p, 120.0, SR, SR as usize, 128).left;
        x[8000..20_000].iter().map(|v| v * v).sum()
    };
    let ringing = tail(&pattern(&[open]));
    let choked = tail(&pattern(&[open, closed]));
    assert!(
        choked < ringing * 0.01,
        "choked {choked} vs ringing {ringing}"
    );
}

#[test]
fn more_notes_than_voices_steal_the_oldest() {
    let mut p = Pattern::default();
    for _ in 0..16 {
        let mut t = all_steps(Instrument::Synth(Synth::Pad), 16);
        t.locks.iter_mut().for_each(|l| l.tie = false);
        p.push(t);
    }
    let mut e = Engine::new(SR);
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 0.0, 180.0));
    let out = render_engine(&mut e, 3 * SR as usize, 128);
    assert!(e.active_voices() <= keyboardia_audio::engine::MAX_VOICES);
    assert!(out.left.iter().all(|x| x.is_finite() && x.abs() <= CEILING));
}

/// FNV-1a over the bits of the samples.
fn hash(x: &[f32]) -> u64 {
    x.iter().fold(0xcbf29ce484222325, |h, v| {
        v.to_bits()
            .to_le_bytes()
            .iter()
            .fold(h, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3))
    })
}

#[test]
fn golden_render_is_unchanged() {
    // A change to how anything sounds changes this. If the change is intended, regenerate with
    // KEYBOARDIA_UPDATE_GOLDEN=1 and listen to the difference first.
    let out = render(&busy(), 120.0, SR, SR as usize, 128);
    let got = format!("{:016x} {:016x}\n", hash(&out.left), hash(&out.right));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/busy-1s-48k.txt");
    if std::env::var_os("KEYBOARDIA_UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &got).unwrap();
    }
    let want =
        std::fs::read_to_string(path).expect("golden file (KEYBOARDIA_UPDATE_GOLDEN=1 creates it)");
    assert_eq!(got, want);
}

/// An engine playing a rim shot on all 16 steps (set its transport).
fn rim_engine() -> Box<Engine> {
    let mut e = Engine::new(SR);
    e.set_pattern(&pattern(&[all_steps(Instrument::Drum(Drum::Rim), 16)]));
    e
}

/// The worklet counts the AudioContext's frames: an engine created late (frame 0 is long gone)
/// and moved to the context's frame plays an anchor given in context frames on that frame.
#[test]
fn set_frame_follows_the_context_clock() {
    let mut e = rim_engine();
    e.set_frame(480_000);
    e.set_transport(Transport::play(500_000.0, 0.0, 120.0));
    render_engine(&mut e, 20_000 + 2 * FPS as usize, 128);
    assert_eq!(onsets(&e, 0), [500_000, 500_000 + FPS]);
    // Jumping the clock far forward joins at the next step, with nothing replayed and no burst
    // of the skipped steps.
    e.set_frame(500_000 + 10 * FPS + 10);
    render_engine(&mut e, FPS as usize, 128);
    assert_eq!(onsets(&e, 0), [500_000, 500_000 + FPS, 500_000 + 11 * FPS]);
    // A short skip (a few dropped quanta) over a step still plays that step, at once.
    render_engine(&mut e, 5_900, 100);
    assert_eq!(e.frame(), 500_000 + 12 * FPS - 90);
    e.set_frame(500_000 + 12 * FPS + 256);
    render_engine(&mut e, 128, 128);
    assert_eq!(
        onsets(&e, 0).last(),
        Some(&(500_000 + 12 * FPS + 256)),
        "step 12 played late, not dropped"
    );
}

/// A small correction of a playing transport is slewed: every step moves by no more than the
/// slew rate allows, none is struck twice or skipped, and the schedule ends up on the target.
#[test]
fn anchor_corrections_are_slewed_without_jumps() {
    let mut e = rim_engine();
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    render_engine(&mut e, 2 * FPS as usize - 100, 128);
    // 10 ms later than planned: 480 frames.
    e.correct_anchor(480.0, false);
    render_engine(&mut e, 80 * FPS as usize, 128);
    let got = onsets(&e, 0);
    let steps: Vec<i64> = e.triggers().map(|t| t.step).collect();
    assert_eq!(
        steps,
        (0..steps.len() as i64).collect::<Vec<_>>(),
        "each step once"
    );
    // Between consecutive steps the grid moved by at most the slew rate (plus rounding).
    for w in got.windows(2) {
        let moved = w[1] as i64 - w[0] as i64 - FPS as i64;
        assert!(
            moved.abs() as f64 <= keyboardia_audio::engine::SLEW_RATE * FPS as f64 + 1.0,
            "a step moved by {moved} frames"
        );
    }
    assert_eq!(*got.last().unwrap(), (got.len() as u64 - 1) * FPS + 480);
    assert_eq!(e.anchor(), (480.0, None));
}

/// Corrections too small to hear apply at once; ones too large to slew jump, and a jump
/// earlier does not play the steps it passed over in a burst.
#[test]
fn tiny_corrections_snap_and_huge_ones_jump_without_a_burst() {
    let mut e = rim_engine();
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    render_engine(&mut e, FPS as usize + 50, 128);
    e.correct_anchor(-10.0, false); // 0.2 ms earlier: applied now
    assert_eq!(e.anchor(), (-10.0, None));
    e.correct_anchor(-10.0 - 24_000.0, false); // half a second earlier: jumps
    render_engine(&mut e, 2 * FPS as usize, 128);
    let got = onsets(&e, 0);
    // Steps 0 and 1 before; then the schedule is four steps further on: steps 2..5 are passed
    // over (not played at once) and the next step lands on its new frame.
    assert_eq!(got[..2], [0, FPS]);
    let steps: Vec<i64> = e.triggers().map(|t| t.step).collect();
    assert!(steps[2] >= 6, "{steps:?}");
    assert_eq!(got[2] as i64, steps[2] * FPS as i64 - 24_010);
}

/// A transport still waiting for its anchor just moves: nothing has sounded yet.
#[test]
fn a_pending_transport_moves_freely() {
    let mut e = rim_engine();
    e.set_transport(Transport::play(10_000.0, 0.0, 120.0));
    e.correct_anchor(12_345.0, false);
    render_engine(&mut e, 12_345 + 10, 128);
    assert_eq!(onsets(&e, 0), [12_345]);
}

/// An anchor between two frames (every anchor mapped from a clock is): the anchor step still
/// plays, on the rounded frame, whichever way the fraction falls.
#[test]
fn a_fractional_anchor_never_skips_the_anchor_step() {
    let p = pattern(&[all_steps(Instrument::Drum(Drum::Rim), 16)]);
    for anchor in [1000.3, 1000.5, 1000.7, 1000.0] {
        let e = run(
            &p,
            Transport::play(anchor, 0.0, 120.0),
            1000 + FPS as usize + 10,
            128,
        );
        let first = (anchor + 0.5f64).floor() as u64;
        assert_eq!(onsets(&e, 0), [first, first + FPS], "anchor {anchor}");
    }
}

/// When the output itself jumped (it stalled: everything is heard 20 ms later), the correction
/// applies at once instead of being slewed over seconds; the step that fell behind still plays.
#[test]
fn an_output_jump_is_corrected_at_once() {
    let mut e = rim_engine();
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    render_engine(&mut e, FPS as usize + 500, 128);
    e.correct_anchor(-960.0, true);
    assert_eq!(e.anchor(), (-960.0, None));
    render_engine(&mut e, FPS as usize, 128);
    assert_eq!(onsets(&e, 0), [0, FPS, 2 * FPS - 960]);
}

#[test]
fn level_meters_read_each_tracks_peak_after_its_gain() {
    let mut kick = all_steps(Instrument::Drum(Drum::Kick), 4);
    kick.volume = 1.0;
    let mut quiet = kick;
    quiet.volume = 0.25;
    let mut muted = kick;
    muted.muted = true;
    let p = pattern(&[kick, quiet, muted]);
    let mut e = run(&p, Transport::play(0.0, 0.0, 120.0), 4 * FPS as usize, 128);
    let (loud, soft, none) = (e.take_peak(0), e.take_peak(1), e.take_peak(2));
    assert!(loud > 0.1, "{loud}");
    assert!((soft - loud * 0.25).abs() < loud * 0.05, "{soft} vs {loud}");
    assert_eq!(none, 0.0);
    // Reading starts a new window; a track that does not exist reads silence.
    assert_eq!(e.take_peak(0), 0.0);
    assert_eq!(e.take_peak(99), 0.0);
}
