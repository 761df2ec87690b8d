//! Unit tests of the connector's line handling, without a server.

use super::*;

fn event(i: Inbound) -> AnyEvent {
    match i {
        Inbound::Event(e) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[test]
fn channel_and_private_messages() {
    let e = event(interpret(b":ann!~a@h PRIVMSG #room :hi bot", "bot", false));
    let m = e.downcast_ref::<Message>().unwrap();
    assert_eq!(m.text, "hi bot");
    assert_eq!(m.meta.user.as_deref(), Some("ann"));
    assert_eq!(m.meta.target.as_deref(), Some("#room"));

    let e = event(interpret(b":ann!~a@h PRIVMSG bot :psst", "bot", false));
    let m = e.downcast_ref::<Message>().unwrap();
    assert_eq!(m.meta.target.as_deref(), Some("ann"));

    let e = event(interpret(
        b":ann!~a@h PRIVMSG #room :\x01ACTION waves\x01",
        "bot",
        false,
    ));
    assert_eq!(e.downcast_ref::<Message>().unwrap().text, "waves");
}

#[test]
fn ignored_lines() {
    for line in [
        &b":bot!~b@h PRIVMSG #room :my own"[..],
        b":BOT!~b@h PRIVMSG #room :my own, other case",
        b":ann!~a@h NOTICE #room :a notice",
        b":ann!~a@h PRIVMSG #room :\x01VERSION\x01",
        b":srv 001 bot :Welcome",
        b"\xff\xfe\xfd PRIVMSG #room :x",
        b":ann!~a@h PRIVMSG #room :caf\xc3",
        b"garbage!!",
        b"",
        b":ann PRIVMSG",
        b":bot!~b@h JOIN #room",
    ] {
        assert!(
            matches!(interpret(line, "bot", false), Inbound::Ignore),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
    assert!(matches!(
        interpret(b":ann!~a@h NOTICE #room :a notice", "bot", true),
        Inbound::Event(_)
    ));
}

#[tokio::test]
async fn the_rate_limit_lets_a_burst_through_then_paces() {
    let yaml = "connectors:\n  irc: {server: x, nick: b, rate-limit: {burst: 3, per-second: 20}}\n";
    let config = Config::from_str(yaml, "t.yaml").unwrap();
    let irc = Irc::from_section(config.connector("irc").unwrap()).unwrap();
    let start = Instant::now();
    for _ in 0..3 {
        irc.throttle().await;
    }
    assert!(start.elapsed() < Duration::from_millis(150));
    for _ in 0..4 {
        irc.throttle().await;
    }
    // Four more tokens at 20 a second: about 200 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(180),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn ping_join_part_nick_error() {
    assert!(matches!(interpret(b"PING :srv", "bot", false), Inbound::Reply(r) if r == "PONG :srv"));
    let e = event(interpret(b":ann!~a@h JOIN :#room", "bot", false));
    let j = e.downcast_ref::<JoinRoom>().unwrap();
    assert_eq!(j.meta.user.as_deref(), Some("ann"));
    assert_eq!(j.meta.target.as_deref(), Some("#room"));
    let e = event(interpret(b":ann!~a@h PART #room :bye", "bot", false));
    assert!(e.downcast_ref::<LeaveRoom>().is_some());
    assert!(
        matches!(interpret(b":bot!~b@h NICK :bot2", "bot", false), Inbound::Nick(n) if n == "bot2")
    );
    assert!(matches!(
        interpret(b"ERROR :Closing link", "bot", false),
        Inbound::Closing(_)
    ));
}
