use connector_core::prelude::*;

#[connector(name = "chat", colour = "blue")]
struct Chat {}

#[connector(name = "chat")]
impl Chat {
    async fn connect(&self) -> Result<()> {
        Ok(())
    }
    async fn listen(&self, _bot: &Bot) -> Result<()> {
        Ok(())
    }
}

fn main() {}
