//! The protocol's "Recovery of missed group messages" and "Presence events", through the whole
//! local stack (the functions under cargo lambda watch, the local gateway, real clients): offsets
//! that never repeat or skip under concurrent senders, `history` with `recovered` and `more`,
//! and join and leave events, including the leave of a connection pruned after a 410.

use std::collections::BTreeSet;

use futures_util::future::join_all;
use serde_json::{json, Value};
use support::local_stack::LocalStack;
use support::ws::Ws;

/// Joins `group` (with presence events when `presence`); the `joined` frame.
async fn join(ws: &mut Ws, group: &str, presence: bool) -> Value {
    ws.send(&json!({"action":"join","group":group,"presence":presence}).to_string())
        .await;
    let joined = ws.recv_json().await;
    assert_eq!(joined["type"], "joined", "{joined}");
    joined
}

/// A presence event without its version (which the tests check apart).
fn unversioned(mut event: Value) -> Value {
    if let Some(fields) = event.as_object_mut() {
        let version = fields.remove("version");
        if fields.get("event").is_some_and(|e| e != "overflow") {
            assert!(
                version.as_ref().is_some_and(Value::is_u64),
                "a presence event without a version: {event}"
            );
        }
    }
    event
}

/// Sends `data` to `group` and waits for the ack (the sender is not in the group).
async fn send_to_group(ws: &mut Ws, group: &str, data: Value) {
    ws.send(&json!({"action":"send","to":{"group":group},"data":data,"id":"a"}).to_string())
        .await;
    let ack = ws.recv_json().await;
    assert_eq!(ack["type"], "ack", "{ack}");
}

async fn history(ws: &mut Ws, group: &str, since: Option<Value>) -> Value {
    let mut frame = json!({"action":"history","group":group});
    if let Some(since) = since {
        frame["since"] = since;
    }
    ws.send(&frame.to_string()).await;
    let answer = ws.recv_json().await;
    assert_eq!(answer["type"], "history", "{answer}");
    answer
}

fn offsets(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| {
            m["offset"]
                .as_u64()
                .unwrap_or_else(|| panic!("no offset in {m}"))
        })
        .collect()
}

// Recovery of missed group messages

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_to_one_group_take_offsets_one_to_n_exactly_once() {
    const SENDERS: usize = 4;
    const EACH: usize = 10;
    let stack = LocalStack::start(&[("RATE_LIMIT", "0")]).await;
    let mut reader = stack.client("/").await;
    join(&mut reader, "room", false).await;
    let mut senders = join_all((0..SENDERS).map(|_| stack.client("/"))).await;
    // Every sender sends its frames without waiting: the gateway invokes them all at once.
    join_all(senders.iter_mut().enumerate().map(|(s, ws)| async move {
        for n in 0..EACH {
            let frame = json!({"action":"send","to":{"group":"room"},"data":format!("{s}-{n}")});
            ws.send(&frame.to_string()).await;
        }
    }))
    .await;
    let received = reader.recv_json_n(SENDERS * EACH).await;
    let epochs: BTreeSet<&str> = received
        .iter()
        .filter_map(|m| m["epoch"].as_str())
        .collect();
    assert_eq!(epochs.len(), 1, "one epoch: {received:?}");
    let mut seen = offsets(&received);
    seen.sort_unstable();
    let expected: Vec<u64> = (1..=(SENDERS * EACH) as u64).collect();
    assert_eq!(seen, expected, "every offset once, none skipped");
    let kept = history(&mut reader, "room", None).await;
    let kept = kept["messages"].as_array().expect("messages").clone();
    assert_eq!(offsets(&kept), expected, "the history, oldest first");
    for message in &kept {
        assert!(received.contains(message), "kept as delivered: {message}");
    }
}

#[tokio::test]
async fn history_after_a_position_is_what_followed_it_exactly_as_delivered() {
    let stack = LocalStack::start(&[]).await;
    let mut sender = stack.client("/?uid=alice").await;
    let mut reader = stack.client("/").await;
    join(&mut reader, "room", false).await;
    let mut delivered = Vec::new();
    for n in 1..=5 {
        send_to_group(&mut sender, "room", json!({"n": n})).await;
        delivered.push(reader.recv_json().await);
    }
    assert_eq!(delivered[0]["group"], "room");
    assert_eq!(delivered[0]["from"]["uid"], "alice");
    let epoch = delivered[0]["epoch"].clone();
    let answer = history(&mut reader, "room", Some(json!({"epoch":epoch,"offset":2}))).await;
    assert_eq!(answer["epoch"], epoch);
    assert_eq!(answer["offset"], 5);
    assert_eq!(answer["recovered"], true);
    assert_eq!(answer["more"], false);
    assert_eq!(answer["messages"], json!(delivered[2..]));
    let nothing_new = history(&mut reader, "room", Some(json!({"epoch":epoch,"offset":5}))).await;
    assert_eq!(nothing_new["recovered"], true);
    assert_eq!(nothing_new["messages"], json!([]));
}

#[tokio::test]
async fn joined_tells_where_the_group_stream_is() {
    let stack = LocalStack::start(&[]).await;
    let mut sender = stack.client("/").await;
    let mut late = stack.client("/").await;
    assert!(
        join(&mut late, "quiet", false)
            .await
            .get("offset")
            .is_none(),
        "a group nobody sent to has no stream yet"
    );
    send_to_group(&mut sender, "room", json!("one")).await;
    send_to_group(&mut sender, "room", json!("two")).await;
    let joined = join(&mut late, "room", false).await;
    assert_eq!(joined["offset"], 2);
    assert!(joined["epoch"].is_string(), "{joined}");
}

#[tokio::test]
async fn history_older_than_the_kept_count_is_not_recovered() {
    let stack = LocalStack::start(&[("HISTORY_SIZE", "3")]).await;
    let mut sender = stack.client("/").await;
    for n in 1..=5 {
        send_to_group(&mut sender, "room", json!(n)).await;
    }
    let mut reader = stack.client("/").await;
    let epoch = join(&mut reader, "room", false).await["epoch"].clone();
    let answer = history(&mut reader, "room", Some(json!({"epoch":epoch,"offset":1}))).await;
    assert_eq!(answer["recovered"], false, "2 is no longer kept");
    let kept = answer["messages"].as_array().expect("messages").clone();
    assert_eq!(offsets(&kept), [3, 4, 5], "what is kept is still given");
    let within = history(&mut reader, "room", Some(json!({"epoch":epoch,"offset":2}))).await;
    assert_eq!(within["recovered"], true);
    assert_eq!(
        offsets(within["messages"].as_array().expect("messages")),
        [3, 4, 5]
    );
}

#[tokio::test]
async fn history_from_another_epoch_is_not_recovered() {
    let stack = LocalStack::start(&[]).await;
    let mut sender = stack.client("/").await;
    send_to_group(&mut sender, "room", json!("hello")).await;
    let answer = history(
        &mut sender,
        "room",
        Some(json!({"epoch":"gone","offset":0})),
    )
    .await;
    assert_eq!(answer["recovered"], false);
    assert_eq!(
        offsets(answer["messages"].as_array().expect("messages")),
        [1]
    );
}

#[tokio::test]
async fn history_older_than_the_kept_age_is_not_recovered() {
    let stack = LocalStack::start(&[("HISTORY_SECONDS", "1")]).await;
    let mut sender = stack.client("/").await;
    send_to_group(&mut sender, "room", json!("soon gone")).await;
    let epoch = join(&mut sender, "room", false).await["epoch"].clone();
    let since = json!({"epoch":epoch,"offset":0});
    // The message is kept for a second; reads ignore it once its TTL has passed.
    let deadline = std::time::Instant::now() + support::local_stack::PATIENCE;
    loop {
        let answer = history(&mut sender, "room", Some(since.clone())).await;
        if answer["recovered"] == false {
            assert_eq!(answer["messages"], json!([]));
            assert_eq!(answer["offset"], 1, "the stream still knows where it is");
            break;
        }
        assert_eq!(
            offsets(answer["messages"].as_array().expect("messages")),
            [1]
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the message never aged out"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn history_larger_than_a_frame_comes_in_parts_marked_more() {
    let stack = LocalStack::start(&[("MAX_MESSAGE_BYTES", "65536")]).await;
    let mut sender = stack.client("/").await;
    let big = "x".repeat(40_000);
    for _ in 0..4 {
        let frame = json!({"action":"send","to":{"group":"room"},"data":big,"id":"a"}).to_string();
        sender.send_fragmented(&frame, 16 * 1024).await;
        assert_eq!(sender.recv_json().await["type"], "ack");
    }
    let first = history(&mut sender, "room", None).await;
    assert_eq!(first["more"], true);
    let first_part = offsets(first["messages"].as_array().expect("messages"));
    assert!(
        !first_part.is_empty() && first_part.len() < 4,
        "{first_part:?}"
    );
    let last = *first_part.last().expect("one at least");
    let since = json!({"epoch":first["epoch"],"offset":last});
    let rest = history(&mut sender, "room", Some(since)).await;
    assert_eq!(rest["more"], false);
    assert_eq!(rest["recovered"], true);
    let mut all = first_part;
    all.extend(offsets(rest["messages"].as_array().expect("messages")));
    assert_eq!(all, [1, 2, 3, 4]);
}

#[tokio::test]
async fn a_malformed_since_is_a_bad_request_and_the_connection_stays() {
    let stack = LocalStack::start(&[]).await;
    let mut ws = stack.client("/").await;
    ws.send(r#"{"action":"history","group":"room","since":{"offset":"three"}}"#)
        .await;
    let error = ws.recv_json().await;
    assert_eq!(error["code"], "bad_request", "{error}");
    assert_eq!(error["action"], "history");
    ws.expect_nothing_pending().await;
}

#[tokio::test]
async fn without_history_a_group_message_has_no_offset_and_nothing_is_kept() {
    let stack = LocalStack::start(&[("HISTORY_SIZE", "0")]).await;
    let mut sender = stack.client("/").await;
    let mut reader = stack.client("/").await;
    join(&mut reader, "room", false).await;
    let before = stack.items_but_counts().await.len();
    send_to_group(&mut sender, "room", json!("hi")).await;
    let message = reader.recv_json().await;
    assert_eq!(message["data"], "hi");
    assert!(message.get("offset").is_none(), "{message}");
    assert_eq!(
        stack.items_but_counts().await.len(),
        before,
        "no stream items"
    );
}

// Presence events

#[tokio::test]
async fn a_member_asking_for_presence_gets_the_members_then_each_join_and_leave() {
    let stack = LocalStack::start(&[]).await;
    let mut alice = stack.client("/?uid=alice").await;
    let joined = join(&mut alice, "room", true).await;
    assert_eq!(
        joined["members"],
        json!([{"connectionId": alice.connection_id, "uid": "alice"}])
    );
    let mut bob = stack.client("/").await;
    let bob_joined = join(&mut bob, "room", false).await;
    assert!(bob_joined.get("members").is_none(), "{bob_joined}");
    let event = |event: &str, ws: &Ws, uid: Value| json!({"type":"presence","event":event,"group":"room","connectionId":ws.connection_id,"uid":uid});
    let bob_joined_event = alice.recv_json().await;
    assert_eq!(
        unversioned(bob_joined_event.clone()),
        event("join", &bob, Value::Null)
    );
    assert!(
        bob_joined_event["version"].as_u64() > joined["version"].as_u64(),
        "an event after the list has a version above the list's: {joined} then {bob_joined_event}"
    );
    let mut carol = stack.client("/?uid=carol").await;
    join(&mut carol, "room", false).await;
    assert_eq!(
        unversioned(alice.recv_json().await),
        event("join", &carol, json!("carol"))
    );
    // A join is announced before it is answered: bob, who did not ask, was told nothing.
    bob.expect_nothing_pending().await;

    bob.send(r#"{"action":"leave","group":"room"}"#).await;
    assert_eq!(bob.recv_json().await["type"], "left");
    assert_eq!(
        unversioned(alice.recv_json().await),
        event("leave", &bob, Value::Null)
    );
    let carol_left = event("leave", &carol, json!("carol"));
    carol.close().await;
    assert_eq!(
        unversioned(alice.recv_json().await),
        carol_left,
        "told by $disconnect"
    );
    alice.expect_nothing_pending().await;
}

#[tokio::test]
async fn leaving_a_group_one_is_not_in_is_answered_and_announced_to_nobody() {
    let stack = LocalStack::start(&[]).await;
    let mut alice = stack.client("/?uid=alice").await;
    join(&mut alice, "room", true).await;
    let mut mallory = stack.client("/").await;
    mallory.send(r#"{"action":"leave","group":"room"}"#).await;
    assert_eq!(mallory.recv_json().await["type"], "left");
    alice.expect_nothing_pending().await;
}

#[tokio::test]
async fn a_group_message_that_excludes_others_is_not_kept_for_history() {
    let stack = LocalStack::start(&[]).await;
    let mut alice = stack.client("/").await;
    let mut bob = stack.client("/").await;
    join(&mut alice, "room", false).await;
    join(&mut bob, "room", false).await;
    let mut sender = stack.client("/").await;
    sender
        .send(&json!({"action":"send","to":{"group":"room"},"data":"not for bob","exclude":[bob.connection_id],"id":"a"}).to_string())
        .await;
    let message = alice.recv_json().await;
    assert_eq!(message["data"], "not for bob");
    assert!(message.get("offset").is_none(), "{message}");
    assert_eq!(sender.recv_json().await["delivered"], 1);
    // Bob cannot read it from history either.
    let answer = history(&mut bob, "room", None).await;
    assert_eq!(answer["messages"], json!([]), "{answer}");
}

#[tokio::test]
async fn a_connection_pruned_after_a_410_is_announced_as_a_leave() {
    // Every $disconnect dropped, and no connect grace, so that a 410 prunes at once.
    let stack = LocalStack::start_with(&[("CONNECT_GRACE_SECONDS", "0")], |aws| {
        aws.drop_disconnects_percent = 100
    })
    .await;
    let mut alice = stack.client("/?uid=alice").await;
    join(&mut alice, "room", true).await;
    let mut bob = stack.client("/?uid=bob").await;
    join(&mut bob, "room", false).await;
    assert_eq!(alice.recv_json().await["event"], "join");
    let bob_id = bob.connection_id.clone();
    bob.close().await;
    alice
        .send(r#"{"action":"send","to":{"group":"room"},"data":"anyone?","excludeSelf":true,"id":"q"}"#)
        .await;
    let frames: Vec<Value> = alice
        .recv_json_n(2)
        .await
        .into_iter()
        .map(unversioned)
        .collect();
    let leave =
        json!({"type":"presence","event":"leave","group":"room","connectionId":bob_id,"uid":"bob"});
    assert!(frames.contains(&leave), "{frames:?}");
    let ack = frames.iter().find(|f| f["type"] == "ack").expect("an ack");
    assert_eq!(ack["delivered"], 0, "bob was gone");
}

#[tokio::test]
async fn a_group_over_the_presence_limit_lists_no_members_and_tells_its_followers_once() {
    let stack = LocalStack::start(&[("PRESENCE_LIMIT", "2")]).await;
    let mut alice = stack.client("/").await;
    assert_eq!(
        join(&mut alice, "room", true).await["members"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let mut bob = stack.client("/").await;
    assert_eq!(
        join(&mut bob, "room", true).await["members"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(alice.recv_json().await["event"], "join");
    let mut carol = stack.client("/").await;
    let joined = join(&mut carol, "room", true).await;
    assert!(joined.get("members").is_none(), "{joined}");
    assert_eq!(joined["presenceLimit"], 2);
    // carol's join was answered after its announcement: the followers are told, once, that the
    // group outgrew the limit, and hear nothing more of it.
    let overflow = json!({"type":"presence","event":"overflow","group":"room"});
    assert_eq!(alice.recv_json().await, overflow);
    assert_eq!(bob.recv_json().await, overflow);
    let mut dave = stack.client("/").await;
    join(&mut dave, "room", false).await;
    carol.close().await;
    alice.expect_nothing_pending().await;
    bob.expect_nothing_pending().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_vanished_member_pushed_to_by_two_senders_at_once_is_announced_left_once_with_its_uid() {
    // Every $disconnect dropped, and no connect grace, so that only the 410s end the member.
    let stack = LocalStack::start_with(&[("CONNECT_GRACE_SECONDS", "0")], |aws| {
        aws.drop_disconnects_percent = 100
    })
    .await;
    let mut follower = stack.client("/?uid=fay").await;
    join(&mut follower, "room", true).await;
    let (mut a, mut b) = (stack.client("/").await, stack.client("/").await);
    for round in 0..3 {
        let mut vanished = stack.client(&format!("/?uid=gus{round}")).await;
        join(&mut vanished, "room", false).await;
        assert_eq!(follower.recv_json().await["event"], "join");
        let vanished_id = vanished.connection_id.clone();
        vanished.close().await;
        // Both sends go out before either is answered: both meet the 410.
        let send = json!({"action":"send","to":{"group":"room"},"data":round,"id":"s"}).to_string();
        a.send(&send).await;
        b.send(&send).await;
        // The prunes and their announcements come before the acks.
        assert_eq!(a.recv_json().await["type"], "ack");
        assert_eq!(b.recv_json().await["type"], "ack");
        let frames = follower.recv_json_n(3).await;
        let leaves: Vec<Value> = frames
            .into_iter()
            .filter(|f| f["type"] == "presence")
            .map(unversioned)
            .collect();
        assert_eq!(
            leaves,
            vec![
                json!({"type":"presence","event":"leave","group":"room","connectionId":vanished_id,"uid":format!("gus{round}")})
            ],
            "round {round}"
        );
        follower.expect_nothing_pending().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_rounds_of_join_and_leave_sent_at_once_end_with_whoami_agreeing_with_delivery() {
    let stack = LocalStack::start(&[("RATE_LIMIT", "0")]).await;
    let mut member = stack.client("/").await;
    let mut sender = stack.client("/").await;
    let (mut in_group, mut out_of_group) = (0, 0);
    for round in 0..50 {
        // API Gateway runs the two frames at once, in no promised order.
        member.send(r#"{"action":"join","group":"g"}"#).await;
        member.send(r#"{"action":"leave","group":"g"}"#).await;
        let answers: BTreeSet<String> = member
            .recv_json_n(2)
            .await
            .iter()
            .map(|a| a["type"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(answers, BTreeSet::from(["joined".into(), "left".into()]));
        member.send(r#"{"action":"whoami"}"#).await;
        let whoami = member.recv_json().await;
        let listed = whoami["groups"] == json!(["g"]);
        sender
            .send(&json!({"action":"send","to":{"group":"g"},"data":round,"id":"r"}).to_string())
            .await;
        let ack = sender.recv_json().await;
        assert_eq!(
            ack["delivered"] == 1,
            listed,
            "round {round}: whoami says {whoami}, the send reached {ack}"
        );
        if listed {
            assert_eq!(member.recv_json().await["data"], round);
            in_group += 1;
            // Back out for the next round.
            member.send(r#"{"action":"leave","group":"g"}"#).await;
            assert_eq!(member.recv_json().await["type"], "left");
        } else {
            out_of_group += 1;
        }
        member.expect_nothing_pending().await;
    }
    println!("50 rounds: {in_group} ended in the group, {out_of_group} out of it");
}
