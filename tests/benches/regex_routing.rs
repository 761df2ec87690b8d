//! Regex routing: a bot with 10, 100 and 1000 regex skills, each with a distinct expression;
//! the message matches exactly one of them, in the middle of the list. One iteration is a
//! whole round trip: parse, match every skill, run the matching one, dispatch its reply.
//!
//! `cargo bench -p connector-tests --bench regex_routing`

use std::hint::black_box;
use std::time::Duration;

use connector_core::prelude::*;
use connector_core::testing::{MemoryConnector, MemoryRemote, fast_runtime};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokio::sync::{mpsc, oneshot};

/// Skill `i` answers `deploy-<i> <target>` (and nothing else) with `deployed <target>`.
fn skill(i: usize) -> Skill {
    Skill::new(format!("deploy{i}"), |ctx: SkillContext| async move {
        let target = ctx.entity("target").unwrap_or("?").to_owned();
        ctx.respond(format!("deployed {target}")).await
    })
    .regex(format!(r"^deploy-{i} (?P<target>[a-z]+)$"))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("regex_routing");
    for skills in [10usize, 100, 1000] {
        let (chat, remote): (_, MemoryRemote) = MemoryConnector::new("chat");
        let mut builder = BotBuilder::new().instance(chat).runtime(fast_runtime());
        for i in 0..skills {
            builder = builder.skill(skill(i));
        }
        let runner = builder.build_bare().expect("the bot builds");
        let mut sent: mpsc::UnboundedReceiver<AnyEvent> =
            remote.take_sent().expect("the sent queue");
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task = rt.spawn(runner.run_until(async move {
            let _ = stop_rx.await;
        }));
        let text = format!("deploy-{} prod", skills / 2);
        let mut round_trip = || {
            rt.block_on(async {
                remote.inject(Message::new(text.as_str()).user("ann").target("ops"));
                tokio::time::timeout(Duration::from_secs(5), sent.recv())
                    .await
                    .expect("a reply within 5 s")
                    .expect("the bot is running")
            })
        };
        assert_eq!(round_trip().text(), Some("deployed prod"));
        group.bench_with_input(BenchmarkId::new("skills", skills), &skills, |b, _| {
            b.iter(|| black_box(round_trip()))
        });
        let _ = stop.send(());
        let _ = rt.block_on(task);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
