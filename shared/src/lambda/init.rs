//! Building the real [`Gateway`] — DynamoDB and the Management API — once per process; and for
//! `$connect`, reading the token keys from Secrets Manager ([`crate::auth::token_keys`]).

use aws_config::{BehaviorVersion, SdkConfig};
use serde_json::Value;

use crate::auth::token_keys::TokenKeys;
use crate::aws::secrets_manager::SecretsManager;
use crate::config::Config;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::lambda::on_open::Opener;
use crate::push::{ManagementApi, PushLimits};
use crate::spread::Spreader;
use crate::store::dynamodb::DynamoStore;

/// The gateway the functions run on.
pub type AwsGateway = Gateway<DynamoStore, ManagementApi>;

/// Reads the configuration and the AWS settings from the environment and builds the gateway.
/// Meant for a function's init; fails fast, naming what is wrong.
pub async fn gateway_from_env() -> Result<AwsGateway, Error> {
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let gateway = gateway(config, &sdk);
    gateway.warm_up();
    Ok(gateway)
}

/// What the `$connect` function runs on: the gateway, and where its token keys come from when
/// they live in Secrets Manager (`AUTH_SECRET_ARN`).
pub struct ConnectGateway {
    /// The gateway, with the `on_open` caller when one is configured.
    pub gateway: AwsGateway,
    /// The secret the token keys were read from, to read again after a rotation; `None`
    /// without `AUTH_SECRET_ARN`.
    pub keys: Option<TokenKeys>,
}

impl ConnectGateway {
    /// Before an event is handled: when its token (`?token=`) names a key this environment has
    /// not read — the secret was rotated since — reads the secret again (at most once every
    /// [`crate::auth::token_keys::REREAD_INTERVAL`]), so that a rotation needs no redeploy.
    pub async fn refresh_keys_for(&self, event: &Value) {
        let (Some(keys), Some(verifier)) = (&self.keys, &self.gateway.verifier) else {
            return;
        };
        if let Some(token) = event["queryStringParameters"]["token"].as_str() {
            keys.refresh_for(verifier, token).await;
        }
    }
}

/// [`gateway_from_env`] for `$connect`, which refuses to start without token keys unless
/// `ALLOW_ANONYMOUS=true` says this is development. With `AUTH_SECRET_ARN`, the keys are read
/// from Secrets Manager here, once per execution environment: a secret that cannot be read, or
/// that does not hold keys, stops the init with the reason. `opens`: the application runs
/// `on_open` ([`crate::app::Events::ON_OPEN`]), so `$connect` asks for it.
pub async fn connect_gateway_from_env(opens: bool) -> Result<ConnectGateway, Error> {
    let config = Config::from_env()?;
    config.require_secret()?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let mut gateway = gateway(config, &sdk);
    // The invoker only for an application with on_open: the others pay nothing for it.
    if let Some(function) = gateway.config.on_open_function.as_ref().filter(|_| opens) {
        let endpoint = gateway.config.lambda_endpoint.as_deref();
        gateway.opener = Some(Opener::from_sdk(&sdk, endpoint, function));
    }
    // The connections to DynamoDB and @connections open while the keys are read.
    gateway.warm_up();
    let keys = match (&gateway.config.auth_secret_arn, &gateway.verifier) {
        (Some(arn), Some(verifier)) => {
            let endpoint = gateway.config.secrets_manager_endpoint.as_deref();
            let keys = TokenKeys::new(SecretsManager::from_sdk(&sdk, endpoint), arn);
            let kids = keys.load(verifier).await?;
            tracing::info!(secret = %arn, ?kids, "token keys read");
            Some(keys)
        }
        _ => None,
    };
    Ok(ConnectGateway { gateway, keys })
}

/// The gateway over `sdk`'s credentials and region, with the configuration's endpoint overrides.
pub fn gateway(config: Config, sdk: &SdkConfig) -> AwsGateway {
    // Four attempts with short backoffs: a throttled or failed request is retried within the
    // budget, then reported (an `internal` frame, a 500 at $connect).
    let retry = aws_smithy_types::retry::RetryConfig::standard()
        .with_max_attempts(4)
        .with_initial_backoff(std::time::Duration::from_millis(50));
    let timeouts = aws_smithy_types::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(1))
        .operation_attempt_timeout(config.dynamodb_timeout / 3)
        .operation_timeout(config.dynamodb_timeout)
        .build();
    let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk)
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(endpoint) = &config.dynamodb_endpoint {
        dynamodb = dynamodb.endpoint_url(endpoint);
    }
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
        &config.table_name,
    )
    .with_read_concurrency(config.read_concurrency);
    let push = ManagementApi::new(sdk, PushLimits::new(config.push_timeout));
    let spreader = Spreader::from_config(&config, sdk);
    let mut gateway = Gateway::new(config, store, push);
    gateway.spreader = spreader;
    gateway
}

impl AwsGateway {
    /// Opens the connections to DynamoDB and the management endpoint in the background, so the
    /// first event after a cold start does not pay for the TLS handshakes, while init itself
    /// stays short.
    pub fn warm_up(&self) {
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.check_table().await {
                tracing::warn!(
                    table = store.table(),
                    error = %e,
                    "the connections table could not be read at init; check TABLE_NAME and the function's permissions",
                );
            }
        });
        if let Some(endpoint) = self.config.management_endpoint.clone() {
            tokio::spawn(self.push.warm(&endpoint));
        }
    }
}
