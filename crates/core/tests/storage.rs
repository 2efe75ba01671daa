//! Storage fixtures: documents written by older builds, checked in and never edited, must load
//! into today's model (through `core::storage`, which both hosts use), and today's encoding of
//! the public session document is pinned byte for byte.

use keyboardia_core::api::session_doc;
use keyboardia_core::live::replay;
use keyboardia_core::storage::*;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn a_v1_snapshot_and_log_load_and_replay() {
    let state = decode_snapshot(fixture("storage/v1/snapshot.json").trim()).unwrap();
    assert_eq!(state.name, "Stored by a v1 build");
    assert_eq!(state.tempo, 97);
    let bass = state.track("bass").unwrap();
    assert_eq!(bass.locks[&10].volume, Some(0.5));
    assert_eq!(bass.volume, 0.6);
    let tail: Vec<_> = fixture("storage/v1/log.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| decode_applied(l).unwrap())
        .collect();
    let r = replay(state, 3, tail, 16).unwrap();
    assert_eq!(r.seq, 6);
    assert_eq!(r.state.name, "Renamed in the log");
    assert!(r.state.track("kick").unwrap().steps.get(2));
    assert_eq!(r.state.track("bass").unwrap().volume, 0.75);
    // Written again, it is today's version and reads back the same.
    let again = encode_snapshot(&r.state);
    assert!(again.starts_with(&format!("{{\"v\":{SCHEMA_VERSION},")));
    assert_eq!(decode_snapshot(&again).unwrap(), r.state);
}

#[test]
fn v1_metadata_and_index_documents_load() {
    let meta = decode_meta(fixture("storage/v1/meta.json").trim()).unwrap();
    assert_eq!(meta.remix_count, 2);
    assert_eq!(decode_meta(&encode_meta(&meta)).unwrap(), meta);
    // v1 index documents went through serde_json::Value and widened every f32; they still
    // load to the exact value.
    let (m, state, seq) = decode_index_doc(fixture("storage/v1/kv-doc.json").trim()).unwrap();
    assert_eq!(m, meta);
    assert_eq!(seq, 6);
    assert_eq!(state.track("kick").unwrap().volume, 0.8);
    let doc = encode_index_doc(&m, &state, seq);
    assert!(doc.contains("\"schemaVersion\":2"), "{doc}");
    assert!(doc.contains("\"volume\":0.8}"), "{doc}");
    assert_eq!(decode_index_doc(&doc).unwrap(), (m, state, seq));
}

#[test]
fn a_v1_index_document_that_breaks_the_limits_is_refused() {
    let doc = fixture("storage/v1/kv-doc.json").replace("\"tempo\":97", "\"tempo\":500");
    let e = decode_index_doc(doc.trim()).unwrap_err();
    assert!(e.to_string().contains("tempo"), "{e}");
}

/// The public session document (GET, PATCH and the bodies of create, remix and publish), pinned:
/// one canonical encoding, the same numbers the WebSocket sends.
#[test]
fn the_session_document_is_pinned() {
    let meta = decode_meta(fixture("storage/v1/meta.json").trim()).unwrap();
    let state = decode_snapshot(fixture("storage/v1/snapshot.json").trim()).unwrap();
    let doc = session_doc(&meta, &state, 3).to_string();
    if std::env::var_os("KEYBOARDIA_BLESS").is_some() {
        let path = format!(
            "{}/tests/data/v1/session-doc.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::write(path, format!("{doc}\n")).unwrap();
    }
    assert_eq!(doc, fixture("v1/session-doc.json").trim());
}
