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
