//! The function URL door's signature: `X-Gateway-Signature: t=<unix seconds>,v1=<hex>`, where
//! the hex is HMAC-SHA256 under the server API's secret of `<t>.<body>` — what every language's
//! standard library computes in a few lines (the examples in `examples/backends` do). A request
//! signed more than five minutes from now is refused (stale), and so is a signature already seen
//! (replayed): the store remembers each one for ten minutes.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

/// The header that carries the signature.
pub const HEADER: &str = "x-gateway-signature";

/// How far a request's timestamp may be from now, either way, in seconds.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a request's signature was refused (401).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureError {
    /// No `X-Gateway-Signature` header.
    #[error("no {HEADER} header: sign the request (t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">)")]
    Missing,
    /// The header is not `t=…,v1=…`.
    #[error("{HEADER} must read t=<unix seconds>,v1=<64 hex digits>")]
    Malformed,
    /// The timestamp is more than [`TOLERANCE_SECONDS`] away from now.
    #[error("the request was signed {0} s away from now; the limit is {TOLERANCE_SECONDS} s: sign it when sending, and check the clock")]
    Stale(i64),
    /// The HMAC does not match: another secret, or a body changed after signing.
    #[error("the signature does not match the body: sign the exact bytes sent, with the server API's secret")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value that signs `body` at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Checks `header` against `body` at `now` (unix seconds); the signature's hex, which the caller
/// remembers to refuse a replay.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<String, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let (mut timestamp, mut hex) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => hex = Some(v),
            _ => {}
        }
    }
    let (Some(timestamp), Some(hex)) = (timestamp, hex) else {
        return Err(SignatureError::Malformed);
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::Malformed);
    }
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or_default())
        .collect();
    // Checked in constant time, before the clock, so that timing tells nothing of the secret.
    mac(secret, timestamp, body)
        .verify_slice(&bytes)
        .map_err(|_| SignatureError::Mismatch)?;
    if now.abs_diff(timestamp) > TOLERANCE_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale(now - timestamp));
    }
    Ok(hex.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"server-api-secret";

    #[test]
    fn a_request_signed_now_with_the_secret_is_accepted() {
        let header = sign(SECRET, 1_000, b"{\"calls\":[]}");
        assert!(verify(SECRET, Some(&header), b"{\"calls\":[]}", 1_010).is_ok());
    }

    /// The same bytes as `examples/backends` compute: Python's
    /// `hmac.new(b"k", b"1.b", hashlib.sha256).hexdigest()`.
    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() {
        assert_eq!(
            sign(b"k", 1, b"b"),
            "t=1,v1=2946e37a45bb02a0bf1bf1a7d9219543801fedd301f9f485aebd72c928639bea"
        );
    }

    #[test]
    fn a_changed_body_another_secret_or_a_stale_time_is_refused() {
        let header = sign(SECRET, 1_000, b"body");
        assert_eq!(
            verify(SECRET, Some(&header), b"body!", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", Some(&header), b"body", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, Some(&header), b"body", 1_301),
            Err(SignatureError::Stale(301))
        );
        assert_eq!(
            verify(SECRET, None, b"body", 1_000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(SECRET, Some("t=1000"), b"body", 1_000),
            Err(SignatureError::Malformed)
        );
    }
}
