//! Uploaded recordings: validation (a real, decodable WAV file within the limits) and decoding
//! to mono for the offline renderer. Both hosts use it.

use keyboardia_core::limits::{MAX_RECORDING_BYTES, MAX_RECORDING_SECONDS};

/// What we learned from a valid recording.
#[derive(Debug, PartialEq)]
pub struct WavInfo {
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_ms: u32,
}

/// Checks that `bytes` is a WAV file whose every sample decodes.
pub fn validate_wav(bytes: &[u8]) -> Result<WavInfo, String> {
    if bytes.len() > MAX_RECORDING_BYTES {
        return Err(format!(
            "recordings are limited to {MAX_RECORDING_BYTES} bytes"
        ));
    }
    let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a WAV file: {e}"))?;
    let spec = reader.spec();
    if !(8_000..=192_000).contains(&spec.sample_rate) {
        return Err(format!("unsupported sample rate {} Hz", spec.sample_rate));
    }
    if !(1..=2).contains(&spec.channels) {
        return Err(format!(
            "recordings must be mono or stereo, got {} channels",
            spec.channels
        ));
    }
    let frames = reader.duration();
    if frames == 0 {
        return Err("the recording is empty".into());
    }
    let seconds = frames as f64 / spec.sample_rate as f64;
    if seconds > MAX_RECORDING_SECONDS {
        return Err(format!(
            "recordings are limited to {MAX_RECORDING_SECONDS} seconds, this one is {seconds:.1}"
        ));
    }
    // Decode every sample: a truncated or corrupt body fails here.
    let decoded = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .try_fold(0usize, |n, s| s.map(|_| n + 1)),
        hound::SampleFormat::Int => reader
            .samples::<i32>()
            .try_fold(0usize, |n, s| s.map(|_| n + 1)),
    }
    .map_err(|e| format!("the WAV data is corrupt: {e}"))?;
    if decoded != frames as usize * spec.channels as usize {
        return Err("the WAV data is truncated".into());
    }
    Ok(WavInfo {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        duration_ms: (seconds * 1000.0).round() as u32,
    })
}

/// Decodes a stored WAV to mono f32 (channels averaged) and its sample rate.
pub fn decode_mono(bytes: &[u8]) -> Result<(Vec<f32>, f32), String> {
    let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a WAV file: {e}"))?;
    let spec = reader.spec();
    let channels = spec.channels.max(1) as usize;
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?
        }
    };
    let mono = interleaved
        .chunks(channels)
        .map(|c| c.iter().sum::<f32>() / channels as f32)
        .collect();
    Ok((mono, spec.sample_rate as f32))
}

/// A stored recording (`id`, its WAV `bytes`), decoded for the offline renderer.
pub fn load(id: &str, bytes: &[u8]) -> Result<crate::offline::LoadedSample, String> {
    let (pcm, rate) = decode_mono(bytes)?;
    Ok(crate::offline::LoadedSample {
        id: id.to_string(),
        pcm,
        rate,
    })
}

/// A decaying 440 Hz tone, `frames` long, as a 16-bit mono 44.1 kHz WAV file: a known-good
/// recording for tests (and the conformance suite's uploads).
pub fn test_wav(frames: usize) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).expect("in-memory WAV");
    for i in 0..frames {
        let t = i as f64 / 44_100.0;
        let s = (t * 440.0 * std::f64::consts::TAU).sin() * (-t * 8.0).exp() * 12_000.0;
        w.write_sample(s as i16).expect("in-memory WAV");
    }
    w.finalize().expect("in-memory WAV");
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(seconds: f32) -> Vec<u8> {
        test_wav((seconds * 44_100.0) as usize)
    }

    #[test]
    fn accepts_real_audio_and_refuses_the_rest() {
        let ok = validate_wav(&wav(0.5)).unwrap();
        assert_eq!(ok.duration_ms, 500);
        assert!(validate_wav(b"RIFF....WAVEfmt nonsense").is_err());
        assert!(validate_wav(b"<html>not audio</html>").is_err());
        let mut cut = wav(0.5);
        cut.truncate(cut.len() / 2);
        assert!(validate_wav(&cut).is_err());
        assert!(validate_wav(&wav(31.0)).is_err());
        assert!(validate_wav(&wav(0.0)).is_err());
    }

    #[test]
    fn decodes_to_mono_floats() {
        let (pcm, rate) = decode_mono(&wav(0.1)).unwrap();
        assert_eq!(rate, 44_100.0);
        assert_eq!(pcm.len(), 4410);
        assert!(pcm.iter().all(|x| x.abs() <= 1.0) && pcm.iter().any(|x| x.abs() > 0.1));
    }
}
