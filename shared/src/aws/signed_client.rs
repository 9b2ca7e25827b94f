//! One SigV4-signed POST to an AWS service's endpoint, bounded by a timeout, over the kind of
//! pooled hyper client the pushes use ([`crate::push`]): what the Secrets Manager reader and the
//! `on_open` invoker share, instead of an SDK crate each (minutes of build for one call).
//! Retrying is the caller's: what may pass differs by service.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_types::error::display::DisplayErrorContext;
use bytes::Bytes;
use http_body_util::Full;

use crate::aws::sigv4::{Identity, Signer, Unsigned};
use crate::push::{exchange, http_client, Http};

/// What one attempt came back with.
pub(crate) enum Answer {
    /// An HTTP answer: its status, `x-amzn-errortype`, and body.
    Status(http::StatusCode, Option<String>, Bytes),
    /// No answer: the connection failed or the attempt timed out.
    Lost(String),
}

/// Why an attempt was never sent.
pub(crate) enum Unsent {
    Credentials(String),
    Request(String),
}

/// A client of one service endpoint, signing with one credentials provider.
pub(crate) struct SignedClient {
    endpoint: String,
    credentials: Option<SharedCredentialsProvider>,
    signer: Signer,
    http: Http,
}

impl SignedClient {
    pub(crate) fn new(
        endpoint: String,
        credentials: Option<SharedCredentialsProvider>,
        signer: Signer,
        connect_timeout: Duration,
    ) -> Self {
        SignedClient {
            endpoint,
            credentials,
            signer,
            http: http_client(connect_timeout),
        }
    }

    /// Where the calls go.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The URI of `path` on the endpoint, and its host (what is signed); the endpoint when it is
    /// not a URL.
    pub(crate) fn target(&self, path: &str) -> Result<(http::Uri, String), String> {
        let uri: http::Uri = format!("{}{path}", self.endpoint)
            .parse()
            .map_err(|_| self.endpoint.clone())?;
        let host = uri
            .authority()
            .ok_or_else(|| self.endpoint.clone())?
            .as_str()
            .to_owned();
        Ok((uri, host))
    }

    /// The credentials to sign with, asked of the provider for each call (the calls are rare,
    /// and the provider caches them).
    async fn identity(&self) -> Result<Identity, String> {
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| "no credentials provider is configured".to_owned())?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        Ok(Identity {
            access_key_id: credentials.access_key_id().to_owned(),
            secret_access_key: credentials.secret_access_key().to_owned(),
            session_token: credentials.session_token().map(str::to_owned),
        })
    }

    /// One signed POST of `body` with `headers` (all of them signed), bounded by `timeout`.
    pub(crate) async fn attempt(
        &self,
        uri: &http::Uri,
        host: &str,
        headers: &[(&str, &str)],
        body: &Bytes,
        timeout: Duration,
    ) -> Result<Answer, Unsent> {
        let identity = self.identity().await.map_err(Unsent::Credentials)?;
        let signature = self.signer.sign_request(
            &identity,
            &Unsigned {
                method: "POST",
                host,
                path: uri.path(),
                headers,
                body,
            },
            SystemTime::now(),
        );
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(uri.clone())
            .header("authorization", signature.authorization)
            .header("x-amz-date", signature.amz_date);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(token) = signature.security_token {
            request = request.header("x-amz-security-token", token);
        }
        let request = request
            .body(Full::new(body.clone()))
            .map_err(|e| Unsent::Request(format!("the request could not be built: {e}")))?;
        Ok(match exchange(&self.http, request, timeout).await {
            Ok((status, headers, body)) => {
                let error_type = headers
                    .get("x-amzn-errortype")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Answer::Status(status, error_type, body)
            }
            Err(lost) => Answer::Lost(lost),
        })
    }
}
