//! Environment-variable substitution for configuration string values.
//!
//! opsdroid lets users keep secrets out of `configuration.yaml` by writing
//! `$VAR` / `${VAR}`; this module implements that syntax (plus `${VAR:-default}`
//! and `$$`) as a pure function so it can be tested without touching the real
//! process environment.

use std::fmt;

/// Why a string could not be substituted.
///
/// Kept separate from [`super::ConfigError`] so [`substitute`] is usable (and
/// property-testable) on its own; the loader wraps it with file/line/key-path
/// context.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvError {
    /// A referenced variable has no value and the reference gave no default.
    Unset {
        /// Name of the missing variable.
        var: String,
    },
    /// A `${` was never closed by `}`.
    Unterminated {
        /// Character offset of the `$` that opened the reference.
        offset: usize,
    },
    /// The text between `${` and `}` (or before `:-`) is not a valid variable name.
    InvalidName {
        /// The text that was found where a name was expected.
        found: String,
        /// Character offset of the `$` that opened the reference.
        offset: usize,
    },
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvError::Unset { var } => write!(
                f,
                "environment variable `{var}` is not set (use `${{{var}:-default}}` for a default)"
            ),
            EnvError::Unterminated { offset } => write!(
                f,
                "unterminated `${{` at character {offset}: expected a closing `}}` (write `$$` for a literal `$`)"
            ),
            EnvError::InvalidName { found, offset } => write!(
                f,
                "invalid environment variable name `{found}` in `${{…}}` at character {offset}: names are letters, digits and `_`, not starting with a digit"
            ),
        }
    }
}

impl std::error::Error for EnvError {}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if is_name_start(c)) && chars.all(is_name_char)
}

/// Replace environment-variable references in `input`.
///
/// Why: configuration files should not contain secrets; this is the one place
/// that defines the reference syntax so loaders and tests agree on it.
///
/// Syntax (single pass — substituted values are never re-scanned, so a value
/// containing `$` cannot inject further references):
/// - `$NAME` and `${NAME}` — `NAME` matches `[A-Za-z_][A-Za-z0-9_]*`;
///   `$NAME` takes the longest such run (`$TOKEN_2-x` reads `TOKEN_2`).
/// - `${NAME:-default}` — `default` (taken literally, up to the first `}`) is
///   used when `NAME` is unset **or empty**.
/// - `$$` — a literal `$`.
/// - `$` followed by anything else (a digit, space, end of text) is kept as is.
///
/// `env` returns the variable's value, or `None` when it is unset.
///
/// # Errors
/// [`EnvError::Unset`] for an unset variable without default,
/// [`EnvError::Unterminated`] for `${` without `}`, and
/// [`EnvError::InvalidName`] for `${}` or `${1x}`.
pub fn substitute(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, EnvError> {
    Ok(scan(input, env)?.0)
}

/// Like [`substitute`], but also reports whether `input` consisted of exactly
/// one variable reference (used to re-type `port: $PORT` as a number).
pub(crate) fn substitute_with_shape(
    input: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, bool), EnvError> {
    scan(input, env)
}

fn scan(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(String, bool), EnvError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    let mut references = 0usize;
    let mut literal_chars = 0usize;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            literal_chars += 1;
            i += 1;
            continue;
        }
        let start = i;
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                literal_chars += 1;
                i += 2;
            }
            Some('{') => {
                let close = chars[i + 2..]
                    .iter()
                    .position(|&c| c == '}')
                    .map(|p| p + i + 2)
                    .ok_or(EnvError::Unterminated { offset: start })?;
                let body: String = chars[i + 2..close].iter().collect();
                let (name, default) = match body.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (body.as_str(), None),
                };
                if !is_valid_name(name) {
                    return Err(EnvError::InvalidName {
                        found: name.to_string(),
                        offset: start,
                    });
                }
                let value = match (env(name), default) {
                    (Some(v), Some(d)) if v.is_empty() => d.to_string(),
                    (Some(v), _) => v,
                    (None, Some(d)) => d.to_string(),
                    (None, None) => {
                        return Err(EnvError::Unset {
                            var: name.to_string(),
                        });
                    }
                };
                out.push_str(&value);
                references += 1;
                i = close + 1;
            }
            Some(&c) if is_name_start(c) => {
                let mut end = i + 1;
                while end < chars.len() && is_name_char(chars[end]) {
                    end += 1;
                }
                let name: String = chars[i + 1..end].iter().collect();
                let value = env(&name).ok_or(EnvError::Unset { var: name })?;
                out.push_str(&value);
                references += 1;
                i = end;
            }
            _ => {
                out.push('$');
                literal_chars += 1;
                i += 1;
            }
        }
    }
    Ok((out, references == 1 && literal_chars == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "TOKEN_2" => Some("t2".into()),
            "EMPTY" => Some(String::new()),
            "DOLLAR" => Some("$B".into()),
            _ => None,
        }
    }

    fn sub(s: &str) -> Result<String, EnvError> {
        substitute(s, &env)
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(sub("$A").as_deref(), Ok("alpha"));
        assert_eq!(sub("${A}").as_deref(), Ok("alpha"));
        assert_eq!(sub("pre-${A}-post").as_deref(), Ok("pre-alpha-post"));
        assert_eq!(
            sub("prefix-$A-suffix").as_deref(),
            Ok("prefix-alpha-suffix")
        );
        assert_eq!(sub("$TOKEN_2").as_deref(), Ok("t2"));
        assert_eq!(sub("$A$A").as_deref(), Ok("alphaalpha"));
    }

    #[test]
    fn defaults() {
        assert_eq!(sub("${X:-dflt}").as_deref(), Ok("dflt"));
        assert_eq!(sub("${EMPTY:-dflt}").as_deref(), Ok("dflt"));
        assert_eq!(sub("${A:-dflt}").as_deref(), Ok("alpha"));
        assert_eq!(sub("${X:-}").as_deref(), Ok(""));
        assert_eq!(sub("${EMPTY}").as_deref(), Ok(""));
    }

    #[test]
    fn literal_dollars() {
        assert_eq!(sub("$$").as_deref(), Ok("$"));
        assert_eq!(sub("cost: $$5").as_deref(), Ok("cost: $5"));
        assert_eq!(sub("$$A").as_deref(), Ok("$A"));
        assert_eq!(sub("$5 and $ and end$").as_deref(), Ok("$5 and $ and end$"));
        assert_eq!(sub("no refs").as_deref(), Ok("no refs"));
        assert_eq!(sub("ünï-$A-çødé").as_deref(), Ok("ünï-alpha-çødé"));
    }

    #[test]
    fn values_are_not_rescanned() {
        assert_eq!(sub("$DOLLAR").as_deref(), Ok("$B"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            sub("x-$CHAT_TOKEN").map_err(|e| e.to_string()),
            Err("environment variable `CHAT_TOKEN` is not set (use `${CHAT_TOKEN:-default}` for a default)".to_string())
        );
        assert_eq!(sub("ab${A"), Err(EnvError::Unterminated { offset: 2 }));
        assert_eq!(
            sub("${A").map_err(|e| e.to_string()),
            Err("unterminated `${` at character 0: expected a closing `}` (write `$$` for a literal `$`)".to_string())
        );
        assert_eq!(
            sub("${}"),
            Err(EnvError::InvalidName {
                found: String::new(),
                offset: 0
            })
        );
        assert_eq!(
            sub("${1A}").map_err(|e| e.to_string()),
            Err("invalid environment variable name `1A` in `${…}` at character 0: names are letters, digits and `_`, not starting with a digit".to_string())
        );
    }

    #[test]
    fn shape() {
        assert_eq!(
            substitute_with_shape("$A", &env),
            Ok(("alpha".into(), true))
        );
        assert_eq!(
            substitute_with_shape("${X:-8}", &env),
            Ok(("8".into(), true))
        );
        assert_eq!(
            substitute_with_shape("x$A", &env),
            Ok(("xalpha".into(), false))
        );
        assert_eq!(
            substitute_with_shape("$A$A", &env),
            Ok(("alphaalpha".into(), false))
        );
        assert_eq!(substitute_with_shape("$$", &env), Ok(("$".into(), false)));
    }
}
