//! # keyboardia-api
//!
//! The HTTP API's sequences that are not sans-IO, written once for both hosts: storing a
//! recording and announcing it, rendering the WAV and MIDI exports, remixing and publishing.
//! Each is an `async fn` over [`Host`], a small trait of the fetching and storing a host does
//! (the native server with SQLite and a blob directory; the Cloudflare Worker with its Durable
//! Objects, KV and R2). The rules themselves (bodies, names, limits, documents) are in
//! `keyboardia_core::api`; the hosts keep only routing, bytes in and out, and their storage.
//!
//! No runtime, no sockets, no threads: the futures are polled by the host's own runtime (tokio
//! natively; the Workers runtime on Cloudflare, where nothing is `Send`).

#![forbid(unsafe_code)]

use std::future::Future;

use keyboardia_core::api::{self, ApiError, CopyKind};
use keyboardia_core::model::{SampleRef, SessionMeta, SessionState};
use keyboardia_core::protocol::{Applied, Change, EditError};
use serde_json::{json, Value};
use uuid::Uuid;

/// What a host provides. Every method talks to the host's storage or to a session's live
/// coordinator; errors are already the API's (`{error, details}` with a status).
pub trait Host {
    /// A session's metadata and current state, through its live coordinator.
    fn session(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<(SessionMeta, SessionState), ApiError>>;
    /// Applies a system change (one no player made) through the session's coordinator, which
    /// commits and broadcasts it like any edit.
    fn apply_change(
        &self,
        id: Uuid,
        change: Change,
    ) -> impl Future<Output = Result<Applied, ApiError>>;
    /// Creates a new session with this metadata and state; answers its `201` document.
    fn create(
        &self,
        meta: SessionMeta,
        state: SessionState,
    ) -> impl Future<Output = Result<Value, ApiError>>;
    /// Counts one more remix of `id`.
    fn count_remix(&self, id: Uuid) -> impl Future<Output = Result<(), ApiError>>;
    fn blob_get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, ApiError>>;
    fn blob_put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<(), ApiError>>;
    /// Logs a server-side failure (the client gets a plain 500).
    fn report(&self, failure: &str);
}

/// `GET /api/instruments`: the catalogue, every instrument this build plays.
pub fn instruments() -> Value {
    json!({ "instruments": keyboardia_core::catalogue::all() })
}

/// `GET /api/instruments/{id}`: one instrument: its catalogue entry, its licence text, and for a
/// sampled one its manifest from the sample store with the URL of every zone's file (carrying
/// the library's version, so the files may be cached for good).
pub async fn instrument<H: Host>(host: &H, id: &str) -> Result<Value, ApiError> {
    use keyboardia_core::catalogue::{self, Kind};
    let entry = catalogue::lookup(id).ok_or_else(|| {
        ApiError::not_found(format!("no instrument {id:?} in this build's catalogue"))
    })?;
    let mut doc = json!({
        "instrument": entry,
        "credit": catalogue::credit(entry.licence),
    });
    if entry.kind != Kind::Sampled {
        return Ok(doc);
    }
    let missing = || {
        ApiError::not_found(format!(
            "the instrument library is not in this server's sample store, so {id:?} cannot play (start the server with its library: cargo xtask run)"
        ))
    };
    let raw = host
        .blob_get(&format!("samples/{id}/manifest.json"))
        .await?
        .ok_or_else(missing)?;
    let stamp = host.blob_get("samples/STAMP").await?.ok_or_else(missing)?;
    let manifest = keyboardia_core::manifest::Manifest::from_json(&raw).map_err(|e| {
        host.report(&format!("library manifest of {id}: {e}"));
        ApiError::internal()
    })?;
    let version = library_version(&stamp);
    let mut m = serde_json::to_value(&manifest).map_err(|_| ApiError::internal())?;
    if let Some(zones) = m.get_mut("zones").and_then(Value::as_array_mut) {
        for z in zones {
            let file = z.get("file").and_then(Value::as_str).unwrap_or_default();
            let url = format!("/api/samples/{id}/{file}?v={version}");
            z["url"] = Value::String(url);
        }
    }
    doc["manifest"] = m;
    doc["version"] = Value::String(version);
    Ok(doc)
}

/// A sampled instrument from the sample store: its manifest and every zone, decoded (the same
/// integer FLAC decoding the browser uses, so an export sounds like playback).
pub async fn load_instrument<H: Host>(
    h: &H,
    entry: &keyboardia_core::catalogue::Entry,
) -> Result<keyboardia_audio::sampler::SampledInstrument, ApiError> {
    let id = entry.id;
    let raw = h
        .blob_get(&format!("samples/{id}/manifest.json"))
        .await?
        .ok_or_else(|| internal(h, format!("the instrument library lacks {id}")))?;
    let manifest = keyboardia_core::manifest::Manifest::from_json(&raw)
        .map_err(|e| internal(h, format!("library manifest of {id}: {e}")))?;
    let mut pcm = std::collections::HashMap::new();
    for z in &manifest.zones {
        let bytes = h
            .blob_get(&format!("samples/{id}/{}", z.file))
            .await?
            .ok_or_else(|| internal(h, format!("the instrument library lacks {id}/{}", z.file)))?;
        let (data, _) = keyboardia_audio::sampler::decode_flac(&bytes)
            .map_err(|e| internal(h, format!("{id}/{}: {e}", z.file)))?;
        pcm.insert(z.file.clone(), data);
    }
    Ok(keyboardia_audio::sampler::SampledInstrument::from_manifest(
        &manifest,
        entry.base,
        |file| pcm.remove(file),
    ))
}

/// A short version of the installed library (from its STAMP), for cache-busting URLs.
pub fn library_version(stamp: &[u8]) -> String {
    // FNV-1a: stable everywhere, and plenty for telling library builds apart.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stamp {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:08x}", h >> 32)
}

/// A file to hand back: its bytes, `Content-Type` and `Content-Disposition`.
pub struct Download {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub disposition: String,
}

/// `POST /api/sessions/{id}/recordings?name=`: checks the upload is real audio within the
/// limits, stores it in the seed's layout, adds it to the session (every player hears about it)
/// and answers the `201` body. The caller has read the body within `MAX_RECORDING_BYTES`.
pub async fn upload_recording<H: Host>(
    h: &H,
    id: Uuid,
    name: Option<&str>,
    bytes: Vec<u8>,
) -> Result<Value, ApiError> {
    let (meta, _) = h.session(id).await?;
    if meta.immutable {
        return Err(EditError::ReadOnly.into());
    }
    let info =
        keyboardia_audio::recording::validate_wav(&bytes).map_err(ApiError::invalid_audio)?;
    let name = api::recording_name(name)?;
    let (sample_id, path) = api::recording_key(id, Uuid::new_v4());
    h.blob_put(&path, bytes, "audio/wav").await?;
    let sample = SampleRef {
        id: sample_id,
        name,
        path,
        duration_ms: info.duration_ms,
    };
    let applied = h
        .apply_change(
            id,
            Change::SampleAdded {
                sample: sample.clone(),
            },
        )
        .await?;
    Ok(json!({
        "sample": sample,
        "url": format!("/api/samples/{}", sample.path),
        "instrument": sample.instrument(),
        "seq": applied.seq,
    }))
}

/// `GET /api/sessions/{id}/export.wav?loops=`: the session rendered by the same engine that
/// plays it in the browser (one full cycle of every track, `loops` times, default 2), with the
/// recordings it uses read from the sample store.
pub async fn export_wav<H: Host>(
    h: &H,
    id: Uuid,
    loops: Option<u32>,
    tail: Option<&str>,
) -> Result<Download, ApiError> {
    let loops = api::export_loops(loops, 2)?;
    let tail = api::export_tail(tail)?;
    let (_, session) = h.session(id).await?;
    let mut samples = Vec::new();
    for smp in keyboardia_audio::offline::samples_in_use(&session) {
        let bytes = h
            .blob_get(&smp.path)
            .await?
            .ok_or_else(|| internal(h, format!("recording {} is missing", smp.path)))?;
        let sample = keyboardia_audio::recording::load(&smp.id, &bytes)
            .map_err(|e| internal(h, format!("recording {}: {e}", smp.path)))?;
        samples.push(sample);
    }
    let mut instruments = Vec::new();
    for entry in keyboardia_audio::offline::sampled_in_use(&session) {
        instruments.push((entry.id.to_string(), load_instrument(h, entry).await?));
    }
    let pcm = keyboardia_audio::offline::render_session_with(
        &session,
        api::EXPORT_RATE,
        loops,
        samples,
        instruments,
        tail,
    );
    Ok(Download {
        bytes: keyboardia_audio::offline::to_wav(&pcm),
        content_type: "audio/wav",
        disposition: api::attachment(&session.name, "wav"),
    })
}

/// `GET /api/sessions/{id}/export.mid?loops=`: the pattern as a Standard MIDI File.
pub async fn export_midi<H: Host>(
    h: &H,
    id: Uuid,
    loops: Option<u32>,
) -> Result<Download, ApiError> {
    let loops = api::export_loops(loops, 1)?;
    let (_, session) = h.session(id).await?;
    Ok(Download {
        bytes: keyboardia_audio::midi::session_to_midi(&session, loops),
        content_type: "audio/midi",
        disposition: api::attachment(&session.name, "mid"),
    })
}

/// `POST /api/sessions/{id}/remix` and `/publish`: a new session from the source's current
/// state (stopped), with the metadata `kind` asks for; a remix is counted on the source.
pub async fn copy<H: Host>(
    h: &H,
    source: Uuid,
    kind: CopyKind,
    now_ms: i64,
) -> Result<Value, ApiError> {
    let (_, state) = h.session(source).await?;
    let meta = api::new_meta(Uuid::new_v4(), now_ms, kind, Some(source));
    let mut copy = state.stopped();
    if kind == CopyKind::Remix {
        copy.name = api::remix_name(&copy.name);
    }
    let created = h.create(meta, copy).await?;
    if kind == CopyKind::Remix {
        h.count_remix(source).await?;
    }
    Ok(created)
}

fn internal(h: &impl Host, failure: String) -> ApiError {
    h.report(&failure);
    ApiError::internal()
}
