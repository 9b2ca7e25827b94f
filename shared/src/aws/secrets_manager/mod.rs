//! Reading a secret from AWS Secrets Manager, without the SDK crate: `GetSecretValue` (and, for
//! local tools and tests, any other action of the same API) signed with [`crate::aws::sigv4`] and sent
//! over the kind of pooled hyper client the pushes use ([`crate::push`]). The SDK crate would add
//! minutes to every build for a call the `$connect` function makes once per execution environment.
//!
//! The protocol is awsJson1.1: `POST /` with `X-Amz-Target: secretsmanager.{Action}` and a JSON
//! body, answered with JSON; a refusal names its cause in `__type`. Failures that may pass
//! (throttling, 5xx, a lost connection, a timeout) are tried again with backoff inside a budget;
//! any other refusal is reported at once, saying what to change. Nothing here logs, and no error
//! carries a secret's value (only its id, and AWS's own words about the refusal).

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use bytes::Bytes;
use serde_json::{json, Value};
use thiserror::Error;

use crate::aws::signed_client::{Answer, SignedClient, Unsent};
use crate::aws::sigv4::Signer;

/// The content type of the awsJson1.1 protocol.
const JSON_1_1: &str = "application/x-amz-json-1.1";

/// The longest part of an AWS answer an error repeats.
const MESSAGE_CHARS: usize = 300;

/// Why a call to Secrets Manager failed, and what to do about it.
#[derive(Debug, Error)]
pub enum SecretError {
    /// No credentials to sign with: none configured, or the provider failed (its words).
    #[error("no AWS credentials to call Secrets Manager with: {0} (Lambda gives a function its role's credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)")]
    NoCredentials(String),
    /// The endpoint does not parse as a URL with a host.
    #[error("{endpoint:?} is not a URL: set SECRETS_MANAGER_ENDPOINT to http(s)://host[:port], or leave it unset to call AWS")]
    BadEndpoint {
        /// The endpoint the calls were to go to.
        endpoint: String,
    },
    /// The HTTP request could not be built, so nothing was sent.
    #[error("{action} for {secret} could not be sent: {why}")]
    Unsendable {
        /// The API action called (`GetSecretValue`, …).
        action: String,
        /// The secret the call was about (its ARN or name).
        secret: String,
        /// Why the request could not be built.
        why: String,
    },
    /// The caller's role may not make this call (`AccessDeniedException`).
    #[error("{action} for {secret} was refused ({code}): the caller's role needs secretsmanager:{action} on it (for the $connect function: its statement on TokenSecret in template.yaml)")]
    AccessDenied {
        /// The API action called (`GetSecretValue`, …).
        action: String,
        /// The secret the call was about (its ARN or name).
        secret: String,
        /// AWS's error code (`__type`, else `x-amzn-errortype`).
        code: String,
    },
    /// No such secret, or it is scheduled for deletion (`ResourceNotFoundException`).
    #[error("{action}: there is no secret {secret} ({code}): AUTH_SECRET_ARN must name an existing secret that is not scheduled for deletion (the stack's TokenSecretArn output)")]
    NotFound {
        /// The API action called (`GetSecretValue`, …).
        action: String,
        /// The secret the call was about (its ARN or name).
        secret: String,
        /// AWS's error code (`__type`, else `x-amzn-errortype`).
        code: String,
    },
    /// The secret's KMS key would not decrypt it for the caller (`DecryptionFailure`).
    #[error("{action} for {secret} could not decrypt it ({code}): the caller's role needs kms:Decrypt on the secret's KMS key")]
    Decryption {
        /// The API action called (`GetSecretValue`, …).
        action: String,
        /// The secret the call was about (its ARN or name).
        secret: String,
        /// AWS's error code (`__type`, else `x-amzn-errortype`).
        code: String,
    },
    /// AWS rejected the signature or the credentials (unknown, expired, or signed with a wrong
    /// clock or region).
    #[error("{action} for {secret}: AWS did not accept the credentials ({code}: {message}); check the role (or AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), the region, and the clock")]
    Credentials {
        /// The API action called (`GetSecretValue`, …).
        action: String,
        /// The secret the call was about (its ARN or name).
        secret: String,
        /// AWS's error code (`__type`, else `x-amzn-errortype`).
        code: String,
        /// AWS's message about the refusal (at most its first 300 characters).
        message: String,
    },
    /// Any other refusal that will not pass if the call is made again.
    #[error("{action} for {secret} was refused (HTTP {status}, {code}): {message}")]
    Refused {
        /// The API action called (`GetSecretValue`, …).
        action: String,
        /// The secret the call was about (its ARN or name).
        secret: String,
        /// The HTTP status of the refusal.
        status: u16,
        /// AWS's error code (`__type`, else `x-amzn-errortype`).
        code: String,
        /// AWS's message about the refusal (at most its first 300 characters).
        message: String,
    },
    /// No attempt got an answer it could use (each was lost, or refused in a way that may pass)
    /// before the attempts or the budget ran out.
    #[error("{action} for {secret} got no answer it could use in {attempts} attempts within {budget:?} (the last: {last}): check that the function can reach {endpoint} (from a VPC: through a Secrets Manager VPC endpoint or a NAT gateway), or SECRETS_MANAGER_ENDPOINT")]
    Unavailable {
        /// The API action called (`GetSecretValue`, …).
        action: String,
        /// The secret the call was about (its ARN or name).
        secret: String,
        /// Where the calls went.
        endpoint: String,
        /// How many attempts were made.
        attempts: u32,
        /// The whole budget of the call ([`Limits::operation_timeout`]).
        budget: Duration,
        /// What went wrong with the last attempt.
        last: String,
    },
    /// A success whose body does not parse as JSON.
    #[error("{action} for {secret} was answered with HTTP 200 and a body that is not JSON")]
    NotJson {
        /// The API action called (`GetSecretValue`, …).
        action: String,
        /// The secret the call was about (its ARN or name).
        secret: String,
    },
    /// The `GetSecretValue` answer holds no `SecretString` text (as a binary secret's does not).
    #[error("the secret {secret} holds no SecretString (is it a binary secret?): store the token keys as JSON text")]
    NotText {
        /// The secret the call was about (its ARN or name).
        secret: String,
    },
}

/// Timeouts and retries of every call.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The longest opening a connection may take.
    pub connect_timeout: Duration,
    /// The longest one attempt may take.
    pub attempt_timeout: Duration,
    /// The whole budget of one call, retries included: inside Lambda's 10 s for an init.
    pub operation_timeout: Duration,
    /// The most attempts one call makes (at least one).
    pub max_attempts: u32,
    /// The first retry's backoff; each later one doubles it.
    pub initial_backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(6),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
        }
    }
}

/// A Secrets Manager client for one region (or one local endpoint).
pub struct SecretsManager {
    client: SignedClient,
    limits: Limits,
}

impl std::fmt::Debug for SecretsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManager")
            .field("endpoint", &self.client.endpoint())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl SecretsManager {
    /// A client of `region`'s Secrets Manager, or of `endpoint` when given (a local server),
    /// signing with `credentials`.
    pub fn new(
        region: &str,
        endpoint: Option<&str>,
        credentials: Option<SharedCredentialsProvider>,
        limits: Limits,
    ) -> Self {
        let endpoint = match endpoint {
            Some(endpoint) => endpoint.trim().trim_end_matches('/').to_owned(),
            None if region.starts_with("cn-") => {
                format!("https://secretsmanager.{region}.amazonaws.com.cn")
            }
            None => format!("https://secretsmanager.{region}.amazonaws.com"),
        };
        SecretsManager {
            client: SignedClient::new(
                endpoint,
                credentials,
                Signer::for_service(region, "secretsmanager"),
                limits.connect_timeout,
            ),
            limits,
        }
    }

    /// A client with `sdk`'s region and credentials (a function's: its role's).
    pub fn from_sdk(sdk: &SdkConfig, endpoint: Option<&str>) -> Self {
        let region = sdk.region().map_or("us-east-1", |r| r.as_ref());
        Self::new(
            region,
            endpoint,
            sdk.credentials_provider(),
            Limits::default(),
        )
    }

    /// Where the calls go.
    pub fn endpoint(&self) -> &str {
        self.client.endpoint()
    }

    /// The text of the secret's current version (`AWSCURRENT`), by its ARN or name.
    pub async fn secret_string(&self, secret_id: &str) -> Result<String, SecretError> {
        let answer = self
            .call(
                "GetSecretValue",
                secret_id,
                &json!({ "SecretId": secret_id }),
            )
            .await?;
        match answer {
            Value::Object(mut fields) => match fields.remove("SecretString") {
                Some(Value::String(text)) => Ok(text),
                _ => Err(SecretError::NotText {
                    secret: secret_id.to_owned(),
                }),
            },
            _ => Err(SecretError::NotText {
                secret: secret_id.to_owned(),
            }),
        }
    }

    /// One action of the Secrets Manager API (`CreateSecret`, `PutSecretValue`, …) with this
    /// body, about `secret_id` (which errors name); its JSON answer. Tried again while its
    /// failure may pass, within [`Limits::operation_timeout`].
    pub async fn call(
        &self,
        action: &str,
        secret_id: &str,
        body: &Value,
    ) -> Result<Value, SecretError> {
        let (uri, host) = self
            .client
            .target("/")
            .map_err(|endpoint| SecretError::BadEndpoint { endpoint })?;
        let target = format!("secretsmanager.{action}");
        let body = Bytes::from(body.to_string());
        let started = Instant::now();
        let budget = self.limits.operation_timeout;
        let mut last = String::new();
        let mut attempts = 0;
        while attempts < self.limits.max_attempts.max(1) {
            if attempts > 0 {
                let pause = self.limits.initial_backoff * 2u32.saturating_pow(attempts - 1);
                if started.elapsed() + pause >= budget {
                    break;
                }
                tokio::time::sleep(pause).await;
            }
            let left = budget.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            attempts += 1;
            let timeout = self.limits.attempt_timeout.min(left);
            let headers = [
                ("content-type", JSON_1_1),
                ("x-amz-target", target.as_str()),
            ];
            let answer = self
                .client
                .attempt(&uri, &host, &headers, &body, timeout)
                .await
                .map_err(|why| match why {
                    Unsent::Credentials(why) => SecretError::NoCredentials(why),
                    Unsent::Request(why) => SecretError::Unsendable {
                        action: action.to_owned(),
                        secret: secret_id.to_owned(),
                        why,
                    },
                })?;
            match answer {
                Answer::Status(status, _, body) if status.is_success() => {
                    return serde_json::from_slice(&body).map_err(|_| SecretError::NotJson {
                        action: action.to_owned(),
                        secret: secret_id.to_owned(),
                    });
                }
                Answer::Status(status, error_type, body) => {
                    let (code, message) = refusal(status, error_type.as_deref(), &body);
                    if may_pass(status, &code) {
                        last = format!("HTTP {} {code}: {message}", status.as_u16());
                        continue;
                    }
                    return Err(classify(action, secret_id, status, code, message));
                }
                Answer::Lost(why) => last = why,
            }
        }
        Err(SecretError::Unavailable {
            action: action.to_owned(),
            secret: secret_id.to_owned(),
            endpoint: self.endpoint().to_owned(),
            attempts,
            budget,
            last,
        })
    }
}

/// The error code (`__type`, else `x-amzn-errortype`) and message of a refusal.
fn refusal(status: http::StatusCode, error_type: Option<&str>, body: &[u8]) -> (String, String) {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    // `com.amazonaws.secretsmanager#ThrottlingException`, `Code:http://…`: the name alone.
    let bare = |code: &str| {
        let code = code.rsplit('#').next().unwrap_or(code);
        code.split(':').next().unwrap_or(code).trim().to_owned()
    };
    let code = field("__type")
        .map(|c| bare(&c))
        .or_else(|| error_type.map(bare))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    let message = field("message")
        .or_else(|| field("Message"))
        .unwrap_or_default();
    (code, message.chars().take(MESSAGE_CHARS).collect())
}

/// Whether a refusal may pass if the call is made again.
fn may_pass(status: http::StatusCode, code: &str) -> bool {
    status.is_server_error()
        || status == http::StatusCode::TOO_MANY_REQUESTS
        || matches!(
            code,
            "ThrottlingException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "InternalServiceError"
                | "InternalServiceErrorException"
                | "ServiceUnavailable"
                | "RequestTimeout"
                | "RequestTimeoutException"
        )
}

/// The error a refusal that will not pass becomes.
fn classify(
    action: &str,
    secret: &str,
    status: http::StatusCode,
    code: String,
    message: String,
) -> SecretError {
    let (action, secret) = (action.to_owned(), secret.to_owned());
    match code.as_str() {
        "AccessDeniedException" | "AccessDenied" => SecretError::AccessDenied {
            action,
            secret,
            code,
        },
        "ResourceNotFoundException" => SecretError::NotFound {
            action,
            secret,
            code,
        },
        "DecryptionFailure" => SecretError::Decryption {
            action,
            secret,
            code,
        },
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "RequestExpired" => SecretError::Credentials {
            action,
            secret,
            code,
            message,
        },
        _ => SecretError::Refused {
            action,
            secret,
            status: status.as_u16(),
            code,
            message,
        },
    }
}

/// A fake Secrets Manager on 127.0.0.1 for the unit tests.
#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod tests;
