//! `local-gateway`: run an API Gateway WebSocket API on this machine.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use local_gateway::event_source::EventSource;
use local_gateway::routes::{FunctionNames, Routes};
use local_gateway::sigv4::{Credentials, Expected};
use local_gateway::{AwsBehaviour, Limits, Settings};

/// A local API Gateway WebSocket API in front of functions served by `cargo lambda watch`
/// (or `sam local start-lambda`), with the @connections management API on the same port.
///
/// It behaves as API Gateway does where that can break a service: a push to a connection whose
/// handshake has not completed (which takes --connect-settle-ms after $connect returns) gets 410; one connection's
/// frames are invoked concurrently; @connections needs the stage in its path (else 403) and a
/// SigV4 signature made with the local credentials (else 403); a push over 128 KiB gets 413; a
/// message over 128 KiB closes the connection with 1009; a handshake without the $connect
/// authorizer's identity sources gets 401 (unless --allow-anonymous); routes the template answers
/// with a MOCK integration are answered here, invoking nothing. Optionally it throttles @connections
/// (429) and drops a share of $disconnect events, which API Gateway sends best-effort.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Where clients connect, and where @connections is served.
    #[arg(long, env = "GATEWAY_ADDRESS", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The Lambda Invoke API serving the functions.
    #[arg(long, env = "INVOKE_URL", default_value = "http://127.0.0.1:9000")]
    invoke_url: String,
    /// The SAM template whose routes say which function serves what.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// How functions are named at the invoke endpoint.
    #[arg(long, value_enum, default_value = "package")]
    function_names: FunctionNames,
    /// Serve another application's functions: `workerman-chat-` invokes
    /// `workerman-chat-connect` where the template names `connect`.
    #[arg(long, env = "FUNCTION_PREFIX", default_value = "")]
    function_prefix: String,
    /// The stage events name (clients may connect to / or /{stage}).
    #[arg(long, env = "STAGE", default_value = "dev")]
    stage: String,
    /// The largest message, in bytes (API Gateway: 128 KiB).
    #[arg(long, default_value_t = 128 * 1024)]
    max_message_bytes: usize,
    /// The largest frame, in bytes (API Gateway: 32 KiB).
    #[arg(long, default_value_t = 32 * 1024)]
    max_frame_bytes: usize,
    /// Seconds without traffic before a connection is closed (API Gateway: 600).
    #[arg(long, default_value_t = 600)]
    idle_timeout: u64,
    /// Seconds a connection may live (API Gateway: 7200).
    #[arg(long, default_value_t = 7200)]
    max_lifetime: u64,
    /// The client library's built files (clients/js/dist), served under /client/ for the chat page.
    #[arg(long, env = "CLIENT_LIBRARY")]
    client_library: Option<PathBuf>,
    /// The prefix of the server API's function (`api`), served at `POST /api` as its function
    /// URL; the examples keep the default one.
    #[arg(long, env = "API_FUNCTION_PREFIX", default_value = "")]
    api_function_prefix: String,
    /// The SQS-compatible server the fan-out queue lives on (moto).
    #[arg(long, env = "SQS_ENDPOINT")]
    sqs_endpoint: Option<String>,
    /// The fan-out queue, whose jobs are handed to the fan-out function as Lambda's event
    /// source mapping does; none when unset.
    #[arg(long, env = "FAN_OUT_QUEUE_URL")]
    fan_out_queue_url: Option<String>,
    /// Jobs per fan-out invocation (the template's BatchSize).
    #[arg(long, default_value_t = 1)]
    fan_out_batch_size: usize,
    /// Fan-out invocations at once at most (the template's MaximumConcurrency).
    #[arg(long, default_value_t = 5)]
    fan_out_max_concurrency: usize,
    /// Seconds a fan-out invocation may take (the template's Timeout for the fan-out function);
    /// the queue's visibility timeout must be at least this.
    #[arg(long, default_value_t = 20)]
    fan_out_timeout: u64,
    /// Seconds an invocation may take (API Gateway: 29).
    #[arg(long, default_value_t = 29)]
    invoke_timeout: u64,
    /// Invocations in flight at once; more wait in the gateway.
    #[arg(long, default_value_t = 32)]
    max_invocations: usize,
    /// Milliseconds between $connect returning and the handshake completing, during which pushes
    /// to the new connection get 410, as on API Gateway.
    #[arg(long, default_value_t = AwsBehaviour::DEFAULT_CONNECT_SETTLE.as_millis() as u64)]
    connect_settle_ms: u64,
    /// Invoke one connection's frames one at a time (API Gateway invokes them concurrently;
    /// for debugging only).
    #[arg(long)]
    serialize_frames: bool,
    /// The access key @connections requests must be signed with.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = "local")]
    access_key_id: String,
    /// The secret key @connections requests must be signed with.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "local",
        hide_env_values = true
    )]
    secret_access_key: String,
    /// The session token @connections requests must carry, if any.
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    session_token: Option<String>,
    /// The region @connections signatures must be scoped to.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// Accept @connections requests whatever their signature (API Gateway never does).
    #[arg(long)]
    accept_unsigned: bool,
    /// @connections requests per second before 429 LimitExceededException (API Gateway's
    /// account throttle is 10,000 per second, shared); unlimited when unset.
    #[arg(long)]
    push_rate_limit: Option<u32>,
    /// The percentage of $disconnect events never sent (API Gateway sends them best-effort).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    drop_disconnects: u8,
    /// The functions run without AUTH_SECRET (ALLOW_ANONYMOUS=true): hand handshakes without the
    /// authorizer's identity sources (?token=) to it anyway, to connect anonymously. API Gateway
    /// answers them 401 without invoking anything, and so does this gateway without the switch.
    #[arg(long)]
    allow_anonymous: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
    let args = Args::parse();
    let routes =
        Routes::from_file(&args.template, args.function_names)?.with_prefix(&args.function_prefix);
    for (route, function) in &routes.functions {
        tracing::info!(route, function, "route");
    }
    for (route, answer) in &routes.mocks {
        tracing::info!(route, answer, "route answered by the gateway itself (MOCK)");
    }
    let settings = Settings {
        routes,
        invoke_url: args.invoke_url,
        stage: args.stage,
        api_id: "local".into(),
        limits: Limits {
            max_message_bytes: args.max_message_bytes,
            max_frame_bytes: args.max_frame_bytes,
            idle_timeout: Duration::from_secs(args.idle_timeout),
            max_lifetime: Duration::from_secs(args.max_lifetime),
        },
        invoke_timeout: Duration::from_secs(args.invoke_timeout),
        max_invocations: args.max_invocations,
        aws: AwsBehaviour {
            connect_settle: Duration::from_millis(args.connect_settle_ms),
            serialize_frames: args.serialize_frames,
            signing: (!args.accept_unsigned).then_some(Expected {
                credentials: Credentials {
                    access_key_id: args.access_key_id,
                    secret_access_key: args.secret_access_key,
                    session_token: args.session_token,
                },
                region: args.region,
            }),
            push_rate_limit: args.push_rate_limit,
            drop_disconnects_percent: args.drop_disconnects,
            allow_anonymous: args.allow_anonymous,
        },
        client_library: args.client_library,
        api_function: format!("{}api", args.api_function_prefix),
        event_sources: match (args.sqs_endpoint, args.fan_out_queue_url) {
            (Some(sqs_endpoint), Some(queue_url)) => vec![EventSource {
                sqs_endpoint,
                queue_url,
                function: format!("{}fan-out", args.function_prefix),
                batch_size: args.fan_out_batch_size,
                max_concurrency: args.fan_out_max_concurrency,
                function_timeout: Duration::from_secs(args.fan_out_timeout),
            }],
            (None, Some(_)) => return Err("FAN_OUT_QUEUE_URL needs SQS_ENDPOINT: the SQS-compatible server the queue lives on".into()),
            _ => Vec::new(),
        },
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e} (set GATEWAY_ADDRESS or --listen)",
                args.listen
            )
        })?;
    let address = listener.local_addr()?;
    tracing::info!(%address, invoke_url = %settings.invoke_url, "local gateway ready: ws://{address}, chat page http://{address}/");
    local_gateway::serve(listener, settings).await?;
    Ok(())
}
