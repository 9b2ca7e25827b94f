//! The `@connections` management API, as API Gateway serves it: POST sends to a client, GET
//! describes it, DELETE closes it. An unknown id is answered 410 with a `GoneException`, which the
//! AWS SDK turns into its typed error. Signatures are accepted unchecked.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::connections::Outbound;
use crate::Gateway;
use shared::civil::civil;

/// `/@connections/{id}`
pub async fn connection(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    method: Method,
    body: Bytes,
) -> Response {
    handle(&gateway, &id, method, body)
}

/// `/{stage}/@connections/{id}`
pub async fn staged_connection(
    State(gateway): State<Arc<Gateway>>,
    Path((_stage, id)): Path<(String, String)>,
    method: Method,
    body: Bytes,
) -> Response {
    handle(&gateway, &id, method, body)
}

fn gone(id: &str) -> Response {
    let body = json!({ "message": format!("connection {id} is gone") }).to_string();
    (
        StatusCode::GONE,
        [
            ("x-amzn-errortype", "GoneException"),
            ("content-type", "application/json"),
        ],
        body,
    )
        .into_response()
}

fn handle(gateway: &Gateway, id: &str, method: Method, body: Bytes) -> Response {
    let connections = &gateway.connections;
    let response = match method {
        Method::POST => {
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
    };
    tracing::info!(method = %method, connection = id, status = response.status().as_u16(), "@connections");
    response
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
