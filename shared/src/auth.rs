//! Who a connection is, and what it may do: the uid bound at `$connect`, and its permissions.
//!
//! With signing keys, the uid is the `sub` of an HS256 JWT in `?token=`, and nothing else
//! counts; its `groups` and `send` claims say what it may do ([`Permissions`]). A token must be
//! meant for this service (`aud` equal to `TOKEN_AUDIENCE`) and short-lived (`exp` at most
//! `MAX_TOKEN_LIFETIME_SECONDS` away: it travels in the URL). Its header's `kid` picks the key it
//! is checked with among the current and the previous ones ([`KeyRing`]); without a `kid`, the
//! current key checks it. Without keys (local development), connections are anonymous or claim a
//! uid with `?uid=`, and may do everything. Tokens are checked by `jsonwebtoken`, never by hand.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::Config;
use crate::names::is_valid_name;
use crate::permissions::Permissions;
use crate::token_keys::{Key, KeyRing};

/// The clock skew allowed between the signer and this service, on `exp`, `nbf` and the
/// lifetime cap.
const LEEWAY_SECONDS: u64 = 5;

/// Why a connection is refused at `$connect`.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("a token is required: connect with ?token=<JWT signed with the current token key>")]
    MissingToken,
    #[error("the token was refused: {0}")]
    BadToken(String),
    #[error("the token has no aud claim: tokens for this service carry \"aud\": {expected:?} (TOKEN_AUDIENCE)")]
    MissingAudience { expected: String },
    #[error("the token is meant for another service: this one accepts \"aud\": {expected:?} (TOKEN_AUDIENCE)")]
    WrongAudience { expected: String },
    #[error("the token is valid for {seconds} s more, longer than the {max} s a token may be (MAX_TOKEN_LIFETIME_SECONDS): a token travels in the URL, so mint one for each connection, just before it is made")]
    TooLongLived { seconds: u64, max: u64 },
    #[error("the token's kid {0:?} names no key this service holds: sign with the current key (the secret's kid), or a previous key it still lists")]
    UnknownKey(String),
    #[error("no token keys have been read: the $connect function reads them from AUTH_SECRET_ARN at init")]
    NoKeys,
    #[error(
        "the token's sub {0:?} is not a valid uid (1–128 characters of A-Z a-z 0-9 _ . : @ -)"
    )]
    BadSubject(String),
    #[error("uid {0:?} is not valid: use 1–128 characters of A-Z a-z 0-9 _ . : @ -")]
    BadUid(String),
}

impl AuthError {
    /// The status `$connect` answers, which API Gateway turns into the handshake's status.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::BadUid(_) => 400,
            _ => 401,
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    /// The uid; a token without one authenticates a connection that has none until a server
    /// binds one (GatewayWorker's "log in, then bindUid").
    #[serde(default)]
    sub: Option<String>,
    exp: u64,
    /// Group patterns the connection may join and see the presence of.
    #[serde(default)]
    groups: Vec<String>,
    /// Target patterns the connection may send to.
    #[serde(default)]
    send: Vec<String>,
}

/// The claims of a token this service would accept, for minting one.
#[derive(Serialize)]
struct NewClaims<'a> {
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    send: &'a [String],
}

/// Mints an HS256 token for `uid`, meant for `audience` and valid for `lifetime`, with these
/// `groups` and `send` claims, signed with `key` and naming it in its header (`kid`): what an
/// application's login endpoint hands its clients (and `gateway-client token` prints).
pub fn mint(
    key: &Key,
    audience: &str,
    uid: &str,
    lifetime: Duration,
    groups: &[String],
    send: &[String],
) -> Result<String, AuthError> {
    if !is_valid_name(uid) {
        return Err(AuthError::BadSubject(uid.to_owned()));
    }
    let claims = NewClaims {
        sub: uid,
        aud: audience,
        exp: crate::store::now_secs() + lifetime.as_secs() as i64,
        groups,
        send,
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = key.kid().map(str::to_owned);
    encode(
        &header,
        &claims,
        &EncodingKey::from_secret(key.secret().as_bytes()),
    )
    .map_err(|e| AuthError::BadToken(e.to_string()))
}

/// The `kid` a token's header names, read without trusting the token: which key to check it
/// with (`None` for a token without one, or for something that is not a token).
pub fn key_id(token: &str) -> Option<String> {
    decode_header(token).ok()?.kid
}

/// What `$connect`'s authorizer proves about a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: Option<String>,
    pub permissions: Permissions,
}

/// Checks tokens against a set of keys, which may be replaced while it serves (a rotation).
pub struct Verifier {
    keys: RwLock<Arc<KeyRing>>,
    validation: Validation,
    audience: String,
    max_lifetime: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("kids", &self.keys().kids())
            .field("audience", &self.audience)
            .field("max_lifetime", &self.max_lifetime)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier of tokens signed with `keys`, meant for `audience`, valid for at most
    /// `max_lifetime` more.
    pub fn new(keys: KeyRing, audience: &str, max_lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "aud"]);
        validation.set_audience(&[audience]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Verifier {
            keys: RwLock::new(Arc::new(keys)),
            validation,
            audience: audience.to_owned(),
            max_lifetime: max_lifetime.as_secs(),
        }
    }

    /// The verifier `config` asks for: over `AUTH_SECRET`; with `AUTH_SECRET_ARN`, one that
    /// refuses every token until its keys are read into it
    /// ([`crate::token_keys::TokenKeys::load`]); none without either (anonymous connections).
    pub fn for_config(config: &Config) -> Option<Verifier> {
        let keys = match (&config.auth_secret, &config.auth_secret_arn) {
            (Some(secret), _) => KeyRing::plain(secret),
            (None, Some(_)) => KeyRing::default(),
            (None, None) => return None,
        };
        Some(Verifier::new(
            keys,
            &config.token_audience,
            config.max_token_lifetime,
        ))
    }

    fn keys(&self) -> Arc<KeyRing> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether it holds the key `kid` names.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys().find(kid).is_some()
    }

    /// Checks tokens with `keys` from now on.
    pub fn replace_keys(&self, keys: KeyRing) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }

    /// The uid a token proves (none without `sub`), and what its claims allow (a claim of the
    /// wrong type refuses the token).
    pub fn verify(&self, token: &str) -> Result<(Option<String>, Permissions), AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::BadToken(e.to_string()))?;
        let keys = self.keys();
        if keys.is_empty() {
            return Err(AuthError::NoKeys);
        }
        let key = match header.kid.as_deref() {
            Some(kid) => keys
                .find(kid)
                .ok_or_else(|| AuthError::UnknownKey(kid.chars().take(64).collect()))?,
            None => keys.current().ok_or(AuthError::NoKeys)?,
        };
        let data = decode::<Claims>(
            token,
            &DecodingKey::from_secret(key.secret().as_bytes()),
            &self.validation,
        )
        .map_err(|e| match e.kind() {
            ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => {
                AuthError::MissingAudience {
                    expected: self.audience.clone(),
                }
            }
            ErrorKind::InvalidAudience => AuthError::WrongAudience {
                expected: self.audience.clone(),
            },
            _ => AuthError::BadToken(e.to_string()),
        })?;
        let Claims {
            sub,
            exp,
            groups,
            send,
        } = data.claims;
        let now = u64::try_from(crate::store::now_secs()).unwrap_or(0);
        let left = exp.saturating_sub(now);
        if left > self.max_lifetime + LEEWAY_SECONDS {
            return Err(AuthError::TooLongLived {
                seconds: left,
                max: self.max_lifetime,
            });
        }
        match sub {
            Some(sub) if !is_valid_name(&sub) => Err(AuthError::BadSubject(sub)),
            sub => Ok((sub, Permissions::Granted { groups, send })),
        }
    }
}

/// The uid of a new connection, from its query string parameters.
pub fn identify(
    verifier: Option<&Verifier>,
    token: Option<&str>,
    claimed_uid: Option<&str>,
) -> Result<Option<String>, AuthError> {
    authenticate(verifier, token, claimed_uid).map(|identity| identity.uid)
}

/// The uid and the permissions of a new connection, from its query string parameters.
pub fn authenticate(
    verifier: Option<&Verifier>,
    token: Option<&str>,
    claimed_uid: Option<&str>,
) -> Result<Identity, AuthError> {
    match verifier {
        Some(verifier) => {
            let (uid, permissions) = verifier.verify(token.ok_or(AuthError::MissingToken)?)?;
            Ok(Identity { uid, permissions })
        }
        None => {
            let uid = match claimed_uid {
                None => None,
                Some(uid) if is_valid_name(uid) => Some(uid.to_owned()),
                Some(uid) => return Err(AuthError::BadUid(uid.to_owned())),
            };
            Ok(Identity {
                uid,
                permissions: Permissions::Everything,
            })
        }
    }
}

#[cfg(test)]
mod tests {
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
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
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
}
