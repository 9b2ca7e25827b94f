//! The service's state of the world, reachable from any handler or backend: sends to clients,
//! uids, groups and everyone, and presence — GatewayWorker's calls, answered from DynamoDB.
//!
//! A send resolves its recipients as a stream of pages (never the whole set in memory first),
//! drops duplicates and exclusions, and pushes with bounded concurrency. A push answered 410
//! removes that connection's records and counts as not delivered.

pub mod ended;
mod facade;
mod fan_out;
pub mod frames;
pub mod presence;
pub mod rate_limit;
pub mod session;
mod sessions;
pub mod streams;
pub mod target;

use std::collections::BTreeSet;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequestContext;

use crate::auth::Verifier;
use crate::config::Config;
use crate::error::Error;
use crate::gateway::rate_limit::RateLimiter;
use crate::lambda::on_open::Opener;
use crate::push::{Delivery, ManagementApi, Push, PushError};
use crate::spread::Spreader;
use crate::store::dynamodb::DynamoStore;
use crate::store::{Store, StoreError};

/// The store, the push client and the settings, built once per process. The functions run on
/// DynamoDB and the management API (the defaults); the parameters are the seams a benchmark or
/// a backend wraps.
pub struct Gateway<S = DynamoStore, P = ManagementApi> {
    /// The settings, read once at init.
    pub config: Config,
    /// Where every connection fact lives.
    pub store: S,
    /// How frames reach clients.
    pub push: P,
    pub(crate) verifier: Option<Verifier>,
    pub(crate) limiter: RateLimiter,
    /// What asks for `on_open` (the `$connect` function's, with `ON_OPEN_FUNCTION`).
    pub(crate) opener: Option<Opener>,
    /// What spreads large sends over the fan-out workers (with `FAN_OUT_QUEUE_URL`).
    pub(crate) spreader: Option<Spreader>,
}

/// What a fan-out did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Connections the message was pushed to.
    pub delivered: usize,
    /// Recipients that had gone (410) and were removed.
    pub gone: usize,
    /// Pushes that failed after their retries (for a spread send: recipients whose job could not
    /// be queued).
    pub failed: usize,
    /// Recipients handed to the fan-out workers (a spread send, see [`crate::spread`]): they
    /// are pushed after this report, at least once each.
    pub queued: usize,
}

impl Report {
    /// The error to report for this fan-out, if any push failed (or, for a spread send, any
    /// job could not be queued).
    pub fn error(&self) -> Option<Error> {
        (self.failed > 0).then(|| Error::Undelivered {
            failed: self.failed,
            attempted: self.delivered + self.gone + self.failed + self.queued,
        })
    }
}

/// Who is connected, to a group or at all.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Presence {
    /// Connections counted.
    pub connections: usize,
    /// Their distinct uids.
    pub uids: BTreeSet<String>,
}

/// A connection to push to, and which of the target's sets named it (none for a connection id):
/// an index rather than the set itself, so that the fan-out's items borrow nothing and the
/// compiler can prove the fan-out `Send` inside an application's generic hook
/// (rust-lang/rust#100013).
pub type Recipient = (String, Option<usize>);

enum Outcome {
    Push(Recipient, Result<Delivery, PushError>),
    /// Not pushed: its time had run out.
    Unstarted(Recipient),
    Store(StoreError),
}

/// What a round of pushes came to.
#[derive(Debug, Default)]
pub(crate) struct Pushed {
    /// Delivered, gone and failed.
    pub(crate) report: Report,
    /// Throttled after the pushes' retries, or not started in time.
    pub(crate) retry: Vec<Recipient>,
}

impl<S: Store, P: Push> Gateway<S, P> {
    /// A gateway over `store` and `push` (a backend's; the functions build theirs in
    /// [`crate::lambda::init`]).
    pub fn new(config: Config, store: S, push: P) -> Self {
        // With AUTH_SECRET_ARN, a verifier that refuses every token until the `$connect`
        // function's init reads the keys into it (crate::lambda::init::connect_gateway_from_env).
        let verifier = Verifier::for_config(&config);
        Gateway {
            config,
            store,
            push,
            verifier,
            limiter: RateLimiter::default(),
            opener: None,
            spreader: None,
        }
    }

    /// Where pushes for this event go: the configured endpoint, or the event's own domain and
    /// stage when none is configured.
    pub fn endpoint(
        &self,
        context: &ApiGatewayWebsocketProxyRequestContext,
    ) -> Result<String, Error> {
        if let Some(endpoint) = &self.config.management_endpoint {
            return Ok(endpoint.clone());
        }
        match (&context.domain_name, &context.stage) {
            (Some(domain), Some(stage)) => Ok(format!("https://{domain}/{stage}")),
            _ => Err(Error::NoEndpoint),
        }
    }
}
