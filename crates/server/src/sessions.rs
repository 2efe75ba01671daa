//! Live sessions on the native host: one tokio task per loaded session owns its
//! `keyboardia_core::LiveSession` and drives it (the native equivalent of a Durable Object).
//!
//! The task takes commands (socket events, HTTP reads and edits), feeds them to the core, commits
//! the core's persist outputs to the store in one batch, and only then sends anything. A session
//! with no players asks to be unloaded after a while and is loaded again on demand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::Utf8Bytes;
use keyboardia_core::live::{ConnId, Delivery};
use keyboardia_core::model::{SessionMeta, SessionState};
use keyboardia_core::protocol::{Applied, Change, Edit, EditError};
use keyboardia_core::{Input, LiveConfig, LiveSession};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::store::{Commit, Store};

/// Milliseconds since the Unix epoch, with sub-millisecond precision.
pub fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// What a connection task is told to do.
#[derive(Debug)]
pub enum ToSocket {
    Text(Utf8Bytes),
    Close(u16, String),
}

/// Outbound queue length per connection; a client this far behind is disconnected.
const SOCKET_QUEUE: usize = 512;

pub enum Cmd {
    Connect {
        conn: ConnId,
        out: mpsc::Sender<ToSocket>,
    },
    Message {
        conn: ConnId,
        text: String,
    },
    Disconnect {
        conn: ConnId,
    },
    Get {
        reply: oneshot::Sender<(SessionState, u64)>,
    },
    Edit {
        edit: Edit,
        reply: oneshot::Sender<Result<Applied, ApplyError>>,
    },
    Change {
        change: Change,
        reply: oneshot::Sender<Result<Applied, ApplyError>>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// Why an HTTP-originated edit failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Edit(#[from] EditError),
    #[error("storage failed: {0}")]
    Storage(String),
}

/// Why a session could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no session with id {0}")]
    NotFound(Uuid),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("storage failed: {0}")]
    Storage(#[from] anyhow::Error),
}

#[derive(Clone)]
struct Handle {
    tx: mpsc::Sender<Cmd>,
    meta: Arc<SessionMeta>,
}

/// Every loaded session, by id.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

struct Inner {
    live: Mutex<HashMap<Uuid, Handle>>,
    store: Store,
    config: LiveConfig,
    metrics: Arc<Metrics>,
    next_conn: AtomicU64,
    shutting_down: std::sync::atomic::AtomicBool,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Sessions {
    pub fn new(store: Store, config: LiveConfig, metrics: Arc<Metrics>) -> Sessions {
        Sessions {
            inner: Arc::new(Inner {
                live: Mutex::new(HashMap::new()),
                store,
                config,
                metrics,
                next_conn: AtomicU64::new(1),
                shutting_down: false.into(),
                tasks: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn next_conn_id(&self) -> ConnId {
        self.inner.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The running task of a session, loading it from storage if needed.
    async fn open(&self, id: Uuid) -> Result<Handle, OpenError> {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(OpenError::ShuttingDown);
        }
        if let Some(h) = self.inner.live.lock().unwrap().get(&id) {
            if !h.tx.is_closed() {
                return Ok(h.clone());
            }
        }
        let loaded = self
            .inner
            .store
            .load(id, self.inner.config.replay_window)
            .await?
            .ok_or(OpenError::NotFound(id))?;
        let mut live = self.inner.live.lock().unwrap();
        if let Some(h) = live.get(&id) {
            if !h.tx.is_closed() {
                return Ok(h.clone()); // someone else loaded it meanwhile
            }
        }
        let (tx, rx) = mpsc::channel(1024);
        let meta = Arc::new(loaded.meta);
        let core = LiveSession::new(
            id.to_string(),
            loaded.state,
            loaded.seq,
            meta.immutable,
            loaded.recent,
            self.inner.config.clone(),
            now_ms(),
        );
        let handle = Handle {
            tx,
            meta: meta.clone(),
        };
        live.insert(id, handle.clone());
        self.inner.metrics.live_sessions.inc();
        let task = tokio::spawn(run_session(self.clone(), id, core, rx));
        let mut tasks = self.inner.tasks.lock().unwrap();
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        Ok(handle)
    }

    /// Sends a command to a session's task, loading the session if needed. If the task has
    /// just unloaded itself, the command comes back and goes to a freshly loaded task.
    async fn dispatch(&self, id: Uuid, mut cmd: Cmd) -> Result<mpsc::Sender<Cmd>, OpenError> {
        loop {
            let h = self.open(id).await?;
            match h.tx.send(cmd).await {
                Ok(()) => return Ok(h.tx),
                Err(mpsc::error::SendError(c)) => cmd = c,
            }
        }
    }

    /// Checks a session exists (loading it), for the WebSocket upgrade.
    pub async fn meta(&self, id: Uuid) -> Result<Arc<SessionMeta>, OpenError> {
        self.open(id).await.map(|h| h.meta)
    }

    /// Registers a socket with the session; returns the session's command channel and the
    /// queue of frames for the socket.
    pub async fn connect(
        &self,
        id: Uuid,
        conn: ConnId,
    ) -> Result<(mpsc::Sender<Cmd>, mpsc::Receiver<ToSocket>), OpenError> {
        let (out, out_rx) = mpsc::channel(SOCKET_QUEUE);
        let tx = self.dispatch(id, Cmd::Connect { conn, out }).await?;
        Ok((tx, out_rx))
    }

    async fn ask<T>(
        &self,
        id: Uuid,
        make: impl FnOnce(oneshot::Sender<T>) -> Cmd,
    ) -> Result<T, OpenError> {
        let (tx, rx) = oneshot::channel();
        self.dispatch(id, make(tx)).await?;
        rx.await.map_err(|_| OpenError::ShuttingDown)
    }

    /// The live state of a session (through its coordinator, never a stale copy).
    pub async fn get(&self, id: Uuid) -> Result<(SessionState, u64), OpenError> {
        self.ask(id, |reply| Cmd::Get { reply }).await
    }

    /// An edit from the HTTP API, applied by the session's coordinator like any other.
    pub async fn edit(
        &self,
        id: Uuid,
        edit: Edit,
    ) -> Result<Result<Applied, ApplyError>, OpenError> {
        self.ask(id, |reply| Cmd::Edit { edit, reply }).await
    }

    /// A change the host originates (a recording was stored).
    pub async fn change(
        &self,
        id: Uuid,
        change: Change,
    ) -> Result<Result<Applied, ApplyError>, OpenError> {
        self.ask(id, |reply| Cmd::Change { change, reply }).await
    }

    /// Closes every socket and flushes every session; new sessions are refused from now on.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let handles: Vec<Handle> = self.inner.live.lock().unwrap().values().cloned().collect();
        for h in handles {
            let (done, wait) = oneshot::channel();
            if h.tx.send(Cmd::Shutdown { done }).await.is_ok() {
                let _ = wait.await;
            }
        }
        let tasks: Vec<_> = std::mem::take(&mut *self.inner.tasks.lock().unwrap());
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Removes a session's task from the registry. Commands that raced into its queue are
    /// handed to the next task for the same session, in order.
    fn unload(&self, id: Uuid, mut rx: mpsc::Receiver<Cmd>) {
        if self.inner.live.lock().unwrap().remove(&id).is_some() {
            self.inner.metrics.live_sessions.dec();
        }
        rx.close();
        let mut left = Vec::new();
        while let Ok(c) = rx.try_recv() {
            left.push(c);
        }
        if !left.is_empty() && !self.inner.shutting_down.load(Ordering::SeqCst) {
            let me = self.clone();
            tokio::spawn(async move {
                for c in left {
                    let _ = me.dispatch(id, c).await;
                }
            });
        }
    }
}

/// Replies waiting for the batch's commit.
enum Pending {
    Applied(
        oneshot::Sender<Result<Applied, ApplyError>>,
        Box<Result<Applied, ApplyError>>,
    ),
    Done(oneshot::Sender<()>),
}

async fn run_session(
    sessions: Sessions,
    id: Uuid,
    mut core: LiveSession,
    mut rx: mpsc::Receiver<Cmd>,
) {
    let mut actor = Actor {
        id,
        keep_log: sessions.inner.config.replay_window as u64,
        sessions: sessions.clone(),
        sockets: HashMap::new(),
    };
    let mut stopping = false;
    loop {
        let first = match core.poll_timeout() {
            Some(t) => {
                let wait = Duration::from_secs_f64(((t - now_ms()) / 1000.0).max(0.0));
                tokio::select! {
                    c = rx.recv() => Some(c),
                    _ = tokio::time::sleep(wait) => None,
                }
            }
            None => Some(rx.recv().await),
        };
        let mut pending: Vec<Pending> = Vec::new();
        match first {
            Some(None) => break, // every sender is gone
            None => core.handle(now_ms(), Input::Timeout),
            Some(Some(first)) => {
                // Take whatever else is already waiting, so one commit covers the batch.
                let mut next = Some(first);
                let mut handled = 0;
                while let Some(c) = next.take() {
                    stopping |= actor.command(&mut core, c, &mut pending);
                    handled += 1;
                    if handled < 64 {
                        next = rx.try_recv().ok();
                    }
                }
            }
        }
        let flushed = actor.flush(&mut core).await;
        for p in pending {
            match p {
                Pending::Applied(reply, r) => {
                    let r = match (&flushed, *r) {
                        (Err(e), Ok(_)) => Err(ApplyError::Storage(e.to_string())),
                        (_, r) => r,
                    };
                    let _ = reply.send(r);
                }
                Pending::Done(done) => {
                    let _ = done.send(());
                }
            }
        }
        match flushed {
            Err(_) => break,
            Ok(idle) if stopping || (idle && actor.sockets.is_empty()) => break,
            Ok(_) => {}
        }
    }
    tracing::debug!(session = %id, "session unloaded");
    sessions.unload(id, rx);
}

struct Actor {
    id: Uuid,
    keep_log: u64,
    sessions: Sessions,
    sockets: HashMap<ConnId, mpsc::Sender<ToSocket>>,
}

impl Actor {
    /// Feeds one command to the core. Returns true if the session is shutting down.
    fn command(&mut self, core: &mut LiveSession, c: Cmd, pending: &mut Vec<Pending>) -> bool {
        let now = now_ms();
        match c {
            Cmd::Connect { conn, out } => {
                self.sockets.insert(conn, out);
                core.handle(now, Input::Connected { conn });
            }
            Cmd::Message { conn, text } => core.handle(now, Input::Message { conn, text: &text }),
            Cmd::Disconnect { conn } => {
                self.sockets.remove(&conn);
                core.handle(now, Input::Disconnected { conn });
            }
            Cmd::Get { reply } => {
                let _ = reply.send((core.state().clone(), core.seq()));
            }
            Cmd::Edit { edit, reply } => {
                let r = core.system_edit(now, &edit).map_err(ApplyError::from);
                pending.push(Pending::Applied(reply, Box::new(r)));
            }
            Cmd::Change { change, reply } => {
                let r = core.system_change(change).map_err(ApplyError::from);
                pending.push(Pending::Applied(reply, Box::new(r)));
            }
            Cmd::Shutdown { done } => {
                core.shutdown();
                pending.push(Pending::Done(done));
                return true;
            }
        }
        false
    }

    /// Performs the core's outputs until there are none: storage first (one commit), then
    /// sends. Returns whether the core asked to be unloaded; an error if storage failed, in which
    /// case every socket is closed (clients re-send what was not acknowledged).
    async fn flush(&mut self, core: &mut LiveSession) -> anyhow::Result<bool> {
        let mut idle = false;
        while let Some(batch) = core.drain() {
            let (mut durable, sends) = batch.split();
            idle |= durable.idle;
            if !durable.is_empty() {
                let n = durable.changes.len() as u64;
                let commit = Commit {
                    session: self.id,
                    changes: std::mem::take(&mut durable.changes),
                    snapshot: durable.snapshot.take(),
                    touched_at: now_ms() as i64,
                    keep_log: self.keep_log,
                };
                if let Err(e) = self.sessions.inner.store.commit(commit).await {
                    tracing::error!(session = %self.id, error = %e, "commit failed; unloading session");
                    for (_, s) in self.sockets.drain() {
                        let _ = s.try_send(ToSocket::Close(1011, "storage failure".into()));
                    }
                    return Err(e);
                }
                self.sessions
                    .inner
                    .metrics
                    .changes_committed_total
                    .inc_by(n);
            }
            for d in sends.release(durable.stored()) {
                match d {
                    Delivery::Text { to, text } => {
                        let text: Utf8Bytes = text.into();
                        for conn in to {
                            self.deliver(core, conn, ToSocket::Text(text.clone()));
                        }
                    }
                    Delivery::Close { conn, code, reason } => {
                        if let Some(s) = self.sockets.remove(&conn) {
                            let _ = s.try_send(ToSocket::Close(code, reason));
                        }
                    }
                }
            }
        }
        Ok(idle)
    }

    /// Queues a frame for a socket; a socket whose queue is full is too slow and is dropped.
    fn deliver(&mut self, core: &mut LiveSession, conn: ConnId, msg: ToSocket) {
        let Some(s) = self.sockets.get(&conn) else {
            return;
        };
        if let Err(e) = s.try_send(msg) {
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                tracing::warn!(conn, "socket too slow (queue full); disconnecting it");
            }
            self.sockets.remove(&conn);
            core.handle(now_ms(), Input::Disconnected { conn });
        }
    }
}
