//! The `@connections` management API, as API Gateway serves it: POST sends to a client, GET
//! describes it, DELETE closes it. As in AWS, and checked in this order:
//! - the stage is part of the path: without it (or with another) the answer is 403 `Forbidden`;
//! - requests are SigV4-signed for `execute-api` ([`crate::sigv4`]): otherwise 403;
//! - an optional throttle answers 429 `LimitExceededException`;
//! - a POST over 128 KiB is 413 `PayloadTooLargeException`;
//! - an unknown id, or one whose handshake has not completed, is 410 `GoneException`, which the
//!   AWS SDK turns into its typed error.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::connections::Outbound;
use crate::sigv4;
use crate::Gateway;
use shared::civil::civil;

/// The largest POST body API Gateway takes (128 KiB).
pub const MAX_POST_BYTES: usize = 128 * 1024;

/// `/@connections/{id}`: API Gateway serves the management API only under the stage.
pub async fn unstaged_connection(Path(id): Path<String>, method: Method) -> Response {
    tracing::info!(method = %method, connection = id, status = 403, "@connections without the stage in the path: Forbidden (the endpoint must end in /{{stage}})");
    error(StatusCode::FORBIDDEN, None, "Forbidden")
}

/// `/{stage}/@connections/{id}`
pub async fn staged_connection(
    State(gateway): State<Arc<Gateway>>,
    Path((stage, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = handle(&gateway, &stage, &id, &method, &uri, &headers, body);
    tracing::info!(method = %method, connection = id, status = response.status().as_u16(), "@connections");
    response
}

fn error(status: StatusCode, kind: Option<&str>, message: &str) -> Response {
    let body = json!({ "message": message }).to_string();
    let mut response = (status, [("content-type", "application/json")], body).into_response();
    if let Some(kind) = kind.and_then(|k| k.parse().ok()) {
        response.headers_mut().insert("x-amzn-errortype", kind);
    }
    response
}

fn gone(id: &str) -> Response {
    error(
        StatusCode::GONE,
        Some("GoneException"),
        &format!("connection {id} is gone"),
    )
}

fn handle(
    gateway: &Gateway,
    stage: &str,
    id: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if stage != gateway.settings.stage {
        return error(StatusCode::FORBIDDEN, None, "Forbidden");
    }
    if let Some(expected) = &gateway.settings.aws.signing {
        let request = sigv4::Request {
            service: "execute-api",
            method: method.as_str(),
            raw_path: uri.path(),
            raw_query: uri.query().unwrap_or(""),
            headers,
            body: &body,
        };
        if let Err(refusal) = sigv4::verify(expected, &request, SystemTime::now()) {
            tracing::warn!(connection = id, refusal = ?refusal, "@connections request refused: its signature does not check with the local credentials");
            let kind = match refusal {
                sigv4::Refusal::Missing => "MissingAuthenticationTokenException",
                sigv4::Refusal::UnknownCredentials => "UnrecognizedClientException",
                _ => "InvalidSignatureException",
            };
            return error(StatusCode::FORBIDDEN, Some(kind), &refusal.message());
        }
    }
    if !gateway.take_push_token() {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            Some("LimitExceededException"),
            "Rate exceeded",
        );
    }
    let connections = &gateway.connections;
    match *method {
        Method::POST => {
            if body.len() > MAX_POST_BYTES {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Some("PayloadTooLargeException"),
                    &format!(
                        "Message too long: {} bytes; the limit is {MAX_POST_BYTES}",
                        body.len()
                    ),
                );
            }
            let outbound = match String::from_utf8(body.to_vec()) {
                Ok(text) => Outbound::Text(text),
                Err(bytes) => Outbound::Binary(bytes.into_bytes()),
            };
            if connections.send(id, outbound) {
                StatusCode::OK.into_response()
            } else {
                gone(id)
            }
        }
        Method::GET => match connections.info(id) {
            Some(info) => {
                let mut identity = json!({ "sourceIp": info.client.source_ip });
                if let Some(agent) = &info.client.user_agent {
                    identity["userAgent"] = json!(agent);
                }
                let body = json!({
                    "connectedAt": iso8601(info.client.connected_at),
                    "lastActiveAt": iso8601(info.last_active),
                    "identity": identity,
                });
                ([("content-type", "application/json")], body.to_string()).into_response()
            }
            None => gone(id),
        },
        Method::DELETE => {
            if connections.send(id, Outbound::Close) {
                StatusCode::NO_CONTENT.into_response()
            } else {
                gone(id)
            }
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

/// `2026-11-24T10:15:42.512Z`, as `@connections` reports times.
fn iso8601(epoch_millis: i64) -> String {
    let t = civil(epoch_millis);
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        epoch_millis.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_iso_8601() {
        assert_eq!(
            super::iso8601(1_795_860_942_512),
            "2026-11-28T10:15:42.512Z"
        );
    }
}
