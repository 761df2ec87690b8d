//! Loader tests: every error row asserts the exact message.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::*;

const FULL: &str = "\
connectors:
  shell:
    bot-name: mybot
  websocket-two:
    connector: websocket
    max-connections: 5
    default: true
skills:
  hello: {}
  echo: {some: option}
logging: {level: warning}
web: {host: 127.0.0.1, port: 8080}
welcome-message: true
runtime:
  error-reply: \"Whoops there has been an error.\"
  ignore-own-messages: true
  shutdown-timeout: 10
  disconnect-timeout: 5
  reconnect: {initial: 1, max: 60, factor: 2, jitter: 0.2, max-attempts: null}
";

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_str_with_env(text, "configuration.yaml", &no_env)
}

fn load_env(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_str_with_env(text, "configuration.yaml", &move |k| map.get(k).cloned())
}

fn err(text: &str) -> String {
    match load(text) {
        Ok(c) => format!("unexpectedly loaded: {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn must<T>(r: Result<T, ConfigError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Ws {
    max_connections: u32,
}

#[test]
fn full_example_loads() {
    let cfg = must(load(FULL));
    assert_eq!(cfg.origin(), "configuration.yaml");
    assert_eq!(cfg.connectors.len(), 2);
    let shell = match cfg.connector("shell") {
        Some(s) => s,
        None => panic!("shell missing"),
    };
    assert_eq!(shell.kind, "shell");
    assert!(!shell.is_default);
    assert_eq!(shell.get_str("bot-name"), Some("mybot"));
    let ws = cfg.connector("websocket-two");
    let ws = match ws {
        Some(ws) => ws,
        None => panic!("websocket-two missing"),
    };
    assert_eq!(ws.kind, "websocket");
    assert!(ws.is_default);
    assert_eq!(ws.path(), "connectors.websocket-two");
    // Reserved keys are stripped from raw.
    assert!(ws.raw().get("connector").is_none());
    assert!(ws.raw().get("default").is_none());
    assert_eq!(must(ws.deserialize::<Ws>()).max_connections, 5);
    assert_eq!(
        cfg.default_connector().map(|c| c.name.as_str()),
        Some("websocket-two")
    );

    let names: Vec<&str> = cfg.skills.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["hello", "echo"]);
    assert_eq!(
        cfg.skill("echo").and_then(|s| s.get_str("some")),
        Some("option")
    );
    assert!(
        cfg.skill("hello")
            .is_some_and(|s| s.raw().as_mapping().is_some_and(|m| m.is_empty()))
    );

    assert_eq!(cfg.logging.level.as_deref(), Some("warn"));
    assert!(cfg.logging.console);
    assert_eq!(
        cfg.web,
        WebConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            configured: true,
            ..WebConfig::default()
        }
    );
    assert!(cfg.welcome_message);
    assert_eq!(cfg.runtime, RuntimeConfig::default());
}

#[test]
fn defaults_when_sections_absent() {
    let cfg = must(load("connectors:\n  shell:\n"));
    assert_eq!(cfg.logging, LoggingConfig::default());
    assert_eq!(cfg.logging.level, None);
    assert_eq!(cfg.web.host, "127.0.0.1");
    assert_eq!(cfg.web.port, 8080);
    assert!(cfg.skills.is_empty());
    assert!(cfg.welcome_message);
    let rt = &cfg.runtime;
    assert_eq!(
        rt.error_reply.as_deref(),
        Some("Whoops there has been an error.")
    );
    assert!(rt.ignore_own_messages);
    assert_eq!(rt.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(rt.disconnect_timeout, Duration::from_secs(5));
    assert_eq!(rt.reconnect, ReconnectPolicy::default());
    assert_eq!(rt.reconnect.initial, Duration::from_secs(1));
    assert_eq!(rt.reconnect.max, Duration::from_secs(60));
    assert_eq!(rt.reconnect.max_attempts, None);
}

#[test]
fn runtime_values() {
    let cfg = must(load(
        "connectors: {shell: }\nruntime:\n  error-reply: ''\n  shutdown-timeout: 2.5\n  reconnect: {max-attempts: 4, factor: 1.5}\nlogging: {level: CRITICAL, console: false}\n",
    ));
    assert_eq!(cfg.runtime.error_reply, None);
    assert_eq!(cfg.runtime.shutdown_timeout, Duration::from_millis(2500));
    assert_eq!(cfg.runtime.reconnect.max_attempts, Some(4));
    assert_eq!(cfg.runtime.reconnect.factor, 1.5);
    assert_eq!(cfg.logging.level.as_deref(), Some("error"));
    assert!(!cfg.logging.console);
    let cfg = must(load(
        "connectors: {shell: }\nruntime: {error-reply: null}\n",
    ));
    assert_eq!(cfg.runtime.error_reply, None);
}

#[test]
fn two_instances_of_one_type() {
    let cfg = must(load(
        "connectors:\n  team-a:\n    connector: slack\n    token: a\n  team-b:\n    connector: slack\n    token: b\n",
    ));
    let kinds: Vec<(&str, &str, Option<&str>)> = cfg
        .connectors
        .iter()
        .map(|c| (c.name.as_str(), c.kind.as_str(), c.get_str("token")))
        .collect();
    assert_eq!(
        kinds,
        [
            ("team-a", "slack", Some("a")),
            ("team-b", "slack", Some("b"))
        ]
    );
    // Without `default: true`, the first one is the default.
    assert_eq!(
        cfg.default_connector().map(|c| c.name.as_str()),
        Some("team-a")
    );
}

#[test]
fn null_connector_section_is_empty_mapping() {
    let cfg = must(load("connectors:\n  shell:\n"));
    let shell = cfg.connector("shell");
    assert!(shell.is_some_and(|s| s.raw().is_empty() && s.kind == "shell"));
}

#[test]
fn disabled_connector_is_left_out() {
    let cfg = must(load("connectors:\n  shell:\n  ws:\n    enabled: false\n"));
    assert!(cfg.connector("ws").is_none());
    assert_eq!(
        err("connectors:\n  ws:\n    enabled: false\n"),
        "configuration.yaml:1:1: connectors: no connectors configured: add a `connectors:` section"
    );
}

#[test]
fn env_forms() {
    let text = "connectors:\n  shell:\n    a: $A\n    b: ${A}\n    c: pre-${A}-post\n    d: $TOKEN_2\n    e: ${X:-dflt}\n    f: $$\n    g: \"quoted-$A\"\n    h: cost $$5 and $ alone\n    list: [$A, x]\n    $A: key-not-substituted\n";
    let cfg = must(load_env(text, &[("A", "alpha"), ("TOKEN_2", "t2")]));
    let s = match cfg.connector("shell") {
        Some(s) => s,
        None => panic!("no shell"),
    };
    assert_eq!(s.get_str("a"), Some("alpha"));
    assert_eq!(s.get_str("b"), Some("alpha"));
    assert_eq!(s.get_str("c"), Some("pre-alpha-post"));
    assert_eq!(s.get_str("d"), Some("t2"));
    assert_eq!(s.get_str("e"), Some("dflt"));
    assert_eq!(s.get_str("f"), Some("$"));
    assert_eq!(s.get_str("g"), Some("quoted-alpha"));
    assert_eq!(s.get_str("h"), Some("cost $5 and $ alone"));
    assert_eq!(
        s.get("list")
            .and_then(|l| l.get(0))
            .and_then(|v| v.as_str()),
        Some("alpha")
    );
    assert_eq!(s.get_str("$A"), Some("key-not-substituted"));
}

#[test]
fn unset_env_var_error() {
    assert_eq!(
        err("connectors:\n  mychat:\n    token: $CHAT_TOKEN\n"),
        "configuration.yaml:3:12: connectors.mychat.token: environment variable `CHAT_TOKEN` is not set (use `${CHAT_TOKEN:-default}` for a default)"
    );
    assert_eq!(
        err("connectors:\n  mychat:\n    rooms:\n      - ok\n      - \"#${ROOM\"\n"),
        "configuration.yaml:5:9: connectors.mychat.rooms.1: unterminated `${` at character 1: expected a closing `}` (write `$$` for a literal `$`)"
    );
    let e = load("connectors:\n  mychat:\n    token: $CHAT_TOKEN\n").err();
    assert_eq!(
        e.as_ref().and_then(|e| e.path()),
        Some("connectors.mychat.token")
    );
    assert_eq!(e.as_ref().and_then(|e| e.line()), Some(3));
    assert_eq!(e.as_ref().and_then(|e| e.column()), Some(12));
    assert!(matches!(
        e,
        Some(ConfigError::Env { error: EnvError::Unset { ref var }, .. }) if var == "CHAT_TOKEN"
    ));
}

#[test]
fn lone_unquoted_reference_is_retyped() {
    let text = "connectors: {shell: }\nweb:\n  port: $PORT\n  host: \"$HOST\"\nruntime:\n  ignore-own-messages: $IGN\n  reconnect:\n    max-attempts: ${MAX:-null}\n";
    let cfg = must(load_env(
        text,
        &[("PORT", "8081"), ("HOST", "0.0.0.0"), ("IGN", "false")],
    ));
    assert_eq!(cfg.web.port, 8081);
    assert_eq!(cfg.web.host, "0.0.0.0");
    assert!(!cfg.runtime.ignore_own_messages);
    assert_eq!(cfg.runtime.reconnect.max_attempts, None);

    // Quoted stays a string (so a typed u16 field rejects it), as documented.
    assert_eq!(
        load_env(
            "connectors: {shell: }\nweb:\n  port: \"$PORT\"\n",
            &[("PORT", "8081")]
        )
        .err()
        .map(|e| e.to_string()),
        Some(
            "configuration.yaml:3:9: web.port: invalid type: string \"8081\", expected u16"
                .to_string()
        )
    );
    // A reference with surrounding text stays a string.
    let cfg = must(load_env(
        "connectors:\n  shell:\n    v: ${N}0\n    w: $N\n    x: $E\n",
        &[("N", "1"), ("E", "")],
    ));
    let s = cfg.connector("shell");
    assert_eq!(s.and_then(|s| s.get_str("v")), Some("10"));
    assert_eq!(s.and_then(|s| s.get("w")).and_then(|v| v.as_u64()), Some(1));
    assert_eq!(s.and_then(|s| s.get_str("x")), Some(""));
}

#[test]
fn typed_error_has_full_path_and_position() {
    let text = "connectors:\n  shell:\n  websocket:\n    max-connections: ten\n";
    let cfg = must(load(text));
    let e = cfg.connector("websocket").map(|c| c.deserialize::<Ws>());
    let e = match e {
        Some(Err(e)) => e,
        other => panic!("expected error, got {other:?}"),
    };
    assert_eq!(
        e.to_string(),
        "configuration.yaml:4:22: connectors.websocket.max-connections: invalid type: string \"ten\", expected u32"
    );
    assert_eq!(e.path(), Some("connectors.websocket.max-connections"));
    assert_eq!((e.line(), e.column()), (Some(4), Some(22)));
    assert_eq!(e.origin(), "configuration.yaml");
}

#[derive(Debug, Deserialize)]
struct Limits {
    #[allow(dead_code)]
    burst: u32,
}

#[derive(Debug, Deserialize)]
struct Deep {
    #[allow(dead_code)]
    limits: Limits,
    #[allow(dead_code)]
    #[serde(default)]
    rooms: Vec<u32>,
}

#[test]
fn wrong_type_at_depth_three() {
    let text = "connectors:\n  chat:\n    limits:\n      burst: [1, 2]\n";
    let cfg = must(load(text));
    let e = cfg
        .connector("chat")
        .map(|c| c.deserialize::<Deep>().map_err(|e| e.to_string()));
    assert_eq!(
        e.and_then(Result::err).as_deref(),
        Some(
            "configuration.yaml:4:14: connectors.chat.limits.burst: invalid type: sequence, expected u32"
        )
    );
    let text = "connectors:\n  chat:\n    limits: {burst: 1}\n    rooms:\n      - 1\n      - two\n";
    let cfg = must(load(text));
    let e = cfg
        .connector("chat")
        .map(|c| c.deserialize::<Deep>().map_err(|e| e.to_string()));
    assert_eq!(
        e.and_then(Result::err).as_deref(),
        Some(
            "configuration.yaml:6:9: connectors.chat.rooms.1: invalid type: string \"two\", expected u32"
        )
    );
}

#[derive(Debug, Deserialize)]
struct NeedsToken {
    #[allow(dead_code)]
    token: String,
}

#[test]
fn missing_field_points_at_section_key() {
    let cfg = must(load("connectors:\n  shell:\n  websocket:\n    url: x\n"));
    let e = cfg
        .connector("websocket")
        .and_then(|c| c.deserialize::<NeedsToken>().err());
    assert_eq!(
        e.map(|e| e.to_string()).as_deref(),
        Some("configuration.yaml:3:3: connectors.websocket: missing field `token`")
    );
    // Null section: still points at the key.
    let cfg = must(load("connectors:\n  shell:\n"));
    let e = cfg
        .connector("shell")
        .and_then(|c| c.deserialize::<NeedsToken>().err());
    assert_eq!(
        e.map(|e| e.to_string()).as_deref(),
        Some("configuration.yaml:2:3: connectors.shell: missing field `token`")
    );
}

#[test]
fn skill_deserialize_paths() {
    #[derive(Debug, Deserialize)]
    struct Echo {
        #[allow(dead_code)]
        times: u8,
    }
    let cfg = must(load(
        "connectors: {shell: }\nskills:\n  echo:\n    times: 300\n",
    ));
    let e = cfg
        .skill("echo")
        .and_then(|s| s.deserialize::<Echo>().err());
    assert_eq!(
        e.map(|e| e.to_string()).as_deref(),
        Some(
            "configuration.yaml:4:12: skills.echo.times: invalid value: integer `300`, expected u8"
        )
    );
    let cfg = must(load(
        "connectors: {shell: }\nskills:\n  - name: hello\n  - name: echo\n    times: x\n  - dance\n",
    ));
    let names: Vec<&str> = cfg.skills.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["hello", "echo", "dance"]);
    let e = cfg
        .skill("echo")
        .and_then(|s| s.deserialize::<Echo>().err());
    assert_eq!(
        e.map(|e| e.to_string()).as_deref(),
        Some("configuration.yaml:5:12: skills.1.times: invalid type: string \"x\", expected u8")
    );
}

#[test]
fn section_error_helper() {
    let cfg = must(load("connectors:\n  ws:\n    url: http://x\n"));
    let e = cfg
        .connector("ws")
        .map(|c| c.error("url", "must start with ws:// or wss://"));
    assert_eq!(
        e.map(|e| e.to_string()).as_deref(),
        Some("configuration.yaml:3:10: connectors.ws.url: must start with ws:// or wss://")
    );
}

#[test]
fn typed_sections_report_location() {
    assert_eq!(
        err("connectors: {shell: }\nweb:\n  port: abc\n"),
        "configuration.yaml:3:9: web.port: invalid type: string \"abc\", expected u16"
    );
    assert_eq!(
        err("connectors: {shell: }\nweb: {port: 70000}\n"),
        "configuration.yaml:2:13: web.port: invalid value: integer `70000`, expected u16"
    );
    assert_eq!(
        err("connectors: {shell: }\nlogging:\n  level: loud\n"),
        "configuration.yaml:3:10: logging.level: unknown log level `loud`, expected one of trace, debug, info, warning, error, critical"
    );
    assert_eq!(
        err("connectors: {shell: }\nruntime:\n  shutdown-timeout: -1\n"),
        "configuration.yaml:3:21: runtime.shutdown-timeout: invalid duration -1: expected a non-negative number of seconds"
    );
    assert_eq!(
        err("connectors: {shell: }\nruntime:\n  reconnect:\n    max: -0.5\n"),
        "configuration.yaml:4:10: runtime.reconnect.max: invalid duration -0.5: expected a non-negative number of seconds"
    );
    assert_eq!(
        err("connectors: {shell: }\nruntime:\n  disconnect-timeout: 5s\n"),
        "configuration.yaml:3:23: runtime.disconnect-timeout: invalid type: string \"5s\", expected a non-negative number of seconds"
    );
    assert_eq!(
        err("connectors: {shell: }\nruntime:\n  reconnect: {jitter: 1.5}\n"),
        "configuration.yaml:3:23: runtime.reconnect.jitter: invalid jitter 1.5: expected a fraction between 0.0 and 1.0"
    );
    assert_eq!(
        err("connectors: {shell: }\nruntime:\n  reconnect: {factor: 0.5}\n"),
        "configuration.yaml:3:23: runtime.reconnect.factor: invalid backoff factor 0.5: expected a number of at least 1.0"
    );
    assert_eq!(
        err("connectors: {shell: }\nruntime:\n  reconnect: {initial: 30, max: 10}\n"),
        "configuration.yaml:3:24: runtime.reconnect.initial: initial reconnect delay (30s) is greater than `max` (10s)"
    );
    assert_eq!(
        err("connectors: {shell: }\nruntime:\n  shutdown-timout: 3\n"),
        "configuration.yaml:3:3: runtime.shutdown-timout: unknown field `shutdown-timout`, expected one of `error-reply`, `ignore-own-messages`, `shutdown-timeout`, `disconnect-timeout`, `skill-timeout`, `reconnect`"
    );
    assert_eq!(
        err("connectors: {shell: }\nwelcome-message: yes please\n"),
        "configuration.yaml:2:18: welcome-message: expected true or false, found a string"
    );
}

#[test]
fn structural_errors() {
    assert_eq!(
        err(""),
        "configuration.yaml: configuration is empty: expected a mapping with a `connectors:` section"
    );
    assert_eq!(
        err("# only a comment\n\n"),
        "configuration.yaml: configuration is empty: expected a mapping with a `connectors:` section"
    );
    assert_eq!(
        err("- shell\n- websocket\n"),
        "configuration.yaml:1:1: the top level must be a mapping, found a sequence"
    );
    assert_eq!(
        err("just a string\n"),
        "configuration.yaml:1:1: the top level must be a mapping, found a string"
    );
    assert_eq!(
        err("skills: {hello: }\n"),
        "configuration.yaml: no connectors configured: add a `connectors:` section"
    );
    assert_eq!(
        err("skills: {}\nconnectors:\n"),
        "configuration.yaml:2:1: connectors: no connectors configured: add a `connectors:` section"
    );
    assert_eq!(
        err("connectors: {}\n"),
        "configuration.yaml:1:1: connectors: no connectors configured: add a `connectors:` section"
    );
    assert_eq!(
        err("connectors:\n  - shell\n"),
        "configuration.yaml:2:3: connectors: `connectors` must be a mapping from connector name to its settings, found a sequence\nhelp: write each connector as an indented `name:` line under `connectors:`"
    );
    assert_eq!(
        err("connectors:\n  shell: yes\n"),
        "configuration.yaml:2:10: connectors.shell: connector section must be a mapping of settings, found a string\nhelp: write `shell: {}` or leave the value empty to use defaults"
    );
    assert_eq!(
        err("connectors:\n  ws:\n    connector: {type: websocket}\n"),
        "configuration.yaml:3:16: connectors.ws.connector: `connector` must be a non-empty string naming the connector type, found a mapping"
    );
    assert_eq!(
        err("connectors:\n  ws:\n    connector: 5\n"),
        "configuration.yaml:3:16: connectors.ws.connector: `connector` must be a non-empty string naming the connector type, found a number"
    );
    assert_eq!(
        err("connectors:\n  ws:\n    default: maybe\n"),
        "configuration.yaml:3:14: connectors.ws.default: expected true or false, found a string"
    );
    assert_eq!(
        err("connectors:\n  a: {default: true}\n  b: {default: true}\n"),
        "configuration.yaml:3:16: connectors.b.default: more than one default connector: `a` is already the default\nhelp: set `default: true` on only one connector"
    );
    assert_eq!(
        err("connectors:\n  12: {}\n"),
        "configuration.yaml:2:3: connectors.12: connector name must be a string, found a number"
    );
    assert_eq!(
        err("connectors: {shell: }\nskills: 5\n"),
        "configuration.yaml:2:9: skills: `skills` must be a mapping from skill name to its settings, found a number"
    );
    assert_eq!(
        err("connectors: {shell: }\nskills:\n  hello: [1]\n"),
        "configuration.yaml:3:10: skills.hello: skill section must be a mapping of settings, found a sequence\nhelp: write `hello: {}` or leave the value empty to use defaults"
    );
    assert_eq!(
        err("connectors: {shell: }\nweb: 8080\n"),
        "configuration.yaml:2:6: web: invalid type: integer `8080`, expected struct WebConfig"
    );
}

#[test]
fn syntax_error_has_position() {
    let e = load("connectors:\n  shell: [1, 2\nweb: {}\n").err();
    let text = e.as_ref().map(|e| e.to_string());
    assert_eq!(
        text.as_deref(),
        Some(
            "configuration.yaml:3:4: invalid YAML: did not find expected ',' or ']', while parsing a flow sequence at line 2 column 10"
        )
    );
    assert!(matches!(e, Some(ConfigError::Syntax { .. })));
    assert_eq!(
        err("connectors:\n  shell: {}\n  shell: {}\n"),
        "configuration.yaml:2:3: invalid YAML: connectors: duplicate entry with key \"shell\""
    );
    assert_eq!(
        err("connectors:\n\tshell:\n"),
        "configuration.yaml:2:1: invalid YAML: found character that cannot start any token, while scanning for the next token"
    );
}

#[test]
fn unknown_and_ignored_top_level_keys_do_not_error() {
    let cfg = must(load(
        "connectors: {shell: }\nmodule-path: /tmp\ndatabases: {sqlite: }\nparsers: {regex: }\nmystery: 1\n",
    ));
    assert_eq!(cfg.connectors.len(), 1);
}

#[derive(Debug, Deserialize)]
struct ChatConfig {
    token: Secret<String>,
    #[allow(dead_code)]
    room: String,
}

#[test]
fn secret_is_hidden_from_debug() {
    let cfg = must(load_env(
        "connectors:\n  chat:\n    token: $TOK\n    room: lobby\n    password: literal-pa55\n",
        &[("TOK", "s3cr3t-value")],
    ));
    let chat = match cfg.connector("chat") {
        Some(c) => c,
        None => panic!("no chat"),
    };
    let typed: ChatConfig = must(chat.deserialize());
    assert_eq!(typed.token.expose(), "s3cr3t-value");
    let shown = format!("{typed:?}");
    assert!(!shown.contains("s3cr3t-value"), "{shown}");
    assert!(shown.contains("Secret(***)"), "{shown}");
    // The whole Config's Debug shows keys, never values (nor the source text).
    let whole = format!("{cfg:?}");
    assert!(!whole.contains("s3cr3t-value"), "{whole}");
    assert!(!whole.contains("literal-pa55"), "{whole}");
    assert!(whole.contains("password"), "{whole}");
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("cfgdev-{}-{name}", std::process::id()));
    if let Err(e) = std::fs::write(&path, bytes) {
        panic!("cannot write {}: {e}", path.display());
    }
    path
}

#[test]
fn from_path_non_utf8() {
    let path = temp_file("bad.yaml", b"connectors:\n  shell:\n    name: caf\xe9\n");
    let e = Config::from_path(&path).err().map(|e| e.to_string());
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        e,
        Some(format!(
            "{}:3:14: file is not valid UTF-8: invalid byte 0xE9 at byte offset 34\nhelp: save the file with UTF-8 encoding",
            path.display()
        ))
    );
}

#[test]
fn from_path_reads_and_reports_io_errors() {
    let path = temp_file("good.yaml", FULL.as_bytes());
    let cfg = Config::from_path(&path);
    let _ = std::fs::remove_file(&path);
    let cfg = must(cfg);
    assert_eq!(cfg.origin(), path.display().to_string());
    assert_eq!(cfg.connectors.len(), 2);

    let missing = std::env::temp_dir().join("cfgdev-definitely-missing.yaml");
    let e = Config::from_path(&missing).err();
    assert!(matches!(e, Some(ConfigError::Io { .. })));
    assert_eq!(
        e.map(|e| e.to_string()),
        Some(format!(
            "{}: cannot read configuration file: No such file or directory (os error 2)",
            missing.display()
        ))
    );
}

#[test]
fn from_str_uses_process_env_without_panicking() {
    // A variable that is certainly unset in the test process.
    let e = Config::from_str(
        "connectors:\n  shell:\n    x: $CFGDEV_SURELY_UNSET_VAR_42\n",
        "<embedded>",
    )
    .err()
    .map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some(
            "<embedded>:3:8: connectors.shell.x: environment variable `CFGDEV_SURELY_UNSET_VAR_42` is not set (use `${CFGDEV_SURELY_UNSET_VAR_42:-default}` for a default)"
        )
    );
}

#[test]
fn unknown_and_ignored_keys_are_kept_as_warnings_with_their_lines() {
    let cfg = match load("connectors:\n  shell:\n    module: x\nbogus: 1\nmodule-path: /tmp\n") {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        cfg.warnings(),
        [
            "configuration.yaml:4: unknown top-level configuration key `bogus` ignored",
            "configuration.yaml:5: configuration key `module-path` is accepted for opsdroid compatibility but ignored",
            "configuration.yaml:3: `connectors.shell.module` is ignored: connector types are built in",
        ]
    );
    assert!(load(FULL).map(|c| c.warnings().is_empty()).unwrap_or(false));
}

/// A report that prints the whole chain (`anyhow`'s `{:?}`, what `fn main() ->
/// anyhow::Result<()>` shows) says each cause once: no error's `source()` repeats what its
/// message already says.
#[test]
fn a_chain_report_says_each_cause_once() {
    let e = load("connectors:\n  mychat:\n    token: $CHAT_TOKEN\n")
        .err()
        .unwrap();
    let report = format!("{:?}", anyhow::Error::from(crate::BotError::from(e)));
    assert_eq!(report.matches("is not set").count(), 1, "{report}");
    assert!(!report.contains("Caused by"), "{report}");

    let missing = std::env::temp_dir().join("cfgdev-definitely-missing.yaml");
    let e = Config::from_path(&missing).err().unwrap();
    let report = format!("{:?}", anyhow::Error::from(e));
    assert_eq!(report.matches("No such file").count(), 1, "{report}");

    let send = crate::SendError::Handler {
        connector: "chat".into(),
        event: "Message",
        source: Box::new(std::io::Error::other("the socket is closed")),
    };
    let report = format!("{:?}", anyhow::Error::from(send));
    assert_eq!(
        report.matches("the socket is closed").count(),
        1,
        "{report}"
    );
}

#[test]
fn cluster_section() {
    let cfg = must(load("connectors: {shell: }\n"));
    assert_eq!(cfg.cluster, crate::cluster::ClusterConfig::default());
    let cfg = must(load(
        "connectors: {shell: }\ncluster:\n  nats: nats://127.0.0.1:4222\n  name: opsbot\n  partitions: 8\n  redelivery: 1.5\n  link-window: 0\n",
    ));
    assert_eq!(cfg.cluster.nats.as_deref(), Some("nats://127.0.0.1:4222"));
    assert_eq!(cfg.cluster.name.as_deref(), Some("opsbot"));
    assert_eq!(cfg.cluster.partitions, 8);
    assert_eq!(cfg.cluster.redelivery, Duration::from_millis(1500));
    assert_eq!(cfg.cluster.send_timeout, Duration::from_secs(30));
    assert_eq!(cfg.cluster.link_window, 0);
    assert_eq!(
        err("connectors: {shell: }\ncluster:\n  partitons: 4\n"),
        "configuration.yaml:3:3: cluster.partitons: unknown field `partitons`, expected one of `nats`, `name`, `partitions`, `redelivery`, `send-timeout`, `publish-timeout`, `max-in-flight`, `link-window`"
    );
    assert_eq!(
        err("connectors: {shell: }\ncluster:\n  partitions: 0\n"),
        "configuration.yaml:3:15: cluster.partitions: expected at least 1 partition"
    );
    assert_eq!(
        err("connectors: {shell: }\ncluster: {partitions: lots}\n"),
        "configuration.yaml:2:23: cluster.partitions: invalid type: string \"lots\", expected u16"
    );
}
