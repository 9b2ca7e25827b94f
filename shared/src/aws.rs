//! Building the real [`Gateway`] — DynamoDB and the Management API — once per process.

use aws_config::{BehaviorVersion, SdkConfig};

use crate::config::Config;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::push::{ManagementApi, PushLimits};
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

/// [`gateway_from_env`] for `$connect`, which refuses to start without `AUTH_SECRET` unless
/// `ALLOW_ANONYMOUS=true` says this is development.
pub async fn connect_gateway_from_env() -> Result<AwsGateway, Error> {
    let gateway = gateway_from_env().await?;
    gateway.config.require_secret()?;
    Ok(gateway)
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
    .with_read_concurrency(config.read_concurrency)
    .with_rate_window(match config.rate_limit {
        0 => 0,
        _ => config.rate_window.as_secs().max(1),
    });
    let push = ManagementApi::new(sdk, PushLimits::new(config.push_timeout));
    Gateway::new(config, store, push)
}

impl AwsGateway {
    /// Opens the connections to DynamoDB and the management endpoint in the background, so the
    /// first event after a cold start does not pay for the TLS handshakes, while init itself
    /// stays short.
    pub fn warm_up(&self) {
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.check_table().await {
                tracing::warn!(table = store.table(), error = %e, "the connections table could not be read at init; check TABLE_NAME and the function's permissions");
            }
        });
        if let Some(endpoint) = self.config.management_endpoint.clone() {
            tokio::spawn(self.push.warm(&endpoint));
        }
    }
}
