//! The crash test, for any host that can be killed and started again: edits stream in from
//! several players, the host is killed (`kill -9`, no chance to flush) at a random moment while
//! they stream, and started again on the same storage: every acknowledged edit must be there,
//! and nothing from earlier rounds may be lost.
//!
//! Each player owns one track and sets its volume to an ever-increasing value, so "every
//! acknowledged edit survived" reads as: after restart, the track's volume is at least the last
//! acknowledged value (edits committed but not yet acknowledged may push it higher).

use std::time::Duration;

use rand::Rng;
use serde_json::json;

use crate::Target;

/// A host the test can kill and start.
pub trait Crashable {
    /// Starts the host on its storage (left by earlier runs) and returns its base URL once it
    /// answers.
    fn start(&mut self) -> String;
    /// Kills the host at once (SIGKILL) and waits until it is gone.
    fn kill(&mut self);
}

const PLAYERS: usize = 8;
/// Edits per second per player: under the per-connection limit (50/s).
const PACE: Duration = Duration::from_millis(25);

/// What one round left behind: the session, each player's last acknowledged volume, the
/// highest acknowledged seq.
struct Round {
    id: String,
    acked: Vec<(String, f64)>,
    max_seq: u64,
    count: usize,
}

/// Runs `rounds` kill-and-restart rounds against `host`, then checks everything once more.
/// Blocking host calls run on the test's runtime: use a multi-threaded one.
pub async fn every_acknowledged_edit_survives(host: &mut impl Crashable, rounds: usize) {
    let mut rng = rand::rng();
    let mut done: Vec<Round> = Vec::new();
    for round in 0..rounds {
        let t = Target::new(tokio::task::block_in_place(|| host.start()));
        for r in &done {
            check(&t, r).await;
        }
        let id = t.create().await.unwrap();
        // One track per player.
        let (mut setup, _) = t.join(&id, "setup", None).await.unwrap();
        let mut last = String::new();
        for p in 0..PLAYERS {
            let track =
                json!({"id": format!("p{p}"), "name": format!("P{p}"), "instrument": "synth/lead"});
            last = setup
                .edit(json!({"type": "ADD_TRACK", "track": track}))
                .await
                .unwrap();
        }
        assert_eq!(setup.ack(&last).await.unwrap()["type"], "ADD_TRACK");
        setup.close().await;

        let kill_after = Duration::from_millis(rng.random_range(300..1500));
        let mut tasks = Vec::new();
        for p in 0..PLAYERS {
            let t = t.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move { stream(t, id, p).await }));
        }
        tokio::time::sleep(kill_after).await;
        tokio::task::block_in_place(|| host.kill());
        let mut r = Round {
            id,
            acked: Vec::new(),
            max_seq: 0,
            count: 0,
        };
        for (p, task) in tasks.into_iter().enumerate() {
            let (vol, seq, n, sent) = task.await.unwrap();
            // The sender only stops when the socket dies, so every player was cut off mid-stream.
            assert!(
                n <= sent,
                "player {p}: {n} acknowledged but only {sent} sent"
            );
            r.acked.push((format!("p{p}"), vol));
            r.max_seq = r.max_seq.max(seq);
            r.count += n;
        }
        eprintln!(
            "round {round}: killed after {kill_after:?}; {} edits acknowledged",
            r.count
        );
        done.push(r);
    }
    let t = Target::new(tokio::task::block_in_place(|| host.start()));
    for r in &done {
        check(&t, r).await;
    }
    assert!(
        done.iter().all(|r| r.count > 0),
        "a round acknowledged nothing"
    );
    tokio::task::block_in_place(|| host.kill());
}

/// Streams ever-increasing volumes until the socket dies. Returns the last acknowledged volume,
/// the highest acknowledged seq, how many were acknowledged and how many were sent.
async fn stream(t: Target, id: String, p: usize) -> (f64, u64, usize, usize) {
    let Ok((ws, _)) = t.join(&id, &format!("player{p}"), None).await else {
        return (0.0, 0, 0, 0);
    };
    let (mut sink, mut source) = futures_util::StreamExt::split(ws.stream);
    let sender = tokio::spawn(async move {
        use futures_util::SinkExt;
        let mut k = 0usize;
        loop {
            k += 1;
            // Above the default volume (0.8), so a lost edit cannot pass for a kept one.
            let vol = 0.8 + k as f64 / 1_000_000.0;
            let msg = json!({"type": "SET_TRACK_VOLUME", "trackId": format!("p{p}"), "volume": vol, "mid": format!("v{k}")});
            let frame = tokio_tungstenite::tungstenite::Message::Text(msg.to_string().into());
            if sink.send(frame).await.is_err() {
                return k - 1;
            }
            tokio::time::sleep(PACE).await;
        }
    });
    let (mut vol, mut seq, mut n) = (0.0, 0, 0);
    while let Some(Ok(m)) = futures_util::StreamExt::next(&mut source).await {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(m.to_text().unwrap_or("")) else {
            continue;
        };
        if v["playerId"] == format!("player{p}") {
            if let (Some(s), Some(x)) = (v["seq"].as_u64(), v["volume"].as_f64()) {
                seq = s;
                vol = x;
                n += 1;
            }
        }
    }
    let sent = sender.await.unwrap();
    (vol, seq, n, sent)
}

async fn check(t: &Target, r: &Round) {
    let doc = t.get(&format!("/api/sessions/{}", r.id)).await.unwrap();
    assert_eq!(doc.status, 200);
    let seq = doc.body["seq"].as_u64().unwrap();
    assert!(seq >= r.max_seq, "seq {seq} < acknowledged {}", r.max_seq);
    for (track, acked) in &r.acked {
        let tr = doc.body["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == track.as_str())
            .unwrap();
        let vol = tr["volume"].as_f64().unwrap();
        assert!(
            vol >= acked - 1e-6,
            "track {track}: volume {vol} is older than the acknowledged {acked}"
        );
    }
}
