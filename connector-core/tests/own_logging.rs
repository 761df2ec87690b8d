//! `BotBuilder::own_logging()`: the application says it sets up `tracing` itself, so
//! `build` installs nothing even when no subscriber exists yet. (A test binary of its own:
//! it checks the process's global state.)

use connector_core::prelude::*;

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
fn own_logging_leaves_the_process_without_a_subscriber() {
    let dir = std::env::temp_dir().join(format!("own-logging-{}", std::process::id()));
    let log = dir.join("bot.log");
    let yaml = format!(
        "connectors: {{quiet: }}\nlogging: {{level: info, path: '{}'}}\n",
        log.display()
    );
    let config = Config::from_str(&yaml, "configuration.yaml").unwrap();
    BotBuilder::new()
        .connector::<Quiet>()
        .own_logging()
        .build(&config)
        .unwrap();
    assert!(
        !tracing::dispatcher::has_been_set(),
        "no global subscriber installed"
    );
    assert!(!log.exists(), "the configuration's log file was not opened");

    // Without it, the same build installs the configuration's logging.
    BotBuilder::new()
        .connector::<Quiet>()
        .build(&config)
        .unwrap();
    assert!(tracing::dispatcher::has_been_set());
    tracing::info!("to the file");
    let text = std::fs::read_to_string(&log).expect("the log file");
    assert!(
        text.contains("INFO own_logging: to the file"),
        "file: {text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
