//! The in-process path, one round trip per iteration: a connector hands a message to the bot
//! (parse), the echo skill matches and responds, and the reply is dispatched back through the
//! connector's `send`. A [`MemoryConnector`] stands in for the chat service.
//!
//! `echo_round_trip/current_thread` and `/multi_thread` inject from outside the runtime (the
//! benchmark's thread), so on the multi-thread runtime every round trip crosses threads twice;
//! `/multi_thread_in_task` injects from a task on the runtime, as a connector does;
//! `/multi_thread_conversation` parses from such a task through a [`Conversation`], which
//! runs the skill in that task (as the websocket connector's sockets do).
//!
//! `cargo bench -p connector-tests --bench in_process`

use std::hint::black_box;
use std::time::Duration;

use connector_core::prelude::*;
use connector_core::testing::{MemoryConnector, fast_runtime};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

/// A running bot with one memory connector and the given skills.
struct Harness {
    bot: Bot,
    remote: connector_core::testing::MemoryRemote,
    sent: mpsc::UnboundedReceiver<AnyEvent>,
    stop: Option<oneshot::Sender<()>>,
}

fn start(rt: &Runtime, skills: Vec<Skill>) -> Harness {
    let (chat, remote) = MemoryConnector::new("chat");
    let mut builder = BotBuilder::new().instance(chat).runtime(fast_runtime());
    for skill in skills {
        builder = builder.skill(skill);
    }
    let runner = builder.build_bare().expect("the bot builds");
    let bot = runner.bot();
    let sent = remote.take_sent().expect("the sent queue");
    let (stop, stop_rx) = oneshot::channel::<()>();
    rt.spawn(runner.run_until(async move {
        let _ = stop_rx.await;
    }));
    Harness {
        bot,
        remote,
        sent,
        stop: Some(stop),
    }
}

impl Harness {
    /// Injects `text` and waits for the reply the bot sends back.
    async fn round_trip(&mut self, text: &str) -> AnyEvent {
        self.remote
            .inject(Message::new(text).user("ann").target("lobby"));
        tokio::time::timeout(Duration::from_secs(5), self.sent.recv())
            .await
            .expect("a reply within 5 s")
            .expect("the bot is running")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("in_process");
    for (name, rt) in [
        (
            "echo_round_trip/current_thread",
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
        ),
        (
            "echo_round_trip/multi_thread",
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
        ),
    ] {
        let mut harness = start(&rt, vec![connector_tests::skills::echo()]);
        let reply = rt.block_on(harness.round_trip("hello"));
        assert_eq!(reply.text(), Some("hello"));
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(async { black_box(harness.round_trip("hello").await) }))
        });
        if name.ends_with("multi_thread") {
            // The same round trip, driven from a task on the runtime, as a connector is.
            let mut slot = Some(harness);
            group.bench_function("echo_round_trip/multi_thread_in_task", |b| {
                b.iter_custom(|iters| {
                    let mut h = slot.take().expect("the harness");
                    let task = rt.spawn(async move {
                        let start = std::time::Instant::now();
                        for _ in 0..iters {
                            black_box(h.round_trip("hello").await);
                        }
                        (h, start.elapsed())
                    });
                    let (h, elapsed) = rt.block_on(task).expect("the task");
                    slot = Some(h);
                    elapsed
                })
            });
            // From such a task, through a conversation the task runs itself. Another target
            // than the round trips above, whose conversation still has its own task.
            group.bench_function("echo_round_trip/multi_thread_conversation", |b| {
                b.iter_custom(|iters| {
                    let mut h = slot.take().expect("the harness");
                    let task = rt.spawn(async move {
                        let mut conversation = Conversation::new(h.bot.clone());
                        let start = std::time::Instant::now();
                        for _ in 0..iters {
                            let hello = Message::new("hello")
                                .user("ann")
                                .target("lobby-2")
                                .connector("chat");
                            conversation.parse(hello).await;
                            std::future::poll_fn(|cx| conversation.poll_run(cx)).await;
                            black_box(h.sent.recv().await.expect("a reply"));
                        }
                        let elapsed = start.elapsed();
                        drop(conversation);
                        (h, elapsed)
                    });
                    let (h, elapsed) = rt.block_on(task).expect("the task");
                    slot = Some(h);
                    elapsed
                })
            });
            harness = slot.take().expect("the harness");
        }
        drop(harness);
        rt.shutdown_timeout(Duration::from_secs(2));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
