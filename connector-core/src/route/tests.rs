//! The conversations' lifetime: an idle one ends (its task and its entry), an active one
//! keeps its task, a new event after the end starts a new one.

use tokio::sync::mpsc;

use super::*;
use crate::context::SkillContext;
use crate::events::Message;
use crate::model::Event;
use crate::skill::{Skill, Skills};
use crate::testing::{MemoryConnector, TestBot, TestRun};

/// A bot to run skills with, and a router whose one skill takes `delay`, then reports the
/// text it handled on `handled`.
struct Setup {
    _run: TestRun,
    bot: Bot,
    handled: mpsc::UnboundedReceiver<String>,
    router: Router,
}

fn setup(delay: Duration) -> Setup {
    let run = TestBot::new()
        .connector(MemoryConnector::new("chat").0)
        .start()
        .unwrap();
    let bot = run.bot().clone();
    let (seen, handled) = mpsc::unbounded_channel();
    let skill = Skill::new("note", move |ctx: SkillContext| {
        let seen = seen.clone();
        async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let _ = seen.send(ctx.text().to_owned());
        }
    })
    .catchall_messages();
    let runner = SkillRunner {
        skills: Skills::compile(vec![(skill, None)]).unwrap(),
        timeout: None,
        error_reply: None,
    };
    Setup {
        _run: run,
        bot,
        handled,
        router: Router::new(runner, TaskTracker::new()),
    }
}

fn message(text: &str, target: &str) -> AnyEvent {
    Message::new(text).target(target).connector("chat").into()
}

/// How many conversations have an entry.
fn entries(router: &Router) -> usize {
    router.shared.shards.iter().map(|s| s.lock().len()).sum()
}

#[tokio::test(start_paused = true)]
async fn an_idle_conversation_ends_and_an_active_one_keeps_its_task() {
    let mut t = setup(Duration::ZERO);

    assert!(t.router.route(&t.bot, message("a0", "a")).is_none());
    assert!(t.router.route(&t.bot, message("b0", "b")).is_none());
    let mut first = vec![
        t.handled.recv().await.unwrap(),
        t.handled.recv().await.unwrap(),
    ];
    first.sort();
    assert_eq!(first, ["a0", "b0"]);
    assert_eq!(t.router.tracker.len(), 2);

    // `a` gets an event every 3 s for 30 s; `b` none: it ends within twice IDLE, `a` never.
    for i in 1..=10 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            t.router
                .route(&t.bot, message(&format!("a{i}"), "a"))
                .is_none()
        );
        assert_eq!(t.handled.recv().await.unwrap(), format!("a{i}"));
    }
    assert_eq!(t.router.tracker.len(), 1, "b's task ended, a's did not");
    assert_eq!(entries(&t.router), 1);

    tokio::time::sleep(IDLE * 2 + Duration::from_secs(1)).await;
    assert_eq!(t.router.tracker.len(), 0, "a's task ended once idle");
    assert_eq!(entries(&t.router), 0);

    // The next event starts the conversation again.
    assert!(t.router.route(&t.bot, message("a-again", "a")).is_none());
    assert_eq!(t.handled.recv().await.unwrap(), "a-again");
    assert_eq!(t.router.tracker.len(), 1);
    t.router.close();
    t.router.tracker.close();
    t.router.tracker.wait().await;
    assert_eq!(entries(&t.router), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_queued_while_a_skill_runs_are_all_handled_in_order() {
    let mut t = setup(Duration::ZERO);
    // Bursts and single events, so the task both finds events queued after a run and waits
    // with its waker registered when it took the last one.
    let mut sent = 0;
    for burst in [1, 5, 1, 1, 50, 1, 200, 1] {
        for _ in 0..burst {
            if let Some(wait) = t.router.route(&t.bot, message(&sent.to_string(), "a")) {
                wait.await;
            }
            sent += 1;
        }
        tokio::task::yield_now().await;
    }
    for expected in 0..sent {
        let got = tokio::time::timeout(Duration::from_secs(10), t.handled.recv())
            .await
            .expect("an event was not handled")
            .unwrap();
        assert_eq!(got, expected.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_a_run_still_handles_the_queue_and_ends_the_task() {
    let mut t = setup(Duration::from_millis(200));
    for text in ["1", "2", "3"] {
        assert!(t.router.route(&t.bot, message(text, "a")).is_none());
    }
    // Closed while the first event runs: the task takes the last one after shutdown began,
    // when nothing will wake it again, so it must not wait for a wake-up.
    tokio::time::sleep(Duration::from_millis(50)).await;
    t.router.close();
    t.router.tracker.close();
    tokio::time::timeout(Duration::from_secs(5), t.router.tracker.wait())
        .await
        .expect("the conversation's task did not end after shutdown");
    for text in ["1", "2", "3"] {
        assert_eq!(t.handled.recv().await.unwrap(), text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_queued_while_a_skill_waits_is_handled() {
    let mut t = setup(Duration::from_millis(100));
    // The first event empties the queue (the task's waker is registered as it takes it);
    // the second comes while the skill waits on its timer, and its wake-up is spent on the
    // skill's run: the task must look at its queue again afterwards.
    assert!(t.router.route(&t.bot, message("1", "a")).is_none());
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(t.router.route(&t.bot, message("2", "a")).is_none());
    for text in ["1", "2"] {
        let got = tokio::time::timeout(Duration::from_secs(5), t.handled.recv())
            .await
            .expect("an event queued during a waiting run was never handled");
        assert_eq!(got.unwrap(), text);
    }
}
