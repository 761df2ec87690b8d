//! `#[derive(Event)]` on a generic struct, an enum or a tuple struct is one error each; the
//! types still implement `Event`, so code using them has no further errors.
use connector_core::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Answer<T> {
    meta: EventMeta,
    value: T,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
enum Choice {
    Yes(EventMeta),
    No(EventMeta),
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Ping(EventMeta);

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
    #[register_event(Answer<u8>)]
    async fn send_answer(&self, answer: &Answer<u8>) -> Result<()> {
        let _ = answer.value;
        Ok(())
    }
    #[register_event(Choice)]
    async fn send_choice(&self, choice: &Choice) -> Result<()> {
        let _ = matches!(choice, Choice::No(_));
        Ok(())
    }
    #[register_event(Ping)]
    async fn send_ping(&self, ping: &Ping) -> Result<()> {
        let _ = ping.meta();
        Ok(())
    }
}

fn is_yes(event: &AnyEvent) -> bool {
    matches!(event.downcast_ref::<Choice>(), Some(Choice::Yes(_)))
}

async fn answer(chat: &Chat) -> std::result::Result<(), SendError> {
    let meta = EventMeta::default();
    chat.send(Answer { meta, value: 42u8 }).await?;
    let _ = AnyEvent::new(Ping(EventMeta::default()));
    Ok(())
}

fn main() {
    let _ = (is_yes, answer, Choice::KIND.name());
}
