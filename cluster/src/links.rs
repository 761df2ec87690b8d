//! Answers that name their event instead of carrying it. A skill's answer links the event it
//! answers (`linked_event`, set by `respond`), and written whole that is the event a second
//! time: encoded again by the skill process, carried through NATS, decoded again by the
//! connector process, which parsed that very event a moment before. So a connector process
//! keeps its latest events ([`Window`], `cluster.link-window` of them), each under its
//! publish number and its place in that batch, and an answer to one of them names it:
//!
//! ```text
//! <send id> @<publish>.<index> <envelope without linked_event>
//! <send id> <envelope>                                   (the event carried whole)
//! ```
//!
//! A skill process names the event only when it sends to the connector process the event
//! came from and the answer links exactly the event it read (the same shared event, not a
//! copy with entities added); a connector process that no longer keeps it answers [`MISS`],
//! and the skill process sends that answer again with its event whole. Nothing else
//! changes: the connector's `send` sees the same `linked_event` either way.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::Mutex;

use connector_core::AnyEvent;

/// The answer line of a send whose named event the connector process no longer keeps.
pub(crate) const MISS: &[u8] = b"@unknown-link";

/// The most bytes of events (as published) a window keeps, whatever `link-window` says.
const MAX_BYTES: usize = 16 << 20;

/// A connector process's latest events, by publish number and place in the batch.
pub(crate) struct Window {
    max_events: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The number of the next batch published.
    next: u64,
    /// Kept batches, oldest first: number, events, their bytes.
    batches: VecDeque<(u64, Vec<AnyEvent>, usize)>,
    events: usize,
    bytes: usize,
}

impl Window {
    /// A window of at most `max_events` events (0: none kept).
    pub(crate) fn new(max_events: u32) -> Self {
        Self {
            max_events: max_events as usize,
            state: Mutex::default(),
        }
    }

    /// Numbers a batch about to be published (`bytes` long) and keeps its events; the
    /// oldest batches leave to make room.
    pub(crate) fn keep(&self, events: Vec<AnyEvent>, bytes: usize) -> u64 {
        let mut state = connector_core::sync::lock(&self.state);
        let number = state.next;
        state.next += 1;
        if self.max_events == 0 || events.len() > self.max_events || bytes > MAX_BYTES {
            return number;
        }
        while state.events + events.len() > self.max_events || state.bytes + bytes > MAX_BYTES {
            let Some((_, old, old_bytes)) = state.batches.pop_front() else {
                break;
            };
            state.events -= old.len();
            state.bytes -= old_bytes;
        }
        state.events += events.len();
        state.bytes += bytes;
        state.batches.push_back((number, events, bytes));
        number
    }

    /// The event at `index` of batch `number`, while it is kept.
    pub(crate) fn get(&self, number: u64, index: u32) -> Option<AnyEvent> {
        let state = connector_core::sync::lock(&self.state);
        let at = state
            .batches
            .binary_search_by_key(&number, |(n, ..)| *n)
            .ok()?;
        state.batches[at].1.get(index as usize).cloned()
    }
}

/// A batch's message id in the stream, `<process>-<number>` (JetStream's duplicate detection
/// needs one; a skill process reads the number back from it with [`batch_number`]).
pub(crate) fn batch_id(process: &str, number: u64) -> String {
    format!("{process}-{number}")
}

/// The number in the message id of a batch published by connector process `origin`.
pub(crate) fn batch_number(id: &str, origin: &str) -> Option<u64> {
    id.strip_prefix(origin)?.strip_prefix('-')?.parse().ok()
}

/// A send's line: its id, the event it names (if it names one) and its envelope.
pub(crate) fn parse(line: &[u8]) -> (&[u8], Option<(u64, u32)>, &[u8]) {
    let (id, rest) = split_word(line);
    let Some(named) = rest.strip_prefix(b"@") else {
        return (id, None, rest);
    };
    let (named, envelope) = split_word(named);
    let link = std::str::from_utf8(named).ok().and_then(|named| {
        let (number, index) = named.split_once('.')?;
        Some((number.parse().ok()?, index.parse().ok()?))
    });
    // A name that does not read is no event kept: answered as a miss, sent again whole.
    (id, Some(link.unwrap_or((u64::MAX, u32::MAX))), envelope)
}

/// Writes a send's line (see [`parse`]).
pub(crate) fn write(out: &mut Vec<u8>, id: &str, link: Option<(u64, u32)>, envelope: &[u8]) {
    out.extend_from_slice(id.as_bytes());
    out.push(b' ');
    if let Some((number, index)) = link {
        // Into the request itself: no string of its own per send.
        let _ = write!(out, "@{number}.{index} ");
    }
    out.extend_from_slice(envelope);
}

fn split_word(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b' ') {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (&b""[..], bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_core::events::Message;

    fn events(n: usize) -> Vec<AnyEvent> {
        (0..n)
            .map(|i| AnyEvent::new(Message::new(format!("m{i}"))))
            .collect()
    }

    fn text(event: Option<AnyEvent>) -> Option<String> {
        event.map(|e| e.downcast_ref::<Message>().unwrap().text.clone())
    }

    #[test]
    fn a_window_keeps_the_latest_batches_up_to_its_events() {
        let window = Window::new(5);
        assert_eq!(window.keep(events(3), 30), 0);
        assert_eq!(window.keep(events(2), 20), 1);
        assert_eq!(text(window.get(0, 2)).as_deref(), Some("m2"));
        assert_eq!(text(window.get(1, 1)).as_deref(), Some("m1"));
        assert!(window.get(1, 2).is_none(), "no such place");
        assert_eq!(window.keep(events(1), 10), 2, "the oldest batch leaves");
        assert!(window.get(0, 0).is_none());
        assert_eq!(text(window.get(2, 0)).as_deref(), Some("m0"));
        assert_eq!(
            window.keep(events(6), 60),
            3,
            "too big to keep, still numbered"
        );
        assert!(window.get(3, 0).is_none());
        assert!(window.get(1, 0).is_some(), "and nothing left for it");
        assert_eq!(window.keep(events(1), MAX_BYTES), 4);
        assert!(window.get(1, 0).is_none(), "bytes count too");

        let none = Window::new(0);
        assert_eq!(none.keep(events(1), 10), 0);
        assert_eq!(none.keep(events(1), 10), 1);
        assert!(none.get(0, 0).is_none() && none.get(1, 0).is_none());
    }

    #[test]
    fn a_batch_number_reads_back_from_its_message_id() {
        let id = batch_id("host-7-ab12", 42);
        assert_eq!(batch_number(&id, "host-7-ab12"), Some(42));
        assert_eq!(batch_number(&id, "host-7"), None, "another process's");
        assert_eq!(batch_number("host-7-ab12-x", "host-7-ab12"), None);
    }

    #[test]
    fn a_line_names_its_event_or_carries_it() {
        let mut line = Vec::new();
        write(&mut line, "7.0.1", Some((42, 3)), br#"{"v":1}"#);
        assert_eq!(line, br#"7.0.1 @42.3 {"v":1}"#);
        assert_eq!(
            parse(&line),
            (&b"7.0.1"[..], Some((42, 3)), &br#"{"v":1}"#[..])
        );
        line.clear();
        write(&mut line, "7.0.2", None, br#"{"v":1}"#);
        assert_eq!(parse(&line), (&b"7.0.2"[..], None, &br#"{"v":1}"#[..]));
        assert_eq!(
            parse(b"9 @x.y {}").1,
            Some((u64::MAX, u32::MAX)),
            "a name that does not read is a miss"
        );
        assert_eq!(parse(b"{}"), (&b""[..], None, &b"{}"[..]), "no id");
    }
}
