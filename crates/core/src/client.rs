//! The client half of the sync protocol, shared by the browser app and the tests.
//!
//! A [`SyncClient`] keeps the last state the server confirmed, the edits it sent that are not yet
//! confirmed (by mutation id), and the *view*: confirmed state plus pending edits re-applied on
//! top. On reconnect it says the last seq it saw, takes the server's replay or snapshot, and
//! re-sends every unconfirmed edit with its original mutation id (the server applies each once).

use std::collections::{HashMap, VecDeque};

use crate::limits::PROTOCOL_VERSION;
use crate::model::SessionState;
use crate::protocol::*;
use crate::undo::{History, Kind};

/// One client's view of a session.
#[derive(Clone, Debug)]
pub struct SyncClient {
    player_id: String,
    name: Option<String>,
    confirmed: Option<SessionState>,
    seq: u64,
    pending: VecDeque<EditFrame>,
    view: Option<SessionState>,
    next_mid: u64,
    /// A random part per client instance, in every mutation id (see [`SyncClient::with_instance`]).
    instance: String,
    /// Between `hello()` and the server's `WELCOME`: changes are not applied yet (the welcome
    /// decides where this client resumes from).
    awaiting_welcome: bool,
    /// Undo and redo of this player's own edits (kept across reconnects).
    history: History,
    /// Which pending edits are undos or redos (the rest are new edits).
    kinds: HashMap<String, Kind>,
    pub read_only: bool,
    pub players: Vec<Player>,
    pub me: Option<Player>,
}

/// An undo or redo, ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct UndoMessage {
    /// The edit to send; `None` when every part was changed by someone else since.
    pub message: Option<ClientMessage>,
    /// Parts left out because another player changed them since (tell the player).
    pub skipped: usize,
}

/// What happened when a server message was applied.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The welcome arrived: re-send these unconfirmed edits.
    Welcomed {
        resend: Vec<ClientMessage>,
    },
    /// A change was applied (by us or by someone else).
    Changed {
        seq: u64,
        by_me: bool,
    },
    /// An edit of ours was refused and rolled back.
    Rejected {
        mid: String,
        code: ErrorCode,
        message: String,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    Presence,
    ClockSync {
        client_time: f64,
        server_time: f64,
    },
    /// A message of a type this build does not know (a newer server): ignored.
    Ignored,
}

impl SyncClient {
    pub fn new(player_id: impl Into<String>, name: Option<String>) -> SyncClient {
        SyncClient {
            player_id: player_id.into(),
            name,
            confirmed: None,
            seq: 0,
            pending: VecDeque::new(),
            view: None,
            next_mid: 1,
            instance: String::new(),
            awaiting_welcome: false,
            history: History::default(),
            kinds: HashMap::new(),
            read_only: false,
            players: Vec::new(),
            me: None,
        }
    }

    /// Names this client instance (a random part, new each time a page loads): mutation ids
    /// become `{player}-{instance}-{n}`, unique for the lifetime of the player id even though
    /// the player id survives a reload and the counter starts again at 1.
    pub fn with_instance(mut self, instance: impl Into<String>) -> SyncClient {
        self.instance = instance.into();
        self
    }

    pub fn player_id(&self) -> &str {
        &self.player_id
    }

    /// The state to show: confirmed plus pending edits.
    pub fn view(&self) -> Option<&SessionState> {
        self.view.as_ref()
    }

    /// The last state the server confirmed.
    pub fn confirmed(&self) -> Option<&SessionState> {
        self.confirmed.as_ref()
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The first message on a (re)connection.
    pub fn hello(&mut self) -> ClientMessage {
        self.awaiting_welcome = true;
        ClientMessage::Control(Control::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            player_id: self.player_id.clone(),
            name: self.name.clone(),
            last_seq: self.confirmed.as_ref().map(|_| self.seq),
        }))
    }

    /// Makes an edit: applies it to the view at once and returns the message to send (also kept
    /// to re-send until the server confirms it). Transport edits are not applied optimistically:
    /// their timing comes from the server.
    pub fn edit(&mut self, edit: Edit) -> Result<ClientMessage, EditError> {
        self.edit_as(edit, Kind::New)
    }

    pub fn can_undo(&self) -> bool {
        self.history.can_undo()
    }

    pub fn can_redo(&self) -> bool {
        self.history.can_redo()
    }

    /// Whether an own edit is still unacknowledged (undo waits for it: the history follows the
    /// server's order).
    pub fn awaiting_ack(&self) -> bool {
        self.pending.iter().any(|f| !edit_is_transport(&f.edit))
    }

    /// Undoes this player's newest undoable edit. `None`: nothing to undo (or an own edit is still
    /// on its way; try again once it is acknowledged). Otherwise the message to send (if any part
    /// is still ours) and how many parts were skipped because someone else changed them since.
    pub fn undo(&mut self) -> Option<UndoMessage> {
        self.history_step(true)
    }

    /// Redoes the newest undone edit; see [`SyncClient::undo`].
    pub fn redo(&mut self) -> Option<UndoMessage> {
        self.history_step(false)
    }

    fn history_step(&mut self, undo: bool) -> Option<UndoMessage> {
        if self.awaiting_ack() {
            return None;
        }
        let view = self.view.as_ref()?;
        let step = if undo {
            self.history.undo(view)?
        } else {
            self.history.redo(view)?
        };
        let message = match step.edit {
            Some(e) => self
                .edit_as(e, if undo { Kind::Undo } else { Kind::Redo })
                .ok(),
            None => None,
        };
        Some(UndoMessage {
            message,
            skipped: step.skipped,
        })
    }

    fn edit_as(&mut self, edit: Edit, kind: Kind) -> Result<ClientMessage, EditError> {
        if let Some(view) = &mut self.view {
            if self.read_only && !edit_is_transport(&edit) {
                return Err(EditError::ReadOnly);
            }
            let change = resolve(
                view,
                &edit,
                ResolveCtx {
                    now: 0.0,
                    lead_ms: 0.0,
                },
            )?;
            if !edit_is_transport(&edit) {
                apply_pending(view, &change);
            }
        }
        let mid = if self.instance.is_empty() {
            format!("{}-{}", self.player_id, self.next_mid)
        } else {
            format!("{}-{}-{}", self.player_id, self.instance, self.next_mid)
        };
        self.next_mid += 1;
        if kind != Kind::New {
            self.kinds.insert(mid.clone(), kind);
        }
        let frame = EditFrame { mid, edit };
        self.pending.push_back(frame.clone());
        Ok(ClientMessage::Edit(frame))
    }

    /// Applies a message from the server.
    pub fn on_message(&mut self, msg: ServerMessage) -> Event {
        match msg {
            ServerMessage::Welcome(w) => {
                self.awaiting_welcome = false;
                self.read_only = w.read_only;
                self.players = w.players;
                self.me = Some(w.you);
                if let Some(s) = w.snapshot {
                    self.confirmed = Some(s);
                    self.seq = w.snapshot_seq.unwrap_or(w.seq);
                }
                for a in &w.missed {
                    self.apply_confirmed(a);
                }
                self.seq = self.seq.max(w.seq);
                self.rebuild_view();
                let resend = self
                    .pending
                    .iter()
                    .cloned()
                    .map(ClientMessage::Edit)
                    .collect();
                Event::Welcomed { resend }
            }
            ServerMessage::Applied(_) if self.awaiting_welcome => Event::Ignored,
            ServerMessage::Applied(a) => {
                let by_me = self.apply_confirmed(&a);
                self.rebuild_view();
                Event::Changed { seq: a.seq, by_me }
            }
            ServerMessage::Error { code, message, mid } => match mid {
                Some(mid) if self.pending.iter().any(|f| f.mid == mid) => {
                    self.pending.retain(|f| f.mid != mid);
                    self.kinds.remove(&mid);
                    self.rebuild_view();
                    Event::Rejected { mid, code, message }
                }
                _ => Event::Error { code, message },
            },
            ServerMessage::PlayerJoined { player } => {
                self.players.retain(|p| p.id != player.id);
                self.players.push(player);
                Event::Presence
            }
            ServerMessage::PlayerLeft { player_id } => {
                self.players.retain(|p| p.id != player_id);
                Event::Presence
            }
            ServerMessage::ClockSyncResponse {
                client_time,
                server_time,
            } => Event::ClockSync {
                client_time,
                server_time,
            },
        }
    }

    /// Decodes and applies a text frame; unknown types are ignored.
    pub fn on_text(&mut self, text: &str) -> Event {
        match ServerMessage::decode(text) {
            Some(m) => self.on_message(m),
            None => Event::Ignored,
        }
    }

    fn apply_confirmed(&mut self, a: &Applied) -> bool {
        let mut by_me = false;
        let mut kind = None;
        if let Some(mid) = &a.mid {
            if a.player_id.as_deref() == Some(self.player_id.as_str()) {
                by_me = true;
                if self.pending.iter().any(|f| &f.mid == mid) {
                    kind = Some(self.kinds.remove(mid).unwrap_or(Kind::New));
                }
                self.pending.retain(|f| &f.mid != mid);
            }
        }
        if a.seq <= self.seq {
            return by_me; // already applied (a duplicate acknowledgement)
        }
        if let Some(s) = &mut self.confirmed {
            match kind {
                // Our own edit, in the server's order: its exact inverse.
                Some(kind) => self.history.record(s, &a.change, kind),
                None if !by_me => self.history.taken_over(&a.change),
                None => {}
            }
            apply(s, &a.change);
        }
        self.seq = a.seq;
        by_me
    }

    fn rebuild_view(&mut self) {
        let Some(confirmed) = &self.confirmed else {
            return;
        };
        let mut view = confirmed.clone();
        for f in &self.pending {
            if edit_is_transport(&f.edit) {
                continue;
            }
            if let Ok(change) = resolve(
                &view,
                &f.edit,
                ResolveCtx {
                    now: 0.0,
                    lead_ms: 0.0,
                },
            ) {
                apply_pending(&mut view, &change);
            }
        }
        self.view = Some(view);
    }
}

/// Applies a pending edit's change to the view, all but the transport: where playback goes
/// (the re-anchor of a tempo or loop-region change) is the server's to say, at its own time;
/// until it does, the view plays on as confirmed.
fn apply_pending(view: &mut SessionState, change: &Change) {
    let transport = view.transport;
    apply(view, change);
    view.transport = transport;
}
