//! Durations in configuration sections, written as seconds.
//!
//! opsdroid's configuration gives every timeout as a number of seconds, sometimes with a
//! fraction (`ping-timeout: 0.5`). Connector sections use these two functions so that every
//! connector reads durations the same way and reports a bad value the same way (with the key
//! path, line and column, like every configuration error):
//!
//! ```
//! use std::time::Duration;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "kebab-case")]
//! struct Section {
//!     #[serde(deserialize_with = "connector_core::config::seconds::deserialize")]
//!     ping_interval: Duration,
//!     #[serde(default, deserialize_with = "connector_core::config::seconds::option")]
//!     idle_timeout: Option<Duration>, // `null` or absent: none
//! }
//!
//! let s: Section = serde_yaml::from_str("ping-interval: 1.5\nidle-timeout: null\n").unwrap();
//! assert_eq!(s.ping_interval, Duration::from_millis(1500));
//! assert_eq!(s.idle_timeout, None);
//! assert!(serde_yaml::from_str::<Section>("ping-interval: -1\n").is_err());
//! ```

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// A non-negative number of seconds (integer or fraction) as a [`Duration`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(SecondsVisitor)
}

/// Like [`deserialize`], with `null` for "none" (no limit, no timeout). Pair it with
/// `#[serde(default)]` so that a missing key is `None` too.
pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    struct OptSeconds;
    impl<'de> Visitor<'de> for OptSeconds {
        type Value = Option<Duration>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative number of seconds or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            deserialize(d).map(Some)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            SecondsVisitor.visit_u64(v).map(Some)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            SecondsVisitor.visit_i64(v).map(Some)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            SecondsVisitor.visit_f64(v).map(Some)
        }
    }
    d.deserialize_any(OptSeconds)
}

struct SecondsVisitor;

impl Visitor<'_> for SecondsVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative number of seconds")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v).map(Duration::from_secs).map_err(|_| {
            E::custom(format_args!(
                "invalid duration {v}: expected a non-negative number of seconds"
            ))
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        if !v.is_finite() || v < 0.0 {
            return Err(E::custom(format_args!(
                "invalid duration {v}: expected a non-negative number of seconds"
            )));
        }
        Duration::try_from_secs_f64(v)
            .map_err(|_| E::custom(format_args!("invalid duration {v}: too large")))
    }
}
