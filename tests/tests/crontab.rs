//! Crontab skills through the public API: what a tick's `respond` and `send` do, the
//! schedule on tokio's paused clock, one real-time run of a configured `announce` skill,
//! and the configuration keys (`timezone:`, `skills.<name>.crontab` / `timezone`) with
//! their located errors.

use std::time::Duration;

use connector_core::BotError;
use connector_core::config::RuntimeConfig;
use connector_core::crontab::Tz;
use connector_core::prelude::*;
use connector_core::testing::{MemoryConnector, TestBot, connector_from_yaml, fast_runtime};
use connector_tests::logs::capture;

/// A memory connector from a one-connector configuration (so it can have a default target
/// and `default: true`).
fn memory(section: &str) -> MemoryConnector {
    connector_from_yaml(&format!("connectors:\n  {section}\n")).unwrap()
}

/// A tick's scheduled time and zone, as text.
fn describe_tick(ctx: &SkillContext) -> String {
    match ctx.event().downcast_ref::<Tick>() {
        Some(tick) => format!(
            "{} {}",
            tick.local().format("%Y-%m-%d %H:%M:%S"),
            tick.timezone
        ),
        None => format!("not a tick: {}", ctx.event().name()),
    }
}

#[tokio::test(start_paused = true)]
async fn respond_on_a_tick_goes_to_the_default_connectors_default_target() {
    let mut run = TestBot::new()
        .skill(
            Skill::new("tick", |ctx: SkillContext| async move {
                let text = describe_tick(&ctx);
                ctx.respond(text).await
            })
            .crontab("* * * * *"),
        )
        .connector(memory(
            "side: {connector: memory, default-target: elsewhere}",
        ))
        .connector(memory(
            "main: {connector: memory, default: true, default-target: ops}",
        ))
        .start()
        .unwrap();
    let sent = run.sent_within(Duration::from_secs(61)).await;
    assert_eq!(sent.len(), 1, "one tick in the first minute: {sent:?}");
    let reply = &sent[0];
    assert_eq!(reply.meta().connector.as_deref(), Some("main"));
    assert_eq!(reply.meta().target.as_deref(), Some("ops"));
    assert_eq!(reply.meta().user, None);
    let text = reply.text().unwrap();
    assert!(text.ends_with(":00 UTC"), "a whole minute in UTC: {text}");
    // The reply is linked to the tick that triggered it.
    match &reply.meta().linked_event {
        Some(Linked::Event(trigger)) => assert!(trigger.is::<Tick>()),
        other => panic!("not linked to the tick: {other:?}"),
    }
    run.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_tick_can_send_to_any_connector_and_target() {
    let mut run = TestBot::new()
        .skill(
            Skill::new("report", |ctx: SkillContext| async move {
                let message = Message::new("nightly report")
                    .connector("side")
                    .target("reports");
                ctx.bot().send(message).await
            })
            .crontab("* * * * *"),
        )
        .connector(memory(
            "main: {connector: memory, default: true, default-target: ops}",
        ))
        .connector(memory("side: {connector: memory}"))
        .start()
        .unwrap();
    let sent = run.sent_within(Duration::from_secs(61)).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].meta().connector.as_deref(), Some("side"));
    assert_eq!(sent[0].meta().target.as_deref(), Some("reports"));
    run.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn every_five_minutes_on_the_paused_clock() {
    let (chat, _remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .skill(
            Skill::new("five", |ctx: SkillContext| async move {
                let text = describe_tick(&ctx);
                ctx.respond(text).await
            })
            .crontab("*/5 * * * *"),
        )
        .connector(chat)
        .start()
        .unwrap();
    let begin = tokio::time::Instant::now();
    // Within 15 minutes and a second: exactly three fifth minutes, whatever the start time.
    let sent = run.sent_within(Duration::from_secs(15 * 60 + 1)).await;
    let texts: Vec<&str> = sent.iter().filter_map(|e| e.text()).collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    let minutes: Vec<u32> = texts
        .iter()
        .map(|t| {
            assert!(t.ends_with(":00 UTC"), "{t}");
            t[14..16].parse().unwrap()
        })
        .collect();
    for pair in minutes.windows(2) {
        assert_eq!((pair[0] + 5) % 60, pair[1], "{texts:?}");
    }
    assert!(minutes.iter().all(|m| m % 5 == 0), "{texts:?}");
    assert!(begin.elapsed() >= Duration::from_secs(15 * 60));
    run.shutdown().await.unwrap();
}

/// The `announce` skill an example bot would have: its configuration section says when
/// (`crontab:`) and what (`message:`); the text goes to the default connector's default
/// target.
fn announce() -> Skill {
    Skill::new("announce", |ctx: SkillContext| async move {
        let text = ctx
            .config()
            .and_then(|c| c.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or("(no message configured)")
            .to_owned();
        ctx.respond(text).await
    })
}

/// A skill that tells, to target `<name>` of the default connector, when its tick was
/// scheduled and in which time zone.
fn zone(name: &'static str) -> Skill {
    Skill::new(name, move |ctx: SkillContext| async move {
        let text = describe_tick(&ctx);
        ctx.bot().send(Message::new(text).target(name)).await
    })
}

const ANNOUNCE_CONFIG: &str = "\
connectors:
  spare: {connector: memory}
timezone: Europe/Paris
skills:
  announce:
    crontab: \"* * * * * *\"
    message: stand-up in five minutes
  paris:
    crontab: \"* * * * * *\"
  tokyo:
    crontab: \"* * * * * *\"
    timezone: Asia/Tokyo
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_every_second_announce_fires_in_real_time() {
    let config = Config::from_str(ANNOUNCE_CONFIG, "configuration.yaml").unwrap();
    assert_eq!(config.timezone, Some(Tz::Europe__Paris));
    let chat = memory("chat: {connector: memory, default: true, default-target: lobby}");
    let mut sent = chat.remote().take_sent().unwrap();
    let runner = BotBuilder::new()
        .connector::<MemoryConnector>()
        .instance(chat)
        .skill(announce())
        .skill(zone("paris"))
        .skill(zone("tokyo"))
        .runtime(fast_runtime())
        .own_logging()
        .build(&config)
        .unwrap();
    let bot = runner.bot();
    let task = tokio::spawn(runner.run_until(std::future::pending()));
    let began = std::time::Instant::now();
    let (mut announced, mut zones) = (Vec::new(), Vec::new());
    let has =
        |zones: &[AnyEvent], t: &str| zones.iter().any(|e| e.meta().target.as_deref() == Some(t));
    while announced.len() < 2 || !has(&zones, "paris") || !has(&zones, "tokyo") {
        let event = tokio::time::timeout(Duration::from_secs(10), sent.recv())
            .await
            .expect("every-second ticks within 10 s")
            .unwrap();
        match event.meta().target.as_deref() {
            Some("lobby") => announced.push(event),
            _ => zones.push(event),
        }
    }
    let took = began.elapsed();
    for event in &announced {
        assert_eq!(event.text(), Some("stand-up in five minutes"));
        assert_eq!(event.meta().connector.as_deref(), Some("chat"));
    }
    assert!(
        took < Duration::from_secs(8),
        "two every-second ticks took {took:?}"
    );
    for event in &zones {
        let (target, text) = (
            event.meta().target.as_deref().unwrap(),
            event.text().unwrap(),
        );
        match target {
            "paris" => assert!(text.ends_with(" Europe/Paris"), "{text}"),
            "tokyo" => assert!(text.ends_with(" Asia/Tokyo"), "{text}"),
            other => panic!("unexpected target {other}: {text}"),
        }
    }
    bot.shutdown();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("shutdown within 20 s")
        .unwrap()
        .unwrap();
}

/// The loader's or the builder's error for a configuration, as text.
fn build_error(yaml: &str) -> String {
    let config = match Config::from_str(yaml, "configuration.yaml") {
        Ok(config) => config,
        Err(e) => return e.to_string(),
    };
    match BotBuilder::new()
        .connector::<MemoryConnector>()
        .skill(announce())
        .runtime(RuntimeConfig::default())
        .own_logging()
        .build(&config)
    {
        Ok(_) => "built".to_owned(),
        Err(e) => e.to_string(),
    }
}

const HEAD: &str = "connectors:\n  chat: {connector: memory}\n";

#[test]
fn configuration_errors_name_the_file_position_and_key() {
    let cases = [
        (
            "timezone: Mars/Olympus\n",
            "configuration.yaml:3:11: timezone: unknown time zone `Mars/Olympus`; expected an IANA name such as `UTC` or `Europe/Paris`",
        ),
        (
            "timezone: 5\n",
            "configuration.yaml:3:11: timezone: expected an IANA time zone name, found a number",
        ),
        (
            "skills:\n  announce:\n    crontab: \"61 * * * *\"\n",
            "configuration.yaml:5:14: skills.announce.crontab: `61 * * * *` is not a valid crontab expression",
        ),
        (
            "skills:\n  announce:\n    crontab: \"* * *\"\n",
            "configuration.yaml:5:14: skills.announce.crontab: `* * *` has 3 field(s); expected 5",
        ),
        (
            "skills:\n  announce:\n    crontab: 5\n",
            "configuration.yaml:5:14: skills.announce.crontab: expected a crontab expression in quotes",
        ),
        (
            "skills:\n  announce:\n    crontab: \"0 9 * * *\"\n    timezone: Europe/Pariss\n",
            "configuration.yaml:6:15: skills.announce.timezone: unknown time zone `Europe/Pariss`",
        ),
        (
            "skills:\n  - name: announce\n    crontab: \"0 0 31 2 *\"\n",
            "configuration.yaml:5:14: skills.0.crontab: `0 0 31 2 *` never matches a date",
        ),
    ];
    for (tail, expected) in cases {
        let got = build_error(&format!("{HEAD}{tail}"));
        assert!(
            got.starts_with(expected),
            "for\n{tail}\ngot:      {got}\nexpected: {expected}"
        );
    }
}

#[test]
fn valid_keys_build_and_a_timezone_without_a_crontab_is_the_skills_own_setting() {
    for tail in [
        "timezone: America/New_York\nskills:\n  announce: {crontab: \"*/5 * * * *\"}\n",
        "skills:\n  announce: {crontab: \"0 9 * * mon-fri\", timezone: UTC}\n",
        "skills:\n  announce: {crontab: \"*/10 * * * * *\"}\n",
        "skills:\n  announce: {crontab: \"@hourly\"}\n",
        "skills:\n  announce: {timezone: not-a-zone-but-not-read, message: hi}\n",
    ] {
        assert_eq!(
            build_error(&format!("{HEAD}{tail}")),
            "built",
            "for\n{tail}"
        );
    }
    let config = Config::from_str(HEAD, "configuration.yaml").unwrap();
    assert_eq!(config.timezone, None);
    // `timezone:` is an interpreted key now, not "accepted but ignored".
    let config = Config::from_str(&format!("{HEAD}timezone: UTC\n"), "configuration.yaml").unwrap();
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
}

#[test]
fn an_invalid_crontab_in_code_fails_the_build_naming_the_skill() {
    let (chat, _remote) = MemoryConnector::new("chat");
    let err = TestBot::new()
        .skill(announce().crontab("every monday"))
        .connector(chat)
        .start()
        .err()
        .unwrap();
    assert!(
        matches!(&err, BotError::Crontab { skill, .. } if skill == "announce"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("skill `announce`: invalid crontab: `every monday`"),
        "{err}"
    );
    let (chat, _remote) = MemoryConnector::new("chat");
    let spec = connector_core::skill::CrontabSpec::new("0 9 * * *").timezone("Europe/Nowhere");
    let err = TestBot::new()
        .skill(announce().crontab_with(spec))
        .connector(chat)
        .start()
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "skill `announce`: invalid crontab: unknown time zone `Europe/Nowhere`; expected an IANA name such as `UTC` or `Europe/Paris`"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_the_ticks_and_lets_the_run_in_flight_finish() {
    let (chat, _remote) = MemoryConnector::new("chat");
    let starts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (s, f) = (starts.clone(), finished.clone());
    let mut run = TestBot::new()
        .skill(
            Skill::new("long", move |ctx: SkillContext| {
                let (s, f) = (s.clone(), f.clone());
                async move {
                    s.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    ctx.respond("started").await?;
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok::<(), SendError>(())
                }
            })
            .crontab("* * * * * *"),
        )
        .connector(chat)
        .runtime(|r| r.shutdown_timeout = Duration::from_secs(120))
        .start()
        .unwrap();
    // The first tick comes within a second; its run takes 30 s.
    assert!(run.sent_within(Duration::from_millis(1500)).await.len() == 1);
    let stop = tokio::time::Instant::now();
    run.shutdown().await.unwrap();
    let took = stop.elapsed();
    let load = |a: &std::sync::atomic::AtomicUsize| a.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        load(&starts),
        1,
        "the ticks during the run were skipped, none after"
    );
    assert_eq!(load(&finished), 1, "the run in flight finished");
    // The drain waited for the run (about 29 s left), not for the 120 s shutdown timeout:
    // the schedule itself stopped at once.
    assert!(took >= Duration::from_secs(28), "{took:?}");
    assert!(took < Duration::from_secs(60), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn failing_panicking_timed_out_and_skipped_runs_are_logged_with_the_skills_name() {
    let (logs, _guard) = capture(tracing::Level::DEBUG);
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    let (chat, _remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .runtime(|r| r.skill_timeout = Some(Duration::from_secs(90)))
        .skill(
            Skill::new("nightly", move |_ctx: SkillContext| {
                let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    match n {
                        0 => Err(std::io::Error::other("backup host unreachable")),
                        1 => panic!("index out of range"),
                        _ => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            Ok(())
                        }
                    }
                }
            })
            .crontab("* * * * *"),
        )
        .connector(chat)
        .start()
        .unwrap();
    // Runs at minutes 1 and 2 fail at once; the third runs into the 90 s timeout, and the
    // tick in between is skipped; the one after that runs again (a fourth run).
    let sent = run.sent_within(Duration::from_secs(5 * 60 + 30)).await;
    assert!(sent.is_empty(), "no error reply on a tick: {sent:?}");
    run.shutdown().await.unwrap();
    let text = logs.text();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("Exception when running skill 'nightly'"))
        .collect();
    // The schedule follows the wall clock's minutes: depending on the second the test
    // starts at, the fourth run is still in flight at shutdown, and its 90 s run out while
    // the drain waits for it (a fourth error, also a timeout).
    assert!(
        errors.len() == 3 || (errors.len() == 4 && errors[3].contains("timed out after 90s")),
        "{text}"
    );
    assert!(
        errors[0].contains("backup host unreachable"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("panicked: index out of range"),
        "{}",
        errors[1]
    );
    assert!(errors[2].contains("timed out after 90s"), "{}", errors[2]);
    assert!(
        text.lines().any(|l| l.contains("DEBUG")
            && l.contains("skill=nightly")
            && l.contains("the previous run of this skill is still running")),
        "{text}"
    );
    assert!(
        runs.load(std::sync::atomic::Ordering::SeqCst) >= 4,
        "the schedule went on"
    );
}
