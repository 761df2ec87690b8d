//! Source locations of key paths, recovered from the YAML event stream.
//!
//! `serde_yaml::Value` forgets where things were written, and typed sections
//! are deserialized from such values after environment substitution. This
//! module re-parses the text with `saphyr-parser` (which marks every event
//! with line and column) and records, for every dot-joined key path
//! (`connectors.shell.bot-name`, `skills.0.name`), where its key and value
//! start, and whether the value was an untagged plain (unquoted) scalar.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A 1-based line/column position in the configuration text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Loc {
    fn from_span(span: &Span) -> Loc {
        Loc {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct NodeInfo {
    value: Loc,
    key: Option<Loc>,
    plain: bool,
}

/// Map from key path to where the node was written.
#[derive(Debug, Default, Clone)]
pub(crate) struct LocationMap {
    nodes: HashMap<String, NodeInfo>,
}

/// Join a key path prefix and one segment with a dot (the root is `""`).
pub(crate) fn join(prefix: &str, segment: &str) -> String {
    if prefix.is_empty() {
        segment.to_string()
    } else {
        format!("{prefix}.{segment}")
    }
}

impl LocationMap {
    /// Build the map for `text`. Best effort: if the event parser fails
    /// (which should not happen for text `serde_yaml` accepted), the map
    /// holds whatever was recorded before the failure.
    pub(crate) fn build(text: &str) -> LocationMap {
        let mut map = LocationMap::default();
        let mut events = Parser::new_from_str(text).map_while(Result::ok);
        // Skip to the first node of the first document.
        while let Some((event, span)) = events.next() {
            match event {
                Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => continue,
                Event::StreamEnd | Event::DocumentEnd => break,
                other => {
                    let _ = map.node(&mut events, other, span, "", None, true, 0);
                    break;
                }
            }
        }
        map
    }

    /// Record one node (already pulled from `events`) and its children.
    /// Returns `None` when the stream ends early.
    #[allow(clippy::too_many_arguments)]
    fn node<'a>(
        &mut self,
        events: &mut impl Iterator<Item = (Event<'a>, Span)>,
        event: Event<'a>,
        span: Span,
        path: &str,
        key: Option<Loc>,
        record: bool,
        depth: usize,
    ) -> Option<()> {
        // serde_yaml already rejected documents nested this deep; guard anyway.
        if depth > 256 {
            return None;
        }
        let plain = matches!(&event, Event::Scalar(_, ScalarStyle::Plain, _, None));
        if record {
            self.nodes.insert(
                path.to_string(),
                NodeInfo {
                    value: Loc::from_span(&span),
                    key,
                    plain,
                },
            );
        }
        match event {
            Event::SequenceStart(..) => {
                let mut index = 0usize;
                loop {
                    let (ev, sp) = events.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        return Some(());
                    }
                    let child = join(path, &index.to_string());
                    self.node(events, ev, sp, &child, None, record, depth + 1)?;
                    index += 1;
                }
            }
            Event::MappingStart(..) => loop {
                let (key_ev, key_span) = events.next()?;
                if matches!(key_ev, Event::MappingEnd) {
                    return Some(());
                }
                let key_loc = Loc::from_span(&key_span);
                let key_text = match &key_ev {
                    Event::Scalar(text, ..) => Some(text.to_string()),
                    _ => None,
                };
                if key_text.is_none() {
                    // A complex (mapping/sequence) key: walk it without recording.
                    self.node(events, key_ev, key_span, "", None, false, depth + 1)?;
                }
                let (val_ev, val_span) = events.next()?;
                match key_text {
                    Some(k) => {
                        let child = join(path, &k);
                        self.node(
                            events,
                            val_ev,
                            val_span,
                            &child,
                            Some(key_loc),
                            record,
                            depth + 1,
                        )?;
                    }
                    None => {
                        self.node(events, val_ev, val_span, "", None, false, depth + 1)?;
                    }
                }
            },
            _ => Some(()),
        }
    }

    /// Where the value at exactly `path` starts.
    pub(crate) fn value_exact(&self, path: &str) -> Option<Loc> {
        self.nodes.get(path).map(|n| n.value)
    }

    /// Where the value at `path` starts, falling back to the longest known
    /// prefix of `path` (e.g. when serde reports a path inside a scalar).
    pub(crate) fn value(&self, path: &str) -> Option<Loc> {
        self.walk_up(path, |n| Some(n.value))
    }

    /// Where the key naming `path` starts (falls back to its value, then to
    /// the longest known prefix). Used when the key itself is the problem.
    pub(crate) fn key(&self, path: &str) -> Option<Loc> {
        self.walk_up(path, |n| n.key.or(Some(n.value)))
    }

    /// Whether the value at `path` was an untagged, unquoted scalar.
    pub(crate) fn is_plain(&self, path: &str) -> bool {
        self.nodes.get(path).is_some_and(|n| n.plain)
    }

    fn walk_up(&self, path: &str, pick: impl Fn(&NodeInfo) -> Option<Loc>) -> Option<Loc> {
        let mut current = path;
        loop {
            if let Some(found) = self.nodes.get(current).and_then(&pick) {
                return Some(found);
            }
            if current.is_empty() {
                return None;
            }
            current = match current.rfind('.') {
                Some(i) => &current[..i],
                None => "",
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "a:\n  b: 1\n  c:\n    - x\n    - 'y'\n  \"d\": {e: [1, 2]}\nshell:\n";

    fn loc(line: usize, column: usize) -> Option<Loc> {
        Some(Loc { line, column })
    }

    #[test]
    fn records_values_and_keys() {
        let m = LocationMap::build(DOC);
        assert_eq!(m.value_exact("a"), loc(2, 3));
        assert_eq!(m.key("a"), loc(1, 1));
        assert_eq!(m.value("a.b"), loc(2, 6));
        assert_eq!(m.key("a.b"), loc(2, 3));
        assert_eq!(m.value("a.c.0"), loc(4, 7));
        assert_eq!(m.value("a.c.1"), loc(5, 7));
        assert_eq!(m.value("a.d.e.1"), loc(6, 16));
        assert_eq!(m.key("shell"), loc(7, 1));
        assert!(m.is_plain("a.c.0"));
        assert!(!m.is_plain("a.c.1"));
    }

    #[test]
    fn falls_back_to_longest_prefix() {
        let m = LocationMap::build(DOC);
        assert_eq!(m.value("a.b.nothing.here"), loc(2, 6));
        assert_eq!(m.value_exact("a.b.nothing"), None);
        assert_eq!(m.value("zzz"), loc(1, 1));
    }

    #[test]
    fn broken_text_is_best_effort() {
        let m = LocationMap::build("a: [1, 2\n");
        assert_eq!(m.value_exact("a.0"), loc(1, 5));
    }
}
