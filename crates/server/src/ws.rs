//! WebSocket connections: one task per socket, moving frames between the socket and its
//! session's task. No session rule lives here.

use std::time::{Duration, Instant};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use uuid::Uuid;

use crate::error::ApiError;
use crate::sessions::{Cmd, ToSocket};
use crate::AppState;
use keyboardia_core::api::parse_id;

/// Frames larger than this are refused by the WebSocket layer itself (the session refuses
/// anything over 64 KiB with a clear error; this only caps memory).
const MAX_FRAME: usize = 2 * 1024 * 1024;
const PING_EVERY: Duration = Duration::from_secs(20);
/// A socket that has sent nothing (not even a pong) for this long is dead.
const SILENT_FOR: Duration = Duration::from_secs(60);

pub async fn upgrade(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    check_origin(&state, &headers)?;
    state.sessions.meta(id).await?;
    // A plain GET gets the API's JSON error, not axum's text.
    let ws = ws.map_err(|_| {
        keyboardia_core::api::ApiError::new(
            426,
            "UPGRADE_REQUIRED",
            "this endpoint is a WebSocket: send an upgrade request",
        )
    })?;
    Ok(ws
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| connection(state, id, socket)))
}

/// Browsers send `Origin`; it must be this site (or a configured one).
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let header = |h| {
        headers
            .get(h)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    keyboardia_core::api::check_origin(
        header(header::ORIGIN),
        header(header::HOST).unwrap_or(""),
        &state.allowed_origins,
    )?;
    Ok(())
}

async fn connection(state: AppState, id: Uuid, mut socket: WebSocket) {
    let conn = state.sessions.next_conn_id();
    let Ok((session, mut out)) = state.sessions.connect(id, conn).await else {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: 1011,
                reason: "session unavailable".into(),
            })))
            .await;
        return;
    };
    state.metrics.ws_connections_total.inc();
    state.metrics.ws_connections_open.inc();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            // Answer before reading more: a client that sends faster than it reads is slowed
            // down by its own socket instead of filling our queue.
            biased;
            msg = out.recv() => match msg {
                Some(ToSocket::Text(t)) => {
                    if socket.send(Message::Text(t)).await.is_err() {
                        break;
                    }
                }
                Some(ToSocket::Close(code, reason)) => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame { code, reason: reason.into() })))
                        .await;
                    break;
                }
                // The session dropped this socket (too slow, or it unloaded).
                None => break,
            },
            frame = socket.recv() => {
                last_heard = Instant::now();
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
                    // Binary frames are not part of the protocol: let the session say so.
                    Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    Some(Ok(Message::Ping(_))) | Some(Ok(Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                };
                state.metrics.ws_messages_in_total.inc();
                if session.send(Cmd::Message { conn, text }).await.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENT_FOR {
                    break;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    state.metrics.ws_connections_open.dec();
    let _ = session.send(Cmd::Disconnect { conn }).await;
}
