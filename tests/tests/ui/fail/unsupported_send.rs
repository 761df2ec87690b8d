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
    #[register_event(Typing)]
    async fn send_typing(&self, _t: &Typing) -> Result<()> {
        Ok(())
    }
}

async fn react(conn: &Chat) -> Result<(), SendError> {
    conn.send(Reaction::new("x")).await
}

fn main() {
    let _ = react;
}
