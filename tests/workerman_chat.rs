//! workerman-chat's protocol, as its page speaks it, through the whole local stack: real WebSocket
//! clients → the local gateway → the chat's three function binaries (`examples/workerman-chat`)
//! under `cargo lambda watch` → the DynamoDB-compatible server.

use serde_json::{json, Value};
use support::local_stack::LocalStack;
use support::ws::Ws;

/// The stack with the chat's functions in place of the default ones.
async fn chat() -> LocalStack {
    LocalStack::start_app("workerman-chat-", &[]).await
}

/// A page that has connected and logged in: its socket, its client id, and the login answer.
struct Page {
    ws: Ws,
    id: String,
    login: Value,
}

/// Connects as the page does (`ws://host:port`, nothing else) and logs in.
async fn log_in(stack: &LocalStack, room: &str, name: &str) -> Page {
    let mut ws = stack.raw_client("").await;
    let frame = json!({"type": "login", "client_name": name, "room_id": room});
    ws.send(&frame.to_string()).await;
    let login = ws.recv_json().await;
    assert_eq!(login["type"], "login", "{login}");
    let id = login["client_id"].as_str().expect("a client id").to_owned();
    Page { ws, id, login }
}

/// Proves nothing else is queued for the page: the answer to a probe must be the next frame.
async fn expect_nothing_pending(page: &mut Page) {
    let pending = frames_until_probed(&mut page.ws, &page.id).await;
    assert!(
        pending.is_empty(),
        "{} had frames pending: {pending:?}",
        page.id
    );
}

/// Every frame a page gets until the answers to a probe: a private `say` to itself, which only
/// it hears, twice ("said to you", then the sender's copy). The chat answers nothing else
/// without telling the room, and nothing at all to a frame it cannot read, as the PHP does.
async fn frames_until_probed(ws: &mut Ws, me: &str) -> Vec<Value> {
    let probe =
        json!({"type": "say", "to_client_id": me, "to_client_name": "me", "content": "probe"});
    ws.send(&probe.to_string()).await;
    let is_probe = |f: &Value| {
        f["type"] == "say" && f["content"].as_str().is_some_and(|c| c.ends_with("probe"))
    };
    let mut frames = Vec::new();
    loop {
        let frame = ws.recv_json().await;
        if is_probe(&frame) {
            let copy = ws.recv_json().await;
            assert!(is_probe(&copy), "the probe's second answer, not {copy}");
            return frames;
        }
        frames.push(frame);
    }
}

async fn say(page: &mut Page, to: &str, to_name: &str, content: &str) {
    let frame =
        json!({"type": "say", "to_client_id": to, "to_client_name": to_name, "content": content});
    page.ws.send(&frame.to_string()).await;
}

#[tokio::test]
async fn a_login_gets_the_rooms_client_list_and_only_that_room_hears_of_it() {
    let stack = chat().await;
    let mut ann = log_in(&stack, "1", "ann").await;
    assert_eq!(ann.login["client_list"], json!({ann.id.clone(): "ann"}));
    let mut cid = log_in(&stack, "2", "cid").await;

    let bob = log_in(&stack, "1", "bob").await;
    assert_eq!(
        bob.login["client_list"],
        json!({ann.id.clone(): "ann", bob.id.clone(): "bob"})
    );
    assert_eq!(bob.login["client_name"], "bob");
    let heard = ann.ws.recv_json().await;
    assert_eq!(
        (&heard["type"], &heard["client_id"], &heard["client_name"]),
        (&json!("login"), &json!(bob.id), &json!("bob"))
    );
    assert!(
        heard.get("client_list").is_none(),
        "the room hears no list: {heard}"
    );
    expect_nothing_pending(&mut cid).await;
}

#[tokio::test]
async fn what_is_said_to_all_reaches_the_room_escaped_with_its_line_breaks() {
    let stack = chat().await;
    let mut ann = log_in(&stack, "1", "<ann>").await;
    let mut bob = log_in(&stack, "1", "bob").await;
    let mut cid = log_in(&stack, "2", "cid").await;
    ann.ws.recv_json().await; // bob's login

    say(&mut ann, "all", "所有人", "hi <b>\nthere").await;
    let ann_id = ann.id.clone();
    for page in [&mut ann, &mut bob] {
        let said = page.ws.recv_json().await;
        assert_eq!(said["type"], "say");
        assert_eq!(said["from_client_id"], json!(ann_id));
        assert_eq!(said["from_client_name"], "&lt;ann&gt;");
        assert_eq!(said["to_client_id"], "all");
        assert_eq!(said["content"], "hi &lt;b&gt;<br />\nthere");
    }
    expect_nothing_pending(&mut cid).await;
}

#[tokio::test]
async fn a_private_message_reaches_its_addressee_and_a_copy_its_sender_only() {
    let stack = chat().await;
    let mut ann = log_in(&stack, "1", "ann").await;
    let mut bob = log_in(&stack, "1", "bob").await;
    let mut eve = log_in(&stack, "1", "eve").await;
    ann.ws.recv_json_n(2).await; // bob's and eve's logins
    bob.ws.recv_json().await; // eve's login

    let bob_id = bob.id.clone();
    say(&mut ann, &bob_id, "bob", "psst").await;
    let received = bob.ws.recv_json().await;
    assert_eq!(received["content"], "<b>对你说: </b>psst");
    assert_eq!(received["from_client_name"], "ann");
    assert_eq!(received["to_client_id"], json!(bob.id));
    let copy = ann.ws.recv_json().await;
    assert_eq!(copy["content"], "<b>你对bob说: </b>psst");
    expect_nothing_pending(&mut eve).await;
}

#[tokio::test]
async fn a_closed_page_is_announced_to_its_room_and_left_out_of_the_next_list() {
    let stack = chat().await;
    let mut ann = log_in(&stack, "1", "ann").await;
    let bob = log_in(&stack, "1", "bob").await;
    ann.ws.recv_json().await; // bob's login
    let bob_id = bob.id.clone();

    bob.ws.close().await;
    let logout = ann.ws.recv_json().await;
    assert_eq!(
        (
            &logout["type"],
            &logout["from_client_id"],
            &logout["from_client_name"]
        ),
        (&json!("logout"), &json!(bob_id), &json!("bob"))
    );

    let dan = log_in(&stack, "1", "dan").await;
    assert_eq!(
        dan.login["client_list"],
        json!({ann.id.clone(): "ann", dan.id.clone(): "dan"})
    );
}

#[tokio::test]
async fn a_frame_the_chat_cannot_read_gets_no_answer_as_in_php_and_the_page_stays_connected() {
    let stack = chat().await;
    let mut page = stack.raw_client("").await;
    page.send(r#"{"type":"pong"}"#).await;
    page.send(r#"{"type":"say","to_client_id":"all","content":"before logging in"}"#)
        .await;
    page.send("not json").await;
    page.send(r#"{"type":"login","client_name":"ann"}"#).await;
    // The three refusals are handled (each logs its outcome) before the login that follows: the
    // gateway runs a connection's frames concurrently, and a say handled after it would be said.
    let refused = || stack.function_log().matches("\"bad_request\"").count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while refused() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the refusals were not logged: {}",
            stack.function_log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    page.send(r#"{"type":"login","client_name":"ann","room_id":1}"#)
        .await;
    let login = page.recv_json().await;
    assert_eq!(login["type"], "login", "a numeric room works too: {login}");
    let me = login["client_id"].as_str().expect("a client id").to_owned();
    let pending = frames_until_probed(&mut page, &me).await;
    assert!(
        pending.is_empty(),
        "the pong, the say before login, the text and the login without a room got nothing: {pending:?}"
    );
}

#[tokio::test]
async fn a_member_kicked_while_disconnects_are_lost_is_announced_to_the_room_by_a_logout() {
    // Every $disconnect dropped: the kick's own $disconnect never comes, and the first push to
    // the kicked member meets its 410 and ends it, running the chat's on_close.
    let stack = LocalStack::start_app_with(
        "workerman-chat-",
        &[("CONNECT_GRACE_SECONDS", "0")],
        |aws| aws.drop_disconnects_percent = 100,
    )
    .await;
    let mut ann = log_in(&stack, "1", "ann").await;
    let mut bob = log_in(&stack, "1", "bob").await;
    assert_eq!(ann.ws.recv_json().await["type"], "login");
    assert_eq!(
        stack.cli(&["kick", "--client", &bob.id]).await,
        Ok(json!({"closed": 1}))
    );
    bob.ws.closed().await;
    say(&mut ann, "all", "all", "still there?").await;
    let frames = ann.ws.recv_json_n(2).await;
    let logout = frames
        .iter()
        .find(|f| f["type"] == "logout")
        .unwrap_or_else(|| panic!("no logout in {frames:?}"));
    assert_eq!(logout["from_client_id"], bob.id.as_str());
    assert_eq!(logout["from_client_name"], "bob");
    expect_nothing_pending(&mut ann).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_users_logging_in_at_once_each_learn_of_the_other() {
    let stack = chat().await;
    for round in 0..5 {
        let room = format!("r{round}");
        let mut pages = [stack.raw_client("").await, stack.raw_client("").await];
        // Both logins go out before either is answered.
        for (page, name) in pages.iter_mut().zip(["ann", "bob"]) {
            let frame = json!({"type": "login", "client_name": name, "room_id": room});
            page.send(&frame.to_string()).await;
        }
        // Each page's answer first: once both are answered, every notice is on its way (a login
        // tells the room before it answers), so a probe after them comes after every notice.
        let mut answers = Vec::new();
        for page in &mut pages {
            let mut frames = Vec::new();
            let login = loop {
                let frame = page.recv_json().await;
                if frame["type"] == "login" && frame.get("client_list").is_some() {
                    break frame;
                }
                frames.push(frame);
            };
            answers.push((login, frames));
        }
        let mut seen = Vec::new();
        for (page, (login, mut frames)) in pages.iter_mut().zip(answers) {
            let me = login["client_id"].as_str().expect("a client id").to_owned();
            frames.extend(frames_until_probed(page, &me).await);
            let mut known: Vec<String> = login["client_list"]
                .as_object()
                .expect("a client list")
                .keys()
                .cloned()
                .collect();
            known.extend(
                frames
                    .iter()
                    .filter(|f| f["type"] == "login")
                    .filter_map(|f| f["client_id"].as_str().map(str::to_owned)),
            );
            seen.push((me, known));
        }
        let (ann, bob) = (&seen[0], &seen[1]);
        assert!(
            ann.1.contains(&bob.0) && bob.1.contains(&ann.0),
            "round {round}: ann knows {:?}, bob knows {:?}",
            ann.1,
            bob.1
        );
    }
}
