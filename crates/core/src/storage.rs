//! What the hosts persist, written and read in one place, with a schema version.
//!
//! Both hosts store the same four things: a session's metadata, its snapshots, its edit log
//! (one [`Applied`] per row) and, on Cloudflare, the session document in the KV index. Each is
//! written by `encode_*` with the current [`SCHEMA_VERSION`] and read by `decode_*`, which
//! migrates anything older to the current model and validates it against the limits, so a
//! document from an older build always loads and a damaged one is refused with a sentence
//! saying what is wrong (never a panic, never a half-loaded session).
//!
//! Versions:
//! - **1**: before versions existed (builds of 2026-11): the bare JSON of the value, no envelope.
//! - **2**: `{"v":2,"state":...}`, `{"v":2,"applied":...}`, `{"v":2,"meta":...}`; the KV document
//!   carries `"schemaVersion":2`. The model is the same as version 1.
//!
//! A new version adds a variant to the `match` in [`migrate`], a fixture of the version it
//! replaces under `tests/data/storage/`, and never edits an old fixture.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::model::{SessionMeta, SessionState};
use crate::protocol::Applied;

/// The version every host writes.
pub const SCHEMA_VERSION: u32 = 2;

/// Why a stored value could not be loaded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{what} cannot be loaded: {why}")]
pub struct LoadError {
    pub what: &'static str,
    pub why: String,
}

fn load_error(what: &'static str, why: impl std::fmt::Display) -> LoadError {
    LoadError {
        what,
        why: why.to_string(),
    }
}

fn encode<T: Serialize>(key: &str, value: &T) -> String {
    let body = serde_json::to_string(value).expect("stored values serialize");
    format!("{{\"v\":{SCHEMA_VERSION},\"{key}\":{body}}}")
}

/// Reads an envelope of any version: (version, the value inside).
fn open(what: &'static str, key: &str, text: &str) -> Result<(u32, Value), LoadError> {
    let v: Value = serde_json::from_str(text).map_err(|e| load_error(what, e))?;
    let Value::Object(mut m) = v else {
        return Err(load_error(what, "it is not a JSON object"));
    };
    match m.get("v").and_then(Value::as_u64) {
        // Version 1 had no envelope: the object is the value itself.
        None => Ok((1, Value::Object(m))),
        Some(v) if v > SCHEMA_VERSION as u64 => Err(load_error(
            what,
            format!("it was written by a newer build (schema version {v}; this build reads up to {SCHEMA_VERSION})"),
        )),
        Some(v) => {
            let inner = m
                .remove(key)
                .ok_or_else(|| load_error(what, format!("version {v} has no \"{key}\"")))?;
            Ok((v as u32, inner))
        }
    }
}

/// Brings a value of `version` up to the current model. Every version so far has the same
/// model, so this only checks that the version is one we know.
fn migrate(what: &'static str, version: u32, value: Value) -> Result<Value, LoadError> {
    match version {
        1 | 2 => Ok(value),
        v => Err(load_error(what, format!("unknown schema version {v}"))),
    }
}

fn decode<T: DeserializeOwned>(what: &'static str, key: &str, text: &str) -> Result<T, LoadError> {
    let (version, value) = open(what, key, text)?;
    let value = migrate(what, version, value)?;
    serde_json::from_value(value).map_err(|e| load_error(what, e))
}

pub fn encode_snapshot(state: &SessionState) -> String {
    encode("state", state)
}

/// A snapshot of any version, migrated and validated against the limits.
pub fn decode_snapshot(text: &str) -> Result<SessionState, LoadError> {
    let state: SessionState = decode("the snapshot", "state", text)?;
    state
        .validate()
        .map_err(|e| load_error("the snapshot", e.0))?;
    Ok(state)
}

pub fn encode_applied(a: &Applied) -> String {
    encode("applied", a)
}

/// One row of the edit log, of any version.
pub fn decode_applied(text: &str) -> Result<Applied, LoadError> {
    decode("the edit log", "applied", text)
}

pub fn encode_meta(meta: &SessionMeta) -> String {
    encode("meta", meta)
}

pub fn decode_meta(text: &str) -> Result<SessionMeta, LoadError> {
    decode("the session metadata", "meta", text)
}

/// The session document for the KV index: the public document (see [`crate::api::session_doc`])
/// with its schema version.
pub fn encode_index_doc(meta: &SessionMeta, state: &SessionState, seq: u64) -> String {
    let mut doc = crate::api::session_doc(meta, state, seq);
    if let Value::Object(m) = &mut doc {
        m.insert("schemaVersion".into(), SCHEMA_VERSION.into());
    }
    doc.to_string()
}

/// A KV index document of any version: metadata, validated state and seq.
pub fn decode_index_doc(text: &str) -> Result<(SessionMeta, SessionState, u64), LoadError> {
    const WHAT: &str = "the session index entry";
    let doc: Value = serde_json::from_str(text).map_err(|e| load_error(WHAT, e))?;
    let version = match doc.get("schemaVersion") {
        None => 1,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| load_error(WHAT, "schemaVersion is not a number"))?,
    };
    if version > SCHEMA_VERSION as u64 {
        return Err(load_error(
            WHAT,
            format!("it was written by a newer build (schema version {version}; this build reads up to {SCHEMA_VERSION})"),
        ));
    }
    let doc = migrate(WHAT, version as u32, doc)?;
    let meta: SessionMeta = serde_json::from_value(doc.clone()).map_err(|e| load_error(WHAT, e))?;
    let state: SessionState =
        serde_json::from_value(doc.clone()).map_err(|e| load_error(WHAT, e))?;
    state.validate().map_err(|e| load_error(WHAT, e.0))?;
    let seq = doc.get("seq").and_then(Value::as_u64).unwrap_or(0);
    Ok((meta, state, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_version_round_trips() {
        let s = SessionState::starter();
        let text = encode_snapshot(&s);
        assert!(text.starts_with(&format!("{{\"v\":{SCHEMA_VERSION},")));
        assert_eq!(decode_snapshot(&text).unwrap(), s);
    }

    #[test]
    fn newer_and_damaged_documents_are_refused_with_a_reason() {
        let e = decode_snapshot(r#"{"v":99,"state":{}}"#).unwrap_err();
        assert!(e.to_string().contains("newer build"), "{e}");
        let e = decode_snapshot("not json").unwrap_err();
        assert!(
            e.to_string().starts_with("the snapshot cannot be loaded"),
            "{e}"
        );
        let mut s = SessionState::starter();
        s.tempo = 999;
        let e = decode_snapshot(&encode_snapshot(&s)).unwrap_err();
        assert!(e.to_string().contains("tempo"), "{e}");
    }
}
