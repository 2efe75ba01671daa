//! Measuring sound (for tests and the sample pipeline, never while rendering): a windowed power
//! spectrum by radix-2 FFT. Plain `f64` and std trigonometry: measurements need not be
//! bit-identical across platforms, renders do.

/// In-place radix-2 FFT of `re` + i`im` (lengths a power of two).
pub fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    assert!(n.is_power_of_two() && im.len() == n);
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

/// The 4-term Blackman-Harris window's value at `i` of `m`.
pub fn blackman_harris(i: usize, m: usize) -> f64 {
    let a = 2.0 * std::f64::consts::PI * i as f64 / m as f64;
    0.35875 - 0.48829 * a.cos() + 0.14128 * (2.0 * a).cos() - 0.01168 * (3.0 * a).cos()
}

/// `x` windowed (Blackman-Harris) and zero-padded to a power of two, transformed: the real and
/// imaginary parts.
pub fn windowed_fft(x: &[f32]) -> (Vec<f64>, Vec<f64>) {
    windowed_fft_len(x, x.len().next_power_of_two())
}

/// [`windowed_fft`] zero-padded to `n` points (a power of two, at least `x.len()`): more padding
/// samples the spectrum more finely.
pub fn windowed_fft_len(x: &[f32], n: usize) -> (Vec<f64>, Vec<f64>) {
    let m = x.len();
    let n = n.max(m).next_power_of_two();
    let mut re: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| v as f64 * blackman_harris(i, m))
        .collect();
    re.resize(n, 0.0);
    let mut im = vec![0.0; n];
    fft(&mut re, &mut im);
    (re, im)
}

/// Power per bin (the first half of the spectrum) of `x`, windowed.
pub fn power_spectrum(x: &[f32]) -> Vec<f64> {
    let (re, im) = windowed_fft(x);
    (0..re.len() / 2)
        .map(|k| re[k] * re[k] + im[k] * im[k])
        .collect()
}
