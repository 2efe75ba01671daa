//! The live connection to a session: a WebSocket driving the core's `SyncClient` (optimistic
//! edits confirmed by mutation id, resume from the last seq, unconfirmed edits re-sent), with
//! reconnection (backoff with jitter) and continuous clock sync. The UI reads signals and calls
//! [`edit`]; nothing here knows about the DOM.

use std::cell::RefCell;

use keyboardia_core::client::{Event, SyncClient};
use keyboardia_core::clock::{pace, ClockEstimator, SyncSample};
use keyboardia_core::model::SessionState;
use keyboardia_core::protocol::{
    apply, resolve, Applied, Change, ClientMessage, Control, Edit, Player, ResolveCtx,
    ServerMessage,
};
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// What the connection looks like to the player.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Connecting,
    Live,
    Reconnecting,
    /// The server refused us for good (session full, protocol too new).
    Refused,
}

/// A cell someone else just changed: glows in their colour for a moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Glow {
    pub track: String,
    pub step: u8,
    pub color: String,
    pub until: f64,
}

/// Everything the UI shows about the live session.
#[derive(Clone, Copy)]
pub struct Signals {
    pub state: RwSignal<Option<SessionState>>,
    pub players: RwSignal<Vec<Player>>,
    pub me: RwSignal<Option<Player>>,
    pub status: RwSignal<Status>,
    pub pending: RwSignal<usize>,
    pub read_only: RwSignal<bool>,
    pub message: RwSignal<Option<String>>,
    pub glows: RwSignal<Vec<Glow>>,
    /// Server clock minus `performance.now()`, once the estimate is good enough to schedule
    /// sound by (see `ClockEstimator::is_ready`).
    pub offset: RwSignal<Option<f64>>,
    /// What the sync indicator shows: the best recent round trip and how far the clock
    /// estimate may be off (ms).
    pub sync: RwSignal<Option<SyncInfo>>,
    /// Whether this player has something to undo and to redo.
    pub history: RwSignal<(bool, bool)>,
}

/// The clock sync as the player sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyncInfo {
    pub rtt: f64,
    pub uncertainty: f64,
    pub samples: usize,
    pub ready: bool,
}

struct Inner {
    session_id: String,
    sync: SyncClient,
    ws: Option<WebSocket>,
    clock: ClockEstimator,
    attempts: u32,
    sig: Signals,
    refused: bool,
    /// Clock-sync requests sent on this connection, and when the last one went.
    syncs_sent: usize,
    last_sync_at: f64,
    /// Coalesced edits of one value (tempo, swing, a track's volume...) waiting for their turn:
    /// (key, the latest edit). Shown at once; sent at most every [`COALESCE_MS`] per key, so a
    /// burst of clicks or a dragged slider never meets the session's rate limit and the last
    /// value always arrives.
    held: Vec<(String, Edit)>,
    /// When an edit of each coalesced value was last sent.
    last_sent: std::collections::HashMap<String, f64>,
    flush_scheduled: bool,
    /// An undo (false) or redo (true) asked for while an own edit was unacknowledged: made as
    /// soon as it is.
    queued_undo: Option<bool>,
}

/// The shortest gap between two sent edits of the same value (ms).
pub const COALESCE_MS: f64 = 120.0;

/// Edits that set one value: a later one replaces an earlier one not yet sent.
fn coalesce_key(e: &Edit) -> Option<String> {
    Some(match e {
        Edit::SetTempo { .. } => "tempo".into(),
        Edit::SetSwing { .. } => "swing".into(),
        Edit::SetTrackVolume { track_id, .. } => format!("volume/{track_id}"),
        Edit::SetTrackPan { track_id, .. } => format!("pan/{track_id}"),
        Edit::SetTrackTranspose { track_id, .. } => format!("transpose/{track_id}"),
        Edit::SetTrackSwing { track_id, .. } => format!("swing/{track_id}"),
        Edit::SetEffect {
            track_id, param, ..
        } => format!("fx/{}/{}", track_id.as_deref().unwrap_or(""), param.name()),
        _ => return None,
    })
}

thread_local! {
    static LIVE: RefCell<Option<Inner>> = const { RefCell::new(None) };
}

pub fn perf_now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// A stable id for this browser tab (kept across reloads of the tab, not shared with others).
fn player_id() -> String {
    let storage = web_sys::window().and_then(|w| w.session_storage().ok().flatten());
    if let Some(id) = storage
        .as_ref()
        .and_then(|s| s.get_item("keyboardia-player").ok().flatten())
    {
        return id;
    }
    let id = format!(
        "tab-{:08x}{:08x}",
        (js_sys::Math::random() * 4e9) as u32,
        (js_sys::Math::random() * 4e9) as u32
    );
    if let Some(s) = storage {
        let _ = s.set_item("keyboardia-player", &id);
    }
    id
}

/// Connects to a session (once per page).
pub fn start(session_id: &str, sig: Signals) {
    LIVE.with(|l| {
        *l.borrow_mut() = Some(Inner {
            session_id: session_id.to_string(),
            // The player id survives a reload; the instance part keeps this page's mutation ids
            // from repeating the ones the last page used (the session would take them for
            // resends).
            sync: SyncClient::new(player_id(), None)
                .with_instance(format!("{:08x}", (js_sys::Math::random() * 4e9) as u32)),
            ws: None,
            clock: ClockEstimator::default(),
            attempts: 0,
            sig,
            refused: false,
            syncs_sent: 0,
            last_sync_at: f64::NEG_INFINITY,
            held: Vec::new(),
            last_sent: std::collections::HashMap::new(),
            flush_scheduled: false,
            queued_undo: None,
        })
    });
    connect();
    // Continuous clock sync: a burst after each connect (so sound can be scheduled within
    // about three seconds, even over a slow, jittery link), then a steady trickle.
    let tick = Closure::<dyn FnMut()>::new(|| {
        with(|inner| {
            let now = perf_now();
            let due = if inner.syncs_sent < pace::BURST {
                pace::BURST_EVERY_MS
            } else {
                pace::STEADY_EVERY_MS
            };
            if now - inner.last_sync_at >= due - 1.0 {
                send_clock_sync(inner);
            }
        });
    });
    if let Some(w) = web_sys::window() {
        let _ = w.set_interval_with_callback_and_timeout_and_arguments_0(
            tick.as_ref().unchecked_ref(),
            pace::BURST_EVERY_MS as i32,
        );
    }
    tick.forget();
}

/// Sends one CLOCK_SYNC (with our best round trip, so the session can give slow players
/// enough lead). The time is read last, right before the send.
fn send_clock_sync(inner: &mut Inner) {
    let Some(ws) = &inner.ws else { return };
    if ws.ready_state() != WebSocket::OPEN {
        return;
    }
    let rtt = inner.clock.best_rtt();
    let now = perf_now();
    let m = ClientMessage::Control(Control::ClockSync {
        client_time: now,
        rtt,
    });
    let _ = ws.send_with_str(&m.encode());
    inner.syncs_sent += 1;
    inner.last_sync_at = now;
}

fn with<R>(f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
    LIVE.with(|l| l.borrow_mut().as_mut().map(f))
}

fn ws_url(session_id: &str) -> String {
    let loc = web_sys::window().expect("window").location();
    let proto = if loc.protocol().unwrap_or_default() == "https:" {
        "wss"
    } else {
        "ws"
    };
    format!(
        "{proto}://{}/api/sessions/{session_id}/ws",
        loc.host().unwrap_or_default()
    )
}

fn connect() {
    let Some(url) = with(|i| ws_url(&i.session_id)) else {
        return;
    };
    let Ok(ws) = WebSocket::new(&url) else {
        schedule_reconnect();
        return;
    };
    let onopen = Closure::<dyn FnMut()>::new(|| {
        with(|inner| {
            inner.attempts = 0;
            let hello = inner.sync.hello().encode();
            if let Some(ws) = &inner.ws {
                let _ = ws.send_with_str(&hello);
            }
            // A new burst of clock samples, starting now.
            inner.syncs_sent = 0;
            send_clock_sync(inner);
        });
    });
    let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(|e: MessageEvent| {
        if let Some(text) = e.data().as_string() {
            on_text(&text);
        }
    });
    let onclose = Closure::<dyn FnMut(CloseEvent)>::new(|e: CloseEvent| {
        let code = e.code();
        let refused = code == 4003 || code == 4002;
        with(|inner| {
            inner.ws = None;
            inner.refused |= refused;
            inner.sig.status.set(if inner.refused {
                Status::Refused
            } else {
                Status::Reconnecting
            });
        });
        if !refused {
            schedule_reconnect();
        }
    });
    ws.set_onopen(Some(onopen.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
    onopen.forget();
    onmessage.forget();
    onclose.forget();
    with(|inner| inner.ws = Some(ws));
}

/// Reconnects after an exponential backoff with jitter (0.5 s doubling to 10 s).
fn schedule_reconnect() {
    let Some(attempts) = with(|i| {
        i.attempts += 1;
        i.attempts
    }) else {
        return;
    };
    let base = (500.0 * 2f64.powi(attempts.min(5) as i32)).min(10_000.0);
    let delay = base * (0.5 + js_sys::Math::random() * 0.5);
    let cb = Closure::once_into_js(connect);
    if let Some(w) = web_sys::window() {
        let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(
            cb.unchecked_ref(),
            delay as i32,
        );
    }
}

fn on_text(text: &str) {
    // The receive time of a clock-sync answer, read before anything else is done.
    let received = perf_now();
    let Some(msg) = ServerMessage::decode(text) else {
        return;
    };
    let glow = match &msg {
        ServerMessage::Applied(a) => glow_for(a),
        _ => None,
    };
    with(|inner| {
        let sig = inner.sig;
        match inner.sync.on_message(msg) {
            Event::Welcomed { resend } => {
                if let Some(ws) = &inner.ws {
                    for m in resend {
                        let _ = ws.send_with_str(&m.encode());
                    }
                }
                sig.status.set(Status::Live);
                sig.read_only.set(inner.sync.read_only);
                sig.me.set(inner.sync.me.clone());
            }
            Event::Rejected { message, .. } | Event::Error { message, .. } => {
                sig.message.set(Some(message));
            }
            Event::ClockSync {
                client_time,
                server_time,
            } => {
                inner.clock.add(SyncSample {
                    sent_at: client_time,
                    server_time,
                    received_at: received,
                });
                let ready = inner.clock.is_ready();
                if ready {
                    let o = inner.clock.offset();
                    // Only a real change wakes the scheduler.
                    if o != sig.offset.get_untracked() {
                        sig.offset.set(o);
                    }
                }
                sig.sync.set(Some(SyncInfo {
                    rtt: inner.clock.best_rtt().unwrap_or(0.0),
                    uncertainty: inner.clock.uncertainty().unwrap_or(f64::INFINITY),
                    samples: inner.clock.len(),
                    ready,
                }));
                return;
            }
            Event::Changed { .. } | Event::Presence | Event::Ignored => {}
        }
        if let Some(redo) = inner.queued_undo {
            if !inner.sync.awaiting_ack() {
                inner.queued_undo = None;
                history_step(inner, redo);
            }
        }
        sig.players.set(inner.sync.players.clone());
        publish_view(inner);
        if let Some((track, step, player)) = glow {
            if player != inner.sync.player_id() {
                let color = inner
                    .sync
                    .players
                    .iter()
                    .find(|p| p.id == player)
                    .map(|p| p.color.clone())
                    .unwrap_or_else(|| "#ffffff".into());
                let now = perf_now();
                sig.glows.update(|g| {
                    g.retain(|x| x.until > now);
                    g.push(Glow {
                        track,
                        step,
                        color,
                        until: now + 600.0,
                    });
                });
            }
        }
    });
}

fn glow_for(a: &Applied) -> Option<(String, u8, String)> {
    let player = a.player_id.clone()?;
    match &a.change {
        Change::SetStep { track_id, step, .. }
        | Change::SetParameterLock { track_id, step, .. } => {
            Some((track_id.clone(), *step, player))
        }
        // An effect control glows like a cell: keyed by its parameter, step `u8::MAX`.
        Change::SetEffect {
            track_id, param, ..
        } => Some((
            crate::effects_panel::glow_key(track_id.as_deref(), *param),
            u8::MAX,
            player,
        )),
        _ => None,
    }
}

/// Shows the view: the confirmed state, the pending edits and the held (coalesced) ones.
fn publish_view(inner: &mut Inner) {
    let mut view = inner.sync.view().cloned();
    if let Some(v) = view.as_mut() {
        let ctx = ResolveCtx {
            now: 0.0,
            lead_ms: 0.0,
        };
        for (_, e) in &inner.held {
            if let Ok(c) = resolve(v, e, ctx) {
                apply(v, &c);
            }
        }
    }
    inner.sig.state.set(view);
    inner
        .sig
        .pending
        .set(inner.sync.pending_count() + inner.held.len());
    inner.sig.history.set((
        inner.sync.can_undo() || !inner.held.is_empty(),
        inner.sync.can_redo(),
    ));
}

fn send_edit(inner: &mut Inner, e: Edit) {
    match inner.sync.edit(e) {
        Ok(m) => {
            if let Some(ws) = &inner.ws {
                if ws.ready_state() == WebSocket::OPEN {
                    let _ = ws.send_with_str(&m.encode());
                }
            }
            publish_view(inner);
        }
        Err(err) => inner.sig.message.set(Some(err.to_string())),
    }
}

/// Makes an edit: shown at once, sent now or when the connection is back. Repeated edits of one
/// value are coalesced (see [`COALESCE_MS`]).
pub fn edit(e: Edit) {
    let now = perf_now();
    let wait = with(|inner| {
        if let Some(key) = coalesce_key(&e) {
            if inner.sync.read_only {
                send_edit(inner, e); // refused with the read-only message
                return None;
            }
            let last = inner
                .last_sent
                .get(&key)
                .copied()
                .unwrap_or(f64::NEG_INFINITY);
            let is_held = inner.held.iter().any(|(k, _)| *k == key);
            if is_held || now - last < COALESCE_MS {
                inner.held.retain(|(k, _)| *k != key);
                inner.held.push((key, e));
                publish_view(inner);
                if inner.flush_scheduled {
                    return None;
                }
                inner.flush_scheduled = true;
                return Some((COALESCE_MS - (now - last)).clamp(10.0, COALESCE_MS));
            }
            inner.last_sent.insert(key, now);
        }
        send_edit(inner, e);
        None
    })
    .flatten();
    if let Some(ms) = wait {
        let cb = Closure::once_into_js(flush_held);
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(
                cb.unchecked_ref(),
                ms as i32,
            );
        }
    }
}

/// Sends the held edits (each the latest of its value).
fn flush_held() {
    with(|inner| {
        inner.flush_scheduled = false;
        let now = perf_now();
        for (key, e) in std::mem::take(&mut inner.held) {
            inner.last_sent.insert(key, now);
            send_edit(inner, e);
        }
        publish_view(inner);
    });
}

/// Whether this page's view of the session has recording `id` (its `SAMPLE_ADDED` arrived).
pub fn has_sample(id: &str) -> bool {
    with(|inner| {
        inner
            .sync
            .view()
            .is_some_and(|v| v.samples.iter().any(|s| s.id == id))
    })
    .unwrap_or(false)
}

/// Undoes (or with `redo`, redoes) this player's newest own edit, as an edit everyone gets. Parts
/// someone else changed since are left alone, and the player is told. Held (coalesced) edits
/// are sent first, so they are part of the history in order.
pub fn undo(redo: bool) {
    with(|inner| {
        let now = perf_now();
        for (key, e) in std::mem::take(&mut inner.held) {
            inner.last_sent.insert(key, now);
            send_edit(inner, e);
        }
        if inner.sync.awaiting_ack() {
            inner.queued_undo = Some(redo);
            return;
        }
        history_step(inner, redo);
    });
}

fn history_step(inner: &mut Inner, redo: bool) {
    let what = if redo { "Redo" } else { "Undo" };
    let step = if redo {
        inner.sync.redo()
    } else {
        inner.sync.undo()
    };
    let Some(step) = step else {
        inner.sig.message.set(Some(format!(
            "{what}: nothing of yours to {}",
            crate::text::lower(what)
        )));
        return;
    };
    if let (Some(m), Some(ws)) = (&step.message, &inner.ws) {
        if ws.ready_state() == WebSocket::OPEN {
            let _ = ws.send_with_str(&m.encode());
        }
    }
    if step.skipped > 0 {
        let parts = if step.skipped == 1 {
            "change"
        } else {
            "changes"
        };
        inner.sig.message.set(Some(format!(
            "{what} left {} {parts} alone: another player changed that since",
            step.skipped
        )));
    }
    publish_view(inner);
}

/// For tests and the curious: the clock sync as JSON (`offset` is server time minus
/// `performance.now()`; `rtt`, `uncertainty` in ms; `samples`; `ready`).
#[wasm_bindgen(js_name = syncInfo)]
pub fn sync_info() -> String {
    with(|i| {
        serde_json::json!({
            "offset": i.clock.offset(),
            "rtt": i.clock.best_rtt(),
            "uncertainty": i.clock.uncertainty(),
            "samples": i.clock.len(),
            "ready": i.clock.is_ready(),
        })
        .to_string()
    })
    .unwrap_or_else(|| "null".into())
}
