//! IRC wire format: splitting the byte stream into lines, parsing a line into prefix,
//! command and parameters, and cutting outgoing text so each line fits in 512 bytes.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest line IRC allows, CRLF included (RFC 1459/2812).
pub const MAX_LINE: usize = 512;

/// The longest inbound line accepted: 512 bytes plus room for IRCv3 message tags (8191).
/// Longer lines are dropped whole (with a log line), not split.
pub const MAX_INBOUND: usize = 8191 + MAX_LINE;

/// Splits a byte stream into lines at `\n` (a `\r` before it is dropped), with a length cap.
pub struct LineReader<R> {
    reader: R,
    buf: BytesMut,
    /// Inside an over-long line: drop bytes up to the next `\n`.
    discarding: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Reads lines from `reader`.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buf: BytesMut::with_capacity(4096),
            discarding: false,
        }
    }

    /// The next complete line without its line ending; `None` at end of stream. Cancel-safe:
    /// a partial line stays buffered.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(line) = self.take_buffered() {
                return Ok(Some(line));
            }
            if self.reader.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// A complete line from the buffer, if there is one; drops over-long lines.
    fn take_buffered(&mut self) -> Option<Vec<u8>> {
        loop {
            match self.buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut line = self.buf.split_to(i + 1);
                    if std::mem::take(&mut self.discarding) {
                        continue;
                    }
                    if i > MAX_INBOUND {
                        tracing::warn!(
                            limit = MAX_INBOUND,
                            "irc: dropping an over-long line from the server"
                        );
                        continue;
                    }
                    line.truncate(i);
                    if line.last() == Some(&b'\r') {
                        line.truncate(i - 1);
                    }
                    return Some(line.to_vec());
                }
                None => {
                    if self.buf.len() > MAX_INBOUND {
                        if !self.discarding {
                            tracing::warn!(
                                limit = MAX_INBOUND,
                                "irc: dropping an over-long line from the server"
                            );
                        }
                        self.discarding = true;
                        self.buf.advance(self.buf.len());
                    }
                    return None;
                }
            }
        }
    }
}

/// One parsed IRC line: `[@tags] [:prefix] COMMAND params… [:trailing]`.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// Who sent it (`nick!user@host` or a server name), when given.
    pub prefix: Option<&'a str>,
    /// The command or three-digit numeric, as sent.
    pub command: &'a str,
    /// The parameters; the trailing one (after ` :`) is the last, spaces included.
    pub params: Vec<&'a str>,
}

impl<'a> Line<'a> {
    /// Parses a line (without CRLF); `None` when it has no command or the command is not
    /// letters or a three-digit numeric.
    pub fn parse(line: &'a str) -> Option<Self> {
        let mut rest = line;
        if let Some(tagged) = rest.strip_prefix('@') {
            rest = tagged.split_once(' ')?.1;
        }
        rest = rest.trim_start_matches(' ');
        let prefix = match rest.strip_prefix(':') {
            Some(p) => {
                let (prefix, after) = p.split_once(' ')?;
                if prefix.is_empty() {
                    return None;
                }
                rest = after.trim_start_matches(' ');
                Some(prefix)
            }
            None => None,
        };
        let (command, mut rest) = match rest.split_once(' ') {
            Some((c, r)) => (c, r),
            None => (rest, ""),
        };
        let valid = (!command.is_empty() && command.bytes().all(|b| b.is_ascii_alphabetic()))
            || (command.len() == 3 && command.bytes().all(|b| b.is_ascii_digit()));
        if !valid {
            return None;
        }
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(trailing);
                break;
            }
            match rest.split_once(' ') {
                Some((p, r)) => {
                    params.push(p);
                    rest = r;
                }
                None => {
                    params.push(rest);
                    break;
                }
            }
        }
        Some(Self {
            prefix,
            command,
            params,
        })
    }

    /// The nick in the prefix (`nick` of `nick!user@host`).
    pub fn nick(&self) -> Option<&'a str> {
        self.prefix
            .map(|p| p.split(['!', '@']).next().unwrap_or(p))
            .filter(|n| !n.is_empty())
    }
}

/// Whether an IRC target names a channel rather than a nick.
pub fn is_channel(target: &str) -> bool {
    target.starts_with(['#', '&', '+', '!'])
}

/// The text of a CTCP ACTION (`\x01ACTION text\x01`), `Some(None)` for any other CTCP
/// request, `None` for plain text.
pub fn ctcp(text: &str) -> Option<Option<&str>> {
    let body = text.strip_prefix('\x01')?;
    let body = body.strip_suffix('\x01').unwrap_or(body);
    Some(match body.strip_prefix("ACTION") {
        Some("") => Some(""),
        Some(action) => action.strip_prefix(' '),
        None => None,
    })
}

/// Cuts `text` into pieces of at most `budget` bytes on UTF-8 character boundaries, each
/// line of the text (`\n`, with an optional `\r`) starting a new piece; empty lines are
/// dropped (IRC cannot send them) and so are other control characters that break the
/// wire format (`\r`, NUL).
pub fn split_text(text: &str, budget: usize) -> Vec<String> {
    let budget = budget.max(4);
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line: String = line.chars().filter(|c| !matches!(c, '\r' | '\0')).collect();
        let mut rest = line.as_str();
        while !rest.is_empty() {
            let mut cut = rest.len().min(budget);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push(rest[..cut].to_owned());
            rest = &rest[cut..];
        }
    }
    out
}

/// Removes what would end or corrupt a command line (CR, LF, NUL), for targets and nicks.
pub fn clean(word: &str) -> String {
    word.chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefix_command_params_and_trailing() {
        let l = Line::parse(":ann!~a@host PRIVMSG #room :hello  there ").unwrap();
        assert_eq!(l.prefix, Some("ann!~a@host"));
        assert_eq!(l.nick(), Some("ann"));
        assert_eq!(l.command, "PRIVMSG");
        assert_eq!(l.params, vec!["#room", "hello  there "]);

        let l = Line::parse("PING :irc.test").unwrap();
        assert_eq!((l.prefix, l.command), (None, "PING"));
        assert_eq!(l.params, vec!["irc.test"]);

        let l = Line::parse("@time=x :srv 001 bot :Welcome").unwrap();
        assert_eq!(l.command, "001");
        assert_eq!(l.params, vec!["bot", "Welcome"]);

        let l = Line::parse(":srv 433 * bot :Nickname already in use").unwrap();
        assert_eq!(l.params, vec!["*", "bot", "Nickname already in use"]);

        let l = Line::parse(":ann JOIN #room").unwrap();
        assert_eq!(l.params, vec!["#room"]);
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "",
            " ",
            ":",
            ":onlyprefix",
            ": PRIVMSG x :y",
            "@tags-only",
            "12 x",
            "PRIV-MSG x",
            "\u{1}\u{2}",
            ":p 1234 x",
        ] {
            assert_eq!(Line::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ctcp_action() {
        assert_eq!(ctcp("\x01ACTION waves\x01"), Some(Some("waves")));
        assert_eq!(ctcp("\x01ACTION waves"), Some(Some("waves")));
        assert_eq!(ctcp("\x01VERSION\x01"), Some(None));
        assert_eq!(ctcp("hello"), None);
    }

    #[test]
    fn splits_on_newlines_and_char_boundaries() {
        assert_eq!(split_text("a\nb\r\n\nc", 10), vec!["a", "b", "c"]);
        let text = "é".repeat(10); // 20 bytes
        let pieces = split_text(&text, 5);
        assert!(pieces.iter().all(|p| p.len() <= 5 && p.len() == 4));
        assert_eq!(pieces.concat(), text);
        let long = "x".repeat(1000);
        let pieces = split_text(&long, 300);
        assert_eq!(pieces.len(), 4);
        assert_eq!(pieces.concat(), long);
    }

    #[tokio::test]
    async fn line_reader_splits_caps_and_keeps_bytes() {
        let mut input = Vec::new();
        input.extend_from_slice(b"one\r\ntwo\n");
        input.extend_from_slice(&[0xff, 0xfe, b'\r', b'\n']);
        input.extend(std::iter::repeat_n(b'x', MAX_INBOUND + 10));
        input.extend_from_slice(b"\r\nafter\r\npartial");
        let mut r = LineReader::new(&input[..]);
        assert_eq!(r.next_line().await.unwrap().unwrap(), b"one");
        assert_eq!(r.next_line().await.unwrap().unwrap(), b"two");
        assert_eq!(r.next_line().await.unwrap().unwrap(), vec![0xff, 0xfe]);
        assert_eq!(r.next_line().await.unwrap().unwrap(), b"after");
        assert_eq!(r.next_line().await.unwrap(), None);
    }
}
