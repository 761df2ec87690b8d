//! The Synapse test support itself (`connector_tests::synapse`): a real homeserver on loopback,
//! registration, rooms, messages seen through `/sync`, a kill and restart, and a strict
//! `rc_message` that answers 429 until `Client::call` waits it out.

use std::time::{Duration, Instant};

use connector_tests::synapse::{Client, Synapse, SynapseOptions};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);

fn is_text(body: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["type"] == "m.room.message" && e["content"]["body"] == body
}

/// Alice (admin) makes a room with an alias and invites bob, who joins it by the alias.
fn shared_room(synapse: &Synapse) -> (Client, Client, String) {
    let t = Instant::now();
    let alice = synapse.register("alice", "alicepw", true).unwrap();
    eprintln!("registered and logged in alice in {:?}", t.elapsed());
    let bob = synapse.register("bob", "bobpw", false).unwrap();
    assert_eq!(alice.user_id(), "@alice:localhost");
    assert_eq!(bob.user_id(), "@bob:localhost");
    let room = alice
        .create_room(json!({"room_alias_name": "smoke", "preset": "private_chat"}))
        .unwrap();
    alice.invite(&room, bob.user_id()).unwrap();
    assert_eq!(bob.join("#smoke:localhost").unwrap(), room);
    (alice, bob, room)
}

/// The async tests hand both to `spawn_blocking`.
#[test]
fn synapse_and_client_are_send_and_sync() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Synapse>();
    send_sync::<Client>();
}

#[test]
fn synapse_rooms_restart_and_rate_limits() {
    let t0 = Instant::now();
    let mut synapse = Synapse::start(SynapseOptions::default()).unwrap();
    assert!(synapse.url().starts_with("http://127.0.0.1:"));
    eprintln!("started in {:?}", t0.elapsed());
    let t = Instant::now();
    let (alice, bob, room) = shared_room(&synapse);
    eprintln!("two users and a room in {:?}", t.elapsed());

    let sent = alice.send_text(&room, "hello bob").unwrap();
    let seen = bob.wait_for(&room, is_text("hello bob"), WAIT).unwrap();
    assert_eq!(seen["event_id"], sent.as_str());
    assert_eq!(seen["sender"], "@alice:localhost");
    // Remembered: a later wait finds it without a new event.
    bob.wait_for(&room, |e| e["event_id"] == sent.as_str(), Duration::ZERO)
        .unwrap();

    alice
        .put_state(&room, "m.room.topic", "", json!({"topic": "smoke"}))
        .unwrap();
    let topic = bob.get_state(&room, "m.room.topic", "").unwrap();
    assert_eq!(topic, Some(json!({"topic": "smoke"})));
    assert_eq!(bob.get_state(&room, "org.example.none", "").unwrap(), None);

    let mxc = alice
        .upload(b"some bytes", "text/plain", "a b.txt")
        .unwrap();
    assert_eq!(bob.download(&mxc).unwrap(), b"some bytes");

    alice.typing(&room, true).unwrap();
    bob.wait_for_typing(&room, alice.user_id(), true, WAIT)
        .unwrap();
    alice.typing(&room, false).unwrap();
    bob.wait_for_typing(&room, alice.user_id(), false, WAIT)
        .unwrap();

    let t = Instant::now();
    synapse.kill();
    assert!(
        bob.request("GET", "/_matrix/client/v3/account/whoami", None)
            .is_err()
    );
    synapse.restart().unwrap();
    eprintln!("killed and restarted in {:?}", t.elapsed());
    let whoami = bob
        .call("GET", "/_matrix/client/v3/account/whoami", None)
        .unwrap();
    assert_eq!(whoami["user_id"], "@bob:localhost");
    let again = bob.send_text(&room, "back again").unwrap();
    let seen = alice.wait_for(&room, is_text("back again"), WAIT).unwrap();
    assert_eq!(seen["event_id"], again.as_str());
    let redaction = alice.redact(&room, &again).unwrap();
    bob.wait_for(&room, |e| e["event_id"] == redaction.as_str(), WAIT)
        .unwrap();
    alice.leave(&room).unwrap();
    drop(synapse);

    let t = Instant::now();
    let strict = Synapse::start(SynapseOptions {
        rc_message: Some("{per_second: 0.5, burst_count: 2}".into()),
    })
    .unwrap();
    let (alice, bob, room) = shared_room(&strict);
    eprintln!("strict server up with a room in {:?}", t.elapsed());
    let path = |i: usize| {
        format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/smoke{i}",
            connector_tests::synapse::enc(&room)
        )
    };
    let mut limited = Vec::new();
    let mut statuses = Vec::new();
    for i in 0..4 {
        let body = json!({"msgtype": "m.text", "body": format!("quick {i}")});
        let (status, answer) = bob.request("PUT", &path(i), Some(&body)).unwrap();
        statuses.push(status);
        if status == 429 {
            assert_eq!(answer["errcode"], "M_LIMIT_EXCEEDED", "{answer}");
            assert!(answer["retry_after_ms"].as_u64().is_some(), "{answer}");
            limited.push((i, body));
        } else {
            assert_eq!(status, 200, "{answer}");
        }
    }
    eprintln!("4 quick messages answered {statuses:?}");
    assert!(
        !limited.is_empty(),
        "4 quick messages with burst_count 2: none was limited"
    );
    let t = Instant::now();
    for (i, body) in &limited {
        bob.call("PUT", &path(*i), Some(body)).unwrap();
    }
    eprintln!(
        "{} limited messages through call in {:?}",
        limited.len(),
        t.elapsed()
    );
    for i in 0..4 {
        alice
            .wait_for(&room, is_text(&format!("quick {i}")), WAIT)
            .unwrap();
    }
    eprintln!("whole smoke test in {:?}", t0.elapsed());
}
