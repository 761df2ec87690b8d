use std::rc::Rc;

use connector_core::prelude::*;

#[connector(name = "chat")]
struct Chat {}

async fn flush() {}

#[connector]
impl Chat {
    async fn connect(&self) -> Result<()> {
        Ok(())
    }
    async fn listen(&self, _bot: &Bot) -> Result<()> {
        Ok(())
    }
    #[register_event(Message, Reply)]
    async fn send_message(&self, m: &Message) -> Result<()> {
        let text = Rc::new(m.text.clone());
        flush().await;
        println!("{text}");
        Ok(())
    }
}

fn main() {}
