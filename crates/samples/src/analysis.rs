//! Spectral measurement: where the strongest component of a sound lies, precisely (a
//! Blackman-Harris windowed FFT with the peak refined by parabolic interpolation of its log
//! magnitude; about a hundredth of a bin), and the frequency of a note's fundamental
//! ([`pitch_hz`]: the power-weighted centre of the spectrum around it). The pipeline tunes each
//! zone with [`pitch_hz`]; the tests check A4 with it.

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

/// The frequency of the partial of `x` near `expected` Hz, and its level against the strongest
/// peak of the whole spectrum (dB): the power-weighted centre (in cents) of the spectrum within
/// 50 cents of it (or within the window's main lobe, where that is wider), found by moving that
/// band to its own centre until it settles, starting at `expected`.
///
/// For one clean partial this is its peak (the window's main lobe is symmetric). A section of
/// players, each a little out of tune with the others (a pizzicato ensemble), gives a cluster of
/// peaks of similar strength tens of cents apart: which one is strongest changes with the
/// window, so [`peak_hz`] jumps between them, while their centre, the pitch a listener hears,
/// stays put.
pub fn pitch_hz(x: &[f32], sr: f64, expected: f64) -> (f64, f64) {
    assert!(x.len() >= 64);
    // Zero-padded to at least twice the length: the spectrum is then sampled finely enough
    // that the centre of a lobe's bins is the lobe's centre.
    let m = x.len();
    let n = (2 * m).next_power_of_two();
    let (re, im) = keyboardia_audio::analysis::windowed_fft_len(x, n);
    let power: Vec<f64> = (0..n / 2).map(|k| re[k] * re[k] + im[k] * im[k]).collect();
    let bin = sr / n as f64;
    // The Blackman-Harris main lobe: 4 bins of the unpadded length either side.
    let lobe = 4.0 * sr / m as f64;
    let top = power[1..].iter().cloned().fold(1e-300, f64::max);
    let mut f = expected;
    let mut level = f64::NEG_INFINITY;
    for _ in 0..16 {
        let half = (f * (libm::exp2(50.0 / 1200.0) - 1.0)).max(lobe * 1.5);
        let (lo, hi) = (f - half, f + half);
        let k0 = ((lo / bin).ceil() as usize).max(1);
        let k1 = ((hi / bin).floor() as usize).min(power.len() - 1);
        let (mut w, mut c, mut most) = (0.0, 0.0, 0.0f64);
        for (k, &p) in power.iter().enumerate().take(k1 + 1).skip(k0) {
            w += p;
            c += p * libm::log2(k as f64 * bin / f);
            most = most.max(p);
        }
        if w <= 0.0 {
            return (f64::NAN, f64::NEG_INFINITY);
        }
        level = 10.0 * libm::log10(most / top);
        let next = f * libm::exp2(c / w);
        let moved = (1200.0 * libm::log2(next / f)).abs();
        f = next;
        if moved < 0.001 {
            break;
        }
    }
    (f, level)
}
