//! What `GET /1.0` says about the server, and the server generation it shows.
//!
//! Before trust a server shows only its API extensions (and Incus 7 not even those); after
//! trust it also names itself in `environment.server` (`lxd`, `incus`). The generation is read
//! from both, so that it is as precise as what the server shows.

/// What `GET /1.0` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    pub trusted: bool,
    pub api_extensions: Vec<String>,
    /// `environment.server`: `lxd` or `incus`, shown to trusted clients only.
    pub server: Option<String>,
    pub server_version: Option<String>,
    pub certificate_fingerprint: Option<String>,
    pub remote_token_expiry: Option<String>,
}

/// The server generations that matter for trust tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// LXD 5.0, or a server that shows nothing that says otherwise (an untrusted client of
    /// Incus sees the same): tokens are redeemed through `password` on LXD 5.0 and through
    /// `trust_token` on Incus, so a token goes in both.
    Password,
    /// LXD 5.21.2+/6.x (`explicit_trust_token`): `trust_token`, `password` refused with 501,
    /// hourly expiry sweep, unique identity names from 5.21.5/6.6.
    TrustToken,
    /// Incus (`environment.server` is `incus`): `trust_token` only (`password` is ignored, so
    /// it fails with 403), no trust passwords, no name uniqueness, a sweep every minute.
    Incus,
}

/// The extension without which a server issues no trust tokens.
pub const TOKEN_EXTENSION: &str = "certificate_token";

impl ServerInfo {
    /// Reads the metadata of `GET /1.0`.
    pub fn from_metadata(meta: &serde_json::Value) -> ServerInfo {
        let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
        ServerInfo {
            trusted: meta["auth"] == "trusted",
            api_extensions: meta["api_extensions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            server: text(&meta["environment"]["server"]),
            server_version: text(&meta["environment"]["server_version"]),
            certificate_fingerprint: text(&meta["environment"]["certificate_fingerprint"]),
            remote_token_expiry: text(&meta["config"]["core.remote_token_expiry"]),
        }
    }

    fn has(&self, extension: &str) -> bool {
        self.api_extensions.iter().any(|e| e == extension)
    }

    pub fn generation(&self) -> Generation {
        if self.server.as_deref() == Some("incus") {
            Generation::Incus
        } else if self.has("explicit_trust_token") {
            Generation::TrustToken
        } else {
            Generation::Password
        }
    }

    /// Servers whose token JSON carries a `type` key.
    pub fn typed_tokens(&self) -> bool {
        self.generation() != Generation::Incus && self.has("access_management_tls")
    }

    /// Whether the server shows that it issues trust tokens: `false` only when it lists its
    /// extensions and `certificate_token` is not among them.
    pub fn issues_tokens(&self) -> bool {
        self.api_extensions.is_empty() || self.has(TOKEN_EXTENSION)
    }

    /// The server as users name it (`incus 6.0.4`, `lxd 5.0.2`), for messages.
    pub fn describe(&self) -> String {
        match (&self.server, &self.server_version) {
            (Some(server), Some(version)) => format!("{server} {version}"),
            (Some(server), None) => server.clone(),
            _ => "the server".to_owned(),
        }
    }

    /// The command line client of this server, for hints: `incus` or `lxc`.
    pub fn cli(&self) -> &'static str {
        if self.generation() == Generation::Incus {
            "incus"
        } else {
            "lxc"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(meta: serde_json::Value) -> ServerInfo {
        ServerInfo::from_metadata(&meta)
    }

    #[test]
    fn generations_from_what_the_server_shows() {
        let cases = [
            // LXD 5.0.2 and Incus 6.0, untrusted: neither shows more than its extensions.
            (
                json!({"auth": "untrusted", "api_extensions": ["certificate_token"]}),
                Generation::Password,
            ),
            (
                json!({"config": {}, "auth": "untrusted", "api_extensions": ["certificate_token"]}),
                Generation::Password,
            ),
            // Incus 7, untrusted: no extensions at all.
            (json!({"auth": "untrusted"}), Generation::Password),
            (
                json!({"auth": "untrusted", "api_extensions": ["certificate_token", "explicit_trust_token"]}),
                Generation::TrustToken,
            ),
            (
                json!({"auth": "trusted", "api_extensions": ["certificate_token"], "environment": {"server": "lxd", "server_version": "5.0.2"}}),
                Generation::Password,
            ),
            (
                json!({"auth": "trusted", "api_extensions": ["certificate_token"], "environment": {"server": "incus", "server_version": "6.0.4"}}),
                Generation::Incus,
            ),
            // Incus never has the extension; if one did, the name still wins.
            (
                json!({"auth": "trusted", "api_extensions": ["explicit_trust_token", "access_management_tls"], "environment": {"server": "incus"}}),
                Generation::Incus,
            ),
        ];
        for (meta, want) in cases {
            let got = info(meta.clone());
            assert_eq!(got.generation(), want, "{meta}");
        }
    }

    #[test]
    fn typed_tokens_issuing_and_names() {
        let lxd6 = info(
            json!({"auth": "trusted", "api_extensions": ["certificate_token", "explicit_trust_token", "access_management_tls"], "environment": {"server": "lxd", "server_version": "6.7"}}),
        );
        assert!(lxd6.typed_tokens() && lxd6.issues_tokens());
        assert_eq!((lxd6.describe().as_str(), lxd6.cli()), ("lxd 6.7", "lxc"));
        let incus = info(
            json!({"auth": "trusted", "api_extensions": ["remote_token_expiry"], "environment": {"server": "incus", "server_version": "6.0.4"}}),
        );
        assert!(!incus.typed_tokens() && !incus.issues_tokens());
        assert_eq!(
            (incus.describe().as_str(), incus.cli()),
            ("incus 6.0.4", "incus")
        );
        let hidden = info(json!({"auth": "untrusted"}));
        assert!(hidden.issues_tokens());
        assert_eq!(hidden.describe(), "the server");
        let unversioned = info(json!({"auth": "trusted", "environment": {"server": "lxd"}}));
        assert_eq!(unversioned.describe(), "lxd");
    }
}
