//! In-process memory: a map behind a lock, for bots without `databases:`.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Backend, MemoryError};
use crate::dispatch::BoxFuture;

#[derive(Default)]
pub(crate) struct Local {
    map: Mutex<HashMap<String, String>>,
}

impl Local {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, String>) -> R) -> R {
        // A panic elsewhere while holding the lock cannot leave a half-written entry behind
        // (every change is one insert or remove), so a poisoned map is still good.
        let mut map = match self.map.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut map)
    }
}

impl Backend for Local {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, MemoryError>> {
        let value = self.with(|m| m.get(key).cloned());
        Box::pin(async move { Ok(value) })
    }

    fn put<'a>(&'a self, key: &'a str, data: &'a str) -> BoxFuture<'a, Result<(), MemoryError>> {
        self.with(|m| m.insert(key.to_owned(), data.to_owned()));
        Box::pin(async { Ok(()) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), MemoryError>> {
        self.with(|m| m.remove(key));
        Box::pin(async { Ok(()) })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), MemoryError>> {
        Box::pin(async { Ok(()) })
    }

    fn describe(&self) -> String {
        "this process".to_owned()
    }
}
