//! [`Client`]: the sender of a frame, in `on_message` and `on_open`.

use crate::app::Payload;
use crate::auth::authorizer::Proven;
use crate::auth::permissions::Permissions;
use crate::error::Error;
use crate::gateway::session::{self, Change, Session};
use crate::gateway::Gateway;
use crate::push::Delivery;
use crate::store::Store;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequestContext;

/// The sender of a frame, during `on_message`; the new client, during `on_open`.
pub struct Client<'a> {
    gateway: &'a Gateway,
    connection_id: &'a str,
    request_id: &'a str,
    endpoint: &'a str,
    proven: Proven,
    permissions: Permissions,
    /// The session as read, and as the application has left it so far.
    session: Option<(Session, Session)>,
    action: Option<String>,
    replies: usize,
    undelivered: usize,
    source_ip: Option<String>,
    user_agent: Option<String>,
}

impl<'a> Client<'a> {
    /// The client an event names: its ids, where pushes go, and what its request context says
    /// (the uid the authorizer proved, the token's claims, the client's address and user agent).
    pub(crate) fn of_event(
        gateway: &'a Gateway,
        connection_id: &'a str,
        request_id: &'a str,
        endpoint: &'a str,
        context: &ApiGatewayWebsocketProxyRequestContext,
    ) -> Self {
        let identity = &context.identity;
        Client {
            gateway,
            connection_id,
            request_id,
            endpoint,
            proven: Proven::of(context),
            permissions: Permissions::of(gateway.config.is_token_mode(), |key| {
                context.authorizer.fields.get(key)
            }),
            session: None,
            action: None,
            replies: 0,
            undelivered: 0,
            source_ip: identity.source_ip.clone().filter(|ip| !ip.is_empty()),
            user_agent: identity.user_agent.clone(),
        }
    }

    /// The client's IP address (`$_SERVER['REMOTE_ADDR']`), which API Gateway gives with every
    /// frame. A client behind a proxy shows the proxy's.
    pub fn source_ip(&self) -> Option<&str> {
        self.source_ip.as_deref()
    }

    /// The client's `User-Agent`, when API Gateway gives it with the frame (it does at
    /// `$connect`; [`Gateway::connection`]'s record keeps that one).
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    /// closeCurrentClient: closes the sender's connection; it ends at once, and `on_close` runs
    /// once this frame is handled.
    pub async fn close_current_client(&self) -> Result<(), Error> {
        self.gateway
            .close_at(self.endpoint, self.connection_id)
            .await
    }

    /// The GatewayWorker calls (`Gateway::` in PHP).
    pub fn gateway(&self) -> &'a Gateway {
        self.gateway
    }

    /// The sender's connection id (GatewayWorker's `$client_id`).
    pub fn connection_id(&self) -> &'a str {
        self.connection_id
    }

    /// API Gateway's id of this frame, which the error frames and the log lines carry.
    pub fn request_id(&self) -> &'a str {
        self.request_id
    }

    /// Where this event says pushes go.
    pub fn endpoint(&self) -> &'a str {
        self.endpoint
    }

    /// What the connection's token allows (everything without a secret).
    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }

    /// The sender's uid: the one proven at `$connect`, carried by the event without a read, or
    /// else its record's (an anonymous connection a server may have bound a uid to since).
    pub async fn uid(&self) -> Result<Option<String>, Error> {
        if let Proven::Uid(uid) = &self.proven {
            return Ok(Some(uid.clone()));
        }
        let record = self
            .gateway
            .store
            .connection(self.connection_id)
            .await?
            .ok_or_else(|| Error::UnknownConnection(self.connection_id.to_owned()))?;
        Ok(record.uid)
    }

    /// sendToCurrentClient: pushes `data` (text, or a JSON value) to the sender now; whether it
    /// arrived. A failed push is logged and counted on the frame's log line, not returned: there
    /// is no one else to tell. Fails only for a value that has no JSON form.
    pub async fn send_to_current_client(&mut self, data: impl Payload) -> Result<bool, Error> {
        let data = data.into_text()?;
        Ok(self.push_to_sender(&data).await)
    }

    /// Pushes a frame the library made (an error frame) to the sender.
    pub(crate) async fn push_to_sender(&mut self, data: &str) -> bool {
        self.replies += 1;
        let pushed = Box::pin(
            self.gateway
                .push_to(self.endpoint, self.connection_id, data),
        )
        .await;
        match pushed {
            Ok(Delivery::Delivered) => true,
            Ok(Delivery::Gone) => {
                self.undelivered += 1;
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "a frame to the sender could not be pushed");
                self.undelivered += 1;
                false
            }
        }
    }

    /// The sender's session (`$_SESSION`), read on first use in this frame; what the application
    /// changes is saved when the hook returns `Ok` (see [`crate::gateway::session`]).
    pub async fn session(&mut self) -> Result<&mut Session, Error> {
        let loaded = match self.session.take() {
            Some(loaded) => loaded,
            None => {
                let record = self
                    .gateway
                    .store
                    .connection(self.connection_id)
                    .await?
                    .ok_or_else(|| Error::UnknownConnection(self.connection_id.to_owned()))?;
                let stored = session::parse(record.session.as_deref())?;
                (stored.clone(), stored)
            }
        };
        Ok(&mut self.session.insert(loaded).1)
    }

    /// Names what the frame asked for, for its log line (bounded to 64 characters).
    pub fn set_action(&mut self, action: &str) {
        self.action = Some(action.chars().take(64).collect());
    }

    pub(crate) fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }

    /// Frames pushed to the sender, and how many of them did not arrive.
    pub(crate) fn replies(&self) -> (usize, usize) {
        (self.replies, self.undelivered)
    }

    /// Saves what the frame changed in the session, merged into the session as it is now.
    pub(crate) async fn save_session(&mut self) -> Result<(), Error> {
        let Some((before, after)) = self.session.take() else {
            return Ok(());
        };
        let change = Change::between(&before, &after);
        if change.is_empty() {
            return Ok(());
        }
        if !Box::pin(self.gateway.change_session(self.connection_id, &change)).await? {
            tracing::info!("the session was not saved: the connection is gone");
        }
        Ok(())
    }
}
