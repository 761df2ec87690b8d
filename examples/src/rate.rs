//! Rate limits: token buckets that make the caller wait instead of dropping anything (the
//! websocket connector's inbound limits, the IRC connector's send limit).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

/// A token bucket: `burst` at once, then `per-second` a second.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RateLimit {
    /// How many may pass back to back.
    pub burst: u32,
    /// How many a second after the burst.
    pub per_second: f64,
}

/// A bucket's state. Taking a token may put it in debt: the caller then waits for the debt,
/// so frames are read later (TCP pushes back on the client) but none is dropped.
#[derive(Debug)]
pub(crate) struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst.max(1)),
            last: Instant::now(),
        }
    }

    /// Takes one token; returns how long the caller must wait before using it.
    pub(crate) fn take(&mut self, now: Instant) -> Duration {
        let rate = self.limit.per_second.max(0.001);
        let burst = f64::from(self.limit.burst.max(1));
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(burst) - 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

/// The limits one socket obeys: its own bucket and the server-wide one.
pub(crate) struct Limits {
    pub(crate) own: Option<Bucket>,
    pub(crate) global: Option<Arc<Mutex<Bucket>>>,
}

impl Limits {
    /// Waits until the next frame may be handled.
    pub(crate) async fn admit(&mut self) {
        if self.own.is_none() && self.global.is_none() {
            return; // the default: no clock read on the per-frame path
        }
        let now = Instant::now();
        let mut wait = self.own.as_mut().map_or(Duration::ZERO, |b| b.take(now));
        if let Some(global) = &self.global {
            let g = match global.lock() {
                Ok(mut b) => b.take(now),
                Err(p) => p.into_inner().take(now),
            };
            wait = wait.max(g);
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut b = Bucket::new(RateLimit {
            burst: 2,
            per_second: 10.0,
        });
        let t0 = b.last;
        assert_eq!(b.take(t0), Duration::ZERO);
        assert_eq!(b.take(t0), Duration::ZERO);
        let w = b.take(t0);
        assert!((w.as_secs_f64() - 0.1).abs() < 1e-6, "{w:?}");
        let w = b.take(t0);
        assert!((w.as_secs_f64() - 0.2).abs() < 1e-6, "{w:?}");
        // After a second the bucket is full again (capped at the burst).
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(b.take(t1), Duration::ZERO);
    }
}
