use super::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

const SECRET: &str = "test-secret";
const AUDIENCE: &str = "ws";
const OLD: &str = "the-previous-key-0123456789abcdefghij";
const NEW: &str = "the-current-key-0123456789abcdefghijk";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(claims: serde_json::Value, secret: &str) -> String {
    token_with(None, claims, secret)
}

/// A token whose header names `kid`.
fn token_with(kid: Option<&str>, claims: serde_json::Value, secret: &str) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    encode(
        &header,
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Claims this service accepts: for `sub`, for this audience, valid for a minute.
fn claims(sub: &str) -> serde_json::Value {
    json!({"sub": sub, "aud": AUDIENCE, "exp": now() + 60})
}

fn verifier() -> Verifier {
    Verifier::new(KeyRing::plain(SECRET), AUDIENCE, Duration::from_secs(600))
}

/// A verifier of a rotated secret: kid 2 is current, kid 1 the previous key.
fn rotated() -> Verifier {
    let secret = json!({"kid": "2", "secret": NEW, "previous": [{"kid": "1", "secret": OLD}]});
    Verifier::new(
        KeyRing::parse(&secret.to_string()).unwrap(),
        AUDIENCE,
        Duration::from_secs(600),
    )
}

#[test]
fn a_valid_token_binds_its_sub() {
    let t = token(claims("alice"), SECRET);
    assert_eq!(
        identify(Some(&verifier()), Some(&t), None),
        Ok(Some("alice".into()))
    );
}

#[test]
fn a_token_without_sub_authenticates_a_connection_without_a_uid() {
    let t = token(
        json!({"aud": AUDIENCE, "exp": now() + 60, "groups": ["room-*"]}),
        SECRET,
    );
    let identity = authenticate(Some(&verifier()), Some(&t), Some("mallory")).unwrap();
    assert_eq!(identity.uid, None, "no uid, and ?uid= is not one");
    assert!(matches!(identity.permissions, Permissions::Granted { .. }));
}

#[test]
fn with_a_secret_the_claimed_uid_is_ignored() {
    let verifier = verifier();
    let t = token(claims("alice"), SECRET);
    assert_eq!(
        identify(Some(&verifier), Some(&t), Some("mallory")),
        Ok(Some("alice".into()))
    );
    assert_eq!(
        identify(Some(&verifier), None, Some("mallory")),
        Err(AuthError::MissingToken)
    );
}

#[test]
fn bad_tokens_are_refused_with_401() {
    let verifier = verifier();
    let later = now() + 300;
    let cases = [
        ("malformed", "not.a.jwt".to_owned()),
        (
            "wrong secret",
            token(json!({"sub": "a", "aud": AUDIENCE, "exp": later}), "other"),
        ),
        (
            "expired",
            token(
                json!({"sub": "a", "aud": AUDIENCE, "exp": now() - 600}),
                SECRET,
            ),
        ),
        (
            "no exp",
            token(json!({"sub": "a", "aud": AUDIENCE}), SECRET),
        ),
        (
            "not yet valid",
            token(
                json!({"sub": "a", "aud": AUDIENCE, "exp": later, "nbf": now() + 120}),
                SECRET,
            ),
        ),
        ("no aud", token(json!({"sub": "a", "exp": later}), SECRET)),
        // alg: none, with the same claims and no signature.
        (
            "alg none",
            format!(
                "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
                base64_url_no_pad(&format!(r#"{{"sub":"a","aud":"ws","exp":{later}}}"#))
            ),
        ),
    ];
    for (what, t) in cases {
        let err = identify(Some(&verifier), Some(&t), None).expect_err(what);
        assert_eq!(err.status(), 401, "{what}: {err}");
    }
}

#[test]
fn a_token_without_an_audience_is_refused_as_such() {
    let t = token(json!({"sub": "alice", "exp": now() + 60}), SECRET);
    let err = verifier().verify(&t).unwrap_err();
    assert_eq!(
        err,
        AuthError::MissingAudience {
            expected: AUDIENCE.into()
        }
    );
    assert_eq!(err.status(), 401);
}

#[test]
fn a_token_for_another_audience_is_refused() {
    let t = token(
        json!({"sub": "alice", "aud": "another-service", "exp": now() + 60}),
        SECRET,
    );
    assert_eq!(
        verifier().verify(&t),
        Err(AuthError::WrongAudience {
            expected: AUDIENCE.into()
        })
    );
}

#[test]
fn a_token_for_several_audiences_among_them_this_one_is_accepted() {
    let t = token(
        json!({"sub": "alice", "aud": ["another-service", AUDIENCE], "exp": now() + 60}),
        SECRET,
    );
    assert!(verifier().verify(&t).is_ok());
}

#[test]
fn a_token_living_longer_than_the_cap_is_refused() {
    let t = token(
        json!({"sub": "alice", "aud": AUDIENCE, "exp": now() + 3600}),
        SECRET,
    );
    let err = verifier().verify(&t).unwrap_err();
    assert!(
        matches!(err, AuthError::TooLongLived { max: 600, .. }),
        "{err:?}"
    );
    assert_eq!(err.status(), 401);
}

#[test]
fn a_token_living_exactly_the_cap_is_accepted() {
    let t = token(
        json!({"sub": "alice", "aud": AUDIENCE, "exp": now() + 600}),
        SECRET,
    );
    assert!(verifier().verify(&t).is_ok());
}

#[test]
fn a_token_naming_the_previous_key_is_checked_with_it() {
    let t = token_with(Some("1"), claims("alice"), OLD);
    assert_eq!(
        rotated().verify(&t).map(|(uid, _)| uid),
        Ok(Some("alice".into()))
    );
}

#[test]
fn a_token_naming_the_current_key_is_checked_with_it() {
    let t = token_with(Some("2"), claims("alice"), NEW);
    assert!(rotated().verify(&t).is_ok());
}

#[test]
fn a_token_without_a_kid_is_checked_with_the_current_key_only() {
    let current = token(claims("alice"), NEW);
    assert!(rotated().verify(&current).is_ok());
    let previous = token(claims("alice"), OLD);
    assert!(matches!(
        rotated().verify(&previous),
        Err(AuthError::BadToken(_))
    ));
}

#[test]
fn a_token_naming_an_unknown_key_is_refused_with_401() {
    let t = token_with(Some("9"), claims("alice"), NEW);
    let err = rotated().verify(&t).unwrap_err();
    assert_eq!(err, AuthError::UnknownKey("9".into()));
    assert_eq!(err.status(), 401);
}

#[test]
fn a_token_naming_a_key_signed_with_another_is_refused() {
    let t = token_with(Some("1"), claims("alice"), NEW);
    assert!(matches!(rotated().verify(&t), Err(AuthError::BadToken(_))));
}

#[test]
fn before_its_keys_are_read_a_verifier_refuses_every_token() {
    let unread = Verifier::new(KeyRing::default(), AUDIENCE, Duration::from_secs(600));
    let t = token_with(Some("2"), claims("alice"), NEW);
    assert_eq!(unread.verify(&t), Err(AuthError::NoKeys));
    assert_eq!(
        authenticate(Some(&unread), Some(&t), None)
            .unwrap_err()
            .status(),
        401
    );
}

#[test]
fn replaced_keys_check_the_next_token() {
    let verifier = Verifier::new(
        KeyRing::parse(&json!({"kid": "1", "secret": OLD}).to_string()).unwrap(),
        AUDIENCE,
        Duration::from_secs(600),
    );
    let t = token_with(Some("2"), claims("alice"), NEW);
    assert!(!verifier.knows("2"));
    assert_eq!(verifier.verify(&t), Err(AuthError::UnknownKey("2".into())));
    verifier.replace_keys(
        KeyRing::parse(
            &json!({"kid": "2", "secret": NEW, "previous": [{"kid": "1", "secret": OLD}]})
                .to_string(),
        )
        .unwrap(),
    );
    assert!(verifier.knows("2"));
    assert!(verifier.verify(&t).is_ok());
}

#[test]
fn the_kid_is_read_from_the_header_without_trusting_the_token() {
    assert_eq!(
        key_id(&token_with(Some("7"), claims("alice"), "anything")),
        Some("7".into())
    );
    assert_eq!(key_id(&token(claims("alice"), SECRET)), None);
    assert_eq!(key_id("garbage"), None);
}

#[test]
fn a_configuration_with_a_secret_arn_has_a_verifier_that_refuses_until_its_keys_are_read() {
    let mut config = Config::new("t");
    assert!(Verifier::for_config(&config).is_none());
    config.auth_secret_arn = Some("arn:aws:secretsmanager:eu-west-1:1:secret:keys".into());
    let verifier = Verifier::for_config(&config).expect("a verifier");
    let t = token(claims("alice"), SECRET);
    assert_eq!(verifier.verify(&t), Err(AuthError::NoKeys));
}

#[test]
fn a_tokens_claims_become_its_permissions_and_a_claim_of_the_wrong_type_refuses_it() {
    let verifier = verifier();
    let t = token(
        json!({"sub": "alice", "aud": AUDIENCE, "exp": now() + 60, "groups": ["room-*"], "send": ["all"]}),
        SECRET,
    );
    let identity = authenticate(Some(&verifier), Some(&t), None).unwrap();
    assert_eq!(
        identity.permissions,
        Permissions::Granted {
            groups: vec!["room-*".into()],
            send: vec!["all".into()]
        }
    );
    let bad = token(
        json!({"sub": "alice", "aud": AUDIENCE, "exp": now() + 60, "groups": "room-*"}),
        SECRET,
    );
    assert_eq!(
        authenticate(Some(&verifier), Some(&bad), None)
            .unwrap_err()
            .status(),
        401
    );
}

#[test]
fn a_minted_token_is_accepted_with_its_uid_and_claims() {
    let verifier = rotated();
    let groups = vec!["room-*".to_owned()];
    let key = Key::new(Some("2"), NEW);
    let t = mint(
        &key,
        AUDIENCE,
        "alice",
        Duration::from_secs(60),
        &groups,
        &[],
    )
    .unwrap();
    assert_eq!(key_id(&t), Some("2".into()));
    let identity = authenticate(Some(&verifier), Some(&t), None).unwrap();
    assert_eq!(identity.uid.as_deref(), Some("alice"));
    assert_eq!(
        identity.permissions,
        Permissions::Granted {
            groups,
            send: vec![]
        }
    );
    assert!(mint(&key, AUDIENCE, "al ice", Duration::from_secs(60), &[], &[]).is_err());
}

#[test]
fn a_sub_outside_the_naming_rules_is_refused() {
    let t = token(claims("al ice"), SECRET);
    assert_eq!(
        identify(Some(&verifier()), Some(&t), None),
        Err(AuthError::BadSubject("al ice".into()))
    );
}

#[test]
fn without_a_secret_connections_are_anonymous_or_claim_a_valid_uid() {
    assert_eq!(identify(None, None, None), Ok(None));
    assert_eq!(
        identify(None, Some("ignored"), Some("bob")),
        Ok(Some("bob".into()))
    );
    assert_eq!(
        identify(None, None, Some("b o b")).unwrap_err().status(),
        400
    );
}

/// base64url without padding, for hand-made tokens.
fn base64_url_no_pad(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
