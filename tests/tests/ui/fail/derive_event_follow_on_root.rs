//! A mistake in a root event's `#[derive(Event)]` is one error, on the struct: code that
//! registers, sends, builds and matches on the event compiles without further errors.
use connector_core::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Poll {
    question: String,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Vote {
    choice: u8,
    common: EventMeta,
}

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
    #[register_event(Poll)]
    async fn send_poll(&self, poll: &Poll) -> Result<()> {
        let _ = (&poll.question, poll.meta().target.as_deref());
        Ok(())
    }
    #[register_event(Vote, include_subclasses)]
    async fn send_vote(&self, vote: &Vote) -> Result<()> {
        let _ = vote.choice;
        Ok(())
    }
}

async fn ask(chat: &Chat) -> std::result::Result<(), SendError> {
    let poll = Poll {
        question: "lunch?".into(),
    };
    chat.send(poll.target("room")).await?;
    let vote = Vote {
        choice: 1,
        common: EventMeta::default(),
    };
    chat.send(vote.user("ann")).await
}

fn question(event: &AnyEvent) -> Option<&str> {
    match event.downcast_ref::<Poll>() {
        Some(Poll { question }) => Some(question),
        None => None,
    }
}

fn main() {
    let _ = (ask, question, Poll::KIND.name(), Vote::KIND.parent());
}
