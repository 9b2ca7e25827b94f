//! The server API through the whole local stack: backends in Python and Node, each with nothing
//! but its standard library (`examples/backends`), sign requests to the `api` function's URL
//! (served by the local gateway at `POST /api`, as Lambda serves a function URL); and what a
//! request that is badly signed, replayed or malformed gets: an error, and no change.

use serde_json::{json, Value};
use shared::server_api::signature;
use support::local_stack::LocalStack;
use support::ws::Ws;

const SECRET: &str = "the-server-api-secret-of-the-tests";

async fn stack() -> LocalStack {
    LocalStack::start(&[("API_SECRET", SECRET)]).await
}

fn api_url(stack: &LocalStack) -> String {
    format!("http://{}/api", stack.gateway_address)
}

/// `alice` (not in the room) and `bob`, a member of `room-1`.
async fn alice_and_bob_in_room_1(stack: &LocalStack) -> (Ws, Ws) {
    let alice = stack.client("/?uid=alice").await;
    let mut bob = stack.client("/?uid=bob").await;
    bob.send(r#"{"action":"join","group":"room-1"}"#).await;
    assert_eq!(bob.recv_json().await["type"], "joined");
    (alice, bob)
}

/// Runs an example backend: what it printed, as JSON.
async fn run_backend(stack: &LocalStack, program: &str, script: &str) -> Value {
    let output = tokio::process::Command::new(program)
        .arg(support::local_stack::workspace_root().join(script))
        .args(["alice", "room-1"])
        .env("GATEWAY_URL", api_url(stack))
        .env("GATEWAY_SECRET", SECRET)
        .output()
        .await
        .unwrap_or_else(|e| panic!("could not run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{stdout} is not JSON: {e}"))
}

async fn backend_pushes_to_a_uid_and_a_group_and_reads_presence(program: &str, script: &str) {
    let stack = stack().await;
    let (mut alice, mut bob) = alice_and_bob_in_room_1(&stack).await;
    let results = run_backend(&stack, program, script).await;
    assert_eq!(
        results,
        json!([
            {"delivered": 1, "gone": 0},
            {"delivered": 1, "gone": 0},
            {"group": "room-1", "connections": 1, "uids": ["bob"]},
        ])
    );
    assert_eq!(
        alice.recv_json().await,
        json!({"type": "notice", "text": "your order shipped"})
    );
    assert_eq!(bob.recv().await, "the room hears this");
}

#[tokio::test]
async fn a_python_backend_pushes_to_a_uid_and_a_group_and_reads_presence() {
    backend_pushes_to_a_uid_and_a_group_and_reads_presence(
        "python3",
        "examples/backends/python/notify.py",
    )
    .await;
}

#[tokio::test]
async fn a_node_backend_pushes_to_a_uid_and_a_group_and_reads_presence() {
    backend_pushes_to_a_uid_and_a_group_and_reads_presence(
        "node",
        "examples/backends/node/notify.mjs",
    )
    .await;
}

/// Posts `body` signed with `secret` at `t`; the status and the answer.
async fn post(stack: &LocalStack, body: &str, secret: &str, t: i64) -> (u16, Value) {
    let header = signature::sign(secret.as_bytes(), t, body.as_bytes());
    let response = reqwest::Client::new()
        .post(api_url(stack))
        .header("content-type", "application/json")
        .header(signature::HEADER, header)
        .body(body.to_owned())
        .send()
        .await
        .expect("the function URL answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

const SEND_TO_ALICE: &str = r#"{"calls":[{"call":"send","to":{"uid":"alice"},"data":"hi"}]}"#;

/// A PHP web backend's own `Gateway::` calls (clients/php), only its settings changed.
#[tokio::test]
async fn a_php_backend_calls_gatewayworkers_gateway_class_unchanged() {
    let stack = stack().await;
    let (mut alice, mut bob) = alice_and_bob_in_room_1(&stack).await;
    let printed = run_backend(&stack, "php", "examples/backends/php/notify.php").await;
    assert_eq!(printed, json!({"connections": 1, "uids": ["bob"]}));
    assert_eq!(
        alice.recv_json().await,
        json!({"type": "notice", "text": "your order shipped"})
    );
    assert_eq!(bob.recv().await, "the room hears this");
}

#[tokio::test]
async fn a_request_signed_with_another_secret_or_long_ago_is_refused_and_sends_nothing() {
    let stack = stack().await;
    let (mut alice, _bob) = alice_and_bob_in_room_1(&stack).await;
    let now = shared::store::now_secs();
    let (status, answer) = post(&stack, SEND_TO_ALICE, "not-the-secret", now).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (401, &json!("unauthorized")),
        "{answer}"
    );
    let (status, answer) = post(&stack, SEND_TO_ALICE, SECRET, now - 600).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("s away from now"),
        "{answer}"
    );
    alice.expect_nothing_pending().await;
}

#[tokio::test]
async fn a_signed_request_sent_twice_runs_once() {
    let stack = stack().await;
    let (mut alice, _bob) = alice_and_bob_in_room_1(&stack).await;
    let now = shared::store::now_secs();
    let header = signature::sign(SECRET.as_bytes(), now, SEND_TO_ALICE.as_bytes());
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let response = reqwest::Client::new()
            .post(api_url(&stack))
            .header(signature::HEADER, &header)
            .body(SEND_TO_ALICE)
            .send()
            .await
            .expect("the function URL answers");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 401], "the replay is refused");
    assert_eq!(alice.recv().await, "hi");
    alice.expect_nothing_pending().await;
}

#[tokio::test]
async fn a_malformed_request_is_refused_whole_and_changes_nothing() {
    let stack = stack().await;
    let (mut alice, _bob) = alice_and_bob_in_room_1(&stack).await;
    let body = r#"{"calls":[{"call":"send","to":{"uid":"alice"},"data":"hi"},{"call":"join","client":"x=","group":"no spaces"}]}"#;
    let (status, answer) = post(&stack, body, SECRET, shared::store::now_secs()).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("call 1 (join)"),
        "{answer}"
    );
    alice.expect_nothing_pending().await;
}

/// The Invoke door, as a backend on AWS uses it: boto3 (the test tools' Python has it), signing
/// for `lambda` with the local credentials, through the local gateway's Invoke API.
#[tokio::test]
async fn a_backend_on_aws_invokes_the_function_with_the_request_as_its_payload() {
    let stack = stack().await;
    let (mut alice, _bob) = alice_and_bob_in_room_1(&stack).await;
    let python = support::local_stack::workspace_root().join(".tools/venv/bin/python");
    let output = tokio::process::Command::new(python)
        .arg(support::local_stack::workspace_root().join("examples/backends/python/invoke.py"))
        .arg("alice")
        .env(
            "LAMBDA_ENDPOINT",
            format!("http://{}", stack.gateway_address),
        )
        .env("GATEWAY_FUNCTION", "api")
        .env("AWS_ACCESS_KEY_ID", support::local_stack::ACCESS_KEY_ID)
        .env(
            "AWS_SECRET_ACCESS_KEY",
            support::local_stack::SECRET_ACCESS_KEY,
        )
        .env("AWS_SESSION_TOKEN", support::local_stack::SESSION_TOKEN)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .await
        .expect("run invoke.py with the test tools' Python (make test installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "invoke.py failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(answer["results"][0], json!({"delivered": 1, "gone": 0}));
    assert_eq!(answer["results"][1]["online"], true);
    assert_eq!(
        alice.recv_json().await,
        json!({"type": "notice", "text": "from invoke"})
    );
}

#[tokio::test]
async fn an_invoke_carries_the_request_itself_and_is_answered_with_the_results() {
    let stack = stack().await;
    let (mut alice, _bob) = alice_and_bob_in_room_1(&stack).await;
    let gateway = stack.api();
    let request: Value = serde_json::from_str(SEND_TO_ALICE).expect("JSON");
    let answer = shared::lambda::api::handle(&gateway, None, request).await;
    assert_eq!(answer, json!({"results": [{"delivered": 1, "gone": 0}]}));
    assert_eq!(alice.recv().await, "hi");
}
