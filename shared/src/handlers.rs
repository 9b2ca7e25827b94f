//! The three Lambda entry points: `$connect`, every message route, and `$disconnect`.
//!
//! Each is a plain async function over a [`Gateway`], so tests drive it with an event and a real
//! store. Each logs one line per request with the connection id, the request id, what was asked,
//! the outcome and the time taken; never a token or a message body.

use std::time::{Duration, Instant};

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::LambdaEvent;
use tracing::Instrument;

use crate::auth;
use crate::commands::{self, Sender};
use crate::error::Error;
use crate::gateway::Gateway;
use crate::protocol::{self, ErrorCode, Incoming, Rejection};
use crate::push::Push;
use crate::store::{expiry_from_now, now_millis, Admission, ConnectionRecord, Store, StoreError};

type Event = LambdaEvent<ApiGatewayWebsocketProxyRequest>;

/// The status code API Gateway acts on (for `$connect`, the handshake's answer).
pub fn response(status: u16) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response
}

struct Ids {
    connection_id: String,
    request_id: String,
}

fn ids(event: &Event) -> Ids {
    let context = &event.payload.request_context;
    Ids {
        connection_id: context.connection_id.clone().unwrap_or_default(),
        request_id: context
            .request_id
            .clone()
            .unwrap_or_else(|| event.context.request_id.clone()),
    }
}

fn span(route: &str, ids: &Ids, event: &Event) -> tracing::Span {
    tracing::info_span!(
        "request",
        route,
        connection_id = %ids.connection_id,
        request_id = %ids.request_id,
        aws_request_id = %event.context.request_id,
    )
}

fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

/// `$connect`: checks who is connecting and records the connection. Answers 401 for a bad token
/// and 400 for a bad `?uid=`, writing nothing; 500 when the store fails.
pub async fn connect<S: Store, P: Push>(
    gateway: &Gateway<S, P>,
    event: Event,
) -> Result<ApiGatewayProxyResponse, Error> {
    let ids = ids(&event);
    let span = span("$connect", &ids, &event);
    async move {
        let started = Instant::now();
        let request = &event.payload;
        let query = &request.query_string_parameters;
        let status = match auth::identify(gateway.verifier.as_ref(), query.first("token"), query.first("uid")) {
            Err(refusal) => {
                tracing::info!(outcome = "refused", status = refusal.status(), reason = %refusal, duration_ms = millis(started.elapsed()), "connect refused");
                return Ok(response(refusal.status()));
            }
            Ok(uid) => {
                let context = &request.request_context;
                let record = ConnectionRecord {
                    connection_id: ids.connection_id.clone(),
                    connected_at: if context.connected_at > 0 { context.connected_at } else { now_millis() },
                    source_ip: context.identity.source_ip.clone(),
                    user_agent: request
                        .headers
                        .get("user-agent")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    uid,
                    groups: Default::default(),
                    expires_at: expiry_from_now(gateway.config.connection_ttl),
                    session: None,
                };
                match gateway.store.put_connection(&record).await {
                    Ok(()) => {
                        tracing::info!(outcome = "connected", uid = record.uid.as_deref(), duration_ms = millis(started.elapsed()), "connect");
                        200
                    }
                    Err(e) => {
                        // A failed answer does not prove a failed write (a timeout after it
                        // landed, say), any of the items may have landed, and a refused handshake
                        // never gets a `$disconnect`: delete every item the record names, or
                        // leave them to the TTL if even that fails.
                        let cleanup = match gateway.store.forget(&record).await {
                            Ok(()) => "took back whatever landed",
                            Err(_) => "left to the TTL",
                        };
                        tracing::error!(outcome = "failed", error = %e, cleanup, duration_ms = millis(started.elapsed()), "connect failed: the connection was not recorded");
                        500
                    }
                }
            }
        };
        Ok(response(status))
    }
    .instrument(span)
    .await
}

/// `$disconnect`: removes every item of the connection.
pub async fn disconnect<S: Store, P: Push>(
    gateway: &Gateway<S, P>,
    event: Event,
) -> Result<ApiGatewayProxyResponse, Error> {
    let ids = ids(&event);
    let span = span("$disconnect", &ids, &event);
    async move {
        let started = Instant::now();
        let context = &event.payload.request_context;
        match gateway.store.remove_connection(&ids.connection_id).await {
            Ok(record) => {
                tracing::info!(
                    outcome = if record.is_some() { "removed" } else { "already gone" },
                    close_code = context.disconnect_status_code,
                    reason = context.disconnect_reason.as_deref(),
                    duration_ms = millis(started.elapsed()),
                    "disconnect"
                );
                Ok(response(200))
            }
            Err(e) => {
                tracing::error!(outcome = "failed", error = %e, duration_ms = millis(started.elapsed()), "disconnect failed: records remain until their TTL");
                Ok(response(500))
            }
        }
    }
    .instrument(span)
    .await
}

/// Every message route: reads the frame, carries it out, and pushes the replies to the sender.
pub async fn message<S: Store, P: Push>(
    gateway: &Gateway<S, P>,
    event: Event,
) -> Result<ApiGatewayProxyResponse, Error> {
    let ids = ids(&event);
    let span = span("message", &ids, &event);
    async move {
        let started = Instant::now();
        let endpoint = match gateway.endpoint(&event.payload.request_context) {
            Ok(endpoint) => endpoint,
            Err(e) => {
                tracing::error!(outcome = "failed", error = %e, "message dropped: nowhere to push replies");
                return Err(e);
            }
        };
        let sender = Sender { connection_id: &ids.connection_id, request_id: &ids.request_id, endpoint: &endpoint };
        let body = event.payload.body.as_deref().unwrap_or("");
        let (action, result) = answer(gateway, &sender, body).await;
        let (outcome, replies, refused_action) = match result {
            Ok(replies) => ("ok", replies, None),
            Err(Answer::Rejected(rejection)) => {
                // The action a refused frame named, as the client wrote it: bounded, for the log.
                let named = rejection.action.as_deref().map(|a| a.chars().take(64).collect::<String>());
                (rejection_outcome(rejection.code), vec![rejection.frame()], named)
            }
            Err(Answer::Failed(error)) => {
                tracing::error!(action, error = %error, "command failed");
                ("internal", vec![error.rejection(action, sender.request_id).frame()], None)
            }
        };
        let mut undelivered = 0;
        for reply in &replies {
            if let Err(e) = Box::pin(gateway.push_to(&endpoint, sender.connection_id, reply)).await {
                tracing::warn!(error = %e, "reply to the sender could not be pushed");
                undelivered += 1;
            }
        }
        tracing::info!(
            action = action.or(refused_action.as_deref()).unwrap_or("-"),
            outcome,
            bytes = body.len(),
            replies = replies.len(),
            undelivered,
            duration_ms = millis(started.elapsed()),
            "message"
        );
        Ok(response(200))
    }
    .instrument(span)
    .await
}

enum Answer {
    Rejected(Rejection),
    Failed(Error),
}

fn rejection_outcome(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::UnknownAction => "unknown_action",
        ErrorCode::BadRequest => "bad_request",
        ErrorCode::TooLarge => "too_large",
        ErrorCode::RateLimited => "rate_limited",
        ErrorCode::Internal => "internal",
    }
}

/// The action named (when known) and the sender's replies, or why there are none.
async fn answer<S: Store, P: Push>(
    gateway: &Gateway<S, P>,
    sender: &Sender<'_>,
    body: &str,
) -> (Option<&'static str>, Result<Vec<String>, Answer>) {
    let limit = gateway.config.max_message_bytes;
    if body.len() > limit {
        let rejection = Rejection::new(
            ErrorCode::TooLarge,
            format!("the message is {} bytes; the limit is {limit}", body.len()),
            None,
        );
        return (None, Err(Answer::Rejected(rejection)));
    }
    match Box::pin(admit(gateway, sender.connection_id)).await {
        Ok(Admission::Limited) => {
            let config = &gateway.config;
            let rejection = Rejection::new(
                ErrorCode::RateLimited,
                format!(
                    "more than {} frames in {} s; slow down",
                    config.rate_limit,
                    config.rate_window.as_secs()
                ),
                None,
            );
            return (None, Err(Answer::Rejected(rejection)));
        }
        Ok(Admission::Allowed | Admission::Unknown) => {}
        Err(e) => return (None, Err(Answer::Failed(e.into()))),
    }
    match protocol::parse(body) {
        Ok(Incoming::Plain) => (None, Ok(vec![protocol::echo(body)])),
        Err(rejection) => (None, Err(Answer::Rejected(rejection))),
        Ok(Incoming::Command(command)) => {
            let action = command.action();
            (
                Some(action),
                // Boxed, like the other store-bound futures here: the SDK's futures nest deeply
                // enough to pass the compiler's type-layout depth limit in a function's `main`.
                Box::pin(commands::run(gateway, sender, command))
                    .await
                    .map_err(Answer::Failed),
            )
        }
    }
}

/// Counts the frame against the sender's rate limit, unless the limit is off.
async fn admit<S: Store, P: Push>(
    gateway: &Gateway<S, P>,
    connection_id: &str,
) -> Result<Admission, StoreError> {
    let config = &gateway.config;
    if config.rate_limit == 0 {
        return Ok(Admission::Allowed);
    }
    let window_secs = config.rate_window.as_secs().max(1) as i64;
    let window = now_millis() / 1000 / window_secs * window_secs;
    gateway
        .store
        .admit(connection_id, window, config.rate_limit)
        .await
}
