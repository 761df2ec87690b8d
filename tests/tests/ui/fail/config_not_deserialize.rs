use connector_core::prelude::*;

struct ChatConfig {
    token: String,
}

#[connector(name = "chat", config = ChatConfig)]
struct Chat {}

#[connector]
impl Chat {
    async fn connect(&self) -> Result<()> {
        let _ = &self.config().token;
        Ok(())
    }
    async fn listen(&self, _bot: &Bot) -> Result<()> {
        Ok(())
    }
}

fn main() {}
