//! # keyboardia-audio-worklet
//!
//! The sound engine compiled to a plain wasm module for an AudioWorklet. The interface is
//! numeric only (no strings cross into the audio thread) and needs no JavaScript glue beyond
//! `js/processor.js`: the main thread compiles the module and hands it to the processor, which
//! instantiates it, sends control messages through these exports between render quanta, and
//! copies each rendered block out of wasm memory.
//!
//! Every export takes the handle returned by [`kb_new`].

use keyboardia_audio::effects::{FilterMode, MasterFx, TrackFx, MASTER_FX_VALUES};
use keyboardia_audio::engine::{Engine, Transport, MAX_BLOCK, MAX_INSTRUMENTS, STEP_SLOTS};
use keyboardia_audio::sampler::{EnvelopeSpec, SampledInstrument, SampledZone};
use keyboardia_audio::Instrument;

/// An engine and the buffers the processor reads from.
pub struct Worklet {
    engine: Box<Engine>,
    left: [f32; MAX_BLOCK],
    right: [f32; MAX_BLOCK],
    staging: Vec<f32>,
    /// A sampled instrument being described ([`kb_instrument_begin`] .. [`kb_instrument_commit`]).
    pending: Option<(usize, SampledInstrument)>,
    /// A zone's 16-bit PCM being written ([`kb_zone_buffer`], [`kb_zone_commit`]).
    zone_pcm: Vec<i16>,
    /// The master chain's settings being written ([`kb_set_master_value`]).
    master: [f32; MASTER_FX_VALUES],
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
        pending: None,
        zone_pcm: Vec::new(),
        master: MasterFx::default().to_array(),
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

/// A track's sends, drive and filter (`mode`: 0 off, 1 low-pass, 2 high-pass, 3 band-pass).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn kb_set_track_fx(
    h: *mut Worklet,
    i: u32,
    send_reverb: f32,
    send_delay: f32,
    mode: u32,
    cutoff: f32,
    resonance: f32,
    drive: f32,
) {
    if let Some(t) = w(h).engine.track_mut(i as usize) {
        t.fx = TrackFx {
            send_reverb: send_reverb.clamp(0.0, 1.0),
            send_delay: send_delay.clamp(0.0, 1.0),
            filter: FilterMode::from_code(mode),
            cutoff: cutoff.clamp(20.0, 20_000.0),
            resonance: resonance.clamp(0.0, 1.0),
            drive: drive.clamp(0.0, 1.0),
        };
    }
}

/// Removes every cutoff lock of a track (before [`kb_set_lock_cutoff`] sets the current ones).
#[no_mangle]
pub extern "C" fn kb_clear_cutoffs(h: *mut Worklet, i: u32) {
    if let Some(t) = w(h).engine.track_mut(i as usize) {
        t.locks.iter_mut().for_each(|l| l.cutoff = None);
    }
}

/// A step's cutoff lock in Hz.
#[no_mangle]
pub extern "C" fn kb_set_lock_cutoff(h: *mut Worklet, i: u32, step: u32, cutoff: f32) {
    if let Some(t) = w(h).engine.track_mut(i as usize) {
        if let Some(l) = t.locks.get_mut(step as usize) {
            l.cutoff = Some(cutoff.clamp(20.0, 20_000.0));
        }
    }
}

/// One number of the master chain's settings, by its index in `MasterFx::to_array`; they take
/// effect together with [`kb_apply_master`].
#[no_mangle]
pub extern "C" fn kb_set_master_value(h: *mut Worklet, index: u32, value: f32) {
    if let Some(v) = w(h).master.get_mut(index as usize) {
        *v = value;
    }
}

/// Applies the master settings given since; with `settle`, every effect setting jumps to its
/// value (a fresh engine about to play: the first note already has the session's effects).
#[no_mangle]
pub extern "C" fn kb_apply_master(h: *mut Worklet, settle: u32) {
    let wk = w(h);
    let fx = MasterFx::from_array(&wk.master);
    wk.engine.set_master_fx(&fx);
    if settle != 0 {
        wk.engine.settle_effects();
    }
}

/// One number of the master settings the engine plays (the `probe`'s view of them).
#[no_mangle]
pub extern "C" fn kb_master_value(h: *mut Worklet, index: u32) -> f32 {
    w(h).engine
        .master_fx()
        .to_array()
        .get(index as usize)
        .copied()
        .unwrap_or(f32::NAN)
}

/// Which of a track's 128 steps are on, as four 32-bit words (lowest steps first).
#[no_mangle]
pub extern "C" fn kb_set_steps(h: *mut Worklet, i: u32, w0: u32, w1: u32, w2: u32, w3: u32) {
    if let Some(t) = w(h).engine.track_mut(i as usize) {
        t.steps = w0 as u128 | (w1 as u128) << 32 | (w2 as u128) << 64 | (w3 as u128) << 96;
    }
}

/// A parameter lock: `pitch` outside -48..48 means none, `volume` below 0 means none. Clears
/// the step's chord (a [`kb_set_chord`] after it sets one).
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
            l.chord = Default::default();
        }
    }
}

/// A step's chord: its other notes besides the lock's pitch; a value outside -48..48 means
/// no note.
#[no_mangle]
pub extern "C" fn kb_set_chord(h: *mut Worklet, i: u32, step: u32, a: i32, b: i32, c: i32) {
    if let Some(t) = w(h).engine.track_mut(i as usize) {
        if let Some(l) = t.locks.get_mut(step as usize) {
            let note = |p: i32| (-48..=48).contains(&p).then_some(p as i8);
            l.chord = [note(a), note(b), note(c)];
        }
    }
}

/// The loop region, global steps `start..end`; `start >= end` means none. While playing, a
/// change takes effect with the next transport (the re-anchor that comes with it).
#[no_mangle]
pub extern "C" fn kb_set_loop(h: *mut Worklet, start: u32, end: u32) {
    w(h).engine
        .set_loop_region(keyboardia_audio::engine::LoopRegion::new(start, end));
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

// Sampled instruments. Loading happens between render quanta (from the processor's message
// handler), never inside `process`: these allocate, rendering does not. The sequence is
//   kb_instrument_begin, kb_instrument_zone (once per zone, in manifest order),
//   kb_instrument_commit, then per zone whenever its PCM arrives:
//   kb_zone_buffer (write the i16 samples there), kb_zone_commit.
// A track plays slot `s` as instrument code `512 + s` (see `Instrument::code`).

/// Starts describing the sampled instrument for `slot` (0..64): its base note, linear gain,
/// envelope (seconds; sustain a level), whether it is one-shot, and its choke group (0: none).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn kb_instrument_begin(
    h: *mut Worklet,
    slot: u32,
    base_note: u32,
    gain: f32,
    attack: f32,
    hold: f32,
    decay: f32,
    sustain: f32,
    release: f32,
    one_shot: u32,
    choke: u32,
) {
    let w = w(h);
    if slot as usize >= MAX_INSTRUMENTS {
        w.pending = None;
        return;
    }
    w.pending = Some((
        slot as usize,
        SampledInstrument {
            base_note: base_note.min(127) as u8,
            gain,
            envelope: EnvelopeSpec {
                attack,
                hold,
                decay,
                sustain,
                release,
            },
            one_shot: one_shot != 0,
            choke,
            zones: Vec::new(),
        },
    ));
}

/// Adds a zone (without PCM) to the instrument being described. `loop_start`/`loop_end` are
/// frames, or -1 for no loop; `gain` is linear.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn kb_instrument_zone(
    h: *mut Worklet,
    key_lo: u32,
    key_hi: u32,
    vel_lo: u32,
    vel_hi: u32,
    root: u32,
    fine_tune: i32,
    sample_rate: u32,
    loop_start: i32,
    loop_end: i32,
    gain: f32,
) {
    let w = w(h);
    let Some((_, inst)) = w.pending.as_mut() else {
        return;
    };
    let m = |v: u32| v.min(127) as u8;
    let loop_points =
        (loop_start >= 0 && loop_end > loop_start).then_some((loop_start as u32, loop_end as u32));
    inst.zones.push(SampledZone {
        key_lo: m(key_lo),
        key_hi: m(key_hi),
        vel_lo: m(vel_lo),
        vel_hi: m(vel_hi),
        root: m(root),
        fine_tune: fine_tune.clamp(-1200, 1200) as i16,
        sample_rate: sample_rate.clamp(8_000, 192_000),
        loop_points,
        gain,
        pcm: Vec::new(),
    });
}

/// Loads the described instrument into its slot (replacing what was there). Returns 1 if done.
#[no_mangle]
pub extern "C" fn kb_instrument_commit(h: *mut Worklet) -> u32 {
    let w = w(h);
    match w.pending.take() {
        Some((slot, inst)) => w.engine.load_instrument(slot, inst) as u32,
        None => 0,
    }
}

/// A buffer of `frames` 16-bit samples to copy a zone's PCM into, before [`kb_zone_commit`].
#[no_mangle]
pub extern "C" fn kb_zone_buffer(h: *mut Worklet, frames: u32) -> *mut i16 {
    let w = w(h);
    w.zone_pcm = vec![0; frames as usize];
    w.zone_pcm.as_mut_ptr()
}

/// Gives zone `zone` of the instrument in `slot` the staged PCM. Returns 1 if there is such a
/// zone (a loop that does not fit the PCM is dropped rather than read out of bounds).
#[no_mangle]
pub extern "C" fn kb_zone_commit(h: *mut Worklet, slot: u32, zone: u32) -> u32 {
    let w = w(h);
    let pcm = std::mem::take(&mut w.zone_pcm);
    let fits = w
        .engine
        .instrument(slot as usize)
        .and_then(|i| i.zones.get(zone as usize))
        .map(|z| z.loop_points.is_none_or(|(_, e)| e as usize <= pcm.len()));
    match fits {
        Some(true) => w.engine.load_zone_pcm(slot as usize, zone as usize, pcm) as u32,
        _ => 0,
    }
}

/// Empties a sampled-instrument slot: the tracks that play it fall silent.
#[no_mangle]
pub extern "C" fn kb_instrument_unload(h: *mut Worklet, slot: u32) {
    w(h).engine.unload_instrument(slot as usize);
}

/// How many zones of the instrument in `slot` have PCM (-1: the slot is empty).
#[no_mangle]
pub extern "C" fn kb_instrument_zones_loaded(h: *mut Worklet, slot: u32) -> i32 {
    w(h).engine.instrument(slot as usize).map_or(-1, |i| {
        i.zones.iter().filter(|z| z.pcm.len() >= 2).count() as i32
    })
}

/// Voices sounding on track `track` now.
#[no_mangle]
pub extern "C" fn kb_voices_on(h: *mut Worklet, track: u32) -> u32 {
    w(h).engine.active_voices_on(track.min(255) as u8) as u32
}

/// Plays one note of instrument `instrument` (a code) on track `track`'s bus now, outside the
/// pattern (the picker's audition, heard by this player only): `pitch` semitones from the
/// instrument's base note, `gate` frames long.
#[no_mangle]
pub extern "C" fn kb_audition(h: *mut Worklet, track: u32, instrument: u32, pitch: i32, gate: u32) {
    if let Some(i) = Instrument::from_code(instrument) {
        w(h).engine
            .audition(track as usize, i, pitch.clamp(-48, 48) as f32, gate);
    }
}
