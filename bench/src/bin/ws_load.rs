//! `ws-load`: a closed-loop websocket echo load generator for the side-by-side benchmark.
//!
//! C clients each send N unique messages, one in flight per client, and check every reply
//! against what was sent. It reports echoes/s, round-trip percentiles, errors (lost,
//! misrouted, corrupted replies) and, given the server's PID, the server's CPU time per echo
//! and its RSS, read from /proc. `--idle K --hold S` instead holds K idle connections and
//! reports the server's memory per connection. Run `ws-load --help` for the options.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const USAGE: &str = "usage: ws-load --url http://127.0.0.1:PORT [options]

Closed-loop websocket echo load: C clients, N unique messages each, one in flight
per client, every reply checked against what was sent. Loopback targets only.

  --url URL              the server: http://HOST:PORT[/prefix] (opsdroid protocol)
                         or ws://HOST:PORT[/path] (plain protocol)
  --clients C            concurrent clients (default 1)
  --messages N           measured messages per client (default 1000)
  --warmup M             unmeasured messages per client first (default 5)
  --protocol P           opsdroid: POST /connector/websocket, then connect to
                         /connector/websocket/<socket> (default);
                         plain: connect to the URL directly (any echo server)
  --frame F              json: {\"message\", \"user\", \"socket\"} objects (default for
                         the opsdroid protocol: opsdroid misroutes plain text when
                         several clients are connected); text: the bare text
                         (default for plain). With the plain protocol a JSON frame
                         names a made-up socket of an id's length, and the reply
                         must be the whole frame (what a bare echo sends back)
  --size B               padding bytes in each message (default 16)
  --token T              the Authorization header for the POST, if configured
  --pid PID              report this server process's CPU per echo and RSS (/proc)
  --timeout S            seconds to wait for one reply (default 10)
  --connect-concurrency K  connections opened at once (default 64)
  --idle K --hold S      instead of echo load: hold K idle connections for S
                         seconds; with --pid, report the server's KiB per connection
  --label L              a label for the JSON line
  --json                 also print one JSON line with every figure (last line)

Exit codes: 0 when every reply came back to its sender intact, 1 when a reply
was lost or misrouted or a connection failed, 2 on a usage error.";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    Opsdroid,
    Plain,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Frame {
    Json,
    Text,
}

#[derive(Debug)]
struct Args {
    url: String,
    clients: usize,
    messages: usize,
    warmup: usize,
    protocol: Protocol,
    frame: Option<Frame>,
    size: usize,
    token: Option<String>,
    pid: Option<u32>,
    timeout: Duration,
    connect_concurrency: usize,
    idle: usize,
    hold: Duration,
    label: String,
    json: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut a = Args {
        url: String::new(),
        clients: 1,
        messages: 1000,
        warmup: 5,
        protocol: Protocol::Opsdroid,
        frame: None,
        size: 16,
        token: None,
        pid: None,
        timeout: Duration::from_secs(10),
        connect_concurrency: 64,
        idle: 0,
        hold: Duration::from_secs(5),
        label: String::new(),
        json: false,
    };
    let mut it = std::env::args().skip(1);
    fn num<T: std::str::FromStr>(name: &str, v: Option<String>) -> Result<T, String> {
        v.as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{name} needs a number"))
    }
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--url" => a.url = it.next().ok_or("--url needs a URL")?,
            "--clients" | "-c" => a.clients = num(&arg, it.next())?,
            "--messages" | "-n" => a.messages = num(&arg, it.next())?,
            "--warmup" => a.warmup = num(&arg, it.next())?,
            "--protocol" => {
                a.protocol = match it.next().as_deref() {
                    Some("opsdroid") => Protocol::Opsdroid,
                    Some("plain") => Protocol::Plain,
                    _ => return Err("--protocol is opsdroid or plain".into()),
                }
            }
            "--frame" => {
                a.frame = match it.next().as_deref() {
                    Some("json") => Some(Frame::Json),
                    Some("text") => Some(Frame::Text),
                    _ => return Err("--frame is json or text".into()),
                }
            }
            "--size" => a.size = num(&arg, it.next())?,
            "--token" => a.token = Some(it.next().ok_or("--token needs a value")?),
            "--pid" => a.pid = Some(num(&arg, it.next())?),
            "--timeout" => a.timeout = Duration::from_secs_f64(num(&arg, it.next())?),
            "--connect-concurrency" => a.connect_concurrency = num(&arg, it.next())?,
            "--idle" => a.idle = num(&arg, it.next())?,
            "--hold" => a.hold = Duration::from_secs_f64(num(&arg, it.next())?),
            "--label" => a.label = it.next().ok_or("--label needs a value")?,
            "--json" => a.json = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if a.url.is_empty() {
        return Err("--url is required".into());
    }
    if a.clients == 0 || a.connect_concurrency == 0 {
        return Err("--clients and --connect-concurrency must be at least 1".into());
    }
    Ok(Some(a))
}

/// Where to connect, resolved once.
struct Target {
    addr: SocketAddr,
    /// `host:port` as given, for the Host header and the websocket URL.
    authority: String,
    /// The URL's path without a trailing slash (opsdroid) or as given (plain).
    path: String,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = ["http://", "ws://"]
            .iter()
            .find_map(|s| url.strip_prefix(s))
            .with_context(|| format!("`{url}`: only http:// and ws:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let with_port = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&with_port)
            .with_context(|| format!("cannot resolve `{authority}`"))?
            .collect();
        if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
            bail!("refusing `{authority}`: only loopback targets are allowed");
        }
        Ok(Self {
            addr: addrs[0],
            authority: with_port,
            path: path.to_owned(),
        })
    }
}

fn client_config() -> WebSocketConfig {
    // Small buffers: the idle test holds 10,000 connections on this side too.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

type Ws = WebSocketStream<TcpStream>;

/// Whether a failed attempt is worth retrying.
enum OpenError {
    Transient(anyhow::Error),
    Permanent(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for OpenError {
    fn from(e: E) -> Self {
        OpenError::Transient(e.into())
    }
}

/// `POST <prefix>/connector/websocket` and the `socket` id from its text/plain JSON body.
async fn request_socket(target: &Target, token: Option<&str>) -> Result<String, OpenError> {
    let mut tcp = TcpStream::connect(target.addr).await?;
    let auth = token
        .map(|t| format!("Authorization: {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {}/connector/websocket HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n{auth}Connection: close\r\n\r\n",
        target.path.trim_end_matches('/'),
        target.authority
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut response = Vec::with_capacity(512);
    tcp.read_to_end(&mut response).await?;
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the POST's response has no complete header")?;
    let head = String::from_utf8_lossy(&response[..end]);
    let mut body = response[end + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the POST's response has no status")?;
    if head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked")
    {
        body = dechunk(&body).context("bad chunked body")?;
    }
    let text = String::from_utf8_lossy(&body);
    match status {
        200 => {}
        401 | 403 | 404 | 405 => {
            return Err(OpenError::Permanent(anyhow::anyhow!(
                "POST /connector/websocket: {status} {text}"
            )));
        }
        _ => return Err(anyhow::anyhow!("POST /connector/websocket: {status} {text}").into()),
    }
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("the POST's body `{text}`"))?;
    match value.get("socket").and_then(|s| s.as_str()) {
        Some(id) => Ok(id.to_owned()),
        None => Err(OpenError::Permanent(anyhow::anyhow!(
            "the POST's body has no \"socket\": `{text}`"
        ))),
    }
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

async fn open_once(args: &Args, target: &Target) -> Result<(Ws, Option<String>), OpenError> {
    let step = args.timeout;
    let (socket, path) = match args.protocol {
        Protocol::Opsdroid => {
            let id = tokio::time::timeout(step, request_socket(target, args.token.as_deref()))
                .await
                .map_err(|_| anyhow::anyhow!("POST timed out"))??;
            let path = format!(
                "{}/connector/websocket/{id}",
                target.path.trim_end_matches('/')
            );
            (Some(id), path)
        }
        Protocol::Plain => (
            None,
            if target.path.is_empty() {
                "/".to_owned()
            } else {
                target.path.clone()
            },
        ),
    };
    let url = format!("ws://{}{path}", target.authority);
    let connect = async {
        let tcp = TcpStream::connect(target.addr).await?;
        tcp.set_nodelay(true)?;
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url, tcp, Some(client_config())).await?;
        Ok::<_, anyhow::Error>(ws)
    };
    let ws = tokio::time::timeout(step, connect)
        .await
        .map_err(|_| anyhow::anyhow!("websocket handshake timed out"))??;
    Ok((ws, socket))
}

/// Opens a connection, retrying transient failures (refused or reset connects, a full
/// backlog, 429) with a growing pause. Returns the connection and the retries it took.
async fn open(args: &Args, target: &Target) -> anyhow::Result<((Ws, Option<String>), u32)> {
    let mut pause = Duration::from_millis(10);
    let mut retries = 0;
    loop {
        match open_once(args, target).await {
            Ok(c) => return Ok((c, retries)),
            Err(OpenError::Permanent(e)) => return Err(e),
            Err(OpenError::Transient(e)) if retries >= 20 => {
                return Err(e.context(format!("after {retries} retries")));
            }
            Err(OpenError::Transient(_)) => {
                retries += 1;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Opens `count` connections with at most `connect_concurrency` in progress.
async fn open_all(
    args: &Arc<Args>,
    target: &Arc<Target>,
    count: usize,
) -> (Vec<Option<(Ws, Option<String>)>>, u64, Vec<String>) {
    let gate = Arc::new(Semaphore::new(args.connect_concurrency));
    let mut set = JoinSet::new();
    for i in 0..count {
        let (args, target, gate) = (args.clone(), target.clone(), gate.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            (i, open(&args, &target).await)
        });
    }
    let mut conns: Vec<Option<(Ws, Option<String>)>> = (0..count).map(|_| None).collect();
    let (mut retries, mut failures) = (0u64, Vec::new());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, Ok((c, r)))) => {
                conns[i] = Some(c);
                retries += u64::from(r);
            }
            Ok((i, Err(e))) => failures.push(format!("client {i}: {e:#}")),
            Err(e) => failures.push(format!("connect task: {e}")),
        }
    }
    (conns, retries, failures)
}

#[derive(Default)]
struct Tally {
    ok: u64,
    lost: u64,
    misrouted: u64,
    corrupted: u64,
    timeouts: u64,
    late: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.ok += o.ok;
        self.lost += o.lost;
        self.misrouted += o.misrouted;
        self.corrupted += o.corrupted;
        self.timeouts += o.timeouts;
        self.late += o.late;
    }
}

/// `c<client>-m<seq>-…` → (client, seq).
fn parse_tag(s: &str) -> Option<(u64, u64)> {
    let rest = s.strip_prefix('c')?;
    let (client, rest) = rest.split_once("-m")?;
    let (seq, _) = rest.split_once('-')?;
    Some((client.parse().ok()?, seq.parse().ok()?))
}

struct Client {
    idx: u64,
    ws: Option<Ws>,
    socket: Option<String>,
    seq: u64,
    frame: Frame,
    /// Whether the server echoes frames whole (the plain protocol) rather than answering
    /// with the message text (opsdroid's).
    whole: bool,
    pad: Arc<str>,
    timeout: Duration,
}

impl Client {
    /// Sends `count` messages one at a time, checking each reply; pushes round trips in µs
    /// to `lat` when given.
    async fn exchange(&mut self, count: usize, tally: &mut Tally, mut lat: Option<&mut Vec<u32>>) {
        let mut consecutive_timeouts = 0;
        for done in 0..count {
            let Some(ws) = self.ws.as_mut() else {
                tally.lost += (count - done) as u64;
                return;
            };
            let seq = self.seq;
            self.seq += 1;
            let text = format!("c{}-m{seq}-{}", self.idx, self.pad);
            let frame = match self.frame {
                Frame::Text => text.clone(),
                Frame::Json => serde_json::json!({
                    "message": text,
                    "user": format!("load{}", self.idx),
                    "socket": self.socket.clone().unwrap_or_else(|| made_up_socket(self.idx)),
                })
                .to_string(),
            };
            // A text frame is the text; a plain echo server sends a JSON frame back whole.
            let expected = match self.frame {
                Frame::Json if self.whole => frame.clone(),
                _ => text,
            };
            let t0 = Instant::now();
            if ws.send(Message::text(frame)).await.is_err() {
                self.ws = None;
                tally.lost += (count - done) as u64;
                return;
            }
            let deadline = tokio::time::Instant::from_std(t0 + self.timeout);
            loop {
                match tokio::time::timeout_at(deadline, ws.next()).await {
                    Err(_) => {
                        tally.timeouts += 1;
                        tally.lost += 1;
                        consecutive_timeouts += 1;
                        if consecutive_timeouts >= 3 {
                            self.ws = None;
                        }
                        break;
                    }
                    Ok(Some(Ok(Message::Text(reply)))) => {
                        if reply.as_str() == expected {
                            let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                            if let Some(lat) = lat.as_deref_mut() {
                                lat.push(us);
                            }
                            tally.ok += 1;
                            consecutive_timeouts = 0;
                            break;
                        }
                        let tag = reply.as_str();
                        // A whole JSON frame echoed: its tag is in its `message`.
                        let tag = tag.strip_prefix("{\"message\":\"").unwrap_or(tag);
                        match parse_tag(tag) {
                            Some((c, s)) if c == self.idx && s < seq => tally.late += 1,
                            Some((c, _)) if c != self.idx => tally.misrouted += 1,
                            _ => tally.corrupted += 1,
                        }
                    }
                    Ok(Some(Ok(Message::Binary(_)))) => tally.corrupted += 1,
                    Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => {}
                    Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => {
                        self.ws = None;
                        tally.lost += (count - done) as u64;
                        return;
                    }
                }
            }
        }
    }
}

/// The socket field of a JSON frame sent to a plain echo server, which names no sockets:
/// as long as a real id, so the frame is the size a bot's clients send.
fn made_up_socket(idx: u64) -> String {
    format!("00000000-0000-4000-8000-{:012x}", idx & 0xffff_ffff_ffff)
}

/// CPU seconds (utime + stime) and memory figures of a process, from /proc.
#[derive(Clone, Copy, Default)]
struct ProcSample {
    cpu_ticks: u64,
    rss_kib: u64,
    hwm_kib: u64,
}

fn proc_sample(pid: &str) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`: state is field 3, utime 14 and stime 15 (1-based).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        cpu_ticks: utime + stime,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

/// Clock ticks per second for /proc/PID/stat, from `getconf CLK_TCK` (100 if that fails).
fn clock_ticks() -> (u64, bool) {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .map_or((100, false), |t| (t, true))
}

/// The soft limit on open files, from /proc/self/limits.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(us: u32) -> String {
    format!("{:.3} ms", f64::from(us) / 1000.0)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let target = match Target::parse(&args.url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
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
    let result = if args.idle > 0 {
        runtime.block_on(idle(Arc::new(args), Arc::new(target)))
    } else {
        runtime.block_on(load(Arc::new(args), Arc::new(target)))
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn check_fd_limit(needed: usize) -> anyhow::Result<()> {
    if let Some(limit) = open_file_limit()
        && limit < needed as u64 + 64
    {
        bail!(
            "the open-file limit is {limit}, too low for {needed} connections: \
             raise it first (`ulimit -n 65536`), and the server's too"
        );
    }
    Ok(())
}

/// The echo load. Ok(false) when any reply was lost, misrouted or corrupted.
async fn load(args: Arc<Args>, target: Arc<Target>) -> anyhow::Result<bool> {
    check_fd_limit(args.clients)?;
    let frame = args.frame.unwrap_or(match args.protocol {
        Protocol::Opsdroid => Frame::Json,
        Protocol::Plain => Frame::Text,
    });
    let pid = args.pid.map(|p| p.to_string());
    let (ticks_per_s, ticks_known) = clock_ticks();
    let pad: Arc<str> = "x".repeat(args.size).into();

    let t_connect = Instant::now();
    let (conns, connect_retries, failures) = open_all(&args, &target, args.clients).await;
    let connect_s = t_connect.elapsed().as_secs_f64();
    for f in failures.iter().take(5) {
        eprintln!("connect failed: {f}");
    }

    let warmed = Arc::new(Barrier::new(args.clients + 1));
    let go = Arc::new(Barrier::new(args.clients + 1));
    let mut set = JoinSet::new();
    for (idx, conn) in conns.into_iter().enumerate() {
        let (ws, socket) = match conn {
            Some((ws, s)) => (Some(ws), s),
            None => (None, None),
        };
        let mut client = Client {
            idx: idx as u64,
            ws,
            socket,
            seq: 0,
            frame,
            whole: args.protocol == Protocol::Plain,
            pad: pad.clone(),
            timeout: args.timeout,
        };
        let (warmed, go, args) = (warmed.clone(), go.clone(), args.clone());
        set.spawn(async move {
            let mut warm = Tally::default();
            client.exchange(args.warmup, &mut warm, None).await;
            warmed.wait().await;
            go.wait().await;
            let mut tally = Tally::default();
            let mut lat = Vec::with_capacity(args.messages);
            client
                .exchange(args.messages, &mut tally, Some(&mut lat))
                .await;
            if let Some(mut ws) = client.ws.take() {
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
            }
            (warm, tally, lat)
        });
    }
    warmed.wait().await;
    let before = pid.as_deref().and_then(proc_sample);
    let self_before = proc_sample("self");
    let t0 = Instant::now();
    go.wait().await;
    let mut warm = Tally::default();
    let mut tally = Tally::default();
    let mut lat: Vec<u32> = Vec::with_capacity(args.clients * args.messages);
    let mut end = None;
    let mut remaining = args.clients;
    while let Some(joined) = set.join_next().await {
        let (w, t, l) = joined.context("a client task panicked")?;
        warm.add(&w);
        tally.add(&t);
        lat.extend_from_slice(&l);
        remaining -= 1;
        if remaining == 0 {
            end = Some(t0.elapsed());
        }
    }
    let elapsed = end.unwrap_or_else(|| t0.elapsed()).as_secs_f64();
    let after = pid.as_deref().and_then(proc_sample);
    let self_after = proc_sample("self");
    lat.sort_unstable();
    let mean = if lat.is_empty() {
        0.0
    } else {
        lat.iter().map(|&v| f64::from(v)).sum::<f64>() / lat.len() as f64
    };
    let (p50, p90, p99) = (
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
    );
    let max = lat.last().copied().unwrap_or(0);
    let rate = tally.ok as f64 / elapsed.max(1e-9);
    let connect_failures = failures.len() as u64;
    let errors = tally.lost
        + tally.misrouted
        + tally.corrupted
        + warm.lost
        + warm.misrouted
        + warm.corrupted
        + connect_failures;
    let per_echo = |b: Option<ProcSample>, a: Option<ProcSample>| match (b, a) {
        (Some(b), Some(a)) if tally.ok > 0 => {
            let cpu_s = (a.cpu_ticks - b.cpu_ticks) as f64 / ticks_per_s as f64;
            Some((cpu_s, cpu_s * 1e6 / tally.ok as f64))
        }
        _ => None,
    };
    let server_cpu = per_echo(before, after);
    let client_cpu = per_echo(self_before, self_after);

    let proto = match args.protocol {
        Protocol::Opsdroid => "opsdroid",
        Protocol::Plain => "plain",
    };
    let frame_name = match frame {
        Frame::Json => "json",
        Frame::Text => "text",
    };
    println!(
        "ws-load: {} clients x {} messages ({proto} protocol, {frame_name} frames, warmup {}) -> {}",
        args.clients, args.messages, args.warmup, args.url
    );
    println!(
        "connected {}/{} in {connect_s:.2} s ({connect_retries} retries)",
        args.clients - failures.len(),
        args.clients
    );
    println!(
        "echoes: {} in {elapsed:.3} s = {rate:.0} echoes/s",
        tally.ok
    );
    println!(
        "round trip: p50 {}  p90 {}  p99 {}  max {}  mean {:.3} ms",
        ms(p50),
        ms(p90),
        ms(p99),
        ms(max),
        mean / 1000.0
    );
    println!(
        "errors: {errors} (lost {}, misrouted {}, corrupted {}, timeouts {}, late {}, connect failures {connect_failures})",
        tally.lost + warm.lost,
        tally.misrouted + warm.misrouted,
        tally.corrupted + warm.corrupted,
        tally.timeouts + warm.timeouts,
        tally.late + warm.late,
    );
    if let Some(pid) = &pid {
        match (server_cpu, after) {
            (Some((cpu_s, us)), Some(a)) => println!(
                "server pid {pid}: CPU {cpu_s:.2} s = {us:.1} µs/echo (CLK_TCK {ticks_per_s}{}); RSS {:.1} MiB now, peak {:.1} MiB",
                if ticks_known { "" } else { ", assumed" },
                a.rss_kib as f64 / 1024.0,
                a.hwm_kib as f64 / 1024.0
            ),
            _ => println!("server pid {pid}: /proc figures unavailable"),
        }
    }
    if let Some((_, us)) = client_cpu {
        println!("load generator CPU: {us:.1} µs/echo");
    }
    if args.json {
        let line = serde_json::json!({
            "mode": "load",
            "label": args.label,
            "url": args.url,
            "protocol": proto,
            "frame": frame_name,
            "clients": args.clients,
            "messages": args.messages,
            "warmup": args.warmup,
            "connect_s": connect_s,
            "connect_retries": connect_retries,
            "connect_failures": connect_failures,
            "elapsed_s": elapsed,
            "echoes": tally.ok,
            "echoes_per_s": rate,
            "p50_us": p50,
            "p90_us": p90,
            "p99_us": p99,
            "max_us": max,
            "mean_us": mean,
            "lost": tally.lost + warm.lost,
            "misrouted": tally.misrouted + warm.misrouted,
            "corrupted": tally.corrupted + warm.corrupted,
            "timeouts": tally.timeouts + warm.timeouts,
            "late": tally.late + warm.late,
            "errors": errors,
            "clk_tck": ticks_per_s,
            "server_pid": args.pid,
            "server_cpu_s": server_cpu.map(|c| c.0),
            "server_cpu_us_per_echo": server_cpu.map(|c| c.1),
            "server_rss_kib": after.map(|a| a.rss_kib),
            "server_peak_rss_kib": after.map(|a| a.hwm_kib),
            "client_cpu_us_per_echo": client_cpu.map(|c| c.1),
        });
        println!("{line}");
    }
    Ok(errors == 0)
}

/// Holds `--idle` connections for `--hold` seconds and reports the server's memory per
/// connection; then checks each still echoes.
async fn idle(args: Arc<Args>, target: Arc<Target>) -> anyhow::Result<bool> {
    check_fd_limit(args.idle)?;
    let pid = args.pid.map(|p| p.to_string());
    let sample = || pid.as_deref().and_then(proc_sample);
    let before = sample();
    let t_connect = Instant::now();
    let (conns, connect_retries, failures) = open_all(&args, &target, args.idle).await;
    let connect_s = t_connect.elapsed().as_secs_f64();
    for f in failures.iter().take(5) {
        eprintln!("connect failed: {f}");
    }
    let opened = conns.iter().filter(|c| c.is_some()).count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open_sample = sample();
    tokio::time::sleep(args.hold).await;
    let held = sample();

    // Every held connection must still echo.
    let frame = args.frame.unwrap_or(match args.protocol {
        Protocol::Opsdroid => Frame::Json,
        Protocol::Plain => Frame::Text,
    });
    let pad: Arc<str> = "x".repeat(args.size).into();
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(256)));
    let mut set = JoinSet::new();
    for (idx, conn) in conns.into_iter().enumerate() {
        let Some((ws, socket)) = conn else { continue };
        let mut client = Client {
            idx: idx as u64,
            ws: Some(ws),
            socket,
            seq: 0,
            frame,
            whole: args.protocol == Protocol::Plain,
            pad: pad.clone(),
            timeout: args.timeout,
        };
        let gate = gate.clone();
        set.spawn(async move {
            let mut tally = Tally::default();
            {
                let _permit = gate.acquire_owned().await;
                client.exchange(1, &mut tally, None).await;
            }
            // Keep the connection until every check is done.
            (tally, client)
        });
    }
    let mut tally = Tally::default();
    let mut clients = Vec::with_capacity(opened);
    while let Some(joined) = set.join_next().await {
        let (t, c) = joined.context("a client task panicked")?;
        tally.add(&t);
        clients.push(c);
    }
    drop(clients);
    let errors = tally.lost + tally.misrouted + tally.corrupted + failures.len() as u64;
    let per_conn = match (before, held) {
        (Some(b), Some(h)) if opened > 0 => {
            Some((h.rss_kib as f64 - b.rss_kib as f64) / opened as f64)
        }
        _ => None,
    };
    println!(
        "ws-load idle: {opened}/{} connections open in {connect_s:.2} s ({connect_retries} retries), held {:.0} s, {} echoed after the hold",
        args.idle,
        args.hold.as_secs_f64(),
        tally.ok
    );
    if let (Some(pid), Some(b), Some(o), Some(h)) = (&pid, before, open_sample, held) {
        println!(
            "server pid {pid}: RSS {:.1} MiB before, {:.1} MiB open, {:.1} MiB after the hold (peak {:.1} MiB) = {:.1} KiB per connection",
            b.rss_kib as f64 / 1024.0,
            o.rss_kib as f64 / 1024.0,
            h.rss_kib as f64 / 1024.0,
            h.hwm_kib as f64 / 1024.0,
            per_conn.unwrap_or(0.0)
        );
    }
    println!(
        "errors: {errors} (lost {}, misrouted {}, corrupted {}, connect failures {})",
        tally.lost,
        tally.misrouted,
        tally.corrupted,
        failures.len()
    );
    if args.json {
        let line = serde_json::json!({
            "mode": "idle",
            "label": args.label,
            "url": args.url,
            "idle": args.idle,
            "opened": opened,
            "hold_s": args.hold.as_secs_f64(),
            "connect_s": connect_s,
            "connect_retries": connect_retries,
            "connect_failures": failures.len(),
            "echoed": tally.ok,
            "errors": errors,
            "server_pid": args.pid,
            "server_rss_before_kib": before.map(|s| s.rss_kib),
            "server_rss_open_kib": open_sample.map(|s| s.rss_kib),
            "server_rss_held_kib": held.map(|s| s.rss_kib),
            "server_peak_rss_kib": held.map(|s| s.hwm_kib),
            "kib_per_connection": per_conn,
        });
        println!("{line}");
    }
    Ok(errors == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse() {
        assert_eq!(parse_tag("c12-m345-xxxx"), Some((12, 345)));
        assert_eq!(parse_tag("c1-m2-"), Some((1, 2)));
        assert_eq!(parse_tag("hello"), None);
        assert_eq!(parse_tag("c1-mx-"), None);
    }

    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(
            dechunk(b"4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\n").as_deref(),
            Some(&b"abcdefg"[..])
        );
        assert_eq!(dechunk(b"4\r\nab"), None);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[7], 0.5), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn only_loopback_targets() {
        let t = Target::parse("http://127.0.0.1:8080/prefix/").unwrap();
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/prefix/");
        assert_eq!(Target::parse("ws://localhost:9").unwrap().path, "");
        assert!(Target::parse("http://10.0.0.1:80").is_err());
        assert!(Target::parse("https://127.0.0.1:80").is_err());
    }

    #[test]
    fn own_process_is_readable() {
        let s = proc_sample("self").unwrap();
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
    }
}
