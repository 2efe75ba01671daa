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
) -> Result<Download, ApiError> {
    let loops = api::export_loops(loops, 2)?;
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
    let pcm = keyboardia_audio::offline::render_session(&session, api::EXPORT_RATE, loops, samples);
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
