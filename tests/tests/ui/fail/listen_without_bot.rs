use connector_core::prelude::*;

#[connector(name = "chat")]
struct Chat {}

#[connector]
impl Chat {
    async fn connect(&self) -> Result<()> {
        Ok(())
    }
    async fn listen(&self) -> Result<()> {
        Ok(())
    }
    #[register_event(Message)]
    async fn send_message(&self, _m: &Message) -> Result<()> {
        Ok(())
    }
}

async fn hello(conn: &Chat) -> Result<(), SendError> {
    // No follow-up error here: the connector still implements `Connector`.
    conn.send(Message::new("hi")).await
}

fn main() {
    let _ = hello;
}
