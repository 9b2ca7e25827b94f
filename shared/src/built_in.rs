//! The built-in wire protocol (`docs/protocol.md`) as an application: the default one, which the
//! three functions run unless their `main.rs` hands them another.

use crate::commands;
use crate::error::Error;
use crate::events::{Client, Events};
use crate::protocol::{self, Command, Incoming};
use crate::push::Push;
use crate::store::Store;

/// Plain text is echoed; a JSON frame with an `action` is a command (`send`, `join`, `presence`,
/// …), checked against the token's claims, carried out, and answered.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltIn;

impl Events for BuiltIn {
    async fn on_message<S: Store, P: Push>(
        &self,
        client: &mut Client<'_, S, P>,
        frame: &str,
    ) -> Result<(), Error> {
        let command = match protocol::parse(frame)? {
            Incoming::Plain => {
                client.send_to_current_client(&protocol::echo(frame)).await;
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
        let named = |error: Error, client: &Client<'_, S, P>| match error {
            Error::Rejected(rejection) => Error::Rejected(rejection.for_command(id.as_deref())),
            error if id.is_some() => {
                tracing::error!(action = "send", error = %error, "the frame failed");
                Error::Rejected(
                    error
                        .rejection(Some("send"), client.request_id())
                        .for_command(id.as_deref()),
                )
            }
            error => error,
        };
        if let Err(rejection) = client.permissions().check(&command) {
            return Err(named(Error::Rejected(rejection), client));
        }
        // Boxed: the SDK's futures nest deeply enough to pass the compiler's type-layout depth
        // limit in a function's `main`.
        let replies = match Box::pin(commands::run(client, command)).await {
            Ok(replies) => replies,
            Err(error) => return Err(named(error, client)),
        };
        for reply in &replies {
            client.send_to_current_client(reply).await;
        }
        Ok(())
    }
}
