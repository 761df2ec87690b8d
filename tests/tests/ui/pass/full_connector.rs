//! A complete connector: typed config, stacked registrations, a multi-event handler,
//! `include_subclasses`, a custom child event, and typed sends.
#![deny(warnings)]

use std::sync::Mutex;

use connector_core::prelude::*;

#[derive(serde::Deserialize)]
struct ChatConfig {
    token: String,
    #[serde(default)]
    retries: u32,
}

/// A custom child of `Message`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
#[event(name = "Blocks")]
struct Blocks {
    #[event(parent)]
    message: Message,
    layout: String,
}

/// Talks to MyChat.
#[connector(name = "mychat", config = ChatConfig)]
struct MyChat {
    sent: Mutex<Vec<String>>,
}

#[connector]
impl MyChat {
    async fn connect(&self) -> Result<()> {
        let _ = (&self.config().token, self.config().retries);
        Ok(())
    }

    async fn listen(&self, _bot: &Bot) -> Result<()> {
        Ok(())
    }

    async fn disconnect(&self) {}

    #[register_event(Message, include_subclasses)]
    async fn send_message(&self, message: &Message) -> Result<()> {
        self.sent
            .lock()
            .map_err(|e| e.to_string())?
            .push(message.text.clone());
        Ok(())
    }

    #[register_event(Image, Video)]
    #[register_event(File)]
    async fn send_file(&self, file: &File) -> Result<(), std::io::Error> {
        let _ = file.url();
        Ok(())
    }

    #[register_event(Blocks)]
    async fn send_blocks(&self, blocks: &Blocks) -> Result<()> {
        let _ = (&blocks.layout, &blocks.text);
        Ok(())
    }

    #[register_event(Typing)]
    async fn send_typing(&self, _typing: &Typing) {}

    /// An ordinary method passes through.
    fn count(&self) -> usize {
        self.sent.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// A second connector without config or name.
#[connector]
struct ShellConnector;

#[connector]
impl ShellConnector {
    async fn connect(&self) -> Result<()> {
        Ok(())
    }
    async fn listen(&self, _bot: &Bot) -> Result<()> {
        Ok(())
    }
    #[register_event(Message)]
    async fn say(&self, _m: &Message) -> Result<()> {
        Ok(())
    }
}

#[allow(dead_code)]
async fn typed(chat: &MyChat, shell: &ShellConnector) -> Result<()> {
    chat.send(Message::new("hi")).await?;
    chat.send(Image::from_url("https://x")).await?;
    chat.send(Blocks {
        message: Message::new("b"),
        layout: String::new(),
    })
    .await?;
    chat.user_typing(true).await?;
    shell.send(Message::new("hi")).await?;
    let _ = chat.count();
    Ok(())
}

fn main() {
    assert_eq!(<MyChat as ConnectorInfo>::TYPE, "mychat");
    assert_eq!(<ShellConnector as ConnectorInfo>::TYPE, "shell_connector");
    assert_eq!(MyChat::SUPPORTED.len(), 6);
    assert_eq!(Blocks::KIND.name(), "Blocks");
}
