//! One bot on several processes over a real nats-server (JetStream): one connector process
//! (websocket) and two skill processes of the example bot (`echo`), 20 clients x 200
//! messages each, one in flight per client. In the middle, a skill process is SIGKILLed, or
//! nats-server is stopped and started again: every client still gets each reply once, in
//! order, and nothing more. And the bounds: a slow process runs no more than its
//! `max-in-flight`, a slow conversation holds no other of its lane. And answers that name
//! their event: found by the connector process, or sent again whole when it keeps it no more.
//! And a skill process stopped gracefully mid-skill: its lane is not run again elsewhere.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connector_tests::cluster::{Node, Scratch, ask, configuration, listening, logs, until};
use connector_tests::nats::{NatsServer, free_port};
use connector_tests::ws;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Frame;

/// The bot's name (its stream is `echobot-events`, its leases `echobot-lanes`).
const BOT: &str = "echobot";
const CLIENTS: usize = 20;
const MESSAGES: usize = 200;
/// One reply's limit: a redelivery (2 s here) and a server restart fit in it.
const REPLY_LIMIT: Duration = Duration::from_secs(30);

fn config(dir: &Path, nats: &NatsServer, web: u16) -> PathBuf {
    config_with(dir, nats, web, 64, 16)
}

fn config_with(
    dir: &Path,
    nats: &NatsServer,
    web: u16,
    max_in_flight: u16,
    partitions: u16,
) -> PathBuf {
    configuration(
        dir,
        BOT,
        web,
        &nats.url(),
        &["echo", "slow"],
        &[
            &format!("partitions: {partitions}"),
            &format!("max-in-flight: {max_in_flight}"),
        ],
        "",
    )
}

/// A bot of one connector process and one skill process whose `slow` skill takes `slow_ms`,
/// the web port listening. Fields drop in order: the processes, then NATS, then the files.
struct SlowBot {
    skills: Node,
    connector: Node,
    nats: NatsServer,
    addr: SocketAddr,
    _scratch: Scratch,
}

async fn slow_bot(name: &str, max_in_flight: u16, partitions: u16, slow_ms: u32) -> SlowBot {
    let scratch = Scratch::new(name);
    let nats = NatsServer::start(&scratch.0);
    let web = free_port();
    let config = config_with(&scratch.0, &nats, web, max_in_flight, partitions);
    let connector = Node::start(&scratch.0, &config, "connectors", 0);
    let skills = Node::start_with(
        &scratch.0,
        &config,
        "skills",
        1,
        &[("CLUSTER_NODE_SLOW_MS", &slow_ms.to_string())],
    );
    let addr = listening(web, &connector).await;
    SlowBot {
        skills,
        connector,
        nats,
        addr,
        _scratch: scratch,
    }
}

/// One client: its messages one after another, each reply checked as it comes.
async fn client(addr: SocketAddr, id: usize, done: Arc<AtomicUsize>) -> Result<ws::Client, String> {
    let mut socket = ws::client(addr)
        .await
        .map_err(|e| format!("client {id}: {e}"))?;
    for i in 0..MESSAGES {
        let text = format!("client {id} message {i}");
        socket
            .send(Frame::text(text.clone()))
            .await
            .map_err(|e| format!("client {id}: send {i}: {e}"))?;
        let reply = loop {
            match tokio::time::timeout(REPLY_LIMIT, socket.next()).await {
                Ok(Some(Ok(Frame::Text(t)))) => break t.as_str().to_owned(),
                Ok(Some(Ok(Frame::Ping(_) | Frame::Pong(_)))) => continue,
                other => return Err(format!("client {id}: no reply to message {i}: {other:?}")),
            }
        };
        if reply != text {
            return Err(format!(
                "client {id}: expected {text:?}, got {reply:?} (a reply lost, repeated or out of order)"
            ));
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(socket)
}

/// Runs the load; `fault` runs once half the replies are in; `seen`, if given, must then be
/// in the connector process's log (the fault did happen under it).
async fn run(name: &str, fault: impl FnOnce(&mut Vec<Node>, &mut NatsServer), seen: Option<&str>) {
    let scratch = Scratch::new(name);
    let mut nats = NatsServer::start(&scratch.0);
    let web = free_port();
    let config = config(&scratch.0, &nats, web);
    let connector = Node::start(&scratch.0, &config, "connectors", 0);
    let mut skills = vec![
        Node::start(&scratch.0, &config, "skills", 1),
        Node::start(&scratch.0, &config, "skills", 2),
    ];
    let addr = listening(web, &connector).await;

    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(addr, id, done.clone())))
        .collect();
    let half = CLIENTS * MESSAGES / 2;
    until(
        Duration::from_secs(120),
        "half the replies",
        &[],
        async || done.load(Ordering::Relaxed) >= half,
    )
    .await;
    fault(&mut skills, &mut nats);

    let mut sockets = Vec::new();
    let mut failures = Vec::new();
    for task in clients {
        match task.await.unwrap() {
            Ok(socket) => sockets.push(socket),
            Err(e) => failures.push(e),
        }
    }
    let all_logs = || {
        let mut nodes = vec![&connector];
        nodes.extend(skills.iter());
        logs(&nodes)
    };
    assert!(failures.is_empty(), "{failures:#?}\n{}", all_logs());
    assert_eq!(done.load(Ordering::Relaxed), CLIENTS * MESSAGES);
    // Nothing more comes: a reply repeated after a redelivery would arrive now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (id, socket) in sockets.iter_mut().enumerate() {
        let extra = tokio::time::timeout(Duration::from_millis(50), socket.next()).await;
        assert!(
            extra.is_err(),
            "client {id} got a frame after its last reply: {extra:?}\n{}",
            all_logs()
        );
    }
    let connector_log = connector.log();
    assert!(!connector_log.contains("dropped"), "{}", all_logs());
    if let Some(seen) = seen {
        assert!(
            connector_log.contains(seen),
            "no `{seen}` in the logs:\n{}",
            all_logs()
        );
    }
    assert!(
        connector_log.contains(
            "starting as the connectors process of bot `echobot` on NATS nats://127.0.0.1:"
        ),
        "{connector_log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skill_process_killed_mid_run_loses_and_repeats_nothing() {
    // Acknowledging before the skills run (at most once) makes this test fail: the killed
    // process's events are then lost.
    run("kill", |skills, _| skills[0].kill(), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_restarted_mid_run_loses_and_repeats_nothing() {
    run(
        "restart",
        |_, nats| {
            nats.stop();
            std::thread::sleep(Duration::from_secs(1));
            nats.restart();
        },
        Some("lost the NATS server; reconnecting with backoff"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_a_connector_process_published_are_handled_after_it_is_killed() {
    let scratch = Scratch::new("connector-restart");
    let nats = NatsServer::start(&scratch.0);
    let web = free_port();
    let config = config(&scratch.0, &nats, web);
    let mut connector = Node::start(&scratch.0, &config, "connectors", 0);
    let addr = listening(web, &connector).await;
    // No skill process yet: the events wait in the stream once `parse` has them stored.
    let mut socket = ws::client(addr).await.unwrap();
    for i in 0..30 {
        socket
            .send(Frame::text(format!("message {i}")))
            .await
            .unwrap();
    }
    until(
        Duration::from_secs(20),
        "the events stored",
        &[&connector],
        async || nats.stored_events(BOT).await >= 30,
    )
    .await;
    connector.kill();
    assert!(
        connector
            .log()
            .contains("no skills process of bot `echobot` is running; waiting for one"),
        "{}",
        connector.log()
    );
    // A new connector process, then a skill process: the 30 events are handled (and so
    // acknowledged and gone from the stream; their replies find no socket, which died with
    // the first process), and the bot serves as before.
    let connector = Node::start(&scratch.0, &config, "connectors", 1);
    let addr = listening(web, &connector).await;
    let skills = Node::start(&scratch.0, &config, "skills", 1);
    assert_eq!(ask(addr, "after the restart").await, "after the restart");
    until(
        Duration::from_secs(60),
        "every event handled",
        &[&connector, &skills],
        async || nats.stored_events(BOT).await == 0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_no_event_type_reads_is_counted_and_skipped() {
    let scratch = Scratch::new("bad-payload");
    let nats = NatsServer::start(&scratch.0);
    let web = free_port();
    let config = config(&scratch.0, &nats, web);
    let connector = Node::start(&scratch.0, &config, "connectors", 0);
    let skills = Node::start(&scratch.0, &config, "skills", 1);
    let addr = listening(web, &connector).await;
    assert_eq!(ask(addr, "before").await, "before");
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    for (lane, payload) in [
        (3, &b"not json at all"[..]),
        (5, br#"{"v":1,"type":"Deploy","event":{}}"#),
        (7, br#"{"v":1,"type":"Message","event":{"text":5}}"#),
    ] {
        js.publish(format!("echobot.events.{lane}"), payload.to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    until(
        Duration::from_secs(20),
        "bad events skipped (they block their lanes)",
        &[&skills],
        async || nats.stored_events(BOT).await == 0,
    )
    .await;
    assert_eq!(
        ask(addr, "after").await,
        "after",
        "the skill process still serves"
    );
    let log = skills.log();
    for expected in [
        "not an event envelope: expected ident at line 1 column 2",
        "unknown event type `Deploy`",
        "malformed `Message` event at line 1 column 41",
        "bad_events=3",
    ] {
        assert!(
            log.contains(expected),
            "no `{expected}` in the skill process's log:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_skill_process_runs_no_more_than_its_max_in_flight() {
    let scratch = Scratch::new("slow");
    let nats = NatsServer::start(&scratch.0);
    let web = free_port();
    let config = config_with(&scratch.0, &nats, web, 2, 16);
    let connector = Node::start(&scratch.0, &config, "connectors", 0);
    let slow = Node::start_with(
        &scratch.0,
        &config,
        "skills",
        1,
        &[("CLUSTER_NODE_SLOW_MS", "1000")],
    );
    let fast = Node::start(&scratch.0, &config, "skills", 2);
    let addr = listening(web, &connector).await;
    // Both hold their share (8 of the 16 lanes) before the load starts: the first to come
    // takes them all at first, and gives half back at a later renewal. A load started while
    // the slow one still held most lanes sent it most events (seen once, on a loaded machine).
    until(
        REPLY_LIMIT,
        "the lanes spread evenly over both skill processes",
        &[&slow, &fast],
        async || {
            let lanes = nats.lanes_by_holder(BOT).await;
            lanes.len() == 2 && lanes.values().all(|&n| n == 8)
        },
    )
    .await;
    let clients: Vec<_> = (0..8)
        .map(|id| {
            tokio::spawn(async move {
                let mut socket = ws::client(addr).await.unwrap();
                for i in 0..6 {
                    let text = format!("slow {id} {i}");
                    socket.send(Frame::text(text.clone())).await.unwrap();
                    match tokio::time::timeout(REPLY_LIMIT, socket.next()).await {
                        Ok(Some(Ok(Frame::Text(t)))) => assert_eq!(t.as_str(), text),
                        other => panic!("no reply to {text:?}: {other:?}"),
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    // Each run: how many ran at once in its process, and on which event.
    let runs = |log: &str| -> Vec<(usize, String)> {
        log.lines()
            .filter_map(|l| {
                let (running, text) = l
                    .split("slow skill: ")
                    .nth(1)?
                    .split_once(" running on [")?;
                Some((running.parse().ok()?, text.strip_suffix(']')?.to_owned()))
            })
            .collect()
    };
    let slow_runs = runs(&slow.log());
    let fast_runs = runs(&fast.log());
    let events = |runs: &[(usize, String)]| -> std::collections::HashSet<String> {
        runs.iter().map(|(_, text)| text.clone()).collect()
    };
    // A lane the slow process gives back is read again by the fast one from its first
    // event not acknowledged, so an event the slow one was on may run again there (its
    // reply is not sent twice: each client checked its replies above).
    assert_eq!(
        events(&slow_runs).union(&events(&fast_runs)).count(),
        48,
        "every event ran"
    );
    assert!(
        slow_runs.iter().all(|&(n, _)| n <= 2),
        "the slow process ran more than 2 at once: {slow_runs:?}"
    );
    assert!(
        events(&slow_runs).len() <= 24,
        "the slow process got more than its share (half): {} of 48 (skills-1 is the slow one)\n{}",
        events(&slow_runs).len(),
        logs(&[&slow, &fast, &connector])
    );
}

/// One lane for every conversation, and a skill that takes 4 s on one of them: the other
/// conversations' events in that lane are handled meanwhile, not after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skill_process_shutting_down_keeps_its_lanes_until_its_skills_finish() {
    let scratch = Scratch::new("drain");
    let nats = NatsServer::start(&scratch.0);
    let web = free_port();
    // One lane, leases of 2 s; the skill runs 5 s, within the shutdown's 10 s.
    let config = config_with(&scratch.0, &nats, web, 64, 1);
    let slow = [("CLUSTER_NODE_SLOW_MS", "5000")];
    let connector = Node::start(&scratch.0, &config, "connectors", 0);
    let mut first = Node::start_with(&scratch.0, &config, "skills", 1, &slow);
    let addr = listening(web, &connector).await;
    until(REPLY_LIMIT, "the lane held", &[&first], async || {
        nats.lane_holders(BOT).await > 0
    })
    .await;
    let second = Node::start_with(&scratch.0, &config, "skills", 2, &slow);
    let mut socket = ws::client(addr).await.unwrap();
    socket.send(Frame::text("slow drain")).await.unwrap();
    until(
        REPLY_LIMIT,
        "the slow skill running",
        &[&first],
        async || first.log().contains("running on [slow drain]"),
    )
    .await;
    // Shut down mid-run: the skill finishes and answers; its lane's lease outlives the 2 s
    // meanwhile, so the other process does not take the lane and run the event again.
    first.terminate();
    match tokio::time::timeout(REPLY_LIMIT, socket.next()).await {
        Ok(Some(Ok(Frame::Text(t)))) => assert_eq!(t.as_str(), "slow drain"),
        reply => panic!("no reply: {reply:?}\n{}", first.log()),
    }
    until(
        REPLY_LIMIT,
        "the stopped process exiting",
        &[],
        async || first.exited(),
    )
    .await;
    // The lane was given back: the other process reads it now, from after the event.
    assert_eq!(ask(addr, "after").await, "after");
    assert!(
        !second.log().contains("running on [slow drain]"),
        "the event ran again in the other process:\n{}",
        logs(&[&second, &first])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_conversation_holds_no_other_conversation_of_its_lane() {
    let SlowBot { skills, addr, .. } = &slow_bot("head-of-line", 64, 1, 4000).await;
    let addr = *addr;
    let mut slow = ws::client(addr).await.unwrap();
    slow.send(Frame::text("slow one")).await.unwrap();
    // Until the slow skill runs.
    until(
        REPLY_LIMIT,
        "the slow skill running",
        &[skills],
        async || skills.log().contains("slow skill: 1 running"),
    )
    .await;
    // Another conversation, in the same lane: its echoes come while the slow one runs.
    let mut other = ws::client(addr).await.unwrap();
    for i in 0..5 {
        let text = format!("other {i}");
        other.send(Frame::text(text.clone())).await.unwrap();
        match tokio::time::timeout(REPLY_LIMIT, other.next()).await {
            Ok(Some(Ok(Frame::Text(t)))) => assert_eq!(t.as_str(), text),
            reply => panic!("no echo of {text:?}: {reply:?}"),
        }
    }
    let early = tokio::time::timeout(Duration::ZERO, slow.next()).await;
    assert!(
        early.is_err(),
        "the slow skill answered before the other conversation's 5 echoes: {early:?}"
    );
    match tokio::time::timeout(REPLY_LIMIT, slow.next()).await {
        Ok(Some(Ok(Frame::Text(t)))) => assert_eq!(t.as_str(), "slow one"),
        reply => panic!("no reply to the slow skill: {reply:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_whose_event_is_no_longer_kept_is_sent_again_whole() {
    // The connector process keeps no event (`link-window: 0`); the skill processes name the
    // event each answer links all the same (their own configuration keeps the default), so
    // every answer is refused as a miss and sent again carrying its event: each reply still
    // comes once, in order.
    let scratch = Scratch::new("link-miss");
    let nats = NatsServer::start(&scratch.0);
    let web = free_port();
    let config = config(&scratch.0, &nats, web);
    let text = std::fs::read_to_string(&config).unwrap();
    let keeps_none = scratch.0.join("connectors.yaml");
    std::fs::write(
        &keeps_none,
        text.replace("level: info", "level: debug") + "  link-window: 0\n",
    )
    .unwrap();
    let connector = Node::start(&scratch.0, &keeps_none, "connectors", 0);
    let skills = Node::start(&scratch.0, &config, "skills", 1);
    let addr = listening(web, &connector).await;
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..5)
        .map(|id| tokio::spawn(client(addr, id, done.clone())))
        .collect();
    for task in clients {
        if let Err(e) = task.await.unwrap() {
            panic!(
                "{e}\n== connectors\n{}\n== skills\n{}",
                connector.log(),
                skills.log()
            );
        }
    }
    assert_eq!(done.load(Ordering::Relaxed), 5 * MESSAGES);
    let log = connector.log();
    assert!(
        log.contains("a send names an event no longer kept; asked for it whole"),
        "the answers did not name their events:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_process_finds_the_event_a_send_names_by_its_batch_number_and_place() {
    // The test stands in for a skill process: it reads the stored event (no skill process
    // runs), and sends answers that name it the way a skill process does.
    use connector_core::prelude::*;
    use connector_core::wire;

    let scratch = Scratch::new("link-name");
    let nats = NatsServer::start(&scratch.0);
    let web = free_port();
    let config = config(&scratch.0, &nats, web);
    let connector = Node::start(&scratch.0, &config, "connectors", 0);
    let addr = listening(web, &connector).await;
    let mut socket = ws::client(addr).await.unwrap();
    socket.send(Frame::text("hello")).await.unwrap();
    // The stream holds `BotStarted` (no conversation, a lane of its own) and `hello`.
    until(
        Duration::from_secs(20),
        "two events stored",
        &[&connector],
        async || nats.stored_events(BOT).await >= 2,
    )
    .await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream("echobot-events").await.unwrap();
    let mut found = None;
    for sequence in 1..=2 {
        let stored = stream.get_raw_message(sequence).await.unwrap();
        for (place, line) in stored.payload.split(|&b| b == b'\n').enumerate() {
            let event = wire::decode(line).unwrap();
            if event.is::<Message>() {
                found = Some((stored.headers.clone(), place, event));
            }
        }
    }
    let (headers, place, event) = found.expect("`hello` is stored");
    let origin = headers.get("Bot-Origin").unwrap().as_str().to_owned();
    let id = headers
        .get(async_nats::header::NATS_MESSAGE_ID)
        .unwrap()
        .as_str();
    let number: u64 = id
        .strip_prefix(&format!("{origin}-"))
        .unwrap()
        .parse()
        .unwrap();
    let answer = |text: &str| {
        let reply = Message::new(text)
            .target(event.meta().target.as_deref().unwrap())
            .connector("websocket");
        String::from_utf8(wire::encode(&AnyEvent::new(reply)).unwrap()).unwrap()
    };
    let send = |line: String| {
        let client = client.clone();
        let subject = format!("echobot.send.{origin}");
        async move {
            let answer = client.request(subject, line.into()).await.unwrap();
            String::from_utf8(answer.payload.to_vec()).unwrap()
        }
    };
    assert_eq!(
        send(format!("t.0 @{number}.{place} {}", answer("named"))).await,
        "",
        "the event is kept: the answer is sent"
    );
    assert_eq!(
        send(format!(
            "t.1 @{number}.{} {}",
            place + 1,
            answer("no such place")
        ))
        .await,
        "@unknown-link"
    );
    assert_eq!(
        send(format!(
            "t.2 @{}.{place} {}",
            number + 100,
            answer("no such batch")
        ))
        .await,
        "@unknown-link"
    );
    assert_eq!(send(format!("t.3 {}", answer("whole"))).await, "");
    for expected in ["named", "whole"] {
        match tokio::time::timeout(REPLY_LIMIT, socket.next()).await {
            Ok(Some(Ok(Frame::Text(t)))) => assert_eq!(t.as_str(), expected),
            other => panic!("no {expected:?}: {other:?}\n{}", connector.log()),
        }
    }
}

/// JetStream delivers a message again when it goes `redelivery` (2 s here) without an
/// acknowledgement; a skill that runs longer must still run once for its event (the lane
/// tells the server its messages are in progress). Before, a 5 s skill ran three times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skill_that_runs_longer_than_redelivery_runs_once() {
    let SlowBot {
        skills,
        connector,
        nats,
        addr,
        ..
    } = &slow_bot("longer", 16, 16, 5000).await;
    until(
        REPLY_LIMIT,
        "the skill process holds the lanes",
        &[skills],
        async || nats.lane_holders(BOT).await == 1,
    )
    .await;
    let mut socket = ws::client(*addr).await.unwrap();
    socket.send(Frame::text("slow 0 0")).await.unwrap();
    match tokio::time::timeout(REPLY_LIMIT, socket.next()).await {
        Ok(Some(Ok(Frame::Text(t)))) => assert_eq!(t.as_str(), "slow 0 0"),
        other => panic!("no reply: {other:?}\n{}", logs(&[skills, connector])),
    }
    // Two more `redelivery` periods: a copy delivered again would have started by then.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let runs = skills.log().matches("running on [slow 0 0]").count();
    assert_eq!(
        runs,
        1,
        "the skill ran {runs} times\n{}",
        logs(&[skills, connector])
    );
}
