//! Offline rendering: a pattern (or a whole session) to PCM, and PCM to WAV.

use crate::engine::{Engine, Pattern, Transport, MAX_BLOCK};

/// Stereo PCM.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stereo {
    pub left: Vec<f32>,
    pub right: Vec<f32>,
    pub sample_rate: f32,
}

/// Renders `frames` frames of `pattern` playing from step 0 at `tempo`, in blocks of `block`.
pub fn render(
    pattern: &Pattern,
    tempo: f64,
    sample_rate: f32,
    frames: usize,
    block: usize,
) -> Stereo {
    let mut e = Engine::new(sample_rate);
    e.set_pattern(pattern);
    e.set_transport(Transport::play(0.0, 0.0, tempo));
    e.settle_effects();
    render_engine(&mut e, frames, block)
}

/// Renders `frames` frames from an engine as it is.
pub fn render_engine(e: &mut Engine, frames: usize, block: usize) -> Stereo {
    let block = block.clamp(1, MAX_BLOCK);
    let mut out = Stereo {
        left: vec![0.0; frames],
        right: vec![0.0; frames],
        sample_rate: e.sample_rate(),
    };
    let mut i = 0;
    while i < frames {
        let n = block.min(frames - i);
        e.render(&mut out.left[i..i + n], &mut out.right[i..i + n]);
        i += n;
    }
    out
}

/// Longest tail an export adds after its last loop (a long reverb is cut here).
pub const MAX_TAIL_SECONDS: f32 = 10.0;
/// A tail ends once a block's peak falls below this (-60 dBFS).
pub const TAIL_FLOOR: f32 = 0.001;

/// Renders `loops` cycles of `cycle_frames` from an engine set up to play from frame 0.
///
/// With `tail`, the file starts at the first step and, after the last loop, keeps only what is
/// still ringing (no new notes) until it falls below -60 dBFS, at most [`MAX_TAIL_SECONDS`],
/// with a short fade. Without it, the file is exactly `loops` cycles long and loops seamlessly:
/// one cycle is played first and dropped, so the start already holds the tails of the previous
/// cycle's notes, as it does when the loop repeats.
pub fn render_loops(e: &mut Engine, cycle_frames: f64, loops: u32, tail: bool) -> Stereo {
    let loops = loops.max(1);
    if !tail {
        let pre = libm::round(cycle_frames) as usize;
        let _ = render_engine(e, pre, MAX_BLOCK);
        let end = libm::round(cycle_frames * (loops + 1) as f64) as usize;
        return render_engine(e, end - pre, MAX_BLOCK);
    }
    let body = libm::round(cycle_frames * loops as f64) as usize;
    let mut out = render_engine(e, body, MAX_BLOCK);
    // No new notes: what is still sounding rings out.
    e.set_transport(Transport::STOPPED);
    let block = 2048;
    let cap = (MAX_TAIL_SECONDS * e.sample_rate()) as usize;
    let mut added = 0;
    while added < cap {
        let b = render_engine(e, block, MAX_BLOCK);
        let peak = b
            .left
            .iter()
            .chain(&b.right)
            .fold(0.0f32, |m, v| m.max(v.abs()));
        out.left.extend_from_slice(&b.left);
        out.right.extend_from_slice(&b.right);
        added += block;
        if peak < TAIL_FLOOR {
            // The last block fades to nothing.
            let n = out.left.len();
            for i in 0..block {
                let g = 1.0 - (i + 1) as f32 / block as f32;
                out.left[n - block + i] *= g;
                out.right[n - block + i] *= g;
            }
            break;
        }
    }
    out
}

/// How many 16th-note steps an export should cover: one full cycle of every track (their
/// least common multiple) when that is at most 256 steps, else twice the longest track.
pub fn export_steps(pattern: &Pattern) -> u64 {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let counts = pattern.tracks[..pattern.track_count]
        .iter()
        .filter(|t| t.steps != 0)
        .map(|t| t.step_count.max(1) as u64);
    let mut lcm = 16u64;
    let mut longest = 16u64;
    for c in counts {
        longest = longest.max(c);
        lcm = (lcm / gcd(lcm, c) * c).min(1 << 20);
    }
    if lcm <= 256 {
        lcm
    } else {
        longest * 2
    }
}

/// Where an export starts (a global step) and how many steps one loop of it is: with a loop
/// region, the region (every track's slots repeat with it); else from step 0, [`export_steps`].
pub fn export_span(pattern: &Pattern) -> (u64, u64) {
    match pattern.loop_region {
        Some(r) => (r.start as u64, r.len() as u64),
        None => (0, export_steps(pattern)),
    }
}

#[cfg(feature = "session")]
mod session {
    use super::*;
    use crate::effects::{CompParams, Division, Feel, FilterMode, MasterFx, ReverbParams, TrackFx};
    use crate::engine::{StepLock, Track};
    use crate::instrument::Instrument;
    use keyboardia_core::effects::{Fx, FxValues};
    use keyboardia_core::model::SessionState;

    // The engine's sizes are its own (the worklet build does not depend on the core), but they
    // must agree with the session model's limits: checked at compile time.
    const _: () = assert!(crate::engine::MAX_TRACKS == keyboardia_core::limits::MAX_TRACKS);
    const _: () = assert!(crate::engine::STEP_SLOTS == keyboardia_core::limits::STEP_SLOTS);
    const _: () = assert!(crate::engine::CHORD_NOTES == keyboardia_core::limits::CHORD_MAX_NOTES);

    /// The pattern of a session. `sample_slot` maps a recording's id to the engine slot its PCM
    /// was loaded into; tracks whose instrument is unknown or not loaded stay silent (and the
    /// caller should say so: a missing sound is never replaced by another).
    pub fn pattern_from_session(
        s: &SessionState,
        sample_slot: impl Fn(&str) -> Option<u8>,
    ) -> Pattern {
        pattern_from_session_with(s, sample_slot, |_| None)
    }

    /// [`pattern_from_session`] with sampled instruments too: `instrument_slot` maps a sampled
    /// catalogue id (`sampled/piano`, `kit-808/kick`) to the engine slot it was loaded into
    /// ([`crate::Engine::load_instrument`]); not loaded (or unknown) means a silent track.
    pub fn pattern_from_session_with(
        s: &SessionState,
        sample_slot: impl Fn(&str) -> Option<u8>,
        instrument_slot: impl Fn(&str) -> Option<u8>,
    ) -> Pattern {
        let mut p = Pattern {
            swing: s.swing,
            loop_region: s
                .loop_region
                .and_then(|r| crate::engine::LoopRegion::new(r.start as u32, r.end as u32)),
            ..Pattern::default()
        };
        for t in &s.tracks {
            let instrument = match t.instrument.strip_prefix("recording/") {
                Some(id) => sample_slot(id).map(Instrument::Sample),
                None => Instrument::by_id(&t.instrument)
                    .or_else(|| instrument_slot(&t.instrument).map(Instrument::Sampled)),
            };
            let mut locks = [StepLock::default(); crate::engine::STEP_SLOTS];
            for (&k, l) in &t.locks {
                let mut chord = [None; crate::engine::CHORD_NOTES - 1];
                for (c, n) in chord.iter_mut().zip(l.chord.iter()) {
                    *c = Some(n);
                }
                locks[k as usize] = StepLock {
                    pitch: l.pitch,
                    volume: l.volume,
                    tie: l.tie,
                    cutoff: l.cutoff,
                    chord,
                };
            }
            p.push(Track {
                instrument,
                steps: t.steps.0,
                step_count: t.step_count,
                locks,
                volume: t.volume,
                pan: t.pan,
                transpose: t.transpose,
                swing: t.swing,
                muted: t.muted,
                soloed: t.soloed,
                fx: track_fx(&t.fx),
            });
        }
        p
    }

    /// A track's effect settings as the engine plays them.
    pub fn track_fx(v: &FxValues) -> TrackFx {
        TrackFx {
            send_reverb: v.get(Fx::SendReverb),
            send_delay: v.get(Fx::SendDelay),
            filter: FilterMode::from_code(v.get(Fx::FilterMode) as u32),
            cutoff: v.get(Fx::FilterCutoff),
            resonance: v.get(Fx::FilterResonance),
            drive: v.get(Fx::TrackDrive),
        }
    }

    /// The session's master chain as the engine plays it.
    pub fn master_fx(v: &FxValues) -> MasterFx {
        let code = |p: Fx| v.get(p) as u32;
        MasterFx {
            bypass: v.get(Fx::Bypass) >= 0.5,
            reverb_mix: v.get(Fx::ReverbMix),
            reverb: ReverbParams {
                size: v.get(Fx::ReverbSize),
                decay: v.get(Fx::ReverbDecay),
                damping: v.get(Fx::ReverbDamping),
                predelay_ms: v.get(Fx::ReverbPredelay),
            },
            delay_mix: v.get(Fx::DelayMix),
            delay_division: [
                Division::Sixteenth,
                Division::Eighth,
                Division::Quarter,
                Division::Half,
            ][code(Fx::DelayDivision).min(3) as usize],
            delay_feel: [Feel::Straight, Feel::Dotted, Feel::Triplet]
                [code(Fx::DelayFeel).min(2) as usize],
            delay_feedback: v.get(Fx::DelayFeedback),
            delay_tone: v.get(Fx::DelayTone),
            delay_ping_pong: v.get(Fx::DelayPingPong) >= 0.5,
            chorus_mix: v.get(Fx::ChorusMix),
            chorus_rate: v.get(Fx::ChorusRate),
            chorus_depth: v.get(Fx::ChorusDepth),
            drive: v.get(Fx::Drive),
            eq: [v.get(Fx::EqLow), v.get(Fx::EqMid), v.get(Fx::EqHigh)],
            comp: CompParams {
                threshold_db: v.get(Fx::CompThreshold),
                ratio: v.get(Fx::CompRatio),
                attack_ms: v.get(Fx::CompAttack),
                release_ms: v.get(Fx::CompRelease),
                makeup_db: v.get(Fx::CompMakeup),
            },
        }
    }

    /// A recording's audio, decoded, for rendering a session that uses it.
    pub struct LoadedSample {
        pub id: String,
        /// Mono PCM.
        pub pcm: Vec<f32>,
        pub rate: f32,
    }

    /// The recordings a session's tracks play (the ones an export must load).
    pub fn samples_in_use(
        session: &SessionState,
    ) -> impl Iterator<Item = &keyboardia_core::model::SampleRef> {
        session.samples.iter().filter(|smp| {
            let instrument = smp.instrument();
            session.tracks.iter().any(|t| t.instrument == instrument)
        })
    }

    /// The sampled instruments a session's tracks play (the ones an export must load), each
    /// once.
    pub fn sampled_in_use(
        session: &SessionState,
    ) -> Vec<&'static keyboardia_core::catalogue::Entry> {
        let mut out: Vec<&'static keyboardia_core::catalogue::Entry> = Vec::new();
        for t in &session.tracks {
            if let Some(e) = keyboardia_core::catalogue::lookup(&t.instrument) {
                if e.kind == keyboardia_core::catalogue::Kind::Sampled
                    && !out.iter().any(|o| o.id == e.id)
                {
                    out.push(e);
                }
            }
        }
        out
    }

    /// Renders a session for export: exactly `loops` times [`export_steps`] (with a loop
    /// region: `loops` times the region, from its start, as it plays live), then the tail of
    /// what still rings (see [`render_loops`]). Recordings the session uses are taken from
    /// `samples`.
    pub fn render_session(
        s: &SessionState,
        sample_rate: f32,
        loops: u32,
        samples: Vec<LoadedSample>,
    ) -> Stereo {
        render_session_with(s, sample_rate, loops, samples, Vec::new(), true)
    }

    /// [`render_session`] with sampled instruments: `(catalogue id, instrument)` pairs, each
    /// loaded into its own slot (a track whose instrument is missing here stays silent); and
    /// with the tail optional (without it, the file loops seamlessly).
    pub fn render_session_with(
        s: &SessionState,
        sample_rate: f32,
        loops: u32,
        samples: Vec<LoadedSample>,
        instruments: Vec<(String, crate::sampler::SampledInstrument)>,
        tail: bool,
    ) -> Stereo {
        let mut e = Engine::new(sample_rate);
        let mut slots = Vec::new();
        for (slot, smp) in samples
            .into_iter()
            .take(crate::engine::MAX_SAMPLES)
            .enumerate()
        {
            slots.push(smp.id);
            e.load_sample(slot, smp.pcm, smp.rate);
        }
        let mut inst_slots = Vec::new();
        for (slot, (id, inst)) in instruments
            .into_iter()
            .take(crate::engine::MAX_INSTRUMENTS)
            .enumerate()
        {
            if e.load_instrument(slot, inst) {
                inst_slots.push(id);
            }
        }
        let p = pattern_from_session_with(
            s,
            |id| slots.iter().position(|x| x == id).map(|i| i as u8),
            |id| inst_slots.iter().position(|x| x == id).map(|i| i as u8),
        );
        let frames_per_step = sample_rate as f64 * 60.0 / (s.tempo as f64 * 4.0);
        let (first, steps) = export_span(&p);
        let cycle = steps as f64 * frames_per_step;
        e.set_pattern(&p);
        e.set_master_fx(&master_fx(&s.effects));
        e.set_transport(Transport::play(0.0, first as f64, s.tempo as f64));
        // The effects as the session has them from the first note.
        e.settle_effects();
        render_loops(&mut e, cycle, loops, tail)
    }
}

#[cfg(feature = "session")]
pub use session::{
    master_fx, pattern_from_session, pattern_from_session_with, render_session,
    render_session_with, sampled_in_use, samples_in_use, track_fx, LoadedSample,
};

/// Encodes stereo PCM as a 16-bit WAV file.
#[cfg(feature = "wav")]
pub fn to_wav(pcm: &Stereo) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: pcm.sample_rate as u32,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut out, spec).expect("writing to memory");
        for (l, r) in pcm.left.iter().zip(&pcm.right) {
            for x in [l, r] {
                let s = (x.clamp(-1.0, 1.0) * 32767.0) as i16;
                w.write_sample(s).expect("writing to memory");
            }
        }
        w.finalize().expect("writing to memory");
    }
    out.into_inner()
}

/// The built-in kit as WAV files in the sample store's layout: `(key, bytes)` with keys like
/// `samples/drums/kick.wav`, one per catalogue instrument (a single hit; synths hold a note for
/// half a bar so the envelope shows). Written by the native host into an empty data directory
/// on its first start, and by `render-kit`.
#[cfg(feature = "wav")]
pub fn kit(sample_rate: f32) -> impl Iterator<Item = (String, Vec<u8>)> {
    use crate::engine::Track;
    use crate::{Instrument, CATALOG};
    CATALOG.iter().map(move |e| {
        let mut p = Pattern::default();
        let mut t = Track::new(e.instrument, &[0]);
        t.volume = 1.0;
        if let Instrument::Synth(_) = e.instrument {
            t.steps = 0xFF;
            for k in 1..8 {
                t.locks[k].tie = true;
            }
        }
        p.push(t);
        let pcm = render(&p, 120.0, sample_rate, (2.0 * sample_rate) as usize, 128);
        (format!("samples/{}.wav", e.id), to_wav(&pcm))
    })
}
