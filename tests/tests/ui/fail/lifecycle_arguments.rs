use connector_core::prelude::*;

#[connector(name = "chat")]
struct Chat {}

// Each life-cycle method with the wrong arguments: one error each.
#[connector]
impl Chat {
    async fn connect(&self, _token: &str) -> Result<()> {
        Ok(())
    }
    async fn listen(&self, _bot: &Bot, _retries: u32) -> Result<()> {
        Ok(())
    }
    async fn disconnect(&self, _bot: &Bot) -> Result<()> {
        Ok(())
    }
    #[register_event(Message)]
    async fn send_message(&self, _m: &Message) -> Result<()> {
        Ok(())
    }
}

fn main() {}
