//! Verification of OCI request signatures (draft-cavage HTTP signatures, RSA-SHA256).
//!
//! This is the fake's own verifier; it shares nothing with `oci-client`'s signer, so each is
//! the other's independent check.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::Md5;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::EncodePublicKey;
use rsa::signature::Verifier;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

/// How far a request's date may be from the fake's clock.
pub const MAX_SKEW: time::Duration = time::Duration::minutes(5);

/// A request as it arrived: what the signature covers.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path and query exactly as sent.
    pub target: &'a str,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl SignedRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The `keyId` of a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyId {
    pub tenancy: String,
    pub user: String,
    pub fingerprint: String,
    /// The session token of a key id `ST$<token>` (session-token signing); the tenancy, user
    /// and fingerprint are then empty, and the session says who signed.
    pub session: Option<String>,
}

/// Why a request was refused. The text is for the fake's log and tests; the client sees
/// OCI's generic 401 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing or malformed Authorization header")]
    Malformed,
    #[error("unsupported signature algorithm or version")]
    Algorithm,
    #[error("the signature does not cover the required header `{0}`")]
    MissingSignedHeader(&'static str),
    #[error("a signed header is absent from the request: `{0}`")]
    AbsentHeader(String),
    #[error("x-content-sha256 does not match the body")]
    BodyHash,
    #[error("content-length does not match the body")]
    ContentLength,
    #[error("the request date is missing, unreadable or more than 5 minutes from the server clock")]
    Date,
    #[error("no such key: {0}")]
    UnknownKey(String),
    #[error("the signature does not verify")]
    BadSignature,
}

fn params(authorization: &str) -> Option<Vec<(String, String)>> {
    let rest = authorization.strip_prefix("Signature ")?;
    let mut out = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let after = after.strip_prefix('"')?;
        let end = after.find('"')?;
        out.push((name.trim().to_owned(), after[..end].to_owned()));
        rest = after[end + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Some(out)
}

pub fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text, format)
        .ok()
        .map(|t| t.assume_utc())
}

/// The OCI fingerprint of a public key: MD5 of its DER SubjectPublicKeyInfo, colon-separated hex.
pub fn fingerprint(key: &RsaPublicKey) -> String {
    let der = key
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    Md5::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Verifies `req`. `lookup` finds the public key for a `keyId`.
pub fn verify(
    req: &SignedRequest<'_>,
    lookup: impl Fn(&KeyId) -> Option<RsaPublicKey>,
    now: OffsetDateTime,
) -> Result<KeyId, AuthError> {
    let authorization = req.header("authorization").ok_or(AuthError::Malformed)?;
    let params = params(authorization).ok_or(AuthError::Malformed)?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if param("algorithm").is_some_and(|a| a != "rsa-sha256")
        || param("version").is_some_and(|v| v != "1")
    {
        return Err(AuthError::Algorithm);
    }
    let key_id = param("keyId").ok_or(AuthError::Malformed)?;
    let signature = param("signature").ok_or(AuthError::Malformed)?;
    let signed: Vec<String> = param("headers")
        .unwrap_or("date")
        .split_ascii_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    let covers = |name: &str| signed.iter().any(|h| h == name);

    let date_header = if covers("x-date") { "x-date" } else { "date" };
    if !covers(date_header) {
        return Err(AuthError::MissingSignedHeader("date"));
    }
    for required in ["(request-target)", "host"] {
        if !covers(required) {
            return Err(AuthError::MissingSignedHeader(required));
        }
    }
    let with_body = matches!(
        req.method.to_ascii_uppercase().as_str(),
        "POST" | "PUT" | "PATCH"
    );
    if with_body {
        for required in ["content-length", "content-type", "x-content-sha256"] {
            if !covers(required) {
                return Err(AuthError::MissingSignedHeader(required));
            }
        }
        let hash = STANDARD.encode(Sha256::digest(req.body));
        if req.header("x-content-sha256") != Some(hash.as_str()) {
            return Err(AuthError::BodyHash);
        }
        if req
            .header("content-length")
            .and_then(|l| l.trim().parse::<usize>().ok())
            != Some(req.body.len())
        {
            return Err(AuthError::ContentLength);
        }
    }
    let date = req
        .header(date_header)
        .and_then(parse_http_date)
        .ok_or(AuthError::Date)?;
    if (date - now).abs() > MAX_SKEW {
        return Err(AuthError::Date);
    }

    let mut lines = Vec::with_capacity(signed.len());
    for name in &signed {
        if name == "(request-target)" {
            lines.push(format!(
                "(request-target): {} {}",
                req.method.to_ascii_lowercase(),
                req.target
            ));
        } else {
            let value = req
                .header(name)
                .ok_or_else(|| AuthError::AbsentHeader(name.clone()))?;
            lines.push(format!("{name}: {}", value.trim()));
        }
    }
    let signing_string = lines.join("\n");

    let key_id = match key_id.strip_prefix("ST$") {
        Some(token) if !token.is_empty() => KeyId {
            tenancy: String::new(),
            user: String::new(),
            fingerprint: String::new(),
            session: Some(token.to_owned()),
        },
        Some(_) => return Err(AuthError::Malformed),
        None => {
            let mut parts = key_id.splitn(3, '/');
            let (Some(tenancy), Some(user), Some(fp)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(AuthError::Malformed);
            };
            KeyId {
                tenancy: tenancy.to_owned(),
                user: user.to_owned(),
                fingerprint: fp.to_owned(),
                session: None,
            }
        }
    };
    let key = lookup(&key_id).ok_or_else(|| {
        AuthError::UnknownKey(if key_id.session.is_some() {
            "(session token)".to_owned()
        } else {
            key_id.fingerprint.clone()
        })
    })?;
    let raw = STANDARD
        .decode(signature)
        .map_err(|_| AuthError::BadSignature)?;
    let sig = Signature::try_from(raw.as_slice()).map_err(|_| AuthError::BadSignature)?;
    VerifyingKey::<Sha256>::new(key)
        .verify(signing_string.as_bytes(), &sig)
        .map_err(|_| AuthError::BadSignature)?;
    Ok(key_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_by_name_in_any_order() {
        let p = params(r#"Signature version="1",headers="date host",keyId="a/b/c",algorithm="rsa-sha256",signature="xyz=""#).unwrap();
        assert_eq!(p.len(), 5);
        assert!(p.contains(&("keyId".into(), "a/b/c".into())));
        assert!(p.contains(&("signature".into(), "xyz=".into())));
        assert!(params("Basic abc").is_none());
        assert!(params(r#"Signature keyId="unterminated"#).is_none());
    }

    #[test]
    fn http_dates() {
        let at = parse_http_date("Thu, 05 Jan 2014 21:31:40 GMT").unwrap();
        assert_eq!(at.unix_timestamp(), 1_388_957_500);
        assert!(parse_http_date("2014-01-05T21:31:40Z").is_none());
    }
}
