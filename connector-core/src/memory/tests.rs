//! The API on the in-process and SQLite backends (Redis is tested against a real server in
//! `tests/tests/memory_redis.rs`).

use std::time::{Duration, Instant};

use super::*;

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Note {
    text: String,
    n: u32,
}

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("connector-core-memory-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

fn sqlite(path: &std::path::Path) -> DatabasesConfig {
    DatabasesConfig::new(vec![DatabaseConfig::Sqlite(SqliteConfig::at(path))])
}

async fn exercise(memory: &Memory) {
    assert_eq!(memory.get::<Note>("n").await.unwrap(), None);
    let note = Note {
        text: "hi \"there\"".into(),
        n: 3,
    };
    memory.put("n", &note).await.unwrap();
    assert_eq!(memory.get::<Note>("n").await.unwrap(), Some(note));
    assert_eq!(memory.get_or("missing", 7u8).await.unwrap(), 7);
    // A value of the wrong type is a typed error naming the key.
    let err = memory.get::<u32>("n").await.unwrap_err();
    assert!(
        matches!(err, MemoryError::Decode { ref key, .. } if key == "n"),
        "{err}"
    );
    // Rooms are apart from the global space and from each other.
    let ops = memory.in_room("#ops");
    ops.put("n", &1).await.unwrap();
    memory.in_room("#dev").put("n", &2).await.unwrap();
    assert_eq!(ops.get::<i32>("n").await.unwrap(), Some(1));
    assert_eq!(
        memory.in_room("#dev").get::<i32>("n").await.unwrap(),
        Some(2)
    );
    assert!(memory.get::<Note>("n").await.unwrap().is_some());
    assert_eq!(ops.room(), Some("#ops"));
    memory.delete("n").await.unwrap();
    memory.delete("never-there").await.unwrap();
    assert_eq!(memory.get::<Note>("n").await.unwrap(), None);
    assert_eq!(ops.get::<i32>("n").await.unwrap(), Some(1));
    // Keys that would break the room scheme are refused.
    assert!(matches!(
        memory.put("\u{1e}x", &1).await,
        Err(MemoryError::InvalidKey { .. })
    ));
    assert!(matches!(
        memory.in_room("a\u{1e}b").get::<i32>("k").await,
        Err(MemoryError::InvalidKey { .. })
    ));
}

#[tokio::test]
async fn in_process_memory_keeps_values_for_the_process() {
    let memory = Memory::in_process();
    exercise(&memory).await;
    // Clones share the store.
    memory.clone().put("shared", &true).await.unwrap();
    assert_eq!(memory.get::<bool>("shared").await.unwrap(), Some(true));
}

#[tokio::test]
async fn no_databases_section_gives_in_process_memory() {
    let memory = Memory::open(&DatabasesConfig::default()).await.unwrap();
    exercise(&memory).await;
}

#[tokio::test]
async fn sqlite_memory_survives_reopening_and_uses_opsdroids_schema() {
    let path = temp_db("reopen.db");
    {
        let memory = Memory::open(&sqlite(&path)).await.unwrap();
        exercise(&memory).await;
        memory.put("kept", &vec![1, 2, 3]).await.unwrap();
    }
    let memory = Memory::open(&sqlite(&path)).await.unwrap();
    assert_eq!(
        memory.get::<Vec<i32>>("kept").await.unwrap(),
        Some(vec![1, 2, 3])
    );
    // opsdroid's table and columns, the value JSON text, the key as given.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let data: String = conn
        .query_row("SELECT data FROM opsdroid WHERE key = 'kept'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(data, "[1,2,3]");
}

#[tokio::test]
async fn sqlite_is_in_wal_mode_with_the_configured_synchronous_and_opsdroid_reads_it() {
    for (synchronous, name) in [(Synchronous::Normal, "normal"), (Synchronous::Full, "full")] {
        let path = temp_db(&format!("wal-{name}.db"));
        let config = SqliteConfig {
            synchronous,
            ..SqliteConfig::at(&path)
        };
        let memory = Memory::open(&DatabasesConfig::new(vec![DatabaseConfig::Sqlite(config)]))
            .await
            .unwrap();
        memory.put("k", &"v").await.unwrap();
        // Another connection (as opsdroid's aiosqlite would open it) sees the committed row
        // while the bot still has the file open, and the file says it is in WAL mode.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let data: String = conn
            .query_row("SELECT data FROM opsdroid WHERE key = 'k'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(data, "\"v\"");
    }
    let cfg = load("connectors: {shell: }\ndatabases:\n  sqlite: {synchronous: full}\n").unwrap();
    let Some(DatabaseConfig::Sqlite(sqlite)) = cfg.databases.iter().next() else {
        panic!("{:?}", cfg.databases)
    };
    assert_eq!(sqlite.synchronous, Synchronous::Full);
    assert_eq!(SqliteConfig::default().synchronous, Synchronous::Normal);
    let bad =
        load("connectors: {shell: }\ndatabases:\n  sqlite: {synchronous: off}\n").unwrap_err();
    assert!(
        bad.starts_with("configuration.yaml:3:25: databases.sqlite.synchronous: unknown variant `off`, expected `normal` or `full`"),
        "{bad}"
    );
}

#[tokio::test]
async fn sqlite_reads_what_opsdroid_wrote_in_a_custom_table() {
    let path = temp_db("custom.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE \"my \"\"notes\"\"\" (key text PRIMARY KEY, data text);
         INSERT INTO \"my \"\"notes\"\"\" VALUES ('greeting', '{\"text\": \"hello\", \"n\": 1}');",
    )
    .unwrap();
    let config = SqliteConfig {
        table: "my \"notes\"".into(),
        ..SqliteConfig::at(&path)
    };
    let memory = Memory::open(&DatabasesConfig::new(vec![DatabaseConfig::Sqlite(config)]))
        .await
        .unwrap();
    let note: Option<Note> = memory.get("greeting").await.unwrap();
    assert_eq!(
        note,
        Some(Note {
            text: "hello".into(),
            n: 1
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_queued_behind_an_open_that_fails_get_its_error_at_once() {
    let path = temp_db("locked-at-open.db");
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let memory = Memory::from_config(&DatabasesConfig::new(vec![DatabaseConfig::Sqlite(
        SqliteConfig {
            busy_timeout: Duration::from_millis(400),
            ..SqliteConfig::at(&path)
        },
    )]));
    let started = Instant::now();
    let puts: Vec<_> = (0..8)
        .map(|i| {
            let memory = memory.clone();
            tokio::spawn(async move { memory.put(&format!("k{i}"), &i).await })
        })
        .collect();
    for put in puts {
        let err = put.await.unwrap().unwrap_err();
        assert!(matches!(err, MemoryError::Locked { .. }), "{err}");
    }
    // One busy timeout for all of them, not one each (8 × 400 ms).
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    holder.execute_batch("COMMIT").unwrap();
    memory.put("k", &1).await.unwrap();
}

#[tokio::test]
async fn a_locked_sqlite_file_is_a_clear_error_within_the_busy_timeout() {
    let path = temp_db("locked.db");
    let memory = Memory::open(&DatabasesConfig::new(vec![DatabaseConfig::Sqlite(
        SqliteConfig {
            busy_timeout: Duration::from_millis(300),
            ..SqliteConfig::at(&path)
        },
    )]))
    .await
    .unwrap();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    let err = memory.put("k", &1).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, MemoryError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("locked.db"), "{err}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(10),
        "{took:?}"
    );
    // The runtime was not blocked meanwhile (the wait is on the SQLite thread), and the
    // memory works again once the lock is released.
    holder.execute_batch("COMMIT").unwrap();
    memory.put("k", &1).await.unwrap();
    assert_eq!(memory.get::<i32>("k").await.unwrap(), Some(1));
}

#[tokio::test]
async fn sqlite_waiting_for_a_lock_does_not_block_the_runtime() {
    let path = temp_db("nonblocking.db");
    let memory = Memory::open(&DatabasesConfig::new(vec![DatabaseConfig::Sqlite(
        SqliteConfig {
            busy_timeout: Duration::from_secs(2),
            ..SqliteConfig::at(&path)
        },
    )]))
    .await
    .unwrap();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // On this single-threaded runtime a timer still fires while the put waits.
    let put = memory.put("k", &1);
    let tick = tokio::time::sleep(Duration::from_millis(100));
    tokio::pin!(put);
    tokio::select! {
        _ = &mut put => panic!("the put should still be waiting for the lock"),
        _ = tick => {}
    }
    holder.execute_batch("COMMIT").unwrap();
    put.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_queued_together_commit_together_and_each_is_acknowledged_after_its_commit() {
    let path = temp_db("batch.db");
    let config = SqliteConfig {
        synchronous: Synchronous::Full,
        ..SqliteConfig::at(&path)
    };
    let memory = Memory::open(&DatabasesConfig::new(vec![DatabaseConfig::Sqlite(config)]))
        .await
        .unwrap();
    // Another connection holds the write lock, so the first put waits in SQLite and the
    // other 49 queue behind it; once the lock goes they run as one transaction.
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let puts: Vec<_> = (0..50)
        .map(|i| {
            let memory = memory.clone();
            tokio::spawn(async move { memory.put(&format!("k{i}"), &i).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    holder.execute_batch("COMMIT").unwrap();
    for put in puts {
        put.await.unwrap().unwrap();
    }
    let reader = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = reader
        .query_row("SELECT count(*) FROM opsdroid", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 50);
    for i in [0, 17, 49] {
        assert_eq!(memory.get::<i32>(&format!("k{i}")).await.unwrap(), Some(i));
    }
}

#[tokio::test]
async fn several_databases_write_to_all_and_read_the_first_that_has_the_key() {
    let a = temp_db("first.db");
    let b = temp_db("second.db");
    let both = DatabasesConfig::new(vec![
        DatabaseConfig::Sqlite(SqliteConfig::at(&a)),
        DatabaseConfig::Sqlite(SqliteConfig {
            table: "other".into(),
            ..SqliteConfig::at(&b)
        }),
    ]);
    let memory = Memory::open(&both).await.unwrap();
    memory.put("k", &"v").await.unwrap();
    let only_b = Memory::open(&DatabasesConfig::new(vec![DatabaseConfig::Sqlite(
        SqliteConfig {
            table: "other".into(),
            ..SqliteConfig::at(&b)
        },
    )]))
    .await
    .unwrap();
    assert_eq!(
        only_b.get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
    only_b.put("only-in-b", &5).await.unwrap();
    assert_eq!(memory.get::<i32>("only-in-b").await.unwrap(), Some(5));
    memory.delete("k").await.unwrap();
    assert_eq!(only_b.get::<String>("k").await.unwrap(), None);
}

#[tokio::test]
async fn an_sqlite_path_that_cannot_be_created_fails_open_naming_it() {
    let blocker = temp_db("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let err = Memory::open(&sqlite(&blocker.join("memory.db")))
        .await
        .unwrap_err();
    assert!(matches!(err, MemoryError::Sqlite { .. }), "{err:?}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

fn load(text: &str) -> Result<crate::Config, String> {
    crate::Config::from_str_with_env(text, "configuration.yaml", &|_| None)
        .map_err(|e| e.to_string())
}

#[test]
fn the_databases_section_has_opsdroids_keys_and_defaults_in_file_order() {
    let cfg =
        load("connectors: {shell: }\ndatabases:\n  redis:\n  sqlite: {path: /tmp/x.db}\n").unwrap();
    let dbs: Vec<&DatabaseConfig> = cfg.databases.iter().collect();
    let [DatabaseConfig::Redis(redis), DatabaseConfig::Sqlite(sqlite)] = dbs[..] else {
        panic!("{dbs:?}");
    };
    assert_eq!(
        (redis.host.as_str(), redis.port, redis.database),
        ("localhost", 6379, 0)
    );
    assert!(redis.password.is_none());
    assert_eq!(sqlite.table, "opsdroid");
    assert_eq!(sqlite.resolved_path(), PathBuf::from("/tmp/x.db"));
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
    assert!(
        load("connectors: {shell: }\n")
            .unwrap()
            .databases
            .is_empty()
    );
}

#[test]
fn bad_database_settings_are_located_errors() {
    assert_eq!(
        load("connectors: {shell: }\ndatabases:\n  redis:\n    port: nope\n").unwrap_err(),
        "configuration.yaml:4:11: databases.redis.port: invalid type: string \"nope\", expected u16"
    );
    let unknown = load("connectors: {shell: }\ndatabases:\n  mongo: {}\n").unwrap_err();
    assert!(
        unknown.starts_with("configuration.yaml:3:3: databases.mongo: unknown field `mongo`"),
        "{unknown}"
    );
    let typo = load("connectors: {shell: }\ndatabases:\n  sqlite: {tabel: x}\n").unwrap_err();
    assert!(
        typo.starts_with("configuration.yaml:3:12: databases.sqlite.tabel: unknown field `tabel`"),
        "{typo}"
    );
    let not_map = load("connectors: {shell: }\ndatabases: [sqlite]\n").unwrap_err();
    assert!(
        not_map.starts_with("configuration.yaml:2:12: databases: invalid type: sequence"),
        "{not_map}"
    );
}

#[test]
fn the_deprecated_file_key_works_with_a_warning_and_the_password_stays_hidden() {
    let cfg = load(
        "connectors: {shell: }\ndatabases:\n  sqlite:\n    file: /tmp/old.db\n  redis: {password: hunter2}\n",
    )
    .unwrap();
    let DatabaseConfig::Sqlite(sqlite) = cfg.databases.iter().next().unwrap() else {
        panic!()
    };
    assert_eq!(sqlite.resolved_path(), PathBuf::from("/tmp/old.db"));
    assert_eq!(
        cfg.warnings(),
        ["configuration.yaml:4: `databases.sqlite.file` is deprecated: write `path` instead"]
    );
    let debug = format!("{cfg:?} {:?}", cfg.databases);
    assert!(!debug.contains("hunter2"), "{debug}");
}
