use connector_core::prelude::*;

#[derive(Clone, Debug, Event)]
struct Poll {
    question: String,
}

#[derive(Clone, Debug, Event)]
struct Both {
    meta: EventMeta,
    #[event(parent)]
    message: Message,
}

#[derive(Clone, Debug, Event)]
#[event(nmae = "Tuple")]
struct Tuple(EventMeta);

#[derive(Clone, Debug, Event)]
enum Choice {
    A,
}

fn main() {}
