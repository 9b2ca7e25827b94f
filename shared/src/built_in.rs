//! The built-in wire protocol (`docs/protocol.md`) as an application: the default one, which the
//! three functions run unless their `main.rs` hands them another.

use crate::app_error::AppError;
use crate::commands;
use crate::events::{Client, Events};
use crate::protocol::{self, Command, Incoming};

/// Plain text is echoed; a JSON frame with an `action` is a command (`send`, `join`, `presence`,
/// …), checked against the token's claims, carried out, and answered.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltIn;

impl Events for BuiltIn {
    async fn on_message(&self, client: &mut Client<'_>, frame: &str) -> Result<(), AppError> {
        let command = match protocol::parse(frame)? {
            Incoming::Plain => {
                client.push_to_sender(&protocol::echo(frame)).await;
                return Ok(());
            }
            Incoming::Command(command) => command,
        };
        client.set_action(command.action());
        // A refused or failed `send` names its `id`: a client with several in flight knows which.
        let id = match &command {
            Command::Send(send) => send.id.clone(),
            _ => None,
        };
        let named = |error: AppError, client: &Client<'_>| {
            if id.is_none() {
                return error;
            }
            if !error.is_refusal() {
                tracing::error!(action = "send", error = %error, "the frame failed");
            }
            let rejection = error.rejection(Some("send"), client.request_id());
            AppError::from(rejection.for_command(id.as_deref()))
        };
        if let Err(rejection) = client.permissions().check(&command) {
            return Err(named(rejection.into(), client));
        }
        // Boxed: the SDK's futures nest deeply enough to pass the compiler's type-layout depth
        // limit in a function's `main`.
        let replies = match Box::pin(commands::run(client, command)).await {
            Ok(replies) => replies,
            Err(error) => return Err(named(error.into(), client)),
        };
        for reply in &replies {
            client.push_to_sender(reply).await;
        }
        Ok(())
    }
}
