//! The effects a session shares: a feedback-delay-network reverb, a tempo-synced ping-pong
//! delay, a resonant multimode filter, and the parameter smoother that keeps every change free
//! of zipper noise. Like the rest of the engine: no allocation after construction, `libm` math,
//! the same samples natively and in the AudioWorklet.
//!
//! Not wired into the engine's mix yet (see issue 15): these are the building blocks with their
//! measured behaviour (reverb decay time, delay echo frames, filter response, smoothing).

use crate::dsp::Svf;

/// Flushes values too small to matter to zero (denormal numbers are slow on some CPUs; a
/// decaying feedback loop would otherwise sink into them after a long silence).
#[inline]
fn flush(x: f32) -> f32 {
    if x.abs() < 1e-15 {
        0.0
    } else {
        x
    }
}

/// A one-pole smoother: a parameter moves to its target over about `ms` milliseconds instead
/// of jumping (no zipper noise, no click).
#[derive(Clone, Copy, Debug)]
pub struct Smoothed {
    value: f32,
    target: f32,
    coeff: f32,
}

impl Smoothed {
    pub fn new(value: f32, ms: f32, sr: f32) -> Smoothed {
        Smoothed {
            value,
            target: value,
            coeff: 1.0 - libm::expf(-1.0 / (ms.max(0.01) * 0.001 * sr)),
        }
    }

    pub fn set(&mut self, target: f32) {
        self.target = target;
    }

    /// Jumps straight to `v` (for a fresh start, never while sounding).
    pub fn reset(&mut self, v: f32) {
        self.value = v;
        self.target = v;
    }

    #[inline]
    pub fn tick(&mut self) -> f32 {
        let next = self.value + (self.target - self.value) * self.coeff;
        // Once a step no longer moves it (f32 cannot close the last gap), arrive.
        self.value = if next == self.value {
            self.target
        } else {
            next
        };
        self.value
    }

    pub fn value(&self) -> f32 {
        self.value
    }
}

/// A delay line with a fixed capacity (allocated once).
#[derive(Clone, Debug)]
struct Line {
    buf: Vec<f32>,
    pos: usize,
}

impl Line {
    fn new(capacity: usize) -> Line {
        Line {
            buf: vec![0.0; capacity.max(1)],
            pos: 0,
        }
    }

    /// The sample written `delay` samples ago (`1..=capacity`).
    #[inline]
    fn read(&self, delay: usize) -> f32 {
        let n = self.buf.len();
        self.buf[(self.pos + n - delay.clamp(1, n)) % n]
    }

    #[inline]
    fn write(&mut self, x: f32) {
        self.buf[self.pos] = x;
        self.pos = (self.pos + 1) % self.buf.len();
    }

    fn clear(&mut self) {
        self.buf.iter_mut().for_each(|v| *v = 0.0);
    }
}

/// Reverb settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReverbParams {
    /// Room size, 0..1 (scales the delay lines: small room to hall).
    pub size: f32,
    /// Time for the tail to fall by 60 dB at low frequencies, in seconds (0.1..20).
    pub decay: f32,
    /// High-frequency damping, 0..1 (0: bright, the highs last as long as the lows).
    pub damping: f32,
    /// Milliseconds before the tail starts (0..250).
    pub predelay_ms: f32,
}

impl Default for ReverbParams {
    fn default() -> ReverbParams {
        ReverbParams {
            size: 0.6,
            decay: 2.0,
            damping: 0.4,
            predelay_ms: 20.0,
        }
    }
}

/// Delay lengths of the network in milliseconds at size 1 (mutually prime in samples at common
/// rates, spread so that the echoes do not line up).
const FDN_MS: [f32; 8] = [31.3, 37.9, 41.1, 47.7, 53.3, 59.9, 67.1, 73.7];
const FDN_MAX_SCALE: f32 = 2.0;
const MAX_PREDELAY_MS: f32 = 250.0;

/// An 8-line feedback delay network with a Householder matrix (lossless mixing: the decay comes
/// only from each line's gain, set from the decay time) and one-pole damping in every line.
#[derive(Clone, Debug)]
pub struct Reverb {
    sr: f32,
    pre: Line,
    lines: [Line; 8],
    lengths: [usize; 8],
    gains: [f32; 8],
    damp: f32,
    lp: [f32; 8],
    predelay: usize,
}

impl Reverb {
    pub fn new(sr: f32, p: ReverbParams) -> Reverb {
        let cap = |ms: f32| (ms * 0.001 * sr) as usize + 2;
        let mut r = Reverb {
            sr,
            pre: Line::new(cap(MAX_PREDELAY_MS)),
            lines: FDN_MS.map(|ms| Line::new(cap(ms * FDN_MAX_SCALE))),
            lengths: [1; 8],
            gains: [0.0; 8],
            damp: 0.0,
            lp: [0.0; 8],
            predelay: 1,
        };
        r.set(p);
        r
    }

    /// New settings (the lines keep sounding; sizes change the lengths read).
    pub fn set(&mut self, p: ReverbParams) {
        let scale = 0.5 + 1.5 * p.size.clamp(0.0, 1.0);
        let decay = p.decay.clamp(0.1, 20.0);
        for (i, ms) in FDN_MS.iter().enumerate() {
            let len = ((ms * scale * 0.001 * self.sr) as usize).max(1);
            self.lengths[i] = len.min(self.lines[i].buf.len());
            // -60 dB after `decay` seconds: each pass through a line of this length loses
            // 60 * len / (decay * sr) dB.
            self.gains[i] = libm::powf(10.0, -3.0 * self.lengths[i] as f32 / (decay * self.sr));
        }
        self.damp = p.damping.clamp(0.0, 1.0) * 0.7;
        self.predelay = ((p.predelay_ms.clamp(0.0, MAX_PREDELAY_MS) * 0.001 * self.sr) as usize)
            .clamp(1, self.pre.buf.len());
    }

    /// One stereo frame of the wet signal for a mono send `x`.
    #[inline]
    pub fn process(&mut self, x: f32) -> (f32, f32) {
        self.pre.write(x);
        let input = self.pre.read(self.predelay);
        let mut out = [0.0f32; 8];
        for (i, o) in out.iter_mut().enumerate() {
            let v = self.lines[i].read(self.lengths[i]);
            // Damping: a one-pole low-pass in the loop.
            self.lp[i] = flush(v + (self.lp[i] - v) * self.damp);
            *o = self.lp[i] * self.gains[i];
        }
        // Householder: y = x - (2/N) * sum(x).
        let sum: f32 = out.iter().sum::<f32>() * (2.0 / 8.0);
        for (line, o) in self.lines.iter_mut().zip(out) {
            line.write(flush(o - sum + input));
        }
        let l = out[0] - out[2] + out[4] - out[6];
        let r = out[1] - out[3] + out[5] - out[7];
        (l * 0.35, r * 0.35)
    }

    pub fn clear(&mut self) {
        self.pre.clear();
        self.lines.iter_mut().for_each(Line::clear);
        self.lp = [0.0; 8];
    }
}

/// A note value for the delay, in beats (quarter notes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Division {
    Sixteenth,
    Eighth,
    Quarter,
    Half,
}

/// How a division is played.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feel {
    Straight,
    Dotted,
    Triplet,
}

/// The delay time in frames for a tempo: exact to the frame (rounded once).
pub fn delay_frames(tempo: f64, division: Division, feel: Feel, sr: f32) -> usize {
    let beats = match division {
        Division::Sixteenth => 0.25,
        Division::Eighth => 0.5,
        Division::Quarter => 1.0,
        Division::Half => 2.0,
    } * match feel {
        Feel::Straight => 1.0,
        Feel::Dotted => 1.5,
        Feel::Triplet => 2.0 / 3.0,
    };
    libm::round(beats * 60.0 / tempo * sr as f64) as usize
}

/// Longest delay: a dotted half at the slowest tempo (60 BPM) is 3 s.
pub const MAX_DELAY_SECONDS: f32 = 3.0;

/// A stereo delay: ping-pong (each echo crosses to the other side) or straight, with a
/// low-pass filter in the feedback loop so repeats grow darker.
#[derive(Clone, Debug)]
pub struct Delay {
    l: Line,
    r: Line,
    frames: usize,
    feedback: f32,
    tone: f32,
    lp: (f32, f32),
    pub ping_pong: bool,
}

impl Delay {
    pub fn new(sr: f32) -> Delay {
        let cap = (MAX_DELAY_SECONDS * sr) as usize + 1;
        Delay {
            l: Line::new(cap),
            r: Line::new(cap),
            frames: 1,
            feedback: 0.4,
            tone: 0.2,
            lp: (0.0, 0.0),
            ping_pong: true,
        }
    }

    /// Delay time in frames (see [`delay_frames`]), feedback 0..0.95, tone 0..1 (how much the
    /// loop's low-pass darkens each repeat).
    pub fn set(&mut self, frames: usize, feedback: f32, tone: f32) {
        self.frames = frames.clamp(1, self.l.buf.len());
        self.feedback = feedback.clamp(0.0, 0.95);
        self.tone = tone.clamp(0.0, 1.0) * 0.9;
    }

    /// One frame: the wet signal for a stereo send.
    #[inline]
    pub fn process(&mut self, xl: f32, xr: f32) -> (f32, f32) {
        let dl = self.l.read(self.frames);
        let dr = self.r.read(self.frames);
        self.lp.0 = flush(dl + (self.lp.0 - dl) * self.tone);
        self.lp.1 = flush(dr + (self.lp.1 - dr) * self.tone);
        let (fl, fr) = (self.lp.0 * self.feedback, self.lp.1 * self.feedback);
        if self.ping_pong {
            // The input enters on the left; each repeat crosses over.
            self.l.write(0.5 * (xl + xr) + fr);
            self.r.write(fl);
        } else {
            self.l.write(xl + fl);
            self.r.write(xr + fr);
        }
        (dl, dr)
    }

    pub fn clear(&mut self) {
        self.l.clear();
        self.r.clear();
        self.lp = (0.0, 0.0);
    }
}

/// The filter's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterMode {
    LowPass,
    HighPass,
    BandPass,
}

/// A resonant multimode filter whose cutoff and resonance glide (a per-step cutoff lock sweeps
/// rather than steps), with a soft-saturating drive in front.
#[derive(Clone, Debug)]
pub struct Filter {
    svf: Svf,
    cutoff: Smoothed,
    res: Smoothed,
    pub mode: FilterMode,
    pub drive: f32,
    sr: f32,
    /// The cutoff and resonance the coefficients were last computed for.
    applied: (f32, f32),
}

impl Filter {
    pub fn new(sr: f32) -> Filter {
        Filter {
            svf: Svf::default(),
            cutoff: Smoothed::new(20_000.0, 5.0, sr),
            res: Smoothed::new(0.0, 5.0, sr),
            mode: FilterMode::LowPass,
            drive: 0.0,
            sr,
            applied: (-1.0, -1.0),
        }
    }

    /// Cutoff in Hz (20..20000), resonance 0..1.
    pub fn set(&mut self, cutoff: f32, res: f32) {
        self.cutoff.set(cutoff.clamp(20.0, 20_000.0));
        self.res.set(res.clamp(0.0, 1.0));
    }

    #[inline]
    pub fn process(&mut self, x: f32) -> f32 {
        let x = if self.drive > 0.0 {
            crate::dsp::soft_clip(x * (1.0 + 8.0 * self.drive)) / (1.0 + 2.0 * self.drive)
        } else {
            x
        };
        let now = (self.cutoff.tick(), self.res.tick());
        if now != self.applied {
            // Only while gliding: a steady filter costs no trigonometry.
            self.svf.set(now.0, now.1, self.sr);
            self.applied = now;
        }
        let o = self.svf.process(x);
        match self.mode {
            FilterMode::LowPass => o.low,
            FilterMode::HighPass => o.high,
            FilterMode::BandPass => o.band,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: f32 = 48_000.0;

    /// T30 (Schroeder backward integration, -5 to -35 dB) doubled: the RT60 of an impulse
    /// response.
    fn rt60(ir: &[f32]) -> f32 {
        let mut energy: Vec<f64> = ir.iter().map(|v| (*v as f64) * (*v as f64)).collect();
        for i in (0..energy.len() - 1).rev() {
            energy[i] += energy[i + 1];
        }
        let total = energy[0];
        let db = |i: usize| 10.0 * (energy[i] / total).log10();
        let t5 = (0..energy.len()).find(|&i| db(i) <= -5.0).unwrap();
        let t35 = (0..energy.len()).find(|&i| db(i) <= -35.0).unwrap();
        2.0 * (t35 - t5) as f32 / SR
    }

    fn impulse_response(p: ReverbParams, seconds: f32) -> Vec<f32> {
        let mut r = Reverb::new(SR, p);
        (0..(seconds * SR) as usize)
            .map(|i| r.process(if i == 0 { 1.0 } else { 0.0 }).0)
            .collect()
    }

    #[test]
    fn the_reverb_decays_in_the_time_it_is_set_to() {
        for decay in [0.5f32, 1.5, 4.0] {
            let ir = impulse_response(
                ReverbParams {
                    size: 0.7,
                    decay,
                    damping: 0.0,
                    predelay_ms: 0.0,
                },
                decay * 2.5,
            );
            let t = rt60(&ir);
            assert!(
                (t - decay).abs() / decay < 0.10,
                "set {decay} s, measured {t} s"
            );
        }
    }

    #[test]
    fn the_reverb_waits_for_its_predelay_and_damping_darkens_it() {
        let ir = impulse_response(
            ReverbParams {
                predelay_ms: 50.0,
                ..ReverbParams::default()
            },
            0.2,
        );
        let first = ir.iter().position(|v| v.abs() > 1e-6).unwrap();
        assert!(first as f32 >= 0.050 * SR, "first sound at {first}");
        let bright = impulse_response(
            ReverbParams {
                damping: 0.0,
                ..ReverbParams::default()
            },
            1.0,
        );
        let dark = impulse_response(
            ReverbParams {
                damping: 1.0,
                ..ReverbParams::default()
            },
            1.0,
        );
        // High-frequency content: the energy of the first difference.
        let hf = |x: &[f32]| x.windows(2).map(|w| (w[1] - w[0]).powi(2)).sum::<f32>();
        assert!(
            hf(&dark) < 0.5 * hf(&bright),
            "{} vs {}",
            hf(&dark),
            hf(&bright)
        );
    }

    #[test]
    fn a_long_silence_after_a_loud_hit_ends_in_true_zeros() {
        // Denormals would make the loop slow; flushed, the network reaches exact silence.
        let mut r = Reverb::new(
            SR,
            ReverbParams {
                decay: 0.5,
                ..ReverbParams::default()
            },
        );
        r.process(1.0);
        let mut last = (1.0, 1.0);
        for _ in 0..(20.0 * SR) as usize {
            last = r.process(0.0);
        }
        assert_eq!(last, (0.0, 0.0));
        assert!(r.lines.iter().all(|l| l.buf.iter().all(|v| *v == 0.0)));
    }

    #[test]
    fn echoes_land_on_the_exact_frame() {
        for (tempo, div, feel) in [
            (120.0, Division::Eighth, Feel::Straight),
            (97.0, Division::Quarter, Feel::Dotted),
            (143.0, Division::Sixteenth, Feel::Triplet),
            (60.0, Division::Half, Feel::Dotted),
        ] {
            let frames = delay_frames(tempo, div, feel, SR);
            let mut d = Delay::new(SR);
            d.set(frames, 0.5, 0.0);
            d.ping_pong = false;
            let out: Vec<f32> = (0..frames * 3 + 10)
                .map(|i| d.process(if i == 0 { 1.0 } else { 0.0 }, 0.0).0)
                .collect();
            let echoes: Vec<usize> = out
                .iter()
                .enumerate()
                .filter(|(_, v)| v.abs() > 0.01)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(
                echoes,
                vec![frames, 2 * frames, 3 * frames],
                "{tempo} BPM {div:?} {feel:?}"
            );
            assert!((out[2 * frames] - 0.5).abs() < 1e-6, "feedback 0.5");
        }
        assert_eq!(
            delay_frames(120.0, Division::Quarter, Feel::Straight, 48_000.0),
            24_000
        );
    }

    #[test]
    fn ping_pong_alternates_sides() {
        let frames = 1000;
        let mut d = Delay::new(SR);
        d.set(frames, 0.8, 0.0);
        let out: Vec<(f32, f32)> = (0..frames * 3 + 1)
            .map(|i| d.process(if i == 0 { 1.0 } else { 0.0 }, 0.0))
            .collect();
        assert!(out[frames].0 > 0.1 && out[frames].1 == 0.0);
        assert!(out[2 * frames].1 > 0.1 && out[2 * frames].0 == 0.0);
        assert!(out[3 * frames].0 > 0.1);
    }

    #[test]
    fn the_filter_shapes_and_its_cutoff_glides_without_clicks() {
        let tone = |f: f32, i: usize| libm::sinf(2.0 * std::f32::consts::PI * f * i as f32 / SR);
        let level = |mode: FilterMode, f: f32| {
            let mut flt = Filter::new(SR);
            flt.mode = mode;
            flt.set(1000.0, 0.2);
            for i in 0..4800 {
                flt.process(tone(f, i));
            }
            (4800..9600)
                .map(|i| flt.process(tone(f, i)).abs())
                .fold(0.0f32, f32::max)
        };
        assert!(level(FilterMode::LowPass, 100.0) > 0.8);
        assert!(level(FilterMode::LowPass, 8000.0) < 0.1);
        assert!(level(FilterMode::HighPass, 100.0) < 0.1);
        assert!(level(FilterMode::HighPass, 8000.0) > 0.8);
        assert!(level(FilterMode::BandPass, 1000.0) > level(FilterMode::BandPass, 8000.0) * 4.0);
        // A jump of the cutoff from 200 Hz to 8 kHz on a steady tone: no step in the output
        // larger than the tone's own steps allow.
        let mut flt = Filter::new(SR);
        flt.set(200.0, 0.3);
        let mut prev = 0.0;
        let mut worst = 0.0f32;
        for i in 0..9600 {
            if i == 4800 {
                flt.set(8000.0, 0.3);
            }
            let y = flt.process(tone(440.0, i) * 0.5);
            if i > 100 {
                worst = worst.max((y - prev).abs());
            }
            prev = y;
        }
        let tone_step = 0.5 * 2.0 * std::f32::consts::PI * 440.0 / SR;
        assert!(
            worst < tone_step * 1.5,
            "largest step {worst} vs {tone_step}"
        );
    }

    #[test]
    fn smoothing_reaches_its_target_without_jumping() {
        let mut s = Smoothed::new(0.0, 10.0, SR);
        s.set(1.0);
        let first = s.tick();
        assert!(first > 0.0 && first < 0.01, "{first}");
        for _ in 0..(0.2 * SR) as usize {
            s.tick();
        }
        assert_eq!(s.value(), 1.0);
    }
}
