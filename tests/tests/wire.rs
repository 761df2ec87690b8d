//! Events on the wire (`connector_core::wire`): every built-in event and `#[derive(Event)]`
//! events of this crate round-trip with every field set; the registry knows them all by
//! name; bad bytes are typed errors and never a panic.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use chrono::TimeZone;
use connector_core::crontab::{Tick, Tz};
use connector_core::events::ALL;
use connector_core::model::Linked;
use connector_core::prelude::*;
use connector_core::wire::{self, WireError};
use serde_json::json;

/// A root event of this crate, with a field serde renames.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
#[event(name = "Deploy")]
struct Deploy {
    service: String,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    replicas: u32,
    meta: EventMeta,
}

/// A child of `Message` of this crate.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Blocks {
    #[event(parent)]
    message: Message,
    blocks: Vec<String>,
}

/// A grandchild: a `Blocks` that is also a `Message`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct PinnedBlocks {
    #[event(parent)]
    blocks: Blocks,
    pinned_by: String,
}

/// Two event types of one name, in two modules.
mod left {
    use connector_core::prelude::*;
    #[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
    #[event(name = "Clash")]
    pub struct Clash {
        pub meta: EventMeta,
    }
}
mod right {
    use connector_core::prelude::*;
    #[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
    #[event(name = "Clash")]
    pub struct Clash {
        pub meta: EventMeta,
    }
}

/// Every metadata field set, a linked event included.
fn full<E: Event>(event: E) -> AnyEvent {
    let linked = Message::new("the question").user("bob").event_id("$q");
    let mut event = event
        .user("ann")
        .user_id("@ann:example.org")
        .target("!room:example.org")
        .connector("matrix")
        .event_id("$e1")
        .linked_event(Linked::Event(AnyEvent::new(linked)))
        .raw_event(json!({"origin_server_ts": 1, "content": {"body": "x"}}));
    event
        .meta_mut()
        .update_entity("name", "ann", Some(0.9), false);
    event.meta_mut().update_entity("name", "bob", None, true);
    event.meta_mut().created = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
    AnyEvent::new(event)
}

fn image() -> Image {
    let mut image = Image::from_bytes(vec![0u8, 1, 2, 254, 255]);
    image.file = image.file.clone().name("a.png").mimetype("image/png");
    image
}

/// One sample of each built-in event (and core's own), fields and metadata set.
fn built_in_samples() -> Vec<AnyEvent> {
    let tick = Tick::new(
        "*/5 * * * *",
        chrono::Utc.with_ymd_and_hms(2026, 12, 3, 6, 0, 0).unwrap(),
        Tz::Europe__Paris,
    );
    let mut room = NewRoom::new(Some("ops".into()));
    room.params.insert("preset".into(), json!("private_chat"));
    let linked_by_id = Reaction::new("👍").linked_event(Linked::Id("$m".into()));
    vec![
        full(BotStarted::new()),
        full(Message::new("hello, \"world\"\n")),
        full(EditedMessage::new("fixed")),
        full(Reply::new("an answer")),
        full(Typing::new(true).timeout(Duration::from_millis(1500))),
        full(Reaction::new("🎉")),
        AnyEvent::new(linked_by_id),
        full(File::from_url("https://example.org/f").url_header("authorization", "Bearer t")),
        full(image()),
        full(Video::from_url("https://example.org/v.mp4")),
        full(room),
        full(RoomName::new("ops")),
        full(RoomAddress::new("#ops:example.org")),
        full(RoomImage::new(image())),
        full(RoomDescription::new("where deploys are announced")),
        full(JoinRoom::new()),
        full(LeaveRoom::new()),
        full(UserInvite::new()),
        full(UserRole::new("admin")),
        full(JoinGroup::new()),
        full(LeaveGroup::new()),
        full(PinMessage::new()),
        full(UnpinMessage::new()),
        full(DeleteMessage::new()),
        full(BanUser::new()),
        full(tick),
    ]
}

fn own_samples() -> Vec<AnyEvent> {
    let blocks = Blocks {
        message: Message::new("fallback"),
        blocks: vec!["section".into(), "divider".into()],
    };
    vec![
        full(Deploy {
            service: "api".into(),
            git_ref: Some("v1.2".into()),
            replicas: 3,
            meta: EventMeta::default(),
        }),
        full(blocks.clone()),
        full(PinnedBlocks {
            blocks,
            pinned_by: "carol".into(),
        }),
    ]
}

/// Encodes, decodes and encodes again: the same bytes, the same type, the same `Debug`.
fn round_trip(event: &AnyEvent) -> AnyEvent {
    let bytes = wire::encode(event).unwrap();
    let back = wire::decode(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", event.name(), String::from_utf8_lossy(&bytes)));
    assert_eq!(back.kind(), event.kind());
    assert_eq!(
        format!("{back:?}"),
        format!("{event:?}"),
        "{}",
        event.name()
    );
    assert_eq!(wire::encode(&back).unwrap(), bytes, "{}", event.name());
    back
}

#[test]
fn every_built_in_event_round_trips_with_every_field() {
    let samples = built_in_samples();
    let sampled: BTreeSet<&str> = samples.iter().map(AnyEvent::name).collect();
    let mut expected: BTreeSet<&str> = ALL.iter().map(|k| k.name()).collect();
    expected.insert("Tick");
    assert_eq!(sampled, expected, "a built-in event without a sample here");
    for event in &samples {
        round_trip(event);
    }
    // Spot checks that the fields themselves came back, not only their Debug text.
    let back = round_trip(&samples[1]);
    let message = back.downcast_ref::<Message>().unwrap();
    assert_eq!(message.text, "hello, \"world\"\n");
    assert_eq!(message.meta.entities["name"].value, json!(["ann", "bob"]));
    assert_eq!(
        message.meta.raw_event.as_deref().unwrap()["content"]["body"],
        "x"
    );
    let linked = message.meta.linked_event.as_ref().unwrap().event().unwrap();
    assert_eq!(linked.text(), Some("the question"));
    let back = round_trip(&samples[8]);
    assert_eq!(
        back.upcast_ref::<File>().unwrap().bytes(),
        Some(&[0u8, 1, 2, 254, 255][..])
    );
    let back = round_trip(&samples[6]);
    assert_eq!(back.meta().linked_event.as_ref().unwrap().id(), Some("$m"));
}

#[test]
fn derived_events_round_trip_and_keep_their_parents() {
    for event in own_samples() {
        round_trip(&event);
    }
    let pinned = round_trip(&own_samples()[2]);
    assert!(pinned.is_a::<Message>() && pinned.is_a::<Blocks>());
    assert_eq!(pinned.text(), Some("fallback"));
    let deploy = wire::encode(&own_samples()[0]).unwrap();
    let text = String::from_utf8(deploy).unwrap();
    assert!(
        text.starts_with(r#"{"v":1,"type":"Deploy","event":{"service":"api","ref":"v1.2""#),
        "{text}"
    );
}

#[test]
fn the_registry_holds_every_event_type_by_name() {
    let names: BTreeSet<&str> = wire::kinds().iter().map(|k| k.name()).collect();
    for sample in built_in_samples().iter().chain(&own_samples()) {
        assert!(
            names.contains(sample.name()),
            "{} is not registered",
            sample.name()
        );
        if sample.name() != "Clash" {
            assert_eq!(wire::kind(sample.name()).unwrap(), sample.kind());
        }
    }
    assert!(names.contains("WebhookRequest"));
    let clash = wire::ambiguous_names();
    assert_eq!(clash.len(), 1, "{clash:?}");
    assert_eq!(clash[0].0, "Clash");
    assert!(
        clash[0].1.iter().any(|m| m.ends_with("::left")),
        "{clash:?}"
    );
    assert!(
        clash[0].1.iter().any(|m| m.ends_with("::right")),
        "{clash:?}"
    );
    // Both types can still be written; reading the name is the error, naming both modules.
    let _ = (
        left::Clash {
            meta: EventMeta::default(),
        },
        right::Clash {
            meta: EventMeta::default(),
        },
    );
    let bytes = wire::encode(&AnyEvent::new(left::Clash {
        meta: EventMeta::default(),
    }))
    .unwrap();
    let err = wire::decode(&bytes).unwrap_err();
    assert!(matches!(err, WireError::Ambiguous { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("`Clash` is used by 2 types")
            && text.contains("::left")
            && text.contains("::right"),
        "{text}"
    );
}

#[test]
fn bad_bytes_are_errors_that_say_what_is_wrong() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "not an event envelope: EOF while parsing a value at line 1 column 0"),
        (b"{\"v\":1,\"type\":\"Message\"}", "not an event envelope: missing field `event` at line 1 column 24"),
        (b"\"hello\"", "not an event envelope: invalid type: string \"hello\", expected struct Envelope at line 1 column 7"),
        (b"{\"v\":2,\"type\":\"Message\",\"event\":{}}", "event envelope version 2 is not supported (this program reads version 1)"),
        (
            b"{\"v\":1,\"type\":\"Nope\",\"event\":{}}",
            "unknown event type `Nope`: no event type of that name is linked into this program",
        ),
        (
            b"{\"v\":1,\"type\":\"Message\",\"event\":{\"text\":5,\"meta\":{}}}",
            "malformed `Message` event at line 1 column 41: invalid type: integer `5`, expected a string",
        ),
        (
            b"{\"v\":1,\"type\":\"Message\",\"event\":{\"meta\":{}}}",
            "malformed `Message` event at line 1 column 43: missing field `text`",
        ),
        (
            b"{\"v\":1,\"type\":\"File\",\"event\":{\"source\":{\"bytes\":\"***\"},\"name\":null,\"mimetype\":null,\"meta\":{}}}",
            "malformed `File` event at line 1 column 54: bytes that are no base64: Invalid symbol 42, offset 0.",
        ),
        (
            b"{\"v\":1,\"type\":\"Reply\",\"event\":{\"message\":{\"text\":\"x\",\"meta\":{\"linked_event\":{\"event\":{\"type\":\"Gone\",\"event\":{}}}}}}}",
            "malformed `Reply` event at line 1 column 112: unknown event type `Gone`: no event type of that name is linked into this program",
        ),
    ];
    for (bytes, expected) in cases {
        let err = wire::decode(bytes).unwrap_err().to_string();
        assert!(
            err.starts_with(expected),
            "{}:\n  got {err}\n  not {expected}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn no_cut_or_corrupted_envelope_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for event in built_in_samples().iter().chain(&own_samples()) {
        let bytes = wire::encode(event).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                wire::decode(&bytes[..cut]).is_err(),
                "a cut envelope read as an event"
            );
        }
        for _ in 0..200 {
            let mut bad = bytes.clone();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % bad.len();
            bad[at] = (seed >> 32) as u8;
            let _ = wire::decode(&bad);
        }
    }
}
