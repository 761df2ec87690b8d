//! The event model: opsdroid names and parents of the built-in events, `File`'s
//! bytes-or-url rule, the metadata builders, `prepare_response`, entities, copy-on-write
//! `AnyEvent`, and events derived outside connector-core.

use std::time::Duration;

use connector_core::EventKind;
use connector_core::events::{ALL, FileError};
use connector_core::prelude::*;
use connector_core::respond::prepare_response;
use serde_json::json;

/// A root event defined in this crate.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Survey {
    question: String,
    meta: EventMeta,
}

/// A child of `Message` defined in this crate (a Slack-style message with blocks).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Blocks {
    #[event(parent)]
    message: Message,
    blocks: Vec<String>,
}

/// Every built-in event's kind with the name opsdroid gives the class.
fn opsdroid_names() -> Vec<(&'static EventKind, &'static str)> {
    vec![
        (Message::KIND, "Message"),
        (EditedMessage::KIND, "EditedMessage"),
        (Reply::KIND, "Reply"),
        (Typing::KIND, "Typing"),
        (Reaction::KIND, "Reaction"),
        (File::KIND, "File"),
        (Image::KIND, "Image"),
        (Video::KIND, "Video"),
        (NewRoom::KIND, "NewRoom"),
        (RoomName::KIND, "RoomName"),
        (RoomAddress::KIND, "RoomAddress"),
        (RoomImage::KIND, "RoomImage"),
        (RoomDescription::KIND, "RoomDescription"),
        (JoinRoom::KIND, "JoinRoom"),
        (LeaveRoom::KIND, "LeaveRoom"),
        (UserInvite::KIND, "UserInvite"),
        (UserRole::KIND, "UserRole"),
        (JoinGroup::KIND, "JoinGroup"),
        (LeaveGroup::KIND, "LeaveGroup"),
        (PinMessage::KIND, "PinMessage"),
        (UnpinMessage::KIND, "UnpinMessage"),
        (DeleteMessage::KIND, "DeleteMessage"),
        (BanUser::KIND, "BanUser"),
        (BotStarted::KIND, "BotStarted"),
    ]
}

#[test]
fn built_in_event_names_match_opsdroid() {
    let table = opsdroid_names();
    assert_eq!(table.len(), 24);
    for (kind, name) in &table {
        assert_eq!(kind.name(), *name);
        assert_eq!(kind.to_string(), *name, "Display");
        assert_eq!(format!("{kind:?}"), *name, "Debug");
    }
}

#[test]
fn all_lists_every_built_in_event_once() {
    assert_eq!(ALL.len(), 24);
    for (kind, name) in opsdroid_names() {
        let hits = ALL.iter().filter(|k| ***k == *kind).count();
        assert_eq!(hits, 1, "{name} appears {hits} times in events::ALL");
    }
    let mut names: Vec<&str> = ALL.iter().map(|k| k.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 24, "names in ALL are unique");
}

#[test]
fn kinds_are_distinct_and_know_their_type() {
    assert_ne!(Message::KIND, Reply::KIND);
    assert_ne!(File::KIND, Image::KIND);
    assert_eq!(Message::KIND.type_id(), std::any::TypeId::of::<Message>());
    assert_eq!(Image::KIND.type_id(), std::any::TypeId::of::<Image>());
}

#[test]
fn parents_match_the_opsdroid_class_hierarchy() {
    assert_eq!(Reply::KIND.parent(), Some(Message::KIND));
    assert_eq!(EditedMessage::KIND.parent(), Some(Message::KIND));
    assert_eq!(Image::KIND.parent(), Some(File::KIND));
    assert_eq!(Video::KIND.parent(), Some(File::KIND));
    let children = [Reply::KIND, EditedMessage::KIND, Image::KIND, Video::KIND];
    for kind in ALL {
        if !children.contains(kind) {
            assert_eq!(kind.parent(), None, "{kind} is a root event");
        }
    }
}

#[test]
fn is_a_follows_the_parent_chain() {
    for kind in ALL {
        assert!(kind.is_a(kind), "{kind} is a {kind}");
    }
    assert!(Reply::KIND.is_a(Message::KIND));
    assert!(EditedMessage::KIND.is_a(Message::KIND));
    assert!(Image::KIND.is_a(File::KIND));
    assert!(Video::KIND.is_a(File::KIND));
    assert!(
        !Message::KIND.is_a(Reply::KIND),
        "a parent is not its child"
    );
    assert!(!File::KIND.is_a(Image::KIND));
    assert!(
        !Reply::KIND.is_a(EditedMessage::KIND),
        "siblings are unrelated"
    );
    assert!(!Image::KIND.is_a(Video::KIND));
    assert!(!Image::KIND.is_a(Message::KIND));
    assert!(!Typing::KIND.is_a(Message::KIND));
}

#[test]
fn any_event_upcasts_children_to_their_parents() {
    let reply = AnyEvent::from(Reply::new("thanks").user("ann"));
    assert_eq!(reply.name(), "Reply");
    assert_eq!(reply.kind(), Reply::KIND);
    assert!(reply.is::<Reply>());
    assert!(!reply.is::<Message>(), "is() means exactly");
    assert!(reply.is_a::<Message>());
    assert!(reply.downcast_ref::<Message>().is_none());
    let as_message = reply.upcast_ref::<Message>().expect("a Reply is a Message");
    assert_eq!(as_message.text, "thanks");
    assert_eq!(as_message.meta.user.as_deref(), Some("ann"));
    assert_eq!(reply.text(), Some("thanks"));
    assert!(reply.upcast_ref::<EditedMessage>().is_none());
    assert!(reply.upcast_ref::<File>().is_none());

    let edited = AnyEvent::from(EditedMessage::new("fixed"));
    assert_eq!(
        edited.upcast_ref::<Message>().map(|m| m.text.as_str()),
        Some("fixed")
    );
    assert!(edited.upcast_ref::<Reply>().is_none());

    // `Image` has no by-value `name` builder of its own (it derefs to `File`), so build the
    // file first.
    let image = AnyEvent::from(Image {
        file: File::from_bytes(vec![1, 2, 3]).name("a.png"),
    });
    let file = image.upcast_ref::<File>().expect("an Image is a File");
    assert_eq!(file.bytes(), Some(&[1u8, 2, 3][..]));
    assert_eq!(file.name.as_deref(), Some("a.png"));
    assert!(image.is_a::<File>());
    assert!(!image.is_a::<Message>());
    assert_eq!(image.text(), None, "an Image has no text");

    let video = AnyEvent::from(Video::from_url("https://example.com/v.mp4"));
    assert_eq!(
        video.upcast_ref::<File>().and_then(|f| f.url()),
        Some("https://example.com/v.mp4")
    );
    assert!(video.upcast_ref::<Image>().is_none());

    // into_event is exact too.
    assert!(reply.clone().into_event::<Message>().is_err());
    assert_eq!(
        reply.into_event::<Reply>().expect("exactly a Reply").text,
        "thanks"
    );
}

#[test]
fn file_needs_exactly_one_of_bytes_and_url() {
    let neither = File::new(None, None).expect_err("neither bytes nor url");
    assert_eq!(neither, FileError::NeedBytesOrUrl);
    assert_eq!(
        neither.to_string(),
        "Either file_bytes or url must be specified"
    );
    let both = File::new(
        Some(b"data".to_vec()),
        Some("https://example.com/f".to_owned()),
    )
    .expect_err("both bytes and url");
    assert_eq!(
        both.to_string(),
        "Either file_bytes or url must be specified"
    );

    let bytes = File::new(Some(b"data".to_vec()), None).expect("bytes only");
    assert_eq!(bytes.bytes(), Some(&b"data"[..]));
    assert_eq!(bytes.url(), None);

    let url = File::new(None, Some("https://example.com/f".to_owned())).expect("url only");
    assert_eq!(url.url(), Some("https://example.com/f"));
    assert_eq!(url.bytes(), None);
}

#[test]
fn file_builders_set_name_mimetype_and_headers() {
    let file = File::from_url("https://example.com/f.txt")
        .name("f.txt")
        .mimetype("text/plain")
        .url_header("Authorization", "Bearer abc");
    assert_eq!(file.name.as_deref(), Some("f.txt"));
    assert_eq!(file.mimetype.as_deref(), Some("text/plain"));
    match &file.source {
        connector_core::events::FileSource::Url { url, headers } => {
            assert_eq!(url, "https://example.com/f.txt");
            assert_eq!(
                headers.get("Authorization").map(String::as_str),
                Some("Bearer abc")
            );
        }
        other => panic!("expected a URL source, got {other:?}"),
    }
    // Headers mean nothing for byte content.
    let bytes = File::from_bytes(b"x".to_vec()).url_header("Authorization", "Bearer abc");
    assert_eq!(bytes.bytes(), Some(&b"x"[..]));
}

#[test]
fn debug_of_a_file_hides_header_values() {
    let file = File::from_url("https://example.com/private.png")
        .url_header("Authorization", "Bearer top-secret-token")
        .url_header("X-Api-Key", "key-987654");
    for printed in [
        format!("{file:?}"),
        format!("{:?}", AnyEvent::from(file.clone())),
        format!("{:?}", Image { file: file.clone() }),
        format!("{:#?}", file),
    ] {
        assert!(
            printed.contains("https://example.com/private.png"),
            "{printed}"
        );
        assert!(
            printed.contains("Authorization"),
            "header names are shown: {printed}"
        );
        assert!(printed.contains("X-Api-Key"), "{printed}");
        assert!(
            !printed.contains("top-secret-token"),
            "header value leaked: {printed}"
        );
        assert!(
            !printed.contains("key-987654"),
            "header value leaked: {printed}"
        );
    }
    let bytes = File::from_bytes(vec![0u8; 4]);
    assert!(format!("{bytes:?}").contains("4 bytes"));
}

#[test]
fn builders_set_every_metadata_field() {
    let linked = AnyEvent::from(Message::new("original").event_id("orig-1"));
    let msg = Message::new("hi")
        .user("Ann")
        .user_id("U1")
        .target("#general")
        .connector("slack")
        .event_id("E1")
        .linked_event(Linked::Event(linked))
        .raw_event(json!({"type": "message", "ts": "1.2"}));
    let m = &msg.meta;
    assert_eq!(msg.text, "hi");
    assert_eq!(m.user.as_deref(), Some("Ann"));
    assert_eq!(m.user_id.as_deref(), Some("U1"));
    assert_eq!(m.target.as_deref(), Some("#general"));
    assert_eq!(m.connector.as_deref(), Some("slack"));
    assert_eq!(m.event_id.as_deref(), Some("E1"));
    let link = m.linked_event.as_ref().expect("linked event");
    assert_eq!(link.id(), Some("orig-1"));
    assert_eq!(link.event().and_then(AnyEvent::text), Some("original"));
    assert_eq!(
        m.raw_event.as_deref(),
        Some(&json!({"type": "message", "ts": "1.2"}))
    );
    assert!(m.entities.is_empty());

    let by_id = Reaction::new("👍").linked_event(Linked::Id("ts-42".to_owned()));
    assert_eq!(by_id.emoji, "👍");
    let link = by_id.meta.linked_event.as_ref().expect("linked id");
    assert_eq!(link.id(), Some("ts-42"));
    assert!(link.event().is_none());

    // On a child event the builders reach the parent's metadata.
    let reply = Reply::new("re")
        .user("bob")
        .target("room")
        .connector("matrix");
    assert_eq!(reply.meta().user.as_deref(), Some("bob"));
    assert_eq!(reply.message.meta.target.as_deref(), Some("room"));
    assert_eq!(reply.message.meta.connector.as_deref(), Some("matrix"));
}

#[test]
fn constructors_set_event_fields() {
    let typing = Typing::new(true).timeout(Duration::from_secs(3));
    assert!(typing.trigger);
    assert_eq!(typing.timeout, Some(Duration::from_secs(3)));
    assert_eq!(Typing::new(false).timeout, None);
    assert_eq!(RoomName::new("ops").name, "ops");
    assert_eq!(
        RoomAddress::new("#ops:example.org").address,
        "#ops:example.org"
    );
    assert_eq!(
        RoomDescription::new("the ops room").description,
        "the ops room"
    );
    assert_eq!(UserRole::new("admin").role, "admin");
    let room = NewRoom::new(Some("new".to_owned()));
    assert_eq!(room.name.as_deref(), Some("new"));
    assert!(room.params.is_empty());
    let img = RoomImage::new(Image::from_url("https://example.com/a.png"));
    assert_eq!(img.image.url(), Some("https://example.com/a.png"));
    assert_eq!(
        JoinRoom::new().target("r").meta.target.as_deref(),
        Some("r")
    );
    assert!(BanUser::default().meta.user.is_none());
}

#[test]
fn prepare_response_inherits_unset_fields_and_links_the_trigger() {
    let trigger = AnyEvent::from(
        Message::new("hello")
            .user("Ann")
            .user_id("U1")
            .target("#general")
            .connector("slack")
            .event_id("E1"),
    );
    let response = prepare_response(&trigger, "Hi Ann");
    assert!(response.is::<Message>());
    assert_eq!(response.text(), Some("Hi Ann"));
    let m = response.meta();
    assert_eq!(m.user.as_deref(), Some("Ann"));
    assert_eq!(m.user_id.as_deref(), Some("U1"));
    assert_eq!(m.target.as_deref(), Some("#general"));
    assert_eq!(m.connector.as_deref(), Some("slack"));
    assert_eq!(m.event_id, None, "the response is a new event");
    let link = m.linked_event.as_ref().expect("linked to the trigger");
    assert_eq!(link.id(), Some("E1"));
    assert_eq!(link.event().and_then(AnyEvent::text), Some("hello"));
}

#[test]
fn prepare_response_keeps_fields_set_on_the_response() {
    let trigger = AnyEvent::from(
        Message::new("hello")
            .user("Ann")
            .user_id("U1")
            .target("#general")
            .connector("slack"),
    );
    let own_link = Linked::Id("other".to_owned());
    let response = prepare_response(
        &trigger,
        Reply::new("hi")
            .user("Bob")
            .user_id("U2")
            .target("#random")
            .connector("matrix")
            .linked_event(own_link),
    );
    assert!(response.is::<Reply>(), "the response keeps its type");
    let m = response.meta();
    assert_eq!(m.user.as_deref(), Some("Bob"));
    assert_eq!(m.user_id.as_deref(), Some("U2"));
    assert_eq!(m.target.as_deref(), Some("#random"));
    assert_eq!(m.connector.as_deref(), Some("matrix"));
    assert_eq!(m.linked_event.as_ref().and_then(Linked::id), Some("other"));

    // Only the target set: everything else still comes from the trigger.
    let response = prepare_response(&trigger, Message::new("x").target("#elsewhere"));
    let m = response.meta();
    assert_eq!(m.target.as_deref(), Some("#elsewhere"));
    assert_eq!(m.user.as_deref(), Some("Ann"));
    assert_eq!(m.user_id.as_deref(), Some("U1"));
    assert_eq!(m.connector.as_deref(), Some("slack"));
    assert!(m.linked_event.as_ref().and_then(Linked::event).is_some());
}

#[test]
fn prepare_response_user_id_falls_back_to_user() {
    // opsdroid: `user_id = user_id or user`.
    let trigger = AnyEvent::from(Message::new("hello").user("ann").connector("shell"));
    let response = prepare_response(&trigger, "Hi ann");
    assert_eq!(response.meta().user.as_deref(), Some("ann"));
    assert_eq!(response.meta().user_id.as_deref(), Some("ann"));

    // The response's own user is the fallback when it has one.
    let response = prepare_response(&trigger, Message::new("x").user("bob"));
    assert_eq!(response.meta().user_id.as_deref(), Some("bob"));

    // With no user anywhere there is nothing to fall back to.
    let anonymous = AnyEvent::from(Message::new("hello").connector("shell"));
    let response = prepare_response(&anonymous, "hi");
    assert_eq!(response.meta().user, None);
    assert_eq!(response.meta().user_id, None);
    assert_eq!(response.meta().connector.as_deref(), Some("shell"));
}

#[test]
fn prepare_response_does_not_change_the_trigger() {
    let trigger = AnyEvent::from(Message::new("hello").user("ann"));
    let _ = prepare_response(&trigger, Message::new("x").target("t"));
    assert_eq!(trigger.meta().target, None);
    assert!(trigger.meta().linked_event.is_none());
}

#[test]
fn update_entity_appends_into_a_list() {
    let mut meta = EventMeta::default();
    meta.update_entity("city", "London", Some(0.9), false);
    assert_eq!(meta.get_entity("city"), Some(&json!("London")));
    assert_eq!(meta.entity_str("city"), Some("London"));
    assert_eq!(meta.entities["city"].confidence, Some(0.9));

    meta.update_entity("city", "Paris", None, true);
    assert_eq!(meta.get_entity("city"), Some(&json!(["London", "Paris"])));
    assert_eq!(
        meta.entity_str("city"),
        None,
        "a list is not a single string"
    );
    assert_eq!(
        meta.entities["city"].confidence,
        Some(0.9),
        "kept when none given"
    );

    meta.update_entity("city", "Rome", Some(0.5), true);
    assert_eq!(
        meta.get_entity("city"),
        Some(&json!(["London", "Paris", "Rome"]))
    );
    assert_eq!(meta.entities["city"].confidence, Some(0.5));

    // Without append the value is replaced.
    meta.update_entity("city", "Oslo", None, false);
    assert_eq!(meta.get_entity("city"), Some(&json!("Oslo")));
    assert_eq!(meta.entities["city"].confidence, None);

    // Append to a missing entity just stores it.
    meta.update_entity("count", 3, None, true);
    assert_eq!(meta.get_entity("count"), Some(&json!(3)));
    assert_eq!(meta.entity_str("count"), None, "not a string");
    assert_eq!(meta.get_entity("missing"), None);
    assert_eq!(meta.entity_str("missing"), None);
    assert_eq!(meta.entities.len(), 2);
}

#[test]
fn any_event_meta_mut_copies_on_write() {
    let original = AnyEvent::from(Message::new("hi").user("ann"));
    let mut copy = original.clone();
    copy.meta_mut().user = Some("bob".into());
    copy.meta_mut().update_entity("k", "v", None, false);
    assert_eq!(original.meta().user.as_deref(), Some("ann"));
    assert!(original.meta().entities.is_empty());
    assert_eq!(copy.meta().user.as_deref(), Some("bob"));
    assert_eq!(copy.meta().entity_str("k"), Some("v"));
    assert_eq!(copy.text(), Some("hi"), "the rest of the event is copied");

    // An unshared event is changed in place, and stays what it was.
    let mut alone = AnyEvent::from(Reply::new("x"));
    alone.meta_mut().target = Some("room".into());
    assert_eq!(alone.meta().target.as_deref(), Some("room"));
    assert!(alone.is::<Reply>());
}

#[test]
fn a_string_is_a_message() {
    let from_str = AnyEvent::from("text");
    assert!(from_str.is::<Message>());
    assert_eq!(from_str.name(), "Message");
    assert_eq!(from_str.text(), Some("text"));
    assert!(from_str.meta().user.is_none());
    let from_string = AnyEvent::from(String::from("owned"));
    assert!(from_string.is::<Message>());
    assert_eq!(from_string.text(), Some("owned"));
}

#[test]
fn derived_root_event_has_its_own_kind() {
    assert_eq!(Survey::KIND.name(), "Survey");
    assert_eq!(Survey::KIND.parent(), None);
    assert!(!Survey::KIND.is_a(Message::KIND));
    assert!(!ALL.contains(&Survey::KIND), "not a built-in event");

    let ev = AnyEvent::from(
        Survey {
            question: "lunch?".to_owned(),
            meta: EventMeta::default(),
        }
        .user("ann")
        .target("#food"),
    );
    assert_eq!(ev.name(), "Survey");
    assert!(ev.is::<Survey>());
    assert_eq!(
        ev.downcast_ref::<Survey>().map(|s| s.question.as_str()),
        Some("lunch?")
    );
    assert_eq!(ev.meta().user.as_deref(), Some("ann"));
    assert_eq!(ev.meta().target.as_deref(), Some("#food"));
    assert!(ev.upcast_ref::<Message>().is_none());
    assert_eq!(ev.text(), None);
}

#[test]
fn derived_child_of_message_upcasts_to_message() {
    assert_eq!(Blocks::KIND.name(), "Blocks");
    assert_eq!(Blocks::KIND.parent(), Some(Message::KIND));
    assert!(Blocks::KIND.is_a(Message::KIND));
    assert!(!Message::KIND.is_a(Blocks::KIND));
    assert!(!Blocks::KIND.is_a(Reply::KIND));

    let blocks = Blocks {
        message: Message::new("*bold* text"),
        blocks: vec!["section".to_owned()],
    }
    .user("ann")
    .connector("slack");
    // The builders reach the parent's metadata.
    assert_eq!(blocks.message.meta.user.as_deref(), Some("ann"));
    assert_eq!(blocks.parent().text, "*bold* text");

    let ev = AnyEvent::from(blocks);
    assert_eq!(ev.name(), "Blocks");
    assert!(ev.is::<Blocks>());
    assert!(!ev.is::<Message>());
    assert!(ev.is_a::<Message>());
    let message = ev.upcast_ref::<Message>().expect("Blocks is a Message");
    assert_eq!(message.text, "*bold* text");
    assert_eq!(ev.text(), Some("*bold* text"));
    assert_eq!(ev.meta().connector.as_deref(), Some("slack"));
    assert_eq!(
        ev.downcast_ref::<Blocks>().map(|b| b.blocks.clone()),
        Some(vec!["section".to_owned()])
    );

    // A response to it inherits its metadata like any other trigger.
    let response = prepare_response(&ev, "ok");
    assert_eq!(response.meta().user.as_deref(), Some("ann"));
    assert_eq!(response.meta().connector.as_deref(), Some("slack"));
    assert!(
        response
            .meta()
            .linked_event
            .as_ref()
            .and_then(Linked::event)
            .is_some_and(|e| e.is::<Blocks>())
    );
}
