//! Run-time behaviour of the tables `#[connector]` generates: `SUPPORTED`, `dispatch`,
//! `supports`, `Supports<E>` (typed `send`) and `from_section`, plus `#[derive(Event)]` child
//! events defined outside connector-core.

use std::sync::Mutex;

use connector_core::EventKind;
use connector_core::config::Config;
use connector_core::prelude::*;

#[derive(serde::Deserialize)]
struct RecConfig {
    token: String,
    #[serde(default)]
    retries: u32,
}

/// A child of `Message` defined in this crate, not in connector-core.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
#[event(name = "Shout")]
struct Shout {
    #[event(parent)]
    message: Message,
    volume: u8,
}

/// A grandchild of `Message`, through `Reply`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct ThreadReply {
    #[event(parent)]
    reply: Reply,
}

/// A root event defined in this crate.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Poll {
    question: String,
    meta: EventMeta,
}

/// Records every call as a string.
#[connector(name = "recorder", config = RecConfig)]
struct Recorder {
    log: Mutex<Vec<String>>,
    connects: std::sync::atomic::AtomicUsize,
}

impl Recorder {
    fn record(&self, entry: String) {
        self.log.lock().expect("log lock").push(entry);
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }
}

#[connector]
impl Recorder {
    async fn connect(&self) -> Result<()> {
        self.connects
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    async fn listen(&self, _bot: &Bot) -> Result<()> {
        Ok(())
    }

    #[register_event(Message, include_subclasses)]
    async fn send_message(&self, message: &Message) -> Result<()> {
        let target = message.meta.target.clone().unwrap_or_default();
        self.record(format!("message:{}@{target}", message.text));
        Ok(())
    }

    #[register_event(Reply)]
    async fn send_reply(&self, reply: &Reply) -> Result<()> {
        self.record(format!("reply:{}", reply.text));
        Ok(())
    }

    #[register_event(Image)]
    #[register_event(Video)]
    async fn send_media(&self, file: &File) -> Result<()> {
        self.record(format!("media:{}", file.url().unwrap_or("bytes")));
        Ok(())
    }

    #[register_event(Poll)]
    async fn send_poll(&self, poll: &Poll) -> Result<(), std::io::Error> {
        if poll.question.is_empty() {
            return Err(std::io::Error::other("empty question"));
        }
        self.record(format!("poll:{}", poll.question));
        Ok(())
    }
}

/// No config, no name, no disconnect; `Message` and `Reply` both with subclasses.
#[connector]
struct NestedHandlers {
    log: Mutex<Vec<String>>,
}

#[connector]
impl NestedHandlers {
    async fn connect(&self) {}

    async fn listen(&self, _bot: &Bot) {}

    #[register_event(Message, include_subclasses)]
    async fn any_message(&self, message: &Message) {
        self.log
            .lock()
            .expect("lock")
            .push(format!("message:{}", message.text));
    }

    #[register_event(Reply, include_subclasses)]
    async fn any_reply(&self, reply: &Reply) {
        self.log
            .lock()
            .expect("lock")
            .push(format!("reply:{}", reply.text));
    }
}

const YAML: &str = r##"
connectors:
  rec:
    connector: recorder
    token: abc
    retries: 3
    default-target: "#general"
    bot-name: robo
  nested:
    connector: nested_handlers
"##;

fn recorder() -> Recorder {
    let config = Config::from_str(YAML, "test.yaml").expect("valid yaml");
    let section = config.connector("rec").expect("rec section");
    Recorder::from_section(section).expect("recorder builds")
}

fn nested() -> NestedHandlers {
    let config = Config::from_str(YAML, "test.yaml").expect("valid yaml");
    let section = config.connector("nested").expect("nested section");
    NestedHandlers::from_section(section).expect("nested builds")
}

fn names(kinds: &[&EventKind]) -> Vec<&'static str> {
    kinds.iter().map(|k| k.name()).collect()
}

#[test]
fn supported_lists_registered_events_in_order() {
    assert_eq!(
        names(Recorder::SUPPORTED),
        ["Message", "Reply", "Image", "Video", "Poll"]
    );
    assert_eq!(names(NestedHandlers::SUPPORTED), ["Message", "Reply"]);
}

#[test]
fn from_section_builds_config_and_defaults() {
    let rec = recorder();
    assert_eq!(Recorder::TYPE, "recorder");
    assert_eq!(NestedHandlers::TYPE, "nested_handlers");
    assert_eq!(rec.name(), "rec");
    assert_eq!(rec.config().token, "abc");
    assert_eq!(rec.config().retries, 3);
    assert_eq!(rec.default_target().as_deref(), Some("#general"));
    assert_eq!(&*rec.identity(), "robo");
    assert!(!rec.is_default());
    assert!(rec.log().is_empty(), "other fields start as Default");
    assert!(rec.configuration().contains_key("token"));
    let n = nested();
    assert_eq!(n.name(), "nested");
    assert_eq!(&*n.identity(), "opsdroid");
    assert_eq!(n.default_target(), None);
}

#[tokio::test]
async fn lifecycle_methods_call_the_user_methods() {
    let rec = recorder();
    Connector::connect(&rec).await.expect("connect");
    Connector::connect(&rec).await.expect("connect again");
    assert_eq!(rec.connects.load(std::sync::atomic::Ordering::SeqCst), 2);
    // No `disconnect` in the impl block: the generated one returns Ok.
    Connector::disconnect(&rec)
        .await
        .expect("default disconnect");
    Connector::disconnect(&nested())
        .await
        .expect("default disconnect");
}

#[tokio::test]
async fn dispatch_calls_the_registered_handler() {
    let rec = recorder();
    rec.dispatch(&AnyEvent::new(Message::new("hi").target("room")))
        .await
        .expect("message");
    rec.dispatch(&AnyEvent::new(Poll {
        question: "lunch?".into(),
        meta: EventMeta::default(),
    }))
    .await
    .expect("poll");
    assert_eq!(rec.log(), ["message:hi@room", "poll:lunch?"]);
}

#[tokio::test]
async fn unregistered_event_is_unsupported() {
    let rec = recorder();
    let err = rec
        .dispatch(&AnyEvent::new(Typing::new(true)))
        .await
        .expect_err("Typing is not registered");
    assert!(
        matches!(&err, SendError::Unsupported { connector, event } if connector == "rec" && *event == "Typing"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Connector rec can not handle the 'Typing' event type."
    );
    // `File` itself is not registered, only `Image` and `Video`, without subclasses.
    let err = rec
        .dispatch(&AnyEvent::new(File::from_url("https://f")))
        .await
        .expect_err("File is not registered");
    assert_eq!(
        err.to_string(),
        "Connector rec can not handle the 'File' event type."
    );
    assert!(rec.log().is_empty());
}

#[tokio::test]
async fn stacked_registrations_share_one_handler_taking_the_parent() {
    let rec = recorder();
    rec.dispatch(&AnyEvent::new(Image::from_url("https://i")))
        .await
        .expect("image");
    rec.dispatch(&AnyEvent::new(Video::from_url("https://v")))
        .await
        .expect("video");
    // Typed sends use the `Supports<Image>` impl, which upcasts to `&File`.
    rec.send(Image::from_bytes(vec![1, 2, 3]))
        .await
        .expect("typed image");
    assert_eq!(
        rec.log(),
        ["media:https://i", "media:https://v", "media:bytes"]
    );
}

#[tokio::test]
async fn include_subclasses_receives_descendants() {
    let rec = recorder();
    rec.dispatch(&AnyEvent::new(EditedMessage::new("edited").target("t")))
        .await
        .expect("edited message");
    rec.dispatch(&AnyEvent::new(Shout {
        message: Message::new("HEY").target("t"),
        volume: 11,
    }))
    .await
    .expect("custom child event");
    assert_eq!(rec.log(), ["message:edited@t", "message:HEY@t"]);
    let shout = Shout {
        message: Message::new("x"),
        volume: 11,
    };
    assert_eq!((shout.volume, shout.text.as_str()), (11, "x"));
    assert!(rec.supports(EditedMessage::KIND));
    assert!(rec.supports(Shout::KIND));
    assert!(rec.supports(Message::KIND));
    assert!(!rec.supports(Typing::KIND));
    assert!(!rec.supports(File::KIND));
}

#[tokio::test]
async fn exact_handler_wins_over_subclass_handler() {
    let rec = recorder();
    rec.dispatch(&AnyEvent::new(Reply::new("thread")))
        .await
        .expect("reply");
    // `send_reply` has no `include_subclasses`: a child of `Reply` goes to the nearest
    // `include_subclasses` ancestor, `Message`.
    rec.dispatch(&AnyEvent::new(ThreadReply {
        reply: Reply::new("deep"),
    }))
    .await
    .expect("grandchild");
    assert_eq!(rec.log(), ["reply:thread", "message:deep@"]);
}

#[tokio::test]
async fn nearest_include_subclasses_ancestor_handles_a_descendant() {
    let n = nested();
    n.dispatch(&AnyEvent::new(ThreadReply {
        reply: Reply::new("deep"),
    }))
    .await
    .expect("grandchild");
    n.dispatch(&AnyEvent::new(EditedMessage::new("e")))
        .await
        .expect("edited");
    n.dispatch(&AnyEvent::new(Reply::new("r")))
        .await
        .expect("reply");
    let log = n.log.lock().expect("lock").clone();
    assert_eq!(log, ["reply:deep", "message:e", "reply:r"]);
}

#[tokio::test]
async fn typed_send_fills_default_target_and_connector() {
    let rec = recorder();
    rec.send(Message::new("hello")).await.expect("send");
    rec.send(Message::new("there").target("elsewhere"))
        .await
        .expect("send with target");
    assert_eq!(
        rec.log(),
        ["message:hello@#general", "message:there@elsewhere"]
    );
}

#[tokio::test]
async fn handler_errors_carry_connector_and_event() {
    let rec = recorder();
    let err = rec
        .send(Poll {
            question: String::new(),
            meta: EventMeta::default(),
        })
        .await
        .expect_err("empty question fails");
    assert!(
        matches!(&err, SendError::Handler { connector, event, .. } if connector == "rec" && *event == "Poll"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "connector rec failed to send a 'Poll' event: empty question"
    );
}
