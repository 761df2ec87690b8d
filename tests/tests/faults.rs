//! The fault matrix: connectors that fail to connect (transiently or for good), listens that
//! break mid-stream, sends that fail, skills that hang, disconnects that never return. Each
//! test fails without the behaviour it names. Timing-sensitive rows run on tokio's paused
//! clock, so the backoff delays are asserted exactly and the suite stays fast.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connector_core::config::{ConnectorSection, ReconnectPolicy};
use connector_core::prelude::*;
use connector_core::testing::{MemoryConnector, TestBot};
use connector_tests::skills;
use tokio::time::Instant;

fn policy(jitter: f64) -> ReconnectPolicy {
    ReconnectPolicy {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(8),
        factor: 2.0,
        jitter,
        max_attempts: None,
    }
}

fn build<C: Connector>(name: &str) -> C {
    C::from_section(&ConnectorSection::bare(name, C::TYPE)).expect("a bare section builds")
}

/// Waits (on the paused clock: instantly) until `done` holds.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition never held");
}

/// Fails `connect` until `fail` reaches zero, recording when each call came; a working
/// connection listens until shutdown.
#[connector(name = "flaky")]
struct Flaky {
    calls: Arc<Mutex<Vec<Instant>>>,
    fail: Arc<AtomicU32>,
    permanent: Arc<AtomicBool>,
}

#[connector]
impl Flaky {
    async fn connect(&self) -> Result<()> {
        self.calls.lock().unwrap().push(Instant::now());
        if self.permanent.load(Ordering::SeqCst) {
            return Err(ConnectorError::permanent("flaky: bad credentials").into());
        }
        if self.fail.load(Ordering::SeqCst) > 0 {
            self.fail.fetch_sub(1, Ordering::SeqCst);
            return Err("flaky: connection refused".into());
        }
        Ok(())
    }

    async fn listen(&self, bot: &Bot) -> Result<()> {
        bot.shutting_down().await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn connect_fails_three_times_then_the_bot_comes_up_on_the_configured_backoff() {
    let flaky: Flaky = build("flaky");
    flaky.fail.store(3, Ordering::SeqCst);
    let calls = flaky.calls.clone();
    let (chat, remote) = MemoryConnector::new("chat");
    let p = policy(0.2);
    let mut run = TestBot::new()
        .runtime(|r| r.reconnect = p.clone())
        .skill(skills::echo())
        .connector(flaky)
        .connector(chat)
        .start()
        .unwrap();
    // The other connector serves while the flaky one is still failing.
    remote.inject(Message::new("hi").target("lobby"));
    assert_eq!(run.next_sent().await.unwrap().text(), Some("hi"));
    assert!(
        calls.lock().unwrap().len() < 4,
        "answered before the flaky one connected"
    );

    until(|| calls.lock().unwrap().len() == 4).await;
    let times = calls.lock().unwrap().clone();
    for (attempt, pair) in times.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let attempt = u32::try_from(attempt).unwrap();
        let (low, high) = (p.delay(attempt, 0.0), p.delay(attempt, 1.0));
        assert!(
            gap >= low && gap <= high,
            "retry {attempt}: waited {gap:?}, expected {low:?}..={high:?}"
        );
    }
    // Exponential: each wait is longer than the last (1s, 2s, 4s ± 20%, ranges disjoint).
    assert!(times[3] - times[2] > times[2] - times[1]);
    assert!(times[2] - times[1] > times[1] - times[0]);
    // Up: nothing retries any more, and the others still serve.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(calls.lock().unwrap().len(), 4);
    remote.inject(Message::new("still").target("lobby"));
    assert_eq!(run.next_sent().await.unwrap().text(), Some("still"));
    run.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_permanent_connect_failure_is_tried_once_and_the_others_keep_running() {
    let flaky: Flaky = build("flaky");
    flaky.permanent.store(true, Ordering::SeqCst);
    let calls = flaky.calls.clone();
    let (chat, remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .runtime(|r| r.reconnect = policy(0.0))
        .skill(skills::echo())
        .connector(flaky)
        .connector(chat)
        .start()
        .unwrap();
    // An hour of paused time: a retry loop would have called connect a dozen times.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(calls.lock().unwrap().len(), 1, "no retry storm");
    remote.inject(Message::new("alive?").target("lobby"));
    assert_eq!(run.next_sent().await.unwrap().text(), Some("alive?"));
    assert!(!run.bot().is_shutting_down());
    run.shutdown().await.unwrap();
}

/// `listen` call `n` behaves as `script[n]` says: parse that many messages and fail, or
/// stay healthy for a while and then fail; past the script it listens until shutdown.
#[connector(name = "breaking")]
struct Breaking {
    connects: Arc<Mutex<Vec<Instant>>>,
    listens: AtomicU32,
    script: Mutex<Vec<Step>>,
}

#[derive(Clone, Copy)]
enum Step {
    ParseThenFail(u32),
    HealthyThenFail(Duration),
}

#[connector]
impl Breaking {
    async fn connect(&self) -> Result<()> {
        self.connects.lock().unwrap().push(Instant::now());
        Ok(())
    }

    async fn listen(&self, bot: &Bot) -> Result<()> {
        let n = self.listens.fetch_add(1, Ordering::SeqCst) as usize;
        let step = self.script.lock().unwrap().get(n).copied();
        match step {
            Some(Step::ParseThenFail(count)) => {
                for i in 0..count {
                    bot.parse(Message::new(format!("m{i}")).target(format!("room{}", i % 7)))
                        .await;
                }
                Err("breaking: connection reset".into())
            }
            Some(Step::HealthyThenFail(after)) => {
                tokio::time::sleep(after).await;
                Err("breaking: connection reset".into())
            }
            None => {
                bot.shutting_down().await;
                Ok(())
            }
        }
    }

    #[register_event(Message)]
    async fn send_message(&self, _message: &Message) -> Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_listen_error_mid_stream_loses_no_event_already_handed_over() {
    let breaking: Breaking = build("breaking");
    *breaking.script.lock().unwrap() = vec![Step::ParseThenFail(200)];
    let connects = breaking.connects.clone();
    let mut run = TestBot::new()
        .skill(
            Skill::new("slow-echo", |ctx: SkillContext| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let text = ctx.text().to_owned();
                ctx.respond(text).await
            })
            .catchall_messages(),
        )
        .connector(breaking)
        .start()
        .unwrap();
    let mut got: Vec<String> = Vec::new();
    while got.len() < 200 {
        let Some(ev) = run.next_sent().await else {
            panic!("only {} of 200 replies arrived", got.len());
        };
        got.push(ev.text().unwrap().to_owned());
    }
    got.sort();
    let mut want: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    want.sort();
    assert_eq!(got, want, "every parsed event answered exactly once");
    assert_eq!(
        connects.lock().unwrap().len(),
        2,
        "reconnected after the error"
    );
    run.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_backoff_resets_after_a_healthy_period() {
    let breaking: Breaking = build("breaking");
    *breaking.script.lock().unwrap() = vec![
        Step::ParseThenFail(0),
        Step::ParseThenFail(0),
        Step::HealthyThenFail(Duration::from_secs(10)),
        Step::ParseThenFail(0),
    ];
    let connects = breaking.connects.clone();
    let run = TestBot::new()
        .runtime(|r| r.reconnect = policy(0.0))
        .connector(breaking)
        .start()
        .unwrap();
    until(|| connects.lock().unwrap().len() == 5).await;
    let t = connects.lock().unwrap().clone();
    let secs = |d: Duration| d.as_secs_f64();
    // Two quick failures: 1s, then 2s.
    assert_eq!(secs(t[1] - t[0]), 1.0);
    assert_eq!(secs(t[2] - t[1]), 2.0);
    // Healthy for 10s (longer than the 8s cap), then a failure: back to 1s, not 4s.
    assert_eq!(secs(t[3] - t[2]), 10.0 + 1.0);
    // And it grows again from there.
    assert_eq!(secs(t[4] - t[3]), 2.0);
    run.shutdown().await.unwrap();
}

/// Sends of `Message` fail while `failing` is set.
#[connector(name = "lossy")]
struct Lossy {
    failing: Arc<AtomicBool>,
    delivered: Arc<Mutex<Vec<String>>>,
}

#[connector]
impl Lossy {
    async fn connect(&self) -> Result<()> {
        Ok(())
    }

    async fn listen(&self, bot: &Bot) -> Result<()> {
        bot.shutting_down().await;
        Ok(())
    }

    #[register_event(Message)]
    async fn send_message(&self, message: &Message) -> Result<(), std::io::Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("lossy: 503 service unavailable"));
        }
        self.delivered.lock().unwrap().push(message.text.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_send_reaches_the_skill_as_a_typed_error_and_the_bot_lives() {
    let lossy: Lossy = build("lossy");
    let failing = lossy.failing.clone();
    let delivered = lossy.delivered.clone();
    failing.store(true, Ordering::SeqCst);
    let (chat, remote) = MemoryConnector::new("chat");
    let (tx, mut outcomes) = tokio::sync::mpsc::unbounded_channel::<String>();
    let skill = Skill::new("relay", move |ctx: SkillContext| {
        let tx = tx.clone();
        async move {
            let text = ctx.text().to_owned();
            let result = ctx
                .bot()
                .send(Message::new(text).connector("lossy").target("ops"))
                .await;
            let outcome = match result {
                Ok(()) => "ok".to_owned(),
                Err(SendError::Handler {
                    connector,
                    event,
                    source,
                }) => format!("handler {connector} {event}: {source}"),
                Err(other) => format!("other: {other}"),
            };
            let _ = tx.send(outcome);
        }
    })
    .catchall_messages();
    let run = TestBot::new()
        .skill(skill)
        .connector(lossy)
        .connector(chat)
        .start()
        .unwrap();
    remote.inject(Message::new("first").target("lobby"));
    assert_eq!(
        outcomes.recv().await.unwrap(),
        "handler lossy Message: lossy: 503 service unavailable"
    );
    failing.store(false, Ordering::SeqCst);
    remote.inject(Message::new("second").target("lobby"));
    assert_eq!(outcomes.recv().await.unwrap(), "ok");
    assert_eq!(*delivered.lock().unwrap(), ["second"]);
    assert!(!run.bot().is_shutting_down());
    run.shutdown().await.unwrap();
}

/// Sets its flag when dropped: proves a timed-out skill's future was cancelled.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn a_skill_past_its_timeout_is_cancelled_and_the_user_gets_the_error_reply() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let hang = Skill::new("hang", move |_ctx: SkillContext| {
        let guard = DropFlag(flag.clone());
        async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        }
    })
    .regex("^hang");
    let (chat, remote) = MemoryConnector::new("chat");
    let started = Instant::now();
    let mut run = TestBot::new()
        .runtime(|r| r.skill_timeout = Some(Duration::from_secs(30)))
        .skill(hang)
        .skill(skills::echo())
        .connector(chat)
        .start()
        .unwrap();
    remote.inject(Message::new("hang on").user("ann").target("room-a"));
    remote.inject(Message::new("hello").user("bob").target("room-b"));
    // The other conversation is not held up by the hung skill.
    let first = run.next_sent().await.unwrap();
    assert_eq!(first.text(), Some("hello"));
    assert_eq!(first.meta().target.as_deref(), Some("room-b"));
    let second = loop {
        // `next_sent` gives up after 5s of (paused) time; the reply comes at 30s.
        if let Some(ev) = run.next_sent().await {
            break ev;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no error reply"
        );
    };
    assert_eq!(second.text(), Some("Whoops there has been an error."));
    assert_eq!(second.meta().target.as_deref(), Some("room-a"));
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert!(
        dropped.load(Ordering::SeqCst),
        "the hung skill was cancelled"
    );
    // The conversation it held is free again.
    remote.inject(Message::new("after").user("ann").target("room-a"));
    assert_eq!(run.next_sent().await.unwrap().text(), Some("after"));
    run.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_a_skill_timeout_a_slow_skill_finishes() {
    let slow = Skill::new("slow", |ctx: SkillContext| async move {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        ctx.respond("done").await
    })
    .regex("^slow");
    let (chat, remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .runtime(|r| r.skill_timeout = None)
        .skill(slow)
        .connector(chat)
        .start()
        .unwrap();
    remote.inject(Message::new("slow").target("r"));
    let mut sent = Vec::new();
    while sent.is_empty() {
        sent = run.sent_within(Duration::from_secs(600)).await;
    }
    assert_eq!(sent[0].text(), Some("done"));
    run.shutdown().await.unwrap();
}

#[test]
fn skill_timeout_is_configurable_and_null_means_no_limit() {
    let load = |rt: &str| {
        connector_core::Config::from_str(&format!("connectors: {{shell: }}\n{rt}"), "c.yaml")
            .map(|c| c.runtime.skill_timeout)
    };
    assert_eq!(load("").unwrap(), Some(Duration::from_secs(60)));
    assert_eq!(
        load("runtime: {skill-timeout: 2.5}").unwrap(),
        Some(Duration::from_millis(2500))
    );
    assert_eq!(load("runtime: {skill-timeout: null}").unwrap(), None);
    assert_eq!(
        load("runtime: {skill-timeout: -1}")
            .unwrap_err()
            .to_string(),
        "c.yaml:2:26: runtime.skill-timeout: invalid duration -1: expected a non-negative number of seconds"
    );
}

/// `disconnect` never returns.
#[connector(name = "stuck")]
struct Stuck {}

#[connector]
impl Stuck {
    async fn connect(&self) -> Result<()> {
        Ok(())
    }

    async fn listen(&self, bot: &Bot) -> Result<()> {
        bot.shutting_down().await;
        Ok(())
    }

    async fn disconnect(&self) -> Result<()> {
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_disconnect_does_not_hang_shutdown() {
    let stuck: Stuck = build("stuck");
    let (chat, remote) = MemoryConnector::new("chat");
    let run = TestBot::new()
        .runtime(|r| r.disconnect_timeout = Duration::from_secs(3))
        .connector(stuck)
        .connector(chat)
        .start()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let began = Instant::now();
    run.shutdown().await.unwrap();
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(4),
        "shutdown took {took:?}"
    );
    assert!(
        remote.disconnected(),
        "the healthy connector was disconnected"
    );
}

fn required<C: Connector>(name: &str) -> C {
    let mut section = ConnectorSection::bare(name, C::TYPE);
    section.is_required = true;
    C::from_section(&section).expect("a bare section builds")
}

#[tokio::test(start_paused = true)]
async fn a_required_connector_that_fails_permanently_stops_the_bot() {
    let flaky: Flaky = required("flaky");
    flaky.permanent.store(true, Ordering::SeqCst);
    let calls = flaky.calls.clone();
    let (chat, remote) = MemoryConnector::new("chat");
    let run = TestBot::new()
        .runtime(|r| r.reconnect = policy(0.0))
        .connector(flaky)
        .connector(chat)
        .start()
        .unwrap();
    let err = run.finish().await.unwrap_err();
    assert!(
        matches!(&err, connector_core::BotError::RequiredConnectorFailed { name } if name == "flaky"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "required connector `flaky` failed and will not be retried; the bot has shut down"
    );
    assert_eq!(calls.lock().unwrap().len(), 1);
    // The bot stopped: the other connector's input is no longer read.
    remote.inject(Message::new("anyone?").target("lobby"));
}

#[tokio::test(start_paused = true)]
async fn a_required_connector_out_of_attempts_stops_the_bot() {
    let flaky: Flaky = required("flaky");
    flaky.fail.store(u32::MAX, Ordering::SeqCst);
    let calls = flaky.calls.clone();
    let (chat, _remote) = MemoryConnector::new("chat");
    let run = TestBot::new()
        .runtime(|r| {
            r.reconnect = ReconnectPolicy {
                max_attempts: Some(3),
                ..policy(0.0)
            }
        })
        .connector(flaky)
        .connector(chat)
        .start()
        .unwrap();
    let err = run.finish().await.unwrap_err();
    assert!(
        matches!(&err, connector_core::BotError::RequiredConnectorFailed { name } if name == "flaky")
    );
    assert_eq!(calls.lock().unwrap().len(), 3);
}

#[test]
fn required_is_a_reserved_connector_key() {
    let config = connector_core::Config::from_str(
        "connectors:\n  shell:\n    required: true\n    bot-name: b\n  other:\n    connector: shell\n",
        "c.yaml",
    )
    .unwrap();
    let shell = config.connector("shell").unwrap();
    assert!(shell.is_required);
    assert!(
        shell.raw().get("required").is_none(),
        "stripped like `default`"
    );
    assert!(!config.connector("other").unwrap().is_required);
    let err = connector_core::Config::from_str(
        "connectors:\n  shell:\n    required: yes please\n",
        "c.yaml",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "c.yaml:3:15: connectors.shell.required: expected true or false, found a string"
    );
}
