use connector_core::prelude::*;

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
    #[register_event(Message)]
    async fn send_message(&self, _m: &Message) -> Result<()> {
        Ok(())
    }
    // Registered for `Typing`, but takes a `Message`.
    #[register_event(Typing)]
    async fn send_typing(&self, m: &Message) -> Result<()> {
        let _ = m;
        Ok(())
    }
}

fn main() {}
