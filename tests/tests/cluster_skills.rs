//! Crontab and webhook skills in a bot on several processes, over a real nats-server: they
//! are skills, so skill processes run them. A crontab skill runs in one skill process at a
//! time (each scheduled time once), and in another once that one is SIGKILLed; a webhook
//! call served by the connector process's web server runs in a skill process, and its
//! answer (status, body, a failure, a timeout) reaches the caller. And memory: skill processes share it
//! through Redis (a real `redis-server`), and a process without a shared backend says so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use connector_tests::cluster::{Node, Scratch, ask, configuration, listening, logs, until};
use connector_tests::nats::{NatsServer, free_port};
use connector_tests::web::post;

// The memory tests' server (connector-examples' test support), started per test.
#[path = "../../examples/tests/support/redis.rs"]
mod redis_server;

/// The example bot with the websocket connector (for a connector to run) and `skill` (a
/// skill of `cluster-node`); leases last 2 s, a webhook call waits 2 s for a skill process.
fn config(dir: &Path, nats: &NatsServer, web: u16, skill: &str) -> PathBuf {
    config_with(dir, nats, web, skill, "")
}

/// The same with more top-level sections.
fn config_with(dir: &Path, nats: &NatsServer, web: u16, skill: &str, more: &str) -> PathBuf {
    configuration(
        dir,
        "skillbot",
        web,
        &nats.url(),
        &[skill],
        &["send-timeout: 2"],
        more,
    )
}

/// The scheduled times a process's `tick` skill ran for, in its log's order.
fn ticks(node: &Node) -> Vec<String> {
    node.log()
        .lines()
        .filter_map(|line| Some(line.split("tick skill: ran for ").nth(1)?.trim().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crontab_skill_runs_in_one_skill_process_at_a_time_and_moves_when_it_dies() {
    let scratch = Scratch::new("crontab");
    let nats = NatsServer::start(&scratch.0);
    let web = free_port();
    let config = config(&scratch.0, &nats, web, "tick");
    let connector = Node::start(&scratch.0, &config, "connectors", 0);
    let mut first = Node::start(&scratch.0, &config, "skills", 1);
    let mut second = Node::start(&scratch.0, &config, "skills", 2);
    listening(web, &connector).await;

    let all = |a: &Node, b: &Node| ticks(a).len() + ticks(b).len();
    until(
        Duration::from_secs(30),
        "three ticks",
        &[&connector, &first, &second],
        async || all(&first, &second) >= 3,
    )
    .await;
    assert!(
        ticks(&connector).is_empty(),
        "a connector process runs no skill:\n{}",
        connector.log()
    );
    // Each time runs once, in the holder of the schedules' lease. (Normally one process
    // runs them all; a holder too slow to renew its lease on a busy machine loses it to the
    // other, which is allowed: no time runs in both.)
    once(&[ticks(&first), ticks(&second)]);
    let last = |node: &Node| ticks(node).into_iter().max();
    let (holder, other) = if last(&first) > last(&second) {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    assert!(
        holder
            .log()
            .contains("this skill process runs the crontab skills now"),
        "{}",
        holder.log()
    );
    // Without `databases: {redis: …}` each process says its memory is its own.
    for node in [&connector, &*holder, &*other] {
        assert!(
            node.log().contains("this process's memory (this process) is not seen by the bot's processes on other hosts"),
            "{}",
            node.log()
        );
    }

    // Its lease runs out 2 s after it stops renewing it: the other process takes the
    // schedules over.
    holder.kill();
    let before = ticks(holder);
    let others_before = ticks(other).len();
    until(
        Duration::from_secs(20),
        "the other skill process runs the schedule",
        &[holder, other],
        async || ticks(other).len() >= others_before + 2,
    )
    .await;
    once(&[before.clone(), ticks(other)]);
    let taken_over = &ticks(other)[others_before..];
    assert!(
        taken_over.iter().all(|t| before.iter().all(|b| t > b)),
        "the new holder ran a time the dead one had run: {before:?} then {taken_over:?}"
    );
}

/// No scheduled time appears twice across the processes' runs.
fn once(runs: &[Vec<String>]) {
    let every: Vec<&String> = runs.iter().flatten().collect();
    let mut unique = every.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        every.len(),
        "a scheduled time ran twice: {runs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_call_to_a_connector_process_runs_in_a_skill_process() {
    let scratch = Scratch::new("webhook");
    let nats = NatsServer::start(&scratch.0);
    let web = free_port();
    let config = config(&scratch.0, &nats, web, "who");
    let connector = Node::start(&scratch.0, &config, "connectors", 0);
    let addr = listening(web, &connector).await;

    // No skill process: after `send-timeout` the caller is told so.
    let reply = post(addr, "/skill/who/who", "", "hello").await;
    assert_eq!(
        reply.status_line,
        "HTTP/1.1 503 Service Unavailable",
        "{reply:?}\n{}",
        connector.log()
    );
    assert!(
        reply
            .body
            .contains("no skill process took the call within 2s"),
        "{reply:?}"
    );
    // Unknown webhooks are answered by the connector process at once.
    let reply = post(addr, "/skill/who/nope", "", "").await;
    assert_eq!(reply.status_line, "HTTP/1.1 404 Not Found", "{reply:?}");

    let skills = Node::start(&scratch.0, &config, "skills", 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let reply = loop {
        let reply = post(addr, "/skill/who/who", "", "hello").await;
        if !reply.status_line.contains("503") {
            break reply;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no skill process took the call:\n{}",
            logs(&[&connector, &skills])
        );
    };
    assert_eq!(reply.status_line, "HTTP/1.1 201 Created", "{reply:?}");
    assert_eq!(reply.body, format!("ran in process {}", skills.pid()));
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        !connector.log().contains("who skill: called"),
        "{}",
        connector.log()
    );

    // A failing skill's 500 crosses too.
    let reply = post(addr, "/skill/who/who", "", "fail").await;
    assert_eq!(
        reply.status_line, "HTTP/1.1 500 Internal Server Error",
        "{reply:?}"
    );
    assert!(
        reply.body.contains("skill 'who' failed: asked to fail"),
        "{reply:?}"
    );
    // A call that does not read (not an envelope; not a webhook call) is answered 500,
    // and the skill process goes on serving.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let message = connector_core::AnyEvent::new(connector_core::events::Message::new("hi"));
    let message = connector_core::wire::encode(&message).unwrap();
    for bad in [&b"not json"[..], &message[..]] {
        let answer = client
            .request("skillbot.webhook", bad.to_vec().into())
            .await
            .unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
        assert_eq!(answer["status"], 500, "{answer}");
    }
    assert!(
        skills
            .log()
            .contains("webhook call: the call could not be read"),
        "{}",
        skills.log()
    );
    // A skill slower than `send-timeout` (2 s): the caller is told so.
    let reply = post(addr, "/skill/who/who", "", "slow").await;
    assert_eq!(
        reply.status_line, "HTTP/1.1 504 Gateway Timeout",
        "{reply:?}"
    );
    assert!(
        reply
            .body
            .contains("the skill process gave no answer within 2s"),
        "{reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skill_processes_share_memory_through_redis() {
    let scratch = Scratch::new("memory");
    let nats = NatsServer::start(&scratch.0);
    let redis = redis_server::RedisServer::start(&scratch.0, None);
    let web = free_port();
    let databases = format!(
        "databases:\n  redis:\n    host: 127.0.0.1\n    port: {}\n",
        redis.port
    );
    let config = config_with(&scratch.0, &nats, web, "remember", &databases);
    let connector = Node::start(&scratch.0, &config, "connectors", 0);
    let mut first = Node::start(&scratch.0, &config, "skills", 1);
    let addr = listening(web, &connector).await;

    assert_eq!(
        ask(addr, "remember colour is blue").await,
        "OK, I'll remember colour."
    );
    // The process that remembered is gone; another one, started after, answers.
    first.kill();
    let second = Node::start(&scratch.0, &config, "skills", 2);
    assert_eq!(
        ask(addr, "what is colour?").await,
        "colour is blue.",
        "{}",
        logs(&[&connector, &first, &second])
    );
    for node in [&connector, &first, &second] {
        assert!(
            !node.log().contains("is not seen by the bot's processes"),
            "{}",
            node.log()
        );
    }
}
