//! HS256 tokens as a client gets them from the application that signs them.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// Epoch seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A token with exactly these claims, signed with `secret`.
pub fn token(claims: Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("a token")
}

/// A token for `sub`, valid for ten minutes, with these claims besides (`groups`, `send`).
pub fn token_for(sub: &str, claims: Value, secret: &str) -> String {
    let mut all = json!({"sub": sub, "exp": now() + 600});
    if let (Some(all), Value::Object(claims)) = (all.as_object_mut(), claims) {
        all.extend(claims);
    }
    token(all, secret)
}
