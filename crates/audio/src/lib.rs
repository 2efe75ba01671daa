//! # keyboardia-audio
//!
//! Keyboardia's sound engine, one crate for every place sound is made: natively (tests, WAV
//! export, the built-in kit) and in the browser inside an AudioWorklet (wasm). Renders are
//! deterministic and bit-identical across the two: transcendental functions come from `libm`
//! and noise is seeded.
//!
//! Start reading at [`engine`] (sequencer, voices, mixer, limiter), then [`instrument`] (the
//! catalog and how each voice sounds) and [`dsp`] (oscillators, filters, envelopes).
//! [`sampler`] plays sampled instruments (zones, resampling, loops, envelopes).
//! [`offline`] renders patterns and sessions to PCM and WAV; `recording` validates and decodes
//! uploaded recordings.

// The one exception: `Engine::render` calls its AVX2 build once the CPU is known to have it.
#![deny(unsafe_code)]

pub mod analysis;
#[cfg(feature = "control")]
pub mod control;
pub mod demo;
pub mod dsp;
pub mod effects;
pub mod engine;
pub mod instrument;
#[cfg(feature = "midi")]
pub mod midi;
pub mod offline;
#[cfg(all(feature = "wav", feature = "session"))]
pub mod recording;
pub mod sampler;

pub use engine::{Engine, Pattern, StepLock, Track, Transport, MAX_BLOCK};
pub use instrument::{Drum, Instrument, Synth, CATALOG};
pub use sampler::{SampledInstrument, SampledZone};
