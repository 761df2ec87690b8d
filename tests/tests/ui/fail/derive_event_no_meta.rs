use connector_core::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Poll {
    question: String,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Both {
    meta: EventMeta,
    #[event(parent)]
    message: Message,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
#[event(nmae = "Tuple")]
struct Tuple(EventMeta);

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
enum Choice {
    A,
}

fn main() {}
