//! The server API's function URL (`POST /api`), as Lambda serves one: the request becomes a
//! function URL event (payload 2.0: lower-case headers, the body as text or base64, the method
//! and source address in `requestContext.http`), the `api` function is invoked with it, and its
//! answer (`statusCode`, `headers`, `body`) is the HTTP response. Like a function URL with
//! `AuthType: NONE`, nothing is checked here: the function checks the request's signature.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::Gateway;

/// The largest request body a function URL takes (6 MB, Lambda's synchronous payload).
const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// `/api`
pub async fn api(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if body.len() > MAX_BODY_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request must be smaller than 6291456 bytes",
        )
            .into_response();
    }
    let mut lowered = Map::new();
    for (name, value) in &headers {
        if let Ok(value) = value.to_str() {
            lowered.insert(name.as_str().to_ascii_lowercase(), json!(value));
        }
    }
    let (body, base64) = match std::str::from_utf8(&body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (aws_smithy_types::base64::encode(&body), true),
    };
    let event = json!({
        "version": "2.0",
        "rawPath": "/api",
        "rawQueryString": "",
        "headers": lowered,
        "body": body,
        "isBase64Encoded": base64,
        "requestContext": {
            "http": {"method": method.as_str(), "path": "/api", "sourceIp": peer.ip().to_string()},
            "requestId": format!("{:x}", rand_id()),
        },
    });
    let function = &gateway.settings.api_function;
    match gateway.invoker.invoke(function, &event).await {
        Ok(answer) => {
            let status = answer["statusCode"]
                .as_u64()
                .and_then(|s| StatusCode::from_u16(s as u16).ok())
                .unwrap_or(StatusCode::OK);
            let body = match &answer["body"] {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (status, [("content-type", "application/json")], body).into_response()
        }
        Err(e) => {
            tracing::warn!(function, error = %e, "the server API function failed");
            (
                StatusCode::BAD_GATEWAY,
                json!({"message": "Internal Server Error"}).to_string(),
            )
                .into_response()
        }
    }
}

/// A request id no two requests of this process share.
fn rand_id() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    nanos ^ u128::from(COUNT.fetch_add(1, Ordering::Relaxed))
}
