//! API Gateway WebSocket events, made from the fixtures in `tests/fixtures/`.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::{json, Value};

fn fixture(name: &str) -> Value {
    let text = match name {
        "connect" => include_str!("../fixtures/connect.json"),
        "message" => include_str!("../fixtures/message.json"),
        _ => include_str!("../fixtures/disconnect.json"),
    };
    serde_json::from_str(text).expect("fixtures are JSON")
}

fn event(
    mut value: Value,
    connection_id: &str,
    request_id: &str,
) -> ApiGatewayWebsocketProxyRequest {
    let context = &mut value["requestContext"];
    context["connectionId"] = json!(connection_id);
    context["requestId"] = json!(request_id);
    serde_json::from_value(value).expect("a fixture is an API Gateway WebSocket event")
}

/// A `$connect` event with this query string.
pub fn connect(
    connection_id: &str,
    request_id: &str,
    query: &[(&str, &str)],
) -> ApiGatewayWebsocketProxyRequest {
    let mut value = fixture("connect");
    if !query.is_empty() {
        let params: serde_json::Map<String, Value> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let multi: serde_json::Map<String, Value> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!([v])))
            .collect();
        value["queryStringParameters"] = Value::Object(params);
        value["multiValueQueryStringParameters"] = Value::Object(multi);
    }
    event(value, connection_id, request_id)
}

/// A frame from `connection_id` on the `$default` route.
pub fn message(
    connection_id: &str,
    request_id: &str,
    body: &str,
) -> ApiGatewayWebsocketProxyRequest {
    let mut value = fixture("message");
    value["body"] = json!(body);
    event(value, connection_id, request_id)
}

/// A `$disconnect` event.
pub fn disconnect(connection_id: &str, request_id: &str) -> ApiGatewayWebsocketProxyRequest {
    event(fixture("disconnect"), connection_id, request_id)
}
