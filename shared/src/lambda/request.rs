//! What every handler does with its event alike: the ids its log lines carry (each handler's
//! `#[instrument]` span names them), its answer's status, and the time it took.

use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::LambdaEvent;

pub(crate) type Event = LambdaEvent<ApiGatewayWebsocketProxyRequest>;

/// The status code API Gateway acts on (for `$connect`, the handshake's answer).
pub fn response(status: u16) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response
}

pub(crate) struct Ids {
    pub(crate) connection_id: String,
    pub(crate) request_id: String,
}

impl Ids {
    /// Records the ids on the handler's span, whose `#[instrument]` declares the fields: read
    /// from the event once, for the span and the handler alike.
    pub(crate) fn name_span(&self) {
        let span = tracing::Span::current();
        span.record(
            "connection_id",
            tracing::field::display(&self.connection_id),
        );
        span.record("request_id", tracing::field::display(&self.request_id));
    }
}

pub(crate) fn ids(event: &Event) -> Ids {
    let context = &event.payload.request_context;
    Ids {
        connection_id: context.connection_id.clone().unwrap_or_default(),
        request_id: context
            .request_id
            .clone()
            .unwrap_or_else(|| event.context.request_id.clone()),
    }
}

pub(crate) fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}
