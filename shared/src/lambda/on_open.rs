//! `on_open`: the application's hook that runs once a client's handshake has completed, where it
//! may push to the new client (a greeting, the room's state) — which `$connect` cannot: API
//! Gateway answers 410 to a push until `$connect` has returned.
//!
//! The mechanism is the one AWS recommends for it (Knowledge Center, "410 GoneException"): just
//! before answering 200, `$connect` invokes the message function asynchronously (Lambda's Invoke
//! API, `X-Amz-Invocation-Type: Event`, answered 202 at once) with the connection's request
//! context. That invocation asks `@connections` about the connection (GetConnection) until the
//! handshake has completed, marks the record opened (a conditional write: Lambda may deliver an
//! asynchronous event twice, `on_open` runs once), and runs the hook with the same [`Client`]
//! `on_message` gets.
//!
//! Off unless the application sets [`Events::ON_OPEN`] and the stack sets `ON_OPEN_FUNCTION`:
//! each connection then costs one more Lambda invocation (its request, and its milliseconds of
//! waiting for the handshake), one GetConnection, and one write of its record.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequestContext;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::app::{Client, Events};
use crate::aws::signed_client::{Answer, SignedClient, Unsent};
use crate::aws::sigv4::{encode_segment, Signer};
use crate::gateway::Gateway;
use crate::lambda::on_close::then_close;
use crate::lambda::request::{millis, Ids};
use crate::push::{Delivery, Push};
use crate::store::Store;

/// The longest the invocation waits for the handshake to complete (it is billed meanwhile).
const HANDSHAKE_WAIT: Duration = Duration::from_secs(3);

/// Answers of 410 after which the connection's record is asked whether it still exists: a client
/// that left during its handshake ends the wait at once, not after [`HANDSHAKE_WAIT`].
const GONE_BEFORE_LOOKING: u32 = 3;

/// The first wait between two questions about the handshake; each later one doubles, up to
/// [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(20);
const MAX_PAUSE: Duration = Duration::from_millis(400);

/// What the message function is invoked with.
#[derive(Debug, Deserialize, Serialize)]
pub struct OpenEvent {
    /// The `$connect` event's request context: the connection, its authorizer's context, and
    /// where its pushes go.
    #[serde(rename = "onOpen")]
    pub on_open: ApiGatewayWebsocketProxyRequestContext,
}

impl OpenEvent {
    /// Whether a message function's payload is one of these rather than a route's event.
    pub fn is_one(payload: &serde_json::Value) -> bool {
        payload.get("onOpen").is_some()
    }
}

/// Why `on_open` could not be asked for.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The Invoke API's endpoint (`LAMBDA_ENDPOINT`, when set) is not a URL.
    #[error("{0:?} is not a URL: set LAMBDA_ENDPOINT to http(s)://host[:port], or leave it unset to call AWS")]
    BadEndpoint(String),
    /// No credentials to sign the invocation with.
    #[error("no AWS credentials to invoke {function} with: {why}")]
    NoCredentials {
        /// The function to invoke (`ON_OPEN_FUNCTION`).
        function: String,
        /// What the credentials provider answered, or that there is none.
        why: String,
    },
    /// Lambda answered with an error that a retry would not mend (not 429, not a 5xx): most
    /// likely a missing permission or a wrong function name.
    #[error("invoking {function} was refused (HTTP {status}, {code}): on 403, the $connect function's role needs lambda:InvokeFunction on it (template.yaml gives it); on 404, ON_OPEN_FUNCTION must name an existing function")]
    Refused {
        /// The function to invoke (`ON_OPEN_FUNCTION`).
        function: String,
        /// The answer's HTTP status.
        status: u16,
        /// The answer's `x-amzn-errortype`, empty when it had none.
        code: String,
    },
    /// Every attempt was throttled (429), failed in Lambda (5xx), went unanswered or was never
    /// sent.
    #[error(
        "invoking {function} got no answer it could use in {attempts} attempts (the last: {last})"
    )]
    Unavailable {
        /// The function to invoke (`ON_OPEN_FUNCTION`).
        function: String,
        /// How many attempts were made.
        attempts: u32,
        /// What the last attempt met.
        last: String,
    },
}

/// Asks for `on_open`: invokes the message function asynchronously.
pub struct Opener {
    client: SignedClient,
    function: String,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("endpoint", &self.client.endpoint())
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// Invokes `function` in `sdk`'s region with its credentials, or at `endpoint` (a local
    /// Invoke API).
    pub fn from_sdk(sdk: &SdkConfig, endpoint: Option<&str>, function: &str) -> Self {
        let region = sdk.region().map_or("us-east-1", |r| r.as_ref());
        let endpoint = match endpoint {
            Some(endpoint) => endpoint.to_owned(),
            None if region.starts_with("cn-") => {
                format!("https://lambda.{region}.amazonaws.com.cn")
            }
            None => format!("https://lambda.{region}.amazonaws.com"),
        };
        Opener {
            client: SignedClient::new(
                endpoint,
                sdk.credentials_provider(),
                Signer::for_service(region, "lambda"),
                Duration::from_secs(1),
            ),
            function: function.to_owned(),
        }
    }

    /// Queues the invocation (answered 202 before it runs). Tried twice within about two
    /// seconds: the handshake waits for it.
    pub async fn request(
        &self,
        context: &ApiGatewayWebsocketProxyRequestContext,
    ) -> Result<(), OpenError> {
        let path = format!(
            "/2015-03-31/functions/{}/invocations",
            encode_segment(&self.function)
        );
        let (uri, host) = self.client.target(&path).map_err(OpenError::BadEndpoint)?;
        let event = OpenEvent {
            on_open: context.clone(),
        };
        let body = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
        let headers = [
            ("content-type", "application/json"),
            ("x-amz-invocation-type", "Event"),
        ];
        let mut last = String::new();
        const ATTEMPTS: u32 = 2;
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let answer = self
                .client
                .attempt(&uri, &host, &headers, &body, Duration::from_secs(1))
                .await;
            match answer {
                Ok(Answer::Status(status, _, _)) if status.is_success() => return Ok(()),
                Ok(Answer::Status(status, code, _))
                    if status == http::StatusCode::TOO_MANY_REQUESTS
                        || status.is_server_error() =>
                {
                    last = format!("HTTP {} {}", status.as_u16(), code.unwrap_or_default());
                }
                Ok(Answer::Status(status, code, _)) => {
                    return Err(OpenError::Refused {
                        function: self.function.clone(),
                        status: status.as_u16(),
                        code: code.unwrap_or_default(),
                    })
                }
                Ok(Answer::Lost(why)) => last = why,
                Err(Unsent::Credentials(why)) => {
                    return Err(OpenError::NoCredentials {
                        function: self.function.clone(),
                        why,
                    })
                }
                Err(Unsent::Request(why)) => last = why,
            }
        }
        Err(OpenError::Unavailable {
            function: self.function.clone(),
            attempts: ATTEMPTS,
            last,
        })
    }
}

/// How waiting for the handshake ended.
enum Handshake {
    Completed,
    /// Still 410 at the deadline: the client left during its handshake, or it never completed.
    NeverCompleted,
    /// The connection's record is gone: the client left (its `$disconnect` came).
    Left,
    Failed(String),
}

async fn handshake<S: Store, P: Push>(
    gateway: &Gateway<S, P>,
    endpoint: &str,
    connection_id: &str,
) -> Handshake {
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    let mut gone = 0;
    loop {
        match gateway.push.probe(endpoint, connection_id).await {
            Ok(Delivery::Delivered) => return Handshake::Completed,
            Ok(Delivery::Gone) if started.elapsed() + pause < HANDSHAKE_WAIT => {
                gone += 1;
                if gone >= GONE_BEFORE_LOOKING
                    && matches!(gateway.store.connection(connection_id).await, Ok(None))
                {
                    return Handshake::Left;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Ok(Delivery::Gone) => return Handshake::NeverCompleted,
            Err(e) => return Handshake::Failed(e.to_string()),
        }
    }
}

/// The message function's handling of an [`OpenEvent`]: waits for the handshake, marks the
/// connection opened, and runs [`Events::on_open`]; saves the session it changed. Never fails
/// the invocation: Lambda would retry it a minute later, long after a greeting is of use (the
/// template sets no retries either).
#[tracing::instrument(name = "request", skip_all, fields(route = "on_open", connection_id, request_id, aws_request_id = %aws_request_id))]
pub async fn open<A: Events>(gateway: &Gateway, app: &A, event: OpenEvent, aws_request_id: &str) {
    let context = event.on_open;
    let ids = Ids {
        connection_id: context.connection_id.clone().unwrap_or_default(),
        request_id: context
            .request_id
            .clone()
            .unwrap_or_else(|| aws_request_id.to_owned()),
    };
    ids.name_span();
    let work = async {
        let started = Instant::now();
        let endpoint = match gateway.endpoint(&context) {
            Ok(endpoint) => endpoint,
            Err(e) => {
                tracing::error!(
                    outcome = "failed",
                    error = %e,
                    "on_open not run: nowhere to push",
                );
                return;
            }
        };
        let outcome = match handshake(gateway, &endpoint, &ids.connection_id).await {
            Handshake::Completed => match gateway.store.mark_opened(&ids.connection_id).await {
                Ok(true) => {
                    let mut client = Client::of_event(
                        gateway,
                        &ids.connection_id,
                        &ids.request_id,
                        &endpoint,
                        &context,
                    );
                    let ran = match Box::pin(app.on_open(&mut client)).await {
                        Ok(()) => client.save_session().await.map_err(Into::into),
                        Err(e) => Err(e),
                    };
                    match ran {
                        Ok(()) => "opened",
                        Err(e) => {
                            tracing::error!(error = %e, "the application's on_open failed");
                            "failed"
                        }
                    }
                }
                Ok(false) => "already opened, or gone",
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        "the connection could not be marked opened; on_open not run",
                    );
                    "failed"
                }
            },
            Handshake::NeverCompleted => "the handshake never completed",
            Handshake::Left => "the client left before its handshake completed",
            Handshake::Failed(e) => {
                tracing::error!(
                    error = %e,
                    "@connections could not be asked about the connection; on_open not run",
                );
                "failed"
            }
        };
        tracing::info!(outcome, duration_ms = millis(started.elapsed()), "on_open");
    };
    then_close(gateway, app, work).await;
}
