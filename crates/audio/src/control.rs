//! The control messages of the AudioWorklet processor (crates/audio-worklet/js/processor.js),
//! built from the engine's own types: the one definition every sender uses (the web app, the
//! reference renderer for the browser check).

use serde_json::{json, Value};

use crate::effects::MasterFx;
use crate::engine::Pattern;
use crate::sampler::SampledInstrument;

/// The processor's `pattern` message: every track's settings, steps (four 32-bit words, lowest
/// steps first) and parameter locks (`[step, pitch or 127, volume or -1, tie]`, then the
/// chord's other notes as a list when the step holds a chord), and the loop region
/// (`[start, end]` or null).
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
                    let mut v = json!([
                        k,
                        l.pitch.map(i32::from).unwrap_or(127),
                        l.volume.unwrap_or(-1.0),
                        l.tie as u8
                    ]);
                    let chord: Vec<i8> = l.chord.iter().flatten().copied().collect();
                    if let (false, Some(a)) = (chord.is_empty(), v.as_array_mut()) {
                        a.push(json!(chord));
                    }
                    v
                })
                .collect();
            let cutoffs: Vec<Value> = t
                .locks
                .iter()
                .enumerate()
                .filter_map(|(k, l)| l.cutoff.map(|c| json!([k, c])))
                .collect();
            let f = &t.fx;
            json!({
                "fx": [f.send_reverb, f.send_delay, f.filter.code(), f.cutoff, f.resonance, f.drive],
                "cutoffs": cutoffs,
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
    let region = p.loop_region.map(|r| [r.start, r.end]);
    json!({ "type": "pattern", "swing": p.swing, "loop": region, "tracks": tracks })
}

/// The processor's `effects` message: the master chain's settings; with `settle`, they apply at
/// once (see [`crate::Engine::settle_effects`]).
pub fn effects_message(fx: &MasterFx, settle: bool) -> Value {
    json!({ "type": "effects", "values": fx.to_array().to_vec(), "settle": settle })
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

/// The processor's `instrument` message: loads a sampled instrument's description into engine
/// slot `slot` (zones without PCM; each zone's PCM follows in a `zone` message, see
/// [`zone_message_header`]). Gains are linear and the choke group already a number, so the
/// worklet holds exactly the values a native engine built with
/// `SampledInstrument::from_manifest` holds.
pub fn instrument_message(slot: u8, inst: &SampledInstrument) -> Value {
    let e = inst.envelope;
    let zones: Vec<Value> = inst
        .zones
        .iter()
        .map(|z| {
            json!({
                "keyLo": z.key_lo,
                "keyHi": z.key_hi,
                "velLo": z.vel_lo,
                "velHi": z.vel_hi,
                "root": z.root,
                "fineTune": z.fine_tune,
                "sampleRate": z.sample_rate,
                "loopStart": z.loop_points.map_or(-1, |(s, _)| s as i64),
                "loopEnd": z.loop_points.map_or(-1, |(_, e)| e as i64),
                "gain": z.gain,
            })
        })
        .collect();
    json!({
        "type": "instrument",
        "slot": slot,
        "baseNote": inst.base_note,
        "gain": inst.gain,
        "envelope": [e.attack, e.hold, e.decay, e.sustain, e.release],
        "oneShot": inst.one_shot,
        "choke": inst.choke,
        "zones": zones,
    })
}

/// The processor's `zone` message without its PCM: the sender adds `pcm`, an `Int16Array` of
/// the zone's mono 16-bit samples (transferred, not copied).
pub fn zone_message_header(slot: u8, zone: usize) -> Value {
    json!({ "type": "zone", "slot": slot, "zone": zone })
}

/// The processor's `unload` message: empties a slot.
pub fn unload_message(slot: u8) -> Value {
    json!({ "type": "unload", "slot": slot })
}
