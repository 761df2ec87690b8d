//! A connector reaches the bot's memory in `connect` and `listen` (as a Matrix connector keeps
//! its sync token): the same store its skills use, on a SQLite file that outlives the bot.

use std::sync::Mutex;
use std::time::Duration;

use connector_core::prelude::*;

/// What the connector was asked to send, across bots (the connector is built from config).
static SENT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remembers a sync token: reads the last one in `connect`, stores the next in `listen`.
#[connector(name = "syncer")]
struct Syncer {
    resumed_from: Mutex<Option<String>>,
}

#[connector]
impl Syncer {
    async fn connect(&self) -> Result<()> {
        let token: Option<String> = self.memory().get("sync-token").await?;
        *self.resumed_from.lock().unwrap() = token;
        Ok(())
    }

    async fn listen(&self, bot: &Bot) -> Result<()> {
        let previous = self.resumed_from.lock().unwrap().clone();
        let next = match &previous {
            None => "s1".to_owned(),
            Some(t) => format!("{t}+1"),
        };
        self.memory().put("sync-token", &next).await?;
        let text = format!("resumed from {}", previous.as_deref().unwrap_or("nothing"));
        bot.parse(Message::new(text).user("ann").target("room"))
            .await;
        bot.shutting_down().await;
        Ok(())
    }

    #[register_event(Message)]
    async fn send_message(&self, message: &Message) -> Result<()> {
        SENT.lock().unwrap().push(message.text.clone());
        Ok(())
    }
}

/// Answers with what it read and the token the connector stored, from the skill's side.
fn token_skill() -> Skill {
    Skill::new("token", |ctx: SkillContext| async move {
        let token: Option<String> = ctx.memory().get("sync-token").await?;
        let same: Option<String> = ctx.bot().memory().get("sync-token").await?;
        assert_eq!(token, same);
        ctx.respond(format!(
            "{}; token now {}",
            ctx.text(),
            token.unwrap_or_default()
        ))
        .await?;
        Ok::<(), BoxError>(())
    })
    .regex("resumed from")
}

async fn run_once(config: &Config) -> String {
    let before = SENT.lock().unwrap().len();
    let runner = BotBuilder::new()
        .own_logging()
        .connector::<Syncer>()
        .skill(token_skill())
        .build(config)
        .unwrap();
    let bot = runner.bot();
    let running = tokio::spawn(runner.run_until(std::future::pending()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let reply = loop {
        if let Some(reply) = SENT.lock().unwrap().get(before).cloned() {
            break reply;
        }
        assert!(tokio::time::Instant::now() < deadline, "no reply");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    bot.shutdown();
    tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("shutdown in time")
        .expect("join")
        .expect("clean run");
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_keeps_its_sync_token_in_memory_across_restarts() {
    let dir =
        std::env::temp_dir().join(format!("connector-memory-connector-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = Config::from_str(
        &format!(
            "connectors:\n  syncer: {{}}\ndatabases:\n  sqlite: {{path: {}}}\n",
            dir.join("m.db").display()
        ),
        "configuration.yaml",
    )
    .unwrap();
    assert_eq!(
        run_once(&config).await,
        "resumed from nothing; token now s1"
    );
    assert_eq!(run_once(&config).await, "resumed from s1; token now s1+1");
    let _ = std::fs::remove_dir_all(&dir);
}
