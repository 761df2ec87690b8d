use connector_core::prelude::*;

#[connector(nmae = "chat", confg = ChatConfig)]
struct Chat {}

#[derive(serde::Deserialize)]
struct ChatConfig {}

#[connector]
impl Chat {
    async fn connect(&self) -> Result<()> {
        Ok(())
    }
    async fn listen(&self, _bot: &Bot) -> Result<()> {
        Ok(())
    }
    #[register_event(Message, include_subclass)]
    async fn send_message(&self, _m: &Message) -> Result<()> {
        Ok(())
    }
}

fn main() {}
