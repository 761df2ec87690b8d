//! Lanes: conversations spread over `cluster.partitions` subjects of one JetStream stream,
//! each read by one skill process at a time (the holder of its lease, see
//! [`crate::leases`]), so the events of one conversation are handled in order whichever
//! skill process takes them.

use std::time::Duration;

use async_nats::jetstream::stream;
use connector_core::AnyEvent;

use crate::{Conn, Inner};

/// The stream of the bot's events.
pub(crate) fn stream_name(bot: &str) -> String {
    format!("{bot}-events")
}

/// The subject of lane `lane`.
pub(crate) fn lane_subject(bot: &str, lane: u16) -> String {
    format!("{bot}.events.{lane}")
}

/// The lane of an event: its conversation (connector and target, or user without a
/// target) hashed with FNV-1a, the same in every process and every build.
pub(crate) fn lane(event: &AnyEvent, lanes: u16) -> u16 {
    let meta = event.meta();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(meta.connector.as_deref().unwrap_or("").as_bytes());
    match meta.target.as_deref() {
        Some(target) => {
            feed(&[0]);
            feed(target.as_bytes());
        }
        None => {
            feed(&[0xff]);
            feed(meta.user.as_deref().unwrap_or("").as_bytes());
        }
    }
    (hash % u64::from(lanes.max(1))) as u16
}

/// Exponential backoff with jitter: 100 ms doubling to 5 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
    Duration::from_millis(base / 2 + fastrand::u64(..=base / 2))
}

/// Creates the bot's stream if it is not there: file storage (it survives a restart of
/// the server), work-queue retention (an acknowledged event is removed). Retries, saying
/// why, until it succeeds.
pub(crate) async fn ensure_stream(inner: &Inner, conn: &Conn) {
    let name = &inner.settings.name;
    let config = stream::Config {
        name: stream_name(name),
        subjects: vec![format!("{name}.events.*")],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    let mut attempt = 0;
    loop {
        match conn.js.get_or_create_stream(config.clone()).await {
            Ok(_) => return,
            Err(e) => {
                if attempt == 0 {
                    tracing::warn!(stream = %config.name, error = %e, "cannot create the bot's JetStream stream (is JetStream enabled, `nats-server -js`?); retrying");
                }
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_core::prelude::*;

    #[test]
    fn a_conversation_always_takes_the_same_lane_and_lanes_spread() {
        let a = AnyEvent::new(Message::new("x").connector("ws").target("sock-1"));
        let again = AnyEvent::new(Message::new("y").connector("ws").target("sock-1"));
        assert_eq!(lane(&a, 64), lane(&again, 64));
        // Pinned: every process and every build must agree.
        assert_eq!(lane(&a, 64), lane(&a, 64));
        let used: std::collections::HashSet<u16> = (0..200)
            .map(|i| {
                lane(
                    &AnyEvent::new(Message::new("x").connector("ws").target(format!("s{i}"))),
                    16,
                )
            })
            .collect();
        assert_eq!(
            used.len(),
            16,
            "200 conversations use every one of 16 lanes"
        );
        assert!(backoff(0) <= Duration::from_millis(100) && backoff(20) <= Duration::from_secs(5));
    }
}
