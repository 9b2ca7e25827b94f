//! What every measurement runs on: the deployable bootstraps started as Lambda starts them, under
//! the bench's Runtime API; tables seeded on the local DynamoDB; and the events and records fed
//! to them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures_util::{stream, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use shared::store::dynamodb::{new_connection_items, DynamoStore};
use shared::store::{expiry_from_now, ConnectionRecord};

use crate::runtime_api::RuntimeApi;
use crate::sink::Sink;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The binary `make build ARCH=x86_64` zips as `target/lambda/{function}/bootstrap.zip`.
pub fn bootstrap(function: &str) -> PathBuf {
    let path = root()
        .join("target/x86_64-unknown-linux-gnu/release")
        .join(function);
    assert!(
        path.exists(),
        "{} is missing: run `make build ARCH=x86_64` (make bench does)",
        path.display()
    );
    path
}

/// A bootstrap of `function` as Lambda starts it: the runtime API's address and the variables
/// Lambda sets, and the service's own (anonymous, on `table`, pushing to `management`).
pub fn lambda_process(
    function: &str,
    runtime_api: std::net::SocketAddr,
    table: &str,
    dynamodb: &str,
    management: &str,
) -> Command {
    let mut command = Command::new(bootstrap(function));
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .env("TABLE_NAME", table)
        .env("ALLOW_ANONYMOUS", "true")
        .env("DYNAMODB_ENDPOINT", dynamodb)
        .env("MANAGEMENT_ENDPOINT", management);
    command
}

pub fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub struct Bench {
    pub sdk: aws_config::SdkConfig,
    /// The local DynamoDB's endpoint.
    pub dynamodb: String,
    /// The counting `@connections` endpoint every bootstrap pushes to.
    pub sink: Sink,
    /// Tables made so far, for unique names.
    tables: usize,
}

/// One running bootstrap under the runtime API.
pub struct Function {
    pub api: RuntimeApi,
    child: Child,
    pub init: Duration,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

pub fn message_event(connection_id: &str, body: &str) -> Value {
    json!({
        "requestContext": {
            "routeKey": "$default", "eventType": "MESSAGE", "messageId": "bench=", "stage": "bench",
            "connectedAt": 1, "requestTimeEpoch": 1, "identity": {"sourceIp": "127.0.0.1"},
            "requestId": "bench-request=", "domainName": "127.0.0.1", "connectionId": connection_id, "apiId": "bench",
            // What the $connect authorizer's context adds to every event in AWS.
            "authorizer": {"principalId": "bench", "uid": "bench"}
        },
        "body": body,
        "isBase64Encoded": false
    })
}

pub fn record(id: String, uid: Option<String>, groups: &[&str]) -> ConnectionRecord {
    ConnectionRecord {
        connection_id: id,
        connected_at: 1,
        source_ip: Some("127.0.0.1".into()),
        user_agent: None,
        uid,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        expires_at: expiry_from_now(Duration::from_secs(3 * 3600)),
        session: None,
    }
}

impl Bench {
    /// Starts the sink, on the local DynamoDB `support` names.
    pub async fn new(sdk: aws_config::SdkConfig) -> Bench {
        Bench {
            sdk,
            dynamodb: support::dynamodb::endpoint().to_owned(),
            sink: Sink::start().await,
            tables: 0,
        }
    }

    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&self.sdk)
                .endpoint_url(&self.dynamodb)
                .build(),
        )
    }

    pub async fn table(&mut self, what: &str) -> DynamoStore {
        self.tables += 1;
        let store = DynamoStore::new(
            self.client(),
            format!("bench-{what}-{}-{}", std::process::id(), self.tables),
        );
        store.ensure_table().await.expect("create a bench table");
        store
    }

    /// Writes connections (with their group items) in batches of 25, 8 batches at a time.
    pub async fn seed(&self, store: &DynamoStore, records: &[ConnectionRecord]) {
        let items: Vec<_> = records
            .iter()
            // A record's items include its group items (what `$connect` writes).
            .flat_map(new_connection_items)
            .collect();
        let client = self.client();
        stream::iter(items.chunks(25))
            .map(|chunk| {
                let requests: Vec<WriteRequest> = chunk
                    .iter()
                    .map(|item| {
                        let put = PutRequest::builder()
                            .set_item(Some(item.clone()))
                            .build()
                            .expect("an item");
                        WriteRequest::builder().put_request(put).build()
                    })
                    .collect();
                let client = client.clone();
                let table = store.table().to_owned();
                async move {
                    let mut requests = requests;
                    while !requests.is_empty() {
                        let out = client
                            .batch_write_item()
                            .request_items(&table, requests)
                            .send()
                            .await?;
                        requests = out
                            .unprocessed_items()
                            .and_then(|u| u.get(&table))
                            .cloned()
                            .unwrap_or_default();
                    }
                    Ok::<_, aws_sdk_dynamodb::Error>(())
                }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<_>>()
            .await
            .expect("seed the table");
    }

    /// Starts a bootstrap on `table`, timing its init (process start to its first poll).
    pub async fn function(&self, name: &str, table: &str, env: &[(&str, &str)]) -> Function {
        let (api, addr) = RuntimeApi::start().await;
        let logs = root().join("target/bench");
        std::fs::create_dir_all(&logs).expect("target/bench");
        let log = std::fs::File::create(logs.join(format!("{table}.log"))).expect("a log file");
        let started = Instant::now();
        let child = lambda_process(name, addr, table, &self.dynamodb, &self.sink.endpoint)
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .envs(env.iter().copied())
            .stdout(log)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the bootstrap");
        let init = api.await_first_poll(started).await;
        Function { api, child, init }
    }
}
