//! The memory API on a real `redis-server`: what the `bot` binary's tests do through chat,
//! here call by call (scoped rooms, types, deletes, two clients, several databases).

#[path = "support/redis.rs"]
mod redis_server;

use connector_core::memory::{
    DatabaseConfig, DatabasesConfig, Memory, MemoryError, RedisConfig, SqliteConfig,
};
use redis_server::RedisServer;

fn redis(port: u16, database: u32) -> DatabaseConfig {
    DatabaseConfig::Redis(RedisConfig {
        host: "127.0.0.1".into(),
        port,
        database,
        password: None,
    })
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "connector-memory-redis-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_api_on_redis() {
    let dir = scratch("api");
    let server = RedisServer::start(&dir, None);
    let config = DatabasesConfig::new(vec![redis(server.port, 0)]);
    let a = Memory::open(&config).await.unwrap();
    let b = Memory::open(&config).await.unwrap();

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Token {
        since: String,
        rooms: Vec<String>,
    }
    let token = Token {
        since: "s72594_4483_1934".into(),
        rooms: vec!["!a:x".into()],
    };
    a.put("matrix-sync", &token).await.unwrap();
    assert_eq!(b.get::<Token>("matrix-sync").await.unwrap(), Some(token));
    assert_eq!(b.get_or("absent", 5).await.unwrap(), 5);
    assert!(matches!(
        b.get::<u8>("matrix-sync").await,
        Err(MemoryError::Decode { .. })
    ));

    a.in_room("!a:x").put("topic", &"one").await.unwrap();
    a.in_room("!b:x").put("topic", &"two").await.unwrap();
    assert_eq!(
        b.in_room("!a:x")
            .get::<String>("topic")
            .await
            .unwrap()
            .as_deref(),
        Some("one")
    );
    assert_eq!(
        b.in_room("!b:x")
            .get::<String>("topic")
            .await
            .unwrap()
            .as_deref(),
        Some("two")
    );
    assert_eq!(b.get::<String>("topic").await.unwrap(), None);

    b.delete("matrix-sync").await.unwrap();
    assert_eq!(a.get::<Token>("matrix-sync").await.unwrap(), None);

    // The database number is honoured: database 1 does not see database 0's keys.
    a.put("only-in-0", &true).await.unwrap();
    let other = Memory::open(&DatabasesConfig::new(vec![redis(server.port, 1)]))
        .await
        .unwrap();
    assert_eq!(other.get::<bool>("only-in-0").await.unwrap(), None);
}

#[tokio::test]
async fn with_redis_and_sqlite_a_write_goes_to_both_and_a_read_falls_through() {
    let dir = scratch("both");
    let server = RedisServer::start(&dir, None);
    let sqlite = DatabaseConfig::Sqlite(SqliteConfig::at(dir.join("m.db")));
    let both = Memory::open(&DatabasesConfig::new(vec![
        redis(server.port, 0),
        sqlite.clone(),
    ]))
    .await
    .unwrap();
    both.put("k", &1).await.unwrap();
    let file_only = Memory::open(&DatabasesConfig::new(vec![sqlite]))
        .await
        .unwrap();
    assert_eq!(file_only.get::<i32>("k").await.unwrap(), Some(1));
    file_only.put("file-only", &2).await.unwrap();
    assert_eq!(both.get::<i32>("file-only").await.unwrap(), Some(2));
}

#[tokio::test]
async fn an_unreachable_redis_is_a_typed_error_naming_it_and_fails_fast_during_the_outage() {
    let dir = scratch("down");
    let mut server = RedisServer::start(&dir, None);
    let port = server.port;
    server.stop();
    // Opening is not an error (the bot serves without memory meanwhile)...
    let memory = Memory::open(&DatabasesConfig::new(vec![redis(port, 0)]))
        .await
        .unwrap();
    // ...each operation is, naming the server, and is turned away at once while the
    // backoff runs.
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let err = memory.put("k", &1).await.unwrap_err();
        assert!(matches!(err, MemoryError::Unavailable { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("redis at 127.0.0.1:{port}/0")),
            "{err}"
        );
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
