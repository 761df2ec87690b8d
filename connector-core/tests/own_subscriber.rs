//! An application that installed its own global `tracing` subscriber keeps it: `build`
//! does not replace it, and the configuration's `logging:` section is not used. (A test
//! binary of its own: a global subscriber is set once per process.)

use std::io::Write;
use std::sync::{Arc, Mutex};

use connector_core::prelude::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[connector(name = "quiet")]
struct Quiet {}

#[connector]
impl Quiet {
    async fn connect(&self) -> Result<()> {
        Ok(())
    }
    async fn listen(&self, _bot: &Bot) -> Result<()> {
        Ok(())
    }
}

#[test]
fn a_subscriber_installed_before_build_is_kept() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let dir = std::env::temp_dir().join(format!("own-subscriber-{}", std::process::id()));
    let log = dir.join("bot.log");
    let yaml = format!(
        "connectors: {{quiet: }}\nbogus-key: 1\nlogging: {{level: error, console: false, path: '{}'}}\n",
        log.display()
    );
    let config = Config::from_str(&yaml, "configuration.yaml").unwrap();
    BotBuilder::new()
        .connector::<Quiet>()
        .build(&config)
        .unwrap();
    tracing::info!("the application's own line");

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("the application's own line"),
        "captured: {text}"
    );
    assert_eq!(
        text.matches("`bogus-key` ignored").count(),
        1,
        "the loader's warning reached the application's subscriber once: {text}"
    );
    assert!(!log.exists(), "the configuration's log file was not opened");
    let _ = std::fs::remove_dir_all(dir);
}
