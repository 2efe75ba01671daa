//! The effects a session shares: a feedback-delay-network reverb, a tempo-synced ping-pong
//! delay, a resonant multimode filter, and the parameter smoother that keeps every change free
//! of zipper noise. Like the rest of the engine: no allocation after construction, `libm` math,
//! the same samples natively and in the AudioWorklet.
//!
//! Also the chorus, drive, three-band equaliser and compressor of the master chain
//! ([`MasterChain`]) and each track's inserts and sends ([`TrackInserts`]), which the engine
//! runs after its voices; their settings come from the session (keyboardia-core's `effects`).

use crate::dsp::Svf;
use crate::engine::MAX_BLOCK;

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
    pub(crate) target: f32,
    coeff: f32,
}

impl Smoothed {
    pub fn new(value: f32, ms: f32, sr: f32) -> Smoothed {
        Smoothed::every(value, ms, sr, 1)
    }

    /// As [`Smoothed::new`], for a smoother ticked once every `frames` frames: the same time
    /// constant, each tick covering `frames` frames of it.
    pub fn every(value: f32, ms: f32, sr: f32, frames: u32) -> Smoothed {
        Smoothed {
            value,
            target: value,
            coeff: 1.0 - libm::expf(-(frames as f32) / (ms.max(0.01) * 0.001 * sr)),
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
        if self.value == self.target {
            return self.value;
        }
        let next = self.value + (self.target - self.value) * self.coeff;
        // Arrive once the gap is far below hearing (a millionth of the value's scale), or once
        // a step no longer moves it (f32 cannot close the last gap).
        let close = (self.target - next).abs() <= 1e-6 * self.target.abs().max(1.0);
        self.value = if close || next == self.value {
            self.target
        } else {
            next
        };
        self.value
    }

    /// Whether it has arrived at its target.
    #[inline]
    pub fn settled(&self) -> bool {
        self.value == self.target
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

/// `delay.clamp(1, n)` for a line of `n >= 1` samples, without `clamp`'s check of its bounds
/// (a call of its own in the AVX2 render).
#[inline(always)]
fn clamp_delay(delay: usize, n: usize) -> usize {
    if delay < 1 {
        1
    } else if delay > n {
        n
    } else {
        delay
    }
}

impl Line {
    fn new(capacity: usize) -> Line {
        let mut buf = vec![0.0; capacity.max(1)];
        // The allocator's zeros are pages the system maps only when first touched: touched
        // here, at construction, rather than by the render (in the AudioWorklet, on the audio
        // thread) the first time the write position reaches each page. (`black_box`: a store
        // the compiler cannot drop as writing what is already there.)
        for i in (0..buf.len()).step_by(256) {
            buf[i] = core::hint::black_box(0.0);
        }
        Line { buf, pos: 0 }
    }

    /// The sample written `delay` samples ago (`1..=capacity`).
    #[inline(always)]
    fn read(&self, delay: usize) -> f32 {
        let n = self.buf.len();
        // `pos < n` and `1 <= delay <= n`: one conditional subtraction instead of a division.
        let mut i = self.pos + n - clamp_delay(delay, n);
        if i >= n {
            i -= n;
        }
        self.buf[i]
    }

    /// The sample `delay` (fractional, at least 1) samples ago, linearly interpolated; exact
    /// for a whole number.
    #[inline(always)]
    fn read_frac(&self, delay: f32) -> f32 {
        let d = delay.max(1.0);
        let whole = d as usize;
        let frac = d - whole as f32;
        let a = self.read(whole);
        if frac == 0.0 {
            return a;
        }
        a + (self.read(whole + 1) - a) * frac
    }

    /// For a block of `out.len()` frames just written (its last frame the newest sample),
    /// what frame `i` reads `delays[i]` (fractional, at least 1) frames before itself, linearly
    /// interpolated: what [`Line::read_frac`] of `delays[i]` gave at frame `i` had the block
    /// been written frame by frame, for reads that stop short of the oldest sample (further
    /// back, they read the one after it). The positions several frames at once, then the
    /// loads and the interpolation.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    fn read_sway(&self, delays: &[f32], out: &mut [f32]) {
        // Adding 1.5 * 2^23 to a number below 2^22 rounds it to a whole one, which the low bits
        // of the sum then hold: a conversion that runs several frames at once, where `as` (which
        // saturates) ran one by one.
        const WHOLE: f32 = 12_582_912.0;
        let n = out.len().min(delays.len()).min(MAX_BLOCK);
        let (len, pos) = (self.buf.len() as u32, self.pos as u32);
        let mut at = [0u32; MAX_BLOCK];
        let mut frac = [0.0f32; MAX_BLOCK];
        for i in 0..n {
            // At least 1, below 2^22 (far longer than any line): the whole part as the nearest
            // whole number to `d - 0.5`, so the fraction is in 0..=1 (1 only on a tie, which
            // interpolates to the same place).
            // (`max` first: a delay that is not a number reads as 1, where `clamp` keeps it.)
            #[allow(clippy::manual_clamp)]
            let d = delays[i].max(1.0).min(4_000_000.0);
            let t = (d - 0.5) + WHOLE;
            frac[i] = d - (t - WHOLE);
            let whole = t.to_bits().wrapping_sub(WHOLE.to_bits());
            let back = (whole + (n - 1 - i) as u32).min(len - 1);
            let j = pos + len - back;
            at[i] = if j >= len { j - len } else { j };
        }
        for i in 0..n {
            let j = at[i] as usize;
            let a = self.buf[j];
            let older = self.buf[if j == 0 { self.buf.len() - 1 } else { j - 1 }];
            out[i] = a + (older - a) * frac[i];
        }
    }

    /// `out.len()` samples as [`Line::read`] with `delay` would give them over the next
    /// frames, one write per frame; valid while `delay >= out.len()` (every sample read was
    /// written before the first of those frames).
    fn read_run(&self, delay: usize, out: &mut [f32]) {
        let n = self.buf.len();
        let mut i = self.pos + n - clamp_delay(delay, n);
        if i >= n {
            i -= n;
        }
        let first = out.len().min(n - i);
        out[..first].copy_from_slice(&self.buf[i..i + first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&self.buf[..rest]);
    }

    /// [`Line::write`] of each of `xs` in turn (at most the capacity).
    fn write_run(&mut self, xs: &[f32]) {
        let n = self.buf.len();
        let first = xs.len().min(n - self.pos);
        self.buf[self.pos..self.pos + first].copy_from_slice(&xs[..first]);
        let rest = xs.len() - first;
        self.buf[..rest].copy_from_slice(&xs[first..]);
        self.pos += xs.len();
        if self.pos >= n {
            self.pos -= n;
        }
    }

    #[inline]
    fn write(&mut self, x: f32) {
        self.buf[self.pos] = x;
        self.pos += 1;
        if self.pos == self.buf.len() {
            self.pos = 0;
        }
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
    /// A block's worth of each line's output and input ([`Reverb::process_block`]).
    taps: Box<[[f32; MAX_BLOCK]; 8]>,
    feed: Box<[[f32; MAX_BLOCK]; 8]>,
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
            taps: Box::new([[0.0; MAX_BLOCK]; 8]),
            feed: Box::new([[0.0; MAX_BLOCK]; 8]),
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

    /// [`Reverb::process`] over a block (at most [`MAX_BLOCK`] frames): the same samples.
    /// Every line is longer than a block, so each line's reads for the block were all written
    /// before it: they are read as one run, the network runs frame by frame on the runs, and
    /// each line's writes go back as one run.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn process_block(&mut self, x: &[f32], out_l: &mut [f32], out_r: &mut [f32]) {
        self.process_block_tap(x, out_l, out_r, &mut NoTap);
    }

    /// [`Reverb::process_block`], calling `tap.frame(j)` once per frame `j` in order in the
    /// loop of the damping chains: another chain from frame to frame (the delay's feedback)
    /// then runs beside them.
    #[inline(always)]
    fn process_block_tap(
        &mut self,
        x: &[f32],
        out_l: &mut [f32],
        out_r: &mut [f32],
        tap: &mut impl FrameTap,
    ) {
        let n = x.len().min(out_l.len()).min(out_r.len());
        if n > MAX_BLOCK || self.lengths.iter().any(|&len| len < n) {
            for i in 0..n {
                (out_l[i], out_r[i]) = self.process(x[i]);
                tap.frame(i);
            }
            return;
        }
        for (i, line) in self.lines.iter().enumerate() {
            line.read_run(self.lengths[i], &mut self.taps[i][..n]);
        }
        // The pre-delayed input: frame by frame a write, then a read `predelay` back, which is
        // a read `predelay - 1` back before the write; as runs when that reaches before the
        // block.
        let mut inputs = [0.0f32; MAX_BLOCK];
        if self.predelay > n {
            self.pre.read_run(self.predelay - 1, &mut inputs[..n]);
            self.pre.write_run(&x[..n]);
        } else {
            for (input, x) in inputs.iter_mut().zip(&x[..n]) {
                self.pre.write(*x);
                *input = self.pre.read(self.predelay);
            }
        }
        // Only the damping is a chain from frame to frame (and no line's output for this block
        // depends on its input for this block): first the eight damping chains side by side,
        // each line's output replacing its tap; then the mixing, the feedback and the outputs
        // frame-wise over the whole block, which vectorizes across frames. The same operations
        // in the same order per frame as [`Reverb::process`].
        let (taps, feed) = (&mut *self.taps, &mut *self.feed);
        let (damp, gains) = (self.damp, self.gains);
        let mut lp = self.lp;
        #[allow(clippy::needless_range_loop)] // eight chains side by side, frame by frame
        for j in 0..n {
            for i in 0..8 {
                let v = taps[i][j];
                lp[i] = flush(v + (lp[i] - v) * damp);
                taps[i][j] = lp[i] * gains[i];
            }
            tap.frame(j);
        }
        self.lp = lp;
        // Each frame's eight outputs summed in order, as `Iterator::sum` of them (from -0.0,
        // and -0.0 + x is x), frames side by side.
        let mut sums = [0.0f32; MAX_BLOCK];
        sums[..n].copy_from_slice(&taps[0][..n]);
        for t in &taps[1..] {
            for (s, o) in sums[..n].iter_mut().zip(&t[..n]) {
                *s += o;
            }
        }
        for s in sums[..n].iter_mut() {
            *s *= 2.0 / 8.0;
        }
        for (f, t) in feed.iter_mut().zip(taps.iter()) {
            for (((f, &o), &s), &input) in f[..n]
                .iter_mut()
                .zip(&t[..n])
                .zip(&sums[..n])
                .zip(&inputs[..n])
            {
                *f = flush(o - s + input);
            }
        }
        for j in 0..n {
            let l = taps[0][j] - taps[2][j] + taps[4][j] - taps[6][j];
            let r = taps[1][j] - taps[3][j] + taps[5][j] - taps[7][j];
            out_l[j] = l * 0.35;
            out_r[j] = r * 0.35;
        }
        for (line, f) in self.lines.iter_mut().zip(feed.iter()) {
            line.write_run(&f[..n]);
        }
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
    /// The delay time in frames, gliding to a new time (a tempo or division change bends the
    /// repeats' pitch briefly instead of clicking); exact once it arrives.
    frames: Smoothed,
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
            frames: Smoothed::new(1.0, 60.0, sr),
            feedback: 0.4,
            tone: 0.2,
            lp: (0.0, 0.0),
            ping_pong: true,
        }
    }

    /// Delay time in frames (see [`delay_frames`]), feedback 0..0.95, tone 0..1 (how much the
    /// loop's low-pass darkens each repeat).
    pub fn set(&mut self, frames: usize, feedback: f32, tone: f32) {
        self.frames
            .set(frames.clamp(1, self.l.buf.len() - 1) as f32);
        self.feedback = feedback.clamp(0.0, 0.95);
        self.tone = tone.clamp(0.0, 1.0) * 0.9;
    }

    /// One frame: the wet signal for a stereo send.
    #[inline]
    pub fn process(&mut self, xl: f32, xr: f32) -> (f32, f32) {
        let f = self.frames.tick();
        let (dl, dr) = (self.l.read_frac(f), self.r.read_frac(f));
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

    /// [`Delay::process`] over a block into `wl`/`wr`, when the time is settled on a whole
    /// number of frames at least the block's length: each line's reads for the block were
    /// all written before it, so they are read as one run, the loop runs frame by frame and
    /// its writes go back as one run (the same samples). Otherwise returns false, having
    /// done nothing.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    fn process_block(&mut self, xl: &[f32], xr: &[f32], wl: &mut [f32], wr: &mut [f32]) -> bool {
        let n = xl.len();
        let Some(mut run) = self.block_start(n, wl, wr) else {
            return false;
        };
        for i in 0..n {
            run.frame(i, xl[i], xr[i], wl[i], wr[i]);
        }
        run.finish(self, n);
        true
    }

    /// The block path's start (`n` frames): with the time settled on a whole number of frames
    /// at least `n`, each line's reads for the block as one run into `wl`/`wr`; then
    /// [`DelayRun::frame`] for each frame in order and [`DelayRun::finish`].
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    fn block_start(&mut self, n: usize, wl: &mut [f32], wr: &mut [f32]) -> Option<DelayRun> {
        let f = self.frames.value();
        let whole = f as usize;
        if !self.frames.settled() || f < 1.0 || whole as f32 != f || whole < n || n > MAX_BLOCK {
            return None;
        }
        self.l.read_run(whole, &mut wl[..n]);
        self.r.read_run(whole, &mut wr[..n]);
        Some(DelayRun {
            lp: self.lp,
            tone: self.tone,
            feedback: self.feedback,
            ping_pong: self.ping_pong,
            to_l: [0.0; MAX_BLOCK],
            to_r: [0.0; MAX_BLOCK],
        })
    }

    /// Jumps to the time last set (no glide: nothing is sounding yet).
    pub fn settle(&mut self) {
        let t = self.frames.target;
        self.frames.reset(t);
    }

    pub fn clear(&mut self) {
        self.l.clear();
        self.r.clear();
        self.lp = (0.0, 0.0);
    }
}

/// Work run frame by frame inside another effect's loop ([`Reverb::process_block_tap`]).
trait FrameTap {
    fn frame(&mut self, j: usize);
}

/// Nothing beside.
struct NoTap;

impl FrameTap for NoTap {
    #[inline(always)]
    fn frame(&mut self, _: usize) {}
}

/// The delay's block path beside the reverb: its run, the delay's input (`xl`, `xr`) and its
/// lines' outputs (`dl`, `dr`) for the block.
struct DelayTap<'a> {
    run: &'a mut DelayRun,
    xl: &'a [f32],
    xr: &'a [f32],
    dl: &'a [f32],
    dr: &'a [f32],
}

impl FrameTap for DelayTap<'_> {
    #[inline(always)]
    fn frame(&mut self, j: usize) {
        self.run
            .frame(j, self.xl[j], self.xr[j], self.dl[j], self.dr[j]);
    }
}

/// A block of the delay's block path under way ([`Delay::block_start`]): the loop's low-pass
/// and feedback frame by frame, the lines' writes kept for the end.
struct DelayRun {
    lp: (f32, f32),
    tone: f32,
    feedback: f32,
    ping_pong: bool,
    to_l: [f32; MAX_BLOCK],
    to_r: [f32; MAX_BLOCK],
}

impl DelayRun {
    /// Frame `i`: the input `xl`/`xr`, the lines' outputs `dl`/`dr` (read at the start).
    #[inline(always)]
    fn frame(&mut self, i: usize, xl: f32, xr: f32, dl: f32, dr: f32) {
        let (lp0, lp1) = self.lp;
        let lp0 = flush(dl + (lp0 - dl) * self.tone);
        let lp1 = flush(dr + (lp1 - dr) * self.tone);
        self.lp = (lp0, lp1);
        let (fl, fr) = (lp0 * self.feedback, lp1 * self.feedback);
        (self.to_l[i], self.to_r[i]) = if self.ping_pong {
            (0.5 * (xl + xr) + fr, fl)
        } else {
            (xl + fl, xr + fr)
        };
    }

    /// The block's writes into the lines, and the low-pass's state back.
    fn finish(self, d: &mut Delay, n: usize) {
        d.lp = self.lp;
        d.l.write_run(&self.to_l[..n]);
        d.r.write_run(&self.to_r[..n]);
    }
}

/// The filter's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterMode {
    /// The sound passes unchanged.
    Off,
    LowPass,
    HighPass,
    BandPass,
}

impl FilterMode {
    /// The mode of a code (0 off, 1 low-pass, 2 high-pass, 3 band-pass; the core's order).
    pub fn from_code(c: u32) -> FilterMode {
        match c {
            1 => FilterMode::LowPass,
            2 => FilterMode::HighPass,
            3 => FilterMode::BandPass,
            _ => FilterMode::Off,
        }
    }

    pub fn code(self) -> u32 {
        match self {
            FilterMode::Off => 0,
            FilterMode::LowPass => 1,
            FilterMode::HighPass => 2,
            FilterMode::BandPass => 3,
        }
    }
}

/// Frames between two steps of a gliding filter's cutoff and resonance, and computations of
/// its coefficients (counted from frame 0, so any block size computes the same ones): 6 kHz
/// at 48 kHz, about 18 steps in each time constant of a cutoff lock's 3 ms glide. Against
/// computing them every frame, the every-effect reference render differs by -56 dB (RMS), at
/// most 0.023 during the widest glide; every 32 frames it was -43 dB and 0.14, for 1.4 M
/// fewer instructions in 2 s. The glides step at this rate too (each step covering its
/// frames of the time constant), rather than every frame with only every eighth value used.
pub const GLIDE_FRAMES: u64 = 8;

/// Frames over which a filter changes mode (a crossfade from the old shape to the new).
const MODE_FADE: u32 = 480;

/// A resonant multimode filter whose cutoff and resonance glide (a per-step cutoff lock sweeps
/// over a few milliseconds, in octaves, rather than stepping) and whose mode changes crossfade, so
/// nothing clicks. Off and settled, it costs nothing.
#[derive(Clone, Debug)]
pub struct Filter {
    svf: Svf,
    cutoff: Smoothed,
    res: Smoothed,
    mode: FilterMode,
    /// The mode being faded out, and frames of the fade left.
    from: FilterMode,
    fade_left: u32,
    sr: f32,
    /// The cutoff and resonance the coefficients were last computed for.
    applied: (f32, f32),
    /// A new target since the coefficients were last computed: the next frame computes them
    /// (a glide starts on its own frame, not the next control frame).
    fresh: bool,
}

impl Filter {
    pub fn new(sr: f32) -> Filter {
        Filter {
            svf: Svf::default(),
            cutoff: Smoothed::every(libm::log2f(20_000.0), 3.0, sr, GLIDE_FRAMES as u32),
            res: Smoothed::every(0.0, 5.0, sr, GLIDE_FRAMES as u32),
            mode: FilterMode::Off,
            from: FilterMode::Off,
            fade_left: 0,
            sr,
            applied: (-1.0, -1.0),
            fresh: true,
        }
    }

    /// Cutoff in Hz (20..20000), resonance 0..1: glides there from the current values.
    pub fn set(&mut self, cutoff: f32, res: f32) {
        let (c, r) = (
            libm::log2f(cutoff.clamp(20.0, 20_000.0)),
            res.clamp(0.0, 1.0),
        );
        if (c, r) != (self.cutoff.target, self.res.target) {
            self.fresh = true;
        }
        self.cutoff.set(c);
        self.res.set(r);
    }

    /// Jumps to these settings (a fresh start: nothing is sounding through it yet).
    pub fn reset(&mut self, mode: FilterMode, cutoff: f32, res: f32) {
        self.cutoff.reset(libm::log2f(cutoff.clamp(20.0, 20_000.0)));
        self.res.reset(res.clamp(0.0, 1.0));
        self.mode = mode;
        self.from = mode;
        self.fade_left = 0;
        self.svf = Svf::default();
        self.applied = (-1.0, -1.0);
        self.fresh = true;
    }

    /// Changes the shape, crossfading from the old one.
    pub fn set_mode(&mut self, mode: FilterMode) {
        if mode != self.mode {
            self.from = self.mode;
            self.mode = mode;
            self.fade_left = MODE_FADE;
        }
    }

    pub fn mode(&self) -> FilterMode {
        self.mode
    }

    /// Whether processing would change nothing (off and not fading).
    pub fn is_idle(&self) -> bool {
        self.mode == FilterMode::Off && self.fade_left == 0
    }

    /// While idle: the glides jump to their targets (nothing is heard through the filter, so
    /// nothing can click), and the next sound starts from there.
    pub fn skip(&mut self) {
        let (c, r) = (self.cutoff.target, self.res.target);
        self.cutoff.reset(c);
        self.res.reset(r);
    }

    #[inline]
    fn shape(mode: FilterMode, x: f32, o: &crate::dsp::SvfOut) -> f32 {
        match mode {
            FilterMode::Off => x,
            FilterMode::LowPass => o.low,
            FilterMode::HighPass => o.high,
            FilterMode::BandPass => o.band,
        }
    }

    /// The glide's step on absolute frame `frame`: the cutoff and resonance move on the
    /// control frames (every `GLIDE_FRAMES` absolute frames, so any block size moves them on
    /// the same frames) and on a new target's first frame (a lock's glide starts on its own
    /// frame); the coefficients follow them then, and also on a frame that finds them
    /// settled elsewhere than the coefficients (the glides jumped while the filter was idle).
    /// Only while gliding: a steady filter costs no trigonometry. The cutoff glides in
    /// octaves, as the ear hears it. Whether the coefficients changed.
    #[inline(always)]
    fn glide_step(&mut self, frame: u64) -> bool {
        let idle = self.is_idle();
        let control = frame.is_multiple_of(GLIDE_FRAMES) || (self.fresh && !idle);
        if control {
            self.cutoff.tick();
            self.res.tick();
        }
        if idle {
            return false;
        }
        self.fresh &= !control;
        let now = (self.cutoff.value(), self.res.value());
        if now == self.applied || !(control || (self.cutoff.settled() && self.res.settled())) {
            return false;
        }
        self.svf.set(libm::exp2f(now.0), now.1, self.sr);
        self.applied = now;
        true
    }

    /// One frame; `frame` is its absolute frame number (the engine's).
    #[inline]
    pub fn process(&mut self, x: f32, frame: u64) -> f32 {
        self.glide_step(frame);
        if self.is_idle() {
            return x;
        }
        let o = self.svf.process(x);
        self.svf.flush_denormals();
        let y = Self::shape(self.mode, x, &o);
        if self.fade_left == 0 {
            return y;
        }
        self.fade_left -= 1;
        let t = self.fade_left as f32 / MODE_FADE as f32;
        let y = y + (Self::shape(self.from, x, &o) - y) * t;
        if self.fade_left == 0 && self.mode == FilterMode::Off {
            // Settled off: start clean next time it is turned on.
            self.svf = Svf::default();
            self.applied = (-1.0, -1.0);
        }
        y
    }

    /// Whether the filter is on, settled and not fading: then each frame is one plain
    /// [`Svf`] step, and this is the output it keeps (0 low, 1 band, 2 high).
    pub fn steady_output(&self) -> Option<u8> {
        let steady = self.cutoff.settled()
            && self.res.settled()
            && self.fade_left == 0
            && (self.cutoff.value(), self.res.value()) == self.applied;
        match self.mode {
            _ if !steady => None,
            FilterMode::Off => None,
            FilterMode::LowPass => Some(0),
            FilterMode::BandPass => Some(1),
            FilterMode::HighPass => Some(2),
        }
    }

    /// Whether the filter is on and not fading, and not [`Filter::steady_output`]: it glides,
    /// each frame one [`Svf`] step with coefficients that change on some frames
    /// ([`Filter::glide`]); the output it keeps (0 low, 1 band, 2 high).
    pub fn glide_output(&self) -> Option<u8> {
        if self.fade_left != 0 || self.steady_output().is_some() {
            return None;
        }
        match self.mode {
            FilterMode::Off => None,
            FilterMode::LowPass => Some(0),
            FilterMode::BandPass => Some(1),
            FilterMode::HighPass => Some(2),
        }
    }

    /// While [`Filter::glide_output`]: the glides over `n` frames from absolute frame `frame`,
    /// the coefficients computed on the frames [`Filter::process`] computes them on; `at(i,
    /// svf)` after each, `svf` holding the coefficients frame `i` on uses. The state is not
    /// stepped (the caller runs the frames, e.g. in a [`crate::dsp::SvfBank`]).
    /// Only the frames where something can change are visited: the first, then the control
    /// frames ([`Filter::glide_step`]).
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn glide(&mut self, frame: u64, n: usize, mut at: impl FnMut(usize, &Svf)) {
        let mut i = 0;
        while i < n {
            let f = frame + i as u64;
            if self.glide_step(f) {
                at(i, &self.svf);
            }
            i += (GLIDE_FRAMES - f % GLIDE_FRAMES) as usize;
        }
    }

    /// The state-variable filter itself (for [`crate::dsp::SvfBank`], while steady).
    pub fn svf_mut(&mut self) -> &mut Svf {
        &mut self.svf
    }

    /// [`Filter::process`] over a stretch starting at absolute frame `frame`, in place: the
    /// same samples, with a fast path while nothing glides or fades (the usual case).
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn process_block(&mut self, buf: &mut [f32], frame: u64) {
        if self.steady_output().is_none() {
            for (i, x) in buf.iter_mut().enumerate() {
                *x = self.process(*x, frame + i as u64);
            }
            return;
        }
        macro_rules! run {
            ($out:ident) => {
                for x in buf.iter_mut() {
                    let o = self.svf.process(*x);
                    self.svf.flush_denormals();
                    *x = o.$out;
                }
            };
        }
        match self.mode {
            FilterMode::LowPass => run!(low),
            FilterMode::HighPass => run!(high),
            FilterMode::BandPass => run!(band),
            FilterMode::Off => {}
        }
    }
}

/// Soft saturation with `amount` 0..1: up to 18 dB into the curve, the level brought back.
#[inline]
pub fn drive(x: f32, amount: f32) -> f32 {
    let (k, norm) = drive_gains(amount);
    crate::dsp::soft_clip(x * k) * norm
}

/// A steady drive over a stretch, its gains from [`drive_gains`].
#[cfg_attr(target_arch = "x86_64", inline(always))]
pub fn drive_run(x: &mut [f32], (k, norm): (f32, f32)) {
    for x in x.iter_mut() {
        *x = crate::dsp::soft_clip(*x * k) * norm;
    }
}

/// The gain into the curve and the level correction after it, for a drive amount.
#[inline]
fn drive_gains(amount: f32) -> (f32, f32) {
    (1.0 + 7.0 * amount, 1.0 / (1.0 + 1.2 * amount))
}

/// A stereo chorus: two modulated delay lines (10 ms plus up to 6 ms of sway), their LFOs a
/// quarter cycle apart, mixed with the dry sound.
#[derive(Clone, Debug)]
pub struct Chorus {
    l: Line,
    r: Line,
    /// The LFO (the left line sways with its sine, the right a quarter cycle later): its
    /// phase in cycles at frame `anchor`, and the rate in Hz since then. Frame `f`'s phase is
    /// `phase + (f - anchor) * rate / sr`, from the frame alone, so it is the same whatever
    /// the blocks; a new rate starts a new anchor where the old one had got to.
    anchor: u64,
    phase: f64,
    rate: f32,
    sr: f32,
}

const CHORUS_BASE_MS: f32 = 10.0;
const CHORUS_SWAY_MS: f32 = 6.0;

impl Chorus {
    pub fn new(sr: f32) -> Chorus {
        // Room for a block's writes ahead of its reads too (see `process_block`).
        let cap = ((CHORUS_BASE_MS + CHORUS_SWAY_MS) * 0.001 * sr) as usize + 4 + MAX_BLOCK;
        Chorus {
            l: Line::new(cap),
            r: Line::new(cap),
            anchor: 0,
            phase: 0.0,
            rate: 0.0,
            sr,
        }
    }

    /// The LFO's phase (cycles, `0..1`) at `frame` (before the anchor too).
    fn phase_at(&self, frame: u64) -> f64 {
        let since = frame.wrapping_sub(self.anchor) as i64 as f64;
        let p = self.phase + since * self.rate as f64 / self.sr as f64;
        p - libm::floor(p)
    }

    /// The wet (delayed, swaying) signal for a block of `l`/`r` (at most [`MAX_BLOCK`] frames,
    /// the first one `frame`) into `wl`/`wr`; `rate` in Hz, `depth` 0..1. Frame by frame this
    /// would write a frame, then read it back `delay` frames ago; here the block is written
    /// first and frame `i` reads `n - 1 - i` frames further back, the same samples (the lines
    /// hold a block more than the longest delay).
    ///
    /// Each frame's LFO value comes from its own phase (no chain from frame to frame): the
    /// phase at the last frame whose number is a multiple of 64, in `f64`, plus the frames
    /// since, in `f32`. So the delays, the read positions and the interpolation all run
    /// several frames at once; only the loads are one by one.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    #[allow(clippy::too_many_arguments)]
    fn process_block(
        &mut self,
        frame: u64,
        l: &[f32],
        r: &[f32],
        wl: &mut [f32],
        wr: &mut [f32],
        rate: f32,
        depth: f32,
    ) {
        const SPAN: u64 = 64;
        let n = l
            .len()
            .min(r.len())
            .min(wl.len())
            .min(wr.len())
            .min(MAX_BLOCK);
        self.l.write_run(&l[..n]);
        self.r.write_run(&r[..n]);
        // (A rate past 20 Hz, or not a number, is not one the session allows.)
        let rate = if rate > 0.0 { rate.min(20.0) } else { 0.0 };
        if rate != self.rate {
            self.phase = self.phase_at(frame);
            self.anchor = frame;
            self.rate = rate;
        }
        let inc = rate / self.sr;
        // A delay in frames from an LFO value `m` (-1..1).
        let (base, sway) = (
            CHORUS_BASE_MS * 0.001 * self.sr,
            CHORUS_SWAY_MS * depth * 0.5 * 0.001 * self.sr,
        );
        let mut dl = [0.0f32; MAX_BLOCK];
        let mut dr = [0.0f32; MAX_BLOCK];
        let mut i = 0;
        while i < n {
            let start = (frame + i as u64) / SPAN * SPAN;
            let end = ((start + SPAN - frame) as usize).min(n);
            let p0 = self.phase_at(start) as f32;
            let first = (frame + i as u64 - start) as i32;
            for (k, (dl, dr)) in dl[i..end].iter_mut().zip(&mut dr[i..end]).enumerate() {
                let p = p0 + (first + k as i32) as f32 * inc;
                let p = if p >= 1.0 { p - 1.0 } else { p };
                let q = p + 0.25;
                let q = if q >= 1.0 { q - 1.0 } else { q };
                *dl = base + sway * (1.0 + crate::dsp::sine_select(p));
                *dr = base + sway * (1.0 + crate::dsp::sine_select(q));
            }
            i = end;
        }
        self.l.read_sway(&dl[..n], &mut wl[..n]);
        self.r.read_sway(&dr[..n], &mut wr[..n]);
    }

    pub fn clear(&mut self) {
        self.l.clear();
        self.r.clear();
        // The LFO starts again from 0 at the next block.
        (self.phase, self.rate) = (0.0, 0.0);
    }
}

/// A biquad (transposed direct form II) for the equaliser's bands.
#[derive(Clone, Copy, Debug, Default)]
struct Biquad {
    b: [f32; 3],
    a: [f32; 2],
    z: [f32; 2],
}

impl Biquad {
    /// A shelf or peak of `gain_db` at `f` Hz (the Audio EQ Cookbook's forms).
    fn design(&mut self, kind: Band, f: f32, gain_db: f32, sr: f32) {
        let a = libm::powf(10.0, gain_db / 40.0);
        let w = 2.0 * core::f32::consts::PI * f / sr;
        let (sn, cs) = libm::sincosf(w);
        let (b, a_) = match kind {
            Band::Peak => {
                let alpha = sn / (2.0 * 0.8);
                (
                    [1.0 + alpha * a, -2.0 * cs, 1.0 - alpha * a],
                    [1.0 + alpha / a, -2.0 * cs, 1.0 - alpha / a],
                )
            }
            Band::LowShelf | Band::HighShelf => {
                // Shelf slope 1.
                let alpha = sn / 2.0 * core::f32::consts::SQRT_2;
                let sa = 2.0 * libm::sqrtf(a) * alpha;
                let sign = if kind == Band::LowShelf { 1.0 } else { -1.0 };
                let (p, m) = (a + 1.0, a - 1.0);
                (
                    [
                        a * (p - sign * m * cs + sa),
                        sign * 2.0 * a * (m - sign * p * cs),
                        a * (p - sign * m * cs - sa),
                    ],
                    [
                        p + sign * m * cs + sa,
                        -sign * 2.0 * (m + sign * p * cs),
                        p + sign * m * cs - sa,
                    ],
                )
            }
        };
        let n = 1.0 / a_[0];
        self.b = [b[0] * n, b[1] * n, b[2] * n];
        self.a = [a_[1] * n, a_[2] * n];
    }

    #[inline]
    fn process(&mut self, x: f32) -> f32 {
        let y = self.b[0] * x + self.z[0];
        self.z[0] = flush(self.b[1] * x - self.a[0] * y + self.z[1]);
        self.z[1] = flush(self.b[2] * x - self.a[1] * y);
        y
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Band {
    LowShelf,
    Peak,
    HighShelf,
}

const EQ_BANDS: [(Band, f32); 3] = [
    (Band::LowShelf, 200.0),
    (Band::Peak, 1000.0),
    (Band::HighShelf, 5000.0),
];

/// Frames between two updates of the equaliser's coefficients while a gain glides, counted
/// from frame 0 (so any block size computes the same coefficients on the same frames).
pub const CONTROL_FRAMES: u64 = 32;

/// Three bands: a low shelf at 200 Hz, a peak at 1 kHz and a high shelf at 5 kHz, each
/// -12..+12 dB, on both channels.
#[derive(Clone, Debug)]
pub struct Eq3 {
    bands: [[Biquad; 3]; 2],
    gains: [Smoothed; 3],
    applied: [f32; 3],
    sr: f32,
}

impl Eq3 {
    pub fn new(sr: f32) -> Eq3 {
        let mut e = Eq3 {
            bands: [[Biquad::default(); 3]; 2],
            gains: [Smoothed::new(0.0, 30.0, sr); 3],
            applied: [f32::NAN; 3],
            sr,
        };
        e.update();
        e
    }

    pub fn set(&mut self, db: [f32; 3], immediate: bool) {
        for (g, v) in self.gains.iter_mut().zip(db) {
            if immediate {
                g.reset(v);
            } else {
                g.set(v);
            }
        }
        if immediate {
            self.update();
        }
    }

    /// Flat and not moving: processing would change nothing.
    pub fn is_idle(&self) -> bool {
        self.gains
            .iter()
            .all(|g| g.value() == 0.0 && g.target == 0.0)
    }

    fn update(&mut self) {
        for (i, (kind, f)) in EQ_BANDS.iter().enumerate() {
            let g = self.gains[i].value();
            if g != self.applied[i] {
                for ch in 0..2 {
                    self.bands[ch][i].design(*kind, *f, g, self.sr);
                }
                self.applied[i] = g;
            }
        }
    }

    #[inline]
    pub fn process(&mut self, frame: u64, l: f32, r: f32) -> (f32, f32) {
        for g in self.gains.iter_mut() {
            g.tick();
        }
        if frame.is_multiple_of(CONTROL_FRAMES) {
            self.update();
        }
        let mut out = [l, r];
        for (ch, o) in out.iter_mut().enumerate() {
            for b in self.bands[ch].iter_mut() {
                *o = b.process(*o);
            }
        }
        (out[0], out[1])
    }

    /// [`Eq3::process`] over a block in place, `frame` being its first frame. With the gains
    /// settled and their coefficients applied (nothing would change them within the block),
    /// the two channels run side by side in lanes with nothing ticked or checked per frame,
    /// each lane the arithmetic of [`Biquad::process`] in the same order (the same bits).
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn process_block(&mut self, frame: u64, l: &mut [f32], r: &mut [f32]) {
        self.process_block_tap(frame, l, r, |_, _, _| {});
    }

    /// [`Eq3::process_block`], handing each frame's output (its index, left, right) to `tap`
    /// as soon as it is computed, in order: the compressor's detector, a chain from frame to
    /// frame of its own, then runs in the same loop as the bands' chains.
    #[inline(always)]
    pub fn process_block_tap(
        &mut self,
        frame: u64,
        l: &mut [f32],
        r: &mut [f32],
        mut tap: impl FnMut(usize, f32, f32),
    ) {
        let steady =
            (0..3).all(|i| self.gains[i].settled() && self.gains[i].value() == self.applied[i]);
        if !steady {
            for (i, (x, y)) in l.iter_mut().zip(r.iter_mut()).enumerate() {
                (*x, *y) = self.process(frame + i as u64, *x, *y);
                tap(i, *x, *y);
            }
            return;
        }
        // The three bands of both channels side by side as a wavefront: at step `t` band `k`
        // (lanes `2k`, `2k + 1`: left, right) filters frame `t - k`, its input being what band
        // `k - 1` gave at the step before. The six lanes (two idle) do not wait on each other
        // within a step; each is the arithmetic of [`Biquad::process`] in the same order (the
        // same bits). A lane whose frame is outside the block keeps its state.
        let n = l.len().min(r.len());
        let (mut b0, mut b1, mut b2) = ([0.0f32; 8], [0.0f32; 8], [0.0f32; 8]);
        let (mut a0, mut a1) = ([0.0f32; 8], [0.0f32; 8]);
        let (mut z0, mut z1) = ([0.0f32; 8], [0.0f32; 8]);
        for k in 0..3 {
            for c in 0..2 {
                let (q, j) = (&self.bands[c][k], 2 * k + c);
                (b0[j], b1[j], b2[j]) = (q.b[0], q.b[1], q.b[2]);
                (a0[j], a1[j]) = (q.a[0], q.a[1]);
                (z0[j], z1[j]) = (q.z[0], q.z[1]);
            }
        }
        // One step: every lane's output for input `x`; lanes not in `live` keep their state.
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        fn step(
            x: &[f32; 8],
            live: &[bool; 8],
            b: (&[f32; 8], &[f32; 8], &[f32; 8]),
            a: (&[f32; 8], &[f32; 8]),
            z0: &mut [f32; 8],
            z1: &mut [f32; 8],
        ) -> [f32; 8] {
            let mut y = [0.0f32; 8];
            for j in 0..8 {
                y[j] = b.0[j] * x[j] + z0[j];
                let n0 = b.1[j] * x[j] - a.0[j] * y[j] + z1[j];
                let n1 = b.2[j] * x[j] - a.1[j] * y[j];
                let n0 = if n0.abs() < 1e-15 { 0.0 } else { n0 };
                let n1 = if n1.abs() < 1e-15 { 0.0 } else { n1 };
                z0[j] = if live[j] { n0 } else { z0[j] };
                z1[j] = if live[j] { n1 } else { z1[j] };
            }
            y
        }
        let (bs, as_) = ((&b0, &b1, &b2), (&a0, &a1));
        let mut x = [0.0f32; 8];
        // The edges: steps where some band has no frame in the block.
        let edge = |t: usize,
                    x: &mut [f32; 8],
                    z: (&mut [f32; 8], &mut [f32; 8]),
                    l: &mut [f32],
                    r: &mut [f32]| {
            if t < n {
                (x[0], x[1]) = (l[t], r[t]);
            }
            let live: [bool; 8] = core::array::from_fn(|j| j < 6 && t >= j / 2 && t - j / 2 < n);
            let y = step(x, &live, bs, as_, z.0, z.1);
            (x[2], x[3], x[4], x[5]) = (y[0], y[1], y[2], y[3]);
            (t >= 2).then(|| {
                (l[t - 2], r[t - 2]) = (y[4], y[5]);
                (y[4], y[5])
            })
        };
        for t in 0..2.min(n + 2) {
            if let Some((yl, yr)) = edge(t, &mut x, (&mut z0, &mut z1), l, r) {
                tap(t - 2, yl, yr);
            }
        }
        if n > 2 {
            for t in 2..n {
                (x[0], x[1]) = (l[t], r[t]);
                let y = step(&x, &[true; 8], bs, as_, &mut z0, &mut z1);
                (l[t - 2], r[t - 2]) = (y[4], y[5]);
                tap(t - 2, y[4], y[5]);
                (x[2], x[3], x[4], x[5]) = (y[0], y[1], y[2], y[3]);
            }
        }
        for t in 2.max(n)..n + 2 {
            if let Some((yl, yr)) = edge(t, &mut x, (&mut z0, &mut z1), l, r) {
                tap(t - 2, yl, yr);
            }
        }
        for k in 0..3 {
            for c in 0..2 {
                self.bands[c][k].z = [z0[2 * k + c], z1[2 * k + c]];
            }
        }
    }

    pub fn clear(&mut self) {
        for ch in self.bands.iter_mut() {
            for b in ch.iter_mut() {
                b.z = [0.0; 2];
            }
        }
    }
}

/// A feed-forward compressor, the two channels linked: a peak detector with attack and
/// release, a hard knee at the threshold, make-up gain after.
#[derive(Clone, Debug)]
pub struct Compressor {
    env: f32,
    sr: f32,
    ratio: f32,
    threshold_db: f32,
    /// The detector's coefficients and the linear threshold, from [`Compressor::set`].
    attack: f32,
    release: f32,
    threshold: f32,
}

/// Compressor settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompParams {
    pub threshold_db: f32,
    pub ratio: f32,
    pub attack_ms: f32,
    pub release_ms: f32,
    pub makeup_db: f32,
}

impl Compressor {
    pub fn new(sr: f32) -> Compressor {
        let mut c = Compressor {
            env: 0.0,
            sr,
            ratio: 1.0,
            threshold_db: 0.0,
            attack: 0.0,
            release: 0.0,
            threshold: 1.0,
        };
        c.set(&MasterFx::default().comp);
        c
    }

    /// New settings (computed once here, not per frame).
    pub fn set(&mut self, p: &CompParams) {
        let coeff = |ms: f32| 1.0 - libm::expf(-1.0 / (ms.max(0.01) * 0.001 * self.sr));
        self.attack = coeff(p.attack_ms);
        self.release = coeff(p.release_ms);
        self.threshold = libm::powf(10.0, p.threshold_db / 20.0);
        self.ratio = p.ratio;
        self.threshold_db = p.threshold_db;
    }

    /// The gain to apply to each frame of `l`, `r` (before make-up), into `g`. The detector
    /// runs frame by frame first (each frame waits on the one before); then the gains, which
    /// do not, several frames at once, in base 2 with plain-arithmetic logarithm and power
    /// (`log2_approx`, `exp2_approx`: libm's calls per frame were a third of the
    /// compressor's time).
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn gains(&mut self, l: &[f32], r: &[f32], g: &mut [f32]) {
        for ((g, l), r) in g.iter_mut().zip(l).zip(r) {
            *g = self.detect(*l, *r);
        }
        self.gains_from_envelope(g);
    }

    /// The detector's step for one frame: its envelope after it.
    #[inline(always)]
    pub fn detect(&mut self, l: f32, r: f32) -> f32 {
        let x = l.abs().max(r.abs());
        let c = if x > self.env {
            self.attack
        } else {
            self.release
        };
        self.env = flush(self.env + (x - self.env) * c);
        self.env
    }

    /// The second half of [`Compressor::gains`]: `g` holds each frame's envelope from
    /// [`Compressor::detect`] and gets its gain.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn gains_from_envelope(&self, g: &mut [f32]) {
        if self.ratio <= 1.0 {
            g.fill(1.0);
            return;
        }
        // In dB: 20 log10(env) - threshold; the gain 10^(-over (1 - 1/ratio) / 20), both through
        // base 2.
        const DB_PER_OCTAVE: f32 = 6.020_6;
        let (threshold, threshold_db) = (self.threshold, self.threshold_db);
        let slope = 1.0 - 1.0 / self.ratio;
        for g in g.iter_mut() {
            let env = *g;
            // `env` above the threshold is positive and normal; below, the value is not used.
            let over = DB_PER_OCTAVE * crate::dsp::log2_approx(env.max(1e-30)) - threshold_db;
            let gain = crate::dsp::exp2_approx(-over * slope / DB_PER_OCTAVE);
            *g = if env <= threshold || over <= 0.0 {
                1.0
            } else {
                gain
            };
        }
    }

    pub fn clear(&mut self) {
        self.env = 0.0;
    }
}

/// The master chain's settings as the engine plays them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MasterFx {
    /// The whole chain off (the dry mix only; sends' returns too).
    pub bypass: bool,
    pub reverb_mix: f32,
    pub reverb: ReverbParams,
    pub delay_mix: f32,
    pub delay_division: Division,
    pub delay_feel: Feel,
    pub delay_feedback: f32,
    pub delay_tone: f32,
    pub delay_ping_pong: bool,
    pub chorus_mix: f32,
    /// Hz.
    pub chorus_rate: f32,
    pub chorus_depth: f32,
    pub drive: f32,
    /// Low, mid and high band gains in dB.
    pub eq: [f32; 3],
    pub comp: CompParams,
}

impl Default for MasterFx {
    /// Everything off: the dry mix.
    fn default() -> MasterFx {
        MasterFx {
            bypass: false,
            reverb_mix: 0.0,
            reverb: ReverbParams::default(),
            delay_mix: 0.0,
            delay_division: Division::Eighth,
            delay_feel: Feel::Dotted,
            delay_feedback: 0.35,
            delay_tone: 0.3,
            delay_ping_pong: true,
            chorus_mix: 0.0,
            chorus_rate: 0.6,
            chorus_depth: 0.5,
            drive: 0.0,
            eq: [0.0; 3],
            comp: CompParams {
                threshold_db: 0.0,
                ratio: 1.0,
                attack_ms: 10.0,
                release_ms: 150.0,
                makeup_db: 0.0,
            },
        }
    }
}

/// How many numbers [`MasterFx::to_array`] gives.
pub const MASTER_FX_VALUES: usize = 24;

impl MasterFx {
    /// The settings as numbers, in a fixed order: the AudioWorklet's `effects` message.
    pub fn to_array(&self) -> [f32; MASTER_FX_VALUES] {
        let div = match self.delay_division {
            Division::Sixteenth => 0.0,
            Division::Eighth => 1.0,
            Division::Quarter => 2.0,
            Division::Half => 3.0,
        };
        let feel = match self.delay_feel {
            Feel::Straight => 0.0,
            Feel::Dotted => 1.0,
            Feel::Triplet => 2.0,
        };
        [
            self.bypass as u8 as f32,
            self.reverb_mix,
            self.reverb.size,
            self.reverb.decay,
            self.reverb.damping,
            self.reverb.predelay_ms,
            self.delay_mix,
            div,
            feel,
            self.delay_feedback,
            self.delay_tone,
            self.delay_ping_pong as u8 as f32,
            self.chorus_mix,
            self.chorus_rate,
            self.chorus_depth,
            self.drive,
            self.eq[0],
            self.eq[1],
            self.eq[2],
            self.comp.threshold_db,
            self.comp.ratio,
            self.comp.attack_ms,
            self.comp.release_ms,
            self.comp.makeup_db,
        ]
    }

    /// The inverse of [`MasterFx::to_array`] (missing numbers keep their defaults).
    pub fn from_array(v: &[f32]) -> MasterFx {
        let mut a = MasterFx::default().to_array();
        for (d, s) in a.iter_mut().zip(v) {
            *d = *s;
        }
        MasterFx {
            bypass: a[0] >= 0.5,
            reverb_mix: a[1],
            reverb: ReverbParams {
                size: a[2],
                decay: a[3],
                damping: a[4],
                predelay_ms: a[5],
            },
            delay_mix: a[6],
            delay_division: match a[7] as u32 {
                0 => Division::Sixteenth,
                2 => Division::Quarter,
                3 => Division::Half,
                _ => Division::Eighth,
            },
            delay_feel: match a[8] as u32 {
                0 => Feel::Straight,
                2 => Feel::Triplet,
                _ => Feel::Dotted,
            },
            delay_feedback: a[9],
            delay_tone: a[10],
            delay_ping_pong: a[11] >= 0.5,
            chorus_mix: a[12],
            chorus_rate: a[13],
            chorus_depth: a[14],
            drive: a[15],
            eq: [a[16], a[17], a[18]],
            comp: CompParams {
                threshold_db: a[19],
                ratio: a[20],
                attack_ms: a[21],
                release_ms: a[22],
                makeup_db: a[23],
            },
        }
    }
}

/// A track's sends, filter and drive as the engine plays them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrackFx {
    pub send_reverb: f32,
    pub send_delay: f32,
    pub filter: FilterMode,
    pub cutoff: f32,
    pub resonance: f32,
    pub drive: f32,
}

impl TrackFx {
    pub const DEFAULT: TrackFx = TrackFx {
        send_reverb: 0.3,
        send_delay: 0.0,
        filter: FilterMode::Off,
        cutoff: 8000.0,
        resonance: 0.2,
        drive: 0.0,
    };
}

impl Default for TrackFx {
    fn default() -> TrackFx {
        TrackFx::DEFAULT
    }
}

/// Smoothing of mix levels, sends and drive (ms).
const LEVEL_MS: f32 = 20.0;

/// The running state of one track's inserts (drive, then filter) and its sends.
#[derive(Clone, Debug)]
pub struct TrackInserts {
    pub filter: Filter,
    drive: Smoothed,
    pub send_reverb: Smoothed,
    pub send_delay: Smoothed,
}

impl TrackInserts {
    pub fn new(sr: f32) -> TrackInserts {
        let d = TrackFx::DEFAULT;
        TrackInserts {
            filter: Filter::new(sr),
            drive: Smoothed::new(0.0, LEVEL_MS, sr),
            send_reverb: Smoothed::new(d.send_reverb, LEVEL_MS, sr),
            send_delay: Smoothed::new(d.send_delay, LEVEL_MS, sr),
        }
    }

    /// Aims at a track's settings (`cutoff` is the step's lock or the track's own).
    pub fn aim(&mut self, fx: &TrackFx, cutoff: f32, immediate: bool) {
        if immediate {
            self.filter.reset(fx.filter, cutoff, fx.resonance);
            self.drive.reset(fx.drive);
            self.send_reverb.reset(fx.send_reverb);
            self.send_delay.reset(fx.send_delay);
        } else {
            self.filter.set_mode(fx.filter);
            self.filter.set(cutoff, fx.resonance);
            self.drive.set(fx.drive);
            self.send_reverb.set(fx.send_reverb);
            self.send_delay.set(fx.send_delay);
        }
    }

    /// Whether a send is open or moving (else [`TrackInserts::tick_sends`] would give zeros).
    pub fn sends_active(&self) -> bool {
        let off = |s: &Smoothed| s.value() == 0.0 && s.target == 0.0;
        !(off(&self.send_reverb) && off(&self.send_delay))
    }

    /// Whether both sends have arrived (their levels stay the same for the block).
    pub fn sends_settled(&self) -> bool {
        self.send_reverb.settled() && self.send_delay.settled()
    }

    /// This frame's reverb and delay send levels.
    #[inline]
    pub fn tick_sends(&mut self) -> (f32, f32) {
        (self.send_reverb.tick(), self.send_delay.tick())
    }

    /// Drive and filter, in place, on a stretch of the track's (mono) bus starting at
    /// absolute frame `frame`. With `defer`, a steady or gliding (not fading) filter is left
    /// for the caller to run (with others, in a [`crate::dsp::SvfBank`], a gliding one's
    /// coefficients from [`Filter::glide`]), and so is a steady drive before it: then it
    /// returns `Some(drive)`, `drive` the drive's gains into and after the curve (`soft_clip(x
    /// * k) * norm`) if the caller is to drive the input first.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn process(
        &mut self,
        bus: &mut [f32],
        frame: u64,
        defer: bool,
    ) -> Option<Option<(f32, f32)>> {
        let drive_idle = self.drive.value() == 0.0 && self.drive.target == 0.0;
        if drive_idle && self.filter.is_idle() {
            self.filter.skip();
            return None;
        }
        let deferred = defer
            && (self.filter.steady_output().is_some() || self.filter.glide_output().is_some());
        if !drive_idle && self.drive.settled() {
            let gains = drive_gains(self.drive.value());
            if deferred {
                return Some(Some(gains));
            }
            drive_run(bus, gains);
        } else if !drive_idle {
            for x in bus.iter_mut() {
                let d = self.drive.tick();
                if d > 0.0 {
                    *x = drive(*x, d);
                }
            }
        }
        if deferred {
            return Some(None);
        }
        if self.filter.is_idle() {
            // Only the drive (the filter passes the sound through untouched).
            self.filter.skip();
            return None;
        }
        self.filter.process_block(bus, frame);
        None
    }

    /// While the sends lead nowhere (the master's reverb and delay are off): their glides jump
    /// to their targets (nothing is heard), and no send is summed.
    pub fn skip_sends(&mut self) {
        let (r, d) = (self.send_reverb.target, self.send_delay.target);
        self.send_reverb.reset(r);
        self.send_delay.reset(d);
    }
}

/// Ticks a smoother `n` times (nothing to do once it has arrived).
#[inline]
/// The next `out.len()` values of `s`, one a frame (what [`Smoothed::tick`] returns frame by
/// frame; a settled one is the same value throughout).
fn tick_into(s: &mut Smoothed, out: &mut [f32]) {
    if s.settled() {
        out.fill(s.value());
    } else {
        for o in out.iter_mut() {
            *o = s.tick();
        }
    }
}

fn tick_n(s: &mut Smoothed, n: usize) {
    for _ in 0..n {
        if s.settled() {
            return;
        }
        s.tick();
    }
}

/// What the tracks send into the [`MasterChain`] over a block: the reverb's send (mono) and
/// the delay's (left, right).
#[derive(Clone, Copy, Debug)]
pub struct Sends<'a> {
    pub rev: &'a [f32],
    pub del_l: &'a [f32],
    pub del_r: &'a [f32],
}

impl<'a> Sends<'a> {
    /// Frames `r` of each.
    fn frames(self, r: core::ops::Range<usize>) -> Sends<'a> {
        Sends {
            rev: &self.rev[r.clone()],
            del_l: &self.del_l[r.clone()],
            del_r: &self.del_r[r],
        }
    }
}

/// The master chain: reverb and delay returns, then chorus, drive, equaliser, compressor; a
/// bypass that crossfades to the dry mix. Each stage that is off (and settled) is skipped.
#[derive(Clone, Debug)]
pub struct MasterChain {
    sr: f32,
    fx: MasterFx,
    tempo: f64,
    reverb: Reverb,
    delay: Delay,
    chorus: Chorus,
    eq: Eq3,
    comp: Compressor,
    reverb_mix: Smoothed,
    delay_mix: Smoothed,
    chorus_mix: Smoothed,
    drive: Smoothed,
    makeup: Smoothed,
    /// 1: the chain is heard; 0: bypassed.
    wet: Smoothed,
    /// Whether the reverb's and delay's lines hold nothing (skipped while off and empty).
    reverb_clear: bool,
    delay_clear: bool,
}

impl MasterChain {
    pub fn new(sr: f32) -> MasterChain {
        let fx = MasterFx::default();
        MasterChain {
            sr,
            fx,
            tempo: 120.0,
            reverb: Reverb::new(sr, fx.reverb),
            delay: Delay::new(sr),
            chorus: Chorus::new(sr),
            eq: Eq3::new(sr),
            comp: Compressor::new(sr),
            reverb_mix: Smoothed::new(0.0, LEVEL_MS, sr),
            delay_mix: Smoothed::new(0.0, LEVEL_MS, sr),
            chorus_mix: Smoothed::new(0.0, LEVEL_MS, sr),
            drive: Smoothed::new(0.0, LEVEL_MS, sr),
            makeup: Smoothed::new(1.0, LEVEL_MS, sr),
            wet: Smoothed::new(1.0, LEVEL_MS, sr),
            reverb_clear: true,
            delay_clear: true,
        }
    }

    pub fn settings(&self) -> &MasterFx {
        &self.fx
    }

    /// New settings: levels glide there, or jump with `immediate` (before anything sounds).
    pub fn set(&mut self, fx: &MasterFx, immediate: bool) {
        self.fx = *fx;
        self.reverb.set(fx.reverb);
        let targets = [
            (&mut self.reverb_mix, fx.reverb_mix),
            (&mut self.delay_mix, fx.delay_mix),
            (&mut self.chorus_mix, fx.chorus_mix),
            (&mut self.drive, fx.drive),
            (&mut self.makeup, libm::powf(10.0, fx.comp.makeup_db / 20.0)),
            (&mut self.wet, if fx.bypass { 0.0 } else { 1.0 }),
        ];
        for (s, v) in targets {
            if immediate {
                s.reset(v);
            } else {
                s.set(v);
            }
        }
        self.eq.set(fx.eq, immediate);
        self.comp.set(&fx.comp);
        self.retime(immediate);
    }

    /// The tempo the delay follows.
    pub fn set_tempo(&mut self, tempo: f64) {
        if tempo != self.tempo {
            self.tempo = tempo;
            // Nothing in the lines yet: the new time applies at once.
            let empty = self.delay_clear;
            self.retime(empty);
        }
    }

    fn retime(&mut self, immediate: bool) {
        let f = &self.fx;
        let frames = delay_frames(self.tempo, f.delay_division, f.delay_feel, self.sr);
        self.delay.set(frames, f.delay_feedback, f.delay_tone);
        if immediate {
            self.delay.settle();
        }
        self.delay.ping_pong = f.delay_ping_pong;
    }

    /// Whether anything listens to the sends: the reverb or the delay is heard or still holds
    /// a tail (else the engine neither sums the sends nor runs their glides).
    pub fn wants_sends(&self) -> bool {
        let off = |s: &Smoothed| s.value() == 0.0 && s.target == 0.0;
        !off(&self.wet) && (!off(&self.reverb_mix) || !off(&self.delay_mix))
    }

    /// Nothing to do: bypassed and settled, or every stage off with empty lines.
    pub fn is_idle(&self) -> bool {
        let off = |s: &Smoothed| s.value() == 0.0 && s.target == 0.0;
        (off(&self.wet) && self.reverb_clear && self.delay_clear)
            || (off(&self.reverb_mix)
                && off(&self.delay_mix)
                && off(&self.chorus_mix)
                && off(&self.drive)
                && self.eq.is_idle()
                && self.fx.comp.ratio <= 1.0
                && self.makeup.value() == 1.0
                && self.makeup.target == 1.0
                && self.reverb_clear
                && self.delay_clear)
    }

    /// Processes a block in place: `left`/`right` hold the dry mix, `sends` the sends; `frame`
    /// is the block's first frame; `tempo_switch` a tempo change at that offset in the block.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn process(
        &mut self,
        frame: u64,
        left: &mut [f32],
        right: &mut [f32],
        sends: Sends<'_>,
        tempo_switch: Option<(usize, f64)>,
    ) {
        let Sends { rev, del_l, del_r } = sends;
        if self.is_idle() {
            if let Some((_, t)) = tempo_switch {
                self.set_tempo(t);
            }
            return;
        }
        let off = |s: &Smoothed| s.value() == 0.0 && s.target == 0.0;
        let bypassed = off(&self.wet);
        // A stage whose level is off and settled is skipped; its lines are cleared once, so
        // turning it back on starts from silence rather than an old tail.
        let run_reverb = !bypassed && !off(&self.reverb_mix);
        let run_delay = !bypassed && !off(&self.delay_mix);
        if !run_reverb && !self.reverb_clear {
            self.reverb.clear();
            self.reverb_clear = true;
        }
        if !run_delay && !self.delay_clear {
            self.delay.clear();
            self.delay_clear = true;
        }
        if bypassed {
            if let Some((_, t)) = tempo_switch {
                self.set_tempo(t);
            }
            return;
        }
        self.reverb_clear &= !run_reverb;
        self.delay_clear &= !run_delay;
        let run_chorus = !off(&self.chorus_mix);
        let run_drive = !off(&self.drive);
        let run_eq = !self.eq.is_idle();
        let comp = self.fx.comp;
        let run_comp = comp.ratio > 1.0;
        let n = left.len().min(right.len());
        if n > MAX_BLOCK {
            self.process_in_blocks(frame, left, right, sends, tempo_switch);
            return;
        }
        // Stage by stage over the block, each frame's arithmetic in the same order as one
        // frame through the whole chain: `l`/`r` carry the signal from stage to stage.
        let mut l = [0.0f32; MAX_BLOCK];
        let mut r = [0.0f32; MAX_BLOCK];
        let (l, r) = (&mut l[..n], &mut r[..n]);
        // A level's glide, frame by frame (it depends on nothing the signal does).
        let mut level = [0.0f32; MAX_BLOCK];
        let level = &mut level[..n];
        let mut wet_l = [0.0f32; MAX_BLOCK];
        let mut wet_r = [0.0f32; MAX_BLOCK];
        let (wet_l, wet_r) = (&mut wet_l[..n], &mut wet_r[..n]);
        // With both on, the delay's block path (its feedback a chain from frame to frame) runs
        // in the reverb's loop of damping chains.
        let mut delay_done = false;
        let delay_run = if run_reverb && run_delay && tempo_switch.is_none_or(|(at, _)| at >= n) {
            self.delay.block_start(n, wet_l, wet_r)
        } else {
            None
        };
        if let Some(mut run) = delay_run {
            let mut tap = DelayTap {
                run: &mut run,
                xl: &del_l[..n],
                xr: &del_r[..n],
                dl: wet_l,
                dr: wet_r,
            };
            self.reverb.process_block_tap(&rev[..n], l, r, &mut tap);
            run.finish(&mut self.delay, n);
            delay_done = true;
        } else if run_reverb {
            self.reverb.process_block(&rev[..n], l, r);
        }
        if run_reverb {
            tick_into(&mut self.reverb_mix, level);
            for i in 0..n {
                let rm = level[i];
                l[i] = left[i] + l[i] * rm;
                r[i] = right[i] + r[i] * rm;
            }
        } else {
            l.copy_from_slice(&left[..n]);
            r.copy_from_slice(&right[..n]);
            tick_n(&mut self.reverb_mix, n);
        }
        if delay_done
            || (run_delay
                && tempo_switch.is_none_or(|(at, _)| at >= n)
                && self
                    .delay
                    .process_block(&del_l[..n], &del_r[..n], wet_l, wet_r))
        {
            tick_into(&mut self.delay_mix, level);
            for i in 0..n {
                let dm = level[i];
                l[i] += wet_l[i] * dm;
                r[i] += wet_r[i] * dm;
            }
        } else if run_delay {
            tick_into(&mut self.delay_mix, level);
            for i in 0..n {
                if let Some((at, t)) = tempo_switch {
                    if at == i {
                        self.set_tempo(t);
                    }
                }
                let dm = level[i];
                let (wl, wr) = self.delay.process(del_l[i], del_r[i]);
                l[i] += wl * dm;
                r[i] += wr * dm;
            }
        } else {
            if let Some((at, t)) = tempo_switch {
                if at < n {
                    self.set_tempo(t);
                }
            }
            tick_n(&mut self.delay_mix, n);
        }
        if run_chorus {
            let (rate, depth) = (self.fx.chorus_rate, self.fx.chorus_depth);
            tick_into(&mut self.chorus_mix, level);
            self.chorus
                .process_block(frame, l, r, wet_l, wet_r, rate, depth);
            for i in 0..n {
                let cm = level[i];
                let (wl, wr) = (wet_l[i], wet_r[i]);
                l[i] += (wl - l[i]) * cm * 0.5;
                r[i] += (wr - r[i]) * cm * 0.5;
            }
        } else {
            tick_n(&mut self.chorus_mix, n);
        }
        if run_drive && self.drive.settled() {
            // Channel by channel (a chain of the two did not vectorize).
            let gains = drive_gains(self.drive.value());
            drive_run(l, gains);
            drive_run(r, gains);
        } else if run_drive {
            for i in 0..n {
                let d = self.drive.tick();
                l[i] = drive(l[i], d);
                r[i] = drive(r[i], d);
            }
        } else {
            tick_n(&mut self.drive, n);
        }
        let mut gains = [1.0f32; MAX_BLOCK];
        let gains = &mut gains[..n];
        if run_eq && run_comp {
            // The compressor's detector in the EQ's loop (two chains side by side).
            let comp = &mut self.comp;
            self.eq.process_block_tap(
                frame,
                l,
                r,
                // Inlined into the AVX2 render (it was a call every frame).
                #[cfg_attr(target_arch = "x86_64", inline(always))]
                |i, xl, xr| gains[i] = comp.detect(xl, xr),
            );
            self.comp.gains_from_envelope(gains);
        } else if run_eq {
            self.eq.process_block(frame, l, r);
        } else if run_comp {
            self.comp.gains(l, r, gains);
        }
        let mut wet = [0.0f32; MAX_BLOCK];
        let wet = &mut wet[..n];
        tick_into(&mut self.makeup, level);
        tick_into(&mut self.wet, wet);
        for i in 0..n {
            let g = gains[i];
            let mk = level[i];
            let (wl, wr) = (l[i] * (g * mk), r[i] * (g * mk));
            let w = wet[i];
            let (dl, dr) = (left[i], right[i]);
            left[i] = dl + (wl - dl) * w;
            right[i] = dr + (wr - dr) * w;
        }
    }

    /// [`Self::process`] of more than [`MAX_BLOCK`] frames, block by block (each frame's
    /// arithmetic is the same either way). Out of line: `process` calling itself could not be
    /// inlined (LLVM inlines no recursive function), and it must be, into the engine's AVX2
    /// render.
    #[inline(never)]
    fn process_in_blocks(
        &mut self,
        frame: u64,
        left: &mut [f32],
        right: &mut [f32],
        sends: Sends<'_>,
        tempo_switch: Option<(usize, f64)>,
    ) {
        let n = left.len().min(right.len());
        let mut at = 0;
        while at < n {
            let m = (n - at).min(MAX_BLOCK);
            let switch = tempo_switch
                .filter(|(i, _)| (at..at + m).contains(i))
                .map(|(i, t)| (i - at, t));
            self.process(
                frame + at as u64,
                &mut left[at..at + m],
                &mut right[at..at + m],
                sends.frames(at..at + m),
                switch,
            );
            at += m;
        }
    }

    pub fn clear(&mut self) {
        self.reverb.clear();
        self.delay.clear();
        self.chorus.clear();
        self.eq.clear();
        self.comp.clear();
        self.reverb_clear = true;
        self.delay_clear = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: f32 = 48_000.0;

    /// Gliding filters side by side in the bank ([`Filter::glide`], [`SvfBank::set_at`]) give
    /// the bits of each filter on its own, in odd stretches, with glides starting and
    /// arriving inside them, and a steady filter in the same bank.
    #[test]
    fn gliding_filters_in_the_bank_match_one_by_one() {
        use crate::dsp::SvfBank;
        let modes = [
            FilterMode::LowPass,
            FilterMode::BandPass,
            FilterMode::HighPass,
            FilterMode::LowPass,
        ];
        let make = || {
            modes.map(|m| {
                let mut f = Filter::new(SR);
                f.reset(m, 800.0, 0.3);
                f
            })
        };
        let (mut alone, mut banked) = (make(), make());
        let mut bank = Box::new(SvfBank::EMPTY);
        let mut seed = 1u32;
        let mut frame = 0u64;
        for (round, n) in [37usize, 128, 5, 91, 128, 64, 128, 128, 77, 128]
            .iter()
            .enumerate()
        {
            // New targets for some filters (the last one stays steady).
            for (i, (a, b)) in alone.iter_mut().zip(banked.iter_mut()).enumerate().take(3) {
                if (round + i) % 3 == 0 {
                    let c = 200.0 * (1 + (round * 7 + i * 3) % 20) as f32;
                    let r = 0.1 * ((round + i) % 9) as f32;
                    a.set(c, r);
                    b.set(c, r);
                }
            }
            let x: Vec<f32> = (0..*n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    (seed >> 8) as f32 / (1u32 << 23) as f32 - 1.0
                })
                .collect();
            let mut bufs: Vec<Vec<f32>> = (0..4).map(|_| x.clone()).collect();
            for (f, b) in alone.iter_mut().zip(bufs.iter_mut()) {
                f.process_block(b, frame);
            }
            for (j, f) in banked.iter_mut().enumerate() {
                if let Some(out) = f.steady_output() {
                    bank.load(j, f.svf_mut(), out);
                } else {
                    let out = f.glide_output().unwrap();
                    bank.load(j, f.svf_mut(), out);
                    f.glide(frame, *n, |i, svf| bank.set_at(j, i, svf));
                }
            }
            let xs: Vec<(usize, &[f32])> = (0..banked.len()).map(|j| (j, &x[..])).collect();
            bank.fill(&xs, *n);
            for j in 4..crate::dsp::BANK {
                bank.clear(j);
            }
            bank.run(*n);
            let mut ys: Vec<Vec<f32>> = banked.iter().map(|_| vec![0.0; *n]).collect();
            let mut outs: Vec<(usize, &mut [f32])> = ys
                .iter_mut()
                .enumerate()
                .map(|(j, y)| (j, &mut y[..]))
                .collect();
            bank.drain(&mut outs, *n);
            for (j, (f, y)) in banked.iter_mut().zip(&ys).enumerate() {
                bank.store(j, f.svf_mut());
                let same = y
                    .iter()
                    .zip(&bufs[j])
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "filter {j}, stretch {round}");
            }
            frame += *n as u64;
        }
    }

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

    /// Impulses through the chorus: each comes out where the LFO put the delay at that
    /// moment (its centre of mass, between the two frames the interpolation spreads it over),
    /// between 10 ms and 10 ms plus the sway, the left on a sine at the set rate, the right a
    /// quarter cycle later; with blocks of odd sizes.
    #[test]
    fn the_chorus_sways_between_its_delays_at_its_rate() {
        let (rate, depth) = (2.0f32, 0.8f32);
        let total = SR as usize;
        let gap = 1200;
        let input: Vec<f32> = (0..total)
            .map(|i| if i % gap == 0 { 1.0 } else { 0.0 })
            .collect();
        let mut c = Chorus::new(SR);
        let (mut out_l, mut out_r) = (vec![0.0f32; total], vec![0.0f32; total]);
        let mut at = 0;
        for size in [128usize, 37, 100, 1, 128].iter().cycle() {
            if at >= total {
                break;
            }
            let e = (at + size).min(total);
            let (x, (l, r)) = (&input[at..e], (&mut out_l[at..e], &mut out_r[at..e]));
            c.process_block(at as u64, x, x, l, r, rate, depth);
            at = e;
        }
        let base = CHORUS_BASE_MS * 0.001 * SR;
        let sway = CHORUS_SWAY_MS * depth * 0.5 * 0.001 * SR;
        let (mut lo, mut hi) = (f32::MAX, f32::MIN);
        for t0 in (0..total - gap).step_by(gap) {
            for (out, quarter) in [(&out_l, 0.0), (&out_r, 0.25)] {
                let w = &out[t0..t0 + gap];
                let mass: f32 = w.iter().sum();
                let centre = w.iter().enumerate().map(|(i, v)| i as f32 * v).sum::<f32>() / mass;
                // (Not exactly 1: a delay growing or shrinking stretches or squeezes the
                // sound, by up to 3% here.)
                assert!(
                    (mass - 1.0).abs() < 0.04,
                    "an impulse's echo sums to {mass}"
                );
                // The delay read at the frame it came out on (a delay of 1 is the frame
                // itself).
                let t = (t0 as f32 + centre) / SR;
                let lfo = (2.0 * core::f32::consts::PI * (rate * t + quarter)).sin();
                let expected = base + sway * (1.0 + lfo) - 1.0;
                assert!(
                    (centre - expected).abs() < 0.05,
                    "at {t} s: delay {centre} frames, the LFO gives {expected}"
                );
                (lo, hi) = (lo.min(centre + 1.0), hi.max(centre + 1.0));
            }
        }
        assert!(
            (lo - base).abs() < 0.02 * sway,
            "shortest {lo}, base {base}"
        );
        assert!((hi - base - 2.0 * sway).abs() < 0.02 * sway, "longest {hi}");
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
            d.settle();
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
        d.settle();
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
            flt.reset(mode, 1000.0, 0.2);
            for i in 0..4800 {
                flt.process(tone(f, i), i as u64);
            }
            (4800..9600)
                .map(|i| flt.process(tone(f, i), i as u64).abs())
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
        flt.reset(FilterMode::LowPass, 200.0, 0.3);
        let mut prev = 0.0;
        let mut worst = 0.0f32;
        for i in 0..9600 {
            if i == 4800 {
                flt.set(8000.0, 0.3);
            }
            let y = flt.process(tone(440.0, i) * 0.5, i as u64);
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
    fn the_filter_response_at_its_cutoff_is_the_designed_one() {
        // The state-variable design: at the cutoff, low-pass and high-pass are at 1/k
        // (k = 2 - 2 * resonance); measured on a steady sine.
        for (cutoff, res) in [
            (200.0f32, 0.0f32),
            (1000.0, 0.2),
            (5000.0, 0.5),
            (12_000.0, 0.1),
        ] {
            let k = 2.0 - 2.0 * res;
            let design_db = 20.0 * (1.0 / k).log10();
            for mode in [FilterMode::LowPass, FilterMode::HighPass] {
                let mut flt = Filter::new(SR);
                flt.reset(mode, cutoff, res);
                let n = (SR * 0.5) as usize;
                let x = |i: usize| libm::sinf(2.0 * std::f32::consts::PI * cutoff * i as f32 / SR);
                let mut peak = 0.0f32;
                for i in 0..n {
                    let y = flt.process(x(i), i as u64);
                    if i > n / 2 {
                        peak = peak.max(y.abs());
                    }
                }
                let db = 20.0 * peak.log10();
                assert!(
                    (db - design_db).abs() < 1.0,
                    "{mode:?} at {cutoff} Hz, resonance {res}: {db:.2} dB, designed {design_db:.2}"
                );
            }
        }
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
