//! The `bot` binary's `remember` skill on real memory backends: a SQLite file that survives a
//! restart and a SIGKILL right after an acknowledged `put`, a file locked by another process,
//! and real `redis-server`s shared by two bots, stopped and restarted under a running bot,
//! with a password that never reaches the logs.

#[path = "support/chat.rs"]
mod chat;
#[path = "support/redis.rs"]
mod redis_server;
mod support;

use std::time::{Duration, Instant};

use chat::Chat;
use redis_server::RedisServer;
use support::{TempDir, bot};

const ERROR_REPLY: &str = "Whoops there has been an error.";

fn sqlite_config(dir: &TempDir, extra: &str) -> std::path::PathBuf {
    let db = dir.path().join("data").join("memory.db");
    dir.write(
        "configuration.yaml",
        format!(
            "welcome-message: false\nlogging: {{level: warning}}\nconnectors:\n  shell: {{}}\n\
             skills: {{hello: {{}}, remember: {{}}, echo: {{}}}}\n\
             databases:\n  sqlite:\n    path: {}\n{extra}",
            db.display()
        ),
    );
    db
}

#[test]
fn sqlite_memory_survives_a_restart_and_a_sigkill_right_after_the_acknowledgement() {
    let dir = TempDir::new();
    sqlite_config(&dir, "");
    let mut first = Chat::start(dir.path(), &[]);
    assert_eq!(first.say("what is the colour"), "I don't know the colour.");
    assert_eq!(
        first.say("remember the colour is blue"),
        "OK, I'll remember the colour."
    );
    assert_eq!(first.say("what is the colour?"), "the colour is blue.");
    first.finish();

    let mut second = Chat::start(dir.path(), &[]);
    assert_eq!(second.say("what is the colour"), "the colour is blue.");
    // The reply is sent only once `put` has returned Ok; kill -9 at once after reading it.
    assert_eq!(
        second.say("remember the door code is 1234"),
        "OK, I'll remember the door code."
    );
    second.kill9();

    let mut third = Chat::start(dir.path(), &[]);
    assert_eq!(third.say("what is the door code"), "the door code is 1234.");
    assert_eq!(third.say("what is the colour"), "the colour is blue.");
    // Other skills still win on their own messages, and echo gets the rest.
    assert_eq!(third.say("hello"), "Hi tester");
    assert_eq!(third.say("remind me later"), "remind me later");
    third.finish();
}

#[test]
fn a_sqlite_file_locked_by_another_process_is_a_clear_error_within_the_bound() {
    let dir = TempDir::new();
    let db = sqlite_config(&dir, "    busy-timeout: 1\n");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder
        .execute_batch("CREATE TABLE opsdroid (key text PRIMARY KEY, data text)")
        .unwrap();

    // Locked while the bot runs: `remember` gets the error reply, the bot keeps serving.
    let mut chat = Chat::start(dir.path(), &[]);
    assert_eq!(chat.say("hello"), "Hi tester");
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    assert_eq!(chat.say("remember a is b"), ERROR_REPLY);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    assert_eq!(chat.say("hello"), "Hi tester");
    holder.execute_batch("COMMIT").unwrap();
    assert_eq!(chat.say("remember a is b"), "OK, I'll remember a.");
    let log = chat.finish();
    assert!(
        log.contains("is locked by another process") && log.contains("memory.db"),
        "{log}"
    );

    // Locked at start: the bot says which file and exits, within the bound.
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    let mut cmd = bot(dir.path());
    cmd.args(["--config", "configuration.yaml"]);
    let out = support::run(cmd, b"hello\n");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(out.code(), Some(1), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "the SQLite database {} is locked by another process",
            db.display()
        )),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

fn redis_config(dir: &TempDir, port: u16, password: &str, level: &str) {
    dir.write(
        "configuration.yaml",
        format!(
            "welcome-message: false\nlogging: {{level: {level}}}\nconnectors:\n  shell: {{}}\n\
             skills: {{hello: {{}}, remember: {{}}, echo: {{}}}}\n\
             databases:\n  redis:\n    host: 127.0.0.1\n    port: {port}\n{password}"
        ),
    );
}

#[test]
fn two_bots_on_one_redis_see_each_others_writes() {
    let dir = TempDir::new();
    let redis = RedisServer::start(dir.path(), None);
    redis_config(&dir, redis.port, "", "warning");
    let mut ann = Chat::start(dir.path(), &[]);
    let mut bob = Chat::start(dir.path(), &[]);
    assert_eq!(
        ann.say("remember lunch is at noon"),
        "OK, I'll remember lunch."
    );
    assert_eq!(bob.say("what is lunch"), "lunch is at noon.");
    assert_eq!(
        bob.say("remember lunch is cancelled"),
        "OK, I'll remember lunch."
    );
    assert_eq!(ann.say("what is lunch"), "lunch is cancelled.");
    ann.finish();
    bob.finish();
}

#[test]
fn a_redis_outage_gives_the_error_reply_and_the_bot_recovers_without_a_restart() {
    let dir = TempDir::new();
    let mut redis = RedisServer::start(dir.path(), None);
    redis_config(&dir, redis.port, "", "info");
    let mut chat = Chat::start(dir.path(), &[]);
    assert_eq!(chat.say("remember x is 1"), "OK, I'll remember x.");

    redis.stop();
    assert_eq!(chat.say("remember y is 2"), ERROR_REPLY);
    assert_eq!(chat.say("hello"), "Hi tester");
    for _ in 0..5 {
        assert_eq!(chat.say("what is x"), ERROR_REPLY);
    }
    assert_eq!(chat.say("echo me"), "echo me");

    redis.restart();
    // Back within the backoff (at most a few seconds), with no restart of the bot.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = chat.say("remember z is 3");
        if answer == "OK, I'll remember z." {
            break;
        }
        assert_eq!(answer, ERROR_REPLY);
        assert!(Instant::now() < deadline, "memory did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(chat.say("what is z"), "z is 3.");
    // The server kept nothing (no persistence): x went with it.
    assert_eq!(chat.say("what is x"), "I don't know x.");
    let log = chat.finish();
    assert_eq!(
        log.matches("is unreachable").count(),
        1,
        "one line per outage: {log}"
    );
    assert_eq!(log.matches("is reachable again").count(), 1, "{log}");
}

#[test]
fn the_redis_password_works_and_never_appears_in_the_logs_at_trace_level() {
    let dir = TempDir::new();
    let secret = "s3cret-redis-pass";
    let redis = RedisServer::start(dir.path(), Some(secret));
    redis_config(&dir, redis.port, "    password: $REDIS_PASSWORD\n", "trace");
    let mut chat = Chat::start(
        dir.path(),
        &[("RUST_LOG", "trace"), ("REDIS_PASSWORD", secret)],
    );
    assert_eq!(chat.say("remember k is v"), "OK, I'll remember k.");
    assert_eq!(chat.say("what is k"), "k is v.");
    let log = chat.finish();
    assert!(
        log.contains("memory is kept in redis at 127.0.0.1"),
        "trace logs expected: {log}"
    );
    assert!(!log.contains(secret), "the password leaked: {log}");

    // A wrong password: the error reply, and still no password in the logs.
    let mut chat = Chat::start(
        dir.path(),
        &[("RUST_LOG", "trace"), ("REDIS_PASSWORD", "wrong-pass-xyz")],
    );
    assert_eq!(chat.say("what is k"), ERROR_REPLY);
    assert_eq!(chat.say("hello"), "Hi tester");
    let log = chat.finish();
    assert!(
        !log.contains("wrong-pass-xyz") && !log.contains(secret),
        "{log}"
    );
}
