//! Rate limits for connectors: a token bucket that makes the caller *wait* instead of
//! dropping anything.
//!
//! Chat services throttle clients (IRC servers kick a flooding bot; Matrix answers 429), and a
//! server-side connector may want to slow an over-eager client down. Waiting for a token keeps
//! every message and its order: a connector that reads more slowly lets TCP push back on the
//! client; one that sends more slowly spreads a long reply out.
//!
//! ```
//! use std::time::Duration;
//! use connector_core::rate::{RateLimit, TokenBucket};
//!
//! // In a connector's configuration section: `rate-limit: {burst: 2, per-second: 10}`.
//! let limit: RateLimit = serde_yaml::from_str("{burst: 2, per-second: 10}").unwrap();
//! let mut bucket = TokenBucket::new(limit);
//! let now = tokio::time::Instant::now();
//! assert_eq!(bucket.take(now), Duration::ZERO); // the burst passes at once
//! assert_eq!(bucket.take(now), Duration::ZERO);
//! assert!(bucket.take(now) > Duration::ZERO); // the third waits for the rate
//! ```

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

/// A rate: `burst` at once, then `per-second` a second. Deserializes from
/// `{burst: N, per-second: R}`; other keys are an error (a misspelt key must not silently
/// leave a connector unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RateLimit {
    /// How many may pass back to back.
    pub burst: u32,
    /// How many a second after the burst.
    pub per_second: f64,
}

/// A token bucket's state. Taking a token may put it in debt: the caller then waits for the
/// debt, so nothing is dropped and callers are served in the order they took tokens.
///
/// It reads tokio's clock (so tests on a paused clock are exact) and is not synchronised:
/// wrap it in a `Mutex` to share it between tasks.
#[derive(Debug)]
pub struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket (`burst` tokens; a burst of 0 counts as 1).
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst.max(1)),
            last: Instant::now(),
        }
    }

    /// The rate this bucket enforces.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one token at `now`; returns how long the caller must wait before using it
    /// (`Duration::ZERO` when a token was there).
    pub fn take(&mut self, now: Instant) -> Duration {
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

    /// Takes one token and sleeps until it may be used.
    pub async fn acquire(&mut self) {
        let wait = self.take(Instant::now());
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
        let mut b = TokenBucket::new(RateLimit {
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
        // After two seconds the bucket is full again (capped at the burst).
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(b.take(t1), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_sleeps_for_the_debt() {
        let mut b = TokenBucket::new(RateLimit {
            burst: 1,
            per_second: 4.0,
        });
        let start = Instant::now();
        b.acquire().await;
        b.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_millis(250));
    }
}
