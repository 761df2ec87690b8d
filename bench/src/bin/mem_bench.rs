//! The memory benchmark's Rust side: `put` then `get` of a small JSON object through
//! `Memory::open` on SQLite or Redis; prints `ops_per_sec=<float>` (get and put each count as
//! one op, so a run of N iterations is 2N ops over the wall time).
//!
//! ```text
//! mem-bench --backend sqlite|redis --ops N [--concurrency C] [--synchronous normal|full]
//!           [--path FILE] [--table T] [--redis-host H] [--redis-port P]
//! ```
//!
//! Iteration `i` puts `{"i": i, "user": "bench", "text": "hello world", "tags": ["a", "b",
//! "c"]}` at `key-{i % 1000}`, gets it back and compares (the same workload as
//! `bench/opsdroid_memory.py`).
//!
//! `--concurrency C` (default 1): C callers, each a task on the one current-thread runtime
//! (a `JoinSet`), share the N iterations: caller `c` runs iterations `c, c + C, c + 2C, …`.
//! C must divide 1000, so every key `key-{i % 1000}` a caller touches is ≡ c (mod C) and no
//! other caller writes it: each caller checks its own values. With C = 1 the iterations run
//! one after the other in `main`'s task, one op in flight.
//!
//! `--synchronous normal|full` (SQLite only, default normal): the backend's
//! `databases.sqlite.synchronous`.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use connector_core::memory::{
    DatabaseConfig, DatabasesConfig, Memory, RedisConfig, SqliteConfig, Synchronous,
};
use serde_json::{Value, json};
use tokio::task::JoinSet;

const USAGE: &str = "usage: mem-bench --backend sqlite|redis --ops N [--concurrency C] [--synchronous normal|full] [--path FILE] [--table T] [--redis-host H] [--redis-port P]";

/// The keys are `key-0` … `key-999`; `--concurrency` must divide this.
const KEYS: u64 = 1000;

struct Args {
    backend: String,
    ops: u64,
    concurrency: u64,
    synchronous: Option<Synchronous>,
    path: Option<String>,
    table: Option<String>,
    redis_host: String,
    redis_port: u16,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        backend: String::new(),
        ops: 0,
        concurrency: 1,
        synchronous: None,
        path: None,
        table: None,
        redis_host: "127.0.0.1".to_owned(),
        redis_port: 6379,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--backend" => args.backend = value()?,
            "--ops" => args.ops = value()?.parse().context("--ops: expected a whole number")?,
            "--concurrency" => {
                args.concurrency = value()?
                    .parse()
                    .context("--concurrency: expected a whole number")?
            }
            "--synchronous" => {
                args.synchronous = Some(match value()?.as_str() {
                    "normal" => Synchronous::Normal,
                    "full" => Synchronous::Full,
                    other => bail!("--synchronous: expected normal or full, got `{other}`"),
                })
            }
            "--path" => args.path = Some(value()?),
            "--table" => args.table = Some(value()?),
            "--redis-host" => args.redis_host = value()?,
            "--redis-port" => {
                args.redis_port = value()?.parse().context("--redis-port: expected a port")?
            }
            "-h" | "--help" => bail!("{USAGE}"),
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if args.ops == 0 {
        bail!("--ops N (at least 1) is required\n{USAGE}");
    }
    if args.concurrency == 0 || !KEYS.is_multiple_of(args.concurrency) {
        bail!(
            "--concurrency {}: must divide {KEYS} (1, 2, 4, 5, 8, 10, 20, 25, 40, 50, 100, …), \
             so that no two callers write the same key",
            args.concurrency
        );
    }
    if args.synchronous.is_some() && args.backend != "sqlite" {
        bail!("--synchronous applies to the sqlite backend only\n{USAGE}");
    }
    Ok(args)
}

fn databases(args: &Args) -> anyhow::Result<DatabasesConfig> {
    let db = match args.backend.as_str() {
        "sqlite" => {
            let mut config = SqliteConfig::at(args.path.as_deref().unwrap_or("mem-bench.db"));
            if let Some(table) = &args.table {
                config.table = table.clone();
            }
            if let Some(synchronous) = args.synchronous {
                config.synchronous = synchronous;
            }
            DatabaseConfig::Sqlite(config)
        }
        "redis" => DatabaseConfig::Redis(RedisConfig {
            host: args.redis_host.clone(),
            port: args.redis_port,
            ..RedisConfig::default()
        }),
        other => bail!("--backend: expected sqlite or redis, got `{other}`\n{USAGE}"),
    };
    Ok(DatabasesConfig::new(vec![db]))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mem-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One caller: iterations `first, first + step, …` below `ops`, each a put then a get that
/// must read back what it wrote.
async fn caller(memory: Memory, first: u64, step: u64, ops: u64) -> anyhow::Result<()> {
    let mut i = first;
    while i < ops {
        let key = format!("key-{}", i % KEYS);
        let value =
            json!({"i": i, "user": "bench", "text": "hello world", "tags": ["a", "b", "c"]});
        memory.put(&key, &value).await?;
        let back: Option<Value> = memory.get(&key).await?;
        if back.as_ref() != Some(&value) {
            bail!("iteration {i}: {key} read back {back:?}, wrote {value}");
        }
        i += step;
    }
    Ok(())
}

async fn run() -> anyhow::Result<()> {
    let args = parse_args()?;
    let memory = Memory::open(&databases(&args)?).await?;
    let started = Instant::now();
    if args.concurrency == 1 {
        caller(memory, 0, 1, args.ops).await?;
    } else {
        let mut callers = JoinSet::new();
        for c in 0..args.concurrency {
            callers.spawn(caller(memory.clone(), c, args.concurrency, args.ops));
        }
        while let Some(done) = callers.join_next().await {
            done.context("a caller panicked")??;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("ops_per_sec={}", (2 * args.ops) as f64 / secs);
    Ok(())
}
