//! # keyboardia-worker
//!
//! The Cloudflare host: the same HTTP API and WebSocket protocol as the native server, on
//! Workers. It drives the same core; it only translates between the core and the platform.
//!
//! - [`fetch`] (this file) is the Worker: it routes `/api/...`, forwards each session's requests
//!   and WebSocket upgrades to that session's Durable Object, reads the gallery from KV, keeps
//!   samples and recordings in R2, and serves the web app from Workers Assets.
//! - [`live`] is the LiveSession Durable Object (hibernating WebSockets, DO SQLite, alarms).
//! - [`store`] is its storage: DO SQLite and the KV index.
//!
//! Bindings, as the seed names them: `ASSETS`, `SESSIONS` (KV), `LIVE_SESSIONS` (Durable
//! Object), `SAMPLES` (R2). Build and run: `cargo xtask worker dev` (see the README).

use std::cell::RefCell;

use keyboardia_api::Host;
use keyboardia_core::api::{self, ApiError, CopyKind};
use keyboardia_core::limits::{MAX_JSON_BODY_BYTES, MAX_RECORDING_BYTES};
use keyboardia_core::model::{SessionMeta, SessionState};
use keyboardia_core::protocol::{Applied, Change};
use keyboardia_core::rate::AddressLimiter;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;
use worker::{event, Context, Date, Env, Headers, Method, Request, RequestInit, Response, Result};

pub mod live;
pub mod store;

/// Durable Object binding of the live sessions.
const LIVE_SESSIONS: &str = "LIVE_SESSIONS";
/// R2 binding of samples and recordings.
const SAMPLES: &str = "SAMPLES";
/// Workers Assets binding of the web app.
const ASSETS: &str = "ASSETS";

/// A JSON response with a status.
pub fn json_response(status: u16, body: &Value) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

/// The response for an API error: `{error, details}` with its status.
pub fn error_response(e: &ApiError) -> Result<Response> {
    let mut res = json_response(e.status, &e.body())?;
    if e.status == 413 {
        res.headers_mut().set("connection", "close")?;
    }
    Ok(res)
}

/// An internal error: logged, reported to the client without details.
pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    worker::console_error!("internal error: {e}");
    ApiError::internal()
}

type ApiResult = std::result::Result<Response, ApiError>;

#[event(fetch)]
pub async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let cors = cors_origin(&req, &env);
    if req.method() == Method::Options {
        return preflight(cors);
    }
    let path = req.path();
    let mut res = if path == "/healthz" {
        json_response(200, &json!({ "status": "ok" }))?
    } else if let Some(rest) = path.strip_prefix("/api/") {
        let rest = rest.to_string();
        match route(req, &env, &rest).await {
            Ok(res) => res,
            Err(e) => error_response(&e)?,
        }
    } else {
        return app(req, &env).await;
    };
    if let Some(origin) = cors {
        // A WebSocket upgrade's headers cannot be changed (and need no CORS).
        if res.status_code() != 101 {
            res.headers_mut()
                .set("access-control-allow-origin", &origin)?;
        }
    }
    Ok(res)
}

/// The `Access-Control-Allow-Origin` for this request, if its origin may call the API
/// (`CORS_ORIGINS`: a comma-separated list, `*` for any).
fn cors_origin(req: &Request, env: &Env) -> Option<String> {
    let origin = req.headers().get("origin").ok().flatten()?;
    let allowed = list_var(env, "CORS_ORIGINS");
    if allowed.iter().any(|o| o == "*") {
        Some("*".into())
    } else if allowed.contains(&origin) {
        Some(origin)
    } else {
        None
    }
}

fn list_var(env: &Env, name: &str) -> Vec<String> {
    env.var(name)
        .map(|v| v.to_string())
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn preflight(origin: Option<String>) -> Result<Response> {
    let headers = Headers::new();
    if let Some(o) = origin {
        headers.set("access-control-allow-origin", &o)?;
        headers.set("access-control-allow-methods", "GET,POST,PATCH")?;
        headers.set("access-control-allow-headers", "content-type")?;
    }
    Ok(Response::empty()?.with_status(200).with_headers(headers))
}

async fn route(req: Request, env: &Env, rest: &str) -> ApiResult {
    let segs: Vec<&str> = rest.split('/').collect();
    let method = req.method();
    match (&method, segs.as_slice()) {
        (Method::Post, ["sessions"]) => create(req, env).await,
        (Method::Get, ["sessions"]) => list(&req, env).await,
        (Method::Get, ["sessions", id]) => forward(env, id, Method::Get, "doc", None).await,
        (Method::Patch, ["sessions", id]) => {
            let id = api::parse_id(id)?;
            let body = read_body(req, MAX_JSON_BODY_BYTES).await?;
            let edit = api::patch_edit(&body)?;
            let edit = serde_json::to_string(&edit).map_err(internal)?;
            forward(env, &id.to_string(), Method::Post, "edit", Some(edit)).await
        }
        (Method::Post, ["sessions", id, "remix"]) => copy(&req, env, id, CopyKind::Remix).await,
        (Method::Post, ["sessions", id, "publish"]) => copy(&req, env, id, CopyKind::Publish).await,
        (Method::Post, ["sessions", id, "recordings"]) => upload(req, env, id).await,
        (Method::Get, ["sessions", id, "ws"]) => socket(req, env, id).await,
        (Method::Get, ["sessions", id, "export.wav"]) => export_wav(&req, env, id).await,
        (Method::Get, ["sessions", id, "export.mid"]) => export_midi(&req, env, id).await,
        (Method::Get, ["sessions", id, "qr.svg"]) => qr(&req, env, id).await,
        (Method::Get, ["samples", path @ ..]) => sample(env, &path.join("/")).await,
        (Method::Get, ["instruments"]) => {
            json_response(200, &keyboardia_api::instruments()).map_err(internal)
        }
        (Method::Get, ["instruments", id @ ..]) => {
            let doc = keyboardia_api::instrument(&Cloudflare(env), &id.join("/")).await?;
            json_response(200, &doc).map_err(internal)
        }
        _ => Err(ApiError::not_found("no such API endpoint")),
    }
}

/// Reads a body, refusing more than `limit` bytes.
async fn read_body(mut req: Request, limit: usize) -> std::result::Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let bytes = req.bytes().await.map_err(internal)?;
    if bytes.len() > limit {
        return Err(ApiError::too_large(limit));
    }
    Ok(bytes)
}

/// Milliseconds since the Unix epoch (the platform's clock; it advances between events).
pub(crate) fn now_ms() -> f64 {
    Date::now().as_millis() as f64
}

thread_local! {
    /// Per-address token buckets for requests that create things (per isolate).
    static LIMITER: RefCell<Option<AddressLimiter<String>>> = const { RefCell::new(None) };
}

/// Per-address rate limit (`API_RATE` per second, `API_BURST`).
fn check_rate(req: &Request, env: &Env) -> std::result::Result<(), ApiError> {
    let num = |name: &str, default: f64| {
        env.var(name)
            .ok()
            .and_then(|v| v.to_string().parse::<f64>().ok())
            .unwrap_or(default)
    };
    let (rate, burst) = (num("API_RATE", 10.0), num("API_BURST", 60.0));
    let addr = req
        .headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .unwrap_or_default();
    let now = now_ms();
    let ok = LIMITER.with(|l| {
        l.borrow_mut()
            .get_or_insert_with(|| AddressLimiter::new(rate, burst, 10_000))
            .allow(addr, now)
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::rate_limited())
    }
}

/// Sends an operation to a session's Durable Object and returns its answer.
async fn call(
    env: &Env,
    id: &str,
    method: Method,
    op: &str,
    body: Option<String>,
) -> std::result::Result<Response, ApiError> {
    let id = api::parse_id(id)?;
    let stub = env
        .durable_object(LIVE_SESSIONS)
        .and_then(|ns| ns.get_by_name(&id.to_string()))
        .map_err(internal)?;
    let mut init = RequestInit::new();
    init.with_method(method);
    if op == "ws" {
        // The runtime hands a WebSocket back only to a request that asked for one.
        let headers = Headers::new();
        headers.set("upgrade", "websocket").map_err(internal)?;
        init.with_headers(headers);
    }
    if let Some(b) = body {
        init.with_body(Some(b.into()));
    }
    let url = format!("https://live/api/sessions/{id}/{op}");
    let req = Request::new_with_init(&url, &init).map_err(internal)?;
    stub.fetch_with_request(req).await.map_err(internal)
}

/// An operation's JSON answer, or its error.
async fn call_json(
    env: &Env,
    id: &str,
    method: Method,
    op: &str,
    body: Option<String>,
) -> std::result::Result<(u16, Value), ApiError> {
    let mut res = call(env, id, method, op, body).await?;
    let status = res.status_code();
    let body: Value = res.json().await.map_err(internal)?;
    if status >= 400 {
        return Err(ApiError::from_body(status, &body));
    }
    Ok((status, body))
}

/// Forwards an operation and passes its JSON answer through, with the header naming the object
/// instance that answered.
async fn forward(env: &Env, id: &str, method: Method, op: &str, body: Option<String>) -> ApiResult {
    let mut res = call(env, id, method, op, body).await?;
    let status = res.status_code();
    let instance = res.headers().get(live::INSTANCE_HEADER).ok().flatten();
    let body: Value = res.json().await.map_err(internal)?;
    if status >= 400 {
        return Err(ApiError::from_body(status, &body));
    }
    let mut res = json_response(status, &body).map_err(internal)?;
    if let Some(i) = instance {
        res.headers_mut()
            .set(live::INSTANCE_HEADER, &i)
            .map_err(internal)?;
    }
    Ok(res)
}

/// The Cloudflare host's side of `keyboardia_api`: sessions through their Durable Objects
/// (which also write the KV index), samples and recordings in R2.
struct Cloudflare<'a>(&'a Env);

impl keyboardia_api::Host for Cloudflare<'_> {
    async fn session(
        &self,
        id: Uuid,
    ) -> std::result::Result<(SessionMeta, SessionState), ApiError> {
        let (doc, state) = session_of(self.0, &id.to_string()).await?;
        let meta = serde_json::from_value(doc).map_err(internal)?;
        Ok((meta, state))
    }

    async fn apply_change(
        &self,
        id: Uuid,
        change: Change,
    ) -> std::result::Result<Applied, ApiError> {
        let change = serde_json::to_string(&change).map_err(internal)?;
        let (_, applied) = call_json(
            self.0,
            &id.to_string(),
            Method::Post,
            "change",
            Some(change),
        )
        .await?;
        serde_json::from_value(applied).map_err(internal)
    }

    async fn create(
        &self,
        meta: SessionMeta,
        state: SessionState,
    ) -> std::result::Result<Value, ApiError> {
        let id = meta.id.to_string();
        let body = json!({ "meta": meta, "state": api::canonical_value(&state) }).to_string();
        let (_, doc) = call_json(self.0, &id, Method::Post, "init", Some(body)).await?;
        Ok(doc)
    }

    async fn count_remix(&self, id: Uuid) -> std::result::Result<(), ApiError> {
        call_json(self.0, &id.to_string(), Method::Post, "remixed", None)
            .await
            .map(|_| ())
    }

    async fn blob_get(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, ApiError> {
        r2_get(self.0, key).await
    }

    async fn blob_put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> std::result::Result<(), ApiError> {
        let bucket = self.0.bucket(SAMPLES).map_err(internal)?;
        bucket
            .put(key, bytes)
            .http_metadata(worker::HttpMetadata {
                content_type: Some(content_type.into()),
                ..Default::default()
            })
            .execute()
            .await
            .map_err(internal)?;
        Ok(())
    }

    fn report(&self, failure: &str) {
        worker::console_error!("internal error: {failure}");
    }
}

async fn create(req: Request, env: &Env) -> ApiResult {
    check_rate(&req, env)?;
    let body = read_body(req, MAX_JSON_BODY_BYTES).await?;
    let state = api::new_session_state(&body)?;
    let meta = api::new_meta(Uuid::new_v4(), now_ms() as i64, CopyKind::New, None);
    let doc = Cloudflare(env).create(meta, state).await?;
    json_response(201, &doc).map_err(internal)
}

/// The live state of a session, from its object.
async fn session_of(env: &Env, id: &str) -> std::result::Result<(Value, SessionState), ApiError> {
    let (_, doc) = call_json(env, id, Method::Get, "doc", None).await?;
    let state = serde_json::from_value(doc.clone()).map_err(internal)?;
    Ok((doc, state))
}

async fn copy(req: &Request, env: &Env, id: &str, kind: CopyKind) -> ApiResult {
    let source = api::parse_id(id)?;
    check_rate(req, env)?;
    let doc = keyboardia_api::copy(&Cloudflare(env), source, kind, now_ms() as i64).await?;
    json_response(201, &doc).map_err(internal)
}

#[derive(Deserialize, Default)]
struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

fn query<T: serde::de::DeserializeOwned + Default>(
    req: &Request,
) -> std::result::Result<T, ApiError> {
    req.query()
        .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))
}

async fn list(req: &Request, env: &Env) -> ApiResult {
    let q: ListQuery = query(req)?;
    let limit = api::list_limit(q.limit)?;
    let (items, next) = store::list_published(env, limit, q.cursor)
        .await
        .map_err(|e| {
            // KV refuses cursors it did not make.
            ApiError::bad_request(format!("invalid cursor: {e}"))
        })?;
    json_response(200, &api::list_doc(&items, next)).map_err(internal)
}

#[derive(Deserialize, Default)]
struct NameQuery {
    name: Option<String>,
}

async fn upload(req: Request, env: &Env, id: &str) -> ApiResult {
    let sid = api::parse_id(id)?;
    check_rate(&req, env)?;
    let q: NameQuery = query(&req)?;
    let bytes = read_body(req, MAX_RECORDING_BYTES).await?;
    let body =
        keyboardia_api::upload_recording(&Cloudflare(env), sid, q.name.as_deref(), bytes).await?;
    json_response(201, &body).map_err(internal)
}

/// Forwards a WebSocket upgrade to the session's object (after the Origin check).
async fn socket(req: Request, env: &Env, id: &str) -> ApiResult {
    let id = api::parse_id(id)?;
    let header = |h: &str| req.headers().get(h).ok().flatten();
    if header("upgrade").map(|u| u.to_ascii_lowercase()) != Some("websocket".into()) {
        return Err(ApiError::new(
            426,
            "BAD_REQUEST",
            "this endpoint takes a WebSocket upgrade",
        ));
    }
    api::check_origin(
        header("origin").as_deref(),
        &header("host").unwrap_or_default(),
        &list_var(env, "ALLOWED_ORIGINS"),
    )?;
    let res = call(env, &id.to_string(), Method::Get, "ws", None).await?;
    if res.status_code() != 101 {
        let mut res = res;
        let status = res.status_code();
        let body: Value = res.json().await.map_err(internal)?;
        return Err(ApiError::from_body(status, &body));
    }
    Ok(res)
}

#[derive(Deserialize, Default)]
struct ExportQuery {
    loops: Option<u32>,
    tail: Option<String>,
}

async fn export_wav(req: &Request, env: &Env, id: &str) -> ApiResult {
    let id = api::parse_id(id)?;
    let q: ExportQuery = query(req)?;
    download(keyboardia_api::export_wav(&Cloudflare(env), id, q.loops, q.tail.as_deref()).await?)
}

async fn export_midi(req: &Request, env: &Env, id: &str) -> ApiResult {
    let id = api::parse_id(id)?;
    let q: ExportQuery = query(req)?;
    download(keyboardia_api::export_midi(&Cloudflare(env), id, q.loops).await?)
}

fn download(d: keyboardia_api::Download) -> ApiResult {
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(internal);
    set("content-type", d.content_type)?;
    set("content-disposition", &d.disposition)?;
    Ok(Response::from_bytes(d.bytes)
        .map_err(internal)?
        .with_headers(headers))
}

async fn qr(req: &Request, env: &Env, id: &str) -> ApiResult {
    let sid = api::parse_id(id)?;
    session_of(env, id).await?;
    let url = req.url().map_err(internal)?;
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("localhost")),
        None => url.host_str().unwrap_or("localhost").to_string(),
    };
    let svg = api::share_qr_svg(url.scheme(), &host, sid)?;
    let headers = Headers::new();
    headers
        .set("content-type", "image/svg+xml")
        .map_err(internal)?;
    Ok(Response::ok(svg).map_err(internal)?.with_headers(headers))
}

/// An object's bytes from the R2 bucket, if it exists.
async fn r2_get(env: &Env, key: &str) -> std::result::Result<Option<Vec<u8>>, ApiError> {
    let bucket = env.bucket(SAMPLES).map_err(internal)?;
    let Some(obj) = bucket.get(key).execute().await.map_err(internal)? else {
        return Ok(None);
    };
    let body = obj
        .body()
        .ok_or_else(|| internal("R2 object without a body"))?;
    body.bytes().await.map(Some).map_err(internal)
}

async fn sample(env: &Env, path: &str) -> ApiResult {
    let key = api::sample_key(path)?;
    let bytes = r2_get(env, &key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no sample at {path:?}")))?;
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(internal);
    set("content-type", api::blob_content_type(&key))?;
    set("cache-control", api::sample_cache_control(&key))?;
    Ok(Response::from_bytes(bytes)
        .map_err(internal)?
        .with_headers(headers))
}

/// The web app from Workers Assets. Files are served by the platform before the Worker runs;
/// what reaches here is `/s/{id}` (and other app routes), which get `index.html`, or a miss.
async fn app(req: Request, env: &Env) -> Result<Response> {
    let path = req.path();
    let assets = env.assets(ASSETS)?;
    if path == "/" || path.starts_with("/s/") {
        let url = req.url()?;
        let index = format!(
            "{}://{}/",
            url.scheme(),
            url.host_str().unwrap_or("localhost")
        );
        let res = assets.fetch(index, None).await?;
        if res.status_code() == 200 {
            // Headers of an asset response are immutable: copy them.
            let headers = Headers::new();
            for (k, v) in res.headers().entries() {
                headers.set(&k, &v)?;
            }
            let mut res = res;
            let body = res.bytes().await?;
            return Ok(Response::from_bytes(body)?.with_headers(headers));
        }
        return Response::from_html(PLACEHOLDER);
    }
    let e = ApiError::not_found(format!("nothing at {path}"));
    error_response(&e)
}

const PLACEHOLDER: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Keyboardia</title></head>\
<body><h1>Keyboardia</h1><p>The Worker is running, but the web app was not built into its assets \
(run <code>cargo xtask build-web</code>).</p></body></html>";
