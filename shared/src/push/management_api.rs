//! The one [`Push`]: `PostToConnection` and `GetConnection` signed by hand over one pooled
//! HTTP/1.1 client, `DeleteConnection` through the SDK (see the module above for why).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_apigatewaymanagement::error::DisplayErrorContext;
use aws_sdk_apigatewaymanagement::operation::delete_connection::DeleteConnectionError;
use aws_sdk_apigatewaymanagement::{config, Client};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::aws::sigv4::{encode_segment, Identity, Signer};

use super::{Delivery, Push, PushError, PushFailure, PushLimits};
use aws_sdk_apigatewaymanagement::error::SdkError;

/// The pooled HTTP/1.1 client of the pushes (and, in its own instance, of the reads of the
/// token keys from Secrets Manager).
pub(crate) type Http =
    hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Credentials, and when they expire (never, for static ones).
type Expiring = (Identity, Option<SystemTime>);

/// Credentials are fetched again this long before they expire.
const CREDENTIALS_REFRESH: Duration = Duration::from_secs(5 * 60);

/// The Management API client, built once and reused: one pooled HTTP client and signer for the
/// pushes, and one SDK client per endpoint for closing connections.
/// Cloning it is cheap and shares everything.
#[derive(Clone)]
pub struct ManagementApi {
    sdk: SdkConfig,
    limits: PushLimits,
    clients: Arc<Mutex<HashMap<String, Client>>>,
    http: Arc<OnceLock<Http>>,
    signer: Arc<Signer>,
    identity: Arc<Mutex<Option<Expiring>>>,
    refreshing: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for ManagementApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementApi")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What one attempt of a signed request came back with.
enum Answer {
    Status(http::StatusCode, Bytes),
    /// No answer: the connection failed or the attempt timed out.
    Lost(String),
}

impl ManagementApi {
    /// A client with `sdk`'s region and credentials.
    pub fn new(sdk: &SdkConfig, limits: PushLimits) -> Self {
        let region = sdk.region().map_or("us-east-1", |r| r.as_ref());
        ManagementApi {
            sdk: sdk.clone(),
            limits,
            clients: Arc::default(),
            http: Arc::default(),
            signer: Arc::new(Signer::new(region)),
            identity: Arc::default(),
            refreshing: Arc::default(),
        }
    }

    /// The pushes' HTTP client, built on first use: reading the system's CA certificates takes
    /// a few milliseconds that a function's init should not wait for (the warm-up, started at
    /// init, builds it in the background).
    fn http(&self) -> &Http {
        self.http
            .get_or_init(|| http_client(self.limits.connect_timeout))
    }

    fn cached_identity(&self) -> Option<Identity> {
        let cached = self.identity.lock().unwrap_or_else(|p| p.into_inner());
        match cached.as_ref() {
            Some((identity, expiry))
                if expiry.is_none_or(|e| e > SystemTime::now() + CREDENTIALS_REFRESH) =>
            {
                Some(identity.clone())
            }
            _ => None,
        }
    }

    /// The credentials to sign with, fetched once and again shortly before they expire.
    async fn identity(&self) -> Result<Identity, String> {
        if let Some(identity) = self.cached_identity() {
            return Ok(identity);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        if let Some(identity) = self.cached_identity() {
            return Ok(identity);
        }
        let provider = self
            .sdk
            .credentials_provider()
            .ok_or("no AWS credentials are configured")?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("no AWS credentials: {}", DisplayErrorContext(&e)))?;
        let identity = Identity {
            access_key_id: credentials.access_key_id().to_owned(),
            secret_access_key: credentials.secret_access_key().to_owned(),
            session_token: credentials.session_token().map(str::to_owned),
        };
        *self.identity.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((identity.clone(), credentials.expiry()));
        Ok(identity)
    }

    /// One signed attempt at `{endpoint}/@connections/{id}`.
    async fn attempt(
        &self,
        method: http::Method,
        endpoint: &str,
        connection_id: &str,
        body: &Bytes,
    ) -> Result<Answer, String> {
        let uri: http::Uri = format!("{endpoint}/@connections/{}", encode_segment(connection_id))
            .parse()
            .map_err(|e| format!("the management endpoint {endpoint:?} is not a URL: {e}"))?;
        let host = uri
            .authority()
            .ok_or_else(|| format!("the management endpoint {endpoint:?} names no host"))?
            .as_str()
            .to_owned();
        let identity = self.identity().await?;
        let signature = self.signer.sign(
            &identity,
            method.as_str(),
            &host,
            uri.path(),
            body,
            SystemTime::now(),
        );
        let mut request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", signature.authorization)
            .header("x-amz-date", signature.amz_date)
            .header("content-type", "application/octet-stream");
        if let Some(token) = signature.security_token {
            request = request.header("x-amz-security-token", token);
        }
        let request = request
            .body(Full::new(body.clone()))
            .map_err(|e| format!("could not build the request: {e}"))?;
        Ok(
            match exchange(self.http(), request, self.limits.attempt_timeout).await {
                Ok((status, _, body)) => Answer::Status(status, body),
                Err(lost) => Answer::Lost(lost),
            },
        )
    }

    /// A signed request, retried with backoff while the failure may pass.
    async fn request(
        &self,
        method: http::Method,
        endpoint: &str,
        connection_id: &str,
        body: Bytes,
    ) -> Result<Delivery, (PushFailure, String)> {
        let mut last = (PushFailure::Unavailable, String::new());
        for attempt in 1..=self.limits.max_attempts {
            if attempt > 1 {
                tokio::time::sleep(backoff(self.limits.initial_backoff, attempt, connection_id))
                    .await;
            }
            let answer = self
                .attempt(method.clone(), endpoint, connection_id, &body)
                .await
                .map_err(|why| (PushFailure::Misconfigured, why))?;
            match answer {
                Answer::Status(status, _) if status.is_success() => return Ok(Delivery::Delivered),
                Answer::Status(http::StatusCode::GONE, _) => return Ok(Delivery::Gone),
                Answer::Status(status, body)
                    if status == http::StatusCode::TOO_MANY_REQUESTS
                        || status.is_server_error() =>
                {
                    last = (PushFailure::of_status(status), describe(status, &body));
                }
                Answer::Status(status, body) => {
                    return Err((PushFailure::of_status(status), describe(status, &body)))
                }
                Answer::Lost(why) => last = (PushFailure::Unavailable, why),
            }
        }
        let (failure, why) = last;
        Err((
            failure,
            format!("{why} (after {} attempts)", self.limits.max_attempts),
        ))
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

    /// Opens the HTTPS connection the pushes use, and fetches the credentials, ahead of the first
    /// push, by asking about a connection that does not exist. The answer (410, or 403 without
    /// the rights) does not matter.
    pub fn warm(&self, endpoint: &str) -> impl Future<Output = ()> + Send + use<> {
        let (api, endpoint) = (self.clone(), endpoint.to_owned());
        async move {
            let started = std::time::Instant::now();
            // Reading the CA certificates is blocking file I/O: off the async workers, which the
            // runtime needs to poll for the first event.
            let builder = api.clone();
            let _ = tokio::task::spawn_blocking(move || {
                builder.http();
            })
            .await;
            let answer = api
                .attempt(http::Method::GET, &endpoint, "warm-up", &Bytes::new())
                .await;
            tracing::debug!(
                endpoint,
                elapsed_ms = started.elapsed().as_millis() as u64,
                answered = matches!(answer, Ok(Answer::Status(..))),
                "management endpoint warmed"
            );
        }
    }
}

impl ManagementApi {
    /// One request with its retries, within the push's whole budget.
    async fn bounded(
        &self,
        method: http::Method,
        endpoint: &str,
        connection_id: &str,
        body: Bytes,
    ) -> Result<Delivery, PushError> {
        let request = self.request(method, endpoint, connection_id, body);
        let outcome = match tokio::time::timeout(self.limits.operation_timeout, request).await {
            Ok(outcome) => outcome,
            Err(_) => Err((
                PushFailure::TimedOut,
                format!("no answer within {:?}", self.limits.operation_timeout),
            )),
        };
        outcome.map_err(|(failure, message)| PushError {
            connection_id: connection_id.to_owned(),
            failure,
            message,
        })
    }
}

impl Push for ManagementApi {
    async fn post(
        &self,
        endpoint: &str,
        connection_id: &str,
        data: &str,
    ) -> Result<Delivery, PushError> {
        let body = Bytes::copy_from_slice(data.as_bytes());
        self.bounded(http::Method::POST, endpoint, connection_id, body)
            .await
    }

    async fn probe(&self, endpoint: &str, connection_id: &str) -> Result<Delivery, PushError> {
        self.bounded(http::Method::GET, endpoint, connection_id, Bytes::new())
            .await
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
                failure: match &e {
                    SdkError::TimeoutError(_) => PushFailure::TimedOut,
                    SdkError::DispatchFailure(_) => PushFailure::Unavailable,
                    _ => e
                        .raw_response()
                        .and_then(|r| http::StatusCode::from_u16(r.status().as_u16()).ok())
                        .map_or(PushFailure::Unavailable, PushFailure::of_status),
                },
                message: DisplayErrorContext(&e).to_string(),
            }),
        }
    }
}

/// One pooled HTTP/1.1 client, HTTPS through rustls with the system's roots.
pub(crate) fn http_client(connect_timeout: Duration) -> Http {
    let mut connector = HttpConnector::new();
    connector.enforce_http(false);
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    let https = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(builder) => builder,
        Err(e) => {
            tracing::error!(
                error = %e,
                "no CA certificates found on this system: pushes over HTTPS will fail",
            );
            let empty = rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(empty)
        }
    }
    .https_or_http()
    .enable_http1()
    .wrap_connector(connector);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(https)
}

/// One request through `http`, bounded by `timeout`: its status, headers and whole body, or why
/// there was no answer (the connection failed, the body broke off, the time ran out). What the
/// pushes, the signed AWS calls and the event forwarding share.
pub(crate) async fn exchange(
    http: &Http,
    request: http::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(http::StatusCode, http::HeaderMap, Bytes), String> {
    let exchange = async {
        let response = http.request(request).await.map_err(|e| {
            use std::error::Error as _;
            match e.source() {
                Some(source) => format!("{e}: {source}"),
                None => e.to_string(),
            }
        })?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("the answer broke off: {e}"))?
            .to_bytes();
        Ok((parts.status, parts.headers, body))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Exponential backoff from `initial`, spread over [½, 1] of it by the connection id, so that a
/// fan-out throttled at once does not come back at once.
fn backoff(initial: Duration, attempt: u32, connection_id: &str) -> Duration {
    let ceiling = initial * 2u32.saturating_pow(attempt.saturating_sub(2));
    let spread = connection_id.bytes().fold(attempt, |h, b| {
        h.wrapping_mul(31).wrapping_add(u32::from(b))
    }) % 1024;
    ceiling / 2 + ceiling / 2 * spread / 1024
}

fn describe(status: http::StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    format!("HTTP {status}: {}", text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stays_within_its_ceiling() {
        let initial = Duration::from_millis(100);
        for id in ["a=", "b=", "some-longer-connection-id="] {
            let second = backoff(initial, 2, id);
            let third = backoff(initial, 3, id);
            assert!((initial / 2..=initial).contains(&second), "{second:?}");
            assert!((initial..=initial * 2).contains(&third), "{third:?}");
        }
        assert_ne!(backoff(initial, 2, "a="), backoff(initial, 2, "b="));
    }
}
