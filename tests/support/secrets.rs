//! One local Secrets Manager per test binary, on a free loopback port: moto's server, where the
//! local stack puts the token keys its functions read (`AUTH_SECRET_ARN`), as the template's
//! `TokenSecret` holds them in AWS.
//!
//! Started on first use through the same kind of shell watchdog as moto for DynamoDB: when the
//! test process exits, however it exits, the pipe closes and the watchdog stops the server.
//! `moto_server` comes from `.tools/venv/bin` (what `make test` installs) or PATH.

use std::path::PathBuf;
use std::process::Child;
use std::sync::OnceLock;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use serde_json::{json, Value};
use shared::aws::secrets_manager::SecretsManager;

use crate::dynamodb::spawn_moto;

struct Server {
    endpoint: String,
    _watchdog: Child,
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// The region the secrets are made in, and the functions read them from.
pub const REGION: &str = "us-east-1";

/// The endpoint of this test binary's local Secrets Manager, started on first use.
pub fn endpoint() -> &'static str {
    &SERVER.get_or_init(start).endpoint
}

fn program() -> String {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/moto_server");
    if venv.exists() {
        venv.to_string_lossy().into_owned()
    } else {
        "moto_server".to_owned()
    }
}

fn start() -> Server {
    let (endpoint, watchdog) = spawn_moto(&program(), "moto-secrets");
    Server {
        endpoint,
        _watchdog: watchdog,
    }
}

/// A client of the local Secrets Manager, signing with the stack's test credentials.
pub async fn client(access_key_id: &str, secret_access_key: &str) -> SecretsManager {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "tests",
        ))
        .load()
        .await;
    SecretsManager::from_sdk(&sdk, Some(endpoint()))
}

/// The secret's JSON text for one key, `kid` and `secret`: what the template generates.
pub fn one_key(kid: &str, secret: &str) -> Value {
    json!({"kid": kid, "secret": secret})
}

/// Creates the secret `name` holding `keys` (JSON); its ARN.
pub async fn create(secrets: &SecretsManager, name: &str, keys: &Value) -> String {
    let answer = secrets
        .call(
            "CreateSecret",
            name,
            &json!({"Name": name, "SecretString": keys.to_string()}),
        )
        .await
        .unwrap_or_else(|e| panic!("create the secret {name}: {e}"));
    answer["ARN"]
        .as_str()
        .unwrap_or_else(|| panic!("CreateSecret answered no ARN: {answer}"))
        .to_owned()
}

/// Puts a new current version of the secret `arn`: what a rotation does.
pub async fn put(secrets: &SecretsManager, arn: &str, keys: &Value) {
    secrets
        .call(
            "PutSecretValue",
            arn,
            &json!({"SecretId": arn, "SecretString": keys.to_string()}),
        )
        .await
        .unwrap_or_else(|e| panic!("put a new value of {arn}: {e}"));
}
