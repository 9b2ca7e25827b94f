//! The events API Gateway hands a WebSocket API's functions, built the way API Gateway builds them
//! (the shapes of `tests/fixtures/`).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use shared::civil::civil;

/// Where the API lives, as its events name it.
#[derive(Clone, Debug)]
pub struct Api {
    pub api_id: String,
    pub stage: String,
    pub domain_name: String,
}

/// What the gateway knows about a connection, repeated in its events.
#[derive(Clone, Debug)]
pub struct Client {
    pub connection_id: String,
    pub connected_at: i64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// What the `$connect` authorizer returned (its context and `principalId`), repeated as
    /// `requestContext.authorizer` on every event of the connection.
    pub authorizer: Option<Map<String, Value>>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `len` characters of base64 from a per-process random hasher and a counter: ids of API Gateway's
/// shape (`Gm1tsdBmoAMCIxw=`), unique in this process and not guessable from outside.
fn random_base64(len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static STATE: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let state = STATE.get_or_init(Default::default);
    let mut out = String::with_capacity(len);
    let mut round = 0u64;
    while out.len() < len {
        let mut hasher = state.build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u64(round);
        let mut bits = hasher.finish();
        for _ in 0..10 {
            if out.len() == len {
                break;
            }
            out.push(ALPHABET[(bits & 63) as usize] as char);
            bits >>= 6;
        }
        round += 1;
    }
    out
}

/// A new connection id: 15 base64 characters and `=`, as API Gateway's.
pub fn connection_id() -> String {
    format!("{}=", random_base64(15).replace('/', "_").replace('+', "-"))
}

/// A new request or message id.
pub fn request_id() -> String {
    format!("{}=", random_base64(15))
}

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// `24/Nov/2026:10:15:42 +0000`, API Gateway's `requestTime`.
pub fn request_time(epoch_millis: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = civil(epoch_millis);
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        t.day,
        MONTHS[(t.month - 1) as usize],
        t.year,
        t.hour,
        t.minute,
        t.second
    )
}

fn context(api: &Api, client: &Client, route: &str, event_type: &str) -> Map<String, Value> {
    let now = now_millis();
    let request_id = request_id();
    let mut identity = json!({ "sourceIp": client.source_ip });
    if let Some(agent) = &client.user_agent {
        identity["userAgent"] = json!(agent);
    }
    let mut context = json!({
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(now),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": client.connected_at,
        "requestTimeEpoch": now,
        "identity": identity,
        "requestId": request_id,
        "domainName": api.domain_name,
        "connectionId": client.connection_id,
        "apiId": api.api_id,
    });
    if let Some(authorizer) = &client.authorizer {
        context["authorizer"] = Value::Object(authorizer.clone());
    }
    match context {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn single(map: &BTreeMap<String, Vec<String>>) -> Map<String, Value> {
    map.iter()
        .filter_map(|(k, v)| v.last().map(|last| (k.clone(), json!(last))))
        .collect()
}

fn multi(map: &BTreeMap<String, Vec<String>>) -> Map<String, Value> {
    map.iter().map(|(k, v)| (k.clone(), json!(v))).collect()
}

/// The `$connect` authorizer's REQUEST event: the handshake's headers and query string, the route
/// being authorized as `methodArn`, and a `$connect` request context.
pub fn authorizer_request(
    api: &Api,
    client: &Client,
    method_arn: &str,
    headers: &BTreeMap<String, Vec<String>>,
    query: &BTreeMap<String, Vec<String>>,
) -> Value {
    json!({
        "type": "REQUEST",
        "methodArn": method_arn,
        "headers": single(headers),
        "multiValueHeaders": multi(headers),
        "queryStringParameters": single(query),
        "multiValueQueryStringParameters": multi(query),
        "stageVariables": {},
        "requestContext": context(api, client, "$connect", "CONNECT"),
    })
}

/// The `$connect` event: the handshake's headers and query string.
pub fn connect(
    api: &Api,
    client: &Client,
    headers: &BTreeMap<String, Vec<String>>,
    query: &BTreeMap<String, Vec<String>>,
) -> Value {
    let mut event = json!({
        "headers": single(headers),
        "multiValueHeaders": multi(headers),
        "requestContext": context(api, client, "$connect", "CONNECT"),
        "isBase64Encoded": false,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(single(query));
        event["multiValueQueryStringParameters"] = Value::Object(multi(query));
    }
    event
}

/// A `MESSAGE` event carrying one client message.
pub fn message(api: &Api, client: &Client, route: &str, body: &str) -> Value {
    let mut context = context(api, client, route, "MESSAGE");
    context.insert("messageId".into(), json!(request_id()));
    json!({ "requestContext": context, "body": body, "isBase64Encoded": false })
}

/// The `$disconnect` event, with the close code and reason.
pub fn disconnect(api: &Api, client: &Client, status_code: u16, reason: &str) -> Value {
    let mut context = context(api, client, "$disconnect", "DISCONNECT");
    context.insert("disconnectStatusCode".into(), json!(status_code));
    context.insert("disconnectReason".into(), json!(reason));
    json!({
        "headers": { "Host": api.domain_name, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": "" },
        "multiValueHeaders": { "Host": [api.domain_name], "x-api-key": [""], "X-Forwarded-For": [""], "x-restapi": [""] },
        "requestContext": context,
        "isBase64Encoded": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_time_is_api_gateways_format() {
        assert_eq!(
            request_time(1_795_860_942_512),
            "28/Nov/2026:10:15:42 +0000"
        );
        assert_eq!(request_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(request_time(951_782_400_000), "29/Feb/2000:00:00:00 +0000");
    }

    #[test]
    fn connection_ids_are_unique_and_shaped_like_api_gateways() {
        let a = connection_id();
        let b = connection_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a.ends_with('='));
    }

    fn api() -> Api {
        Api {
            api_id: "local".into(),
            stage: "dev".into(),
            domain_name: "127.0.0.1:8080".into(),
        }
    }

    fn client() -> Client {
        Client {
            connection_id: "abc=".into(),
            connected_at: 5,
            source_ip: "127.0.0.1".into(),
            user_agent: None,
            authorizer: None,
        }
    }

    #[test]
    fn a_message_event_has_the_fields_functions_read() {
        let event = message(&api(), &client(), "$default", "hi");
        let context = &event["requestContext"];
        assert_eq!(context["eventType"], "MESSAGE");
        assert_eq!(context["connectionId"], "abc=");
        assert_eq!(context["stage"], "dev");
        assert!(context["messageId"].is_string());
        assert_eq!(event["body"], "hi");
    }

    #[test]
    fn a_connect_event_carries_the_query_string() {
        let query = BTreeMap::from([("uid".to_owned(), vec!["alice".to_owned()])]);
        let event = connect(&api(), &client(), &BTreeMap::new(), &query);
        assert_eq!(event["queryStringParameters"]["uid"], "alice");
        assert_eq!(event["requestContext"]["eventType"], "CONNECT");
    }

    #[test]
    fn every_event_of_an_authorized_connection_carries_the_authorizers_context() {
        let mut client = client();
        client.authorizer = Some(Map::from_iter([("uid".to_owned(), json!("alice"))]));
        let events = [
            connect(&api(), &client, &BTreeMap::new(), &BTreeMap::new()),
            message(&api(), &client, "$default", "hi"),
            disconnect(&api(), &client, 1000, ""),
        ];
        for event in events {
            assert_eq!(event["requestContext"]["authorizer"]["uid"], "alice");
        }
    }

    #[test]
    fn an_authorizer_request_names_the_route_and_carries_the_query() {
        let query = BTreeMap::from([("token".to_owned(), vec!["t".to_owned()])]);
        let event = authorizer_request(
            &api(),
            &client(),
            "arn:x/dev/$connect",
            &BTreeMap::new(),
            &query,
        );
        assert_eq!(event["type"], "REQUEST");
        assert_eq!(event["methodArn"], "arn:x/dev/$connect");
        assert_eq!(event["queryStringParameters"]["token"], "t");
    }

    #[test]
    fn a_disconnect_event_says_why() {
        let event = disconnect(&api(), &client(), 1001, "Going away");
        assert_eq!(event["requestContext"]["disconnectStatusCode"], 1001);
        assert_eq!(event["requestContext"]["disconnectReason"], "Going away");
    }
}
