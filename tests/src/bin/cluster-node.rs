//! The example bot as one process of a cluster test: `cluster-node --config F --role R`
//! (the `bot` binary's own command line, built here so the tests of this crate can run it),
//! with one skill more: `slow <text>` echoes after `CLUSTER_NODE_SLOW_MS` milliseconds
//! (0 when unset) and logs how many of its runs overlap in this process, and on what.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use connector_core::prelude::*;

fn main() -> std::process::ExitCode {
    let delay = std::env::var("CLUSTER_NODE_SLOW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::ZERO, Duration::from_millis);
    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    let slow = Skill::new("slow", move |ctx: SkillContext| async move {
        let running = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        let text = ctx.text().to_owned();
        tracing::info!("slow skill: {running} running on [{text}]");
        tokio::time::sleep(delay).await;
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        ctx.respond(text).await
    })
    .regex("^slow ");
    let builder = connector_examples::builder().skill(slow);
    connector_examples::cli::main_with(builder, std::env::args().skip(1))
}
