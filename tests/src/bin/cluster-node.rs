//! The example bot as one process of a cluster test: `cluster-node --config F --role R`
//! (the `bot` binary's own command line, built here so the tests of this crate can run it),
//! with one skill more: `slow <text>` echoes after `CLUSTER_NODE_SLOW_MS` milliseconds
//! (0 when unset) and logs how many of its runs overlap in this process, and on what. And,
//! when the configuration lists them: `tick`, a crontab skill every second that logs the
//! time it ran for, and `who`, webhook `who`, which answers with the process it ran in
//! (fails on the body `fail`, answers after 3 s to `slow`).

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
    let tick = Skill::new("tick", |ctx: SkillContext| async move {
        if let Some(tick) = ctx.event().downcast_ref::<connector_core::crontab::Tick>() {
            tracing::info!("tick skill: ran for {}", tick.scheduled.to_rfc3339());
        }
        Ok::<(), BoxError>(())
    })
    .crontab("* * * * * *");
    let who = Skill::new("who", |ctx: SkillContext| async move {
        let hook = ctx.webhook().ok_or("not a webhook call")?;
        match &hook.body[..] {
            b"fail" => return Err("asked to fail".into()),
            b"slow" => tokio::time::sleep(Duration::from_secs(3)).await,
            _ => {}
        }
        let pid = std::process::id();
        tracing::info!("who skill: called in process {pid}");
        hook.set_response(connector_core::web::WebhookResponse::text(
            201,
            format!("ran in process {pid}"),
        ));
        Ok::<(), BoxError>(())
    })
    .webhook("who");
    let builder = connector_examples::builder()
        .skill(slow)
        .skill_when_listed(tick)
        .skill_when_listed(who);
    connector_examples::cli::main_with(builder, std::env::args().skip(1))
}
