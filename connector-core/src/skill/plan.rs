//! Choosing the skills for one event, as opsdroid's `parse` does: compiled matchers, regex
//! scores, constraints.

use std::sync::Arc;

use regex::{Regex, RegexBuilder};

use super::{Constraint, CrontabSpec, LookupTarget, Matcher, RegexCondition, Skill, parse_format};
use crate::context::{SkillFn, SkillInfo};
use crate::error::BotError;
use crate::events::Message;
use crate::model::{AnyEvent, EventKind};

struct CompiledRegex {
    regex: Regex,
    score: f64,
}

struct CompiledSkill {
    info: Arc<SkillInfo>,
    func: Arc<dyn SkillFn>,
    regexes: Vec<CompiledRegex>,
    always: bool,
    event_types: Vec<(&'static EventKind, bool)>,
    catchall: Option<bool>,
    constraints: Vec<Constraint>,
    /// Schedules: never chosen for an event; `crontab::Schedules` runs them.
    crontabs: Vec<CrontabSpec>,
    /// Webhook names: `POST /skill/<name>/<webhook>` runs this skill alone.
    webhooks: Vec<String>,
}

/// Compiles a matcher's regex; an invalid one names the skill.
fn build(pattern: &str, case_sensitive: bool, skill: &str) -> Result<Regex, BotError> {
    RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .build()
        .map_err(|error| BotError::Regex {
            skill: skill.to_owned(),
            error,
        })
}

/// opsdroid's regex score: `(1 - 1/(len+1)^2) * factor`, so longer expressions win.
pub fn regex_score(expression: &str, factor: f64) -> f64 {
    let len = expression.chars().count() as f64;
    (1.0 - 1.0 / ((len + 1.0) * (len + 1.0))) * factor
}

/// The enabled skills, compiled, in registration order.
pub(crate) struct Skills {
    skills: Vec<CompiledSkill>,
    /// Each skill's name and configuration, by index: what a skill's context looks up.
    infos: Arc<[Arc<SkillInfo>]>,
    /// Which kinds of matcher any skill has: planning skips the passes no skill needs.
    any: Kinds,
}

/// Which kinds of matcher at least one skill has.
#[derive(Default)]
struct Kinds {
    always: bool,
    event_types: bool,
    regexes: bool,
    catchall: bool,
}

/// One skill chosen for one event.
pub(crate) struct Planned {
    pub(crate) index: usize,
    pub(crate) event: AnyEvent,
    /// The regex groups, when a regex chose the skill. `None` rather than one shared empty
    /// list: cloning that for every event wrote its reference count from every thread.
    pub(crate) groups: Option<Arc<[Option<String>]>>,
}

impl Skills {
    pub(crate) fn compile(
        skills: Vec<(Skill, Option<serde_yaml::Value>)>,
    ) -> Result<Self, BotError> {
        let mut compiled = Vec::with_capacity(skills.len());
        for (skill, config) in skills {
            let mut c = CompiledSkill {
                info: Arc::new(SkillInfo {
                    name: skill.name.clone(),
                    config,
                }),
                func: skill.func,
                regexes: Vec::new(),
                always: false,
                event_types: Vec::new(),
                catchall: None,
                constraints: skill.constraints,
                crontabs: Vec::new(),
                webhooks: Vec::new(),
            };
            for m in skill.matchers {
                match m {
                    Matcher::Regex(spec) => {
                        let pattern = match spec.condition {
                            RegexCondition::Match => format!("^(?:{})", spec.expression),
                            RegexCondition::Search => spec.expression.clone(),
                            RegexCondition::FullMatch => format!("^(?:{})$", spec.expression),
                        };
                        c.regexes.push(CompiledRegex {
                            regex: build(&pattern, spec.case_sensitive, &skill.name)?,
                            score: regex_score(&spec.expression, spec.score_factor),
                        });
                    }
                    Matcher::Parse(spec) => {
                        let body = parse_format::to_regex(&spec.format).map_err(|e| {
                            BotError::ParseFormat {
                                skill: skill.name.to_string(),
                                message: e.0,
                            }
                        })?;
                        let pattern = match spec.condition {
                            RegexCondition::Search => body,
                            RegexCondition::Match | RegexCondition::FullMatch => {
                                format!("^(?:{body})$")
                            }
                        };
                        c.regexes.push(CompiledRegex {
                            regex: build(&pattern, spec.case_sensitive, &skill.name)?,
                            score: regex_score(&spec.format, spec.score_factor),
                        });
                    }
                    Matcher::Always => c.always = true,
                    Matcher::EventType {
                        kind,
                        include_subclasses,
                    } => c.event_types.push((kind, include_subclasses)),
                    Matcher::Webhook(name) => c.webhooks.push(name),
                    Matcher::Catchall { messages_only } => {
                        // Several catch-all matchers: messages only if every one says so.
                        c.catchall = Some(c.catchall.map_or(messages_only, |m| m && messages_only))
                    }
                    Matcher::Crontab(spec) => c.crontabs.push(spec),
                }
            }
            compiled.push(c);
        }
        let infos = compiled.iter().map(|c| c.info.clone()).collect();
        let any = Kinds {
            always: compiled.iter().any(|c| c.always),
            event_types: compiled.iter().any(|c| !c.event_types.is_empty()),
            regexes: compiled.iter().any(|c| !c.regexes.is_empty()),
            catchall: compiled.iter().any(|c| c.catchall.is_some()),
        };
        Ok(Self {
            skills: compiled,
            infos,
            any,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.skills.len()
    }

    /// The skill named `skill` with the webhook `name` (the first such, in registration
    /// order).
    pub(crate) fn webhook(&self, skill: &str, name: &str) -> Option<usize> {
        self.skills
            .iter()
            .position(|s| &*s.info.name == skill && s.webhooks.iter().any(|w| w == name))
    }

    /// Whether any skill has a webhook matcher (the web server then starts with the bot).
    pub(crate) fn has_webhooks(&self) -> bool {
        self.skills.iter().any(|s| !s.webhooks.is_empty())
    }

    /// Skill `index`'s name, configuration and function.
    /// Each skill's name and configuration, by index.
    pub(crate) fn infos(&self) -> &Arc<[Arc<SkillInfo>]> {
        &self.infos
    }

    pub(crate) fn get(&self, index: usize) -> (&Arc<SkillInfo>, &Arc<dyn SkillFn>) {
        let skill = &self.skills[index];
        (&skill.info, &skill.func)
    }

    /// Every crontab matcher: the skill's index, name and configuration, function, spec.
    pub(crate) fn crontabs(
        &self,
    ) -> impl Iterator<Item = (usize, &Arc<SkillInfo>, &Arc<dyn SkillFn>, &CrontabSpec)> {
        self.skills.iter().enumerate().flat_map(|(index, s)| {
            s.crontabs
                .iter()
                .map(move |spec| (index, &s.info, &s.func, spec))
        })
    }

    /// The skills to run for `event`, in opsdroid's order: always, event type, the best
    /// regex, else catch-all, pushed on `planned` (a conversation's task keeps one, so
    /// planning allocates nothing).
    /// Room constraints also match what `lookup` says a configured room name stands for.
    pub(crate) fn plan(
        &self,
        event: &AnyEvent,
        lookup: LookupTarget<'_>,
        planned: &mut Vec<Planned>,
    ) {
        let allowed = |s: &CompiledSkill| s.constraints.iter().all(|c| c.allows(event, lookup));
        let any = &self.any;
        if any.always {
            for (index, s) in self.skills.iter().enumerate() {
                if s.always && allowed(s) {
                    planned.push(Planned {
                        index,
                        event: event.clone(),
                        groups: None,
                    });
                }
            }
        }
        if any.event_types {
            let kind = event.kind();
            for (index, s) in self.skills.iter().enumerate() {
                let hit = s
                    .event_types
                    .iter()
                    .any(|(k, subs)| if *subs { kind.is_a(k) } else { kind == *k });
                if hit && allowed(s) {
                    planned.push(Planned {
                        index,
                        event: event.clone(),
                        groups: None,
                    });
                }
            }
        }
        let mut ranked = false;
        if any.regexes
            && let Some(text) = event.text()
        {
            let mut best: Option<(f64, usize, regex::Captures<'_>, &Regex)> = None;
            for (index, s) in self.skills.iter().enumerate() {
                if s.regexes.is_empty() || !allowed(s) {
                    continue;
                }
                for r in &s.regexes {
                    if best.as_ref().is_some_and(|(score, ..)| r.score <= *score) {
                        continue;
                    }
                    if let Some(caps) = r.regex.captures(text) {
                        best = Some((r.score, index, caps, &r.regex));
                    }
                }
            }
            if let Some((_, index, caps, regex)) = best {
                ranked = true;
                let mut ev = event.clone();
                let names: Vec<(&str, String)> = regex
                    .capture_names()
                    .flatten()
                    .filter_map(|n| caps.name(n).map(|m| (n, m.as_str().to_owned())))
                    .collect();
                if !names.is_empty() {
                    let meta = ev.meta_mut();
                    for (n, v) in names {
                        meta.update_entity(n, v, Some(1.0), true);
                    }
                }
                let groups: Vec<Option<String>> = caps
                    .iter()
                    .map(|g| g.map(|m| m.as_str().to_owned()))
                    .collect();
                planned.push(Planned {
                    index,
                    event: ev,
                    groups: Some(Arc::from(groups)),
                });
            }
        }
        if !ranked && any.catchall {
            let is_message = event.is_a::<Message>();
            for (index, s) in self.skills.iter().enumerate() {
                if let Some(messages_only) = s.catchall
                    && (!messages_only || is_message)
                    && allowed(s)
                {
                    planned.push(Planned {
                        index,
                        event: event.clone(),
                        groups: None,
                    });
                }
            }
        }
    }
}
