//! Where a Durable Object keeps its session: DO SQLite storage (metadata, the edit log and the
//! last snapshot), and the KV index (`session:{uuid}` and the published gallery).
//!
//! SQL writes made without an `await` between them commit together, and the runtime's output
//! gate holds every message and response sent after them until they are durable: so a change
//! written here before its broadcast is committed before anyone sees it.

use keyboardia_core::api::Summary;
use keyboardia_core::live::{replay, Replayed};
use keyboardia_core::model::{SessionMeta, SessionState};
use keyboardia_core::protocol::Applied;
use keyboardia_core::storage;
use serde::Deserialize;
use worker::{Env, Result, SqlStorage, SqlStorageValue};

/// KV binding of the session index.
pub const SESSIONS: &str = "SESSIONS";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (
  id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, applied TEXT NOT NULL);
";

pub struct Db {
    sql: SqlStorage,
}

/// A session as loaded from storage.
pub struct Loaded {
    pub meta: SessionMeta,
    pub replayed: Replayed,
}

#[derive(Deserialize)]
struct Row {
    body: String,
}

#[derive(Deserialize)]
struct SnapshotRow {
    seq: f64,
    state: String,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(format!("{what} is corrupt: {e}"))
}

fn load_error(e: storage::LoadError) -> worker::Error {
    worker::Error::RustError(e.to_string())
}

fn int(v: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(v as i64)
}

impl Db {
    pub fn new(sql: SqlStorage) -> Result<Db> {
        sql.exec(SCHEMA, None)?;
        Ok(Db { sql })
    }

    pub fn meta(&self) -> Result<Option<SessionMeta>> {
        let rows: Vec<Row> = self
            .sql
            .exec("SELECT body FROM meta WHERE id = 1", None)?
            .to_array()?;
        rows.first()
            .map(|r| storage::decode_meta(&r.body).map_err(load_error))
            .transpose()
    }

    pub fn put_meta(&self, meta: &SessionMeta) -> Result<()> {
        let body = storage::encode_meta(meta);
        self.sql.exec(
            "INSERT INTO meta (id, body) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body",
            vec![body.into()],
        )?;
        Ok(())
    }

    /// A new session: its metadata and its first snapshot.
    pub fn create(&self, meta: &SessionMeta, state: &SessionState, seq: u64) -> Result<()> {
        self.put_meta(meta)?;
        self.put_snapshot(seq, state, 0)
    }

    /// The session: last snapshot, the log after it replayed, and the `recent` newest changes.
    pub fn load(&self, recent: usize) -> Result<Option<Loaded>> {
        let Some(meta) = self.meta()? else {
            return Ok(None);
        };
        let snaps: Vec<SnapshotRow> = self
            .sql
            .exec("SELECT seq, state FROM snapshot WHERE id = 1", None)?
            .to_array()?;
        let snap = snaps
            .first()
            .ok_or_else(|| corrupt("the session", "it has no snapshot"))?;
        let snapshot_seq = snap.seq as u64;
        let state = storage::decode_snapshot(&snap.state).map_err(load_error)?;
        // Everything after the snapshot, and at least `recent` changes for replay.
        let from = snapshot_seq.saturating_sub(recent as u64);
        let rows: Vec<Row> = self
            .sql
            .exec(
                "SELECT applied AS body FROM log WHERE seq > ? ORDER BY seq",
                vec![int(from)],
            )?
            .to_array()?;
        let tail = rows
            .iter()
            .map(|r| storage::decode_applied(&r.body))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(load_error)?;
        let replayed =
            replay(state, snapshot_seq, tail, recent).map_err(worker::Error::RustError)?;
        Ok(Some(Loaded { meta, replayed }))
    }

    pub fn append(&self, a: &Applied) -> Result<()> {
        self.sql.exec(
            "INSERT INTO log (seq, applied) VALUES (?, ?)",
            vec![int(a.seq), storage::encode_applied(a).into()],
        )?;
        Ok(())
    }

    /// Stores a snapshot and prunes log entries older than `keep_log` before it.
    pub fn put_snapshot(&self, seq: u64, state: &SessionState, keep_log: u64) -> Result<()> {
        self.sql.exec(
            "INSERT INTO snapshot (id, seq, state) VALUES (1, ?, ?)
             ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, state = excluded.state",
            vec![int(seq), storage::encode_snapshot(state).into()],
        )?;
        if keep_log > 0 {
            self.sql.exec(
                "DELETE FROM log WHERE seq <= ?",
                vec![int(seq.saturating_sub(keep_log))],
            )?;
        }
        Ok(())
    }
}

/// The KV key of a session, as the seed names it.
pub fn session_key(id: &uuid::Uuid) -> String {
    format!("session:{id}")
}

/// The KV key of a published session in the gallery: newest first in KV's key order.
fn published_key(meta: &SessionMeta) -> String {
    let inverted = (i64::MAX as u64).saturating_sub(meta.created_at.max(0) as u64);
    format!("published:{inverted:020}:{}", meta.id)
}

/// Writes the session's entry in the KV index (and its gallery entry if it is published).
pub async fn write_index(
    env: &Env,
    meta: &SessionMeta,
    state: &SessionState,
    seq: u64,
) -> Result<()> {
    let kv = env.kv(SESSIONS)?;
    kv.put(
        &session_key(&meta.id),
        storage::encode_index_doc(meta, state, seq),
    )?
    .execute()
    .await?;
    if meta.immutable {
        let summary = Summary::of(meta, state);
        kv.put(&published_key(meta), serde_json::to_string(&summary)?)?
            .metadata(&summary)?
            .execute()
            .await?;
    }
    Ok(())
}

/// A page of the gallery: summaries and KV's cursor for the next page.
pub async fn list_published(
    env: &Env,
    limit: u32,
    cursor: Option<String>,
) -> Result<(Vec<Summary>, Option<String>)> {
    let kv = env.kv(SESSIONS)?;
    let mut list = kv
        .list()
        .prefix("published:".to_string())
        .limit(limit as u64);
    if let Some(c) = cursor {
        list = list.cursor(c);
    }
    let page = list.execute().await?;
    let items = page
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value(k.metadata?).ok())
        .collect();
    let next = if page.list_complete {
        None
    } else {
        page.cursor.filter(|c| !c.is_empty())
    };
    Ok((items, next))
}

/// The session document in the KV index, used when a Durable Object has no storage of its own
/// for a session the index knows (it is imported).
pub async fn read_index(
    env: &Env,
    id: &uuid::Uuid,
) -> Result<Option<(SessionMeta, SessionState, u64)>> {
    let kv = env.kv(SESSIONS)?;
    let Some(doc) = kv.get(&session_key(id)).text().await? else {
        return Ok(None);
    };
    storage::decode_index_doc(&doc)
        .map(Some)
        .map_err(load_error)
}
