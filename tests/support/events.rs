//! API Gateway WebSocket events, made from the fixtures in `tests/fixtures/`.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest,
};
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

fn query_maps(query: &[(&str, &str)]) -> (Value, Value) {
    let single: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let multi: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!([v])))
        .collect();
    (Value::Object(single), Value::Object(multi))
}

/// The `$connect` authorizer's REQUEST event for a handshake with this query string.
pub fn authorizer_request(
    connection_id: &str,
    request_id: &str,
    query: &[(&str, &str)],
) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let connect = fixture("connect");
    let (single, multi) = query_maps(query);
    let mut context = connect["requestContext"].clone();
    context["connectionId"] = json!(connection_id);
    context["requestId"] = json!(request_id);
    serde_json::from_value(json!({
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:api/dev/$connect",
        "headers": connect["headers"],
        "queryStringParameters": single,
        "multiValueQueryStringParameters": multi,
        "stageVariables": {},
        "requestContext": context,
    }))
    .expect("an authorizer request")
}

/// A `$connect` event with this query string.
pub fn connect(
    connection_id: &str,
    request_id: &str,
    query: &[(&str, &str)],
) -> ApiGatewayWebsocketProxyRequest {
    let mut value = fixture("connect");
    if !query.is_empty() {
        let (single, multi) = query_maps(query);
        value["queryStringParameters"] = single;
        value["multiValueQueryStringParameters"] = multi;
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
