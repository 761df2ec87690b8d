//! The `matrix` section: opsdroid's keys with opsdroid's spelling (underscores), checked when
//! the configuration loads so that a bot with a half-written section does not start.

use std::collections::BTreeMap;
use std::time::Duration;

use connector_core::Secret;
use serde::Deserialize;

/// The Matrix connector's configuration section (see the [crate docs](crate)).
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct MatrixConfig {
    /// How the bot proves who it is.
    pub login: Login,
    /// The homeserver's base URL (default `https://matrix.org`).
    pub homeserver: String,
    /// The configured rooms: name → alias or room id. The one named `main` is where events
    /// without a target go.
    pub rooms: BTreeMap<String, String>,
    /// The display name to set, if any.
    pub nick: Option<String>,
    /// Name senders by their room-specific display name (`m.room.member`) rather than their
    /// global profile name.
    pub room_specific_nicks: bool,
    /// The device's display name at login (default `opsdroid`).
    pub device_name: String,
    /// The device id to log in as (default `opsdroid`): the same device across restarts.
    pub device_id: String,
    /// Send `m.notice` instead of `m.text` (bots' messages, which other bots ignore).
    pub send_m_notice: bool,
    /// Join the rooms the bot is invited to.
    pub accept_invites: bool,
    /// How long one `/sync` long poll waits for news (default 30 s).
    pub sync_timeout: Duration,
    /// How long any other request may take (default 60 s).
    pub request_timeout: Duration,
    /// How long a send keeps retrying a homeserver that is down or failing (default 300 s).
    pub send_retry: Duration,
}

/// Password login or a ready access token.
#[derive(Debug, Clone)]
pub enum Login {
    /// `mxid` + `password`: the bot logs in as `device_id`.
    Password {
        /// The user id (`@bot:example.org`) or its local part.
        mxid: String,
        /// The password.
        password: Secret<String>,
    },
    /// `access_token`: the bot asks the homeserver who it is.
    Token(Secret<String>),
}

/// A `rooms:` value: an alias or room id, or opsdroid's `{alias: …}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RoomValue {
    Plain(String),
    /// Other keys of the map are for skills; they are ignored here.
    Detailed {
        alias: String,
    },
}

/// The section as written, before the checks that span keys.
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    mxid: Option<String>,
    #[serde(default)]
    password: Option<Secret<String>>,
    #[serde(default)]
    access_token: Option<Secret<String>>,
    #[serde(default = "default_homeserver")]
    homeserver: String,
    rooms: Option<BTreeMap<String, RoomValue>>,
    #[serde(default)]
    nick: Option<String>,
    #[serde(default)]
    room_specific_nicks: bool,
    #[serde(default = "default_device")]
    device_name: String,
    #[serde(default = "default_device")]
    device_id: String,
    #[serde(default)]
    send_m_notice: bool,
    #[serde(default)]
    accept_invites: bool,
    #[serde(default)]
    enable_encryption: bool,
    #[serde(default)]
    store_path: Option<String>,
    #[serde(
        default = "default_sync_timeout",
        deserialize_with = "connector_core::config::seconds::deserialize"
    )]
    sync_timeout: Duration,
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "connector_core::config::seconds::deserialize"
    )]
    request_timeout: Duration,
    #[serde(
        default = "default_send_retry",
        deserialize_with = "connector_core::config::seconds::deserialize"
    )]
    send_retry: Duration,
}

fn default_homeserver() -> String {
    "https://matrix.org".to_owned()
}
fn default_device() -> String {
    "opsdroid".to_owned()
}
fn default_sync_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_send_retry() -> Duration {
    Duration::from_secs(300)
}

impl TryFrom<RawConfig> for MatrixConfig {
    type Error = String;

    fn try_from(raw: RawConfig) -> Result<Self, String> {
        if raw.enable_encryption {
            return Err(
                "`enable_encryption: true`: end-to-end encryption is not supported by \
                 connector-matrix yet; remove the key (the bot then works in unencrypted \
                 rooms only)"
                    .to_owned(),
            );
        }
        if raw.store_path.is_some() {
            tracing::warn!(
                "matrix: `store_path` is ignored: it holds encryption keys, and end-to-end \
                 encryption is not supported yet"
            );
        }
        let login = match (raw.mxid, raw.password, raw.access_token) {
            (Some(mxid), Some(password), _) => Login::Password { mxid, password },
            (None, None, Some(token)) => Login::Token(token),
            (Some(_), None, _) => {
                return Err(
                    "`mxid` is set without `password`: give both, or `access_token` \
                     alone"
                        .to_owned(),
                );
            }
            (None, Some(_), _) => {
                return Err(
                    "`password` is set without `mxid`: give both, or `access_token` \
                     alone"
                        .to_owned(),
                );
            }
            (None, None, None) => {
                return Err(
                    "no credentials: give `mxid` and `password`, or `access_token`".to_owned(),
                );
            }
        };
        let Some(rooms) = raw.rooms else {
            return Err(
                "missing `rooms`: a map of room names to aliases or ids, e.g. \
                 `rooms: {main: \"#ops:example.org\"}`"
                    .to_owned(),
            );
        };
        if rooms.is_empty() {
            return Err("`rooms` is empty: configure at least the `main` room".to_owned());
        }
        let mut out = BTreeMap::new();
        for (name, value) in rooms {
            let id = match value {
                RoomValue::Plain(s) => s,
                RoomValue::Detailed { alias } => alias,
            };
            if !(id.starts_with('#') || id.starts_with('!')) {
                return Err(format!(
                    "rooms.{name}: {id:?} is neither a room alias (`#room:server`) nor a room \
                     id (`!id:server`)"
                ));
            }
            out.insert(name, id);
        }
        if !(raw.homeserver.starts_with("https://") || raw.homeserver.starts_with("http://")) {
            return Err(format!(
                "homeserver {:?} is not an http:// or https:// URL",
                raw.homeserver
            ));
        }
        Ok(MatrixConfig {
            login,
            homeserver: raw.homeserver,
            rooms: out,
            nick: raw.nick,
            room_specific_nicks: raw.room_specific_nicks,
            device_name: raw.device_name,
            device_id: raw.device_id,
            send_m_notice: raw.send_m_notice,
            accept_invites: raw.accept_invites,
            sync_timeout: raw.sync_timeout,
            request_timeout: raw.request_timeout.max(Duration::from_millis(1)),
            send_retry: raw.send_retry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<MatrixConfig, String> {
        serde_yaml::from_str::<MatrixConfig>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn opsdroids_section_loads_unchanged() {
        let c = parse(
            "mxid: \"@bot:example.org\"\npassword: pw\nhomeserver: https://hs.example.org\n\
             rooms:\n  main: \"#ops:example.org\"\n  other: {alias: \"!abc:example.org\"}\n\
             nick: Botty\nroom_specific_nicks: true\ndevice_name: mybot\ndevice_id: DEV1\n\
             send_m_notice: true\n",
        )
        .unwrap();
        assert!(matches!(&c.login, Login::Password { mxid, password }
            if mxid == "@bot:example.org" && password.expose() == "pw"));
        assert_eq!(c.rooms["main"], "#ops:example.org");
        assert_eq!(c.rooms["other"], "!abc:example.org");
        assert_eq!(c.nick.as_deref(), Some("Botty"));
        assert!(c.room_specific_nicks && c.send_m_notice);
        assert_eq!(
            (c.device_name.as_str(), c.device_id.as_str()),
            ("mybot", "DEV1")
        );
        assert!(format!("{c:?}").contains("Secret(***)"));
        assert!(!format!("{c:?}").contains("pw\""));
    }

    #[test]
    fn defaults_are_opsdroids() {
        let c = parse("access_token: tok\nrooms: {main: \"#a:b\"}\n").unwrap();
        assert_eq!(c.homeserver, "https://matrix.org");
        assert_eq!(c.device_id, "opsdroid");
        assert_eq!(c.device_name, "opsdroid");
        assert!(!c.send_m_notice && !c.accept_invites);
        assert!(matches!(c.login, Login::Token(_)));
    }

    #[test]
    fn half_given_credentials_are_an_error() {
        let e = parse("mxid: \"@a:b\"\nrooms: {main: \"#a:b\"}\n").unwrap_err();
        assert!(e.contains("`mxid` is set without `password`"), "{e}");
        let e = parse("password: x\nrooms: {main: \"#a:b\"}\n").unwrap_err();
        assert!(e.contains("`password` is set without `mxid`"), "{e}");
        let e = parse("rooms: {main: \"#a:b\"}\n").unwrap_err();
        assert!(e.contains("no credentials"), "{e}");
    }

    #[test]
    fn rooms_are_required_and_checked() {
        let e = parse("access_token: t\n").unwrap_err();
        assert!(e.contains("missing `rooms`"), "{e}");
        let e = parse("access_token: t\nrooms: {main: ops}\n").unwrap_err();
        assert!(e.contains("rooms.main: \"ops\" is neither"), "{e}");
    }

    #[test]
    fn encryption_is_a_clear_error() {
        let e = parse("access_token: t\nrooms: {main: \"#a:b\"}\nenable_encryption: true\n")
            .unwrap_err();
        assert!(e.contains("end-to-end encryption is not supported"), "{e}");
        // A store path alone only warns.
        parse("access_token: t\nrooms: {main: \"#a:b\"}\nstore_path: /var/lib/bot\n").unwrap();
    }
}
