//! The `bot` binary's `announce` skill: its configured crontab says the configured message
//! on the shell (the default connector), and `POST /skill/announce/say` with
//! `{"message": …}` says that text there, over real HTTP on a free loopback port, with and
//! without `web.webhook-token`.

#[path = "support/chat.rs"]
mod chat;
#[path = "support/redis.rs"]
mod redis_server;
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use chat::Chat;
use redis_server::free_port;
use support::{LIMIT, TempDir};

/// One HTTP/1.1 POST with `Connection: close`; the status code and the body.
fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).expect("connect to the bot's web server");
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

/// Waits until the bot's web server accepts connections.
fn wait_for_port(port: u16) {
    let deadline = Instant::now() + LIMIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn configure(dir: &TempDir, port: u16, web_extra: &str, announce: &str) {
    dir.write(
        "configuration.yaml",
        format!(
            "welcome-message: false\nlogging: {{level: warning}}\n\
             web:\n  host: 127.0.0.1\n  port: {port}\n{web_extra}\
             connectors:\n  shell: {{}}\n\
             skills:\n  hello: {{}}\n  announce:\n{announce}  echo: {{}}\n"
        ),
    );
}

#[test]
fn announce_says_its_message_on_schedule_and_what_its_webhook_is_given() {
    let dir = TempDir::new();
    let port = free_port();
    configure(
        &dir,
        port,
        "",
        "    crontab: \"* * * * * *\"\n    message: stand-up in five minutes\n",
    );
    let mut chat = Chat::start(dir.path(), &[]);
    // Every second, on the shell: at least two announcements, nothing else.
    let scheduled = |l: &str| l == "stand-up in five minutes";
    chat.line_where(Duration::from_secs(5), scheduled);
    let (_, between) = chat.line_where(Duration::from_secs(5), scheduled);
    assert!(between.is_empty(), "{between:?}");

    wait_for_port(port);
    let (status, body) = post(
        port,
        "/skill/announce/say",
        &[],
        r#"{"message": "deploy done"}"#,
    );
    assert_eq!((status, body.as_str()), (200, r#"{"called_skill":"say"}"#));
    let (_, before) = chat.line_where(LIMIT, |l| l == "deploy done");
    assert!(before.iter().all(|l| scheduled(l)), "{before:?}");

    // The trailing slash works too; a body without a message is a 400 saying what is expected,
    // and nothing is said.
    let (status, _) = post(port, "/skill/announce/say/", &[], r#"{"message": "twice"}"#);
    assert_eq!(status, 200);
    chat.line_where(LIMIT, |l| l == "twice");
    let (status, body) = post(port, "/skill/announce/say", &[], r#"{"text": "no"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#"{\"message\": \"<text>\"}"#), "{body}");
    let (status, _) = post(port, "/skill/announce/say", &[], "not json");
    assert_eq!(status, 400);

    // The chat skills still answer between the announcements.
    chat.send("hello");
    let (answer, before) = chat.line_where(LIMIT, |l| !scheduled(l));
    assert_eq!(answer, "Hi tester");
    assert!(before.iter().all(|l| scheduled(l)), "{before:?}");
    let log = chat.finish();
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn the_webhook_needs_the_token_when_one_is_set_and_a_missing_message_is_logged() {
    let dir = TempDir::new();
    let port = free_port();
    configure(
        &dir,
        port,
        "  webhook-token: s3cret-t0ken\n",
        "    crontab: \"* * * * * *\"\n",
    );
    let mut chat = Chat::start(dir.path(), &[]);
    wait_for_port(port);
    let say = r#"{"message": "from the pipeline"}"#;
    for headers in [
        &[][..],
        &[("Authorization", "Bearer wrong")][..],
        &[("Authorization", "s3cret-t0ken")][..],
    ] {
        let (status, _) = post(port, "/skill/announce/say", headers, say);
        assert_eq!(status, 403, "{headers:?}");
    }
    let auth = [("Authorization", "Bearer s3cret-t0ken")];
    let (status, body) = post(port, "/skill/announce/say", &auth, say);
    assert_eq!((status, body.as_str()), (200, r#"{"called_skill":"say"}"#));
    // The refused calls said nothing: the first line is the accepted one.
    let (line, before) = chat.line_where(LIMIT, |_| true);
    assert_eq!((line.as_str(), before.len()), ("from the pipeline", 0));

    // A schedule without `message:` says nothing and logs why, with the skill's name, every
    // second; the bot keeps answering.
    std::thread::sleep(Duration::from_millis(1500));
    chat.send("hello");
    assert_eq!(chat.line_where(LIMIT, |_| true).0, "Hi tester");
    let log = chat.finish();
    assert!(
        log.contains("announce") && log.contains("skills.announce.message is not set"),
        "{log}"
    );
    assert!(!log.contains("s3cret-t0ken"), "{log}");
}
