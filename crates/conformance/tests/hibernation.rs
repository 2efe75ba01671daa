//! Cloudflare only: a LiveSession Durable Object that is evicted from memory while its
//! WebSockets stay open (hibernation) loses nothing. Run by `cargo xtask worker test` against
//! `wrangler dev` (workerd), which evicts an object after a few seconds without events.

use std::time::{Duration, Instant};

use keyboardia_conformance::Target;
use serde_json::{json, Value};

const INSTANCE: &str = "x-keyboardia-instance";

async fn instance(t: &Target, id: &str) -> String {
    let res = t
        .http
        .get(t.url(&format!("/api/sessions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.headers()[INSTANCE].to_str().unwrap().to_string()
}

fn step(n: u32) -> Value {
    json!({"type": "SET_STEP", "trackId": "hat", "step": n, "active": true})
}

#[tokio::test]
#[ignore = "needs the Cloudflare host in workerd: cargo xtask worker test"]
async fn an_evicted_object_with_open_sockets_loses_nothing() {
    let base = std::env::var("KEYBOARDIA_BASE_URL").expect("KEYBOARDIA_BASE_URL");
    let t = Target::new(base);
    let id = t.create().await.unwrap();
    let (mut alice, _) = t.join(&id, "alice", None).await.unwrap();
    let (mut bob, _) = t.join(&id, "bob", None).await.unwrap();
    alice
        .expect(|m| m["type"] == "PLAYER_JOINED")
        .await
        .unwrap();
    let mut mids = Vec::new();
    for n in 0..5 {
        let mid = alice.edit(step(n)).await.unwrap();
        alice.ack(&mid).await.unwrap();
        mids.push(mid);
    }
    let before = bob.drain_for(Duration::from_millis(300)).await;
    assert_eq!(before.iter().filter(|m| m["type"] == "SET_STEP").count(), 5);
    let first = instance(&t, &id).await;

    // Leave the object alone until the runtime evicts it (sockets stay open), then use the
    // sockets again. Each attempt waits longer; the object must turn out to be a new instance.
    let started = Instant::now();
    let mut n = 5;
    let mut evicted = false;
    for wait in [15, 25, 40] {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let mid = alice.edit(step(n)).await.unwrap();
        let ack = alice.ack(&mid).await.unwrap();
        assert_eq!(ack["seq"], n + 1, "the sequence continues where it was");
        let seen = bob.expect(|m| m["type"] == "SET_STEP").await.unwrap();
        assert_eq!(seen["seq"], n + 1);
        n += 1;
        if instance(&t, &id).await != first {
            evicted = true;
            break;
        }
    }
    assert!(
        evicted,
        "the runtime did not evict the object in {:?}",
        started.elapsed()
    );

    // Nothing was lost: the state has every step, the log still dedupes a retried edit, and
    // presence survived (a newcomer sees both players).
    let doc = t.get(&format!("/api/sessions/{id}")).await.unwrap().body;
    let hat = doc["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tr| tr["id"] == "hat")
        .unwrap()
        .clone();
    let steps: Vec<u64> = hat["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    for s in 0..n as u64 {
        assert!(steps.contains(&s), "step {s} is set in {steps:?}");
    }
    assert_eq!(doc["seq"], n);
    alice
        .send(json!({"type": "SET_STEP", "trackId": "hat", "step": 0, "active": false, "mid": mids[0]}))
        .await
        .unwrap();
    let again = alice.ack(&mids[0]).await.unwrap();
    assert_eq!(
        again["seq"], 1,
        "a retry is acknowledged with its original seq"
    );
    let (mut carol, welcome) = t.join(&id, "carol", None).await.unwrap();
    let players: Vec<&str> = welcome["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    for p in ["alice", "bob", "carol"] {
        assert!(players.contains(&p), "{p} in {players:?}");
    }
    // A reconnect with the last seq it saw gets what it missed (and replaces bob's old socket).
    let (bob2, w) = t.join(&id, "bob", Some(2)).await.unwrap();
    assert_eq!(w["missed"].as_array().unwrap().len(), n as usize - 2);
    let _ = carol.drain_for(Duration::from_millis(100)).await;
    let _ = alice.drain_for(Duration::from_millis(100)).await;

    // A close is a wake path too: evicted again, bob's socket closes, and the others hear that
    // bob left (the woken object knew who was connected).
    let second = instance(&t, &id).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    bob2.close().await;
    let left = alice.expect(|m| m["type"] == "PLAYER_LEFT").await.unwrap();
    assert_eq!(left["playerId"], "bob");
    assert_ne!(
        instance(&t, &id).await,
        second,
        "the close was handled by a woken object"
    );
}
