//! The conformance suite. Runs against `KEYBOARDIA_BASE_URL` if set (any host), else against a
//! native server started in this process on a random port with a fresh data directory.

use std::sync::OnceLock;
use std::time::Duration;

use keyboardia_conformance::{test_wav, Closed, Target};
use serde_json::{json, Value};

fn target() -> Target {
    static BASE: OnceLock<String> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        if let Ok(url) = std::env::var("KEYBOARDIA_BASE_URL") {
            return url;
        }
        // A native server on its own runtime, alive for the whole test binary.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let dir = std::env::temp_dir().join(format!("kbd-conf-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                let mut config = keyboardia_server::Config::with_data_dir(&dir);
                // The instrument library (`cargo xtask samples` prepares it; xtask test also
                // names it in KEYBOARDIA_LIBRARY, which the config reads by itself).
                let prepared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../target/sample-library");
                if config.library.is_none() && prepared.join("STAMP").exists() {
                    config.library = Some(prepared);
                }
                // Every test comes from 127.0.0.1; the per-address HTTP limit is tested by the
                // server's own tests.
                config.api_rate = 10_000.0;
                config.api_burst = 10_000.0;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(format!("http://{}", listener.local_addr().unwrap()))
                    .unwrap();
                keyboardia_server::run(config, listener, std::future::pending())
                    .await
                    .unwrap();
            });
        });
        rx.recv().unwrap()
    });
    Target::new(base.clone())
}

fn set_step(track: &str, step: u32, active: bool) -> Value {
    json!({"type": "SET_STEP", "trackId": track, "step": step, "active": active})
}

#[tokio::test]
async fn create_load_remix_publish() {
    let t = target();
    let created = t
        .post("/api/sessions", Some(json!({"name": "Funky Groove"})))
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["url"], format!("/s/{id}"));
    let got = t.get(&format!("/api/sessions/{id}")).await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.body["name"], "Funky Groove");
    assert_eq!(got.body["tempo"], 120);
    assert!(
        got.body["tracks"].as_array().unwrap().len() >= 4,
        "starter beat"
    );
    assert_eq!(got.body["immutable"], false);
    assert_eq!(got.body["remixedFrom"], Value::Null);

    let remix = t
        .post(&format!("/api/sessions/{id}/remix"), None)
        .await
        .unwrap();
    assert_eq!(remix.status, 201);
    let rid = remix.body["id"].as_str().unwrap();
    assert_ne!(rid, id);
    let r = t.get(&format!("/api/sessions/{rid}")).await.unwrap();
    assert_eq!(r.body["remixedFrom"], id.as_str());
    assert_eq!(r.body["tracks"], got.body["tracks"]);
    // A remix says it is a copy.
    assert_eq!(r.body["name"], "Remix of Funky Groove");
    let src = t.get(&format!("/api/sessions/{id}")).await.unwrap();
    assert_eq!(src.body["remixCount"], 1);

    let publ = t
        .post(&format!("/api/sessions/{id}/publish"), None)
        .await
        .unwrap();
    assert_eq!(publ.status, 201);
    let pid = publ.body["id"].as_str().unwrap().to_string();
    assert_ne!(pid, id);
    let p = t.get(&format!("/api/sessions/{pid}")).await.unwrap();
    assert_eq!(p.body["immutable"], true);
    assert_eq!(p.body["tracks"], got.body["tracks"]);
    // Published: read-only. The source stays editable.
    let refused = t
        .patch(&format!("/api/sessions/{pid}"), json!({"name": "x"}))
        .await
        .unwrap();
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["error"], "READ_ONLY");
    let renamed = t
        .patch(
            &format!("/api/sessions/{id}"),
            json!({"name": "Still mine"}),
        )
        .await
        .unwrap();
    assert_eq!(renamed.status, 200);
    assert_eq!(renamed.body["name"], "Still mine");
    // Remixing a published session gives an editable copy.
    let rp = t
        .post(&format!("/api/sessions/{pid}/remix"), None)
        .await
        .unwrap();
    let rpid = rp.body["id"].as_str().unwrap();
    let rpd = t.get(&format!("/api/sessions/{rpid}")).await.unwrap();
    assert_eq!(rpd.body["immutable"], false);

    // The gallery lists published sessions only, with pagination.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let q = match &cursor {
            Some(c) => format!("/api/sessions?limit=50&cursor={c}"),
            None => "/api/sessions?limit=50".to_string(),
        };
        let page = t.get(&q).await.unwrap();
        assert_eq!(page.status, 200);
        for s in page.body["sessions"].as_array().unwrap() {
            seen.push(s["id"].as_str().unwrap().to_string());
        }
        match page.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert!(seen.contains(&pid));
    assert!(!seen.contains(&id));
}

#[tokio::test]
async fn http_errors_are_clear() {
    let t = target();
    let bad = t.get("/api/sessions/not-a-uuid").await.unwrap();
    assert_eq!(bad.status, 400);
    assert!(bad.body["error"].is_string() && bad.body["details"].is_string());
    let missing = t
        .get("/api/sessions/00000000-0000-4000-8000-000000000000")
        .await
        .unwrap();
    assert_eq!(missing.status, 404);
    assert!(missing.body["details"]
        .as_str()
        .unwrap()
        .contains("no session"));
    let id = t.create().await.unwrap();
    let bad_json = t
        .request(
            reqwest::Method::PATCH,
            &format!("/api/sessions/{id}"),
            Some(b"{nope".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(bad_json.status, 400);
    let long_name = t
        .patch(
            &format!("/api/sessions/{id}"),
            json!({"name": "x".repeat(101)}),
        )
        .await
        .unwrap();
    assert_eq!(long_name.status, 400);
    assert_eq!(long_name.body["error"], "INVALID_EDIT");
    let huge = t
        .request(
            reqwest::Method::PATCH,
            &format!("/api/sessions/{id}"),
            Some(vec![b' '; 200_000]),
        )
        .await
        .unwrap();
    assert_eq!(huge.status, 413);
    // The unread body makes the connection unusable: the server says it will close it.
    if keyboardia_conformance::known_difference("413-connection-close").is_none() {
        assert!(huge.connection_close);
    }
    assert_eq!(t.get("/api/nothing-here").await.unwrap().status, 404);
    assert_eq!(
        t.post("/api/sessions/not-a-uuid/remix", None)
            .await
            .unwrap()
            .status,
        400
    );
    // Nothing was lost along the way (and the client's pooled connection still works).
    assert_eq!(
        t.get(&format!("/api/sessions/{id}")).await.unwrap().status,
        200
    );
}

#[tokio::test]
async fn two_clients_see_each_others_edits_in_the_same_order() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, wa) = t.join(&id, "alice", None).await.unwrap();
    assert_eq!(wa["type"], "WELCOME");
    assert!(wa["snapshot"]["tracks"].is_array());
    let (mut b, _) = t.join(&id, "bob", None).await.unwrap();
    a.expect(|m| m["type"] == "PLAYER_JOINED" && m["player"]["id"] == "bob")
        .await
        .unwrap();
    let mut mids = Vec::new();
    for i in 0..20u32 {
        mids.push(a.edit(set_step("kick", i, i % 2 == 0)).await.unwrap());
        mids.push(b.edit(set_step("snare", i, i % 3 == 0)).await.unwrap());
    }
    let sa = changes(&mut a, 40).await;
    let sb = changes(&mut b, 40).await;
    assert_eq!(
        sa, sb,
        "both players see the same changes in the same order"
    );
    let seqs: Vec<u64> = sa.iter().map(|x| x.0).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous seqs: {seqs:?}"
    );
    let mut got_mids: Vec<String> = sa.into_iter().map(|x| x.1).collect();
    got_mids.sort();
    mids.sort();
    assert_eq!(got_mids, mids);
    // The HTTP view is the live state.
    let doc = t.get(&format!("/api/sessions/{id}")).await.unwrap().body;
    assert_eq!(doc["seq"], *seqs.last().unwrap());
    let kick = doc["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "kick")
        .unwrap();
    let steps: Vec<u64> = kick["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(steps, (0..20).filter(|i| i % 2 == 0).collect::<Vec<_>>());
}

/// The next `n` changes a player receives, as (seq, mid).
async fn changes(ws: &mut keyboardia_conformance::Ws, n: usize) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = ws.next().await.unwrap();
        if let Some(s) = m["seq"].as_u64() {
            out.push((s, m["mid"].as_str().unwrap_or("").to_string()));
        }
    }
    out
}

#[tokio::test]
async fn reconnect_with_last_seq_gets_what_it_missed() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "alice", None).await.unwrap();
    let (b, wb) = t.join(&id, "bob", None).await.unwrap();
    let last = wb["seq"].as_u64().unwrap();
    b.close().await;
    let mut last_mid = String::new();
    for i in 0..5 {
        last_mid = a.edit(set_step("hat", 20 + i, true)).await.unwrap();
    }
    a.ack(&last_mid).await.unwrap();
    let (_b, w) = t.join(&id, "bob", Some(last)).await.unwrap();
    assert_eq!(w["type"], "WELCOME");
    assert!(w.get("snapshot").is_none(), "a replay, not a snapshot: {w}");
    let missed = w["missed"].as_array().unwrap();
    assert_eq!(missed.len(), 5);
    assert_eq!(missed[0]["seq"], last + 1);
    assert_eq!(missed[4]["step"], 24);
    assert_eq!(w["seq"], last + 5);
}

#[tokio::test]
async fn a_retried_edit_applies_once() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "alice", None).await.unwrap();
    let (mut b, _) = t.join(&id, "bob", None).await.unwrap();
    let frame = json!({"type": "TOGGLE_STEP", "trackId": "kick", "step": 1, "mid": "retry-1"});
    a.send(frame.clone()).await.unwrap();
    let first = a.ack("retry-1").await.unwrap();
    // The client reconnects and re-sends the same edit (its ack was "lost").
    a.close().await;
    let (mut a2, _) = t.join(&id, "alice", Some(0)).await.unwrap();
    a2.send(frame).await.unwrap();
    let second = a2.ack("retry-1").await.unwrap();
    assert_eq!(first["seq"], second["seq"]);
    assert_eq!(second["active"], true);
    let seen = b.drain_for(Duration::from_millis(500)).await;
    let toggles = seen.iter().filter(|m| m["mid"] == "retry-1").count();
    assert_eq!(toggles, 1, "the peer saw the change once");
    let doc = t.get(&format!("/api/sessions/{id}")).await.unwrap().body;
    let kick = &doc["tracks"][0];
    assert!(kick["steps"].as_array().unwrap().contains(&json!(1)));
}

#[tokio::test]
async fn the_eleventh_player_is_refused_and_a_reconnect_replaces_its_socket() {
    let t = target();
    let id = t.create().await.unwrap();
    let mut players = Vec::new();
    for i in 0..10 {
        let (ws, w) = t.join(&id, &format!("p{i}"), None).await.unwrap();
        assert_eq!(w["type"], "WELCOME");
        players.push(ws);
    }
    let (mut eleventh, err) = t.join(&id, "p10", None).await.unwrap();
    assert_eq!(err["type"], "ERROR");
    assert_eq!(err["code"], "SESSION_FULL");
    assert!(err["message"].as_str().unwrap().contains("full"));
    assert_eq!(eleventh.closed().await, Closed::Code(4003));
    // p3 reconnects from a new socket: it replaces the old one; still 10 players, no ghost.
    let (_p3, w) = t.join(&id, "p3", None).await.unwrap();
    assert_eq!(w["type"], "WELCOME");
    assert_eq!(w["players"].as_array().unwrap().len(), 10);
    assert_eq!(players[3].closed().await, Closed::Code(4000));
}

#[tokio::test]
async fn bad_input_gets_errors_and_the_session_keeps_working() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "alice", None).await.unwrap();
    let (mut b, _) = t.join(&id, "bob", None).await.unwrap();
    let cases: Vec<(String, &str)> = vec![
        ("{oops".into(), "BAD_JSON"),
        (
            r#"{"type":"DELETE_EVERYTHING","mid":"u1"}"#.into(),
            "UNKNOWN_TYPE",
        ),
        (
            r#"{"type":"SET_TEMPO","mid":"r1","tempo":999}"#.into(),
            "INVALID_EDIT",
        ),
        (
            r#"{"type":"SET_TRACK_PAN","mid":"r2","trackId":"kick","pan":-3}"#.into(),
            "INVALID_EDIT",
        ),
        (
            r#"{"type":"SET_STEP","mid":"r3","trackId":"kick","step":500,"active":true}"#.into(),
            "INVALID_EDIT",
        ),
        (
            r#"{"type":"SET_STEP","mid":"r4","trackId":"kick","step":1}"#.into(),
            "INVALID_MESSAGE",
        ),
        (
            format!(
                r#"{{"type":"SET_SESSION_NAME","mid":"big","name":"{}"}}"#,
                "x".repeat(1024 * 1024)
            ),
            "TOO_LARGE",
        ),
    ];
    for (text, code) in &cases {
        a.send_text(text.clone()).await.unwrap();
        let e = a.expect(|m| m["type"] == "ERROR").await.unwrap();
        assert_eq!(e["code"], *code, "for {}", &text[..text.len().min(80)]);
        assert!(e["message"].as_str().unwrap().len() > 5);
    }
    let mid = a.edit(set_step("kick", 3, true)).await.unwrap();
    let ack = a.ack(&mid).await.unwrap();
    assert_eq!(ack["type"], "SET_STEP");
    let seen = b.expect(|m| m["mid"] == mid.as_str()).await.unwrap();
    assert_eq!(seen["seq"], ack["seq"]);
}

#[tokio::test]
async fn a_flood_is_rate_limited_and_the_session_keeps_working() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "flooder", None).await.unwrap();
    let (mut b, _) = t.join(&id, "bystander", None).await.unwrap();
    for i in 0..400u32 {
        a.edit(set_step("hat", i % 64, i % 2 == 0)).await.unwrap();
    }
    let got = a.drain_for(Duration::from_secs(2)).await;
    let limited = got.iter().filter(|m| m["code"] == "RATE_LIMITED").count();
    let applied = got.iter().filter(|m| m["seq"].is_u64()).count();
    assert!(limited > 0, "some of the flood was refused");
    assert_eq!(limited + applied, 400, "every message got an answer");
    let mid = b.edit(set_step("kick", 9, true)).await.unwrap();
    b.ack(&mid).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mid = a.edit(set_step("kick", 10, true)).await.unwrap();
    assert_eq!(a.ack(&mid).await.unwrap()["type"], "SET_STEP");
}

#[tokio::test]
async fn a_published_session_refuses_edits() {
    let t = target();
    let id = t.create().await.unwrap();
    let p = t
        .post(&format!("/api/sessions/{id}/publish"), None)
        .await
        .unwrap();
    let pid = p.body["id"].as_str().unwrap().to_string();
    let (mut ws, w) = t.join(&pid, "listener", None).await.unwrap();
    assert_eq!(w["readOnly"], true);
    let mid = ws.edit(set_step("kick", 1, true)).await.unwrap();
    let e = ws.ack(&mid).await.unwrap();
    assert_eq!(e["type"], "ERROR");
    assert_eq!(e["code"], "READ_ONLY");
    let up = t
        .request(
            reqwest::Method::POST,
            &format!("/api/sessions/{pid}/recordings"),
            Some(test_wav(4410)),
        )
        .await
        .unwrap();
    assert_eq!(up.status, 403);
    let before = t.get(&format!("/api/sessions/{pid}")).await.unwrap().body;
    assert_eq!(before["seq"], 0);
}

#[tokio::test]
async fn clock_sync_answers() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut ws, w) = t.join(&id, "timekeeper", None).await.unwrap();
    let server_time = w["serverTime"].as_f64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0;
    assert!(
        (server_time - now).abs() < 5_000.0,
        "server time is epoch ms"
    );
    ws.send(json!({"type": "CLOCK_SYNC", "clientTime": 12345.5}))
        .await
        .unwrap();
    let r = ws
        .expect(|m| m["type"] == "CLOCK_SYNC_RESPONSE")
        .await
        .unwrap();
    assert_eq!(r["clientTime"], 12345.5);
    assert!(r["serverTime"].as_f64().unwrap() >= server_time);
}

#[tokio::test]
async fn playback_is_anchored_in_the_future_and_late_joiners_see_it() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "drummer", None).await.unwrap();
    a.send(json!({"type": "CLOCK_SYNC", "clientTime": 0}))
        .await
        .unwrap();
    let now = a
        .expect(|m| m["type"] == "CLOCK_SYNC_RESPONSE")
        .await
        .unwrap()["serverTime"]
        .as_f64()
        .unwrap();
    let mid = a.edit(json!({"type": "PLAY"})).await.unwrap();
    let started = a.ack(&mid).await.unwrap();
    assert_eq!(started["type"], "PLAYBACK_STARTED");
    let tr = &started["transport"];
    assert_eq!(tr["playing"], true);
    let anchor = tr["anchorTime"].as_f64().unwrap();
    assert!(
        anchor > now && anchor < now + 2_000.0,
        "anchor {anchor} vs now {now}"
    );
    let (_b, w) = t.join(&id, "late", None).await.unwrap();
    assert_eq!(w["snapshot"]["transport"], *tr);
    let mid = a
        .edit(json!({"type": "SET_TEMPO", "tempo": 150}))
        .await
        .unwrap();
    let tempo = a.ack(&mid).await.unwrap();
    assert_eq!(tempo["transport"]["tempo"], 150);
    assert!(tempo["transport"]["anchorStep"].as_f64().unwrap() >= 0.0);
    let mid = a.edit(json!({"type": "STOP"})).await.unwrap();
    assert_eq!(a.ack(&mid).await.unwrap()["transport"]["playing"], false);
}

#[tokio::test]
async fn http_edits_and_recordings_reach_live_players() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "alice", None).await.unwrap();
    let r = t
        .patch(
            &format!("/api/sessions/{id}"),
            json!({"name": "Night Shift"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let m = a.expect(|m| m["type"] == "SET_SESSION_NAME").await.unwrap();
    assert_eq!(m["name"], "Night Shift");

    let wav = test_wav(22_050);
    let up = t
        .request(
            reqwest::Method::POST,
            &format!("/api/sessions/{id}/recordings?name=Clap"),
            Some(wav.clone()),
        )
        .await
        .unwrap();
    assert_eq!(up.status, 201, "{:?}", up.body);
    let added = a.expect(|m| m["type"] == "SAMPLE_ADDED").await.unwrap();
    assert_eq!(added["sample"]["name"], "Clap");
    assert_eq!(added["sample"]["durationMs"], 500);
    let path = added["sample"]["path"].as_str().unwrap();
    assert!(path.starts_with(&format!("recordings/{id}/")) && path.ends_with(".wav"));
    let bytes = t
        .http
        .get(t.url(up.body["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(bytes.status(), 200);
    assert_eq!(bytes.headers()["content-type"], "audio/wav");
    assert_eq!(bytes.bytes().await.unwrap().to_vec(), wav);
    // The recording can be used as an instrument by every player.
    let inst = up.body["instrument"].as_str().unwrap();
    let mid = a
        .edit(json!({"type": "SET_TRACK_INSTRUMENT", "trackId": "kick", "instrument": inst}))
        .await
        .unwrap();
    assert_eq!(a.ack(&mid).await.unwrap()["type"], "SET_TRACK_INSTRUMENT");

    // Export renders the session, the recording included, to a WAV file.
    let res = t
        .http
        .get(t.url(&format!("/api/sessions/{id}/export.wav?loops=1")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "audio/wav");
    let wav = res.bytes().await.unwrap();
    let r = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap();
    assert_eq!(r.spec().channels, 2);
    // One bar at 120 BPM (2 s), then only what still rings (well under the 10 s cap).
    let rate = r.spec().sample_rate;
    assert!(
        r.duration() > 2 * rate && r.duration() < 6 * rate,
        "{}",
        r.duration()
    );
    // Without the tail: exactly the bar, a seamless loop.
    let exact = t
        .get(&format!("/api/sessions/{id}/export.wav?loops=1&tail=0"))
        .await
        .unwrap();
    assert_eq!(exact.status, 200);
    let e = hound::WavReader::new(std::io::Cursor::new(exact.bytes)).unwrap();
    assert_eq!(e.duration(), 2 * rate);
    let odd = t
        .get(&format!("/api/sessions/{id}/export.wav?tail=maybe"))
        .await
        .unwrap();
    assert_eq!(odd.status, 400, "{}", odd.text);
    let peak = r
        .into_samples::<i16>()
        .map(|s| s.unwrap().unsigned_abs())
        .max()
        .unwrap();
    assert!(peak > 3000, "the export is not silent: {peak}");
    let bad = t
        .get(&format!("/api/sessions/{id}/export.wav?loops=99"))
        .await
        .unwrap();
    assert_eq!(bad.status, 400);

    let junk = t
        .request(
            reqwest::Method::POST,
            &format!("/api/sessions/{id}/recordings"),
            Some(b"not audio at all".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(junk.status, 415);
    let big = t
        .request(
            reqwest::Method::POST,
            &format!("/api/sessions/{id}/recordings"),
            Some(vec![0u8; 9 * 1024 * 1024]),
        )
        .await
        .unwrap();
    assert_eq!(big.status, 413);
    // HTTP clients normalize `..` away, so send the raw request line over TCP.
    let status = raw_get_status(&t, "/api/samples/recordings/../../../etc/passwd").await;
    assert!(matches!(status, 400 | 404), "path escape got {status}");
    let status = raw_get_status(&t, "/api/samples/recordings/%2e%2e/%2e%2e/etc/passwd").await;
    assert!(
        matches!(status, 400 | 404),
        "encoded path escape got {status}"
    );
}

/// The status code of a GET sent byte for byte as given.
async fn raw_get_status(t: &Target, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = t.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn app_pages_and_health_are_served() {
    let t = target();
    let id = t.create().await.unwrap();
    let page = t.http.get(t.url(&format!("/s/{id}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let root = t.http.get(t.url("/")).send().await.unwrap();
    assert_eq!(root.status(), 200);
    let health = t.get("/healthz").await.unwrap();
    assert_eq!(health.status, 200);
    assert_eq!(health.body["status"], "ok");
    // Other sites may call the API (CORS preflight).
    let pre = t
        .http
        .request(reqwest::Method::OPTIONS, t.url("/api/sessions"))
        .header("origin", "https://elsewhere.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success());
    assert!(pre.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn websockets_from_other_sites_pages_are_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let t = target();
    let id = t.create().await.unwrap();
    let host = t.base.split_once("://").unwrap().1.to_string();
    for (origin, ok) in [
        ("https://evil.example".to_string(), false),
        (format!("http://{host}"), true),
    ] {
        let mut req = t.ws_url(&id).into_client_request().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        let r = tokio_tungstenite::connect_async(req).await;
        assert_eq!(r.is_ok(), ok, "origin {origin}");
        if let Err(tokio_tungstenite::tungstenite::Error::Http(resp)) = r {
            assert_eq!(resp.status(), 403);
        }
    }
}

/// A tab that reloads keeps its player id; if it reused a mutation id for a different edit, the
/// session refuses that edit, naming the id, instead of acknowledging the old change (which the
/// client would take as confirmation of an edit that never happened). A true resend is still
/// acknowledged.
#[tokio::test]
async fn a_reused_mutation_id_with_another_edit_is_refused() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "tab-abc", None).await.unwrap();
    a.send(json!({"type": "SET_STEP", "trackId": "kick", "step": 1, "active": true, "mid": "tab-abc-1"}))
        .await
        .unwrap();
    a.ack("tab-abc-1").await.unwrap();
    a.close().await;
    let (mut a2, _) = t.join(&id, "tab-abc", None).await.unwrap();
    a2.send(json!({"type": "SET_STEP", "trackId": "kick", "step": 2, "active": true, "mid": "tab-abc-1"}))
        .await
        .unwrap();
    let err = a2.ack("tab-abc-1").await.unwrap();
    assert_eq!(err["type"], "ERROR", "{err}");
    assert_eq!(err["code"], "MID_REUSED");
    assert!(
        err["message"].as_str().unwrap().contains("tab-abc-1"),
        "{err}"
    );
    // The same edit again under its own id is a resend: acknowledged, applied once.
    a2.send(json!({"type": "SET_STEP", "trackId": "kick", "step": 1, "active": true, "mid": "tab-abc-1"}))
        .await
        .unwrap();
    assert_eq!(a2.ack("tab-abc-1").await.unwrap()["type"], "SET_STEP");
    let doc = t.get(&format!("/api/sessions/{id}")).await.unwrap().body;
    let steps = doc["tracks"][0]["steps"].as_array().unwrap().clone();
    assert!(
        steps.contains(&json!(1)) && !steps.contains(&json!(2)),
        "{steps:?}"
    );
}

/// Every route's edges answer with a clear JSON error, never a crash or a hang.
#[tokio::test]
async fn route_edges_get_clear_errors() {
    let t = target();
    for path in [
        "/api/samples",
        "/api/samples/",
        "/api/sessions/",
        "/api/sessions//ws",
        "/api/",
        "/api",
    ] {
        let r = t.get(path).await.unwrap();
        assert!(
            matches!(r.status, 400 | 404),
            "GET {path}: {} {:?}",
            r.status,
            r.body
        );
        assert!(r.body["error"].is_string(), "GET {path}: {:?}", r.body);
    }
    let long = format!("/api/samples/{}", "a/".repeat(3000));
    let r = t.get(&long).await.unwrap();
    assert!(
        matches!(r.status, 400 | 404 | 414),
        "overlong: {}",
        r.status
    );
    // An encoded slash is not a way into another folder.
    let r = t.get("/api/samples/..%2F..%2Fetc%2Fpasswd").await.unwrap();
    assert!(
        matches!(r.status, 400 | 404),
        "encoded slashes: {}",
        r.status
    );
    // Methods a route does not have.
    let id = t.create().await.unwrap();
    for (m, path) in [
        (reqwest::Method::DELETE, format!("/api/sessions/{id}")),
        (reqwest::Method::PUT, "/api/sessions".to_string()),
        (
            reqwest::Method::POST,
            "/api/samples/drums/kick.wav".to_string(),
        ),
    ] {
        let r = t.request(m.clone(), &path, None).await.unwrap();
        assert!(matches!(r.status, 404 | 405), "{m} {path}: {}", r.status);
        assert!(r.body["error"].is_string(), "{m} {path}: {:?}", r.body);
    }
    // The host is still fine.
    assert_eq!(
        t.get(&format!("/api/sessions/{id}")).await.unwrap().status,
        200
    );
}

/// One encoding on every path: a volume of 0.7 set over the WebSocket reads back as 0.7 over
/// HTTP (not the widened 0.699999988079071), in the session and in a remix's body.
#[tokio::test]
async fn numbers_read_back_as_they_were_sent() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "numbers", None).await.unwrap();
    let mid = a
        .edit(json!({"type": "SET_TRACK_VOLUME", "trackId": "kick", "volume": 0.7}))
        .await
        .unwrap();
    a.ack(&mid).await.unwrap();
    let raw = t
        .request(reqwest::Method::GET, &format!("/api/sessions/{id}"), None)
        .await
        .unwrap()
        .text;
    assert!(raw.contains("\"volume\":0.7}"), "{raw}");
    let remix = t
        .request(
            reqwest::Method::POST,
            &format!("/api/sessions/{id}/remix"),
            None,
        )
        .await
        .unwrap();
    assert!(remix.text.contains("\"volume\":0.7}"), "{}", remix.text);
}

/// A well-formed edit with an absurd number is a bad value (INVALID_EDIT with the range), not a
/// malformed message.
#[tokio::test]
async fn absurd_numbers_are_range_errors() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "numbers", None).await.unwrap();
    for frame in [
        json!({"type": "SET_TEMPO", "tempo": 1e308, "mid": "n-1"}),
        json!({"type": "SET_TEMPO", "tempo": 120.5, "mid": "n-2"}),
        json!({"type": "SET_STEP", "trackId": "kick", "step": 18446744073709551615u64, "active": true, "mid": "n-3"}),
    ] {
        let mid = frame["mid"].as_str().unwrap().to_string();
        a.send(frame).await.unwrap();
        let err = a.ack(&mid).await.unwrap();
        assert_eq!(err["code"], "INVALID_EDIT", "{err}");
    }
}

/// The catalogue: every instrument this build plays, sampled ones included.
#[tokio::test]
async fn the_instrument_catalogue_is_served() {
    let t = target();
    let r = t.get("/api/instruments").await.unwrap();
    assert_eq!(r.status, 200);
    let list = r.body["instruments"].as_array().expect("a list");
    for e in list {
        for field in ["id", "name", "category", "kind", "range", "licence"] {
            assert!(!e[field].is_null(), "{field} missing in {e}");
        }
    }
    let melodic = list
        .iter()
        .filter(|e| e["kind"] == "sampled" && e["kit"].is_null())
        .count();
    let kits: std::collections::BTreeSet<&str> =
        list.iter().filter_map(|e| e["kit"].as_str()).collect();
    assert!(melodic >= 30, "{melodic} sampled melodic instruments");
    assert!(kits.len() >= 4, "kits: {kits:?}");
    assert!(list
        .iter()
        .any(|e| e["id"] == "drums/kick" && e["kind"] == "synth"));
}

/// Only instruments of the catalogue (or the session's recordings) can be chosen.
#[tokio::test]
async fn unknown_instruments_are_refused() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "picker", None).await.unwrap();
    for bad in ["../../etc/passwd", "sampled/kazoo", "recording/nope"] {
        a.send(json!({"type": "SET_TRACK_INSTRUMENT", "mid": format!("bad-{bad}"), "trackId": "kick", "instrument": bad}))
            .await
            .unwrap();
        let e = a.expect(|m| m["type"] == "ERROR").await.unwrap();
        assert_eq!(e["code"], "INVALID_EDIT", "{bad}: {e}");
        a.send(json!({"type": "ADD_TRACK", "mid": format!("add-{bad}"), "track": {"id": "x1", "instrument": bad}}))
            .await
            .unwrap();
        let e = a.expect(|m| m["type"] == "ERROR").await.unwrap();
        assert_eq!(e["code"], "INVALID_EDIT", "{bad}: {e}");
    }
    let mid = a
        .edit(json!({"type": "SET_TRACK_INSTRUMENT", "trackId": "bass", "instrument": "sampled/piano"}))
        .await
        .unwrap();
    let ack = a.ack(&mid).await.unwrap();
    assert_eq!(ack["instrument"], "sampled/piano");
}

/// A sampled instrument's manifest and files, from the host's sample store.
#[tokio::test]
async fn a_sampled_instrument_and_its_files_are_served() {
    let t = target();
    let r = t.get("/api/instruments/sampled/piano").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["instrument"]["kind"], "sampled");
    assert!(r.body["credit"].as_str().unwrap().contains("MIT"));
    let zones = r.body["manifest"]["zones"].as_array().expect("zones");
    assert!(zones.len() >= 8, "{} zones", zones.len());
    let url = zones[0]["url"].as_str().expect("a url per zone");
    assert!(url.contains("?v="), "{url}");
    let f = t.get(url).await.unwrap();
    assert_eq!(f.status, 200, "{url}");
    assert!(f.bytes.starts_with(b"fLaC"), "{url} is FLAC");
    assert_eq!(f.content_type.as_deref(), Some("audio/flac"));
    assert!(f
        .cache_control
        .as_deref()
        .is_some_and(|c| c.contains("immutable")));
    let kit = t.get("/api/instruments/kit-808/kick").await.unwrap();
    assert_eq!(kit.status, 200);
    let synth = t.get("/api/instruments/drums/kick").await.unwrap();
    assert_eq!(synth.status, 200);
    assert!(synth.body["manifest"].is_null());
    let none = t.get("/api/instruments/sampled/kazoo").await.unwrap();
    assert_eq!(none.status, 404);
    assert_eq!(none.body["error"], "NOT_FOUND");
}

/// The WAV export plays sampled instruments from the host's library: a session whose only
/// audible track is the piano renders sound, where the same session with that track muted is
/// silent.
#[tokio::test]
async fn the_export_plays_sampled_instruments() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "exporter", None).await.unwrap();
    for track in ["kick", "snare", "hat"] {
        let mid = a
            .edit(json!({"type": "SET_TRACK_MUTE", "trackId": track, "muted": true}))
            .await
            .unwrap();
        a.ack(&mid).await.unwrap();
    }
    let mid = a
        .edit(json!({"type": "SET_TRACK_INSTRUMENT", "trackId": "bass", "instrument": "sampled/piano"}))
        .await
        .unwrap();
    a.ack(&mid).await.unwrap();
    let peak = |bytes: Vec<u8>| {
        hound::WavReader::new(std::io::Cursor::new(bytes))
            .unwrap()
            .into_samples::<i16>()
            .map(|s| s.unwrap().unsigned_abs())
            .max()
            .unwrap()
    };
    let path = format!("/api/sessions/{id}/export.wav?loops=1");
    let with_piano = t.get(&path).await.unwrap();
    assert_eq!(with_piano.status, 200, "{}", with_piano.text);
    let loud = peak(with_piano.bytes);
    let mid = a
        .edit(json!({"type": "SET_TRACK_MUTE", "trackId": "bass", "muted": true}))
        .await
        .unwrap();
    a.ack(&mid).await.unwrap();
    let quiet = peak(t.get(&path).await.unwrap().bytes);
    assert!(
        loud > 1000 && quiet == 0,
        "piano peak {loud}, all muted {quiet}"
    );
}

/// The lock of `step` on track `track` in the session's HTTP document.
async fn stored_lock(t: &Target, id: &str, track: &str, step: u32) -> Value {
    let doc = t.get(&format!("/api/sessions/{id}")).await.unwrap().body;
    let tr = doc["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == track)
        .cloned()
        .unwrap();
    tr["locks"][step.to_string()].clone()
}

#[tokio::test]
async fn a_chord_is_accepted_broadcast_and_stored_on_melodic_tracks_only() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "alice", None).await.unwrap();
    let (mut b, _) = t.join(&id, "bob", None).await.unwrap();
    let lock = |track: &str, chord: Value| {
        json!({"type": "SET_PARAMETER_LOCK", "trackId": track, "step": 2,
               "lock": {"pitch": 0, "chord": chord}})
    };
    let mid = a.edit(lock("bass", json!([7, 4]))).await.unwrap();
    let ack = a.ack(&mid).await.unwrap();
    assert_eq!(ack["type"], "SET_PARAMETER_LOCK", "{ack}");
    assert_eq!(ack["lock"]["chord"], json!([4, 7]), "sorted: {ack}");
    let seen = b.expect(|m| m["mid"] == mid.as_str()).await.unwrap();
    assert_eq!(seen["lock"], ack["lock"]);
    assert_eq!(stored_lock(&t, &id, "bass", 2).await, ack["lock"]);
    // Five notes, and a chord on a drum: refused with the rule; nothing changes.
    for (track, chord, says) in [
        ("bass", json!([2, 4, 7, 11]), "at most 4 notes"),
        ("kick", json!([4]), "not melodic"),
        ("bass", json!([40]), "between -24 and 24"),
    ] {
        let mid = a.edit(lock(track, chord)).await.unwrap();
        let e = a.ack(&mid).await.unwrap();
        assert_eq!(e["type"], "ERROR", "{e}");
        assert_eq!(e["code"], "INVALID_EDIT");
        assert!(e["message"].as_str().unwrap().contains(says), "{e}");
    }
    assert_eq!(stored_lock(&t, &id, "bass", 2).await, ack["lock"]);
    assert_eq!(stored_lock(&t, &id, "kick", 2).await, Value::Null);
}

#[tokio::test]
async fn the_loop_region_is_set_broadcast_stored_cleared_and_checked() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "alice", None).await.unwrap();
    let (mut b, _) = t.join(&id, "bob", None).await.unwrap();
    let set = |region: Value| json!({"type": "SET_LOOP_REGION", "region": region});
    // While playing: re-anchored ahead, into the region.
    let mid = a.edit(json!({"type": "PLAY"})).await.unwrap();
    let started = a.ack(&mid).await.unwrap();
    let mid = a.edit(set(json!({"start": 4, "end": 8}))).await.unwrap();
    let ack = a.ack(&mid).await.unwrap();
    assert_eq!(ack["type"], "SET_LOOP_REGION", "{ack}");
    assert_eq!(ack["region"], json!({"start": 4, "end": 8}));
    let tr = &ack["transport"];
    assert_eq!(tr["playing"], true);
    assert!(
        tr["anchorTime"].as_f64().unwrap() >= started["transport"]["anchorTime"].as_f64().unwrap()
    );
    let step = tr["anchorStep"].as_f64().unwrap();
    assert!((4.0..8.0).contains(&step), "{tr}");
    let seen = b.expect(|m| m["mid"] == mid.as_str()).await.unwrap();
    assert_eq!(seen["region"], ack["region"]);
    assert_eq!(seen["transport"], ack["transport"]);
    let doc = t.get(&format!("/api/sessions/{id}")).await.unwrap().body;
    assert_eq!(doc["loop"], json!({"start": 4, "end": 8}));
    assert_eq!(doc["transport"], ack["transport"]);
    // Bad regions: refused, saying why; the region stays.
    for (region, says) in [
        (json!({"start": 8, "end": 4}), "must end after it starts"),
        (json!({"start": 0, "end": 129}), "loop end"),
        (json!({"start": -1, "end": 4}), "loop start"),
    ] {
        let mid = a.edit(set(region)).await.unwrap();
        let e = a.ack(&mid).await.unwrap();
        assert_eq!(e["type"], "ERROR", "{e}");
        assert_eq!(e["code"], "INVALID_EDIT");
        assert!(e["message"].as_str().unwrap().contains(says), "{e}");
    }
    let doc = t.get(&format!("/api/sessions/{id}")).await.unwrap().body;
    assert_eq!(doc["loop"], json!({"start": 4, "end": 8}));
    // Remix keeps it.
    let remix = t
        .post(&format!("/api/sessions/{id}/remix"), None)
        .await
        .unwrap();
    let rid = remix.body["id"].as_str().unwrap();
    let r = t.get(&format!("/api/sessions/{rid}")).await.unwrap().body;
    assert_eq!(r["loop"], json!({"start": 4, "end": 8}));
    // Cleared: gone from the document.
    let mid = b.edit(set(Value::Null)).await.unwrap();
    let ack = b.ack(&mid).await.unwrap();
    assert_eq!(ack["type"], "SET_LOOP_REGION", "{ack}");
    assert_eq!(ack["region"], Value::Null);
    a.expect(|m| m["mid"] == mid.as_str()).await.unwrap();
    let doc = t.get(&format!("/api/sessions/{id}")).await.unwrap().body;
    assert!(doc.get("loop").is_none(), "{doc}");
}

#[tokio::test]
async fn effects_are_shared_persisted_remixed_and_exported() {
    let t = target();
    let id = t.create().await.unwrap();
    let (mut a, _) = t.join(&id, "fx-a", None).await.unwrap();
    let (mut b, _) = t.join(&id, "fx-b", None).await.unwrap();
    let edits = [
        json!({"type": "SET_EFFECT", "param": "reverb.mix", "value": 0.8}),
        json!({"type": "SET_EFFECT", "param": "reverb.decay", "value": 4}),
        json!({"type": "SET_EFFECT", "trackId": "bass", "param": "filter.mode", "value": 1}),
        json!({"type": "SET_EFFECT", "trackId": "bass", "param": "filter.cutoff", "value": 500}),
        json!({"type": "SET_PARAMETER_LOCK", "trackId": "bass", "step": 3, "lock": {"cutoff": 300}}),
    ];
    for e in edits {
        let mid = a.edit(e).await.unwrap();
        let ack = a.ack(&mid).await.unwrap();
        let seen = b.expect(|m| m["mid"] == mid.as_str()).await.unwrap();
        assert_eq!(seen["seq"], ack["seq"]);
    }
    // Bad effect edits: clear errors, nothing stored, the session keeps working.
    let bad = [
        (
            r#"{"type":"SET_EFFECT","mid":"f1","param":"reverb.mix","value":2}"#,
            "INVALID_EDIT",
        ),
        (
            r#"{"type":"SET_EFFECT","mid":"f2","trackId":"bass","param":"reverb.mix","value":0.5}"#,
            "INVALID_EDIT",
        ),
        (
            r#"{"type":"SET_EFFECT","mid":"f3","param":"filter.cutoff","value":500}"#,
            "INVALID_EDIT",
        ),
        (
            r#"{"type":"SET_EFFECT","mid":"f4","trackId":"nope","param":"send.reverb","value":0.5}"#,
            "INVALID_EDIT",
        ),
        (
            r#"{"type":"SET_EFFECT","mid":"f5","param":"delay.division","value":1.5}"#,
            "INVALID_EDIT",
        ),
        (
            r#"{"type":"SET_EFFECT","mid":"f6","param":"reverb.sparkle","value":1}"#,
            "INVALID_MESSAGE",
        ),
        (
            r#"{"type":"SET_PARAMETER_LOCK","mid":"f7","trackId":"bass","step":2,"lock":{"cutoff":5}}"#,
            "INVALID_EDIT",
        ),
    ];
    for (text, code) in bad {
        a.send_text(text).await.unwrap();
        let e = a.expect(|m| m["type"] == "ERROR").await.unwrap();
        assert_eq!(e["code"], code, "for {text}");
        assert!(e["message"].as_str().unwrap().len() > 5, "{e}");
    }
    let doc = t.get(&format!("/api/sessions/{id}")).await.unwrap().body;
    assert_eq!(
        doc["effects"],
        json!({"reverb.mix": 0.8, "reverb.decay": 4.0})
    );
    let bass = doc["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "bass")
        .unwrap()
        .clone();
    assert_eq!(
        bass["fx"],
        json!({"filter.mode": 1.0, "filter.cutoff": 500.0})
    );
    assert_eq!(bass["locks"]["3"]["cutoff"], 300.0);
    // A remix keeps them.
    let remix = t
        .post(&format!("/api/sessions/{id}/remix"), None)
        .await
        .unwrap();
    let rid = remix.body["id"].as_str().unwrap();
    let r = t.get(&format!("/api/sessions/{rid}")).await.unwrap().body;
    assert_eq!(r["effects"], doc["effects"]);
    assert_eq!(r["tracks"], doc["tracks"]);
    // The export renders them: with the reverb the file rings on after the loop; back to dry,
    // it ends with the instruments' own tails.
    let frames = |bytes: Vec<u8>| {
        hound::WavReader::new(std::io::Cursor::new(bytes))
            .unwrap()
            .duration()
    };
    let path = format!("/api/sessions/{id}/export.wav?loops=1");
    let wet = t.get(&path).await.unwrap();
    assert_eq!(wet.status, 200, "{}", wet.text);
    let wet = frames(wet.bytes);
    let mid = a
        .edit(json!({"type": "SET_EFFECT", "param": "reverb.mix", "value": 0}))
        .await
        .unwrap();
    a.ack(&mid).await.unwrap();
    let dry = frames(t.get(&path).await.unwrap().bytes);
    // One loop at 120 BPM is 2 s (88,200 frames at 44.1 kHz or 96,000 at 48 kHz).
    assert!(
        wet as f64 > dry as f64 + 0.5 * 44_100.0,
        "with reverb {wet} frames, dry {dry}"
    );
}
