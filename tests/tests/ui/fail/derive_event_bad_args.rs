use connector_core::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
#[event]
struct Bare {
    meta: EventMeta,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
#[event(name = "")]
struct Unnamed {
    meta: EventMeta,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
#[event("Quoted")]
struct Quoted {
    meta: EventMeta,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
#[event(crate = "not a path")]
struct Elsewhere {
    meta: EventMeta,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Twice {
    #[event(meta, meta)]
    common: EventMeta,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Misplaced {
    #[event(name = "Misplaced")]
    meta: EventMeta,
}

fn main() {
    let _ = (Bare::KIND, Unnamed::KIND, Quoted::KIND, Elsewhere::KIND);
    let _ = (Twice::KIND, Misplaced::KIND);
}
