//! The example bot's skills.

use connector_core::prelude::*;
use connector_core::skill::RegexSpec;
use connector_core::web::WebhookResponse;

/// `hello` / `hi` → `Hi <user>`.
pub fn hello() -> Skill {
    Skill::new("hello", |ctx: SkillContext| async move {
        let user = ctx.event().meta().user.as_deref().unwrap_or("there");
        ctx.respond(format!("Hi {user}")).await
    })
    .regex(r"(?i)(hello|hi)\b")
}

/// Anything no other skill matched → the same text back.
pub fn echo() -> Skill {
    Skill::new("echo", |ctx: SkillContext| async move {
        let text = ctx.text().to_owned();
        ctx.respond(text).await
    })
    .catchall_messages()
}

/// `remember <key> is <value>` → `OK, I'll remember <key>.` once the value is stored;
/// `what is <key>` → `<key> is <value>.` or `I don't know <key>.`
///
/// Keys are global, as opsdroid's memory is: what one room teaches, every room knows. A
/// memory that fails (Redis down, a locked SQLite file) makes the skill fail, so the user
/// gets the bot's error reply.
pub fn remember() -> Skill {
    Skill::new("remember", |ctx: SkillContext| async move {
        let key = ctx.entity("key").unwrap_or_default().trim().to_owned();
        match ctx.entity("value") {
            Some(value) => {
                ctx.memory().put(&key, value.trim()).await?;
                ctx.respond(format!("OK, I'll remember {key}.")).await?;
            }
            None => {
                let answer = match ctx.memory().get::<String>(&key).await? {
                    Some(value) => format!("{key} is {value}."),
                    None => format!("I don't know {key}."),
                };
                ctx.respond(answer).await?;
            }
        }
        Ok::<(), BoxError>(())
    })
    .regex_with(RegexSpec::new(r"remember (?P<key>.+?) is (?P<value>.+)").full_match())
    .regex_with(RegexSpec::new(r"what is (?P<key>.+?)\??").full_match())
}

/// Says a text in the default connector's default target: on the schedule its configuration
/// gives (`skills: {announce: {crontab: "<expr>", message: "<text>"}}`), and when its webhook
/// is called (`POST /skill/announce/say` with `{"message": "<text>"}`).
///
/// A tick with no `message:` configured, or a webhook body without a `message` string, is
/// an error (logged with the skill's name; the webhook caller gets a 400 saying what is
/// expected) rather than an empty announcement.
pub fn announce() -> Skill {
    Skill::new("announce", |ctx: SkillContext| async move {
        let text = match ctx.webhook() {
            Some(hook) => match hook.json().and_then(|body| body.get("message")?.as_str()) {
                Some(text) => text.to_owned(),
                None => {
                    let error = serde_json::json!({"error": "expected a JSON body {\"message\": \"<text>\"}"});
                    hook.set_response(WebhookResponse::json(400, &error));
                    return Ok(());
                }
            },
            None => ctx
                .config()
                .and_then(|c| c.get("message")?.as_str())
                .ok_or("skills.announce.message is not set")?
                .to_owned(),
        };
        ctx.respond(text).await?;
        Ok::<(), BoxError>(())
    })
    .webhook("say")
}
