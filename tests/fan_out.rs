//! Sends too large for one invocation, through the real stack: spread over the fan-out function
//! by the fan-out queue (moto's SQS) and the local gateway's event source, which hands jobs to
//! the function as Lambda's SQS event source mapping does (protocol: "Large sends").

use std::time::Duration;

use serde_json::{json, Value};
use support::local_stack::{LocalStack, PATIENCE};
use support::sqs::{self, QueueSettings};
use support::ws::Ws;

/// The queue as the template makes it: visibility 25 s, the function's timeout 20 s, three
/// receives before the dead-letter queue.
fn queue() -> QueueSettings {
    QueueSettings {
        visibility_timeout: 25,
        max_receive_count: 3,
        max_concurrency: 5,
        function_timeout: 20,
    }
}

/// [`queue`] for a test that waits for a visibility timeout to pass: both timeouts shortened, the
/// visibility timeout still past the function's, as Lambda requires.
fn quick_queue(visibility_timeout: u32, function_timeout: u32) -> QueueSettings {
    QueueSettings {
        visibility_timeout,
        function_timeout,
        ..queue()
    }
}

/// Reads `ws`'s frames until one carries `data`.
async fn await_data(ws: &mut Ws, data: &str) -> Value {
    loop {
        let frame = ws.recv_json().await;
        if frame["data"] == data {
            return frame;
        }
    }
}

/// The sender's ack, among its next two frames (the ack and its own copy, in either order).
async fn ack_and_copy(sender: &mut Ws) -> Value {
    let frames = sender.recv_json_n(2).await;
    frames
        .into_iter()
        .find(|frame| frame["type"] == "ack")
        .expect("an ack among the sender's frames")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broadcast_past_spread_above_is_pushed_by_the_workers_and_acked_as_queued() {
    let stack = LocalStack::start_spreading(
        &[("SPREAD_ABOVE", "3"), ("FAN_OUT_JOB_SIZE", "2")],
        queue(),
        |_| {},
    )
    .await;
    let mut listeners = Vec::new();
    for _ in 0..6 {
        listeners.push(stack.client("/dev").await);
    }
    let mut sender = stack.client("/dev").await;
    sender
        .send(r#"{"action":"send","to":{"all":true},"data":"to all","id":"b1"}"#)
        .await;
    let ack = ack_and_copy(&mut sender).await;
    assert_eq!(
        ack,
        json!({"type":"ack","id":"b1","delivered":0,"queued":7})
    );
    for listener in &mut listeners {
        let frame = await_data(listener, "to all").await;
        assert_eq!(frame["type"], "message");
        assert_eq!(frame["to"], json!({"all": true}));
    }
    // Seven recipients in jobs of two: four jobs, each pushed by the fan-out function.
    let log = stack.await_function_log_count("fan-out job done", 4).await;
    assert_eq!(log.matches("fan-out job done").count(), 4, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_within_spread_above_is_pushed_by_its_own_invocation() {
    let stack = LocalStack::start_spreading(&[("SPREAD_ABOVE", "3")], queue(), |_| {}).await;
    let mut member = stack.client("/dev").await;
    member.send(r#"{"action":"join","group":"g"}"#).await;
    assert_eq!(member.recv_json().await["type"], "joined");
    let mut sender = stack.client("/dev").await;
    sender
        .send(r#"{"action":"send","to":{"group":"g"},"data":"small","id":"s1"}"#)
        .await;
    let ack = sender.recv_json().await;
    assert_eq!(ack["delivered"], 1, "{ack}");
    assert!(ack.get("queued").is_none(), "{ack}");
    assert_eq!(await_data(&mut member, "small").await["group"], "g");
    assert!(!stack.function_log().contains("fan-out job"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_job_leaves_no_recipient_without_the_message() {
    // @connections throttled to 4 requests a second: one job of ten recipients takes seconds,
    // its pushes met with 429s that the worker waits out.
    let stack = LocalStack::start_spreading(
        &[
            ("SPREAD_ABOVE", "1"),
            ("FAN_OUT_JOB_SIZE", "50"),
            // The claim lasts the function's timeout, as on Lambda (the invocation's deadline,
            // which `cargo lambda watch` does not give); pushes start only while one could end
            // within it (PUSH_TIMEOUT_MS and a second before its end).
            ("FAN_OUT_LEASE_SECONDS", "6"),
            ("PUSH_TIMEOUT_MS", "1000"),
        ],
        quick_queue(8, 6),
        |aws| aws.push_rate_limit = Some(4),
    )
    .await;
    // Clients that ask nothing (the throttle would hold up their `whoami`): only the
    // broadcast's pushes count against it.
    let mut listeners = Vec::new();
    for _ in 0..10 {
        listeners.push(stack.raw_client("/dev").await);
    }
    let mut sender = stack.raw_client("/dev").await;
    sender
        .send(r#"{"action":"send","to":{"all":true},"data":"survives","excludeSelf":true}"#)
        .await;
    // The first recipient has it: the job is under way. Its environment dies.
    let first = tokio::time::timeout(PATIENCE, async {
        loop {
            for (index, listener) in listeners.iter_mut().enumerate() {
                if let Ok(frame) =
                    tokio::time::timeout(Duration::from_millis(20), listener.recv_json()).await
                {
                    if frame["data"] == "survives" {
                        return index;
                    }
                }
            }
        }
    })
    .await
    .expect("a recipient got the message");
    assert!(
        stack.kill_busiest_function("fan-out"),
        "no fan-out process was pushing"
    );
    // The job comes back after the visibility timeout and is pushed again whole: every
    // recipient gets the message, the first ones possibly twice.
    for (index, listener) in listeners.iter_mut().enumerate() {
        if index != first {
            await_data(listener, "survives").await;
        }
    }
    let log = stack.await_function_log_count("fan-out job done", 1).await;
    let done: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("fan-out job done"))
        .collect();
    assert_eq!(done.len(), 1, "{log}");
    assert!(
        !done[0].contains("receives=\"1\""),
        "the job was done at its first delivery, which was killed:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_that_always_fails_lands_in_the_dead_letter_queue_and_is_logged() {
    let stack = LocalStack::start_spreading(&[], quick_queue(5, 5), |_| {}).await;
    let queues = stack.fan_out.clone().expect("the stack's queues");
    sqs::send(&queues.queue_url, "not a job").await;
    assert_eq!(
        sqs::await_message(&queues.dead_letter_url, PATIENCE).await,
        "not a job"
    );
    // One failure logged per receive: three (maxReceiveCount), then no more.
    let log = stack
        .await_function_log_count("fan-out job failed", 3)
        .await;
    assert_eq!(log.matches("fan-out job failed").count(), 3, "{log}");
}
