//! The real `bot` binary as a process: piped conversations, `--config`, the exact
//! configuration and usage errors (exit 2, nothing on stdout), SIGTERM, and secrets that
//! must never reach the output.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod support;

use support::*;

/// The usage text, as the binary prints it.
const USAGE: &str = connector_examples::cli::USAGE;

/// Runs the bot with `--config NAME` where NAME holds `contents`, and asserts a
/// configuration error: exit 2, nothing on stdout, exactly `message` on stderr.
fn assert_config_error(contents: impl AsRef<[u8]>, message: &str) {
    let dir = TempDir::new();
    dir.write("configuration.yaml", contents);
    let mut cmd = bot(dir.path());
    cmd.args(["--config", "configuration.yaml"]);
    assert_error(cmd, message);
}

fn assert_error(cmd: Command, message: &str) {
    let out = run(cmd, b"hello\n");
    assert_eq!(out.code(), Some(2), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "", "nothing may be printed on stdout");
    assert_eq!(out.stderr, message);
}

#[test]
fn piped_hello_gets_a_greeting_and_exits_zero() {
    let dir = TempDir::new();
    let out = run(bot(dir.path()), b"hello\n");
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert!(out.stdout.contains("Hi "), "stdout: {:?}", out.stdout);
    assert_eq!(out.stdout, "Hi tester\n");
}

#[test]
fn piped_conversation_prints_exactly_the_replies() {
    let dir = TempDir::new();
    let out = run(bot(dir.path()), b"hi\nfoo bar\n");
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "Hi tester\nfoo bar\n");
    assert_eq!(out.stderr, "", "default logging is quiet");
}

#[test]
fn empty_stdin_exits_zero_without_output() {
    let dir = TempDir::new();
    let out = run(bot(dir.path()), b"");
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "");
}

#[test]
fn config_file_is_loaded() {
    let dir = TempDir::new();
    // Only `hello` is enabled, so `foo` gets no echo.
    dir.write(
        "configuration.yaml",
        "welcome-message: false\nlogging:\n  level: warning\nconnectors:\n  shell:\n    bot-name: mybot\nskills:\n  hello: {}\n",
    );
    let mut cmd = bot(dir.path());
    cmd.args(["--config", "configuration.yaml"]);
    let out = run(cmd, b"hello\nfoo\n");
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "Hi tester\n");

    // The short flag and an absolute path work too, and the echo skill when enabled.
    let path = dir.write(
        "other.yaml",
        "connectors:\n  shell: {}\nskills:\n  echo: {}\n",
    );
    let mut cmd = bot(dir.path());
    cmd.arg("-c").arg(&path);
    let out = run(cmd, b"hello\nfoo\n");
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "hello\nfoo\n");
}

#[test]
fn config_env_var_is_substituted() {
    let dir = TempDir::new();
    dir.write(
        "configuration.yaml",
        "connectors:\n  shell:\n    bot-name: ${BOT_NAME_FOR_TEST}\nskills:\n  hello: {}\n",
    );
    let mut cmd = bot(dir.path());
    cmd.args(["--config", "configuration.yaml"])
        .env("BOT_NAME_FOR_TEST", "mybot");
    let out = run(cmd, b"hello\n");
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "Hi tester\n");
}

#[test]
fn malformed_yaml_is_reported_with_line_and_column() {
    assert_config_error(
        "connectors:\n  shell:\n    bot-name: [1, 2\n",
        "error: configuration.yaml:4:1: invalid YAML: did not find expected ',' or ']', \
         while parsing a flow sequence at line 3 column 15\n",
    );
}

#[test]
fn wrong_type_deep_in_a_section_names_the_path_and_position() {
    assert_config_error(
        "connectors:\n  shell:\n    bot-name: [1, 2]\n",
        "error: configuration.yaml:3:15: connectors.shell.bot-name: invalid type: sequence, \
         expected a string\n",
    );
    assert_config_error(
        "connectors:\n  shell:\n    bot-name: {a: 1}\n",
        "error: configuration.yaml:3:15: connectors.shell.bot-name: invalid type: map, \
         expected a string\n",
    );
}

#[test]
fn unknown_connector_type_names_it_and_the_known_types() {
    assert_config_error(
        "connectors: {slack: {}}\n",
        "error: configuration.yaml:1:14: connectors.slack: unknown connector type `slack` \
         (known: irc, matrix, shell, websocket)\nhelp: register it with `BotBuilder::connector::<YourConnector>()`, \
         or fix the name\n",
    );
}

#[test]
fn unknown_skill_names_it_and_the_known_skills() {
    assert_config_error(
        "connectors:\n  shell: {}\nskills:\n  nosuch: {}\n",
        "error: configuration.yaml:4:3: skills.nosuch: unknown skill `nosuch` (known: hello, remember, announce, echo)\n\
         help: register it with `BotBuilder::skill(...)`, or remove it from `skills:`\n",
    );
}

#[test]
fn unset_env_var_names_the_variable() {
    assert_config_error(
        "connectors:\n  shell:\n    bot-name: $NOT_SET_ANYWHERE_123\n",
        "error: configuration.yaml:3:15: connectors.shell.bot-name: environment variable \
         `NOT_SET_ANYWHERE_123` is not set (use `${NOT_SET_ANYWHERE_123:-default}` for a \
         default)\n",
    );
}

#[test]
fn missing_file_is_reported() {
    let dir = TempDir::new();
    let mut cmd = bot(dir.path());
    cmd.args(["--config", "does-not-exist.yaml"]);
    assert_error(
        cmd,
        "error: does-not-exist.yaml: cannot read configuration file: No such file or \
         directory (os error 2)\n",
    );
}

#[test]
fn top_level_list_is_rejected() {
    assert_config_error(
        "- a\n- b\n",
        "error: configuration.yaml:1:1: the top level must be a mapping, found a sequence\n",
    );
}

#[test]
fn empty_file_is_rejected() {
    assert_config_error(
        "",
        "error: configuration.yaml: configuration is empty: expected a mapping with a \
         `connectors:` section\n",
    );
}

#[test]
fn non_utf8_file_is_rejected_with_the_offending_byte() {
    assert_config_error(
        b"connectors:\n  shell:\n    bot-name: \xff\xfe\n".as_slice(),
        "error: configuration.yaml:3:15: file is not valid UTF-8: invalid byte 0xFF at byte \
         offset 35\nhelp: save the file with UTF-8 encoding\n",
    );
}

#[test]
fn unknown_argument_prints_usage_and_exits_two() {
    let dir = TempDir::new();
    let mut cmd = bot(dir.path());
    cmd.arg("--bogus");
    assert_error(
        cmd,
        &format!("error: unknown argument `--bogus`\n\n{USAGE}\n"),
    );
}

#[test]
fn config_flag_without_a_file_prints_usage_and_exits_two() {
    let dir = TempDir::new();
    let mut cmd = bot(dir.path());
    cmd.arg("--config");
    assert_error(
        cmd,
        &format!("error: --config needs a file name\n\n{USAGE}\n"),
    );
}

#[test]
fn a_role_that_is_none_or_cannot_run_is_a_usage_or_configuration_error() {
    let dir = TempDir::new();
    let mut cmd = bot(dir.path());
    cmd.args(["--role", "workers"]);
    assert_error(
        cmd,
        &format!("error: unknown role `workers`: expected connectors, skills or all\n\n{USAGE}\n"),
    );
    // The embedded configuration has no `cluster:` section to find NATS with.
    let mut cmd = bot(dir.path());
    cmd.args(["--role", "skills"]);
    let expected = if cfg!(feature = "cluster") {
        "error: `cluster.nats` is needed to run a skills process: the NATS server's address, e.g. `nats: nats://127.0.0.1:4222`\n"
    } else {
        "error: --role skills needs the bot built with the `cluster` feature: cargo run --bin bot --features cluster -- --role skills --config FILE\n"
    };
    assert_error(cmd, expected);
    // `all` is the one-process bot.
    let mut cmd = bot(dir.path());
    cmd.args(["--role", "all"]);
    let out = run(cmd, b"hello\n");
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert!(out.stdout.contains("Hi "), "stdout: {:?}", out.stdout);
}

#[test]
fn help_prints_usage_on_stdout_and_exits_zero() {
    let dir = TempDir::new();
    for flag in ["--help", "-h"] {
        let mut cmd = bot(dir.path());
        cmd.arg(flag);
        let out = run(cmd, b"");
        assert_eq!(out.code(), Some(0), "{flag}: stderr: {}", out.stderr);
        assert_eq!(out.stdout, format!("{USAGE}\n"), "{flag}");
        assert_eq!(out.stderr, "", "{flag}");
    }
}

#[test]
fn sigterm_shuts_down_cleanly_with_exit_zero() {
    let dir = TempDir::new();
    let mut child = bot(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bot");
    // Kept open until the bot has exited, so `listen` never sees end of input.
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let err = drain(child.stderr.take().expect("stderr"));

    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });

    stdin.write_all(b"hello\n").expect("write to the bot");
    stdin.flush().expect("flush");
    let first = match lines_rx.recv_timeout(LIMIT) {
        Ok(line) => line,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the bot did not answer: {e}");
        }
    };
    assert_eq!(first, "Hi tester");

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");

    let status = wait_with_limit(&mut child, Duration::from_secs(10));
    drop(stdin);
    let _ = reader.join();
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM must give a clean exit, got {status:?}; stderr: {stderr}"
    );
    assert!(lines_rx.try_recv().is_err(), "nothing more was printed");
}

#[test]
fn secrets_never_reach_the_output_even_at_trace_level() {
    let dir = TempDir::new();
    dir.write(
        "configuration.yaml",
        "logging:\n  level: debug\nconnectors:\n  shell:\n    bot-name: mybot\n    \
         token: s3cr3t-token-value\n    password: ${SECRET_PW}\nskills:\n  hello: {}\n  echo: {}\n",
    );
    let mut cmd = bot(dir.path());
    cmd.args(["--config", "configuration.yaml"])
        .env("RUST_LOG", "trace")
        .env("SECRET_PW", "hunter2-secret");
    let out = run(cmd, b"hello\n");
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "Hi tester\n");
    // Verbose logging is really on, so the check below means something. (Not keyed on a
    // TRACE line: the only one, for `BotStarted`, races the end of input.)
    assert!(
        out.stderr.contains("bot is running") && out.stderr.contains("Bye!"),
        "expected trace logs on stderr, got: {}",
        out.stderr
    );
    for secret in ["s3cr3t-token-value", "hunter2-secret"] {
        assert!(!out.stdout.contains(secret), "{secret} leaked on stdout");
        assert!(!out.stderr.contains(secret), "{secret} leaked on stderr");
    }
}

#[test]
fn a_required_connector_that_gives_up_stops_the_bot_with_exit_two() {
    // A missing CA file is a permanent error: the IRC connector gives up on its first
    // connect, once TCP is up (the listener's backlog accepts it; nothing is ever sent).
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    let yaml = format!(
        "welcome-message: false\nlogging:\n  level: error\nconnectors:\n  shell: {{}}\n  irc:\n    server: 127.0.0.1\n    port: {port}\n    nick: bot\n    tls: true\n    tls-ca-file: does-not-exist.pem\n    required: true\n"
    );
    let dir = TempDir::new();
    dir.write("configuration.yaml", &yaml);
    let mut cmd = bot(dir.path());
    cmd.args(["--config", "configuration.yaml"]);
    let out = run(cmd, b"");
    assert_eq!(out.code(), Some(2), "stderr: {}", out.stderr);
    assert!(
        out.stderr.ends_with(
            "error: required connector `irc` failed and will not be retried; the bot has shut down\n"
        ),
        "stderr: {}",
        out.stderr
    );

    // Not required: the same failure leaves the shell serving, and the bot exits 0 at the
    // end of its input.
    dir.write(
        "configuration.yaml",
        yaml.replace("required: true", "required: false"),
    );
    let mut cmd = bot(dir.path());
    cmd.args(["--config", "configuration.yaml"]);
    let out = run(cmd, b"hello\n");
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "Hi tester\n");
}

#[test]
fn an_unknown_top_level_key_is_a_warning_and_the_bot_serves() {
    let dir = TempDir::new();
    dir.write(
        "configuration.yaml",
        "welcome-message: false\nconnectors:\n  shell: {}\nbogus-key: 1\n",
    );
    let mut cmd = bot(dir.path());
    cmd.args(["--config", "configuration.yaml"]);
    let out = run(cmd, b"hello\n");
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "Hi tester\n");
    assert!(
        out.stderr
            .contains("unknown top-level configuration key `bogus-key` ignored"),
        "stderr: {}",
        out.stderr
    );
}
