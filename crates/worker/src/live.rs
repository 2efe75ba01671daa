//! The LiveSession Durable Object: one per session (named by the session id). It drives the
//! core's `LiveSession` and only translates between it and the platform:
//!
//! - sockets are accepted with the hibernation API; each one's attachment carries its connection
//!   id and, once it has said `HELLO`, its player, so a woken object knows who is connected;
//! - every wake path (fetch, message, close, error, alarm) restores the session from DO SQLite
//!   storage and the open sockets before handling the event;
//! - the core's persist and snapshot outputs are written to SQLite before its sends (the output
//!   gate then holds those sends until the writes are durable);
//! - the core's timer (idle unload) is an alarm.
//!
//! The Worker talks to it over `fetch`, with paths under `/api/sessions/{id}/` (see [`Op`]).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use keyboardia_core::api::{self, ApiError};
use keyboardia_core::live::{ConnId, Delivery};
use keyboardia_core::model::{SessionMeta, SessionState};
use keyboardia_core::protocol::{Change, Edit, Player};
use keyboardia_core::{Input, LiveConfig, LiveSession};
use serde::{Deserialize, Serialize};
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use crate::store::{self, Db};
use crate::{error_response, internal, json_response, now_ms};

/// The header that names the object instance that answered (a new value after each wake):
/// lets tests see that an object was evicted and restored.
pub const INSTANCE_HEADER: &str = "x-keyboardia-instance";

/// What each accepted socket carries across hibernation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Attachment {
    conn: ConnId,
    player: Option<Player>,
}

/// A session in memory.
struct Live {
    meta: SessionMeta,
    core: LiveSession,
    sockets: HashMap<ConnId, (WebSocket, Option<Player>)>,
    next_conn: ConnId,
}

/// What the session's drain asks of the platform after the in-memory work.
#[derive(Default)]
struct After {
    /// Refresh the KV index with this document.
    index: Option<(SessionMeta, SessionState, u64)>,
    /// When the core's timer is due (ms since the epoch), if any.
    alarm: Option<f64>,
    /// The session asked to leave memory.
    idle: bool,
}

#[durable_object]
pub struct LiveSessionDurableObject {
    state: State,
    env: Env,
    db: Db,
    live: RefCell<Option<Live>>,
    instance: String,
    config: LiveConfig,
    /// The alarm as last set by this instance (`None` before the first event: unknown).
    alarm: Cell<Option<Option<i64>>>,
}

/// The operations the Worker asks of a session's object.
enum Op {
    /// `POST init`: create the session (body: `{meta, state}`).
    Init,
    /// `GET doc`: the live session document.
    Doc,
    /// `POST edit`: apply an edit (body: the edit).
    Edit,
    /// `POST change`: apply a host change (body: the change).
    Change,
    /// `POST remixed`: someone remixed this session.
    Remixed,
    /// `GET ws`: a WebSocket upgrade.
    Socket,
}

#[derive(Deserialize)]
struct InitBody {
    meta: SessionMeta,
    state: SessionState,
}

impl DurableObject for LiveSessionDurableObject {
    fn new(state: State, env: Env) -> Self {
        let db = Db::new(state.storage().sql()).expect("DO SQLite storage is available");
        let instance = format!("{:016x}", (js_sys::Math::random() * 2f64.powi(53)) as u64);
        LiveSessionDurableObject {
            state,
            env,
            db,
            live: RefCell::new(None),
            instance,
            config: LiveConfig::default(),
            alarm: Cell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        let mut parts = path.trim_start_matches('/').split('/').skip(2);
        let id = parts.next().unwrap_or_default().to_string();
        let op = match (req.method(), parts.next().unwrap_or_default()) {
            (worker::Method::Post, "init") => Op::Init,
            (worker::Method::Get, "doc") => Op::Doc,
            (worker::Method::Post, "edit") => Op::Edit,
            (worker::Method::Post, "change") => Op::Change,
            (worker::Method::Post, "remixed") => Op::Remixed,
            (worker::Method::Get, "ws") => Op::Socket,
            _ => return error_response(&ApiError::not_found("no such operation")),
        };
        let id = match api::parse_id(&id) {
            Ok(id) => id,
            Err(e) => return error_response(&e),
        };
        let body = match op {
            Op::Init | Op::Edit | Op::Change => req.bytes().await?,
            _ => Vec::new(),
        };
        let mut res = match self.operate(op, id, &body).await {
            Ok(res) => res,
            Err(e) => error_response(&e)?,
        };
        res.headers_mut().set(INSTANCE_HEADER, &self.instance)?;
        Ok(res)
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let Some(att) = attachment(&ws) else {
            return Ok(());
        };
        let text = match message {
            WebSocketIncomingMessage::String(s) => s,
            // The protocol is JSON text; a binary frame gets the same clear error as bad JSON.
            WebSocketIncomingMessage::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
        };
        self.event(|core, now| {
            core.handle(
                now,
                Input::Message {
                    conn: att.conn,
                    text: &text,
                },
            )
        })
        .await
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        self.socket_gone(ws).await
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.socket_gone(ws).await
    }

    async fn alarm(&self) -> Result<Response> {
        // The alarm that woke us is spent.
        self.alarm.set(Some(None));
        if self.live.borrow().is_none() && self.state.get_websockets().is_empty() {
            // The idle timer of a session the runtime already evicted: it is out of memory
            // already, and restoring it only to unload it again would re-arm the timer forever.
            return Response::empty();
        }
        self.event(|core, now| core.handle(now, Input::Timeout))
            .await?;
        Response::empty()
    }
}

fn attachment(ws: &WebSocket) -> Option<Attachment> {
    ws.deserialize_attachment::<Attachment>().ok().flatten()
}

impl LiveSessionDurableObject {
    /// Restores the session into memory if it is not there (any wake path). `Ok(false)` if this
    /// object holds no session.
    fn restore(&self) -> Result<bool> {
        if self.live.borrow().is_some() {
            return Ok(true);
        }
        let Some(loaded) = self.db.load(self.config.replay_window)? else {
            return Ok(false);
        };
        let now = now_ms();
        let r = loaded.replayed;
        let mut core = LiveSession::new(
            loaded.meta.id.to_string(),
            r.state,
            r.seq,
            loaded.meta.immutable,
            r.recent,
            self.config.clone(),
            now,
        );
        let mut sockets = HashMap::new();
        let mut next_conn = 1;
        let mut open = Vec::new();
        for ws in self.state.get_websockets() {
            match attachment(&ws) {
                Some(att) => open.push((att, ws)),
                None => {
                    let _ = ws.close(Some(1011), Some("lost track of this connection"));
                }
            }
        }
        // Oldest first, so that if two sockets ever claim one player the newest wins.
        open.sort_by_key(|(att, _)| att.conn);
        for (att, ws) in open {
            core.restore_connection(now, att.conn, att.player.clone());
            next_conn = next_conn.max(att.conn + 1);
            sockets.insert(att.conn, (ws, att.player));
        }
        *self.live.borrow_mut() = Some(Live {
            meta: loaded.meta,
            core,
            sockets,
            next_conn,
        });
        Ok(true)
    }

    /// Restores the session, or imports it from the KV index if this object has no storage of
    /// its own for it yet.
    async fn restore_or_import(&self, id: uuid::Uuid) -> std::result::Result<(), ApiError> {
        if self.restore().map_err(internal)? {
            return Ok(());
        }
        let Some((meta, state, seq)) = store::read_index(&self.env, &id).await.map_err(internal)?
        else {
            return Err(ApiError::no_session(id));
        };
        if self.db.meta().map_err(internal)?.is_none() {
            self.db.create(&meta, &state, seq).map_err(internal)?;
        }
        self.restore().map_err(internal)?;
        Ok(())
    }

    /// One event for the session: restore, feed the core, perform its outputs, then the slow
    /// platform work (index, alarm).
    async fn event(&self, f: impl FnOnce(&mut LiveSession, f64)) -> Result<()> {
        if !self.restore()? {
            // A socket or alarm for a session that does not exist: nothing to do.
            for ws in self.state.get_websockets() {
                let _ = ws.close(Some(1011), Some("no such session"));
            }
            return Ok(());
        }
        let after = {
            let mut guard = self.live.borrow_mut();
            let live = guard.as_mut().expect("restored above");
            f(&mut live.core, now_ms());
            self.drain(live)?
        };
        self.finish(after).await
    }

    async fn socket_gone(&self, ws: WebSocket) -> Result<()> {
        let Some(att) = attachment(&ws) else {
            return Ok(());
        };
        let _ = ws.close(Some(1000), Some("closed"));
        self.event(|core, now| core.handle(now, Input::Disconnected { conn: att.conn }))
            .await
    }

    /// Performs the core's outputs until there are none: storage first, then sends.
    fn drain(&self, live: &mut Live) -> Result<After> {
        let mut after = After::default();
        while let Some(batch) = live.core.drain() {
            let (mut durable, sends) = batch.split();
            // Written with no `await` before the sends: the output gate holds the sends until
            // these writes are durable.
            for a in &durable.changes {
                self.db.append(a)?;
            }
            if let Some((seq, state)) = durable.snapshot.take() {
                self.db
                    .put_snapshot(seq, &state, self.config.replay_window as u64)?;
                live.meta.last_accessed_at = now_ms() as i64;
                self.db.put_meta(&live.meta)?;
                after.index = Some((live.meta.clone(), *state, seq));
            }
            after.idle |= durable.idle;
            for d in sends.release(durable.stored()) {
                match d {
                    Delivery::Text { to, text } => {
                        for conn in to {
                            deliver(live, conn, &text);
                        }
                    }
                    Delivery::Close { conn, code, reason } => {
                        if let Some((ws, _)) = live.sockets.remove(&conn) {
                            // Until the close completes the socket is still listed; it must
                            // not bring its player back if the object wakes meanwhile.
                            ws.serialize_attachment(Attachment { conn, player: None })?;
                            let _ = ws.close(Some(code), Some(reason));
                        }
                    }
                }
            }
        }
        // Players who joined (or renamed) are written into their sockets' attachments.
        for (conn, (ws, known)) in live.sockets.iter_mut() {
            let now = live.core.player_of(*conn);
            if now != known.as_ref() {
                *known = now.cloned();
                ws.serialize_attachment(Attachment {
                    conn: *conn,
                    player: known.clone(),
                })?;
            }
        }
        after.alarm = live.core.poll_timeout();
        Ok(after)
    }

    async fn finish(&self, after: After) -> Result<()> {
        if after.idle {
            // The platform evicts idle objects anyway; dropping the session now frees memory
            // and the next event restores it from storage.
            *self.live.borrow_mut() = None;
        }
        // Storage calls only when the core's timer actually changed.
        let want = after.alarm.filter(|_| !after.idle).map(|at| at as i64);
        if self.alarm.get() != Some(want) {
            let storage = self.state.storage();
            match want {
                Some(at) => {
                    let offset = (at as f64 - now_ms()).max(1.0) as i64;
                    storage.set_alarm(offset).await?;
                }
                None => storage.delete_alarm().await?,
            }
            self.alarm.set(Some(want));
        }
        if let Some((meta, state, seq)) = after.index {
            store::write_index(&self.env, &meta, &state, seq).await?;
        }
        Ok(())
    }

    async fn operate(
        &self,
        op: Op,
        id: uuid::Uuid,
        body: &[u8],
    ) -> std::result::Result<Response, ApiError> {
        if let Op::Init = op {
            let init: InitBody = api::parse_json(body)?;
            if init.meta.id != id || self.db.meta().map_err(internal)?.is_some() {
                return Err(ApiError::new(
                    409,
                    "CONFLICT",
                    "that session already exists",
                ));
            }
            self.db
                .create(&init.meta, &init.state, 0)
                .map_err(internal)?;
            store::write_index(&self.env, &init.meta, &init.state, 0)
                .await
                .map_err(internal)?;
            let doc = api::created_doc(&init.meta, &init.state);
            return json_response(201, &doc).map_err(internal);
        }
        self.restore_or_import(id).await?;
        let (answer, after) = {
            let mut guard = self.live.borrow_mut();
            let live = guard.as_mut().expect("restored above");
            let now = now_ms();
            let answer = match op {
                Op::Init => unreachable!("handled above"),
                Op::Doc => Answer::Json(Ok(doc_of(live))),
                Op::Edit => {
                    let edit: Edit = api::parse_json(body)?;
                    let r = live.core.system_edit(now, &edit);
                    Answer::Json(r.map(|_| doc_of(live)).map_err(ApiError::from))
                }
                Op::Change => {
                    let change: Change = api::parse_json(body)?;
                    let r = live.core.system_change(change);
                    Answer::Json(
                        r.map(|a| serde_json::to_value(a).expect("serializes"))
                            .map_err(ApiError::from),
                    )
                }
                Op::Remixed => {
                    live.meta.remix_count += 1;
                    self.db.put_meta(&live.meta).map_err(internal)?;
                    Answer::Json(Ok(serde_json::Value::Null))
                }
                Op::Socket => {
                    let conn = live.next_conn;
                    live.next_conn += 1;
                    let pair = WebSocketPair::new().map_err(internal)?;
                    self.state.accept_web_socket(&pair.server);
                    pair.server
                        .serialize_attachment(Attachment { conn, player: None })
                        .map_err(internal)?;
                    live.sockets.insert(conn, (pair.server, None));
                    live.core.handle(now, Input::Connected { conn });
                    Answer::Socket(pair.client)
                }
            };
            if matches!(answer, Answer::Json(Ok(_))) && live.core.connection_count() == 0 {
                // Nobody is connected to carry the change to the index later: refresh it now.
                live.core.snapshot_if_dirty();
            }
            let mut after = self.drain(live).map_err(internal)?;
            if let Op::Remixed = op {
                after.index = Some((
                    live.meta.clone(),
                    live.core.state().clone(),
                    live.core.seq(),
                ));
            }
            (answer, after)
        };
        self.finish(after).await.map_err(internal)?;
        match answer {
            Answer::Json(res) => json_response(200, &res?).map_err(internal),
            Answer::Socket(client) => Response::from_websocket(client).map_err(internal),
        }
    }
}

/// What an operation hands back once its outputs are performed.
enum Answer {
    Json(std::result::Result<serde_json::Value, ApiError>),
    Socket(WebSocket),
}

fn doc_of(live: &Live) -> serde_json::Value {
    api::session_doc(&live.meta, live.core.state(), live.core.seq())
}

/// Sends a frame; a socket that cannot take it is gone.
fn deliver(live: &mut Live, conn: ConnId, text: &str) {
    let Some((ws, _)) = live.sockets.get(&conn) else {
        return;
    };
    if ws.send_with_str(text).is_err() {
        live.sockets.remove(&conn);
        live.core.handle(now_ms(), Input::Disconnected { conn });
    }
}
