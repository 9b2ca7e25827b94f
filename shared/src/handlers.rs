//! The Lambda entry points: the `$connect` route's authorizer and `$connect` (one function,
//! [`connect_function`]), every message route, and `$disconnect`.
//!
//! Each is a plain async function over a [`Gateway`] and the application ([`Events`]), so tests
//! drive it with an event and a real store. What every application gets from them alike: the
//! token check, the size limit and the rate limit before `on_message`, the error frames, and the
//! log lines. Each logs one line per request with the connection id, the request id, what was asked,
//! the outcome and the time taken; never a token or a message body.

use std::time::{Duration, Instant};

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayProxyResponse,
    ApiGatewayWebsocketProxyRequest, ApiGatewayWebsocketProxyRequestContext,
};
use futures_util::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::Instrument;

use crate::app_error::AppError;
use crate::auth::{self, AuthError};
use crate::authorizer;
use crate::ended::{self, Cause, Closed};
use crate::error::Error;
use crate::events::{Client, Closing, Connecting, Events, Verdict};
use crate::frames::PresenceChange;
use crate::gateway::Gateway;
use crate::permissions::Permissions;
use crate::push::Push;
use crate::rate_limit::{self, RateLimiter, Standing};
use crate::rejection::{ErrorCode, Rejection};
use crate::store::{expiry_from_now, now_millis, ConnectionRecord, Ending, Members, Store};

type Event = LambdaEvent<ApiGatewayWebsocketProxyRequest>;

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

pub(crate) fn span(route: &str, ids: &Ids, aws_request_id: &str) -> tracing::Span {
    tracing::info_span!(
        "request",
        route,
        connection_id = %ids.connection_id,
        request_id = %ids.request_id,
        aws_request_id = %aws_request_id,
    )
}

pub(crate) fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

/// The `$connect` function's entry point. API Gateway calls it twice per handshake: first as the
/// route's authorizer, then with the `$connect` event.
pub async fn connect_function<A: Events>(
    gateway: &Gateway,
    app: &A,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    let unexpected = |e: serde_json::Error| Error::UnexpectedEvent(e.to_string());
    if authorizer::is_authorizer_request(&payload) {
        // The typed request has no field for it; the authorizer's log lines carry it all the same.
        let connection_id = payload["requestContext"]["connectionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let request = serde_json::from_value(payload).map_err(unexpected)?;
        return Box::pin(authorize(
            gateway,
            LambdaEvent::new(request, context),
            connection_id,
        ))
        .await;
    }
    let request = serde_json::from_value(payload).map_err(unexpected)?;
    // Boxed: the SDK's futures nest past the compiler's type-layout depth limit in `main`.
    let response = Box::pin(connect(gateway, app, LambdaEvent::new(request, context))).await?;
    Ok(serde_json::json!({ "statusCode": response.status_code }))
}

/// The `$connect` route's authorizer: proves the uid once, so that API Gateway carries it on
/// every event of the connection (see [`authorizer`]). A refused token fails with
/// `Unauthorized`, which API Gateway answers with 401 without invoking `$connect`. A bad `?uid=`
/// (anonymous mode) is let through without a uid: `$connect` answers it with 400, as the
/// protocol says.
pub async fn authorize(
    gateway: &Gateway,
    event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>,
    connection_id: String,
) -> Result<Value, Error> {
    let request = &event.payload;
    let ids = Ids {
        connection_id,
        request_id: request
            .request_context
            .request_id
            .clone()
            .unwrap_or_else(|| event.context.request_id.clone()),
    };
    let span = span("authorizer", &ids, &event.context.request_id);
    async move {
        let started = Instant::now();
        let query = &request.query_string_parameters;
        let method_arn = request.method_arn.as_deref().unwrap_or_default();
        let identity = match auth::authenticate(gateway.verifier.as_ref(), query.first("token"), query.first("uid")) {
            Ok(identity) => identity,
            Err(AuthError::BadUid(_)) => auth::Identity { uid: None, permissions: Permissions::Everything },
            Err(refusal) => {
                tracing::info!(outcome = "refused", reason = %refusal, duration_ms = millis(started.elapsed()), "authorizer refused");
                return Err(Error::Unauthorized);
            }
        };
        let uid = identity.uid.as_deref();
        if let Some(uid) = uid {
            if Box::pin(at_connection_cap(gateway, uid)).await {
                tracing::info!(outcome = "refused", uid, reason = "the uid is at MAX_CONNECTIONS_PER_UID", duration_ms = millis(started.elapsed()), "authorizer refused");
                return Ok(authorizer::deny(uid, method_arn));
            }
        }
        tracing::info!(outcome = "allowed", uid, duration_ms = millis(started.elapsed()), "authorizer");
        let context = authorizer::context(uid, &identity.permissions);
        Ok(authorizer::allow(uid.unwrap_or("anonymous"), method_arn, context))
    }
    .instrument(span)
    .await
}

/// Whether `uid` already has `MAX_CONNECTIONS_PER_UID` live connections: one Query of its set,
/// `Limit`ed to the cap. A read before the write, so handshakes of one uid racing each other may
/// pass the cap by their number; a failed read lets the handshake through (its `$connect` needs
/// the store too).
async fn at_connection_cap(gateway: &Gateway, uid: &str) -> bool {
    let cap = gateway.config.max_connections_per_uid;
    if cap == 0 {
        return false;
    }
    match gateway.store.members_up_to(Members::Uid(uid), cap).await {
        Ok(live) => live.len() >= cap,
        Err(e) => {
            tracing::warn!(error = %e, "the uid's connections could not be counted; the handshake is let through");
            false
        }
    }
}

/// `$connect`: checks who is connecting, asks the application ([`Events::on_connect`]), and
/// records the connection. Answers 401 for a bad token and 400 for a bad `?uid=`, writing nothing;
/// the application's status when it refuses; 500 when it or the store fails.
pub async fn connect<A: Events>(
    gateway: &Gateway,
    app: &A,
    event: Event,
) -> Result<ApiGatewayProxyResponse, Error> {
    let ids = ids(&event);
    let span = span("$connect", &ids, &event.context.request_id);
    let (result, closed) = ended::closing(
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
                let mut connecting = Connecting::new(gateway, request, record);
                match Box::pin(app.on_connect(&mut connecting)).await {
                    Ok(Verdict::Accept) => {}
                    Ok(Verdict::Refuse(status)) if (400..=599).contains(&status) => {
                        tracing::info!(outcome = "refused", status, by = "application", duration_ms = millis(started.elapsed()), "connect refused");
                        return Ok(response(status));
                    }
                    Ok(Verdict::Refuse(status)) => {
                        // A 2xx would let the client in with nothing recorded.
                        tracing::error!(outcome = "failed", status, duration_ms = millis(started.elapsed()), "connect failed: on_connect refused with a status that is not an HTTP error (400 to 599); answered 500");
                        return Ok(response(500));
                    }
                    Err(e) => {
                        tracing::error!(outcome = "failed", error = %e, duration_ms = millis(started.elapsed()), "connect failed: the application's on_connect failed; nothing was recorded");
                        return Ok(response(500));
                    }
                }
                let record = connecting.into_record();
                match gateway.store.put_connection(&record).await {
                    Ok(()) => {
                        if A::ON_OPEN {
                            Box::pin(ask_for_on_open(gateway, &request.request_context)).await;
                        }
                        // Groups the application's on_connect joined: their followers are told.
                        if let (false, Ok(endpoint)) = (record.groups.is_empty(), gateway.endpoint(&request.request_context)) {
                            Box::pin(gateway.announce_record(&endpoint, &record, PresenceChange::Join)).await;
                        }
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
    .instrument(span.clone()),
    )
    .await;
    close_all(gateway, app, closed).instrument(span).await;
    result
}

/// Queues the invocation that runs `on_open` once the handshake completes (see
/// [`crate::on_open`]); a failure leaves the connection open without it, and says so.
async fn ask_for_on_open(gateway: &Gateway, context: &ApiGatewayWebsocketProxyRequestContext) {
    match &gateway.opener {
        Some(opener) => {
            if let Err(e) = opener.request(context).await {
                tracing::error!(error = %e, "on_open could not be asked for: the connection is open without it");
            }
        }
        None => tracing::warn!("the application implements on_open (Events::ON_OPEN), but ON_OPEN_FUNCTION is not set: on_open does not run"),
    }
}

/// `$disconnect`: ends the connection unless a prune or a kick already did (see
/// [`crate::ended`]), then tells the application ([`Events::on_close`]) what its records said.
pub async fn disconnect<A: Events>(
    gateway: &Gateway,
    app: &A,
    event: Event,
) -> Result<ApiGatewayProxyResponse, Error> {
    let ids = ids(&event);
    let span = span("$disconnect", &ids, &event.context.request_id);
    let (result, closed) = ended::closing(Box::pin(
        async move {
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
                Some(Ending::TooRecent | Ending::EndedElsewhere { left: Some(_) }) => {
                    "ended elsewhere"
                }
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
        }
        .instrument(span.clone()),
    ))
    .await;
    Box::pin(close_all(gateway, app, closed))
        .instrument(span)
        .await;
    result
}

/// Every message route: drops a frame this environment knows to be over the rate limit, refuses
/// one over the size limit, hands the rest to the application ([`Events::on_message`]) while the
/// frame is counted against the sender's rate limit ([`crate::rate_limit`]: costly work waits
/// for the count), saves the session it changed, and answers a failure with an error frame.
pub async fn message<A: Events>(
    gateway: &Gateway,
    app: &A,
    event: Event,
) -> Result<ApiGatewayProxyResponse, Error> {
    let ids = ids(&event);
    let span = span("message", &ids, &event.context.request_id);
    let (result, closed) = ended::closing(
    async move {
        let started = Instant::now();
        let context = &event.payload.request_context;
        let body = event.payload.body.as_deref().unwrap_or("");
        let endpoint = match gateway.endpoint(context) {
            Ok(endpoint) => endpoint,
            Err(e) => {
                tracing::error!(outcome = "failed", error = %e, "message dropped: nowhere to push replies");
                return Err(e);
            }
        };
        let window = RateLimiter::window(&gateway.config);
        if let Some(window) = window.filter(|w| gateway.limiter.is_limited(&ids.connection_id, *w)) {
            // Told once already (by whichever invocation counted it over): nothing is pushed. It
            // is still counted when going on closes the connection, or going on would cost nothing.
            let standing = match gateway.config.rate_close_multiple {
                0 => Standing::Uncounted,
                _ => rate_limit::count(gateway, &ids.connection_id, window).await,
            };
            if standing == Standing::Close {
                close_for_rate(gateway, &endpoint, &ids.connection_id).await;
            }
            let counted = match standing {
                Standing::Uncounted => "known over the limit here: dropped",
                counted => counted.as_str(),
            };
            tracing::info!(outcome = "rate_limited", bytes = body.len(), counted, duration_ms = millis(started.elapsed()), "message");
            return Ok(response(200));
        }
        let mut client = Client::new(
            gateway,
            &ids.connection_id,
            &ids.request_id,
            &endpoint,
            authorizer::Proven::of(context),
            Permissions::of(gateway.config.is_token_mode(), |key| {
                context.authorizer.fields.get(key)
            }),
        )
        .seen_at(
            context.identity.source_ip.as_deref(),
            context.identity.user_agent.as_deref(),
        );
        let limit = gateway.config.max_message_bytes;
        let answer = async {
            if body.len() > limit {
                return Err(AppError::from(Rejection::new(
                    ErrorCode::TooLarge,
                    format!("the message is {} bytes; the limit is {limit}", body.len()),
                    None,
                )));
            }
            match Box::pin(app.on_message(&mut client, body)).await {
                Ok(()) => Ok(client.save_session().await?),
                Err(e) => Err(e),
            }
        };
        let (standing, result) = match window {
            Some(window) => Box::pin(rate_limit::counted(gateway, &ids.connection_id, window, answer)).await,
            None => (Standing::Uncounted, answer.await),
        };
        // The window's one `rate_limited` frame: from the first frame over the limit (or from
        // the one that closes the connection, when no frame over the limit came before it).
        let tells = standing == Standing::Crossed
            || (standing == Standing::Close && gateway.config.rate_close_multiple == 1);
        let mut told = false;
        let (outcome, refused_action) = match result {
            Ok(()) => ("ok", None),
            Err(error) if error.is_refusal() => {
                let rejection = error.rejection(client.action(), &ids.request_id);
                // Refused by the count (not by the application's own `rate_limited`): told
                // only by the window's first such frame.
                let by_count = rejection.code == ErrorCode::RateLimited && !standing.admits();
                if !by_count || tells {
                    if let Some(frame) = app.error_frame(&rejection) {
                        client.push_to_sender(&frame).await;
                    }
                    told |= by_count;
                }
                // The action a refused frame named, as the client wrote it: bounded, for the log.
                let named = rejection.action.as_deref().map(|a| a.chars().take(64).collect::<String>());
                (rejection_outcome(rejection.code), named)
            }
            Err(error) => {
                tracing::error!(action = client.action(), error = %error, "the frame failed");
                let rejection = error.rejection(client.action(), &ids.request_id);
                if let Some(frame) = app.error_frame(&rejection) {
                    client.push_to_sender(&frame).await;
                }
                ("internal", None)
            }
        };
        if tells && !told {
            // A cheap answer went out before the count was back: the window's one refusal still does.
            if let Some(frame) = app.error_frame(&rate_limit::refusal(&gateway.config)) {
                client.push_to_sender(&frame).await;
            }
        }
        if standing == Standing::Close {
            close_for_rate(gateway, &endpoint, &ids.connection_id).await;
        }
        let (replies, undelivered) = client.replies();
        tracing::info!(
            action = client.action().or(refused_action.as_deref()).unwrap_or("-"),
            outcome,
            bytes = body.len(),
            replies,
            undelivered,
            counted = standing.as_str(),
            duration_ms = millis(started.elapsed()),
            "message"
        );
        Ok(response(200))
    }
    .instrument(span.clone()),
    )
    .await;
    close_all(gateway, app, closed).instrument(span).await;
    result
}

/// Closes a connection that went on far past its rate limit, and ends it here (its groups told,
/// `on_close` run) rather than waiting for the `$disconnect` API Gateway sends best-effort.
async fn close_for_rate(gateway: &Gateway, endpoint: &str, connection_id: &str) {
    tracing::warn!(closed = %connection_id, "the connection sent more than {} times its rate limit in one window: closing it", gateway.config.rate_close_multiple);
    match gateway.push.close(endpoint, connection_id).await {
        Ok(_) => {
            gateway
                .end(Some(endpoint), connection_id, Cause::Kicked)
                .await;
        }
        Err(e) => {
            tracing::error!(error = %e, "closing the connection failed; its frames are still dropped until the window ends")
        }
    }
}

/// Most rounds of `on_close` one invocation runs: an `on_close` may end connections in turn
/// (a kick, a push meeting a 410), whose `on_close` runs in the next round.
const CLOSE_ROUNDS: usize = 8;

/// `on_close`s run at once, when one event ended several connections (a fan-out that met many
/// gone members).
const CLOSE_CONCURRENCY: usize = 8;

/// Runs the application's `on_close` for each connection this invocation ended, once each.
pub(crate) async fn close_all<A: Events>(gateway: &Gateway, app: &A, mut closed: Vec<Closed>) {
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
                    tracing::error!(outcome = "failed", closed = %id, error = %e, "the application's on_close failed");
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

fn rejection_outcome(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::UnknownAction => "unknown_action",
        ErrorCode::BadRequest => "bad_request",
        ErrorCode::TooLarge => "too_large",
        ErrorCode::RateLimited => "rate_limited",
        ErrorCode::Forbidden => "forbidden",
        ErrorCode::Internal => "internal",
    }
}
