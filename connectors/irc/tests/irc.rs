//! The IRC connector against a real IRC server: each test starts its own ngIRCd on a free
//! port (see `irc/ngircd.rs`), a bot in-process with the connector, and raw-socket IRC
//! clients that talk to it.

#[path = "support/ngircd.rs"]
mod ngircd;

use std::time::Duration;

use connector_core::prelude::*;
use connector_core::testing::connector_from_yaml;
use connector_core::testing::{TestBot, TestRun};
use connector_irc::Irc;
use connector_tests::{fast_reconnect, skills};
use ngircd::Ngircd;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Generous limit that only keeps a broken test from hanging.
const LIMIT: Duration = Duration::from_secs(15);
const CHANNEL: &str = "#test";

/// A raw IRC client.
struct Client {
    nick: String,
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Client {
    /// Connects and registers as `nick` (waits for 001).
    async fn connect(port: u16, nick: &str) -> Self {
        Self::register(port, nick, None).await
    }

    /// Connects with a server password, and registers as `nick`.
    async fn connect_with_password(port: u16, nick: &str, password: &str) -> Self {
        Self::register(port, nick, Some(password)).await
    }

    async fn register(port: u16, nick: &str, password: Option<&str>) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to ngircd");
        let (read, write) = stream.into_split();
        let mut client = Self {
            nick: nick.to_owned(),
            read: BufReader::new(read),
            write,
        };
        if let Some(password) = password {
            client.send(&format!("PASS {password}")).await;
        }
        client.send(&format!("NICK {nick}")).await;
        client.send(&format!("USER {nick} 0 * :{nick}")).await;
        client
            .wait_for(|l| l.split(' ').nth(1) == Some("001"))
            .await;
        client
    }

    async fn send(&mut self, line: &str) {
        self.write
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("write to ngircd");
    }

    /// The next line (PINGs answered), or `None` after `LIMIT`.
    async fn line(&mut self) -> Option<String> {
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(LIMIT, self.read.read_line(&mut line))
                .await
                .ok()?
                .expect("read from ngircd");
            assert!(n > 0, "{}: the server closed the connection", self.nick);
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
            if let Some(token) = line.strip_prefix("PING ") {
                self.send(&format!("PONG {token}")).await;
                continue;
            }
            return Some(line);
        }
    }

    /// Reads until a line matches `pred`; panics after `LIMIT`.
    async fn wait_for(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            match self.line().await {
                Some(line) if pred(&line) => return line,
                Some(_) => {}
                None => panic!("{}: no expected line within {LIMIT:?}", self.nick),
            }
        }
    }

    async fn join(&mut self, channel: &str) {
        self.send(&format!("JOIN {channel}")).await;
        self.wait_for(|l| l.split(' ').nth(1) == Some("366")).await;
    }

    /// Waits until `nick` is in `channel` (polls NAMES, so it works whoever joined first).
    async fn wait_member(&mut self, channel: &str, nick: &str) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            self.send(&format!("NAMES {channel}")).await;
            let mut found = false;
            loop {
                let line = self.line().await.expect("NAMES reply");
                let mut words = line.split(' ');
                match words.nth(1) {
                    Some("353") => {
                        let names = line.rsplit(" :").next().unwrap_or("");
                        found |= names
                            .split(' ')
                            .any(|n| n.trim_start_matches(['@', '+']) == nick);
                    }
                    Some("366") => break,
                    _ => {}
                }
            }
            if found {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{nick} never joined {channel}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a PRIVMSG from `from` to `to`; returns its text.
    async fn privmsg(&mut self, from: &str, to: &str) -> String {
        let head = format!(" PRIVMSG {to} :");
        let line = self
            .wait_for(|l| l.starts_with(&format!(":{from}!")) && l.contains(&head))
            .await;
        let at = line.find(&head).expect("PRIVMSG") + head.len();
        line[at..].to_owned()
    }
}

/// A 2000-byte text with multi-byte characters, so cuts must respect UTF-8 boundaries.
fn long_text() -> String {
    let mut text = String::new();
    let mut i = 0u32;
    while text.len() < 1990 {
        text.push_str(if i.is_multiple_of(7) { "é" } else { "ab" });
        text.push_str(&(i % 10).to_string());
        i += 1;
    }
    while text.len() < 2000 {
        text.push('z');
    }
    text
}

fn test_skills() -> Vec<Skill> {
    vec![
        skills::hello(),
        skills::echo(),
        Skill::new("long", |ctx: SkillContext| async move {
            ctx.respond(long_text()).await
        })
        .regex("^long$"),
        Skill::new("joined", |ctx: SkillContext| async move {
            let user = ctx.event().meta().user.clone().unwrap_or_default();
            ctx.respond(format!("welcome {user}")).await
        })
        .event_type::<JoinRoom>(),
        Skill::new("left", |ctx: SkillContext| async move {
            let user = ctx.event().meta().user.clone().unwrap_or_default();
            ctx.respond(format!("bye {user}")).await
        })
        .event_type::<LeaveRoom>(),
    ]
}

/// A bot with the IRC connector pointed at `port`, nick `nick`, in `#test`.
fn start_bot(port: u16, nick: &str) -> TestRun {
    let yaml = format!(
        "connectors:\n  irc: {{server: 127.0.0.1, port: {port}, nick: {nick}, channels: ['{CHANNEL}'], \
         rate-limit: {{burst: 20, per-second: 50}}, ping-interval: 5, ping-timeout: 5}}\n"
    );
    let connector: Irc = connector_from_yaml(&yaml).expect("irc");
    let mut bot = TestBot::new().runtime(fast_reconnect);
    for skill in test_skills() {
        bot = bot.skill(skill);
    }
    bot.connector(connector).start().expect("start the bot")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_and_echo_in_a_channel_and_in_private() {
    let server = Ngircd::start();
    let mut ann = Client::connect(server.port, "ann").await;
    ann.join(CHANNEL).await;
    let run = start_bot(server.port, "ircbot");
    ann.wait_member(CHANNEL, "ircbot").await;

    ann.send(&format!("PRIVMSG {CHANNEL} :hello")).await;
    assert_eq!(ann.privmsg("ircbot", CHANNEL).await, "Hi ann");
    ann.send(&format!("PRIVMSG {CHANNEL} :say it again")).await;
    assert_eq!(ann.privmsg("ircbot", CHANNEL).await, "say it again");
    ann.send(&format!("PRIVMSG {CHANNEL} :\x01ACTION waves\x01"))
        .await;
    assert_eq!(ann.privmsg("ircbot", CHANNEL).await, "waves");

    ann.send("PRIVMSG ircbot :hi").await;
    assert_eq!(ann.privmsg("ircbot", "ann").await, "Hi ann");
    ann.send("PRIVMSG ircbot :just us").await;
    assert_eq!(ann.privmsg("ircbot", "ann").await, "just us");
    // A NOTICE gets no answer: the next answer is the one to the message after it.
    ann.send("NOTICE ircbot :ignored").await;
    ann.send("PRIVMSG ircbot :after the notice").await;
    assert_eq!(ann.privmsg("ircbot", "ann").await, "after the notice");

    run.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_reply_arrives_whole_in_several_lines() {
    let server = Ngircd::start();
    let mut ann = Client::connect(server.port, "ann").await;
    ann.join(CHANNEL).await;
    let run = start_bot(server.port, "ircbot");
    ann.wait_member(CHANNEL, "ircbot").await;

    ann.send(&format!("PRIVMSG {CHANNEL} :long")).await;
    let expected = long_text();
    assert_eq!(expected.len(), 2000);
    let mut got = String::new();
    let mut lines = 0;
    while got.len() < expected.len() {
        let piece = ann.privmsg("ircbot", CHANNEL).await;
        assert!(!piece.is_empty());
        got.push_str(&piece);
        lines += 1;
    }
    assert!(
        lines >= 4,
        "2000 bytes need at least 4 IRC lines, got {lines}"
    );
    assert_eq!(got, expected);

    run.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_and_part_reach_a_skill() {
    let server = Ngircd::start();
    let mut ann = Client::connect(server.port, "ann").await;
    ann.join(CHANNEL).await;
    let run = start_bot(server.port, "ircbot");
    ann.wait_member(CHANNEL, "ircbot").await;

    let mut bob = Client::connect(server.port, "bob").await;
    bob.join(CHANNEL).await;
    assert_eq!(ann.privmsg("ircbot", CHANNEL).await, "welcome bob");
    bob.send(&format!("PART {CHANNEL} :later")).await;
    assert_eq!(ann.privmsg("ircbot", CHANNEL).await, "bye bob");

    run.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_nick_gets_a_suffix_and_the_bot_still_answers() {
    let server = Ngircd::start();
    let mut squatter = Client::connect(server.port, "ircbot").await;
    squatter.join(CHANNEL).await;
    let run = start_bot(server.port, "ircbot");
    squatter.wait_member(CHANNEL, "ircbot_").await;

    squatter.send(&format!("PRIVMSG {CHANNEL} :hello")).await;
    assert_eq!(squatter.privmsg("ircbot_", CHANNEL).await, "Hi ircbot");
    let handle = run
        .bot()
        .connector::<Irc>("irc")
        .expect("the irc connector");
    assert_eq!(handle.get().nick(), "ircbot_");

    run.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_reconnects_and_rejoins_after_a_server_restart() {
    let server = Ngircd::start();
    let port = server.port;
    let mut ann = Client::connect(port, "ann").await;
    ann.join(CHANNEL).await;
    let run = start_bot(port, "ircbot");
    ann.wait_member(CHANNEL, "ircbot").await;
    ann.send(&format!("PRIVMSG {CHANNEL} :hello")).await;
    assert_eq!(ann.privmsg("ircbot", CHANNEL).await, "Hi ann");

    server.kill();
    drop(ann);
    let _server = Ngircd::start_on(port);
    let mut ann = Client::connect(port, "ann").await;
    ann.join(CHANNEL).await;
    ann.wait_member(CHANNEL, "ircbot").await;
    ann.send(&format!("PRIVMSG {CHANNEL} :hello again")).await;
    assert_eq!(ann.privmsg("ircbot", CHANNEL).await, "Hi ann");

    run.shutdown().await.expect("shutdown");
}

/// The crate docs' outbound table (the only copy of it) lists exactly the events the
/// connector registers.
#[test]
fn the_documented_outbound_events_are_the_registered_ones() {
    let docs = include_str!("../src/lib.rs");
    let table = docs
        .split("//! | outbound | sent as |")
        .nth(1)
        .expect("the crate docs have an outbound table");
    let mut documented: Vec<&str> = table
        .lines()
        .skip(2) // the rest of the header row, and the separator
        .map_while(|l| l.strip_prefix("//! | `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let mut registered: Vec<&str> = <Irc as Connector>::SUPPORTED
        .iter()
        .map(|k| k.name())
        .collect();
    documented.sort_unstable();
    registered.sort_unstable();
    assert_eq!(documented, registered);
}

/// A scripted stand-in for an IRC server, for what ngIRCd cannot be made to do: send
/// broken lines, or stop answering.
struct FakeServer {
    listener: tokio::net::TcpListener,
}

struct FakeLink {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl FakeServer {
    async fn start() -> Self {
        Self {
            listener: tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().expect("addr").port()
    }

    /// Accepts the bot and completes its registration with a welcome.
    async fn accept(&self) -> FakeLink {
        let (stream, _) = tokio::time::timeout(LIMIT, self.listener.accept())
            .await
            .expect("the bot connects")
            .expect("accept");
        let (read, write) = stream.into_split();
        let mut link = FakeLink {
            read: BufReader::new(read),
            write,
        };
        link.wait_for(|l| l.starts_with("USER ")).await;
        link.send(b":fake.server 001 ircbot :Welcome\r\n").await;
        link
    }
}

impl FakeLink {
    async fn send(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.expect("write to the bot");
    }

    async fn wait_for(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            let mut line = Vec::new();
            let n = tokio::time::timeout(LIMIT, self.read.read_until(b'\n', &mut line))
                .await
                .expect("a line from the bot within the limit")
                .expect("read from the bot");
            assert!(n > 0, "the bot closed the connection");
            let line = String::from_utf8(line).expect("the bot sends UTF-8");
            let line = line.trim_end_matches(['\r', '\n']);
            if pred(line) {
                return line.to_owned();
            }
        }
    }
}

fn start_bot_with(port: u16, extra: &str) -> TestRun {
    let yaml = format!(
        "connectors:\n  irc: {{server: 127.0.0.1, port: {port}, nick: ircbot, channels: ['{CHANNEL}']{extra}}}\n"
    );
    let connector: Irc = connector_from_yaml(&yaml).expect("irc");
    TestBot::new()
        .runtime(fast_reconnect)
        .skill(skills::echo())
        .connector(connector)
        .start()
        .expect("start the bot")
}

#[tokio::test]
async fn invalid_utf8_and_malformed_lines_are_skipped() {
    let server = FakeServer::start().await;
    let mut run = start_bot_with(server.port(), "");
    let mut link = server.accept().await;
    link.wait_for(|l| l == format!("JOIN {CHANNEL}")).await;
    link.send(b":ann!a@h PRIVMSG #test :caf\xc3\x28 \xff\xfe\r\n")
        .await;
    link.send(b"garbage!!\r\n:onlyaprefix\r\n\r\n:x 1234 y\r\n:ann!a@h PRIVMSG\r\n")
        .await;
    link.send(b":ann!a@h PRIVMSG #test :after the junk\r\n")
        .await;
    // Only the good line becomes a message (lifecycle events may come first).
    let parsed = loop {
        let event = run.next_parsed().await.expect("the good line is parsed");
        if let Some(text) = event.text() {
            break text.to_owned();
        }
    };
    assert_eq!(parsed, "after the junk");
    assert_eq!(
        link.wait_for(|l| l.starts_with("PRIVMSG")).await,
        "PRIVMSG #test :after the junk"
    );
    run.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_silent_server_is_noticed_and_the_bot_reconnects_and_rejoins() {
    let server = FakeServer::start().await;
    let run = start_bot_with(server.port(), ", ping-interval: 0.2, ping-timeout: 0.3");
    let mut first = server.accept().await;
    first.wait_for(|l| l == format!("JOIN {CHANNEL}")).await;
    // The bot pings a server that has said nothing for a while; this one never answers.
    first.wait_for(|l| l.starts_with("PING ")).await;
    let mut second = server.accept().await;
    second.wait_for(|l| l == format!("JOIN {CHANNEL}")).await;
    second.send(b"PING :still-there\r\n").await;
    second.wait_for(|l| l == "PONG :still-there").await;
    drop(first);
    run.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_with_a_private_ca() {
    let server = Ngircd::start_tls();
    let (tls_port, ca) = server.tls.clone().expect("a TLS port");
    let mut ann = Client::connect(server.port, "ann").await;
    ann.join(CHANNEL).await;
    let extra = format!(", tls: true, tls-ca-file: '{}'", ca.display());
    let run = start_bot_with(tls_port, &extra);
    ann.wait_member(CHANNEL, "ircbot").await;
    ann.send(&format!("PRIVMSG {CHANNEL} :over tls")).await;
    assert_eq!(ann.privmsg("ircbot", CHANNEL).await, "over tls");
    run.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn tls_refuses_a_server_it_cannot_verify() {
    let server = Ngircd::start_tls();
    let (tls_port, _) = server.tls.clone().expect("a TLS port");
    let yaml = format!(
        "connectors:\n  irc: {{server: 127.0.0.1, port: {tls_port}, nick: ircbot, tls: true}}\n"
    );
    let irc: Irc = connector_from_yaml(&yaml).expect("irc");
    let err = irc.connect().await.expect_err("an unknown CA is refused");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
}

#[tokio::test]
async fn every_line_sent_fits_in_512_bytes_with_the_relay_prefix() {
    let server = FakeServer::start().await;
    let run = start_bot_with(server.port(), ", rate-limit: {burst: 50, per-second: 100}");
    let mut link = server.accept().await;
    link.wait_for(|l| l == format!("JOIN {CHANNEL}")).await;
    // 1500 bytes of two- and three-byte characters on one inbound line; the echo must come
    // back cut on character boundaries, nothing lost.
    let text: String = "é€".repeat(300);
    link.send(format!(":ann!a@h PRIVMSG {CHANNEL} :{text}\r\n").as_bytes())
        .await;
    let mut got = String::new();
    while got.len() < text.len() {
        let line = link.wait_for(|l| l.starts_with("PRIVMSG")).await;
        // What other clients receive: ":ircbot!~ircbot@<host up to 63 bytes> " + line + CRLF.
        let relayed = 1 + "ircbot".len() + 2 + "ircbot".len() + 1 + 63 + 1 + line.len() + 2;
        assert!(relayed <= 512, "{relayed} bytes: {line}");
        got.push_str(
            line.strip_prefix(&format!("PRIVMSG {CHANNEL} :"))
                .expect("PRIVMSG"),
        );
    }
    assert_eq!(got, text);
    run.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn join_and_leave_are_sent_and_joined_rooms_are_rejoined() {
    let server = FakeServer::start().await;
    let run = start_bot_with(server.port(), "");
    let mut first = server.accept().await;
    first.wait_for(|l| l == format!("JOIN {CHANNEL}")).await;
    let bot = run.bot().clone();
    bot.send(JoinRoom::new().target("#extra").connector("irc"))
        .await
        .expect("send JoinRoom");
    first.wait_for(|l| l == "JOIN #extra").await;
    bot.send(JoinRoom::new().target("#later").connector("irc"))
        .await
        .expect("send JoinRoom");
    first.wait_for(|l| l == "JOIN #later").await;
    bot.send(LeaveRoom::new().target("#later").connector("irc"))
        .await
        .expect("send LeaveRoom");
    first.wait_for(|l| l == "PART #later").await;
    drop(first);
    // After a reconnect: the configured channel and the one joined since, not the one left.
    let mut second = server.accept().await;
    second.wait_for(|l| l == format!("JOIN {CHANNEL}")).await;
    second.wait_for(|l| l == "JOIN #extra").await;
    second.send(b"PING :sync\r\n").await;
    let next = second
        .wait_for(|l| l.starts_with("JOIN") || l.starts_with("PONG"))
        .await;
    assert_eq!(next, "PONG :sync");
    run.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_password_is_sent_and_a_wrong_one_is_a_permanent_error() {
    let server = Ngircd::start_with_password("s3cret");
    let run = start_bot_with(server.port, ", password: s3cret");
    let mut ann = Client::connect_with_password(server.port, "ann", "s3cret").await;
    ann.join(CHANNEL).await;
    ann.wait_member(CHANNEL, "ircbot").await;
    ann.send(&format!("PRIVMSG {CHANNEL} :with a password"))
        .await;
    assert_eq!(ann.privmsg("ircbot", CHANNEL).await, "with a password");
    run.shutdown().await.expect("shutdown");

    let yaml = format!(
        "connectors:\n  irc: {{server: 127.0.0.1, port: {}, nick: other, password: wrong}}\n",
        server.port
    );
    let irc: Irc = connector_from_yaml(&yaml).expect("irc");
    let err = irc
        .connect()
        .await
        .expect_err("a wrong password is refused");
    assert!(err.is_permanent(), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "the password leaks: {err}"
    );
}
