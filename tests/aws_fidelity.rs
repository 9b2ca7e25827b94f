//! Where API Gateway is harsher than a friendly emulator, the local gateway is too — and the
//! service survives it: pushes that race a handshake get 410, one connection's frames run at
//! once, `@connections` wants the stage and a signature, pushes and messages have size limits,
//! `$disconnect` may never come.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;
use support::local_stack::{kinds, LocalStack};
use support::ws::{connect, Ws};

/// Clients connecting during the storm (`FIDELITY_CLIENTS`; the issue's check runs 200).
fn storm_clients() -> usize {
    std::env::var("FIDELITY_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40)
}

/// Where the black-box tests connect: `GATEWAY_URL` (a running `make dev` without a secret and
/// with `RATE_LIMIT=0`: `ws://127.0.0.1:8080/dev`), or a stack of the test's own whose functions
/// get `function_env`.
async fn gateway(function_env: &[(&str, &str)]) -> (Option<LocalStack>, String) {
    match std::env::var("GATEWAY_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let stack = LocalStack::start(function_env).await;
            let url = stack.url("/dev");
            (Some(stack), url)
        }
    }
}

/// Sends `frame` (a `send` with an `id`) and reads until its ack; the ack.
async fn send_and_await_ack(ws: &mut Ws, frame: &str) -> serde_json::Value {
    ws.send(frame).await;
    loop {
        let reply = ws.recv_json().await;
        assert_ne!(reply["type"], "error", "{reply}");
        if reply["type"] == "ack" {
            return reply;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_connecting_during_a_push_storm_all_receive_the_next_broadcast() {
    // Stormers send as fast as they are answered: no rate limit.
    let (stack, base) = gateway(&[("RATE_LIMIT", "0")]).await;
    let count = storm_clients();
    let run = std::process::id();
    let uids: Vec<String> = (0..count).map(|i| format!("storm-{run}-{i}")).collect();
    // Four clients send without pause while the others connect: two to the newcomers' uids (100
    // at a time, a list's limit), two to everyone. Each push that reaches a connection whose
    // handshake is still under way is answered 410, by the local gateway as by API Gateway.
    let storming = Arc::new(AtomicBool::new(true));
    let mut stormers = Vec::new();
    for i in 0..4 {
        let mut ws = connect(&format!("{base}?uid=stormer-{run}-{i}")).await;
        let (storming, uids) = (storming.clone(), uids.clone());
        stormers.push(tokio::spawn(async move {
            let mut sent = 0usize;
            while storming.load(Ordering::Relaxed) {
                let to = if i < 2 {
                    let chunk =
                        &uids.chunks(100).collect::<Vec<_>>()[sent % uids.len().div_ceil(100)];
                    json!({ "uids": chunk })
                } else {
                    json!({ "all": true })
                };
                let frame = json!({"action":"send","to":to,"data":"storm","id":sent.to_string()});
                send_and_await_ack(&mut ws, &frame.to_string()).await;
                sent += 1;
            }
            (ws, sent)
        }));
    }
    let mut clients = Vec::with_capacity(count);
    for chunk in uids.chunks(8) {
        let urls: Vec<String> = chunk
            .iter()
            .map(|uid| format!("{base}?uid={uid}"))
            .collect();
        clients.extend(join_all(urls.iter().map(|url| connect(url))).await);
    }
    storming.store(false, Ordering::Relaxed);
    let mut stayed = Vec::new();
    let mut sends = 0;
    for stormer in stormers {
        let (ws, sent) = stormer.await.expect("a stormer");
        sends += sent;
        stayed.push(ws);
    }
    let ack = send_and_await_ack(
        &mut stayed[0],
        r#"{"action":"send","to":{"all":true},"data":"after the storm","id":"last"}"#,
    )
    .await;
    let delivered = ack["delivered"].as_u64().unwrap_or(0) as usize;
    assert!(
        delivered >= count + 4,
        "the last broadcast reached {delivered} connections; {count} connected during the storm \
         and 4 stormed: some lost their records to a 410"
    );
    for client in &mut clients {
        while client.recv_json().await["data"] != "after the storm" {}
    }
    println!("{sends} storm sends while {count} clients connected; all reachable");
    if let Some(stack) = stack {
        let raced = stack
            .function_log()
            .matches("$connect may still be running")
            .count();
        assert!(
            raced > 0,
            "no push met a handshake ({sends} sends), so this run proved nothing: connect more clients"
        );
        println!("{raced} pushes met a handshake under way");
    }
}

#[tokio::test]
async fn a_burst_of_frames_sent_without_waiting_gets_every_answer_and_no_internal() {
    // The gateway invokes them at once, as API Gateway does; the rate limit counts each one.
    // (whoami, not ping: API Gateway answers ping itself, invoking nothing.)
    let (_stack, base) = gateway(&[]).await;
    let mut a = connect(&base).await;
    let group = format!("busy-{}", std::process::id());
    a.send(&json!({"action":"join","group":group}).to_string())
        .await;
    a.send(&json!({"action":"send","to":{"group":group},"data":"hi","id":"m1"}).to_string())
        .await;
    for _ in 0..50 {
        a.send(r#"{"action":"whoami"}"#).await;
    }
    let (mut whoamis, mut joined, mut acked) = (0, false, false);
    while whoamis < 50 || !joined || !acked {
        let frame = a.recv_json().await;
        assert_ne!(frame["type"], "error", "{frame}");
        match frame["type"].as_str() {
            Some("whoami") => whoamis += 1,
            Some("joined") => joined = true,
            Some("ack") => acked = true,
            // The send may run before or after the join: both are right.
            Some("message") => assert_eq!(frame["data"], "hi"),
            _ => panic!("unexpected {frame}"),
        }
    }
    a.send(r#"{"action":"whoami"}"#).await;
    loop {
        let frame = a.recv_json().await;
        if frame["type"] == "whoami" {
            assert_eq!(frame["groups"], json!([group]));
            break;
        }
        assert_eq!(frame["type"], "message", "{frame}");
    }
}

#[tokio::test]
async fn the_management_api_without_the_stage_is_forbidden() {
    let stack = LocalStack::start(&[]).await;
    let a = stack.client("/dev").await;
    let path = format!(
        "/@connections/{}",
        shared::aws::sigv4::encode_segment(&a.connection_id)
    );
    let (status, body) = stack
        .management_request(Method::POST, &path, "hi", true)
        .await;
    assert_eq!(status, 403);
    assert_eq!(body, r#"{"message":"Forbidden"}"#);
    let (status, _) = stack.management(Method::POST, &a.connection_id, "hi").await;
    assert_eq!(status, 200, "the same push under the stage is delivered");
}

#[tokio::test]
async fn an_unsigned_push_is_forbidden_and_reaches_no_one() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/dev").await;
    let path = format!(
        "/dev/@connections/{}",
        shared::aws::sigv4::encode_segment(&a.connection_id)
    );
    let (status, body) = stack
        .management_request(Method::POST, &path, "unsigned", false)
        .await;
    assert_eq!(status, 403);
    assert!(body.contains("Missing Authentication Token"), "{body}");
    a.expect_nothing_pending().await;
}

#[tokio::test]
async fn a_push_over_128_kib_is_too_large() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/dev").await;
    let big = "x".repeat(128 * 1024 + 1);
    let (status, body) = stack.management(Method::POST, &a.connection_id, &big).await;
    assert_eq!(status, 413, "{body}");
    let (status, _) = stack
        .management(Method::POST, &a.connection_id, &big[1..])
        .await;
    assert_eq!(status, 200, "128 KiB exactly is taken");
    assert_eq!(a.recv().await.len(), 128 * 1024);
}

#[tokio::test]
async fn a_message_over_128_kib_closes_the_connection_with_1009() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/dev").await;
    // Frames of 32 KiB at most, as API Gateway takes them, five of them in one message.
    a.send_fragmented(&"y".repeat(5 * 32 * 1024), 32 * 1024)
        .await;
    let closed = a.closed().await;
    assert_eq!(closed.code, 1009, "{closed:?}");
    stack.await_items(0).await;
}

#[tokio::test]
async fn the_management_api_can_throttle_like_api_gateway() {
    let stack = LocalStack::start_with(&[], |aws| aws.push_rate_limit = Some(3)).await;
    let id = "nobody=";
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(stack.management(Method::POST, id, "x").await.0);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.contains(&410), "{statuses:?}");
}

#[tokio::test]
async fn a_connection_whose_disconnect_never_came_is_removed_by_the_next_410() {
    // Every $disconnect dropped, and no connect grace, so that a 410 prunes at once.
    let stack = LocalStack::start_with(&[("CONNECT_GRACE_SECONDS", "0")], |aws| {
        aws.drop_disconnects_percent = 100
    })
    .await;
    let mut a = stack.client("/dev?uid=alice").await;
    let mut b = stack.client("/dev?uid=bob").await;
    for ws in [&mut a, &mut b] {
        ws.send(r#"{"action":"join","group":"room"}"#).await;
        assert_eq!(ws.recv_json().await["type"], "joined");
    }
    a.close().await;
    let items = stack.await_items(8).await;
    assert_eq!(
        kinds(&items)["uid"],
        2,
        "alice's records stay: {:?}",
        kinds(&items)
    );
    b.send(r#"{"action":"send","to":{"group":"room"},"data":"anyone?","id":"q"}"#)
        .await;
    let frames = b.recv_json_n(2).await;
    let ack = frames
        .iter()
        .find(|f| f["type"] == "ack")
        .unwrap_or_else(|| panic!("no ack in {frames:?}"));
    assert_eq!(ack["delivered"], 1, "only bob is still there");
    // bob's 4 records, and the room's stream: its head and the message it keeps.
    let items = stack.await_items(6).await;
    assert_eq!(
        kinds(&items)["uid"],
        1,
        "bob's records are all that is left"
    );
    assert_eq!(kinds(&items)["stream"], 2, "{:?}", kinds(&items));
    let log = stack
        .await_function_log(|line| line.contains("its records were removed"))
        .await;
    assert!(
        !log.contains("$disconnect"),
        "the gateway dropped $disconnect, so the 410 removed alice's records"
    );
}

#[tokio::test]
async fn ping_is_answered_by_the_gateway_itself_and_never_reaches_the_message_function() {
    // The template's `ping` route is a MOCK integration: API Gateway answers it, no Lambda runs
    // and nothing is written. JSON logs, to read each line's action and connection.
    let stack = LocalStack::start(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).await;
    // Connecting asks whoami once: one invocation of the message function.
    let mut a = stack.client("/dev").await;
    for frame in [r#"{"action":"ping"}"#, r#"{"action":"ping","id":"p2"}"#] {
        a.send(frame).await;
        assert_eq!(a.recv().await, r#"{"type":"pong"}"#, "{frame}");
    }
    a.send(r#"{"action":"whoami"}"#).await;
    assert_eq!(a.recv_json().await["type"], "whoami");
    let id = a.connection_id.clone();
    // The actions of the message function's lines for this connection, one per invocation.
    let actions = |log: &str| -> Vec<String> {
        log.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|line| {
                line["span"]["connection_id"] == id.as_str()
                    && line["fields"]["message"] == "message"
            })
            .map(|line| line["fields"]["action"].as_str().unwrap_or("-").to_owned())
            .collect()
    };
    // Each invocation logs its line once it has answered: by the time the second whoami's line
    // is there, a ping sent before it would have logged its own.
    let deadline = std::time::Instant::now() + support::local_stack::PATIENCE;
    let log = loop {
        let log = stack.function_log();
        let whoamis = actions(&log).iter().filter(|a| *a == "whoami").count();
        if whoamis >= 2 || std::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    let actions = actions(&log);
    assert!(
        actions.iter().filter(|a| *a == "whoami").count() >= 2,
        "both whoamis logged: {actions:?}\n{log}"
    );
    assert!(
        !actions.iter().any(|a| a == "ping"),
        "the message function ran for a ping: {actions:?}"
    );
}

#[tokio::test]
async fn a_connection_that_goes_on_past_its_limit_is_closed_and_its_group_told() {
    let stack = LocalStack::start(&[
        ("RATE_LIMIT", "10"),
        ("RATE_WINDOW_SECONDS", "3600"),
        ("RATE_CLOSE_MULTIPLE", "3"),
    ])
    .await;
    let mut follower = stack.client("/dev").await;
    let mut sender = stack.client("/dev").await;
    follower
        .send(r#"{"action":"join","group":"room","presence":true}"#)
        .await;
    assert_eq!(follower.recv_json().await["type"], "joined");
    sender.send(r#"{"action":"join","group":"room"}"#).await;
    assert_eq!(sender.recv_json().await["type"], "joined");
    assert_eq!(follower.recv_json().await["event"], "join");
    // 100 frames without waiting: more than 3 × 10 in the hour's window (or, straddling its
    // end, in one of its two).
    for i in 0..100 {
        sender
            .send(&json!({"action":"send","to":{"group":"room"},"data":i}).to_string())
            .await;
    }
    sender.closed().await;
    loop {
        let frame = follower.recv_json().await;
        if frame["type"] == "presence" && frame["event"] == "leave" {
            assert_eq!(frame["connectionId"], sender.connection_id.as_str());
            break;
        }
        assert_eq!(frame["type"], "message", "{frame}");
    }
}
