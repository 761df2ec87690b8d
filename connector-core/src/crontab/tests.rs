//! The schedule computation on fixed times, and the schedule loop on tokio's paused clock
//! with an injected "now".

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::clock::Clock;
use super::run::{Launcher, Schedules};
use super::schedule::{Schedule, parse_timezone};
use super::{CrontabSpec, Tick};
use crate::bot::Bot;
use crate::config::RuntimeConfig;
use crate::connector::DynConnector;
use crate::context::SkillContext;
use crate::hub::Hub;
use crate::skill::{Skill, Skills};
use crate::testing::MemoryConnector;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap()
}

fn next(expr: &str, after: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    Schedule::parse(expr)
        .unwrap()
        .next_after(after, tz)
        .unwrap()
}

#[test]
fn every_five_minutes_lands_on_multiples_of_five_strictly_after_now() {
    let tz = Tz::UTC;
    assert_eq!(
        next("*/5 * * * *", utc(2026, 1, 5, 12, 3, 10), tz),
        utc(2026, 1, 5, 12, 5, 0)
    );
    assert_eq!(
        next("*/5 * * * *", utc(2026, 1, 5, 12, 5, 0), tz),
        utc(2026, 1, 5, 12, 10, 0)
    );
    let half_past = utc(2026, 1, 5, 12, 4, 59) + chrono::Duration::milliseconds(500);
    assert_eq!(
        next("*/5 * * * *", half_past, tz),
        utc(2026, 1, 5, 12, 5, 0)
    );
}

#[test]
fn a_sixth_field_written_first_is_seconds() {
    let tz = Tz::UTC;
    assert_eq!(
        next("*/10 * * * * *", utc(2026, 1, 5, 12, 0, 5), tz),
        utc(2026, 1, 5, 12, 0, 10)
    );
    // Second 30 of minute 0 of every hour.
    assert_eq!(
        next("30 0 * * * *", utc(2026, 1, 5, 12, 0, 5), tz),
        utc(2026, 1, 5, 12, 0, 30)
    );
    assert_eq!(
        next("30 0 * * * *", utc(2026, 1, 5, 12, 0, 30), tz),
        utc(2026, 1, 5, 13, 0, 30)
    );
}

#[test]
fn the_expression_is_read_in_its_time_zone_across_seasons() {
    let paris = parse_timezone("Europe/Paris").unwrap();
    // 09:00 in Paris is 07:00 UTC in summer (CEST) and 08:00 UTC in winter (CET).
    assert_eq!(
        next("0 9 * * *", utc(2026, 7, 1, 0, 0, 0), paris),
        utc(2026, 7, 1, 7, 0, 0)
    );
    assert_eq!(
        next("0 9 * * *", utc(2026, 1, 5, 0, 0, 0), paris),
        utc(2026, 1, 5, 8, 0, 0)
    );
    assert_eq!(
        next("0 9 * * *", utc(2026, 1, 5, 0, 0, 0), Tz::UTC),
        utc(2026, 1, 5, 9, 0, 0)
    );
}

#[test]
fn a_time_in_the_spring_gap_runs_at_the_first_time_after_it() {
    let paris = parse_timezone("Europe/Paris").unwrap();
    // 2026-03-29: clocks go from 02:00 to 03:00 in Paris; 02:30 does not exist.
    let at = next("30 2 * * *", utc(2026, 3, 28, 23, 0, 0), paris);
    assert_eq!(at, utc(2026, 3, 29, 1, 0, 0)); // 03:00 CEST
    assert_eq!(next("30 2 * * *", at, paris), utc(2026, 3, 30, 0, 30, 0)); // 02:30 CEST
}

#[test]
fn the_repeated_autumn_hour_runs_once_and_time_never_goes_back() {
    let paris = parse_timezone("Europe/Paris").unwrap();
    // 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET; 02:30 happens twice.
    let first = next("30 2 * * *", utc(2026, 10, 24, 22, 0, 0), paris);
    assert_eq!(first, utc(2026, 10, 25, 0, 30, 0)); // the first 02:30 (CEST)
    assert_eq!(
        next("30 2 * * *", first, paris),
        utc(2026, 10, 26, 1, 30, 0)
    );
    // Starting inside the second 02:xx hour never yields a time already past.
    let inside = utc(2026, 10, 25, 1, 10, 0); // 02:10 CET
    let n = next("*/5 * * * *", inside, paris);
    assert!(n > inside, "{n} is not after {inside}");
    // Every-5-minutes through the change: strictly increasing, never more than an hour apart.
    let mut t = utc(2026, 10, 24, 23, 50, 0);
    for _ in 0..40 {
        let n = next("*/5 * * * *", t, paris);
        assert!(
            n > t && n - t <= chrono::Duration::minutes(65),
            "{t} -> {n}"
        );
        t = n;
    }
}

#[test]
fn day_of_month_and_weekday_must_both_match_as_in_opsdroid() {
    // Friday the 13th: the next after 2026-01-01 is 2026-02-13.
    assert_eq!(
        next("0 0 13 * fri", utc(2026, 1, 1, 0, 0, 0), Tz::UTC),
        utc(2026, 2, 13, 0, 0, 0)
    );
}

#[test]
fn invalid_expressions_and_time_zones_say_what_is_wrong() {
    let err = Schedule::parse("61 * * * *").unwrap_err();
    assert!(
        err.contains("`61 * * * *` is not a valid crontab expression"),
        "{err}"
    );
    let err = Schedule::parse("* * *").unwrap_err();
    assert!(err.contains("has 3 field(s); expected 5"), "{err}");
    let err = Schedule::parse("0 0 31 2 *").unwrap_err();
    assert!(err.contains("never matches"), "{err}");
    let err = parse_timezone("Mars/Olympus").unwrap_err();
    assert!(err.contains("unknown time zone `Mars/Olympus`"), "{err}");
    assert!(Schedule::parse("@hourly").is_ok());
}

/// What the test skill saw of one run: when it started on tokio's clock, and its tick.
type Seen = (Instant, Tick);

/// A bot with one memory connector and `skills`, whose schedules start at crontab time
/// `now` (on tokio's clock from then on).
fn start(skills: Vec<Skill>, default_tz: Option<Tz>, now: DateTime<Utc>) -> (Launcher, Arc<Hub>) {
    let (chat, _remote) = MemoryConnector::new("chat");
    let connectors: Vec<Arc<dyn DynConnector>> = vec![Arc::new(chat)];
    let list = || skills.iter().cloned().map(|s| (s, None)).collect();
    let mut schedules = Schedules::compile(&Skills::compile(list()).unwrap()).unwrap();
    schedules.set_default_timezone(default_tz);
    let hub = Arc::new(Hub::new(
        connectors,
        Skills::compile(list()).unwrap(),
        RuntimeConfig::default(),
        None,
    ));
    let bot = Bot::new(hub.clone());
    let launcher = Launcher::new(&bot, &hub);
    schedules.start_with(&launcher, &Clock::starting_at(now));
    (launcher, hub)
}

/// A skill that reports each run and then takes `busy` to finish.
fn recording(name: &str, busy: Duration, seen: mpsc::UnboundedSender<Seen>) -> Skill {
    Skill::new(name, move |ctx: SkillContext| {
        let seen = seen.clone();
        async move {
            let tick = ctx.event().downcast_ref::<Tick>().cloned().unwrap();
            let _ = seen.send((Instant::now(), tick));
            tokio::time::sleep(busy).await;
        }
    })
}

async fn take(rx: &mut mpsc::UnboundedReceiver<Seen>, n: usize) -> Vec<Seen> {
    let mut out = Vec::new();
    for _ in 0..n {
        let got = tokio::time::timeout(Duration::from_secs(24 * 3600), rx.recv()).await;
        out.push(got.expect("no run within a day").expect("channel closed"));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn fires_at_each_fifth_minute_on_the_paused_clock() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let begin = Instant::now();
    let skill = recording("five", Duration::ZERO, tx).crontab("*/5 * * * *");
    let (launcher, _hub) = start(vec![skill], None, utc(2026, 1, 5, 12, 3, 30));
    let runs = take(&mut rx, 3).await;
    let scheduled: Vec<_> = runs.iter().map(|(_, t)| t.scheduled).collect();
    assert_eq!(
        scheduled,
        [
            utc(2026, 1, 5, 12, 5, 0),
            utc(2026, 1, 5, 12, 10, 0),
            utc(2026, 1, 5, 12, 15, 0)
        ]
    );
    let offsets: Vec<_> = runs
        .iter()
        .map(|(at, _)| at.duration_since(begin).as_secs())
        .collect();
    assert_eq!(offsets, [90, 390, 690]);
    assert_eq!(runs[0].1.expression, "*/5 * * * *");
    assert_eq!(runs[0].1.timezone, Tz::UTC);
    launcher.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn the_default_time_zone_and_a_specs_own_are_respected() {
    let paris = parse_timezone("Europe/Paris").unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let begin = Instant::now();
    let in_default = recording("paris", Duration::ZERO, tx.clone()).crontab("0 9 * * *");
    let own = recording("new-york", Duration::ZERO, tx)
        .crontab_with(CrontabSpec::new("0 9 * * *").timezone("America/New_York"));
    // 06:59 UTC in July: 09:00 Paris (CEST) is one minute away, 09:00 New York (EDT) 6h01.
    let (launcher, _hub) = start(
        vec![in_default, own],
        Some(paris),
        utc(2026, 7, 1, 6, 59, 0),
    );
    let runs = take(&mut rx, 2).await;
    assert_eq!(runs[0].1.timezone, paris);
    assert_eq!(runs[0].1.scheduled, utc(2026, 7, 1, 7, 0, 0));
    assert_eq!(runs[0].1.local().format("%H:%M").to_string(), "09:00");
    assert_eq!(runs[0].0.duration_since(begin).as_secs(), 60);
    assert_eq!(runs[1].1.timezone.name(), "America/New_York");
    assert_eq!(runs[1].1.scheduled, utc(2026, 7, 1, 13, 0, 0));
    assert_eq!(runs[1].0.duration_since(begin).as_secs(), 6 * 3600 + 60);
    launcher.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_tick_while_the_previous_run_still_runs_is_skipped_not_queued() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Every minute, each run takes 90 s: the tick one minute after a start is skipped.
    let skill = recording("slow", Duration::from_secs(90), tx).crontab("* * * * *");
    let (launcher, _hub) = start(vec![skill], None, utc(2026, 1, 5, 12, 0, 30));
    let runs = take(&mut rx, 3).await;
    let minutes: Vec<_> = runs
        .iter()
        .map(|(_, t)| t.scheduled.format("%H:%M").to_string())
        .collect();
    assert_eq!(minutes, ["12:01", "12:03", "12:05"]);
    launcher.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_panicking_or_failing_skill_keeps_its_schedule() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let skill = Skill::new("flaky", move |_ctx: SkillContext| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if n.is_multiple_of(2) {
                panic!("run {n} broke");
            }
            Err::<(), _>(std::io::Error::other(format!("run {n} failed")))
        }
    })
    .crontab("* * * * *");
    let (launcher, _hub) = start(vec![skill], None, utc(2026, 1, 5, 12, 0, 30));
    tokio::time::sleep(Duration::from_secs(4 * 60)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    launcher.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_the_ticks_and_the_run_in_flight_finishes() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let finished = Arc::new(AtomicUsize::new(0));
    let done = finished.clone();
    let skill = Skill::new("long", move |_ctx: SkillContext| {
        let (tx, done) = (tx.clone(), done.clone());
        async move {
            let _ = tx.send(());
            tokio::time::sleep(Duration::from_secs(30)).await;
            done.fetch_add(1, Ordering::SeqCst);
        }
    })
    .crontab("* * * * *");
    let (launcher, _hub) = start(vec![skill], None, utc(2026, 1, 5, 12, 0, 50));
    tokio::time::timeout(Duration::from_secs(120), rx.recv())
        .await
        .unwrap()
        .unwrap();
    launcher.cancel.cancel();
    launcher.tracker.close();
    tokio::time::timeout(Duration::from_secs(60), launcher.tracker.wait())
        .await
        .unwrap();
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "the run in flight finished"
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(rx.try_recv().is_err(), "no tick after shutdown began");
}
