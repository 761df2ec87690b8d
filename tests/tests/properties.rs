//! Property tests: the configuration loader never panics on any input, environment
//! substitution round-trips, the websocket frame parser always yields a message for the
//! sender's own socket, and dispatching any built-in event to a real connector returns a
//! result. Case counts are modest so the suite stays fast on two cores.

use std::collections::HashMap;

use connector_core::config::{Config, substitute};
use connector_core::prelude::*;
use connector_shell::Shell;
use connector_websocket::{Websocket, to_event};
use proptest::prelude::*;

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// YAML-ish text: fragments of configuration syntax glued together, so the loader sees
/// mostly near-valid documents rather than noise.
fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("connectors:".to_owned()),
        Just("\n  shell:".to_owned()),
        Just("\n  websocket: {max-connections: ".to_owned()),
        Just("\nruntime:\n  reconnect: {initial: ".to_owned()),
        Just("\n  skill-timeout: ".to_owned()),
        Just("\nskills:\n  - hello".to_owned()),
        Just("\nlogging: {level: ".to_owned()),
        Just("${HOME:-x}".to_owned()),
        Just("$$".to_owned()),
        Just("${".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("}".to_owned()),
        Just("&a *a".to_owned()),
        Just("!!binary".to_owned()),
        Just("- ".to_owned()),
        Just(": ".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("\t".to_owned()),
        "[ -~]{0,12}",
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn config_loading_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..512)
    ) {
        let dir = std::env::temp_dir().join(format!("prop-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("c{}.yaml", fastrand_name(&bytes)));
        std::fs::write(&path, &bytes).unwrap();
        let result = Config::from_path(&path);
        let _ = std::fs::remove_file(&path);
        if let Err(e) = result {
            // Every error renders, and names the file.
            prop_assert!(e.to_string().contains(".yaml"), "{e}");
        }
    }

    #[test]
    fn config_loading_never_panics_on_yamlish_text(text in yamlish()) {
        if let Err(e) = Config::from_str(&text, "p.yaml") {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn escaped_text_substitutes_back_to_itself(text in any::<String>()) {
        let escaped = text.replace('$', "$$");
        let env = |_: &str| -> Option<String> { None };
        prop_assert_eq!(substitute(&escaped, &env).unwrap(), text);
    }

    #[test]
    fn known_variables_substitute_to_their_values(
        vars in prop::collection::hash_map("[A-Za-z_][A-Za-z0-9_]{0,8}", any::<String>(), 1..5),
        glue in prop::collection::vec("[^$]{0,6}", 5),
        braced in any::<bool>(),
    ) {
        let vars: HashMap<String, String> = vars;
        let env = |name: &str| vars.get(name).cloned();
        let mut input = String::new();
        let mut expected = String::new();
        for ((name, value), sep) in vars.iter().zip(&glue) {
            // A separator that could extend a bare `$NAME` is only safe in braces.
            let brace = braced || sep.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            if brace {
                input.push_str(&format!("${{{name}}}"));
            } else {
                input.push_str(&format!("${name}"));
            }
            input.push_str(sep);
            expected.push_str(value);
            expected.push_str(sep);
        }
        prop_assert_eq!(substitute(&input, &env).unwrap(), expected);
    }

    #[test]
    fn any_frame_becomes_a_message_for_its_own_socket(
        frame in prop_oneof![
            any::<String>(),
            "[ -~]{0,64}",
            json_frame(),
        ],
        socket in "[a-f0-9-]{36}",
    ) {
        let message = to_event(&frame, &std::sync::Arc::from(socket.as_str()));
        prop_assert_eq!(message.meta.target.as_deref(), Some(socket.as_str()));
        // The text is the `message` field or the whole frame, never empty invention.
        prop_assert!(frame.contains(message.text.as_str()) || message.meta.raw_event.is_some());
    }
}

/// A JSON frame, sometimes an object with fields of any type, sometimes another JSON kind.
fn json_frame() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::hash_map(
                prop_oneof![
                    Just("message".to_owned()),
                    Just("user".to_owned()),
                    Just("socket".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    value.prop_map(|v| v.to_string())
}

/// A file name derived from the input, so parallel cases never share a file.
fn fastrand_name(bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    std::thread::current().id().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// One of every built-in event type, with arbitrary text where it has some.
fn any_event() -> impl Strategy<Value = AnyEvent> {
    (
        0usize..24,
        any::<String>(),
        any::<bool>(),
        prop::option::of("[a-z0-9-]{1,36}"),
    )
        .prop_map(|(kind, text, flag, target)| {
            let mut event: AnyEvent = match kind {
                0 => BotStarted::new().into(),
                1 => Message::new(text).into(),
                2 => EditedMessage::new(text).into(),
                3 => Reply::new(text).into(),
                4 => Typing::new(flag).into(),
                5 => Reaction::new(text).into(),
                6 => File::from_url(text).into(),
                7 => Image::from_bytes(text.into_bytes()).into(),
                8 => Video::from_bytes(text.into_bytes()).into(),
                9 => NewRoom::new(Some(text)).into(),
                10 => RoomName::new(text).into(),
                11 => RoomAddress::new(text).into(),
                12 => RoomImage::new(Image::from_url(text)).into(),
                13 => RoomDescription::new(text).into(),
                14 => JoinRoom::new().into(),
                15 => LeaveRoom::new().into(),
                16 => UserInvite::new().into(),
                17 => UserRole::new(text).into(),
                18 => JoinGroup::new().into(),
                19 => LeaveGroup::new().into(),
                20 => PinMessage::new().into(),
                21 => UnpinMessage::new().into(),
                22 => DeleteMessage::new().into(),
                _ => BanUser::new().into(),
            };
            event.meta_mut().target = target.map(Into::into);
            event
        })
}

fn section(kind: &str) -> connector_core::config::ConnectorSection {
    let yaml = format!("connectors:\n  {kind}: {{}}\nweb: {{host: 127.0.0.1, port: 0}}\n");
    let config = Config::from_str(&yaml, "p.yaml").unwrap();
    config.connector(kind).unwrap().clone()
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn dispatching_any_event_to_a_real_connector_returns_a_result(event in any_event()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let shell = Shell::from_section(&section("shell"))
            .unwrap()
            .with_io(tokio::io::empty(), tokio::io::sink(), false);
        let websocket = Websocket::from_section(&section("websocket")).unwrap();
        rt.block_on(async {
            for result in [shell.dispatch(&event).await, websocket.dispatch(&event).await] {
                match result {
                    Ok(()) | Err(SendError::Unsupported { .. }) | Err(SendError::Handler { .. }) => {}
                    Err(other) => panic!("unexpected error for {}: {other}", event.name()),
                }
            }
        });
    }
}
