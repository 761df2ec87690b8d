//! The typed sections the runtime itself reads: `logging`, `web`, `runtime`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

/// The reply sent when a skill fails, matching opsdroid's wording.
pub const DEFAULT_ERROR_REPLY: &str = "Whoops there has been an error.";

/// The `logging:` section, with opsdroid's keys.
///
/// Why: opsdroid users write `level: warning`/`critical`; the runtime uses
/// `tracing`, so the level is normalised once here to a filter directive
/// (`warn`, `error`, …) that can go straight into an `EnvFilter`. The other keys
/// are opsdroid's too, read by [`crate::logging::init`] (which `BotBuilder::build`
/// calls); opsdroid's Python-only keys (`formatter`, `rich`, `rotate`, `file-size`)
/// are accepted and ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct LoggingConfig {
    /// Normalised level: one of `trace`, `debug`, `info`, `warn`, `error`;
    /// `None` when not configured (logging then shows warnings and errors).
    #[serde(deserialize_with = "de_level")]
    pub level: Option<String>,
    /// Whether to log to standard error (opsdroid's `console`, default `true`).
    pub console: bool,
    /// A file the logs are also appended to (opsdroid's `path`; a leading `~/` is the home
    /// directory, missing directories are created). `false`, `null` or no key: no file.
    #[serde(deserialize_with = "de_path")]
    pub path: Option<PathBuf>,
    /// opsdroid's `extended`: each line also names the source file and line.
    pub extended: bool,
    /// opsdroid's `timestamp`: each line starts with the time (default `false`).
    pub timestamp: bool,
    /// opsdroid's `filter`: which modules' logs are shown.
    pub filter: LogFilter,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: None,
            console: true,
            path: None,
            extended: false,
            timestamp: false,
            filter: LogFilter::default(),
        }
    }
}

/// `logging.filter`: opsdroid's whitelist and blacklist of logger names.
///
/// A name is a module path, `connector_irc` or `connector_core::hub` (opsdroid's dotted
/// `opsdroid.core` style and crate names with `-` are accepted too); it covers that module
/// and everything under it. With both lists, only the whitelist is used (and a warning
/// says so), as in opsdroid.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogFilter {
    /// Only these modules' logs are shown (when not empty).
    #[serde(deserialize_with = "de_names")]
    pub whitelist: Vec<String>,
    /// These modules' logs are hidden.
    #[serde(deserialize_with = "de_names")]
    pub blacklist: Vec<String>,
}

fn de_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum PathOrOff {
        Path(String),
        Off(bool),
    }
    match Option::<PathOrOff>::deserialize(d)
        .map_err(|_| de::Error::custom("expected a file path, or `false` for no log file"))?
    {
        None | Some(PathOrOff::Off(false)) => Ok(None),
        Some(PathOrOff::Off(true)) => Err(de::Error::custom(
            "expected a file path, or `false` for no log file",
        )),
        Some(PathOrOff::Path(p)) if p.trim().is_empty() => Ok(None),
        Some(PathOrOff::Path(p)) => Ok(Some(PathBuf::from(p))),
    }
}

fn de_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Map an opsdroid log level name to a `tracing` filter directive.
///
/// Why: kept public so command-line `--log-level` flags accept the same names
/// as the file. Case-insensitive; `warning`→`warn`, `critical`→`error`.
/// Returns `None` for unknown names.
pub fn normalize_log_level(level: &str) -> Option<&'static str> {
    match level.trim().to_ascii_lowercase().as_str() {
        "trace" => Some("trace"),
        "debug" => Some("debug"),
        "info" => Some("info"),
        "warning" | "warn" => Some("warn"),
        "error" | "critical" => Some("error"),
        _ => None,
    }
}

fn de_level<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => match normalize_log_level(&s) {
            Some(level) => Ok(Some(level.to_string())),
            None => Err(de::Error::custom(format_args!(
                "unknown log level `{s}`, expected one of trace, debug, info, warning, error, critical"
            ))),
        },
    }
}

/// The `web:` section: the one HTTP server of the bot (webhooks, connector routes).
///
/// Why: the default host is `127.0.0.1`, not opsdroid's `0.0.0.0`, so a bot
/// is not exposed on the network unless the user asks for it.
/// opsdroid's other web keys (`ssl`, `base-url`, …) are accepted and ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct WebConfig {
    /// Interface to bind (default `127.0.0.1`).
    pub host: String,
    /// Port to bind (default `8080`).
    pub port: u16,
    /// When set, every webhook call needs `Authorization: Bearer <token>` (opsdroid's
    /// `webhook-token`); an empty value means none.
    #[serde(deserialize_with = "de_token")]
    pub webhook_token: Option<super::Secret<String>>,
    /// The largest webhook request body in bytes (default 1 MiB); a larger one gets 413.
    #[serde(deserialize_with = "de_body_size")]
    pub max_body_size: usize,
    /// Whether the configuration has a `web:` section (set by the loader): with one, the
    /// server listens from the start, as opsdroid's does; without one, only when a webhook
    /// skill or a connector's route needs it.
    #[serde(skip)]
    pub configured: bool,
}

/// The default `web.max-body-size`: 1 MiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = 1024 * 1024;

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            host: "127.0.0.1".to_string(),
            port: 8080,
            webhook_token: None,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            configured: false,
        }
    }
}

/// Compares every setting; the token by value (a configuration comparison, not a login).
impl PartialEq for WebConfig {
    fn eq(&self, other: &Self) -> bool {
        self.host == other.host
            && self.port == other.port
            && self.webhook_token.as_ref().map(|t| t.expose())
                == other.webhook_token.as_ref().map(|t| t.expose())
            && self.max_body_size == other.max_body_size
            && self.configured == other.configured
    }
}

impl Eq for WebConfig {}

fn de_token<'de, D: Deserializer<'de>>(d: D) -> Result<Option<super::Secret<String>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .filter(|t| !t.is_empty())
        .map(super::Secret::new))
}

fn de_body_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let v = u64::deserialize(d)
        .map_err(|_| de::Error::custom("expected a size in bytes (a positive integer)"))?;
    match usize::try_from(v) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(de::Error::custom(format_args!(
            "invalid body size {v}: expected a positive number of bytes"
        ))),
    }
}

/// The `runtime:` section: this SDK's own knobs (not in opsdroid).
///
/// Why: timeouts and reconnect behaviour differ per deployment; every key is
/// optional and unknown keys are rejected (this section is ours, so a typo
/// like `shutdown-timout` should fail loudly rather than be ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Reply sent to the user when a skill fails; `null` or `""` disables it.
    #[serde(deserialize_with = "de_error_reply")]
    pub error_reply: Option<String>,
    /// Whether messages sent by the bot itself are dropped before skills see them.
    pub ignore_own_messages: bool,
    /// How long to wait for in-flight work on shutdown (seconds in YAML).
    #[serde(deserialize_with = "super::seconds::deserialize")]
    pub shutdown_timeout: Duration,
    /// How long to wait for each connector to disconnect (seconds in YAML).
    #[serde(deserialize_with = "super::seconds::deserialize")]
    pub disconnect_timeout: Duration,
    /// How long one skill may run on one event before it is cancelled, logged with its name,
    /// and the user gets the error reply (seconds in YAML, default 60; `null` = no limit).
    #[serde(deserialize_with = "super::seconds::option")]
    pub skill_timeout: Option<Duration>,
    /// Backoff used when a connector loses its connection.
    pub reconnect: ReconnectPolicy,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            error_reply: Some(DEFAULT_ERROR_REPLY.to_string()),
            ignore_own_messages: true,
            shutdown_timeout: Duration::from_secs(10),
            disconnect_timeout: Duration::from_secs(5),
            skill_timeout: Some(Duration::from_secs(60)),
            reconnect: ReconnectPolicy::default(),
        }
    }
}

fn de_error_reply<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// Exponential backoff with jitter for connector reconnects (`runtime.reconnect`).
///
/// Why: a flapping chat service should not be hammered, and many bots
/// restarting together should not reconnect in lock-step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct ReconnectPolicy {
    /// Delay before the first retry (default 1s).
    #[serde(deserialize_with = "super::seconds::deserialize")]
    pub initial: Duration,
    /// Upper bound of the un-jittered delay (default 60s).
    #[serde(deserialize_with = "super::seconds::deserialize")]
    pub max: Duration,
    /// Growth per attempt, at least 1.0 (default 2.0).
    #[serde(deserialize_with = "de_factor")]
    pub factor: f64,
    /// Random spread as a fraction of the delay, `0.0..=1.0` (default 0.2).
    #[serde(deserialize_with = "de_fraction")]
    pub jitter: f64,
    /// Give up after this many attempts; `None` retries forever (default).
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            factor: 2.0,
            jitter: 0.2,
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// Delay before retry number `attempt` (0-based).
    ///
    /// `initial * factor^attempt`, capped at `max`, then scaled by
    /// `1 ± jitter` using `random_unit` in `0.0..=1.0` (0.0 → `-jitter`,
    /// 0.5 → exact, 1.0 → `+jitter`; out-of-range values are clamped, NaN
    /// counts as 0.5). So the result may exceed `max` by at most `jitter·max`.
    /// Pure — the caller supplies the randomness — so it is testable.
    pub fn delay(&self, attempt: u32, random_unit: f64) -> Duration {
        let initial = self.initial.as_secs_f64();
        let max = self.max.as_secs_f64();
        let factor = if self.factor.is_finite() && self.factor >= 1.0 {
            self.factor
        } else {
            1.0
        };
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let mut base = initial * factor.powi(exponent);
        if !base.is_finite() || base > max {
            base = max;
        }
        let jitter = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        let r = if random_unit.is_nan() {
            0.5
        } else {
            random_unit.clamp(0.0, 1.0)
        };
        let secs = (base * (1.0 + jitter * (2.0 * r - 1.0))).max(0.0);
        Duration::try_from_secs_f64(secs).unwrap_or(self.max)
    }

    /// Whether another attempt is allowed after `attempts_made` failed ones.
    ///
    /// Why: keeps the `max_attempts: None` = unbounded rule in one place.
    pub fn allows_attempt(&self, attempts_made: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempts_made < max)
    }
}

fn de_factor<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v >= 1.0 {
        Ok(v)
    } else {
        Err(de::Error::custom(format_args!(
            "invalid backoff factor {v}: expected a number of at least 1.0"
        )))
    }
}

fn de_fraction<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(de::Error::custom(format_args!(
            "invalid jitter {v}: expected a fraction between 0.0 and 1.0"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn delay_doubles_then_caps() {
        let p = ReconnectPolicy {
            jitter: 0.0,
            ..ReconnectPolicy::default()
        };
        assert_eq!(p.delay(0, 0.9), secs(1.0));
        assert_eq!(p.delay(1, 0.9), secs(2.0));
        assert_eq!(p.delay(2, 0.9), secs(4.0));
        assert_eq!(p.delay(5, 0.9), secs(32.0));
        assert_eq!(p.delay(6, 0.9), secs(60.0));
        assert_eq!(p.delay(u32::MAX, 0.9), secs(60.0));
    }

    #[test]
    fn jitter_bounds() {
        let p = ReconnectPolicy::default();
        assert_eq!(p.delay(1, 0.5), secs(2.0));
        assert_eq!(p.delay(1, 0.0), secs(1.6));
        assert_eq!(p.delay(1, 1.0), secs(2.4));
        for i in 0..=100 {
            let r = f64::from(i) / 100.0;
            let d = p.delay(3, r);
            assert!(d >= secs(6.4) && d <= secs(9.6), "{d:?} for {r}");
            let capped = p.delay(20, r);
            assert!(capped >= secs(48.0) && capped <= secs(72.0), "{capped:?}");
        }
        // Out-of-range and NaN randomness never panic and stay in bounds.
        assert_eq!(p.delay(1, -5.0), secs(1.6));
        assert_eq!(p.delay(1, 7.0), secs(2.4));
        assert_eq!(p.delay(1, f64::NAN), secs(2.0));
    }

    #[test]
    fn attempts() {
        let p = ReconnectPolicy::default();
        assert!(p.allows_attempt(1_000_000));
        let p = ReconnectPolicy {
            max_attempts: Some(3),
            ..p
        };
        assert!(p.allows_attempt(2));
        assert!(!p.allows_attempt(3));
    }

    #[test]
    fn log_levels() {
        assert_eq!(normalize_log_level("WARNING"), Some("warn"));
        assert_eq!(normalize_log_level("critical"), Some("error"));
        assert_eq!(normalize_log_level("info"), Some("info"));
        assert_eq!(normalize_log_level("loud"), None);
    }
}
