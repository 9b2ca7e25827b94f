//! The `$connect` route's Lambda REQUEST authorizer, run as API Gateway runs it.
//!
//! Before `$connect`: a handshake missing one of the authorizer's identity sources is answered 401
//! without invoking it (unless the functions run anonymously: [`crate::AwsBehaviour`]'s
//! `allow_anonymous`); an authorizer that fails with exactly `Unauthorized` is 401, any other
//! failure 500; a policy that does not allow `execute-api:Invoke` on the route is 403; a context
//! holding anything but strings, numbers and booleans, or a result over 8 KB, is 500. Otherwise the context (numbers and
//! booleans turned into strings), with the `principalId`, becomes `requestContext.authorizer` of
//! every event of the connection.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use crate::events::{self, Api, Client};
use crate::invoke::InvokeError;
use crate::routes::{Authorizer, IdentitySource};
use crate::Gateway;

/// What the authorizer decided.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Go on to `$connect`; carry this as `requestContext.authorizer`.
    Allow(Map<String, Value>),
    Refuse(StatusCode),
}

/// Runs `authorizer` for a handshake.
pub async fn authorize(
    gateway: &Gateway,
    authorizer: &Authorizer,
    api: &Api,
    client: &Client,
    headers: &BTreeMap<String, Vec<String>>,
    query: &BTreeMap<String, Vec<String>>,
) -> Verdict {
    let id = &client.connection_id;
    let required = !gateway.settings.aws.allow_anonymous;
    if let Some(missing) = authorizer
        .identity_sources
        .iter()
        .find(|source| required && !present(source, headers, query))
    {
        tracing::info!(connection = %id, ?missing, "handshake refused: an identity source is missing (401, the authorizer is not invoked)");
        return Verdict::Refuse(StatusCode::UNAUTHORIZED);
    }
    let region = gateway
        .settings
        .aws
        .signing
        .as_ref()
        .map_or("us-east-1", |s| s.region.as_str());
    let method_arn = format!(
        "arn:aws:execute-api:{region}:000000000000:{}/{}/$connect",
        api.api_id, api.stage
    );
    let event = events::authorizer_request(api, client, &method_arn, headers, query);
    let started = std::time::Instant::now();
    let verdict = match gateway.invoker.invoke(&authorizer.function, &event).await {
        Ok(answer) => {
            let verdict = judge(&answer, &method_arn, started.elapsed());
            if verdict == Verdict::Refuse(StatusCode::INTERNAL_SERVER_ERROR) {
                tracing::error!(connection = %id, "the authorizer's answer is refused (500): it needs a policyDocument with a Statement, a context of strings, numbers and booleans, and at most 8 KB in all");
            }
            verdict
        }
        Err(InvokeError::Function { message, .. }) if is_unauthorized(&message) => {
            Verdict::Refuse(StatusCode::UNAUTHORIZED)
        }
        Err(e) => {
            tracing::error!(connection = %id, error = %e, "the authorizer failed (500)");
            Verdict::Refuse(StatusCode::INTERNAL_SERVER_ERROR)
        }
    };
    if let Verdict::Refuse(status) = &verdict {
        tracing::info!(connection = %id, status = status.as_u16(), "handshake refused by the authorizer");
    }
    verdict
}

fn present(
    source: &IdentitySource,
    headers: &BTreeMap<String, Vec<String>>,
    query: &BTreeMap<String, Vec<String>>,
) -> bool {
    let non_empty =
        |values: Option<&Vec<String>>| values.and_then(|v| v.last()).is_some_and(|v| !v.is_empty());
    match source {
        IdentitySource::Query(name) => non_empty(query.get(name)),
        IdentitySource::Header(name) => non_empty(
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v),
        ),
    }
}

/// Whether a failed invocation's body is the one failure API Gateway answers with 401: an
/// `errorMessage` of exactly `Unauthorized`.
fn is_unauthorized(body: &str) -> bool {
    serde_json::from_str::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("errorMessage").and_then(Value::as_str) == Some("Unauthorized"))
}

/// The largest authorizer result API Gateway takes for a WebSocket API (a quota that cannot be
/// raised); a larger one fails the handshake.
const RESULT_LIMIT_BYTES: usize = 8 * 1024;

/// API Gateway's reading of an authorizer's answer.
fn judge(answer: &Value, method_arn: &str, latency: std::time::Duration) -> Verdict {
    if answer.to_string().len() > RESULT_LIMIT_BYTES {
        return Verdict::Refuse(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let statements = match &answer["policyDocument"]["Statement"] {
        Value::Array(statements) => statements.clone(),
        statement @ Value::Object(_) => vec![statement.clone()],
        _ => return Verdict::Refuse(StatusCode::INTERNAL_SERVER_ERROR),
    };
    // IAM lets `Resource` and `Action` be one string or a list of them.
    let any_of = |value: &Value, text: &str| match value {
        Value::String(one) => matches_pattern(one, text),
        Value::Array(many) => many
            .iter()
            .filter_map(Value::as_str)
            .any(|pattern| matches_pattern(pattern, text)),
        _ => false,
    };
    let applies = |statement: &Value| {
        any_of(&statement["Resource"], method_arn)
            && any_of(&statement["Action"], "execute-api:Invoke")
    };
    let effect = |name: &str| {
        statements
            .iter()
            .any(|s| s["Effect"].as_str() == Some(name) && applies(s))
    };
    if effect("Deny") || !effect("Allow") {
        return Verdict::Refuse(StatusCode::FORBIDDEN);
    }
    let mut context = match &answer["context"] {
        Value::Object(context) => context.clone(),
        Value::Null => Map::new(),
        _ => return Verdict::Refuse(StatusCode::INTERNAL_SERVER_ERROR),
    };
    // API Gateway refuses objects and arrays, and hands numbers and booleans on as strings.
    for value in context.values_mut() {
        *value = match value {
            Value::String(_) => continue,
            Value::Number(n) => Value::String(n.to_string()),
            Value::Bool(b) => Value::String(b.to_string()),
            _ => return Verdict::Refuse(StatusCode::INTERNAL_SERVER_ERROR),
        };
    }
    if let Some(principal) = answer.get("principalId") {
        context.insert("principalId".into(), principal.clone());
    }
    context.insert(
        "integrationLatency".into(),
        json!(latency.as_millis() as u64),
    );
    Verdict::Allow(context)
}

/// IAM's matching: `*` stands for any run of characters, `?` for one.
fn matches_pattern(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:local/dev/$connect";

    fn policy(effect: &str, resource: &str) -> Value {
        json!({
            "principalId": "alice",
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
            ]},
            "context": {"uid": "alice"},
        })
    }

    #[test]
    fn an_allow_on_the_route_carries_the_context_and_the_principal() {
        let Verdict::Allow(context) = judge(&policy("Allow", ARN), ARN, Default::default()) else {
            panic!("refused");
        };
        assert_eq!(context["uid"], "alice");
        assert_eq!(context["principalId"], "alice");
    }

    #[test]
    fn numbers_and_booleans_in_the_context_arrive_as_strings() {
        let mut answer = policy("Allow", ARN);
        answer["context"]["level"] = json!(3);
        answer["context"]["admin"] = json!(false);
        let Verdict::Allow(context) = judge(&answer, ARN, Default::default()) else {
            panic!("refused");
        };
        assert_eq!(context["level"], "3");
        assert_eq!(context["admin"], "false");
    }

    #[test]
    fn a_wildcard_resource_allows_and_a_deny_or_another_route_refuses_with_403() {
        assert!(matches!(
            judge(
                &policy("Allow", "arn:aws:execute-api:*:*:local/*"),
                ARN,
                Default::default()
            ),
            Verdict::Allow(_)
        ));
        assert_eq!(
            judge(&policy("Deny", ARN), ARN, Default::default()),
            Verdict::Refuse(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            judge(
                &policy(
                    "Allow",
                    "arn:aws:execute-api:us-east-1:000000000000:other/dev/$connect"
                ),
                ARN,
                Default::default()
            ),
            Verdict::Refuse(StatusCode::FORBIDDEN)
        );
    }

    #[test]
    fn a_result_over_8_kib_is_a_500_as_api_gateway_refuses_it() {
        let mut answer = policy("Allow", ARN);
        answer["context"]["groups"] = json!("x".repeat(8 * 1024));
        assert_eq!(
            judge(&answer, ARN, Default::default()),
            Verdict::Refuse(StatusCode::INTERNAL_SERVER_ERROR)
        );
    }

    #[test]
    fn a_context_holding_an_object_is_a_500() {
        let mut answer = policy("Allow", ARN);
        answer["context"]["claims"] = json!({"groups": ["a"]});
        assert_eq!(
            judge(&answer, ARN, Default::default()),
            Verdict::Refuse(StatusCode::INTERNAL_SERVER_ERROR)
        );
    }

    #[test]
    fn only_the_exact_unauthorized_message_is_a_401() {
        assert!(is_unauthorized(
            r#"{"errorType":"Unauthorized","errorMessage":"Unauthorized"}"#
        ));
        assert!(!is_unauthorized(
            r#"{"errorType":"X","errorMessage":"unauthorized!"}"#
        ));
    }

    #[test]
    fn identity_sources_must_be_present_and_non_empty() {
        let query = BTreeMap::from([("token".to_owned(), vec![String::new()])]);
        let headers = BTreeMap::from([("X-Key".to_owned(), vec!["k".to_owned()])]);
        assert!(!present(
            &IdentitySource::Query("token".into()),
            &headers,
            &query
        ));
        assert!(present(
            &IdentitySource::Header("x-key".into()),
            &headers,
            &query
        ));
    }
}
