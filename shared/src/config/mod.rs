//! Settings read once, at init, from the environment.
//!
//! The same binaries run in AWS and under `make dev`; everything that differs between the two
//! (the table, endpoint overrides, where the token keys are) comes from here, so a handler never reads
//! the environment itself. A bad value stops the function at init with the variable's name, rather
//! than failing every request later.

use std::time::Duration;

mod error;

pub use error::ConfigError;

/// Everything the handlers need to know about their surroundings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `TABLE_NAME`: the connections table.
    pub table_name: String,
    /// `DYNAMODB_ENDPOINT`: a DynamoDB-compatible server to use instead of AWS (local runs).
    pub dynamodb_endpoint: Option<String>,
    /// `MANAGEMENT_ENDPOINT`: where pushes go, `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`.
    /// When unset, the endpoint is built from the event's `domainName` and `stage`, which breaks
    /// behind a custom domain; the template always sets it.
    pub management_endpoint: Option<String>,
    /// `AUTH_SECRET_ARN`: the Secrets Manager secret that holds the token keys
    /// ([`crate::auth::token_keys`]), which the `$connect` function reads at init. Without it (or
    /// `AUTH_SECRET`) connections are anonymous and may claim a uid with `?uid=`, which only
    /// `ALLOW_ANONYMOUS=true` permits (local development): a missing secret never silently opens
    /// a deployed stack.
    pub auth_secret_arn: Option<String>,
    /// `ON_OPEN_FUNCTION`: the function (name or ARN) the `$connect` function invokes
    /// asynchronously for an application's `on_open` (the template: the message function).
    /// Unset, `on_open` never runs.
    pub on_open_function: Option<String>,
    /// `LAMBDA_ENDPOINT`: a Lambda Invoke API to use instead of AWS's (local runs: the local
    /// gateway, which serves asynchronous invocations).
    pub lambda_endpoint: Option<String>,
    /// `SECRETS_MANAGER_ENDPOINT`: a Secrets Manager-compatible server to read
    /// `AUTH_SECRET_ARN` from instead of AWS (local runs: moto).
    pub secrets_manager_endpoint: Option<String>,
    /// `AUTH_SECRET`: one HS256 key without a kid, given in the environment itself: for local
    /// runs and tests only (the template never sets it; a deployed stack uses
    /// `AUTH_SECRET_ARN`).
    pub auth_secret: Option<String>,
    /// `TOKEN_AUDIENCE`: the `aud` a token must carry (`"ws"` by default), so that a token minted
    /// for another service is refused here.
    pub token_audience: String,
    /// `MAX_TOKEN_LIFETIME_SECONDS`: a token whose `exp` is further away than this is refused
    /// (600 s by default): a token travels in the URL, and only the handshake needs it.
    pub max_token_lifetime: Duration,
    /// `ALLOW_ANONYMOUS`: `true` lets `$connect` run without token keys (see
    /// [`Config::require_secret`]); the template never sets it.
    pub allow_anonymous: bool,
    /// `TOKEN_MODE`: `true` tells a function that holds no keys (the message function) that
    /// connections come with tokens, so their claims limit what they may do: an event without
    /// claims is then allowed nothing they would grant. Implied by `AUTH_SECRET_ARN` and
    /// `AUTH_SECRET`.
    pub token_mode: bool,
    /// `MAX_MESSAGE_BYTES`: the largest client message, in UTF-8 bytes (32,000 by default).
    pub max_message_bytes: usize,
    /// `CONNECTION_TTL_SECONDS`: how long an item outlives its write; API Gateway closes every
    /// connection at 2 h, so the default of 3 h removes the records of connections whose
    /// `$disconnect` never came.
    pub connection_ttl: Duration,
    /// `PUSH_CONCURRENCY`: pushes in flight at once during a fan-out.
    pub push_concurrency: usize,
    /// `PUSH_TIMEOUT_MS`: the whole budget of one push, retries included.
    pub push_timeout: Duration,
    /// `RATE_LIMIT`: the frames one connection may send per window; 0 turns the limit off.
    pub rate_limit: u32,
    /// `RATE_WINDOW_SECONDS`: the length of the rate limit's fixed window.
    pub rate_window: Duration,
    /// `RATE_CLOSE_MULTIPLE`: a connection that sends this many times its limit in one window is
    /// closed; 0 never closes one.
    pub rate_close_multiple: u32,
    /// `MAX_CONNECTIONS_PER_UID`: the authorizer refuses (403) a handshake whose uid already has
    /// this many live connections; 0 (the default) caps none.
    pub max_connections_per_uid: usize,
    /// `MAX_GROUPS`: the groups one connection may be in at once (its item holds the set, and
    /// `$disconnect` deletes one member item per group).
    pub max_groups: usize,
    /// `DYNAMODB_READ_CONCURRENCY`: Queries a broadcast runs at once (its "all" shards), and a
    /// send to a list of uids or groups (one partition each).
    pub read_concurrency: usize,
    /// `DYNAMODB_TIMEOUT_MS`: the whole budget of one DynamoDB call, retries included; one attempt
    /// may take a third of it. DynamoDB answers in milliseconds; a slow local server may need more,
    /// since an attempt given up on is still carried out and then retried, adding to its queue.
    pub dynamodb_timeout: Duration,
    /// `CONNECT_GRACE_SECONDS`: a push answered 410 removes nothing for a connection recorded
    /// less than this long ago. API Gateway answers 410 to pushes that reach a connection before
    /// its handshake completes, and `$connect` may run for up to 29 s; 30 s by default.
    pub connect_grace: Duration,
    /// `HISTORY_SIZE`: the messages a group's stream keeps for recovery (protocol: "Recovery");
    /// 0 turns streams off (no offsets, no history: group sends cost no extra writes).
    pub history_size: u64,
    /// `HISTORY_SECONDS`: how long a kept message stays recoverable.
    pub history_age: Duration,
    /// `PRESENCE_LIMIT`: groups with more members send no presence events and list no members.
    pub presence_limit: usize,
    /// `FAN_OUT_QUEUE_URL`: the SQS queue that spreads large sends over the fan-out workers
    /// ([`crate::spread`]); unset, every send is pushed by the invocation that makes it.
    pub fan_out_queue_url: Option<String>,
    /// `SQS_ENDPOINT`: an SQS-compatible server to use instead of AWS (local runs: moto).
    pub sqs_endpoint: Option<String>,
    /// `SPREAD_ABOVE`: a send to more recipients than this is spread over the workers, when
    /// `FAN_OUT_QUEUE_URL` is set.
    pub spread_above: usize,
    /// `FAN_OUT_JOB_SIZE`: recipients per job of a spread send.
    pub job_size: usize,
    /// `FAN_OUT_MAX_AGE_SECONDS`: a job not done this long after its send is given up: a push
    /// minutes late is worse than none.
    pub job_max_age: Duration,
    /// `FAN_OUT_LEASE_SECONDS`: how long a fan-out job's claim lasts when the runtime gives the
    /// invocation no deadline (`cargo lambda watch`); in Lambda it lasts until the invocation's
    /// deadline, which the queue's visibility timeout is at least.
    pub job_lease: Duration,
}

impl Config {
    /// 32,000 bytes: the envelope of the largest `send` (its sender's connection id and uid,
    /// its group and the message's place in it, around the client's `to` and `data`) stays
    /// within 32 KiB, one message of API Gateway's billing, for every recipient; a larger message
    /// would cost two per recipient (see `protocol`'s test of the envelope).
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 32_000;
    /// `CONNECTION_TTL_SECONDS`'s default: 3 h, an hour past API Gateway's 2 h limit.
    pub const DEFAULT_CONNECTION_TTL: Duration = Duration::from_secs(3 * 3600);
    /// `PUSH_CONCURRENCY`'s default: 64 pushes in flight.
    pub const DEFAULT_PUSH_CONCURRENCY: usize = 64;
    /// `PUSH_TIMEOUT_MS`'s default: 5 s.
    pub const DEFAULT_PUSH_TIMEOUT: Duration = Duration::from_secs(5);
    /// `RATE_LIMIT`'s default: 100 frames per window.
    pub const DEFAULT_RATE_LIMIT: u32 = 100;
    /// `TOKEN_AUDIENCE`'s default: `"ws"`.
    pub const DEFAULT_TOKEN_AUDIENCE: &'static str = "ws";
    /// `MAX_TOKEN_LIFETIME_SECONDS`'s default: 600 s.
    pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(600);
    /// A day: past that a token in a URL (and in logs and histories) is a long-lived credential.
    pub const MAX_TOKEN_LIFETIME_LIMIT: u64 = 86_400;
    /// `RATE_WINDOW_SECONDS`'s default: 10 s.
    pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(10);
    /// `RATE_CLOSE_MULTIPLE`'s default: 3 times the limit.
    pub const DEFAULT_RATE_CLOSE_MULTIPLE: u32 = 3;
    /// `MAX_GROUPS`'s default: 90 groups.
    pub const DEFAULT_MAX_GROUPS: usize = 90;
    /// A uid change (`bindUid`, `unbindUid`) rewrites the connection's item, its uid binding, its
    /// place in "all" and in each group in one transaction, which holds at most 100 writes.
    pub const MAX_GROUPS_LIMIT: usize = 97;
    /// Every shard of "all" at once: a broadcast's reads in one round trip.
    pub const DEFAULT_READ_CONCURRENCY: usize = crate::store::ALL_SHARDS as usize;
    /// `DYNAMODB_TIMEOUT_MS`'s default: 10 s.
    pub const DEFAULT_DYNAMODB_TIMEOUT: Duration = Duration::from_secs(10);
    /// `CONNECT_GRACE_SECONDS`'s default: 30 s, past `$connect`'s 29 s timeout.
    pub const DEFAULT_CONNECT_GRACE: Duration = Duration::from_secs(30);
    /// `HISTORY_SIZE`'s default: 100 messages per group.
    pub const DEFAULT_HISTORY_SIZE: u64 = 100;
    /// Ten minutes: a client dropped by API Gateway's limits is back within seconds; one away
    /// longer learns that it missed something (`recovered: false`).
    pub const DEFAULT_HISTORY_AGE: Duration = Duration::from_secs(600);
    /// `PRESENCE_LIMIT`'s default: 100 members.
    pub const DEFAULT_PRESENCE_LIMIT: usize = 100;
    /// `SPREAD_ABOVE`'s default: where spreading starts to win (`make bench`: a group send to 1,000
    /// took 370 ms pushed by its invocation and 374 ms spread; to 2,000, 736 ms and 390 ms).
    pub const DEFAULT_SPREAD_ABOVE: usize = 1_000;
    /// `FAN_OUT_JOB_SIZE`'s default: 1,000 connection ids (about 20 KB) and the frame fit one SQS
    /// message, and one worker pushes them in well under a second.
    pub const DEFAULT_JOB_SIZE: usize = 1_000;
    /// The most `FAN_OUT_JOB_SIZE` may be: a job is one SQS message of at most 1 MiB, and 5,000
    /// of API Gateway's 16-character ids are 95 KB beside a frame of up to 128 KiB (a job whose
    /// ids would not fit is cut smaller: `crate::spread`).
    pub const JOB_SIZE_LIMIT: usize = 5_000;
    /// `FAN_OUT_LEASE_SECONDS`'s default: the template's fan-out function timeout.
    pub const DEFAULT_JOB_LEASE: Duration = Duration::from_secs(20);
    /// `FAN_OUT_MAX_AGE_SECONDS`'s default: a minute.
    pub const DEFAULT_JOB_MAX_AGE: Duration = Duration::from_secs(60);
    /// A push carries at most 128 KiB; an echo or a message envelope adds to the client's
    /// message, so the message itself stays 32 KiB under that.
    pub const MAX_MESSAGE_BYTES_LIMIT: usize = 96 * 1024;
    /// The most `PUSH_CONCURRENCY` may be: each push is an open socket; Lambda allows 1,024.
    pub const PUSH_CONCURRENCY_LIMIT: usize = 256;

    /// A configuration with defaults for everything but the table.
    pub fn new(table_name: impl Into<String>) -> Self {
        Config {
            table_name: table_name.into(),
            dynamodb_endpoint: None,
            management_endpoint: None,
            auth_secret_arn: None,
            secrets_manager_endpoint: None,
            on_open_function: None,
            lambda_endpoint: None,
            auth_secret: None,
            token_audience: Self::DEFAULT_TOKEN_AUDIENCE.to_owned(),
            max_token_lifetime: Self::DEFAULT_MAX_TOKEN_LIFETIME,
            allow_anonymous: false,
            token_mode: false,
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
            connection_ttl: Self::DEFAULT_CONNECTION_TTL,
            push_concurrency: Self::DEFAULT_PUSH_CONCURRENCY,
            push_timeout: Self::DEFAULT_PUSH_TIMEOUT,
            rate_limit: Self::DEFAULT_RATE_LIMIT,
            rate_window: Self::DEFAULT_RATE_WINDOW,
            rate_close_multiple: Self::DEFAULT_RATE_CLOSE_MULTIPLE,
            max_groups: Self::DEFAULT_MAX_GROUPS,
            max_connections_per_uid: 0,
            read_concurrency: Self::DEFAULT_READ_CONCURRENCY,
            dynamodb_timeout: Self::DEFAULT_DYNAMODB_TIMEOUT,
            connect_grace: Self::DEFAULT_CONNECT_GRACE,
            history_size: Self::DEFAULT_HISTORY_SIZE,
            history_age: Self::DEFAULT_HISTORY_AGE,
            presence_limit: Self::DEFAULT_PRESENCE_LIMIT,
            fan_out_queue_url: None,
            sqs_endpoint: None,
            spread_above: Self::DEFAULT_SPREAD_ABOVE,
            job_size: Self::DEFAULT_JOB_SIZE,
            job_max_age: Self::DEFAULT_JOB_MAX_AGE,
            job_lease: Self::DEFAULT_JOB_LEASE,
        }
    }

    /// What `$connect` checks at init: a secret, or the explicit development switch. A missing
    /// secret must never quietly open a deployed stack to anonymous, uid-claiming clients.
    pub fn require_secret(&self) -> Result<(), ConfigError> {
        if self.auth_secret.is_none() && self.auth_secret_arn.is_none() && !self.allow_anonymous {
            return Err(ConfigError::NoSecret);
        }
        Ok(())
    }

    /// Whether connections come with tokens whose claims limit them (protocol: "Authorization").
    pub fn is_token_mode(&self) -> bool {
        self.token_mode || self.auth_secret.is_some() || self.auth_secret_arn.is_some()
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let table_name = get("TABLE_NAME").ok_or(ConfigError::Missing("TABLE_NAME"))?;
        let mut config = Config::new(table_name);
        config.dynamodb_endpoint = get("DYNAMODB_ENDPOINT");
        config.management_endpoint =
            get("MANAGEMENT_ENDPOINT").map(|e| e.trim_end_matches('/').to_owned());
        config.auth_secret = match lookup("AUTH_SECRET") {
            Some(secret) if secret.is_empty() => None,
            Some(secret) if secret.trim().is_empty() => return Err(ConfigError::BlankSecret),
            secret => secret,
        };
        config.auth_secret_arn = get("AUTH_SECRET_ARN").map(|arn| arn.trim().to_owned());
        if config.auth_secret.is_some() && config.auth_secret_arn.is_some() {
            return Err(ConfigError::TwoSecrets);
        }
        config.secrets_manager_endpoint =
            get("SECRETS_MANAGER_ENDPOINT").map(|e| e.trim().trim_end_matches('/').to_owned());
        config.on_open_function = get("ON_OPEN_FUNCTION").map(|f| f.trim().to_owned());
        config.lambda_endpoint =
            get("LAMBDA_ENDPOINT").map(|e| e.trim().trim_end_matches('/').to_owned());
        if let Some(v) = get("TOKEN_AUDIENCE") {
            config.token_audience = v.trim().to_owned();
        }
        if let Some(v) = get("MAX_TOKEN_LIFETIME_SECONDS") {
            config.max_token_lifetime = Duration::from_secs(at_most(
                "MAX_TOKEN_LIFETIME_SECONDS",
                &v,
                Self::MAX_TOKEN_LIFETIME_LIMIT as usize,
                "a whole number of seconds from 1 to 86400 (a day)",
            )? as u64);
        }
        config.allow_anonymous = get("ALLOW_ANONYMOUS").is_some_and(|v| v.trim() == "true");
        config.token_mode = get("TOKEN_MODE").is_some_and(|v| v.trim() == "true");
        if let Some(v) = get("MAX_MESSAGE_BYTES") {
            config.max_message_bytes = at_most(
                "MAX_MESSAGE_BYTES",
                &v,
                Self::MAX_MESSAGE_BYTES_LIMIT,
                "at most 98304 (96 KiB), so that a reply wrapping it stays under a push's 128 KiB",
            )?;
        }
        if let Some(v) = get("CONNECTION_TTL_SECONDS") {
            let secs = positive("CONNECTION_TTL_SECONDS", &v)?;
            if !(7_201..86_400).contains(&secs) {
                return Err(ConfigError::Invalid {
                    name: "CONNECTION_TTL_SECONDS",
                    expected: "more than 7200 (API Gateway's 2 h limit) and less than 86400",
                    value: v,
                });
            }
            config.connection_ttl = Duration::from_secs(secs);
        }
        if let Some(v) = get("PUSH_CONCURRENCY") {
            config.push_concurrency = at_most(
                "PUSH_CONCURRENCY",
                &v,
                Self::PUSH_CONCURRENCY_LIMIT,
                "at most 256 (each push is an open socket; Lambda allows 1,024)",
            )?;
        }
        if let Some(v) = get("PUSH_TIMEOUT_MS") {
            config.push_timeout = Duration::from_millis(positive("PUSH_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("RATE_LIMIT") {
            config.rate_limit = v.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "RATE_LIMIT",
                expected: "a whole number (0 turns the limit off)",
                value: v.clone(),
            })?;
        }
        if let Some(v) = get("DYNAMODB_READ_CONCURRENCY") {
            config.read_concurrency = positive("DYNAMODB_READ_CONCURRENCY", &v)? as usize;
        }
        if let Some(v) = get("DYNAMODB_TIMEOUT_MS") {
            config.dynamodb_timeout = Duration::from_millis(positive("DYNAMODB_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("CONNECT_GRACE_SECONDS") {
            let secs = match v.trim().parse::<u64>() {
                Ok(secs) if secs <= 600 => secs,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "CONNECT_GRACE_SECONDS",
                        expected:
                            "a whole number of seconds up to 600 ($connect times out at 29 s)",
                        value: v,
                    })
                }
            };
            config.connect_grace = Duration::from_secs(secs);
        }
        if let Some(v) = get("RATE_WINDOW_SECONDS") {
            config.rate_window = Duration::from_secs(positive("RATE_WINDOW_SECONDS", &v)?);
        }
        if let Some(v) = get("RATE_CLOSE_MULTIPLE") {
            config.rate_close_multiple = v.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "RATE_CLOSE_MULTIPLE",
                expected: "a whole number (0 never closes a connection for its rate)",
                value: v.clone(),
            })?;
        }
        if let Some(v) = get("MAX_CONNECTIONS_PER_UID") {
            config.max_connections_per_uid =
                v.trim().parse().map_err(|_| ConfigError::Invalid {
                    name: "MAX_CONNECTIONS_PER_UID",
                    expected: "a whole number (0 caps none)",
                    value: v.clone(),
                })?;
        }
        if let Some(v) = get("MAX_GROUPS") {
            config.max_groups = at_most(
                "MAX_GROUPS",
                &v,
                Self::MAX_GROUPS_LIMIT,
                "a whole number of groups from 1 to 97 (a uid change rewrites them all in one transaction of at most 100 writes)",
            )?;
        }
        if let Some(v) = get("HISTORY_SIZE") {
            config.history_size = v.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "HISTORY_SIZE",
                expected: "a whole number of messages per group (0 turns history off)",
                value: v.clone(),
            })?;
        }
        if let Some(v) = get("HISTORY_SECONDS") {
            config.history_age = Duration::from_secs(positive("HISTORY_SECONDS", &v)?);
            // A stream's head lives CONNECTION_TTL_SECONDS after its last message: its messages
            // must not outlive it, or a stream started afresh would find the old one's.
            if config.history_age > config.connection_ttl {
                return Err(ConfigError::Invalid {
                    name: "HISTORY_SECONDS",
                    expected:
                        "at most CONNECTION_TTL_SECONDS (messages must not outlive their stream)",
                    value: v,
                });
            }
        }
        if let Some(v) = get("PRESENCE_LIMIT") {
            config.presence_limit = positive("PRESENCE_LIMIT", &v)? as usize;
        }
        config.fan_out_queue_url = get("FAN_OUT_QUEUE_URL").map(|u| u.trim().to_owned());
        config.sqs_endpoint =
            get("SQS_ENDPOINT").map(|e| e.trim().trim_end_matches('/').to_owned());
        if let Some(v) = get("SPREAD_ABOVE") {
            config.spread_above = positive("SPREAD_ABOVE", &v)? as usize;
        }
        if let Some(v) = get("FAN_OUT_JOB_SIZE") {
            config.job_size = at_most(
                "FAN_OUT_JOB_SIZE",
                &v,
                Self::JOB_SIZE_LIMIT,
                "a whole number of recipients from 1 to 5000 (a job is one SQS message of at most 1 MiB)",
            )?;
        }
        if let Some(v) = get("FAN_OUT_MAX_AGE_SECONDS") {
            config.job_max_age = Duration::from_secs(positive("FAN_OUT_MAX_AGE_SECONDS", &v)?);
        }
        if let Some(v) = get("FAN_OUT_LEASE_SECONDS") {
            config.job_lease = Duration::from_secs(positive("FAN_OUT_LEASE_SECONDS", &v)?);
        }
        Ok(config)
    }
}

fn at_most(
    name: &'static str,
    value: &str,
    limit: usize,
    expected: &'static str,
) -> Result<usize, ConfigError> {
    match positive(name, value)? {
        n if n as usize <= limit => Ok(n as usize),
        _ => Err(ConfigError::Invalid {
            name,
            expected,
            value: value.to_owned(),
        }),
    }
}

fn positive(name: &'static str, value: &str) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError::Invalid {
            name,
            expected: "a whole number above 0",
            value: value.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests;
