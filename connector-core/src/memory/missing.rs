//! A backend that was configured but left out of the build (connector-core without its
//! `sqlite` or `redis` feature): the bot refuses to start, saying which feature to enable,
//! instead of forgetting what it was told to keep.

use super::{Backend, MemoryError};
use crate::dispatch::BoxFuture;

pub(crate) struct NotBuiltIn {
    /// `sqlite` or `redis`: the `databases:` key and the feature's name.
    pub(crate) kind: &'static str,
}

impl NotBuiltIn {
    fn error(&self) -> MemoryError {
        MemoryError::Unavailable {
            backend: self.kind.to_owned(),
            message: format!(
                "connector-core was built without its `{kind}` feature: add `features = [\"{kind}\"]` to its dependency, or remove `databases.{kind}`",
                kind = self.kind
            ),
        }
    }
}

impl Backend for NotBuiltIn {
    fn get<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<Option<String>, MemoryError>> {
        let error = self.error();
        Box::pin(async move { Err(error) })
    }

    fn put<'a>(&'a self, _key: &'a str, _data: &'a str) -> BoxFuture<'a, Result<(), MemoryError>> {
        let error = self.error();
        Box::pin(async move { Err(error) })
    }

    fn delete<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<(), MemoryError>> {
        let error = self.error();
        Box::pin(async move { Err(error) })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), MemoryError>> {
        let error = self.error();
        Box::pin(async move { Err(error) })
    }

    fn describe(&self) -> String {
        format!("{} (not built in)", self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DatabaseConfig, DatabasesConfig, Memory, RedisConfig, SqliteConfig};

    /// Run by `.ci/run` as `cargo test -p connector-core --no-default-features --features
    /// macros --lib`: a backend that is configured but not built in stops the start.
    #[tokio::test]
    async fn a_configured_backend_that_is_not_built_in_is_refused_at_start_naming_the_feature() {
        let mut expected = Vec::new();
        if cfg!(not(feature = "sqlite")) {
            expected.push((
                "sqlite",
                DatabaseConfig::Sqlite(SqliteConfig::at("never-created.db")),
            ));
        }
        if cfg!(not(feature = "redis")) {
            expected.push(("redis", DatabaseConfig::Redis(RedisConfig::default())));
        }
        for (kind, db) in expected {
            let err = Memory::open(&DatabasesConfig::new(vec![db]))
                .await
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "memory backend {kind} is unavailable: connector-core was built without its `{kind}` feature: add `features = [\"{kind}\"]` to its dependency, or remove `databases.{kind}`"
                )
            );
        }
        assert!(!std::path::Path::new("never-created.db").exists());
    }
}
