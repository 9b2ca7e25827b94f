//! Each function's policy in template.yaml is wide enough for what its code does. The handlers
//! run their real paths against the DynamoDB-compatible server through a proxy that records the
//! IAM action every request needs (a TransactWriteItems needs those of the writes inside it), and
//! a push endpoint that records the HTTP methods of `@connections` used; each function's recorded
//! actions and methods must be among those its policy allows. The local stack enforces no IAM,
//! so without this a missing grant would show only on AWS, as AccessDenied. (`make policies`
//! checks the other direction: that no policy is wider than the table and `@connections`.)
//!
//! They run the built-in protocol, and workerman-chat's hooks with a kick: an application's hooks
//! are handed the whole Gateway API from every function.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;
use shared::prelude::*;
use shared::spread::Set;
use shared::store::now_millis;
use support::fault_proxy::FaultProxy;
use support::stack::Stack;
use workerman_chat::Chat;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).expect("read template.yaml");
    serde_yaml_ng::from_str(&text).expect("template.yaml is YAML")
}

/// The DynamoDB actions template.yaml allows `function`.
fn allowed(function: &str) -> BTreeSet<String> {
    let template = template();
    let policies = &template["Resources"][function]["Properties"]["Policies"];
    let mut actions = BTreeSet::new();
    for policy in policies.as_sequence().expect("a list of policies") {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            match &statement["Action"] {
                Value::String(action) => {
                    actions.insert(action.clone());
                }
                Value::Sequence(list) => {
                    actions.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
                }
                other => panic!("{function}: an Action of an unexpected shape: {other:?}"),
            }
        }
    }
    actions
}

/// The `@connections` methods (`POST`, `DELETE`, `GET`) template.yaml allows `function`.
fn allowed_methods(function: &str) -> BTreeSet<String> {
    let template = template();
    let policies = &template["Resources"][function]["Properties"]["Policies"];
    let mut methods = BTreeSet::new();
    for policy in policies.as_sequence().expect("a list of policies") {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            if statement["Action"].as_str() != Some("execute-api:ManageConnections") {
                continue;
            }
            let resources = match &statement["Resource"] {
                Value::Sequence(list) => list.clone(),
                one => vec![one.clone()],
            };
            for resource in resources {
                let text = match resource {
                    Value::Tagged(tagged) => tagged.value.as_str().map(str::to_owned),
                    other => other.as_str().map(str::to_owned),
                }
                .unwrap_or_default();
                let method = text
                    .split('/')
                    .rev()
                    .nth(2)
                    .filter(|_| text.ends_with("/@connections/*"));
                methods.extend(method.map(str::to_owned));
            }
        }
    }
    methods
}

fn assert_methods_allowed(function: &str, used: BTreeSet<String>) {
    let allowed = allowed_methods(function);
    let missing: Vec<_> = used.difference(&allowed).collect();
    assert!(
        missing.is_empty(),
        "{function} calls @connections with {missing:?}, which its policy in template.yaml does not allow (it allows {allowed:?})"
    );
}

fn assert_allowed(function: &str, used: BTreeSet<String>) {
    assert!(!used.is_empty(), "{function}: no request was recorded");
    let allowed = allowed(function);
    let missing: Vec<_> = used.difference(&allowed).collect();
    assert!(
        missing.is_empty(),
        "{function} needs {missing:?}, which its policy in template.yaml does not allow (it allows {allowed:?})"
    );
}

/// Forgets what setting the scene needed, then does what a function does at init.
async fn init<A: Events>(proxy: &FaultProxy, stack: &Stack<A>) {
    proxy.take_actions();
    stack
        .gateway
        .store
        .check_table()
        .await
        .expect("init reads the table");
}

#[tokio::test]
async fn the_connect_policy_allows_recording_a_connection_and_taking_back_a_failed_one() {
    let (proxy, stack) = Stack::behind_proxy(|_| {}).await;
    init(&proxy, &stack).await;
    assert_eq!(stack.connect("A=", &[("uid", "alice")]).await, 200);
    // A write whose answer is lost: the handshake fails and what landed is taken back.
    proxy.lose_answers_to(Some("PutRequest"));
    assert_eq!(stack.connect("B=", &[("uid", "bob")]).await, 500);
    proxy.lose_answers_to(None);
    let used = proxy.take_actions();
    assert!(
        stack.items_of("B=").await.is_empty(),
        "the clean-up ran, and took back what had landed"
    );
    assert_allowed("ConnectFunction", used);
}

#[tokio::test]
async fn the_message_policy_allows_every_command_and_the_prune_after_a_410() {
    let (proxy, stack) = Stack::behind_proxy(|_| {}).await;
    for (id, uid) in [("A=", "alice"), ("B=", "bob"), ("G=", "ghost")] {
        stack.connect(id, &[("uid", uid)]).await;
    }
    stack
        .send("G=", r#"{"action":"join","group":"room"}"#)
        .await;
    init(&proxy, &stack).await;
    stack.sink.mark_gone("G=");
    for frame in [
        "plain text",
        r#"{"action":"ping"}"#,
        r#"{"action":"whoami"}"#,
        r#"{"action":"join","group":"room"}"#,
        r#"{"action":"presence","group":"room"}"#,
        r#"{"action":"presence"}"#,
        r#"{"action":"send","to":{"group":"room"},"data":1,"id":"g"}"#,
        r#"{"action":"send","to":{"uid":"bob"},"data":2}"#,
        r#"{"action":"send","to":{"connectionId":"B="},"data":3}"#,
        r#"{"action":"send","to":{"all":true},"data":4}"#,
        r#"{"action":"sendmessage","data":"hi"}"#,
        r#"{"action":"leave","group":"room"}"#,
    ] {
        stack.send("A=", frame).await;
    }
    let used = proxy.take_actions();
    let replies = stack.received("A=");
    assert!(
        replies.iter().all(|r| !r.contains(r#""type":"error""#)),
        "{replies:?}"
    );
    assert!(
        stack.items_of("G=").await.is_empty(),
        "the 410 pruned the gone connection"
    );
    assert_allowed("MessageFunction", used);
}

#[tokio::test]
async fn the_disconnect_policy_allows_removing_every_item() {
    let (proxy, stack) = Stack::behind_proxy(|_| {}).await;
    stack.connect("A=", &[("uid", "alice")]).await;
    stack
        .send("A=", r#"{"action":"join","group":"room"}"#)
        .await;
    init(&proxy, &stack).await;
    assert_eq!(stack.disconnect("A=").await, 200);
    let used = proxy.take_actions();
    assert!(stack.items_of("A=").await.is_empty());
    assert_allowed("DisconnectFunction", used);
}

#[tokio::test]
async fn the_fan_out_policy_allows_a_job_its_second_delivery_and_the_prune_after_a_410() {
    let (proxy, stack) = Stack::behind_proxy(|_| {}).await;
    for (id, uid) in [("A=", "alice"), ("G=", "ghost")] {
        stack.connect(id, &[("uid", uid)]).await;
    }
    init(&proxy, &stack).await;
    stack.sink.mark_gone("G=");
    let job = stack.job("job-1", "to all", vec![Set::All], &[("A=", 0), ("G=", 0)]);
    let lease_until = now_millis() + 20_000;
    let report = stack
        .gateway
        .run_job(&job, lease_until)
        .await
        .expect("the job runs");
    assert_eq!((report.pushes.delivered, report.pushes.gone), (1, 1));
    // SQS delivers it again: the claim is refused and read, and nothing is pushed twice.
    let again = stack
        .gateway
        .run_job(&job, lease_until)
        .await
        .expect("a second delivery");
    assert_eq!(again.skipped, Some("done before"));
    let used = proxy.take_actions();
    assert_eq!(stack.received("A="), ["to all"]);
    assert!(
        stack.items_of("G=").await.is_empty(),
        "the 410 pruned the gone connection"
    );
    assert_allowed("FanOutFunction", used);
    assert_methods_allowed("FanOutFunction", stack.sink.take_methods());
}

/// Every function pushes: the message function its answers, `$connect` and `$disconnect` the
/// presence events of the groups a connection enters or leaves. Each needs `@connections` and the
/// endpoint the template builds (the event's domainName breaks behind a custom domain).
#[test]
fn every_function_may_push_through_the_apis_own_endpoint() {
    let template = template();
    for function in [
        "ConnectFunction",
        "DisconnectFunction",
        "MessageFunction",
        "FanOutFunction",
    ] {
        let properties = &template["Resources"][function]["Properties"];
        assert!(
            !properties["Environment"]["Variables"]["MANAGEMENT_ENDPOINT"].is_null(),
            "{function} has no MANAGEMENT_ENDPOINT"
        );
        let statements = properties["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|policy| policy["Statement"].as_sequence().into_iter().flatten());
        let may_push = statements
            .flat_map(|statement| match &statement["Action"] {
                Value::Sequence(actions) => actions.clone(),
                action => vec![action.clone()],
            })
            .any(|action| action.as_str() == Some("execute-api:ManageConnections"));
        assert!(may_push, "{function} may not call @connections");
    }
}

/// Every function that runs the application's hooks may make a large send: it knows the fan-out
/// queue and may send to it (a hook in one without would push 100,000 recipients inline).
#[test]
fn every_function_that_runs_hooks_may_queue_large_sends() {
    let template = template();
    for function in [
        "ConnectFunction",
        "DisconnectFunction",
        "MessageFunction",
        "ApiFunction",
    ] {
        let properties = &template["Resources"][function]["Properties"];
        assert!(
            !properties["Environment"]["Variables"]["FAN_OUT_QUEUE_URL"].is_null(),
            "{function} has no FAN_OUT_QUEUE_URL"
        );
        assert!(
            allowed(function).contains("sqs:SendMessage"),
            "{function} may not send to the fan-out queue"
        );
    }
    assert!(
        !allowed("FanOutFunction").contains("sqs:SendMessage"),
        "the fan-out function must not feed its own queue"
    );
}

/// Only the connect function reads the token keys; the message function must still know that
/// connections carry tokens, or their claims would never be checked (every frame allowed).
#[test]
fn the_message_function_checks_claims_wherever_connections_carry_tokens() {
    let template = template();
    let variables = |function: &str| {
        template["Resources"][function]["Properties"]["Environment"]["Variables"].clone()
    };
    assert!(
        is_ref(
            &variables("ConnectFunction")["AUTH_SECRET_ARN"],
            "TokenSecret"
        ),
        "the connect function verifies tokens with the keys of TokenSecret"
    );
    assert_eq!(
        variables("MessageFunction")["TOKEN_MODE"].as_str(),
        Some("true"),
        "the message function must be told the stack is in token mode"
    );
}

/// Whether `value` is `!Ref name`.
fn is_ref(value: &Value, name: &str) -> bool {
    matches!(value, Value::Tagged(tagged) if tagged.tag == "Ref" && tagged.value.as_str() == Some(name))
}

/// Every statement of `function`'s policies.
fn statements(template: &Value, function: &str) -> Vec<Value> {
    template["Resources"][function]["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|policy| {
            policy["Statement"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// The Secrets Manager actions `statement` allows.
fn secrets_manager_actions(statement: &Value) -> Vec<String> {
    let actions = match &statement["Action"] {
        Value::Sequence(actions) => actions.clone(),
        action => vec![action.clone()],
    };
    actions
        .iter()
        .filter_map(Value::as_str)
        .filter(|action| action.starts_with("secretsmanager:"))
        .map(str::to_owned)
        .collect()
}

/// The token keys live in a Secrets Manager secret the template generates; the connect function
/// (which checks tokens, as the authorizer too) may read that secret and nothing else of Secrets
/// Manager, and no other function may read it at all.
#[test]
fn only_the_connect_role_may_read_the_token_secret_and_only_read_it() {
    let template = template();
    let secret = &template["Resources"]["TokenSecret"];
    assert_eq!(secret["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
    let generated = &secret["Properties"]["GenerateSecretString"];
    assert_eq!(generated["GenerateStringKey"].as_str(), Some("secret"));
    let initial: serde_json::Value = serde_json::from_str(
        generated["SecretStringTemplate"]
            .as_str()
            .expect("a SecretStringTemplate"),
    )
    .expect("the template of the secret is JSON");
    assert!(
        initial["kid"].is_string(),
        "the generated key has a kid: {initial}"
    );

    let connect = statements(&template, "ConnectFunction");
    let reads: Vec<&Value> = connect
        .iter()
        .filter(|statement| !secrets_manager_actions(statement).is_empty())
        .collect();
    assert_eq!(reads.len(), 1, "one statement about the secret: {reads:?}");
    assert_eq!(
        secrets_manager_actions(reads[0]),
        ["secretsmanager:GetSecretValue"]
    );
    assert_eq!(reads[0]["Effect"].as_str(), Some("Allow"));
    assert!(
        is_ref(&reads[0]["Resource"], "TokenSecret"),
        "GetSecretValue on the stack's secret only: {:?}",
        reads[0]["Resource"]
    );

    for function in ["DisconnectFunction", "MessageFunction"] {
        let reads: Vec<String> = statements(&template, function)
            .iter()
            .flat_map(secrets_manager_actions)
            .collect();
        assert!(reads.is_empty(), "{function} may call {reads:?}");
    }
}

/// A key in an environment variable shows in the console, in `GetFunctionConfiguration` and in
/// every deployment's parameters: no function, nor the globals, may have one, nor may the
/// template take one as a parameter.
#[test]
fn no_function_has_a_token_key_in_its_environment() {
    let template = template();
    let mut environments = vec![(
        "Globals".to_owned(),
        template["Globals"]["Function"]["Environment"]["Variables"].clone(),
    )];
    for (name, resource) in template["Resources"]
        .as_mapping()
        .expect("resources")
        .iter()
    {
        if resource["Type"].as_str() == Some("AWS::Serverless::Function") {
            environments.push((
                name.as_str().unwrap_or_default().to_owned(),
                resource["Properties"]["Environment"]["Variables"].clone(),
            ));
        }
    }
    assert!(environments.len() >= 4, "the globals and three functions");
    for (name, variables) in environments {
        assert!(
            variables["AUTH_SECRET"].is_null(),
            "{name} has AUTH_SECRET in its environment"
        );
        for (variable, value) in variables.as_mapping().into_iter().flatten() {
            let refers_to_a_parameter = matches!(value, Value::Tagged(tagged) if tagged.tag == "Ref"
                && tagged.value.as_str().is_some_and(|p| !template["Parameters"][p].is_null()
                    && template["Parameters"][p]["NoEcho"].as_bool() == Some(true)));
            assert!(
                !refers_to_a_parameter,
                "{name}'s {variable:?} holds a hidden parameter: a secret in the environment"
            );
        }
    }
    assert!(
        template["Parameters"]["AuthSecret"].is_null(),
        "the keys are generated into TokenSecret, not passed as a parameter"
    );
}

/// workerman-chat, with one more frame: `kick ID`, a kick from a hook.
struct KickingChat;

impl Events for KickingChat {
    async fn on_message(&self, client: &mut Client<'_>, frame: &str) -> Result<(), AppError> {
        match frame.strip_prefix("kick ") {
            Some(id) => Ok(client.gateway().close_client(id).await?),
            None => Chat.on_message(client, frame).await,
        }
    }

    async fn on_close(&self, client: &Closing<'_>) -> Result<(), AppError> {
        Chat.on_close(client).await
    }
}

#[tokio::test]
async fn every_policy_allows_workerman_chats_hooks_and_a_kick() {
    let (proxy, stack) = Stack::app_behind_proxy(KickingChat, |_| {}).await;
    init(&proxy, &stack).await;
    stack.sink.take_methods();
    for id in ["A=", "B=", "C="] {
        assert_eq!(stack.connect(id, &[]).await, 200);
    }
    assert_allowed("ConnectFunction", proxy.take_actions());
    assert_methods_allowed("ConnectFunction", stack.sink.take_methods());

    for (id, name) in [("A=", "alice"), ("B=", "bob"), ("C=", "carol")] {
        let login = format!(r#"{{"type":"login","room_id":"1","client_name":"{name}"}}"#);
        stack.send(id, &login).await;
    }
    stack
        .send(
            "A=",
            r#"{"type":"say","to_client_id":"all","content":"hi"}"#,
        )
        .await;
    stack.send("A=", "kick B=").await;
    let frames = stack.received("A=");
    assert!(
        frames
            .iter()
            .any(|f| f.contains(r#""type":"logout""#) && f.contains("B=")),
        "the kick ran workerman-chat's on_close, which told the room: {frames:?}"
    );
    assert_allowed("MessageFunction", proxy.take_actions());
    assert!(stack.items_of("B=").await.is_empty(), "the kick ended B");
    proxy.take_actions();
    let methods = stack.sink.take_methods();
    assert!(methods.contains("DELETE"), "the kick closed B: {methods:?}");
    assert_methods_allowed("MessageFunction", methods);

    assert_eq!(stack.disconnect("C=").await, 200);
    assert!(
        stack
            .received("A=")
            .iter()
            .any(|f| f.contains(r#""type":"logout""#)),
        "C's on_close told the room"
    );
    assert_allowed("DisconnectFunction", proxy.take_actions());
    assert_methods_allowed("DisconnectFunction", stack.sink.take_methods());
}

/// The server API's function runs every call a backend may send, and records each signature
/// against replays: its role must allow all of it.
#[tokio::test]
async fn the_api_policy_allows_every_server_api_call_and_its_replay_record() {
    use shared::server_api::signature;
    let (proxy, stack) = Stack::behind_proxy(|_| {}).await;
    for (id, uid) in [("A=", "alice"), ("B=", "bob")] {
        assert_eq!(stack.connect(id, &[("uid", uid)]).await, 200);
    }
    init(&proxy, &stack).await;
    stack.sink.take_methods();
    let body = serde_json::json!({"calls": [
        {"call": "send", "to": {"uid": "alice"}, "data": "hi"},
        {"call": "join", "client": "B=", "group": "room"},
        {"call": "presence", "group": "room"},
        {"call": "presence"},
        {"call": "online", "uid": "bob"},
        {"call": "online", "client": "A="},
        {"call": "members", "group": "room"},
        {"call": "uid", "client": "A="},
        {"call": "sessions", "group": "room"},
        {"call": "update_session", "client": "A=", "session": {"k": 1}},
        {"call": "set_session", "client": "A=", "session": {"k": 2}},
        {"call": "session", "client": "A="},
        {"call": "unbind", "client": "A="},
        {"call": "bind", "client": "A=", "uid": "al"},
        {"call": "leave", "client": "B=", "group": "room"},
        {"call": "ungroup", "group": "room"},
        {"call": "kick", "client": "B="},
    ]})
    .to_string();
    let secret = b"the-policy-test-secret";
    let header = signature::sign(secret, shared::store::now_secs(), body.as_bytes());
    let event = serde_json::json!({
        "requestContext": {"http": {"method": "POST"}},
        "headers": {signature::HEADER: header},
        "body": body,
        "isBase64Encoded": false,
    });
    let answer = shared::lambda::api::handle(&stack.gateway, Some(secret), event).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let results: serde_json::Value =
        serde_json::from_str(answer["body"].as_str().unwrap_or_default()).expect("JSON");
    let failed: Vec<&serde_json::Value> = results["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|result| result.get("error").is_some())
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_allowed("ApiFunction", proxy.take_actions());
    assert_methods_allowed("ApiFunction", stack.sink.take_methods());
}
