use super::fake::{refused, secret, Fake};
use super::*;

const ARN: &str = "arn:aws:secretsmanager:eu-west-1:1:secret:keys-AbCdEf";

#[tokio::test]
async fn a_secret_is_read_with_a_signed_get_secret_value_of_its_arn() {
    let fake = Fake::start(vec![secret(r#"{"kid":"1"}"#)]).await;
    let text = fake.client().secret_string(ARN).await.unwrap();
    assert_eq!(text, r#"{"kid":"1"}"#);
    let asked = fake.asked();
    assert_eq!(asked.len(), 1);
    let (headers, body) = &asked[0];
    assert_eq!(body, &json!({"SecretId": ARN}));
    assert_eq!(headers["x-amz-target"], "secretsmanager.GetSecretValue");
    assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
    let authorization = headers["authorization"].to_str().unwrap();
    assert!(
        authorization.contains("/eu-west-1/secretsmanager/aws4_request")
            && authorization.contains("content-type;host;x-amz-date;x-amz-target"),
        "{authorization}"
    );
}

#[tokio::test]
async fn a_refusal_names_the_permission_the_role_needs_and_is_not_retried() {
    let fake = Fake::start(vec![refused(400, "AccessDeniedException")]).await;
    let err = fake.client().secret_string(ARN).await.unwrap_err();
    assert!(matches!(err, SecretError::AccessDenied { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("secretsmanager:GetSecretValue") && text.contains(ARN),
        "{text}"
    );
    assert_eq!(fake.asked().len(), 1);
}

#[tokio::test]
async fn a_missing_secret_is_reported_whatever_status_carries_it() {
    // AWS answers 400, moto 404: the code decides.
    for status in [400, 404] {
        let fake = Fake::start(vec![refused(status, "ResourceNotFoundException")]).await;
        let err = fake.client().secret_string(ARN).await.unwrap_err();
        assert!(matches!(err, SecretError::NotFound { .. }), "{err:?}");
        assert_eq!(fake.asked().len(), 1);
    }
}

#[tokio::test]
async fn throttling_and_server_errors_are_tried_again() {
    let fake = Fake::start(vec![
        refused(400, "ThrottlingException"),
        refused(500, "InternalServiceError"),
        secret("keys"),
    ])
    .await;
    assert_eq!(fake.client().secret_string(ARN).await.unwrap(), "keys");
    assert_eq!(fake.asked().len(), 3);
}

#[tokio::test]
async fn a_server_that_keeps_failing_is_given_up_on_after_the_attempts() {
    let fake = Fake::start(vec![refused(503, "ServiceUnavailable")]).await;
    let err = fake.client().secret_string(ARN).await.unwrap_err();
    assert!(
        matches!(err, SecretError::Unavailable { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(fake.asked().len(), 3);
}

#[tokio::test]
async fn an_endpoint_that_never_answers_is_given_up_on_within_the_budget() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let err = fake::client(&endpoint)
        .secret_string(ARN)
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Unavailable { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_binary_secret_is_refused_as_holding_no_text() {
    let fake = Fake::start(vec![(200, json!({"ARN": ARN, "SecretBinary": "AAEC"}))]).await;
    let err = fake.client().secret_string(ARN).await.unwrap_err();
    assert!(matches!(err, SecretError::NotText { .. }), "{err:?}");
}

#[tokio::test]
async fn refused_credentials_say_where_credentials_come_from() {
    let fake = Fake::start(vec![refused(400, "UnrecognizedClientException")]).await;
    let err = fake.client().secret_string(ARN).await.unwrap_err();
    assert!(matches!(err, SecretError::Credentials { .. }), "{err:?}");
    assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
}

#[test]
fn the_endpoint_is_the_regions_unless_one_is_given() {
    let aws = SecretsManager::new("eu-west-1", None, None, Limits::default());
    assert_eq!(
        aws.endpoint(),
        "https://secretsmanager.eu-west-1.amazonaws.com"
    );
    let local = SecretsManager::new(
        "us-east-1",
        Some("http://127.0.0.1:8001/"),
        None,
        Limits::default(),
    );
    assert_eq!(local.endpoint(), "http://127.0.0.1:8001");
}

#[test]
fn a_refusals_code_is_read_without_its_namespace() {
    let body =
        br#"{"__type":"com.amazonaws.secretsmanager#ThrottlingException","Message":"slow down"}"#;
    assert_eq!(
        refusal(http::StatusCode::BAD_REQUEST, None, body),
        ("ThrottlingException".to_owned(), "slow down".to_owned())
    );
    assert_eq!(
        refusal(
            http::StatusCode::FORBIDDEN,
            Some("AccessDeniedException:http://x"),
            b""
        ),
        ("AccessDeniedException".to_owned(), String::new())
    );
}
