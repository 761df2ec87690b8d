//! Logging set up by the SDK from the `logging:` section, seen from outside: the `bot`
//! binary as a process (a process of its own per case, since a subscriber is global).

mod support;

use support::*;

/// Runs the bot on `logging_yaml` (the `logging:` section's lines) with `hello` on stdin.
fn run_with(logging_yaml: &str, dir: &TempDir, rust_log: Option<&str>) -> Outcome {
    dir.write(
        "configuration.yaml",
        format!("connectors:\n  shell: {{}}\nskills:\n  hello: {{}}\nlogging:\n{logging_yaml}"),
    );
    let mut cmd = bot(dir.path());
    cmd.args(["--config", "configuration.yaml"]);
    if let Some(v) = rust_log {
        cmd.env("RUST_LOG", v);
    }
    let out = run(cmd, b"hello\n");
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "Hi tester\n", "logs never go to stdout");
    out
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn level_info_prints_the_life_cycle_on_stderr() {
    let dir = TempDir::new();
    let out = run_with("  level: info\n", &dir, None);
    let running = lines_with(&out.stderr, "bot is running connectors=");
    assert_eq!(running.len(), 1, "stderr: {}", out.stderr);
    assert!(
        running[0]
            .trim_start()
            .starts_with("INFO connector_core::lifecycle: bot is running"),
        "opsdroid's `LEVEL module: message` line, got {:?}",
        running[0]
    );
    assert!(out.stderr.contains("Bye!"), "stderr: {}", out.stderr);
}

#[test]
fn a_level_hides_what_is_below_it() {
    let dir = TempDir::new();
    let out = run_with("  level: warning\n", &dir, None);
    assert_eq!(out.stderr, "", "nothing at warning level in a clean run");
}

#[test]
fn path_appends_to_a_file_and_console_false_keeps_stderr_empty() {
    let dir = TempDir::new();
    // Directories that do not exist yet are created, as opsdroid does.
    let yaml = "  level: info\n  console: false\n  path: logs/nested/bot.log\n";
    let out = run_with(yaml, &dir, None);
    assert_eq!(out.stderr, "", "console: false");
    let log = dir.path().join("logs/nested/bot.log");
    let first = std::fs::read_to_string(&log).expect("the log file exists");
    assert_eq!(
        lines_with(&first, "bot is running connectors=").len(),
        1,
        "file: {first}"
    );
    assert!(!first.contains('\u{1b}'), "no colour codes in a file");
    // A second run appends.
    run_with(yaml, &dir, None);
    let second = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        lines_with(&second, "bot is running connectors=").len(),
        2,
        "file: {second}"
    );
}

#[test]
fn extended_names_the_source_file_and_line_and_timestamp_the_time() {
    let dir = TempDir::new();
    let out = run_with("  level: info\n  extended: true\n", &dir, None);
    let line = lines_with(&out.stderr, "bot is running")[0];
    assert!(
        line.contains("connector_core::lifecycle: connector-core/src/lifecycle.rs:"),
        "extended: {line:?}"
    );
    let out = run_with("  level: info\n  timestamp: true\n", &dir, None);
    let line = lines_with(&out.stderr, "bot is running")[0];
    assert!(
        line.starts_with("20") && line.as_bytes()[4] == b'-' && line.contains('T'),
        "timestamp: {line:?}"
    );
    let out = run_with("  level: info\n", &dir, None);
    let line = lines_with(&out.stderr, "bot is running")[0];
    assert!(!line.starts_with("20"), "no time unless asked: {line:?}");
}

#[test]
fn the_whitelist_shows_only_its_modules_and_the_blacklist_hides_its_own() {
    let dir = TempDir::new();
    // An unknown top-level key: a warning from `connector_core::config`, next to the life
    // cycle's lines from `connector_core::lifecycle`.
    let with_filter = |filter: &str| {
        dir.write(
            "configuration.yaml",
            format!("connectors:\n  shell: {{}}\nbogus-key: 1\nlogging:\n  level: info\n{filter}"),
        );
        let mut cmd = bot(dir.path());
        cmd.args(["--config", "configuration.yaml"]);
        let out = run(cmd, b"hello\n");
        assert_eq!(out.stdout, "Hi tester\n", "stderr: {}", out.stderr);
        out.stderr
    };
    let all = with_filter("");
    assert!(
        all.contains("connector_core::lifecycle: bot is running"),
        "stderr: {all}"
    );
    assert!(all.contains("connector_core::config:"), "stderr: {all}");
    assert!(all.contains("`bogus-key` ignored"), "stderr: {all}");

    let only_lifecycle = with_filter("  filter:\n    whitelist: [connector_core.lifecycle]\n");
    assert!(
        only_lifecycle.contains("bot is running"),
        "stderr: {only_lifecycle}"
    );
    for line in only_lifecycle.lines() {
        assert!(
            line.contains("connector_core::lifecycle:"),
            "whitelist let through {line:?}"
        );
    }

    let no_lifecycle = with_filter("  filter:\n    blacklist: [connector_core::lifecycle]\n");
    assert!(
        no_lifecycle.contains("`bogus-key` ignored"),
        "stderr: {no_lifecycle}"
    );
    assert!(
        !no_lifecycle.contains("lifecycle"),
        "blacklist let through: {no_lifecycle}"
    );

    let no_core = with_filter("  filter:\n    blacklist: [connector-core]\n");
    assert_eq!(no_core, "", "a crate name covers all its modules");
}

#[test]
fn both_lists_use_the_whitelist_and_say_so() {
    let dir = TempDir::new();
    let yaml = "  level: info\n  filter:\n    whitelist: [connector_core::lifecycle]\n    blacklist: [connector_core::lifecycle]\n";
    let out = run_with(yaml, &dir, None);
    assert!(
        out.stderr.contains(
            "Both whitelist and blacklist filters found in configuration. Only one can be used at a time - only the whitelist filter will be used."
        ),
        "stderr: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("bot is running"),
        "the whitelist is used"
    );
}

#[test]
fn rust_log_wins_over_the_configuration() {
    let dir = TempDir::new();
    let out = run_with(
        "  level: error\n",
        &dir,
        Some("connector_core::lifecycle=info"),
    );
    assert!(
        out.stderr.contains("bot is running"),
        "stderr: {}",
        out.stderr
    );
    // …and over its filter.
    let yaml = "  level: info\n  filter: {blacklist: [connector_core]}\n";
    let out = run_with(yaml, &dir, Some("info"));
    assert!(
        out.stderr.contains("bot is running"),
        "stderr: {}",
        out.stderr
    );
    // A RUST_LOG that is not a filter is said, and the configuration is used.
    let out = run_with("  level: info\n", &dir, Some("connector_core=loud"));
    assert!(
        out.stderr.contains("RUST_LOG is not a valid filter"),
        "stderr: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("bot is running"),
        "stderr: {}",
        out.stderr
    );
}

#[test]
fn a_log_file_that_cannot_be_opened_is_a_located_configuration_error() {
    let dir = TempDir::new();
    dir.write("not-a-directory", "x");
    dir.write(
        "configuration.yaml",
        "connectors:\n  shell: {}\nlogging:\n  path: not-a-directory/bot.log\n",
    );
    let mut cmd = bot(dir.path());
    cmd.args(["--config", "configuration.yaml"]);
    let out = run(cmd, b"hello\n");
    assert_eq!(out.code(), Some(2), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.starts_with(
            "error: configuration.yaml:4:9: logging.path: cannot open the log file `not-a-directory/bot.log`: "
        ) && out.stderr.lines().count() == 1,
        "stderr: {}",
        out.stderr
    );
}

#[test]
fn a_path_of_true_is_a_located_configuration_error() {
    let dir = TempDir::new();
    dir.write(
        "configuration.yaml",
        "connectors:\n  shell: {}\nlogging:\n  path: true\n",
    );
    let mut cmd = bot(dir.path());
    cmd.args(["--config", "configuration.yaml"]);
    let out = run(cmd, b"");
    assert_eq!(out.code(), Some(2), "stderr: {}", out.stderr);
    assert_eq!(
        out.stderr,
        "error: configuration.yaml:4:9: logging.path: expected a file path, or `false` for no log file\n"
    );
}
