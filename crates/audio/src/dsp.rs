//! DSP building blocks. Everything transcendental goes through `libm`, and noise is seeded, so a
//! render is bit-identical natively and in wasm.

use core::f32::consts::PI;

pub const TAU: f32 = 2.0 * PI;

/// Frequency of a MIDI note number (A4 = 69 = 440 Hz).
pub fn note_hz(note: f32) -> f32 {
    440.0 * libm::exp2f((note - 69.0) / 12.0)
}

/// Frequency ratio of a pitch shift in semitones.
pub fn semitones(s: f32) -> f32 {
    libm::exp2f(s / 12.0)
}

/// Per-sample multiplier for an exponential decay with time constant `tau` seconds.
pub fn decay_coeff(tau: f32, sr: f32) -> f32 {
    if tau <= 0.0 {
        0.0
    } else {
        libm::expf(-1.0 / (tau * sr))
    }
}

/// xorshift32: tiny, deterministic white noise in [-1, 1).
#[derive(Clone, Copy, Debug)]
pub struct Noise(pub u32);

impl Noise {
    pub fn new(seed: u32) -> Noise {
        Noise(seed.max(1))
    }
    #[inline]
    pub fn sample(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        (x >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }
}

/// A phase accumulator in [0, 1).
#[derive(Clone, Copy, Debug, Default)]
pub struct Phase(pub f32);

impl Phase {
    #[inline]
    pub fn advance(&mut self, inc: f32) -> f32 {
        let p = self.0;
        let mut n = p + inc;
        if n >= 1.0 {
            n -= 1.0;
        }
        self.0 = n;
        p
    }
}

/// sin(2πp) for a phase `p` in [0, 1): a 9th-order polynomial after folding into a quarter
/// wave (error below 4e-6, about -109 dB). Plain arithmetic, so it is fast on the audio thread
/// and bit-identical natively and in wasm.
#[inline]
pub fn sine(p: f32) -> f32 {
    // sin(2πp) = -sin(2π(p - 1/2)); fold x = p - 1/2 into [-1/4, 1/4].
    let mut x = p - 0.5;
    if x > 0.25 {
        x = 0.5 - x;
    } else if x < -0.25 {
        x = -0.5 - x;
    }
    let t = TAU * x;
    let t2 = t * t;
    let s = t
        * (1.0
            + t2 * (-1.0 / 6.0
                + t2 * (1.0 / 120.0 + t2 * (-1.0 / 5040.0 + t2 * (1.0 / 362_880.0)))));
    -s
}

/// Several phase accumulators advanced at once (each lane exactly [`Phase::advance`]); returns
/// the phases before the step. Written as selects over fixed-size arrays, so it compiles to
/// SIMD lanes (SSE natively, simd128 in wasm) with the same bits as one lane at a time.
#[inline(always)]
pub fn advance_lanes<const N: usize>(ph: &mut [f32; N], inc: &[f32; N]) -> [f32; N] {
    let p = *ph;
    for j in 0..N {
        let n = p[j] + inc[j];
        ph[j] = if n >= 1.0 { n - 1.0 } else { n };
    }
    p
}

/// [`poly_blep`] of every lane, `inv` being `1.0 / dt` (infinite for a lane at rest, whose
/// phase never moves and is never near a wrap). Computed in every lane and kept where a lane is
/// near a wrap: no branch, so no mispredicted jump when some lanes are (with eight voices'
/// oscillators side by side, that is most frames). The same bits as `poly_blep`. (Loops rather
/// than `array::from_fn`, which is not always inlined: a call out of the AVX2 render costs more
/// than the arithmetic.)
#[inline(always)]
fn poly_blep_lanes<const N: usize>(t: [f32; N], dt: [f32; N], inv: [f32; N]) -> [f32; N] {
    let mut b = [0.0; N];
    for j in 0..N {
        let lo = t[j] < 0.5;
        let u = if lo { t[j] } else { t[j] - 1.0 };
        let x = u * inv[j];
        let (c, s) = if lo { (-1.0, -1.0) } else { (1.0, 1.0) };
        let y = x + c;
        let v = y * (y * s);
        b[j] = if u.abs() < dt[j] { v } else { 0.0 };
    }
    b
}

/// [`saw`] of every lane (the same bits); `inv` as [`poly_blep_lanes`] takes it.
#[inline(always)]
pub fn saw_lanes<const N: usize>(p: [f32; N], dt: [f32; N], inv: [f32; N]) -> [f32; N] {
    let mut b = poly_blep_lanes(p, dt, inv);
    for j in 0..N {
        b[j] = 2.0 * p[j] - 1.0 - b[j];
    }
    b
}

/// [`square`] of every lane (the same bits), and the correction at its rising edge (the one a
/// saw of the same phase takes); `inv` as [`poly_blep_lanes`] takes it.
#[inline(always)]
fn square_and_blep<const N: usize>(
    p: [f32; N],
    dt: [f32; N],
    inv: [f32; N],
) -> ([f32; N], [f32; N]) {
    let mut q = [0.0; N];
    for j in 0..N {
        let x = p[j] + 0.5;
        q[j] = if x >= 1.0 { x - 1.0 } else { x };
    }
    let a = poly_blep_lanes(p, dt, inv);
    let b = poly_blep_lanes(q, dt, inv);
    let mut o = [0.0; N];
    for j in 0..N {
        let naive = if p[j] < 0.5 { 1.0 } else { -1.0 };
        o[j] = naive + a[j] - b[j];
    }
    (o, a)
}

/// [`square`] of every lane (the same bits); `inv` as [`poly_blep_lanes`] takes it.
#[inline(always)]
pub fn square_lanes<const N: usize>(p: [f32; N], dt: [f32; N], inv: [f32; N]) -> [f32; N] {
    square_and_blep(p, dt, inv).0
}

/// [`square`] of each phase in `p` at the one increment `dt`, eight frames at once, into `out`
/// (the same bits).
#[inline(always)]
pub fn squares(p: &[f32], dt: f32, out: &mut [f32]) {
    let inv = [1.0 / dt; 8];
    let dt = [dt; 8];
    for (p, o) in p.chunks(8).zip(out.chunks_mut(8)) {
        let mut x = [0.0f32; 8];
        x[..p.len()].copy_from_slice(p);
        let y = square_lanes(x, dt, inv);
        o.copy_from_slice(&y[..o.len()]);
    }
}

/// `a` where the mask `m` is all ones, `b` where it is zero: a select that vectorizes.
#[inline(always)]
pub fn pick(m: u32, a: f32, b: f32) -> f32 {
    f32::from_bits((a.to_bits() & m) | (b.to_bits() & !m))
}

/// [`saw`] or [`square`] of each lane, as `square` says (all ones for a square, zero for a
/// saw; the same bits as either); `inv` as [`poly_blep_lanes`] takes it.
#[inline(always)]
pub fn saw_or_square_lanes<const N: usize>(
    p: [f32; N],
    dt: [f32; N],
    inv: [f32; N],
    square: [u32; N],
) -> [f32; N] {
    let (mut o, a) = square_and_blep(p, dt, inv);
    for j in 0..N {
        let saw = 2.0 * p[j] - 1.0 - a[j];
        o[j] = pick(square[j], o[j], saw);
    }
    o
}

/// [`sine`] with its fold as selects: the same bits for every input, and a loop of these over
/// frames vectorizes.
#[inline(always)]
pub fn sine_select(p: f32) -> f32 {
    let x = p - 0.5;
    let lo = if x < -0.25 { -0.5 - x } else { x };
    let x = if x > 0.25 { 0.5 - x } else { lo };
    let t = TAU * x;
    let t2 = t * t;
    let s = t
        * (1.0
            + t2 * (-1.0 / 6.0
                + t2 * (1.0 / 120.0 + t2 * (-1.0 / 5040.0 + t2 * (1.0 / 362_880.0)))));
    -s
}

/// The largest `|x|` (0 for none; NaNs ignored): what `x.iter().fold(0.0, |p, v| p.max(v.abs()))`
/// gives, but with eight running maxima side by side rather than one chain waiting on itself
/// every frame (a maximum does not depend on the order, so the value is the same).
#[cfg_attr(target_arch = "x86_64", inline(always))]
pub fn peak_abs(x: &[f32]) -> f32 {
    let mut m = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            let a = c[j].abs();
            m[j] = if a > m[j] { a } else { m[j] };
        }
    }
    for (m, v) in m.iter_mut().zip(chunks.remainder()) {
        let a = v.abs();
        *m = if a > *m { a } else { *m };
    }
    m.iter().fold(0.0, |p, v| if *v > p { *v } else { p })
}

/// floor(x), inline (libm's is a call), for |x| below 2^23 (every fraction of a float below
/// 2^23 is exact). Rounds |x| to a whole number by adding and taking away 2^23 (exact there),
/// puts the sign back, and steps down one when that went above `x`: plain arithmetic and
/// selects, so a loop of these vectorizes (a conversion through `i32` did not: it saturates).
/// floor has one right answer, so this gives the bits any exact floor gives (but for -0.0,
/// which gives -0.0 here).
#[inline]
pub fn floor(x: f32) -> f32 {
    const BIG: f32 = 8_388_608.0; // 2^23
    let r = ((x.abs() + BIG) - BIG).copysign(x);
    if r > x {
        r - 1.0
    } else {
        r
    }
}

/// log2(x) for a positive, normal `x`, in plain arithmetic (relative error about 1e-7, like
/// libm's): the exponent from the bits, the mantissa folded into [0.707, 1.414) and its
/// logarithm from the series of atanh((m - 1) / (m + 1)). Selects, no calls, so a loop of these
/// vectorizes; bit-identical natively and in wasm.
#[inline(always)]
pub fn log2_approx(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > core::f32::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = e as f32 + if big { 1.0 } else { 0.0 };
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    // 2 / ln 2 * (t + t^3/3 + t^5/5 + t^7/7 + t^9/9); |t| < 0.172.
    let s = t * (1.0 + t2 * (1.0 / 3.0 + t2 * (1.0 / 5.0 + t2 * (1.0 / 7.0 + t2 * (1.0 / 9.0)))));
    e + s * (2.0 / core::f32::consts::LN_2)
}

/// 2^y for y in [-126, 127] (below: 2^-126), in plain arithmetic (relative error about 2e-7):
/// the nearest whole power from the bits, times a polynomial of the rest (within ±1/2).
/// Selects, no calls, so a loop of these vectorizes; bit-identical natively and in wasm.
#[inline(always)]
pub fn exp2_approx(y: f32) -> f32 {
    let y = if y < -126.0 { -126.0 } else { y };
    let i = floor(y + 0.5);
    let f = y - i;
    // e^(f ln 2), Taylor to the 7th power: the next term is below 2e-9 for |f| <= 1/2.
    let z = f * core::f32::consts::LN_2;
    let p = 1.0
        + z * (1.0
            + z * (1.0 / 2.0
                + z * (1.0 / 6.0
                    + z * (1.0 / 24.0
                        + z * (1.0 / 120.0 + z * (1.0 / 720.0 + z * (1.0 / 5040.0)))))));
    // 2^i from the bits: i + 127 is the low bits of i + 127 + 2^23 (a whole number below 2^23).
    let k = (i + (127.0 + 8_388_608.0)).to_bits() & 0x007f_ffff;
    p * f32::from_bits(k << 23)
}

/// A smooth saturator close to tanh (exact at 0, reaches ±1 at ±3 and stays there).
#[inline]
pub fn soft_clip(x: f32) -> f32 {
    // The curve is computed whatever `x` and then replaced past ±3: selects rather than
    // branches, so a loop of these vectorizes.
    let x2 = x * x;
    let y = x * (27.0 + x2) / (27.0 + 9.0 * x2);
    let y = if x >= 3.0 { 1.0 } else { y };
    if x <= -3.0 {
        -1.0
    } else {
        y
    }
}

/// PolyBLEP residual, to band-limit the discontinuities of saw and square waves.
#[inline]
fn poly_blep(t: f32, dt: f32) -> f32 {
    // `u` is the signed distance to the nearest wrap; `x` runs from -1 to 1 across it. Just
    // after the wrap the correction is -(x - 1)^2, just before it (x + 1)^2. Times the
    // reciprocal, as the lanes do it (they compute it once per voice).
    let lo = t < 0.5;
    let u = if lo { t } else { t - 1.0 };
    if u.abs() < dt {
        let x = u * (1.0 / dt);
        let (c, s) = if lo { (-1.0, -1.0) } else { (1.0, 1.0) };
        let y = x + c;
        y * (y * s)
    } else {
        0.0
    }
}

/// Band-limited sawtooth at phase `p` with increment `dt`.
#[inline]
pub fn saw(p: f32, dt: f32) -> f32 {
    2.0 * p - 1.0 - poly_blep(p, dt)
}

/// Band-limited square at phase `p` with increment `dt`.
#[inline]
pub fn square(p: f32, dt: f32) -> f32 {
    let naive = if p < 0.5 { 1.0 } else { -1.0 };
    let mut q = p + 0.5;
    if q >= 1.0 {
        q -= 1.0;
    }
    naive + poly_blep(p, dt) - poly_blep(q, dt)
}

/// tan(w) for w from 0 to 1.42 (a filter's prewarped cutoff, π·fc/sr with fc at most 0.45·sr):
/// the sine's and the cosine's Taylor series (truncation error below 1e-9 there, far below an
/// f32's rounding), divided. Plain arithmetic in a fixed order (no library call), so lanes side
/// by side give the same bits as one call, natively and in WebAssembly.
#[inline(always)]
pub fn tan_small(w: f32) -> f32 {
    let w2 = w * w;
    let s = w
        * (1.0
            + w2 * (-1.0 / 6.0
                + w2 * (1.0 / 120.0
                    + w2 * (-1.0 / 5040.0
                        + w2 * (1.0 / 362_880.0
                            + w2 * (-1.0 / 39_916_800.0 + w2 * (1.0 / 6_227_020_800.0)))))));
    let c = 1.0
        + w2 * (-0.5
            + w2 * (1.0 / 24.0
                + w2 * (-1.0 / 720.0
                    + w2 * (1.0 / 40_320.0
                        + w2 * (-1.0 / 3_628_800.0
                            + w2 * (1.0 / 479_001_600.0 + w2 * (-1.0 / 87_178_291_200.0)))))));
    s / c
}

/// A state-variable filter (topology-preserving transform), giving low, band and high pass at
/// once. Coefficients are recomputed only when asked, so callers set them at control rate.
#[derive(Clone, Copy, Debug, Default)]
pub struct Svf {
    ic1: f32,
    ic2: f32,
    g: f32,
    k: f32,
    a1: f32,
    a2: f32,
    a3: f32,
}

/// The three outputs of one [`Svf`] step.
#[derive(Clone, Copy, Debug)]
pub struct SvfOut {
    pub low: f32,
    pub band: f32,
    pub high: f32,
}

impl Svf {
    pub const ZERO: Svf = Svf {
        ic1: 0.0,
        ic2: 0.0,
        g: 0.0,
        k: 0.0,
        a1: 0.0,
        a2: 0.0,
        a3: 0.0,
    };

    /// Sets cutoff (Hz) and resonance (0 = none, towards 1 = self-oscillation).
    #[inline]
    pub fn set(&mut self, cutoff: f32, res: f32, sr: f32) {
        [self.g, self.k, self.a1, self.a2, self.a3] = Svf::coefficients(cutoff, res, sr);
    }

    /// What [`Svf::set`] sets: `[g, k, a1, a2, a3]`. Plain arithmetic, so lanes side by side
    /// compute the same bits ([`Svf::set_coefficients`] takes them back).
    #[inline(always)]
    #[allow(clippy::manual_clamp)] // see below
    pub fn coefficients(cutoff: f32, res: f32, sr: f32) -> [f32; 5] {
        // As `clamp` (which would panic on a lane at rest, and does not vectorize).
        let fc = cutoff.max(20.0).min(sr * 0.45);
        let g = tan_small(PI * fc / sr);
        let k = 2.0 - 2.0 * res.max(0.0).min(0.98);
        let a1 = 1.0 / (1.0 + g * (g + k));
        let a2 = g * a1;
        [g, k, a1, a2, g * a2]
    }

    /// The coefficients set now, as [`Svf::coefficients`] gives them.
    pub fn coefficients_now(&self) -> [f32; 5] {
        [self.g, self.k, self.a1, self.a2, self.a3]
    }

    /// Sets what [`Svf::coefficients`] computed.
    pub fn set_coefficients(&mut self, c: [f32; 5]) {
        [self.g, self.k, self.a1, self.a2, self.a3] = c;
    }

    /// The coefficients `[a1, a2, a3]` and state `[ic1, ic2]`, for lanes.
    pub fn lane(&self) -> ([f32; 3], [f32; 2]) {
        ([self.a1, self.a2, self.a3], [self.ic1, self.ic2])
    }

    pub fn set_state(&mut self, ic1: f32, ic2: f32) {
        self.ic1 = ic1;
        self.ic2 = ic2;
    }

    /// Sets state values too small to hear to zero: a filter left ringing into silence would
    /// otherwise decay into denormal numbers, which are slow on some CPUs.
    #[inline]
    pub fn flush_denormals(&mut self) {
        if self.ic1.abs() < 1e-15 {
            self.ic1 = 0.0;
        }
        if self.ic2.abs() < 1e-15 {
            self.ic2 = 0.0;
        }
    }

    #[inline]
    pub fn process(&mut self, x: f32) -> SvfOut {
        let v3 = x - self.ic2;
        let v1 = self.a1 * self.ic1 + self.a2 * v3;
        let v2 = self.ic2 + self.a2 * self.ic1 + self.a3 * v3;
        self.ic1 = 2.0 * v1 - self.ic1;
        self.ic2 = 2.0 * v2 - self.ic2;
        SvfOut {
            low: v2,
            band: v1,
            high: x - self.k * v1 - v2,
        }
    }

    pub fn reset(&mut self) {
        self.ic1 = 0.0;
        self.ic2 = 0.0;
    }
}

/// How many [`Svf`]s a [`SvfBank`] runs side by side: sixteen, two registers of eight (four of
/// four in WebAssembly).
pub const BANK: usize = 16;

/// Half a bank: the filters of one stage of [`SvfBank::run_cascade`].
pub const HALF_BANK: usize = BANK / 2;

/// Up to [`BANK`] state-variable filters (each with its own coefficients and output) run
/// together over the same stretch of frames, their frames interleaved. One filter's samples
/// depend on the one before: a frame of one filter is a chain of about twenty cycles, and a
/// lone filter leaves the processor idle while it waits; a register of eight filters costs
/// about one, and two registers' chains overlap. Each lane does exactly the arithmetic of
/// [`Svf::process`] followed by [`Svf::flush_denormals`], so the samples are the same bits.
pub struct SvfBank {
    ic1: [f32; BANK],
    ic2: [f32; BANK],
    a1: [f32; BANK],
    a2: [f32; BANK],
    a3: [f32; BANK],
    k: [f32; BANK],
    /// Which output each lane keeps: 0 low, 1 band, 2 high.
    out: [u8; BANK],
    /// The lanes' input, then output, frame by frame.
    buf: [[f32; BANK]; crate::engine::MAX_BLOCK],
    /// Coefficients (`a1`, `a2`, `a3`, `k`) a lane takes from a frame on (a gliding filter's
    /// control-rate updates, [`SvfBank::set_at`]), and per frame the lanes that take new ones.
    coef: [[[f32; 4]; BANK]; crate::engine::MAX_BLOCK],
    mark: [u32; crate::engine::MAX_BLOCK],
    /// A track's drive before its filter ([`SvfBank::set_drive`]): per lane the gain into
    /// [`soft_clip`] and the level after it, and a mask of the lanes it applies to.
    drive: [[f32; BANK]; 2],
    driven: [u32; BANK],
}

impl SvfBank {
    pub const EMPTY: SvfBank = SvfBank {
        ic1: [0.0; BANK],
        ic2: [0.0; BANK],
        a1: [0.0; BANK],
        a2: [0.0; BANK],
        a3: [0.0; BANK],
        k: [0.0; BANK],
        out: [0; BANK],
        buf: [[0.0; BANK]; crate::engine::MAX_BLOCK],
        coef: [[[0.0; 4]; BANK]; crate::engine::MAX_BLOCK],
        mark: [0; crate::engine::MAX_BLOCK],
        drive: [[1.0; BANK]; 2],
        driven: [0; BANK],
    };

    /// Lane `j` takes `f`'s coefficients from frame `i` of the next [`SvfBank::run`] on.
    pub fn set_at(&mut self, j: usize, i: usize, f: &Svf) {
        self.coef[i][j] = [f.a1, f.a2, f.a3, f.k];
        self.mark[i] |= 1 << j;
    }

    /// Puts filter `f` in lane `j`, keeping output `out` (0 low, 1 band, 2 high); its input
    /// comes through [`SvfBank::fill`].
    #[inline]
    pub fn load(&mut self, j: usize, f: &Svf, out: u8) {
        self.ic1[j] = f.ic1;
        self.ic2[j] = f.ic2;
        self.a1[j] = f.a1;
        self.a2[j] = f.a2;
        self.a3[j] = f.a3;
        self.k[j] = f.k;
        self.out[j] = out;
        self.driven[j] = 0;
    }

    /// Lane `j` (loaded) first drives its input: `soft_clip(x * k) * norm`, frame by frame
    /// (the arithmetic of the track's drive, so the same bits as driving the input before).
    pub fn set_drive(&mut self, j: usize, k: f32, norm: f32) {
        self.drive[0][j] = k;
        self.drive[1][j] = norm;
        self.driven[j] = !0;
    }

    /// Empties lane `j` (a silent filter whose output nobody reads).
    pub fn clear(&mut self, j: usize) {
        self.ic1[j] = 0.0;
        self.ic2[j] = 0.0;
        self.a1[j] = 0.0;
        self.a2[j] = 0.0;
        self.a3[j] = 0.0;
        self.k[j] = 0.0;
        self.out[j] = 0;
        self.driven[j] = 0;
    }

    /// Runs every lane over `n` frames (lanes given coefficients by [`SvfBank::set_at`] change
    /// them on those frames).
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn run(&mut self, n: usize) {
        if self.mark[..n].iter().all(|&m| m == 0) {
            self.run_lanes(0..n, 1e-15);
            return;
        }
        let mut s = 0;
        while s < n {
            let mut m = core::mem::take(&mut self.mark[s]);
            while m != 0 {
                let j = m.trailing_zeros() as usize;
                [self.a1[j], self.a2[j], self.a3[j], self.k[j]] = self.coef[s][j];
                m &= m - 1;
            }
            let e = (s + 1..n).find(|&e| self.mark[e] != 0).unwrap_or(n);
            self.run_lanes(s..e, 1e-15);
            s = e;
        }
    }

    /// Runs every lane over `n` frames as [`Svf::process`] alone, without flushing denormal
    /// states: the drum voices' filters (their voices end at -60 dB, long before).
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn run_exact(&mut self, n: usize) {
        // No state is below 0 in magnitude. The same loop as `run` (a flag known at compile
        // time gave a loop LLVM no longer vectorized: 3.5 times the instructions; see
        // `run_lanes`).
        self.run_lanes(0..n, 0.0);
    }

    /// As [`SvfBank::run_exact`], two filters in a row: lane `j + HALF_BANK` takes lane `j`'s
    /// output, frame by frame, instead of its own input (a drum's second filter after its
    /// first). Both stages' chains overlap, where one stage after the other waits on each in
    /// turn.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn run_cascade(&mut self, n: usize) {
        const H: usize = HALF_BANK;
        // As in `run_lanes`.
        let floor = core::hint::black_box(0.0);
        let half = |a: &[f32; BANK], at: usize| -> [f32; H] {
            let mut h = [0.0; H];
            h.copy_from_slice(&a[at..at + H]);
            h
        };
        let (mut ic1a, mut ic2a) = (half(&self.ic1, 0), half(&self.ic2, 0));
        let (mut ic1b, mut ic2b) = (half(&self.ic1, H), half(&self.ic2, H));
        let ca = [0, 1, 2, 3].map(|c| half([&self.a1, &self.a2, &self.a3, &self.k][c], 0));
        let cb = [0, 1, 2, 3].map(|c| half([&self.a1, &self.a2, &self.a3, &self.k][c], H));
        let mut oa = [0u8; H];
        let mut ob = [0u8; H];
        oa.copy_from_slice(&self.out[..H]);
        ob.copy_from_slice(&self.out[H..]);
        for frame in self.buf[..n.min(crate::engine::MAX_BLOCK)].iter_mut() {
            let mut x = [0.0f32; H];
            x.copy_from_slice(&frame[..H]);
            let y = svf_lanes(x, &mut ic1a, &mut ic2a, &ca, &oa, floor);
            let z = svf_lanes(y, &mut ic1b, &mut ic2b, &cb, &ob, floor);
            frame[..H].copy_from_slice(&y);
            frame[H..].copy_from_slice(&z);
        }
        self.ic1[..H].copy_from_slice(&ic1a);
        self.ic1[H..].copy_from_slice(&ic1b);
        self.ic2[..H].copy_from_slice(&ic2a);
        self.ic2[H..].copy_from_slice(&ic2b);
    }

    /// The lanes' loop: states below `floor` in magnitude become 0. Inlined into the engine's
    /// AVX2 render (eight lanes in one register instead of two); elsewhere out of line.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    #[cfg_attr(not(target_arch = "x86_64"), inline(never))]
    fn run_lanes(&mut self, frames: core::ops::Range<usize>, floor: f32) {
        // Opaque to the optimiser: with `floor` a constant, inlined, LLVM no longer vectorized
        // the loop across the lanes (2 s of the render with every effect on: 321 M
        // instructions instead of 287 M).
        let floor = core::hint::black_box(floor);
        let (mut ic1, mut ic2) = (self.ic1, self.ic2);
        let c = [self.a1, self.a2, self.a3, self.k];
        let out = self.out;
        if self.driven.iter().any(|d| *d != 0) {
            // The drive's work fits in the time the filters' chains wait.
            let ([gain, norm], driven) = (self.drive, self.driven);
            for frame in self.buf[frames].iter_mut() {
                let mut x = *frame;
                for j in 0..BANK {
                    x[j] = pick(driven[j], soft_clip(x[j] * gain[j]) * norm[j], x[j]);
                }
                *frame = svf_lanes(x, &mut ic1, &mut ic2, &c, &out, floor);
            }
        } else {
            for frame in self.buf[frames].iter_mut() {
                *frame = svf_lanes(*frame, &mut ic1, &mut ic2, &c, &out, floor);
            }
        }
        self.ic1 = ic1;
        self.ic2 = ic2;
    }

    /// The inputs of the lanes in `xs` (a lane and its first `n` frames, which it must hold;
    /// [`SvfBank::load`] sets the rest). Lanes of the same half of the bank that are not in
    /// `xs` get unspecified inputs (a cleared lane's output is not read). With AVX2, eight
    /// lanes' eight frames at a time through a transpose of registers; otherwise lane by lane,
    /// each sample a load and a store of its own. The same samples either way.
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn fill(&mut self, xs: &[(usize, &[f32])], n: usize) {
        let n = n.min(crate::engine::MAX_BLOCK);
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            for half in 0..2 {
                let mut rows: [&[f32]; 8] = [&[]; 8];
                let mut any = false;
                for &(j, x) in xs {
                    if j / 8 == half {
                        rows[j % 8] = &x[..n];
                        any = true;
                    }
                }
                if any {
                    // SAFETY: this CPU has AVX2, the one feature `fill_half` is compiled for.
                    #[allow(unsafe_code)]
                    unsafe {
                        let buf = &mut self.buf[..n];
                        match half {
                            0 => avx2::fill_half::<0>(buf, &rows),
                            _ => avx2::fill_half::<1>(buf, &rows),
                        }
                    }
                }
            }
            return;
        }
        self.fill_lane_by_lane(xs, n);
    }

    /// [`SvfBank::fill`] without AVX2: lane by lane.
    fn fill_lane_by_lane(&mut self, xs: &[(usize, &[f32])], n: usize) {
        for &(j, x) in xs {
            for (b, v) in self.buf[..n].iter_mut().zip(&x[..n]) {
                b[j] = *v;
            }
        }
    }

    /// The outputs of the lanes in `ys` (a lane and where its first `n` frames go, which it
    /// must hold; the states go back through [`SvfBank::store`]): eight lanes' eight frames at
    /// a time with AVX2, otherwise lane by lane (see [`SvfBank::fill`]).
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    pub fn drain(&self, ys: &mut [(usize, &mut [f32])], n: usize) {
        let n = n.min(crate::engine::MAX_BLOCK);
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            for half in 0..2 {
                let mut rows: [&mut [f32]; 8] = Default::default();
                let mut any = false;
                for (j, y) in ys.iter_mut() {
                    if *j / 8 == half {
                        rows[*j % 8] = &mut y[..n];
                        any = true;
                    }
                }
                if any {
                    // SAFETY: as in `fill`.
                    #[allow(unsafe_code)]
                    unsafe {
                        let buf = &self.buf[..n];
                        match half {
                            0 => avx2::drain_half::<0>(buf, &mut rows),
                            _ => avx2::drain_half::<1>(buf, &mut rows),
                        }
                    }
                }
            }
            return;
        }
        self.drain_lane_by_lane(ys, n);
    }

    /// [`SvfBank::drain`] without AVX2: lane by lane.
    fn drain_lane_by_lane(&self, ys: &mut [(usize, &mut [f32])], n: usize) {
        for (j, y) in ys.iter_mut() {
            for (v, b) in y[..n].iter_mut().zip(&self.buf[..n]) {
                *v = b[*j];
            }
        }
    }

    /// Lane `j`'s state back into `f` (its output goes out through [`SvfBank::drain`]).
    pub fn store(&self, j: usize, f: &mut Svf) {
        f.ic1 = self.ic1[j];
        f.ic2 = self.ic2[j];
    }
}

/// One frame of `N` filters side by side (each [`Svf::process`], then states below `floor` in
/// magnitude set to 0): the input `x`, the states, the coefficients `[a1, a2, a3, k]` and the
/// output each keeps (0 low, 1 band, 2 high); returns the outputs.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // lanes side by side, indexed alike
fn svf_lanes<const N: usize>(
    x: [f32; N],
    ic1: &mut [f32; N],
    ic2: &mut [f32; N],
    c: &[[f32; N]; 4],
    out: &[u8; N],
    floor: f32,
) -> [f32; N] {
    let [a1, a2, a3, k] = c;
    let mut y = [0.0f32; N];
    for j in 0..N {
        let v3 = x[j] - ic2[j];
        let v1 = a1[j] * ic1[j] + a2[j] * v3;
        let v2 = ic2[j] + a2[j] * ic1[j] + a3[j] * v3;
        let n1 = 2.0 * v1 - ic1[j];
        let n2 = 2.0 * v2 - ic2[j];
        ic1[j] = if n1.abs() < floor { 0.0 } else { n1 };
        ic2[j] = if n2.abs() < floor { 0.0 } else { n2 };
        let high = x[j] - k[j] * v1 - v2;
        y[j] = match out[j] {
            0 => v2,
            1 => v1,
            _ => high,
        };
    }
    y
}

/// Attack-decay-sustain-release envelope, advanced per sample with fixed coefficients.
#[derive(Clone, Copy, Debug, Default)]
pub struct Adsr {
    pub level: f32,
    stage: u8,
    attack_inc: f32,
    decay_mul: f32,
    sustain: f32,
    release_mul: f32,
}

const ATTACK: u8 = 1;
const DECAY: u8 = 2;
const RELEASE: u8 = 3;

impl Adsr {
    pub const ZERO: Adsr = Adsr {
        level: 0.0,
        stage: 0,
        attack_inc: 0.0,
        decay_mul: 0.0,
        sustain: 0.0,
        release_mul: 0.0,
    };

    /// Times in seconds; `sustain` in 0..1.
    pub fn start(attack: f32, decay: f32, sustain: f32, release: f32, sr: f32) -> Adsr {
        Adsr {
            level: 0.0,
            stage: ATTACK,
            attack_inc: 1.0 / (attack.max(0.0005) * sr),
            decay_mul: decay_coeff(decay / 4.0, sr),
            sustain,
            release_mul: decay_coeff(release / 5.0, sr),
        }
    }

    pub fn release(&mut self) {
        if self.stage != 0 {
            self.stage = RELEASE;
        }
    }

    pub fn is_done(&self) -> bool {
        self.stage == 0
    }

    /// The stage's step as `level = s + (level - s) * m + inc` (`[s, m, inc]`): the same bits as
    /// [`Adsr::tick`]'s own formula in every stage (adding 0, multiplying by 1 and subtracting 0
    /// change nothing), so envelopes in different stages can step side by side in lanes.
    pub fn lane_step(&self) -> [f32; 3] {
        match self.stage {
            ATTACK => [0.0, 1.0, self.attack_inc],
            DECAY => [self.sustain, self.decay_mul, 0.0],
            RELEASE => [0.0, self.release_mul, 0.0],
            _ => [0.0, 1.0, 0.0],
        }
    }

    /// [`Adsr::lane_step`] of the release stage.
    pub fn release_step(&self) -> [f32; 3] {
        [0.0, self.release_mul, 0.0]
    }

    /// [`Adsr::lane_step`] of the decay stage.
    pub fn decay_step(&self) -> [f32; 3] {
        [self.sustain, self.decay_mul, 0.0]
    }

    pub fn in_attack(&self) -> bool {
        self.stage == ATTACK
    }

    pub fn in_release(&self) -> bool {
        self.stage == RELEASE
    }

    /// Back from lanes: the level reached, and whether the attack ended (on to the decay) or
    /// the release did (done).
    pub fn set_from_lane(&mut self, level: f32, attack_ended: bool, done: bool) {
        self.level = level;
        if attack_ended {
            self.stage = DECAY;
        }
        if done {
            self.stage = 0;
        }
    }

    /// [`Adsr::tick`] for each frame of `out` in turn, the levels into `out`, up to and
    /// including the frame it ends on; returns how many frames that is. The same levels, with a
    /// loop of its own for each stage rather than a choice of stage every frame.
    #[inline(always)]
    pub fn tick_run(&mut self, out: &mut [f32]) -> usize {
        let mut f = 0;
        while f < out.len() {
            match self.stage {
                ATTACK => {
                    while f < out.len() && self.stage == ATTACK {
                        out[f] = self.tick();
                        f += 1;
                    }
                }
                DECAY => {
                    // It never ends on its own (only by a release).
                    let (s, m) = (self.sustain, self.decay_mul);
                    let mut level = self.level;
                    for o in out[f..].iter_mut() {
                        level = s + (level - s) * m;
                        *o = level;
                    }
                    self.level = level;
                    return out.len();
                }
                RELEASE => {
                    while f < out.len() {
                        out[f] = self.tick();
                        f += 1;
                        if self.stage == 0 {
                            return f;
                        }
                    }
                }
                _ => {
                    out[f] = self.tick();
                    return f + 1;
                }
            }
        }
        f
    }

    #[inline]
    pub fn tick(&mut self) -> f32 {
        match self.stage {
            ATTACK => {
                self.level += self.attack_inc;
                if self.level >= 1.0 {
                    self.level = 1.0;
                    self.stage = DECAY;
                }
            }
            DECAY => {
                self.level = self.sustain + (self.level - self.sustain) * self.decay_mul;
            }
            RELEASE => {
                self.level *= self.release_mul;
                if self.level < 1e-5 {
                    self.level = 0.0;
                    self.stage = 0;
                }
            }
            _ => {}
        }
        self.level
    }
}

/// Adds lane `k` of `frames` (one row of eight lanes per frame) into `buses[b][at..]` for each
/// `(k, b)` of `into`, in that order frame by frame (lanes sharing a bus add in that order):
/// what a group of voices computed, into their tracks' buses. With AVX2, eight frames at a
/// time through a transpose of registers; otherwise lane by lane. The same sums either way
/// (each bus sample gets the same additions in the same order).
#[cfg_attr(target_arch = "x86_64", inline(always))]
pub fn add_lanes<const W: usize>(
    frames: &[[f32; W]],
    into: &[(usize, usize)],
    buses: &mut [[f32; crate::engine::MAX_BLOCK]],
    at: usize,
) {
    let n = frames
        .len()
        .min(crate::engine::MAX_BLOCK.saturating_sub(at));
    #[cfg(target_arch = "x86_64")]
    if W == 8 && has_avx2() {
        // SAFETY: this CPU has AVX2, the one feature `add_lanes` is compiled for; rows of
        // eight.
        #[allow(unsafe_code)]
        unsafe {
            avx2::add_lanes(&frames[..n], into, buses, at);
        }
        return;
    }
    add_lanes_lane_by_lane(&frames[..n], into, buses, at);
}

/// [`add_lanes`] without AVX2: lane by lane.
fn add_lanes_lane_by_lane<const W: usize>(
    frames: &[[f32; W]],
    into: &[(usize, usize)],
    buses: &mut [[f32; crate::engine::MAX_BLOCK]],
    at: usize,
) {
    let n = frames.len();
    for &(k, b) in into {
        let bus = &mut buses[b][at..at + n];
        // Four frames at a time (a register's worth in WebAssembly).
        let mut f = 0;
        while f + 4 <= n {
            let y = [
                frames[f][k],
                frames[f + 1][k],
                frames[f + 2][k],
                frames[f + 3][k],
            ];
            for (v, y) in bus[f..f + 4].iter_mut().zip(y) {
                *v += y;
            }
            f += 4;
        }
        for (v, y) in bus[f..].iter_mut().zip(&frames[f..]) {
            *v += y[k];
        }
    }
}

/// Whether this CPU has AVX2, for the register transposes below (`std` checks once and
/// remembers).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2")
}

/// The bank's transposes with AVX2 registers ([`SvfBank::fill`], [`SvfBank::drain`]): exact
/// copies, so the same bits as lane by lane.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::BANK;
    use core::arch::x86_64::*;

    /// An 8 x 8 block transposed: row `i` of the result is column `i` of `r`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn transpose(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(s0, s4),
            _mm256_permute2f128_ps::<0x20>(s1, s5),
            _mm256_permute2f128_ps::<0x20>(s2, s6),
            _mm256_permute2f128_ps::<0x20>(s3, s7),
            _mm256_permute2f128_ps::<0x31>(s0, s4),
            _mm256_permute2f128_ps::<0x31>(s1, s5),
            _mm256_permute2f128_ps::<0x31>(s2, s6),
            _mm256_permute2f128_ps::<0x31>(s3, s7),
        ]
    }

    /// [`super::add_lanes`] eight frames at a time (lane by lane in the last frames past a
    /// multiple of eight). `at + frames.len()` is at most the buses' length.
    ///
    /// # Safety
    /// The CPU must have AVX2, and `W` must be 8.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn add_lanes<const W: usize>(
        frames: &[[f32; W]],
        into: &[(usize, usize)],
        buses: &mut [[f32; crate::engine::MAX_BLOCK]],
        at: usize,
    ) {
        let n = frames.len();
        let (tiles, tail) = frames.split_at(n - n % 8);
        for (t, tile) in tiles.chunks_exact(8).enumerate() {
            let f = at + 8 * t;
            // SAFETY: eight floats each.
            let r: [__m256; 8] =
                core::array::from_fn(|i| unsafe { _mm256_loadu_ps(tile[i].as_ptr()) });
            let c = transpose(r);
            for &(k, b) in into {
                let dst: &mut [f32; 8] = (&mut buses[b][f..f + 8]).try_into().unwrap();
                // SAFETY: eight floats.
                unsafe {
                    let sum = _mm256_add_ps(_mm256_loadu_ps(dst.as_ptr()), c[k & 7]);
                    _mm256_storeu_ps(dst.as_mut_ptr(), sum);
                }
            }
        }
        let f = at + n - n % 8;
        for &(k, b) in into {
            for (v, fr) in buses[b][f..f + tail.len()].iter_mut().zip(tail) {
                *v += fr[k & 7];
            }
        }
    }

    /// `buf[f][8 * H + k] = rows[k][f]` for every frame of `buf` and every `k` whose row has
    /// them (the other lanes of the half get zeros, or in the last frames past a multiple of
    /// eight keep what they had).
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn fill_half<const H: usize>(buf: &mut [[f32; BANK]], rows: &[&[f32]; 8]) {
        let n = buf.len();
        let (tiles, tail) = buf.split_at_mut(n - n % 8);
        for (t, tile) in tiles.chunks_exact_mut(8).enumerate() {
            let f = 8 * t;
            let r: [__m256; 8] = core::array::from_fn(|k| match rows[k].get(f..f + 8) {
                // SAFETY: eight floats from `f`, checked by `get`.
                Some(x) => unsafe { _mm256_loadu_ps(x.as_ptr()) },
                None => _mm256_setzero_ps(),
            });
            for (row, v) in tile.iter_mut().zip(transpose(r)) {
                let dst: &mut [f32; 8] = (&mut row[8 * H..8 * H + 8]).try_into().unwrap();
                // SAFETY: eight floats.
                unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), v) };
            }
        }
        let f = n - n % 8;
        for (k, x) in rows.iter().enumerate() {
            for (b, v) in tail.iter_mut().zip(x.get(f..).unwrap_or(&[])) {
                b[8 * H + k] = *v;
            }
        }
    }

    /// `rows[k][f] = buf[f][8 * H + k]` for every frame of `buf` that row `k` has (eight at a
    /// time: a row shorter than a multiple of eight gets its last frames lane by lane only
    /// where it is at least as long as `buf`).
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn drain_half<const H: usize>(
        buf: &[[f32; BANK]],
        rows: &mut [&mut [f32]; 8],
    ) {
        let n = buf.len();
        let (tiles, tail) = buf.split_at(n - n % 8);
        for (t, tile) in tiles.chunks_exact(8).enumerate() {
            let f = 8 * t;
            let r: [__m256; 8] = core::array::from_fn(|i| {
                let src: &[f32; 8] = (&tile[i][8 * H..8 * H + 8]).try_into().unwrap();
                // SAFETY: eight floats.
                unsafe { _mm256_loadu_ps(src.as_ptr()) }
            });
            for (y, v) in rows.iter_mut().zip(transpose(r)) {
                if let Some(y) = y.get_mut(f..f + 8) {
                    // SAFETY: eight floats from `f`, checked by `get_mut`.
                    unsafe { _mm256_storeu_ps(y.as_mut_ptr(), v) };
                }
            }
        }
        let f = n - n % 8;
        for (k, y) in rows.iter_mut().enumerate() {
            for (v, b) in y.get_mut(f..).unwrap_or(&mut []).iter_mut().zip(tail) {
                *v = b[8 * H + k];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group's lanes into their buses ([`add_lanes`], with AVX2 where the CPU has it, and
    /// lane by lane): each bus gets its lanes' frames added in the order given, two lanes on
    /// one bus included, from any frame, in stretches not a multiple of eight.
    #[test]
    fn lanes_add_into_their_buses_in_order() {
        const MB: usize = crate::engine::MAX_BLOCK;
        // Values whose sums depend on the order they are added in: lanes 0, 1 and 2 share
        // bus 2, where 1e8 and -1e8 swallow a small value added before them.
        let lane = |k: usize, f: usize| match k {
            1 => 1.0e8,
            2 => -1.0e8,
            _ => 0.37 * (k + 1) as f32 + 0.01 * f as f32,
        };
        let into = [(0usize, 2usize), (3, 0), (1, 2), (5, 1), (2, 2)];
        for (at, n) in [(0, 128), (0, 13), (5, 64), (9, 100), (120, 8), (127, 1)] {
            let frames: Vec<[f32; 8]> = (0..n)
                .map(|f| core::array::from_fn(|k| lane(k, f)))
                .collect();
            let start: Vec<[f32; MB]> = (0..3)
                .map(|b| core::array::from_fn(|f| 0.25 * (b * MB + f) as f32))
                .collect();
            let mut want = start.clone();
            for &(k, b) in &into {
                for f in 0..n {
                    want[b][at + f] += lane(k, f);
                }
            }
            for by_lane in [false, true] {
                let mut buses = start.clone();
                if by_lane {
                    add_lanes_lane_by_lane(&frames, &into, &mut buses, at);
                } else {
                    add_lanes(&frames, &into, &mut buses, at);
                }
                for b in 0..3 {
                    let same = buses[b]
                        .iter()
                        .zip(&want[b])
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(
                        same,
                        "bus {b}, frames {at}..{}, lane by lane: {by_lane}",
                        at + n
                    );
                }
            }
        }
    }

    /// The bank's inputs and outputs all at once ([`SvfBank::fill`], [`SvfBank::drain`], with
    /// AVX2 where the CPU has it, and the lane-by-lane path used without it) put each lane's
    /// samples where they belong: lanes in either half, a half partly filled, stretches not a
    /// multiple of eight frames.
    #[test]
    fn the_bank_moves_its_lanes_at_once_as_one_by_one() {
        let input = |j: usize, f: usize| (j * 1000 + f) as f32 * 0.001 - 0.3;
        let cases = [1, 7, 8, 13, 64, 100, 128]
            .into_iter()
            .flat_map(|n| [(n, false), (n, true)]);
        for (n, by_lane) in cases {
            for lanes in [
                vec![0, 1, 2],
                vec![0, 3, 9, 15],
                (0..BANK).collect::<Vec<_>>(),
            ] {
                let rows: Vec<Vec<f32>> = lanes
                    .iter()
                    .map(|&j| (0..n).map(|f| input(j, f)).collect())
                    .collect();
                let mut bank = Box::new(SvfBank::EMPTY);
                let xs: Vec<(usize, &[f32])> =
                    lanes.iter().zip(&rows).map(|(&j, r)| (j, &r[..])).collect();
                if by_lane {
                    bank.fill_lane_by_lane(&xs, n);
                } else {
                    bank.fill(&xs, n);
                }
                for (&j, r) in lanes.iter().zip(&rows) {
                    let lane: Vec<f32> = bank.buf[..n].iter().map(|b| b[j]).collect();
                    assert_eq!(&lane, r, "lane {j} of {lanes:?}, {n} frames in");
                }
                // Out: each lane's frames, distinct per lane and frame.
                for (f, b) in bank.buf.iter_mut().enumerate() {
                    for (j, v) in b.iter_mut().enumerate() {
                        *v = input(j, f) * 2.0;
                    }
                }
                let mut outs: Vec<Vec<f32>> = lanes.iter().map(|_| vec![0.0; n]).collect();
                let mut ys: Vec<(usize, &mut [f32])> = lanes
                    .iter()
                    .zip(outs.iter_mut())
                    .map(|(&j, o)| (j, &mut o[..]))
                    .collect();
                if by_lane {
                    bank.drain_lane_by_lane(&mut ys, n);
                } else {
                    bank.drain(&mut ys, n);
                }
                for (&j, o) in lanes.iter().zip(&outs) {
                    let want: Vec<f32> = (0..n).map(|f| input(j, f) * 2.0).collect();
                    assert_eq!(o, &want, "lane {j} of {lanes:?}, {n} frames out");
                }
            }
        }
    }

    #[test]
    fn an_envelope_run_ticks_as_frame_by_frame() {
        // Through every stage: an attack into the decay, then (released) down to the end,
        // in runs of several lengths.
        for run in [1, 7, 128] {
            let mut a = Adsr::start(0.003, 0.05, 0.6, 0.02, 48_000.0);
            let mut b = a;
            let mut frames = 0;
            while !a.is_done() {
                if frames >= 2_000 {
                    a.release();
                    b.release();
                }
                let mut out = vec![0.0f32; run];
                let k = a.tick_run(&mut out);
                let mut want = vec![];
                for _ in 0..run {
                    want.push(b.tick().to_bits());
                    if b.is_done() {
                        break;
                    }
                }
                let got: Vec<u32> = out[..k].iter().map(|x| x.to_bits()).collect();
                assert_eq!(got, want, "run of {run} from frame {frames}");
                frames += k;
            }
            assert!(b.is_done() && frames > 2_000);
        }
    }

    #[test]
    fn notes_and_noise() {
        assert!((note_hz(69.0) - 440.0).abs() < 1e-3);
        assert!((note_hz(57.0) - 220.0).abs() < 1e-3);
        let mut n = Noise::new(7);
        let xs: Vec<f32> = (0..10_000).map(|_| n.sample()).collect();
        assert!(xs.iter().all(|x| (-1.0..1.0).contains(x)));
        let mean: f32 = xs.iter().sum::<f32>() / xs.len() as f32;
        assert!(mean.abs() < 0.05);
    }

    #[test]
    fn polynomial_sine_matches_libm() {
        let mut worst: f32 = 0.0;
        for i in 0..100_000 {
            let p = i as f32 / 100_000.0;
            worst = worst.max((sine(p) - libm::sinf(TAU * p)).abs());
        }
        assert!(worst < 4e-6, "worst error {worst}");
        assert!((soft_clip(0.5) - libm::tanhf(0.5)).abs() < 0.01);
        assert_eq!(soft_clip(10.0), 1.0);
    }

    #[test]
    fn selects_compute_the_same_bits() {
        // Phases in [0, 1), and the sub bass's doubled ones in [0, 2).
        for i in 0..200_000 {
            let p = i as f32 / 100_000.0;
            assert_eq!(sine_select(p).to_bits(), sine(p).to_bits(), "{p}");
        }
        let mut a = [0.25f32, 0.5, 0.75, 0.999];
        let mut b = a.map(Phase);
        let inc = [0.01f32, 0.02, 0.003, 0.5];
        for _ in 0..1000 {
            let p = advance_lanes(&mut a, &inc);
            for j in 0..4 {
                assert_eq!(p[j].to_bits(), b[j].advance(inc[j]).to_bits());
            }
        }
    }

    #[test]
    fn floor_is_exact() {
        let mut n = Noise::new(11);
        let mut xs: Vec<f32> = (0..100_000).map(|_| n.sample() * 3.0).collect();
        xs.extend([
            0.0,
            1.0,
            -1.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.999_999_9,
            -0.000_001,
            4e6,
        ]);
        for x in xs {
            assert_eq!(floor(x), libm::floorf(x), "{x}");
        }
    }

    #[test]
    fn log2_and_exp2_approximations_are_close() {
        let mut worst: f32 = 0.0;
        let mut x = 1e-30f32;
        while x < 1e30 {
            let err = (log2_approx(x) - libm::log2f(x)).abs() / libm::log2f(x).abs().max(1.0);
            worst = worst.max(err);
            x *= 1.000_37;
        }
        assert!(worst < 3e-7, "log2: worst {worst}");
        let mut worst: f32 = 0.0;
        let mut y = -125.0f32;
        while y < 127.0 {
            let want = libm::exp2f(y);
            worst = worst.max((exp2_approx(y) - want).abs() / want);
            y += 0.000_731;
        }
        assert!(worst < 3e-7, "exp2: worst {worst}");
        assert_eq!(exp2_approx(0.0), 1.0);
        assert_eq!(exp2_approx(-1000.0), libm::exp2f(-126.0));
    }

    #[test]
    fn peak_abs_is_the_largest_magnitude() {
        let mut n = Noise::new(3);
        for len in [0usize, 1, 7, 8, 9, 31, 128] {
            let mut x: Vec<f32> = (0..len).map(|_| n.sample() * 3.0).collect();
            if len > 5 {
                x[5] = f32::NAN;
            }
            let want = x.iter().fold(0.0f32, |p, v| p.max(v.abs()));
            assert_eq!(peak_abs(&x).to_bits(), want.to_bits(), "{len}");
        }
    }

    #[test]
    fn svf_lowpass_attenuates_highs() {
        let sr = 48_000.0;
        let mut f = Svf::default();
        f.set(500.0, 0.0, sr);
        let mut p = Phase::default();
        let mut peak: f32 = 0.0;
        for i in 0..4800 {
            let x = sine(p.advance(8000.0 / sr));
            let y = f.process(x).low;
            if i > 2400 {
                peak = peak.max(y.abs());
            }
        }
        assert!(peak < 0.01, "8 kHz through a 500 Hz low-pass: {peak}");
    }
}
