//! A conversation run by the task that parses it: where and when its skills run, its order
//! with events other tasks parse for it, backpressure, shutdown, and the hand-over when the
//! task lets it go.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::Id;

use super::*;
use crate::context::SkillContext;
use crate::events::Message;
use crate::model::Event;
use crate::skill::Skill;
use crate::testing::{MemoryConnector, TestBot, TestRun};

const LIMIT: Duration = Duration::from_secs(10);

/// What a skill saw: the text, and the task it ran in.
type Seen = mpsc::UnboundedReceiver<(String, Option<Id>)>;

/// A bot whose one skill waits for a permit of `gate` (if any), then reports the text and
/// its task.
fn start(gate: Option<Arc<Semaphore>>) -> (TestRun, Seen) {
    let (tx, seen) = mpsc::unbounded_channel();
    let skill = Skill::new("note", move |ctx: SkillContext| {
        let tx = tx.clone();
        let gate = gate.clone();
        async move {
            if let Some(gate) = gate {
                gate.acquire().await.expect("gate open").forget();
            }
            let _ = tx.send((ctx.text().to_owned(), tokio::task::try_id()));
        }
    })
    .catchall_messages();
    let run = TestBot::new()
        .connector(MemoryConnector::new("chat").0)
        .skill(skill)
        .start()
        .unwrap();
    (run, seen)
}

fn message(text: &str, target: &str) -> Message {
    Message::new(text).target(target).connector("chat")
}

/// Runs what is queued until nothing is left.
async fn run_all(conversation: &mut Conversation) {
    tokio::time::timeout(LIMIT, poll_fn(|cx| conversation.poll_run(cx)))
        .await
        .expect("the queue ran");
}

/// One call of `poll_run`: whether the queue ran out or a skill waits.
async fn poll_run_once(conversation: &mut Conversation) -> Poll<()> {
    poll_fn(|cx| Poll::Ready(conversation.poll_run(cx))).await
}

/// The next `n` texts seen, with their tasks.
async fn next(seen: &mut Seen, n: usize) -> Vec<(String, Option<Id>)> {
    let mut got = Vec::new();
    while got.len() < n {
        let item = tokio::time::timeout(LIMIT, seen.recv()).await;
        got.push(item.expect("a skill ran").expect("the skill is there"));
    }
    got
}

fn texts(seen: &[(String, Option<Id>)]) -> Vec<&str> {
    seen.iter().map(|(t, _)| t.as_str()).collect()
}

#[tokio::test]
async fn parse_returns_before_the_skill_runs_and_poll_run_runs_it_in_the_callers_task() {
    let (run, mut seen) = start(None);
    let bot = run.bot().clone();
    tokio::spawn(async move {
        let mut conversation = Conversation::new(bot);
        conversation.parse(message("one", "room")).await;
        conversation.parse(message("two", "room")).await;
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(
            seen.try_recv().is_err(),
            "a skill ran before poll_run: the conversation has a task of its own"
        );
        run_all(&mut conversation).await;
        let got = next(&mut seen, 2).await;
        assert_eq!(texts(&got), ["one", "two"]);
        let here = tokio::task::try_id();
        assert!(got.iter().all(|(_, task)| *task == here), "{got:?}");
    })
    .await
    .unwrap();
    run.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_other_tasks_parse_for_it_are_queued_on_it_in_order_and_wake_it() {
    let (run, mut seen) = start(None);
    let bot = run.bot().clone();
    let mut conversation = Conversation::new(bot.clone());
    // Claimed, run, and idle: the next own event would need no lock.
    conversation.parse(message("a", "room")).await;
    run_all(&mut conversation).await;
    // Another task parses for the same conversation: queued on it, not run elsewhere.
    let other = bot.clone();
    tokio::spawn(async move { other.parse(message("b", "room")).await })
        .await
        .unwrap();
    // Then this task's own: it must come after the other's.
    conversation.parse(message("c", "room")).await;
    let driver = tokio::spawn(async move {
        run_all(&mut conversation).await;
        // And one parsed elsewhere while this task waits: it wakes the task.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let other = bot.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            other.parse(message("d", "room")).await;
            let _ = tx.send(());
        });
        let mut woke = false;
        tokio::time::timeout(
            LIMIT,
            poll_fn(|cx| {
                let _ = conversation.poll_run(cx);
                if !woke && rx.poll_recv(cx).is_ready() {
                    woke = true;
                }
                if woke { Poll::Ready(()) } else { Poll::Pending }
            }),
        )
        .await
        .expect("the other task parsed");
        run_all(&mut conversation).await;
        tokio::task::try_id()
    });
    let got = next(&mut seen, 4).await;
    let here = driver.await.unwrap();
    assert_eq!(texts(&got), ["a", "b", "c", "d"]);
    assert!(got[1..].iter().all(|(_, task)| *task == here), "{got:?}");
    run.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_makes_parse_wait_and_run_it_meanwhile() {
    let gate = Arc::new(Semaphore::new(0));
    let (run, mut seen) = start(Some(gate.clone()));
    let bot = run.bot().clone();
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let total = 1 + crate::route::CONVERSATION_QUEUE + 2;
    let driver = tokio::spawn(async move {
        let mut conversation = Conversation::new(bot);
        conversation.parse(message("0", "room")).await;
        // The first event's skill waits at the gate.
        let first = poll_run_once(&mut conversation).await;
        assert!(first.is_pending());
        for i in 1..total {
            conversation.parse(message(&i.to_string(), "room")).await;
            let _ = done_tx.send(i);
        }
        run_all(&mut conversation).await;
    });
    // The queue takes CONVERSATION_QUEUE events behind the running one; the next parse waits.
    let mut parsed = 0;
    while parsed < crate::route::CONVERSATION_QUEUE {
        parsed = tokio::time::timeout(LIMIT, done.recv())
            .await
            .unwrap()
            .unwrap();
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(100), done.recv())
            .await
            .is_err(),
        "parse returned with the queue full"
    );
    gate.add_permits(total);
    let got = next(&mut seen, total).await;
    let expected: Vec<String> = (0..total).map(|i| i.to_string()).collect();
    assert_eq!(texts(&got), expected);
    tokio::time::timeout(LIMIT, driver).await.unwrap().unwrap();
    run.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_until_what_was_queued_has_run() {
    let gate = Arc::new(Semaphore::new(0));
    let (run, mut seen) = start(Some(gate.clone()));
    let bot = run.bot().clone();
    let (queued_tx, queued) = tokio::sync::oneshot::channel();
    // A connector's task: parses five events, then keeps running its conversation.
    let driver = tokio::spawn(async move {
        let mut conversation = Conversation::new(bot);
        for i in 0..5 {
            conversation.parse(message(&i.to_string(), "room")).await;
        }
        let _ = queued_tx.send(());
        poll_fn(|cx| {
            let _ = conversation.poll_run(cx);
            Poll::<()>::Pending
        })
        .await;
    });
    queued.await.unwrap();
    let shutdown = tokio::spawn(run.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown did not wait for the queue"
    );
    gate.add_permits(5);
    tokio::time::timeout(LIMIT, shutdown)
        .await
        .expect("shutdown ended")
        .unwrap()
        .unwrap();
    let got = next(&mut seen, 5).await;
    assert_eq!(texts(&got), ["0", "1", "2", "3", "4"]);
    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_it_hands_the_run_and_the_queue_to_a_task() {
    let gate = Arc::new(Semaphore::new(0));
    let (run, mut seen) = start(Some(gate.clone()));
    let bot = run.bot().clone();
    let here = tokio::spawn(async move {
        let mut conversation = Conversation::new(bot);
        for text in ["x", "y", "z"] {
            conversation.parse(message(text, "room")).await;
        }
        // "x" starts and waits at the gate; "y" and "z" stay queued.
        let first = poll_run_once(&mut conversation).await;
        assert!(first.is_pending());
        drop(conversation);
        tokio::task::try_id()
    })
    .await
    .unwrap();
    gate.add_permits(3);
    let got = next(&mut seen, 3).await;
    assert_eq!(texts(&got), ["x", "y", "z"]);
    assert!(got.iter().all(|(_, task)| *task != here), "{got:?}");
    // The task keeps the conversation (until it is idle): a new handle's event for it goes
    // there, without this handle's poll_run.
    let mut again = Conversation::new(run.bot().clone());
    again.parse(message("w", "room")).await;
    gate.add_permits(1);
    assert_eq!(texts(&next(&mut seen, 1).await), ["w"]);
    run.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_other_conversations_go_to_their_own_tasks() {
    let (run, mut seen) = start(None);
    let bot = run.bot().clone();
    let here = tokio::spawn(async move {
        let mut conversation = Conversation::new(bot);
        conversation.parse(message("mine", "room")).await;
        conversation.parse(message("theirs", "elsewhere")).await;
        // Only the other conversation's event runs without poll_run.
        let got = next(&mut seen, 1).await;
        assert_eq!(texts(&got), ["theirs"]);
        assert_ne!(got[0].1, tokio::task::try_id());
        run_all(&mut conversation).await;
        assert_eq!(texts(&next(&mut seen, 1).await), ["mine"]);
    });
    here.await.unwrap();
    run.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_panics_and_timeouts_in_the_callers_task_get_the_error_reply_in_order() {
    let (tx, mut seen) = mpsc::unbounded_channel::<String>();
    let note = Skill::new("note", move |ctx: SkillContext| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(ctx.text().to_owned());
        }
    })
    .catchall_messages();
    let boom = Skill::new("boom", |ctx: SkillContext| async move {
        if ctx.text() == "boom" {
            panic!("boom");
        }
    })
    .regex("^boom");
    let fail = Skill::new("fail", |_ctx: SkillContext| async move {
        Err::<(), crate::BoxError>("no".into())
    })
    .regex("^fail");
    let slow = Skill::new("slow", |_ctx: SkillContext| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .regex("^slow");
    let (chat, _remote) = MemoryConnector::new("chat");
    let mut run = TestBot::new()
        .connector(chat)
        .skill(note)
        .skill(boom)
        .skill(fail)
        .skill(slow)
        .runtime(|r| {
            r.skill_timeout = Some(Duration::from_millis(100));
            r.error_reply = Some("sorry".into());
        })
        .start()
        .unwrap();
    let mut conversation = Conversation::new(run.bot().clone());
    for text in ["boom", "fail", "slow", "ok"] {
        conversation.parse(message(text, "room")).await;
    }
    run_all(&mut conversation).await;
    for _ in 0..3 {
        let reply = run.next_sent().await.expect("an error reply");
        assert_eq!(reply.text(), Some("sorry"));
        assert_eq!(reply.meta().target.as_deref(), Some("room"));
    }
    // "ok" ran after the three failures had been answered (the queue's order).
    assert_eq!(seen.try_recv().ok().as_deref(), Some("ok"));
    // Shutdown waits for a conversation still held (and no longer polled) to run its
    // queue: let it go first.
    drop(conversation);
    run.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skill_that_waits_holds_the_skills_after_it_on_the_same_event() {
    let (tx, mut seen) = mpsc::unbounded_channel::<String>();
    let first_tx = tx.clone();
    let always = Skill::new("always", move |ctx: SkillContext| {
        let tx = first_tx.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.send(format!("always:{}", ctx.text()));
        }
    })
    .always();
    let two = Skill::new("two", move |ctx: SkillContext| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(format!("regex:{}", ctx.text()));
        }
    })
    .regex("^two");
    let run = TestBot::new()
        .connector(MemoryConnector::new("chat").0)
        .skill(always)
        .skill(two)
        .start()
        .unwrap();
    let mut conversation = Conversation::new(run.bot().clone());
    conversation.parse(message("two", "room")).await;
    conversation.parse(message("three", "room")).await;
    run_all(&mut conversation).await;
    let mut got = Vec::new();
    while let Ok(text) = seen.try_recv() {
        // (The always skill also sees the bot's own lifecycle events, which have no text.)
        if text != "always:" {
            got.push(text);
        }
    }
    assert_eq!(got, ["always:two", "regex:two", "always:three"]);
    drop(conversation);
    run.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_while_runs_the_skills_while_it_awaits_something_else() {
    let gate = Arc::new(Semaphore::new(0));
    let (run, mut seen) = start(Some(gate.clone()));
    let mut conversation = Conversation::new(run.bot().clone());
    conversation.parse(message("one", "room")).await;
    conversation.parse(message("two", "room")).await;
    // The first skill waits at the gate; the gate opens while the task awaits something
    // else, and both skills run before that ends.
    assert!(poll_run_once(&mut conversation).await.is_pending());
    let opener = gate.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        opener.add_permits(2);
    });
    conversation
        .run_while(tokio::time::sleep(Duration::from_millis(300)))
        .await;
    let mut got = Vec::new();
    while let Ok((text, _)) = seen.try_recv() {
        got.push(text);
    }
    assert_eq!(got, ["one", "two"]);
    drop(conversation);
    run.shutdown().await.unwrap();
}
