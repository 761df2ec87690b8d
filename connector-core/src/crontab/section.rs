//! A skill's crontab from its configuration section: `crontab:` adds a schedule and
//! `timezone:` sets the time zone of the skill's schedules that have none; mistakes are
//! located configuration errors (`skills.<name>.crontab`).

use serde_yaml::Value;

use super::schedule::{Schedule, parse_timezone};
use crate::config::{ConfigError, SkillSection};
use crate::skill::Skill;

/// `skill` with the crontab matcher its section asks for, if any.
///
/// `timezone:` is read only when the skill ends up with a crontab matcher (from code or
/// from `crontab:`); otherwise it is the skill's own setting and left alone.
pub(crate) fn configure(mut skill: Skill, section: &SkillSection) -> Result<Skill, ConfigError> {
    match section.raw().get("crontab") {
        None | Some(Value::Null) => {}
        Some(Value::String(expression)) => {
            Schedule::parse(expression).map_err(|message| section.error("crontab", message))?;
            skill = skill.crontab(expression.clone());
        }
        Some(_) => {
            return Err(section.error(
                "crontab",
                "expected a crontab expression in quotes, such as \"*/5 * * * *\"",
            ));
        }
    }
    if skill.crontab_specs_mut().next().is_none() {
        return Ok(skill);
    }
    let timezone = match section.raw().get("timezone") {
        None | Some(Value::Null) => return Ok(skill),
        Some(Value::String(name)) => name,
        Some(_) => {
            return Err(section.error(
                "timezone",
                "expected an IANA time zone name, such as Europe/Paris",
            ));
        }
    };
    parse_timezone(timezone).map_err(|message| section.error("timezone", message))?;
    for spec in skill.crontab_specs_mut() {
        if spec.timezone.is_none() {
            spec.timezone = Some(timezone.clone());
        }
    }
    Ok(skill)
}
