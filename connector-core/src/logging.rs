//! Logging from the configuration's `logging:` section, as opsdroid sets it up.
//!
//! [`BotBuilder::build`](crate::BotBuilder::build) calls [`init`], so a bot logs what its
//! `configuration.yaml` asks for without code of its own; an application with its own
//! `tracing` subscriber keeps it: a subscriber installed before `build` is left alone, and
//! [`BotBuilder::own_logging`](crate::BotBuilder::own_logging) says so explicitly.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `level` | `warning` | `trace`, `debug`, `info`, `warning`, `error`, `critical` |
//! | `console` | `true` | log to standard error (standard output stays the conversation's) |
//! | `path` | none | also append to this file (`~/` is the home directory); `false` for none |
//! | `extended` | `false` | each line also names the source file and line |
//! | `timestamp` | `false` | each line starts with the time |
//! | `filter` | none | `whitelist:` or `blacklist:` of module names (`connector_irc`, `connector_core::hub`) |
//!
//! `RUST_LOG`, when set, replaces `level` and `filter` with its own directives
//! (`RUST_LOG=connector_irc=debug`), as everywhere in Rust.

use std::fs::{File, OpenOptions};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterFn, LevelFilter};
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

use crate::config::{Config, ConfigError, LogFilter, LoggingConfig};

/// The level when the configuration names none: warnings and errors only, so the shell
/// connector's conversation stays readable (opsdroid's default is `info`; write
/// `level: info` for it).
pub const DEFAULT_LEVEL: &str = "warn";

/// Installs the process's `tracing` subscriber from `config.logging`.
///
/// Returns `Ok(false)`, changing nothing, when a global subscriber is already installed
/// (the application has its own), and `Ok(true)` when it installed one. Fails, installing
/// nothing, when the log file cannot be opened: a configuration error located at
/// `logging.path`.
///
/// ```
/// use connector_core::Config;
///
/// let config = Config::from_str("connectors: {shell: }\nlogging: {level: info}\n", "configuration.yaml")?;
/// let installed = connector_core::logging::init(&config)?; // `true`: it installed one
/// assert!(!connector_core::logging::init(&config)?, "only the first call installs one");
/// tracing::info!("this line reaches standard error");
/// # Ok::<(), connector_core::ConfigError>(())
/// ```
pub fn init(config: &Config) -> Result<bool, ConfigError> {
    if tracing::dispatcher::has_been_set() {
        return Ok(false);
    }
    let settings = &config.logging;
    let file = match &settings.path {
        Some(path) => Some(open_log_file(path).map_err(|e| {
            ConfigError::invalid(
                config.locate("logging.path"),
                format!("cannot open the log file `{}`: {e}", path.display()),
            )
        })?),
        None => None,
    };
    let (filter, from_env, rust_log_error) = directives(settings);
    let names = if from_env {
        None
    } else {
        TargetFilter::new(&settings.filter)
    };
    let console = settings.console.then(|| {
        line_format(settings)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    let file = file.map(|file| {
        line_format(settings)
            .with_writer(Mutex::new(file))
            .with_ansi(false)
    });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(names.map(TargetFilter::into_layer))
        .with(console)
        .with(file)
        .try_init()
        .is_ok();
    if installed {
        if let Some(e) = rust_log_error {
            tracing::warn!("RUST_LOG is not a valid filter ({e}); using the configuration's level");
        }
        if !settings.filter.whitelist.is_empty() && !settings.filter.blacklist.is_empty() {
            tracing::warn!(
                "Both whitelist and blacklist filters found in configuration. Only one can be used at a time - only the whitelist filter will be used."
            );
        }
    }
    Ok(installed)
}

/// The level filter: `RUST_LOG` when it is set and valid (it then replaces the
/// configuration's level and module filter: the `bool`), else the configuration's level;
/// and the reason a set `RUST_LOG` was not used.
fn directives(settings: &LoggingConfig) -> (EnvFilter, bool, Option<String>) {
    let level = settings.level.as_deref().unwrap_or(DEFAULT_LEVEL);
    let level = level.parse::<LevelFilter>().unwrap_or(LevelFilter::WARN);
    let from_config = || EnvFilter::default().add_directive(level.into());
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => (f, true, None),
            Err(e) => (from_config(), false, Some(e.to_string())),
        },
        _ => (from_config(), false, None),
    }
}

/// opsdroid's line: `LEVEL module: message`, with the time first (`timestamp`) and the
/// source file and line (`extended`).
fn line_format<S>(settings: &LoggingConfig) -> fmt::Layer<S, fmt::format::DefaultFields, Format>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let format = fmt::format()
        .with_target(true)
        .with_file(settings.extended)
        .with_line_number(settings.extended);
    let format = if settings.timestamp {
        Format::Timed(format)
    } else {
        Format::Plain(format.without_time())
    };
    fmt::layer().event_format(format)
}

/// The two line formats: with the time, and without it (their types differ).
enum Format {
    Timed(fmt::format::Format),
    Plain(fmt::format::Format<fmt::format::Full, ()>),
}

impl<S, N> fmt::FormatEvent<S, N> for Format
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &fmt::FmtContext<'_, S, N>,
        writer: fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        match self {
            Format::Timed(f) => f.format_event(ctx, writer, event),
            Format::Plain(f) => f.format_event(ctx, writer, event),
        }
    }
}

/// opsdroid's whitelist or blacklist, on `tracing` targets (module paths).
#[derive(Debug, Clone, PartialEq, Eq)]
struct TargetFilter {
    names: Vec<String>,
    keep: bool,
}

impl TargetFilter {
    /// The whitelist when there is one (opsdroid's rule), else the blacklist; `None` when
    /// neither lists anything.
    fn new(filter: &LogFilter) -> Option<Self> {
        let (names, keep) = if !filter.whitelist.is_empty() {
            (&filter.whitelist, true)
        } else if !filter.blacklist.is_empty() {
            (&filter.blacklist, false)
        } else {
            return None;
        };
        let names = names.iter().map(|n| normalize(n)).collect();
        Some(TargetFilter { names, keep })
    }

    /// Whether a log line from `target` is shown. What this module says about the
    /// logging set-up itself (both lists given, a bad `RUST_LOG`) always is.
    fn allows(&self, target: &str) -> bool {
        if target == module_path!() {
            return true;
        }
        let listed = self.names.iter().any(|name| covers(name, target));
        listed == self.keep
    }

    fn into_layer(self) -> FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool> {
        FilterFn::new(move |meta: &tracing::Metadata<'_>| self.allows(meta.target()))
    }
}

/// `opsdroid.core` → `opsdroid::core`, `connector-irc` → `connector_irc`.
fn normalize(name: &str) -> String {
    name.trim().replace('.', "::").replace('-', "_")
}

/// Whether module `name` is `target` or one of its parents (opsdroid's `logging.Filter`).
fn covers(name: &str, target: &str) -> bool {
    target == name
        || target
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with("::"))
}

/// Opens `path` for appending, creating missing directories; `~/` is the home directory.
fn open_log_file(path: &Path) -> std::io::Result<File> {
    let path = expand_home(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(whitelist: &[&str], blacklist: &[&str]) -> Option<TargetFilter> {
        TargetFilter::new(&LogFilter {
            whitelist: whitelist.iter().map(|s| s.to_string()).collect(),
            blacklist: blacklist.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn a_name_covers_its_module_and_everything_under_it() {
        let f = filter(&["connector_core::hub"], &[]).unwrap();
        assert!(f.allows("connector_core::hub"));
        assert!(f.allows("connector_core::hub::inner"));
        assert!(
            !f.allows("connector_core::hubble"),
            "not a prefix of the name"
        );
        assert!(!f.allows("connector_core"));
    }

    #[test]
    fn the_blacklist_hides_and_the_whitelist_wins_over_it() {
        let f = filter(&[], &["connector-irc"]).unwrap();
        assert!(!f.allows("connector_irc::client"));
        assert!(f.allows("connector_core::lifecycle"));
        let f = filter(&["connector_core"], &["connector_core"]).unwrap();
        assert!(
            f.allows("connector_core::lifecycle"),
            "only the whitelist is used"
        );
        assert!(filter(&[], &[]).is_none());
    }

    #[test]
    fn opsdroid_style_dotted_names_work() {
        let f = filter(&["connector_core.lifecycle"], &[]).unwrap();
        assert!(f.allows("connector_core::lifecycle"));
    }

    #[test]
    fn home_is_expanded() {
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(
                expand_home(Path::new("~/logs/bot.log")),
                PathBuf::from(home).join("logs/bot.log")
            );
        }
        assert_eq!(
            expand_home(Path::new("/var/log/bot.log")),
            PathBuf::from("/var/log/bot.log")
        );
    }
}
