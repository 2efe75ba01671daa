//! Renders the built-in instruments to WAV files in the sample store's layout:
//! `<out>/samples/drums/kick.wav`, `<out>/samples/synth/bass.wav`, ...
//!
//! Usage: `cargo run -p keyboardia-audio --bin render-kit -- <out-dir> [sample-rate]`

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: render-kit <out-dir> [sample-rate]");
        std::process::exit(2);
    };
    let sr: f32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(48_000.0);
    let mut n = 0;
    for (key, wav) in keyboardia_audio::offline::kit(sr) {
        let path = std::path::Path::new(&out).join(key);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create dir");
        std::fs::write(&path, wav).expect("write wav");
        n += 1;
    }
    println!("rendered {n} instruments into {out}/samples");
}
