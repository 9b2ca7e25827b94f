//! Who a connection is, and what it may do: the uid bound at `$connect`, and its permissions.
//!
//! With a signing secret, the uid is the `sub` of an HS256 JWT in `?token=`, and nothing else
//! counts; its `groups` and `send` claims say what it may do ([`Permissions`]). Without one
//! (local development), connections are anonymous or claim a uid with `?uid=`, and may do
//! everything. Tokens are checked by `jsonwebtoken`, never by hand.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::names::is_valid_name;
use crate::permissions::Permissions;

/// Why a connection is refused at `$connect`.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("a token is required: connect with ?token=<JWT signed with AUTH_SECRET>")]
    MissingToken,
    #[error("the token was refused: {0}")]
    BadToken(String),
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
    sub: String,
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
    exp: i64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    send: &'a [String],
}

/// Mints an HS256 token for `uid`, valid for `lifetime`, with these `groups` and `send` claims:
/// what an application's login endpoint hands its clients (and `gateway-client token` prints).
pub fn mint(
    secret: &str,
    uid: &str,
    lifetime: std::time::Duration,
    groups: &[String],
    send: &[String],
) -> Result<String, AuthError> {
    if !is_valid_name(uid) {
        return Err(AuthError::BadSubject(uid.to_owned()));
    }
    let claims = NewClaims {
        sub: uid,
        exp: crate::store::now_secs() + lifetime.as_secs() as i64,
        groups,
        send,
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| AuthError::BadToken(e.to_string()))
}

/// What `$connect`'s authorizer proves about a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: Option<String>,
    pub permissions: Permissions,
}

/// Checks tokens against one secret.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Verifier {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// The uid a token proves, and what its claims allow (a claim of the wrong type refuses
    /// the token).
    pub fn verify(&self, token: &str) -> Result<(String, Permissions), AuthError> {
        let data = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::BadToken(e.to_string()))?;
        let Claims { sub, groups, send } = data.claims;
        if is_valid_name(&sub) {
            Ok((sub, Permissions::Granted { groups, send }))
        } else {
            Err(AuthError::BadSubject(sub))
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
            Ok(Identity {
                uid: Some(uid),
                permissions,
            })
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

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn token(claims: serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn a_valid_token_binds_its_sub() {
        let verifier = Verifier::new(SECRET);
        let t = token(json!({"sub": "alice", "exp": now() + 60}), SECRET);
        assert_eq!(
            identify(Some(&verifier), Some(&t), None),
            Ok(Some("alice".into()))
        );
    }

    #[test]
    fn with_a_secret_the_claimed_uid_is_ignored() {
        let verifier = Verifier::new(SECRET);
        let t = token(json!({"sub": "alice", "exp": now() + 60}), SECRET);
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
        let verifier = Verifier::new(SECRET);
        let later = now() + 600;
        let cases = [
            ("malformed", "not.a.jwt".to_owned()),
            (
                "wrong secret",
                token(json!({"sub": "a", "exp": later}), "other"),
            ),
            (
                "expired",
                token(json!({"sub": "a", "exp": now() - 600}), SECRET),
            ),
            ("no exp", token(json!({"sub": "a"}), SECRET)),
            (
                "not yet valid",
                token(
                    json!({"sub": "a", "exp": later, "nbf": now() + 300}),
                    SECRET,
                ),
            ),
            ("no sub", token(json!({"exp": later}), SECRET)),
            // alg: none, with the same claims and no signature.
            (
                "alg none",
                format!(
                    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
                    base64_url_no_pad(&format!(r#"{{"sub":"a","exp":{later}}}"#))
                ),
            ),
        ];
        for (what, t) in cases {
            let err = identify(Some(&verifier), Some(&t), None).expect_err(what);
            assert_eq!(err.status(), 401, "{what}: {err}");
        }
    }

    #[test]
    fn a_tokens_claims_become_its_permissions_and_a_claim_of_the_wrong_type_refuses_it() {
        let verifier = Verifier::new(SECRET);
        let t = token(
            json!({"sub": "alice", "exp": now() + 60, "groups": ["room-*"], "send": ["all"]}),
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
            json!({"sub": "alice", "exp": now() + 60, "groups": "room-*"}),
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
        let verifier = Verifier::new(SECRET);
        let groups = vec!["room-*".to_owned()];
        let t = mint(
            SECRET,
            "alice",
            std::time::Duration::from_secs(60),
            &groups,
            &[],
        )
        .unwrap();
        let identity = authenticate(Some(&verifier), Some(&t), None).unwrap();
        assert_eq!(identity.uid.as_deref(), Some("alice"));
        assert_eq!(
            identity.permissions,
            Permissions::Granted {
                groups,
                send: vec![]
            }
        );
        assert!(mint(
            SECRET,
            "al ice",
            std::time::Duration::from_secs(60),
            &[],
            &[]
        )
        .is_err());
    }

    #[test]
    fn a_sub_outside_the_naming_rules_is_refused() {
        let verifier = Verifier::new(SECRET);
        let t = token(json!({"sub": "al ice", "exp": now() + 60}), SECRET);
        assert_eq!(
            identify(Some(&verifier), Some(&t), None),
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
