//! The hello chat (`examples/hello`) through the whole local stack: `on_open` greets a client
//! once its handshake has completed — the `$connect` function invokes the message function
//! asynchronously through the local gateway's Invoke API, as it invokes Lambda in AWS — and the
//! rooms work as `docs/porting.md` says.

use support::local_stack::LocalStack;
use support::ws::Ws;

const GREETING: &str = "welcome! /join ROOM";

async fn hello() -> LocalStack {
    LocalStack::start_app("hello-", &[]).await
}

/// Joins `room`, and waits until a frame of the client's own comes back through it (a
/// connection's frames run concurrently, so one sent right after the join may be handled before
/// it: it is refused, and sent again). Every frame on the way is returned.
async fn join(ws: &mut Ws, room: &str) -> Vec<String> {
    ws.send(&format!("/join {room}")).await;
    let mut seen = Vec::new();
    loop {
        ws.send("am I in?").await;
        let frame = ws.recv().await;
        if frame == "am I in?" {
            return seen;
        }
        seen.push(frame);
    }
}

#[tokio::test]
async fn a_client_is_greeted_once_its_handshake_has_completed() {
    let stack = hello().await;
    let mut ws = stack.raw_client("").await;
    assert_eq!(ws.recv().await, GREETING);
    let later = join(&mut ws, "lobby").await;
    assert!(
        !later.contains(&GREETING.to_owned()),
        "one greeting: {later:?}"
    );
    let opened = stack
        .items()
        .await
        .into_iter()
        .filter(|item| item.contains_key("openedAt"))
        .count();
    assert_eq!(opened, 1, "the record is marked opened once");
}

#[tokio::test]
async fn a_room_hears_what_its_members_send() {
    let stack = hello().await;
    let (mut ann, mut bob) = (stack.raw_client("").await, stack.raw_client("").await);
    for ws in [&mut ann, &mut bob] {
        assert_eq!(ws.recv().await, GREETING);
    }
    join(&mut ann, "lobby").await;
    join(&mut bob, "lobby").await;
    ann.send("hello bob").await;
    assert_eq!(bob.recv().await, "hello bob");
}

#[tokio::test]
async fn a_frame_before_joining_is_refused_and_the_client_stays() {
    let stack = hello().await;
    let mut ws = stack.raw_client("").await;
    assert_eq!(ws.recv().await, GREETING);
    ws.send("hello?").await;
    let refused = ws.recv_json().await;
    assert_eq!(refused["code"], "bad_request", "{refused}");
    assert_eq!(refused["message"], "send /join ROOM first");
    join(&mut ws, "lobby").await;
}
