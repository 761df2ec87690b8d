//! An event type must be `Serialize` and `Deserialize` (it travels between a bot's
//! processes): a type missing one of them is one error, on its name, that says which and why.
use connector_core::prelude::*;

#[derive(Clone, Debug, serde::Deserialize, Event)]
struct NoSerialize {
    meta: EventMeta,
}

#[derive(Clone, Debug, serde::Serialize, Event)]
struct NoDeserialize {
    #[event(parent)]
    message: Message,
}

fn main() {
    // Using the types adds no error of its own.
    let _ = AnyEvent::new(NoSerialize { meta: EventMeta::default() });
    let _ = AnyEvent::new(NoDeserialize { message: Message::new("x") }).is_a::<Message>();
}
