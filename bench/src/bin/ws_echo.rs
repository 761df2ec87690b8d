//! `ws-echo`: the benchmark's floor, a bare tokio-tungstenite echo server with no framework
//! and no HTTP route. Every connection is accepted on any path, and each text or binary frame
//! is written back unchanged by the same task that read it.
//!
//! ```text
//! ws-echo --addr 127.0.0.1:18090 [--default-buffers]
//! ```
//!
//! It prints `READY ws-echo pid=<pid> addr=<addr>` on stdout once it listens, and runs until
//! it is killed.

use std::net::SocketAddr;
use std::process::ExitCode;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const USAGE: &str = "usage: ws-echo --addr HOST:PORT [--default-buffers]

A bare tokio-tungstenite echo server (the benchmark floor): accepts websocket
connections on any path and writes every text or binary frame back.
Only loopback addresses are accepted.

  --addr HOST:PORT     where to listen (default 127.0.0.1:18090)
  --default-buffers    tungstenite's default buffer sizes instead of the small
                       ones the websocket connector uses (4 KiB read,
                       8 KiB write)";

/// The per-connection buffer sizes, the same as the websocket connector's
/// (`connectors/websocket/src/server.rs`): small, as a server holding many idle connections
/// wants (tungstenite's defaults cost about 120 KiB per connection).
const READ_BUFFER: usize = 4 * 1024;
const WRITE_BUFFER: usize = 8 * 1024;

fn main() -> ExitCode {
    let mut addr: SocketAddr = ([127, 0, 0, 1], 18090).into();
    let mut default_buffers = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => match args.next().map(|a| a.parse()) {
                Some(Ok(a)) => addr = a,
                _ => return usage("--addr needs HOST:PORT with a numeric IP address"),
            },
            "--default-buffers" => default_buffers = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument `{other}`")),
        }
    }
    if !addr.ip().is_loopback() {
        return usage("only loopback addresses are allowed");
    }
    let config = if default_buffers {
        WebSocketConfig::default()
    } else {
        WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(WRITE_BUFFER)
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(addr, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr, config: WebSocketConfig) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!(
        "READY ws-echo pid={} addr={}",
        std::process::id(),
        listener.local_addr()?
    );
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly, keep serving.
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(echo(stream, config));
    }
}

async fn echo(stream: TcpStream, config: WebSocketConfig) {
    let _ = stream.set_nodelay(true);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    while let Some(Ok(frame)) = ws.next().await {
        match frame {
            Message::Text(_) | Message::Binary(_) => {
                if ws.send(frame).await.is_err() {
                    return;
                }
            }
            Message::Close(_) => return,
            // tungstenite answers pings itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}\n\n{USAGE}");
    ExitCode::from(2)
}
