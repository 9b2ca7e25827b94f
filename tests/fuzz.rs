//! Property tests of the message handler over a real store: whatever a client sends, it gets the
//! protocol's answer, the connection stays, and nothing is written for anyone else or left behind.
//!
//! `PROPTEST_CASES` sets how many frames (256 by default; `make fuzz` runs many more).

use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::Value;
use support::frames;
use support::stack::{s, Item, Stack};

const CODES: &[&str] = &[
    "unknown_action",
    "bad_request",
    "too_large",
    "rate_limited",
    "internal",
];
const TYPES: &[&str] = protocol::FRAME_TYPES;

/// Checks that one reply is the protocol's: the echo of the frame, the broadcast text of a
/// `sendmessage`, or a JSON frame of a known type (errors with a known code and words).
fn is_protocol_reply(frame: &str, reply: &str) -> Result<(), String> {
    if reply == format!("Hello, you sent: {frame}") {
        return Ok(());
    }
    let parsed: Result<Value, _> = serde_json::from_str(frame);
    if let Ok(Value::Object(map)) = &parsed {
        if map.get("action") == Some(&Value::from("sendmessage")) {
            let expected = match map.get("data") {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            if reply == expected {
                return Ok(());
            }
        }
    }
    // A message carries the sender's data as written, which may nest deeper than serde_json
    // parses by default: its envelope is what the service wrote.
    if reply.starts_with(r#"{"type":"message","from":{"connectionId":"A=","uid":"fuzzer"},"to":"#) {
        return Ok(());
    }
    let reply: Value =
        serde_json::from_str(reply).map_err(|_| format!("not the protocol's: {reply:?}"))?;
    let kind = reply["type"].as_str().unwrap_or_default();
    if !TYPES.contains(&kind) {
        return Err(format!("unknown reply type: {reply}"));
    }
    if kind == "error" {
        let code = reply["code"].as_str().unwrap_or_default();
        if !CODES.contains(&code) || reply["message"].as_str().is_none_or(str::is_empty) {
            return Err(format!("an error frame without a code or words: {reply}"));
        }
        if code == "internal" {
            return Err(format!("a client frame caused an internal error: {reply}"));
        }
    }
    Ok(())
}

/// An item of a group's stream (its head, a kept message): it outlives connections, until its TTL.
fn is_group_stream(item: &Item) -> bool {
    s(item, "pk").is_some_and(|pk| pk.starts_with("stream#"))
}

#[test]
fn every_frame_gets_the_protocols_answer_and_leaves_nothing_behind() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stack = runtime.block_on(async {
        let stack = Stack::with_config(|c| c.rate_limit = 0).await;
        assert_eq!(stack.connect("A=", &[("uid", "fuzzer")]).await, 200);
        stack
    });
    let config = RunnerConfig {
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    runner
        .run(&frames::frame(), |frame| {
            runtime.block_on(async {
                stack.send("A=", &frame).await;
                let replies = stack.received("A=");
                if replies.is_empty() {
                    // Only a broadcast, or a send, whose target excludes the sender, answers nothing.
                    let action = serde_json::from_str::<Value>(&frame)
                        .ok()
                        .and_then(|v| v.get("action").and_then(Value::as_str).map(str::to_owned));
                    let quiet = matches!(action.as_deref(), Some("sendmessage" | "send"));
                    if !quiet {
                        return Err(TestCaseError::fail(format!("no answer to {frame:?}")));
                    }
                }
                for reply in &replies {
                    is_protocol_reply(&frame, reply).map_err(TestCaseError::fail)?;
                }
                let items = stack.items().await;
                if !items.iter().any(|i| s(i, "sk") == Some("conn")) {
                    return Err(TestCaseError::fail(format!(
                        "{frame:?} lost the connection's record"
                    )));
                }
                // A send to one group may number and keep it in the group's stream: a fact of
                // the group, not of a connection, which expires like every item.
                if let Some(untimed) = items.iter().find(|i| !i.contains_key("expiresAt")) {
                    return Err(TestCaseError::fail(format!(
                        "{frame:?} wrote {untimed:?} without a TTL"
                    )));
                }
                if let Some(stray) = items
                    .iter()
                    .find(|i| !is_group_stream(i) && s(i, "connectionId") != Some("A="))
                {
                    return Err(TestCaseError::fail(format!("{frame:?} wrote {stray:?}")));
                }
                Ok(())
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{cases} frames, every one answered by the protocol");
    runtime.block_on(async {
        assert_eq!(stack.disconnect("A=").await, 200);
        let left = stack.items().await;
        assert!(
            left.iter().all(is_group_stream),
            "a disconnect after the fuzzing leaves nothing of the connection behind: {left:?}"
        );
    });
}
