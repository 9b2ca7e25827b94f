//! HS256 tokens as a client gets them from the application that signs them: for the service's
//! audience (`aud`), valid for less than its lifetime cap, and naming their key (`kid`) when the
//! secret has one.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// The audience the functions expect when `TOKEN_AUDIENCE` is not set.
pub const AUDIENCE: &str = "ws";

/// The kid the local stack gives the key it puts in Secrets Manager for `AUTH_SECRET`.
pub const KID: &str = "1";

/// Epoch seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A token with exactly these claims, signed with `secret`, naming no key.
pub fn token(claims: Value, secret: &str) -> String {
    token_with_kid(None, claims, secret)
}

/// A token with exactly these claims, signed with `secret`, whose header names the key `kid`.
pub fn token_with_kid(kid: Option<&str>, claims: Value, secret: &str) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    encode(
        &header,
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("a token")
}

/// The claims of a token for `sub` that the service accepts — for its audience, valid for five
/// minutes — with these claims besides (`groups`, `send`), which may also replace them.
pub fn claims_for(sub: &str, claims: Value) -> Value {
    let mut all = json!({"sub": sub, "aud": AUDIENCE, "exp": now() + 300});
    if let (Some(all), Value::Object(claims)) = (all.as_object_mut(), claims) {
        all.extend(claims);
    }
    all
}

/// A token for `sub`, for the service's audience, valid for five minutes, with these claims
/// besides (`groups`, `send`), signed with `secret` and naming no key (the current key checks it).
pub fn token_for(sub: &str, claims: Value, secret: &str) -> String {
    token(claims_for(sub, claims), secret)
}
