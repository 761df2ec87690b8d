//! A wrapper that keeps secret configuration values out of logs.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A configuration value (token, password, API key) that must not be printed.
///
/// Why: connector configs are routinely logged with `{:?}`; wrapping the
/// field in `Secret` makes that safe. `Debug` prints `Secret(***)`, there is
/// no `Display`, and there is deliberately no `Serialize`, so a secret cannot
/// be written back out by accident. Read it with [`Secret::expose`], which is
/// easy to grep for.
///
/// It deserializes transparently: `token: abc` fills a `Secret<String>`.
#[derive(Clone, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wrap a value, e.g. one obtained outside the config file, so it gets
    /// the same redaction as one read from YAML.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// Borrow the secret value; the name makes every use site explicit.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_expose_works() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "hunter2");
        let c = s.clone();
        assert_eq!(c.expose(), "hunter2");
    }

    #[test]
    fn deserializes_transparently() {
        let s: Result<Secret<String>, _> = serde_yaml::from_str("hunter2");
        assert_eq!(
            s.map(|s| s.expose().clone()).ok().as_deref(),
            Some("hunter2")
        );
        let n: Result<Secret<u32>, _> = serde_yaml::from_str("42");
        assert_eq!(n.map(|s| *s.expose()).ok(), Some(42));
    }
}
