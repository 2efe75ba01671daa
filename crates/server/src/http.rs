//! The HTTP API: sessions, remix, publish, recordings, samples, health, metrics, the app.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use keyboardia_core::limits::{MAX_JSON_BODY_BYTES, MAX_RECORDING_BYTES, SESSION_NAME_MAX_CHARS};
use keyboardia_core::model::{check_name, SampleRef, SessionMeta, SessionState};
use keyboardia_core::protocol::{Change, Edit};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::ApiError;
use crate::sessions::now_ms;
use crate::AppState;

pub fn parse_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s)
        .map_err(|_| ApiError::bad_request(format!("{s:?} is not a valid session id (a UUID)")))
}

/// Reads a body, counting the bytes actually received against `limit` (Content-Length is only
/// a hint).
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Per-address rate limit for requests that create things.
pub fn check_rate(state: &AppState, addr: SocketAddr) -> Result<(), ApiError> {
    if state.limiter.allow(addr.ip(), now_ms()) {
        Ok(())
    } else {
        state.metrics.http_rate_limited_total.inc();
        Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "too many requests from this address; try again in a few seconds",
        ))
    }
}

/// The public JSON document of a session: metadata, state and the seq it reflects.
pub fn session_doc(meta: &SessionMeta, state: &SessionState, seq: u64) -> Value {
    let mut v = serde_json::to_value(meta).expect("meta serializes");
    let s = serde_json::to_value(state).expect("state serializes");
    if let (Value::Object(m), Value::Object(s)) = (&mut v, s) {
        m.extend(s);
        m.insert("seq".into(), json!(seq));
    }
    v
}

async fn create_session_row(
    state: &AppState,
    session: SessionState,
    remixed_from: Option<Uuid>,
    immutable: bool,
    published_from: Option<Uuid>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let now = now_ms() as i64;
    let meta = SessionMeta {
        id: Uuid::new_v4(),
        created_at: now,
        last_accessed_at: now,
        remixed_from,
        remix_count: 0,
        immutable,
        published_from,
    };
    state
        .sessions
        .store()
        .create(meta.clone(), session.clone())
        .await?;
    state.metrics.sessions_created_total.inc();
    let body = json!({
        "id": meta.id,
        "url": format!("/s/{}", meta.id),
        "session": session_doc(&meta, &session, 0),
    });
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: Option<String>,
}

pub async fn create_session(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    check_rate(&state, addr)?;
    let bytes = read_body(req.into_body(), MAX_JSON_BODY_BYTES).await?;
    let body: CreateBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        CreateBody::default()
    } else {
        parse_json(&bytes)?
    };
    let mut session = SessionState::starter();
    if let Some(name) = body.name {
        session.name = check_name("name", &name, SESSION_NAME_MAX_CHARS, true)
            .map_err(|e| ApiError::bad_request(e.0))?;
    }
    create_session_row(&state, session, None, false, None).await
}

pub async fn get_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let (session, seq) = state.sessions.get(id).await?;
    let meta = state
        .sessions
        .store()
        .meta(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no session with id {id}")))?;
    Ok(Json(session_doc(&meta, &session, seq)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    name: String,
}

pub async fn patch_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let bytes = read_body(req.into_body(), MAX_JSON_BODY_BYTES).await?;
    let body: PatchBody = parse_json(&bytes)?;
    state
        .sessions
        .edit(id, Edit::SetSessionName { name: body.name })
        .await??;
    get_session(State(state), Path(id.to_string())).await
}

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Published sessions, newest first. `cursor` is opaque: `{createdAt}_{id}` of the last item.
pub async fn list_sessions(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 100"));
    }
    let before = match &q.cursor {
        None => None,
        Some(c) => {
            let bad = || ApiError::bad_request("invalid cursor");
            let (t, id) = c.split_once('_').ok_or_else(bad)?;
            Some((
                t.parse().map_err(|_| bad())?,
                Uuid::parse_str(id).map_err(|_| bad())?,
            ))
        }
    };
    let items = state.sessions.store().list_published(limit, before).await?;
    let next = (items.len() as u32 == limit)
        .then(|| items.last().map(|s| format!("{}_{}", s.created_at, s.id)))
        .flatten();
    Ok(Json(json!({ "sessions": items, "nextCursor": next })))
}

/// How a new session derives from an existing one.
#[derive(Clone, Copy)]
enum CopyKind {
    /// An editable copy that records where it came from.
    Remix,
    /// An immutable snapshot; the source stays editable.
    Publish,
}

/// Copies the live state of a session (playback stopped) into a new session.
async fn copy_session(
    state: &AppState,
    addr: SocketAddr,
    id: &str,
    kind: CopyKind,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = parse_id(id)?;
    check_rate(state, addr)?;
    let (source, _) = state.sessions.get(id).await?;
    let (remixed_from, immutable, published_from) = match kind {
        CopyKind::Remix => (Some(id), false, None),
        CopyKind::Publish => (None, true, Some(id)),
    };
    let created = create_session_row(
        state,
        source.stopped(),
        remixed_from,
        immutable,
        published_from,
    )
    .await?;
    if let CopyKind::Remix = kind {
        state.sessions.store().increment_remix(id).await?;
    }
    Ok(created)
}

pub async fn remix_session(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    copy_session(&state, addr, &id, CopyKind::Remix).await
}

pub async fn publish_session(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    copy_session(&state, addr, &id, CopyKind::Publish).await
}

#[derive(Deserialize)]
pub struct RecordingQuery {
    name: Option<String>,
}

/// Stores an uploaded WAV recording and announces it to the session's players.
pub async fn upload_recording(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Query(q): Query<RecordingQuery>,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&id)?;
    check_rate(&state, addr)?;
    let meta = state.sessions.meta(id).await?;
    if meta.immutable {
        return Err(crate::sessions::ApplyError::Edit(
            keyboardia_core::protocol::EditError::ReadOnly,
        )
        .into());
    }
    let bytes = read_body(req.into_body(), MAX_RECORDING_BYTES).await?;
    let info = crate::recordings::validate_wav(&bytes)
        .map_err(|e| ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "INVALID_AUDIO", e))?;
    let name = check_name(
        "name",
        q.name.as_deref().unwrap_or("Recording"),
        keyboardia_core::limits::TRACK_NAME_MAX_CHARS,
        false,
    )
    .map_err(|e| ApiError::bad_request(e.0))?;
    let sample_id = Uuid::new_v4().simple().to_string();
    let path = format!("recordings/{id}/{sample_id}.wav");
    state.blobs.put(&path, bytes.to_vec()).await?;
    let sample = SampleRef {
        id: sample_id,
        name,
        path,
        duration_ms: info.duration_ms,
    };
    let applied = state
        .sessions
        .change(
            id,
            Change::SampleAdded {
                sample: sample.clone(),
            },
        )
        .await??;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "sample": sample,
            "url": format!("/api/samples/{}", sample.path),
            "instrument": sample.instrument(),
            "seq": applied.seq,
        })),
    ))
}

#[derive(Deserialize)]
pub struct ExportQuery {
    loops: Option<u32>,
}

impl ExportQuery {
    /// How many full cycles to export: 1 to 8.
    fn loops(&self, default: u32) -> Result<u32, ApiError> {
        let loops = self.loops.unwrap_or(default);
        if (1..=8).contains(&loops) {
            Ok(loops)
        } else {
            Err(ApiError::bad_request("loops must be between 1 and 8"))
        }
    }
}

/// Sample rate of exported WAV files.
const EXPORT_RATE: f32 = 44_100.0;

/// The session rendered to a WAV file by the same engine that plays it in the browser: one full
/// cycle of every track (`loops` times, default 2) and a short tail.
pub async fn export_wav(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let loops = q.loops(2)?;
    let (session, _) = state.sessions.get(id).await?;
    // The recordings the tracks use, decoded from the sample store.
    let mut samples = Vec::new();
    for smp in &session.samples {
        let used = session
            .tracks
            .iter()
            .any(|t| t.instrument == smp.instrument());
        if !used {
            continue;
        }
        let bytes = state
            .blobs
            .get(&smp.path)
            .await
            .map_err(|_| ApiError::internal("bad sample path in session"))?
            .ok_or_else(|| ApiError::internal(format!("recording {} is missing", smp.path)))?;
        let (pcm, rate) = crate::recordings::decode_mono(&bytes).map_err(ApiError::internal)?;
        samples.push(keyboardia_audio::offline::LoadedSample {
            id: smp.id.clone(),
            pcm,
            rate,
        });
    }
    let file = download_name(&session.name);
    let wav = tokio::task::spawn_blocking(move || {
        let pcm = keyboardia_audio::offline::render_session(&session, EXPORT_RATE, loops, samples);
        keyboardia_audio::offline::to_wav(&pcm)
    })
    .await
    .map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}.wav\""),
            ),
        ],
        wav,
    )
        .into_response())
}

/// The session's pattern as a Standard MIDI File.
pub async fn export_midi(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let loops = q.loops(1)?;
    let (session, _) = state.sessions.get(id).await?;
    let file = download_name(&session.name);
    let bytes = keyboardia_audio::midi::session_to_midi(&session, loops);
    Ok((
        [
            (header::CONTENT_TYPE, "audio/midi".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}.mid\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// A QR code (SVG) of the session's link, for sharing to a phone.
pub async fn session_qr(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    state.sessions.meta(id).await?;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http");
    let url = format!("{scheme}://{host}/s/{id}");
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(ApiError::internal)?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// A file name from a session name: letters, digits and dashes.
fn download_name(name: &str) -> String {
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if file.trim_matches('_').is_empty() {
        "keyboardia".to_string()
    } else {
        file
    }
}

pub async fn get_sample(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let key = crate::blobs::key_for_url_path(&path);
    let bytes = state
        .blobs
        .get(&key)
        .await
        .map_err(|_| ApiError::bad_request(format!("{path:?} is not a valid sample path")))?
        .ok_or_else(|| ApiError::not_found(format!("no sample at {path:?}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, crate::blobs::content_type(&key)),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        bytes,
    )
        .into_response())
}

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

pub async fn api_not_found() -> ApiError {
    ApiError::not_found("no such API endpoint")
}

/// The web app: files from `--web-dir` when it has a build, else a small page saying the UI is
/// not built yet. `/s/{id}` and other app routes get `index.html`.
pub async fn app(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().trim_start_matches('/');
    if let Some(dir) = &state.web_dir {
        let safe = !path.split('/').any(|s| s == ".." || s.starts_with('.'));
        let file = if path.is_empty() || !safe {
            dir.join("index.html")
        } else {
            dir.join(path)
        };
        if let Ok(bytes) = tokio::fs::read(&file).await {
            return ([(header::CONTENT_TYPE, content_type_for(&file))], bytes).into_response();
        }
        if let Ok(bytes) = tokio::fs::read(dir.join("index.html")).await {
            return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], bytes).into_response();
        }
    }
    Html(PLACEHOLDER).into_response()
}

fn content_type_for(p: &std::path::Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript",
        Some("css") => "text/css",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("wav") => "audio/wav",
        _ => "application/octet-stream",
    }
}

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Keyboardia</title>
<style>body{font-family:system-ui,sans-serif;background:#111318;color:#e8e8ef;display:grid;place-items:center;min-height:100vh;margin:0}
main{max-width:36rem;padding:2rem}code{background:#23262f;padding:.1rem .3rem;border-radius:4px}</style></head>
<body><main><h1>Keyboardia</h1>
<p>The server is running. The web app is not built into this server yet, so there is no grid to show.</p>
<p>The API is live: <code>POST /api/sessions</code> creates a session, and
<code>GET /api/sessions/{id}/ws</code> joins it. See docs/PROTOCOL.md.</p></main></body></html>
"#;
