//! A GatewayWorker `Events.php` kept as it is: the functions forward its events
//! (`shared::forward`, the application in `examples/php`) to `clients/php/runner.php` under PHP's
//! built-in server, which runs the project's own GatewayWorker-style chat (`tests/php/Events.php`)
//! with `$_SESSION`, `$_SERVER` and `Gateway::` (over the server API) as BusinessWorker gives
//! them — through the whole local stack, with real WebSocket clients.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Value};
use support::dynamodb;
use support::local_stack::{workspace_root, LocalStack};
use support::ws::Ws;

const EVENTS_SECRET: &str = "the-events-secret-of-the-tests";
const API_SECRET: &str = "the-server-api-secret-of-the-tests";

/// `clients/php/runner.php` under PHP's built-in server on `port`, serving the chat's Events.php
/// with these variables; it stops with the test.
fn runner(port: u16, env: &[(&str, String)]) -> tokio::process::Child {
    let php = tokio::process::Command::new("php")
        .args(["-S", &format!("127.0.0.1:{port}")])
        .arg(workspace_root().join("clients/php/runner.php"))
        .env("EVENTS_PHP", workspace_root().join("tests/php/Events.php"))
        .env_remove("EVENTS_SECRET")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PHP_CLI_SERVER_WORKERS", "4")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("php (make test installs it)");
    dynamodb::wait_for_port(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_secs(30),
        "php -S",
    );
    php
}

/// The stack with the forwarding functions, and PHP serving the chat's Events.php.
struct Chat {
    stack: LocalStack,
    _php: tokio::process::Child,
}

async fn chat() -> Chat {
    let php_port = dynamodb::free_port();
    let events_url = format!("http://127.0.0.1:{php_port}/");
    let stack = LocalStack::start_app(
        "php-",
        &[
            ("EVENTS_URL", &events_url),
            ("EVENTS_SECRET", EVENTS_SECRET),
            ("API_SECRET", API_SECRET),
        ],
    )
    .await;
    let php = runner(
        php_port,
        &[
            ("EVENTS_SECRET", EVENTS_SECRET.to_owned()),
            (
                "GATEWAY_URL",
                format!("http://{}/api", stack.gateway_address),
            ),
            ("GATEWAY_SECRET", API_SECRET.to_owned()),
        ],
    );
    Chat { stack, _php: php }
}

/// A client, welcomed by `onConnect`: its socket and client id.
async fn welcomed(chat: &Chat) -> (Ws, String) {
    let mut ws = chat.stack.raw_client("").await;
    let welcome = ws.recv_json().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let id = welcome["client_id"]
        .as_str()
        .expect("a client id")
        .to_owned();
    (ws, id)
}

/// Logs in to the lobby; the `joined` answer, once the session the login left is saved (it is
/// saved after the callback returns, and the answer is pushed during it).
async fn log_in(chat: &Chat, ws: &mut Ws, name: &str) -> Value {
    ws.send(&json!({"type": "login", "room": "lobby", "name": name}).to_string())
        .await;
    let joined = ws.recv_json().await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let saved = format!("\"name\":\"{name}\"");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let items = chat.stack.items().await;
        let sessions = items
            .iter()
            .filter_map(|item| item.get("session").and_then(|s| s.as_s().ok()));
        if sessions.clone().any(|s| s.contains(&saved)) {
            return joined;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}'s session was not saved"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn on_connect_welcomes_and_a_login_is_heard_by_the_room_with_the_names_from_the_sessions() {
    let chat = chat().await;
    let (mut ann, ann_id) = welcomed(&chat).await;
    log_in(&chat, &mut ann, "ann").await;
    let (mut bob, bob_id) = welcomed(&chat).await;
    let joined = log_in(&chat, &mut bob, "bob").await;
    assert_eq!(
        joined["clients"],
        json!({ann_id.clone(): "ann", bob_id.clone(): "bob"}),
        "ann's name from her saved session"
    );
    assert_eq!(
        ann.recv_json().await,
        json!({"type": "login", "client_id": bob_id, "name": "bob"})
    );
}

#[tokio::test]
async fn a_private_message_reaches_its_addressee_and_its_sender_and_on_close_tells_the_room() {
    let chat = chat().await;
    let (mut ann, ann_id) = welcomed(&chat).await;
    log_in(&chat, &mut ann, "ann").await;
    let (mut bob, bob_id) = welcomed(&chat).await;
    log_in(&chat, &mut bob, "bob").await;
    assert_eq!(ann.recv_json().await["type"], "login");

    bob.send(&json!({"type": "say", "to": ann_id, "text": "psst"}).to_string())
        .await;
    let private =
        json!({"type": "say", "from": bob_id, "name": "bob", "text": "psst", "private": true});
    assert_eq!(ann.recv_json().await, private);
    assert_eq!(bob.recv_json().await, private);

    bob.close().await;
    assert_eq!(
        ann.recv_json().await,
        json!({"type": "logout", "client_id": bob_id, "name": "bob"}),
        "onClose read bob's session"
    );
}

#[tokio::test]
async fn an_exception_in_events_php_is_logged_and_the_connection_goes_on() {
    let chat = chat().await;
    let (mut ann, ann_id) = welcomed(&chat).await;
    // Before logging in, `say` throws in Events.php: the client is told nothing, and stays. The
    // failure is logged before the login goes out (frames of a connection run concurrently).
    ann.send(r#"{"type":"say","text":"hello?"}"#).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !chat
        .stack
        .function_log()
        .contains("the events backend answered 500")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the failure was not logged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    log_in(&chat, &mut ann, "ann").await;
    ann.send(r#"{"type":"say","text":"now"}"#).await;
    assert_eq!(
        ann.recv_json().await,
        json!({"type": "say", "from": ann_id, "name": "ann", "text": "now"})
    );
}

/// Without a secret of its own the runner refuses every event, signed or not: an empty key would
/// let anyone sign one.
#[tokio::test]
async fn a_runner_without_a_secret_refuses_every_event() {
    let port = dynamodb::free_port();
    let _php = runner(port, &[]);
    let body = json!({"event": "message", "client_id": "c=", "message": "hi", "session": {}});
    let body = body.to_string();
    // Signed with the empty key the runner would otherwise have used.
    let header =
        shared::server_api::signature::sign(b"", shared::store::now_secs(), body.as_bytes());
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/"))
        .header(shared::server_api::signature::HEADER, header)
        .body(body)
        .send()
        .await
        .expect("the runner answers");
    assert_eq!(response.status().as_u16(), 500);
}
