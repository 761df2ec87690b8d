//! `#[derive(Event)]`: a root event (implicit and marked meta field) and a child event.
#![deny(warnings)]

use connector_core::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Poll {
    question: String,
    meta: EventMeta,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
#[event(name = "Vote")]
struct VoteEvent {
    choice: u8,
    #[event(meta)]
    common: EventMeta,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct UrgentPoll {
    #[event(parent)]
    poll: Poll,
    deadline: u64,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, Event)]
struct Thread {
    #[event(parent)]
    reply: Reply,
}

fn main() {
    let p = Poll {
        question: "lunch?".into(),
        meta: EventMeta::default(),
    }
    .user("ann");
    assert_eq!(p.meta().user.as_deref(), Some("ann"));
    assert_eq!(Poll::KIND.name(), "Poll");
    assert_eq!(VoteEvent::KIND.name(), "Vote");
    let v = VoteEvent {
        choice: 1,
        common: EventMeta::default(),
    }
    .target("room");
    assert_eq!(v.meta().target.as_deref(), Some("room"));
    assert_eq!(v.choice, 1);
    let u = UrgentPoll {
        poll: p,
        deadline: 5,
    };
    assert_eq!(u.question, "lunch?"); // Deref to the parent
    assert_eq!(u.deadline, 5);
    assert!(UrgentPoll::KIND.is_a(Poll::KIND));
    assert!(Thread::KIND.is_a(Message::KIND));
    let t = Thread {
        reply: Reply::new("x"),
    };
    assert_eq!(t.text, "x");
    let any = AnyEvent::new(t);
    assert_eq!(
        any.upcast_ref::<Message>().map(|m| m.text.as_str()),
        Some("x")
    );
}
