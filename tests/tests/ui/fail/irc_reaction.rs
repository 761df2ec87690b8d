use connector_core::prelude::*;
use connector_irc::Irc;

// IRC has no reactions: the connector registers no `Reaction` handler, so this is refused
// at compile time.
async fn react(irc: &Irc) -> Result<(), SendError> {
    irc.send(Reaction::new("+1")).await
}

fn main() {
    let _ = react;
}
