//! AWS Signature Version 4 for the pushes, signed by hand so that the day's signing key is kept.
//!
//! Measured with callgrind on `bench pushes`, the SDK spent about 70 % of each push's CPU outside
//! the network: signing (deriving the signing key again for every request, four HMACs, and
//! building the canonical request generically) and its orchestrator. A push is always the same
//! shape — `POST /{stage}/@connections/{id}` with a small body, no query string — so its canonical
//! request is a few lines, and the key changes only with the date, the region and the secret.
//! The same signer reads the token keys from Secrets Manager ([`crate::aws::secrets_manager`]): a
//! `POST /` with two headers more, signed too. The unit tests check every signature against the
//! `aws-sigv4` crate's.

use std::sync::Mutex;
use std::time::SystemTime;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::civil::civil;

/// Hex digits, lower case, as SigV4 writes hashes and signatures.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Percent-encodes everything but RFC 3986's unreserved characters, as AWS wants path segments.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len() * 3);
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `YYYYMMDD'T'HHMMSS'Z'` and `YYYYMMDD` for a moment, in UTC.
fn timestamps(at: SystemTime) -> (String, String) {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = civil(secs as i64 * 1000);
    let date = format!("{:04}{:02}{:02}", t.year, t.month, t.day);
    let time = format!("{date}T{:02}{:02}{:02}Z", t.hour, t.minute, t.second);
    (time, date)
}

/// The credentials a request is signed with.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The access key id, which the `Authorization` header names.
    pub access_key_id: String,
    /// The secret access key the signing key is derived from; never sent.
    pub secret_access_key: String,
    /// The session token of temporary credentials (a role's), sent as `x-amz-security-token`.
    pub session_token: Option<String>,
}

/// The headers that make a request signed.
#[derive(Debug, PartialEq, Eq)]
pub struct Signature {
    /// The `Authorization` header: credential scope, signed header names, signature.
    pub authorization: String,
    /// The `x-amz-date` header: the moment signed, as `YYYYMMDD'T'HHMMSS'Z'` in UTC.
    pub amz_date: String,
    /// The `x-amz-security-token` header, when the credentials have a session token.
    pub security_token: Option<String>,
}

/// A request to sign: no query string; `path` as sent, its segments already encoded with
/// [`encode_segment`]; `headers` (names in lower case) are signed besides `host` and the
/// `x-amz-*` ones the signature adds, and must be sent as given.
#[derive(Clone, Copy, Debug)]
pub struct Unsigned<'a> {
    /// The HTTP method (`POST`).
    pub method: &'a str,
    /// The `host` header: the endpoint's authority.
    pub host: &'a str,
    /// The path as sent, its segments already encoded.
    pub path: &'a str,
    /// The headers to sign besides `host` and the `x-amz-*` ones, names in lower case.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body, whose SHA-256 is signed.
    pub body: &'a [u8],
}

/// Signs requests to one region's service (`execute-api` unless told otherwise), keeping the
/// derived key for the day.
#[derive(Debug)]
pub struct Signer {
    region: String,
    service: &'static str,
    /// (date, secret access key) → the signing key derived from them.
    key: Mutex<Option<(String, String, [u8; 32])>>,
}

impl Signer {
    /// A signer for the Management API (`execute-api`), what pushes are signed for.
    pub fn new(region: &str) -> Signer {
        Signer::for_service(region, "execute-api")
    }

    /// A signer for another service of the region (`secretsmanager`).
    pub fn for_service(region: &str, service: &'static str) -> Signer {
        Signer {
            region: region.to_owned(),
            service,
            key: Mutex::new(None),
        }
    }

    fn signing_key(&self, date: &str, secret: &str) -> [u8; 32] {
        let mut cached = self.key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((d, s, key)) = cached.as_ref() {
            if d == date && s == secret {
                return *key;
            }
        }
        let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
        let k_region = hmac(&k_date, self.region.as_bytes());
        let k_service = hmac(&k_region, self.service.as_bytes());
        let key = hmac(&k_service, b"aws4_request");
        *cached = Some((date.to_owned(), secret.to_owned(), key));
        key
    }

    /// Signs `method host path` with `body`. `path` is as sent, its segments already encoded
    /// with [`encode_segment`]; it has no query string.
    pub fn sign(
        &self,
        identity: &Identity,
        method: &str,
        host: &str,
        path: &str,
        body: &[u8],
        at: SystemTime,
    ) -> Signature {
        let request = Unsigned {
            method,
            host,
            path,
            headers: &[],
            body,
        };
        self.sign_request(identity, &request, at)
    }

    /// Signs `request`, its own headers included.
    pub fn sign_request(
        &self,
        identity: &Identity,
        request: &Unsigned<'_>,
        at: SystemTime,
    ) -> Signature {
        let (amz_date, date) = timestamps(at);
        // Services other than S3 sign the path encoded once more.
        let canonical_path = request
            .path
            .split('/')
            .map(encode_segment)
            .collect::<Vec<_>>()
            .join("/");
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(request.headers.len() + 3);
        headers.push(("host", request.host));
        headers.push(("x-amz-date", &amz_date));
        if let Some(token) = &identity.session_token {
            headers.push(("x-amz-security-token", token));
        }
        headers.extend_from_slice(request.headers);
        headers.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut canonical_headers = String::new();
        for (name, value) in &headers {
            canonical_headers.push_str(name);
            canonical_headers.push(':');
            canonical_headers.push_str(value.trim());
            canonical_headers.push('\n');
        }
        let signed_headers = headers
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(";");
        let canonical_request = format!(
            "{}\n{canonical_path}\n\n{canonical_headers}\n{signed_headers}\n{}",
            request.method,
            hex(&Sha256::digest(request.body))
        );
        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical_request.as_bytes()))
        );
        let key = self.signing_key(&date, &identity.secret_access_key);
        let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
        Signature {
            authorization: format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                identity.access_key_id
            ),
            amz_date,
            security_token: identity.session_token.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;

    /// The signature the `aws-sigv4` crate (what the SDK signs with) gives the same push.
    fn reference(
        identity: &Identity,
        host: &str,
        path: &str,
        body: &[u8],
        at: SystemTime,
    ) -> String {
        let request = Unsigned {
            method: "POST",
            host,
            path,
            headers: &[],
            body,
        };
        reference_for("execute-api", identity, &request, at)
    }

    /// The signature the `aws-sigv4` crate gives `request` to `service` in eu-west-1.
    fn reference_for(
        service: &str,
        identity: &Identity,
        request: &Unsigned<'_>,
        at: SystemTime,
    ) -> String {
        let credentials = Credentials::new(
            &identity.access_key_id,
            &identity.secret_access_key,
            identity.session_token.clone(),
            None,
            "test",
        );
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-1")
            .name(service)
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let url = format!("https://{}{}", request.host, request.path);
        let request = SignableRequest::new(
            request.method,
            &url,
            request.headers.iter().copied(),
            SignableBody::Bytes(request.body),
        )
        .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let (headers, _) = instructions.into_parts();
        headers
            .iter()
            .find(|h| h.name() == "authorization")
            .map(|h| h.value().to_owned())
            .unwrap()
    }

    fn identity(token: Option<&str>) -> Identity {
        Identity {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_owned),
        }
    }

    #[test]
    fn a_push_is_signed_as_aws_sigv4_signs_it() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let host = "abc123.execute-api.eu-west-1.amazonaws.com";
        let path = format!("/prod/@connections/{}", encode_segment("L0SM9cOFvHcCIhw="));
        let signer = Signer::new("eu-west-1");
        let ours = signer.sign(&identity(None), "POST", host, &path, b"{\"hi\":1}", at);
        assert_eq!(
            ours.authorization,
            reference(&identity(None), host, &path, b"{\"hi\":1}", at)
        );
    }

    #[test]
    fn a_session_token_is_signed_and_sent() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_123);
        let (host, path) = ("127.0.0.1:8080", "/dev/@connections/a%2Bb%2Fc%3D");
        let who = identity(Some("FwoGZXIvYXdzEBYaDH+token/=="));
        let ours = Signer::new("eu-west-1").sign(&who, "POST", host, path, b"", at);
        assert_eq!(ours.authorization, reference(&who, host, path, b"", at));
        assert_eq!(
            ours.security_token.as_deref(),
            Some("FwoGZXIvYXdzEBYaDH+token/==")
        );
    }

    #[test]
    fn the_kept_key_is_replaced_when_the_day_changes() {
        let signer = Signer::new("eu-west-1");
        let path = "/prod/@connections/x";
        for day in 0..3 {
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000 + day * 86_400);
            let ours = signer.sign(&identity(None), "POST", "h.example", path, b"x", at);
            assert_eq!(
                ours.authorization,
                reference(&identity(None), "h.example", path, b"x", at)
            );
        }
    }

    #[test]
    fn a_secrets_manager_call_is_signed_with_its_headers_as_aws_sigv4_signs_it() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let body = br#"{"SecretId":"arn:aws:secretsmanager:eu-west-1:1:secret:keys-AbCdEf"}"#;
        let request = Unsigned {
            method: "POST",
            host: "secretsmanager.eu-west-1.amazonaws.com",
            path: "/",
            headers: &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "secretsmanager.GetSecretValue"),
            ],
            body,
        };
        let who = identity(Some("FwoGZXIvYXdzEBYaDH+token/=="));
        let ours =
            Signer::for_service("eu-west-1", "secretsmanager").sign_request(&who, &request, at);
        assert_eq!(
            ours.authorization,
            reference_for("secretsmanager", &who, &request, at)
        );
        assert!(ours.authorization.contains(
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,"
        ));
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661); // 2000-02-29
        assert_eq!(
            timestamps(at),
            ("20000229T010101Z".to_owned(), "20000229".to_owned())
        );
    }
}
