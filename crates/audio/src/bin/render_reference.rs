//! Writes what the browser check compares against: the busy reference pattern as the
//! AudioWorklet processor's control message (`pattern.json`), and its native render as raw
//! little-endian f32 (`left.f32`, `right.f32`).
//!
//! Usage: `render-reference <out-dir> [seconds] [sample-rate] [tempo]`

use keyboardia_audio::control::pattern_message;
use keyboardia_audio::demo::busy_pattern;
use keyboardia_audio::offline::render;
use serde_json::json;

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
    let mut msg = pattern_message(&p);
    // The check starts the transport at this tempo.
    msg["tempo"] = json!(tempo);
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
