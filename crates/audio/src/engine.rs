//! The engine: a pattern, a transport, a pool of voices, a mixer and a limiter, rendered in
//! blocks of at most [`MAX_BLOCK`] frames.
//!
//! Timing: every step's frame is computed from the transport's anchor, never by adding step
//! lengths (so nothing drifts): step `n` of a track starts at
//! `anchor_frame + (n - anchor_step) * frames_per_step + swing(n)`, rounded to a whole frame.
//! Each track loops its own step count (polyrhythm) over the shared 16th-note grid; with a loop
//! region, global step `n` plays slot [`LoopRegion::wrap`]`(n)` (then modulo the track's step
//! count). A transport change (play, stop, tempo) takes effect at its own anchor frame, exactly,
//! even inside a block.
//!
//! Rendering allocates nothing: everything is sized in [`Engine::new`].

use crate::dsp::{peak_abs, SvfBank, BANK};
use crate::effects::{drive_run, MasterChain, MasterFx, Sends, TrackFx, TrackInserts};
use crate::instrument::{
    clap_table, keys_lanes, render_drums, render_synth_lanes, Drum, DrumLane, Instrument,
    SampleData, Voice, CHAIN_LANES, DRUM_LANES, SYNTH_LANES,
};
use crate::sampler::{
    half_rate, note_start, HalfZone, Kernel, SampledInstrument, DEFAULT_VELOCITY,
};

pub const MAX_BLOCK: usize = 128;
pub const MAX_TRACKS: usize = 16;
pub const STEP_SLOTS: usize = 128;
pub const MAX_VOICES: usize = 64;
/// Notes one synth or sample track can hold at once.
pub const VOICES_PER_TRACK: usize = 4;
/// Notes one step can play (its pitch and a chord's other notes).
pub const CHORD_NOTES: usize = 4;
pub const MAX_SAMPLES: usize = 64;
/// Sampled-instrument slots ([`Engine::load_instrument`]).
pub const MAX_INSTRUMENTS: usize = 64;
const TRIGGER_LOG: usize = 1024;
/// Peak ceiling of the output (about -0.2 dBFS).
pub const CEILING: f32 = 0.977;
const MASTER_GAIN: f32 = 0.55;
/// Frames over which a track's gain moves to a new volume, pan, mute or solo (no clicks).
const GAIN_RAMP: u32 = 64;
/// How fast a playing schedule follows a corrected anchor: 2 ms per second (0.2 %, far below
/// what a listener hears as a tempo change). See [`Engine::correct_anchor`].
pub const SLEW_RATE: f64 = 0.002;
/// Corrections up to this (in seconds) are applied at once: no one hears half a millisecond.
pub const SNAP_SECONDS: f64 = 0.0005;
/// Corrections beyond this (in seconds) jump: slewing them would take too long.
pub const JUMP_SECONDS: f64 = 0.05;

/// A parameter lock on one step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepLock {
    /// Semitones added to the track's transpose.
    pub pitch: Option<i8>,
    /// Velocity, 0..1.
    pub volume: Option<f32>,
    /// Continue the previous step's note instead of striking a new one.
    pub tie: bool,
    /// The track filter's cutoff (Hz) from this step until the next step.
    pub cutoff: Option<f32>,
    /// The step's other notes (semitones, like `pitch`), struck with it on melodic tracks;
    /// drum voices and one-shot samples play `pitch` only.
    pub chord: [Option<i8>; CHORD_NOTES - 1],
}

impl StepLock {
    /// Every note this step plays, in semitones added to the track's transpose.
    pub fn notes(&self) -> impl Iterator<Item = i8> + '_ {
        core::iter::once(self.pitch.unwrap_or(0)).chain(self.chord.iter().flatten().copied())
    }
}

/// The shared loop region: global 16th steps `start..end` (end exclusive). The same rule as
/// `keyboardia_core::model::LoopRegion` (this crate builds without the core for the worklet;
/// a test checks the two agree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopRegion {
    pub start: u8,
    pub end: u8,
}

impl LoopRegion {
    /// The region, if `start < end <= 128`.
    pub fn new(start: u32, end: u32) -> Option<LoopRegion> {
        (start < end && end <= STEP_SLOTS as u32).then_some(LoopRegion {
            start: start as u8,
            end: end as u8,
        })
    }

    /// The slot global step `n` plays: `n` before the region, then `start..end` again and again.
    pub fn wrap(&self, n: i64) -> i64 {
        let start = self.start as i64;
        if n < start {
            n
        } else {
            start + (n - start).rem_euclid((self.end as i64 - start).max(1))
        }
    }

    /// Steps in the region.
    pub fn len(&self) -> u32 {
        (self.end as u32).saturating_sub(self.start as u32).max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// One track as the engine plays it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Track {
    /// `None`: the track is silent (an instrument this build does not know, or no sample yet).
    pub instrument: Option<Instrument>,
    pub steps: u128,
    pub step_count: u16,
    pub locks: [StepLock; STEP_SLOTS],
    pub volume: f32,
    pub pan: f32,
    pub transpose: i8,
    pub swing: u8,
    pub muted: bool,
    pub soloed: bool,
    /// Sends, filter and drive.
    pub fx: TrackFx,
}

impl Track {
    pub const EMPTY: Track = Track {
        instrument: None,
        steps: 0,
        step_count: 16,
        locks: [StepLock {
            pitch: None,
            volume: None,
            tie: false,
            cutoff: None,
            chord: [None; CHORD_NOTES - 1],
        }; STEP_SLOTS],
        volume: 0.8,
        pan: 0.0,
        transpose: 0,
        swing: 0,
        muted: false,
        soloed: false,
        fx: TrackFx::DEFAULT,
    };

    pub fn new(instrument: Instrument, steps: &[usize]) -> Track {
        let mut t = Track {
            instrument: Some(instrument),
            ..Track::EMPTY
        };
        for &s in steps {
            t.steps |= 1u128 << s;
        }
        t
    }

    fn active(&self, k: usize) -> bool {
        self.steps & (1u128 << k) != 0
    }

    /// The slot of this track that global step `n` plays: `n` (wrapped into the loop region,
    /// if any) modulo the track's step count.
    pub fn slot(&self, n: i64, region: Option<LoopRegion>) -> usize {
        let count = self.step_count.clamp(1, STEP_SLOTS as u16) as i64;
        region.map_or(n, |r| r.wrap(n)).rem_euclid(count) as usize
    }

    /// The note that starts at global step `n`, if one does: its slot and its length in steps
    /// (the step plus every tied step that follows it in playing order). None when the slot is
    /// off or tied to the step played before it (the held note goes on).
    pub fn note_at(&self, n: i64, region: Option<LoopRegion>) -> Option<(usize, u32)> {
        let count = self.step_count.clamp(1, STEP_SLOTS as u16) as u32;
        let k = self.slot(n, region);
        if !self.active(k) {
            return None;
        }
        if self.locks[k].tie && self.active(self.slot(n - 1, region)) && count > 1 {
            return None;
        }
        let mut len = 1;
        while len < count {
            let j = self.slot(n + len as i64, region);
            if self.active(j) && self.locks[j].tie {
                len += 1;
            } else {
                break;
            }
        }
        Some((k, len))
    }

    /// The (MIDI key, velocity) pairs this track's steps play on an instrument whose base note
    /// is `base_note`, as the sequencer computes them for a sampled instrument: what to load
    /// first so the track sounds before the whole instrument has arrived.
    pub fn notes(&self, base_note: u8) -> Vec<(u8, u8)> {
        let mut out = Vec::new();
        for k in 0..(self.step_count as usize).min(STEP_SLOTS) {
            if !self.active(k) {
                continue;
            }
            let l = self.locks[k];
            let velocity = l
                .volume
                .map_or(crate::sampler::DEFAULT_VELOCITY, |v| {
                    libm::roundf(v.clamp(0.0, 1.0) * 127.0) as u8
                })
                .max(1);
            for pitch in l.notes() {
                let note = base_note as f32 + self.transpose as f32 + pitch as f32;
                let key = libm::floorf(note + 0.5).clamp(0.0, 127.0) as u8;
                if !out.contains(&(key, velocity)) {
                    out.push((key, velocity));
                }
            }
        }
        out
    }
}

/// Everything the sequencer plays.
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    pub tracks: [Track; MAX_TRACKS],
    pub track_count: usize,
    /// Global swing, 0..100, added to each track's own.
    pub swing: u8,
    /// The shared loop region. While playing, a change of it takes effect with the next
    /// transport (the re-anchor that comes with it), at that transport's anchor frame; stopped,
    /// at once.
    pub loop_region: Option<LoopRegion>,
}

impl Default for Pattern {
    fn default() -> Self {
        Pattern {
            tracks: [Track::EMPTY; MAX_TRACKS],
            track_count: 0,
            swing: 0,
            loop_region: None,
        }
    }
}

impl Pattern {
    pub fn push(&mut self, t: Track) {
        if self.track_count < MAX_TRACKS {
            self.tracks[self.track_count] = t;
            self.track_count += 1;
        }
    }
}

/// Where playback is, in this engine's frames: while playing, step position
/// `anchor_step + (frame - anchor_frame) / frames_per_step`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transport {
    pub playing: bool,
    pub anchor_frame: f64,
    pub anchor_step: f64,
    pub tempo: f64,
}

impl Transport {
    pub const STOPPED: Transport = Transport {
        playing: false,
        anchor_frame: 0.0,
        anchor_step: 0.0,
        tempo: 120.0,
    };

    /// Playing from `step` at `frame`.
    pub fn play(frame: f64, step: f64, tempo: f64) -> Transport {
        Transport {
            playing: true,
            anchor_frame: frame,
            anchor_step: step,
            tempo,
        }
    }
}

/// A step that sounded, for tests and diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub frame: u64,
    pub track: u8,
    /// The global step (counted from the transport's anchor).
    pub step: i64,
    /// The track's slot that sounded (the step within the loop region and the track's length).
    pub slot: u8,
}

/// A track's stereo gain, ramping per sample towards its target.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Gain {
    left: f32,
    right: f32,
    target: (f32, f32),
    step: (f32, f32),
    remaining: u32,
}

impl Gain {
    /// Starts a ramp if the target moved. Called at block starts, where control changes land.
    fn aim(&mut self, target: (f32, f32)) {
        if target != self.target {
            self.target = target;
            self.step = (
                (target.0 - self.left) / GAIN_RAMP as f32,
                (target.1 - self.right) / GAIN_RAMP as f32,
            );
            self.remaining = GAIN_RAMP;
        }
    }

    #[inline]
    fn tick(&mut self) -> (f32, f32) {
        if self.remaining > 0 {
            self.remaining -= 1;
            if self.remaining == 0 {
                self.left = self.target.0;
                self.right = self.target.1;
            } else {
                self.left += self.step.0;
                self.right += self.step.1;
            }
        }
        (self.left, self.right)
    }
}

struct SampleSlot {
    pcm: Vec<f32>,
    rate_ratio: f64,
}

/// A track's equal-power pan gains (left, right) and the bits of the pan and volume they are
/// for.
#[derive(Clone, Copy)]
struct PanGains {
    key: (u32, u32),
    gains: (f32, f32),
}

/// The sound engine.
pub struct Engine {
    sr: f32,
    frame: u64,
    pattern: Pattern,
    transport: Transport,
    /// A transport that takes effect at its anchor frame (in the future when set).
    pending: Option<Transport>,
    /// Where the playing transport's anchor frame is being slewed to.
    slew_target: Option<f64>,
    /// The loop region playing now (the pattern's, once a transport has taken it over).
    region: Option<LoopRegion>,
    next_step: [i64; MAX_TRACKS],
    voices: [Voice; MAX_VOICES],
    age: u64,
    buses: [[f32; MAX_BLOCK]; MAX_TRACKS],
    gains: [Gain; MAX_TRACKS],
    /// Each track's pan gains (before mute and solo) and the bits of the pan and volume they
    /// are for: their cosine and sine again only when those change, not every block.
    pan_gains: [Option<PanGains>; MAX_TRACKS],
    samples: Vec<SampleSlot>,
    /// Loaded sampled instruments, each held once and played by any track that names its slot,
    /// with each zone's half-rate copy.
    sampled: Vec<Option<(SampledInstrument, Vec<HalfZone>)>>,
    kernel: Kernel,
    limiter: f32,
    limiter_release: f32,
    log: [Trigger; TRIGGER_LOG],
    logged: usize,
    /// The loudest sample each track sent to the mix (after its gain, before the master) since
    /// [`Engine::take_peak`] last read it: the level meters.
    peaks: [f32; MAX_TRACKS],
    /// Each track's drive, filter and sends.
    inserts: Vec<TrackInserts>,
    /// The cutoff lock of each track's current step.
    lock_cutoff: [Option<f32>; MAX_TRACKS],
    master: MasterChain,
    /// The block's reverb send (mono) and delay send (stereo).
    send_rev: [f32; MAX_BLOCK],
    send_del: [[f32; MAX_BLOCK]; 2],
    /// A tempo change inside the current block: its offset and tempo (the delay follows it
    /// from that frame, whatever the block size).
    tempo_switch: Option<(usize, f64)>,
    /// The first frame of the block being rendered.
    block_start: u64,
    /// Runs the tracks' steady filters side by side (and the drum voices' filters).
    bank: SvfBank,
    /// The drum voices' stretches (`render_drums`).
    drum_lanes: Vec<DrumLane>,
    /// The clap's bursts (`instrument::clap_table`).
    clap: Vec<f32>,
}

/// The filters of tracks `lanes` over `range` of their buses, in the bank: steady ones, and
/// gliding ones whose coefficients change on the frames their own loop would change them
/// (`frame` is the range's first absolute frame); each after its track's steady drive where
/// the lane says so (its gains).
#[cfg_attr(target_arch = "x86_64", inline(always))]
fn run_bank(
    bank: &mut SvfBank,
    lanes: &[(usize, Option<(f32, f32)>)],
    inserts: &mut [TrackInserts],
    buses: &mut [[f32; MAX_BLOCK]; MAX_TRACKS],
    range: core::ops::Range<usize>,
    frame: u64,
) {
    for j in 0..BANK {
        match lanes.get(j) {
            Some(&(ti, drive)) => {
                let f = &mut inserts[ti].filter;
                let steady = f.steady_output();
                let out = steady.or_else(|| f.glide_output()).unwrap_or(0);
                bank.load(j, f.svf_mut(), out);
                if let Some((k, norm)) = drive {
                    bank.set_drive(j, k, norm);
                }
                if steady.is_none() {
                    f.glide(frame, range.len(), |i, svf| bank.set_at(j, i, svf));
                }
            }
            None => bank.clear(j),
        }
    }
    // The inputs and outputs all at once (the bank transposes them eight lanes at a time).
    // `lanes` is in track order, so one pass over the buses finds them in lane order.
    let mut xs: [(usize, &[f32]); BANK] = [(0, &[]); BANK];
    for (j, &(ti, _)) in lanes.iter().enumerate().take(BANK) {
        xs[j] = (j, &buses[ti][range.clone()]);
    }
    bank.fill(&xs[..lanes.len().min(BANK)], range.len());
    bank.run(range.len());
    let mut ys: [(usize, &mut [f32]); BANK] = Default::default();
    let mut m = 0;
    for (ti, bus) in buses.iter_mut().enumerate() {
        if lanes.get(m).is_some_and(|&(t, _)| t == ti) && m < BANK {
            bank.store(m, inserts[ti].filter.svf_mut());
            ys[m] = (m, &mut bus[range.clone()]);
            m += 1;
        }
    }
    debug_assert_eq!(m, lanes.len(), "lanes in track order");
    bank.drain(&mut ys[..m], range.len());
}

impl Engine {
    pub fn new(sample_rate: f32) -> Box<Engine> {
        let mut samples = Vec::with_capacity(MAX_SAMPLES);
        for _ in 0..MAX_SAMPLES {
            samples.push(SampleSlot {
                pcm: Vec::new(),
                rate_ratio: 1.0,
            });
        }
        let mut sampled = Vec::with_capacity(MAX_INSTRUMENTS);
        sampled.resize_with(MAX_INSTRUMENTS, || None);
        Box::new(Engine {
            sr: sample_rate,
            frame: 0,
            pattern: Pattern::default(),
            transport: Transport::STOPPED,
            pending: None,
            slew_target: None,
            region: None,
            next_step: [0; MAX_TRACKS],
            voices: [Voice::IDLE; MAX_VOICES],
            age: 0,
            buses: [[0.0; MAX_BLOCK]; MAX_TRACKS],
            gains: [Gain::default(); MAX_TRACKS],
            pan_gains: [None; MAX_TRACKS],
            samples,
            sampled,
            kernel: Kernel::new(),
            limiter: 1.0,
            limiter_release: 1.0 - libm::expf(-1.0 / (0.08 * sample_rate)),
            log: [Trigger {
                frame: 0,
                track: 0,
                step: 0,
                slot: 0,
            }; TRIGGER_LOG],
            logged: 0,
            peaks: [0.0; MAX_TRACKS],
            inserts: (0..MAX_TRACKS)
                .map(|_| TrackInserts::new(sample_rate))
                .collect(),
            lock_cutoff: [None; MAX_TRACKS],
            master: MasterChain::new(sample_rate),
            send_rev: [0.0; MAX_BLOCK],
            send_del: [[0.0; MAX_BLOCK]; 2],
            tempo_switch: None,
            block_start: 0,
            bank: SvfBank::EMPTY,
            drum_lanes: vec![DrumLane::ZERO; DRUM_LANES],
            clap: clap_table(sample_rate),
        })
    }

    /// The master chain's settings (they glide there from the current ones).
    pub fn set_master_fx(&mut self, fx: &MasterFx) {
        self.master.set(fx, false);
    }

    pub fn master_fx(&self) -> &MasterFx {
        self.master.settings()
    }

    /// Every effect setting jumps to its target at once: for a fresh engine about to play a
    /// session (an export, a player who just joined), so the first note already sounds with
    /// the session's effects.
    pub fn settle_effects(&mut self) {
        let fx = *self.master.settings();
        self.master.set_tempo(self.transport().tempo);
        self.master.set(&fx, true);
        for ti in 0..MAX_TRACKS {
            let t = &self.pattern.tracks[ti];
            let cutoff = self.lock_cutoff[ti].unwrap_or(t.fx.cutoff);
            self.inserts[ti].aim(&t.fx, cutoff, true);
        }
    }

    /// Track `i`'s peak since the last call (linear, after its gain), and starts a new one.
    pub fn take_peak(&mut self, i: usize) -> f32 {
        self.peaks
            .get_mut(i)
            .map(|p| core::mem::replace(p, 0.0))
            .unwrap_or(0.0)
    }

    pub fn sample_rate(&self) -> f32 {
        self.sr
    }

    /// The frame the next rendered sample will have.
    pub fn frame(&self) -> u64 {
        self.frame
    }

    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// Replaces the pattern; takes effect from the next step on (a new loop region while
    /// playing: with the next transport, see [`Pattern::loop_region`]).
    pub fn set_pattern(&mut self, p: &Pattern) {
        self.pattern.clone_from(p);
        self.follow_region();
    }

    /// Sets the pattern's loop region (see [`Pattern::loop_region`] for when it takes effect).
    pub fn set_loop_region(&mut self, r: Option<LoopRegion>) {
        self.pattern.loop_region = r;
        self.follow_region();
    }

    /// The loop region playing now.
    pub fn loop_region(&self) -> Option<LoopRegion> {
        self.region
    }

    /// Stopped (and no playback waiting to start), the pattern's loop region applies at once.
    fn follow_region(&mut self) {
        if !self.transport().playing {
            self.region = self.pattern.loop_region;
        }
    }

    /// One track, to change a field (takes effect from its next step; volume and pan ramp
    /// over the next block).
    pub fn track_mut(&mut self, i: usize) -> Option<&mut Track> {
        self.pattern.tracks.get_mut(i)
    }

    /// How many tracks play (the first `n`).
    pub fn set_track_count(&mut self, n: usize) {
        self.pattern.track_count = n.min(MAX_TRACKS);
    }

    pub fn set_swing(&mut self, swing: u8) {
        self.pattern.swing = swing.min(100);
    }

    pub fn set_track(&mut self, i: usize, t: &Track) {
        if i < MAX_TRACKS {
            self.pattern.tracks[i] = *t;
            self.pattern.track_count = self.pattern.track_count.max(i + 1);
        }
    }

    pub fn transport(&self) -> Transport {
        self.pending.unwrap_or(self.transport)
    }

    /// Sets the transport. If its anchor is in the future it waits for that frame (so a PLAY
    /// or a tempo change anchored ahead starts exactly there); otherwise it applies now and
    /// playback joins at the first step at or after the current frame.
    pub fn set_transport(&mut self, t: Transport) {
        self.slew_target = None;
        if Self::starts_at(&t) > self.frame {
            self.pending = Some(t);
        } else {
            self.pending = None;
            self.region = self.pattern.loop_region;
            self.switch(t, self.frame);
        }
        self.follow_region();
    }

    /// Moves this engine's frame clock to `frame` (an AudioWorklet's `currentFrame`), so anchor
    /// frames computed from the AudioContext's time mean the same frames here. Playback joins
    /// at the first step at or after the new frame; nothing that already sounded sounds again.
    pub fn set_frame(&mut self, frame: u64) {
        if frame == self.frame {
            return;
        }
        let old = self.frame;
        self.frame = frame;
        if let Some(p) = self.pending {
            if Self::starts_at(&p) <= frame {
                self.pending = None;
                self.transport = p;
                self.region = self.pattern.loop_region;
            }
        }
        let t = self.transport;
        let before = self.next_step;
        // A short skip (the context dropped a few render quanta): the steps in the gap still
        // play, at once, a few ms late, rather than not at all. A long one joins at the next
        // step.
        let gap = frame.saturating_sub(old) as f64;
        let from = if old < frame && t.playing && gap <= Self::frames_per_step(&t, self.sr) {
            old
        } else {
            frame
        };
        self.switch(t, from);
        for (n, b) in self.next_step.iter_mut().zip(before) {
            *n = (*n).max(b);
        }
    }

    /// Corrects where the current transport's anchor is, for the same transport (a better
    /// clock estimate, or the audio clock drifting from the system clock). A transport still
    /// waiting for its anchor just moves. While playing, a correction of up to
    /// [`SNAP_SECONDS`] applies at once, one up to [`JUMP_SECONDS`] is slewed at [`SLEW_RATE`]
    /// (so no step jumps audibly), and a larger one jumps. Steps are never struck twice.
    /// With `at_once`, the correction applies now whatever its size: for when the audio
    /// output itself jumped (it stalled, and everything after is heard that much later), where
    /// slewing would only stretch the glitch over seconds. A step that fell less than one step
    /// behind still plays; older ones are skipped.
    pub fn correct_anchor(&mut self, anchor_frame: f64, at_once: bool) {
        if let Some(p) = &mut self.pending {
            p.anchor_frame = anchor_frame;
            return;
        }
        if !self.transport.playing {
            self.transport.anchor_frame = anchor_frame;
            return;
        }
        let d = (anchor_frame - self.transport.anchor_frame).abs() / self.sr as f64;
        if at_once {
            self.slew_target = None;
            let step = 60.0 / (self.transport.tempo * 4.0);
            self.move_anchor(anchor_frame, d < step);
        } else if d <= SNAP_SECONDS {
            self.slew_target = None;
            self.move_anchor(anchor_frame, true);
        } else if d > JUMP_SECONDS {
            self.slew_target = None;
            self.move_anchor(anchor_frame, false);
        } else {
            self.slew_target = Some(anchor_frame);
        }
    }

    /// The playing transport's anchor frame and the one it is being slewed to, if any.
    pub fn anchor(&self) -> (f64, Option<f64>) {
        (self.transport.anchor_frame, self.slew_target)
    }

    /// Moves the playing anchor. No step sounds twice: each track goes on from its next
    /// unplayed step. Moving earlier by a hair (`catch_up`), a step whose new frame fell just
    /// behind us still sounds, late by less than the correction; after a jump, steps passed
    /// over are skipped rather than played in a burst.
    fn move_anchor(&mut self, anchor_frame: f64, catch_up: bool) {
        let earlier = if catch_up {
            (self.transport.anchor_frame - anchor_frame).max(0.0)
        } else {
            0.0
        };
        let from = self.frame.saturating_sub(libm::ceil(earlier) as u64);
        let before = self.next_step;
        let t = Transport {
            anchor_frame,
            ..self.transport
        };
        self.switch(t, from);
        for (n, b) in self.next_step.iter_mut().zip(before) {
            *n = (*n).max(b);
        }
    }

    /// One block's worth of slewing towards the target anchor.
    fn slew(&mut self, frames: usize) {
        let Some(target) = self.slew_target else {
            return;
        };
        let max = SLEW_RATE * frames as f64;
        let d = target - self.transport.anchor_frame;
        if d.abs() <= max {
            self.transport.anchor_frame = target;
            self.slew_target = None;
        } else {
            self.transport.anchor_frame += max.copysign(d);
        }
    }

    /// Loads PCM (mono, at `rate` Hz) into a sample slot. Allocates: call from the control side.
    pub fn load_sample(&mut self, slot: usize, pcm: Vec<f32>, rate: f32) {
        if let Some(s) = self.samples.get_mut(slot) {
            s.pcm = pcm;
            s.rate_ratio = rate as f64 / self.sr as f64;
        }
    }

    /// Loads a sampled instrument into `slot` (replacing what was there; voices still playing
    /// the old one stop). A track plays it as `Instrument::Sampled(slot)`; until a slot is
    /// loaded such a track is silent. Allocates and frees: call from the control side.
    /// Returns false if `slot` is out of range.
    pub fn load_instrument(&mut self, slot: usize, inst: SampledInstrument) -> bool {
        if slot >= self.sampled.len() {
            return false;
        }
        self.stop_voices(slot);
        let halves = inst.zones.iter().map(half_rate).collect();
        self.sampled[slot] = Some((inst, halves));
        true
    }

    fn stop_voices(&mut self, slot: usize) {
        for v in self.voices.iter_mut() {
            if v.active && v.instrument == Instrument::Sampled(slot as u8) {
                v.active = false;
            }
        }
    }

    /// Gives zone `zone` of the instrument in `slot` its PCM (loading an instrument zone by
    /// zone: a zone without PCM is never chosen). Returns false if there is no such zone.
    pub fn load_zone_pcm(&mut self, slot: usize, zone: usize, pcm: Vec<i16>) -> bool {
        let Some((z, h)) = self
            .sampled
            .get_mut(slot)
            .and_then(Option::as_mut)
            .and_then(|(i, h)| i.zones.get_mut(zone).zip(h.get_mut(zone)))
        else {
            return false;
        };
        // Voices reading this zone's old PCM stop first.
        for v in self.voices.iter_mut() {
            if v.active
                && v.instrument == Instrument::Sampled(slot as u8)
                && v.smp.zone as usize == zone
            {
                v.active = false;
            }
        }
        z.pcm = pcm;
        *h = half_rate(z);
        true
    }

    /// Empties `slot`; tracks that play it fall silent.
    pub fn unload_instrument(&mut self, slot: usize) {
        if slot < self.sampled.len() {
            self.stop_voices(slot);
            self.sampled[slot] = None;
        }
    }

    /// The instrument loaded in `slot`.
    pub fn instrument(&self, slot: usize) -> Option<&SampledInstrument> {
        self.sampled
            .get(slot)
            .and_then(Option::as_ref)
            .map(|(i, _)| i)
    }

    /// Back to the first frame: silence, fresh voices and limiter; pattern and transport kept.
    pub fn reset(&mut self) {
        self.frame = 0;
        self.voices = [Voice::IDLE; MAX_VOICES];
        self.age = 0;
        self.limiter = 1.0;
        self.logged = 0;
        self.gains = [Gain::default(); MAX_TRACKS];
        self.master.clear();
        self.lock_cutoff = [None; MAX_TRACKS];
        self.settle_effects();
        let t = self.transport();
        self.set_transport(t);
        if self.pending.is_none() {
            self.switch(t, 0);
        }
    }

    /// The most recent triggers (up to 1,024), oldest first.
    pub fn triggers(&self) -> impl Iterator<Item = Trigger> + '_ {
        let n = self.logged.min(TRIGGER_LOG);
        let start = self.logged - n;
        (start..self.logged).map(|i| self.log[i % TRIGGER_LOG])
    }

    pub fn active_voices(&self) -> usize {
        self.voices.iter().filter(|v| v.active).count()
    }

    pub fn active_voices_on(&self, track: u8) -> usize {
        self.voices
            .iter()
            .filter(|v| v.active && v.track == track)
            .count()
    }

    /// The frame a transport takes over at: its anchor rounded like every step's frame, so the
    /// anchor step itself (whose frame is the rounded anchor) is the first to play, never
    /// skipped because the anchor fell between two frames.
    fn starts_at(t: &Transport) -> u64 {
        libm::floor(t.anchor_frame + 0.5).max(0.0) as u64
    }

    fn frames_per_step(t: &Transport, sr: f32) -> f64 {
        sr as f64 * 60.0 / (t.tempo * 4.0)
    }

    /// The frame at which global step `n` of track `ti` starts under transport `t`.
    fn step_frame(&self, t: &Transport, ti: usize, n: i64) -> i64 {
        let fps = Self::frames_per_step(t, self.sr);
        let mut f = t.anchor_frame + (n as f64 - t.anchor_step) * fps;
        if n.rem_euclid(2) == 1 {
            let swing = (self.pattern.swing as u32 + self.pattern.tracks[ti].swing as u32).min(100);
            // Off-beat 16ths are late by up to half a step (100 = 3:1).
            f += swing as f64 / 100.0 * 0.5 * fps;
        }
        libm::floor(f + 0.5) as i64
    }

    /// Makes `t` current at `frame` and finds each track's first step at or after it.
    fn switch(&mut self, t: Transport, frame: u64) {
        self.transport = t;
        self.tempo_switch = Some((frame.saturating_sub(self.block_start) as usize, t.tempo));
        if !t.playing {
            return;
        }
        let fps = Self::frames_per_step(&t, self.sr);
        let pos = t.anchor_step + (frame as f64 - t.anchor_frame) / fps;
        for ti in 0..MAX_TRACKS {
            let mut n = libm::floor(pos) as i64 - 1;
            while self.step_frame(&t, ti, n) < frame as i64 {
                n += 1;
            }
            self.next_step[ti] = n;
        }
    }

    /// Track `i`'s gains to the left and right; `any_solo`: whether some track is soloed.
    fn target_gain(&mut self, i: usize, any_solo: bool) -> (f32, f32) {
        let p = &self.pattern;
        if i >= p.track_count {
            return (0.0, 0.0);
        }
        let t = &p.tracks[i];
        if t.muted || (any_solo && !t.soloed) {
            return (0.0, 0.0);
        }
        let key = (t.pan.to_bits(), t.volume.to_bits());
        if let Some(p) = self.pan_gains[i].filter(|p| p.key == key) {
            return p.gains;
        }
        // Equal-power pan.
        let theta = (t.pan.clamp(-1.0, 1.0) + 1.0) * core::f32::consts::FRAC_PI_4;
        let v = t.volume.clamp(0.0, 1.0);
        let g = (v * libm::cosf(theta), v * libm::sinf(theta));
        self.pan_gains[i] = Some(PanGains { key, gains: g });
        g
    }

    /// The next frame (absolute) at which something happens, if before `limit`.
    fn next_event(&self, limit: u64) -> u64 {
        let mut next = limit;
        if let Some(p) = &self.pending {
            let f = Self::starts_at(p);
            next = next.min(f);
        }
        if self.transport.playing {
            for ti in 0..self.pattern.track_count {
                let f = self.step_frame(&self.transport, ti, self.next_step[ti]);
                next = next.min(f.max(0) as u64);
            }
        }
        next
    }

    /// Applies whatever happens at the current frame.
    fn events(&mut self) {
        let now = self.frame;
        if let Some(p) = self.pending {
            if Self::starts_at(&p) <= now {
                self.pending = None;
                self.region = self.pattern.loop_region;
                self.switch(p, now);
            }
        }
        if !self.transport.playing {
            return;
        }
        let t = self.transport;
        for ti in 0..self.pattern.track_count {
            while self.step_frame(&t, ti, self.next_step[ti]) <= now as i64 {
                let n = self.next_step[ti];
                self.next_step[ti] += 1;
                self.strike(ti, n);
            }
        }
    }

    /// Which voice a new note on track `track` takes. Drum tracks are monophonic, as on a drum
    /// machine: a new hit restarts the track's voice (the de-click fade smooths the cut). Other
    /// tracks hold up to [`VOICES_PER_TRACK`] notes and then take their own oldest. Otherwise
    /// a free voice, else the oldest of all.
    fn voice_for(&self, track: u8, mono: bool) -> usize {
        let mine = |v: &&Voice| v.active && v.track == track;
        fn oldest<'a>(a: (usize, &'a Voice), b: (usize, &'a Voice)) -> (usize, &'a Voice) {
            if b.1.age < a.1.age {
                b
            } else {
                a
            }
        }
        if mono {
            if let Some(i) = self.voices.iter().position(|v| mine(&v)) {
                return i;
            }
        } else if self.voices.iter().filter(mine).count() >= VOICES_PER_TRACK {
            if let Some((i, _)) = self
                .voices
                .iter()
                .enumerate()
                .filter(|(_, v)| mine(v))
                .reduce(oldest)
            {
                return i;
            }
        }
        if let Some(i) = self.voices.iter().position(|v| !v.active) {
            return i;
        }
        self.voices
            .iter()
            .enumerate()
            .reduce(oldest)
            .map(|(i, _)| i)
            .unwrap_or(0)
    }

    fn strike(&mut self, ti: usize, n: i64) {
        let track = self.pattern.tracks[ti];
        // A cutoff lock holds for its step (the slot this global step plays, in the loop
        // region if there is one), on or off; the filter glides there from this frame.
        let cutoff = track.locks[track.slot(n, self.region)].cutoff;
        if cutoff != self.lock_cutoff[ti] {
            self.lock_cutoff[ti] = cutoff;
            self.inserts[ti]
                .filter
                .set(cutoff.unwrap_or(track.fx.cutoff), track.fx.resonance);
        }
        let Some(instrument) = track.instrument else {
            return;
        };
        // A note lasts one step, plus every tied step that follows (a tied step itself
        // strikes nothing: the held note goes on).
        let Some((k, len)) = track.note_at(n, self.region) else {
            return;
        };
        let lock = track.locks[k];
        let fps = Self::frames_per_step(&self.transport, self.sr);
        let gate = (len as f64 * fps) as u32;
        let gain = lock.volume.unwrap_or(1.0).clamp(0.0, 1.0);
        if instrument == Instrument::Drum(Drum::HatClosed) {
            for v in self.voices.iter_mut() {
                if v.active && v.instrument == Instrument::Drum(Drum::HatOpen) {
                    v.choke();
                }
            }
        }
        // A chord: every note struck at once, the tie holding them all. A drum voice or a
        // one-shot sample (a kit piece) plays one note.
        let mono = match instrument {
            Instrument::Drum(_) => true,
            Instrument::Sampled(s) => self
                .sampled
                .get(s as usize)
                .and_then(Option::as_ref)
                .is_none_or(|(i, _)| i.one_shot),
            _ => false,
        };
        for (j, note) in lock.notes().enumerate() {
            if j > 0 && mono {
                break;
            }
            let pitch = track.transpose as f32 + note as f32;
            if let Instrument::Sampled(s) = instrument {
                let velocity = lock
                    .volume
                    .map_or(DEFAULT_VELOCITY, |v| {
                        libm::roundf(v.clamp(0.0, 1.0) * 127.0) as u8
                    })
                    .max(1);
                self.strike_sampled(ti, n, s, pitch, gain, velocity, gate);
                continue;
            }
            let slot = self.voice_for(ti as u8, mono);
            self.age += 1;
            // Noise depends only on which step of which track this is (and which note of its
            // chord), so one track's sound never changes because another track was muted,
            // added or edited.
            let seed = (n as u32).wrapping_mul(0x9E37_79B9)
                ^ ((ti as u32 + 1).wrapping_mul(0x85EB_CA6B))
                ^ (j as u32).wrapping_mul(0xC2B2_AE35);
            self.voices[slot].trigger(
                instrument, ti as u8, pitch, gain, gate, self.sr, self.age, seed,
            );
            self.log_trigger(ti, n);
        }
    }

    fn log_trigger(&mut self, ti: usize, n: i64) {
        let slot = self.pattern.tracks[ti].slot(n, self.region) as u8;
        self.log[self.logged % TRIGGER_LOG] = Trigger {
            frame: self.frame,
            track: ti as u8,
            step: n,
            slot,
        };
        self.logged += 1;
    }

    /// Plays one note of `instrument` at once on track `ti`'s bus (its volume, pan and mute
    /// apply), outside the pattern: an audition in the instrument picker, heard by this engine
    /// only. `pitch` is semitones from the instrument's base note; `gate` the note's length
    /// in frames. Call between blocks (the control side).
    pub fn audition(&mut self, ti: usize, instrument: Instrument, pitch: f32, gate: u32) {
        if ti >= MAX_TRACKS {
            return;
        }
        if let Instrument::Sampled(s) = instrument {
            self.strike_sampled(ti, -1, s, pitch, 1.0, DEFAULT_VELOCITY, gate.max(1));
            return;
        }
        let slot = self.voice_for(ti as u8, matches!(instrument, Instrument::Drum(_)));
        self.age += 1;
        self.voices[slot].trigger(
            instrument,
            ti as u8,
            pitch,
            1.0,
            gate.max(1),
            self.sr,
            self.age,
            0x5EED,
        );
    }

    /// Strikes a note of the sampled instrument in `slot` (silent if it is not loaded).
    #[allow(clippy::too_many_arguments)]
    fn strike_sampled(
        &mut self,
        ti: usize,
        n: i64,
        slot: u8,
        pitch: f32,
        gain: f32,
        velocity: u8,
        gate: u32,
    ) {
        let Some((inst, _)) = self.sampled.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        let note = inst.base_note as f32 + pitch;
        let Some(start) = note_start(inst, note, velocity, self.sr) else {
            return; // nothing loaded yet
        };
        // A choke group cuts every voice of the group, on any track.
        if inst.choke != 0 {
            for v in self.voices.iter_mut() {
                if v.active
                    && matches!(v.instrument, Instrument::Sampled(_))
                    && v.smp.choke == inst.choke
                {
                    v.choke();
                }
            }
        }
        let vi = self.voice_for(ti as u8, inst.one_shot);
        // A stolen voice fades out in a free voice rather than being cut (no click); with no
        // voice free, its last output is faded instead.
        let mut declick = 0.0;
        if self.voices[vi].active {
            if let Some(free) = self.voices.iter().position(|v| !v.active) {
                let mut old = self.voices[vi];
                old.fade_out();
                self.voices[free] = old;
            } else {
                declick = self.voices[vi].last_output();
            }
        }
        self.age += 1;
        let (inst, _) = self.sampled[slot as usize].as_ref().expect("checked above");
        self.voices[vi]
            .trigger_sampled(slot, inst, &start, ti as u8, gain, gate, self.sr, self.age);
        self.voices[vi].set_declick(declick);
        self.log_trigger(ti, n);
    }

    /// Renders `left.len()` frames (at most [`MAX_BLOCK`]) into `left` and `right`.
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        #[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: this CPU has AVX2, the one feature `render_avx2` is compiled for.
            #[allow(unsafe_code)]
            unsafe {
                return self.render_avx2(left, right);
            }
        }
        self.render_block(left, right)
    }

    /// [`Self::render`] compiled for AVX2 (its lanes run eight wide instead of four). The same
    /// bits: only wider registers, and no fused multiply-add (AVX2 alone has none, and Rust never
    /// fuses a multiply and an add on its own).
    #[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
    #[target_feature(enable = "avx2")]
    fn render_avx2(&mut self, left: &mut [f32], right: &mut [f32]) {
        self.render_block(left, right)
    }

    #[inline(always)]
    fn render_block(&mut self, left: &mut [f32], right: &mut [f32]) {
        let n = left.len().min(right.len()).min(MAX_BLOCK);
        let tracks = self.pattern.track_count;
        for bus in self.buses.iter_mut().take(MAX_TRACKS) {
            bus[..n].fill(0.0);
        }
        self.slew(n);
        let start = self.frame;
        let end = start + n as u64;
        // Effect settings changed between blocks take effect from the block's first frame.
        self.block_start = start;
        self.master.set_tempo(self.transport.tempo);
        self.tempo_switch = None;
        for ti in 0..tracks {
            let t = &self.pattern.tracks[ti];
            let cutoff = self.lock_cutoff[ti].unwrap_or(t.fx.cutoff);
            self.inserts[ti].aim(&t.fx, cutoff, false);
        }
        loop {
            self.events();
            let seg_end = self.next_event(end).max(self.frame + 1).min(end);
            let (a, b) = ((self.frame - start) as usize, (seg_end - start) as usize);
            let Engine {
                voices,
                buses,
                samples,
                sampled,
                kernel,
                drum_lanes,
                bank,
                clap,
                ..
            } = self;
            // Which tracks' voices are all drums (they go through `render_drums`: in passes,
            // their filters side by side) and which are all saw-and-square synth voices (they go
            // through `render_synth_lanes`: `SYNTH_LANES` voices of any of those synths and tracks
            // side by side). Either way the same bits as one by one.
            let mut drums = [true; MAX_TRACKS];
            let mut laned = [true; MAX_TRACKS];
            let mut keyed = [true; MAX_TRACKS];
            for v in voices.iter().filter(|v| v.active) {
                let t = v.track as usize;
                drums[t] &= Voice::drum_passes(v.instrument);
                laned[t] &= v.lanes_ready();
                keyed[t] &= v.keys_lanes_ready();
            }
            // Their sounding voices, in pool order: [drums, saw-and-square, keys and organ].
            let mut lists = [[0u8; MAX_VOICES]; 3];
            let mut counts = [0usize; 3];
            for (vi, v) in voices.iter().enumerate().filter(|(_, v)| v.active) {
                let t = v.track as usize;
                let c = match (drums[t], laned[t], keyed[t]) {
                    (true, _, _) => 0,
                    (_, true, _) => 1,
                    (_, _, true) => 2,
                    _ => continue,
                };
                lists[c][counts[c]] = vi as u8;
                counts[c] += 1;
            }
            let [drum_list, mut synth_list, keys_list] = lists;
            for group in drum_list[..counts[0]].chunks(DRUM_LANES) {
                render_drums(voices, group, buses, a..b, drum_lanes, bank, clap);
            }
            let (which, k) = (&mut synth_list, counts[1]);
            // Grouped by what their oscillators need (`Voice::lanes_rank`), so the last,
            // partly filled group skips the slots, the square and the clip none of its voices
            // use. A track's voices keep their pool order (a track's voices are all one synth,
            // and the index breaks ties), and each bus gets only its own track's voices, so
            // every bus adds its voices in the same order as before: the same bits.
            which[..k].sort_unstable_by_key(|&vi| (voices[vi as usize].lanes_rank(), vi));
            for group in which[..k].chunks(SYNTH_LANES) {
                if let [vi] = group {
                    // One voice alone: its own loop costs less than a group of lanes.
                    let v = &mut voices[*vi as usize];
                    v.render(&mut buses[v.track as usize][a..b], None);
                } else {
                    render_synth_lanes(voices, group, buses, a..b);
                }
            }
            // The FM keys' and the organ's voices (`keys_lanes`: their chains side by side).
            for group in keys_list[..counts[2]].chunks(CHAIN_LANES) {
                if let [vi] = group {
                    let v = &mut voices[*vi as usize];
                    v.render(&mut buses[v.track as usize][a..b], None);
                } else {
                    keys_lanes(voices, group, buses, a..b, drum_lanes);
                }
            }
            for v in voices.iter_mut().filter(|v| v.active) {
                let t = v.track as usize;
                if drums[t] || laned[t] || keyed[t] {
                    continue;
                }
                if let Instrument::Sampled(s) = v.instrument {
                    let inst = sampled
                        .get(s as usize)
                        .and_then(Option::as_ref)
                        .map(|(i, h)| (i, h.as_slice()));
                    v.render_sampled(&mut buses[v.track as usize][a..b], inst, kernel);
                    continue;
                }
                let data = match v.instrument {
                    Instrument::Sample(s) => samples.get(s as usize).map(|s| SampleData {
                        pcm: &s.pcm,
                        rate_ratio: s.rate_ratio,
                    }),
                    _ => None,
                };
                v.render(&mut buses[v.track as usize][a..b], data.as_ref());
            }
            // Each track's drive and filter, on this stretch (a cutoff lock struck at its
            // start applies from its first frame). Steady filters run side by side in the
            // bank, up to eight at once (the same samples as one by one).
            let at = start + a as u64;
            let mut lanes = [(0usize, None); BANK];
            let mut count = 0;
            for ti in 0..MAX_TRACKS {
                if let Some(drive) = self.inserts[ti].process(&mut buses[ti][a..b], at, true) {
                    lanes[count] = (ti, drive);
                    count += 1;
                    if count == BANK {
                        run_bank(&mut self.bank, &lanes, &mut self.inserts, buses, a..b, at);
                        count = 0;
                    }
                }
            }
            if count == 1 {
                let (ti, drive) = lanes[0];
                if let Some(gains) = drive {
                    drive_run(&mut buses[ti][a..b], gains);
                }
                self.inserts[ti]
                    .filter
                    .process_block(&mut buses[ti][a..b], at);
            } else if count > 1 {
                run_bank(
                    &mut self.bank,
                    &lanes[..count],
                    &mut self.inserts,
                    buses,
                    a..b,
                    at,
                );
            }
            self.frame = seg_end;
            if seg_end >= end {
                break;
            }
        }
        // Mix: per-track gain (ramping when it changed) and sends (after the gain), then the
        // master chain, the master gain and a peak limiter that never lets a sample past the
        // ceiling.
        left[..n].fill(0.0);
        right[..n].fill(0.0);
        self.send_rev[..n].fill(0.0);
        for d in self.send_del.iter_mut() {
            d[..n].fill(0.0);
        }
        let wants_sends = self.master.wants_sends();
        let any_solo = self.pattern.tracks[..tracks].iter().any(|t| t.soloed);
        for ti in 0..MAX_TRACKS {
            let target = self.target_gain(ti, any_solo);
            let gain = &mut self.gains[ti];
            gain.aim(target);
            if ti >= tracks && gain.remaining == 0 {
                continue;
            }
            let bus = &self.buses[ti][..n];
            let ins = &mut self.inserts[ti];
            let sends = wants_sends && ins.sends_active();
            if !wants_sends {
                ins.skip_sends();
            }
            let [del_l, del_r] = &mut self.send_del;
            let mut peak = 0f32;
            if gain.remaining == 0 && !sends {
                // Steady gain, no sends: the plain loop.
                let (gl, gr) = (gain.left, gain.right);
                for ((l, r), b) in left[..n].iter_mut().zip(right[..n].iter_mut()).zip(bus) {
                    *l += b * gl;
                    *r += b * gr;
                }
                let peak = peak_abs(bus);
                self.peaks[ti] = self.peaks[ti].max(peak * gl.abs().max(gr.abs()));
                continue;
            }
            if gain.remaining == 0 && ins.sends_settled() {
                // Steady gain and sends: constant coefficients.
                let (gl, gr) = (gain.left, gain.right);
                let (sr, sd) = ins.tick_sends();
                let (cr, cl, cd) = ((gl + gr) * 0.5 * sr, gl * sd, gr * sd);
                for i in 0..n {
                    let b = bus[i];
                    left[i] += b * gl;
                    right[i] += b * gr;
                    self.send_rev[i] += b * cr;
                    del_l[i] += b * cl;
                    del_r[i] += b * cd;
                }
                let peak = peak_abs(bus);
                self.peaks[ti] = self.peaks[ti].max(peak * gl.abs().max(gr.abs()));
                continue;
            }
            for i in 0..n {
                let (gl, gr) = gain.tick();
                let b = bus[i];
                left[i] += b * gl;
                right[i] += b * gr;
                peak = peak.max(b.abs() * gl.abs().max(gr.abs()));
                if sends {
                    let (sr, sd) = ins.tick_sends();
                    // The same products as the steady path above (the same bits either way).
                    let (cr, cl, cd) = ((gl + gr) * 0.5 * sr, gl * sd, gr * sd);
                    self.send_rev[i] += b * cr;
                    del_l[i] += b * cl;
                    del_r[i] += b * cd;
                }
            }
            self.peaks[ti] = self.peaks[ti].max(peak);
        }
        self.master.process(
            start,
            &mut left[..n],
            &mut right[..n],
            Sends {
                rev: &self.send_rev[..n],
                del_l: &self.send_del[0][..n],
                del_r: &self.send_del[1][..n],
            },
            self.tempo_switch,
        );
        // The limiter's gain is a chain from frame to frame. Recovering towards 1 it stops
        // moving once a step is below rounding (a fixed point just under 1, where it sits
        // most of the time); there, while no frame needs less, every frame's gain is that same
        // value: the frames are independent and run several at once (the same bits).
        let g0 = self.limiter + (1.0 - self.limiter) * self.limiter_release;
        if g0 == self.limiter {
            let over = (0..n).fold(false, |a, i| {
                let (l, r) = (left[i] * MASTER_GAIN, right[i] * MASTER_GAIN);
                a | (l.abs().max(r.abs()) * g0 > CEILING)
            });
            if !over {
                for (l, r) in left[..n].iter_mut().zip(right[..n].iter_mut()) {
                    *l = (*l * MASTER_GAIN * g0).clamp(-CEILING, CEILING);
                    *r = (*r * MASTER_GAIN * g0).clamp(-CEILING, CEILING);
                }
                return;
            }
        }
        for i in 0..n {
            let l = left[i] * MASTER_GAIN;
            let r = right[i] * MASTER_GAIN;
            let peak = l.abs().max(r.abs());
            let mut g = self.limiter + (1.0 - self.limiter) * self.limiter_release;
            if peak * g > CEILING {
                g = CEILING / peak;
            }
            self.limiter = g;
            // The gain already brings the peak to the ceiling; the clamp only removes the last
            // rounding ulp, so the guarantee is exact.
            left[i] = (l * g).clamp(-CEILING, CEILING);
            right[i] = (r * g).clamp(-CEILING, CEILING);
        }
    }
}

#[cfg(all(test, target_arch = "x86_64", not(target_feature = "avx2")))]
mod avx2_tests {
    use super::*;
    use crate::demo::{all_effects, busy_pattern_with_effects};

    /// The AVX2 build of the render and the baseline one give the same bits, every effect on.
    #[test]
    #[ignore = "only an optimised build vectorises: cargo xtask test runs it with --release --ignored"]
    fn the_avx2_render_is_bit_identical_to_the_baseline() {
        // `cargo xtask test` runs this only where the CPU has AVX2 (and says so otherwise):
        // without it there is nothing to compare, which must not pass as a comparison.
        assert!(
            std::is_x86_feature_detected!("avx2"),
            "this CPU has no AVX2: the AVX2 render cannot run here"
        );
        let engine = || {
            let mut e = Engine::new(48_000.0);
            e.set_pattern(&busy_pattern_with_effects());
            e.set_master_fx(&all_effects());
            e.set_transport(Transport::play(0.0, 0.0, 120.0));
            e.settle_effects();
            e
        };
        let (mut wide, mut base) = (engine(), engine());
        let (mut wl, mut wr, mut bl, mut br) =
            ([0.0f32; 128], [0.0f32; 128], [0.0; 128], [0.0; 128]);
        let mut loud = 0.0f32;
        for block in 0..(2 * 48_000 / 128) {
            wide.render(&mut wl, &mut wr);
            base.render_block(&mut bl, &mut br);
            for i in 0..128 {
                assert_eq!(
                    wl[i].to_bits(),
                    bl[i].to_bits(),
                    "left, block {block}, frame {i}"
                );
                assert_eq!(
                    wr[i].to_bits(),
                    br[i].to_bits(),
                    "right, block {block}, frame {i}"
                );
                loud = loud.max(wl[i].abs());
            }
        }
        assert!(loud > 0.1, "the pattern plays (peak {loud})");
    }
}
