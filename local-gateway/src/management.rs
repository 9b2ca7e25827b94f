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
use crate::events::request_time;
use crate::Gateway;

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

/// `2026-11-24T10:15:42.512Z`, from `24/Nov/2026:10:15:42 +0000`.
fn iso8601(epoch_millis: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = request_time(epoch_millis);
    let (date, time) = text.split_once(':').unwrap_or((&text, ""));
    let mut parts = date.split('/');
    let (day, month, year) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let month = MONTHS.iter().position(|m| *m == month).map_or(1, |i| i + 1);
    let time = time.split(' ').next().unwrap_or("");
    format!(
        "{year}-{month:02}-{day}T{time}.{:03}Z",
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
