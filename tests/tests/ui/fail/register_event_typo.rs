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
    #[register_event(Mesage)]
    async fn send_message(&self, _m: &Message) -> Result<()> {
        Ok(())
    }
}

fn main() {}
