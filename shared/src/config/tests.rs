use super::*;
use std::collections::HashMap;

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn table_name_is_required_and_named_in_the_error() {
    let err = Config::from_lookup(lookup(&[])).unwrap_err();
    assert_eq!(err, ConfigError::Missing("TABLE_NAME"));
    assert!(err.to_string().contains("TABLE_NAME"));
}

#[test]
fn defaults_apply_when_only_the_table_is_given() {
    let config = Config::from_lookup(lookup(&[("TABLE_NAME", "connections")])).unwrap();
    assert_eq!(config, Config::new("connections"));
    assert_eq!(config.max_message_bytes, 32_000);
}

#[test]
fn overrides_are_read_and_the_endpoint_loses_its_trailing_slash() {
    let config = Config::from_lookup(lookup(&[
        ("TABLE_NAME", "t"),
        ("MANAGEMENT_ENDPOINT", "http://127.0.0.1:8080/dev/"),
        ("DYNAMODB_ENDPOINT", "http://127.0.0.1:8000"),
        ("AUTH_SECRET", "s3cret"),
        ("MAX_MESSAGE_BYTES", "100"),
        ("PUSH_CONCURRENCY", "8"),
        ("DYNAMODB_TIMEOUT_MS", "30000"),
    ]))
    .unwrap();
    assert_eq!(
        config.management_endpoint.as_deref(),
        Some("http://127.0.0.1:8080/dev")
    );
    assert_eq!(
        config.dynamodb_endpoint.as_deref(),
        Some("http://127.0.0.1:8000")
    );
    assert_eq!(config.auth_secret.as_deref(), Some("s3cret"));
    assert_eq!(config.max_message_bytes, 100);
    assert_eq!(config.push_concurrency, 8);
    assert_eq!(config.dynamodb_timeout, Duration::from_secs(30));
}

#[test]
fn without_a_secret_connect_refuses_to_start_unless_told_it_is_development() {
    let read = |pairs: &[(&str, &str)]| Config::from_lookup(lookup(pairs)).unwrap();
    let err = read(&[("TABLE_NAME", "t")]).require_secret().unwrap_err();
    assert_eq!(err, ConfigError::NoSecret);
    assert!(err.to_string().contains("ALLOW_ANONYMOUS=true"));
    let vague = read(&[("TABLE_NAME", "t"), ("ALLOW_ANONYMOUS", "1")]);
    assert_eq!(vague.require_secret(), Err(ConfigError::NoSecret));
    let development = read(&[("TABLE_NAME", "t"), ("ALLOW_ANONYMOUS", "true")]);
    assert_eq!(development.require_secret(), Ok(()));
    let deployed = read(&[("TABLE_NAME", "t"), ("AUTH_SECRET", "s3cret")]);
    assert_eq!(deployed.require_secret(), Ok(()));
}

#[test]
fn a_blank_secret_is_refused_rather_than_read_as_no_secret() {
    let err =
        Config::from_lookup(lookup(&[("TABLE_NAME", "t"), ("AUTH_SECRET", "      ")])).unwrap_err();
    assert_eq!(err, ConfigError::BlankSecret);
}

#[test]
fn the_secrets_arn_lets_connect_start_and_puts_the_stack_in_token_mode() {
    let config = Config::from_lookup(lookup(&[
        ("TABLE_NAME", "t"),
        (
            "AUTH_SECRET_ARN",
            "arn:aws:secretsmanager:eu-west-1:1:secret:keys-AbCdEf",
        ),
        ("SECRETS_MANAGER_ENDPOINT", "http://127.0.0.1:8001/"),
    ]))
    .unwrap();
    assert_eq!(config.require_secret(), Ok(()));
    assert!(config.is_token_mode());
    assert_eq!(
        config.secrets_manager_endpoint.as_deref(),
        Some("http://127.0.0.1:8001")
    );
}

#[test]
fn a_secret_and_a_secrets_arn_together_are_refused() {
    let err = Config::from_lookup(lookup(&[
        ("TABLE_NAME", "t"),
        ("AUTH_SECRET", "s3cret"),
        (
            "AUTH_SECRET_ARN",
            "arn:aws:secretsmanager:eu-west-1:1:secret:k",
        ),
    ]))
    .unwrap_err();
    assert_eq!(err, ConfigError::TwoSecrets);
}

#[test]
fn tokens_are_for_the_ws_audience_and_live_ten_minutes_at_most_by_default() {
    let config = Config::new("t");
    assert_eq!(config.token_audience, "ws");
    assert_eq!(config.max_token_lifetime, Duration::from_secs(600));
}

#[test]
fn the_token_audience_and_lifetime_cap_can_be_set() {
    let config = Config::from_lookup(lookup(&[
        ("TABLE_NAME", "t"),
        ("TOKEN_AUDIENCE", "chat.example.com"),
        ("MAX_TOKEN_LIFETIME_SECONDS", "120"),
    ]))
    .unwrap();
    assert_eq!(config.token_audience, "chat.example.com");
    assert_eq!(config.max_token_lifetime, Duration::from_secs(120));
}

#[test]
fn a_token_lifetime_cap_past_a_day_is_refused() {
    let err = Config::from_lookup(lookup(&[
        ("TABLE_NAME", "t"),
        ("MAX_TOKEN_LIFETIME_SECONDS", "86401"),
    ]))
    .unwrap_err();
    assert!(
        err.to_string().starts_with("MAX_TOKEN_LIFETIME_SECONDS"),
        "{err}"
    );
}

#[test]
fn history_may_not_outlive_the_stream_that_numbers_it() {
    let err = Config::from_lookup(lookup(&[
        ("TABLE_NAME", "t"),
        ("ALLOW_ANONYMOUS", "true"),
        ("CONNECTION_TTL_SECONDS", "7300"),
        ("HISTORY_SECONDS", "7301"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("HISTORY_SECONDS"), "{err}");
}

#[test]
fn limits_past_what_aws_honours_are_refused() {
    for (name, value) in [
        ("MAX_MESSAGE_BYTES", "131072"),
        ("PUSH_CONCURRENCY", "1024"),
    ] {
        let err = Config::from_lookup(lookup(&[("TABLE_NAME", "t"), (name, value)])).unwrap_err();
        assert!(err.to_string().starts_with(name), "{err}");
    }
}

#[test]
fn a_ttl_inside_api_gateways_two_hours_is_refused() {
    let err = Config::from_lookup(lookup(&[
        ("TABLE_NAME", "t"),
        ("CONNECTION_TTL_SECONDS", "600"),
    ]))
    .unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Invalid {
            name: "CONNECTION_TTL_SECONDS",
            ..
        }
    ));
}

#[test]
fn the_rate_limit_can_be_set_or_turned_off() {
    let config = Config::from_lookup(lookup(&[
        ("TABLE_NAME", "t"),
        ("RATE_LIMIT", "0"),
        ("RATE_WINDOW_SECONDS", "5"),
    ]))
    .unwrap();
    assert_eq!(config.rate_limit, 0);
    assert_eq!(config.rate_window, Duration::from_secs(5));
    assert_eq!(Config::new("t").rate_limit, Config::DEFAULT_RATE_LIMIT);
}

#[test]
fn a_non_number_is_refused_with_its_name() {
    let err = Config::from_lookup(lookup(&[("TABLE_NAME", "t"), ("PUSH_CONCURRENCY", "lots")]))
        .unwrap_err();
    assert!(err.to_string().starts_with("PUSH_CONCURRENCY must be"));
}

#[test]
fn large_sends_are_spread_only_with_a_queue_and_its_settings_are_read() {
    let plain = Config::from_lookup(lookup(&[("TABLE_NAME", "t")])).unwrap();
    assert_eq!(plain.fan_out_queue_url, None);
    assert_eq!(plain.spread_above, Config::DEFAULT_SPREAD_ABOVE);
    let config = Config::from_lookup(lookup(&[
        ("TABLE_NAME", "t"),
        (
            "FAN_OUT_QUEUE_URL",
            " https://sqs.us-east-1.amazonaws.com/1/fan-out ",
        ),
        ("SQS_ENDPOINT", "http://127.0.0.1:8001/"),
        ("SPREAD_ABOVE", "10"),
        ("FAN_OUT_JOB_SIZE", "2"),
        ("FAN_OUT_MAX_AGE_SECONDS", "30"),
        ("FAN_OUT_LEASE_SECONDS", "5"),
    ]))
    .unwrap();
    assert_eq!(
        config.fan_out_queue_url.as_deref(),
        Some("https://sqs.us-east-1.amazonaws.com/1/fan-out")
    );
    assert_eq!(
        config.sqs_endpoint.as_deref(),
        Some("http://127.0.0.1:8001")
    );
    assert_eq!(config.spread_above, 10);
    assert_eq!(config.job_size, 2);
    assert_eq!(config.job_max_age, Duration::from_secs(30));
    assert_eq!(config.job_lease, Duration::from_secs(5));
}

#[test]
fn a_job_too_large_for_one_sqs_message_is_refused_at_init() {
    let error = Config::from_lookup(lookup(&[("TABLE_NAME", "t"), ("FAN_OUT_JOB_SIZE", "5001")]))
        .unwrap_err();
    assert!(
        matches!(
            error,
            ConfigError::Invalid {
                name: "FAN_OUT_JOB_SIZE",
                ..
            }
        ),
        "{error}"
    );
}
