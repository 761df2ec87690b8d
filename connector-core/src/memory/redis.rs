//! The Redis backend: `SET`/`GET`/`DEL` of JSON text, as opsdroid's Redis database does,
//! through the `redis` crate's reconnecting connection manager.
//!
//! Outages: the first failed operation logs one WARN line and starts a backoff (0.5 s,
//! doubling, at most 10 s). Until the next attempt is due, operations fail at once with
//! [`MemoryError::Unavailable`], without touching the network; the first operation after
//! that tries again (the manager has been reconnecting meanwhile). Success after an outage
//! logs one INFO line. A connection that dropped (Redis restarted) is retried once at once,
//! so the first operation after a restart does not fail needlessly.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::{Backend, MemoryError, RedisConfig};
use crate::dispatch::BoxFuture;

/// Bound on one operation, whatever the network does.
const OP_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub(crate) struct Redis {
    /// `redis at host:port/db`: never the password.
    label: String,
    client: Result<Client, String>,
    manager: OnceCell<ConnectionManager>,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    /// Failed attempts in the current outage (0: healthy).
    failures: u32,
    /// When the next attempt is allowed during an outage.
    next_try: Option<Instant>,
    /// The outage's first error, repeated to the callers it turns away.
    cause: String,
}

impl Redis {
    pub(crate) fn new(config: &RedisConfig) -> Self {
        let label = format!(
            "redis at {}:{}/{}",
            config.host, config.port, config.database
        );
        let mut settings = RedisConnectionInfo::default().set_db(i64::from(config.database));
        if let Some(password) = &config.password {
            settings = settings.set_password(password.expose());
        }
        let client = ConnectionAddr::Tcp(config.host.clone(), config.port)
            .into_connection_info()
            .map(|info| info.set_redis_settings(settings))
            .and_then(Client::open)
            .map_err(|e| e.to_string());
        Self {
            label,
            client,
            manager: OnceCell::new(),
            health: Mutex::new(Health::default()),
        }
    }

    fn unavailable(&self, message: impl Into<String>) -> MemoryError {
        MemoryError::Unavailable {
            backend: self.label.clone(),
            message: message.into(),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        match self.health.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Runs `cmd`, with the outage bookkeeping described in the module docs.
    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, MemoryError> {
        {
            let health = self.health();
            if let Some(next) = health.next_try
                && Instant::now() < next
            {
                return Err(self.unavailable(format!(
                    "{} (next attempt in {:.1} s)",
                    health.cause,
                    (next - Instant::now()).as_secs_f64()
                )));
            }
        }
        let mut manager = self.manager().await?;
        let mut result = self.query(&mut manager, &cmd).await;
        if result.as_ref().is_err_and(|e| e.1) {
            // The connection dropped under us (a restarted server), or the last reconnect
            // attempt failed: the manager has started a new one, and one more try waits for
            // it, so the first operation after a restart does not fail needlessly.
            result = self.query(&mut manager, &cmd).await;
        }
        match result {
            Ok(value) => {
                self.recovered();
                Ok(value)
            }
            Err((message, _)) => {
                self.failed(&message);
                Err(self.unavailable(message))
            }
        }
    }

    async fn manager(&self) -> Result<ConnectionManager, MemoryError> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| self.unavailable(e.clone()))?;
        self.manager
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(100))
                    .set_max_delay(Duration::from_secs(1))
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(3)));
                ConnectionManager::new_lazy_with_config(client.clone(), config)
            })
            .await
            .cloned()
            .map_err(|e| self.unavailable(e.to_string()))
    }

    /// The command's answer, or the error text and whether the connection was lost.
    async fn query<T: redis::FromRedisValue>(
        &self,
        manager: &mut ConnectionManager,
        cmd: &redis::Cmd,
    ) -> Result<T, (String, bool)> {
        match tokio::time::timeout(OP_TIMEOUT, cmd.query_async::<T>(manager)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                let lost =
                    e.is_connection_dropped() || e.is_io_error() || e.is_connection_refusal();
                Err((e.to_string(), lost))
            }
            Err(_) => Err((format!("no answer within {OP_TIMEOUT:?}"), false)),
        }
    }

    fn failed(&self, message: &str) {
        let mut health = self.health();
        if health.failures == 0 {
            tracing::warn!(
                "memory: {} is unreachable: {message}; retrying with backoff",
                self.label
            );
            health.cause = message.to_owned();
        } else {
            tracing::debug!("memory: {} still unreachable: {message}", self.label);
        }
        let exponent = health.failures.min(10);
        let delay = FIRST_BACKOFF.saturating_mul(1 << exponent).min(MAX_BACKOFF);
        health.failures = health.failures.saturating_add(1);
        health.next_try = Some(Instant::now() + delay);
    }

    fn recovered(&self) {
        let mut health = self.health();
        if health.failures > 0 {
            tracing::info!("memory: {} is reachable again", self.label);
            *health = Health::default();
        }
    }
}

impl Backend for Redis {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, MemoryError>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        Box::pin(self.run(cmd))
    }

    fn put<'a>(&'a self, key: &'a str, data: &'a str) -> BoxFuture<'a, Result<(), MemoryError>> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(data);
        Box::pin(self.run(cmd))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), MemoryError>> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(key);
        Box::pin(async move { self.run::<i64>(cmd).await.map(drop) })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), MemoryError>> {
        Box::pin(async move {
            // Not fatal: the outage is logged and the bot serves without memory meanwhile.
            if self.run::<String>(redis::cmd("PING")).await.is_ok() {
                tracing::debug!("memory: {} answers", self.label);
            }
            Ok(())
        })
    }

    fn describe(&self) -> String {
        self.label.clone()
    }

    fn across_hosts(&self) -> bool {
        true
    }
}
