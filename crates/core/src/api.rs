//! The HTTP API's rules, shared by both hosts: what a request must look like, what a session
//! document and a gallery entry contain, how remix and publish derive a new session, which sample
//! paths are allowed, and the one error shape (`{error, details}` with a status).
//!
//! The hosts parse URLs and move bodies; every decision about a request's content is made here,
//! so the native server and the Cloudflare Worker cannot drift apart.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::limits::{SESSION_NAME_MAX_CHARS, TRACK_NAME_MAX_CHARS};
use crate::model::{check_name, SessionMeta, SessionState};
use crate::protocol::{Edit, EditError};

/// An API error: HTTP status, a stable machine-readable code, a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {details}")]
pub struct ApiError {
    pub status: u16,
    pub error: &'static str,
    pub details: String,
}

impl ApiError {
    pub fn new(status: u16, error: &'static str, details: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            details: details.into(),
        }
    }
    pub fn bad_request(details: impl Into<String>) -> ApiError {
        ApiError::new(400, "BAD_REQUEST", details)
    }
    pub fn not_found(details: impl Into<String>) -> ApiError {
        ApiError::new(404, "NOT_FOUND", details)
    }
    pub fn no_session(id: Uuid) -> ApiError {
        ApiError::not_found(format!("no session with id {id}"))
    }
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            413,
            "TOO_LARGE",
            format!("the request body is larger than {limit} bytes"),
        )
    }
    pub fn rate_limited() -> ApiError {
        ApiError::new(
            429,
            "RATE_LIMITED",
            "too many requests from this address; try again in a few seconds",
        )
    }
    pub fn invalid_audio(details: impl Into<String>) -> ApiError {
        ApiError::new(415, "INVALID_AUDIO", details)
    }
    pub fn unavailable(details: impl Into<String>) -> ApiError {
        ApiError::new(503, "UNAVAILABLE", details)
    }
    /// The details of internal errors stay in the host's log.
    pub fn internal() -> ApiError {
        ApiError::new(
            500,
            "INTERNAL",
            "something went wrong on the server; nothing was changed",
        )
    }

    /// The JSON body every error response carries.
    pub fn body(&self) -> Value {
        json!({ "error": self.error, "details": self.details })
    }

    /// Reads an error body back (a host forwarding an answer from its coordinator).
    pub fn from_body(status: u16, body: &Value) -> ApiError {
        let code = body["error"].as_str().unwrap_or("INTERNAL");
        let error = KNOWN_CODES
            .iter()
            .find(|c| **c == code)
            .copied()
            .unwrap_or("INTERNAL");
        ApiError::new(status, error, body["details"].as_str().unwrap_or_default())
    }
}

const KNOWN_CODES: &[&str] = &[
    "BAD_REQUEST",
    "NOT_FOUND",
    "TOO_LARGE",
    "RATE_LIMITED",
    "INVALID_AUDIO",
    "UNAVAILABLE",
    "INTERNAL",
    "READ_ONLY",
    "INVALID_EDIT",
    "CONFLICT",
    "BAD_ORIGIN",
];

impl From<EditError> for ApiError {
    fn from(e: EditError) -> ApiError {
        match e {
            EditError::ReadOnly => ApiError::new(403, "READ_ONLY", e.to_string()),
            e => ApiError::new(400, "INVALID_EDIT", e.to_string()),
        }
    }
}

pub fn parse_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s)
        .map_err(|_| ApiError::bad_request(format!("{s:?} is not a valid session id (a UUID)")))
}

pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// The public JSON document of a session: metadata, state and the seq it reflects. Built from
/// the typed values and read back, so every number is encoded as the WebSocket encodes it (a
/// volume of 0.8 is `0.8`, not the `0.800000011920929` that widening its `f32` gives).
pub fn session_doc(meta: &SessionMeta, state: &SessionState, seq: u64) -> Value {
    #[derive(Serialize)]
    struct Doc<'a> {
        #[serde(flatten)]
        meta: &'a SessionMeta,
        #[serde(flatten)]
        state: &'a SessionState,
        seq: u64,
    }
    canonical_value(&Doc { meta, state, seq })
}

/// A value as JSON through its own `Serialize` (never `serde_json::to_value`, which widens an
/// `f32` to the nearest `f64`), ready to be embedded in other JSON.
pub fn canonical_value<T: Serialize>(v: &T) -> Value {
    let text = serde_json::to_string(v).expect("serializes");
    serde_json::from_str(&text).expect("JSON reads back")
}

/// The body of `201 Created` for a new session.
pub fn created_doc(meta: &SessionMeta, state: &SessionState) -> Value {
    json!({
        "id": meta.id,
        "url": format!("/s/{}", meta.id),
        "session": session_doc(meta, state, 0),
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: Option<String>,
}

/// `POST /api/sessions`: the starter beat, named if the (optional) body names it.
pub fn new_session_state(body: &[u8]) -> Result<SessionState, ApiError> {
    let body: CreateBody = if body.iter().all(u8::is_ascii_whitespace) {
        CreateBody::default()
    } else {
        parse_json(body)?
    };
    let mut session = SessionState::starter();
    if let Some(name) = body.name {
        session.name = check_name("name", &name, SESSION_NAME_MAX_CHARS, true)
            .map_err(|e| ApiError::bad_request(e.0))?;
    }
    Ok(session)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    name: String,
}

/// `PATCH /api/sessions/{id}`: the edit it asks for (applied by the live session like any other).
pub fn patch_edit(body: &[u8]) -> Result<Edit, ApiError> {
    let body: PatchBody = parse_json(body)?;
    Ok(Edit::SetSessionName { name: body.name })
}

/// How a new session derives from an existing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyKind {
    /// A fresh session (the starter beat).
    New,
    /// An editable copy that records where it came from.
    Remix,
    /// An immutable snapshot; the source stays editable.
    Publish,
}

/// The name of a remix of a session named `name`: says it is a copy ("Remix of ..."), once
/// (a remix of a remix keeps one prefix), within the name limit.
pub fn remix_name(name: &str) -> String {
    const PREFIX: &str = "Remix of ";
    let base = name.trim();
    let base = if base.is_empty() {
        "Untitled beat"
    } else {
        base
    };
    if base.starts_with(PREFIX) {
        return base.to_string();
    }
    let room = crate::limits::SESSION_NAME_MAX_CHARS - PREFIX.chars().count();
    let mut out = String::from(PREFIX);
    out.extend(base.chars().take(room));
    out
}

/// The metadata of a new session `id` created at `now` (ms), derived from `source` by `kind`.
pub fn new_meta(id: Uuid, now: i64, kind: CopyKind, source: Option<Uuid>) -> SessionMeta {
    let (remixed_from, immutable, published_from) = match kind {
        CopyKind::New => (None, false, None),
        CopyKind::Remix => (source, false, None),
        CopyKind::Publish => (None, true, source),
    };
    SessionMeta {
        id,
        created_at: now,
        last_accessed_at: now,
        remixed_from,
        remix_count: 0,
        immutable,
        published_from,
    }
}

/// One published session in the gallery listing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub id: Uuid,
    pub name: String,
    pub tempo: u16,
    pub track_count: u32,
    pub created_at: i64,
    pub remix_count: u32,
    pub published_from: Option<Uuid>,
}

impl Summary {
    pub fn of(meta: &SessionMeta, state: &SessionState) -> Summary {
        Summary {
            id: meta.id,
            name: state.name.clone(),
            tempo: state.tempo,
            track_count: state.tracks.len() as u32,
            created_at: meta.created_at,
            remix_count: meta.remix_count,
            published_from: meta.published_from,
        }
    }
}

/// The gallery page size from `?limit=`: 1 to 100, default 20.
pub fn list_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(20);
    if (1..=100).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request("limit must be between 1 and 100"))
    }
}

/// The gallery page body.
pub fn list_doc(items: &[Summary], next_cursor: Option<String>) -> Value {
    json!({ "sessions": items, "nextCursor": next_cursor })
}

/// How many full cycles an export covers (`?loops=`): 1 to 8.
pub fn export_loops(loops: Option<u32>, default: u32) -> Result<u32, ApiError> {
    let loops = loops.unwrap_or(default);
    if (1..=8).contains(&loops) {
        Ok(loops)
    } else {
        Err(ApiError::bad_request("loops must be between 1 and 8"))
    }
}

/// Sample rate of exported WAV files.
pub const EXPORT_RATE: f32 = 44_100.0;

/// Whether an export keeps the tail after its last loop (`?tail=`, default on): `1`/`true`/`on`
/// or `0`/`false`/`off`.
pub fn export_tail(tail: Option<&str>) -> Result<bool, ApiError> {
    match tail.map(str::to_ascii_lowercase).as_deref() {
        None | Some("1") | Some("true") | Some("on") => Ok(true),
        Some("0") | Some("false") | Some("off") => Ok(false),
        Some(other) => Err(ApiError::bad_request(format!(
            "tail must be 1 (keep what rings after the last loop) or 0 (a seamless loop), not {other:?}"
        ))),
    }
}

/// `Content-Disposition` for a download of the session named `name` with extension `ext`:
/// a file name of letters, digits and dashes.
pub fn attachment(name: &str, ext: &str) -> String {
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
    let file = if file.trim_matches('_').is_empty() {
        "keyboardia".to_string()
    } else {
        file
    };
    format!("attachment; filename=\"{file}.{ext}\"")
}

/// The recording name from `?name=` (default "Recording").
pub fn recording_name(name: Option<&str>) -> Result<String, ApiError> {
    check_name(
        "name",
        name.unwrap_or("Recording"),
        TRACK_NAME_MAX_CHARS,
        false,
    )
    .map_err(|e| ApiError::bad_request(e.0))
}

/// A new recording's sample id and blob key in the seed's layout.
pub fn recording_key(session: Uuid, sample_id: Uuid) -> (String, String) {
    let sample_id = sample_id.simple().to_string();
    let key = format!("recordings/{session}/{sample_id}.wav");
    (sample_id, key)
}

/// The blob key of a path under `/api/samples/`: recordings keep their own prefix, everything
/// else is a built-in sample under `samples/`. Anything that could leave the store (`..`, empty
/// or odd segments) is refused.
pub fn sample_key(url_path: &str) -> Result<String, ApiError> {
    let key = if url_path.starts_with("recordings/") || url_path.starts_with("samples/") {
        url_path.to_string()
    } else {
        format!("samples/{url_path}")
    };
    if blob_key_ok(&key) {
        Ok(key)
    } else {
        Err(ApiError::bad_request(format!(
            "{url_path:?} is not a valid sample path"
        )))
    }
}

/// A blob key is relative and made of safe segments only.
pub fn blob_key_ok(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

/// The content type of a blob, from its extension.
pub fn blob_content_type(key: &str) -> &'static str {
    match key.rsplit('.').next() {
        Some("wav") => "audio/wav",
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        Some("json") => "application/json",
        Some("flac") => "audio/flac",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Cache policy of samples: a key never changes content.
pub const SAMPLE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Cache policy of one sample-store key. The instrument library's manifests, credits and stamp
/// change with a new library at the same key: revalidated. Its audio files are fetched through
/// the URLs `GET /api/instruments/{id}` gives, which carry the library's version, so they (like
/// recordings and the kit) never change.
pub fn sample_cache_control(key: &str) -> &'static str {
    if key.ends_with(".json") || key.ends_with(".txt") || key.ends_with("/STAMP") {
        "no-cache"
    } else {
        SAMPLE_CACHE_CONTROL
    }
}

/// WebSocket upgrades from browsers (which send `Origin`) must come from this site (`host`) or
/// an allowed origin (`*` allows any). Clients that are not browsers send none and pass.
pub fn check_origin(origin: Option<&str>, host: &str, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = origin else {
        return Ok(());
    };
    if allowed.iter().any(|o| o == "*" || o == origin) {
        return Ok(());
    }
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
    if !host.is_empty() && origin_host == host {
        return Ok(());
    }
    Err(ApiError::new(
        403,
        "BAD_ORIGIN",
        format!("WebSocket connections from {origin} are not allowed"),
    ))
}

/// The link a QR code encodes.
pub fn share_url(scheme: &str, host: &str, id: Uuid) -> String {
    format!("{scheme}://{host}/s/{id}")
}

/// A QR code (SVG) of the session's link, for sharing to a phone. The host comes from the
/// request, so an absurdly long one is refused rather than trusted.
pub fn share_qr_svg(scheme: &str, host: &str, id: Uuid) -> Result<String, ApiError> {
    let url = share_url(scheme, host, id);
    let code = qrcode::QrCode::new(url.as_bytes())
        .map_err(|_| ApiError::bad_request("the link is too long for a QR code"))?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_keys_cannot_escape() {
        for bad in [
            "",
            "../etc/passwd",
            "recordings/../../etc/passwd",
            "a//b",
            "a/../b",
            "/abs",
            "a/./b",
            "a b",
            "a\\b",
        ] {
            assert!(sample_key(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            sample_key("drums/kick.wav").unwrap(),
            "samples/drums/kick.wav"
        );
        assert_eq!(
            sample_key("recordings/a/b.wav").unwrap(),
            "recordings/a/b.wav"
        );
    }

    #[test]
    fn errors_round_trip_through_their_body() {
        let e = ApiError::from(EditError::ReadOnly);
        assert_eq!(ApiError::from_body(e.status, &e.body()), e);
        let odd = ApiError::from_body(500, &json!({"error": "WHAT", "details": "x"}));
        assert_eq!(odd.error, "INTERNAL");
    }

    #[test]
    fn derived_sessions_say_where_they_came_from() {
        let src = Uuid::from_u128(1);
        let id = Uuid::from_u128(2);
        let r = new_meta(id, 5, CopyKind::Remix, Some(src));
        assert_eq!(
            (r.remixed_from, r.immutable, r.published_from),
            (Some(src), false, None)
        );
        let p = new_meta(id, 5, CopyKind::Publish, Some(src));
        assert_eq!(
            (p.remixed_from, p.immutable, p.published_from),
            (None, true, Some(src))
        );
        assert_eq!(
            attachment("Funky Groove!", "wav"),
            "attachment; filename=\"Funky_Groove_.wav\""
        );
        assert_eq!(
            attachment("???", "mid"),
            "attachment; filename=\"keyboardia.mid\""
        );
    }
}

#[cfg(test)]
mod remix_name_tests {
    use super::remix_name;
    use crate::limits::SESSION_NAME_MAX_CHARS;

    #[test]
    fn a_remix_says_it_is_a_copy_once_and_fits() {
        assert_eq!(remix_name("Funky Groove"), "Remix of Funky Groove");
        assert_eq!(remix_name("Remix of Funky Groove"), "Remix of Funky Groove");
        assert_eq!(remix_name("  "), "Remix of Untitled beat");
        let long = "x".repeat(SESSION_NAME_MAX_CHARS);
        assert_eq!(remix_name(&long).chars().count(), SESSION_NAME_MAX_CHARS);
    }
}
