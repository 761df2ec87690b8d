use connector_core::prelude::*;

#[connector(name = "chat")]
struct Chat {}

// Every problem below is reported in one pass.
#[connector(config = ChatConfig)]
impl Chat {
    fn connect(&self) -> Result<()> {
        Ok(())
    }
    #[register_event]
    async fn send_nothing(&self, _m: &Message) -> Result<()> {
        Ok(())
    }
    #[register_event(Message)]
    async fn send_message(&self, _m: Message) -> Result<()> {
        Ok(())
    }
    #[register_event(Typing)]
    async fn send_typing(_t: &Typing) -> Result<()> {
        Ok(())
    }
    #[register_event(Reaction)]
    async fn send_reaction<T>(&self, _r: &Reaction, _extra: T) -> Result<()> {
        Ok(())
    }
    async fn send(&self) {}
}

fn main() {}
