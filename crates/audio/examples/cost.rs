//! Where the render time goes: live voices per track of the busy pattern, and the cost of one
//! voice-sample per instrument. `cargo run --release -p keyboardia-audio --example cost`
use keyboardia_audio::engine::{Engine, Pattern, Track, Transport};
use keyboardia_audio::CATALOG;
use std::time::Instant;

fn main() {
    let p = keyboardia_audio::demo::busy_pattern();
    let mut e = Engine::new(48000.0);
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    let (mut l, mut r) = ([0.0f32; 128], [0.0f32; 128]);
    let blocks = 48000 * 20 / 128;
    let mut per_track = [0usize; 16];
    for _ in 0..blocks {
        e.render(&mut l, &mut r);
        for (t, n) in per_track.iter_mut().enumerate() {
            *n += e.active_voices_on(t as u8);
        }
    }
    for (t, n) in per_track.iter().enumerate() {
        let inst = p.tracks[t]
            .instrument
            .map(|i| CATALOG[i.code() as usize].id)
            .unwrap_or("-");
        println!(
            "track {t:2} {inst:20} mean voices {:.2}",
            *n as f64 / blocks as f64
        );
    }
    for entry in CATALOG {
        let mut p = Pattern::default();
        for _ in 0..4 {
            p.push(Track::new(entry.instrument, &[0, 2, 4, 6, 8, 10, 12, 14]));
        }
        let mut e = Engine::new(48000.0);
        e.set_pattern(&p);
        e.set_transport(Transport::play(0.0, 0.0, 120.0));
        let t0 = Instant::now();
        let mut vs = 0;
        for _ in 0..blocks {
            e.render(&mut l, &mut r);
            vs += e.active_voices();
        }
        let ns = t0.elapsed().as_secs_f64() * 1e9 / (vs as f64 * 128.0);
        println!("{:20} {ns:6.1} ns per voice-sample", entry.id);
    }
}
