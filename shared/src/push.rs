//! Pushes to connected clients through the API Gateway Management API (`@connections`).
//!
//! [`Push`] is the seam; [`ManagementApi`] is the one implementation, over
//! `aws-sdk-apigatewaymanagement`. A 410 Gone is an answer, not a failure: the client has left,
//! and the caller removes its records. Everything else is retried by the SDK with backoff inside
//! explicit timeouts (a push must never hang a fan-out), then reported.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_apigatewaymanagement::error::DisplayErrorContext;
use aws_sdk_apigatewaymanagement::operation::delete_connection::DeleteConnectionError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::{config, Client};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use thiserror::Error;

/// What became of a push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// API Gateway answered 410: the connection no longer exists.
    Gone,
}

/// A push that failed after its retries.
#[derive(Debug, Error)]
#[error("push to {connection_id} failed: {message}")]
pub struct PushError {
    pub connection_id: String,
    pub message: String,
}

/// Sends to and closes connections at a management endpoint.
pub trait Push: Send + Sync {
    /// Sends `data` as one text frame to the connection.
    fn post(
        &self,
        endpoint: &str,
        connection_id: &str,
        data: &str,
    ) -> impl Future<Output = Result<Delivery, PushError>> + Send;

    /// Closes the connection (API Gateway then sends `$disconnect`).
    fn close(
        &self,
        endpoint: &str,
        connection_id: &str,
    ) -> impl Future<Output = Result<Delivery, PushError>> + Send;
}

/// Timeouts and retries of every push.
#[derive(Clone, Copy, Debug)]
pub struct PushLimits {
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
    /// The whole budget of one push, retries included.
    pub operation_timeout: Duration,
    pub max_attempts: u32,
    /// The first retry's backoff ceiling (the SDK's default, 1 s, is long for a fan-out).
    pub initial_backoff: Duration,
}

impl PushLimits {
    pub fn new(operation_timeout: Duration) -> Self {
        PushLimits {
            connect_timeout: Duration::from_secs(1),
            attempt_timeout: operation_timeout.min(Duration::from_secs(2)),
            operation_timeout,
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
        }
    }
}

/// The Management API client, one SDK client per endpoint, built once and reused; all of them
/// share the SDK configuration's HTTP connection pool.
#[derive(Debug)]
pub struct ManagementApi {
    sdk: SdkConfig,
    limits: PushLimits,
    clients: Mutex<HashMap<String, Client>>,
}

impl ManagementApi {
    pub fn new(sdk: &SdkConfig, limits: PushLimits) -> Self {
        ManagementApi {
            sdk: sdk.clone(),
            limits,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, endpoint: &str) -> Client {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        clients
            .entry(endpoint.to_owned())
            .or_insert_with(|| {
                let limits = self.limits;
                let config = config::Builder::from(&self.sdk)
                    .endpoint_url(endpoint)
                    .timeout_config(
                        TimeoutConfig::builder()
                            .connect_timeout(limits.connect_timeout)
                            .operation_attempt_timeout(limits.attempt_timeout)
                            .operation_timeout(limits.operation_timeout)
                            .build(),
                    )
                    .retry_config(
                        RetryConfig::standard()
                            .with_max_attempts(limits.max_attempts)
                            .with_initial_backoff(limits.initial_backoff),
                    )
                    .build();
                Client::from_conf(config)
            })
            .clone()
    }

    /// Opens the HTTPS connection to `endpoint` ahead of the first push, by asking about a
    /// connection that does not exist. The answer (410, or 403 without the rights) is ignored.
    pub fn warm(&self, endpoint: &str) -> impl Future<Output = ()> + Send + use<> {
        let client = self.client(endpoint);
        let endpoint = endpoint.to_owned();
        async move {
            let started = std::time::Instant::now();
            let result = client
                .get_connection()
                .connection_id("warm-up")
                .send()
                .await;
            tracing::debug!(
                endpoint,
                elapsed_ms = started.elapsed().as_millis() as u64,
                answered =
                    result.is_ok() || result.as_ref().is_err_and(|e| e.raw_response().is_some()),
                "management endpoint warmed"
            );
        }
    }
}

impl Push for ManagementApi {
    async fn post(
        &self,
        endpoint: &str,
        connection_id: &str,
        data: &str,
    ) -> Result<Delivery, PushError> {
        let result = self
            .client(endpoint)
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data.as_bytes()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Delivery::Delivered),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PostToConnectionError::GoneException(_))
                ) =>
            {
                Ok(Delivery::Gone)
            }
            Err(e) => Err(PushError {
                connection_id: connection_id.to_owned(),
                message: DisplayErrorContext(&e).to_string(),
            }),
        }
    }

    async fn close(&self, endpoint: &str, connection_id: &str) -> Result<Delivery, PushError> {
        let result = self
            .client(endpoint)
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Delivery::Delivered),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteConnectionError::GoneException(_))
                ) =>
            {
                Ok(Delivery::Gone)
            }
            Err(e) => Err(PushError {
                connection_id: connection_id.to_owned(),
                message: DisplayErrorContext(&e).to_string(),
            }),
        }
    }
}
