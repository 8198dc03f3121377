//! The trust token string, exactly as `lxc config trust add` prints it: standard padded base64
//! of compact JSON. Newer servers (those with `access_management_tls`) add `"type":""`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::zeroize::Zeroizing;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Error;
use crate::secret::{ExposeSecret, SecretString};

/// The decoded contents of a token.
#[derive(Clone)]
pub struct TokenData {
    pub client_name: String,
    pub fingerprint: String,
    pub addresses: Vec<String>,
    pub secret: SecretString,
    pub expires_at: Option<OffsetDateTime>,
}

/// `secrecy` leaves equality out on purpose; tests compare decoded tokens, so it is spelled
/// out here (never in a `Debug` or error path).
impl PartialEq for TokenData {
    fn eq(&self, other: &Self) -> bool {
        self.client_name == other.client_name
            && self.fingerprint == other.fingerprint
            && self.addresses == other.addresses
            && self.secret.expose_secret() == other.secret.expose_secret()
            && self.expires_at == other.expires_at
    }
}

impl Eq for TokenData {}

impl std::fmt::Debug for TokenData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenData")
            .field("client_name", &self.client_name)
            .field("fingerprint", &self.fingerprint)
            .field("addresses", &self.addresses)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The token JSON as it is written: borrowed, so the secret is not copied.
#[derive(Serialize)]
struct WireOut<'a> {
    client_name: &'a str,
    fingerprint: &'a str,
    addresses: &'a [String],
    secret: &'a str,
    expires_at: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
}

/// The token JSON as it is read.
#[derive(Deserialize)]
struct WireIn {
    client_name: String,
    fingerprint: String,
    addresses: Vec<String>,
    secret: SecretString,
    #[serde(default)]
    expires_at: Option<String>,
}

/// Go's zero time, which LXD writes for a token that does not expire.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn format_time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Builds the token string. `with_type` for servers of the identities generation.
pub fn encode(data: &TokenData, with_type: bool) -> SecretString {
    let wire = WireOut {
        client_name: &data.client_name,
        fingerprint: &data.fingerprint,
        addresses: &data.addresses,
        secret: data.secret.expose_secret(),
        expires_at: data
            .expires_at
            .map_or_else(|| ZERO_TIME.to_owned(), format_time),
        kind: with_type.then_some(""),
    };
    let json = Zeroizing::new(serde_json::to_vec(&wire).unwrap_or_default());
    SecretString::from(STANDARD.encode(&*json))
}

/// Decodes a token string, as strictly as the daemon does.
pub fn decode(token: &SecretString) -> Result<TokenData, Error> {
    let bytes = Zeroizing::new(
        STANDARD
            .decode(token.expose_secret().trim())
            .map_err(|_| Error::BadToken("it is not standard padded base64".into()))?,
    );
    let wire: WireIn = serde_json::from_slice(&bytes)
        .map_err(|_| Error::BadToken("its contents are not a token's JSON".into()))?;
    if wire.client_name.is_empty()
        || wire.fingerprint.is_empty()
        || wire.secret.expose_secret().is_empty()
        || wire.addresses.is_empty()
    {
        return Err(Error::BadToken(
            "it lacks a client name, fingerprint, secret or address".into(),
        ));
    }
    let expires_at = match wire.expires_at.as_deref() {
        None | Some(ZERO_TIME) | Some("") => None,
        Some(text) => Some(
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| Error::BadToken("its expiry is not an RFC 3339 time".into()))?,
        ),
    };
    Ok(TokenData {
        client_name: wire.client_name,
        fingerprint: wire.fingerprint,
        addresses: wire.addresses,
        secret: wire.secret,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token lacking any one of its required fields is refused, each on its own.
    #[test]
    fn a_token_missing_any_required_field_is_refused() {
        let fields = [
            ("client_name", "\"\""),
            ("fingerprint", "\"\""),
            ("secret", "\"\""),
            ("addresses", "[]"),
        ];
        for (empty, value) in fields {
            let mut parts = vec![
                "\"client_name\":\"t\"".to_owned(),
                "\"fingerprint\":\"dd90\"".to_owned(),
                "\"addresses\":[\"127.0.0.1:8443\"]".to_owned(),
                "\"secret\":\"1cf1\"".to_owned(),
            ];
            parts.retain(|p| !p.starts_with(&format!("\"{empty}\"")));
            parts.push(format!("\"{empty}\":{value}"));
            let json = format!("{{{}}}", parts.join(","));
            let token = SecretString::from(STANDARD.encode(json));
            let err = decode(&token).expect_err(empty);
            assert!(err.to_string().contains("lacks"), "{empty}: {err}");
        }
    }

    /// `Debug` names the token's public fields and never its secret.
    #[test]
    fn debug_shows_the_public_fields_and_not_the_secret() {
        let data = TokenData {
            client_name: "bench-client".into(),
            fingerprint: "dd90aa".into(),
            addresses: vec!["127.0.0.1:8443".into()],
            secret: SecretString::from("s3cr3t-value"),
            expires_at: None,
        };
        let text = format!("{data:?}");
        assert!(
            text.contains("bench-client") && text.contains("dd90aa"),
            "{text}"
        );
        assert!(text.contains("127.0.0.1:8443"), "{text}");
        assert!(!text.contains("s3cr3t-value"), "{text}");
    }

    /// Equality is what the round-trip tests rely on: a token that differs in any one field,
    /// the secret included, is a different token.
    #[test]
    fn tokens_differing_in_one_field_are_unequal() {
        let base = TokenData {
            client_name: "t".into(),
            fingerprint: "dd90".into(),
            addresses: vec!["127.0.0.1:8443".into()],
            secret: SecretString::from("1cf1"),
            expires_at: None,
        };
        assert_eq!(base, base.clone());
        let changes: [fn(&mut TokenData); 5] = [
            |t| t.client_name = "u".into(),
            |t| t.fingerprint = "ee01".into(),
            |t| t.addresses.push("10.0.0.1:8443".into()),
            |t| t.secret = SecretString::from("2ab2"),
            |t| t.expires_at = Some(OffsetDateTime::UNIX_EPOCH),
        ];
        for (n, change) in changes.iter().enumerate() {
            let mut other = base.clone();
            change(&mut other);
            assert_ne!(base, other, "change {n}");
        }
    }

    #[test]
    fn round_trip_and_exact_layout() {
        let data = TokenData {
            client_name: "t-10s".into(),
            fingerprint: "dd90".into(),
            addresses: vec!["127.0.0.1:18443".into()],
            secret: SecretString::from("1cf1"),
            expires_at: None,
        };
        let token = encode(&data, false);
        let json = String::from_utf8(STANDARD.decode(token.expose_secret()).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"client_name":"t-10s","fingerprint":"dd90","addresses":["127.0.0.1:18443"],"secret":"1cf1","expires_at":"0001-01-01T00:00:00Z"}"#
        );
        assert_eq!(decode(&token).unwrap(), data);
        let typed = String::from_utf8(
            STANDARD
                .decode(encode(&data, true).expose_secret())
                .unwrap(),
        )
        .unwrap();
        assert!(typed.ends_with(r#","type":""}"#));
        assert!(
            decode(&SecretString::from(
                token.expose_secret().trim_end_matches('=')
            ))
            .is_err()
                || !token.expose_secret().ends_with('=')
        );
        assert!(format!("{data:?}").find("1cf1").is_none());
    }
}
