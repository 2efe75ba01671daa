//! The live session: one authoritative state machine per session, driven by a host.
//!
//! ```text
//! host event ──▶ handle(now, Input) ──▶ poll_output() until None ──▶ host performs outputs
//!                                     └─▶ poll_timeout() ──▶ host calls handle(t, Timeout) at t
//! ```
//!
//! The host's one duty besides moving bytes: perform every [`Output::Persist`] (and
//! [`Output::Snapshot`]) of a drain durably *before* any [`Output::Send`] or
//! [`Output::Broadcast`] of that drain, so nothing is acknowledged before it is committed.
//! Batching several drains' persists into one commit is fine.
//!
//! Rules that live here: sequencing and dedup of edits, resume (replay or snapshot), presence
//! with stable player ids (a reconnect replaces the old socket), the player cap, the
//! per-connection rate limit, read-only published sessions, the shared transport, idle unload.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::limits::*;
use crate::model::{check_ident, check_name, Invalid, SessionState};
use crate::protocol::*;
use crate::rate::TokenBucket;

/// A host's handle for one connection (socket).
pub type ConnId = u64;

/// Tunables of a live session. Defaults are the production values.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// How far in the future PLAY, STOP and tempo changes take effect (ms).
    pub lead_ms: f64,
    /// How many recent changes are kept to replay to reconnecting clients and to dedupe retries.
    pub replay_window: usize,
    /// Ask the host for a snapshot after this many changes.
    pub snapshot_every: u64,
    /// Per-connection rate limit: sustained messages per second, and burst.
    pub rate_per_sec: f64,
    pub rate_burst: f64,
    /// A session with no players asks to be unloaded after this long (ms).
    pub idle_unload_ms: f64,
    pub max_players: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            lead_ms: 250.0,
            replay_window: 1024,
            snapshot_every: 200,
            rate_per_sec: 50.0,
            rate_burst: 100.0,
            idle_unload_ms: 30_000.0,
            max_players: MAX_PLAYERS,
        }
    }
}

/// One drain of a session's outputs ([`LiveSession::drain`]). Split it: store the
/// [`Durable`] part, then trade it for the messages with [`Sends::release`]. The messages cannot
/// be had any other way, so none leaves before the changes it announces are stored.
#[derive(Debug)]
pub struct Batch {
    pub durable: Durable,
    sends: Sends,
}

impl Batch {
    pub fn split(self) -> (Durable, Sends) {
        (self.durable, self.sends)
    }
}

/// What a host must make durable before sending anything of the same batch.
#[derive(Debug, Default)]
pub struct Durable {
    /// Append these to the log, in order.
    pub changes: Vec<Applied>,
    /// A good moment to store a snapshot and refresh the session index.
    pub snapshot: Option<(u64, Box<SessionState>)>,
    /// No players for a while: the host may drop the session from memory (after sending).
    pub idle: bool,
}

impl Durable {
    /// Whether there is anything to store.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.snapshot.is_none()
    }

    /// Declares this batch's changes stored; the receipt releases its messages.
    pub fn stored(self) -> Stored {
        Stored(())
    }
}

/// The receipt for a stored [`Durable`].
#[derive(Debug)]
pub struct Stored(());

/// The messages of a batch, held until its changes are stored.
#[derive(Debug)]
pub struct Sends(Vec<Delivery>);

impl Sends {
    pub fn release(self, _stored: Stored) -> Vec<Delivery> {
        self.0
    }
}

/// A message to deliver, already encoded (once, however many receive it).
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    Text {
        to: Vec<ConnId>,
        text: String,
    },
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
}

/// An event for the session.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    Connected {
        conn: ConnId,
    },
    Message {
        conn: ConnId,
        text: &'a str,
    },
    Disconnected {
        conn: ConnId,
    },
    /// The time from [`LiveSession::poll_timeout`] has come.
    Timeout,
}

/// Something the host must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Append this change to the durable log (before any later send of this drain).
    Persist(Applied),
    /// A good moment to store a snapshot and refresh the session index: every
    /// `snapshot_every` changes and when the last player leaves.
    Snapshot {
        seq: u64,
        state: Box<SessionState>,
    },
    Send {
        conn: ConnId,
        msg: ServerMessage,
    },
    /// Send to these connections (every connection that has joined with `HELLO`).
    Broadcast {
        msg: ServerMessage,
        to: Vec<ConnId>,
    },
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// No players for `idle_unload_ms`: the host may drop the session from memory.
    Idle,
}

/// A session rebuilt from storage: its last snapshot with the log after it applied, and the most
/// recent changes (for replay and dedupe).
#[derive(Debug)]
pub struct Replayed {
    pub state: SessionState,
    pub seq: u64,
    pub recent: Vec<Applied>,
}

/// Rebuilds a session from its snapshot (`state` at `snapshot_seq`) and the tail of its log,
/// oldest first, which must hold every change after the snapshot (and may hold older ones, kept
/// for replay). `recent` is how many changes to keep for replay. Errors on a gap in the log.
pub fn replay(
    mut state: SessionState,
    snapshot_seq: u64,
    tail: Vec<Applied>,
    recent: usize,
) -> Result<Replayed, String> {
    let mut seq = snapshot_seq;
    for a in tail.iter().filter(|a| a.seq > snapshot_seq) {
        if a.seq != seq + 1 {
            return Err(format!("the edit log has a gap at seq {}", seq + 1));
        }
        apply(&mut state, &a.change);
        seq = a.seq;
    }
    let skip = tail.len().saturating_sub(recent);
    Ok(Replayed {
        state,
        seq,
        recent: tail.into_iter().skip(skip).collect(),
    })
}

/// WebSocket close codes the session uses.
pub mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const REPLACED: u16 = 4000;
    pub const UNSUPPORTED_PROTOCOL: u16 = 4002;
    pub const SESSION_FULL: u16 = 4003;
}

struct Conn {
    player: Option<String>,
    bucket: TokenBucket,
    /// The round trip this client last reported (ms), for the transport lead.
    rtt: Option<f64>,
}

/// Colours (with names) for players: distinct, readable on dark and light backgrounds.
pub const PLAYER_COLORS: &[(&str, &str)] = &[
    ("Teal", "#2ec4b6"),
    ("Coral", "#ff6b6b"),
    ("Amber", "#ffb703"),
    ("Violet", "#9d4edd"),
    ("Sky", "#4cc9f0"),
    ("Lime", "#a7c957"),
    ("Rose", "#f72585"),
    ("Indigo", "#4361ee"),
    ("Orange", "#fb8500"),
    ("Mint", "#80ffdb"),
];
const ANIMALS: &[&str] = &[
    "Fox", "Owl", "Otter", "Lynx", "Heron", "Panda", "Koala", "Falcon", "Badger", "Moose", "Crane",
    "Gecko",
];

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// The authoritative state of one live session.
pub struct LiveSession {
    session_id: String,
    state: SessionState,
    seq: u64,
    read_only: bool,
    config: LiveConfig,
    recent: VecDeque<Applied>,
    /// (player, mutation id) -> the seq it was applied at, and the fingerprint of the edit (not
    /// known for changes restored from storage, which keeps changes, not edits).
    mids: HashMap<(String, String), (u64, Option<u64>)>,
    conns: HashMap<ConnId, Conn>,
    players: BTreeMap<String, (Player, ConnId)>,
    outputs: VecDeque<Output>,
    changes_since_snapshot: u64,
    empty_since: Option<f64>,
    idle_reported: bool,
}

impl LiveSession {
    /// Restores a session from its last snapshot (`state` at `seq`, the log already replayed
    /// onto it) and the most recent changes (for replay to reconnecting clients and dedupe).
    pub fn new(
        session_id: impl Into<String>,
        state: SessionState,
        seq: u64,
        read_only: bool,
        recent: Vec<Applied>,
        config: LiveConfig,
        now: f64,
    ) -> LiveSession {
        let mut s = LiveSession {
            session_id: session_id.into(),
            state,
            seq,
            read_only,
            recent: VecDeque::with_capacity(config.replay_window.min(4096)),
            config,
            mids: HashMap::new(),
            conns: HashMap::new(),
            players: BTreeMap::new(),
            outputs: VecDeque::new(),
            changes_since_snapshot: 0,
            empty_since: Some(now),
            idle_reported: false,
        };
        for a in recent {
            s.remember(a);
        }
        s
    }

    pub fn state(&self) -> &SessionState {
        &self.state
    }
    pub fn seq(&self) -> u64 {
        self.seq
    }
    pub fn read_only(&self) -> bool {
        self.read_only
    }
    pub fn players(&self) -> impl Iterator<Item = &Player> {
        self.players.values().map(|(p, _)| p)
    }
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The player that joined on this connection, if it has sent `HELLO`.
    pub fn player_of(&self, conn: ConnId) -> Option<&Player> {
        let id = self.conns.get(&conn)?.player.as_ref()?;
        self.players
            .get(id)
            .filter(|(_, c)| *c == conn)
            .map(|(p, _)| p)
    }

    /// Re-attaches a connection that stayed open while the host dropped this session from memory
    /// (a Durable Object that hibernated): no messages, no presence change; the player (if it had
    /// joined) is present again as it was.
    pub fn restore_connection(&mut self, now: f64, conn: ConnId, player: Option<Player>) {
        self.conns.insert(
            conn,
            Conn {
                player: player.as_ref().map(|p| p.id.clone()),
                bucket: TokenBucket::new(self.config.rate_per_sec, self.config.rate_burst, now),
                // A woken host forgot it: the next CLOCK_SYNC (twice a second) brings it back.
                rtt: None,
            },
        );
        if let Some(p) = player {
            self.players.insert(p.id.clone(), (p, conn));
        }
        self.empty_since = None;
        self.idle_reported = false;
    }

    /// Feeds one event in.
    pub fn handle(&mut self, now: f64, input: Input<'_>) {
        match input {
            Input::Connected { conn } => {
                self.conns.insert(
                    conn,
                    Conn {
                        player: None,
                        bucket: TokenBucket::new(
                            self.config.rate_per_sec,
                            self.config.rate_burst,
                            now,
                        ),
                        rtt: None,
                    },
                );
                self.empty_since = None;
                self.idle_reported = false;
            }
            Input::Message { conn, text } => self.on_message(now, conn, text),
            Input::Disconnected { conn } => self.on_disconnect(now, conn),
            Input::Timeout => {
                if let Some(t) = self.poll_timeout() {
                    if now >= t && !self.idle_reported {
                        self.idle_reported = true;
                        self.outputs.push_back(Output::Idle);
                    }
                }
            }
        }
    }

    /// The next thing the host must do, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Everything the session has for its host right now, as one [`Batch`] (or `None`): what
    /// must be made durable, and the messages that may leave only after that. Hosts use this
    /// rather than [`Self::poll_output`], so "commit, then send" is the only order they can
    /// write.
    pub fn drain(&mut self) -> Option<Batch> {
        if self.outputs.is_empty() {
            return None;
        }
        let mut durable = Durable::default();
        let mut sends = Vec::new();
        while let Some(o) = self.outputs.pop_front() {
            match o {
                Output::Persist(a) => durable.changes.push(a),
                Output::Snapshot { seq, state } => durable.snapshot = Some((seq, state)),
                Output::Idle => durable.idle = true,
                Output::Send { conn, msg } => sends.push(Delivery::Text {
                    to: vec![conn],
                    text: msg.encode(),
                }),
                Output::Broadcast { msg, to } => sends.push(Delivery::Text {
                    to,
                    text: msg.encode(),
                }),
                Output::Close { conn, code, reason } => {
                    sends.push(Delivery::Close { conn, code, reason })
                }
            }
        }
        Some(Batch {
            durable,
            sends: Sends(sends),
        })
    }

    /// When the host should next call `handle(t, Input::Timeout)`.
    pub fn poll_timeout(&self) -> Option<f64> {
        match self.empty_since {
            Some(t) if self.conns.is_empty() && !self.idle_reported => {
                Some(t + self.config.idle_unload_ms)
            }
            _ => None,
        }
    }

    /// An edit from outside any WebSocket (the HTTP API): same rules, same log, same broadcast.
    pub fn system_edit(&mut self, now: f64, edit: &Edit) -> Result<Applied, EditError> {
        if self.read_only && !edit_is_transport(edit) {
            return Err(EditError::ReadOnly);
        }
        let change = resolve(&self.state, edit, self.ctx(now))?;
        Ok(self.commit(change, None, None))
    }

    /// A change the host originates (a recording was stored).
    pub fn system_change(&mut self, change: Change) -> Result<Applied, EditError> {
        if self.read_only {
            return Err(EditError::ReadOnly);
        }
        if let Change::SampleAdded { .. } = &change {
            if self.state.samples.len() >= MAX_SAMPLES_PER_SESSION {
                return Err(Invalid(format!(
                    "a session holds at most {MAX_SAMPLES_PER_SESSION} recordings"
                ))
                .into());
            }
        }
        Ok(self.commit(change, None, None))
    }

    /// Closes every connection (server shutdown) and asks for a final snapshot.
    pub fn shutdown(&mut self) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.outputs.push_back(Output::Close {
                conn,
                code: close::GOING_AWAY,
                reason: "server is shutting down".into(),
            });
        }
        self.conns.clear();
        self.players.clear();
        self.snapshot_if_dirty();
    }

    /// Asks for a snapshot if anything changed since the last one.
    pub fn snapshot_if_dirty(&mut self) {
        if self.changes_since_snapshot > 0 {
            self.changes_since_snapshot = 0;
            self.outputs.push_back(Output::Snapshot {
                seq: self.seq,
                state: Box::new(self.state.clone()),
            });
        }
    }

    fn ctx(&self, now: f64) -> ResolveCtx {
        ResolveCtx {
            now,
            lead_ms: self.lead_ms(),
        }
    }

    /// How far ahead transport changes are anchored: enough for the slowest player here.
    pub fn lead_ms(&self) -> f64 {
        let slowest = self
            .conns
            .values()
            .filter(|c| c.player.is_some())
            .filter_map(|c| c.rtt)
            .max_by(f64::total_cmp);
        crate::clock::transport_lead_ms(self.config.lead_ms, slowest)
    }

    fn send(&mut self, conn: ConnId, msg: ServerMessage) {
        self.outputs.push_back(Output::Send { conn, msg });
    }

    fn broadcast(&mut self, msg: ServerMessage) {
        let to = self.players.values().map(|(_, c)| *c).collect();
        self.outputs.push_back(Output::Broadcast { msg, to });
    }

    fn error(&mut self, conn: ConnId, code: ErrorCode, message: String, mid: Option<String>) {
        self.send(conn, ServerMessage::Error { code, message, mid });
    }

    fn on_message(&mut self, now: f64, conn_id: ConnId, text: &str) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        let limited = !conn.bucket.try_take(now);
        let player = conn.player.clone();
        if text.len() > MAX_MESSAGE_BYTES {
            let msg = format!(
                "message is {} bytes; the limit is {MAX_MESSAGE_BYTES}",
                text.len()
            );
            return self.error(conn_id, ErrorCode::TooLarge, msg, None);
        }
        let msg = match ClientMessage::decode(text) {
            Ok(m) => m,
            Err(e) => return self.error(conn_id, e.code, e.message, e.mid),
        };
        if limited {
            let mid = match &msg {
                ClientMessage::Edit(f) => Some(f.mid.clone()),
                _ => None,
            };
            let text = "too many messages; slow down".to_string();
            return self.error(conn_id, ErrorCode::RateLimited, text, mid);
        }
        match (msg, player) {
            (ClientMessage::Control(Control::Hello(h)), None) => self.on_hello(now, conn_id, h),
            (ClientMessage::Control(Control::Hello(_)), Some(_)) => self.error(
                conn_id,
                ErrorCode::InvalidMessage,
                "HELLO was already sent on this connection".into(),
                None,
            ),
            (ClientMessage::Control(Control::ClockSync { client_time, rtt }), _) => {
                if let Some(c) = self.conns.get_mut(&conn_id) {
                    c.rtt = rtt.filter(|r| r.is_finite() && *r >= 0.0);
                }
                self.send(
                    conn_id,
                    ServerMessage::ClockSyncResponse {
                        client_time,
                        server_time: now,
                    },
                )
            }
            (ClientMessage::Edit(f), None) => self.error(
                conn_id,
                ErrorCode::HelloRequired,
                "send HELLO before anything else".into(),
                Some(f.mid),
            ),
            (ClientMessage::Edit(f), Some(player)) => self.on_edit(now, conn_id, player, f),
        }
    }

    fn on_edit(&mut self, now: f64, conn: ConnId, player: String, f: EditFrame) {
        let key = (player, f.mid);
        let fingerprint = edit_fingerprint(&f.edit);
        if let Some(&(seq, seen)) = self.mids.get(&key) {
            if seen.is_some_and(|seen| seen != fingerprint) {
                // The same id for another edit (a client that restarted its counter): acknowledging
                // the old change would make the client believe its new edit was applied.
                let (_, mid) = key;
                let msg = format!(
                    "mutation id {mid} was already used for a different edit; this edit was not applied"
                );
                return self.error(conn, ErrorCode::MidReused, msg, Some(mid));
            }
            // A retry of an edit we already applied: acknowledge it again, to the sender only.
            if let Some(a) = self.recent.iter().find(|a| a.seq == seq).cloned() {
                self.send(conn, ServerMessage::Applied(a));
            }
            return;
        }
        let (player, mid) = key;
        if self.read_only && !edit_is_transport(&f.edit) {
            let e = EditError::ReadOnly;
            return self.error(conn, e.code(), e.to_string(), Some(mid));
        }
        match resolve(&self.state, &f.edit, self.ctx(now)) {
            Ok(change) => {
                let key = (player.clone(), mid.clone());
                self.commit(change, Some(mid), Some(player));
                if let Some(entry) = self.mids.get_mut(&key) {
                    entry.1 = Some(fingerprint);
                }
            }
            Err(e) => self.error(conn, e.code(), e.to_string(), Some(mid)),
        }
    }

    fn commit(&mut self, change: Change, mid: Option<String>, player: Option<String>) -> Applied {
        apply(&mut self.state, &change);
        self.seq += 1;
        let applied = Applied {
            seq: self.seq,
            mid,
            player_id: player,
            change,
        };
        self.remember(applied.clone());
        self.outputs.push_back(Output::Persist(applied.clone()));
        self.broadcast(ServerMessage::Applied(applied.clone()));
        self.changes_since_snapshot += 1;
        if self.changes_since_snapshot >= self.config.snapshot_every {
            self.snapshot_if_dirty();
        }
        applied
    }

    fn remember(&mut self, a: Applied) {
        self.seq = self.seq.max(a.seq);
        if let (Some(m), Some(p)) = (&a.mid, &a.player_id) {
            self.mids.insert((p.clone(), m.clone()), (a.seq, None));
        }
        self.recent.push_back(a);
        while self.recent.len() > self.config.replay_window {
            if let Some(old) = self.recent.pop_front() {
                if let (Some(m), Some(p)) = (old.mid, old.player_id) {
                    self.mids.remove(&(p, m));
                }
            }
        }
    }

    fn on_hello(&mut self, now: f64, conn: ConnId, h: Hello) {
        if h.protocol < MIN_PROTOCOL_VERSION || h.protocol > PROTOCOL_VERSION {
            self.error(
                conn,
                ErrorCode::UnsupportedProtocol,
                format!(
                    "protocol {} is not supported; this server speaks {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}",
                    h.protocol
                ),
                None,
            );
            return self.close(conn, close::UNSUPPORTED_PROTOCOL, "unsupported protocol");
        }
        if let Err(e) = check_ident("playerId", &h.player_id, PLAYER_ID_MAX_CHARS, "") {
            return self.error(conn, ErrorCode::InvalidMessage, e.0, None);
        }
        let name = match &h.name {
            Some(n) => match check_name("player name", n, PLAYER_NAME_MAX_CHARS, false) {
                Ok(n) => Some(n),
                Err(e) => return self.error(conn, ErrorCode::InvalidMessage, e.0, None),
            },
            None => None,
        };
        let player = if let Some((p, old)) = self.players.get(&h.player_id).cloned() {
            // The same tab reconnected: the new socket replaces the old one (no ghost player).
            if old != conn {
                self.error(
                    old,
                    ErrorCode::Replaced,
                    "this player connected again from another socket".into(),
                    None,
                );
                self.close(old, close::REPLACED, "replaced by a newer connection");
            }
            let p = Player {
                name: name.unwrap_or(p.name),
                ..p
            };
            self.players.insert(h.player_id.clone(), (p.clone(), conn));
            p
        } else {
            if self.players.len() >= self.config.max_players {
                self.error(
                    conn,
                    ErrorCode::SessionFull,
                    format!(
                        "This session is full: {} players are already here",
                        self.players.len()
                    ),
                    None,
                );
                return self.close(conn, close::SESSION_FULL, "session full");
            }
            let p = self.new_player(&h.player_id, name);
            self.players.insert(h.player_id.clone(), (p.clone(), conn));
            self.broadcast(ServerMessage::PlayerJoined { player: p.clone() });
            p
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.player = Some(h.player_id.clone());
        }
        let (snapshot, snapshot_seq, missed) = self.catch_up(h.last_seq);
        let welcome = Welcome {
            protocol: PROTOCOL_VERSION,
            session_id: self.session_id.clone(),
            you: player,
            players: self.players().cloned().collect(),
            server_time: now,
            seq: self.seq,
            read_only: self.read_only,
            snapshot,
            snapshot_seq,
            missed,
        };
        self.send(conn, ServerMessage::Welcome(Box::new(welcome)));
    }

    /// What a client that last saw `last_seq` needs: the missed changes if we still have them
    /// all, else a snapshot.
    fn catch_up(&self, last_seq: Option<u64>) -> (Option<SessionState>, Option<u64>, Vec<Applied>) {
        if let Some(last) = last_seq {
            if last == self.seq {
                return (None, None, Vec::new());
            }
            let oldest = self.recent.front().map(|a| a.seq).unwrap_or(self.seq + 1);
            if last < self.seq && last + 1 >= oldest {
                let missed = self
                    .recent
                    .iter()
                    .filter(|a| a.seq > last)
                    .cloned()
                    .collect();
                return (None, None, missed);
            }
        }
        (Some(self.state.clone()), Some(self.seq), Vec::new())
    }

    fn new_player(&self, id: &str, name: Option<String>) -> Player {
        let h = fnv1a(id);
        let n = PLAYER_COLORS.len();
        let taken: Vec<&str> = self
            .players
            .values()
            .map(|(p, _)| p.color.as_str())
            .collect();
        let start = (h % n as u64) as usize;
        let (color_name, color) = (0..n)
            .map(|i| PLAYER_COLORS[(start + i) % n])
            .find(|(_, c)| !taken.contains(c))
            .unwrap_or(PLAYER_COLORS[start]);
        let animal = ANIMALS[((h >> 16) % ANIMALS.len() as u64) as usize];
        Player {
            id: id.to_string(),
            name: name.unwrap_or_else(|| format!("{color_name} {animal}")),
            color: color.to_string(),
        }
    }

    fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        self.outputs.push_back(Output::Close {
            conn,
            code,
            reason: reason.to_string(),
        });
        // The connection is gone for the session now; a later Disconnected is a no-op.
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(p) = c.player {
                if self.players.get(&p).map(|(_, c)| *c) == Some(conn) {
                    self.players.remove(&p);
                }
            }
        }
    }

    fn on_disconnect(&mut self, now: f64, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(pid) = c.player {
            if self.players.get(&pid).map(|(_, c)| *c) == Some(conn) {
                self.players.remove(&pid);
                self.broadcast(ServerMessage::PlayerLeft { player_id: pid });
            }
        }
        if self.conns.is_empty() {
            self.empty_since = Some(now);
            self.idle_reported = false;
            self.snapshot_if_dirty();
        }
    }
}
