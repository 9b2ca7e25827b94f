//! Many real clients at once through the local gateway: they connect, join groups, message each
//! other and leave, concurrently, and at every settled moment the table holds exactly what it
//! should — nothing once everyone has left.
//!
//! `LOAD_CLIENTS` sets how many (100 by default; `make load` runs 1,000).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures_util::future::join_all;
use futures_util::{stream, StreamExt};
use serde_json::json;
use support::local_stack::{kinds, LocalStack};
use support::ws::Ws;

/// Members per group, a chat room's size: each send in flight reaches about this many clients.
const GROUP_SIZE: usize = 10;
/// Handshakes in flight at once. moto's TransactWriteItems copies the whole table to roll back
/// from (about 90 ms per 1,000 items here), and every `join` is a transaction, so each one takes
/// longer as the table grows and moto's queue is what bounds this test. More in
/// flight only lengthens the queue; past the functions' DynamoDB attempt timeout, a write moto
/// still applies after the function gave up is an ambiguous failure whose items only the TTL may
/// remove (tests/handlers.rs covers that case), not what this test is about.
const CONNECTING: usize = 4;

fn clients() -> usize {
    std::env::var("LOAD_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
}

/// How often a client tries again after the store failed it (a `$connect` answered 500, a join
/// answered `internal`). A failed `$connect` takes back whatever it may have written and joining
/// twice is joining once, so the table counts below must come out exact all the same.
const RETRIES: usize = 3;

/// Connects, trying again when `$connect` answered 500 (its store failed).
async fn connect_retrying(stack: &LocalStack, path: &str, retried: &AtomicUsize) -> Ws {
    for _ in 1..RETRIES {
        match stack.try_client(path).await {
            Ok(ws) => return ws,
            Err(500) => {
                retried.fetch_add(1, Ordering::Relaxed);
            }
            Err(status) => panic!("the handshake was refused with {status}"),
        }
    }
    stack.client(path).await
}

/// Reads frames until this client's own ack arrives; other clients' messages may come first.
async fn await_ack(ws: &mut Ws, id: &str) -> u64 {
    loop {
        let frame = ws.recv_json().await;
        if frame["type"] == "ack" && frame["id"] == id {
            return frame["delivered"].as_u64().expect("delivered is a count");
        }
        assert!(frame["type"] == "message", "unexpected frame {frame}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_connect_chat_and_leave_concurrently_and_the_table_ends_empty() {
    let n = clients();
    let groups = (n / GROUP_SIZE).max(1);
    // moto slows as the table grows; an attempt given up on after the default 3.3 s is still
    // carried out and then sent again, which only lengthens its queue.
    let stack = LocalStack::start(&[("DYNAMODB_TIMEOUT_MS", "30000")]).await;
    let started = Instant::now();

    let retried = AtomicUsize::new(0);
    let mut all: Vec<Ws> = stream::iter(0..n)
        .map(|i| {
            let (stack, retried) = (&stack, &retried);
            async move {
                let path = format!("/?uid=user{}", i % (n / 2).max(1));
                let join = json!({"action":"join","group":format!("g{}", i % groups)}).to_string();
                let mut ws = connect_retrying(stack, &path, retried).await;
                // A join that met a failing store answers `internal`: ask again.
                for attempt in 1..=RETRIES {
                    ws.send(&join).await;
                    let answer = ws.recv_json().await;
                    if answer["type"] == "joined" {
                        break;
                    }
                    assert!(
                        answer["code"] == "internal" && attempt < RETRIES,
                        "join answered {answer}"
                    );
                    retried.fetch_add(1, Ordering::Relaxed);
                }
                ws
            }
        })
        .buffer_unordered(CONNECTING)
        .collect()
        .await;
    let connected = started.elapsed();
    let items = stack.await_connection_items(4 * n).await;
    let kinds = kinds(&items);
    assert_eq!(
        (kinds["conn"], kinds["all"], kinds["uid"], kinds["group"]),
        (n, n, n, n),
        "{kinds:?}"
    );

    // Half leave while the other half send to their groups: messages in flight to leaving clients.
    let staying = all.split_off(n / 2);
    let leaving = all;
    let sends = join_all(staying.into_iter().enumerate().map(|(i, mut ws)| async move {
        let id = format!("m{i}");
        ws.send(&json!({"action":"send","to":{"group":format!("g{}", i % groups)},"data":i,"id":id}).to_string())
            .await;
        let delivered = await_ack(&mut ws, &id).await;
        (ws, delivered)
    }));
    let leaves = join_all(leaving.into_iter().map(|ws| ws.close()));
    let (sent, _) = tokio::join!(sends, leaves);
    let delivered: u64 = sent.iter().map(|(_, d)| d).sum();
    let mid = started.elapsed();
    let items = stack.await_connection_items(4 * (n - n / 2)).await;
    assert!(items.iter().all(|i| i.contains_key("expiresAt")));

    join_all(sent.into_iter().map(|(ws, _)| ws.close())).await;
    stack.await_connection_items(0).await;
    println!(
        "{n} clients ({} handshakes or joins retried after a store failure): all connected and joined in {:.1} s; {} group sends delivered {delivered} messages while {} left, by {:.1} s; no connection item left at {:.1} s (group streams stay until their TTL)",
        retried.load(Ordering::Relaxed),
        connected.as_secs_f64(),
        n - n / 2,
        n / 2,
        mid.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
