//! Spectral measurement: where the strongest component of a sound lies, precisely (a
//! Blackman-Harris windowed FFT with the peak refined by parabolic interpolation of its log
//! magnitude; about a hundredth of a bin). The pipeline tunes each zone with it; the tests
//! check A4 with it.

/// The strongest spectral peak between `lo` and `hi` Hz of `x` at `sr` (windowed, then
/// zero-padded to a power of two): its frequency, and its level relative to the strongest peak
/// of the whole spectrum (dB, 0 when it is the strongest).
pub fn peak_hz(x: &[f32], sr: f64, lo: f64, hi: f64) -> (f64, f64) {
    assert!(x.len() >= 64);
    let (re, im) = keyboardia_audio::analysis::windowed_fft(x);
    let n = re.len();
    let bin = sr / n as f64;
    let mag = |k: usize| (re[k] * re[k] + im[k] * im[k]).max(1e-300).ln();
    let k0 = ((lo / bin) as usize).max(1);
    let k1 = ((hi / bin) as usize).min(n / 2 - 2);
    let k = (k0..=k1.max(k0))
        .max_by(|&a, &b| mag(a).total_cmp(&mag(b)))
        .unwrap_or(k0);
    let (a, b, c) = (mag(k - 1), mag(k), mag(k + 1));
    let d = 0.5 * (a - c) / (a - 2.0 * b + c);
    let top = (1..n / 2).map(mag).fold(f64::MIN, f64::max);
    (
        (k as f64 + d) * bin,
        (b - top) * 10.0 / std::f64::consts::LN_10,
    )
}
