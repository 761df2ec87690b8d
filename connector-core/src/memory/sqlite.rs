//! The SQLite backend: one connection on a thread of its own, so no blocking SQLite call
//! ever runs on the async runtime.
//!
//! The schema is opsdroid's, `(key text PRIMARY KEY, data text)`, in autocommit mode (each
//! statement is its own transaction). Unlike opsdroid (rollback journal, `synchronous =
//! FULL`, a `DELETE` and an `INSERT` per put: several disk flushes per put), the file is in
//! write-ahead-log mode and a put is one `INSERT OR REPLACE`: when `put` returns, the row is
//! committed to the log, which survives the process being killed; with `synchronous: full`
//! the log is also flushed to the disk (see [`super::Synchronous`]). Requests that queue up
//! while one runs (several callers at once) share one transaction, answered after its
//! commit: one flush for all of them. Waiting for a lock held by another process is bounded
//! by the busy timeout.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension};
use tokio::sync::oneshot;

use super::{Backend, MemoryError, SqliteConfig};
use crate::dispatch::BoxFuture;

enum Op {
    Ready,
    Get(String),
    Put(String, String),
    Delete(String),
}

type Reply = Result<Option<String>, MemoryError>;

pub(crate) struct Sqlite {
    path: PathBuf,
    jobs: mpsc::Sender<(Op, oneshot::Sender<Reply>)>,
}

impl Sqlite {
    /// Starts the thread, which opens the file and creates the table; the result of that is
    /// what [`Backend::ready`] (and every operation, should it have failed) reports.
    pub(crate) fn start(config: &SqliteConfig) -> Self {
        let path = config.resolved_path();
        let (jobs, queue) = mpsc::channel::<(Op, oneshot::Sender<Reply>)>();
        let worker = Worker {
            path: path.clone(),
            table: quote_identifier(&config.table),
            timeout: config.busy_timeout,
            synchronous: config.synchronous,
        };
        let spawned = std::thread::Builder::new()
            .name("memory-sqlite".to_owned())
            .spawn(move || worker.run(queue));
        if let Err(e) = spawned {
            // The queue's receiver is gone with the closure, so every operation reports it.
            tracing::error!(path = %path.display(), "cannot start the SQLite thread: {e}");
        }
        Self { path, jobs }
    }

    fn call(&self, op: Op) -> BoxFuture<'_, Reply> {
        let (tx, rx) = oneshot::channel();
        let sent = self.jobs.send((op, tx));
        Box::pin(async move {
            let stopped = || MemoryError::Sqlite {
                path: self.path.clone(),
                message: "the database thread has stopped".to_owned(),
            };
            sent.map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?
        })
    }
}

impl Backend for Sqlite {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, MemoryError>> {
        self.call(Op::Get(key.to_owned()))
    }

    fn put<'a>(&'a self, key: &'a str, data: &'a str) -> BoxFuture<'a, Result<(), MemoryError>> {
        let reply = self.call(Op::Put(key.to_owned(), data.to_owned()));
        Box::pin(async move { reply.await.map(drop) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), MemoryError>> {
        let reply = self.call(Op::Delete(key.to_owned()));
        Box::pin(async move { reply.await.map(drop) })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), MemoryError>> {
        let reply = self.call(Op::Ready);
        Box::pin(async move { reply.await.map(drop) })
    }

    fn describe(&self) -> String {
        format!("sqlite at {}", self.path.display())
    }
}

struct Worker {
    path: PathBuf,
    table: String,
    timeout: Duration,
    synchronous: super::Synchronous,
}

impl Worker {
    fn run(self, queue: mpsc::Receiver<(Op, oneshot::Sender<Reply>)>) {
        let mut conn = None;
        // Ends when the last `Memory` handle is dropped.
        while let Some((op, reply)) = next_job(&queue) {
            // Opened on the first request (`ready`, which the runtime sends at start), and
            // again on the next request if it failed: a lock may have been released since.
            if conn.is_none() {
                match self.open() {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        // What queued up while the open waited gets the same answer, rather
                        // than one more busy timeout each.
                        while let Ok((_, queued)) = queue.try_recv() {
                            let _ = queued.send(Err(e.clone()));
                        }
                        let _ = reply.send(Err(e));
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_ref() else { continue };
            // Requests that queued up meanwhile (several callers at once) share one
            // transaction: one commit, so with `synchronous: full` one disk flush, for all.
            let mut batch = vec![(op, reply)];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if batch.len() == 1 {
                let (op, reply) = batch.remove(0);
                let _ = reply.send(self.execute(c, op));
            } else {
                self.execute_together(c, batch);
            }
        }
    }

    /// Runs `batch` in one transaction and answers each request only after the commit, so
    /// an `Ok` still means committed. A commit that fails is every request's error (what
    /// the batch wrote is rolled back, and none of it was acknowledged).
    fn execute_together(&self, conn: &Connection, batch: Vec<(Op, oneshot::Sender<Reply>)>) {
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            for (_, reply) in batch {
                let _ = reply.send(Err(self.error_ref(&e)));
            }
            return;
        }
        let done: Vec<(Reply, oneshot::Sender<Reply>)> = batch
            .into_iter()
            .map(|(op, reply)| (self.execute(conn, op), reply))
            .collect();
        match conn.execute_batch("COMMIT") {
            Ok(()) => {
                for (result, reply) in done {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                for (_, reply) in done {
                    let _ = reply.send(Err(self.error_ref(&e)));
                }
            }
        }
    }

    fn open(&self) -> Result<Connection, MemoryError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| MemoryError::Sqlite {
                path: self.path.clone(),
                message: format!("cannot create the directory {}: {e}", dir.display()),
            })?;
        }
        let conn = Connection::open(&self.path).map_err(|e| self.error(e))?;
        conn.busy_timeout(self.timeout).map_err(|e| self.error(e))?;
        // The journal mode is kept in the file; `synchronous` is per connection. The table is
        // created inside a write transaction even when it exists, so a file another process
        // holds locked is reported at start, not at the first put.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; BEGIN IMMEDIATE; \
             CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, data text); COMMIT",
            self.synchronous.pragma(),
            self.table
        ))
        .map_err(|e| self.error(e))?;
        tracing::debug!(path = %self.path.display(), "SQLite memory opened");
        Ok(conn)
    }

    fn execute(&self, conn: &Connection, op: Op) -> Reply {
        let t = &self.table;
        let result = match op {
            Op::Ready => Ok(None),
            Op::Get(key) => conn
                .query_row(
                    &format!("SELECT data FROM {t} WHERE key = ?1"),
                    [&key],
                    |row| row.get(0),
                )
                .optional(),
            Op::Put(key, data) => conn
                .execute(
                    &format!("INSERT OR REPLACE INTO {t} (key, data) VALUES (?1, ?2)"),
                    [&key, &data],
                )
                .map(|_| None),
            Op::Delete(key) => conn
                .execute(&format!("DELETE FROM {t} WHERE key = ?1"), [&key])
                .map(|_| None),
        };
        result.map_err(|e| self.error(e))
    }

    fn error(&self, e: rusqlite::Error) -> MemoryError {
        self.error_ref(&e)
    }

    fn error_ref(&self, e: &rusqlite::Error) -> MemoryError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => MemoryError::Locked {
                path: self.path.clone(),
                waited: self.timeout,
            },
            _ => MemoryError::Sqlite {
                path: self.path.clone(),
                message: e.to_string(),
            },
        }
    }
}

/// `"name"`, with `"` doubled: any table name is safe in a statement.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The most requests one transaction takes.
const MAX_BATCH: usize = 64;

/// How long the thread keeps looking for the next request before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

/// The next request, or `None` once every `Memory` handle is gone. A caller that awaits one
/// operation at a time sends the next request a few microseconds after its reply; catching
/// it before going to sleep saves the thread a wake-up, which on a virtual machine costs
/// more than the statement itself. After [`SPIN`] without one the thread sleeps in `recv`.
fn next_job<T>(queue: &mpsc::Receiver<T>) -> Option<T> {
    let until = std::time::Instant::now() + SPIN;
    loop {
        match queue.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if std::time::Instant::now() < until => {
                std::thread::yield_now();
            }
            Err(mpsc::TryRecvError::Empty) => return queue.recv().ok(),
        }
    }
}
