//! The sampler voice on synthetic instruments: pitch, aliasing, loops, velocity layers, chokes,
//! voice stealing, and silence for what is not loaded.

use keyboardia_audio::engine::{Engine, Pattern, StepLock, Track, Transport};
use keyboardia_audio::sampler::{EnvelopeSpec, SampledInstrument, SampledZone};
use keyboardia_audio::Instrument;

const SR: f32 = 48_000.0;

fn sine(freq: f64, rate: u32, frames: usize, amp: f64) -> Vec<i16> {
    (0..frames)
        .map(|i| {
            let x = amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin();
            (x * 32767.0).round() as i16
        })
        .collect()
}

fn zone(root: u8, rate: u32, pcm: Vec<i16>) -> SampledZone {
    SampledZone {
        key_lo: 0,
        key_hi: 127,
        vel_lo: 1,
        vel_hi: 127,
        root,
        fine_tune: 0,
        sample_rate: rate,
        loop_points: None,
        gain: 1.0,
        pcm,
    }
}

fn instrument(zones: Vec<SampledZone>) -> SampledInstrument {
    SampledInstrument {
        base_note: 60,
        gain: 1.0,
        envelope: EnvelopeSpec {
            attack: 0.0,
            hold: 0.0,
            decay: 1.0,
            sustain: 1.0,
            release: 0.05,
        },
        one_shot: false,
        choke: 0,
        zones,
    }
}

/// Renders `frames` of the engine's left channel.
fn render(e: &mut Engine, frames: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(frames);
    let (mut l, mut r) = ([0.0; 128], [0.0; 128]);
    while out.len() < frames {
        let n = (frames - out.len()).min(128);
        e.render(&mut l[..n], &mut r[..n]);
        out.extend_from_slice(&l[..n]);
    }
    out
}

fn engine_with(inst: SampledInstrument, tracks: &[Track]) -> Box<Engine> {
    let mut e = Engine::new(SR);
    assert!(e.load_instrument(3, inst));
    let mut p = Pattern::default();
    for t in tracks {
        p.push(*t);
    }
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    e
}

/// A note held for `steps` steps (ties), from step 0.
fn held(steps: usize, pitch: i8) -> Track {
    let mut t = Track::new(Instrument::Sampled(3), &(0..steps).collect::<Vec<_>>());
    t.step_count = 128;
    t.volume = 1.0;
    t.transpose = pitch;
    for k in 1..steps {
        t.locks[k] = StepLock {
            tie: true,
            ..StepLock::default()
        };
    }
    t
}

/// Frequency from upward zero crossings, interpolated (precise for a clean tone).
fn frequency(x: &[f32]) -> f64 {
    let mut first = None;
    let mut last = 0.0;
    let mut count = 0;
    for i in 1..x.len() {
        if x[i - 1] < 0.0 && x[i] >= 0.0 {
            let t = (i - 1) as f64 + (-x[i - 1] / (x[i] - x[i - 1])) as f64;
            if first.is_none() {
                first = Some(t);
            } else {
                count += 1;
            }
            last = t;
        }
    }
    count as f64 * SR as f64 / (last - first.unwrap())
}

fn cents(f: f64, target: f64) -> f64 {
    1200.0 * (f / target).log2()
}

#[test]
fn a4_is_440_from_a_root_three_semitones_away() {
    // A sample of F#4 (369.99 Hz) at 44.1 kHz, played as A4.
    let f_root = 440.0 * 2f64.powf(-3.0 / 12.0);
    let inst = instrument(vec![zone(66, 44_100, sine(f_root, 44_100, 88_200, 0.5))]);
    let mut e = engine_with(inst, &[held(8, 9)]);
    let out = render(&mut e, 48_000);
    let f = frequency(&out[4_800..40_000]);
    assert!(cents(f, 440.0).abs() < 1.0, "A4 rendered at {f} Hz");
    // Fine tune moves it: +10 cents.
    let mut z = zone(66, 44_100, sine(f_root, 44_100, 88_200, 0.5));
    z.fine_tune = 10;
    let mut e = engine_with(instrument(vec![z]), &[held(8, 9)]);
    let f = frequency(&render(&mut e, 48_000)[4_800..40_000]);
    assert!((cents(f, 440.0) - 10.0).abs() < 1.0, "{f}");
}

/// Power per bin of a Blackman-Harris windowed block (a power-of-two length).
fn spectrum(x: &[f32]) -> Vec<f64> {
    assert!(x.len().is_power_of_two());
    keyboardia_audio::analysis::power_spectrum(x)
}

/// The strongest spectral component away from `expected` Hz (if it is below Nyquist), in dB
/// relative to the strongest component of `reference`.
fn worst_alias_db(x: &[f32], expected: Option<f64>, reference: f64, below: f64) -> (f64, f64) {
    let s = spectrum(x);
    let bin = SR as f64 / x.len() as f64;
    let mut worst: f64 = 0.0;
    let mut at = 0.0;
    for (k, p) in s.iter().enumerate().skip(2) {
        let f = k as f64 * bin;
        if f > below || expected.is_some_and(|e| (f - e).abs() < 12.0 * bin) {
            continue;
        }
        if *p > worst {
            worst = *p;
            at = f;
        }
    }
    (10.0 * (worst / reference).log10(), at)
}

/// Steps a tone through the source band and plays it two octaves up; reports the worst
/// aliasing product relative to a tone that passes, in dB.
fn aliasing_two_octaves_up() -> f64 {
    let mut worst = f64::NEG_INFINITY;
    let n = 16_384;
    // Reference: a 1 kHz source tone played two octaves up (4 kHz).
    let reference = {
        let inst = instrument(vec![zone(60, 44_100, sine(1_000.0, 44_100, 88_200, 0.5))]);
        let mut e = engine_with(inst, &[held(8, 24)]);
        let out = render(&mut e, 6_000 + n);
        spectrum(&out[6_000..]).into_iter().fold(0.0, f64::max)
    };
    let mut f = 500.0;
    while f < 21_000.0 {
        let inst = instrument(vec![zone(60, 44_100, sine(f, 44_100, 88_200, 0.5))]);
        let mut e = engine_with(inst, &[held(8, 24)]);
        let out = render(&mut e, 6_000 + n);
        let played = f * 4.0;
        let expected = (played < SR as f64 / 2.0).then_some(played);
        let (a, at) = worst_alias_db(&out[6_000..], expected, reference, 24_000.0);
        let (b, bt) = worst_alias_db(&out[6_000..], expected, reference, 20_000.0);
        println!("  source {f:.0} Hz -> {played:.0}: worst {a:.1} dB at {at:.0} Hz, below 20k {b:.1} dB at {bt:.0}");
        worst = worst.max(a);
        f *= 1.25;
    }
    worst
}

#[test]
fn two_octaves_up_does_not_alias() {
    let worst = aliasing_two_octaves_up();
    println!("worst aliasing product two octaves up: {worst:.1} dB");
    assert!(worst < -60.0, "aliasing at {worst:.1} dB");
}

#[test]
fn near_the_root_does_not_alias_audibly() {
    // Two semitones up (the fast 8-tap kernel): every product below 20 kHz, for source tones
    // up to 12 kHz (real instruments have little above; the figures beyond are printed).
    let n = 16_384;
    let reference = {
        let inst = instrument(vec![zone(60, 44_100, sine(1_000.0, 44_100, 88_200, 0.5))]);
        let mut e = engine_with(inst, &[held(8, 2)]);
        spectrum(&render(&mut e, 6_000 + n)[6_000..])
            .into_iter()
            .fold(0.0, f64::max)
    };
    let mut worst = f64::NEG_INFINITY;
    let mut beyond = f64::NEG_INFINITY;
    for f in [2_000.0, 6_000.0, 12_000.0, 16_000.0, 19_000.0, 21_000.0] {
        let inst = instrument(vec![zone(60, 44_100, sine(f, 44_100, 88_200, 0.5))]);
        let mut e = engine_with(inst, &[held(8, 2)]);
        let out = render(&mut e, 6_000 + n);
        let played = f * 2f64.powf(2.0 / 12.0);
        let expected = (played < 24_000.0).then_some(played);
        let s = spectrum(&out[6_000..]);
        let bin = SR as f64 / n as f64;
        for (k, p) in s.iter().enumerate().skip(2) {
            let fk = k as f64 * bin;
            if fk > 20_000.0 || expected.is_some_and(|e| (fk - e).abs() < 12.0 * bin) {
                continue;
            }
            let db = 10.0 * (p / reference).log10();
            if f <= 12_000.0 {
                worst = worst.max(db);
            } else {
                beyond = beyond.max(db);
            }
        }
        let (a, at) = worst_alias_db(&out[6_000..], expected, reference, 24_000.0);
        println!("  source {f:.0} Hz -> {played:.0}: worst {a:.1} dB at {at:.0} Hz");
    }
    println!(
        "worst product below 20 kHz, 2 semitones up: {worst:.1} dB (source tones above \
         12 kHz: {beyond:.1} dB)"
    );
    assert!(worst < -60.0, "{worst:.1} dB");
}

#[test]
fn loops_are_seamless() {
    // 100 periods of 441 Hz at 44.1 kHz loop exactly; the note is held for 2 s on a 0.1 s
    // sample, so it goes round the loop many times.
    let pcm = sine(441.0, 44_100, 4_410, 0.5);
    let mut z = zone(60, 44_100, pcm);
    z.loop_points = Some((1_000, 4_000));
    let mut e = engine_with(instrument(vec![z]), &[held(16, 0)]);
    let out = render(&mut e, 96_000);
    let body = &out[2_000..90_000];
    let peak = body.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let jump = body
        .windows(2)
        .fold(0.0f32, |m, w| m.max((w[1] - w[0]).abs()));
    // A sine of amplitude `peak` at 441 Hz moves at most 2π f / sr * peak per frame.
    let bound = peak * 2.0 * std::f32::consts::PI * 441.0 / SR;
    assert!(peak > 0.1, "the loop sounds ({peak})");
    assert!(jump < bound * 1.02, "jump {jump} vs {bound}");

    // An octave and a fifth up, the voice reads the half-rate copy, whose loop (3,000 frames,
    // read twice and halved) is as seamless. Odd loop start and length too.
    for (ls, le) in [(1_000, 4_000), (1_001, 4_001)] {
        let pcm = sine(441.0, 44_100, 4_410, 0.5);
        let mut z = zone(60, 44_100, pcm);
        z.loop_points = Some((ls, le));
        let mut e = engine_with(instrument(vec![z]), &[held(16, 19)]);
        let out = render(&mut e, 96_000);
        let body = &out[2_000..90_000];
        let peak = body.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let jump = body
            .windows(2)
            .fold(0.0f32, |m, w| m.max((w[1] - w[0]).abs()));
        let f = 441.0 * 2f32.powf(19.0 / 12.0);
        let bound = peak * 2.0 * std::f32::consts::PI * f / SR;
        assert!(peak > 0.1, "the loop sounds ({peak})");
        assert!(
            jump < bound * 1.02,
            "loop {ls}..{le}: jump {jump} vs {bound}"
        );
    }
}

#[test]
fn velocity_picks_the_layer() {
    let soft = {
        let mut z = zone(60, 48_000, sine(300.0, 48_000, 48_000, 0.5));
        z.vel_hi = 107;
        z
    };
    let loud = {
        let mut z = zone(60, 48_000, sine(600.0, 48_000, 48_000, 0.5));
        z.vel_lo = 108;
        z
    };
    let inst = instrument(vec![soft, loud]);
    for (volume, want) in [(None, 300.0), (Some(0.5), 300.0), (Some(1.0), 600.0)] {
        let mut t = held(4, 0);
        t.locks[0].volume = volume;
        let mut e = engine_with(inst.clone(), &[t]);
        let f = frequency(&render(&mut e, 20_000)[1_000..19_000]);
        assert!(cents(f, want).abs() < 5.0, "volume {volume:?}: {f} Hz");
    }
}

#[test]
fn a_closed_hat_chokes_the_open_hat_across_tracks() {
    let mut open = instrument(vec![zone(60, 48_000, sine(3_000.0, 48_000, 96_000, 0.5))]);
    open.one_shot = true;
    open.choke = 7;
    let mut closed = instrument(vec![zone(60, 48_000, sine(5_000.0, 48_000, 480, 0.5))]);
    closed.one_shot = true;
    closed.choke = 7;
    let run = |choke: bool| {
        let mut e = Engine::new(SR);
        e.load_instrument(0, open.clone());
        let mut c = closed.clone();
        if !choke {
            c.choke = 8;
        }
        e.load_instrument(1, c);
        let mut p = Pattern::default();
        p.push(Track::new(Instrument::Sampled(0), &[0]));
        p.push(Track::new(Instrument::Sampled(1), &[2]));
        e.set_pattern(&p);
        e.set_transport(Transport::play(0.0, 0.0, 120.0));
        let out = render(&mut e, 24_000);
        // Step 2 is at 12,000 frames; the closed hat lasts 10 ms.
        out[12_000 + 1_500..]
            .iter()
            .fold(0.0f32, |m, x| m.max(x.abs()))
    };
    let choked = run(true);
    let ringing = run(false);
    assert!(
        ringing > 0.1,
        "without a choke the open hat rings ({ringing})"
    );
    assert!(choked < 1e-3, "the choke silenced it ({choked})");
}

#[test]
fn stealing_never_clicks() {
    // A loud low sine, one-shot (one voice per track): every step cuts the last note.
    let mut pcm = sine(110.0, 48_000, 48_000, 0.9);
    let n = pcm.len();
    pcm[n - 1] = 0;
    let mut z = zone(60, 48_000, pcm);
    z.loop_points = Some((0, 48_000 - 48_000 % 436));
    let mut inst = instrument(vec![z]);
    inst.one_shot = true;
    let steps: Vec<usize> = (0..16).collect();
    let mut t = Track::new(Instrument::Sampled(3), &steps);
    t.volume = 1.0;
    // Odd steps start a fifth up, so each cut lands at a different phase.
    for k in (1..16).step_by(2) {
        t.locks[k].pitch = Some(7);
    }
    let mut e = engine_with(inst.clone(), &[t]);
    let out = render(&mut e, 96_000);
    let jump = out
        .windows(2)
        .fold(0.0f32, |m, w| m.max((w[1] - w[0]).abs()));
    // Two sines at most (the fading note and the new one), at 165 Hz at most.
    let peak = out.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let bound = 2.0 * peak * 2.0 * std::f32::consts::PI * 165.0 / SR;
    println!("largest step {jump:.4}, bound {bound:.4}");
    assert!(jump < bound, "a click: jump {jump} > {bound}");

    // Polyphonic tracks steal their oldest note beyond four, also without a click.
    inst.one_shot = false;
    let mut t = Track::new(Instrument::Sampled(3), &steps);
    for k in 0..16 {
        t.locks[k].pitch = Some((k % 5) as i8);
    }
    let mut e = engine_with(inst, &[t]);
    let out = render(&mut e, 96_000);
    let jump = out
        .windows(2)
        .fold(0.0f32, |m, w| m.max((w[1] - w[0]).abs()));
    let peak = out.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let bound = 5.0 * peak * 2.0 * std::f32::consts::PI * 150.0 / SR;
    assert!(jump < bound, "a click: jump {jump} > {bound}");
}

#[test]
fn the_gate_releases_the_note() {
    let mut z = zone(60, 48_000, sine(440.0, 48_000, 48_000, 0.5));
    z.loop_points = Some((0, 48_000 - 48_000 % 109));
    let inst = instrument(vec![z]);
    // One step (6,000 frames at 120 BPM), release 50 ms: silent well before 0.5 s.
    let mut e = engine_with(inst.clone(), &[held(1, 0)]);
    let out = render(&mut e, 24_000);
    assert!(out[3_000..5_000].iter().any(|x| x.abs() > 0.1));
    assert!(out[6_000 + 4_800..].iter().all(|x| x.abs() < 1e-3));
    // Tied over four steps: still sounding at 20,000.
    let mut e = engine_with(inst, &[held(4, 0)]);
    let out = render(&mut e, 24_000);
    assert!(out[20_000..22_000].iter().any(|x| x.abs() > 0.1));
}

#[test]
fn missing_instruments_are_silent() {
    // An empty slot, an instrument without PCM, a slot out of range: silence, no panic.
    let mut e = Engine::new(SR);
    let mut p = Pattern::default();
    let all: Vec<usize> = (0..16).collect();
    p.push(Track::new(Instrument::Sampled(5), &all));
    p.push(Track::new(Instrument::Sampled(6), &all));
    p.push(Track::new(Instrument::Sampled(255), &all));
    e.set_pattern(&p);
    let mut unloaded = instrument(vec![zone(60, 48_000, Vec::new())]);
    unloaded.base_note = 60;
    e.load_instrument(6, unloaded);
    assert!(!e.load_instrument(255, instrument(vec![])));
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    let out = render(&mut e, 30_000);
    assert!(out.iter().all(|&x| x == 0.0));
    // The PCM arrives: the track sounds from its next step.
    assert!(e.load_zone_pcm(6, 0, sine(440.0, 48_000, 48_000, 0.5)));
    let out = render(&mut e, 30_000);
    assert!(out.iter().any(|x| x.abs() > 0.1));
    e.unload_instrument(6);
    let out = render(&mut e, 30_000);
    assert!(out[1_000..].iter().all(|&x| x == 0.0));
}

/// `cargo test --release -p keyboardia-audio --test sampler speed -- --ignored --nocapture`
#[test]
#[ignore]
fn speed_of_sixteen_busy_sampled_tracks() {
    let mut z = zone(60, 44_100, sine(220.0, 44_100, 132_300, 0.5));
    z.loop_points = Some((44_100, 132_300));
    let mut inst = instrument(vec![z]);
    inst.envelope.release = 0.5;
    let mut e = Engine::new(SR);
    e.load_instrument(3, inst);
    let mut p = Pattern::default();
    for i in 0..16 {
        let mut t = Track::new(Instrument::Sampled(3), &(0..16).collect::<Vec<_>>());
        for k in 0..16 {
            t.locks[k].pitch = Some(((k * 5 + i) % 3) as i8);
        }
        p.push(t);
    }
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 0.0, 120.0));
    let seconds = 20.0;
    let t0 = std::time::Instant::now();
    let out = render(&mut e, (seconds * SR) as usize);
    let took = t0.elapsed().as_secs_f64();
    println!(
        "16 busy sampled tracks ({} voices at the end): {:.0}x real time",
        e.active_voices(),
        seconds as f64 / took
    );
    assert!(out.iter().any(|x| x.abs() > 0.01));
}

/// `Track::notes` (what the browser loads first) names exactly the keys and velocities the
/// sequencer strikes: transpose, pitch locks, volume locks, inactive steps left out.
#[test]
fn track_notes_are_what_the_sequencer_plays() {
    let mut t = Track::new(Instrument::Sampled(0), &[0, 2, 5, 20]);
    t.step_count = 16; // step 20 is beyond the track's length
    t.transpose = -3;
    t.locks[2] = StepLock {
        pitch: Some(12),
        volume: Some(0.5),
        tie: false,
        ..StepLock::default()
    };
    t.locks[5].volume = Some(0.0);
    let notes = t.notes(60);
    assert_eq!(notes, vec![(57, 100), (69, 64), (57, 1)]);
    // And each is the zone the engine picks: a zone per note, loaded alone, sounds.
    for &(key, vel) in &notes {
        let mut z = zone(key, 48_000, sine(440.0, 48_000, 48_000, 0.5));
        z.key_lo = key;
        z.key_hi = key;
        let mut other = zone(30, 48_000, Vec::new());
        other.key_lo = 0;
        other.key_hi = 127;
        let inst = instrument(vec![other, z]);
        assert_eq!(inst.zone_for(key, vel), Some(1));
    }
}
