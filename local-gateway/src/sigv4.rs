//! Checks the SigV4 signature of every `@connections` request, as API Gateway does, against the
//! credentials the local functions are given. A push signed wrongly (a bad canonical path, a
//! wrong host, region or service, a missing session token) is refused here with the 403 AWS
//! answers, instead of passing locally and failing on AWS.
//!
//! Written from the SigV4 specification, independently of the service's own signer
//! (`shared::aws::sigv4`), so that one cannot hide the other's mistakes; the tests check it against the
//! `aws-sigv4` crate.

use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use shared::civil::civil;

/// The credentials requests must be signed with.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// When set, requests must carry it as `x-amz-security-token` (Lambda's role credentials
    /// always have one).
    pub session_token: Option<String>,
}

/// What a request is checked against.
#[derive(Clone, Debug)]
pub struct Expected {
    pub credentials: Credentials,
    pub region: String,
}

/// Why a request was refused; each is answered 403 with API Gateway's message.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header (AWS: "Missing Authentication Token").
    Missing,
    /// An `Authorization` header that is not SigV4, or lacks a part.
    Malformed(&'static str),
    /// An access key other than the local one, or a missing or wrong session token.
    UnknownCredentials,
    /// The scope names another region or service, or the date does not match.
    WrongScope(String),
    /// More than five minutes off the clock.
    Expired,
    /// The signature does not match the request.
    Mismatch,
}

impl Refusal {
    /// The message API Gateway answers with.
    pub fn message(&self) -> String {
        match self {
            Refusal::Missing => "Missing Authentication Token".into(),
            Refusal::Malformed(what) => format!("Authorization header requires {what}"),
            Refusal::UnknownCredentials => {
                "The security token included in the request is invalid.".into()
            }
            Refusal::WrongScope(scope) => format!("Credential should be scoped correctly: {scope}"),
            Refusal::Expired => "Signature expired".into(),
            Refusal::Mismatch => "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.".into(),
        }
    }
}

struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse(header: &str) -> Result<Authorization<'_>, Refusal> {
    let rest = header
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or(Refusal::Malformed("the AWS4-HMAC-SHA256 algorithm"))?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=').unwrap_or(("", ""));
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let credential = credential.ok_or(Refusal::Malformed("a Credential"))?;
    let mut scope = credential.split('/');
    let mut next = || {
        scope
            .next()
            .ok_or(Refusal::Malformed("a complete Credential scope"))
    };
    let authorization = Authorization {
        access_key_id: next()?,
        date: next()?,
        region: next()?,
        service: next()?,
        signed_headers: signed_headers.ok_or(Refusal::Malformed("SignedHeaders"))?,
        signature: signature.ok_or(Refusal::Malformed("a Signature"))?,
    };
    if next()? != "aws4_request" || next().is_ok() {
        return Err(Refusal::Malformed("a scope ending in aws4_request"));
    }
    if authorization.date.len() != 8 || !authorization.date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::Malformed("a scope date of eight digits"));
    }
    let signed: Vec<&str> = authorization.signed_headers.split(';').collect();
    if !signed.contains(&"host") || !signed.contains(&"x-amz-date") {
        return Err(Refusal::Malformed(
            "host and x-amz-date among the SignedHeaders",
        ));
    }
    Ok(authorization)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// URI-encodes a path segment or query part as SigV4 wants (everything but unreserved).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical URI of a path as it arrived: each segment encoded once more (every service but
/// S3 signs the path double-encoded).
fn canonical_path(raw_path: &str) -> String {
    raw_path
        .split('/')
        .map(encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (encode(&decode(k)), encode(&decode(v)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `20261125T101542Z` for a moment.
fn amz_date(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = civil(secs as i64 * 1000);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// A request, as the management API (or the Invoke API) received it.
pub struct Request<'a> {
    /// The service it must be signed for: `execute-api`, or `lambda`.
    pub service: &'a str,
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Checks `request`'s signature against `expected`, at `now`.
pub fn verify(expected: &Expected, request: &Request<'_>, now: SystemTime) -> Result<(), Refusal> {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = parse(header("authorization").ok_or(Refusal::Missing)?)?;
    let credentials = &expected.credentials;
    if authorization.access_key_id != credentials.access_key_id
        || header("x-amz-security-token") != credentials.session_token.as_deref()
    {
        return Err(Refusal::UnknownCredentials);
    }
    if authorization.service != request.service || authorization.region != expected.region {
        return Err(Refusal::WrongScope(format!(
            "{}/{} where {}/{} was expected",
            authorization.service, authorization.region, request.service, expected.region
        )));
    }
    let stamp = header("x-amz-date").ok_or(Refusal::Malformed("an X-Amz-Date header"))?;
    if !stamp.starts_with(authorization.date) {
        return Err(Refusal::WrongScope(format!(
            "date {} where {stamp} was signed",
            authorization.date
        )));
    }
    // Stamps of one shape order as the moments they name. API Gateway allows five minutes.
    let skew = Duration::from_secs(5 * 60);
    let earliest = amz_date(now.checked_sub(skew).unwrap_or(now));
    if stamp.len() != earliest.len()
        || stamp < earliest.as_str()
        || stamp > amz_date(now + skew).as_str()
    {
        return Err(Refusal::Expired);
    }
    let mut canonical_headers = String::new();
    for name in authorization.signed_headers.split(';') {
        let values: Vec<String> = request
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(Refusal::Mismatch);
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    // execute-api signs the body's own hash; a header that claims another one is refused.
    let payload_hash = hex(&Sha256::digest(request.body));
    if header("x-amz-content-sha256").is_some_and(|claimed| claimed != payload_hash) {
        return Err(Refusal::Mismatch);
    }
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{}\n{payload_hash}",
        request.method,
        canonical_path(request.raw_path),
        canonical_query(request.raw_query),
        authorization.signed_headers,
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        authorization.date, expected.region, request.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", credentials.secret_access_key).as_bytes(),
        authorization.date,
    );
    for part in [expected.region.as_str(), request.service, "aws4_request"] {
        key = hmac(&key, part);
    }
    if hex(&hmac(&key, &string_to_sign)) == authorization.signature {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials as AwsCredentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;

    fn expected(token: Option<&str>) -> Expected {
        Expected {
            credentials: Credentials {
                access_key_id: "AKIDLOCAL".into(),
                secret_access_key: "local-secret".into(),
                session_token: token.map(str::to_owned),
            },
            region: "us-east-1".into(),
        }
    }

    /// Headers as `aws-sigv4` signs a push to `path` with `secret`, `region` and `token`.
    fn signed(
        path: &str,
        body: &[u8],
        secret: &str,
        region: &str,
        token: Option<&str>,
    ) -> HeaderMap {
        let identity =
            AwsCredentials::new("AKIDLOCAL", secret, token.map(str::to_owned), None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("execute-api")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("signing params")
            .into();
        let url = format!("http://127.0.0.1:8080{path}");
        let host = [("host", "127.0.0.1:8080")];
        let request = SignableRequest::new(
            "POST",
            url.as_str(),
            host.into_iter(),
            SignableBody::Bytes(body),
        )
        .expect("signable");
        let (instructions, _) = sign(request, &params).expect("sign").into_parts();
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:8080".parse().expect("host"));
        for (name, value) in instructions.headers() {
            headers.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        headers
    }

    fn check(
        expected: &Expected,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Refusal> {
        let request = Request {
            service: "execute-api",
            method: "POST",
            raw_path: path,
            raw_query: "",
            headers,
            body,
        };
        verify(expected, &request, SystemTime::now())
    }

    const PATH: &str = "/dev/@connections/a%2Bb%2Fc%3D";

    #[test]
    fn a_request_signed_by_aws_sigv4_passes() {
        let headers = signed(PATH, b"hi", "local-secret", "us-east-1", None);
        assert_eq!(check(&expected(None), PATH, &headers, b"hi"), Ok(()));
    }

    #[test]
    fn a_session_token_is_required_when_the_credentials_have_one() {
        let with = signed(PATH, b"hi", "local-secret", "us-east-1", Some("tok"));
        assert_eq!(check(&expected(Some("tok")), PATH, &with, b"hi"), Ok(()));
        let without = signed(PATH, b"hi", "local-secret", "us-east-1", None);
        assert_eq!(
            check(&expected(Some("tok")), PATH, &without, b"hi"),
            Err(Refusal::UnknownCredentials)
        );
    }

    #[test]
    fn another_secret_or_body_or_path_does_not_match() {
        let headers = signed(PATH, b"hi", "another-secret", "us-east-1", None);
        assert_eq!(
            check(&expected(None), PATH, &headers, b"hi"),
            Err(Refusal::Mismatch)
        );
        let headers = signed(PATH, b"hi", "local-secret", "us-east-1", None);
        assert_eq!(
            check(&expected(None), PATH, &headers, b"ho"),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            check(
                &expected(None),
                "/dev/@connections/other%3D",
                &headers,
                b"hi"
            ),
            Err(Refusal::Mismatch)
        );
    }

    #[test]
    fn another_region_is_the_wrong_scope() {
        let headers = signed(PATH, b"hi", "local-secret", "eu-west-1", None);
        assert!(matches!(
            check(&expected(None), PATH, &headers, b"hi"),
            Err(Refusal::WrongScope(_))
        ));
    }

    #[test]
    fn a_claimed_payload_hash_that_is_not_the_bodys_is_refused() {
        let mut headers = signed(PATH, b"hi", "local-secret", "us-east-1", None);
        headers.insert(
            "x-amz-content-sha256",
            "UNSIGNED-PAYLOAD".parse().expect("value"),
        );
        assert_eq!(
            check(&expected(None), PATH, &headers, b"hi"),
            Err(Refusal::Mismatch)
        );
    }

    #[test]
    fn a_signature_that_leaves_out_the_host_is_malformed() {
        let mut headers = signed(PATH, b"hi", "local-secret", "us-east-1", None);
        let authorization = headers["authorization"].to_str().expect("ascii").to_owned();
        let without_host = authorization.replace("SignedHeaders=host;", "SignedHeaders=");
        headers.insert("authorization", without_host.parse().expect("value"));
        assert!(matches!(
            check(&expected(None), PATH, &headers, b"hi"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn an_unsigned_request_is_missing_its_token() {
        assert_eq!(
            check(&expected(None), PATH, &HeaderMap::new(), b"hi"),
            Err(Refusal::Missing)
        );
    }

    #[test]
    fn a_signature_from_ten_minutes_ago_has_expired() {
        let headers = signed(PATH, b"hi", "local-secret", "us-east-1", None);
        let request = Request {
            service: "execute-api",
            method: "POST",
            raw_path: PATH,
            raw_query: "",
            headers: &headers,
            body: b"hi",
        };
        let later = SystemTime::now() + Duration::from_secs(10 * 60);
        assert_eq!(
            verify(&expected(None), &request, later),
            Err(Refusal::Expired)
        );
    }
}
