//! The inbound rate limits one socket obeys: its own token bucket and the server-wide one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use connector_core::rate::TokenBucket;
use tokio::time::Instant;

pub(crate) struct Limits {
    pub(crate) own: Option<TokenBucket>,
    pub(crate) global: Option<Arc<Mutex<TokenBucket>>>,
}

impl Limits {
    /// How long to wait before the next frame may be handled (zero: at once). The wait
    /// reads the client more slowly, so TCP pushes back on it; nothing is dropped.
    pub(crate) fn take(&mut self) -> Duration {
        if self.own.is_none() && self.global.is_none() {
            return Duration::ZERO; // the default: no clock read on the per-frame path
        }
        let now = Instant::now();
        let mut wait = self.own.as_mut().map_or(Duration::ZERO, |b| b.take(now));
        if let Some(global) = &self.global {
            wait = wait.max(connector_core::sync::lock(global).take(now));
        }
        wait
    }
}
