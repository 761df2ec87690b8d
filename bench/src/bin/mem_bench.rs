//! The memory benchmark's Rust side: `put` then `get` of a small JSON object, one after
//! another, through `Memory::open` on SQLite or Redis; prints `ops_per_sec=<float>` (get and
//! put each count as one op).
//!
//! ```text
//! mem-bench --backend sqlite|redis --ops N [--path FILE] [--table T] [--redis-host H] [--redis-port P]
//! ```

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use connector_core::memory::{DatabaseConfig, DatabasesConfig, Memory, RedisConfig, SqliteConfig};
use serde_json::{Value, json};

const USAGE: &str = "usage: mem-bench --backend sqlite|redis --ops N [--path FILE] [--table T] [--redis-host H] [--redis-port P]";

struct Args {
    backend: String,
    ops: u64,
    path: Option<String>,
    table: Option<String>,
    redis_host: String,
    redis_port: u16,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        backend: String::new(),
        ops: 0,
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
    Ok(args)
}

fn databases(args: &Args) -> anyhow::Result<DatabasesConfig> {
    let db = match args.backend.as_str() {
        "sqlite" => {
            let mut config = SqliteConfig::at(args.path.as_deref().unwrap_or("mem-bench.db"));
            if let Some(table) = &args.table {
                config.table = table.clone();
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

async fn run() -> anyhow::Result<()> {
    let args = parse_args()?;
    let memory = Memory::open(&databases(&args)?).await?;
    let started = Instant::now();
    for i in 0..args.ops {
        let key = format!("key-{}", i % 1000);
        let value = json!({"n": i, "text": "the quick brown fox", "ok": true});
        memory.put(&key, &value).await?;
        let back: Option<Value> = memory.get(&key).await?;
        if back.as_ref() != Some(&value) {
            bail!("{key}: read back {back:?}, wrote {value}");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("ops_per_sec={}", (2 * args.ops) as f64 / secs);
    Ok(())
}
