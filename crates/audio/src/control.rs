//! The control messages of the AudioWorklet processor (crates/audio-worklet/js/processor.js),
//! built from the engine's own types: the one definition every sender uses (the web app, the
//! reference renderer for the browser check).

use serde_json::{json, Value};

use crate::engine::Pattern;

/// The processor's `pattern` message: every track's settings, steps (four 32-bit words, lowest
/// steps first) and parameter locks (`[step, pitch or 127, volume or -1, tie]`).
pub fn pattern_message(p: &Pattern) -> Value {
    let tracks: Vec<Value> = p.tracks[..p.track_count]
        .iter()
        .map(|t| {
            let words: Vec<u32> = (0..4).map(|i| (t.steps >> (32 * i)) as u32).collect();
            let locks: Vec<Value> = t
                .locks
                .iter()
                .enumerate()
                .filter(|(_, l)| **l != Default::default())
                .map(|(k, l)| {
                    json!([
                        k,
                        l.pitch.map(i32::from).unwrap_or(127),
                        l.volume.unwrap_or(-1.0),
                        l.tie as u8
                    ])
                })
                .collect();
            json!({
                "instrument": t.instrument.map(|i| i.code() as i64).unwrap_or(-1),
                "stepCount": t.step_count,
                "volume": t.volume,
                "pan": t.pan,
                "transpose": t.transpose,
                "swing": t.swing,
                "muted": t.muted,
                "soloed": t.soloed,
                "steps": words,
                "locks": locks,
            })
        })
        .collect();
    json!({ "type": "pattern", "swing": p.swing, "tracks": tracks })
}

/// The processor's `transport` message, already in the engine's frames.
pub fn transport_message(playing: bool, anchor_frame: f64, anchor_step: f64, tempo: f64) -> Value {
    json!({
        "type": "transport",
        "playing": playing,
        "anchorFrame": anchor_frame,
        "anchorStep": anchor_step,
        "tempo": tempo,
    })
}

/// The processor's `anchor` message: the same transport, its anchor frame corrected (the
/// engine slews to it while playing, or moves it at once if `at_once`: the output jumped).
pub fn anchor_message(anchor_frame: f64, at_once: bool) -> Value {
    json!({ "type": "anchor", "anchorFrame": anchor_frame, "atOnce": at_once })
}
