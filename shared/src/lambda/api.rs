//! The server API's function ([`crate::server_api`]): one function, two doors. An Invoke carries
//! the request itself (IAM decided who may call); a function URL request carries it as its body,
//! signed ([`crate::server_api::signature`]), and is answered as HTTP.

use serde_json::{json, Value};

use crate::error::Error;
use crate::gateway::Gateway;
use crate::lambda::init;
use crate::push::Push;
use crate::server_api::{self, signature};
use crate::store::{now_secs, Store};

/// The server API's secret: `API_SECRET` (local runs and tests), else the text (or the JSON
/// `secret` field) of the Secrets Manager secret `API_SECRET_ARN` names, read at init.
pub async fn secret_from_env(sdk: &aws_config::SdkConfig) -> Result<Option<Vec<u8>>, Error> {
    if let Some(secret) = std::env::var("API_SECRET").ok().filter(|s| !s.is_empty()) {
        return Ok(Some(secret.into_bytes()));
    }
    let Some(arn) = std::env::var("API_SECRET_ARN")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let endpoint = std::env::var("SECRETS_MANAGER_ENDPOINT").ok();
    let client = crate::aws::secrets_manager::SecretsManager::from_sdk(sdk, endpoint.as_deref());
    let text = client
        .secret_string(&arn)
        .await
        .map_err(|e| Error::Keys(crate::auth::token_keys::KeysError::Read(e)))?;
    let secret = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(fields)) => fields
            .get("secret")
            .and_then(Value::as_str)
            .map_or(text.clone(), str::to_owned),
        _ => text,
    };
    Ok(Some(secret.into_bytes()))
}

/// Whether `payload` is a function URL's request (rather than an Invoke's own request).
fn is_url_request(payload: &Value) -> bool {
    payload["requestContext"]["http"].is_object()
}

fn http(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
    })
}

fn refused(status: u16, code: &str, message: &str) -> Value {
    http(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// Handles one event of either door.
#[tracing::instrument(name = "request", skip_all, fields(route = "server_api", door = if is_url_request(&payload) { "url" } else { "invoke" }))]
pub async fn handle<S: Store, P: Push>(
    gateway: &Gateway<S, P>,
    secret: Option<&[u8]>,
    payload: Value,
) -> Value {
    if !is_url_request(&payload) {
        let body = payload.to_string();
        return match server_api::parse(body.as_bytes()) {
            Ok(request) => {
                let calls = request.calls.len();
                let answer = server_api::run(gateway, request).await;
                tracing::info!(calls, outcome = "ok", "server API request");
                answer
            }
            Err(refusal) => {
                tracing::info!(outcome = "bad_request", reason = %refusal, "server API request refused");
                refusal.body()
            }
        };
    }
    if payload["requestContext"]["http"]["method"] != "POST" {
        return refused(405, "method_not_allowed", "POST a request of calls");
    }
    let body = match (
        payload["body"].as_str(),
        payload["isBase64Encoded"].as_bool(),
    ) {
        (Some(text), Some(true)) => match aws_smithy_types::base64::decode(text) {
            Ok(bytes) => bytes,
            Err(_) => return refused(400, "bad_request", "the body is not valid base64"),
        },
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, _) => Vec::new(),
    };
    let Some(secret) = secret else {
        tracing::error!(
            outcome = "failed",
            "the server API has no secret: set API_SECRET_ARN (the template does)"
        );
        return refused(500, "internal", "the server API is misconfigured");
    };
    let header = payload["headers"][signature::HEADER].as_str();
    let now = now_secs();
    let signed = match signature::verify(secret, header, &body, now) {
        Ok(signed) => signed,
        Err(refusal) => {
            tracing::info!(outcome = "unauthorized", reason = %refusal, "server API request refused");
            return refused(401, "unauthorized", &refusal.to_string());
        }
    };
    let request = match server_api::parse(&body) {
        Ok(request) => request,
        Err(refusal) => {
            tracing::info!(outcome = "bad_request", reason = %refusal, "server API request refused");
            return http(400, &refusal.body());
        }
    };
    let expires_at = now + 2 * signature::TOLERANCE_SECONDS;
    match gateway.store.remember_signature(&signed, expires_at).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(
                outcome = "unauthorized",
                reason = "replayed",
                "server API request refused"
            );
            return refused(
                401,
                "unauthorized",
                "this signature was used before: sign each request anew",
            );
        }
        Err(e) => {
            tracing::error!(outcome = "failed", error = %e, "the request's signature could not be recorded");
            return refused(503, "unavailable", "the store failed; try again");
        }
    }
    let calls = request.calls.len();
    let answer = server_api::run(gateway, request).await;
    tracing::info!(calls, outcome = "ok", "server API request");
    http(200, &answer)
}

/// The server API function's `main`: the gateway and the secret at init, then every event.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = crate::config::Config::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let gateway = init::gateway(config, &sdk);
    gateway.warm_up();
    let secret = secret_from_env(&sdk).await?;
    let (gateway, secret) = (&gateway, secret.as_deref());
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            Ok::<_, Error>(Box::pin(handle(gateway, secret, event.payload)).await)
        },
    ))
    .await
}
