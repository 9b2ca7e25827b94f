//! The Events API with applications of the tests' own, on the handlers over a real store: what
//! `on_connect` may do, the session's load and save under concurrent frames, and what `on_close`
//! is told.

use std::future::Future;
use std::sync::Mutex;

use protocol::BuiltIn;
use serde_json::{json, Value};
use shared::gateway::ended::Cause;
use shared::prelude::*;
use support::stack::Stack;
use tokio::sync::Barrier;

/// Sets or removes session keys: `set KEY VALUE`, `del KEY`; `show` answers the session. Each
/// frame that changes the session reads it, then waits at the barrier until as many frames have
/// read theirs, so that frames run at once really overlap before any of them saves; one that
/// starts with `alone` does not wait.
struct Keys {
    overlap: Barrier,
}

impl Events for Keys {
    async fn on_message(&self, client: &mut Client<'_>, frame: &str) -> Result<(), AppError> {
        let mut words: Vec<&str> = frame.split(' ').collect();
        if words == ["show"] {
            let session = Value::Object(client.session().await?.clone()).to_string();
            client.send_to_current_client(&session).await?;
            return Ok(());
        }
        if words.first() == Some(&"alone") {
            words.remove(0);
        } else {
            client.session().await?;
            self.overlap.wait().await;
        }
        let session = client.session().await?;
        match words[..] {
            ["set", key, value] => {
                session.insert(key.into(), json!(value));
            }
            ["del", key] => {
                session.remove(key);
            }
            _ => return Err(AppError::bad_request("set, del or show")),
        }
        Ok(())
    }
}

fn keys(frames_at_once: usize) -> Keys {
    Keys {
        overlap: Barrier::new(frames_at_once),
    }
}

async fn session_of<A: Events>(stack: &Stack<A>, connection_id: &str) -> Value {
    stack.send(connection_id, "show").await;
    stack.received_json(connection_id)
}

#[tokio::test]
async fn two_frames_changing_one_session_at_once_both_keep_their_change() {
    let stack = Stack::with_app(keys(2)).await;
    assert_eq!(stack.connect("A=", &[]).await, 200);
    tokio::join!(
        stack.send("A=", "set room 1"),
        stack.send("A=", "set name ann")
    );
    assert_eq!(
        session_of(&stack, "A=").await,
        json!({"room": "1", "name": "ann"})
    );
}

#[tokio::test]
async fn a_key_removed_by_one_frame_stays_removed_while_another_sets_a_key() {
    let stack = Stack::with_app(keys(2)).await;
    assert_eq!(stack.connect("A=", &[]).await, 200);
    stack.send("A=", "alone set room 1").await;
    tokio::join!(
        stack.send("A=", "del room"),
        stack.send("A=", "set name ann")
    );
    assert_eq!(session_of(&stack, "A=").await, json!({"name": "ann"}));
}

/// Lets in `?name=` (binding it as the uid, in the lobby, greeted in its session) unless it is
/// mallory; on close, remembers what it was told.
#[derive(Default)]
struct Doorman {
    closed: Mutex<Vec<Value>>,
}

impl Events for Doorman {
    async fn on_connect(&self, client: &mut Connecting<'_>) -> Result<Verdict, AppError> {
        let Some(name) = client.query("name").map(str::to_owned) else {
            return Ok(Verdict::Accept);
        };
        if name == "mallory" {
            return Ok(Verdict::Refuse(403));
        }
        client.bind_uid(&name)?;
        client.join_group("lobby")?;
        client
            .session()
            .insert("greeting".into(), json!(format!("hi {name}")));
        Ok(Verdict::Accept)
    }

    async fn on_message(&self, client: &mut Client<'_>, _frame: &str) -> Result<(), AppError> {
        let uid = client.uid().await?;
        let session = client.session().await?.clone();
        let answer = json!({"uid": uid, "session": session});
        client.send_to_current_client(&answer.to_string()).await?;
        Ok(())
    }

    async fn on_close(&self, client: &Closing<'_>) -> Result<(), AppError> {
        let groups: Vec<&str> = client.groups().collect();
        let still_a_member = client.gateway().client_ids_by_group("lobby").await?;
        self.closed.lock().unwrap().push(json!({
            "connection": client.connection_id(),
            "uid": client.uid(),
            "groups": groups,
            "session": client.session(),
            "lobby": still_a_member,
        }));
        Ok(())
    }
}

#[tokio::test]
async fn on_connect_binds_a_uid_joins_a_group_and_fills_the_session_in_the_record() {
    let stack = Stack::with_app(Doorman::default()).await;
    assert_eq!(stack.connect("A=", &[("name", "ann")]).await, 200);
    let items = stack.items_of("A=").await;
    assert_eq!(items.len(), 4, "connection, all, uid and group: {items:?}");
    assert_eq!(
        stack.gateway.client_ids_by_group("lobby").await.unwrap(),
        ["A="]
    );
    assert_eq!(
        stack.gateway.client_ids_by_uid("ann").await.unwrap(),
        ["A="]
    );
    stack.send("A=", "who").await;
    assert_eq!(
        stack.received_json("A="),
        json!({"uid": "ann", "session": {"greeting": "hi ann"}})
    );
}

#[tokio::test]
async fn on_connect_refusing_answers_its_status_and_writes_nothing() {
    let stack = Stack::with_app(Doorman::default()).await;
    assert_eq!(stack.connect("M=", &[("name", "mallory")]).await, 403);
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn on_close_is_told_the_uid_groups_and_session_after_the_items_are_gone() {
    let stack = Stack::with_app(Doorman::default()).await;
    assert_eq!(stack.connect("A=", &[("name", "ann")]).await, 200);
    assert_eq!(stack.disconnect("A=").await, 200);
    assert!(stack.items().await.is_empty());
    assert_eq!(
        *stack.app.closed.lock().unwrap(),
        [json!({
            "connection": "A=",
            "uid": "ann",
            "groups": ["lobby"],
            "session": {"greeting": "hi ann"},
            "lobby": [],
        })]
    );
}

/// The built-in protocol, plus `kick ID` (a kick from a hook); notes every `on_close` it is given.
#[derive(Default)]
struct Warden {
    closed: Mutex<Vec<(String, Cause)>>,
}

impl Events for Warden {
    async fn on_message(&self, client: &mut Client<'_>, frame: &str) -> Result<(), AppError> {
        match frame.strip_prefix("kick ") {
            Some(id) => Ok(client.gateway().close_client(id).await?),
            None => BuiltIn.on_message(client, frame).await,
        }
    }

    async fn on_close(&self, client: &Closing<'_>) -> Result<(), AppError> {
        self.closed
            .lock()
            .unwrap()
            .push((client.connection_id().to_owned(), client.cause()));
        Ok(())
    }
}

/// A member `X=` (uid `xu`) of `room`, which `F=` follows with presence events.
async fn followed_member(stack: &Stack<Warden>) {
    for (id, uid) in [("F=", "fay"), ("X=", "xu"), ("A=", "ann"), ("B=", "bo")] {
        assert_eq!(stack.connect(id, &[("uid", uid)]).await, 200);
    }
    stack
        .send("F=", r#"{"action":"join","group":"room","presence":true}"#)
        .await;
    stack
        .send("X=", r#"{"action":"join","group":"room"}"#)
        .await;
    for id in ["F=", "X="] {
        stack.received(id);
    }
}

/// [`followed_member`] behind the fault proxy, `X=` vanished (its pushes answered 410, no connect
/// grace).
async fn vanished_member() -> (support::fault_proxy::FaultProxy, Stack<Warden>) {
    let (proxy, stack) = Stack::app_behind_proxy(Warden::default(), |c| {
        c.connect_grace = std::time::Duration::ZERO;
    })
    .await;
    followed_member(&stack).await;
    stack.sink.mark_gone("X=");
    (proxy, stack)
}

/// The leave events `F=` was sent about `X=`.
fn leaves_of_x(stack: &Stack<Warden>) -> Vec<Value> {
    stack
        .received("F=")
        .iter()
        .map(|f| serde_json::from_str::<Value>(f).expect("JSON"))
        .filter(|f| f["event"] == "leave" && f["connectionId"] == "X=")
        .collect()
}

/// Lets the two ends race: each one's deciding write waits at the proxy until both are there.
async fn both_ends_at_once(
    proxy: &support::fault_proxy::FaultProxy,
    a: impl Future,
    b: impl Future,
) {
    proxy.hold("endedAt");
    let release = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while proxy.held() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the two ends never met"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        proxy.release();
    };
    tokio::join!(a, b, release);
}

#[tokio::test]
async fn a_kick_from_a_hook_closes_once_and_its_disconnect_finds_it_ended() {
    let stack = Stack::with_app(Warden::default()).await;
    followed_member(&stack).await;
    stack.send("A=", "kick X=").await;
    assert!(stack.items_of("X=").await.is_empty(), "the kick ended X");
    assert_eq!(stack.disconnect("X=").await, 200);
    assert_eq!(
        *stack.app.closed.lock().unwrap(),
        [("X=".to_owned(), Cause::Kicked)]
    );
    let leaves = leaves_of_x(&stack);
    assert_eq!(leaves.len(), 1, "{leaves:?}");
    assert_eq!(leaves[0]["uid"], "xu");
}

#[tokio::test]
async fn two_sends_meeting_one_vanished_member_end_it_once() {
    let (proxy, stack) = vanished_member().await;
    let send = r#"{"action":"send","to":{"group":"room"},"data":"anyone?"}"#;
    both_ends_at_once(&proxy, stack.send("A=", send), stack.send("B=", send)).await;
    assert_eq!(
        *stack.app.closed.lock().unwrap(),
        [("X=".to_owned(), Cause::Gone)]
    );
    let leaves = leaves_of_x(&stack);
    assert_eq!(leaves.len(), 1, "one leave for one end: {leaves:?}");
    assert_eq!(leaves[0]["uid"], "xu");
    assert!(stack.items_of("X=").await.is_empty());
}

#[tokio::test]
async fn a_disconnect_racing_a_prune_closes_once() {
    let (proxy, stack) = vanished_member().await;
    let send = r#"{"action":"send","to":{"group":"room"},"data":"anyone?"}"#;
    both_ends_at_once(&proxy, stack.send("A=", send), async {
        assert_eq!(stack.disconnect("X=").await, 200);
    })
    .await;
    let closed = stack.app.closed.lock().unwrap().clone();
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(leaves_of_x(&stack).len(), 1);
}

/// Answers its sender first, then sends to a group: an application that pushes before it does
/// anything costly.
struct AnswerThenShare;

impl Events for AnswerThenShare {
    async fn on_message(&self, client: &mut Client<'_>, frame: &str) -> Result<(), AppError> {
        client.send_to_current_client("noted").await?;
        client.gateway().send_to_group("g", frame, &[]).await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_frame_whose_own_answer_ends_its_connection_still_carries_out_what_follows() {
    // The answer meets 410 and ends the connection; the send after it waits for the frame's
    // rate-limit count, which must not wait for a connection that is gone.
    let stack = Stack::with_app_and_config(AnswerThenShare, |c| {
        c.connect_grace = std::time::Duration::ZERO
    })
    .await;
    for id in ["A=", "B="] {
        assert_eq!(stack.connect(id, &[]).await, 200);
    }
    stack.gateway.join_group("B=", "g").await.unwrap();
    stack.sink.mark_gone("A=");
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stack.send("A=", "hello"),
    )
    .await
    .expect("the frame is handled, not left waiting on its count");
    assert_eq!(stack.received("B="), vec!["hello".to_owned()]);
    assert!(
        stack.items_of("A=").await.is_empty(),
        "A was ended by its 410"
    );
}

/// Answers where each frame came from (`$_SERVER['REMOTE_ADDR']`); `bye` closes the sender's
/// own connection (`closeCurrentClient`).
#[derive(Default)]
struct Mirror {
    closed: Mutex<Vec<String>>,
}

impl Events for Mirror {
    async fn on_message(&self, client: &mut Client<'_>, frame: &str) -> Result<(), AppError> {
        if frame == "bye" {
            client.close_current_client().await?;
            return Ok(());
        }
        let from = client.source_ip().unwrap_or("nowhere").to_owned();
        client.send_to_current_client(from).await?;
        Ok(())
    }

    async fn on_close(&self, client: &Closing<'_>) -> Result<(), AppError> {
        let from = client.source_ip().unwrap_or("nowhere");
        self.closed.lock().unwrap().push(from.to_owned());
        Ok(())
    }
}

#[tokio::test]
async fn every_hook_knows_where_its_client_connected_from() {
    let stack = Stack::with_app(Mirror::default()).await;
    stack.connect("A=", &[]).await;
    stack.send("A=", "where am I?").await;
    // The message fixture's identity, then the record's (the connect fixture's).
    assert_eq!(stack.received("A="), ["192.0.2.10"]);
    stack.send("A=", "bye").await;
    assert_eq!(*stack.app.closed.lock().unwrap(), ["10.0.0.13"]);
}

#[tokio::test]
async fn close_current_client_closes_the_sender_and_runs_its_on_close() {
    let stack = Stack::with_app(Mirror::default()).await;
    stack.connect("A=", &[]).await;
    stack.send("A=", "bye").await;
    assert!(
        stack.sink.take_methods().contains("DELETE"),
        "closed through @connections"
    );
    assert!(
        stack.items_but_counts().await.is_empty(),
        "the connection ended at once"
    );
    assert_eq!(stack.app.closed.lock().unwrap().len(), 1);
}
