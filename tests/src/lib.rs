//! What the SDK's tests share: starting bots, raw HTTP and
//! websocket clients, the example skills, and a real Matrix homeserver (Synapse) on loopback.
//!
//! The cross-crate tests in `tests/tests` use it, and so do the connector crates' own tests
//! (as a dev-dependency), so no test file carries a copy of these helpers.

pub mod cluster;
pub mod logs;
pub mod nats;
pub mod synapse;
pub mod web;
pub mod ws;

use std::time::Duration;

use connector_core::config::RuntimeConfig;

pub use connector_examples::skills;

/// Generous limit that only keeps a broken test from hanging.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Reconnects within milliseconds, forever: for tests that kill a server under the bot.
pub fn fast_reconnect(runtime: &mut RuntimeConfig) {
    runtime.reconnect.initial = Duration::from_millis(50);
    runtime.reconnect.max = Duration::from_millis(300);
    runtime.reconnect.max_attempts = None;
}
