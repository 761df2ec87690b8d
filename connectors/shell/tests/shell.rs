//! The shell connector driven through the test kit with injected I/O: piped and interactive
//! output, prompts, the typing indicator, end of input, and what it parses.

use std::io::Cursor;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use connector_core::config::ConnectorSection;
use connector_core::prelude::*;
use connector_core::testing::connector_from_yaml;
use connector_core::testing::{TestBot, TestRun};
use connector_shell::Shell;
use connector_tests::{LIMIT, skills};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};

/// An in-memory output the test can read while the shell writes to it.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("buffer lock").clone()).expect("utf-8 output")
    }

    /// Waits until the output satisfies `pred`, failing after [`LIMIT`].
    async fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let text = self.text();
            if pred(&text) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; output so far: {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl AsyncWrite for SharedBuf {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.lock().expect("buffer lock").extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn bare_shell() -> anyhow::Result<Shell> {
    Ok(Shell::from_section(&ConnectorSection::bare(
        "shell", "shell",
    ))?)
}

fn mybot_shell() -> anyhow::Result<Shell> {
    Ok(connector_from_yaml(
        "connectors:\n  shell:\n    bot-name: mybot\n",
    )?)
}

/// A shell reading all of `input` (then end of file), writing to a shared buffer.
fn piped(shell: Shell, input: &str, interactive: bool) -> (Shell, SharedBuf) {
    let out = SharedBuf::default();
    let reader = BufReader::new(Cursor::new(input.as_bytes().to_vec()));
    (
        shell
            .with_io(reader, out.clone(), interactive)
            .with_user("ann"),
        out,
    )
}

/// A shell reading from a duplex pipe the test writes to (and closes by dropping it).
fn live(shell: Shell, interactive: bool) -> (Shell, DuplexStream, SharedBuf) {
    let out = SharedBuf::default();
    let (to_shell, from_test) = tokio::io::duplex(1024);
    let shell = shell
        .with_io(BufReader::new(from_test), out.clone(), interactive)
        .with_user("ann");
    (shell, to_shell, out)
}

fn start(shell: Shell) -> anyhow::Result<TestRun> {
    Ok(TestBot::new()
        .skill(skills::hello())
        .skill(skills::echo())
        .connector(shell)
        .start()?)
}

async fn finish_by_itself(run: TestRun) {
    tokio::time::timeout(LIMIT, run.finish())
        .await
        .expect("the run did not finish by itself at end of input")
        .expect("the run failed");
}

/// The next parsed `Message`, skipping `BotStarted`.
async fn next_message(run: &mut TestRun) -> AnyEvent {
    loop {
        let ev = run.next_parsed().await.expect("a parsed event");
        if !ev.is::<BotStarted>() {
            return ev;
        }
    }
}

#[tokio::test]
async fn piped_input_prints_only_replies_and_exits_at_eof() -> anyhow::Result<()> {
    let (shell, out) = piped(bare_shell()?, "hello\nsomething else\n", false);
    let run = start(shell)?;
    // At EOF `listen` returns; the bot waits for the queued replies, then stops.
    finish_by_itself(run).await;
    assert_eq!(out.text(), "Hi ann\nsomething else\n");
    Ok(())
}

#[tokio::test]
async fn piped_input_without_trailing_newline_is_still_parsed() -> anyhow::Result<()> {
    let (shell, out) = piped(bare_shell()?, "hello\nlast line", false);
    finish_by_itself(start(shell)?).await;
    assert_eq!(out.text(), "Hi ann\nlast line\n");
    Ok(())
}

#[tokio::test]
async fn empty_input_exits_with_no_output() -> anyhow::Result<()> {
    let (shell, out) = piped(bare_shell()?, "", false);
    finish_by_itself(start(shell)?).await;
    assert_eq!(out.text(), "");
    Ok(())
}

#[tokio::test]
async fn empty_lines_are_not_parsed() -> anyhow::Result<()> {
    let (shell, out) = piped(bare_shell()?, "\n   \nhello\n\n\t\r\nbye\n\n", false);
    let mut run = start(shell)?;
    let first = next_message(&mut run).await;
    assert_eq!(first.text(), Some("hello"));
    // Nothing was parsed for the blank lines in between.
    let second = next_message(&mut run).await;
    assert_eq!(second.text(), Some("bye"));
    finish_by_itself(run).await;
    assert_eq!(out.text(), "Hi ann\nbye\n");
    Ok(())
}

#[tokio::test]
async fn crlf_line_endings_are_stripped() -> anyhow::Result<()> {
    let (shell, out) = piped(bare_shell()?, "hello\r\nsome text\r\n", false);
    let mut run = start(shell)?;
    assert_eq!(next_message(&mut run).await.text(), Some("hello"));
    assert_eq!(next_message(&mut run).await.text(), Some("some text"));
    finish_by_itself(run).await;
    assert_eq!(out.text(), "Hi ann\nsome text\n");
    Ok(())
}

#[tokio::test]
async fn parsed_events_carry_user_and_connector() -> anyhow::Result<()> {
    let (shell, _out) = piped(bare_shell()?, "hello\n", false);
    let mut run = start(shell)?;
    let ev = next_message(&mut run).await;
    assert!(ev.is::<Message>(), "parsed a {}", ev.name());
    assert_eq!(ev.text(), Some("hello"));
    let meta = ev.meta();
    assert_eq!(meta.user.as_deref(), Some("ann"));
    assert_eq!(meta.user_id.as_deref(), Some("ann"));
    assert_eq!(meta.connector.as_deref(), Some("shell"));
    finish_by_itself(run).await;
    Ok(())
}

#[tokio::test]
async fn replies_are_sent_through_the_shell_to_the_user() -> anyhow::Result<()> {
    let (shell, _out) = piped(bare_shell()?, "hello\n", false);
    let mut run = start(shell)?;
    let reply = run.next_sent().await.expect("a reply");
    assert_eq!(reply.text(), Some("Hi ann"));
    assert_eq!(reply.meta().connector.as_deref(), Some("shell"));
    assert_eq!(reply.meta().user.as_deref(), Some("ann"));
    finish_by_itself(run).await;
    Ok(())
}

/// What the shell writes to blank its line on a terminal: wide enough for the prompt and for
/// the typing indicator, which is the longer of the two.
fn clear_for(bot_name: &str) -> String {
    let indicator = format!("{bot_name} is typing…");
    let prompt = format!("{bot_name}> ");
    let width = indicator.chars().count().max(prompt.chars().count());
    format!("\r{}\r", " ".repeat(width))
}

/// The interactive transcript of one exchange: the listen loop's prompts and the reply
/// (clear the line, the text, redraw the prompt). The second prompt and the reply are
/// written by different tasks, so either may come first.
fn interactive_transcripts(bot_name: &str, reply: &str) -> [String; 2] {
    let prompt = format!("{bot_name}> ");
    let clear = clear_for(bot_name);
    let answer = format!("{clear}{reply}\n{prompt}");
    [
        format!("{prompt}{prompt}{answer}\n"),
        format!("{prompt}{answer}{prompt}\n"),
    ]
}

async fn interactive_exchange(shell: Shell, bot_name: &str) -> anyhow::Result<()> {
    let prompt = format!("{bot_name}> ");
    let (shell, mut input, out) = live(shell, true);
    let run = start(shell)?;
    // The prompt is drawn before anything is read.
    let shown = out.wait_for("the first prompt", |t| !t.is_empty()).await;
    assert_eq!(shown, prompt);
    input.write_all(b"hello\n").await?;
    out.wait_for("the reply", |t| t.contains("Hi ann\n")).await;
    // Close the input: the shell ends the prompt line and the run finishes.
    drop(input);
    finish_by_itself(run).await;
    let text = out.text();
    let expected = interactive_transcripts(bot_name, "Hi ann");
    assert!(
        expected.contains(&text),
        "interactive output {text:?} is not one of {expected:?}"
    );
    Ok(())
}

#[tokio::test]
async fn interactive_mode_draws_clears_and_redraws_the_default_prompt() -> anyhow::Result<()> {
    interactive_exchange(bare_shell()?, "opsdroid").await
}

#[tokio::test]
async fn interactive_prompt_uses_the_configured_bot_name() -> anyhow::Result<()> {
    interactive_exchange(mybot_shell()?, "mybot").await
}

#[tokio::test]
async fn piped_mode_writes_no_prompt_even_with_a_bot_name() -> anyhow::Result<()> {
    let (shell, out) = piped(mybot_shell()?, "hello\n", false);
    finish_by_itself(start(shell)?).await;
    assert_eq!(out.text(), "Hi ann\n");
    Ok(())
}

#[tokio::test]
async fn typing_indicator_is_shown_when_interactive() -> anyhow::Result<()> {
    let (shell, input, out) = live(mybot_shell()?, true);
    let run = start(shell)?;
    out.wait_for("the prompt", |t| !t.is_empty()).await;
    assert_eq!(out.text(), "mybot> ");

    let handle = run.bot().connector::<Shell>("shell").expect("typed handle");
    handle.send(Typing::new(true)).await?;
    let on = format!("{}mybot is typing…", clear_for("mybot"));
    assert_eq!(out.text(), format!("mybot> {on}"));

    // Turning it off blanks the indicator and redraws the prompt.
    handle.get().user_typing(false).await?;
    let off = format!(
        "\r{}\rmybot> ",
        " ".repeat("mybot is typing…".chars().count())
    );
    assert_eq!(off, format!("{}mybot> ", clear_for("mybot")));
    assert_eq!(out.text(), format!("mybot> {on}{off}"));

    // `user_typing(true)` is the same as sending `Typing::new(true)`.
    handle.get().user_typing(true).await?;
    assert_eq!(out.text(), format!("mybot> {on}{off}{on}"));

    drop(input);
    finish_by_itself(run).await;
    Ok(())
}

#[tokio::test]
async fn a_reply_after_the_typing_indicator_blanks_all_of_it() -> anyhow::Result<()> {
    let (shell, input, out) = live(bare_shell()?, true);
    let run = start(shell)?;
    out.wait_for("the prompt", |t| !t.is_empty()).await;
    let handle = run.bot().connector::<Shell>("shell").expect("typed handle");
    handle.get().user_typing(true).await?;
    let before = out.text();
    assert!(before.ends_with("opsdroid is typing…"), "{before:?}");

    // A skill may reply without turning the indicator off first.
    handle.send(Message::new("done")).await?;
    let text = out.text();
    let written = &text[before.len()..];
    let blank = " ".repeat("opsdroid is typing…".chars().count());
    assert_eq!(written, format!("\r{blank}\rdone\nopsdroid> "));
    assert_eq!(
        written,
        format!("{}done\nopsdroid> ", clear_for("opsdroid"))
    );

    drop(input);
    finish_by_itself(run).await;
    Ok(())
}

#[tokio::test]
async fn typing_indicator_is_silent_when_piped() -> anyhow::Result<()> {
    let (shell, input, out) = live(bare_shell()?, false);
    let run = start(shell)?;
    let handle = run.bot().connector::<Shell>("shell").expect("typed handle");
    handle.send(Typing::new(true)).await?;
    handle.get().user_typing(true).await?;
    handle.send(Typing::new(false)).await?;
    // Sent through the bot (dynamic dispatch) too.
    run.bot().send(Typing::new(true).connector("shell")).await?;
    assert_eq!(out.text(), "");
    drop(input);
    finish_by_itself(run).await;
    assert_eq!(out.text(), "");
    Ok(())
}

#[tokio::test]
async fn shutdown_while_waiting_for_input_stops_the_run() -> anyhow::Result<()> {
    let (shell, _input, out) = live(bare_shell()?, false);
    let run = start(shell)?;
    // The input stays open: only a shutdown can end this run.
    tokio::time::timeout(LIMIT, run.shutdown())
        .await
        .expect("shutdown did not finish")?;
    assert_eq!(out.text(), "");
    Ok(())
}
