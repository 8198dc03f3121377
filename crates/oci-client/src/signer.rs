//! OCI request signing (signature version 1: draft-cavage HTTP signatures with RSA-SHA256).
//!
//! This is the client's own signer; it shares nothing with `fake-oci`'s verifier.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use md5::Md5;
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::signature::{SignatureEncoding, Signer as _};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::error::Error;
use crate::secret::{ExposeSecret, SecretString};

/// Signs requests as one API key, or as a session (key id `ST$<session token>`).
#[derive(Clone)]
pub struct Signer {
    /// A secret when it holds a session token.
    key_id: SecretString,
    session: bool,
    key: SigningKey<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key_id = if self.session {
            "ST$<redacted session token>"
        } else {
            self.key_id.expose_secret()
        };
        f.debug_struct("Signer")
            .field("key_id", &key_id)
            .finish_non_exhaustive()
    }
}

/// Reads a PEM private key: PKCS#1, PKCS#8, or encrypted PKCS#8 with `passphrase`.
/// Text after the END line (such as the `OCI_API_KEY` label) is ignored.
pub fn parse_private_key(
    pem: &SecretString,
    passphrase: Option<&SecretString>,
) -> Result<RsaPrivateKey, Error> {
    let text = pem.expose_secret();
    let block = |label: &str| -> Option<String> {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let start = text.find(&begin)?;
        let stop = text[start..].find(&end)? + start + end.len();
        Some(text[start..stop].to_owned())
    };
    if let Some(pem) = block("RSA PRIVATE KEY") {
        if pem.contains("ENCRYPTED") {
            return Err(Error::Key(
                "is a legacy encrypted PKCS#1 key, which is not supported; convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`".into(),
            ));
        }
        return RsaPrivateKey::from_pkcs1_pem(&pem)
            .map_err(|e| Error::Key(format!("is not a valid PKCS#1 RSA key: {e}")));
    }
    if let Some(pem) = block("ENCRYPTED PRIVATE KEY") {
        let pass = passphrase.ok_or_else(|| {
            Error::Key(
                "is encrypted and no passphrase (private_key_password, pass_phrase) was given"
                    .into(),
            )
        })?;
        return RsaPrivateKey::from_pkcs8_encrypted_pem(&pem, pass.expose_secret().as_bytes())
            .map_err(|_| {
                Error::Key("could not be decrypted: wrong passphrase or not an RSA key".into())
            });
    }
    if let Some(pem) = block("PRIVATE KEY") {
        return RsaPrivateKey::from_pkcs8_pem(&pem)
            .map_err(|e| Error::Key(format!("is not a valid PKCS#8 RSA key: {e}")));
    }
    Err(Error::Key("is not a PEM private key (expected BEGIN RSA PRIVATE KEY, PRIVATE KEY or ENCRYPTED PRIVATE KEY)".into()))
}

/// The OCI fingerprint of a key: MD5 of the DER public key, as colon-separated lower-case hex.
pub fn fingerprint(key: &RsaPrivateKey) -> String {
    let der = key
        .to_public_key()
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    Md5::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `Mon, 23 Nov 2026 05:05:25 GMT`.
pub fn http_date(at: OffsetDateTime) -> String {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// The headers to add to a request, `authorization` last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub headers: Vec<(&'static str, String)>,
    /// What was signed; not secret.
    pub signing_string: String,
}

impl Signer {
    pub fn new(tenancy: &str, user: &str, fingerprint: &str, key: RsaPrivateKey) -> Signer {
        Signer {
            key_id: SecretString::from(format!("{tenancy}/{user}/{fingerprint}")),
            session: false,
            key: SigningKey::new(key),
        }
    }

    /// Signs as the session `token` (as `oci session authenticate` obtains one) with its
    /// session key: key id `ST$<token>`.
    pub fn session(token: &SecretString, key: RsaPrivateKey) -> Signer {
        Signer {
            key_id: SecretString::from(format!("ST${}", token.expose_secret())),
            session: true,
            key: SigningKey::new(key),
        }
    }

    /// The key id; it holds the session token when signing as a session.
    pub fn key_id(&self) -> &str {
        self.key_id.expose_secret()
    }

    /// `true` when signing as a session.
    pub fn is_session(&self) -> bool {
        self.session
    }

    /// Signs a request. `host` includes `:port` when the URL names one; `target` is the path
    /// and query exactly as they will be sent.
    pub fn sign(
        &self,
        method: &str,
        host: &str,
        target: &str,
        body: Option<&[u8]>,
        date: OffsetDateTime,
    ) -> Signed {
        self.sign_with_date_header(method, host, target, body, &http_date(date))
    }

    /// Signs with a `date` header given as text, exactly as it will be sent.
    pub fn sign_with_date_header(
        &self,
        method: &str,
        host: &str,
        target: &str,
        body: Option<&[u8]>,
        date: &str,
    ) -> Signed {
        let mut headers: Vec<(&'static str, String)> = vec![("date", date.to_owned())];
        let mut lines = vec![
            format!("date: {}", headers[0].1),
            format!("(request-target): {} {target}", method.to_ascii_lowercase()),
            format!("host: {host}"),
        ];
        let mut names = String::from("date (request-target) host");
        if matches!(
            method.to_ascii_uppercase().as_str(),
            "POST" | "PUT" | "PATCH"
        ) {
            let body = body.unwrap_or_default();
            let hash = STANDARD.encode(Sha256::digest(body));
            for (name, value) in [
                ("content-length", body.len().to_string()),
                ("content-type", "application/json".to_owned()),
                ("x-content-sha256", hash),
            ] {
                lines.push(format!("{name}: {value}"));
                names.push(' ');
                names.push_str(name);
                headers.push((name, value));
            }
        }
        let signing_string = lines.join("\n");
        let signature = self.key.sign(signing_string.as_bytes());
        headers.push((
            "authorization",
            format!(
                "Signature version=\"1\",headers=\"{names}\",keyId=\"{}\",algorithm=\"rsa-sha256\",signature=\"{}\"",
                self.key_id.expose_secret(),
                STANDARD.encode(signature.to_bytes())
            ),
        ));
        Signed {
            headers,
            signing_string,
        }
    }
}
