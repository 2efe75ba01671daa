//! Rendering must not allocate: a counting global allocator watches `Engine::render`.
//! Only allocations made on the rendering thread count (the test harness has threads of its own).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use keyboardia_audio::engine::{Engine, Transport};

struct Counting;
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn render_never_allocates() {
    use keyboardia_audio::engine::{Pattern, Track};
    use keyboardia_audio::{Instrument, CATALOG};
    let mut e = Engine::new(48_000.0);
    e.load_sample(0, vec![0.5; 10_000], 44_100.0);
    let mut p = Pattern::default();
    // A sampled instrument with a looped zone and a one-shot kit piece.
    let zone = |pcm: Vec<i16>, lp: Option<(u32, u32)>| keyboardia_audio::SampledZone {
        key_lo: 0,
        key_hi: 127,
        vel_lo: 1,
        vel_hi: 127,
        root: 60,
        fine_tune: 0,
        sample_rate: 44_100,
        loop_points: lp,
        gain: 1.0,
        pcm,
    };
    let env = keyboardia_audio::sampler::EnvelopeSpec {
        attack: 0.01,
        hold: 0.0,
        decay: 1.0,
        sustain: 0.5,
        release: 0.2,
    };
    let melodic = keyboardia_audio::SampledInstrument {
        base_note: 60,
        gain: 1.0,
        envelope: env,
        one_shot: false,
        choke: 0,
        zones: vec![zone(vec![1000; 20_000], Some((5_000, 20_000)))],
    };
    let kit = keyboardia_audio::SampledInstrument {
        one_shot: true,
        choke: 9,
        zones: vec![zone(vec![-1000; 3_000], None)],
        ..melodic.clone()
    };
    e.load_instrument(0, melodic);
    e.load_instrument(1, kit);
    let mut t = Track::new(Instrument::Sampled(0), &[0, 1, 2, 3, 4, 5, 6, 7, 9, 12]);
    t.locks[3].pitch = Some(24);
    t.locks[4].tie = true;
    p.push(t);
    p.push(Track::new(Instrument::Sampled(1), &[0, 2, 4, 6, 8, 10]));
    for (i, entry) in CATALOG.iter().take(13).enumerate() {
        let mut t = Track::new(entry.instrument, &[0, 2, 3, 5, 8, 11, 13]);
        t.swing = (i * 3) as u8;
        p.push(t);
    }
    p.push(Track::new(Instrument::Sample(0), &[0, 4, 8, 12]));
    // Every effect on: sends, drive and filters (with cutoff locks) and the master chain.
    let fx = keyboardia_audio::demo::busy_pattern_with_effects();
    for (t, f) in p.tracks.iter_mut().zip(fx.tracks.iter()) {
        t.fx = f.fx;
        t.locks[1].cutoff = Some(3000.0);
    }
    e.set_master_fx(&keyboardia_audio::demo::all_effects());
    e.set_pattern(&p);
    e.set_transport(Transport::play(0.0, 0.0, 170.0));
    let (mut l, mut r) = ([0.0f32; 128], [0.0f32; 128]);
    COUNTING.with(|c| c.set(true));
    for _ in 0..2000 {
        e.render(&mut l, &mut r);
    }
    // A tempo change and a stop, applied by the render loop itself.
    e.set_transport(Transport::play(e.frame() as f64 + 500.0, 10.0, 90.0));
    for _ in 0..500 {
        e.render(&mut l, &mut r);
    }
    // Effect settings moving while it plays, the bypass on and off.
    let mut fx = keyboardia_audio::demo::all_effects();
    fx.bypass = true;
    e.set_master_fx(&fx);
    for _ in 0..100 {
        e.render(&mut l, &mut r);
    }
    fx.bypass = false;
    fx.delay_division = keyboardia_audio::effects::Division::Quarter;
    e.set_master_fx(&fx);
    for _ in 0..100 {
        e.render(&mut l, &mut r);
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(ALLOCS.load(Ordering::SeqCst), 0, "render allocated");
}
