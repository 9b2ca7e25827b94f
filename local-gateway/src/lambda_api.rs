//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`, SigV4-signed for
//! `lambda` as in AWS), in its two forms:
//! - `X-Amz-Invocation-Type: Event`, which the `$connect` function uses to have `on_open` run
//!   (`shared::lambda::on_open`): answered 202 at once, the function invoked afterwards through the
//!   same invoke endpoint the routes use; a failed invocation is logged and not tried again (the
//!   template sets `MaximumRetryAttempts: 0`);
//! - `RequestResponse` (the default), which a backend uses to call the server API's function
//!   through its Invoke door: answered with the function's own answer.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::invoke::InvokeError;
use crate::sigv4;
use crate::Gateway;

/// The largest payload Lambda takes for an asynchronous invocation (1 MB since October 2025).
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// The largest payload of a synchronous invocation (6 MB).
const MAX_SYNC_BYTES: usize = 6 * 1024 * 1024;

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({ "Type": "User", "message": message }).to_string();
    let mut response = (status, [("content-type", "application/json")], body).into_response();
    if let Ok(kind) = kind.parse() {
        response.headers_mut().insert("x-amzn-errortype", kind);
    }
    response
}

/// The function's name, from a name, `name:qualifier`, or a full or partial ARN.
fn function_name(given: &str) -> &str {
    let name = match given.rsplit_once(":function:") {
        Some((_, rest)) => rest,
        None => given,
    };
    name.split(':').next().unwrap_or(name)
}

/// `POST /2015-03-31/functions/{name}/invocations`
pub async fn invocations(
    State(gateway): State<Arc<Gateway>>,
    Path(function): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(expected) = &gateway.settings.aws.signing {
        let request = sigv4::Request {
            service: "lambda",
            method: "POST",
            raw_path: uri.path(),
            raw_query: uri.query().unwrap_or(""),
            headers: &headers,
            body: &body,
        };
        if let Err(refusal) = sigv4::verify(expected, &request, SystemTime::now()) {
            tracing::warn!(function, refusal = ?refusal, "Invoke refused: its signature does not check with the local credentials");
            return error(
                StatusCode::FORBIDDEN,
                "InvalidSignatureException",
                &refusal.message(),
            );
        }
    }
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    if kind != "Event" && kind != "RequestResponse" {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!("the local gateway serves Event and RequestResponse invocations, not {kind}"),
        );
    }
    let limit = if kind == "Event" {
        MAX_EVENT_BYTES
    } else {
        MAX_SYNC_BYTES
    };
    if body.len() > limit {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &format!("{} bytes; the limit is {limit}", body.len()),
        );
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json",
        );
    };
    let function = function_name(&function).to_owned();
    if kind == "RequestResponse" {
        // Answered with the function's own answer, as Lambda does: 200, and a function's error
        // named in X-Amz-Function-Error.
        return match gateway.invoker.invoke(&function, &event).await {
            Ok(answer) => (
                StatusCode::OK,
                [("content-type", "application/json")],
                answer.to_string(),
            )
                .into_response(),
            Err(InvokeError::Function { message, .. }) => (
                StatusCode::OK,
                [("x-amz-function-error", "Unhandled")],
                message,
            )
                .into_response(),
            Err(e) => error(StatusCode::BAD_GATEWAY, "ServiceException", &e.to_string()),
        };
    }
    tracing::info!(function, "asynchronous invocation queued");
    tokio::spawn(async move {
        if let Err(e) = gateway.invoker.invoke(&function, &event).await {
            tracing::warn!(function, error = %e, "asynchronous invocation failed; not retried (MaximumRetryAttempts: 0)");
        }
    });
    StatusCode::ACCEPTED.into_response()
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn a_function_is_named_by_name_qualified_name_or_arn() {
        for given in [
            "ws-message",
            "ws-message:live",
            "arn:aws:lambda:us-east-1:123456789012:function:ws-message",
            "123456789012:function:ws-message:3",
        ] {
            assert_eq!(function_name(given), "ws-message", "{given}");
        }
    }
}
