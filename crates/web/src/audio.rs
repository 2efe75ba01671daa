//! Sound in the browser: the Rust engine in an AudioWorklet (crates/audio-worklet). Started by
//! a user gesture; afterwards every change of the pattern or the shared transport is sent to the
//! processor. Server time is mapped to the AudioContext's frames through the clock offset and
//! `getOutputTimestamp()`, so a step is *heard* at its server time: output latency included.

use std::cell::RefCell;
use std::collections::HashMap;

use keyboardia_audio::control;
use keyboardia_audio::offline::pattern_from_session_with;
use keyboardia_core::clock::OutputClock;
use keyboardia_core::model::{SessionState, Transport};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AudioContext, AudioWorkletNode, AudioWorkletNodeOptions};

struct Audio {
    ctx: AudioContext,
    node: AudioWorkletNode,
    sample_rate: f64,
    /// Recordings loaded into the engine: sample id -> engine slot (or None while loading).
    samples: HashMap<String, Option<u8>>,
    /// The last transport sent: (its anchor frame, the transport itself).
    last: Option<(f64, Transport)>,
    /// Where the output is: the lag from context time to heard performance time, from recent
    /// `getOutputTimestamp()` readings (see [`read_output`]).
    output: OutputClock,
    /// Taps the master output for the level meter (not connected onwards).
    meter: Option<web_sys::AnalyserNode>,
    /// The master effects last sent (none yet: the first are sent settling, so a player who
    /// just joined hears the session's effects from the first note).
    fx_sent: Option<keyboardia_audio::effects::MasterFx>,
}

thread_local! {
    static AUDIO: RefCell<Option<Audio>> = const { RefCell::new(None) };
    /// Each track's peak (linear) since [`take_track_levels`] last read them.
    static LEVELS: RefCell<[f32; 16]> = const { RefCell::new([0.0; 16]) };
}

/// Each track's level since the last call, 0 to 1 on the meters' scale (-48 dBFS to 0), by
/// track index.
pub fn take_track_levels() -> Vec<f64> {
    LEVELS.with(|l| {
        let mut l = l.borrow_mut();
        let out = l.iter().map(|p| peak_level(&[*p])).collect();
        *l = [0.0; 16];
        out
    })
}

/// The master output's level now, 0 to 1 (peak of the last ~10 ms on a -48 dBFS..0 scale).
pub fn master_level() -> f64 {
    AUDIO.with(|a| {
        let a = a.borrow();
        let Some(m) = a.as_ref().and_then(|a| a.meter.as_ref()) else {
            return 0.0;
        };
        let mut buf = vec![0f32; m.fft_size() as usize];
        m.get_float_time_domain_data(&mut buf);
        peak_level(&buf)
    })
}

/// A block's peak on a meter's scale: -48 dBFS to 0 as 0 to 1.
pub fn peak_level(buf: &[f32]) -> f64 {
    let peak = buf.iter().fold(0f32, |m, x| m.max(x.abs())) as f64;
    if peak <= 0.0 {
        return 0.0;
    }
    ((20.0 * peak.log10() + 48.0) / 48.0).clamp(0.0, 1.0)
}

/// The running AudioContext (for the recording level meter).
pub fn context() -> Option<AudioContext> {
    AUDIO.with(|a| a.borrow().as_ref().map(|a| a.ctx.clone()))
}

thread_local! {
    static RUNNING: leptos::prelude::ArcRwSignal<bool> = leptos::prelude::ArcRwSignal::new(false);
}

/// Whether the engine runs, as a signal (set once [`start`] succeeded, from any gesture: the
/// play button or an audition in the picker).
pub fn running() -> leptos::prelude::ArcRwSignal<bool> {
    RUNNING.with(|r| r.clone())
}

pub fn is_running() -> bool {
    AUDIO.with(|a| a.borrow().is_some())
}

/// Where a file of the sound engine is: the build names it in a `<meta name=...>` of the page
/// (with a content hash, cached forever), else the unhashed development path.
fn asset_url(meta: &str, fallback: &str) -> String {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| {
            d.query_selector(&format!("meta[name=\"{meta}\"]"))
                .ok()
                .flatten()
        })
        .and_then(|m| m.get_attribute("content"))
        .unwrap_or_else(|| fallback.to_string())
}

/// Creates the AudioContext and the engine. Must run from a user gesture (click, key).
pub async fn start() -> Result<(), JsValue> {
    if is_running() {
        return Ok(());
    }
    let ctx = AudioContext::new()?;
    let resumed = ctx.resume()?;
    crate::lazy::run(connect(ctx, resumed)).await
}

/// The rest of [`start`], once the context exists (created in the gesture itself, as browsers
/// ask): the worklet, the engine, the meters. In a wasm module of its own, fetched when the
/// player first starts the sound.
#[leptos::wasm_split::wasm_split(sound, wasm_split_path = ::leptos::wasm_split, fallible)]
fn connect(
    ctx: AudioContext,
    resumed: js_sys::Promise,
) -> Result<crate::lazy::Task<Result<(), JsValue>>, crate::lazy::NotLoaded> {
    Ok(Box::pin(connect_now(ctx, resumed)))
}

async fn connect_now(ctx: AudioContext, resumed: js_sys::Promise) -> Result<(), JsValue> {
    JsFuture::from(resumed).await?;
    let processor = asset_url("kb-worklet", "/worklet/processor.js");
    JsFuture::from(ctx.audio_worklet()?.add_module(&processor)?).await?;
    let window = web_sys::window().ok_or("no window")?;
    let engine = asset_url("kb-engine", "/worklet/engine.wasm");
    let resp: web_sys::Response = JsFuture::from(window.fetch_with_str(&engine))
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
    // The processor reports render quanta the context dropped (its frame clock jumped).
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(|e: web_sys::MessageEvent| {
            let d = e.data();
            let get = |k: &str| js_sys::Reflect::get(&d, &k.into()).ok();
            let kind = get("type").and_then(|v| v.as_string());
            if kind.as_deref() == Some("levels") {
                if let Some(p) = get("peaks") {
                    let p = js_sys::Float32Array::new(&p).to_vec();
                    LEVELS.with(|l| {
                        let mut l = l.borrow_mut();
                        for (held, now) in l.iter_mut().zip(p) {
                            *held = held.max(now);
                        }
                    });
                }
                return;
            }
            if kind.as_deref() == Some("probe") {
                // For tests and diagnostics: the last probe's answer (see `__kbProbe`).
                if let Some(w) = web_sys::window() {
                    let _ = js_sys::Reflect::set(&w, &"__kbProbeReply".into(), &d);
                }
            }
            if kind.as_deref() == Some("frameJump") {
                let n = |k| get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
                web_sys::console::warn_1(&JsValue::from_str(&format!(
                    "audio: render quanta were dropped (frame {} to {})",
                    n("from"),
                    n("to")
                )));
            }
        });
    node.port()?
        .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let init = js_sys::Object::new();
    js_sys::Reflect::set(&init, &"type".into(), &"init".into())?;
    js_sys::Reflect::set(&init, &"module".into(), &module)?;
    node.port()?.post_message(&init)?;
    let sample_rate = ctx.sample_rate() as f64;
    let meter = ctx.create_analyser().ok().and_then(|m| {
        m.set_fft_size(512);
        node.connect_with_audio_node(&m).ok()?;
        Some(m)
    });
    // Nothing is scheduled until the context reports where its output really is: before the
    // first rendered quantum, getOutputTimestamp() has no reading, and guessing the output
    // latency put a late joiner 10 ms off. A few readings, so one late one does not decide.
    let mut output = OutputClock::default();
    for _ in 0..100 {
        if let Some((ctx_t, perf_t)) = output_timestamp(&ctx) {
            output.read(ctx_t, perf_t);
        }
        if output.readings() >= OutputClock::CONFIRM {
            break;
        }
        sleep_ms(10).await;
    }
    install_probe();
    AUDIO.with(|a| {
        *a.borrow_mut() = Some(Audio {
            ctx,
            node,
            sample_rate,
            samples: HashMap::new(),
            last: None,
            output,
            meter,
            fx_sent: None,
        })
    });
    leptos::prelude::Set::set(&running(), true);
    Ok(())
}

/// Sends a control message (JSON) to the processor, if the engine runs.
pub fn post_json(msg: &serde_json::Value) {
    post(msg);
}

/// Sends a `zone` message with its PCM, the buffer transferred (not copied).
pub fn post_with_pcm(msg: &serde_json::Value, pcm: &js_sys::Int16Array) {
    AUDIO.with(|a| {
        if let Some(a) = a.borrow().as_ref() {
            if let (Ok(port), Ok(v)) = (a.node.port(), js_sys::JSON::parse(&msg.to_string())) {
                let _ = js_sys::Reflect::set(&v, &"pcm".into(), pcm);
                let _ = port.post_message_with_transferable(&v, &js_sys::Array::of1(&pcm.buffer()));
            }
        }
    });
}

/// Plays one note of `instrument` (a catalogue id) on the track at `track` now, heard by this
/// player only (the picker's audition). Returns false if the instrument cannot play yet.
pub fn audition(track: usize, instrument: &str) -> bool {
    audition_pitch(track, instrument, 0)
}

/// Plays one note of `instrument` `pitch` semitones from its base note on the track at `track`
/// now, heard by this player only (a note placed in the piano roll). A sampled instrument
/// fetches that note's zone if it has not yet; meanwhile its nearest loaded zone plays it.
pub fn audition_pitch(track: usize, instrument: &str, pitch: i32) -> bool {
    if let Some(e) = keyboardia_core::catalogue::lookup(instrument)
        .filter(|e| e.kind == keyboardia_core::catalogue::Kind::Sampled)
    {
        let key = (e.base as i32 + pitch).clamp(0, 127) as u8;
        crate::sampled::ensure(
            instrument,
            vec![(key, keyboardia_audio::sampler::DEFAULT_VELOCITY)],
        );
    }
    let code = match keyboardia_audio::Instrument::by_id(instrument) {
        Some(i) => i.code(),
        None => match crate::sampled::slot_of(instrument) {
            Some(s) => keyboardia_audio::Instrument::Sampled(s).code(),
            None => return false,
        },
    };
    let gate = AUDIO.with(|a| a.borrow().as_ref().map(|a| a.sample_rate * 0.6));
    let Some(gate) = gate else { return false };
    post(&serde_json::json!({
        "type": "audition", "track": track, "instrument": code, "pitch": pitch, "gate": gate as u32,
    }));
    true
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

/// The processor's pattern message for a session: the same mapping the WAV export uses, with
/// this player's own mute and solo per track id (they change only what this player hears), and
/// recordings playing from the slots they were loaded into (silent until then: never another
/// sound in their place).
pub fn pattern_message(
    s: &SessionState,
    personal: &HashMap<String, (bool, bool)>,
) -> serde_json::Value {
    let slots: HashMap<String, u8> = AUDIO.with(|a| {
        a.borrow()
            .as_ref()
            .map(|a| {
                a.samples
                    .iter()
                    .filter_map(|(k, v)| v.map(|v| (k.clone(), v)))
                    .collect()
            })
            .unwrap_or_default()
    });
    let mut p = pattern_from_session_with(s, |id| slots.get(id).copied(), crate::sampled::slot_of);
    for (i, t) in s.tracks.iter().enumerate() {
        if let Some(&(muted, soloed)) = personal.get(&t.id) {
            p.tracks[i].muted = muted;
            p.tracks[i].soloed = soloed;
        }
    }
    control::pattern_message(&p)
}

/// Loads the session's recordings and sampled instruments that the engine does not have yet;
/// calls `done` after each (when it becomes playable).
pub fn load_samples(s: &SessionState, done: impl Fn() + Clone + 'static) {
    if is_running() {
        crate::sampled::sync(s, done.clone());
    }
    for smp in &s.samples {
        let fresh = AUDIO.with(|a| {
            let mut a = a.borrow_mut();
            let Some(a) = a.as_mut() else { return false };
            if a.samples.contains_key(&smp.id) {
                return false;
            }
            a.samples.insert(smp.id.clone(), None);
            true
        });
        if !fresh {
            continue;
        }
        let (id, path, done) = (smp.id.clone(), smp.path.clone(), done.clone());
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = load_sample(&id, &path).await {
                web_sys::console::warn_1(&e);
                AUDIO.with(|a| {
                    if let Some(a) = a.borrow_mut().as_mut() {
                        a.samples.remove(&id);
                    }
                });
            }
            done();
        });
    }
}

async fn load_sample(id: &str, path: &str) -> Result<(), JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let resp: web_sys::Response =
        JsFuture::from(window.fetch_with_str(&format!("/api/samples/{path}")))
            .await?
            .dyn_into()?;
    if !resp.ok() {
        return Err(JsValue::from_str("recording not found"));
    }
    let bytes: js_sys::ArrayBuffer = JsFuture::from(resp.array_buffer()?).await?.dyn_into()?;
    let ctx = AUDIO
        .with(|a| a.borrow().as_ref().map(|a| a.ctx.clone()))
        .ok_or("no audio")?;
    let buffer: web_sys::AudioBuffer = JsFuture::from(ctx.decode_audio_data(&bytes)?)
        .await?
        .dyn_into()?;
    let pcm = buffer.get_channel_data(0)?;
    AUDIO.with(|a| {
        let mut a = a.borrow_mut();
        let Some(a) = a.as_mut() else { return };
        let slot = a.samples.values().filter(|v| v.is_some()).count() as u8;
        let msg = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&msg, &"type".into(), &"sample".into());
        let _ = js_sys::Reflect::set(&msg, &"slot".into(), &JsValue::from(slot));
        let _ = js_sys::Reflect::set(&msg, &"rate".into(), &JsValue::from(buffer.sample_rate()));
        let _ = js_sys::Reflect::set(
            &msg,
            &"pcm".into(),
            &js_sys::Float32Array::from(pcm.as_slice()),
        );
        if let Ok(port) = a.node.port() {
            let _ = port.post_message(&msg);
        }
        a.samples.insert(id.to_string(), Some(slot));
    });
    Ok(())
}

/// Decodes recorded audio (any format the browser reads) to mono PCM and its rate.
pub async fn decode(bytes: &js_sys::ArrayBuffer) -> Result<(Vec<f32>, f32), JsValue> {
    let ctx = AUDIO
        .with(|a| a.borrow().as_ref().map(|a| a.ctx.clone()))
        .ok_or("start audio first")?;
    let buffer: web_sys::AudioBuffer = JsFuture::from(ctx.decode_audio_data(bytes)?)
        .await?
        .dyn_into()?;
    Ok((buffer.get_channel_data(0)?, buffer.sample_rate()))
}

pub async fn sleep_ms(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(p).await;
}

/// `getOutputTimestamp()`: which context time is leaving the speakers at which performance time
/// (None until the context has rendered).
fn output_timestamp(ctx: &AudioContext) -> Option<(f64, f64)> {
    let c: &JsValue = ctx.as_ref();
    let ts = js_sys::Reflect::get(c, &"getOutputTimestamp".into())
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?
        .call0(c)
        .ok()?;
    let get = |k: &str| {
        js_sys::Reflect::get(&ts, &k.into())
            .ok()
            .and_then(|v| v.as_f64())
    };
    let (ctx_t, perf_t) = (get("contextTime")?, get("performanceTime")?);
    (perf_t > 0.0).then_some((ctx_t, perf_t))
}

/// Reads where the output is (called every 25 ms while the page is open); true if the output
/// jumped (it stalled or dropped audio), so the schedule should be re-mapped now.
pub fn read_output() -> bool {
    AUDIO.with(|a| {
        let mut a = a.borrow_mut();
        let Some(a) = a.as_mut() else { return false };
        output_timestamp(&a.ctx).is_some_and(|(ctx_t, perf_t)| a.output.read(ctx_t, perf_t))
    })
}

/// Corrections smaller than this (s) are noise, not drift: left alone.
const CORRECTION_FLOOR_S: f64 = 0.00015;

/// Sends the pattern (with this player's personal mix) and the master effects, when they
/// changed, to the engine.
pub fn set_pattern(s: &SessionState, personal: &HashMap<String, (bool, bool)>) {
    post(&pattern_message(s, personal));
    let fx = keyboardia_audio::offline::master_fx(&s.effects);
    let first = AUDIO.with(|a| {
        let mut a = a.borrow_mut();
        let a = a.as_mut()?;
        if a.fx_sent == Some(fx) {
            return None;
        }
        Some(a.fx_sent.replace(fx).is_none())
    });
    if let Some(first) = first {
        post(&control::effects_message(&fx, first));
    }
}

/// Maps the shared transport (server time) to the engine's frames and sends it. Called when
/// the transport or the clock estimate changes, four times a second while running (the audio
/// clock drifts from the system clock), and as soon as the output jumped. A new transport is
/// sent as such; the same transport mapped to a slightly different frame (a better clock
/// estimate, drift) is sent as an anchor correction, which the engine slews to instead of
/// jumping.
pub fn set_transport(tr: Transport, offset: Option<f64>) {
    // No trustworthy clock yet: schedule nothing rather than something wrong.
    let Some(offset) = offset else { return };
    let msg = AUDIO.with(|a| {
        a.borrow_mut().as_mut().and_then(|a| {
            if let Some((ctx_t, perf_t)) = output_timestamp(&a.ctx) {
                a.output.read(ctx_t, perf_t);
            }
            let lag = a.output.lag()?;
            let frame = (tr.anchor_time - offset - lag) / 1000.0 * a.sample_rate;
            let output_jumped = a.output.take_jump();
            match a.last {
                Some((f, t)) if t == tr => {
                    // Within the readings' own noise (getOutputTimestamp() is on a 0.1 ms
                    // grid): nothing to correct.
                    if (f - frame).abs() < a.sample_rate * CORRECTION_FLOOR_S && !output_jumped {
                        return None;
                    }
                    a.last = Some((frame, tr));
                    Some(control::anchor_message(frame, output_jumped))
                }
                _ => {
                    a.last = Some((frame, tr));
                    Some(control::transport_message(
                        tr.playing,
                        frame,
                        tr.anchor_step,
                        tr.tempo as f64,
                    ))
                }
            }
        })
    });
    if let Some(m) = msg {
        post(&m);
    }
}

/// Installs `window.__kbProbe(tracks)` for tests and diagnostics: asks the worklet how many
/// zones each assigned sampled-instrument slot has loaded and how many voices sound per track;
/// the answer lands in `window.__kbProbeReply` as `{ id, zones, voices, peak }`, and
/// `window.__kbInstruments` holds `[[id, slot, loaded files, total files], ...]` and
/// `window.__kbSampleBytes` the bytes of sample files downloaded, `window.__kbReady`
/// `[bytes, performance.now()]` when every note the session plays could first sound (or null).
fn install_probe() {
    use leptos::prelude::GetUntracked;
    let Some(w) = web_sys::window() else { return };
    let f = Closure::<dyn FnMut(JsValue) -> JsValue>::new(|id: JsValue| {
        let slots = crate::sampled::slots();
        let progress = crate::sampled::progress().get_untracked();
        let list: Vec<serde_json::Value> = slots
            .iter()
            .map(|(k, s)| {
                let p = progress.get(k).copied().unwrap_or_default();
                serde_json::json!([k, s, p.loaded, p.total])
            })
            .collect();
        if let Some(w) = web_sys::window() {
            if let Ok(v) = js_sys::JSON::parse(&serde_json::Value::Array(list).to_string()) {
                let _ = js_sys::Reflect::set(&w, &"__kbInstruments".into(), &v);
            }
            let _ = js_sys::Reflect::set(
                &w,
                &"__kbSampleBytes".into(),
                &JsValue::from(crate::sampled::bytes_downloaded()),
            );
            let ready = crate::sampled::ready().map(|(b, t)| serde_json::json!([b, t]));
            if let Ok(v) = js_sys::JSON::parse(&ready.unwrap_or_default().to_string()) {
                let _ = js_sys::Reflect::set(&w, &"__kbReady".into(), &v);
            }
        }
        let ids: Vec<u8> = slots.iter().map(|x| x.1).collect();
        post(&serde_json::json!({
            "type": "probe", "id": id.as_f64().unwrap_or(0.0), "slots": ids, "tracks": 16,
        }));
        JsValue::UNDEFINED
    });
    let _ = js_sys::Reflect::set(&w, &"__kbProbe".into(), f.as_ref());
    f.forget();
}
