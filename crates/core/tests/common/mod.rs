//! A simulated network on a fake clock: one `LiveSession`, many `SyncClient`s, explicit delivery.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};

use keyboardia_core::client::SyncClient;
use keyboardia_core::live::ConnId;
use keyboardia_core::protocol::*;
use keyboardia_core::*;

pub struct SimClient {
    pub sync: SyncClient,
    pub conn: Option<ConnId>,
    /// Frames from the server not yet delivered to this client.
    pub inbox: VecDeque<String>,
    /// Frames to the server not yet delivered.
    pub outbox: VecDeque<String>,
    pub events: Vec<client::Event>,
    pub closed_with: Option<u16>,
}

pub struct Sim {
    pub now: f64,
    pub server: LiveSession,
    pub clients: Vec<SimClient>,
    pub by_conn: HashMap<ConnId, usize>,
    pub next_conn: ConnId,
    /// The durable log, as a host would have written it.
    pub log: Vec<Applied>,
    pub snapshots: Vec<(u64, SessionState)>,
    pub idle: bool,
    /// Connections whose client vanished without the server noticing.
    pub zombies: Vec<ConnId>,
}

impl Sim {
    pub fn new(n: usize, config: LiveConfig) -> Sim {
        Sim::with_state(n, config, SessionState::starter(), false)
    }

    pub fn with_state(n: usize, config: LiveConfig, state: SessionState, read_only: bool) -> Sim {
        let now = 1_000_000.0;
        Sim {
            now,
            server: LiveSession::new("s1", state, 0, read_only, vec![], config, now),
            clients: (0..n)
                .map(|i| SimClient {
                    sync: client::SyncClient::new(format!("p{i}"), None),
                    conn: None,
                    inbox: VecDeque::new(),
                    outbox: VecDeque::new(),
                    events: Vec::new(),
                    closed_with: None,
                })
                .collect(),
            by_conn: HashMap::new(),
            next_conn: 1,
            log: Vec::new(),
            snapshots: Vec::new(),
            idle: false,
            zombies: Vec::new(),
        }
    }

    pub fn drain(&mut self) {
        while let Some(o) = self.server.poll_output() {
            match o {
                Output::Persist(a) => {
                    if let Some(last) = self.log.last() {
                        assert_eq!(a.seq, last.seq + 1, "log seqs must be contiguous");
                    }
                    self.log.push(a)
                }
                Output::Snapshot { seq, state } => self.snapshots.push((seq, *state)),
                Output::Send { conn, msg } => {
                    if let Some(&i) = self.by_conn.get(&conn) {
                        self.clients[i].inbox.push_back(msg.encode());
                    }
                }
                Output::Broadcast { msg, to } => {
                    let text = msg.encode();
                    for c in to {
                        if let Some(&i) = self.by_conn.get(&c) {
                            self.clients[i].inbox.push_back(text.clone());
                        }
                    }
                }
                Output::Close { conn, code, .. } => {
                    if let Some(i) = self.by_conn.remove(&conn) {
                        let c = &mut self.clients[i];
                        if c.conn == Some(conn) {
                            // Frames sent before the close still arrive; then the socket is gone.
                            while let Some(t) = c.inbox.pop_front() {
                                let ev = c.sync.on_text(&t);
                                c.events.push(ev);
                            }
                            c.conn = None;
                            c.outbox.clear();
                            c.closed_with = Some(code);
                        }
                    }
                }
                Output::Idle => self.idle = true,
            }
        }
    }

    pub fn input(&mut self, input: Input<'_>) {
        self.server.handle(self.now, input);
        self.drain();
    }

    pub fn connect(&mut self, i: usize) {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.clients[i].conn = Some(conn);
        self.clients[i].inbox.clear();
        self.clients[i].outbox.clear();
        self.clients[i].closed_with = None;
        self.by_conn.insert(conn, i);
        self.input(Input::Connected { conn });
        let hello = self.clients[i].sync.hello().encode();
        self.clients[i].events.clear();
        self.clients[i].outbox.push_back(hello);
    }

    /// The client's socket drops; `notify` says whether the server notices now (else it is a
    /// zombie until replaced).
    pub fn disconnect(&mut self, i: usize, notify: bool) {
        if let Some(conn) = self.clients[i].conn.take() {
            self.clients[i].inbox.clear();
            self.clients[i].outbox.clear();
            if notify {
                self.by_conn.remove(&conn);
                self.input(Input::Disconnected { conn });
            } else {
                // The server still thinks it is connected; its sends go nowhere.
                self.by_conn.remove(&conn);
                self.zombies.push(conn);
            }
        }
    }

    pub fn send(&mut self, i: usize, msg: ClientMessage) {
        if self.clients[i].conn.is_some() {
            self.clients[i].outbox.push_back(msg.encode());
        }
    }

    pub fn send_raw(&mut self, i: usize, text: &str) {
        self.clients[i].outbox.push_back(text.to_string());
    }

    pub fn edit(&mut self, i: usize, edit: Edit) -> Result<(), EditError> {
        let m = self.clients[i].sync.edit(edit)?;
        self.send(i, m);
        Ok(())
    }

    /// Undo (or redo) for client `i`: `None` if there was nothing to undo (or an own edit is
    /// unacknowledged), else how many parts were skipped. The edit, if any, is queued to send.
    pub fn undo(&mut self, i: usize, redo: bool) -> Option<usize> {
        let c = &mut self.clients[i].sync;
        let u = if redo { c.redo()? } else { c.undo()? };
        if let Some(m) = u.message {
            self.send(i, m);
        }
        Some(u.skipped)
    }

    /// Delivers one frame client → server. Returns false if there was none.
    pub fn deliver_up(&mut self, i: usize) -> bool {
        let Some(conn) = self.clients[i].conn else {
            return false;
        };
        let Some(text) = self.clients[i].outbox.pop_front() else {
            return false;
        };
        self.input(Input::Message { conn, text: &text });
        true
    }

    /// Delivers one frame server → client.
    pub fn deliver_down(&mut self, i: usize) -> bool {
        let Some(text) = self.clients[i].inbox.pop_front() else {
            return false;
        };
        let ev = self.clients[i].sync.on_text(&text);
        if let client::Event::Welcomed { resend } = &ev {
            for m in resend.clone() {
                self.send(i, m);
            }
        }
        self.clients[i].events.push(ev);
        true
    }

    /// Delivers everything until nothing moves.
    pub fn settle(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.clients.len() {
                while self.deliver_up(i) {
                    moved = true;
                }
                while self.deliver_down(i) {
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }

    pub fn advance(&mut self, ms: f64) {
        self.now += ms;
        if let Some(t) = self.server.poll_timeout() {
            if t <= self.now {
                self.input(Input::Timeout);
            }
        }
    }

    pub fn view(&self, i: usize) -> &SessionState {
        self.clients[i].sync.view().expect("client has a view")
    }

    /// Errors this client received, by code.
    pub fn errors(&self, i: usize) -> Vec<ErrorCode> {
        self.clients[i]
            .events
            .iter()
            .filter_map(|e| match e {
                client::Event::Rejected { code, .. } | client::Event::Error { code, .. } => {
                    Some(*code)
                }
                _ => None,
            })
            .collect()
    }
}

pub const TRACKS: &[&str] = &["kick", "snare", "hat", "bass", "t1", "t2"];

/// A random edit of any kind (for the property tests).
pub fn edit(kind: u8, a: u8, b: u8) -> Edit {
    let track_id = TRACKS[a as usize % TRACKS.len()].to_string();
    match kind % 13 {
        0 | 1 => Edit::SetStep {
            track_id,
            step: (b % 20) as i64,
            active: a.is_multiple_of(2),
        },
        2 => Edit::ToggleStep {
            track_id,
            step: (b % 20) as i64,
        },
        3 => Edit::SetTrackVolume {
            track_id,
            volume: b as f64 / 255.0,
        },
        4 => Edit::AddTrack {
            track: NewTrack {
                id: track_id,
                name: "New".into(),
                instrument: "synth/lead".into(),
                step_count: None,
            },
        },
        5 => Edit::DeleteTrack { track_id },
        6 => Edit::ReorderTrack {
            track_id,
            to_index: (b % 6) as i64,
        },
        7 => Edit::SetTempo {
            tempo: 60 + (b as i64 % 121),
        },
        8 => {
            if b.is_multiple_of(2) {
                Edit::Play { from_step: None }
            } else {
                Edit::Stop {}
            }
        }
        9 => Edit::SetParameterLock {
            track_id,
            step: (b % 16) as i64,
            lock: if b.is_multiple_of(3) {
                None
            } else {
                Some(LockRequest {
                    pitch: Some((b % 49) as i64 - 24),
                    volume: None,
                    tie: b.is_multiple_of(2),
                    // Sometimes a chord (refused on the drum tracks).
                    chord: if b.is_multiple_of(5) {
                        vec![4, 7]
                    } else {
                        vec![]
                    },
                    ..LockRequest::default()
                })
            },
        },
        10 => Edit::SetTrackStepCount {
            track_id,
            step_count: [4, 7, 16, 32, 128][b as usize % 5],
        },
        11 => Edit::SetEffect {
            track_id: a.is_multiple_of(2).then_some(track_id),
            param: if a.is_multiple_of(2) {
                keyboardia_core::effects::Fx::SendReverb
            } else {
                keyboardia_core::effects::Fx::ReverbMix
            },
            value: b as f64 / 255.0,
        },
        _ if b.is_multiple_of(2) => Edit::SetLoopRegion {
            region: (!b.is_multiple_of(3)).then_some(LoopRegionRequest {
                start: (b % 8) as i64,
                end: (b % 8 + 1 + a % 16) as i64,
            }),
        },
        _ => Edit::SetSessionName {
            name: format!("name {b}"),
        },
    }
}
