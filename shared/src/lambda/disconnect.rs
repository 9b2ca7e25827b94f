//! `$disconnect`: the end of a connection, when API Gateway tells of it (best-effort: see
//! [`crate::gateway::ended`]).

use std::time::Instant;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;

use crate::app::Events;
use crate::error::Error;
use crate::gateway::ended::Cause;
use crate::gateway::Gateway;
use crate::store::Ending;

use super::on_close::then_close;
use super::request::{ids, millis, response, Event};

/// `$disconnect`: ends the connection unless a prune or a kick already did (see
/// [`crate::gateway::ended`]), then tells the application ([`Events::on_close`]) what its records said.
#[tracing::instrument(name = "request", skip_all, fields(route = "$disconnect", connection_id, request_id, aws_request_id = %event.context.request_id))]
pub async fn handle<A: Events>(
    gateway: &Gateway,
    app: &A,
    event: Event,
) -> Result<ApiGatewayProxyResponse, Error> {
    let ids = ids(&event);
    ids.name_span();
    let work = async move {
        let started = Instant::now();
        let context = &event.payload.request_context;
        let endpoint = gateway.endpoint(context);
        if let Err(e) = &endpoint {
            tracing::warn!(error = %e, "no presence events: nowhere to push them");
        }
        let cause = Cause::Disconnect {
            close_code: context.disconnect_status_code,
        };
        let ending =
            Box::pin(gateway.end(endpoint.as_deref().ok(), &ids.connection_id, cause)).await;
        let outcome = match ending {
            Some(Ending::Ended(_)) => "removed",
            Some(Ending::TooRecent | Ending::EndedElsewhere { left: Some(_) }) => "ended elsewhere",
            Some(Ending::EndedElsewhere { left: None }) => "already gone",
            None => "failed",
        };
        tracing::info!(
            outcome,
            close_code = context.disconnect_status_code,
            reason = context.disconnect_reason.as_deref(),
            duration_ms = millis(started.elapsed()),
            "disconnect"
        );
        Ok(response(200))
    };
    then_close(gateway, app, work).await
}
