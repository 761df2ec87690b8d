//! The example bot's skills.

use connector_core::prelude::*;

/// `hello` / `hi` → `Hi <user>`.
pub fn hello() -> Skill {
    Skill::new("hello", |ctx: SkillContext| async move {
        let user = ctx
            .event()
            .meta()
            .user
            .clone()
            .unwrap_or_else(|| "there".to_owned());
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
