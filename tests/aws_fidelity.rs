//! Where API Gateway is harsher than a friendly emulator, the local gateway is too — and the
//! service survives it: pushes that race a handshake get 410, one connection's frames run at
//! once, `@connections` wants the stage and a signature, pushes and messages have size limits,
//! `$disconnect` may never come.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;
use shared::protocol::Target;
use support::local_stack::{kinds, LocalStack};

/// Clients connecting during the storm (`FIDELITY_CLIENTS`; the README's check runs 200).
fn storm_clients() -> usize {
    std::env::var("FIDELITY_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_connecting_during_a_push_storm_all_receive_the_next_broadcast() {
    let stack = LocalStack::start(&[]).await;
    let api = Arc::new(stack.api());
    let count = storm_clients();
    let uids: Vec<String> = (0..count).map(|i| format!("storm-{i}")).collect();
    let storming = Arc::new(AtomicBool::new(true));
    // Broadcasts and uid sends without pause: each one that reaches a connection whose
    // handshake is still under way is answered 410 by the gateway, as by API Gateway.
    let storms: Vec<_> = [Target::All, Target::Uids(uids.clone())]
        .into_iter()
        .map(|target| {
            let (api, storming) = (api.clone(), storming.clone());
            tokio::spawn(async move {
                let mut gone = 0;
                while storming.load(Ordering::Relaxed) {
                    let report = api
                        .send_to(&target, "storm", &[])
                        .await
                        .expect("storm send");
                    gone += report.gone;
                }
                gone
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(count);
    for chunk in uids.chunks(8) {
        let paths: Vec<String> = chunk.iter().map(|uid| format!("/dev?uid={uid}")).collect();
        clients.extend(join_all(paths.iter().map(|path| stack.raw_client(path))).await);
    }
    storming.store(false, Ordering::Relaxed);
    let mut raced = 0;
    for storm in storms {
        raced += storm.await.expect("storm task");
    }
    let report = api
        .send_to(&Target::All, "after the storm", &[])
        .await
        .expect("the last broadcast");
    assert_eq!(
        report.delivered, count,
        "{raced} pushes raced a handshake; the last broadcast reached {} of {count} clients \
         (the others lost their records to a 410)",
        report.delivered
    );
    for client in &mut clients {
        while client.recv().await != "after the storm" {}
    }
    assert!(
        raced > 0,
        "no push met a handshake, so this run proved nothing: connect more clients"
    );
    println!("{raced} pushes were answered 410 while {count} clients connected; all reachable");
}

#[tokio::test]
async fn a_connections_frames_run_at_once_and_none_is_answered_internal() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/dev").await;
    a.send(r#"{"action":"join","group":"busy"}"#).await;
    a.send(r#"{"action":"send","to":{"group":"busy"},"data":"hi","id":"m1"}"#)
        .await;
    for _ in 0..50 {
        a.send(r#"{"action":"ping"}"#).await;
    }
    let (mut pongs, mut joined, mut acked) = (0, false, false);
    while pongs < 50 || !joined || !acked {
        let frame = a.recv_json().await;
        assert_ne!(frame["type"], "error", "{frame}");
        match frame["type"].as_str() {
            Some("pong") => pongs += 1,
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
            assert_eq!(frame["groups"], json!(["busy"]));
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
        shared::sigv4::encode_segment(&a.connection_id)
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
        shared::sigv4::encode_segment(&a.connection_id)
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
    let items = stack.items().await;
    assert_eq!(items.len(), 8, "alice's records stay: {:?}", kinds(&items));
    b.send(r#"{"action":"send","to":{"group":"room"},"data":"anyone?","id":"q"}"#)
        .await;
    let frames = b.recv_json_n(2).await;
    let ack = frames
        .iter()
        .find(|f| f["type"] == "ack")
        .unwrap_or_else(|| panic!("no ack in {frames:?}"));
    assert_eq!(ack["delivered"], 1, "only bob is still there");
    let items = stack.await_items(4).await;
    assert_eq!(
        kinds(&items)["uid"],
        1,
        "bob's records are all that is left"
    );
}
