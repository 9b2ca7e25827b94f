//! The service as clients meet it: real WebSocket clients, the local gateway, the release
//! bootstraps under a Lambda Runtime API (several processes per function, as Lambda runs several
//! environments), and the local DynamoDB. Beside it the floor (`floor.rs`): the same deliveries as
//! signed pushes to the gateway's `@connections`, at the fastest concurrency. And, through a proxy
//! in front of the local DynamoDB, what each operation costs in DynamoDB requests.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::{stream, StreamExt, TryStreamExt};
use local_gateway::routes::{FunctionNames, Routes};
use local_gateway::sigv4::{Credentials as Signing, Expected};
use local_gateway::{AwsBehaviour, Limits, Settings};
use shared::store::dynamodb::DynamoStore;
use shared::store::{Members, Store};
use support::ws::{connect, Ws};

use serde_json::{json, Value};
use support::fault_proxy::FaultProxy;

use crate::cost::Cost;
use crate::floor::{self, Floor, FloorThread};
use crate::harness::{env_list, lambda_process, ms, root, Bench};
use crate::pricing::{self, messages, Measured};
use crate::runtime_api::RuntimeApi;

const ACCESS_KEY_ID: &str = "bench";
const SECRET_ACCESS_KEY: &str = "bench";
const SESSION_TOKEN: &str = "bench-session";
/// Processes per function: Lambda runs one event at a time per environment, and a burst of
/// handshakes or frames spreads over several.
const ENVIRONMENTS: usize = 4;

/// What the counted stack's relay adds to each DynamoDB answer: about what a request within a
/// region takes on AWS, so that round trips are counted by what waits for what, not by how fast
/// this machine prepares a request next to how fast the local DynamoDB answers it.
const DYNAMODB_LATENCY: Duration = Duration::from_millis(3);

/// One stack: the bootstraps, the invoke endpoint in front of them, the gateway.
pub struct Stack {
    pub url: String,
    gateway_address: SocketAddr,
    pub store: DynamoStore,
    apis: Arc<HashMap<String, RuntimeApi>>,
    children: Vec<Child>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn loopback() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("an address");
    (listener, address)
}

/// The Lambda Invoke API, answered by the runtime APIs the bootstraps poll.
async fn invoke(
    State(apis): State<Arc<HashMap<String, RuntimeApi>>>,
    Path(function): Path<String>,
    event: Bytes,
) -> Response {
    let Some(api) = apis.get(&function) else {
        return (StatusCode::NOT_FOUND, format!("no function {function}")).into_response();
    };
    let event = serde_json::from_slice(&event).unwrap_or_default();
    let invocation = api.invoke(event).await;
    if invocation.failed {
        ([("x-amz-function-error", "Unhandled")], invocation.body).into_response()
    } else {
        invocation.body.into_response()
    }
}

impl Stack {
    /// Starts the stack on a new table; the functions reach DynamoDB at `dynamodb` (moto, or a
    /// proxy in front of it).
    pub async fn start(
        sdk: &aws_config::SdkConfig,
        moto: &str,
        dynamodb: &str,
        name: &str,
    ) -> Stack {
        Self::start_with(sdk, moto, dynamodb, name, &[], ENVIRONMENTS).await
    }

    /// [`Stack::start`] with `environments` bootstraps per function, which get `env` too.
    pub async fn start_with(
        sdk: &aws_config::SdkConfig,
        moto: &str,
        dynamodb: &str,
        name: &str,
        env: &[(&str, &str)],
        environments: usize,
    ) -> Stack {
        let table = format!("bench-{name}-{}", std::process::id());
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk)
                    .endpoint_url(moto)
                    .build(),
            ),
            &table,
        );
        store.ensure_table().await.expect("create the table");
        let (gateway_listener, gateway_address) = loopback().await;
        let (invoke_listener, invoke_address) = loopback().await;
        let management = format!("http://{gateway_address}/dev");
        let logs = root().join("target/bench");
        std::fs::create_dir_all(&logs).expect("target/bench");
        let mut apis = HashMap::new();
        let mut children = Vec::new();
        for function in ["connect", "message", "disconnect"] {
            let (api, address) = RuntimeApi::start().await;
            for environment in 0..environments {
                let log = std::fs::File::create(
                    logs.join(format!("{name}-{function}-{environment}.log")),
                )
                .expect("a log file");
                let child = lambda_process(function, address, &table, dynamodb, &management)
                    .envs(env.iter().copied())
                    .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
                    .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
                    .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
                    .stdout(log)
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("start a bootstrap");
                children.push(child);
            }
            api.await_first_poll(Instant::now()).await;
            apis.insert(function.to_owned(), api);
        }
        let apis = Arc::new(apis);
        let invoke_app = Router::new()
            .route("/2015-03-31/functions/{function}/invocations", post(invoke))
            .with_state(apis.clone());
        let mut tasks = vec![tokio::spawn(async move {
            let _ = axum::serve(invoke_listener, invoke_app).await;
        })];
        let mut settings = Settings {
            routes: Routes::from_file(&root().join("template.yaml"), FunctionNames::Package)
                .expect("template.yaml routes"),
            invoke_url: format!("http://{invoke_address}"),
            stage: "dev".into(),
            api_id: "bench".into(),
            limits: Limits::default(),
            invoke_timeout: Duration::from_secs(60),
            // As many at once as the environments take: API Gateway caps none below the account.
            max_invocations: 64.max(3 * environments),
            aws: AwsBehaviour::new(Some(Expected {
                credentials: Signing {
                    access_key_id: ACCESS_KEY_ID.into(),
                    secret_access_key: SECRET_ACCESS_KEY.into(),
                    session_token: Some(SESSION_TOKEN.into()),
                },
                region: "us-east-1".into(),
            })),
            client_library: None,
            api_function: "api".into(),
            event_sources: Vec::new(),
        };
        // The functions run without a secret (ALLOW_ANONYMOUS): handshakes carry no ?token=.
        settings.aws.allow_anonymous = true;
        tasks.push(tokio::spawn(async move {
            let _ = local_gateway::serve(gateway_listener, settings).await;
        }));
        Stack {
            url: format!("ws://{gateway_address}/dev"),
            gateway_address,
            store,
            apis,
            children,
            tasks,
        }
    }

    /// Waits until every function has finished what it was given.
    pub async fn idle(&self) {
        for api in self.apis.values() {
            api.idle().await;
        }
    }

    /// The function time of every invocation answered since the last look, of any function.
    pub fn take_invocations(&self) -> Vec<Duration> {
        self.apis
            .values()
            .flat_map(RuntimeApi::take_completed)
            .collect()
    }

    /// Connects `n` clients, `at_once` handshakes at a time; how long it took.
    pub async fn connect(&self, n: usize, at_once: usize) -> (Vec<Ws>, Duration) {
        let started = Instant::now();
        let clients: Vec<Ws> = stream::iter(0..n)
            .map(|_| connect(&self.url))
            .buffered(at_once)
            .collect()
            .await;
        (clients, started.elapsed())
    }

    /// Waits until `connections` connections are recorded (every `$disconnect` of the others
    /// has run).
    pub async fn await_empty_of(&self, connections: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let count = self.connection_ids().await.len();
            if count == connections {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{count} connections recorded, not {connections}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The connection ids of everyone, as a broadcast reads them.
    pub async fn connection_ids(&self) -> Vec<String> {
        self.store
            .members(Members::All)
            .map_ok(|m| m.connection_id)
            .try_collect()
            .await
            .expect("read the connections")
    }

    /// One floor delivery: `data` pushed to each of `ids` through the gateway's `@connections`
    /// by `client` (the service's own push client), `concurrency` at once; from the first request
    /// to the last client's receipt.
    pub async fn floor(
        &self,
        client: &FloorThread,
        ids: &Arc<Vec<String>>,
        clients: &mut [Ws],
        data: &str,
        concurrency: usize,
    ) -> Duration {
        let endpoint = format!("http://{}/dev", self.gateway_address);
        let started = Instant::now();
        let pushes = client.push_all(&endpoint, ids, data, concurrency);
        let (_, last) = tokio::join!(pushes, last_receipt(clients, data));
        last - started
    }
}

/// Sends an echo from `client` once the stack is idle and what came before is forgotten; when it
/// was answered.
async fn what_an_echo_costs(stack: &Stack, client: &mut Ws, forget: &impl Fn()) -> Instant {
    stack.idle().await;
    forget();
    client.send("hello").await;
    assert_eq!(client.recv().await, "Hello, you sent: hello");
    let answered = Instant::now();
    stack.idle().await;
    answered
}

/// Reads `client`'s frames until the pong of a ping (answered by the gateway from the
/// template's mock route, whatever the connection's rate): the frames pushed before it.
async fn frames_before_pong(client: &mut Ws) -> Vec<String> {
    client.send(r#"{"action":"ping"}"#).await;
    let mut frames = Vec::new();
    loop {
        let frame = client.recv().await;
        if frame == r#"{"type":"pong"}"# {
            return frames;
        }
        frames.push(frame);
    }
}

/// One connection sends 300 broadcasts at once, with 50 others listening, `RATE_LIMIT=10` and
/// 64 Lambda environments (a limit kept per environment would let 10 + 64 through): what the
/// burst did, and what it cost.
pub async fn burst(
    bench: &Bench,
    rows: &mut Vec<(String, String)>,
    report: &mut serde_json::Map<String, Value>,
) {
    const FRAMES: usize = 300;
    const ENVIRONMENTS_FOR_A_BURST: usize = 64;
    let proxy = FaultProxy::start(&bench.dynamodb).await;
    proxy.count_capacity();
    let env = [
        ("RATE_LIMIT", "10"),
        ("RATE_WINDOW_SECONDS", "60"),
        ("RATE_CLOSE_MULTIPLE", "3"),
    ];
    let stack = Stack::start_with(
        &bench.sdk,
        &bench.dynamodb,
        &proxy.endpoint(),
        "burst",
        &env,
        ENVIRONMENTS_FOR_A_BURST,
    )
    .await;
    let (mut listeners, _) = stack.connect(50, 8).await;
    let (mut senders, _) = stack.connect(1, 1).await;
    let mut sender = senders.pop().expect("a sender");
    stack.idle().await;
    proxy.take_requests();
    stack.take_invocations();
    for i in 0..FRAMES {
        sender
            .send(&json!({"action":"sendmessage","data":format!("burst {i}")}).to_string())
            .await;
    }
    // The sender is closed once it passes 3 × its limit; its frames already in flight run on.
    let (own, closed) = sender.frames_until_closed().await;
    let refusals = own
        .iter()
        .filter(|f| f.contains(r#""code":"rate_limited""#))
        .count();
    stack.idle().await;
    let invocations = stack.take_invocations().len();
    let cost = Cost::of(&proxy.take_requests(), None);
    let mut most = 0;
    for listener in &mut listeners {
        most = most.max(frames_before_pong(listener).await.len());
    }
    rows.push((
        format!("a burst of {FRAMES} broadcasts from one connection (RATE_LIMIT=10, RATE_CLOSE_MULTIPLE=3, {ENVIRONMENTS_FOR_A_BURST} environments, 50 listening)"),
        format!("{invocations} invocations; at most {most} broadcasts reached a listener (bound: 2 × 10); {refusals} rate_limited frame(s) to the sender, then closed ({}); DynamoDB: {}", closed.code, cost.row()),
    ));
    report.insert("burst".into(), json!({"frames": FRAMES, "environments": ENVIRONMENTS_FOR_A_BURST, "invocations": invocations, "broadcasts_received_at_most": most, "sender_close_code": closed.code, "refusals_seen": refusals, "dynamodb": cost.json()}));
    assert!(
        most <= 20,
        "a burst did {most} broadcasts, past 2 × RATE_LIMIT"
    );
    assert!(
        refusals <= 2,
        "{refusals} rate_limited frames for one burst"
    );
}

/// When the first and the last of `clients` received `data`.
pub async fn receipts(clients: &mut [Ws], data: &str) -> (Instant, Instant) {
    let all = futures_util::future::join_all(clients.iter_mut().map(|client| async move {
        loop {
            if client.recv().await == data {
                return Instant::now();
            }
        }
    }));
    let receipts = tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .unwrap_or_else(|_| panic!("{data:?} did not reach every client within 120 s"));
    let now = Instant::now();
    let first = receipts.iter().min().copied().unwrap_or(now);
    (first, receipts.into_iter().max().unwrap_or(now))
}

/// When the last of `clients` received `data`.
pub async fn last_receipt(clients: &mut [Ws], data: &str) -> Instant {
    receipts(clients, data).await.1
}

/// A broadcast from `clients[0]` (`sendmessage`): from the frame sent to the last receipt, and
/// when the first client had it.
pub async fn broadcast(clients: &mut [Ws], data: &str) -> (Duration, Instant) {
    let started = Instant::now();
    let frame = serde_json::json!({"action": "sendmessage", "data": data}).to_string();
    clients[0].send(&frame).await;
    let (first, last) = receipts(clients, data).await;
    (last - started, first)
}

/// The SDK configuration the functions of a [`Stack`] sign pushes with, for the floor.
async fn signing_sdk() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            Some(SESSION_TOKEN.to_owned()),
            None,
            "bench",
        ))
        .load()
        .await
}

pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Real WebSocket clients through the local gateway, the functions' DynamoDB requests counted by
/// a relay in front of the local DynamoDB (which reports each request's consumed capacity): the
/// cost of each operation, then broadcasts to 1, 100 and 1,000 clients and 1,000 clients
/// connecting, beside the floor. Returns each operation's measured cost: its DynamoDB requests
/// and units, its Lambda invocations and their function times, its API Gateway messages.
pub async fn run(
    bench: &Bench,
    rows: &mut Vec<(String, String)>,
    report: &mut serde_json::Map<String, Value>,
) -> Vec<Measured> {
    let proxy = FaultProxy::start(&bench.dynamodb).await;
    proxy.count_capacity();
    // Answers a few milliseconds late, as DynamoDB in a region gives them: requests sent at once
    // overlap, and the round trips counted are the ones that wait for each other.
    proxy.answer_after(DYNAMODB_LATENCY);
    let stack = Stack::start(&bench.sdk, &bench.dynamodb, &proxy.endpoint(), "gateway").await;
    let mut costs = serde_json::Map::new();
    let mut measured = Vec::new();
    // What happened since `forget` was last called: the relay's requests, the invocations.
    let forget = || {
        proxy.take_requests();
        stack.take_invocations();
    };
    let mut note =
        |rows: &mut Vec<(String, String)>, what: &str, outcome: Option<Instant>, frames: u64| {
            let cost = Cost::of(&proxy.take_requests(), outcome);
            let invocations = stack.take_invocations();
            rows.push((format!("DynamoDB cost of {what}"), cost.row()));
            let mut json = cost.json();
            json["lambda_invocations_ms"] =
                invocations.iter().map(|d| crate::harness::ms(*d)).collect();
            json["api_gateway_messages"] = frames.into();
            costs.insert(what.to_owned(), json);
            measured.push(Measured {
                what: what.to_owned(),
                cost,
                invocations,
                messages: frames,
            });
        };

    // Five clients with uids; the first one's handshake is measured (the authorizer's invocation
    // and the connect function's; a handshake is no message).
    stack.idle().await;
    forget();
    let mut clients = vec![support::ws::connect(&format!("{}?uid=u0", stack.url)).await];
    let outcome = Instant::now();
    stack.idle().await;
    note(rows, pricing::CONNECT, Some(outcome), 0);
    for i in 1..5 {
        clients.push(support::ws::connect(&format!("{}?uid=u{i}", stack.url)).await);
    }
    type Expected = fn(&str) -> bool;
    let cases: [(&str, &str, Expected); 3] = [
        (pricing::ECHO, "hello", |r| r == "Hello, you sent: hello"),
        // Answered by the function, or by the API's mock route where the gateway has one.
        (pricing::PING, r#"{"action":"ping"}"#, |r| {
            r.contains("pong")
        }),
        (pricing::JOIN, r#"{"action":"join","group":"five"}"#, |r| {
            r.starts_with(r#"{"type":"joined","group":"five""#)
        }),
    ];
    for (what, frame, expected) in cases {
        stack.idle().await;
        forget();
        clients[0].send(frame).await;
        let reply = clients[0].recv().await;
        assert!(expected(&reply), "{what}: unexpected answer {reply}");
        let outcome = Instant::now();
        stack.idle().await;
        note(
            rows,
            what,
            Some(outcome),
            messages(&[frame, reply.as_str()]),
        );
    }
    for client in &mut clients[1..] {
        client.send(r#"{"action":"join","group":"five"}"#).await;
        client.recv().await;
    }
    // A join that follows the group, into a group someone follows: its list and the follower's
    // event come from one version and one read of the group.
    clients[2]
        .send(r#"{"action":"join","group":"followed","presence":true}"#)
        .await;
    clients[2].recv().await;
    stack.idle().await;
    forget();
    let frame = r#"{"action":"join","group":"followed","presence":true}"#;
    clients[3].send(frame).await;
    let reply = clients[3].recv().await;
    assert!(
        reply.starts_with(r#"{"type":"joined","group":"followed""#),
        "{reply}"
    );
    let outcome = Instant::now();
    let event = clients[2].recv().await;
    assert!(event.contains(r#""event":"join""#), "{event}");
    stack.idle().await;
    note(
        rows,
        "a join with presence, one follower told",
        Some(outcome),
        messages(&[frame, reply.as_str(), event.as_str()]),
    );

    // A send to the group, with an id: each member (the sender too) gets it, and the sender an ack.
    stack.idle().await;
    forget();
    let frame = r#"{"action":"send","to":{"group":"five"},"data":"g","id":"g1"}"#;
    clients[0].send(frame).await;
    let mut frames = vec![frame.to_owned()];
    let mut first = None;
    let mut acked = false;
    for (i, client) in clients.iter_mut().enumerate() {
        // The sender's copy and its ack, in either order.
        let expected = if i == 0 { 2 } else { 1 };
        for _ in 0..expected {
            let got = client.recv().await;
            first.get_or_insert_with(Instant::now);
            acked |= got.contains(r#""type":"ack""#);
            frames.push(got);
        }
    }
    assert!(acked, "the sender got its ack");
    stack.idle().await;
    note(rows, pricing::GROUP_SEND, first, messages(&frames));

    stack.idle().await;
    forget();
    let frame = r#"{"action":"send","to":{"uid":"u1"},"data":"u"}"#;
    clients[0].send(frame).await;
    let got = clients[1].recv().await;
    let first = Instant::now();
    stack.idle().await;
    note(
        rows,
        "a uid send",
        Some(first),
        messages(&[frame, got.as_str()]),
    );

    // A frame's count is one write of an item of its own, whatever the connection holds: the
    // same echo from a connection in 1 group and in MAX_GROUPS (90 by default), which cannot join
    // more.
    let one_group = what_an_echo_costs(&stack, &mut clients[1], &forget).await;
    note(
        rows,
        "an echo from a connection in 1 group",
        Some(one_group),
        2,
    );
    // The rest up to MAX_GROUPS, joined as a backend joins them: as frames they would pass the
    // rate limit.
    let max = shared::Config::DEFAULT_MAX_GROUPS;
    clients[1].send(r#"{"action":"whoami"}"#).await;
    let whoami = clients[1].recv_json().await;
    let id = whoami["connectionId"]
        .as_str()
        .expect("whoami names the connection");
    let record = stack
        .store
        .connection(id)
        .await
        .expect("read the connection")
        .expect("the connection is recorded");
    for g in 1..max {
        let joined = stack
            .store
            .join(&record, &format!("group-{g:03}"), false, max)
            .await
            .expect("join");
        assert_eq!(joined, shared::store::Joining::Joined);
    }
    clients[1]
        .send(r#"{"action":"join","group":"one-too-many"}"#)
        .await;
    let refused = clients[1].recv_json().await;
    assert_eq!(refused["code"], "bad_request", "past MAX_GROUPS: {refused}");
    rows.push((
        format!("a join past MAX_GROUPS ({max})"),
        format!("refused: {}", refused["message"]),
    ));
    let hundred = what_an_echo_costs(&stack, &mut clients[1], &forget).await;
    note(
        rows,
        &format!("an echo from a connection in {max} groups (MAX_GROUPS)"),
        Some(hundred),
        2,
    );

    stack.idle().await;
    forget();
    clients.pop().expect("five clients").close().await;
    stack.await_empty_of(4).await;
    stack.idle().await;
    note(rows, pricing::DISCONNECT, None, 0);
    drop(clients);
    stack.await_empty_of(0).await;

    // Broadcasts to 1, 100 and 1,000 clients, and the floor; the 1,000 connect 8 at a time. The
    // costs of one broadcast of each size come from the counted stack; the timings from a stack
    // whose functions reach moto directly, as the floor does not pass the relay either.
    let direct = Stack::start(&bench.sdk, &bench.dynamodb, &bench.dynamodb, "direct").await;
    let floor_client = FloorThread::start(&signing_sdk().await);
    let mut side_by_side = Vec::new();
    let (mut counted, mut clients) = (Vec::new(), Vec::new());
    for n in env_list("BENCH_GATEWAY_CLIENTS", "1,100,1000") {
        // The cost of one broadcast to n, counted.
        if counted.len() < n {
            let (more, _) = stack.connect(n - counted.len(), 8).await;
            counted.extend(more);
        }
        broadcast(&mut counted, "warm-up").await;
        stack.idle().await;
        forget();
        let (_, first) = broadcast(&mut counted, "counted").await;
        stack.idle().await;
        let sent = json!({"action": "sendmessage", "data": "counted"}).to_string();
        let frames = messages(&[sent]) + n as u64 * messages(&["counted"]);
        note(rows, &pricing::broadcast(n), Some(first), frames);

        if n >= 1000 {
            drop(std::mem::take(&mut clients));
            direct.await_empty_of(0).await;
            let (all, took) = direct.connect(n, 8).await;
            clients = all;
            rows.push((
                format!("{n} clients connecting, 8 at a time"),
                format!("{} ms", ms(took)),
            ));
            report.insert(
                "connect_storm".into(),
                json!({"clients": n, "at_once": 8, "ms": ms(took)}),
            );
        } else if clients.len() < n {
            let (more, _) = direct.connect(n - clients.len(), 8).await;
            clients.extend(more);
        }
        let rounds = if n == 1 { 30 } else { 7 };
        // Two rounds first, so that the environments have their connections open.
        for _ in 0..2 {
            broadcast(&mut clients, "warm-up").await;
        }
        let mut ours = Vec::new();
        for round in 0..rounds {
            ours.push(broadcast(&mut clients, &format!("round {round}")).await.0);
        }
        let ids = Arc::new(direct.connection_ids().await);
        assert_eq!(ids.len(), n, "every client is recorded");
        let mut floor = Floor::none();
        for concurrency in floor::CONCURRENCIES {
            let mut times = Vec::with_capacity(rounds);
            for round in 0..rounds {
                let data = format!("floor {concurrency} {round}");
                times.push(
                    direct
                        .floor(&floor_client, &ids, &mut clients, &data, concurrency)
                        .await,
                );
            }
            floor.consider(concurrency, times);
        }
        let ours = median(ours);
        let ratio = ours.as_secs_f64() / floor.time.as_secs_f64();
        rows.push((
            format!("broadcast to {n} real clients through the gateway, median of {rounds}: ours / floor (signed pushes, best at {} at once)", floor.concurrency),
            format!("{} ms / {} ms = {ratio:.2}×", ms(ours), ms(floor.time)),
        ));
        side_by_side.push(json!({"clients": n, "rounds": rounds, "ours_ms": ms(ours), "floor_ms": ms(floor.time), "floor_concurrency": floor.concurrency, "ratio": (ratio * 100.0).round() / 100.0}));
    }
    report.insert("through_the_gateway".into(), Value::from(side_by_side));
    report.insert("dynamodb_costs".into(), Value::Object(costs));
    measured
}
