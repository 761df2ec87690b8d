//! opsdroid's `match_parse` formats (Python's `parse` library): `"hello {name}"` matches
//! "hello Ann" and gives the entity `name = "Ann"`. A format becomes a regex here, so it is
//! matched, scored and turned into entities exactly like a regex matcher.
//!
//! | in the format | matches |
//! |---|---|
//! | text | itself (regex characters are escaped) |
//! | `{name}` | one or more characters, as few as possible; the entity `name` |
//! | `{}` | the same, unnamed (a positional group) |
//! | `{name:d}` | an integer (`-12`) |
//! | `{name:f}` | a decimal number (`1.5`) |
//! | `{name:w}` | letters, digits and underscores |
//! | `{name:S}` | anything but white space |
//! | `{{`, `}}` | a literal `{`, `}` |

/// Why a parse format is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FormatError(pub(crate) String);

/// The regex for `format`, unanchored.
pub(crate) fn to_regex(format: &str) -> Result<String, FormatError> {
    let mut out = String::new();
    let mut literal = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                out.push_str(&regex::escape(&literal));
                literal.clear();
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') | None => {
                            return Err(FormatError(format!(
                                "unclosed `{{` in `{format}` (write `{{{{` for a literal brace)"
                            )));
                        }
                        Some(c) => field.push(c),
                    }
                }
                out.push_str(&group(&field, format)?);
            }
            '}' => {
                return Err(FormatError(format!(
                    "unmatched `}}` in `{format}` (write `}}}}` for a literal brace)"
                )));
            }
            c => literal.push(c),
        }
    }
    out.push_str(&regex::escape(&literal));
    Ok(out)
}

fn group(field: &str, format: &str) -> Result<String, FormatError> {
    let (name, kind) = field.split_once(':').unwrap_or((field, ""));
    let body = match kind {
        "" => ".+?",
        "d" => r"[-+]?\d+",
        "f" => r"[-+]?(?:\d+\.\d*|\.\d+|\d+)",
        "w" => r"\w+",
        "S" => r"\S+",
        other => {
            return Err(FormatError(format!(
                "unsupported type `{other}` in `{{{field}}}` of `{format}` (supported: d, f, w, S)"
            )));
        }
    };
    if name.is_empty() {
        return Ok(format!("({body})"));
    }
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !valid {
        return Err(FormatError(format!(
            "`{name}` in `{format}` is not a field name (letters, digits and `_`)"
        )));
    }
    Ok(format!("(?P<{name}>{body})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_become_regexes() {
        assert_eq!(to_regex("hello {name}").unwrap(), "hello (?P<name>.+?)");
        assert_eq!(to_regex("{} + {}").unwrap(), r"(.+?) \+ (.+?)");
        assert_eq!(to_regex("{n:d} items").unwrap(), r"(?P<n>[-+]?\d+) items");
        assert_eq!(to_regex("{{literal}}").unwrap(), r"\{literal\}");
    }

    #[test]
    fn bad_formats_are_errors() {
        assert!(to_regex("hello {name").is_err());
        assert!(to_regex("oops }").is_err());
        assert!(to_regex("{x:q}").is_err());
        assert!(to_regex("{1abc}").is_err());
    }
}
