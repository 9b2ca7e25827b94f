//! The whole path a user takes: real WebSocket clients → the local gateway → the real function
//! binaries under `cargo lambda watch` → a real DynamoDB-compatible server, and pushes back through
//! the gateway's `@connections`.

use reqwest::Method;
use serde_json::json;
use support::local_stack::{kinds, LocalStack};
use support::tokens;

#[tokio::test]
async fn a_plain_frame_is_echoed_to_the_sender_only() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/").await;
    let mut b = stack.client("/dev").await;
    a.send("hello, gateway").await;
    assert_eq!(a.recv().await, "Hello, you sent: hello, gateway");
    a.expect_nothing_pending().await;
    b.expect_nothing_pending().await;
}

#[tokio::test]
async fn sendmessage_reaches_everyone_and_everyone_leaving_empties_the_table() {
    let stack = LocalStack::start(&[]).await;
    let mut clients = Vec::new();
    for uid in ["alice", "bob", "carol"] {
        clients.push(stack.client(&format!("/?uid={uid}")).await);
    }
    assert_eq!(
        stack.items_but_counts().await.len(),
        3 * 3,
        "connection, all and uid items for each"
    );
    clients[1]
        .send(r#"{"action":"sendmessage","data":"hi everyone"}"#)
        .await;
    for client in &mut clients {
        assert_eq!(client.recv().await, "hi everyone");
    }
    for client in clients {
        client.close().await;
    }
    stack.await_items(0).await;
}

#[tokio::test]
async fn ping_whoami_and_the_group_commands_answer_through_the_gateway() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/?uid=alice").await;
    let mut b = stack.client("/?uid=bob").await;
    a.send(r#"{"action":"ping"}"#).await;
    assert_eq!(a.recv_json().await, json!({"type":"pong"}));
    b.send(r#"{"action":"join","group":"room-1"}"#).await;
    assert_eq!(
        b.recv_json().await,
        json!({"type":"joined","group":"room-1"})
    );
    b.send(r#"{"action":"whoami"}"#).await;
    assert_eq!(
        b.recv_json().await,
        json!({"type":"whoami","connectionId":b.connection_id,"uid":"bob","groups":["room-1"]})
    );
    a.send(r#"{"action":"send","to":{"group":"room-1"},"data":{"text":"hi room"},"id":"m1"}"#)
        .await;
    let ack = a.recv_json().await;
    let message = b.recv_json().await;
    let epoch = message["epoch"].as_str().expect("a group stream's epoch");
    assert_eq!(
        ack,
        json!({"type":"ack","id":"m1","delivered":1,"group":"room-1","epoch":epoch,"offset":1}),
        "the ack says where the message was kept"
    );
    assert_eq!(
        message,
        json!({"type":"message","from":{"connectionId":a.connection_id,"uid":"alice"},"to":{"group":"room-1"},"data":{"text":"hi room"},"group":"room-1","epoch":epoch,"offset":1})
    );
    a.send(r#"{"action":"presence","group":"room-1"}"#).await;
    assert_eq!(
        a.recv_json().await,
        json!({"type":"presence","group":"room-1","connections":1,"uids":["bob"]})
    );
}

#[tokio::test]
async fn every_error_frame_leaves_the_connection_open() {
    let stack = LocalStack::start(&[("MAX_MESSAGE_BYTES", "512")]).await;
    let mut a = stack.client("/").await;
    let cases = [
        (
            r#"{"action":"fly"}"#.to_owned(),
            "unknown_action",
            Some("fly"),
        ),
        (
            r#"{"action":"join","group":"no spaces"}"#.to_owned(),
            "bad_request",
            Some("join"),
        ),
        (
            r#"{"action":"send","to":{"uid":"a","group":"b"},"data":1}"#.to_owned(),
            "bad_request",
            Some("send"),
        ),
        (
            format!(r#"{{"action":"sendmessage","data":"{}"}}"#, "x".repeat(600)),
            "too_large",
            None,
        ),
    ];
    for (frame, code, action) in cases {
        a.send(&frame).await;
        let error = a.recv_json().await;
        assert_eq!(error["type"], "error", "{frame}");
        assert_eq!(error["code"], code, "{frame}");
        assert_eq!(error["action"].as_str(), action, "{frame}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    a.expect_nothing_pending().await;
}

#[tokio::test]
async fn a_connect_with_a_bad_uid_is_refused_with_400_and_writes_nothing() {
    let stack = LocalStack::start(&[]).await;
    assert_eq!(stack.try_client("/?uid=not%20valid").await.err(), Some(400));
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn with_a_secret_a_missing_token_is_refused_by_the_gateway_and_a_bad_one_by_the_authorizer() {
    let stack = LocalStack::start(&[("AUTH_SECRET", "a-secret-for-the-end-to-end-tests")]).await;
    assert_eq!(stack.try_client("/?token=not.a.jwt").await.err(), Some(401));
    // No token, or an empty one: the authorizer's identity source (?token=) is missing, and API
    // Gateway answers 401 without invoking anything.
    assert_eq!(stack.try_client("/?uid=alice").await.err(), Some(401));
    assert_eq!(stack.try_client("/?token=").await.err(), Some(401));
    assert_eq!(
        stack.try_client("/?token=still.not.a-jwt").await.err(),
        Some(401)
    );
    assert!(stack.items().await.is_empty());
    let refusals = |log: &str| log.matches("authorizer refused").count();
    let deadline = std::time::Instant::now() + support::local_stack::PATIENCE;
    let log = loop {
        let log = stack.function_log();
        if refusals(&log) >= 2 || std::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    assert_eq!(
        refusals(&log),
        2,
        "only the two handshakes with a token reached the authorizer: {log}"
    );
    assert!(
        !log.contains("connect refused"),
        "$connect never ran for a refused handshake: {log}"
    );
}

#[tokio::test]
async fn with_a_secret_a_token_without_the_claim_is_forbidden_and_one_with_it_is_allowed() {
    let secret = "a-secret-for-the-authorization-test-0123";
    let stack = LocalStack::start(&[("AUTH_SECRET", secret)]).await;
    let claims = json!({"groups": ["room-*"], "send": ["group:room-*", "all"]});
    let granted = support::tokens::token_for("alice", claims, secret);
    let plain = support::tokens::token_for("mallory", json!({}), secret);
    let mut alice = stack.client(&format!("/?token={granted}")).await;
    let mut mallory = stack.client(&format!("/?token={plain}")).await;
    alice.send(r#"{"action":"join","group":"room-1"}"#).await;
    assert_eq!(alice.recv_json().await["type"], "joined");
    let before = support::local_stack::kinds(&stack.items_but_counts().await);
    for frame in [
        r#"{"action":"join","group":"room-1"}"#,
        r#"{"action":"presence","group":"room-1"}"#,
        r#"{"action":"presence"}"#,
        r#"{"action":"send","to":{"group":"room-1"},"data":"psst"}"#,
        r#"{"action":"sendmessage","data":"to everyone"}"#,
    ] {
        mallory.send(frame).await;
        let answer = mallory.recv_json().await;
        assert_eq!(answer["code"], "forbidden", "{frame}: {answer}");
    }
    assert_eq!(
        support::local_stack::kinds(&stack.items_but_counts().await),
        before,
        "a refused frame writes nothing"
    );
    mallory.send(r#"{"action":"whoami"}"#).await;
    assert_eq!(mallory.recv_json().await["groups"], json!([]));
    alice.expect_nothing_pending().await;

    alice
        .send(r#"{"action":"send","to":{"group":"room-1"},"data":"hello room"}"#)
        .await;
    assert_eq!(alice.recv_json().await["data"], "hello room");
    alice
        .send(r#"{"action":"sendmessage","data":"to everyone"}"#)
        .await;
    assert_eq!(alice.recv().await, "to everyone");
    assert_eq!(mallory.recv().await, "to everyone");
}

#[tokio::test]
async fn a_token_without_the_audience_or_for_another_is_refused_with_401() {
    let secret = "a-secret-for-the-audience-test-0123456789";
    let stack = LocalStack::start(&[("AUTH_SECRET", secret)]).await;
    let later = tokens::now() + 300;
    let without = tokens::token(json!({"sub": "alice", "exp": later}), secret);
    let another = tokens::token(
        json!({"sub": "alice", "aud": "another-service", "exp": later}),
        secret,
    );
    for token in [&without, &another] {
        assert_eq!(
            stack.try_client(&format!("/?token={token}")).await.err(),
            Some(401)
        );
    }
    assert!(stack.items().await.is_empty());
    stack
        .await_function_log(|line| line.contains("no aud claim"))
        .await;
    stack
        .await_function_log(|line| line.contains("meant for another service"))
        .await;
    let meant_for_us = tokens::token(
        json!({"sub": "alice", "aud": tokens::AUDIENCE, "exp": later}),
        secret,
    );
    stack.client(&format!("/?token={meant_for_us}")).await;
}

#[tokio::test]
async fn a_token_living_longer_than_the_cap_is_refused_with_401() {
    let secret = "a-secret-for-the-lifetime-test-0123456789";
    let stack = LocalStack::start(&[("AUTH_SECRET", secret)]).await;
    // MAX_TOKEN_LIFETIME_SECONDS is 600 by default: an hour is too long for a token in a URL.
    let hour = tokens::token(
        tokens::claims_for("alice", json!({"exp": tokens::now() + 3600})),
        secret,
    );
    assert_eq!(
        stack.try_client(&format!("/?token={hour}")).await.err(),
        Some(401)
    );
    assert!(stack.items().await.is_empty());
    stack
        .await_function_log(|line| line.contains("MAX_TOKEN_LIFETIME_SECONDS"))
        .await;
    let minutes = tokens::token(
        tokens::claims_for("alice", json!({"exp": tokens::now() + 300})),
        secret,
    );
    stack.client(&format!("/?token={minutes}")).await;
}

#[tokio::test]
async fn after_a_rotation_the_new_and_the_previous_key_connect_and_an_unknown_kid_is_refused() {
    let old = "the-key-before-the-rotation-0123456789";
    let new = "the-key-after-the-rotation-01234567890";
    let stack = LocalStack::start(&[("AUTH_SECRET", old)]).await;
    let signed = |kid: &str, sub: &str, secret: &str| {
        tokens::token_with_kid(Some(kid), tokens::claims_for(sub, json!({})), secret)
    };
    // The connect function reads the one key (kid 1) at init.
    let first = signed(tokens::KID, "alice", old);
    let mut alice = stack.client(&format!("/?token={first}")).await;

    // The operator rotates: a new current key, the old one kept as the previous key.
    stack
        .put_token_keys(&json!({
            "kid": "2",
            "secret": new,
            "previous": [{"kid": tokens::KID, "secret": old}],
        }))
        .await;
    // A token of the new key names a key the running function has not read: it reads again.
    let current = signed("2", "bob", new);
    let mut bob = stack.client(&format!("/?token={current}")).await;
    // Tokens minted before the rotation still connect.
    let previous = signed(tokens::KID, "carol", old);
    let mut carol = stack.client(&format!("/?token={previous}")).await;
    // A kid the secret does not list is refused, even signed with a listed key.
    let unknown = signed("3", "mallory", new);
    assert_eq!(
        stack.try_client(&format!("/?token={unknown}")).await.err(),
        Some(401)
    );
    for (client, uid) in [
        (&mut alice, "alice"),
        (&mut bob, "bob"),
        (&mut carol, "carol"),
    ] {
        client.send(r#"{"action":"whoami"}"#).await;
        assert_eq!(client.recv_json().await["uid"], uid);
    }
}

#[tokio::test]
async fn delete_on_connections_closes_the_client_and_disconnect_cleans_up() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/?uid=alice").await;
    let mut b = stack.client("/").await;
    a.send(r#"{"action":"join","group":"room"}"#).await;
    a.recv_json().await;
    let (status, _) = stack.management(Method::DELETE, &a.connection_id, "").await;
    assert_eq!(status, 204);
    assert_eq!(a.closed().await.code, 1000);
    let items = stack.await_items(2).await;
    assert_eq!(
        kinds(&items).get("conn"),
        Some(&1),
        "only b is left: {items:?}"
    );
    let (status, body) = stack
        .management(Method::POST, &a.connection_id, "anyone?")
        .await;
    assert_eq!(status, 410);
    assert!(body.contains("gone"));
    b.expect_nothing_pending().await;
}

#[tokio::test]
async fn the_management_api_pushes_to_and_describes_a_connection() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/").await;
    let (status, _) = stack
        .management(Method::POST, &a.connection_id, "from a backend")
        .await;
    assert_eq!(status, 200);
    assert_eq!(a.recv().await, "from a backend");
    let (status, body) = stack.management(Method::GET, &a.connection_id, "").await;
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["identity"]["sourceIp"], "127.0.0.1");
    assert!(info["connectedAt"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert!(info["lastActiveAt"].is_string());
}

#[tokio::test]
async fn a_binary_frame_closes_the_connection_with_1003() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/").await;
    a.send_binary(&[0, 159, 146, 150]).await;
    assert_eq!(a.closed().await.code, 1003);
    stack.await_items(0).await;
}

#[tokio::test]
async fn a_send_to_a_connection_that_left_delivers_nothing_and_is_no_error() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/").await;
    let b = stack.client("/").await;
    let gone = b.connection_id.clone();
    b.close().await;
    stack.await_items(2).await;
    // The gateway answers the push to b with 410, as API Gateway does.
    let frame =
        format!(r#"{{"action":"send","to":{{"connectionId":"{gone}"}},"data":1,"id":"x"}}"#);
    a.send(&frame).await;
    assert_eq!(
        a.recv_json().await,
        json!({"type":"ack","id":"x","delivered":0})
    );
    a.expect_nothing_pending().await;
}

#[tokio::test]
async fn every_request_logs_one_json_line_with_its_ids_and_never_the_token_or_the_body() {
    let secret = "a-secret-for-the-logging-test-0123456789";
    let stack =
        LocalStack::start(&[("AUTH_SECRET", secret), ("AWS_LAMBDA_LOG_FORMAT", "JSON")]).await;
    let token = support::tokens::token_for("alice", json!({"send": ["all"]}), secret);
    let mut alice = stack.client(&format!("/?token={token}")).await;
    let body = "the-body-must-never-be-logged-7f3a";
    alice
        .send(&json!({"action":"sendmessage","data": body}).to_string())
        .await;
    assert_eq!(alice.recv().await, body);
    let id = alice.connection_id.clone();
    let is_message_line = |line: &str| line.contains("\"sendmessage\"") && line.contains(&id);
    let log = stack.await_function_log(is_message_line).await;
    assert!(!log.contains(&token), "the token is in the log");
    assert!(!log.contains(body), "a message body is in the log");
    let line: serde_json::Value =
        serde_json::from_str(log.lines().find(|l| is_message_line(l)).unwrap())
            .expect("log lines are JSON");
    assert_eq!(line["fields"]["action"], "sendmessage");
    assert_eq!(line["fields"]["outcome"], "ok");
    assert!(line["fields"]["duration_ms"].is_number(), "{line}");
    assert_eq!(line["span"]["connection_id"], id.as_str());
    assert!(
        line["span"]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{line}"
    );
    let connect_line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| {
            l["fields"]["outcome"] == "connected" && l["span"]["connection_id"] == id.as_str()
        })
        .expect("a line for the $connect");
    assert_eq!(connect_line["fields"]["uid"], "alice");

    alice.send(r#"{"action":"dance"}"#).await;
    assert_eq!(alice.recv_json().await["code"], "unknown_action");
    let refused = |line: &str| line.contains("\"unknown_action\"") && line.contains(&id);
    let log = stack.await_function_log(refused).await;
    let line: serde_json::Value =
        serde_json::from_str(log.lines().find(|l| refused(l)).unwrap()).expect("JSON");
    assert_eq!(
        line["fields"]["action"], "dance",
        "a refused frame's line names the action it asked for"
    );
}

#[tokio::test]
async fn one_function_invoked_on_its_own_with_a_fixture_event_reaches_the_open_connections() {
    let stack = LocalStack::start(&[]).await;
    let mut a = stack.client("/dev").await;
    // A sendmessage from a connection that is not open (tests/fixtures/message.json).
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/message.json");
    let answer = stack
        .invoke("message", &fixture)
        .await
        .expect("cargo lambda invoke");
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(a.recv().await, "hello");
}
