//! A fake Secrets Manager on 127.0.0.1 for the unit tests: it answers each request with the next
//! of its scripted answers (the last one again once they run out) and records what it was asked.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::{Limits, SecretsManager};

/// What the fake was asked: its headers, and its body as JSON.
pub(crate) type Asked = (HeaderMap, Value);

#[derive(Default)]
struct Script {
    answers: VecDeque<(u16, Value)>,
    asked: Vec<Asked>,
}

pub(crate) struct Fake {
    pub endpoint: String,
    script: Arc<Mutex<Script>>,
}

impl Fake {
    /// Serves `answers` (status and JSON body) in turn.
    pub(crate) async fn start(answers: Vec<(u16, Value)>) -> Fake {
        let script = Arc::new(Mutex::new(Script {
            answers: answers.into(),
            asked: Vec::new(),
        }));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake { endpoint, script }
    }

    /// Answers from now on with `answers` instead.
    pub(crate) fn answer_with(&self, answers: Vec<(u16, Value)>) {
        self.script.lock().unwrap().answers = answers.into();
    }

    /// Every request so far.
    pub(crate) fn asked(&self) -> Vec<Asked> {
        self.script.lock().unwrap().asked.clone()
    }

    /// A client of this fake with quick limits.
    pub(crate) fn client(&self) -> SecretsManager {
        client(&self.endpoint)
    }
}

/// A client of `endpoint`, signing with static test credentials, with quick limits.
pub(crate) fn client(endpoint: &str) -> SecretsManager {
    let credentials = Credentials::new("AKIDTEST", "test-secret-key", None, None, "tests");
    SecretsManager::new(
        "eu-west-1",
        Some(endpoint),
        Some(SharedCredentialsProvider::new(credentials)),
        Limits {
            connect_timeout: std::time::Duration::from_millis(200),
            attempt_timeout: std::time::Duration::from_millis(300),
            operation_timeout: std::time::Duration::from_secs(2),
            max_attempts: 3,
            initial_backoff: std::time::Duration::from_millis(10),
        },
    )
}

/// The answer a refusal of `code` has.
pub(crate) fn refused(status: u16, code: &str) -> (u16, Value) {
    (
        status,
        json!({"__type": code, "message": format!("refused: {code}")}),
    )
}

/// The answer of a GetSecretValue whose secret is `text`.
pub(crate) fn secret(text: &str) -> (u16, Value) {
    (
        200,
        json!({"ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:keys-AbCdEf", "SecretString": text}),
    )
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let mut script = script.lock().unwrap();
    script.asked.push((
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    ));
    let (status, body) = if script.answers.len() > 1 {
        script.answers.pop_front().unwrap()
    } else {
        script
            .answers
            .front()
            .cloned()
            .unwrap_or((500, Value::Null))
    };
    (StatusCode::from_u16(status).unwrap(), body.to_string())
}
