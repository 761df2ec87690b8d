use serde_json::json;

use super::*;

struct Names;

impl Context for Names {
    fn display_name(&self, _room: &str, user_id: &str) -> String {
        format!("name of {user_id}")
    }
    fn media(&self, mxc: &str) -> Option<(String, Option<String>)> {
        let rest = mxc.strip_prefix("mxc://")?;
        Some((format!("https://hs/dl/{rest}"), Some("Bearer t".into())))
    }
}

fn one(raw: Value) -> AnyEvent {
    let mut events = translate(&raw, "!r:hs", &Names);
    assert_eq!(events.len(), 1, "{raw}");
    events.remove(0)
}

fn msg(content: Value) -> Value {
    json!({"type": "m.room.message", "event_id": "$e", "sender": "@a:hs", "content": content})
}

#[test]
fn texts_notices_and_emotes_are_messages() {
    for msgtype in ["m.text", "m.notice", "m.emote"] {
        let ev = one(msg(json!({"msgtype": msgtype, "body": "hi"})));
        let m = ev.downcast_ref::<Message>().expect("a Message");
        assert_eq!(m.text, "hi");
        let meta = ev.meta();
        assert_eq!(meta.user.as_deref(), Some("name of @a:hs"));
        assert_eq!(meta.user_id.as_deref(), Some("@a:hs"));
        assert_eq!(meta.target.as_deref(), Some("!r:hs"));
        assert_eq!(meta.event_id.as_deref(), Some("$e"));
        assert_eq!(
            meta.raw_event.as_ref().unwrap()["content"]["msgtype"],
            msgtype
        );
    }
}

#[test]
fn a_reply_loses_its_fallback_and_links_the_original() {
    let ev = one(msg(json!({
        "msgtype": "m.text",
        "body": "> <@b:hs> the question\n> second line\n\nthe answer",
        "m.relates_to": {"m.in_reply_to": {"event_id": "$q"}},
    })));
    let r = ev.downcast_ref::<Reply>().expect("a Reply");
    assert_eq!(r.text, "the answer");
    assert_eq!(ev.meta().linked_event.as_ref().unwrap().id(), Some("$q"));
}

#[test]
fn a_thread_message_is_a_message_and_keeps_its_thread() {
    let raw = msg(json!({
        "msgtype": "m.text", "body": "in thread",
        "m.relates_to": {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": true,
                         "m.in_reply_to": {"event_id": "$prev"}},
    }));
    let ev = one(raw);
    assert!(ev.downcast_ref::<Message>().is_some(), "{ev:?}");
    assert_eq!(
        thread_root(ev.meta().raw_event.as_ref().unwrap()),
        Some("$root")
    );
    // Without the fallback flag it is a reply within the thread.
    let raw = msg(json!({
        "msgtype": "m.text", "body": "reply in thread",
        "m.relates_to": {"rel_type": "m.thread", "event_id": "$root",
                         "m.in_reply_to": {"event_id": "$prev"}},
    }));
    assert!(one(raw).downcast_ref::<Reply>().is_some());
}

#[test]
fn an_edit_carries_the_new_text() {
    let ev = one(msg(json!({
        "msgtype": "m.text", "body": "* fixed",
        "m.new_content": {"msgtype": "m.text", "body": "fixed"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": "$old"},
    })));
    let e = ev.downcast_ref::<EditedMessage>().expect("an edit");
    assert_eq!(e.text, "fixed");
    assert_eq!(ev.meta().linked_event.as_ref().unwrap().id(), Some("$old"));
}

#[test]
fn files_images_and_videos_point_at_the_authenticated_download() {
    let ev = one(msg(json!({
        "msgtype": "m.image", "body": "cat.png", "url": "mxc://hs/abc",
        "info": {"mimetype": "image/png"},
    })));
    let image = ev.downcast_ref::<Image>().expect("an image");
    assert_eq!(image.url(), Some("https://hs/dl/hs/abc"));
    assert_eq!(image.name.as_deref(), Some("cat.png"));
    assert_eq!(image.mimetype.as_deref(), Some("image/png"));
    let FileSource::Url { headers, .. } = &image.source else {
        panic!()
    };
    assert_eq!(headers["Authorization"], "Bearer t");
    let ev = one(msg(
        json!({"msgtype": "m.video", "body": "v.mp4", "url": "mxc://hs/v"}),
    ));
    assert!(ev.downcast_ref::<Video>().is_some());
    let ev = one(msg(
        json!({"msgtype": "m.file", "body": "a.txt", "url": "mxc://hs/f"}),
    ));
    assert!(ev.downcast_ref::<File>().is_some());
    // A file without a URL (encrypted, or broken) is no event.
    assert!(
        translate(
            &msg(json!({"msgtype": "m.file", "body": "x"})),
            "!r:hs",
            &Names
        )
        .is_empty()
    );
}

#[test]
fn reactions_and_redactions_link_their_event() {
    let ev = one(
        json!({"type": "m.reaction", "event_id": "$r", "sender": "@a:hs",
        "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$m", "key": "👍"}}}),
    );
    assert_eq!(ev.downcast_ref::<Reaction>().unwrap().emoji, "👍");
    assert_eq!(ev.meta().linked_event.as_ref().unwrap().id(), Some("$m"));
    // Room version 11 puts `redacts` in the content; older ones at the top.
    for raw in [
        json!({"type": "m.room.redaction", "sender": "@a:hs", "content": {"redacts": "$m"}}),
        json!({"type": "m.room.redaction", "sender": "@a:hs", "redacts": "$m", "content": {}}),
    ] {
        let ev = one(raw);
        assert!(ev.downcast_ref::<DeleteMessage>().is_some());
        assert_eq!(ev.meta().linked_event.as_ref().unwrap().id(), Some("$m"));
    }
}

fn member(membership: &str, prev: Option<&str>, sender: &str) -> Value {
    let mut raw = json!({"type": "m.room.member", "sender": sender, "state_key": "@b:hs",
        "content": {"membership": membership}});
    if let Some(p) = prev {
        raw["unsigned"] = json!({"prev_content": {"membership": p}});
    }
    raw
}

#[test]
fn memberships_are_joins_leaves_bans_and_invites() {
    let ev = one(member("join", Some("invite"), "@b:hs"));
    assert!(ev.downcast_ref::<JoinRoom>().is_some());
    assert_eq!(ev.meta().user_id.as_deref(), Some("@b:hs"));
    assert!(
        one(member("leave", Some("join"), "@b:hs"))
            .downcast_ref::<LeaveRoom>()
            .is_some()
    );
    // A kick is a leave of the kicked user.
    let kick = one(member("leave", Some("join"), "@mod:hs"));
    assert_eq!(kick.meta().user_id.as_deref(), Some("@b:hs"));
    assert!(
        one(member("ban", Some("join"), "@mod:hs"))
            .downcast_ref::<BanUser>()
            .is_some()
    );
    assert!(
        one(member("invite", None, "@a:hs"))
            .downcast_ref::<UserInvite>()
            .is_some()
    );
    // A display-name change is no event.
    assert!(translate(&member("join", Some("join"), "@b:hs"), "!r:hs", &Names).is_empty());
}

#[test]
fn room_state_changes_are_events() {
    let ev = one(
        json!({"type": "m.room.name", "sender": "@a:hs", "state_key": "",
        "content": {"name": "Ops"}}),
    );
    assert_eq!(ev.downcast_ref::<RoomName>().unwrap().name, "Ops");
    let ev = one(
        json!({"type": "m.room.topic", "sender": "@a:hs", "state_key": "",
        "content": {"topic": "all about ops"}}),
    );
    assert_eq!(
        ev.downcast_ref::<RoomDescription>().unwrap().description,
        "all about ops"
    );
    let ev = one(
        json!({"type": "m.room.avatar", "sender": "@a:hs", "state_key": "",
        "content": {"url": "mxc://hs/av"}}),
    );
    assert_eq!(
        ev.downcast_ref::<RoomImage>().unwrap().image.url(),
        Some("https://hs/dl/hs/av")
    );
}

#[test]
fn power_level_changes_are_user_roles() {
    let raw = json!({"type": "m.room.power_levels", "sender": "@a:hs", "state_key": "",
        "content": {"users": {"@a:hs": 100, "@b:hs": 50}},
        "unsigned": {"prev_content": {"users": {"@a:hs": 100}}}});
    let ev = one(raw);
    assert_eq!(ev.downcast_ref::<UserRole>().unwrap().role, "mod");
    assert_eq!(ev.meta().user_id.as_deref(), Some("@b:hs"));
    // A demotion to the default level.
    let raw = json!({"type": "m.room.power_levels", "sender": "@a:hs", "state_key": "",
        "content": {"users": {"@a:hs": 100}},
        "unsigned": {"prev_content": {"users": {"@a:hs": 100, "@b:hs": 50}}}});
    assert_eq!(one(raw).downcast_ref::<UserRole>().unwrap().role, "user");
}

#[test]
fn pins_and_unpins() {
    let raw = json!({"type": "m.room.pinned_events", "sender": "@a:hs", "state_key": "",
        "content": {"pinned": ["$b"]},
        "unsigned": {"prev_content": {"pinned": ["$a"]}}});
    let events = translate(&raw, "!r:hs", &Names);
    assert_eq!(events.len(), 2);
    assert!(events[0].downcast_ref::<PinMessage>().is_some());
    assert_eq!(
        events[0].meta().linked_event.as_ref().unwrap().id(),
        Some("$b")
    );
    assert!(events[1].downcast_ref::<UnpinMessage>().is_some());
    assert_eq!(
        events[1].meta().linked_event.as_ref().unwrap().id(),
        Some("$a")
    );
}

#[test]
fn malformed_events_are_skipped_not_fatal() {
    for raw in [
        json!({"type": "m.room.message"}),
        json!({"type": "m.room.message", "sender": "@a:hs", "content": {"body": 5}}),
        json!({"type": "m.room.member", "sender": "@a:hs", "state_key": "@b:hs", "content": {}}),
        json!("not an object"),
        json!({"type": "m.room.message", "sender": "@a:hs", "content": {"msgtype": "m.location", "body": "x"}}),
    ] {
        assert!(translate(&raw, "!r:hs", &Names).is_empty(), "{raw}");
    }
}

#[test]
fn reply_fallbacks_are_stripped_only_when_present() {
    assert_eq!(strip_reply_fallback("plain"), "plain");
    assert_eq!(strip_reply_fallback("> q\n\nanswer"), "answer");
    assert_eq!(strip_reply_fallback("> only a quote"), "> only a quote");
}
