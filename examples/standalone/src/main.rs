//! A bot with a connector of its own (`audit`: every message sent to it is appended to a
//! file) and the websocket connector (opsdroid's protocol, for opsdroid's web clients).
//! Every websocket message is echoed back to its sender and copied to the audit file.
//!
//! ```sh
//! cargo run -- configuration.yaml
//! ```

use std::io::Write;
use std::process::ExitCode;

use connector_core::prelude::*;
use connector_websocket::Websocket;

/// Appends every `Message` it is asked to send to the file named by its `file:` key.
#[connector(name = "audit")]
pub struct Audit {}

#[connector]
impl Audit {
    async fn connect(&self) -> Result<()> {
        self.file()?; // a bad path is a connect error, reported (and retried) by the runtime
        Ok(())
    }

    /// The audit trail takes no input: it listens until the bot shuts down.
    async fn listen(&self, bot: &Bot) -> Result<()> {
        bot.shutting_down().await;
        Ok(())
    }

    #[register_event(Message)]
    async fn record(&self, message: &Message) -> Result<()> {
        let user = message.meta.user.as_deref().unwrap_or("-");
        writeln!(self.file()?, "{user}: {}", message.text)?;
        Ok(())
    }

    fn file(&self) -> Result<std::fs::File> {
        let path = self
            .configuration()
            .get("file")
            .and_then(|v| v.as_str())
            .ok_or("connectors.audit.file is not set")?;
        Ok(std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?)
    }
}

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "configuration.yaml".to_owned());
    BotBuilder::new()
        .connector::<Websocket>()
        .connector::<Audit>()
        .skill(
            Skill::new("echo-and-audit", |ctx: SkillContext| async move {
                let text = ctx.text().to_owned();
                let user = ctx.event().meta().user.clone().unwrap_or_default();
                ctx.respond(text.clone()).await?;
                ctx.bot()
                    .send(Message::new(text).user(user).connector("audit"))
                    .await
            })
            .catchall_messages(),
        )
        .main(Config::from_path(&path))
}
