//! A mistake in a child event's `#[derive(Event)]` is one error: the event still is its
//! parent, so handlers taking the parent, `Deref` to the parent's fields and sends compile.
use connector_core::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Blocks {
    #[event(parnet)]
    message: Message,
    blocks: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Thread {
    meta: EventMeta,
    #[event(parent)]
    reply: Reply,
}

#[connector(name = "chat")]
struct Chat {}

#[connector]
impl Chat {
    async fn connect(&self) -> Result<()> {
        Ok(())
    }
    async fn listen(&self, _bot: &Bot) -> Result<()> {
        Ok(())
    }
    #[register_event(Message, Blocks, Thread)]
    async fn send_message(&self, message: &Message) -> Result<()> {
        let _ = &message.text;
        Ok(())
    }
}

fn texts<'a>(blocks: &'a Blocks, thread: &'a Thread) -> (usize, &'a str, &'a str) {
    (blocks.blocks.len(), &blocks.text, &thread.text)
}

async fn post(chat: &Chat, blocks: Blocks) -> std::result::Result<(), SendError> {
    assert!(Blocks::KIND.is_a(Message::KIND));
    chat.send(blocks).await
}

fn main() {
    let _ = (texts, post);
}
