//! Logging in, joining the configured rooms, the sync filter and the stored sync token.

use std::sync::atomic::Ordering;

use connector_core::prelude::*;
use connector_core::sync::lock;
use hyper::Method;
use serde_json::{Value, json};

use crate::Matrix;
use crate::config::Login;
use crate::http::{Body, MatrixError, Retry, enc};

/// Who the bot is on the homeserver, from login (or `whoami`) on.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) user_id: String,
    /// The server-side filter for `/sync`.
    pub(crate) filter: String,
}

/// The `/sync` filter: no presence, no account data, only typing among the ephemeral
/// events, members loaded lazily, and up to 50 timeline events a room a sync.
fn filter() -> Value {
    json!({
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "account_data": {"types": []},
            "ephemeral": {"types": ["m.typing"]},
            "state": {"lazy_load_members": true},
            "timeline": {"limit": 50, "lazy_load_members": true},
        },
    })
}

impl Matrix {
    /// Where the sync token lives in the bot's memory: one per instance and user, so two
    /// bots sharing a database do not share a position.
    pub(crate) fn token_key(&self, user_id: &str) -> String {
        format!("connector-matrix.{}.{user_id}.next_batch", self.name())
    }

    /// Logs in unless this process already has, joins the configured rooms once, and loads
    /// the stored sync token. A refused login is a permanent error; a homeserver that is
    /// down is a transient one (the SDK tries again with backoff).
    pub(crate) async fn start_session(&self) -> Result<()> {
        self.link.started_ms.get_or_init(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        });
        if lock(&self.link.session).is_none() {
            let session = self.login().await?;
            self.set_identity(&session.user_id);
            *lock(&self.link.session) = Some(session);
        }
        let session = self.session()?;
        if !self.link.joined.load(Ordering::Acquire) {
            self.join_configured().await?;
            if let Some(nick) = self.config().nick.clone() {
                let path = format!(
                    "/_matrix/client/v3/profile/{}/displayname",
                    enc(&session.user_id)
                );
                let body = Body::Json(json!({"displayname": nick}));
                if let Err(e) = self
                    .request(Method::PUT, &path, "", body, Retry::RateLimits)
                    .await
                {
                    tracing::warn!(error = %e, "matrix: could not set the display name");
                }
            }
            self.link.joined.store(true, Ordering::Release);
        }
        if lock(&self.link.since).is_none() {
            let key = self.token_key(&session.user_id);
            match self.memory().get::<String>(&key).await {
                Ok(token) => *lock(&self.link.since) = token,
                Err(e) => {
                    return Err(ConnectorError::transient(format!(
                        "matrix: reading the sync token from memory: {e}"
                    ))
                    .into());
                }
            }
        }
        Ok(())
    }

    /// Password login as the configured device, or `whoami` for a token; then the filter.
    async fn login(&self) -> Result<Session> {
        let config = self.config();
        let api = self.api();
        let user_id = match &config.login {
            Login::Password { mxid, password } => {
                let body = json!({
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": mxid},
                    "password": password.expose(),
                    "device_id": config.device_id,
                    "initial_device_display_name": config.device_name,
                });
                let answer = self
                    .request(
                        Method::POST,
                        "/_matrix/client/v3/login",
                        "",
                        Body::Json(body),
                        Retry::RateLimits,
                    )
                    .await
                    .map_err(|e| {
                        refused(e, &format!("the homeserver refused the login of {mxid}"))
                    })?;
                let token = answer["access_token"].as_str().ok_or_else(|| {
                    ConnectorError::permanent("matrix: the login answer has no access_token")
                })?;
                api.set_token(token).map_err(ConnectorError::from)?;
                answer["user_id"].as_str().unwrap_or(mxid).to_owned()
            }
            Login::Token(token) => {
                api.set_token(token.expose())
                    .map_err(ConnectorError::from)?;
                let answer = self
                    .request(
                        Method::GET,
                        "/_matrix/client/v3/account/whoami",
                        "",
                        Body::Empty,
                        Retry::RateLimits,
                    )
                    .await
                    .map_err(|e| refused(e, "the homeserver refused the access token"))?;
                answer["user_id"]
                    .as_str()
                    .ok_or_else(|| ConnectorError::permanent("matrix: whoami has no user_id"))?
                    .to_owned()
            }
        };
        let path = format!("/_matrix/client/v3/user/{}/filter", enc(&user_id));
        let answer = self
            .request(
                Method::POST,
                &path,
                "",
                Body::Json(filter()),
                Retry::RateLimits,
            )
            .await
            .map_err(ConnectorError::from)?;
        let filter = answer["filter_id"]
            .as_str()
            .ok_or_else(|| ConnectorError::transient("matrix: the filter answer has no filter_id"))?
            .to_owned();
        tracing::info!(user_id = %user_id, homeserver = %api.base(), "matrix: logged in");
        Ok(Session { user_id, filter })
    }

    /// Joins each configured room and records its id under its name and alias (for skill
    /// constraints and targets). A room the homeserver will not let the bot into is logged
    /// and skipped; a homeserver that is down fails the connect.
    async fn join_configured(&self) -> Result<()> {
        for (name, alias) in &self.config().rooms {
            // Connect fails fast when the homeserver does: the SDK's reconnect policy backs
            // off, rather than a send's retries holding `connect` for `send_retry`.
            match self.join(alias, Retry::RateLimits).await {
                Ok(id) => self.name_target(name, &id),
                Err(e) if e.is_transient() || e.errcode() == Some("M_UNKNOWN_TOKEN") => {
                    return Err(ConnectorError::from(e).into());
                }
                Err(e) => {
                    tracing::warn!(room = %name, alias = %alias, error = %e, "matrix: could not join a configured room");
                }
            }
        }
        Ok(())
    }

    /// Joins a room by alias or id, with this failure policy; returns its id.
    pub(crate) async fn join(&self, room: &str, retry: Retry) -> Result<String, MatrixError> {
        let path = format!("/_matrix/client/v3/join/{}", enc(room));
        let answer = self
            .request(Method::POST, &path, "", Body::Json(json!({})), retry)
            .await?;
        let id = answer["room_id"].as_str().unwrap_or(room).to_owned();
        if room.starts_with('#') {
            lock(&self.link.aliases).insert(room.to_owned(), id.clone());
            self.name_target(room, &id);
        }
        Ok(id)
    }
}

/// A refused login or token is permanent (retrying cannot help); anything else keeps its kind.
fn refused(e: MatrixError, what: &str) -> ConnectorError {
    match e.status() {
        Some(401 | 403) => ConnectorError::permanent(format!("matrix: {what}: {e}")),
        _ => e.into(),
    }
}
