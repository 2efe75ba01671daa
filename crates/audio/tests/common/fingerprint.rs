//! A render of sampled instruments that exercises every path of the sampler (loops, one-shots,
//! the fast and widened kernels, half-rate copies, velocity layers, chokes, stealing, release),
//! reduced to a 64-bit fingerprint of its exact bits. Native and wasm must agree.

use keyboardia_audio::engine::{Engine, Pattern, StepLock, Track, Transport};
use keyboardia_audio::sampler::{EnvelopeSpec, SampledInstrument, SampledZone};
use keyboardia_audio::Instrument;

fn tone(len: usize, period: f32, seed: u32) -> Vec<i16> {
    // A deterministic, harmonically rich tone (integer arithmetic and f32 only).
    let mut x = seed;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let saw = (i as f32 % period) / period * 2.0 - 1.0;
            let noise = (x >> 16) as f32 / 65536.0 - 0.5;
            ((saw * 0.6 + noise * 0.1) * 20000.0) as i16
        })
        .collect()
}

fn zone(root: u8, rate: u32, pcm: Vec<i16>, lp: Option<(u32, u32)>, vel: (u8, u8)) -> SampledZone {
    SampledZone {
        key_lo: 0,
        key_hi: 127,
        vel_lo: vel.0,
        vel_hi: vel.1,
        root,
        fine_tune: -7,
        sample_rate: rate,
        loop_points: lp,
        gain: 0.8,
        pcm,
    }
}

pub fn fingerprint() -> u64 {
    let env = EnvelopeSpec {
        attack: 0.004,
        hold: 0.01,
        decay: 0.8,
        sustain: 0.6,
        release: 0.3,
    };
    let keys = SampledInstrument {
        base_note: 60,
        gain: 0.9,
        envelope: env,
        one_shot: false,
        choke: 0,
        zones: vec![
            zone(
                57,
                44_100,
                tone(30_001, 100.3, 1),
                Some((10_001, 29_000)),
                (1, 100),
            ),
            zone(
                57,
                32_000,
                tone(20_000, 72.0, 2),
                Some((5_000, 19_999)),
                (101, 127),
            ),
        ],
    };
    let hat = |len: usize, seed: u32| SampledInstrument {
        base_note: 60,
        gain: 1.0,
        envelope: env,
        one_shot: true,
        choke: 42,
        zones: vec![zone(60, 48_000, tone(len, 7.7, seed), None, (1, 127))],
    };
    let mut e = Engine::new(48_000.0);
    e.load_instrument(0, keys);
    e.load_instrument(1, hat(40_000, 3));
    e.load_instrument(2, hat(3_000, 4));
    let mut p = Pattern::default();
    let mut t = Track::new(Instrument::Sampled(0), &[0, 1, 2, 3, 5, 6, 8, 11, 12, 14]);
    for (k, pitch) in [
        (0, -24),
        (1, 0),
        (2, 19),
        (3, 30),
        (5, 7),
        (6, 2),
        (8, -5),
        (11, 12),
    ] {
        t.locks[k] = StepLock {
            pitch: Some(pitch),
            volume: Some(if k % 3 == 0 { 1.0 } else { 0.5 }),
            tie: false,
            ..StepLock::default()
        };
    }
    t.locks[12].tie = true;
    p.push(t);
    p.push(Track::new(Instrument::Sampled(1), &[0, 4, 8, 12]));
    let mut c = Track::new(Instrument::Sampled(2), &[2, 6, 10, 13, 14, 15]);
    c.locks[13].pitch = Some(-12);
    c.locks[14].pitch = Some(24);
    p.push(c);
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 0.0, 133.0));
    let (mut l, mut r) = ([0.0f32; 128], [0.0f32; 128]);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for _ in 0..(48_000 * 6 / 128) {
        e.render(&mut l, &mut r);
        for v in l.iter().chain(r.iter()) {
            for b in v.to_bits().to_le_bytes() {
                h ^= b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    h
}
