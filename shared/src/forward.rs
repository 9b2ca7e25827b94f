//! The application that forwards its events to the application's own backend, in any language:
//! GatewayWorker's BusinessWorker role, so that a GatewayWorker team keeps its `Events.php`
//! (`clients/php/runner.php` serves one unmodified).
//!
//! Each event is one signed POST to `EVENTS_URL` (the server API's signature,
//! [`crate::server_api::signature`], under `EVENTS_SECRET`):
//!
//! ```text
//! {"event": "connect" | "message" | "close", "client_id": …, "message": … (message only),
//!  "uid": …, "groups": [...] (close only), "session": {…},
//!  "server": {"REMOTE_ADDR": …, "GATEWAY_CLIENT_ID": …}}
//! → 200 {"session": {…}}   the session as the handler left it (saved; ignored for close)
//! ```
//!
//! `connect` is sent from `on_open`, once the handshake has completed, so that the handler may
//! push to the new client as GatewayWorker's `onConnect` does. The handler makes its Gateway calls
//! through the server API while it handles the event. A failed handler (an error status, no
//! answer within `EVENTS_TIMEOUT_MS`) is logged, its session changes dropped, and the client told
//! nothing, as BusinessWorker logs an exception and leaves the connection be.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Map, Value};

use crate::app::{AppError, Client, Closing, Events, Rejection};
use crate::config::ConfigError;
use crate::push::{exchange, http_client, Http};
use crate::server_api::signature;
use crate::store::now_secs;

/// Forwards `onConnect`, `onMessage` and `onClose` to a backend.
pub struct Forward {
    url: String,
    secret: Vec<u8>,
    timeout: Duration,
    http: Http,
}

impl Forward {
    /// Forwards to `url`, signing with `secret`.
    pub fn new(url: impl Into<String>, secret: impl Into<Vec<u8>>, timeout: Duration) -> Self {
        Forward {
            url: url.into(),
            secret: secret.into(),
            timeout,
            http: http_client(Duration::from_secs(1)),
        }
    }

    /// `EVENTS_URL` (the backend's URL events go to), `EVENTS_SECRET` (what signs them) and
    /// `EVENTS_TIMEOUT_MS` (5000 by default) from the environment; at init, an error naming what
    /// is missing.
    pub fn from_env() -> Result<Self, ConfigError> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let url = get("EVENTS_URL").ok_or(ConfigError::Missing("EVENTS_URL"))?;
        let secret = get("EVENTS_SECRET").ok_or(ConfigError::Missing("EVENTS_SECRET"))?;
        let timeout = get("EVENTS_TIMEOUT_MS")
            .and_then(|ms| ms.parse().ok())
            .map_or(Duration::from_secs(5), Duration::from_millis);
        Ok(Forward::new(url, secret.into_bytes(), timeout))
    }

    /// POSTs `event`, signed; the session the handler answers with.
    async fn post(&self, event: &Value) -> Result<Option<Map<String, Value>>, AppError> {
        let body = event.to_string();
        let header = signature::sign(&self.secret, now_secs(), body.as_bytes());
        let request = http::Request::post(&self.url)
            .header("content-type", "application/json")
            .header(signature::HEADER, header)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| AppError::msg(format!("EVENTS_URL {:?}: {e}", self.url)))?;
        let (status, _, bytes) = exchange(&self.http, request, self.timeout)
            .await
            .map_err(|why| AppError::msg(format!("the events backend gave no answer: {why}")))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            return Err(AppError::msg(format!(
                "the events backend answered {status}: {text}"
            )));
        }
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|e| AppError::msg(format!("the events backend's answer is not JSON: {e}")))?;
        Ok(match answer.get("session") {
            Some(Value::Object(session)) => Some(session.clone()),
            // PHP encodes an empty array as `[]`.
            Some(Value::Array(items)) if items.is_empty() => Some(Map::new()),
            _ => None,
        })
    }

    /// Forwards a connect or message event from `client`, and saves the session it answers.
    async fn forward(
        &self,
        client: &mut Client<'_>,
        event: &str,
        message: Option<&str>,
    ) -> Result<(), AppError> {
        let uid = client.uid().await?;
        let session = client.session().await?.clone();
        let mut body = json!({
            "event": event,
            "client_id": client.connection_id(),
            "uid": uid,
            "session": session,
            "server": {
                "REMOTE_ADDR": client.source_ip(),
                "GATEWAY_CLIENT_ID": client.connection_id(),
            },
        });
        if let Some(message) = message {
            body["message"] = json!(message);
        }
        if let Some(left) = Box::pin(self.post(&body)).await? {
            *client.session().await? = left;
        }
        Ok(())
    }
}

impl Events for Forward {
    const ON_OPEN: bool = true;

    async fn on_open(&self, client: &mut Client<'_>) -> Result<(), AppError> {
        self.forward(client, "connect", None).await
    }

    async fn on_message(&self, client: &mut Client<'_>, frame: &str) -> Result<(), AppError> {
        client.set_action("forward");
        self.forward(client, "message", Some(frame)).await
    }

    async fn on_close(&self, client: &Closing<'_>) -> Result<(), AppError> {
        let body = json!({
            "event": "close",
            "client_id": client.connection_id(),
            "uid": client.uid(),
            "groups": client.groups().collect::<Vec<_>>(),
            "session": client.session(),
            "server": {
                "REMOTE_ADDR": client.source_ip(),
                "GATEWAY_CLIENT_ID": client.connection_id(),
            },
        });
        Box::pin(self.post(&body)).await.map(|_| ())
    }

    /// Nothing: BusinessWorker logs a handler's exception and tells the client nothing.
    fn error_frame(&self, _: &Rejection) -> Option<String> {
        None
    }
}
