//! The `$connect` function: the route's authorizer ([`authorize`]) and the `$connect` event
//! ([`handle`]), one function that API Gateway calls twice per handshake
//! ([`connect_function`]).

use std::time::Instant;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayProxyResponse,
    ApiGatewayWebsocketProxyRequestContext,
};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::app::{Connecting, Events, Verdict};
use crate::auth::authorizer;
use crate::auth::permissions::Permissions;
use crate::auth::{self, AuthError};
use crate::error::Error;
use crate::gateway::frames::PresenceChange;
use crate::gateway::Gateway;
use crate::store::{expiry_from_now, now_millis, ConnectionRecord, Members, Store};

use super::on_close::then_close;
use super::request::{ids, millis, response, Event};

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
    let response = Box::pin(handle(gateway, app, LambdaEvent::new(request, context))).await?;
    Ok(serde_json::json!({ "statusCode": response.status_code }))
}

/// The `$connect` route's authorizer: proves the uid once, so that API Gateway carries it on
/// every event of the connection (see [`authorizer`]). A refused token fails with
/// `Unauthorized`, which API Gateway answers with 401 without invoking `$connect`. A bad `?uid=`
/// (anonymous mode) is let through without a uid: `$connect` answers it with 400, as the
/// protocol says.
#[tracing::instrument(name = "request", skip_all, fields(route = "authorizer", connection_id = %connection_id, request_id = %event.payload.request_context.request_id.as_deref().unwrap_or(&event.context.request_id), aws_request_id = %event.context.request_id))]
pub async fn authorize(
    gateway: &Gateway,
    event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>,
    connection_id: String,
) -> Result<Value, Error> {
    let request = &event.payload;
    let started = Instant::now();
    let query = &request.query_string_parameters;
    let method_arn = request.method_arn.as_deref().unwrap_or_default();
    let identity = match auth::authenticate(
        gateway.verifier.as_ref(),
        query.first("token"),
        query.first("uid"),
    ) {
        Ok(identity) => identity,
        Err(AuthError::BadUid(_)) => auth::Identity {
            uid: None,
            permissions: Permissions::Everything,
        },
        Err(refusal) => {
            tracing::info!(
                outcome = "refused",
                reason = %refusal,
                duration_ms = millis(started.elapsed()),
                "authorizer refused",
            );
            return Err(Error::Unauthorized);
        }
    };
    let uid = identity.uid.as_deref();
    if let Some(uid) = uid {
        if Box::pin(at_connection_cap(gateway, uid)).await {
            tracing::info!(
                outcome = "refused",
                uid,
                reason = "the uid is at MAX_CONNECTIONS_PER_UID",
                duration_ms = millis(started.elapsed()),
                "authorizer refused",
            );
            return Ok(authorizer::deny(uid, method_arn));
        }
    }
    tracing::info!(
        outcome = "allowed",
        uid,
        duration_ms = millis(started.elapsed()),
        "authorizer"
    );
    let context = authorizer::context(uid, &identity.permissions);
    Ok(authorizer::allow(
        uid.unwrap_or("anonymous"),
        method_arn,
        context,
    ))
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
            tracing::warn!(
                error = %e,
                "the uid's connections could not be counted; the handshake is let through",
            );
            false
        }
    }
}

/// `$connect`: checks who is connecting, asks the application ([`Events::on_connect`]), and
/// records the connection. Answers 401 for a bad token and 400 for a bad `?uid=`, writing nothing;
/// the application's status when it refuses; 500 when it or the store fails.
#[tracing::instrument(name = "request", skip_all, fields(route = "$connect", connection_id, request_id, aws_request_id = %event.context.request_id))]
pub async fn handle<A: Events>(
    gateway: &Gateway,
    app: &A,
    event: Event,
) -> Result<ApiGatewayProxyResponse, Error> {
    let ids = ids(&event);
    ids.name_span();
    let work = async move {
        let started = Instant::now();
        let request = &event.payload;
        let query = &request.query_string_parameters;
        let status = match auth::identify(
            gateway.verifier.as_ref(),
            query.first("token"),
            query.first("uid"),
        ) {
            Err(refusal) => {
                tracing::info!(
                    outcome = "refused",
                    status = refusal.status(),
                    reason = %refusal,
                    duration_ms = millis(started.elapsed()),
                    "connect refused",
                );
                return Ok(response(refusal.status()));
            }
            Ok(uid) => {
                let context = &request.request_context;
                let record = ConnectionRecord {
                    connection_id: ids.connection_id.clone(),
                    connected_at: if context.connected_at > 0 {
                        context.connected_at
                    } else {
                        now_millis()
                    },
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
                        tracing::info!(
                            outcome = "refused",
                            status,
                            by = "application",
                            duration_ms = millis(started.elapsed()),
                            "connect refused"
                        );
                        return Ok(response(status));
                    }
                    Ok(Verdict::Refuse(status)) => {
                        // A 2xx would let the client in with nothing recorded.
                        tracing::error!(
                            outcome = "failed",
                            status,
                            duration_ms = millis(started.elapsed()),
                            "connect failed: on_connect refused with a status that is not an HTTP error (400 to 599); answered 500",
                        );
                        return Ok(response(500));
                    }
                    Err(e) => {
                        tracing::error!(
                            outcome = "failed",
                            error = %e,
                            duration_ms = millis(started.elapsed()),
                            "connect failed: the application's on_connect failed; nothing was recorded",
                        );
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
                        if let (false, Ok(endpoint)) = (
                            record.groups.is_empty(),
                            gateway.endpoint(&request.request_context),
                        ) {
                            Box::pin(gateway.announce_record(
                                &endpoint,
                                &record,
                                PresenceChange::Join,
                            ))
                            .await;
                        }
                        tracing::info!(
                            outcome = "connected",
                            uid = record.uid.as_deref(),
                            duration_ms = millis(started.elapsed()),
                            "connect"
                        );
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
                        tracing::error!(
                            outcome = "failed",
                            error = %e,
                            cleanup,
                            duration_ms = millis(started.elapsed()),
                            "connect failed: the connection was not recorded",
                        );
                        500
                    }
                }
            }
        };
        Ok(response(status))
    };
    then_close(gateway, app, work).await
}

/// Queues the invocation that runs `on_open` once the handshake completes (see
/// [`crate::lambda::on_open`]); a failure leaves the connection open without it, and says so.
async fn ask_for_on_open(gateway: &Gateway, context: &ApiGatewayWebsocketProxyRequestContext) {
    match &gateway.opener {
        Some(opener) => {
            if let Err(e) = opener.request(context).await {
                tracing::error!(
                    error = %e,
                    "on_open could not be asked for: the connection is open without it",
                );
            }
        }
        None => tracing::warn!("the application implements on_open (Events::ON_OPEN), but ON_OPEN_FUNCTION is not set: on_open does not run"),
    }
}
