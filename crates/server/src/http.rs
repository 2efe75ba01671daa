//! The HTTP API: sessions, remix, publish, recordings, samples, health, metrics, the app.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use keyboardia_api::Host;
use keyboardia_core::api::{self, parse_id, CopyKind};
use keyboardia_core::limits::{MAX_JSON_BODY_BYTES, MAX_RECORDING_BYTES};
use keyboardia_core::model::{SessionMeta, SessionState};
use keyboardia_core::protocol::{Applied, Change};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::{internal, ApiError};
use crate::sessions::now_ms;
use crate::AppState;

/// Reads a body, counting the bytes actually received against `limit` (Content-Length is only
/// a hint).
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| api::ApiError::too_large(limit).into())
}

/// Per-address rate limit for requests that create things.
pub fn check_rate(state: &AppState, addr: SocketAddr) -> Result<(), ApiError> {
    if state.limiter.allow(addr.ip(), now_ms()) {
        Ok(())
    } else {
        state.metrics.http_rate_limited_total.inc();
        Err(api::ApiError::rate_limited().into())
    }
}

/// The native host's side of `keyboardia_api`: sessions through their coordinators, SQLite,
/// the blob directory.
impl keyboardia_api::Host for AppState {
    async fn session(&self, id: Uuid) -> Result<(SessionMeta, SessionState), api::ApiError> {
        let meta = self
            .sessions
            .meta(id)
            .await
            .map_err(|e| ApiError::from(e).0)?;
        let (state, _) = self
            .sessions
            .get(id)
            .await
            .map_err(|e| ApiError::from(e).0)?;
        Ok(((*meta).clone(), state))
    }

    async fn apply_change(&self, id: Uuid, change: Change) -> Result<Applied, api::ApiError> {
        match self.sessions.change(id, change).await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => Err(ApiError::from(e).0),
            Err(e) => Err(ApiError::from(e).0),
        }
    }

    async fn create(&self, meta: SessionMeta, state: SessionState) -> Result<Value, api::ApiError> {
        let doc = api::created_doc(&meta, &state);
        self.sessions
            .store()
            .create(meta, state)
            .await
            .map_err(|e| internal(e).0)?;
        self.metrics.sessions_created_total.inc();
        Ok(doc)
    }

    async fn count_remix(&self, id: Uuid) -> Result<(), api::ApiError> {
        self.sessions
            .store()
            .increment_remix(id)
            .await
            .map_err(|e| internal(e).0)
    }

    async fn blob_get(&self, key: &str) -> Result<Option<Vec<u8>>, api::ApiError> {
        self.blobs.get(key).await.map_err(|e| internal(e).0)
    }

    async fn blob_put(&self, key: &str, bytes: Vec<u8>, _type: &str) -> Result<(), api::ApiError> {
        self.blobs.put(key, bytes).await.map_err(|e| internal(e).0)
    }

    fn report(&self, failure: &str) {
        tracing::error!(error = failure, "internal error");
    }
}

fn created(doc: Value) -> (StatusCode, Json<Value>) {
    (StatusCode::CREATED, Json(doc))
}

pub async fn create_session(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    check_rate(&state, addr)?;
    let bytes = read_body(req.into_body(), MAX_JSON_BODY_BYTES).await?;
    let session = api::new_session_state(&bytes)?;
    let meta = api::new_meta(Uuid::new_v4(), now_ms() as i64, CopyKind::New, None);
    Ok(created(state.create(meta, session).await?))
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
        .ok_or(api::ApiError::no_session(id))?;
    Ok(Json(api::session_doc(&meta, &session, seq)))
}

pub async fn patch_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let bytes = read_body(req.into_body(), MAX_JSON_BODY_BYTES).await?;
    let edit = api::patch_edit(&bytes)?;
    state.sessions.edit(id, edit).await??;
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
    let limit = api::list_limit(q.limit)?;
    let before = match &q.cursor {
        None => None,
        Some(c) => {
            let bad = || api::ApiError::bad_request("invalid cursor");
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
    Ok(Json(api::list_doc(&items, next)))
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
    Ok(created(
        keyboardia_api::copy(state, id, kind, now_ms() as i64).await?,
    ))
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
    let bytes = read_body(req.into_body(), MAX_RECORDING_BYTES).await?;
    let body =
        keyboardia_api::upload_recording(&state, id, q.name.as_deref(), bytes.to_vec()).await?;
    Ok(created(body))
}

#[derive(Deserialize)]
pub struct ExportQuery {
    loops: Option<u32>,
    tail: Option<String>,
}

/// The session rendered to a WAV file by the same engine that plays it in the browser: one full
/// cycle of every track (`loops` times, default 2) and a short tail.
pub async fn export_wav(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    // Rendering takes a while: off the async threads.
    let rt = tokio::runtime::Handle::current();
    let d = tokio::task::spawn_blocking(move || {
        rt.block_on(keyboardia_api::export_wav(
            &state,
            id,
            q.loops,
            q.tail.as_deref(),
        ))
    })
    .await
    .map_err(internal)??;
    Ok(download(d))
}

/// The session's pattern as a Standard MIDI File.
pub async fn export_midi(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    Ok(download(
        keyboardia_api::export_midi(&state, id, q.loops).await?,
    ))
}

/// A file to save: its bytes, type and `Content-Disposition`.
fn download(d: keyboardia_api::Download) -> Response {
    (
        [
            (header::CONTENT_TYPE, d.content_type.to_string()),
            (header::CONTENT_DISPOSITION, d.disposition),
        ],
        d.bytes,
    )
        .into_response()
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
    let svg = api::share_qr_svg(scheme, host, id)?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

pub async fn get_sample(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let key = api::sample_key(&path)?;
    let bytes = state
        .blobs
        .get(&key)
        .await
        .map_err(|_| api::ApiError::bad_request(format!("{path:?} is not a valid sample path")))?
        .ok_or_else(|| api::ApiError::not_found(format!("no sample at {path:?}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, api::blob_content_type(&key)),
            (header::CACHE_CONTROL, api::sample_cache_control(&key)),
        ],
        bytes,
    )
        .into_response())
}

pub async fn instruments() -> Json<Value> {
    Json(keyboardia_api::instruments())
}

pub async fn instrument(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(keyboardia_api::instrument(&state, &id).await?))
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
    api::ApiError::not_found("no such API endpoint").into()
}

pub async fn method_not_allowed() -> ApiError {
    api::ApiError::new(
        405,
        "METHOD_NOT_ALLOWED",
        "this API endpoint does not take that method",
    )
    .into()
}

/// The web app (see [`crate::assets`]): its files, `index.html` for app routes such as
/// `/s/{id}`, or a small page saying the app is not built when there is none.
pub async fn app(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().trim_start_matches('/');
    // `/api` and `/api/` themselves are API paths too: a JSON 404, never the app's page.
    if path == "api" || path.starts_with("api/") {
        return api_not_found().await.into_response();
    }
    if let Some(r) = state.web.respond(path, req.headers()).await {
        return r;
    }
    Html(PLACEHOLDER).into_response()
}

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Keyboardia</title>
<style>body{font-family:system-ui,sans-serif;background:#111318;color:#e8e8ef;display:grid;place-items:center;min-height:100vh;margin:0}
main{max-width:36rem;padding:2rem}code{background:#23262f;padding:.1rem .3rem;border-radius:4px}</style></head>
<body><main><h1>Keyboardia</h1>
<p>The server is running. The web app is not built into this server yet, so there is no grid to show:
start it with <code>cargo xtask run</code>, or give it a build with <code>--web-dir</code>.</p>
<p>The API is live: <code>POST /api/sessions</code> creates a session, and
<code>GET /api/sessions/{id}/ws</code> joins it. See docs/PROTOCOL.md.</p></main></body></html>
"#;
