//! The keys that sign and verify client tokens, and the secret that holds them.
//!
//! In AWS the keys live in a Secrets Manager secret (the template's `TokenSecret`, named to the
//! `$connect` function by `AUTH_SECRET_ARN`), never in a function's environment. The function
//! reads it once per execution environment, at init, and again when a token names a key it has
//! not read — the secret was rotated since — at most once every [`REREAD_INTERVAL`] (the init's
//! read does not count: a rotation just after an init is picked up at once). The secret is JSON
//! text:
//!
//! ```json
//! {"kid": "2", "secret": "<the current key>", "previous": [{"kid": "1", "secret": "<the key before>"}]}
//! ```
//!
//! The current key (`kid`, `secret`) signs new tokens, and verifies tokens whose header names it
//! or names no key. Each key of `previous` (optional) still verifies the tokens whose header
//! names it, so that tokens minted before a rotation keep working until they expire. The template
//! has CloudFormation generate the first value, `{"kid":"1","secret":"<64 letters and digits>"}`:
//! the same shape, without previous keys. Every secret is 32 characters or more, and no two keys
//! share a kid. Locally and in unit tests, `AUTH_SECRET` gives one key without a kid instead
//! ([`KeyRing::plain`]).
//!
//! Nothing here logs a key, and no error or `Debug` output shows one.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use thiserror::Error;

use crate::auth::{self, Verifier};
use crate::aws::secrets_manager::{SecretError, SecretsManager};

/// The fewest characters a key may have: HS256 wants 256 bits of key.
pub const MIN_SECRET_CHARS: usize = 32;

/// A token naming a key not read has the secret read again at most this often (per execution
/// environment), however many such tokens come.
pub const REREAD_INTERVAL: Duration = Duration::from_secs(10);

/// The fields of the secret's JSON object, and of each previous key.
const SET_FIELDS: [&str; 3] = ["kid", "secret", "previous"];
const KEY_FIELDS: [&str; 2] = ["kid", "secret"];

/// One HS256 key, and the id (`kid`) a token's header names it by.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    kid: Option<String>,
    secret: String,
}

impl Key {
    /// The key `secret`, named by `kid` (none for a bare secret); checks neither.
    pub fn new(kid: Option<&str>, secret: &str) -> Key {
        Key {
            kid: kid.map(str::to_owned),
            secret: secret.to_owned(),
        }
    }

    /// The id tokens signed with this key carry in their header (none for [`KeyRing::plain`]).
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The HS256 secret this key signs and verifies with.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The keys a secret holds: the current one first, then the previous ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyRing {
    keys: Vec<Key>,
}

/// What is wrong with the text of a secret that should hold token keys. It names fields, never
/// their values.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ShapeError {
    /// The text does not parse as JSON.
    #[error("it is not JSON")]
    NotJson,
    /// The JSON is not an object.
    #[error("it is not a JSON object")]
    NotAnObject,
    /// A key lacks its `kid` or `secret` (the field's path, e.g. `previous[0].kid`).
    #[error("{0} is missing")]
    Missing(String),
    /// A key's `kid` or `secret` is not a string (the field's path).
    #[error("{0} is not a string")]
    NotAString(String),
    /// A key's `kid` or `secret` is empty or only whitespace (the field's path).
    #[error("{0} is blank")]
    Blank(String),
    /// A key's secret has fewer than [`MIN_SECRET_CHARS`] characters (the field's path).
    #[error("{0} is shorter than 32 characters")]
    TooShort(String),
    /// `previous` is not a JSON array.
    #[error("\"previous\" is not a list")]
    PreviousNotAList,
    /// An item of `previous` is not a JSON object (its path, `previous[i]`).
    #[error("{0} is not an object with a kid and a secret")]
    NotAKey(String),
    /// Two keys share this kid.
    #[error("kid {0:?} names two keys")]
    DuplicateKid(String),
    /// A field the secret, or one of its keys, may not have (its path; the name cut to 40
    /// characters).
    #[error("{0} is not a field it may have")]
    UnknownField(String),
}

impl KeyRing {
    /// One key without a kid: a bare secret (`AUTH_SECRET`, local runs and unit tests only).
    pub fn plain(secret: &str) -> KeyRing {
        KeyRing {
            keys: vec![Key::new(None, secret)],
        }
    }

    /// The keys of a secret's JSON text (see the module's documentation for its shape).
    pub fn parse(text: &str) -> Result<KeyRing, ShapeError> {
        let value: Value = serde_json::from_str(text).map_err(|_| ShapeError::NotJson)?;
        let Value::Object(fields) = value else {
            return Err(ShapeError::NotAnObject);
        };
        only(&fields, &SET_FIELDS, "")?;
        let mut keys = vec![key(&fields, "")?];
        match fields.get("previous") {
            None => {}
            Some(Value::Array(previous)) => {
                for (i, item) in previous.iter().enumerate() {
                    let Value::Object(fields) = item else {
                        return Err(ShapeError::NotAKey(format!("previous[{i}]")));
                    };
                    let path = format!("previous[{i}].");
                    only(fields, &KEY_FIELDS, &path)?;
                    keys.push(key(fields, &path)?);
                }
            }
            Some(_) => return Err(ShapeError::PreviousNotAList),
        }
        for (i, key) in keys.iter().enumerate() {
            if let Some(kid) = key.kid() {
                if keys[..i].iter().any(|k| k.kid() == Some(kid)) {
                    return Err(ShapeError::DuplicateKid(kid.to_owned()));
                }
            }
        }
        Ok(KeyRing { keys })
    }

    /// What an operator may hand a tool that mints tokens (`gateway-client token --secret`): the
    /// secret's JSON text when it starts with `{`, else a bare secret ([`KeyRing::plain`]).
    pub fn from_text(text: &str) -> Result<KeyRing, ShapeError> {
        if text.trim_start().starts_with('{') {
            KeyRing::parse(text)
        } else {
            Ok(KeyRing::plain(text))
        }
    }

    /// The key that signs, and verifies tokens that name no key.
    pub fn current(&self) -> Option<&Key> {
        self.keys.first()
    }

    /// The key a token's `kid` names.
    pub fn find(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid() == Some(kid))
    }

    /// The kids of the keys, current first: what may be logged of them.
    pub fn kids(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter_map(|k| k.kid().map(str::to_owned))
            .collect()
    }

    /// No keys: what a verifier holds until its keys are read.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Refuses a field other than `allowed` (a misspelt `previous` would otherwise drop keys
/// silently).
fn only(fields: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), ShapeError> {
    match fields.keys().find(|name| !allowed.contains(&name.as_str())) {
        Some(name) => Err(ShapeError::UnknownField(format!(
            "{path}{:?}",
            name.chars().take(40).collect::<String>()
        ))),
        None => Ok(()),
    }
}

/// The key in `fields` (`kid` and `secret`), whose path in the secret is `path`.
fn key(fields: &Map<String, Value>, path: &str) -> Result<Key, ShapeError> {
    let string = |name: &str| match fields.get(name) {
        None => Err(ShapeError::Missing(format!("{path}{name}"))),
        Some(Value::String(text)) if text.trim().is_empty() => {
            Err(ShapeError::Blank(format!("{path}{name}")))
        }
        Some(Value::String(text)) => Ok(text.as_str()),
        Some(_) => Err(ShapeError::NotAString(format!("{path}{name}"))),
    };
    let kid = string("kid")?;
    let secret = string("secret")?;
    if secret.chars().count() < MIN_SECRET_CHARS {
        return Err(ShapeError::TooShort(format!("{path}secret")));
    }
    Ok(Key::new(Some(kid), secret))
}

/// Why the token keys could not be read.
#[derive(Debug, Error)]
pub enum KeysError {
    /// The secret could not be read from Secrets Manager.
    #[error(transparent)]
    Read(#[from] SecretError),
    /// The secret was read, but its text does not hold token keys.
    #[error("the secret {secret} does not hold token keys: {problem}. It must be JSON text: {{\"kid\":\"1\",\"secret\":\"<32 characters or more>\"}}, and during a rotation \"previous\":[{{\"kid\":…,\"secret\":…}}] besides, for the keys that still verify (README: Deploying)")]
    Shape {
        /// The secret's ARN or name.
        secret: String,
        /// What is wrong with its text.
        problem: ShapeError,
    },
}

/// Where the `$connect` function reads its token keys: a secret in Secrets Manager.
#[derive(Debug)]
pub struct TokenKeys {
    secrets: SecretsManager,
    secret_id: String,
    /// When the secret was last read again (or tried) for a token naming an unknown key, so
    /// that such tokens cannot make every handshake a Secrets Manager call.
    last_read: tokio::sync::Mutex<Option<Instant>>,
}

impl TokenKeys {
    /// The keys held by `secret_id` (an ARN, or a name).
    pub fn new(secrets: SecretsManager, secret_id: impl Into<String>) -> TokenKeys {
        TokenKeys {
            secrets,
            secret_id: secret_id.into(),
            last_read: tokio::sync::Mutex::new(None),
        }
    }

    /// The secret's ARN or name.
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// Reads the keys from the secret's current version.
    pub async fn read(&self) -> Result<KeyRing, KeysError> {
        let text = self.secrets.secret_string(&self.secret_id).await?;
        KeyRing::parse(&text).map_err(|problem| KeysError::Shape {
            secret: self.secret_id.clone(),
            problem,
        })
    }

    /// Reads the keys into `verifier` (at init); the kids it now holds, current first.
    pub async fn load(&self, verifier: &Verifier) -> Result<Vec<String>, KeysError> {
        let keys = self.read().await?;
        let kids = keys.kids();
        verifier.replace_keys(keys);
        Ok(kids)
    }

    /// When `token`'s header names a key `verifier` does not hold, reads the secret again — it
    /// may have been rotated since it was read — unless it was read again for such a token less
    /// than [`REREAD_INTERVAL`] ago. Whether it was read. A failure is logged, and the token is
    /// then refused as naming an unknown key.
    pub async fn refresh_for(&self, verifier: &Verifier, token: &str) -> bool {
        let Some(kid) = auth::key_id(token) else {
            return false;
        };
        if verifier.knows(&kid) {
            return false;
        }
        let mut last_read = self.last_read.lock().await;
        let recent = last_read.is_some_and(|at| at.elapsed() < REREAD_INTERVAL);
        if recent || verifier.knows(&kid) {
            return false;
        }
        *last_read = Some(Instant::now());
        match self.read().await {
            Ok(keys) => {
                let kids = keys.kids();
                verifier.replace_keys(keys);
                tracing::info!(
                    secret = %self.secret_id,
                    ?kids,
                    "token keys read again: a token named a key this environment had not read",
                );
            }
            Err(e) => {
                tracing::error!(
                    secret = %self.secret_id,
                    error = %e,
                    "token keys could not be read again; tokens naming keys not read are refused meanwhile",
                );
            }
        }
        true
    }
}

#[cfg(test)]
mod tests;
