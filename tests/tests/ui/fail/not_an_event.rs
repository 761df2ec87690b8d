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
    #[register_event(String)]
    async fn send_text(&self, _m: &String) -> Result<()> {
        Ok(())
    }
}

fn main() {}
