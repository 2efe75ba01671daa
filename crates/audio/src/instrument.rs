//! The built-in instruments and their ids (`drums/kick`, `synth/bass`, ...), and how one voice of
//! each sounds. Drum voices are one-shots shaped by their own envelopes; synth voices follow a
//! gate (note length) with an ADSR; sample voices play recorded PCM, pitched by resampling.

use crate::dsp::*;
use crate::sampler::{self, HalfZone, Kernel, NoteStart, SampledInstrument, SamplerState};

/// Synthesized drum voices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drum {
    Kick,
    Kick808,
    Snare,
    Clap,
    HatClosed,
    HatOpen,
    TomLow,
    TomMid,
    TomHigh,
    Rim,
    Cowbell,
    Shaker,
    Clave,
    /// FX: a laser zap (a sine diving from high to low).
    Zap,
    /// FX: a short square blip.
    Blip,
    /// FX: a noise swell whose band rises.
    Riser,
}

/// Tonal synth presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synth {
    Bass,
    SubBass,
    Acid,
    Lead,
    Pad,
    Pluck,
    Keys,
    Organ,
}

/// What a track plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instrument {
    Drum(Drum),
    Synth(Synth),
    /// A loaded sample slot (recordings).
    Sample(u8),
    /// A sampled instrument slot (see [`crate::sampler`] and `Engine::load_instrument`).
    Sampled(u8),
}

/// Where an instrument appears in the picker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Drums,
    Bass,
    Keys,
    Leads,
    Pads,
    Fx,
}

/// One entry of the built-in catalog.
pub struct Entry {
    pub id: &'static str,
    pub name: &'static str,
    pub group: Group,
    pub instrument: Instrument,
}

macro_rules! catalog {
    ($($id:literal, $name:literal, $group:ident, $inst:expr;)*) => {
        /// Every built-in instrument, in picker order.
        pub const CATALOG: &[Entry] = &[
            $(Entry { id: $id, name: $name, group: Group::$group, instrument: $inst },)*
        ];
    };
}

catalog! {
    "drums/kick", "Kick", Drums, Instrument::Drum(Drum::Kick);
    "drums/kick-808", "808 Kick", Drums, Instrument::Drum(Drum::Kick808);
    "drums/snare", "Snare", Drums, Instrument::Drum(Drum::Snare);
    "drums/clap", "Clap", Drums, Instrument::Drum(Drum::Clap);
    "drums/hihat-closed", "Closed Hat", Drums, Instrument::Drum(Drum::HatClosed);
    "drums/hihat-open", "Open Hat", Drums, Instrument::Drum(Drum::HatOpen);
    "drums/tom-low", "Low Tom", Drums, Instrument::Drum(Drum::TomLow);
    "drums/tom-mid", "Mid Tom", Drums, Instrument::Drum(Drum::TomMid);
    "drums/tom-high", "High Tom", Drums, Instrument::Drum(Drum::TomHigh);
    "drums/rim", "Rim", Drums, Instrument::Drum(Drum::Rim);
    "drums/cowbell", "Cowbell", Drums, Instrument::Drum(Drum::Cowbell);
    "drums/shaker", "Shaker", Drums, Instrument::Drum(Drum::Shaker);
    "drums/clave", "Clave", Drums, Instrument::Drum(Drum::Clave);
    "synth/bass", "Bass", Bass, Instrument::Synth(Synth::Bass);
    "synth/sub-bass", "Sub Bass", Bass, Instrument::Synth(Synth::SubBass);
    "synth/acid", "Acid", Bass, Instrument::Synth(Synth::Acid);
    "synth/keys", "Keys", Keys, Instrument::Synth(Synth::Keys);
    "synth/organ", "Organ", Keys, Instrument::Synth(Synth::Organ);
    "synth/pluck", "Pluck", Leads, Instrument::Synth(Synth::Pluck);
    "synth/lead", "Lead", Leads, Instrument::Synth(Synth::Lead);
    "synth/pad", "Pad", Pads, Instrument::Synth(Synth::Pad);
    "fx/zap", "Zap", Fx, Instrument::Drum(Drum::Zap);
    "fx/blip", "Blip", Fx, Instrument::Drum(Drum::Blip);
    "fx/riser", "Riser", Fx, Instrument::Drum(Drum::Riser);
}

impl Instrument {
    /// The built-in instrument with this id.
    pub fn by_id(id: &str) -> Option<Instrument> {
        CATALOG.iter().find(|e| e.id == id).map(|e| e.instrument)
    }

    /// A stable number for the instrument (for the worklet's numeric control interface):
    /// its catalog index, 256 + slot for samples, 512 + slot for sampled instruments.
    pub fn code(self) -> u32 {
        match self {
            Instrument::Sample(s) => 256 + s as u32,
            Instrument::Sampled(s) => 512 + s as u32,
            i => CATALOG
                .iter()
                .position(|e| e.instrument == i)
                .expect("every built-in is in the catalog") as u32,
        }
    }

    pub fn from_code(code: u32) -> Option<Instrument> {
        if code >= 512 {
            return u8::try_from(code - 512).ok().map(Instrument::Sampled);
        }
        if code >= 256 {
            return u8::try_from(code - 256).ok().map(Instrument::Sample);
        }
        CATALOG.get(code as usize).map(|e| e.instrument)
    }

    /// The MIDI note a step plays before transpose and pitch locks.
    pub fn base_note(self) -> f32 {
        match self {
            Instrument::Synth(Synth::Bass | Synth::SubBass | Synth::Acid) => 36.0,
            Instrument::Synth(_) => 60.0,
            _ => 60.0,
        }
    }
}

/// One drum voice's stretch in [`render_drums`]: what its frame-by-frame chains produce (the
/// envelopes' values, the oscillators' phases, the filters' input and then output), so the
/// rest is computed several frames or voices at once.
#[derive(Clone, Copy)]
pub struct DrumLane {
    amp: [f32; MB],
    aux: [f32; MB],
    /// The tone's phase (the clap: its envelope).
    p0: [f32; MB],
    /// The snare's second phase.
    p1: [f32; MB],
    /// More phases (the organ's partials, in [`keys_lanes`]).
    p2: [f32; MB],
    p3: [f32; MB],
    p4: [f32; MB],
    /// The filters' input (noise, squares, the kick's click), then their output, then the
    /// voice's output.
    x: [f32; MB],
    /// Frames the voice sounds in this stretch (fewer when it ends in it).
    live: usize,
}

const MB: usize = crate::engine::MAX_BLOCK;

impl DrumLane {
    pub const ZERO: DrumLane = DrumLane {
        amp: [0.0; MB],
        aux: [0.0; MB],
        p0: [0.0; MB],
        p1: [0.0; MB],
        p2: [0.0; MB],
        p3: [0.0; MB],
        p4: [0.0; MB],
        x: [0.0; MB],
        live: 0,
    };
}

/// How many drum voices [`render_drums`] takes at once.
pub const DRUM_LANES: usize = 16;

/// Renders the drum voices `which` (indexes into `voices`, in pool order, at most
/// [`DRUM_LANES`], each [`Voice::drum_passes`]) over `range` of their tracks' buses. Each voice
/// runs in passes: first its serial chains (envelopes, phases, noise) frame by frame (side by
/// side where the drum allows, [`drum_chain_lanes`]), then the filters of every voice side by
/// side in `bank` (one filter waits on its previous frame; eight at once cost about one; a
/// voice's second filter runs beside its first, frame by frame), then its sines and the output
/// formula several frames at once, then the frames into the bus. Every frame's arithmetic is that of [`Voice::render`] and each
/// voice adds into its bus in pool order, so the result is the same bits.
#[cfg_attr(target_arch = "x86_64", inline(always))]
pub fn render_drums(
    voices: &mut [Voice],
    which: &[u8],
    buses: &mut [[f32; MB]],
    range: core::ops::Range<usize>,
    lanes: &mut [DrumLane],
    bank: &mut SvfBank,
    clap: &[f32],
) {
    let n = range.len();
    // The chains: side by side where the drum allows, else voice by voice (so is a voice
    // alone: a group of lanes would run idle lanes beside it).
    let mut side = [(0u8, 0usize); DRUM_LANES];
    let mut m = 0;
    for (i, &vi) in which.iter().enumerate() {
        if voices[vi as usize].chains_in_lanes() {
            side[m] = (vi, i);
            m += 1;
        } else {
            voices[vi as usize].drum_source(&mut lanes[i], n, clap);
        }
    }
    for group in side[..m].chunks(CHAIN_LANES) {
        if let [(vi, i)] = group {
            voices[*vi as usize].drum_source(&mut lanes[*i], n, clap);
        } else {
            drum_chain_lanes(voices, group, lanes, n);
        }
    }
    // The filters: each voice's first in a lane of the bank's lower half, its second (which
    // takes the first's output) in the lane above it ([`SvfBank::run_cascade`]), up to
    // `HALF_BANK` voices at once.
    let mut with = [0usize; DRUM_LANES];
    let mut m = 0;
    for (i, &vi) in which.iter().enumerate() {
        if voices[vi as usize].drum_filter(0).is_some() {
            with[m] = i;
            m += 1;
        }
    }
    let alone = |f: &mut Svf, out: u8, x: &mut [f32]| {
        for x in x.iter_mut() {
            let o = f.process(*x);
            *x = match out {
                0 => o.low,
                1 => o.band,
                _ => o.high,
            };
        }
    };
    for group in with[..m].chunks(HALF_BANK) {
        if let [i] = group {
            // A voice alone: the bank would run idle lanes beside its filters.
            let (v, x) = (&mut voices[which[*i] as usize], &mut lanes[*i].x[..n]);
            for stage in 0..2 {
                if let Some((f, out)) = v.drum_filter(stage) {
                    alone(f, out, x);
                }
            }
            continue;
        }
        for j in 0..HALF_BANK {
            match group.get(j) {
                Some(&i) => {
                    let v = &mut voices[which[i] as usize];
                    let (f, out) = v.drum_filter(0).unwrap();
                    bank.load(j, f, out);
                    match v.drum_filter(1) {
                        Some((f, out)) => bank.load(j + HALF_BANK, f, out),
                        None => bank.clear(j + HALF_BANK),
                    }
                }
                None => {
                    bank.clear(j);
                    bank.clear(j + HALF_BANK);
                }
            }
        }
        // The inputs and outputs all at once (the bank transposes them eight lanes at a
        // time); `group` is in scratch order, so one pass over the scratch finds them.
        let mut xs: [(usize, &[f32]); HALF_BANK] = [(0, &[]); HALF_BANK];
        for (j, &i) in group.iter().enumerate() {
            xs[j] = (j, &lanes[i].x[..n]);
        }
        bank.fill(&xs[..group.len()], n);
        bank.run_cascade(n);
        let mut ys: [(usize, &mut [f32]); HALF_BANK] = Default::default();
        let mut m = 0;
        for (i, l) in lanes.iter_mut().enumerate() {
            if m < group.len() && group[m] == i {
                let v = &mut voices[which[i] as usize];
                let (f, _) = v.drum_filter(0).unwrap();
                bank.store(m, f);
                // The voice's output: its second filter's where it has one.
                let lane = match v.drum_filter(1) {
                    Some((f, _)) => {
                        bank.store(m + HALF_BANK, f);
                        m + HALF_BANK
                    }
                    None => m,
                };
                ys[m] = (lane, &mut l.x[..n]);
                m += 1;
            }
        }
        debug_assert_eq!(m, group.len(), "the group in scratch order");
        bank.drain(&mut ys[..m], n);
    }
    for (&vi, l) in which.iter().zip(lanes.iter_mut()) {
        let v = &mut voices[vi as usize];
        let t = v.track as usize;
        v.drum_finish(l, &mut buses[t][range.clone()]);
    }
}

/// How many drum voices' chains [`drum_chain_lanes`] runs side by side (as many as
/// [`SYNTH_LANES`], for the same reason).
pub const CHAIN_LANES: usize = SYNTH_LANES;

/// The first pass of [`render_drums`] for up to [`CHAIN_LANES`] voices at once (`group`: each
/// voice's index into `voices` and its lane in `lanes`; each [`Voice::chains_in_lanes`]): the
/// chains of [`Voice::drum_chains`] (envelopes, phases, noise), one voice per SIMD lane. One
/// voice's chains wait on their previous frame; eight at once cost about one. Each lane does
/// the arithmetic of its drum's case there, written once for all of them:
/// - the tone's frequency is `freq * (1 + (c1 * aux + (c2 * aux) * aux))`: the kick's,
///   snare's and toms' sweeps in `c1`, the zap's in `c2`, a drum without a sweep has neither
///   (a zero term adds +0, which changes no sum of the non-negative values here, and `freq *
///   1` is `freq`);
/// - the second phase's increment is `fr * r1 / sr`: the snare's overtone;
/// - the noise moves on only where the drum draws it (the kick only during its click);
/// - the filters' input is picked per lane: noise or the kick's click.
///
/// So the result is the same bits as voice by voice.
#[cfg_attr(target_arch = "x86_64", inline(always))]
#[allow(clippy::needless_range_loop)] // lanes side by side, indexed alike
fn drum_chain_lanes(voices: &mut [Voice], group: &[(u8, usize)], lanes: &mut [DrumLane], n: usize) {
    const L: usize = CHAIN_LANES;
    let group = &group[..group.len().min(L)];
    let n = n.min(MB);
    let mut amp = [0.0f32; L];
    let mut amp_mul = [0.0f32; L];
    let mut aux = [0.0f32; L];
    let mut aux_mul = [0.0f32; L];
    let mut freq = [0.0f32; L];
    let mut sr = [1.0f32; L];
    let (mut c1, mut c2, mut r1) = ([0.0f32; L], [0.0f32; L], [0.0f32; L]);
    let (mut ph0, mut ph1) = ([0.0f32; L], [0.0f32; L]);
    let mut noise = [1u32; L];
    let mut t0 = [0u32; L];
    let mut click = [1u32; L];
    // An idle lane never ends.
    let (mut min, mut max) = ([u32::MAX; L], [u32::MAX; L]);
    // What each lane's filters take (masks, all ones where it applies): noise every frame, or
    // the kick's click.
    let (mut noisy, mut clicky) = ([0u32; L], [0u32; L]);
    for (j, &(vi, _)) in group.iter().enumerate() {
        let v = &voices[vi as usize];
        let Instrument::Drum(d) = v.instrument else {
            continue;
        };
        (amp[j], amp_mul[j], aux[j], aux_mul[j]) = (v.amp, v.amp_mul, v.aux, v.aux_mul);
        (freq[j], sr[j]) = (v.freq, v.sr);
        (c1[j], c2[j], r1[j]) = match d {
            Drum::Kick => (3.2, 0.0, 0.0),
            Drum::Kick808 => (2.2, 0.0, 0.0),
            Drum::Snare => (0.3, 0.0, 1.78),
            Drum::TomLow | Drum::TomMid | Drum::TomHigh => (0.6, 0.0, 0.0),
            Drum::Zap => (0.0, 24.0, 0.0),
            _ => (0.0, 0.0, 0.0),
        };
        (ph0[j], ph1[j], noise[j]) = (v.ph[0].0, v.ph[1].0, v.noise.0);
        (t0[j], min[j], max[j]) = (v.t, v.min_frames, v.max_frames);
        let all = |b: bool| if b { !0 } else { 0 };
        noisy[j] = all(matches!(
            d,
            Drum::Snare | Drum::TomLow | Drum::TomMid | Drum::TomHigh | Drum::Rim | Drum::Shaker
        ));
        clicky[j] = all(matches!(d, Drum::Kick | Drum::Kick808));
        if clicky[j] != 0 {
            click[j] = v.click_frames;
        }
    }
    let any_click = clicky.iter().any(|m| *m != 0);
    let any_second = r1.iter().any(|r| *r != 0.0);
    // Each frame's values, lane by lane (into the voices' lanes at the end).
    let mut out_amp = [[0.0f32; L]; MB];
    let mut out_aux = [[0.0f32; L]; MB];
    let mut out_p0 = [[0.0f32; L]; MB];
    let mut out_p1 = [[0.0f32; L]; MB];
    let mut out_x = [[0.0f32; L]; MB];
    let mut ended = [false; L];
    let mut live = [n; L];
    for f in 0..n {
        let (a, u) = (amp, aux);
        let mut t = [0u32; L];
        for j in 0..L {
            amp[j] *= amp_mul[j];
            aux[j] *= aux_mul[j];
            t[j] = t0[j] + f as u32;
        }
        let mut i0 = [0.0f32; L];
        let mut i1 = [0.0f32; L];
        for j in 0..L {
            let fr = freq[j] * (1.0 + (c1[j] * u[j] + (c2[j] * u[j]) * u[j]));
            i0[j] = fr / sr[j];
            if any_second {
                i1[j] = fr * r1[j] / sr[j];
            }
        }
        let p0 = advance_lanes(&mut ph0, &i0);
        let p1 = if any_second {
            advance_lanes(&mut ph1, &i1)
        } else {
            ph1
        };
        // The noise (xorshift32, as `Noise::sample`), moving on where it is drawn.
        let mut draw = [0u32; L];
        let mut nz = [0.0f32; L];
        for j in 0..L {
            draw[j] = noisy[j] | (clicky[j] & ((t[j] < click[j]) as u32).wrapping_neg());
            let mut s = noise[j];
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            noise[j] = (s & draw[j]) | (noise[j] & !draw[j]);
            // Below 2^24: as a signed number, the same value (and a conversion that vectorizes).
            nz[j] = ((s >> 8) as i32) as f32 / (1u32 << 23) as f32 - 1.0;
        }
        let mut x = [0.0f32; L];
        for j in 0..L {
            x[j] = pick(noisy[j], nz[j], 0.0);
        }
        if any_click {
            for j in 0..L {
                let c = nz[j] * 0.25 * (1.0 - (t[j] as i32) as f32 / (click[j] as i32) as f32);
                x[j] = pick(clicky[j] & draw[j], c, x[j]);
            }
        }
        out_amp[f] = a;
        out_aux[f] = u;
        out_p0[f] = p0;
        out_p1[f] = p1;
        out_x[f] = x;
        // As `drum_chains`: a voice that ends on this frame still sounds it.
        let mut ends = [false; L];
        for j in 0..L {
            ends[j] = (a[j] < 1e-3 && u[j] < 1e-3 && t[j] > min[j]) || t[j] > max[j];
        }
        if ends.contains(&true) {
            for j in 0..L {
                if ends[j] && !ended[j] {
                    ended[j] = true;
                    live[j] = f + 1;
                }
            }
        }
    }
    for (j, &(vi, i)) in group.iter().enumerate() {
        let l = &mut lanes[i];
        let k = live[j];
        for f in 0..k {
            l.amp[f] = out_amp[f][j];
            l.aux[f] = out_aux[f][j];
            l.p0[f] = out_p0[f][j];
            l.p1[f] = out_p1[f][j];
            l.x[f] = out_x[f][j];
        }
        l.x[k..n].fill(0.0);
        l.live = k;
        // The chains' state (a voice that ended keeps running here past its end, but it is
        // never heard or read again: a new note starts from a fresh voice).
        let v = &mut voices[vi as usize];
        (v.amp, v.aux) = (amp[j], aux[j]);
        (v.ph[0].0, v.ph[1].0, v.noise.0) = (ph0[j], ph1[j], noise[j]);
        if ended[j] {
            v.active = false;
        }
    }
}

/// The organ's drawbars: five sine partials (their frequency ratio and level), each with its
/// own phase.
const ORGAN: [(f32, f32); 5] = [
    (1.0, 0.5),
    (2.0, 0.3),
    (3.0, 0.18),
    (4.0, 0.12),
    (8.0, 0.06),
];

/// One frame of the organ's oscillators from its partials' phases: summed in order.
#[inline(always)]
fn organ_drawbars(p: [f32; 5]) -> f32 {
    let mut y = 0.0;
    for (p, (_, w)) in p.into_iter().zip(ORGAN) {
        y += sine_select(p) * w;
    }
    y * 0.8
}

/// One frame of the FM keys' oscillators (two-operator FM: a sine modulating a sine, the index
/// falling with the modulation envelope `aux`, and a bell partial) from their phases.
#[inline(always)]
fn keys_fm(p0: f32, p1: f32, p2: f32, aux: f32) -> f32 {
    let m = sine_select(p1);
    let index = 0.15 + 1.6 * aux;
    let mut q = p0 + index * m / crate::dsp::TAU;
    q -= floor(q);
    sine_select(q) * 0.8 + 0.1 * sine_select(p2)
}

/// Renders the FM keys' and the organ's voices `which` (indexes into `voices`, in pool order,
/// at most [`CHAIN_LANES`], each [`Voice::keys_lanes_ready`]) over `range` of their tracks'
/// buses. Their chains (the oscillators' phases, the modulation and amplitude envelopes, the
/// gate) run side by side, one voice per SIMD lane: one voice's chains wait on their previous
/// frame, several at once cost about one. Then each voice's sines, several frames at once, its
/// envelope and gain, into its bus in pool order. Each lane does the arithmetic of
/// [`Voice::render`] (the phases of `Voice::synth_source`, the envelope of
/// `Voice::unfiltered_envelope` as [`Adsr::lane_step`] gives it), so the result is the same
/// bits as one by one. `scratch` holds each voice's stretch (its first `which.len()` lanes).
#[cfg_attr(target_arch = "x86_64", inline(always))]
#[allow(clippy::needless_range_loop)] // lanes side by side, indexed alike
pub fn keys_lanes(
    voices: &mut [Voice],
    which: &[u8],
    buses: &mut [[f32; MB]],
    range: core::ops::Range<usize>,
    scratch: &mut [DrumLane],
) {
    const L: usize = CHAIN_LANES;
    let which = &which[..which.len().min(L).min(scratch.len())];
    let n = range.len().min(MB);
    let mut ph = [[0.0f32; L]; 5];
    let mut inc = [[0.0f32; L]; 5];
    let (mut aux, mut aux_mul) = ([0.0f32; L], [0.0f32; L]);
    let (mut level, mut es, mut em, mut ei) = ([0.0f32; L], [0.0f32; L], [1.0f32; L], [0.0f32; L]);
    // The rare turns, as in `render_synth_lanes`: an attack ends at `top` (1), a release below
    // `floor` (1e-5); infinite in other stages, so the test vectorizes.
    let (mut top, mut floor) = ([f32::INFINITY; L], [f32::NEG_INFINITY; L]);
    let (mut t, mut gate) = ([0u32; L], [u32::MAX; L]);
    let mut organ = false;
    for (j, &vi) in which.iter().enumerate() {
        let v = &voices[vi as usize];
        let i = v.freq / v.sr;
        inc[0][j] = i;
        if v.instrument == Instrument::Synth(Synth::Organ) {
            organ = true;
            for h in 1..5 {
                inc[h][j] = i * ORGAN[h].0;
            }
        } else {
            (inc[1][j], inc[2][j]) = (i, i * 4.0);
        }
        for h in 0..5 {
            ph[h][j] = v.ph[h].0;
        }
        (aux[j], aux_mul[j]) = (v.aux, v.aux_mul);
        level[j] = v.env.level;
        [es[j], em[j], ei[j]] = v.env.lane_step();
        if v.env.in_attack() {
            top[j] = 1.0;
        }
        if v.env.in_release() {
            floor[j] = 1e-5;
        }
        (t[j], gate[j]) = (v.t, v.gate);
    }
    let phases = if organ { 5 } else { 3 };
    let mut live = [n; L];
    let (mut attack_ended, mut ended, mut gated) = ([false; L], [false; L], [false; L]);
    for f in 0..n {
        // The gate closes before this frame's step (rare).
        let mut closes = false;
        for j in 0..L {
            closes |= t[j] == gate[j];
        }
        if closes {
            for (j, &vi) in which.iter().enumerate() {
                if t[j] == gate[j] && !ended[j] {
                    gated[j] = true;
                    [es[j], em[j], ei[j]] = voices[vi as usize].env.release_step();
                    (top[j], floor[j]) = (f32::INFINITY, 1e-5);
                }
            }
        }
        let mut p = [[0.0f32; L]; 5];
        for h in 0..phases {
            p[h] = advance_lanes(&mut ph[h], &inc[h]);
        }
        let u = aux;
        let mut turns = 0u32;
        for j in 0..L {
            aux[j] *= aux_mul[j];
            level[j] = es[j] + (level[j] - es[j]) * em[j] + ei[j];
            turns |= (level[j] >= top[j]) as u32 | (level[j] < floor[j]) as u32;
            t[j] += 1;
        }
        if turns != 0 {
            for (j, &vi) in which.iter().enumerate() {
                if level[j] >= top[j] {
                    level[j] = 1.0;
                    top[j] = f32::INFINITY;
                    attack_ended[j] = true;
                    [es[j], em[j], ei[j]] = voices[vi as usize].env.decay_step();
                }
                if level[j] < floor[j] {
                    level[j] = 0.0;
                    floor[j] = f32::NEG_INFINITY;
                    ended[j] = true;
                    (es[j], em[j], ei[j]) = (0.0, 1.0, 0.0);
                    live[j] = f + 1;
                }
            }
        }
        for (j, l) in scratch.iter_mut().enumerate().take(which.len()) {
            l.p0[f] = p[0][j];
            l.p1[f] = p[1][j];
            l.p2[f] = p[2][j];
            l.aux[f] = u[j];
            l.amp[f] = level[j];
        }
        if organ {
            for (j, l) in scratch.iter_mut().enumerate().take(which.len()) {
                l.p3[f] = p[3][j];
                l.p4[f] = p[4][j];
            }
        }
    }
    let at = range.start;
    for (j, (&vi, l)) in which.iter().zip(scratch.iter_mut()).enumerate() {
        let v = &mut voices[vi as usize];
        for h in 0..5 {
            v.ph[h].0 = ph[h][j];
        }
        v.aux = aux[j];
        v.env.set_from_lane(level[j], attack_ended[j], ended[j]);
        if gated[j] {
            v.env.release();
        }
        if ended[j] {
            v.active = false;
        }
        let k = live[j];
        v.keys_output(l, k);
        let bus = &mut buses[v.track as usize][at..at + k];
        v.emit_run(&l.x[..k], bus);
    }
}

/// The oscillators of a saw-and-square synth voice in [`render_synth_lanes`]: four slots,
/// each a phase increment, the PolyBLEP's increment and a weight. Slots 0, 1 and 3 are saws;
/// slot 2 is a saw or a square. Their weighted sum, in slot order, times `scale`, is the voice's
/// oscillator mix. An unused slot has no increment and no weight: it adds a zero, which changes
/// no sum (an oscillator's output is never -0, so neither is a sum of them).
#[derive(Clone, Copy)]
struct OscSlots {
    inc: [f32; 4],
    /// Slot 2's PolyBLEP increment (the others' is their phase increment).
    dt2: f32,
    w: [f32; 4],
    scale: f32,
    square: bool,
}

impl OscSlots {
    /// The slots of `s` at phase increment `inc`: the arithmetic of [`Voice::oscillators`].
    #[inline(always)]
    fn of(s: Synth, inc: f32) -> OscSlots {
        match s {
            Synth::Bass => {
                let h = inc * 0.5;
                OscSlots {
                    inc: [inc, 0.0, h, 0.0],
                    dt2: h,
                    w: [0.7, 0.0, 0.4, 0.0],
                    scale: 1.0,
                    square: true,
                }
            }
            Synth::Lead => {
                let (i2, i3) = (inc * 1.004, inc * 0.996);
                OscSlots {
                    inc: [i2, i3, inc, 0.0],
                    dt2: inc,
                    w: [1.0, 1.0, 0.5, 0.0],
                    scale: 0.4,
                    square: true,
                }
            }
            Synth::Pad => {
                let ii = [1.0f32, 1.007, 0.993, 2.003].map(|d| inc * d);
                OscSlots {
                    inc: ii,
                    dt2: ii[2],
                    w: [1.0; 4],
                    scale: 0.25,
                    square: false,
                }
            }
            Synth::Pluck => OscSlots {
                inc: [inc, 0.0, inc * 1.001, 0.0],
                dt2: inc,
                w: [0.6, 0.0, 0.4, 0.0],
                scale: 1.0,
                square: true,
            },
            // Acid (the others never come here).
            _ => OscSlots {
                inc: [inc, 0.0, 0.0, 0.0],
                dt2: 0.0,
                w: [1.0, 0.0, 0.0, 0.0],
                scale: 1.0,
                square: false,
            },
        }
    }
}

/// A saw-and-square synth's filter: its cutoff is `base + depth * m * m2`, `m` the modulation
/// envelope (the level, `by_level`, for the pad) and `m2` the modulation envelope again for
/// acid (1 for the others), and its resonance `res`. One place for [`Voice::set_synth_filter`]
/// and the lanes ([`render_synth_lanes`]), so they cannot drift apart.
#[derive(Clone, Copy)]
struct FilterShape {
    base: f32,
    depth: f32,
    by_level: bool,
    /// Acid's: the cutoff follows the modulation envelope's square.
    squared: bool,
    res: f32,
}

impl FilterShape {
    #[inline(always)]
    fn of(s: Synth, freq: f32) -> FilterShape {
        let (base, depth, res) = match s {
            Synth::Bass => (freq * 3.0, 1400.0, 0.35),
            Synth::Acid => (freq * 2.0, 3600.0, 0.86),
            Synth::Lead => (2400.0, 1800.0, 0.25),
            Synth::Pad => (900.0, 500.0, 0.15),
            _ => (freq * 1.5, 5000.0, 0.2),
        };
        FilterShape {
            base,
            depth,
            by_level: s == Synth::Pad,
            squared: s == Synth::Acid,
            res,
        }
    }
}

/// How many saw-and-square synth voices [`render_synth_lanes`] takes at once: eight where the
/// render runs eight lanes to a register (x86-64 with AVX2), four in WebAssembly (four to a
/// register: three groups of four cost less than two of eight for the dozen voices of a busy
/// pattern). A group gives the same bits as its voices one by one, so the two agree.
pub const SYNTH_LANES: usize = if cfg!(target_arch = "wasm32") { 4 } else { 8 };

/// The state of up to [`SYNTH_LANES`] synth voices side by side, one per lane (an idle lane
/// has no gain, no level and no increments: it adds zeros, which change no bus, since a bus
/// starts at +0 and a sum is -0 only of two -0s).
struct SynthLanes {
    active: [bool; SYNTH_LANES],
    /// Frames since the trigger, and when the gate closes.
    t: [u32; SYNTH_LANES],
    gate: [u32; SYNTH_LANES],
    gain: [f32; SYNTH_LANES],
    aux: [f32; SYNTH_LANES],
    aux_mul: [f32; SYNTH_LANES],
    level: [f32; SYNTH_LANES],
    /// The envelope's step, `level = es + (level - es) * em + ei`.
    es: [f32; SYNTH_LANES],
    em: [f32; SYNTH_LANES],
    ei: [f32; SYNTH_LANES],
    /// Thresholds of the rare turns, which also say the stage: an attack (`top` 1) ends at
    /// `top`, a release (`floor` 1e-5) below `floor` (infinite in neither stage, so the test
    /// vectorizes).
    top: [f32; SYNTH_LANES],
    floor: [f32; SYNTH_LANES],
    attack_ended: [bool; SYNTH_LANES],
    ended: [bool; SYNTH_LANES],
    /// The filter's coefficients (`[g, k, a1, a2, a3]`) and state.
    coef: [[f32; SYNTH_LANES]; 5],
    ic1: [f32; SYNTH_LANES],
    ic2: [f32; SYNTH_LANES],
    /// The filter's cutoff, as `Voice::set_synth_filter` computes it: `base + (depth * m) *
    /// m2`, m the modulation envelope (the level for the pad), m2 the modulation again for
    /// acid (else 1); and its resonance.
    base: [f32; SYNTH_LANES],
    depth: [f32; SYNTH_LANES],
    by_level: [bool; SYNTH_LANES],
    res: [f32; SYNTH_LANES],
    sr: [f32; SYNTH_LANES],
    /// The oscillators (see [`OscSlots`]).
    ph: [[f32; SYNTH_LANES]; 4],
    inc: [[f32; SYNTH_LANES]; 4],
    dt2: [f32; SYNTH_LANES],
    w: [[f32; SYNTH_LANES]; 4],
    scale: [f32; SYNTH_LANES],
    /// Slot 2's square and acid's clip, as masks (all ones where they apply).
    square: [u32; SYNTH_LANES],
    acid: [u32; SYNTH_LANES],
    last: [f32; SYNTH_LANES],
}

impl SynthLanes {
    const IDLE: SynthLanes = SynthLanes {
        active: [false; SYNTH_LANES],
        t: [0; SYNTH_LANES],
        gate: [0; SYNTH_LANES],
        gain: [0.0; SYNTH_LANES],
        aux: [0.0; SYNTH_LANES],
        aux_mul: [0.0; SYNTH_LANES],
        level: [0.0; SYNTH_LANES],
        es: [0.0; SYNTH_LANES],
        em: [1.0; SYNTH_LANES],
        ei: [0.0; SYNTH_LANES],
        top: [f32::INFINITY; SYNTH_LANES],
        floor: [f32::NEG_INFINITY; SYNTH_LANES],
        attack_ended: [false; SYNTH_LANES],
        ended: [false; SYNTH_LANES],
        coef: [[0.0; SYNTH_LANES]; 5],
        ic1: [0.0; SYNTH_LANES],
        ic2: [0.0; SYNTH_LANES],
        base: [0.0; SYNTH_LANES],
        depth: [0.0; SYNTH_LANES],
        by_level: [false; SYNTH_LANES],
        res: [0.0; SYNTH_LANES],
        sr: [48_000.0; SYNTH_LANES],
        ph: [[0.0; SYNTH_LANES]; 4],
        inc: [[0.0; SYNTH_LANES]; 4],
        dt2: [0.0; SYNTH_LANES],
        w: [[0.0; SYNTH_LANES]; 4],
        scale: [1.0; SYNTH_LANES],
        square: [0; SYNTH_LANES],
        acid: [0; SYNTH_LANES],
        last: [0.0; SYNTH_LANES],
    };

    /// Puts voice `v` (a sounding saw-and-square synth voice) in lane `j`.
    #[inline(always)]
    fn load(&mut self, j: usize, v: &Voice) {
        let Instrument::Synth(s) = v.instrument else {
            return;
        };
        self.active[j] = true;
        self.t[j] = v.t;
        self.gate[j] = v.gate;
        self.gain[j] = v.gain;
        self.aux[j] = v.aux;
        self.aux_mul[j] = v.aux_mul;
        self.level[j] = v.env.level;
        [self.es[j], self.em[j], self.ei[j]] = v.env.lane_step();
        self.top[j] = if v.env.in_attack() {
            1.0
        } else {
            f32::INFINITY
        };
        self.floor[j] = if v.env.in_release() {
            1e-5
        } else {
            f32::NEG_INFINITY
        };
        self.attack_ended[j] = false;
        self.ended[j] = false;
        let c = v.f1.coefficients_now();
        for (o, c) in self.coef.iter_mut().zip(c) {
            o[j] = c;
        }
        [self.ic1[j], self.ic2[j]] = v.f1.lane().1;
        let f = FilterShape::of(s, v.freq);
        (self.base[j], self.depth[j], self.res[j]) = (f.base, f.depth, f.res);
        self.by_level[j] = f.by_level;
        self.sr[j] = v.sr;
        let o = OscSlots::of(s, v.freq / v.sr);
        for i in 0..4 {
            self.ph[i][j] = v.ph[i].0;
            self.inc[i][j] = o.inc[i];
            self.w[i][j] = o.w[i];
        }
        self.dt2[j] = o.dt2;
        self.scale[j] = o.scale;
        self.square[j] = if o.square { !0 } else { 0 };
        self.acid[j] = if s == Synth::Acid { !0 } else { 0 };
        self.last[j] = v.last;
    }

    /// Puts lane `j` back into its voice `v`.
    #[inline(always)]
    fn store(&self, j: usize, v: &mut Voice) {
        v.aux = self.aux[j];
        v.env
            .set_from_lane(self.level[j], self.attack_ended[j], self.ended[j]);
        v.f1.set_coefficients(core::array::from_fn(|i| self.coef[i][j]));
        v.f1.set_state(self.ic1[j], self.ic2[j]);
        for (p, o) in v.ph.iter_mut().zip(self.ph.iter()) {
            p.0 = o[j];
        }
        v.last = self.last[j];
        v.t = self.t[j];
        v.active = self.active[j];
    }
}

/// Renders the saw-and-square synth voices `which` (indexes into `voices`, in pool order, at
/// most [`SYNTH_LANES`], each [`Voice::lanes_ready`]; any synths, any tracks) over `range` of
/// their tracks' buses, side by side in SIMD lanes: one voice's filter and envelope wait on
/// their previous frame, so a lone voice leaves the processor idle, while eight chains at once
/// cost about one. Every lane does the arithmetic of [`Voice::render`] for its voice (each
/// synth's oscillator mix as weighted slots, acid's clip chosen per lane; a voice's filter
/// moves every 32 frames of its own time, so lanes move theirs on different frames), and each
/// voice adds into its bus in pool order, so the result is the same bits as one by one.
#[cfg_attr(target_arch = "x86_64", inline(always))]
#[allow(clippy::needless_range_loop)] // lanes side by side, indexed alike
pub fn render_synth_lanes(
    voices: &mut [Voice],
    which: &[u8],
    buses: &mut [[f32; MB]],
    range: core::ops::Range<usize>,
) {
    const L: usize = SYNTH_LANES;
    let k = which.len().min(L);
    let which = &which[..k];
    let len = range.len().min(MB);
    let mut ln = SynthLanes::IDLE;
    let mut loaded = [false; L];
    for (j, &vi) in which.iter().enumerate() {
        let v = &voices[vi as usize];
        if v.active {
            ln.load(j, v);
            loaded[j] = true;
        }
    }
    // Slots no lane uses are skipped (they would add zeros), and so are the squares and the
    // clip when no lane has them.
    let used = |i: usize| ln.w[i].iter().any(|w| *w != 0.0);
    let (use1, use2, use3) = (used(1), used(2), used(3));
    let any_square = ln.square.iter().any(|m| *m != 0);
    let any_acid = ln.acid.iter().any(|m| *m != 0);
    // The PolyBLEP's reciprocals (infinite in a slot at rest: never used there).
    let mut inv = [[0.0f32; L]; 4];
    for i in 0..4 {
        let d = if i == 2 { ln.dt2 } else { ln.inc[i] };
        for j in 0..L {
            inv[i][j] = 1.0 / d[j];
        }
    }
    // Each lane's output, frame by frame (added into the buses at the end).
    let mut ys = [[0.0f32; L]; MB];
    let mut done = 0;
    while done < len {
        // What the frame-by-frame voice checks each frame (its gate and its filter's control
        // rate) happens only on these frames, so the stretch up to the next one runs without
        // checks.
        let mut n = len - done;
        let mut update = [false; L];
        let mut any = false;
        for (j, &vi) in which.iter().enumerate() {
            if !ln.active[j] {
                continue;
            }
            any = true;
            let t = ln.t[j];
            if t == ln.gate[j] {
                // The gate closes (rare): through the voice, as one by one.
                let v = &mut voices[vi as usize];
                ln.store(j, v);
                v.env.release();
                ln.load(j, v);
            }
            update[j] = t.is_multiple_of(32) && t > 0;
            n = n.min((32 - t % 32) as usize);
            if t < ln.gate[j] {
                n = n.min((ln.gate[j] - t) as usize);
            }
        }
        if !any {
            break;
        }
        // Filters moving on this frame, side by side (the same bits as `Svf::set`).
        if update.contains(&true) {
            let mut c = [[0.0f32; L]; 5];
            for j in 0..L {
                let m = if ln.by_level[j] {
                    ln.level[j]
                } else {
                    ln.aux[j]
                };
                let m2 = if ln.acid[j] != 0 { ln.aux[j] } else { 1.0 };
                let cj = Svf::coefficients(ln.base[j] + ln.depth[j] * m * m2, ln.res[j], ln.sr[j]);
                for (o, cj) in c.iter_mut().zip(cj) {
                    o[j] = cj;
                }
            }
            for (o, c) in ln.coef.iter_mut().zip(&c) {
                for j in 0..L {
                    o[j] = if update[j] { c[j] } else { o[j] };
                }
            }
        }
        // Frames each voice sounds in this stretch (fewer for one that ends in it).
        let mut frames = [0u32; L];
        for j in 0..L {
            frames[j] = if ln.active[j] { n as u32 } else { 0 };
        }
        let SynthLanes {
            active,
            gain,
            aux,
            aux_mul,
            level,
            es,
            em,
            ei,
            top,
            floor,
            attack_ended,
            ended,
            coef,
            ic1,
            ic2,
            ph,
            inc,
            dt2,
            w,
            scale,
            square,
            acid,
            ..
        } = &mut ln;
        let [_, _, a1, a2, a3] = &*coef;
        for (f, out) in ys[done..done + n].iter_mut().enumerate() {
            // Oscillators, one voice per lane, summed by slot in order.
            let o = saw_lanes(advance_lanes(&mut ph[0], &inc[0]), inc[0], inv[0]);
            let mut x = [0.0f32; L];
            for j in 0..L {
                x[j] = w[0][j] * o[j];
            }
            if use1 {
                let o = saw_lanes(advance_lanes(&mut ph[1], &inc[1]), inc[1], inv[1]);
                for j in 0..L {
                    x[j] += w[1][j] * o[j];
                }
            }
            if use2 {
                let p = advance_lanes(&mut ph[2], &inc[2]);
                let o = if any_square {
                    saw_or_square_lanes(p, *dt2, inv[2], *square)
                } else {
                    saw_lanes(p, *dt2, inv[2])
                };
                for j in 0..L {
                    x[j] += w[2][j] * o[j];
                }
            }
            if use3 {
                let o = saw_lanes(advance_lanes(&mut ph[3], &inc[3]), inc[3], inv[3]);
                for j in 0..L {
                    x[j] += w[3][j] * o[j];
                }
            }
            // Modulation and amplitude envelopes, the filter.
            let mut y = [0.0f32; L];
            for j in 0..L {
                x[j] *= scale[j];
                aux[j] *= aux_mul[j];
                level[j] = es[j] + (level[j] - es[j]) * em[j] + ei[j];
                let v3 = x[j] - ic2[j];
                let v1 = a1[j] * ic1[j] + a2[j] * v3;
                let v2 = ic2[j] + a2[j] * ic1[j] + a3[j] * v3;
                ic1[j] = 2.0 * v1 - ic1[j];
                ic2[j] = 2.0 * v2 - ic2[j];
                y[j] = v2;
            }
            if any_acid {
                for j in 0..L {
                    let c = soft_clip(y[j] * 1.5) * 0.8;
                    y[j] = pick(acid[j], c, y[j]);
                }
            }
            // An attack reaching full level, a release reaching silence (rare).
            let mut turns = [0u32; L];
            for j in 0..L {
                turns[j] = (level[j] >= top[j]) as u32 | (level[j] < floor[j]) as u32;
            }
            let turn = turns.iter().fold(0, |a, b| a | b) != 0;
            if turn {
                for (j, &vi) in which.iter().enumerate() {
                    if top[j] == 1.0 && level[j] >= 1.0 {
                        level[j] = 1.0;
                        top[j] = f32::INFINITY;
                        attack_ended[j] = true;
                        [es[j], em[j], ei[j]] = voices[vi as usize].env.decay_step();
                    }
                    if floor[j] == 1e-5 && level[j] < 1e-5 {
                        level[j] = 0.0;
                        floor[j] = f32::NEG_INFINITY;
                        ended[j] = true;
                        (es[j], em[j], ei[j]) = (0.0, 1.0, 0.0);
                    }
                }
            }
            // A voice that ended has level 0 from then on: it adds zeros.
            for j in 0..L {
                out[j] = y[j] * level[j] * gain[j];
            }
            if turn {
                for j in 0..L {
                    if ended[j] && active[j] {
                        active[j] = false;
                        frames[j] = (f + 1) as u32;
                    }
                }
            }
        }
        for j in 0..L {
            if frames[j] > 0 {
                ln.last[j] = ys[done + frames[j] as usize - 1][j];
            }
        }
        for j in 0..L {
            ln.t[j] += frames[j];
        }
        done += n;
    }
    // Into the buses, each lane into its voice's track's, in pool order (so each bus adds its
    // voices in the order one by one would), eight frames at a time where it can
    // (`add_lanes`); and the lanes back into their voices.
    let mut into = [(0usize, 0usize); L];
    let mut m = 0;
    for (j, &vi) in which.iter().enumerate() {
        if loaded[j] {
            let v = &mut voices[vi as usize];
            into[m] = (j, v.track as usize);
            m += 1;
            ln.store(j, v);
        }
    }
    add_lanes(&ys[..len], &into[..m], buses, range.start);
}

/// Shared, read-only sample data a sample voice plays from.
pub struct SampleData<'a> {
    pub pcm: &'a [f32],
    /// Ratio of the sample's rate to the engine's.
    pub rate_ratio: f64,
}

/// One sounding note. Plain data, so a pool of them is allocated once.
#[derive(Clone, Copy, Debug)]
pub struct Voice {
    pub active: bool,
    pub track: u8,
    pub instrument: Instrument,
    /// Trigger order, for stealing the oldest.
    pub age: u64,
    /// Frames since the trigger.
    t: u32,
    /// Frames until the gate closes (synths release then).
    gate: u32,
    sr: f32,
    freq: f32,
    gain: f32,
    ph: [Phase; 8],
    noise: Noise,
    f1: Svf,
    f2: Svf,
    amp: f32,
    amp_mul: f32,
    aux: f32,
    aux_mul: f32,
    env: Adsr,
    /// Sample playback position (frames of the source).
    pos: f64,
    /// Remainder of a stolen voice's last output, faded out to avoid a click.
    declick: f32,
    last: f32,
    /// Frame counts fixed at the trigger (kick click length, shortest and longest drum).
    click_frames: u32,
    min_frames: u32,
    max_frames: u32,
    /// Sampled instruments' state.
    pub smp: SamplerState,
}

impl Voice {
    pub const IDLE: Voice = Voice {
        active: false,
        track: 0,
        instrument: Instrument::Drum(Drum::Kick),
        age: 0,
        t: 0,
        gate: 0,
        sr: 48_000.0,
        freq: 0.0,
        gain: 0.0,
        ph: [Phase(0.0); 8],
        noise: Noise(1),
        f1: Svf::ZERO,
        f2: Svf::ZERO,
        amp: 0.0,
        amp_mul: 0.0,
        aux: 0.0,
        aux_mul: 0.0,
        env: Adsr::ZERO,
        pos: 0.0,
        declick: 0.0,
        last: 0.0,
        click_frames: 0,
        min_frames: 0,
        max_frames: 0,
        smp: SamplerState::IDLE,
    };

    /// Starts a note. `pitch` is in semitones relative to the instrument's base note,
    /// `gate_frames` how long a synth note is held, `seed` the noise seed.
    #[allow(clippy::too_many_arguments)]
    pub fn trigger(
        &mut self,
        instrument: Instrument,
        track: u8,
        pitch: f32,
        gain: f32,
        gate_frames: u32,
        sr: f32,
        age: u64,
        seed: u32,
    ) {
        let declick = if self.active { self.last } else { 0.0 };
        *self = Voice::IDLE;
        self.active = true;
        self.track = track;
        self.instrument = instrument;
        self.age = age;
        self.gate = gate_frames.max(1);
        self.sr = sr;
        self.gain = gain;
        self.noise = Noise::new(seed);
        self.declick = declick;
        self.click_frames = (0.003 * sr) as u32;
        self.min_frames = (0.005 * sr) as u32;
        self.max_frames = (4.0 * sr) as u32;
        let ratio = semitones(pitch);
        match instrument {
            Instrument::Drum(d) => self.start_drum(d, ratio),
            Instrument::Synth(s) => {
                self.freq = note_hz(instrument.base_note() + pitch);
                self.start_synth(s);
            }
            Instrument::Sample(_) => {
                self.freq = ratio; // playback speed
                self.env = Adsr::start(0.002, 0.0, 1.0, 0.03, sr);
            }
            // Started by `trigger_sampled`; without data it stays silent.
            Instrument::Sampled(_) => self.active = false,
        }
    }

    /// Starts a note of a sampled instrument (`start` from [`sampler::note_start`]).
    #[allow(clippy::too_many_arguments)]
    pub fn trigger_sampled(
        &mut self,
        slot: u8,
        inst: &SampledInstrument,
        start: &NoteStart,
        track: u8,
        velocity_gain: f32,
        gate_frames: u32,
        sr: f32,
        age: u64,
    ) {
        *self = Voice::IDLE;
        self.active = true;
        self.track = track;
        self.instrument = Instrument::Sampled(slot);
        self.age = age;
        self.gate = gate_frames.max(1);
        self.sr = sr;
        self.gain = velocity_gain * start.gain;
        // Much faster than recorded: read the half-rate copy at half the speed.
        let half = start.inc > sampler::FAST_RATIO;
        self.smp = SamplerState {
            zone: start.zone,
            inc: if half { start.inc * 0.5 } else { start.inc },
            half,
            env: sampler::Envelope::start(&inst.envelope, sr),
            one_shot: inst.one_shot,
            choke: inst.choke,
            ..SamplerState::IDLE
        };
    }

    /// Whether a synth's voices can run side by side in [`render_synth_lanes`].
    pub fn lanes_synth(i: Instrument) -> bool {
        matches!(
            i,
            Instrument::Synth(Synth::Bass | Synth::Acid | Synth::Lead | Synth::Pad | Synth::Pluck)
        )
    }

    /// The order in which [`render_synth_lanes`] groups its voices: by what their oscillators
    /// need (see [`OscSlots`]), the costliest first: the pad (four saws), the lead (three
    /// oscillators, one a square), acid (one saw and the clip), then the bass and the pluck
    /// (two oscillators, one a square).
    pub fn lanes_rank(&self) -> u8 {
        match self.instrument {
            Instrument::Synth(Synth::Pad) => 0,
            Instrument::Synth(Synth::Lead) => 1,
            Instrument::Synth(Synth::Acid) => 2,
            Instrument::Synth(Synth::Bass) => 3,
            _ => 4,
        }
    }

    /// Whether this voice may join others in [`keys_lanes`]: the FM keys or the organ,
    /// sounding.
    pub fn keys_lanes_ready(&self) -> bool {
        self.active
            && !self.env.is_done()
            && matches!(
                self.instrument,
                Instrument::Synth(Synth::Keys | Synth::Organ)
            )
    }

    /// The output of the FM keys or the organ over the first `n` frames of `l` (their phases,
    /// modulation and envelope, from [`keys_lanes`]), gain applied, into `l.x`: the arithmetic
    /// of `Voice::synth_source` and `Voice::unfiltered_envelope`, several frames at once.
    #[inline(always)]
    fn keys_output(&self, l: &mut DrumLane, n: usize) {
        let n = n.min(MB);
        let g = self.gain;
        let DrumLane {
            amp: env,
            aux,
            p0,
            p1,
            p2,
            p3,
            p4,
            x,
            ..
        } = l;
        if self.instrument == Instrument::Synth(Synth::Organ) {
            for k in 0..n {
                x[k] = organ_drawbars([p0[k], p1[k], p2[k], p3[k], p4[k]]) * env[k] * g;
            }
        } else {
            for k in 0..n {
                x[k] = keys_fm(p0[k], p1[k], p2[k], aux[k]) * env[k] * g;
            }
        }
    }

    /// Whether this voice may join others in [`render_synth_lanes`] (no cut voice's remainder
    /// fading in it).
    pub fn lanes_ready(&self) -> bool {
        self.active && self.declick == 0.0 && Voice::lanes_synth(self.instrument)
    }

    /// Whether a voice of `i` renders in passes in [`render_drums`]: every drum but the riser
    /// (whose filter moves while it sounds).
    pub fn drum_passes(i: Instrument) -> bool {
        matches!(i, Instrument::Drum(d) if d != Drum::Riser)
    }

    /// Whether this drum voice's chains may run side by side with others in
    /// [`drum_chain_lanes`]: the drums whose chains are a tone's phase, noise or both (not
    /// the hats' cluster of six oscillators, already side by side in one voice, the clap's
    /// bursts, the cowbell's and the blip's band-limited squares, which are cheap one by one,
    /// their corrections computed only near an edge, but not side by side, where every lane
    /// computes them every frame). With the hats too, the lanes cost more than they saved.
    fn chains_in_lanes(&self) -> bool {
        matches!(
            self.instrument,
            Instrument::Drum(
                Drum::Kick
                    | Drum::Kick808
                    | Drum::Snare
                    | Drum::TomLow
                    | Drum::TomMid
                    | Drum::TomHigh
                    | Drum::Rim
                    | Drum::Shaker
                    | Drum::Clave
                    | Drum::Zap
            )
        )
    }

    /// The drum's filter at `stage` (0 the first, 1 the second it feeds) and which of its
    /// outputs the drum uses (0 low, 1 band, 2 high), as [`SvfBank::load`] takes them.
    fn drum_filter(&mut self, stage: usize) -> Option<(&mut Svf, u8)> {
        let Instrument::Drum(d) = self.instrument else {
            return None;
        };
        let out = match (d, stage) {
            (Drum::Snare, 0) | (Drum::Clap, 0 | 1) | (Drum::Rim | Drum::Cowbell, 0) => 1,
            (Drum::HatClosed | Drum::HatOpen, 0) => 1,
            (Drum::HatClosed | Drum::HatOpen, 1) | (Drum::Shaker, 0) => 2,
            (Drum::Snare, 1) => 0,
            _ => return None,
        };
        Some((
            if stage == 0 {
                &mut self.f1
            } else {
                &mut self.f2
            },
            out,
        ))
    }

    /// The first pass of [`render_drums`]: the drum's frame-by-frame chains over `n` frames
    /// (at most [`MB`]), as [`Voice::next_drum`] steps them, into `l`; finds the frame it ends
    /// on. The filters' input past that frame is zero.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    fn drum_source(&mut self, l: &mut DrumLane, n: usize, clap: &[f32]) {
        macro_rules! each {
            ($d:expr, [$($v:ident),*]) => {
                match $d {
                    $(Drum::$v => self.drum_chains(Drum::$v, l, n, clap),)*
                }
            };
        }
        if let Instrument::Drum(d) = self.instrument {
            each!(
                d,
                [
                    Kick, Kick808, Snare, Clap, HatClosed, HatOpen, TomLow, TomMid, TomHigh, Rim,
                    Cowbell, Shaker, Clave, Zap, Blip, Riser
                ]
            );
        }
    }

    #[inline(always)]
    fn drum_chains(&mut self, d: Drum, l: &mut DrumLane, n: usize, clap: &[f32]) {
        let n = n.min(MB);
        let mut v = *self;
        let sr = v.sr;
        let mut live = n;
        // The hat's increments do not move: computed once, not every frame.
        let hat = Voice::hat_incs(v.freq, sr);
        for f in 0..n {
            let amp = v.amp;
            v.amp *= v.amp_mul;
            let aux = v.aux;
            v.aux *= v.aux_mul;
            l.amp[f] = amp;
            l.aux[f] = aux;
            let t = v.t + f as u32;
            match d {
                Drum::Kick | Drum::Kick808 => {
                    let sweep = if d == Drum::Kick { 3.2 } else { 2.2 };
                    let fr = v.freq * (1.0 + sweep * aux);
                    l.p0[f] = v.ph[0].advance(fr / sr);
                    l.x[f] = if t < v.click_frames {
                        v.noise.sample() * 0.25 * (1.0 - t as f32 / v.click_frames as f32)
                    } else {
                        0.0
                    };
                }
                Drum::Snare => {
                    let fr = v.freq * (1.0 + 0.3 * aux);
                    l.p0[f] = v.ph[0].advance(fr / sr);
                    l.p1[f] = v.ph[1].advance(fr * 1.78 / sr);
                    l.x[f] = v.noise.sample();
                }
                Drum::Clap => {
                    // The burst's curve from the table (the same values; past its end, 0).
                    let burst = clap.get(t as usize).copied().unwrap_or(0.0);
                    l.p0[f] = burst.max(amp * 0.7);
                    l.x[f] = v.noise.sample();
                }
                Drum::HatClosed | Drum::HatOpen => l.x[f] = v.hat_cluster_at(&hat) * 0.2,
                Drum::TomLow | Drum::TomMid | Drum::TomHigh => {
                    let fr = v.freq * (1.0 + 0.6 * aux);
                    l.p0[f] = v.ph[0].advance(fr / sr);
                    l.x[f] = v.noise.sample();
                }
                Drum::Rim => {
                    l.p0[f] = v.ph[0].advance(v.freq / sr);
                    l.x[f] = v.noise.sample();
                }
                // The squares after the loop, several frames at once.
                Drum::Cowbell => {
                    l.p0[f] = v.ph[0].advance(v.freq / sr);
                    l.p1[f] = v.ph[1].advance(v.freq * 1.4395 / sr);
                }
                Drum::Shaker => l.x[f] = v.noise.sample(),
                Drum::Clave => l.p0[f] = v.ph[0].advance(v.freq / sr),
                Drum::Zap => {
                    let fr = v.freq * (1.0 + 24.0 * aux * aux);
                    l.p0[f] = v.ph[0].advance(fr / sr);
                }
                Drum::Blip => l.p0[f] = v.ph[0].advance(v.freq / sr),
                Drum::Riser => {}
            }
            // As `next_drum`: the frame is still heard.
            if (amp < 1e-3 && aux < 1e-3 && t > v.min_frames) || t > v.max_frames {
                v.active = false;
                live = f + 1;
                break;
            }
        }
        // The cowbell's and the blip's band-limited squares (as `next_drum` computes them).
        match d {
            Drum::Cowbell => {
                let (i0, i1) = (v.freq / sr, v.freq * 1.4395 / sr);
                let mut s1 = [0.0f32; MB];
                squares(&l.p0[..live], i0, &mut l.x[..live]);
                squares(&l.p1[..live], i1, &mut s1[..live]);
                for (x, s) in l.x[..live].iter_mut().zip(&s1[..live]) {
                    *x = (*x + s) * 0.4;
                }
            }
            Drum::Blip => squares(&l.p0[..live], v.freq / sr, &mut l.x[..live]),
            _ => {}
        }
        l.x[live..n].fill(0.0);
        l.live = live;
        // `t` moves on in `drum_finish`, with the frames heard.
        *self = v;
    }

    /// The last pass of [`render_drums`]: the drum's output from its chains and filtered
    /// signal in `l` (the formulas of [`Voice::next_drum`], frames side by side), into `out`.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    fn drum_finish(&mut self, l: &mut DrumLane, out: &mut [f32]) {
        let Instrument::Drum(d) = self.instrument else {
            return;
        };
        let n = l.live;
        let g = self.gain;
        let DrumLane {
            amp,
            aux,
            p0,
            p1,
            x,
            ..
        } = l;
        let (amp, aux, p0, p1, x) = (&amp[..n], &aux[..n], &p0[..n], &p1[..n], &mut x[..n]);
        macro_rules! frames {
            (|$a:ident, $u:ident, $q0:ident, $q1:ident, $x:ident| $y:expr) => {
                for i in 0..n {
                    let ($a, $u, $q0, $q1, $x) = (amp[i], aux[i], p0[i], p1[i], x[i]);
                    x[i] = $y * g;
                }
            };
        }
        match d {
            Drum::Kick => frames!(|a, _u, q, _q1, c| sine_select(q) * a + c),
            Drum::Kick808 => {
                frames!(|a, _u, q, _q1, c| soft_clip((sine_select(q) * a + c) * 1.6) * 0.8)
            }
            Drum::Snare => frames!(|a, u, q0, q1, nz| {
                let tone = sine_select(q0) * 0.6 + sine_select(q1) * 0.3;
                tone * u + nz * a * 1.6
            }),
            Drum::Clap => frames!(|_a, _u, env, _q1, b| b * env * 3.0),
            Drum::HatClosed | Drum::HatOpen => frames!(|a, _u, _q0, _q1, h| h * a * 3.2),
            Drum::TomLow | Drum::TomMid | Drum::TomHigh => {
                frames!(|a, u, q, _q1, nz| sine_select(q) * a + nz * 0.05 * u)
            }
            Drum::Rim => {
                frames!(|a, u, q, _q1, nz| (sine_select(q) * 0.6 + nz * 0.8) * a + nz * u * 0.5)
            }
            Drum::Cowbell => frames!(|a, u, _q0, _q1, b| b * (a * 0.75 + u * 0.25) * 1.5),
            Drum::Shaker => frames!(|a, u, _q0, _q1, h| h * (1.0 - u) * a * 1.2),
            Drum::Clave | Drum::Zap => frames!(|a, _u, q, _q1, _x| sine_select(q) * a),
            Drum::Blip => frames!(|a, _u, _q0, _q1, sq| sq * a * 0.5),
            Drum::Riser => {}
        }
        self.emit_run(x, &mut out[..n]);
    }

    /// The last sample this voice produced.
    pub fn last_output(&self) -> f32 {
        self.last
    }

    /// Starts the voice with the remainder of a cut voice's output, faded out quickly.
    pub fn set_declick(&mut self, declick: f32) {
        self.declick = declick;
    }

    /// Fades this voice out over [`sampler::FADE_SECONDS`] (it was stolen or choked), so it
    /// ends without a click.
    pub fn fade_out(&mut self) {
        let step = 1.0 / (sampler::FADE_SECONDS * self.sr).max(1.0);
        if self.smp.fade_step == 0.0 || self.smp.fade_step < step {
            self.smp.fade_step = step;
        }
    }

    fn start_drum(&mut self, d: Drum, ratio: f32) {
        let sr = self.sr;
        let (freq, amp_tau, aux_tau) = match d {
            Drum::Kick => (52.0, 0.15, 0.035),
            Drum::Kick808 => (46.0, 0.4, 0.05),
            Drum::Snare => (185.0, 0.07, 0.1),
            Drum::Clap => (0.0, 0.13, 0.0),
            Drum::HatClosed => (0.0, 0.045, 0.0),
            Drum::HatOpen => (0.0, 0.3, 0.0),
            Drum::TomLow => (95.0, 0.28, 0.06),
            Drum::TomMid => (140.0, 0.24, 0.05),
            Drum::TomHigh => (200.0, 0.2, 0.04),
            Drum::Rim => (1700.0, 0.012, 0.004),
            Drum::Cowbell => (587.0, 0.14, 0.012),
            Drum::Shaker => (0.0, 0.07, 0.006),
            Drum::Clave => (2500.0, 0.03, 0.0),
            Drum::Zap => (90.0, 0.12, 0.035),
            Drum::Blip => (880.0, 0.035, 0.0),
            Drum::Riser => (0.0, 0.3, 0.25),
        };
        // Unpitched voices (0 Hz in the table) keep the pitch ratio in `freq` instead.
        self.freq = if freq == 0.0 { ratio } else { freq * ratio };
        self.amp = 1.0;
        self.amp_mul = decay_coeff(amp_tau, sr);
        self.aux = 1.0;
        self.aux_mul = decay_coeff(aux_tau, sr);
        match d {
            Drum::Snare => {
                self.f1.set(3200.0 * ratio, 0.05, sr);
                self.f2.set(9000.0 * ratio, 0.0, sr);
            }
            Drum::Clap => {
                self.f1.set(1200.0 * ratio, 0.55, sr);
                self.f2.set(1400.0 * ratio, 0.3, sr);
            }
            Drum::HatClosed | Drum::HatOpen => {
                self.f1.set(9000.0 * ratio, 0.3, sr);
                self.f2.set(6500.0 * ratio, 0.0, sr);
            }
            Drum::Rim => self.f1.set(1700.0 * ratio, 0.7, sr),
            Drum::Cowbell => self.f1.set(800.0 * ratio, 0.6, sr),
            Drum::Shaker => self.f1.set(6000.0 * ratio, 0.2, sr),
            Drum::Riser => self.f1.set(300.0 * ratio, 0.6, sr),
            _ => {}
        }
    }

    fn start_synth(&mut self, s: Synth) {
        let sr = self.sr;
        // (attack, decay, sustain, release), filter cutoff start/end and resonance.
        let (a, d, sus, r) = match s {
            Synth::Bass => (0.003, 0.25, 0.7, 0.06),
            Synth::SubBass => (0.005, 0.3, 0.9, 0.08),
            Synth::Acid => (0.002, 0.2, 0.5, 0.05),
            Synth::Lead => (0.006, 0.15, 0.8, 0.15),
            Synth::Pad => (0.35, 0.6, 0.8, 0.9),
            Synth::Pluck => (0.002, 0.35, 0.0, 0.2),
            Synth::Keys => (0.003, 1.4, 0.25, 0.25),
            Synth::Organ => (0.005, 0.05, 1.0, 0.05),
        };
        self.env = Adsr::start(a, d, sus, r, sr);
        // aux is the filter/modulation envelope, decaying from 1.
        let aux_tau = match s {
            Synth::Bass => 0.12,
            Synth::Acid => 0.11,
            Synth::Pluck => 0.12,
            Synth::Keys => 0.35,
            Synth::Lead => 0.25,
            _ => 1.0,
        };
        self.aux = 1.0;
        self.aux_mul = decay_coeff(aux_tau, sr);
        self.set_synth_filter(s);
    }

    fn set_synth_filter(&mut self, s: Synth) {
        let (cut, res) = match s {
            Synth::SubBass => (self.freq * 4.0, 0.0),
            Synth::Keys | Synth::Organ => (6000.0, 0.0),
            _ => {
                let f = FilterShape::of(s, self.freq);
                let m = if f.by_level { self.env.level } else { self.aux };
                let m2 = if f.squared { self.aux } else { 1.0 };
                (f.base + f.depth * m * m2, f.res)
            }
        };
        self.f1.set(cut, res, self.sr);
    }

    /// Closes the gate now (a choke, or a note cut short).
    pub fn choke(&mut self) {
        if let Instrument::Sampled(_) = self.instrument {
            self.fade_out();
            return;
        }
        self.gate = self.t.min(self.gate);
        self.amp_mul = self.amp_mul.min(decay_coeff(0.004, self.sr));
        self.env.release();
    }

    /// Adds this voice's output for `out.len()` frames into `out`.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn render(&mut self, out: &mut [f32], sample: Option<&SampleData<'_>>) {
        // Dispatch once per block, into a loop compiled for that one instrument.
        macro_rules! each {
            ($value:expr, $ty:ident, $next:ident, [$($v:ident),*]) => {
                match $value {
                    $($ty::$v => self.run(out, |v| v.$next($ty::$v)),)*
                }
            };
        }
        match self.instrument {
            Instrument::Drum(d) => each!(
                d,
                Drum,
                next_drum,
                [
                    Kick, Kick808, Snare, Clap, HatClosed, HatOpen, TomLow, TomMid, TomHigh, Rim,
                    Cowbell, Shaker, Clave, Zap, Blip, Riser
                ]
            ),
            Instrument::Synth(s) => match s {
                Synth::Bass => self.render_synth(out, Synth::Bass),
                Synth::SubBass => self.render_synth(out, Synth::SubBass),
                Synth::Acid => self.render_synth(out, Synth::Acid),
                Synth::Lead => self.render_synth(out, Synth::Lead),
                Synth::Pad => self.render_synth(out, Synth::Pad),
                Synth::Pluck => self.render_synth(out, Synth::Pluck),
                Synth::Keys => self.render_synth(out, Synth::Keys),
                Synth::Organ => self.render_synth(out, Synth::Organ),
            },
            Instrument::Sample(_) => self.run(out, |v| v.next_sample(sample)),
            // Rendered by `render_sampled`.
            Instrument::Sampled(_) => {}
        }
    }

    /// Adds this sampled-instrument voice's output into `out`. Without its instrument (not
    /// loaded, or unloaded since) the voice ends silently.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn render_sampled(
        &mut self,
        out: &mut [f32],
        inst: Option<(&SampledInstrument, &[HalfZone])>,
        kernel: &Kernel,
    ) {
        let zi = self.smp.zone as usize;
        let zone = match inst {
            Some((_, halves)) if self.smp.half => halves.get(zi).map(HalfZone::source),
            Some((i, _)) => i.zones.get(zi).map(|z| z.source()),
            None => None,
        };
        let Some(zone) = zone.filter(|z| z.pcm.len() >= 2) else {
            self.active = false;
            return;
        };
        let mut src = [0.0f32; crate::engine::MAX_BLOCK];
        let mut done = 0;
        while done < out.len() {
            let n = (out.len() - done).min(src.len());
            let made = sampler::resample(&mut self.smp, &zone, kernel, &mut src[..n]);
            let mut v = *self;
            let dst = &mut out[done..done + made];
            let mut i = 0;
            while i < made {
                // The usual case, a stretch with nothing to watch but the envelope's own stage:
                // up to the gate's frame, no declick, no fade (the same samples as below).
                if v.declick == 0.0 && v.smp.fade_step == 0.0 && v.t != v.gate {
                    let end = if v.t < v.gate && !v.smp.one_shot {
                        made.min(i + (v.gate - v.t) as usize)
                    } else {
                        made
                    };
                    let k = v
                        .smp
                        .env
                        .run(&src[i..end], v.gain, &mut dst[i..end], &mut v.last);
                    if k > 0 {
                        v.t += k as u32;
                        i += k;
                        if v.smp.env.is_done() {
                            v.active = false;
                            break;
                        }
                        continue;
                    }
                }
                let (o, x) = (&mut dst[i], &src[i]);
                i += 1;
                if v.t == v.gate && !v.smp.one_shot {
                    v.smp.env.release();
                }
                let env = v.smp.env.tick();
                let mut y = x * env * v.gain;
                if v.declick != 0.0 {
                    y += v.declick;
                    v.declick *= 0.96;
                    if v.declick.abs() < 1e-6 {
                        v.declick = 0.0;
                    }
                }
                if v.smp.fade_step != 0.0 {
                    v.smp.fade -= v.smp.fade_step;
                    if v.smp.fade <= 0.0 {
                        v.smp.fade = 0.0;
                        v.active = false;
                    }
                    y *= v.smp.fade;
                }
                if v.smp.env.is_done() {
                    v.active = false;
                }
                v.last = y;
                *o += y;
                v.t += 1;
                if !v.active {
                    break;
                }
            }
            let ended = made < n;
            *self = v;
            if !self.active || ended {
                self.active = false;
                return;
            }
            done += n;
        }
    }

    /// A synth voice over `out`. The sine-based ones (FM keys, organ, sub bass) go in two
    /// passes a stretch at a time: first their oscillators (the signal before the filter and
    /// envelopes), whose frames do not depend on each other once the phases are known, so the
    /// sines are computed several frames at once in SIMD lanes; then, frame by frame, all that
    /// does (gate, filter, envelopes). The others compute their saws and squares frame by frame
    /// here (a voice alone, or one with a cut voice's remainder fading in it); most of the
    /// time they sound in [`render_synth_lanes`] instead, with the same bits.
    /// Each frame's arithmetic is the same either way, so the output is the same bits.
    #[inline(always)]
    fn render_synth(&mut self, out: &mut [f32], s: Synth) {
        let two_pass = matches!(s, Synth::Keys | Synth::Organ | Synth::SubBass);
        let mut done = 0;
        while done < out.len() && self.active {
            let n = (out.len() - done).min(crate::engine::MAX_BLOCK);
            let mut src = [0.0f32; crate::engine::MAX_BLOCK];
            if two_pass {
                self.synth_source(s, &mut src[..n]);
            }
            if matches!(s, Synth::Keys | Synth::Organ) {
                // No filter: the envelope frame by frame (its own chain), then the output of
                // several frames at once.
                let src = &mut src[..n];
                let live = self.unfiltered_envelope(src);
                self.emit_run(&src[..live], &mut out[done..done + live]);
                done += n;
                continue;
            }
            // As `run` (written out: a closure would not be inlined here; the frame's end is
            // the same `emit`).
            let mut v = *self;
            for (o, x) in out[done..done + n].iter_mut().zip(src.iter()) {
                if !v.active {
                    break;
                }
                let x = if two_pass { *x } else { v.oscillators(s) };
                let y = v.next_synth(s, x) * v.gain;
                v.emit(y, o);
            }
            *self = v;
            done += n;
        }
    }

    /// What `next_synth` does for the FM keys and the organ (gate, modulation and amplitude
    /// envelopes; their filter is never heard, so it is not moved), over the oscillators' output
    /// in `x`, which becomes the voice's output (gain applied). Returns the frames it sounds.
    #[inline(always)]
    fn unfiltered_envelope(&mut self, x: &mut [f32]) -> usize {
        let n = x.len().min(MB);
        let mut env = [0.0f32; MB];
        let mut v = *self;
        // Up to the gate's frame, then from it on, released (frame by frame, the release comes
        // before that frame's step).
        let gate = (v.gate.checked_sub(v.t).map_or(n, |g| g as usize)).min(n);
        let mut live = v.env.tick_run(&mut env[..gate]);
        if gate < n && !v.env.is_done() {
            v.env.release();
            live += v.env.tick_run(&mut env[gate..n]);
        }
        if v.env.is_done() {
            v.active = false;
        }
        for _ in 0..live {
            v.aux *= v.aux_mul;
        }
        // `t` moves on in `emit_run`, with the frames heard.
        *self = v;
        let g = self.gain;
        for (x, e) in x[..live].iter_mut().zip(&env[..live]) {
            *x = *x * e * g;
        }
        live
    }

    /// Frames `y` (gain applied) into `out`, as [`Voice::emit`] frame by frame: a plain sum
    /// when there is no de-click to fade.
    #[inline(always)]
    fn emit_run(&mut self, y: &[f32], out: &mut [f32]) {
        if self.declick == 0.0 {
            for (o, y) in out.iter_mut().zip(y) {
                *o += y;
            }
            if let Some(y) = y.last() {
                self.last = *y;
            }
            self.t += y.len() as u32;
        } else {
            for (o, y) in out.iter_mut().zip(y) {
                self.emit(*y, o);
            }
        }
    }

    /// One frame of the saw-and-square synths' oscillators.
    #[inline(always)]
    fn oscillators(&mut self, s: Synth) -> f32 {
        let inc = self.freq / self.sr;
        match s {
            Synth::Bass => {
                let a = saw(self.ph[0].advance(inc), inc);
                // Phase 2, as in lanes (`OscSlots`: slot 2 is the one that may be a square).
                let sub = square(self.ph[2].advance(inc * 0.5), inc * 0.5);
                a * 0.7 + sub * 0.4
            }
            Synth::Acid => saw(self.ph[0].advance(inc), inc),
            Synth::Lead => {
                let i2 = inc * 1.004;
                let i3 = inc * 0.996;
                let m = saw(self.ph[0].advance(i2), i2)
                    + saw(self.ph[1].advance(i3), i3)
                    + 0.5 * square(self.ph[2].advance(inc), inc);
                m * 0.4
            }
            Synth::Pad => {
                let mut m = 0.0;
                for (i, d) in [1.0f32, 1.007, 0.993, 2.003].iter().enumerate() {
                    let ii = inc * d;
                    m += saw(self.ph[i].advance(ii), ii);
                }
                m * 0.25
            }
            Synth::Pluck => {
                saw(self.ph[0].advance(inc), inc) * 0.6
                    + square(self.ph[2].advance(inc * 1.001), inc) * 0.4
            }
            Synth::Keys | Synth::Organ | Synth::SubBass => 0.0,
        }
    }

    /// The oscillators of the sine-based synth `s` for `x.len()` frames (at most `MAX_BLOCK`),
    /// into `x`; advances the phases. The phases are stepped first, every oscillator's in one
    /// loop (independent chains, so they overlap); then the sines, frames side by side.
    #[inline(always)]
    fn synth_source(&mut self, s: Synth, x: &mut [f32]) {
        const MB: usize = crate::engine::MAX_BLOCK;
        let n = x.len();
        let inc = self.freq / self.sr;
        match s {
            Synth::SubBass => {
                let mut p0 = [0.0f32; MB];
                let p0 = &mut p0[..n];
                for p in p0.iter_mut() {
                    *p = self.ph[0].advance(inc);
                }
                for (x, p) in x.iter_mut().zip(p0.iter()) {
                    *x = sine_select(*p) + 0.15 * sine_select(2.0 * p);
                }
            }
            Synth::Keys => {
                // Two-operator FM: a sine modulating a sine, the index falling after the strike
                // (with `aux`, the modulation envelope: its values here are the ones the
                // frame-by-frame pass steps through).
                let mut p = [[0.0f32; MB]; 3];
                let mut aux = [0.0f32; MB];
                let [p0, p1, p2] = &mut p;
                let (mut a, mul) = (self.aux, self.aux_mul);
                let (mut q0, mut q1, mut q2) = (self.ph[0], self.ph[1], self.ph[2]);
                for k in 0..n {
                    p1[k] = q1.advance(inc);
                    p0[k] = q0.advance(inc);
                    p2[k] = q2.advance(inc * 4.0);
                    aux[k] = a;
                    a *= mul;
                }
                (self.ph[0], self.ph[1], self.ph[2]) = (q0, q1, q2);
                for (k, x) in x.iter_mut().enumerate() {
                    *x = keys_fm(p0[k], p1[k], p2[k], aux[k]);
                }
            }
            Synth::Organ => {
                let mut p = [[0.0f32; MB]; 5];
                let ii: [f32; 5] = core::array::from_fn(|i| inc * ORGAN[i].0);
                let mut q: [Phase; 5] = core::array::from_fn(|i| self.ph[i]);
                #[allow(clippy::needless_range_loop)] // five chains side by side
                for k in 0..n {
                    for i in 0..5 {
                        p[i][k] = q[i].advance(ii[i]);
                    }
                }
                self.ph[..5].copy_from_slice(&q);
                for (k, x) in x.iter_mut().enumerate() {
                    *x = organ_drawbars([p[0][k], p[1][k], p[2][k], p[3][k], p[4][k]]);
                }
            }
            _ => {}
        }
    }

    /// One frame's output `y` (gain applied) into `o`, with what is left of a de-click fade.
    #[inline(always)]
    fn emit(&mut self, mut y: f32, o: &mut f32) {
        if self.declick != 0.0 {
            y += self.declick;
            self.declick *= 0.96;
            if self.declick.abs() < 1e-6 {
                self.declick = 0.0;
            }
        }
        self.last = y;
        *o += y;
        self.t += 1;
    }

    #[inline(always)]
    fn run(&mut self, out: &mut [f32], mut next: impl FnMut(&mut Voice) -> f32) {
        // Work on a local copy for the block, so the state can live in registers rather than
        // being loaded and stored through `self` every sample.
        let mut v = *self;
        for o in out.iter_mut() {
            if !v.active {
                break;
            }
            let y = next(&mut v) * v.gain;
            v.emit(y, o);
        }
        *self = v;
    }

    /// One frame of the hats' six detuned squares (the classic metallic cluster), summed. They
    /// go straight into a 6.5-9 kHz band, so plain squares do: band-limiting them changes
    /// nothing audible. Side by side in lanes (two of eight idle); the sum of the six ±1s comes
    /// from how many are +1: a small whole number, exact in any order (+0.0 for none, as a sum
    /// gives).
    #[inline(always)]
    fn hat_cluster(&mut self) -> f32 {
        self.hat_cluster_at(&Voice::hat_incs(self.freq, self.sr))
    }

    /// The hat's six squares' phase increments (and two at rest).
    #[inline(always)]
    fn hat_incs(freq: f32, sr: f32) -> [f32; 8] {
        const R: [f32; 8] = [1.0, 1.4471, 1.6170, 1.9265, 2.5028, 2.6637, 0.0, 0.0];
        let base = 330.0 * freq / sr;
        core::array::from_fn(|i| base * R[i])
    }

    /// [`Voice::hat_cluster`] with its increments given.
    #[inline(always)]
    fn hat_cluster_at(&mut self, inc: &[f32; 8]) -> f32 {
        let mut ph: [f32; 8] = core::array::from_fn(|i| self.ph[i].0);
        let p = advance_lanes(&mut ph, inc);
        for (q, p) in self.ph.iter_mut().zip(ph) {
            q.0 = p;
        }
        let mut up = 0i32;
        for q in &p[..6] {
            up += (*q < 0.5) as i32;
        }
        (2 * up - 6) as f32
    }

    #[inline(always)]
    fn next_drum(&mut self, d: Drum) -> f32 {
        let sr = self.sr;
        let amp = self.amp;
        self.amp *= self.amp_mul;
        let aux = self.aux;
        self.aux *= self.aux_mul;
        let t = self.t;
        let y = match d {
            Drum::Kick | Drum::Kick808 => {
                // A sine falling from a few times its pitch, plus a short click.
                let sweep = if d == Drum::Kick { 3.2 } else { 2.2 };
                let f = self.freq * (1.0 + sweep * aux);
                let s = sine(self.ph[0].advance(f / sr));
                let click = if t < self.click_frames {
                    self.noise.sample() * 0.25 * (1.0 - t as f32 / self.click_frames as f32)
                } else {
                    0.0
                };
                let body = s * amp + click;
                if d == Drum::Kick808 {
                    soft_clip(body * 1.6) * 0.8
                } else {
                    body
                }
            }
            Drum::Snare => {
                let f = self.freq * (1.0 + 0.3 * aux);
                let tone = sine(self.ph[0].advance(f / sr)) * 0.6
                    + sine(self.ph[1].advance(f * 1.78 / sr)) * 0.3;
                // Noise in a wide band around 3 kHz (the snares), over the drum's tone.
                let band = self.f1.process(self.noise.sample()).band;
                let n = self.f2.process(band).low;
                tone * aux + n * amp * 1.6
            }
            Drum::Clap => {
                let env = clap_burst(t, sr).max(amp * 0.7);
                let b = self.f1.process(self.noise.sample()).band;
                self.f2.process(b).band * env * 3.0
            }
            Drum::HatClosed | Drum::HatOpen => {
                let m = self.hat_cluster();
                let b = self.f1.process(m * 0.2).band;
                self.f2.process(b).high * amp * 3.2
            }
            Drum::TomLow | Drum::TomMid | Drum::TomHigh => {
                let f = self.freq * (1.0 + 0.6 * aux);
                sine(self.ph[0].advance(f / sr)) * amp + self.noise.sample() * 0.05 * aux
            }
            Drum::Rim => {
                let s = sine(self.ph[0].advance(self.freq / sr));
                let n = self.f1.process(self.noise.sample()).band;
                (s * 0.6 + n * 0.8) * amp + n * aux * 0.5
            }
            Drum::Cowbell => {
                let i0 = self.freq / sr;
                let i1 = self.freq * 1.4395 / sr;
                let m = square(self.ph[0].advance(i0), i0) + square(self.ph[1].advance(i1), i1);
                let env = amp * 0.75 + aux * 0.25;
                self.f1.process(m * 0.4).band * env * 1.5
            }
            Drum::Shaker => {
                // A short swell (1 - fast decay) into a slower decay.
                self.f1.process(self.noise.sample()).high * (1.0 - aux) * amp * 1.2
            }
            Drum::Clave => sine(self.ph[0].advance(self.freq / sr)) * amp,
            Drum::Zap => {
                // From about 25 times its pitch down to it, fast.
                let f = self.freq * (1.0 + 24.0 * aux * aux);
                sine(self.ph[0].advance(f / sr)) * amp
            }
            Drum::Blip => {
                let inc = self.freq / sr;
                square(self.ph[0].advance(inc), inc) * amp * 0.5
            }
            Drum::Riser => {
                // The band climbs as the swell (1 - aux) grows; moved at control rate.
                if t.is_multiple_of(32) {
                    self.f1
                        .set((300.0 + 7000.0 * (1.0 - aux)) * self.freq, 0.6, sr);
                }
                self.f1.process(self.noise.sample()).band * (1.0 - aux) * amp * 2.0
            }
        };
        // Done at -60 dB (inaudible under anything else playing).
        if (amp < 1e-3 && aux < 1e-3 && t > self.min_frames) || t > self.max_frames {
            self.active = false;
        }
        y
    }

    #[inline(always)]
    fn next_synth(&mut self, s: Synth, x: f32) -> f32 {
        if self.t == self.gate {
            self.env.release();
        }
        // Filter and modulation envelopes move at control rate: every 32 frames (0.7 ms) of the
        // voice's own time, so the result does not depend on block sizes (and a note sounds the
        // same whenever it starts).
        if self.t.is_multiple_of(32) && self.t > 0 {
            self.set_synth_filter(s);
        }
        self.aux *= self.aux_mul;
        let env = self.env.tick();
        // `x` is this frame of the oscillators (`synth_source`).
        let y = match s {
            Synth::Bass | Synth::SubBass | Synth::Lead | Synth::Pad | Synth::Pluck => {
                self.f1.process(x).low
            }
            Synth::Acid => soft_clip(self.f1.process(x).low * 1.5) * 0.8,
            Synth::Keys | Synth::Organ => x,
        };
        if self.env.is_done() {
            self.active = false;
        }
        y * env
    }

    #[inline(always)]
    fn next_sample(&mut self, sample: Option<&SampleData<'_>>) -> f32 {
        let Some(s) = sample else {
            self.active = false;
            return 0.0;
        };
        let i = self.pos as usize;
        if i + 1 >= s.pcm.len() {
            self.active = false;
            return 0.0;
        }
        let frac = (self.pos - i as f64) as f32;
        let y = s.pcm[i] + (s.pcm[i + 1] - s.pcm[i]) * frac;
        self.pos += s.rate_ratio * self.freq as f64;
        if self.t >= self.gate.saturating_add((4.0 * self.sr) as u32) {
            self.env.release();
        }
        let env = self.env.tick();
        if self.env.is_done() {
            self.active = false;
        }
        y * env
    }
}

/// The clap's three quick bursts (every 10 ms for 30 ms), `t` frames after its trigger; its
/// tail follows the amplitude envelope.
#[inline(always)]
/// [`clap_burst`] of every frame from the clap's start until its bursts are over (after that
/// it is 0): the table [`render_drums`] takes (at its voices' sample rate), computed once (a
/// library exponential a frame cost more than the rest of the clap).
pub fn clap_table(sr: f32) -> Vec<f32> {
    let mut t = 0u32;
    let mut table = Vec::new();
    while t as f32 * 1000.0 / sr < 30.0 {
        table.push(clap_burst(t, sr));
        t += 1;
    }
    table
}

fn clap_burst(t: u32, sr: f32) -> f32 {
    let ms = t as f32 * 1000.0 / sr;
    if ms < 30.0 {
        libm::expf(-(ms % 10.0) / 2.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const MAX_T: usize = crate::engine::MAX_TRACKS;

    /// Drum voices rendered in passes (`render_drums`, their filters side by side) give the
    /// same bits as one by one: every drum but the riser, on their own tracks, some started
    /// over a cut voice's remainder (declick), ending at different frames, in odd block sizes;
    /// a snare alone (its filters each alone at their stage, not in the bank); and small
    /// groups whose chains run side by side (`drum_chain_lanes`) beside others one by one.
    #[test]
    fn drums_in_passes_render_the_same_bits_as_one_by_one() {
        let all = [
            Drum::Kick,
            Drum::Kick808,
            Drum::Snare,
            Drum::Clap,
            Drum::HatClosed,
            Drum::HatOpen,
            Drum::TomLow,
            Drum::TomMid,
            Drum::TomHigh,
            Drum::Rim,
            Drum::Cowbell,
            Drum::Shaker,
            Drum::Clave,
            Drum::Zap,
            Drum::Blip,
        ];
        drums_in_passes(&all);
        drums_in_passes(&[Drum::Snare]);
        // Chains side by side in small groups, beside chains one by one.
        drums_in_passes(&[Drum::Kick, Drum::Zap]);
        drums_in_passes(&[
            Drum::TomLow,
            Drum::HatOpen,
            Drum::Kick808,
            Drum::Rim,
            Drum::Blip,
        ]);
    }

    fn drums_in_passes(drums: &[Drum]) {
        use crate::engine::MAX_BLOCK;
        let sr = 48_000.0;
        let mut one = [Voice::IDLE; 16];
        for (i, d) in drums.iter().enumerate() {
            let v = &mut one[i];
            v.trigger(
                Instrument::Drum(*d),
                i as u8,
                (i as f32) - 5.0,
                0.9,
                1000,
                sr,
                i as u64,
                3 + i as u32,
            );
            assert!(Voice::drum_passes(v.instrument));
            if i % 3 == 0 {
                v.set_declick(0.3 - 0.05 * i as f32);
            }
        }
        let mut passes = one;
        let frames = 200_000;
        let mut a = vec![[0.0f32; MAX_BLOCK]; 16];
        let mut b = vec![[0.0f32; MAX_BLOCK]; 16];
        let (mut out_a, mut out_b) = (vec![0.0f32; frames * 16], vec![0.0f32; frames * 16]);
        let mut lanes = vec![DrumLane::ZERO; DRUM_LANES];
        let mut bank = SvfBank::EMPTY;
        let clap = clap_table(sr);
        let mut at = 0;
        for n in [128usize, 37, 1, 90, 128, 64, 3].iter().cycle() {
            if at >= frames {
                break;
            }
            let n = (*n).min(frames - at);
            for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                x[..n].fill(0.0);
                y[..n].fill(0.0);
            }
            for v in one.iter_mut().filter(|v| v.active) {
                v.render(&mut a[v.track as usize][..n], None);
            }
            let mut which = [0u8; DRUM_LANES];
            let mut k = 0;
            for (i, v) in passes.iter().enumerate() {
                if v.active {
                    which[k] = i as u8;
                    k += 1;
                }
            }
            render_drums(
                &mut passes,
                &which[..k],
                &mut b,
                0..n,
                &mut lanes,
                &mut bank,
                &clap,
            );
            for t in 0..16 {
                out_a[t * frames + at..t * frames + at + n].copy_from_slice(&a[t][..n]);
                out_b[t * frames + at..t * frames + at + n].copy_from_slice(&b[t][..n]);
            }
            at += n;
        }
        assert!(one.iter().all(|v| !v.active), "every drum ends");
        for (i, d) in drums.iter().enumerate() {
            let (x, y) = (
                &out_a[i * frames..(i + 1) * frames],
                &out_b[i * frames..(i + 1) * frames],
            );
            assert!(x.iter().any(|s| *s != 0.0), "{d:?} sounds");
            for (f, (p, q)) in x.iter().zip(y).enumerate() {
                assert_eq!(p.to_bits(), q.to_bits(), "{d:?} frame {f}");
            }
        }
        for (v, w) in one.iter().zip(&passes) {
            assert_eq!(
                (v.active, v.t, v.last.to_bits()),
                (w.active, w.t, w.last.to_bits())
            );
        }
    }

    /// Voices of any saw-and-square synths and tracks, rendered side by side in lanes, give
    /// the same bits as one by one: notes starting on different frames (so off the control
    /// frames), attacks ending, gates closing, releases ending and voices ending at different
    /// frames, two voices sharing a bus, groups of every size, in odd block sizes.
    #[test]
    fn lanes_render_the_same_bits_as_one_by_one() {
        let synths = [
            Synth::Bass,
            Synth::Acid,
            Synth::Lead,
            Synth::Pad,
            Synth::Pluck,
        ];
        lanes_match(&synths, SYNTH_LANES, &mut |v, which, buses, n| {
            if which.iter().all(|&j| v[j as usize].lanes_ready()) {
                render_synth_lanes(v, which, buses, 0..n);
                true
            } else {
                false
            }
        });
    }

    /// The FM keys' and the organ's voices with their chains side by side (`keys_lanes`) give
    /// the same bits as one by one, as above.
    #[test]
    fn keys_lanes_render_the_same_bits_as_one_by_one() {
        let mut scratch = vec![DrumLane::ZERO; CHAIN_LANES];
        lanes_match(
            &[Synth::Keys, Synth::Organ],
            CHAIN_LANES,
            &mut |v, which, buses, n| {
                if which.iter().all(|&j| v[j as usize].keys_lanes_ready()) {
                    keys_lanes(v, which, buses, 0..n, &mut scratch);
                    true
                } else {
                    false
                }
            },
        );
    }

    /// Renders the sounding voices it is given (`which`) side by side over the first `n`
    /// frames of the buses, or returns false when it cannot.
    type LanesRender<'a> = dyn FnMut(&mut [Voice], &[u8], &mut [[f32; MB]], usize) -> bool + 'a;

    /// Renders voices of `synths` one by one and with `lanes_render`, in groups of every size
    /// up to `max`, and compares every sample's bits.
    fn lanes_match(synths: &[Synth], max: usize, lanes_render: &mut LanesRender<'_>) {
        let sr = 48_000.0;
        for count in 1..=max {
            for shift in 0..synths.len() {
                // Voice j: its synth, its track (0 and 1 share a bus), when it starts.
                let synth = |j: usize| synths[(j + shift) % synths.len()];
                let track = |j: usize| [2u8, 2, 5, 7, 9, 11, 13, 15][j];
                let start = |j: usize| [0usize, 37, 161, 1_000, 5, 64, 2_222, 90][j];
                let mut one = [Voice::IDLE; 8];
                let mut lanes = one;
                let mut a = vec![[0.0f32; MB]; MAX_T];
                let mut b = a.clone();
                let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
                let mut at = 0usize;
                let total = 120_000usize;
                for (i, n) in [128usize, 37, 1, 90, 128, 64].iter().cycle().enumerate() {
                    if at >= total {
                        break;
                    }
                    // A stretch ends where a voice starts.
                    let mut n = (*n).min(total - at);
                    for j in 0..count {
                        if start(j) > at {
                            n = n.min(start(j) - at);
                        }
                        if start(j) == at {
                            let gate = [700, 3_000, 40, 12_000, 9, 20_000, 333, 5_000][j];
                            let pitch = [0.0, 4.0, 7.0, -12.0, 2.0, 9.0, -5.0, 12.0][j];
                            for v in [&mut one[j], &mut lanes[j]] {
                                v.trigger(
                                    Instrument::Synth(synth(j)),
                                    track(j),
                                    pitch,
                                    0.8,
                                    gate,
                                    sr,
                                    j as u64,
                                    9 + j as u32,
                                );
                            }
                        }
                    }
                    for bus in a.iter_mut().chain(b.iter_mut()) {
                        bus.fill(0.0);
                    }
                    for v in one[..count].iter_mut().filter(|v| v.active) {
                        v.render(&mut a[v.track as usize][..n], None);
                    }
                    let which: Vec<u8> = (0..count as u8)
                        .filter(|&j| lanes[j as usize].active)
                        .collect();
                    let laned = !which.is_empty()
                        && i % 7 != 6
                        && lanes_render(&mut lanes, &which, &mut b, n);
                    if !laned {
                        for v in lanes[..count].iter_mut().filter(|v| v.active) {
                            v.render(&mut b[v.track as usize][..n], None);
                        }
                    }
                    for t in 0..MAX_T {
                        out_a.extend_from_slice(&a[t][..n]);
                        out_b.extend_from_slice(&b[t][..n]);
                    }
                    at += n;
                }
                assert!(out_a.iter().any(|x| *x != 0.0));
                assert!(one.iter().all(|v| !v.active), "every note ends");
                for (i, (x, y)) in out_a.iter().zip(&out_b).enumerate() {
                    assert_eq!(x.to_bits(), y.to_bits(), "x{count} shift {shift} at {i}");
                }
                for (v, w) in one.iter().zip(&lanes) {
                    assert_eq!(
                        (v.active, v.t, v.last.to_bits()),
                        (w.active, w.t, w.last.to_bits())
                    );
                }
            }
        }
    }

    /// `tan_small` against the exact tangent over the filters' whole range.
    #[test]
    fn tan_small_is_within_rounding_of_tan() {
        let mut worst = 0.0f64;
        for i in 0..=100_000 {
            let fc = 20.0 + (0.45 * 48_000.0 - 20.0) * i as f32 / 100_000.0;
            let w = core::f32::consts::PI * fc / 48_000.0;
            let exact = (w as f64).tan();
            let err = ((tan_small(w) as f64 - exact) / exact).abs();
            worst = worst.max(err);
        }
        assert!(worst < 1e-6, "worst relative error {worst:e}");
    }
}
