//! Sampled instruments: their data as the engine holds it ([`SampledInstrument`], loaded once
//! per engine slot and shared by every track that plays it), the resampling kernel, the
//! envelope, and the voice that plays one note.
//!
//! Pitch is changed by resampling with a windowed-sinc kernel (Kaiser window). At rates up to
//! [`FAST_RATIO`] source frames per output frame an 8-tap polyphase table is used (anything it
//! folds lands above 20 kHz); faster, the kernel is widened by the rate so it is also the
//! anti-aliasing low-pass (a note played two octaves above its root does not alias).
//! Everything is plain `f32`/`f64` arithmetic and `libm`, so a render is bit-identical natively
//! and in wasm; PCM stays 16-bit (half the memory of `f32`).
//!
//! Zone selection: by key and velocity among the zones whose PCM is loaded (a zone with empty
//! PCM is skipped, so an instrument can be loaded zone by zone). Velocity comes from the
//! step's volume lock (`velocity = round(127 * volume)`), [`DEFAULT_VELOCITY`] without one.

use crate::dsp::decay_coeff;

/// The velocity of a step without a volume lock (loud, not the hardest layer).
pub const DEFAULT_VELOCITY: u8 = 100;
/// Up to this playback rate (source frames per output frame) the fixed 8-tap kernel plays.
pub const FAST_RATIO: f64 = 1.25;
/// Half the fast kernel's length, in taps.
const HALF: usize = 4;
const TAPS: usize = 2 * HALF;
const FAST_CUTOFF: f64 = 0.45;
const FAST_BETA: f64 = 6.0;
/// Kernel phases of the fast table.
const PHASES: usize = 4096;
// `resample` finds the row from the top 12 bits of the position's fraction.
const _: () = assert!(PHASES == 1 << 12);
/// Half-width (zero crossings) of the wide kernel.
const WIDE_HALF: f64 = 8.0;
/// Resolution of the wide kernel's table, per unit.
const WIDE_RES: usize = 1024;
/// The fastest rate the wide kernel follows (four octaves up); beyond it, it aliases.
const MAX_WIDE_RATIO: f64 = 16.0;
/// A stolen or choked voice fades out over this long (no click).
pub const FADE_SECONDS: f32 = 0.005;

/// The amplitude envelope (see `keyboardia_core::manifest::Envelope`): seconds, and a
/// sustain level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnvelopeSpec {
    pub attack: f32,
    pub hold: f32,
    pub decay: f32,
    pub sustain: f32,
    pub release: f32,
}

/// One zone of a loaded instrument.
#[derive(Clone, Debug, PartialEq)]
pub struct SampledZone {
    pub key_lo: u8,
    pub key_hi: u8,
    pub vel_lo: u8,
    pub vel_hi: u8,
    pub root: u8,
    /// Cents added to every note's pitch.
    pub fine_tune: i16,
    pub sample_rate: u32,
    /// Sustain loop `[start, end)` in frames.
    pub loop_points: Option<(u32, u32)>,
    /// Linear gain of this zone.
    pub gain: f32,
    /// Mono 16-bit PCM; empty while not loaded (the zone is then never chosen).
    pub pcm: Vec<i16>,
}

/// A sampled instrument, as loaded into an engine slot.
#[derive(Clone, Debug, PartialEq)]
pub struct SampledInstrument {
    /// The note a step plays before transpose and pitch locks.
    pub base_note: u8,
    /// Linear gain of the whole instrument (level matching).
    pub gain: f32,
    pub envelope: EnvelopeSpec,
    /// Plays to its end whatever the gate (drums).
    pub one_shot: bool,
    /// Choke group (0: none). Voices of any track in the same group cut each other.
    pub choke: u32,
    pub zones: Vec<SampledZone>,
}

/// dB to a linear gain.
pub fn db_to_gain(db: f32) -> f32 {
    libm::powf(10.0, db / 20.0)
}

/// A stable number for a choke group name (FNV-1a; 0 means none).
pub fn choke_id(group: &str) -> u32 {
    let mut h: u32 = 0x811C_9DC5;
    for b in group.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

impl SampledInstrument {
    /// No zones: plays nothing.
    pub const EMPTY: SampledInstrument = SampledInstrument {
        base_note: 60,
        gain: 1.0,
        envelope: EnvelopeSpec {
            attack: 0.0,
            hold: 0.0,
            decay: 1.0,
            sustain: 1.0,
            release: 0.1,
        },
        one_shot: false,
        choke: 0,
        zones: Vec::new(),
    };

    /// The zone for `key` and `velocity` among the loaded zones: containing both if one does,
    /// else the nearest by key, then by velocity.
    pub fn zone_for(&self, key: u8, velocity: u8) -> Option<usize> {
        let dist = |lo: u8, hi: u8, k: u8| -> u32 {
            if k < lo {
                (lo - k) as u32
            } else {
                k.saturating_sub(hi) as u32
            }
        };
        let mut best: Option<(u32, usize)> = None;
        for (i, z) in self.zones.iter().enumerate() {
            if z.pcm.len() < 2 {
                continue;
            }
            let score = dist(z.key_lo, z.key_hi, key) * 256 + dist(z.vel_lo, z.vel_hi, velocity);
            if best.is_none_or(|(b, _)| score < b) {
                best = Some((score, i));
            }
        }
        best.map(|(_, i)| i)
    }

    /// Frames of PCM held, over all zones.
    pub fn frames(&self) -> usize {
        self.zones.iter().map(|z| z.pcm.len()).sum()
    }
}

#[cfg(feature = "session")]
impl SampledInstrument {
    /// Builds the engine's instrument from a manifest and the decoded PCM of its files
    /// (`pcm(file)`; a file not yet loaded gives `None` and its zones stay silent until it is).
    pub fn from_manifest(
        m: &keyboardia_core::manifest::Manifest,
        base_note: u8,
        mut pcm: impl FnMut(&str) -> Option<Vec<i16>>,
    ) -> SampledInstrument {
        let e = m.envelope;
        SampledInstrument {
            base_note,
            gain: db_to_gain(m.gain_db),
            envelope: EnvelopeSpec {
                attack: e.attack,
                hold: e.hold,
                decay: e.decay,
                sustain: e.sustain,
                release: e.release,
            },
            one_shot: m.one_shot,
            choke: m.choke.as_deref().map_or(0, choke_id),
            zones: m
                .zones
                .iter()
                .map(|z| SampledZone {
                    key_lo: z.key_lo,
                    key_hi: z.key_hi,
                    vel_lo: z.vel_lo,
                    vel_hi: z.vel_hi,
                    root: z.root,
                    fine_tune: z.fine_tune,
                    sample_rate: z.sample_rate,
                    loop_points: z.loop_start.zip(z.loop_end),
                    gain: db_to_gain(z.gain_db),
                    pcm: pcm(&z.file).unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// Decodes a 16-bit mono FLAC file (as the sample pipeline writes them) to PCM and its rate.
/// Integer arithmetic only: the same bytes give the same PCM everywhere.
#[cfg(feature = "flac")]
pub fn decode_flac(bytes: &[u8]) -> Result<(Vec<i16>, u32), String> {
    let mut r = claxon::FlacReader::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a FLAC file: {e}"))?;
    let info = r.streaminfo();
    if info.bits_per_sample != 16 || info.channels != 1 {
        return Err(format!(
            "expected 16-bit mono FLAC, got {} bits, {} channels",
            info.bits_per_sample, info.channels
        ));
    }
    let mut pcm = Vec::with_capacity(info.samples.unwrap_or(0) as usize);
    for s in r.samples() {
        let s = s.map_err(|e| format!("corrupt FLAC data: {e}"))?;
        pcm.push(s as i16);
    }
    Ok((pcm, info.sample_rate))
}

/// The resampling kernels, computed once per engine.
pub struct Kernel {
    /// `PHASES + 1` rows of `TAPS` weights; row `p` is for a fractional position `p / PHASES`.
    poly: Box<[[f32; TAPS]]>,
    /// The wide prototype, sampled at `WIDE_RES` per unit over `[0, WIDE_HALF]` (symmetric).
    wide: Box<[f32]>,
}

/// Modified Bessel function of the first kind, order 0 (for the Kaiser window).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..40 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < 1e-12 * sum {
            break;
        }
    }
    sum
}

/// A Kaiser-windowed sinc: cutoff `fc` cycles per sample, half-width `half`.
fn windowed_sinc(x: f64, fc: f64, half: f64, beta: f64) -> f64 {
    if x.abs() >= half {
        return 0.0;
    }
    let s = if x == 0.0 {
        2.0 * fc
    } else {
        let a = core::f64::consts::PI * 2.0 * fc * x;
        libm::sin(a) / (core::f64::consts::PI * x)
    };
    let r = x / half;
    s * bessel_i0(beta * libm::sqrt(1.0 - r * r)) / bessel_i0(beta)
}

impl Kernel {
    pub fn new() -> Kernel {
        let mut poly = vec![[0.0f32; TAPS]; PHASES + 1].into_boxed_slice();
        for p in 0..=PHASES {
            let frac = p as f64 / PHASES as f64;
            let mut w = [0.0f64; TAPS];
            for (k, wk) in w.iter_mut().enumerate() {
                let x = k as f64 - (HALF as f64 - 1.0) - frac;
                *wk = windowed_sinc(x, FAST_CUTOFF, HALF as f64, FAST_BETA);
            }
            let sum: f64 = w.iter().sum();
            for k in 0..TAPS {
                poly[p][k] = (w[k] / sum) as f32;
            }
        }
        let n = (WIDE_HALF as usize) * WIDE_RES + 2;
        let mut wide = vec![0.0f32; n].into_boxed_slice();
        for (i, w) in wide.iter_mut().enumerate() {
            *w = windowed_sinc(i as f64 / WIDE_RES as f64, 0.45, WIDE_HALF, 8.0) as f32;
        }
        Kernel { poly, wide }
    }
}

impl Default for Kernel {
    fn default() -> Self {
        Kernel::new()
    }
}

const ATTACK: u8 = 1;
const HOLD: u8 = 2;
const DECAY: u8 = 3;
const SUSTAIN: u8 = 4;
const RELEASE: u8 = 5;

/// The envelope's running state.
#[derive(Clone, Copy, Debug)]
pub struct Envelope {
    pub level: f32,
    stage: u8,
    attack_inc: f32,
    hold: u32,
    decay_mul: f32,
    sustain: f32,
    release_mul: f32,
}

/// Per-frame multiplier for a fall of 100 dB in `seconds`.
fn fall_100db(seconds: f32, sr: f32) -> f32 {
    // 100 dB = a factor of 1e-5 = exp(-11.513).
    decay_coeff(seconds.max(0.0005) / 11.512_925, sr)
}

impl Envelope {
    pub const IDLE: Envelope = Envelope {
        level: 0.0,
        stage: 0,
        attack_inc: 0.0,
        hold: 0,
        decay_mul: 0.0,
        sustain: 0.0,
        release_mul: 0.0,
    };

    pub fn start(s: &EnvelopeSpec, sr: f32) -> Envelope {
        let instant = s.attack < 0.0005;
        Envelope {
            level: if instant { 1.0 } else { 0.0 },
            stage: if instant { HOLD } else { ATTACK },
            attack_inc: 1.0 / (s.attack.max(0.0005) * sr),
            hold: (s.hold.max(0.0) * sr) as u32,
            decay_mul: fall_100db(s.decay, sr),
            sustain: s.sustain.clamp(0.0, 1.0),
            release_mul: fall_100db(s.release, sr),
        }
    }

    /// The gate closed: fall at the release rate from wherever the level is.
    pub fn release(&mut self) {
        if self.stage != 0 {
            self.stage = RELEASE;
        }
    }

    /// Cut fast (a choke).
    pub fn cut(&mut self, sr: f32) {
        if self.stage != 0 {
            self.stage = RELEASE;
            self.release_mul = self.release_mul.min(fall_100db(0.05, sr));
        }
    }

    pub fn is_done(&self) -> bool {
        self.stage == 0
    }

    #[inline]
    pub fn tick(&mut self) -> f32 {
        match self.stage {
            ATTACK => {
                self.level += self.attack_inc;
                if self.level >= 1.0 {
                    self.level = 1.0;
                    self.stage = HOLD;
                }
            }
            HOLD => {
                if self.hold == 0 {
                    self.stage = DECAY;
                } else {
                    self.hold -= 1;
                }
            }
            DECAY => {
                self.level *= self.decay_mul;
                if self.level <= self.sustain {
                    self.level = self.sustain;
                    self.stage = SUSTAIN;
                }
                if self.level < 1e-4 {
                    self.stage = 0;
                }
            }
            SUSTAIN => {}
            RELEASE => {
                self.level *= self.release_mul;
                if self.level < 1e-4 {
                    self.stage = 0;
                }
            }
            _ => self.level = 0.0,
        }
        self.level
    }

    /// A plain stretch (nothing else to watch: no gate closing, no declick, no fade): adds
    /// `x * level * gain` for each frame of `src` into `out`, the level moving exactly as
    /// [`Envelope::tick`] moves it frame by frame, while the stage stays a hold, decay, sustain
    /// or release; `last` gets the last output. Returns the frames done: it stops after a frame
    /// that changed the stage, and does nothing (0) in the other stages.
    #[inline]
    pub fn run(&mut self, src: &[f32], gain: f32, out: &mut [f32], last: &mut f32) -> usize {
        let n = src.len().min(out.len());
        let (src, out) = (&src[..n], &mut out[..n]);
        match self.stage {
            HOLD => {
                // The level stays; the stage moves on at the frame after the hold's last.
                let m = n.min(self.hold as usize + 1);
                let l = self.level;
                for (o, x) in out[..m].iter_mut().zip(src) {
                    let y = x * l * gain;
                    *o += y;
                    *last = y;
                }
                if m == self.hold as usize + 1 {
                    self.hold = 0;
                    self.stage = DECAY;
                } else {
                    self.hold -= m as u32;
                }
                m
            }
            SUSTAIN => {
                let l = self.level;
                for (o, x) in out.iter_mut().zip(src) {
                    let y = x * l * gain;
                    *o += y;
                    *last = y;
                }
                n
            }
            DECAY => {
                for (i, (o, x)) in out.iter_mut().zip(src).enumerate() {
                    self.level *= self.decay_mul;
                    let mut changed = false;
                    if self.level <= self.sustain {
                        self.level = self.sustain;
                        self.stage = SUSTAIN;
                        changed = true;
                    }
                    if self.level < 1e-4 {
                        self.stage = 0;
                        changed = true;
                    }
                    let y = x * self.level * gain;
                    *o += y;
                    *last = y;
                    if changed {
                        return i + 1;
                    }
                }
                n
            }
            RELEASE => {
                for (i, (o, x)) in out.iter_mut().zip(src).enumerate() {
                    self.level *= self.release_mul;
                    let y = x * self.level * gain;
                    *o += y;
                    *last = y;
                    if self.level < 1e-4 {
                        self.stage = 0;
                        return i + 1;
                    }
                }
                n
            }
            _ => 0,
        }
    }
}

/// The sampler-specific state of a voice.
#[derive(Clone, Copy, Debug)]
pub struct SamplerState {
    pub zone: u16,
    /// Position in source frames, fixed point with 32 fractional bits (exact, and the same
    /// everywhere).
    pub pos: u64,
    /// Source frames per output frame.
    pub inc: f64,
    /// The voice has gone round its loop at least once.
    pub wrapped: bool,
    pub env: Envelope,
    pub one_shot: bool,
    pub choke: u32,
    /// Fading out (stolen or choked): the gain still left, and its step per frame.
    pub fade: f32,
    pub fade_step: f32,
    /// Reading the zone's half-rate copy ([`HalfZone`]).
    pub half: bool,
}

impl SamplerState {
    pub const IDLE: SamplerState = SamplerState {
        zone: 0,
        pos: 0,
        inc: 1.0,
        wrapped: false,
        env: Envelope::IDLE,
        one_shot: false,
        choke: 0,
        fade: 1.0,
        fade_step: 0.0,
        half: false,
    };
}

/// What a note needs to start: its zone, rate, gain, envelope.
pub struct NoteStart {
    pub zone: u16,
    pub inc: f64,
    pub gain: f32,
}

/// Picks the zone for `note` (fractional MIDI note) at `velocity` and the playback rate for an
/// engine at `sr`.
pub fn note_start(inst: &SampledInstrument, note: f32, velocity: u8, sr: f32) -> Option<NoteStart> {
    let key = libm::floorf(note + 0.5).clamp(0.0, 127.0) as u8;
    let zi = inst.zone_for(key, velocity)?;
    let z = &inst.zones[zi];
    let semis = note as f64 - z.root as f64 + z.fine_tune as f64 / 100.0;
    let inc = z.sample_rate as f64 / sr as f64 * libm::exp2(semis / 12.0);
    Some(NoteStart {
        zone: zi as u16,
        inc,
        gain: inst.gain * z.gain,
    })
}

/// The PCM a voice reads: a zone's own, or its half-rate copy.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub pcm: &'a [i16],
    pub loop_points: Option<(u32, u32)>,
}

impl SampledZone {
    pub fn source(&self) -> Source<'_> {
        Source {
            pcm: &self.pcm,
            loop_points: self.loop_points,
        }
    }
}

/// A zone's PCM at half its rate, low-passed first, for notes played more than
/// [`FAST_RATIO`] faster than recorded (they then read it at half the rate with the fast
/// kernel, instead of the slow widened one). Its loop, if any, is exactly periodic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HalfZone {
    pub pcm: Vec<i16>,
    pub loop_points: Option<(u32, u32)>,
}

impl HalfZone {
    pub fn source(&self) -> Source<'_> {
        Source {
            pcm: &self.pcm,
            loop_points: self.loop_points,
        }
    }
}

/// Half-width (taps) of the decimation filter.
const DECIMATE_HALF: i64 = 24;

/// Builds a zone's half-rate copy (allocates: a loading-time job). A loop of `L` frames is
/// read twice (`2L` frames, an even number), so it becomes a loop of exactly `L` frames at half
/// the rate, starting on a whole frame.
pub fn half_rate(z: &SampledZone) -> HalfZone {
    let pcm = &z.pcm;
    if pcm.len() < 2 {
        return HalfZone::default();
    }
    // A Kaiser-windowed low-pass at 0.225 cycles per frame (0.45 of the new Nyquist).
    let taps: Vec<f64> = (-DECIMATE_HALF..=DECIMATE_HALF)
        .map(|j| windowed_sinc(j as f64, 0.225, DECIMATE_HALF as f64 + 1.0, 8.0))
        .collect();
    let sum: f64 = taps.iter().sum();
    let taps: Vec<f32> = taps.iter().map(|t| (t / sum) as f32).collect();
    // The signal to filter, zero-padded on both sides: the PCM, and for a loop one more time
    // round it (so the copy's loop is periodic).
    let h = DECIMATE_HALF as usize;
    let (body, phase) = match z.loop_points {
        Some((ls, le)) if le > ls && (le as usize) <= pcm.len() => {
            let (ls, le) = (ls as usize, le as usize);
            (le + (le - ls), ls % 2)
        }
        _ => (pcm.len(), 0),
    };
    let mut ext = vec![0.0f32; body + 2 * h];
    for (i, x) in ext[h..h + body].iter_mut().enumerate() {
        let src = match z.loop_points {
            Some((ls, le)) if i >= le as usize => {
                ls as usize + (i - le as usize) % (le - ls) as usize
            }
            _ => i,
        };
        *x = pcm[src] as f32;
    }
    let mut out = Vec::with_capacity(body / 2 + 1);
    let mut c = phase;
    while c < body {
        let w = &ext[c..c + taps.len()];
        let mut acc = 0.0f32;
        for (a, b) in w.iter().zip(&taps) {
            acc += a * b;
        }
        out.push(libm::roundf(acc).clamp(-32768.0, 32767.0) as i16);
        c += 2;
    }
    let phase = phase as i64;
    let loop_points = z.loop_points.and_then(|(ls, le)| {
        let start = (ls as i64 - phase) / 2;
        let l = le as i64 - ls as i64;
        (l > 0 && (le as usize) <= pcm.len()).then_some((start as u32, (start + l) as u32))
    });
    if let Some((_, e)) = loop_points {
        out.truncate(e as usize);
    }
    HalfZone {
        pcm: out,
        loop_points,
    }
}

/// Reads source frame `i` for a voice (wrapping through the loop, zero outside).
#[inline]
fn at(z: &Source<'_>, wrapped: bool, i: i64) -> f32 {
    let mut i = i;
    if let Some((ls, le)) = z.loop_points {
        let (ls, le) = (ls as i64, le as i64);
        let len = le - ls;
        if i >= le {
            i = ls + (i - le) % len;
        } else if wrapped && i < ls {
            i += len * ((ls - i + len - 1) / len);
        }
    }
    if i < 0 || i >= z.pcm.len() as i64 {
        0.0
    } else {
        z.pcm[i as usize] as f32
    }
}

/// The dot product of 8 samples and 8 weights, summed as a tree (so it vectorizes, and in
/// the same order everywhere).
#[inline(always)]
fn dot8(s: &[i16; TAPS], w: &[f32; TAPS]) -> f32 {
    let p = [
        s[0] as f32 * w[0],
        s[1] as f32 * w[1],
        s[2] as f32 * w[2],
        s[3] as f32 * w[3],
        s[4] as f32 * w[4],
        s[5] as f32 * w[5],
        s[6] as f32 * w[6],
        s[7] as f32 * w[7],
    ];
    ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))
}

/// One source-domain sample at frame `i0` plus fraction row `p` of the fast kernel's table,
/// reading through the loop.
#[inline(always)]
fn fast_sample(
    z: &Source<'_>,
    k: &Kernel,
    wrapped: bool,
    i0: i64,
    p: usize,
    lo: i64,
    hi: i64,
) -> f32 {
    let w = &k.poly[p];
    let start = i0 - (HALF as i64 - 1);
    if start >= lo && start + TAPS as i64 <= hi {
        let s: &[i16; TAPS] = z.pcm[start as usize..start as usize + TAPS]
            .try_into()
            .expect("eight samples");
        dot8(s, w)
    } else {
        let mut acc = 0.0f32;
        for (t, wt) in w.iter().enumerate() {
            acc += at(z, wrapped, start + t as i64) * wt;
        }
        acc
    }
}

/// One source-domain sample at `pos` with the widened kernel (rate `r` > [`FAST_RATIO`]).
fn wide_sample(z: &Source<'_>, k: &Kernel, wrapped: bool, pos: f64, r: f64) -> f32 {
    let r = r.min(MAX_WIDE_RATIO);
    let reach = WIDE_HALF * r;
    let first = libm::ceil(pos - reach) as i64;
    let last = libm::floor(pos + reach) as i64;
    let scale = WIDE_RES as f64 / r;
    let mut acc = 0.0f32;
    let mut norm = 0.0f32;
    let (lo, hi) = match z.loop_points {
        Some((ls, le)) => (if wrapped { ls as i64 } else { 0 }, le as i64),
        None => (0, z.pcm.len() as i64),
    };
    if first >= lo && last < hi {
        // The whole window lies in plain PCM: read it directly.
        let top = k.wide.len() - 2;
        for (n, &v) in z.pcm[first as usize..=last as usize].iter().enumerate() {
            let d = libm::fabs((first + n as i64) as f64 - pos) * scale;
            let j = (d as usize).min(top);
            let f = (d - j as f64) as f32;
            let w = k.wide[j] + (k.wide[j + 1] - k.wide[j]) * f;
            acc += v as f32 * w;
            norm += w;
        }
        return if norm != 0.0 { acc / norm } else { 0.0 };
    }
    for i in first..=last {
        let d = libm::fabs(i as f64 - pos) * scale;
        let j = (d as usize).min(k.wide.len() - 2);
        let f = (d - j as f64) as f32;
        let w = k.wide[j] + (k.wide[j + 1] - k.wide[j]) * f;
        acc += at(z, wrapped, i) * w;
        norm += w;
    }
    if norm != 0.0 {
        acc / norm
    } else {
        0.0
    }
}

/// One in fixed point (32 fractional bits).
const FX_ONE: f64 = 4_294_967_296.0;

/// Renders up to `out.len()` frames of one voice's resampled source (before envelope and
/// gain, in ±1) into `out`, advancing its position. Returns how many frames were made: fewer
/// than asked when an unlooped sample ran out.
#[inline(always)]
pub fn resample(st: &mut SamplerState, z: &Source<'_>, k: &Kernel, out: &mut [f32]) -> usize {
    const SCALE: f32 = 1.0 / 32768.0;
    // The rate, in fixed point.
    let inc = (st.inc * FX_ONE) as u64;
    let (ls, le) = z
        .loop_points
        .map_or((0, u64::MAX), |(a, b)| (a as u64, b as u64));
    let hi = z.loop_points.map_or(z.pcm.len() as i64, |(_, b)| b as i64);
    let looped = z.loop_points.is_some();
    let (ls_fx, le_fx) = (ls << 32, if looped { le << 32 } else { u64::MAX });
    let loop_fx = le_fx.wrapping_sub(ls_fx);
    let end_fx = ((z.pcm.len() + HALF) as u64) << 32;
    let mut pos = st.pos;
    let mut wrapped = st.wrapped;
    let mut lo = if wrapped { ls as i64 } else { 0 };
    let fast = st.inc <= FAST_RATIO;
    // Positions below this read all eight taps from plain PCM, short of the loop's end and the
    // sample's: there the loop below needs none of its checks.
    let plain_end = (((hi - (HALF as i64)).max(0) as u64) << 32)
        .min(le_fx)
        .min(if looped { u64::MAX } else { end_fx });
    // A position past the loop's end goes round it (an unlooped sample's `le_fx` is never
    // reached: it is u64::MAX).
    let wrap = |pos: u64| {
        let pos = pos - loop_fx;
        if pos >= le_fx {
            ls_fx + (pos - ls_fx) % loop_fx
        } else {
            pos
        }
    };
    let mut n = 0;
    while n < out.len() {
        let plain_start = ((lo + HALF as i64 - 1) as u64) << 32;
        if fast && pos >= plain_start && pos < plain_end {
            // Frames until the position reaches `plain_end`: the same samples as the checked
            // loop below, which takes over for the frame after.
            let left = out.len() - n;
            let run = (plain_end - pos - 1)
                .checked_div(inc)
                .map_or(left, |r| (r.min(left as u64) as usize + 1).min(left));
            for o in out[n..n + run].iter_mut() {
                let start = (pos >> 32) as usize - (HALF - 1);
                let p = (((pos & 0xFFFF_FFFF) + (1 << 19)) >> 20) as usize;
                let s: &[i16; TAPS] = z.pcm[start..start + TAPS]
                    .try_into()
                    .expect("eight samples");
                *o = dot8(s, &k.poly[p]) * SCALE;
                pos += inc;
            }
            n += run;
            if pos >= le_fx {
                pos = wrap(pos);
                wrapped = true;
                lo = ls as i64;
            }
            continue;
        }
        let o = &mut out[n];
        if !looped && pos >= end_fx {
            st.pos = pos;
            return n;
        }
        let y = if fast {
            let i0 = (pos >> 32) as i64;
            // The nearest of the table's phases (rows 0..=PHASES).
            let p = (((pos & 0xFFFF_FFFF) + (1 << 19)) >> 20) as usize;
            fast_sample(z, k, wrapped, i0, p, lo, hi)
        } else {
            wide_sample(z, k, wrapped, pos as f64 / FX_ONE, st.inc)
        };
        *o = y * SCALE;
        pos += inc;
        if pos >= le_fx {
            pos = wrap(pos);
            wrapped = true;
            lo = ls as i64;
        }
        n += 1;
    }
    st.pos = pos;
    st.wrapped = wrapped;
    out.len()
}
