//! The three functions' handlers against a real DynamoDB-compatible server and a push endpoint
//! that records what it receives: the wire protocol, what the table holds, and what is pruned.

use serde_json::json;
use shared::spread::{Job, Set};
use shared::store::{now_millis, now_secs, ConnectionRecord, Store};
use support::stack::{s, Stack};

/// A record as `$connect` writes it, for a test to place in the table itself.
fn record(
    connection_id: &str,
    uid: Option<&str>,
    connected_at: i64,
    expires_at: i64,
) -> ConnectionRecord {
    ConnectionRecord {
        connection_id: connection_id.into(),
        connected_at,
        source_ip: None,
        user_agent: None,
        uid: uid.map(str::to_owned),
        groups: Default::default(),
        expires_at,
        session: None,
    }
}

async fn stack_with(ids: &[&str]) -> Stack {
    let stack = Stack::start().await;
    for id in ids {
        assert_eq!(stack.connect(id, &[]).await, 200);
    }
    stack
}

#[tokio::test]
async fn connect_records_the_connection_with_its_source_and_a_ttl() {
    let stack = stack_with(&["A="]).await;
    let items = stack.items_of("A=").await;
    let record = items
        .iter()
        .find(|i| s(i, "sk") == Some("conn"))
        .expect("a connection item");
    assert_eq!(s(record, "sourceIp"), Some("10.0.0.13"));
    assert!(record.contains_key("connectedAt"));
    assert_eq!(
        items.len(),
        2,
        "the connection and its place in 'all': {items:?}"
    );
}

#[tokio::test]
async fn every_item_carries_a_ttl_between_two_and_twenty_four_hours_ahead() {
    let stack = Stack::start().await;
    assert_eq!(stack.connect("A=", &[("uid", "alice")]).await, 200);
    stack
        .send("A=", r#"{"action":"join","group":"room-1"}"#)
        .await;
    let items = stack.items_but_counts().await;
    assert_eq!(
        items.len(),
        4,
        "connection, all, uid and group items: {items:?}"
    );
    let now = now_secs();
    let window = shared::Config::DEFAULT_RATE_WINDOW.as_secs() as i64;
    for count in rate_items(&stack, "A=").await {
        let ttl: i64 = count["expiresAt"].as_n().unwrap().parse().unwrap();
        assert!(
            ttl > now && ttl <= now + window + 60,
            "a rate count outlives its window by a minute: {count:?}"
        );
    }
    for item in items {
        let ttl: i64 = item["expiresAt"]
            .as_n()
            .expect("expiresAt is a Number")
            .parse()
            .unwrap();
        assert!(
            ttl > now + 2 * 3600 && ttl < now + 24 * 3600,
            "ttl {ttl} of {item:?}"
        );
    }
}

#[tokio::test]
async fn a_plain_frame_is_echoed_to_the_sender_only() {
    let stack = stack_with(&["A=", "B="]).await;
    stack.send("A=", "hello {not json").await;
    assert_eq!(
        stack.received("A="),
        vec!["Hello, you sent: hello {not json".to_owned()]
    );
    assert!(stack.received("B=").is_empty());
}

#[tokio::test]
async fn json_without_a_string_action_is_echoed_byte_for_byte() {
    let stack = stack_with(&["A="]).await;
    let body = r#"{ "action" : 7, "x": "é" }"#;
    stack.send("A=", body).await;
    assert_eq!(
        stack.received("A="),
        vec![format!("Hello, you sent: {body}")]
    );
}

#[tokio::test]
async fn sendmessage_reaches_every_connection_including_the_sender() {
    let stack = stack_with(&["A=", "B=", "C="]).await;
    stack
        .send("B=", r#"{"action":"sendmessage","data":"hi all"}"#)
        .await;
    for id in ["A=", "B=", "C="] {
        assert_eq!(stack.received(id), vec!["hi all".to_owned()], "{id}");
    }
}

#[tokio::test]
async fn sendmessage_sends_non_string_data_as_compact_json() {
    let stack = stack_with(&["A="]).await;
    stack
        .send("A=", r#"{"action":"sendmessage","data": {"n": [1, 2]} }"#)
        .await;
    assert_eq!(stack.received("A="), vec![r#"{"n":[1,2]}"#.to_owned()]);
}

#[tokio::test]
async fn ping_answers_pong() {
    let stack = stack_with(&["A="]).await;
    stack.send("A=", r#"{"action":"ping"}"#).await;
    assert_eq!(stack.received_json("A="), json!({"type":"pong"}));
}

#[tokio::test]
async fn whoami_names_the_connection_its_uid_and_its_sorted_groups() {
    let stack = Stack::start().await;
    assert_eq!(stack.connect("A=", &[("uid", "alice")]).await, 200);
    stack
        .send("A=", r#"{"action":"join","group":"zeta"}"#)
        .await;
    stack
        .send("A=", r#"{"action":"join","group":"alpha"}"#)
        .await;
    stack.received("A=");
    stack.send("A=", r#"{"action":"whoami"}"#).await;
    assert_eq!(
        stack.received_json("A="),
        json!({"type":"whoami","connectionId":"A=","uid":"alice","groups":["alpha","zeta"]})
    );
}

#[tokio::test]
async fn an_anonymous_whoami_has_a_null_uid_and_no_groups() {
    let stack = stack_with(&["A="]).await;
    stack.send("A=", r#"{"action":"whoami"}"#).await;
    assert_eq!(
        stack.received_json("A="),
        json!({"type":"whoami","connectionId":"A=","uid":null,"groups":[]})
    );
}

#[tokio::test]
async fn an_unknown_action_gets_an_error_frame_and_the_connection_stays() {
    let stack = stack_with(&["A="]).await;
    stack.send("A=", r#"{"action":"dance"}"#).await;
    let frame = stack.received_json("A=");
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["code"], "unknown_action");
    assert_eq!(frame["action"], "dance");
    assert!(frame["message"].as_str().unwrap().contains("dance"));
    stack.send("A=", r#"{"action":"ping"}"#).await;
    assert_eq!(stack.received_json("A="), json!({"type":"pong"}));
}

#[tokio::test]
async fn a_malformed_command_gets_bad_request_and_writes_nothing() {
    let stack = stack_with(&["A="]).await;
    let before = stack.items_but_counts().await.len();
    for body in [
        r#"{"action":"join","group":"has space"}"#,
        r#"{"action":"join"}"#,
        r#"{"action":"send","to":{"uid":"a","group":"b"},"data":1}"#,
        r#"{"action":"send","to":{"all":false},"data":1}"#,
        r#"{"action":"send","to":{"all":true}}"#,
        r#"{"action":"sendmessage"}"#,
    ] {
        stack.send("A=", body).await;
        let frame = stack.received_json("A=");
        assert_eq!(frame["code"], "bad_request", "{body}");
        assert!(frame["action"].is_string(), "{body}");
    }
    assert_eq!(stack.items_but_counts().await.len(), before);
}

#[tokio::test]
async fn a_message_over_the_limit_is_too_large_and_reaches_no_one() {
    let stack = Stack::with_config(|c| c.max_message_bytes = 1024).await;
    for id in ["A=", "B="] {
        stack.connect(id, &[]).await;
    }
    let data = "x".repeat(1024);
    stack
        .send(
            "A=",
            &format!(r#"{{"action":"sendmessage","data":"{data}"}}"#),
        )
        .await;
    let frame = stack.received_json("A=");
    assert_eq!(frame["code"], "too_large");
    assert!(stack.received("B=").is_empty());
}

#[tokio::test]
async fn a_message_at_the_limit_is_carried_out() {
    let stack = Stack::with_config(|c| c.max_message_bytes = 64).await;
    stack.connect("A=", &[]).await;
    let body = format!("{:<64}", "hello");
    stack.send("A=", &body).await;
    assert_eq!(
        stack.received("A="),
        vec![format!("Hello, you sent: {body}")]
    );
}

#[tokio::test]
async fn a_410_on_a_push_removes_that_connection_and_is_not_an_error() {
    let stack = Stack::start().await;
    for id in ["A=", "B=", "C="] {
        stack.connect(id, &[]).await;
    }
    stack.connect("G=", &[("uid", "ghost")]).await;
    stack
        .send("G=", r#"{"action":"join","group":"room"}"#)
        .await;
    stack.received("G=");
    stack.sink.mark_gone("G=");
    stack
        .send("A=", r#"{"action":"sendmessage","data":"hi"}"#)
        .await;
    for id in ["A=", "B=", "C="] {
        assert_eq!(stack.received(id), vec!["hi".to_owned()], "{id}");
    }
    assert!(
        stack.items_of("G=").await.is_empty(),
        "the gone connection's items are removed"
    );
    assert_eq!(
        stack.items_of("A=").await.len(),
        2,
        "the sender's items stay"
    );
}

#[tokio::test]
async fn a_410_on_the_senders_own_reply_removes_the_sender() {
    let stack = stack_with(&["A="]).await;
    stack.sink.mark_gone("A=");
    stack.send("A=", r#"{"action":"ping"}"#).await;
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn disconnect_leaves_nothing_behind() {
    let stack = Stack::start().await;
    stack.connect("A=", &[("uid", "alice")]).await;
    stack.connect("B=", &[]).await;
    stack.send("A=", r#"{"action":"join","group":"g1"}"#).await;
    stack.send("A=", r#"{"action":"join","group":"g2"}"#).await;
    stack.send("B=", r#"{"action":"join","group":"g1"}"#).await;
    assert_eq!(stack.disconnect("A=").await, 200);
    assert!(stack.items_of("A=").await.is_empty());
    assert_eq!(stack.disconnect("B=").await, 200);
    assert!(
        stack.items_but_counts().await.is_empty(),
        "only the rate counts are left, to their TTL"
    );
}

#[tokio::test]
async fn a_second_disconnect_is_harmless() {
    let stack = stack_with(&["A="]).await;
    assert_eq!(stack.disconnect("A=").await, 200);
    assert_eq!(stack.disconnect("A=").await, 200);
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn three_connect_chat_and_leave_with_an_empty_table_at_the_end() {
    let stack = stack_with(&["A=", "B=", "C="]).await;
    stack.send("A=", "plain").await;
    stack
        .send("C=", r#"{"action":"sendmessage","data":"from C"}"#)
        .await;
    assert_eq!(
        stack.received("A="),
        vec!["Hello, you sent: plain".to_owned(), "from C".to_owned()]
    );
    assert_eq!(stack.received("B="), vec!["from C".to_owned()]);
    assert_eq!(stack.received("C="), vec!["from C".to_owned()]);
    assert_eq!(
        stack.items().await.len(),
        8,
        "each connection and its place in 'all', and the rate counts of A and C"
    );
    for id in ["A=", "B=", "C="] {
        stack.disconnect(id).await;
    }
    assert!(stack.items_but_counts().await.is_empty());
    assert_eq!(
        stack.items().await.len(),
        2,
        "the rate counts of A and C, left to their TTL"
    );
}

#[tokio::test]
async fn a_push_answered_429_then_500_is_retried_and_delivered() {
    let stack = stack_with(&["A=", "B="]).await;
    stack.sink.fail_next("B=", &[429, 500]);
    stack
        .send(
            "A=",
            r#"{"action":"send","to":{"connectionId":"B="},"data":"hi","id":"r"}"#,
        )
        .await;
    assert_eq!(
        stack.received_json("A="),
        json!({"type":"ack","id":"r","delivered":1})
    );
    assert_eq!(stack.received("B=").len(), 1);
    assert_eq!(stack.sink.posts(), 4, "two failures, the delivery, the ack");
}

#[tokio::test]
async fn a_push_that_keeps_failing_is_reported_to_the_sender_and_keeps_the_records() {
    let stack = stack_with(&["A=", "B=", "C="]).await;
    stack.sink.fail_next("B=", &[500, 500, 500]);
    stack
        .send(
            "A=",
            r#"{"action":"send","to":{"all":true},"data":"hi","excludeSelf":true,"id":"f"}"#,
        )
        .await;
    let frames = stack.received("A=");
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&frames[0]).unwrap(),
        json!({"type":"ack","id":"f","delivered":1})
    );
    let error: serde_json::Value = serde_json::from_str(&frames[1]).unwrap();
    assert_eq!(error["code"], "internal");
    assert_eq!(error["action"], "send");
    assert!(
        error["message"].as_str().unwrap().contains("1 of 2"),
        "{error}"
    );
    assert_eq!(stack.received("C="), vec![r#"{"type":"message","from":{"connectionId":"A=","uid":null},"to":{"all":true},"data":"hi"}"#.to_owned()]);
    assert_eq!(
        stack.items_of("B=").await.len(),
        2,
        "a failed push is not a 410: B's records stay"
    );
}

/// A day-long window, so that no window boundary falls inside a test.
fn limit_of_three(c: &mut shared::Config) {
    c.rate_limit = 3;
    c.rate_window = std::time::Duration::from_secs(86_400);
}

#[tokio::test]
async fn frames_over_the_limit_fan_out_to_no_one_and_only_the_first_is_told() {
    let stack = Stack::with_config(limit_of_three).await;
    for id in ["A=", "B="] {
        stack.connect(id, &[]).await;
    }
    for _ in 0..3 {
        stack
            .send("A=", r#"{"action":"sendmessage","data":"hi"}"#)
            .await;
    }
    assert_eq!(stack.received("B=").len(), 3);
    stack.received("A=");
    stack
        .send("A=", r#"{"action":"sendmessage","data":"spam"}"#)
        .await;
    assert_eq!(stack.received_json("A=")["code"], "rate_limited");
    assert!(
        stack.received("B=").is_empty(),
        "a frame over the limit fans out to no one"
    );
    // Another Lambda environment has not seen the count: it counts the frame, which is over.
    let other = Stack::another_environment(&stack, limit_of_three).await;
    other
        .send("A=", r#"{"action":"sendmessage","data":"spam"}"#)
        .await;
    assert!(
        other.received("A=").is_empty(),
        "the window's refusal was told once already"
    );
    assert!(other.received("B=").is_empty());
    stack.send("B=", r#"{"action":"ping"}"#).await;
    assert_eq!(
        stack.received_json("B="),
        json!({"type":"pong"}),
        "the limit is per connection"
    );
}

#[tokio::test]
async fn an_environment_that_saw_the_limit_drops_the_next_frames_without_a_write_when_closing_is_off(
) {
    let stack = Stack::with_config(|c| {
        limit_of_three(c);
        c.rate_close_multiple = 0;
    })
    .await;
    stack.connect("A=", &[]).await;
    for _ in 0..4 {
        stack.send("A=", "hi").await;
    }
    assert_eq!(frame_count(&stack, "A=").await, Some(4));
    stack.received("A=");
    for _ in 0..3 {
        stack.send("A=", "hi").await;
    }
    assert!(stack.received("A=").is_empty(), "dropped, not answered");
    assert_eq!(
        frame_count(&stack, "A=").await,
        Some(4),
        "frames this environment knows to be over are not counted again"
    );
}

#[tokio::test]
async fn frames_an_environment_drops_still_count_toward_closing_the_connection() {
    let stack = Stack::with_config(limit_of_three).await;
    stack.connect("A=", &[]).await;
    for _ in 0..9 {
        stack.send("A=", "hi").await;
    }
    assert!(
        !stack.sink.take_methods().contains("DELETE"),
        "not closed at three times its limit"
    );
    stack.send("A=", "hi").await;
    assert!(
        stack.sink.take_methods().contains("DELETE"),
        "closed by the frame past three times its limit, in the one environment serving it"
    );
    assert!(stack.items_of("A=").await.is_empty());
}

#[tokio::test]
async fn a_connection_far_over_its_limit_is_closed_and_its_groups_told() {
    let stack = Stack::with_config(|c| {
        limit_of_three(c);
        c.rate_close_multiple = 2;
    })
    .await;
    stack.connect("A=", &[]).await;
    stack.connect("B=", &[]).await;
    for id in ["A=", "B="] {
        stack
            .send(id, r#"{"action":"join","group":"g","presence":true}"#)
            .await;
    }
    stack.received("A=");
    stack.received("B=");
    // A's join was its first frame; frames 2 to 7 run in fresh environments, as a burst's do.
    let mut told = Vec::new();
    for frame in 2..=7 {
        let other = Stack::another_environment(&stack, |c| {
            limit_of_three(c);
            c.rate_close_multiple = 2;
        })
        .await;
        other.send("A=", r#"{"action":"ping"}"#).await;
        assert_eq!(
            other.sink.take_methods().contains("DELETE"),
            frame == 7,
            "only the frame counted past twice the limit closes (frame {frame})"
        );
        told.extend(other.received("B="));
    }
    assert!(
        stack.items_of("A=").await.is_empty(),
        "A's records are gone"
    );
    assert!(
        told.iter().any(|f| f.contains(r#""event":"leave""#)),
        "B, following the group, is told A left: {told:?}"
    );
}

#[tokio::test]
async fn the_count_is_a_small_item_of_its_own_whatever_the_connection_holds() {
    let stack = Stack::with_config(limit_of_three).await;
    stack.connect("A=", &[]).await;
    stack.send("A=", r#"{"action":"join","group":"g"}"#).await;
    let items = stack.items_of("A=").await;
    assert!(
        items.iter().all(|i| !i.contains_key("frames")),
        "the connection's own items carry no count: {items:?}"
    );
    let counts = rate_items(&stack, "A=").await;
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert!(
        counts[0].contains_key("expiresAt"),
        "a count expires by itself"
    );
}

#[tokio::test]
async fn a_join_past_the_group_cap_is_a_bad_request_and_writes_nothing() {
    let stack = Stack::with_config(|c| c.max_groups = 2).await;
    stack.connect("A=", &[]).await;
    for group in ["g1", "g2", "g2"] {
        stack
            .send("A=", &json!({"action":"join","group":group}).to_string())
            .await;
        assert_eq!(stack.received_json("A=")["type"], "joined");
    }
    stack.send("A=", r#"{"action":"join","group":"g3"}"#).await;
    let refusal = stack.received_json("A=");
    assert_eq!(refusal["code"], "bad_request", "{refusal}");
    assert_eq!(refusal["action"], "join");
    assert!(
        stack.items().await.iter().all(|i| i
            .get("pk")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            != Some("group#g3")),
        "no member item for the group refused"
    );
    stack.send("A=", r#"{"action":"leave","group":"g1"}"#).await;
    stack.received("A=");
    stack.send("A=", r#"{"action":"join","group":"g3"}"#).await;
    assert_eq!(
        stack.received_json("A=")["type"],
        "joined",
        "room again once it left one"
    );
}

/// The connection's rate-count items.
async fn rate_items(stack: &Stack, connection_id: &str) -> Vec<support::stack::Item> {
    let pk = format!("conn#{connection_id}");
    stack
        .items()
        .await
        .into_iter()
        .filter(|i| {
            i.get("pk").and_then(|v| v.as_s().ok()) == Some(&pk)
                && i.get("sk")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|sk| sk.starts_with("rate#"))
        })
        .collect()
}

/// The frames counted in the connection's current window.
async fn frame_count(stack: &Stack, connection_id: &str) -> Option<u64> {
    let items = rate_items(stack, connection_id).await;
    items
        .iter()
        .find_map(|i| i.get("frames").and_then(|v| v.as_n().ok()))
        .map(|n| n.parse().expect("a count is a number"))
}

#[tokio::test]
async fn ping_and_echo_are_answered_while_dynamodb_is_unreachable() {
    let (proxy, stack) = Stack::behind_proxy(|_| {}).await;
    stack.connect("A=", &[]).await;
    proxy.cut();
    stack.send("A=", r#"{"action":"ping"}"#).await;
    assert_eq!(stack.received_json("A="), json!({"type":"pong"}));
    stack.send("A=", "still there?").await;
    assert_eq!(
        stack.received("A="),
        vec!["Hello, you sent: still there?".to_owned()],
        "no DynamoDB request stands between a frame and its answer"
    );
}

#[tokio::test]
async fn with_the_rate_limit_off_no_count_is_written() {
    let stack = Stack::with_config(|c| c.rate_limit = 0).await;
    stack.connect("A=", &[]).await;
    stack.send("A=", r#"{"action":"ping"}"#).await;
    assert_eq!(stack.received_json("A="), json!({"type":"pong"}));
    assert!(rate_items(&stack, "A=").await.is_empty());
}

#[tokio::test]
async fn a_dynamodb_outage_answers_internal_writes_nothing_half_way_and_service_resumes() {
    let (proxy, stack) = Stack::behind_proxy(|_| {}).await;
    stack.connect("A=", &[("uid", "alice")]).await;
    stack.connect("B=", &[]).await;
    let before = stack.items().await;
    let inspect = Stack::inspector(&stack).await;

    proxy.cut();
    stack
        .send("A=", r#"{"action":"join","group":"room"}"#)
        .await;
    let error = stack.received_json("A=");
    assert_eq!(error["code"], "internal");
    assert!(
        error["message"].as_str().unwrap().contains("(request req-"),
        "{error}"
    );
    stack
        .send("B=", r#"{"action":"sendmessage","data":"lost?"}"#)
        .await;
    assert_eq!(stack.received_json("B=")["code"], "internal");
    assert!(stack.received("A=").is_empty());
    assert_eq!(
        stack.connect("C=", &[("uid", "carol")]).await,
        500,
        "a $connect that cannot be recorded fails"
    );
    assert_eq!(
        inspect.items().await,
        before,
        "nothing was written during the outage"
    );

    proxy.restore();
    stack
        .send("A=", r#"{"action":"join","group":"room"}"#)
        .await;
    assert_eq!(
        stack.received_json("A="),
        json!({"type":"joined","group":"room"})
    );
    stack
        .send("B=", r#"{"action":"sendmessage","data":"back"}"#)
        .await;
    assert_eq!(stack.received("A="), vec!["back".to_owned()]);
    assert_eq!(stack.received("B="), vec!["back".to_owned()]);
    assert_eq!(stack.connect("C=", &[]).await, 200);
}

#[tokio::test]
async fn a_connect_whose_write_landed_but_whose_answer_was_lost_leaves_nothing_behind() {
    let (proxy, stack) = Stack::behind_proxy(|_| {}).await;
    let inspect = Stack::inspector(&stack).await;

    proxy.lose_answers_to(Some("PutRequest"));
    assert_eq!(
        stack.connect("A=", &[("uid", "alice")]).await,
        500,
        "without an answer the connection is not known to be recorded, so the handshake fails"
    );
    assert_eq!(
        inspect.items().await,
        Vec::new(),
        "the handshake was refused, so no $disconnect will come: what landed is taken back"
    );

    proxy.lose_answers_to(None);
    assert_eq!(stack.connect("A=", &[("uid", "alice")]).await, 200);
    assert_eq!(inspect.items_of("A=").await.len(), 3);
}

#[tokio::test]
async fn a_client_cannot_send_as_another_uid() {
    let stack = Stack::start().await;
    stack.connect("A=", &[("uid", "alice")]).await;
    stack.connect("B=", &[("uid", "bob")]).await;
    let forged = r#"{"action":"send","to":{"uid":"bob"},"data":"trust me","from":{"connectionId":"X=","uid":"admin"},"uid":"admin"}"#;
    stack.send("A=", forged).await;
    let message = stack.received_json("B=");
    assert_eq!(message["from"], json!({"connectionId":"A=","uid":"alice"}));
}

#[tokio::test]
async fn a_join_whose_transaction_meets_another_write_is_tried_again_and_succeeds() {
    let (proxy, stack) = Stack::behind_proxy(|_| {}).await;
    stack.connect("A=", &[]).await;
    // DynamoDB cancels a transaction that meets a write to the same item (the rate-limit count
    // of another frame of this connection, which API Gateway runs at the same time).
    proxy.conflict_once("TransactWriteItems");
    stack
        .send("A=", r#"{"action":"join","group":"room"}"#)
        .await;
    assert_eq!(
        stack.received_json("A="),
        json!({"type":"joined","group":"room"})
    );
    assert_eq!(proxy.conflicts(), 1, "the transaction met a conflict once");
    assert_eq!(stack.items_of("A=").await.len(), 3);
}

#[tokio::test]
async fn a_send_names_its_sender_from_the_authorizers_context_without_reading_its_record() {
    let (proxy, stack) = Stack::behind_proxy(|c| c.rate_limit = 0).await;
    stack.connect("A=", &[("uid", "alice")]).await;
    stack.connect("B=", &[("uid", "bob")]).await;
    proxy.take_actions();
    stack
        .send("A=", r#"{"action":"send","to":{"uid":"bob"},"data":1}"#)
        .await;
    assert_eq!(
        stack.received_json("B=")["from"],
        json!({"connectionId":"A=","uid":"alice"})
    );
    assert_eq!(
        proxy.take_actions(),
        ["dynamodb:Query".to_owned()].into(),
        "the recipients' Query is the send's one request"
    );
}

#[tokio::test]
async fn without_an_authorizer_a_send_reads_its_senders_uid_from_the_record() {
    let stack = Stack::start().await;
    stack
        .connect_without_authorizer("A=", &[("uid", "alice")])
        .await;
    stack.connect("B=", &[]).await;
    stack
        .send(
            "A=",
            r#"{"action":"send","to":{"connectionId":"B="},"data":1}"#,
        )
        .await;
    assert_eq!(stack.received_json("B=")["from"]["uid"], "alice");
}

#[tokio::test]
async fn an_anonymous_connection_bound_to_a_uid_later_sends_as_that_uid() {
    let stack = stack_with(&["A=", "B="]).await;
    assert!(stack.gateway.bind_uid("A=", "carol").await.unwrap());
    stack
        .send(
            "A=",
            r#"{"action":"send","to":{"connectionId":"B="},"data":1}"#,
        )
        .await;
    assert_eq!(stack.received_json("B=")["from"]["uid"], "carol");
}

#[tokio::test]
async fn the_connect_function_answers_both_its_authorizer_request_and_its_connect_event() {
    let stack = Stack::start().await;
    let event = |payload: serde_json::Value| {
        lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default())
    };
    let request = serde_json::to_value(support::events::authorizer_request(
        "A=",
        "r1",
        &[("uid", "alice")],
    ))
    .unwrap();
    let answer =
        shared::lambda::connect::connect_function(&stack.gateway, &stack.app, event(request))
            .await
            .unwrap();
    assert_eq!(answer["context"], json!({"uid": "alice"}));
    let connect =
        serde_json::to_value(support::events::connect("A=", "r2", &[("uid", "alice")])).unwrap();
    let answer =
        shared::lambda::connect::connect_function(&stack.gateway, &stack.app, event(connect))
            .await
            .unwrap();
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(stack.items_of("A=").await.len(), 3);
}

#[tokio::test]
async fn a_410_for_a_connection_whose_connect_may_still_be_running_removes_nothing() {
    let stack = Stack::start().await;
    stack.connect("A=", &[]).await;
    // Recorded just now, as by a $connect whose handshake API Gateway has not completed.
    let new = record(
        "NEW=",
        Some("newcomer"),
        now_millis(),
        now_secs() + 3 * 3600,
    );
    stack.gateway.store.put_connection(&new).await.unwrap();
    stack.sink.mark_gone("NEW=");
    stack
        .send(
            "A=",
            r#"{"action":"send","to":{"uid":"newcomer"},"data":1,"id":"x"}"#,
        )
        .await;
    assert_eq!(
        stack.received_json("A="),
        json!({"type":"ack","id":"x","delivered":0})
    );
    assert_eq!(
        stack.items_of("NEW=").await.len(),
        3,
        "the new connection keeps its records, so it stays reachable once established"
    );
}

#[tokio::test]
async fn each_window_counts_on_its_own() {
    let stack = Stack::start().await;
    let store = &stack.gateway.store;
    for expected in 1..=3 {
        assert_eq!(store.count_frame("A=", 200, 300).await.unwrap(), expected);
    }
    assert_eq!(store.count_frame("A=", 210, 310).await.unwrap(), 1);
    assert_eq!(
        store.count_frame("A=", 200, 300).await.unwrap(),
        4,
        "a late frame counts in its own window"
    );
}

#[tokio::test]
async fn expired_records_count_nowhere_though_dynamodb_has_not_deleted_them_yet() {
    let stack = Stack::start().await;
    stack.connect("A=", &[("uid", "alice")]).await;
    let expired = record("OLD=", Some("alice"), 1, now_secs() - 1);
    for item in shared::store::dynamodb::new_connection_items(&expired) {
        stack.put_item(item).await;
    }
    let api = &stack.gateway;
    assert!(!api.is_online("OLD=").await.unwrap());
    assert_eq!(
        api.client_ids_by_uid("alice").await.unwrap(),
        vec!["A=".to_owned()]
    );
    assert_eq!(api.all_presence().await.unwrap().connections, 1);
    stack
        .send(
            "A=",
            r#"{"action":"send","to":{"uid":"alice"},"data":1,"id":"x"}"#,
        )
        .await;
    let frames = stack.received("A=");
    assert!(
        frames.iter().any(|f| f.contains(r#""delivered":1"#)),
        "{frames:?}"
    );
    assert!(
        stack.sink.take("OLD=").is_empty(),
        "nothing was pushed to the expired connection"
    );
    assert_eq!(stack.disconnect("OLD=").await, 200);
    assert!(
        stack.items_of("OLD=").await.is_empty(),
        "$disconnect still removes expired items"
    );
}

/// A stack whose group `room` holds `A=` and a member item `X=` whose connection's own item is
/// gone (a join that landed between a `$disconnect`'s read and its deletes leaves exactly this),
/// and to which pushes answer 410.
async fn room_with_a_gone_stray() -> Stack {
    let stack = Stack::start().await;
    stack.connect("A=", &[]).await;
    stack
        .send("A=", r#"{"action":"join","group":"room"}"#)
        .await;
    stack.received("A=");
    let stray = record("X=", None, 1, now_secs() + 3 * 3600);
    stack
        .put_item(shared::store::dynamodb::group_item("room", &stray))
        .await;
    stack.sink.mark_gone("X=");
    stack
}

#[tokio::test]
async fn a_410_removes_the_member_item_that_named_a_connection_whose_record_is_gone() {
    let stack = room_with_a_gone_stray().await;
    stack
        .send(
            "A=",
            r#"{"action":"send","to":{"group":"room"},"data":1,"id":"x"}"#,
        )
        .await;
    let frames = stack.received("A=");
    assert!(
        frames.iter().any(|f| f.contains(r#""delivered":1"#)),
        "{frames:?}"
    );
    assert!(
        stack.items_of("X=").await.is_empty(),
        "the stray member item went with the 410"
    );
}

#[tokio::test]
async fn a_fan_out_job_prunes_the_stray_member_item_of_the_set_that_named_it() {
    let stack = room_with_a_gone_stray().await;
    let job = stack.job(
        "job-stray",
        "to the room",
        vec![Set::Group("room".into())],
        &[("A=", 0), ("X=", 0)],
    );
    let report = stack
        .gateway
        .run_job(&job, now_millis() + 20_000)
        .await
        .expect("the job runs");
    assert_eq!((report.pushes.delivered, report.pushes.gone), (1, 1));
    assert_eq!(stack.received("A="), ["to the room"]);
    assert!(
        stack.items_of("X=").await.is_empty(),
        "the stray member item went with the 410"
    );
}

#[tokio::test]
async fn a_fan_out_job_waits_out_429s_and_pushes_again() {
    let stack = Stack::start().await;
    stack.connect("A=", &[]).await;
    // Throttled past the push's own three attempts: the worker pushes it again after a pause.
    stack.sink.fail_next("A=", &[429, 429, 429]);
    let job = stack.job("job-429", "at last", vec![Set::All], &[("A=", 0)]);
    let report = stack
        .gateway
        .run_job(&job, now_millis() + 20_000)
        .await
        .expect("the job runs");
    assert_eq!(
        (report.pushes.delivered, report.pushes.failed, report.late),
        (1, 0, 0)
    );
    assert_eq!(stack.received("A="), ["at last"]);
}

#[tokio::test]
async fn a_fan_out_job_past_its_deadline_pushes_nothing() {
    let stack = Stack::start().await;
    stack.connect("A=", &[]).await;
    let job = Job {
        deadline: now_millis() - 1,
        ..stack.job("job-late", "too late", vec![Set::All], &[("A=", 0)])
    };
    let report = stack
        .gateway
        .run_job(&job, now_millis() + 20_000)
        .await
        .expect("the job is dropped, not failed");
    assert_eq!(report.skipped, Some("expired"));
    assert!(stack.received("A=").is_empty());
}

#[tokio::test]
async fn concurrent_session_updates_lose_no_change() {
    let stack = Stack::start().await;
    stack.connect("A=", &[]).await;
    let api = &stack.gateway;
    let updates = (0..20).map(|i| async move {
        let change = json!({ format!("key{i}"): i });
        let change = change.as_object().expect("an object").clone();
        api.update_session("A=", &change).await
    });
    for stored in futures_util::future::join_all(updates).await {
        assert!(stored.expect("update_session"), "the connection exists");
    }
    let session = api.session("A=").await.unwrap().expect("a session");
    let keys = session.as_object().map_or(0, |map| map.len());
    assert_eq!(keys, 20, "every update's key is kept: {session}");
    assert!(!api
        .update_session("gone=", &Default::default())
        .await
        .unwrap());
}

#[tokio::test]
async fn with_a_secret_a_join_the_token_does_not_allow_is_forbidden_and_writes_nothing() {
    let secret = "a-secret-for-the-handler-tests-0123456789";
    let stack = Stack::with_config(|c| c.auth_secret = Some(secret.to_owned())).await;
    let granted = support::tokens::token_for(
        "alice",
        json!({"groups": ["room-*"], "send": ["group:room-*"]}),
        secret,
    );
    let plain = support::tokens::token_for("mallory", json!({}), secret);
    assert_eq!(stack.connect("A=", &[("token", &granted)]).await, 200);
    assert_eq!(stack.connect("M=", &[("token", &plain)]).await, 200);
    stack
        .send("A=", r#"{"action":"join","group":"room-1"}"#)
        .await;
    assert_eq!(stack.received_json("A=")["type"], "joined");
    stack
        .send("M=", r#"{"action":"join","group":"room-1"}"#)
        .await;
    let refused = stack.received_json("M=");
    assert_eq!(refused["code"], "forbidden");
    assert_eq!(refused["action"], "join");
    assert!(
        stack
            .items_of("M=")
            .await
            .iter()
            .all(|i| !s(i, "pk").is_some_and(|pk| pk.starts_with("group#"))),
        "no group item for M"
    );
    stack
        .send(
            "M=",
            r#"{"action":"send","to":{"group":"room-1"},"data":"psst","id":"m7"}"#,
        )
        .await;
    let refused = stack.received_json("M=");
    assert_eq!(
        (&refused["code"], &refused["action"], &refused["id"]),
        (&json!("forbidden"), &json!("send"), &json!("m7")),
        "the refusal names the send's id: {refused}"
    );
    assert!(stack.received("A=").is_empty(), "nobody is pushed");
    stack
        .send(
            "A=",
            r#"{"action":"send","to":{"group":"room-1"},"data":"hi"}"#,
        )
        .await;
    assert_eq!(stack.received_json("A=")["data"], "hi");
}

/// DynamoDB resumes a Query after its `ExclusiveStartKey` even when that item was deleted
/// meanwhile; a fan-out prunes gone connections while it still reads, so the last member of a
/// page may be gone before the next page is asked for. (moto answered such a page empty, and the
/// rest of the partition was never pushed to.)
#[tokio::test]
async fn a_broadcast_across_pages_reaches_every_live_member_when_members_are_pruned_between_pages()
{
    const PAGE: usize = 4;
    let (proxy, mut stack) = Stack::behind_proxy(|c| {
        c.connect_grace = std::time::Duration::ZERO;
        c.rate_limit = 0;
    })
    .await;
    stack.gateway.store = stack.gateway.store.clone().with_page_items(PAGE as i32);
    let ids: Vec<String> = (0..32).map(|i| format!("P{i:02}=")).collect();
    for id in &ids {
        assert_eq!(stack.connect(id, &[]).await, 200);
    }
    // Each shard of "all" in the order a Query reads it; in each, two members of the first page
    // are gone, its last one among them: the key the next page starts after.
    let inspector = Stack::inspector(&stack).await;
    let items = inspector.items().await;
    let mut gone = Vec::new();
    for shard in 0..shared::store::ALL_SHARDS {
        let pk = format!("all#{shard}");
        let members: Vec<&str> = items
            .iter()
            .filter(|item| s(item, "pk") == Some(pk.as_str()))
            .filter_map(|item| s(item, "connectionId"))
            .collect();
        assert!(
            members.len() > 2 * PAGE,
            "{pk} holds {} members: too few for three pages",
            members.len()
        );
        gone.extend([members[1].to_owned(), members[PAGE - 1].to_owned()]);
    }
    for id in &gone {
        stack.sink.mark_gone(id);
    }

    proxy.hold("ExclusiveStartKey");
    let sender = ids.iter().find(|id| !gone.contains(id)).expect("a sender");
    let broadcast = stack.send(sender, r#"{"action":"sendmessage","data":"hi"}"#);
    let prune_then_release = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let left = inspector.items().await;
            let pruned = gone.iter().all(|id| {
                !left
                    .iter()
                    .any(|item| s(item, "connectionId") == Some(id.as_str()))
            });
            if pruned && proxy.held() >= shared::store::ALL_SHARDS as usize {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the first pages' gone members were not pruned while the next pages waited \
                 (held: {})",
                proxy.held()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        proxy.release();
    };
    tokio::join!(broadcast, prune_then_release);

    for id in ids.iter().filter(|id| !gone.contains(id)) {
        assert_eq!(stack.received(id), vec!["hi".to_owned()], "{id}");
    }
    for id in &gone {
        assert!(inspector.items_of(id).await.is_empty(), "{id} was pruned");
    }
}

#[tokio::test]
async fn a_group_message_that_could_not_be_kept_reaches_nobody_and_history_skips_its_offset() {
    let (proxy, stack) = Stack::behind_proxy(|_| {}).await;
    for id in ["A=", "B="] {
        assert_eq!(stack.connect(id, &[]).await, 200);
    }
    stack
        .send("B=", r#"{"action":"join","group":"room"}"#)
        .await;
    stack.received("B=");
    // The keep is refused; the mark that skips its offset is not.
    proxy.conflict_once("PutItem");
    stack
        .send(
            "A=",
            r#"{"action":"send","to":{"group":"room"},"data":1,"id":"one"}"#,
        )
        .await;
    assert_eq!(stack.received_json("A=")["code"], "internal");
    assert!(
        stack.received("B=").is_empty(),
        "a message not kept is not sent"
    );
    stack
        .send(
            "A=",
            r#"{"action":"send","to":{"group":"room"},"data":2,"id":"two"}"#,
        )
        .await;
    let ack = stack.received_json("A=");
    assert_eq!((&ack["offset"], &ack["delivered"]), (&json!(2), &json!(1)));
    let epoch = ack["epoch"].clone();
    stack.received("B=");
    stack
        .send(
            "B=",
            &json!({"action":"history","group":"room","since":{"epoch":epoch,"offset":0}})
                .to_string(),
        )
        .await;
    let history = stack.received_json("B=");
    assert_eq!(
        history["recovered"], true,
        "offset 1 reached nobody: {history}"
    );
    assert_eq!(history["skipped"], json!([1]));
    let offsets: Vec<_> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["offset"].clone())
        .collect();
    assert_eq!(offsets, [json!(2)]);
}

#[tokio::test]
async fn a_group_send_whose_stream_head_is_throttled_is_delivered_without_an_offset() {
    // No rate limit: the stream head's offset is then the send's only UpdateItem.
    let (proxy, stack) = Stack::behind_proxy(|c| {
        c.rate_limit = 0;
        c.dynamodb_timeout = std::time::Duration::from_secs(30);
    })
    .await;
    for id in ["A=", "B="] {
        stack.connect(id, &[]).await;
        stack.send(id, r#"{"action":"join","group":"hot"}"#).await;
        stack.received(id);
    }
    proxy.throttle(Some("UpdateItem"));
    stack
        .send(
            "A=",
            r#"{"action":"send","to":{"group":"hot"},"data":"still here","id":"m"}"#,
        )
        .await;
    proxy.throttle(None);
    let delivered = stack.received_json("B=");
    assert_eq!(delivered["data"], "still here");
    assert!(
        delivered.get("offset").is_none() && delivered.get("epoch").is_none(),
        "no place in the stream: {delivered}"
    );
    let frames = stack.received("A=");
    let ack = frames
        .iter()
        .map(|f| serde_json::from_str::<serde_json::Value>(f).unwrap())
        .find(|f| f["type"] == "ack")
        .unwrap_or_else(|| panic!("no ack in {frames:?}"));
    assert_eq!(ack["delivered"], 2);
    assert!(ack.get("offset").is_none(), "{ack}");
}

#[tokio::test]
async fn a_uid_at_its_connection_cap_is_refused_403_and_others_are_not() {
    let stack = Stack::with_config(|c| c.max_connections_per_uid = 2).await;
    for id in ["A=", "B="] {
        assert_eq!(stack.connect(id, &[("uid", "alice")]).await, 200);
    }
    assert_eq!(stack.connect("C=", &[("uid", "alice")]).await, 403);
    assert!(stack.items_of("C=").await.is_empty(), "nothing recorded");
    assert_eq!(
        stack.connect("D=", &[("uid", "bob")]).await,
        200,
        "the cap is per uid"
    );
    stack.disconnect("A=").await;
    assert_eq!(
        stack.connect("E=", &[("uid", "alice")]).await,
        200,
        "room again once one closed"
    );
}

#[tokio::test]
async fn connections_per_uid_are_not_capped_by_default() {
    let stack = Stack::start().await;
    for id in ["A=", "B=", "C="] {
        assert_eq!(stack.connect(id, &[("uid", "alice")]).await, 200);
    }
}

#[tokio::test]
async fn a_token_without_sub_connects_without_a_uid_and_a_server_binds_one() {
    let secret = "a-secret-for-the-handler-tests-0123456789";
    let stack = Stack::with_config(|c| c.auth_secret = Some(secret.to_owned())).await;
    let claims = json!({"aud": "ws", "exp": support::tokens::now() + 300});
    let t = support::tokens::token(claims, secret);
    assert_eq!(stack.connect("A=", &[("token", &t)]).await, 200);
    stack.send("A=", r#"{"action":"whoami"}"#).await;
    assert_eq!(stack.received_json("A=")["uid"], serde_json::Value::Null);
    assert!(stack.gateway.bind_uid("A=", "alice").await.unwrap());
    stack.send("A=", r#"{"action":"whoami"}"#).await;
    assert_eq!(stack.received_json("A=")["uid"], "alice");
}

#[tokio::test]
async fn presence_reads_eventually_consistent_and_a_fan_out_consistently() {
    let (proxy, stack) = Stack::behind_proxy(|c| c.rate_limit = 0).await;
    for (id, uid) in [("A=", "alice"), ("B=", "bob")] {
        assert_eq!(stack.connect(id, &[("uid", uid)]).await, 200);
        stack.send(id, r#"{"action":"join","group":"g"}"#).await;
        stack.received(id);
    }
    let (eventual, consistent) = (r#""ConsistentRead":false"#, r#""ConsistentRead":true"#);
    proxy.look_for(eventual);
    proxy.look_for(consistent);
    stack
        .send("A=", r#"{"action":"presence","group":"g"}"#)
        .await;
    assert_eq!(stack.received_json("A=")["connections"], 2);
    assert_eq!(proxy.seen(consistent), 0, "a count reads half price");
    assert!(proxy.seen(eventual) >= 1);
    stack
        .send("A=", r#"{"action":"send","to":{"group":"g"},"data":1}"#)
        .await;
    assert!(
        proxy.seen(consistent) >= 1,
        "a fan-out reads every member that joined before it"
    );
}

#[tokio::test]
async fn closing_at_the_first_frame_over_the_limit_still_says_why() {
    let stack = Stack::with_config(|c| {
        limit_of_three(c);
        c.rate_close_multiple = 1;
    })
    .await;
    stack.connect("A=", &[]).await;
    for _ in 0..3 {
        stack.send("A=", "hi").await;
    }
    stack.received("A=");
    stack.send("A=", "hi").await;
    let frames = stack.received("A=");
    assert!(
        frames
            .iter()
            .any(|f| f.contains(r#""code":"rate_limited""#)),
        "told before it is closed: {frames:?}"
    );
    assert!(stack.sink.take_methods().contains("DELETE"), "and closed");
}
