//! Writes what the browser check compares against: the busy reference pattern as the
//! AudioWorklet processor's control message (`pattern.json`), and its native render as raw
//! little-endian f32 (`left.f32`, `right.f32`).
//!
//! Usage: `render-reference <out-dir> [seconds] [sample-rate] [tempo]`

use keyboardia_audio::demo::busy_pattern;
use keyboardia_audio::engine::Pattern;
use keyboardia_audio::offline::render;
use serde_json::json;

/// The processor's `pattern` message for a pattern (see crates/audio-worklet/js/processor.js).
fn pattern_message(p: &Pattern, tempo: f64) -> serde_json::Value {
    let tracks: Vec<_> = p.tracks[..p.track_count]
        .iter()
        .map(|t| {
            let words: Vec<u32> = (0..4).map(|i| (t.steps >> (32 * i)) as u32).collect();
            let locks: Vec<_> = t
                .locks
                .iter()
                .enumerate()
                .filter(|(_, l)| **l != Default::default())
                .map(|(k, l)| {
                    json!([
                        k,
                        l.pitch.map(i32::from).unwrap_or(127),
                        l.volume.unwrap_or(-1.0),
                        l.tie as u8
                    ])
                })
                .collect();
            json!({
                "instrument": t.instrument.map(|i| i.code() as i64).unwrap_or(-1),
                "stepCount": t.step_count,
                "volume": t.volume,
                "pan": t.pan,
                "transpose": t.transpose,
                "swing": t.swing,
                "muted": t.muted,
                "soloed": t.soloed,
                "steps": words,
                "locks": locks,
            })
        })
        .collect();
    json!({ "type": "pattern", "swing": p.swing, "tempo": tempo, "tracks": tracks })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: render-reference <out-dir> [seconds] [sample-rate] [tempo]");
        std::process::exit(2);
    };
    let seconds: f32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(4.0);
    let sr: f32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(48_000.0);
    let tempo: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(120.0);
    let p = busy_pattern();
    let pcm = render(&p, tempo, sr, (seconds * sr) as usize, 128);
    let dir = std::path::Path::new(&out);
    std::fs::create_dir_all(dir).expect("create out dir");
    let msg = pattern_message(&p, tempo);
    std::fs::write(dir.join("pattern.json"), msg.to_string()).expect("write pattern");
    for (name, ch) in [("left.f32", &pcm.left), ("right.f32", &pcm.right)] {
        let bytes: Vec<u8> = ch.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(dir.join(name), bytes).expect("write pcm");
    }
    println!(
        "{} frames at {sr} Hz, tempo {tempo}, in {}",
        pcm.left.len(),
        dir.display()
    );
}
