//! # keyboardia-audio-worklet
//!
//! The sound engine compiled to a plain wasm module for an AudioWorklet. The interface is
//! numeric only (no strings cross into the audio thread) and needs no JavaScript glue beyond
//! `js/processor.js`: the main thread compiles the module and hands it to the processor, which
//! instantiates it, sends control messages through these exports between render quanta, and
//! copies each rendered block out of wasm memory.
//!
//! Every export takes the handle returned by [`kb_new`].

use keyboardia_audio::engine::{Engine, Transport, MAX_BLOCK, STEP_SLOTS};
use keyboardia_audio::Instrument;

/// An engine and the buffers the processor reads from.
pub struct Worklet {
    engine: Box<Engine>,
    left: [f32; MAX_BLOCK],
    right: [f32; MAX_BLOCK],
    staging: Vec<f32>,
}

fn w<'a>(h: *mut Worklet) -> &'a mut Worklet {
    // SAFETY: `h` comes from `kb_new` and is only used from the one audio thread.
    unsafe { &mut *h }
}

/// Creates an engine at `sample_rate`; returns its handle.
#[no_mangle]
pub extern "C" fn kb_new(sample_rate: f32) -> *mut Worklet {
    Box::into_raw(Box::new(Worklet {
        engine: Engine::new(sample_rate),
        left: [0.0; MAX_BLOCK],
        right: [0.0; MAX_BLOCK],
        staging: Vec::new(),
    }))
}

/// Where the left and right output of the last block are (128 floats each).
#[no_mangle]
pub extern "C" fn kb_left(h: *mut Worklet) -> *const f32 {
    w(h).left.as_ptr()
}

#[no_mangle]
pub extern "C" fn kb_right(h: *mut Worklet) -> *const f32 {
    w(h).right.as_ptr()
}

/// Renders `frames` (at most 128) into the output buffers.
#[no_mangle]
pub extern "C" fn kb_render(h: *mut Worklet, frames: u32) {
    let w = w(h);
    let n = (frames as usize).min(MAX_BLOCK);
    w.engine.render(&mut w.left[..n], &mut w.right[..n]);
}

/// The frame the next block starts at.
#[no_mangle]
pub extern "C" fn kb_frame(h: *mut Worklet) -> f64 {
    w(h).engine.frame() as f64
}

/// Moves the engine's frame clock to the AudioContext's (`currentFrame` in the worklet scope),
/// so an anchor frame computed from the context's time is the frame the engine means.
#[no_mangle]
pub extern "C" fn kb_set_frame(h: *mut Worklet, frame: f64) {
    w(h).engine.set_frame(frame.max(0.0) as u64);
}

#[no_mangle]
pub extern "C" fn kb_set_track_count(h: *mut Worklet, n: u32) {
    w(h).engine.set_track_count(n as usize);
}

#[no_mangle]
pub extern "C" fn kb_set_swing(h: *mut Worklet, swing: u32) {
    w(h).engine.set_swing(swing.min(100) as u8);
}

/// A track's settings; `instrument` is an instrument code, or -1 for silence.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn kb_set_track(
    h: *mut Worklet,
    i: u32,
    instrument: i32,
    step_count: u32,
    volume: f32,
    pan: f32,
    transpose: i32,
    swing: u32,
    muted: u32,
    soloed: u32,
) {
    if let Some(t) = w(h).engine.track_mut(i as usize) {
        t.instrument = u32::try_from(instrument)
            .ok()
            .and_then(Instrument::from_code);
        t.step_count = step_count.clamp(1, STEP_SLOTS as u32) as u16;
        t.volume = volume;
        t.pan = pan;
        t.transpose = transpose.clamp(-48, 48) as i8;
        t.swing = swing.min(100) as u8;
        t.muted = muted != 0;
        t.soloed = soloed != 0;
    }
}

/// Which of a track's 128 steps are on, as four 32-bit words (lowest steps first).
#[no_mangle]
pub extern "C" fn kb_set_steps(h: *mut Worklet, i: u32, w0: u32, w1: u32, w2: u32, w3: u32) {
    if let Some(t) = w(h).engine.track_mut(i as usize) {
        t.steps = w0 as u128 | (w1 as u128) << 32 | (w2 as u128) << 64 | (w3 as u128) << 96;
    }
}

/// A parameter lock: `pitch` outside -48..48 means none, `volume` below 0 means none.
#[no_mangle]
pub extern "C" fn kb_set_lock(
    h: *mut Worklet,
    i: u32,
    step: u32,
    pitch: i32,
    volume: f32,
    tie: u32,
) {
    if let Some(t) = w(h).engine.track_mut(i as usize) {
        if let Some(l) = t.locks.get_mut(step as usize) {
            l.pitch = (-48..=48).contains(&pitch).then_some(pitch as i8);
            l.volume = (volume >= 0.0).then_some(volume.min(1.0));
            l.tie = tie != 0;
        }
    }
}

/// The shared transport, already mapped to this engine's frames.
#[no_mangle]
pub extern "C" fn kb_set_transport(
    h: *mut Worklet,
    playing: u32,
    anchor_frame: f64,
    anchor_step: f64,
    tempo: f64,
) {
    w(h).engine.set_transport(Transport {
        playing: playing != 0,
        anchor_frame,
        anchor_step,
        tempo,
    });
}

/// A corrected anchor frame for the same transport: slewed while playing, or applied at once
/// when the audio output itself jumped (see `Engine::correct_anchor`).
#[no_mangle]
pub extern "C" fn kb_adjust_anchor(h: *mut Worklet, anchor_frame: f64, at_once: u32) {
    w(h).engine.correct_anchor(anchor_frame, at_once != 0);
}

/// A buffer of `frames` floats to copy a sample's PCM into, before [`kb_commit_sample`].
#[no_mangle]
pub extern "C" fn kb_sample_buffer(h: *mut Worklet, frames: u32) -> *mut f32 {
    let w = w(h);
    w.staging = vec![0.0; frames as usize];
    w.staging.as_mut_ptr()
}

/// Moves the staged PCM (at `rate` Hz) into sample slot `slot`.
#[no_mangle]
pub extern "C" fn kb_commit_sample(h: *mut Worklet, slot: u32, rate: f32) {
    let w = w(h);
    let pcm = std::mem::take(&mut w.staging);
    w.engine.load_sample(slot as usize, pcm, rate);
}

/// Track `i`'s peak level since the last call (linear, after its gain): the level meters.
#[no_mangle]
pub extern "C" fn kb_take_peak(h: *mut Worklet, i: u32) -> f32 {
    w(h).engine.take_peak(i as usize)
}
