//! The whole service as `make dev` runs it, on free ports: the functions under `cargo lambda
//! watch` (the real binaries, over the real Lambda runtime protocol), the local gateway in front
//! of them, and a table of its own on the DynamoDB-compatible server. Clients are real WebSocket
//! clients.
//!
//! `cargo lambda watch` comes from `CARGO_LAMBDA` (the Makefile points it at `.tools/`) or PATH;
//! like moto it runs under a watchdog that stops it, and every function process it started, when
//! the test process ends.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use local_gateway::event_source::EventSource;
use local_gateway::routes::{FunctionNames, Routes};
use local_gateway::sigv4::{Credentials as Signing, Expected};
use local_gateway::{AwsBehaviour, Limits, Settings};
use shared::store::dynamodb::DynamoStore;

use crate::dynamodb;
use crate::processes;
use crate::secrets;
use crate::sqs::{self, FanOutQueues, QueueSettings};
use crate::stack::Item;
use crate::tokens;
use crate::ws::{connect, try_connect, Ws};

/// How long a test waits for any one thing (a frame, a close, the table to settle). Generous:
/// the first invocation of each function starts its process.
pub const PATIENCE: Duration = Duration::from_secs(60);

static STACKS: AtomicUsize = AtomicUsize::new(0);

/// The credentials the functions, the CLI and the tests sign `@connections` requests with, and
/// the only ones the local gateway accepts. With a session token, as Lambda's always have.
pub const ACCESS_KEY_ID: &str = "test";
pub const SECRET_ACCESS_KEY: &str = "test";
pub const SESSION_TOKEN: &str = "local-session-token";

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The local stack, stopped when dropped.
pub struct LocalStack {
    pub gateway_address: SocketAddr,
    /// Where `cargo lambda watch` serves the Lambda Invoke API.
    pub invoke_port: u16,
    pub store: DynamoStore,
    sdk: aws_config::SdkConfig,
    /// The ARN of the secret that holds the functions' token keys, for a stack started with
    /// `AUTH_SECRET`.
    token_secret: Option<String>,
    function_log: PathBuf,
    /// The fan-out queues, for a stack started with [`LocalStack::start_spreading`].
    pub fan_out: Option<FanOutQueues>,
    watch: Child,
    gateway: tokio::task::JoinHandle<()>,
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        self.gateway.abort();
        // Closing the watchdog's stdin stops cargo lambda watch and its functions.
        drop(self.watch.stdin.take());
        let _ = self.watch.wait();
    }
}

/// How many invocations a stack runs at once.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Instances of each function `cargo lambda watch` may run at once (Lambda environments).
    pub instances: usize,
    /// Invocations the gateway keeps in flight; more wait in it.
    pub invocations: usize,
}

impl Default for Scale {
    fn default() -> Self {
        Scale {
            instances: 4,
            invocations: 32,
        }
    }
}

impl LocalStack {
    /// A stack whose functions get these extra environment variables, behind a gateway that
    /// behaves as API Gateway does.
    pub async fn start(function_env: &[(&str, &str)]) -> LocalStack {
        Self::start_with(function_env, |_| {}).await
    }

    /// A stack whose gateway's AWS behaviour `adjust` changes (a throttle, dropped disconnects).
    pub async fn start_with(
        function_env: &[(&str, &str)],
        adjust: impl FnOnce(&mut AwsBehaviour),
    ) -> LocalStack {
        Self::launch("", function_env, adjust, Scale::default(), None).await
    }

    /// A stack whose large sends are spread over the fan-out function through a queue made with
    /// `queue` (and its dead-letter queue), fed to the function by the local gateway's event
    /// source, behind a gateway that `adjust` changes.
    pub async fn start_spreading(
        function_env: &[(&str, &str)],
        queue: QueueSettings,
        adjust: impl FnOnce(&mut AwsBehaviour),
    ) -> LocalStack {
        Self::launch("", function_env, adjust, Scale::default(), Some(queue)).await
    }

    /// A stack that runs as many invocations at once as `scale` says, as Lambda and API Gateway
    /// do up to the account's concurrency (the default keeps a test binary light).
    pub async fn start_scaled(function_env: &[(&str, &str)], scale: Scale) -> LocalStack {
        Self::launch("", function_env, |_| {}, scale, None).await
    }

    /// A stack whose functions run another application of the workspace: the binaries named
    /// `{prefix}connect`, `{prefix}message` and `{prefix}disconnect`.
    pub async fn start_app(prefix: &str, function_env: &[(&str, &str)]) -> LocalStack {
        Self::launch(prefix, function_env, |_| {}, Scale::default(), None).await
    }

    /// [`LocalStack::start_app`] behind a gateway whose AWS behaviour `adjust` changes.
    pub async fn start_app_with(
        prefix: &str,
        function_env: &[(&str, &str)],
        adjust: impl FnOnce(&mut AwsBehaviour),
    ) -> LocalStack {
        Self::launch(prefix, function_env, adjust, Scale::default(), None).await
    }

    async fn launch(
        prefix: &str,
        function_env: &[(&str, &str)],
        adjust: impl FnOnce(&mut AwsBehaviour),
        scale: Scale,
        queue: Option<QueueSettings>,
    ) -> LocalStack {
        let table = format!(
            "e2e-{}-{}",
            std::process::id(),
            STACKS.fetch_add(1, Ordering::Relaxed)
        );
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                Some(SESSION_TOKEN.to_owned()),
                None,
                "tests",
            ))
            .load()
            .await;
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .endpoint_url(dynamodb::endpoint())
                .build(),
        );
        let store = DynamoStore::new(client, &table);
        store
            .ensure_table()
            .await
            .expect("create the end-to-end table");

        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind the local gateway");
        let gateway_address = listener.local_addr().expect("gateway address");
        let invoke_port = dynamodb::free_port();

        let mut env = vec![
            ("TABLE_NAME".to_owned(), table.clone()),
            (
                "DYNAMODB_ENDPOINT".to_owned(),
                dynamodb::endpoint().to_owned(),
            ),
            (
                "MANAGEMENT_ENDPOINT".to_owned(),
                format!("http://{gateway_address}/dev"),
            ),
            ("AWS_ACCESS_KEY_ID".to_owned(), ACCESS_KEY_ID.to_owned()),
            (
                "AWS_SECRET_ACCESS_KEY".to_owned(),
                SECRET_ACCESS_KEY.to_owned(),
            ),
            ("AWS_SESSION_TOKEN".to_owned(), SESSION_TOKEN.to_owned()),
            ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
            // on_open: the message function, invoked asynchronously through the local
            // gateway's Invoke API (only by an application that implements on_open).
            ("ON_OPEN_FUNCTION".to_owned(), format!("{prefix}message")),
            (
                "LAMBDA_ENDPOINT".to_owned(),
                format!("http://{gateway_address}"),
            ),
            // Without a secret the functions refuse to start unless told this is development.
            ("ALLOW_ANONYMOUS".to_owned(), "true".to_owned()),
        ];
        let fan_out = match queue {
            Some(settings) => Some(sqs::create(&table, settings).await),
            None => None,
        };
        if let Some(queues) = &fan_out {
            env.push(("FAN_OUT_QUEUE_URL".to_owned(), queues.queue_url.clone()));
            env.push(("SQS_ENDPOINT".to_owned(), sqs::endpoint().to_owned()));
        }
        // A key for the functions (`AUTH_SECRET`) goes where the template keeps it in AWS: into
        // a secret, here in the local Secrets Manager, which the connect function reads at init
        // (`AUTH_SECRET_ARN`). The key never reaches the functions' environment.
        let mut token_secret = None;
        for (name, value) in function_env {
            if *name == "AUTH_SECRET" {
                let secrets = secrets::client(ACCESS_KEY_ID, SECRET_ACCESS_KEY).await;
                let keys = secrets::one_key(tokens::KID, value);
                let arn = secrets::create(&secrets, &format!("{table}-token-keys"), &keys).await;
                env.push(("AUTH_SECRET_ARN".to_owned(), arn.clone()));
                env.push((
                    "SECRETS_MANAGER_ENDPOINT".to_owned(),
                    secrets::endpoint().to_owned(),
                ));
                token_secret = Some(arn);
            } else {
                env.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        let env_vars = env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let program = std::env::var("CARGO_LAMBDA").unwrap_or_else(|_| "cargo-lambda".to_owned());
        let log = std::env::temp_dir().join(format!("{table}-functions.log"));
        let script = r#"setsid "$0" lambda watch --ignore-changes -A 127.0.0.1 -P "$1" --concurrency "$4" --env-vars "$2" >"$3" 2>&1 & watch=$!; cat >/dev/null; kill -TERM -- -$watch 2>/dev/null || kill -TERM $watch"#;
        let mut command = Command::new("sh");
        // A key in the test process's environment must not reach the functions: they read theirs
        // from the local Secrets Manager, and refuse to start with both.
        command
            .env_remove("AUTH_SECRET")
            .env_remove("AUTH_SECRET_ARN");
        // The variables cargo sets for this test process would make the functions' build look
        // different from `cargo build`'s and rebuild dependencies on every run.
        for (name, _) in std::env::vars() {
            if name.starts_with("CARGO_")
                && !matches!(name.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR")
            {
                command.env_remove(name);
            }
        }
        let watch = command
            .args(["-c", script, &program, &invoke_port.to_string(), &env_vars])
            .arg(&log)
            .arg(scale.instances.to_string())
            .current_dir(workspace_root())
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start {program}: {e}; run `make test`, which installs it")
            });
        dynamodb::wait_for_port(
            SocketAddr::from((Ipv4Addr::LOCALHOST, invoke_port)),
            PATIENCE,
            "cargo lambda watch",
        );

        let mut aws = AwsBehaviour::new(Some(Expected {
            credentials: Signing {
                access_key_id: ACCESS_KEY_ID.into(),
                secret_access_key: SECRET_ACCESS_KEY.into(),
                session_token: Some(SESSION_TOKEN.into()),
            },
            region: "us-east-1".into(),
        }));
        // Without a secret the functions take anonymous handshakes (and `?uid=`), which the
        // authorizer's identity source (`?token=`) would refuse before they ran: as `make dev`
        // does, the gateway is told so. With a secret it refuses them, as API Gateway does.
        aws.allow_anonymous = !function_env
            .iter()
            .any(|(name, _)| matches!(*name, "AUTH_SECRET" | "AUTH_SECRET_ARN"));
        adjust(&mut aws);
        let routes = Routes::from_file(
            &workspace_root().join("template.yaml"),
            FunctionNames::Package,
        )
        .expect("template.yaml routes")
        .with_prefix(prefix);
        let settings = Settings {
            routes,
            invoke_url: format!("http://127.0.0.1:{invoke_port}"),
            stage: "dev".into(),
            api_id: "local".into(),
            limits: Limits::default(),
            invoke_timeout: PATIENCE,
            max_invocations: scale.invocations,
            aws,
            client_library: None,
            api_function: "api".into(),
            event_sources: fan_out
                .iter()
                .zip(queue)
                .map(|(queues, settings)| EventSource {
                    sqs_endpoint: sqs::endpoint().to_owned(),
                    queue_url: queues.queue_url.clone(),
                    function: format!("{prefix}fan-out"),
                    batch_size: 1,
                    max_concurrency: settings.max_concurrency,
                    function_timeout: Duration::from_secs(settings.function_timeout.into()),
                })
                .collect(),
        };
        let gateway = tokio::spawn(async move {
            let _ = local_gateway::serve(listener, settings).await;
        });
        LocalStack {
            gateway_address,
            invoke_port,
            store,
            sdk,
            token_secret,
            function_log: log,
            fan_out,
            watch,
            gateway,
        }
    }

    /// Kills (SIGKILL) the process of function `name` in this stack that is pushing the most,
    /// as a Lambda environment that crashes or times out mid-invocation ends (see
    /// [`processes::kill_busiest`]); whether one was pushing.
    pub fn kill_busiest_function(&self, name: &str) -> bool {
        processes::kill_busiest(name, self.store.table(), self.gateway_address.port())
    }

    /// The server-side API over this stack, as a backend would build it.
    pub fn api(&self) -> shared::lambda::init::AwsGateway {
        let mut config = shared::Config::new(self.store.table());
        config.dynamodb_endpoint = Some(dynamodb::endpoint().to_owned());
        config.management_endpoint = Some(self.management_endpoint());
        shared::lambda::init::gateway(config, &self.sdk)
    }

    /// The ARN of the secret that holds the functions' token keys (a stack started with
    /// `AUTH_SECRET`).
    pub fn token_secret(&self) -> Option<&str> {
        self.token_secret.as_deref()
    }

    /// Rotates the token keys: puts `keys` (the secret's JSON shape, `{"kid", "secret",
    /// "previous"}`) as the secret's new current value, as an operator's `put-secret-value` does.
    pub async fn put_token_keys(&self, keys: &serde_json::Value) {
        let arn = self
            .token_secret()
            .expect("a stack started with AUTH_SECRET has a token secret");
        let secrets = secrets::client(ACCESS_KEY_ID, SECRET_ACCESS_KEY).await;
        secrets::put(&secrets, arn, keys).await;
    }

    /// The local gateway's management endpoint (what `MANAGEMENT_ENDPOINT` says in AWS).
    pub fn management_endpoint(&self) -> String {
        format!("http://{}/dev", self.gateway_address)
    }

    /// Invokes one function on its own with `cargo lambda invoke` and an event file, as the README
    /// shows; what the function answered, or cargo-lambda's error.
    pub async fn invoke(
        &self,
        function: &str,
        event_file: &std::path::Path,
    ) -> Result<serde_json::Value, String> {
        let program = std::env::var("CARGO_LAMBDA").unwrap_or_else(|_| "cargo-lambda".to_owned());
        let output = tokio::process::Command::new(program)
            .args([
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
            ])
            .args([
                "--invoke-port",
                &self.invoke_port.to_string(),
                "--data-file",
            ])
            .arg(event_file)
            .output()
            .await
            .expect("run cargo lambda invoke");
        if output.status.success() {
            let text = String::from_utf8_lossy(&output.stdout);
            serde_json::from_str(text.trim()).map_err(|e| format!("{text} is not JSON: {e}"))
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// Runs the `gateway-client` CLI against this stack; its JSON answer, or its error text.
    pub async fn cli(&self, args: &[&str]) -> Result<serde_json::Value, String> {
        let program = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join("gateway-client")))
            .filter(|path| path.exists())
            .expect("target/debug/gateway-client is missing: `make test` builds it first");
        // Async, so that the gateway (served by this test's runtime) can answer the CLI's pushes.
        let output = tokio::process::Command::new(program)
            .args(args)
            .env("TABLE_NAME", self.store.table())
            .env("DYNAMODB_ENDPOINT", dynamodb::endpoint())
            .env("MANAGEMENT_ENDPOINT", self.management_endpoint())
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
            .env("AWS_REGION", "us-east-1")
            .output()
            .await
            .expect("run gateway-client");
        if output.status.success() {
            let text = String::from_utf8_lossy(&output.stdout);
            Ok(serde_json::from_str(text.trim())
                .unwrap_or_else(|e| panic!("{text} is not JSON: {e}")))
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// Waits until the function log holds `needle` at least `count` times; the log.
    pub async fn await_function_log_count(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let log = self.function_log();
            if log.matches(needle).count() >= count {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} not {count} times in the function log within {PATIENCE:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the functions' log (stdout of every function) has a line for which `matches`
    /// holds; returns the whole log.
    pub async fn await_function_log(&self, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let log = std::fs::read_to_string(&self.function_log).unwrap_or_default();
            if log.lines().any(&matches) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no such line in the function log within {PATIENCE:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The URL a client connects to, with this path and query (`""`, `"/dev?uid=alice"`, …).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("ws://{}{path_and_query}", self.gateway_address)
    }

    /// Connects a real WebSocket client; panics when the handshake is refused.
    pub async fn client(&self, path_and_query: &str) -> Ws {
        match self.try_client(path_and_query).await {
            Ok(ws) => ws,
            Err(status) => panic!("the handshake was refused with {status}"),
        }
    }

    /// Connects without asking anything: a client that knows nothing of its connection id, and
    /// reads whatever is pushed to it first.
    pub async fn raw_client(&self, path_and_query: &str) -> Ws {
        connect(&self.url(path_and_query)).await
    }

    /// What the functions have logged so far.
    pub fn function_log(&self) -> String {
        std::fs::read_to_string(&self.function_log).unwrap_or_default()
    }

    /// Connects, or returns the HTTP status that refused the handshake.
    pub async fn try_client(&self, path_and_query: &str) -> Result<Ws, u16> {
        let mut ws = try_connect(&self.url(path_and_query)).await?;
        // Under heavy load the store can fail or time out a request; the answer is then an
        // `internal` error frame, and asking again is what a client does.
        for _ in 0..3 {
            ws.send(r#"{"action":"whoami"}"#).await;
            let whoami = ws.recv_json().await;
            if let Some(id) = whoami["connectionId"].as_str() {
                ws.connection_id = id.to_owned();
                return Ok(ws);
            }
            assert_eq!(whoami["code"], "internal", "whoami answered {whoami}");
        }
        panic!("whoami failed three times");
    }

    /// Every item of the stack's table.
    pub async fn items(&self) -> Vec<Item> {
        let page = self
            .store
            .client()
            .scan()
            .table_name(self.store.table())
            .consistent_read(true)
            .send()
            .await
            .expect("scan the end-to-end table");
        page.items().to_vec()
    }

    /// Every item but the rate limit's counts.
    pub async fn items_but_counts(&self) -> Vec<Item> {
        let mut items = self.items().await;
        items.retain(|item| !is_rate_count(item));
        items
    }

    /// Waits until the table holds exactly `count` items besides the rate limit's counts, which
    /// every frame writes (the `$disconnect` after a close runs after the client has gone, so
    /// tests wait for its effect). `items()` shows the counts too.
    pub async fn await_items(&self, count: usize) -> Vec<Item> {
        self.await_items_where(count, |item| !is_rate_count(item))
            .await
    }

    /// Waits until the table holds exactly `count` items about connections, leaving out group
    /// streams (their heads and kept messages outlive the connections that sent to them, until
    /// their TTL) and rate counts; returns those items.
    pub async fn await_connection_items(&self, count: usize) -> Vec<Item> {
        self.await_items_where(count, |item| {
            !is_rate_count(item)
                && !matches!(item.get("pk"), Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) if pk.starts_with("stream#"))
        })
        .await
    }

    async fn await_items_where(&self, count: usize, keep: impl Fn(&Item) -> bool) -> Vec<Item> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut items = self.items().await;
            items.retain(|item| keep(item));
            if items.len() == count {
                return items;
            }
            assert!(
                Instant::now() < deadline,
                "the table still holds {} items, not {count}: {items:?}",
                items.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The local gateway's `@connections/{id}` with this method, signed as a backend signs it;
    /// the status it answered and its body.
    pub async fn management(
        &self,
        method: reqwest::Method,
        connection_id: &str,
        body: &str,
    ) -> (u16, String) {
        let path = format!(
            "/dev/@connections/{}",
            shared::aws::sigv4::encode_segment(connection_id)
        );
        self.management_request(method, &path, body, true).await
    }

    /// A request to the local gateway at `path`, signed with the test credentials or not.
    pub async fn management_request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &str,
        signed: bool,
    ) -> (u16, String) {
        let host = self.gateway_address.to_string();
        let mut request = reqwest::Client::new()
            .request(method.clone(), format!("http://{host}{path}"))
            .body(body.to_owned());
        if signed {
            let identity = shared::aws::sigv4::Identity {
                access_key_id: ACCESS_KEY_ID.into(),
                secret_access_key: SECRET_ACCESS_KEY.into(),
                session_token: Some(SESSION_TOKEN.into()),
            };
            let signature = shared::aws::sigv4::Signer::new("us-east-1").sign(
                &identity,
                method.as_str(),
                &host,
                path,
                body.as_bytes(),
                std::time::SystemTime::now(),
            );
            request = request
                .header("authorization", signature.authorization)
                .header("x-amz-date", signature.amz_date);
            if let Some(token) = signature.security_token {
                request = request.header("x-amz-security-token", token);
            }
        }
        let response = request.send().await.expect("the management API answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }
}

/// Whether `item` is one of the rate limit's counts (`sk` `rate#{window}`), which every frame
/// writes and which expire a minute after their window.
pub fn is_rate_count(item: &Item) -> bool {
    matches!(item.get("sk"), Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) if sk.starts_with("rate#"))
}

/// Items by kind, to read test failures.
pub fn kinds(items: &[Item]) -> HashMap<String, usize> {
    let mut kinds = HashMap::new();
    for item in items {
        let pk = item
            .get("pk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        *kinds
            .entry(pk.split('#').next().unwrap_or("").to_owned())
            .or_insert(0) += 1;
    }
    kinds
}
