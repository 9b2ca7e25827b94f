//! GatewayWorker's API through the real stack: uids, groups, targeted sends, presence, sessions,
//! kick, and pushes from a backend with the `gateway-client` CLI.

use serde_json::json;
use shared::gateway::target::Target;
use support::local_stack::LocalStack;
use support::tokens::{now, token, AUDIENCE};

const SECRET: &str = "a-secret-for-the-gateway-worker-tests";

#[tokio::test]
async fn two_devices_of_one_uid_both_receive_a_uid_send() {
    let stack = LocalStack::start(&[]).await;
    let mut phone = stack.client("/?uid=alice").await;
    let mut laptop = stack.client("/?uid=alice").await;
    let mut bob = stack.client("/?uid=bob").await;
    bob.send(r#"{"action":"send","to":{"uid":"alice"},"data":"hi alice","id":"1"}"#)
        .await;
    assert_eq!(
        bob.recv_json().await,
        json!({"type":"ack","id":"1","delivered":2})
    );
    for device in [&mut phone, &mut laptop] {
        let message = device.recv_json().await;
        assert_eq!(message["data"], "hi alice");
        assert_eq!(
            message["from"],
            json!({"connectionId": bob.connection_id, "uid": "bob"})
        );
    }
    bob.expect_nothing_pending().await;
}

#[tokio::test]
async fn a_group_send_reaches_members_only_and_the_sender_when_it_is_one() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/").await;
    let mut b = stack.client("/").await;
    let mut outsider = stack.client("/").await;
    for member in [&mut a, &mut b] {
        member.send(r#"{"action":"join","group":"room"}"#).await;
        member.recv_json().await;
    }
    a.send(r#"{"action":"send","to":{"group":"room"},"data":[1,2],"id":"g"}"#)
        .await;
    let frames = a.recv_json_n(2).await;
    let ack = frames
        .iter()
        .find(|f| f["type"] == "ack")
        .unwrap_or_else(|| panic!("no ack in {frames:?}"));
    assert_eq!(
        (&ack["id"], &ack["delivered"], &ack["group"], &ack["offset"]),
        (&json!("g"), &json!(2), &json!("room"), &json!(1)),
        "{frames:?}"
    );
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "message" && f["data"] == json!([1, 2])),
        "{frames:?}"
    );
    assert_eq!(b.recv_json().await["data"], json!([1, 2]));
    outsider.expect_nothing_pending().await;
}

#[tokio::test]
async fn exclude_and_exclude_self_leave_those_connections_out() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/").await;
    let mut b = stack.client("/").await;
    let mut c = stack.client("/").await;
    let frame = json!({"action":"send","to":{"all":true},"data":"x","exclude":[b.connection_id],"excludeSelf":true,"id":"e"});
    a.send(&frame.to_string()).await;
    assert_eq!(
        a.recv_json().await,
        json!({"type":"ack","id":"e","delivered":1})
    );
    assert_eq!(c.recv_json().await["data"], "x");
    a.expect_nothing_pending().await;
    b.expect_nothing_pending().await;
}

#[tokio::test]
async fn a_connection_in_two_targeted_groups_gets_one_copy() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/").await;
    let mut both = stack.client("/").await;
    for group in ["red", "blue"] {
        both.send(&format!(r#"{{"action":"join","group":"{group}"}}"#))
            .await;
        both.recv_json().await;
    }
    a.send(r#"{"action":"send","to":{"groups":["red","blue"]},"data":"once","id":"d"}"#)
        .await;
    assert_eq!(
        a.recv_json().await,
        json!({"type":"ack","id":"d","delivered":1})
    );
    assert_eq!(both.recv_json().await["data"], "once");
    both.expect_nothing_pending().await;
}

#[tokio::test]
async fn presence_follows_joins_leaves_and_disconnects() {
    let stack = LocalStack::start(&[]).await;
    let mut alice = stack.client("/?uid=alice").await;
    let mut alice2 = stack.client("/?uid=alice").await;
    let mut bob = stack.client("/?uid=bob").await;
    for client in [&mut alice, &mut alice2, &mut bob] {
        client.send(r#"{"action":"join","group":"lobby"}"#).await;
        client.recv_json().await;
    }
    let presence = |connections: usize, uids: &[&str]| json!({"type":"presence","group":"lobby","connections":connections,"uids":uids});
    bob.send(r#"{"action":"presence","group":"lobby"}"#).await;
    assert_eq!(bob.recv_json().await, presence(3, &["alice", "bob"]));
    alice2.send(r#"{"action":"leave","group":"lobby"}"#).await;
    assert_eq!(
        alice2.recv_json().await,
        json!({"type":"left","group":"lobby"})
    );
    bob.send(r#"{"action":"presence","group":"lobby"}"#).await;
    assert_eq!(bob.recv_json().await, presence(2, &["alice", "bob"]));
    alice.close().await;
    stack.await_items(3 + 3 + 1).await; // alice2 (3 items) and bob (3 items + lobby)
    bob.send(r#"{"action":"presence","group":"lobby"}"#).await;
    assert_eq!(bob.recv_json().await, presence(1, &["bob"]));
    bob.send(r#"{"action":"presence"}"#).await;
    assert_eq!(
        bob.recv_json().await,
        json!({"type":"presence","connections":2,"uids":["alice","bob"]})
    );
}

#[tokio::test]
async fn ungroup_takes_everyone_out_of_a_group() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/").await;
    let mut b = stack.client("/").await;
    for client in [&mut a, &mut b] {
        client.send(r#"{"action":"join","group":"doomed"}"#).await;
        client.recv_json().await;
    }
    let api = stack.api();
    assert_eq!(api.ungroup("doomed").await.unwrap(), 2);
    assert_eq!(api.group_presence("doomed").await.unwrap().connections, 0);
    a.send(r#"{"action":"whoami"}"#).await;
    assert_eq!(a.recv_json().await["groups"], json!([]));
    a.send(r#"{"action":"send","to":{"group":"doomed"},"data":1,"id":"u"}"#)
        .await;
    let ack = a.recv_json().await;
    assert_eq!(
        (&ack["type"], &ack["id"], &ack["delivered"]),
        (&json!("ack"), &json!("u"), &json!(0)),
        "{ack}"
    );
    b.expect_nothing_pending().await;
}

#[tokio::test]
async fn kick_closes_every_connection_of_a_uid_and_removes_their_records() {
    let stack = LocalStack::start(&[]).await;
    let mut one = stack.client("/?uid=mallory").await;
    let mut two = stack.client("/?uid=mallory").await;
    let mut other = stack.client("/?uid=bob").await;
    assert_eq!(
        stack.cli(&["kick", "--uid", "mallory"]).await,
        Ok(json!({"closed": 2}))
    );
    assert_eq!(one.closed().await.code, 1000);
    assert_eq!(two.closed().await.code, 1000);
    stack.await_items(3).await;
    assert_eq!(
        stack.cli(&["online", "--uid", "mallory"]).await,
        Ok(json!({"online": false, "connections": []}))
    );
    other.expect_nothing_pending().await;
}

#[tokio::test]
async fn the_cli_pushes_to_a_client_a_uid_a_group_and_everyone() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/?uid=alice").await;
    let mut b = stack.client("/").await;
    b.send(r#"{"action":"join","group":"news"}"#).await;
    b.recv_json().await;
    assert_eq!(
        stack
            .cli(&["send", "--client", &a.connection_id, "direct"])
            .await,
        Ok(json!({"delivered":1,"gone":0}))
    );
    assert_eq!(a.recv().await, "direct");
    assert_eq!(
        stack.cli(&["send", "--uid", "alice", "to alice"]).await,
        Ok(json!({"delivered":1,"gone":0}))
    );
    assert_eq!(a.recv().await, "to alice");
    assert_eq!(
        stack.cli(&["send", "--group", "news", "headline"]).await,
        Ok(json!({"delivered":1,"gone":0}))
    );
    assert_eq!(b.recv().await, "headline");
    let everyone = stack
        .cli(&["send", "--all", "--exclude", &b.connection_id, "not b"])
        .await;
    assert_eq!(everyone, Ok(json!({"delivered":1,"gone":0})));
    assert_eq!(a.recv().await, "not b");
    b.expect_nothing_pending().await;
    let error = stack
        .cli(&["send", "--group", "bad name", "x"])
        .await
        .unwrap_err();
    assert!(error.contains("not a valid name"), "{error}");
}

#[tokio::test]
async fn sessions_survive_across_invocations_and_vanish_with_the_connection() {
    let stack = LocalStack::start(&[]).await;
    let a = stack.client("/").await;
    let id = a.connection_id.clone();
    assert_eq!(
        stack
            .cli(&["session", "set", &id, r#"{"cart":["apple"]}"#])
            .await,
        Ok(json!({"stored": true}))
    );
    assert_eq!(
        stack
            .cli(&["session", "update", &id, r#"{"step":2}"#])
            .await,
        Ok(json!({"stored": true}))
    );
    assert_eq!(
        stack.cli(&["session", "get", &id]).await,
        Ok(json!({"session": {"cart":["apple"],"step":2}}))
    );
    a.close().await;
    stack.await_items(0).await;
    assert_eq!(
        stack.cli(&["session", "get", &id]).await,
        Ok(json!({"session": null}))
    );
    assert_eq!(
        stack.cli(&["session", "set", &id, "{}"]).await,
        Ok(json!({"stored": false}))
    );
    assert!(
        stack.items_but_counts().await.is_empty(),
        "a session write for a gone connection creates nothing"
    );
}

#[tokio::test]
async fn a_uid_bound_by_a_backend_receives_uid_sends() {
    let stack = LocalStack::start(&[]).await;
    let mut anonymous = stack.client("/").await;
    let api = stack.api();
    assert!(api
        .bind_uid(&anonymous.connection_id, "carol")
        .await
        .unwrap());
    assert!(
        !api.bind_uid(&anonymous.connection_id, "dave")
            .await
            .unwrap(),
        "a bound uid is not replaced"
    );
    api.send_to(&Target::Uids(vec!["carol".into()]), "for carol", &[])
        .await
        .unwrap();
    assert_eq!(anonymous.recv().await, "for carol");
    assert!(api.unbind_uid(&anonymous.connection_id).await.unwrap());
    assert!(!api.is_uid_online("carol").await.unwrap());
    anonymous.send(r#"{"action":"whoami"}"#).await;
    assert_eq!(anonymous.recv_json().await["uid"], json!(null));
}

#[tokio::test]
async fn a_valid_token_binds_its_sub_and_bad_tokens_are_refused_with_401_writing_nothing() {
    let stack = LocalStack::start(&[("AUTH_SECRET", SECRET)]).await;
    let later = now() + 300;
    let bad = [
        token(
            json!({"sub": "alice", "aud": AUDIENCE, "exp": later}),
            "the-wrong-secret",
        ),
        token(
            json!({"sub": "alice", "aud": AUDIENCE, "exp": now() - 600}),
            SECRET,
        ),
        token(
            json!({"sub": "alice", "aud": AUDIENCE, "exp": later, "nbf": now() + 120}),
            SECRET,
        ),
        token(json!({"sub": "alice", "aud": AUDIENCE}), SECRET),
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0."
            .to_owned(),
        "garbage".to_owned(),
    ];
    for t in &bad {
        assert_eq!(
            stack.try_client(&format!("/?token={t}")).await.err(),
            Some(401),
            "{t}"
        );
    }
    assert!(stack.items().await.is_empty());
    let good = token(
        json!({"sub": "alice", "aud": AUDIENCE, "exp": later}),
        SECRET,
    );
    let mut alice = stack.client(&format!("/?token={good}&uid=mallory")).await;
    alice.send(r#"{"action":"whoami"}"#).await;
    assert_eq!(alice.recv_json().await["uid"], "alice");
}

#[tokio::test]
async fn a_token_minted_by_the_cli_carries_its_uid_and_claims_through_the_stack() {
    let stack = LocalStack::start(&[("AUTH_SECRET", SECRET)]).await;
    let mint = |uid: &'static str, claims: &'static [&'static str]| {
        let stack = &stack;
        async move {
            let mut args = vec!["token", uid, "--secret", SECRET, "--seconds", "60"];
            args.extend_from_slice(claims);
            let answer = stack.cli(&args).await.expect("gateway-client token");
            answer["token"].as_str().expect("a token").to_owned()
        }
    };
    let granted = mint("alice", &["--group", "room-*", "--send", "group:room-*"]).await;
    let plain = mint("bob", &[]).await;
    let mut alice = stack.client(&format!("/?token={granted}")).await;
    let mut bob = stack.client(&format!("/?token={plain}")).await;
    alice.send(r#"{"action":"join","group":"room-7"}"#).await;
    assert_eq!(
        alice.recv_json().await,
        json!({"type":"joined","group":"room-7"})
    );
    bob.send(r#"{"action":"join","group":"room-7"}"#).await;
    assert_eq!(bob.recv_json().await["code"], "forbidden");
    bob.send(r#"{"action":"whoami"}"#).await;
    assert_eq!(bob.recv_json().await["uid"], "bob");
    assert!(stack
        .cli(&["token", "b o b", "--secret", SECRET])
        .await
        .is_err());
}
