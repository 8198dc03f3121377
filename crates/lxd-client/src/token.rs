//! The trust token string, exactly as `lxc config trust add` prints it: standard padded base64
//! of compact JSON. Newer servers (those with `access_management_tls`) add `"type":""`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Error;
use crate::secret::Secret;

/// The decoded contents of a token.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenData {
    pub client_name: String,
    pub fingerprint: String,
    pub addresses: Vec<String>,
    pub secret: Secret,
    pub expires_at: Option<OffsetDateTime>,
}

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

#[derive(Serialize, Deserialize)]
struct Wire {
    client_name: String,
    fingerprint: String,
    addresses: Vec<String>,
    secret: String,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
}

/// Go's zero time, which LXD writes for a token that does not expire.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn format_time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Builds the token string. `with_type` for servers of the identities generation.
pub fn encode(data: &TokenData, with_type: bool) -> Secret {
    let wire = Wire {
        client_name: data.client_name.clone(),
        fingerprint: data.fingerprint.clone(),
        addresses: data.addresses.clone(),
        secret: data.secret.expose().to_owned(),
        expires_at: Some(
            data.expires_at
                .map_or_else(|| ZERO_TIME.to_owned(), format_time),
        ),
        kind: with_type.then(String::new),
    };
    Secret::new(STANDARD.encode(serde_json::to_vec(&wire).unwrap_or_default()))
}

/// Decodes a token string, as strictly as the daemon does.
pub fn decode(token: &Secret) -> Result<TokenData, Error> {
    let bytes = STANDARD
        .decode(token.expose().trim())
        .map_err(|_| Error::BadToken("it is not standard padded base64".into()))?;
    let wire: Wire = serde_json::from_slice(&bytes)
        .map_err(|_| Error::BadToken("its contents are not a token's JSON".into()))?;
    if wire.client_name.is_empty()
        || wire.fingerprint.is_empty()
        || wire.secret.is_empty()
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
        secret: Secret::new(wire.secret),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_exact_layout() {
        let data = TokenData {
            client_name: "t-10s".into(),
            fingerprint: "dd90".into(),
            addresses: vec!["127.0.0.1:18443".into()],
            secret: Secret::new("1cf1"),
            expires_at: None,
        };
        let token = encode(&data, false);
        let json = String::from_utf8(STANDARD.decode(token.expose()).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"client_name":"t-10s","fingerprint":"dd90","addresses":["127.0.0.1:18443"],"secret":"1cf1","expires_at":"0001-01-01T00:00:00Z"}"#
        );
        assert_eq!(decode(&token).unwrap(), data);
        let typed =
            String::from_utf8(STANDARD.decode(encode(&data, true).expose()).unwrap()).unwrap();
        assert!(typed.ends_with(r#","type":""}"#));
        assert!(
            decode(&Secret::new(token.expose().trim_end_matches('='))).is_err()
                || !token.expose().ends_with('=')
        );
        assert!(format!("{data:?}").find("1cf1").is_none());
    }
}
