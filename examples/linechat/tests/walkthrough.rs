//! The README's walkthrough bot as a process, against the line-chat server as a process:
//! the skills answer, a reply names the message it answers, the bot knows the name the
//! server gave it (and so ignores its own lines), logging comes from the configuration, and
//! errors are one line with exit code 2.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BOT: &str = env!("CARGO_BIN_EXE_linechat-bot");
const SERVER: &str = env!("CARGO_BIN_EXE_linechat-server");
/// Generous: only keeps a broken test from hanging.
const LIMIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "s3cret-linechat-token";

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server on a free port, and its address.
fn server() -> (Process, String) {
    let mut child = Command::new(SERVER)
        .args(["--port", "0", "--token", TOKEN])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start linechat-server");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("linechat-server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    (Process(child), addr)
}

/// A person on the chat server.
struct Client {
    lines: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn login(addr: &str, nick: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let mut client = Client {
            writer: stream.try_clone().unwrap(),
            lines: BufReader::new(stream),
        };
        client.send(&format!("AUTH {TOKEN} {nick}"));
        assert_eq!(client.next(), format!("WELCOME {nick}"));
        client
    }

    fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// The next line, failing after [`LIMIT`].
    fn next(&mut self) -> String {
        let mut line = String::new();
        let n = self
            .lines
            .read_line(&mut line)
            .expect("a line within the limit");
        assert!(n > 0, "the server closed the connection");
        line.trim_end().to_owned()
    }

    /// Says `text` in `room`; returns the id the server gave it.
    fn say(&mut self, room: &str, text: &str) -> String {
        self.send(&format!("SAY {room} {text}"));
        let echo = self.next();
        let rest = echo
            .strip_prefix("MSG ")
            .unwrap_or_else(|| panic!("got {echo:?}"));
        let (id, rest) = rest.split_once(' ').unwrap();
        assert!(
            rest.ends_with(&format!("{room} ann {text}")),
            "echo {echo:?}"
        );
        id.to_owned()
    }
}

/// A scratch directory with a configuration file, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn with_config(name: &str, yaml: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("linechat-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("configuration.yaml"), yaml).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bot(dir: &Dir, token: &str) -> Command {
    let mut cmd = Command::new(BOT);
    cmd.current_dir(&dir.0)
        .env("LINECHAT_TOKEN", token)
        .env("RUST_BACKTRACE", "1") // a backtrace must never be what a user sees
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn config(addr: &str, extra: &str) -> String {
    format!(
        "connectors:\n  linechat:\n    address: {addr}\n    token: ${{LINECHAT_TOKEN}}\n    nick: bot\n{extra}logging:\n  level: info\n"
    )
}

/// Waits for the process to exit and returns its code and standard error.
fn finish(mut child: Child) -> (Option<i32>, String) {
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the bot did not exit within {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

#[test]
fn the_walkthrough_bot_chats_on_the_line_chat_server() {
    let (_server, addr) = server();
    let mut ann = Client::login(&addr, "ann");
    // Someone already has the nick `bot`: the server calls the bot `bot_`.
    let _squatter = Client::login(&addr, "bot");
    assert_eq!(ann.next(), "JOINED bot");
    let dir = Dir::with_config("chat", &config(&addr, ""));
    let child = bot(&dir, TOKEN).spawn().unwrap();
    assert_eq!(ann.next(), "JOINED bot_");

    // A greeting: the reply names the message it answers (its `linked_event`).
    let id = ann.say("lobby", "hello there");
    let reply = ann.next();
    let (reply_id, rest) = reply
        .strip_prefix("REPLY ")
        .and_then(|r| r.split_once(' '))
        .unwrap_or_else(|| panic!("got {reply:?}"));
    assert_eq!(rest, format!("{id} lobby bot_ Hi ann"));

    // The bot heard its own "Hi ann" back from the server and ignored it (it knows it is
    // `bot_`): the next line is the answer to the next question, not "Hi bot_".
    let id = ann.say("lobby", "what is the weather in Paris");
    let reply = ann.next();
    assert!(
        reply.ends_with(&format!(" {id} lobby bot_ It is sunny in Paris.")),
        "got {reply:?}"
    );
    assert!(!reply.starts_with(&format!("REPLY {reply_id} ")));

    // `deploy` only runs in `ops`.
    ann.say("lobby", "deploy api");
    let id = ann.say("ops", "deploy api");
    assert_eq!(
        ann.next()
            .split_once(' ')
            .unwrap()
            .1
            .split_once(' ')
            .unwrap()
            .1,
        format!("{id} ops bot_ Deploying api.")
    );

    // SIGTERM: a clean shutdown, exit 0; the configuration's `logging: {level: info}` was
    // set up by the SDK.
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(
        stderr.contains("connected connector=linechat"),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("Bye!"), "stderr: {stderr}");
    assert!(!stderr.contains(TOKEN), "the token never reaches the logs");
}

#[test]
fn a_refused_token_stops_a_required_connector_with_exit_two() {
    let (_server, addr) = server();
    let dir = Dir::with_config("denied", &config(&addr, "    required: true\n"));
    let (code, stderr) = finish(bot(&dir, "wrong-token").spawn().unwrap());
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("login refused: bad token or nick"),
        "the permanent error is logged: {stderr}"
    );
    assert!(
        stderr.ends_with(
            "\nerror: required connector `linechat` failed and will not be retried; the bot has shut down\n"
        ),
        "stderr: {stderr}"
    );
}

#[test]
fn a_configuration_error_is_one_line_and_exit_two() {
    let dir = Dir::with_config(
        "bad-config",
        "connectors:\n  linechat:\n    token: x\n    nick: [not, a, nick]\n",
    );
    let (code, stderr) = finish(bot(&dir, TOKEN).spawn().unwrap());
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert_eq!(
        stderr,
        "error: configuration.yaml:4:11: connectors.linechat.nick: invalid type: sequence, expected a string\n"
    );

    let dir = Dir::with_config(
        "unset",
        "connectors:\n  linechat:\n    address: $UNSET_LINECHAT_ADDRESS\n    token: x\n",
    );
    let (code, stderr) = finish(bot(&dir, TOKEN).spawn().unwrap());
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert_eq!(
        stderr.matches("is not set").count(),
        1,
        "said once: {stderr}"
    );
}
