//! opsdroid's regex options (matching condition, case, score factor) and its parse-format
//! matcher, through a running bot.

use connector_core::BotError;
use connector_core::prelude::*;
use connector_core::skill::{ParseSpec, RegexSpec};
use connector_core::testing::{MemoryConnector, TestBot};

/// A skill that answers `<name>: <entities>` so a test sees which skill ran and with what.
fn reporter(name: &'static str) -> Skill {
    Skill::new(name, move |ctx: SkillContext| async move {
        let mut entities: Vec<String> = ctx
            .event()
            .meta()
            .entities
            .keys()
            .map(|k| format!("{k}={}", ctx.entity(k).unwrap_or("?")))
            .collect();
        entities.sort();
        ctx.respond(format!("{name}: {}", entities.join(" "))).await
    })
}

/// Sends each text through a bot with `skills` plus a catch-all, and returns the answers.
async fn answers(skills: Vec<Skill>, texts: &[&str]) -> Vec<String> {
    let (chat, remote) = MemoryConnector::new("chat");
    let mut bot = TestBot::new().skill(reporter("none").catchall_messages());
    for skill in skills {
        bot = bot.skill(skill);
    }
    let mut run = bot.connector(chat).start().unwrap();
    let mut out = Vec::new();
    for text in texts {
        remote.inject(Message::new(*text).user("ann").target("r"));
        let reply = run.next_sent().await.expect("an answer");
        out.push(reply.text().unwrap_or_default().to_owned());
    }
    run.shutdown().await.unwrap();
    out
}

#[tokio::test]
async fn a_regex_matches_at_the_start_by_default_and_anywhere_with_search() {
    let got = answers(
        vec![reporter("anchored").regex(r"weather in (?P<city>\w+)")],
        &["what is the weather in Paris", "weather in Oslo"],
    )
    .await;
    assert_eq!(got, ["none: ", "anchored: city=Oslo"]);

    let got = answers(
        vec![reporter("search").regex_with(RegexSpec::new(r"weather in (?P<city>\w+)").search())],
        &["what is the weather in Paris"],
    )
    .await;
    assert_eq!(got, ["search: city=Paris"]);
}

#[tokio::test]
async fn case_and_full_match_options() {
    let got = answers(
        vec![
            reporter("ci").regex_with(RegexSpec::new("^ping$").case_insensitive()),
            reporter("full").regex_with(RegexSpec::new("status").full_match()),
        ],
        &["PING", "status", "status please"],
    )
    .await;
    assert_eq!(got, ["ci: ", "full: ", "none: "]);
}

#[tokio::test]
async fn a_score_factor_beats_a_longer_expression() {
    // Without factors the longer expression wins (opsdroid's scoring) …
    let got = answers(
        vec![
            reporter("short").regex("deploy"),
            reporter("long").regex("deploy .*"),
        ],
        &["deploy web"],
    )
    .await;
    assert_eq!(got, ["long: "]);
    // … and a higher factor lets the shorter one win.
    let got = answers(
        vec![
            reporter("short").regex_with(RegexSpec::new("deploy").score_factor(0.9)),
            reporter("long").regex("deploy .*"),
        ],
        &["deploy web"],
    )
    .await;
    assert_eq!(got, ["short: "]);
}

#[tokio::test]
async fn parse_formats_match_the_whole_text_and_give_entities() {
    let got = answers(
        vec![
            reporter("hello").parse("hello {name}"),
            reporter("add").parse("add {a:d} and {b:d}"),
            reporter("deploy").parse_with(ParseSpec::new("deploy {app:w}").search()),
        ],
        &[
            "hello Ann",
            "say hello Ann",
            "add 2 and 40",
            "add two and 40",
            "please deploy web now",
        ],
    )
    .await;
    assert_eq!(
        got,
        [
            "hello: name=Ann",
            "none: ",
            "add: a=2 b=40",
            "none: ",
            "deploy: app=web"
        ]
    );
}

#[tokio::test]
async fn parse_formats_are_case_sensitive_unless_asked() {
    let got = answers(
        vec![
            reporter("strict").parse("Hello {name}"),
            reporter("loose").parse_with(ParseSpec::new("bye {name}").case_insensitive()),
        ],
        &["hello Ann", "BYE Ann"],
    )
    .await;
    assert_eq!(got, ["none: ", "loose: name=Ann"]);
}

#[test]
fn an_invalid_parse_format_stops_the_build_with_the_skill_named() {
    let (chat, _remote) = MemoryConnector::new("chat");
    let err = BotBuilder::new()
        .instance(chat)
        .skill(reporter("broken").parse("hello {name"))
        .build_bare()
        .err()
        .expect("an invalid format");
    assert!(matches!(err, BotError::ParseFormat { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "skill `broken`: invalid parse format: unclosed `{` in `hello {name` (write `{{` for a literal brace)"
    );
}
