//! Sound in the browser: the Rust engine in an AudioWorklet (crates/audio-worklet). Started by
//! a user gesture; afterwards every change of the pattern or the shared transport is sent to the
//! processor. Server time is mapped to the AudioContext's frames through the clock offset and
//! `getOutputTimestamp()`, so a step is *heard* at its server time: output latency included.

use std::cell::RefCell;
use std::collections::HashMap;

use keyboardia_audio::Instrument;
use keyboardia_core::model::SessionState;
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AudioContext, AudioWorkletNode, AudioWorkletNodeOptions};

struct Audio {
    ctx: AudioContext,
    node: AudioWorkletNode,
    sample_rate: f64,
    /// The last transport sent: (anchor frame, clock offset used).
    last: Option<(f64, f64)>,
}

thread_local! {
    static AUDIO: RefCell<Option<Audio>> = const { RefCell::new(None) };
}

pub fn is_running() -> bool {
    AUDIO.with(|a| a.borrow().is_some())
}

/// Creates the AudioContext and the engine. Must run from a user gesture (click, key).
pub async fn start() -> Result<(), JsValue> {
    if is_running() {
        return Ok(());
    }
    let ctx = AudioContext::new()?;
    JsFuture::from(ctx.resume()?).await?;
    JsFuture::from(ctx.audio_worklet()?.add_module("/worklet/processor.js")?).await?;
    let window = web_sys::window().ok_or("no window")?;
    let resp: web_sys::Response = JsFuture::from(window.fetch_with_str("/worklet/engine.wasm"))
        .await?
        .dyn_into()?;
    if !resp.ok() {
        return Err(JsValue::from_str("the sound engine could not be loaded"));
    }
    let bytes = JsFuture::from(resp.array_buffer()?).await?;
    let module = JsFuture::from(js_sys::WebAssembly::compile(&bytes)).await?;
    let opts = AudioWorkletNodeOptions::new();
    opts.set_number_of_inputs(0);
    opts.set_number_of_outputs(1);
    opts.set_output_channel_count(&js_sys::Array::of1(&JsValue::from(2)));
    let node = AudioWorkletNode::new_with_options(&ctx, "keyboardia", &opts)?;
    node.connect_with_audio_node(&ctx.destination())?;
    let init = js_sys::Object::new();
    js_sys::Reflect::set(&init, &"type".into(), &"init".into())?;
    js_sys::Reflect::set(&init, &"module".into(), &module)?;
    node.port()?.post_message(&init)?;
    let sample_rate = ctx.sample_rate() as f64;
    AUDIO.with(|a| {
        *a.borrow_mut() = Some(Audio {
            ctx,
            node,
            sample_rate,
            last: None,
        })
    });
    Ok(())
}

fn post(msg: &serde_json::Value) {
    AUDIO.with(|a| {
        if let Some(a) = a.borrow().as_ref() {
            if let (Ok(port), Ok(v)) = (a.node.port(), js_sys::JSON::parse(&msg.to_string())) {
                let _ = port.post_message(&v);
            }
        }
    });
}

/// The processor's pattern message for a session. `personal` holds this player's own mute and
/// solo per track id (they change only what this player hears).
pub fn pattern_message(
    s: &SessionState,
    personal: &HashMap<String, (bool, bool)>,
) -> serde_json::Value {
    let tracks: Vec<_> = s
        .tracks
        .iter()
        .map(|t| {
            let words: Vec<u32> = (0..4).map(|i| (t.steps.0 >> (32 * i)) as u32).collect();
            let locks: Vec<_> = t
                .locks
                .iter()
                .map(|(k, l)| json!([k, l.pitch.map(i32::from).unwrap_or(127), l.volume.unwrap_or(-1.0), l.tie as u8]))
                .collect();
            let (muted, soloed) = personal.get(&t.id).copied().unwrap_or((t.muted, t.soloed));
            json!({
                "instrument": Instrument::by_id(&t.instrument).map(|i| i.code() as i64).unwrap_or(-1),
                "stepCount": t.step_count,
                "volume": t.volume,
                "pan": t.pan,
                "transpose": t.transpose,
                "swing": t.swing,
                "muted": muted,
                "soloed": soloed,
                "steps": words,
                "locks": locks,
            })
        })
        .collect();
    json!({ "type": "pattern", "swing": s.swing, "tracks": tracks })
}

/// The AudioContext time at which a sample is *heard* at performance time `perf_ms`.
fn context_time_heard_at(a: &Audio, perf_ms: f64) -> f64 {
    let ctx: &JsValue = a.ctx.as_ref();
    let get = |o: &JsValue, k: &str| {
        js_sys::Reflect::get(o, &k.into())
            .ok()
            .and_then(|v| v.as_f64())
    };
    // getOutputTimestamp(): which context time is leaving the speakers at which performance time.
    let ts = js_sys::Reflect::get(ctx, &"getOutputTimestamp".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .and_then(|f| f.call0(ctx).ok());
    let (ctx_t, perf_t) = ts
        .map(|ts| {
            (
                get(&ts, "contextTime").unwrap_or(0.0),
                get(&ts, "performanceTime").unwrap_or(0.0),
            )
        })
        .unwrap_or((0.0, 0.0));
    if perf_t > 0.0 {
        ctx_t + (perf_ms - perf_t) / 1000.0
    } else {
        // Before the first output: what is rendered now is heard after the output latency.
        let latency = get(ctx, "outputLatency").unwrap_or(0.0);
        a.ctx.current_time() + (perf_ms - crate::live::perf_now()) / 1000.0 - latency
    }
}

/// Sends the pattern and the shared transport (server-time anchor mapped to our frames).
pub fn update(s: &SessionState, personal: &HashMap<String, (bool, bool)>, offset: Option<f64>) {
    post(&pattern_message(s, personal));
    let Some(offset) = offset else { return };
    let tr = s.transport;
    let msg = AUDIO.with(|a| {
        a.borrow_mut().as_mut().map(|a| {
            let perf = tr.anchor_time - offset;
            let frame = context_time_heard_at(a, perf) * a.sample_rate;
            a.last = Some((frame, offset));
            json!({
                "type": "transport",
                "playing": tr.playing,
                "anchorFrame": frame,
                "anchorStep": tr.anchor_step,
                "tempo": tr.tempo,
            })
        })
    });
    if let Some(m) = msg {
        post(&m);
    }
}

/// For tests: the server time at which this engine makes the transport's anchor step audible,
/// computed back from the engine's own frame/time mapping (the anchor frame it was given, and
/// `getOutputTimestamp()` now). Two players in sync report the same time.
#[wasm_bindgen(js_name = anchorHeardAtServerTime)]
pub fn anchor_heard_at_server_time() -> Option<f64> {
    AUDIO.with(|a| {
        let a = a.borrow();
        let a = a.as_ref()?;
        let (frame, offset) = a.last?;
        let ctx: &JsValue = a.ctx.as_ref();
        let ts = js_sys::Reflect::get(ctx, &"getOutputTimestamp".into())
            .ok()?
            .dyn_into::<js_sys::Function>()
            .ok()?
            .call0(ctx)
            .ok()?;
        let get = |k: &str| {
            js_sys::Reflect::get(&ts, &k.into())
                .ok()
                .and_then(|v| v.as_f64())
        };
        let (ctx_t, perf_t) = (get("contextTime")?, get("performanceTime")?);
        let heard_perf = perf_t + (frame / a.sample_rate - ctx_t) * 1000.0;
        Some(heard_perf + offset)
    })
}
