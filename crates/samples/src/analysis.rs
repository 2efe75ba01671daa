//! Spectral measurement: where the strongest component of a sound lies, precisely (a
//! Blackman-Harris windowed FFT with the peak refined by parabolic interpolation of its log
//! magnitude; about a hundredth of a bin). The pipeline tunes each zone with it; the tests
//! check A4 with it.

/// In-place radix-2 FFT of `re` + i`im` (lengths a power of two).
fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let ang = -2.0 * std::f64::consts::PI / len as f64;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let (s, c) = (ang * k as f64).sin_cos();
                let (a, b) = (start + k, start + k + len / 2);
                let tr = re[b] * c - im[b] * s;
                let ti = re[b] * s + im[b] * c;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
        len <<= 1;
    }
}

/// The strongest spectral peak between `lo` and `hi` Hz of `x` at `sr` (windowed, then
/// zero-padded to a power of two): its frequency, and its level relative to the strongest peak
/// of the whole spectrum (dB, 0 when it is the strongest).
pub fn peak_hz(x: &[f32], sr: f64, lo: f64, hi: f64) -> (f64, f64) {
    let m = x.len();
    assert!(m >= 64);
    let n = m.next_power_of_two();
    let mut re: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let a = 2.0 * std::f64::consts::PI * i as f64 / m as f64;
            let w =
                0.35875 - 0.48829 * a.cos() + 0.14128 * (2.0 * a).cos() - 0.01168 * (3.0 * a).cos();
            v as f64 * w
        })
        .collect();
    re.resize(n, 0.0);
    let mut im = vec![0.0; n];
    fft(&mut re, &mut im);
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
