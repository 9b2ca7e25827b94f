//! Who a connection is, proven once at `$connect` and carried on every later event of it.
//!
//! API Gateway runs a `$connect` route's Lambda REQUEST authorizer before `$connect` itself and
//! repeats the context it returns as `requestContext.authorizer` on every event of the connection
//! (`$connect`, each message, `$disconnect`). So the uid the token proved, and what its claims
//! allow ([`Permissions`]), travel with each frame: a `send` names its sender, and a `join` is
//! checked, without a read. The `$connect` function
//! serves as the authorizer too (it holds the secret already); see [`crate::lambda::connect::authorize`].
//!
//! The context holds strings only, as API Gateway requires of it (no objects, no arrays).

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequestContext;
use serde_json::{json, Map, Value};

use crate::auth::permissions::Permissions;

/// The context key that holds the uid proven at `$connect` (`""` for an anonymous connection).
pub const UID: &str = "uid";

/// What the events of a connection say about who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proven {
    /// The authorizer proved this uid at `$connect`: what the connection signs its messages with
    /// for its whole life (a server's later `unbindUid` changes what it receives, not this).
    Uid(String),
    /// The authorizer let the connection in without a uid: one may have been bound since (the
    /// server-side `bindUid`), so only its record can say.
    Anonymous,
    /// No authorizer ran (a stack without one, or an event made by hand): only the record can say.
    Unknown,
}

impl Proven {
    /// Reads `requestContext.authorizer` of a WebSocket event.
    pub fn of(context: &ApiGatewayWebsocketProxyRequestContext) -> Proven {
        match context.authorizer.fields.get(UID) {
            Some(Value::String(uid)) if uid.is_empty() => Proven::Anonymous,
            Some(Value::String(uid)) => Proven::Uid(uid.clone()),
            _ => Proven::Unknown,
        }
    }
}

/// The context an authorizer returns for a connection with this uid and these permissions.
pub fn context(uid: Option<&str>, permissions: &Permissions) -> Map<String, Value> {
    let mut context = permissions.context();
    context.insert(UID.to_owned(), json!(uid.unwrap_or("")));
    context
}

/// The authorizer's answer that lets the handshake go on to `$connect`: an IAM policy allowing
/// `execute-api:Invoke` on the route being authorized, and the context.
pub fn allow(principal: &str, method_arn: &str, context: Map<String, Value>) -> Value {
    let mut answer = policy("Allow", principal, method_arn);
    answer["context"] = Value::Object(context);
    answer
}

/// The authorizer's answer that refuses the handshake with 403 (an explicit Deny), for a token
/// that is valid but may not open another connection.
pub fn deny(principal: &str, method_arn: &str) -> Value {
    policy("Deny", principal, method_arn)
}

/// An authorizer's answer: `effect` on `execute-api:Invoke` of the route being authorized.
fn policy(effect: &str, principal: &str, method_arn: &str) -> Value {
    json!({
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{
                "Action": "execute-api:Invoke",
                "Effect": effect,
                "Resource": method_arn,
            }],
        },
    })
}

/// Whether an event that reached the `$connect` function is an authorizer request rather than
/// the `$connect` event itself.
pub fn is_authorizer_request(event: &Value) -> bool {
    event.get("type").and_then(Value::as_str) == Some("REQUEST") && event.get("methodArn").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn websocket_context(authorizer: Value) -> ApiGatewayWebsocketProxyRequestContext {
        serde_json::from_value(json!({
            "routeKey": "$default", "eventType": "MESSAGE", "connectionId": "c=",
            "connectedAt": 1, "requestTimeEpoch": 1,
            "authorizer": authorizer,
        }))
        .unwrap()
    }

    #[test]
    fn the_uid_an_authorizer_proved_is_read_back_from_a_later_event() {
        let mut authorizer = context(Some("alice"), &Permissions::Everything);
        authorizer.insert("principalId".into(), json!("alice"));
        let context = websocket_context(Value::Object(authorizer));
        assert_eq!(Proven::of(&context), Proven::Uid("alice".into()));
    }

    #[test]
    fn an_anonymous_connection_and_one_without_an_authorizer_are_told_apart() {
        let anonymous = websocket_context(Value::Object(context(None, &Permissions::Everything)));
        assert_eq!(Proven::of(&anonymous), Proven::Anonymous);
        let none = websocket_context(json!({"principalId": "x"}));
        assert_eq!(Proven::of(&none), Proven::Unknown);
        let not_a_string = websocket_context(json!({"uid": 7}));
        assert_eq!(Proven::of(&not_a_string), Proven::Unknown);
    }

    #[test]
    fn an_allow_policy_names_the_route_and_keeps_the_context_flat() {
        let granted = Permissions::Granted {
            groups: vec!["room-*".into()],
            send: vec![],
        };
        let answer = allow(
            "alice",
            "arn:aws:execute-api:r:1:api/dev/$connect",
            context(Some("alice"), &granted),
        );
        assert_eq!(answer["policyDocument"]["Statement"][0]["Effect"], "Allow");
        assert_eq!(
            answer["policyDocument"]["Statement"][0]["Resource"],
            "arn:aws:execute-api:r:1:api/dev/$connect"
        );
        assert!(answer["context"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v.is_string() || v.is_number() || v.is_boolean()));
    }

    #[test]
    fn authorizer_requests_are_told_from_connect_events() {
        assert!(is_authorizer_request(
            &json!({"type": "REQUEST", "methodArn": "arn"})
        ));
        assert!(!is_authorizer_request(
            &json!({"requestContext": {"eventType": "CONNECT"}})
        ));
    }
}
