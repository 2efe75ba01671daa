//! Renders the built-in instruments to WAV files in the sample store's layout:
//! `<out>/samples/drums/kick.wav`, `<out>/samples/synth/bass.wav`, ...
//!
//! Usage: `cargo run -p keyboardia-audio --bin render-kit -- <out-dir> [sample-rate]`

use keyboardia_audio::engine::{Pattern, Track};
use keyboardia_audio::offline::{render, to_wav};
use keyboardia_audio::{Instrument, CATALOG};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: render-kit <out-dir> [sample-rate]");
        std::process::exit(2);
    };
    let sr: f32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(48_000.0);
    for e in CATALOG {
        let mut p = Pattern::default();
        let mut t = Track::new(e.instrument, &[0]);
        t.volume = 1.0;
        if let Instrument::Synth(_) = e.instrument {
            // Hold the note for half a bar so the envelope shows.
            t.steps = 0xFF;
            for k in 1..8 {
                t.locks[k].tie = true;
            }
        }
        p.push(t);
        let seconds = 2.0;
        let pcm = render(&p, 120.0, sr, (seconds * sr) as usize, 128);
        let path = std::path::Path::new(&out)
            .join("samples")
            .join(format!("{}.wav", e.id));
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create dir");
        std::fs::write(&path, to_wav(&pcm)).expect("write wav");
    }
    println!("rendered {} instruments into {out}/samples", CATALOG.len());
}
