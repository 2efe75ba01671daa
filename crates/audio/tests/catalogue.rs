//! The engine's synthesized instruments and the core's catalogue name the same ids, both ways.

use keyboardia_audio::CATALOG;
use keyboardia_core::catalogue::{all, lookup, Kind};

#[test]
fn every_engine_instrument_is_in_the_catalogue() {
    for e in CATALOG {
        let c = lookup(e.id).unwrap_or_else(|| panic!("{} is not in the core catalogue", e.id));
        assert_eq!(c.kind, Kind::Synth, "{}", e.id);
        assert_eq!(c.name, e.name, "{}", e.id);
        assert_eq!(
            c.base as f32,
            e.instrument.base_note(),
            "{}: base note",
            e.id
        );
    }
}

#[test]
fn every_synth_in_the_catalogue_is_in_the_engine() {
    for c in all().iter().filter(|c| c.kind == Kind::Synth) {
        assert!(
            CATALOG.iter().any(|e| e.id == c.id),
            "{} is a synth in the catalogue but the engine does not know it",
            c.id
        );
    }
}

#[test]
fn the_engine_picks_zones_as_the_manifest_says() {
    // Zone choice is written twice (the worklet build has no core): they must agree.
    use keyboardia_core::manifest::pick_zone;
    let ranges = [
        (0, 40, 1, 80),
        (0, 40, 81, 127),
        (41, 60, 1, 127),
        (70, 90, 1, 64),
        (70, 90, 65, 127),
    ];
    let inst = keyboardia_audio::SampledInstrument {
        zones: ranges
            .iter()
            .map(|&(kl, kh, vl, vh)| keyboardia_audio::SampledZone {
                key_lo: kl,
                key_hi: kh,
                vel_lo: vl,
                vel_hi: vh,
                root: 60,
                fine_tune: 0,
                sample_rate: 48_000,
                loop_points: None,
                gain: 1.0,
                pcm: vec![0; 16],
            })
            .collect(),
        ..keyboardia_audio::SampledInstrument::EMPTY
    };
    for key in 0..=127u8 {
        for vel in [1u8, 40, 64, 65, 80, 81, 100, 127] {
            assert_eq!(
                inst.zone_for(key, vel),
                pick_zone(ranges.iter().copied(), key, vel),
                "key {key} velocity {vel}"
            );
        }
    }
}
