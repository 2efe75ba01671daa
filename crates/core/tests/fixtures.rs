//! Wire fixtures: example messages of protocol v1, checked in. Each must decode and re-encode to
//! exactly the same bytes (one canonical encoding, shared by client and server).

use keyboardia_core::protocol::*;

fn lines(name: &str) -> Vec<String> {
    let path = format!("{}/tests/data/v1/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn client_fixtures_round_trip_unchanged() {
    let all = lines("client.jsonl");
    assert!(all.len() >= EDIT_TYPES.len() + 2);
    for line in &all {
        let msg = ClientMessage::decode(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(&msg.encode(), line);
    }
    // Every edit type has a fixture.
    for ty in EDIT_TYPES {
        assert!(
            all.iter()
                .any(|l| l.starts_with(&format!("{{\"type\":\"{ty}\""))),
            "no fixture for {ty}"
        );
    }
}

#[test]
fn server_fixtures_round_trip_unchanged() {
    for line in lines("server.jsonl") {
        let msg = ServerMessage::decode(&line).unwrap_or_else(|| panic!("does not decode: {line}"));
        assert_eq!(msg.encode(), line);
    }
}

#[test]
fn unknown_server_types_are_ignored_by_old_clients() {
    assert_eq!(
        ServerMessage::decode(r#"{"type":"CURSOR_MOVED","x":1}"#),
        None
    );
}
