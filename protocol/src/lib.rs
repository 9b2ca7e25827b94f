//! The built-in wire protocol (`docs/protocol.md`) as an application of the Events API: the one
//! the three functions run unless their `main.rs` hands them another.
//!
//! It is written on `shared`'s public surface only — a crate of its own, so the compiler holds it
//! to what any application can reach: the [`Client`] of a frame, the Gateway's calls, history,
//! presence, the token's permissions. Each command is one file of [`commands`]: how it is read,
//! what the token must allow, and what it does.

pub mod commands;
mod fields;
mod incoming;
mod outgoing;

pub use commands::{check, Command, Send, ACTIONS};
pub use fields::MAX_LIST_NAMES;
pub use incoming::{parse, Incoming};
pub use outgoing::{echo, Outgoing};

use shared::prelude::*;

/// Every `type` of frame the protocol sends: the replies of [`Outgoing`] and the library's
/// presence and error frames (`shared::gateway::frames`). The fuzzer checks replies against this list.
pub const FRAME_TYPES: &[&str] = &[
    "pong", "whoami", "joined", "left", "message", "history", "ack", "presence", "error",
];

/// Plain text is echoed; a JSON frame with an `action` is a command (`send`, `join`, `presence`,
/// …), checked against the token's claims, carried out, and answered.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltIn;

impl Events for BuiltIn {
    async fn on_message(&self, client: &mut Client<'_>, frame: &str) -> Result<(), AppError> {
        let command = match parse(frame)? {
            Incoming::Plain => {
                client.send_to_current_client(echo(frame)).await?;
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
        if let Err(rejection) = check(client.permissions(), &command) {
            return Err(named(rejection.into(), client));
        }
        // Boxed: the SDK's futures nest deeply enough to pass the compiler's type-layout depth
        // limit in a function's `main`.
        let replies = match Box::pin(commands::run(client, command)).await {
            Ok(replies) => replies,
            Err(error) => return Err(named(error.into(), client)),
        };
        for reply in replies {
            client.send_to_current_client(reply).await?;
        }
        Ok(())
    }
}
