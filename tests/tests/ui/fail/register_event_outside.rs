use connector_core::prelude::*;

struct Plain;

impl Plain {
    #[register_event(Message)]
    async fn send_message(&self, _m: &Message) -> Result<()> {
        Ok(())
    }
}

fn main() {
    let _ = Plain;
}
