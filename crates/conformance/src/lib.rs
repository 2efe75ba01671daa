//! # keyboardia-conformance
//!
//! A black-box conformance suite for Keyboardia hosts. It knows nothing of a host's insides: it
//! talks HTTP and WebSocket to a base URL. `tests/suite.rs` runs it against `KEYBOARDIA_BASE_URL`
//! (e.g. the Cloudflare host in workerd) or, when unset, an in-process native server.
//!
//! This library holds the client helpers the tests share: [`Target`] (HTTP) and [`Ws`] (one
//! WebSocket player speaking the protocol); [`known_difference`] (a host's listed, explained
//! differences, from `differences/{host}.txt`); and [`crash`], the `kill -9` rounds any host that
//! can be killed and restarted runs (the native server in its tests, workerd from the xtask).

#![forbid(unsafe_code)]

pub mod crash;

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use keyboardia_core::limits::PROTOCOL_VERSION;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long to wait for an expected message.
pub const WAIT: Duration = Duration::from_secs(10);

/// A host under test.
#[derive(Clone, Debug)]
pub struct Target {
    /// e.g. `http://127.0.0.1:8787`
    pub base: String,
    pub http: reqwest::Client,
}

/// A listed, explained difference between the host under test and the native server, from
/// `differences/{KEYBOARDIA_HOST}.txt` (`id: reason` lines). Returns the reason if `id` is listed
/// for this host (and says so on stderr), `None` if the host must behave exactly like the native
/// server here.
pub fn known_difference(id: &str) -> Option<String> {
    let host = std::env::var("KEYBOARDIA_HOST").ok()?;
    let file = format!("{}/differences/{host}.txt", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("KEYBOARDIA_HOST={host} but {file} is unreadable: {e}"));
    let reason = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == id))?
        .1
        .trim()
        .to_string();
    eprintln!("known difference on {host}: {id}: {reason}");
    Some(reason)
}

/// An HTTP answer: status and JSON body (or `Null`).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// The body as it came (to check an encoding byte for byte).
    pub text: String,
    /// The response said `Connection: close`.
    pub connection_close: bool,
    /// The raw body.
    pub bytes: Vec<u8>,
    /// `Content-Type` and `Cache-Control`, if sent.
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
}

impl Target {
    pub fn new(base: impl Into<String>) -> Target {
        Target {
            base: base.into().trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn ws_url(&self, id: &str) -> String {
        let base = self
            .base
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        format!("{base}/api/sessions/{id}/ws")
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Answer> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let connection_close = res
            .headers()
            .get("connection")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type");
        let cache_control = header("cache-control");
        let bytes = res.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            body,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            connection_close,
            bytes: bytes.to_vec(),
            content_type,
            cache_control,
        })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.request(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> anyhow::Result<Answer> {
        self.request(
            reqwest::Method::POST,
            path,
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> anyhow::Result<Answer> {
        self.request(
            reqwest::Method::PATCH,
            path,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// Creates a session and returns its id.
    pub async fn create(&self) -> anyhow::Result<String> {
        let a = self.post("/api/sessions", None).await?;
        if a.status != 201 {
            bail!("create: {} {}", a.status, a.body);
        }
        Ok(a.body["id"].as_str().context("id")?.to_string())
    }

    /// Opens a WebSocket and completes the HELLO/WELCOME exchange.
    pub async fn join(
        &self,
        id: &str,
        player: &str,
        last_seq: Option<u64>,
    ) -> anyhow::Result<(Ws, Value)> {
        let mut ws = self.open(id).await?;
        let welcome = ws.hello(player, last_seq).await?;
        Ok((ws, welcome))
    }

    /// Opens a WebSocket without saying anything.
    pub async fn open(&self, id: &str) -> anyhow::Result<Ws> {
        let (stream, _) =
            tokio_tungstenite::connect_async_with_config(self.ws_url(id), None, true).await?;
        Ok(Ws { stream, mid: 0 })
    }
}

/// One player's WebSocket.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    mid: u64,
}

/// How a socket ended.
#[derive(Debug, PartialEq)]
pub enum Closed {
    Code(u16),
    Dropped,
}

impl Ws {
    pub async fn send_text(&mut self, text: impl Into<String>) -> anyhow::Result<()> {
        self.stream.send(Message::Text(text.into().into())).await?;
        Ok(())
    }

    pub async fn send(&mut self, v: Value) -> anyhow::Result<()> {
        self.send_text(v.to_string()).await
    }

    /// Sends an edit with a fresh mutation id; returns the id.
    pub async fn edit(&mut self, mut v: Value) -> anyhow::Result<String> {
        self.mid += 1;
        let mid = format!("m{}-{}", self.mid, rand_suffix());
        v["mid"] = json!(mid);
        self.send(v).await?;
        Ok(mid)
    }

    pub async fn hello(&mut self, player: &str, last_seq: Option<u64>) -> anyhow::Result<Value> {
        let mut h = json!({"type": "HELLO", "protocol": PROTOCOL_VERSION, "playerId": player});
        if let Some(s) = last_seq {
            h["lastSeq"] = json!(s);
        }
        self.send(h).await?;
        self.expect(|m| m["type"] == "WELCOME" || m["type"] == "ERROR")
            .await
    }

    /// The next JSON message (skipping pings), or an error if the socket closed or timed out.
    pub async fn next(&mut self) -> anyhow::Result<Value> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .map_err(|_| anyhow!("timed out waiting for a message"))?;
            match msg {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t)?),
                Some(Ok(Message::Close(f))) => bail!("socket closed: {f:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("socket error: {e}"),
                None => bail!("socket ended"),
            }
        }
    }

    /// Skips messages until one matches.
    pub async fn expect(&mut self, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        loop {
            let m = self.next().await?;
            if pred(&m) {
                return Ok(m);
            }
        }
    }

    /// Waits for the acknowledgement (or error) of one of our edits.
    pub async fn ack(&mut self, mid: &str) -> anyhow::Result<Value> {
        self.expect(|m| m["mid"] == mid).await
    }

    /// Waits until the server closes the socket; returns the close code.
    pub async fn closed(&mut self) -> Closed {
        loop {
            match tokio::time::timeout(WAIT, self.stream.next()).await {
                Ok(Some(Ok(Message::Close(Some(f))))) => return Closed::Code(u16::from(f.code)),
                Ok(Some(Ok(Message::Close(None)))) => return Closed::Code(1005),
                Ok(Some(Ok(_))) => continue,
                _ => return Closed::Dropped,
            }
        }
    }

    /// Drains whatever arrives within `d`.
    pub async fn drain_for(&mut self, d: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, self.stream.next()).await {
            if let Message::Text(t) = m {
                if let Ok(v) = serde_json::from_str(&t) {
                    out.push(v);
                }
            }
        }
        out
    }

    pub async fn close(mut self) {
        let _ = self
            .stream
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", t, N.fetch_add(1, Ordering::Relaxed))
}

pub use keyboardia_audio::recording::test_wav;
