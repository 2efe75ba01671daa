//! Recording from the microphone: MediaRecorder captures, the browser decodes, the clip is
//! encoded as WAV (hound) and uploaded; the server stores it and tells every player, and the new
//! track plays it for everyone.

use std::cell::RefCell;

use keyboardia_core::protocol::{Edit, NewTrack};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{BlobEvent, MediaRecorder, MediaStream, MediaStreamConstraints};

struct Recording {
    recorder: MediaRecorder,
    stream: MediaStream,
    chunks: js_sys::Array,
    /// The microphone's level, for the meter (not connected to the output).
    analyser: Option<web_sys::AnalyserNode>,
}

thread_local! {
    static REC: RefCell<Option<Recording>> = const { RefCell::new(None) };
}

/// Opens the default microphone (asking for it if need be) without recording yet: its level
/// shows from now on (during the count-in too). [`begin`] starts the recording.
pub async fn open() -> Result<(), JsValue> {
    let devices = web_sys::window()
        .ok_or("no window")?
        .navigator()
        .media_devices()?;
    let c = MediaStreamConstraints::new();
    c.set_audio(&JsValue::TRUE);
    let stream: MediaStream = JsFuture::from(devices.get_user_media_with_constraints(&c)?)
        .await?
        .dyn_into()?;
    let recorder = MediaRecorder::new_with_media_stream(&stream)?;
    let chunks = js_sys::Array::new();
    let sink = chunks.clone();
    let on_data = Closure::<dyn FnMut(BlobEvent)>::new(move |e: BlobEvent| {
        if let Some(b) = e.data() {
            sink.push(&b);
        }
    });
    recorder.set_ondataavailable(Some(on_data.as_ref().unchecked_ref()));
    on_data.forget();
    let analyser = crate::audio::context().and_then(|ctx| {
        let source = ctx.create_media_stream_source(&stream).ok()?;
        let analyser = ctx.create_analyser().ok()?;
        analyser.set_fft_size(1024);
        source.connect_with_audio_node(&analyser).ok()?;
        Some(analyser)
    });
    REC.with(|r| {
        *r.borrow_mut() = Some(Recording {
            recorder,
            stream,
            chunks,
            analyser,
        })
    });
    Ok(())
}

/// Starts recording from the opened microphone.
pub fn begin() -> Result<(), JsValue> {
    REC.with(|r| match r.borrow().as_ref() {
        Some(rec) => rec.recorder.start(),
        None => Err("the microphone is not open".into()),
    })
}

/// Closes the microphone without recording (a cancelled count-in).
pub fn cancel() {
    if let Some(rec) = REC.with(|r| r.borrow_mut().take()) {
        let _ = rec.recorder.stop();
        for t in rec.stream.get_tracks().iter() {
            if let Ok(t) = t.dyn_into::<web_sys::MediaStreamTrack>() {
                t.stop();
            }
        }
    }
}

/// The microphone's level now, 0 to 1 (the peak of the last few milliseconds, on a scale that
/// shows speech and instruments well: -48 dBFS to 0).
pub fn level() -> f64 {
    REC.with(|r| {
        let r = r.borrow();
        let Some(a) = r.as_ref().and_then(|r| r.analyser.as_ref()) else {
            return 0.0;
        };
        let mut buf = vec![0f32; a.fft_size() as usize];
        a.get_float_time_domain_data(&mut buf);
        crate::audio::peak_level(&buf)
    })
}

/// Stops, uploads as a WAV, and adds a track that plays the recording. Returns its name.
pub async fn stop_and_upload(session_id: &str, n: usize) -> Result<String, JsValue> {
    let Some(rec) = REC.with(|r| r.borrow_mut().take()) else {
        return Err("not recording".into());
    };
    let stopped = js_sys::Promise::new(&mut |resolve, _| {
        rec.recorder.set_onstop(Some(&resolve));
    });
    rec.recorder.stop()?;
    JsFuture::from(stopped).await?;
    for t in rec.stream.get_tracks().iter() {
        if let Ok(t) = t.dyn_into::<web_sys::MediaStreamTrack>() {
            t.stop();
        }
    }
    let blob = web_sys::Blob::new_with_blob_sequence(&rec.chunks)?;
    let bytes: js_sys::ArrayBuffer = JsFuture::from(blob.array_buffer()).await?.dyn_into()?;
    let (pcm, rate) = crate::audio::decode(&bytes).await?;
    let wav = encode_wav(&pcm, rate);
    let name = format!("Take {n}");
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&js_sys::Uint8Array::from(wav.as_slice()));
    let url = format!(
        "/api/sessions/{session_id}/recordings?name={}",
        name.replace(' ', "%20")
    );
    let window = web_sys::window().ok_or("no window")?;
    let resp: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(&url, &init))
        .await?
        .dyn_into()?;
    let text = JsFuture::from(resp.text()?)
        .await?
        .as_string()
        .unwrap_or_default();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if !resp.ok() {
        return Err(JsValue::from_str(
            body["details"].as_str().unwrap_or("the upload failed"),
        ));
    }
    let instrument = body["instrument"].as_str().unwrap_or_default().to_string();
    // The recording becomes an instrument once the session's `SAMPLE_ADDED` reaches this page
    // (the HTTP answer can come first): only then will a track of it be accepted.
    let sample = instrument
        .strip_prefix("recording/")
        .unwrap_or_default()
        .to_string();
    for _ in 0..100 {
        if crate::live::has_sample(&sample) {
            break;
        }
        crate::audio::sleep_ms(50).await;
    }
    let id = format!("r{:x}", (js_sys::Math::random() * 1e9) as u64);
    crate::live::edit(Edit::AddTrack {
        track: NewTrack {
            id: id.clone(),
            name: name.clone(),
            instrument,
            step_count: None,
        },
    });
    crate::live::edit(Edit::SetStep {
        track_id: id,
        step: 0,
        active: true,
    });
    Ok(name)
}

/// 16-bit mono WAV.
fn encode_wav(pcm: &[f32], rate: f32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate as u32,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    if let Ok(mut w) = hound::WavWriter::new(&mut out, spec) {
        for x in pcm {
            let _ = w.write_sample((x.clamp(-1.0, 1.0) * 32767.0) as i16);
        }
        let _ = w.finalize();
    }
    out.into_inner()
}
