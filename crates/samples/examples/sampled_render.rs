//! Renders the sampled-instrument speed test's pattern (16 busy tracks of the prepared library,
//! as in `tests/library.rs`) once, for profiling the engine:
//! `valgrind --tool=callgrind --toggle-collect='*Engine::render*' \
//!  target/release/examples/sampled_render [seconds] [pitched]`.

use keyboardia_audio::engine::{Engine, Transport};
use keyboardia_samples::bench::{busy_sampled_pattern, engine_instrument, BUSY_SAMPLED};

const SR: f32 = 48_000.0;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let pitched_drums = args.get(2).is_some_and(|s| s == "pitched");
    let (lib, _) = keyboardia_samples::default_dirs();
    let mut e = Engine::new(SR);
    for (i, id) in BUSY_SAMPLED.iter().enumerate() {
        e.load_instrument(
            i,
            engine_instrument(&lib, id).expect("a prepared instrument"),
        );
    }
    let p = busy_sampled_pattern(pitched_drums);
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    let (mut l, mut r) = ([0.0f32; 128], [0.0f32; 128]);
    let mut sum = 0.0f64;
    let t0 = std::time::Instant::now();
    for _ in 0..(seconds * SR / 128.0) as usize {
        e.render(&mut l, &mut r);
        sum += l.iter().chain(&r).map(|v| v.abs() as f64).sum::<f64>();
    }
    println!(
        "{seconds} s in {:.0} ms (checksum {sum:.6})",
        t0.elapsed().as_secs_f64() * 1000.0
    );
}
