//! A bot for a line-based chat server: the connector, three skills, and `main`.
//!
//! The server speaks one line per message. The bot logs in with `AUTH <token> <nick>` and
//! is told its name, `WELCOME <nick>` (the server adds `_` to a nick in use) or
//! `DENIED <why>`; then it hears `MSG <id> <room> <user> <text>` and
//! `REPLY <id> <to-id> <room> <user> <text>` (and ignores the rest), and it says
//! `SAY <room> <text>`, `REPLY <to-id> <room> <text>` and `TYPING <room> on|off`.
//!
//! Run `cargo run --bin linechat-server` in one terminal and `cargo run` in another.

use std::process::ExitCode;

use connector_core::prelude::*;
use connector_core::skill::RegexSpec;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Mutex;

/// The `connectors: { linechat: … }` section of `configuration.yaml`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LineChatConfig {
    /// The server's `host:port`.
    address: String,
    /// Sent at login; `Secret` keeps it out of `Debug` output and logs.
    token: Secret<String>,
    /// The nick the bot asks for.
    #[serde(default = "default_nick")]
    nick: String,
}

fn default_nick() -> String {
    "bot".to_owned()
}

/// The connector: the struct holds its state, `#[connector]` adds the configuration.
#[connector(name = "linechat", config = LineChatConfig)]
pub struct LineChat {
    // Fields other than the configuration start as `Default`: state is set up in `connect`,
    // not at construction, so nothing is bound to a runtime that may be gone by then.
    reader: Mutex<Option<BufReader<OwnedReadHalf>>>,
    writer: Mutex<Option<OwnedWriteHalf>>,
}

#[connector]
impl LineChat {
    /// Opens the connection and logs in. The runtime calls it again, with backoff, when it
    /// fails or when `listen` returns an error; a refused token is permanent: retrying
    /// cannot fix it.
    async fn connect(&self) -> Result<()> {
        let config = self.config();
        let stream = TcpStream::connect(&config.address).await?;
        let (reader, mut writer) = stream.into_split();
        let login = format!("AUTH {} {}\n", config.token.expose(), config.nick);
        writer.write_all(login.as_bytes()).await?;
        let mut reader = BufReader::new(reader);
        let mut answer = String::new();
        reader.read_line(&mut answer).await?;
        match answer.trim_end().split_once(' ') {
            // The name the server gave us: the bot ignores its own messages by it.
            Some(("WELCOME", nick)) => self.set_identity(nick),
            Some(("DENIED", why)) => {
                return Err(ConnectorError::permanent(format!("login refused: {why}")).into());
            }
            _ => return Err(format!("unexpected answer to AUTH: {answer:?}").into()),
        }
        *self.reader.lock().await = Some(reader);
        *self.writer.lock().await = Some(writer);
        Ok(())
    }

    /// Turns each line from the server into an event and hands it to the bot. `parse`
    /// returns once the event is queued, so a slow skill never stalls this loop.
    async fn listen(&self, bot: &Bot) -> Result<()> {
        let mut reader = self.reader.lock().await;
        let reader = reader.as_mut().ok_or("listen called before connect")?;
        let mut line = String::new();
        while reader.read_line(&mut line).await? > 0 {
            if let Some(message) = parse_line(line.trim_end()) {
                bot.parse(message).await;
            }
            line.clear();
        }
        Err("the server closed the connection".into()) // an error: the runtime reconnects
    }

    /// Sends a message; a reply (its `linked_event` is the message it answers) goes out as
    /// a `REPLY` to that message's id.
    #[register_event(Message)]
    async fn send_message(&self, message: &Message) -> Result<()> {
        let room = message.meta.target.as_deref().unwrap_or("lobby");
        let answers = message.meta.linked_event.as_ref().and_then(Linked::id);
        match answers {
            Some(id) => {
                self.write(&format!("REPLY {id} {room} {}\n", message.text))
                    .await
            }
            None => self.write(&format!("SAY {room} {}\n", message.text)).await,
        }
    }

    /// With this handler, `self.user_typing(true)` and `send(Typing::new(true))` compile.
    #[register_event(Typing)]
    async fn send_typing(&self, typing: &Typing) -> Result<()> {
        let room = typing.meta.target.as_deref().unwrap_or("lobby");
        let state = if typing.trigger { "on" } else { "off" };
        self.write(&format!("TYPING {room} {state}\n")).await
    }

    /// Called once on shutdown, bounded by a timeout.
    async fn disconnect(&self) -> Result<()> {
        if let Some(mut writer) = self.writer.lock().await.take() {
            writer.shutdown().await?;
        }
        Ok(())
    }

    // Methods without `#[register_event]` are ordinary methods.
    async fn write(&self, line: &str) -> Result<()> {
        let mut writer = self.writer.lock().await;
        let writer = writer.as_mut().ok_or("not connected")?;
        writer.write_all(line.as_bytes()).await?;
        Ok(())
    }
}

/// `MSG <id> <room> <user> <text>` and `REPLY <id> <to-id> <room> <user> <text>` as a
/// `Message`; a reply's `linked_event` is the id of the message it answers.
fn parse_line(line: &str) -> Option<Message> {
    let (kind, rest) = line.split_once(' ')?;
    let (id, rest) = rest.split_once(' ')?;
    let (to, rest) = match kind {
        "MSG" => (None, rest),
        "REPLY" => rest.split_once(' ').map(|(to, rest)| (Some(to), rest))?,
        _ => return None,
    };
    let (room, rest) = rest.split_once(' ')?;
    let (user, text) = rest.split_once(' ')?;
    let message = Message::new(text).user(user).target(room).event_id(id);
    Some(match to {
        Some(to) => message.linked_event(Linked::Id(to.to_owned())),
        None => message,
    })
}

/// `hello`, `Hi there`…: a greeting anywhere in the text, in any case.
fn hello() -> Skill {
    Skill::new("hello", |ctx: SkillContext| async move {
        let user = ctx.event().meta().user.clone().unwrap_or_default();
        ctx.respond(format!("Hi {user}")).await
    })
    .regex_with(
        RegexSpec::new(r"\b(hi|hello)\b")
            .search()
            .case_insensitive(),
    )
}

/// "what is the weather in Paris": a regex matches at the start of the text unless told
/// to search (opsdroid's `re.match`); named groups become entities.
fn weather() -> Skill {
    Skill::new("weather", |ctx: SkillContext| async move {
        let city = ctx.entity("city").unwrap_or("?").to_owned();
        ctx.respond(format!("It is sunny in {city}.")).await
    })
    .regex_with(RegexSpec::new(r"weather in (?P<city>\w+)").search())
}

/// "deploy api", in the `ops` room only: a parse format, matched against the whole text.
fn deploy() -> Skill {
    Skill::new("deploy", |ctx: SkillContext| async move {
        let app = ctx.entity("app").unwrap_or("everything").to_owned();
        ctx.respond(format!("Deploying {app}.")).await
    })
    .parse("deploy {app}")
    .constrain_rooms(&["ops"])
}

/// The bot: the connector, the skills, and the configuration file named on the command line.
/// `main` sets up logging from the file's `logging:` section, runs until SIGINT or SIGTERM,
/// prints an error as one line and exits 2 for a configuration error, 1 for a failure.
fn main() -> ExitCode {
    let path = std::env::args().nth(1);
    BotBuilder::new()
        .connector::<LineChat>()
        .skill(hello())
        .skill(weather())
        .skill(deploy())
        .main(Config::from_path(
            path.as_deref().unwrap_or("configuration.yaml"),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_core::testing::{MemoryConnector, TestBot};

    #[test]
    fn lines_become_messages_and_replies_link_to_what_they_answer() {
        let m = parse_line("MSG 7 lobby ann hello there").unwrap();
        assert_eq!(
            (m.text.as_str(), m.meta.event_id.as_deref()),
            ("hello there", Some("7"))
        );
        assert_eq!(
            (m.meta.user.as_deref(), m.meta.target.as_deref()),
            (Some("ann"), Some("lobby"))
        );
        let r = parse_line("REPLY 8 7 lobby bob hi ann").unwrap();
        assert_eq!(r.meta.linked_event.as_ref().and_then(Linked::id), Some("7"));
        assert!(parse_line("TYPING lobby ann on").is_none());
    }

    #[tokio::test]
    async fn the_skills_answer_on_a_memory_connector() {
        let (chat, remote) = MemoryConnector::new("linechat");
        let mut run = TestBot::new()
            .skill(hello())
            .skill(weather())
            .skill(deploy())
            .connector(chat)
            .start()
            .unwrap();
        remote.inject(
            Message::new("what is the weather in Paris")
                .user("ann")
                .target("lobby"),
        );
        assert_eq!(
            run.next_sent().await.unwrap().text(),
            Some("It is sunny in Paris.")
        );
        remote.inject(Message::new("deploy api").user("ann").target("ops"));
        assert_eq!(
            run.next_sent().await.unwrap().text(),
            Some("Deploying api.")
        );
        run.shutdown().await.unwrap();
    }
}
