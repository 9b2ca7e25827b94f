//! Who a connection is, and what it may do: the uid bound at `$connect`, and its permissions.
//!
//! With signing keys, the uid is the `sub` of an HS256 JWT in `?token=`, and nothing else
//! counts; its `groups` and `send` claims say what it may do ([`Permissions`]). A token must be
//! meant for this service (`aud` equal to `TOKEN_AUDIENCE`) and short-lived (`exp` at most
//! `MAX_TOKEN_LIFETIME_SECONDS` away: it travels in the URL). Its header's `kid` picks the key it
//! is checked with among the current and the previous ones ([`KeyRing`]); without a `kid`, the
//! current key checks it. Without keys (local development), connections are anonymous or claim a
//! uid with `?uid=`, and may do everything. Tokens are checked by `jsonwebtoken`, never by hand.

pub mod authorizer;
pub mod permissions;
pub mod token_keys;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::auth::permissions::Permissions;
use crate::auth::token_keys::{Key, KeyRing};
use crate::config::Config;
use crate::names::is_valid_name;

/// The clock skew allowed between the signer and this service, on `exp`, `nbf` and the
/// lifetime cap.
const LEEWAY_SECONDS: u64 = 5;

/// Why a connection is refused at `$connect`.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    /// The service checks tokens, but the connection brought no `?token=`.
    #[error("a token is required: connect with ?token=<JWT signed with the current token key>")]
    MissingToken,
    /// `jsonwebtoken` refused the token (its form, signature, `exp`, `nbf`, a claim's type…), or
    /// could not mint one: its words.
    #[error("the token was refused: {0}")]
    BadToken(String),
    /// The token has no `aud` claim.
    #[error("the token has no aud claim: tokens for this service carry \"aud\": {expected:?} (TOKEN_AUDIENCE)")]
    MissingAudience {
        /// The audience this service accepts (`TOKEN_AUDIENCE`).
        expected: String,
    },
    /// The token's `aud` is not this service's.
    #[error("the token is meant for another service: this one accepts \"aud\": {expected:?} (TOKEN_AUDIENCE)")]
    WrongAudience {
        /// The audience this service accepts (`TOKEN_AUDIENCE`).
        expected: String,
    },
    /// The token's `exp` is further away than tokens may live (plus the leeway).
    #[error("the token is valid for {seconds} s more, longer than the {max} s a token may be (MAX_TOKEN_LIFETIME_SECONDS): a token travels in the URL, so mint one for each connection, just before it is made")]
    TooLongLived {
        /// How many seconds the token is still valid for.
        seconds: u64,
        /// The most seconds a token may be valid for (`MAX_TOKEN_LIFETIME_SECONDS`).
        max: u64,
    },
    /// The token's header names a key this service does not hold (the kid, cut to 64
    /// characters).
    #[error("the token's kid {0:?} names no key this service holds: sign with the current key (the secret's kid), or a previous key it still lists")]
    UnknownKey(String),
    /// The verifier holds no keys: they have not been read from the secret yet.
    #[error("no token keys have been read: the $connect function reads them from AUTH_SECRET_ARN at init")]
    NoKeys,
    /// The token's `sub` (or, when minting, the uid) is not a valid uid.
    #[error(
        "the token's sub {0:?} is not a valid uid (1–128 characters of A-Z a-z 0-9 _ . : @ -)"
    )]
    BadSubject(String),
    /// Without token keys, the `?uid=` the connection claims is not a valid uid (a 400).
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
    /// The uid bound to the connection: none for an anonymous one, or a token without `sub`.
    pub uid: Option<String>,
    /// What it may do: everything without token keys, else what its token's claims grant.
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
    /// ([`crate::auth::token_keys::TokenKeys::load`]); none without either (anonymous connections).
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
mod tests;
