//! The Matrix connector against a real Synapse (started by the test, on loopback): every
//! event row in each direction the protocol allows, a room and a direct chat, invite → join,
//! threads, and skill constraints naming the configured room.

mod support;

use anyhow::Result;
use connector_core::prelude::*;
use connector_matrix::{Matrix, thread_root};
use connector_tests::synapse::SynapseOptions;
use serde_json::{Value, json};
use support::*;

/// Answers `do <what> [arg]` with the event `what` names, so each outbound row is one
/// message from alice.
fn commands() -> Skill {
    Skill::new("do", |ctx: SkillContext| async move {
        let what = ctx.group(1).unwrap_or_default().to_owned();
        let arg = ctx.group(2).unwrap_or_default().to_owned();
        let trigger = ctx.event().clone();
        let here = || Linked::Event(trigger.clone());
        let event: AnyEvent = match what.as_str() {
            "say" => AnyEvent::new(Message::new(arg)),
            "emote" => AnyEvent::new(Message::new(format!("/me {arg}"))),
            "reply" => AnyEvent::new(Reply::new("a reply")),
            "edit" => AnyEvent::new(EditedMessage::new("edited by the bot")),
            "react" => AnyEvent::new(Reaction::new("👍")),
            "typing" => AnyEvent::new(Typing::new(true)),
            "file" => AnyEvent::new(
                File::from_bytes(b"file bytes".to_vec())
                    .name("a.txt")
                    .mimetype("text/plain"),
            ),
            "image" => AnyEvent::new(Image {
                file: File::from_bytes(b"\x89PNG not really".to_vec())
                    .name("i.png")
                    .mimetype("image/png"),
            }),
            "video" => AnyEvent::new(Video {
                file: File::from_bytes(b"video bytes".to_vec())
                    .name("v.mp4")
                    .mimetype("video/mp4"),
            }),
            "name" => AnyEvent::new(RoomName::new(arg)),
            "topic" => AnyEvent::new(RoomDescription::new(arg)),
            "avatar" => AnyEvent::new(RoomImage::new(Image {
                file: File::from_bytes(b"avatar".to_vec())
                    .name("a.png")
                    .mimetype("image/png"),
            })),
            "promote" => AnyEvent::new(UserRole::new("mod").user_id(arg)),
            "invite" => AnyEvent::new(UserInvite::new().user_id(arg)),
            "pin" => AnyEvent::new(PinMessage::new().linked_event(here())),
            "unpin" => AnyEvent::new(UnpinMessage::new().linked_event(Linked::Id(arg))),
            "delete" => AnyEvent::new(DeleteMessage::new().linked_event(here())),
            "ban" => AnyEvent::new(BanUser::new().user_id(arg)),
            "leave" => AnyEvent::new(LeaveRoom::new().target(arg)),
            "join" => AnyEvent::new(JoinRoom::new().target(arg)),
            "newroom" => {
                let mut room = NewRoom::new(Some("made by the bot".into()));
                room.params.insert("room_alias_name".into(), arg.into());
                AnyEvent::new(room)
            }
            "address" => AnyEvent::new(RoomAddress::new(arg)),
            other => AnyEvent::new(Message::new(format!("unknown command {other}"))),
        };
        ctx.respond(event).await
    })
    .regex(r"^do (\w+) ?(.*)$")
}

fn content(e: &Value) -> &Value {
    &e["content"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_both_ways_in_a_room_a_direct_chat_and_a_thread() -> Result<()> {
    let world = World::new(SynapseOptions::default()).await?;
    let room = world.room.clone();
    let yaml = world.section("    accept_invites: true\n    nick: The Bot\n");
    let main_only = Skill::new("main only", |ctx: SkillContext| async move {
        ctx.respond("main room skill").await
    })
    .regex("^which room")
    .constrain_rooms(&["main"]);
    let mut run = start_bot(&yaml, vec![commands(), main_only])?;
    let (alice, bob) = (world.alice.clone(), world.bob.clone());

    // The bot joined #ops by its alias and set its nick.
    let me = world
        .alice_sees(&room, |e| {
            e["type"] == "m.room.member" && content(e)["membership"] == "join"
        })
        .await?;
    assert_eq!(me["state_key"], "@bot:localhost");

    // ---- outbound, one command each -----------------------------------------------------
    world
        .alice(move |a, r| {
            for cmd in [
                "do say plain words",
                "do emote waves",
                "do reply",
                "do react",
                "do typing",
            ] {
                a.send_text(r, cmd)?;
            }
            Ok(())
        })
        .await?;
    let said = world
        .alice_sees(&room, |e| content(e)["body"] == "plain words")
        .await?;
    assert_eq!(content(&said)["msgtype"], "m.text");
    let emote = world
        .alice_sees(&room, |e| content(e)["msgtype"] == "m.emote")
        .await?;
    assert_eq!(content(&emote)["body"], "waves");
    let reply = world
        .alice_sees(&room, |e| content(e)["body"] == "a reply")
        .await?;
    let asked = alice.events(&room);
    let reply_cmd = asked
        .iter()
        .find(|e| content(e)["body"] == "do reply")
        .unwrap();
    assert_eq!(
        content(&reply)["m.relates_to"]["m.in_reply_to"]["event_id"],
        reply_cmd["event_id"]
    );
    let react = world
        .alice_sees(&room, |e| e["type"] == "m.reaction")
        .await?;
    let react_cmd = asked
        .iter()
        .find(|e| content(e)["body"] == "do react")
        .unwrap();
    assert_eq!(content(&react)["m.relates_to"]["key"], "👍");
    assert_eq!(
        content(&react)["m.relates_to"]["event_id"],
        react_cmd["event_id"]
    );
    world
        .alice(move |a, r| a.wait_for_typing(r, "@bot:localhost", true, WAIT))
        .await?;

    // Edits, files, state.
    let edit_cmd = world.alice(move |a, r| a.send_text(r, "do edit")).await?;
    let edit = world
        .alice_sees(&room, |e| {
            content(e)["m.relates_to"]["rel_type"] == "m.replace"
        })
        .await?;
    assert_eq!(
        content(&edit)["m.relates_to"]["event_id"],
        edit_cmd.as_str()
    );
    assert_eq!(content(&edit)["m.new_content"]["body"], "edited by the bot");

    for (cmd, msgtype, bytes) in [
        ("do file", "m.file", &b"file bytes"[..]),
        ("do image", "m.image", &b"\x89PNG not really"[..]),
        ("do video", "m.video", &b"video bytes"[..]),
    ] {
        world
            .alice(move |a, r| a.send_text(r, cmd).map(drop))
            .await?;
        let sent = world
            .alice_sees(&room, move |e| content(e)["msgtype"] == msgtype)
            .await?;
        let mxc = content(&sent)["url"].as_str().unwrap().to_owned();
        let a = alice.clone();
        let got = blocking(move || a.download(&mxc)).await?;
        assert_eq!(got, bytes, "{msgtype}: the uploaded content comes back");
    }

    world
        .alice(move |a, r| {
            for cmd in [
                "do name renamed by the bot",
                "do topic set by the bot",
                "do avatar",
                "do promote @bob:localhost",
            ] {
                a.send_text(r, cmd)?;
            }
            Ok(())
        })
        .await?;
    world
        .alice_sees(&room, |e| {
            e["type"] == "m.room.name" && content(e)["name"] == "renamed by the bot"
        })
        .await?;
    world
        .alice_sees(&room, |e| {
            e["type"] == "m.room.topic" && content(e)["topic"] == "set by the bot"
        })
        .await?;
    let avatar = world
        .alice_sees(&room, |e| e["type"] == "m.room.avatar")
        .await?;
    assert!(
        content(&avatar)["url"]
            .as_str()
            .unwrap()
            .starts_with("mxc://")
    );
    world
        .alice_sees(&room, |e| {
            e["type"] == "m.room.power_levels" && content(e)["users"]["@bob:localhost"] == 50
        })
        .await?;

    let pin_cmd = world.alice(move |a, r| a.send_text(r, "do pin")).await?;
    world
        .alice_sees(&room, {
            let id = pin_cmd.clone();
            move |e| e["type"] == "m.room.pinned_events" && content(e)["pinned"] == json!([id])
        })
        .await?;
    let a = alice.clone();
    let r = room.clone();
    let unpin = format!("do unpin {pin_cmd}");
    blocking(move || a.send_text(&r, &unpin).map(drop)).await?;
    world
        .alice_sees(&room, |e| {
            e["type"] == "m.room.pinned_events" && content(e)["pinned"] == json!([])
        })
        .await?;
    let delete_cmd = world.alice(move |a, r| a.send_text(r, "do delete")).await?;
    let redaction = world
        .alice_sees(&room, |e| e["type"] == "m.room.redaction")
        .await?;
    let redacted = redaction["redacts"]
        .as_str()
        .or(content(&redaction)["redacts"].as_str());
    assert_eq!(redacted, Some(delete_cmd.as_str()));

    // A skill constrained to `main` answers here: the configured name is this room's id.
    world
        .alice(move |a, r| a.send_text(r, "which room").map(drop))
        .await?;
    world
        .alice_sees(&room, |e| content(e)["body"] == "main room skill")
        .await?;

    // ---- inbound ------------------------------------------------------------------------
    let hello = world
        .alice(move |a, r| a.send_text(r, "hello from alice"))
        .await?;
    let ev = next_text(&mut run, "hello from alice").await;
    let meta = ev.meta();
    assert_eq!(meta.user_id.as_deref(), Some("@alice:localhost"));
    assert_eq!(meta.user.as_deref(), Some("alice"));
    assert_eq!(meta.target.as_deref(), Some(room.as_str()));
    assert_eq!(meta.event_id.as_deref(), Some(hello.as_str()));
    assert_eq!(meta.connector.as_deref(), Some("matrix"));

    let a = alice.clone();
    let r = room.clone();
    let hello2 = hello.clone();
    blocking(move || {
        a.send_event(
            &r,
            "m.room.message",
            json!({"msgtype": "m.notice", "body": "a notice"}),
        )?;
        a.send_event(
            &r,
            "m.room.message",
            json!({"msgtype": "m.emote", "body": "dances"}),
        )?;
        a.send_event(
            &r,
            "m.room.message",
            json!({
                "msgtype": "m.text", "body": "> <@alice:localhost> hello from alice\n\nan answer",
                "m.relates_to": {"m.in_reply_to": {"event_id": hello2}},
            }),
        )?;
        a.send_event(
            &r,
            "m.room.message",
            json!({
                "msgtype": "m.text", "body": "* hello, edited",
                "m.new_content": {"msgtype": "m.text", "body": "hello, edited"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": hello2},
            }),
        )?;
        a.send_event(
            &r,
            "m.reaction",
            json!({
                "m.relates_to": {"rel_type": "m.annotation", "event_id": hello2, "key": "🎉"},
            }),
        )?;
        Ok(())
    })
    .await?;
    next_text(&mut run, "a notice").await;
    next_text(&mut run, "dances").await;
    let reply = next_of::<Reply>(&mut run).await;
    assert_eq!(reply.text(), Some("an answer"));
    assert_eq!(
        reply.meta().linked_event.as_ref().unwrap().id(),
        Some(hello.as_str())
    );
    let edit = next_of::<EditedMessage>(&mut run).await;
    assert_eq!(edit.text(), Some("hello, edited"));
    assert_eq!(
        edit.meta().linked_event.as_ref().unwrap().id(),
        Some(hello.as_str())
    );
    let reaction = next_of::<Reaction>(&mut run).await;
    assert_eq!(reaction.downcast_ref::<Reaction>().unwrap().emoji, "🎉");

    world.alice(move |a, r| a.typing(r, true)).await?;
    let typing = next_of::<Typing>(&mut run).await;
    assert!(typing.downcast_ref::<Typing>().unwrap().trigger);
    assert_eq!(typing.meta().user_id.as_deref(), Some("@alice:localhost"));
    world.alice(move |a, r| a.typing(r, false)).await?;
    assert!(
        !next_of::<Typing>(&mut run)
            .await
            .downcast_ref::<Typing>()
            .unwrap()
            .trigger
    );

    // Files: the event's URL and header download the content (through the connector too).
    world
        .alice(move |a, r| {
            for (msgtype, name, mime) in [
                ("m.file", "f.txt", "text/plain"),
                ("m.image", "p.png", "image/png"),
                ("m.video", "v.mp4", "video/mp4"),
            ] {
                let mxc = a.upload(name.as_bytes(), mime, name)?;
                a.send_event(
                r,
                "m.room.message",
                json!({"msgtype": msgtype, "body": name, "url": mxc, "info": {"mimetype": mime}}),
            )?;
            }
            Ok(())
        })
        .await?;
    let matrix = run
        .bot()
        .connector::<Matrix>("matrix")
        .expect("the matrix connector");
    for (name, kind) in [("f.txt", "File"), ("p.png", "Image"), ("v.mp4", "Video")] {
        let ev = next_of::<File>(&mut run).await;
        assert_eq!(ev.name(), kind);
        let file = ev.upcast_ref::<File>().unwrap();
        assert_eq!(file.name.as_deref(), Some(name));
        assert!(
            file.url()
                .unwrap()
                .contains("/_matrix/client/v1/media/download/localhost/")
        );
        assert_eq!(&matrix.get().download(file).await?[..], name.as_bytes());
    }

    // Membership, room state, power levels, redactions, pins.
    for user in ["carol", "dave", "erin"] {
        world.synapse.register(user, &format!("{user}pw"), false)?;
    }
    let (a, b, r) = (alice.clone(), bob.clone(), room.clone());
    blocking(move || {
        b.leave(&r)?;
        b.join(&r)?;
        a.invite(&r, "@carol:localhost")?;
        a.call(
            "POST",
            &format!(
                "/_matrix/client/v3/rooms/{}/ban",
                connector_tests::synapse::enc(&r)
            ),
            Some(&json!({"user_id": "@dave:localhost", "reason": "test"})),
        )?;
        a.put_state(&r, "m.room.name", "", json!({"name": "named by alice"}))?;
        a.put_state(&r, "m.room.topic", "", json!({"topic": "topic by alice"}))?;
        let mxc = a.upload(b"av", "image/png", "av.png")?;
        a.put_state(&r, "m.room.avatar", "", json!({"url": mxc}))?;
        let mut levels = a.get_state(&r, "m.room.power_levels", "")?.unwrap();
        levels["users"]["@bob:localhost"] = json!(100);
        a.put_state(&r, "m.room.power_levels", "", levels)?;
        let doomed = a.send_text(&r, "to be deleted")?;
        a.redact(&r, &doomed)?;
        a.put_state(&r, "m.room.pinned_events", "", json!({"pinned": [doomed]}))?;
        a.put_state(&r, "m.room.pinned_events", "", json!({"pinned": []}))?;
        Ok(())
    })
    .await?;
    assert_eq!(
        user_id_of::<LeaveRoom>(&mut run).await.as_deref(),
        Some("@bob:localhost")
    );
    assert_eq!(
        user_id_of::<JoinRoom>(&mut run).await.as_deref(),
        Some("@bob:localhost")
    );
    assert_eq!(
        user_id_of::<UserInvite>(&mut run).await.as_deref(),
        Some("@carol:localhost")
    );
    assert_eq!(
        user_id_of::<BanUser>(&mut run).await.as_deref(),
        Some("@dave:localhost")
    );
    assert_eq!(
        next_of::<RoomName>(&mut run)
            .await
            .downcast_ref::<RoomName>()
            .unwrap()
            .name,
        "named by alice"
    );
    assert_eq!(
        next_of::<RoomDescription>(&mut run)
            .await
            .downcast_ref::<RoomDescription>()
            .unwrap()
            .description,
        "topic by alice"
    );
    let image = next_of::<RoomImage>(&mut run).await;
    let image = &image.downcast_ref::<RoomImage>().unwrap().image;
    assert_eq!(&matrix.get().download(image).await?[..], b"av");
    let role = next_of::<UserRole>(&mut run).await;
    assert_eq!(role.downcast_ref::<UserRole>().unwrap().role, "admin");
    assert_eq!(role.meta().user_id.as_deref(), Some("@bob:localhost"));
    let deleted = next_of::<DeleteMessage>(&mut run).await;
    assert!(deleted.meta().linked_event.as_ref().unwrap().id().is_some());
    let pin = next_of::<PinMessage>(&mut run).await;
    let unpin = next_of::<UnpinMessage>(&mut run).await;
    assert_eq!(
        pin.meta().linked_event.as_ref().unwrap().id(),
        unpin.meta().linked_event.as_ref().unwrap().id()
    );

    // ---- threads: a message in a thread is kept in it, and the answer goes into it -------
    let root = world
        .alice(move |a, r| a.send_text(r, "thread root"))
        .await?;
    let (a, r, root2) = (alice.clone(), room.clone(), root.clone());
    blocking(move || {
        a.send_event(
            &r,
            "m.room.message",
            json!({
                "msgtype": "m.text", "body": "do say in the thread",
                "m.relates_to": {"rel_type": "m.thread", "event_id": root2, "is_falling_back": true,
                                 "m.in_reply_to": {"event_id": root2}},
            }),
        )
        .map(drop)
    })
    .await?;
    let answer = world
        .alice_sees(&room, |e| content(e)["body"] == "in the thread")
        .await?;
    assert_eq!(content(&answer)["m.relates_to"]["rel_type"], "m.thread");
    assert_eq!(content(&answer)["m.relates_to"]["event_id"], root.as_str());
    let threaded = next_text(&mut run, "do say in the thread").await;
    assert_eq!(
        thread_root(threaded.meta().raw_event.as_ref().unwrap()),
        Some(root.as_str())
    );

    // ---- a direct chat: bob invites the bot, which joins (accept_invites) and answers ----
    let b = bob.clone();
    let dm = blocking(move || {
        b.create_room(json!({"is_direct": true, "invite": ["@bot:localhost"], "preset": "trusted_private_chat"}))
    })
    .await?;
    let invite = next_of::<UserInvite>(&mut run).await;
    assert_eq!(invite.meta().user_id.as_deref(), Some("@bob:localhost"));
    assert_eq!(invite.meta().target.as_deref(), Some(dm.as_str()));
    let (b, d) = (bob.clone(), dm.clone());
    blocking(move || {
        b.wait_for(
            &d,
            |e| {
                e["type"] == "m.room.member"
                    && e["state_key"] == "@bot:localhost"
                    && e["content"]["membership"] == "join"
            },
            WAIT,
        )?;
        b.send_text(&d, "do say just between us")?;
        b.wait_for(
            &d,
            |e| e["sender"] == "@bot:localhost" && e["content"]["body"] == "just between us",
            WAIT,
        )
    })
    .await?;
    // LeaveRoom and JoinRoom sent by the bot.
    let (a, r, d) = (alice.clone(), room.clone(), dm.clone());
    blocking(move || a.send_text(&r, &format!("do leave {d}")).map(drop)).await?;
    let (b, d) = (bob.clone(), dm.clone());
    blocking(move || {
        b.wait_for(
            &d,
            |e| {
                e["type"] == "m.room.member"
                    && e["state_key"] == "@bot:localhost"
                    && e["content"]["membership"] == "leave"
            },
            WAIT,
        )
        .map(drop)
    })
    .await?;

    // JoinRoom by alias, NewRoom and RoomAddress sent by the bot.
    let side = world
        .alice(|a, _| a.create_room(json!({"preset": "public_chat", "room_alias_name": "side"})))
        .await?;
    world
        .alice(|a, r| {
            a.send_text(r, "do join #side:localhost")?;
            a.send_text(r, "do newroom botmade")?;
            a.send_text(r, "do address #ops-alias:localhost")?;
            Ok(())
        })
        .await?;
    world
        .alice_sees(&side, |e| {
            e["type"] == "m.room.member" && content(e)["membership"] == "join"
        })
        .await?;
    let r = room.clone();
    world
        .alice(move |a, _| {
            let deadline = std::time::Instant::now() + WAIT;
            let resolve = |alias: &str| {
                a.request(
                    "GET",
                    &format!(
                        "/_matrix/client/v3/directory/room/{}",
                        connector_tests::synapse::enc(alias)
                    ),
                    None,
                )
            };
            loop {
                let (made, _) = resolve("#botmade:localhost")?;
                let (aliased, answer) = resolve("#ops-alias:localhost")?;
                if made == 200 && aliased == 200 {
                    assert_eq!(
                        answer["room_id"],
                        r.as_str(),
                        "the alias points at the room"
                    );
                    return Ok(());
                }
                anyhow::ensure!(
                    std::time::Instant::now() < deadline,
                    "NewRoom / RoomAddress: {made} / {aliased}"
                );
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        })
        .await?;

    // Last, as it changes the room: invite and ban sent by the bot.
    world
        .alice(move |a, r| {
            a.send_text(r, "do invite @erin:localhost")?;
            a.send_text(r, "do ban @carol:localhost")?;
            Ok(())
        })
        .await?;
    world
        .alice_sees(&room, |e| {
            e["type"] == "m.room.member"
                && e["state_key"] == "@erin:localhost"
                && content(e)["membership"] == "invite"
        })
        .await?;
    world
        .alice_sees(&room, |e| {
            e["type"] == "m.room.member"
                && e["state_key"] == "@carol:localhost"
                && content(e)["membership"] == "ban"
        })
        .await?;

    let failed = run
        .failed_within(std::time::Duration::from_millis(10))
        .await;
    assert!(failed.is_empty(), "sends failed: {failed:?}");
    run.shutdown().await?;
    Ok(())
}

/// The crate docs' event table names every event the connector registers, and registers
/// every event the table names.
#[test]
fn the_event_table_is_what_the_connector_registers() {
    let docs = include_str!("../src/lib.rs");
    let table =
        &docs[docs.find("//! # Events").unwrap()..docs.find("//! A thread is kept").unwrap()];
    let registered: Vec<&str> = <Matrix as Connector>::SUPPORTED
        .iter()
        .map(|k| k.name())
        .collect();
    for name in &registered {
        assert!(
            table.contains(&format!("`{name}`")),
            "{name} is missing from the crate docs' table"
        );
    }
    for kind in connector_core::events::ALL {
        if table.contains(&format!("`{}`", kind.name())) {
            assert!(
                registered.contains(&kind.name()),
                "the table names {} but no handler sends it",
                kind.name()
            );
        }
    }
}
