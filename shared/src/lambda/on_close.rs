//! Running the application's `on_close` for the connections an invocation ended.

use futures_util::stream::{self, StreamExt};

use crate::app::{Closing, Events};
use crate::gateway::ended::{self, Closed};
use crate::gateway::Gateway;

/// Most rounds of `on_close` one invocation runs: an `on_close` may end connections in turn
/// (a kick, a push meeting a 410), whose `on_close` runs in the next round.
const CLOSE_ROUNDS: usize = 8;

/// `on_close`s run at once, when one event ended several connections (a fan-out that met many
/// gone members).
const CLOSE_CONCURRENCY: usize = 8;

/// Handles an event (`work`), then runs the application's `on_close` for each connection it
/// ended: what every handler does around its own work.
pub(crate) async fn then_close<A: Events, F: std::future::Future>(
    gateway: &Gateway,
    app: &A,
    work: F,
) -> F::Output {
    // Boxed: the work and the application's hooks nest deep enough to pass a test thread's
    // stack in a debug build when held inline.
    let (output, closed) = ended::closing(Box::pin(work)).await;
    Box::pin(close_all(gateway, app, closed)).await;
    output
}

/// Runs the application's `on_close` for each connection this invocation ended, once each.
async fn close_all<A: Events>(gateway: &Gateway, app: &A, mut closed: Vec<Closed>) {
    for _ in 0..CLOSE_ROUNDS {
        if closed.is_empty() {
            return;
        }
        let more: Vec<Vec<Closed>> = stream::iter(closed)
            .map(|ended| async move {
                let id = ended.record.connection_id.clone();
                let closing = Closing::new(gateway, ended.record, ended.cause);
                let (result, more) = ended::closing(Box::pin(app.on_close(&closing))).await;
                if let Err(e) = result {
                    tracing::error!(
                        outcome = "failed",
                        closed = %id,
                        error = %e,
                        "the application's on_close failed",
                    );
                }
                more
            })
            .buffer_unordered(CLOSE_CONCURRENCY)
            .collect()
            .await;
        let next: Vec<Closed> = more.into_iter().flatten().collect();
        closed = next;
    }
    if !closed.is_empty() {
        tracing::error!(
            left = closed.len(),
            "on_close ended connections {CLOSE_ROUNDS} rounds in a row; the rest are not closed"
        );
    }
}
