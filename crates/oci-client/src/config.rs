//! Credentials the way OCI users have them: explicit settings, `OCI_*` environment variables
//! (as the Terraform provider reads them), then a profile of the OCI config file.
//!
//! Loading is a pure function of the settings, an environment lookup and a file reader, so it
//! is tested without touching the real environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rsa::RsaPrivateKey;

use crate::error::Error;
use crate::secret::{ExposeSecret, SecretString};
use crate::signer::{Signer, fingerprint, parse_private_key};

/// Settings as a user writes them (the provider's attributes). `None` means unset.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub auth: Option<String>,
    pub tenancy_ocid: Option<String>,
    pub user_ocid: Option<String>,
    pub fingerprint: Option<String>,
    pub private_key: Option<SecretString>,
    pub private_key_path: Option<String>,
    pub private_key_password: Option<SecretString>,
    pub region: Option<String>,
    pub config_file_profile: Option<String>,
    pub endpoint: Option<String>,
}

/// Where loading looks things up.
pub struct Environment<'a> {
    pub var: &'a dyn Fn(&str) -> Option<String>,
    pub read_file: &'a dyn Fn(&Path) -> std::io::Result<String>,
    pub home: Option<PathBuf>,
}

impl Environment<'_> {
    /// The process environment and file system.
    pub fn process() -> Environment<'static> {
        Environment {
            var: &|name| std::env::var(name).ok().filter(|v| !v.is_empty()),
            read_file: &|path| std::fs::read_to_string(path),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// A session of `oci session authenticate`: the token (a JWT) and what it says of itself.
pub struct Session {
    token: SecretString,
    /// The token's `exp` claim, if it has one.
    pub expires: Option<time::OffsetDateTime>,
    /// The config file profile it came from, for the message that says how to refresh it.
    pub profile: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("token", &"<redacted>")
            .field("expires", &self.expires)
            .field("profile", &self.profile)
            .finish()
    }
}

/// The claims of a session token this client reads.
#[derive(serde::Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
}

/// Reads the claims of a session token (a JWT: three base64url parts); the token itself never
/// appears in the error.
fn session_claims(token: &str, path: &Path) -> Result<Claims, Error> {
    use base64::Engine;
    let bad = || {
        Error::Config(format!(
            "the security token file {} does not hold a session token (a JWT, as `oci session authenticate` writes it)",
            path.display()
        ))
    };
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(bad());
    }
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|_| bad())?;
    serde_json::from_slice(&payload).map_err(|_| bad())
}

/// Everything needed to sign requests, with the region and an endpoint override if any.
pub struct Credentials {
    pub tenancy: String,
    pub user: String,
    pub fingerprint: String,
    key: RsaPrivateKey,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    /// Set for `auth = "SecurityToken"`: requests are signed as this session.
    pub session: Option<Session>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("tenancy", &self.tenancy)
            .field("user", &self.user)
            .field("fingerprint", &self.fingerprint)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn signer(&self) -> Signer {
        match &self.session {
            Some(session) => Signer::session(&session.token, self.key.clone()),
            None => Signer::new(
                &self.tenancy,
                &self.user,
                &self.fingerprint,
                self.key.clone(),
            ),
        }
    }
}

/// One profile of an OCI config file, with `DEFAULT` inherited.
type Profile = BTreeMap<String, String>;

/// Parses the INI-style OCI config file and returns `profile`, or `None` if it is absent.
pub fn parse_profile(text: &str, profile: &str) -> Option<Profile> {
    let mut sections: BTreeMap<String, Profile> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim().to_owned());
            sections.entry(name.trim().to_owned()).or_default();
            continue;
        }
        if let (Some(section), Some((key, value))) = (&current, line.split_once('=')) {
            sections
                .entry(section.clone())
                .or_default()
                .insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    let mut merged = sections.get("DEFAULT").cloned().unwrap_or_default();
    if profile != "DEFAULT" {
        merged.extend(sections.get(profile)?.clone());
    } else if !sections.contains_key("DEFAULT") {
        return None;
    }
    Some(merged)
}

fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ if path == "~" => home.map_or_else(|| PathBuf::from(path), Path::to_path_buf),
        _ => PathBuf::from(path),
    }
}

/// The `CLIENT_HOST_OVERRIDES` entry for the Identity client, as the Oracle provider reads it:
/// `oci_identity.IdentityClient=URL`, entries separated by `;`.
pub fn identity_override(value: &str) -> Option<String> {
    value.split(';').find_map(|entry| {
        let (client, url) = entry.split_once('=')?;
        (client.trim() == "oci_identity.IdentityClient").then(|| url.trim().to_owned())
    })
}

/// Resolves credentials: explicit settings win over `OCI_*`/`TF_VAR_*` variables, which win
/// over the config file profile.
pub fn resolve(settings: &Settings, env: &Environment<'_>) -> Result<Credentials, Error> {
    // The Oracle provider's order: `TF_VAR_<name>` first, then `OCI_<NAME>`.
    let var = |name: &str| -> Option<String> {
        (env.var)(&format!("TF_VAR_{name}"))
            .or_else(|| (env.var)(&format!("OCI_{}", name.to_ascii_uppercase())))
    };
    let pick = |explicit: &Option<String>, name: &str| explicit.clone().or_else(|| var(name));

    let auth = pick(&settings.auth, "auth").unwrap_or_else(|| "ApiKey".to_owned());
    let by_session = auth.eq_ignore_ascii_case("securitytoken");
    if !auth.eq_ignore_ascii_case("apikey") && !by_session {
        return Err(Error::Unsupported {
            setting: "auth",
            value: auth,
        });
    }

    let profile_name = pick(&settings.config_file_profile, "config_file_profile");
    let config_path = (env.var)("OCI_CONFIG_FILE")
        .map(|path| expand_home(&path, env.home.as_deref()))
        .or_else(|| env.home.as_ref().map(|h| h.join(".oci/config")));
    let profile: Profile = match &config_path {
        Some(path) => match (env.read_file)(path) {
            Ok(text) => {
                let name = profile_name.clone().unwrap_or_else(|| "DEFAULT".to_owned());
                match parse_profile(&text, &name) {
                    Some(profile) => profile,
                    None if profile_name.is_some() => {
                        return Err(Error::Config(format!(
                            "config_file_profile {name:?} is not in {}",
                            path.display()
                        )));
                    }
                    None => Profile::new(),
                }
            }
            Err(_) if profile_name.is_some() => {
                return Err(Error::Config(format!(
                    "config_file_profile is set but the config file {} cannot be read",
                    path.display()
                )));
            }
            Err(_) => Profile::new(),
        },
        None => Profile::new(),
    };
    let key_given = settings.private_key.is_some()
        || settings.private_key_path.is_some()
        || var("private_key").is_some()
        || var("private_key_path").is_some();
    let profile_shown = profile_name.clone().unwrap_or_else(|| "DEFAULT".to_owned());
    if !by_session && profile.contains_key("security_token_file") && !key_given {
        return Err(Error::Config(format!(
            "the config file profile {profile_shown:?} holds a session (security_token_file, as `oci session authenticate` writes it); set auth = \"SecurityToken\" to sign with it"
        )));
    }
    let from_file = |key: &str| profile.get(key).cloned();
    let session = if by_session {
        let path = from_file("security_token_file").ok_or_else(|| {
            Error::Config(format!(
                "auth = \"SecurityToken\" needs `security_token_file` in the config file profile {profile_shown:?} (run `oci session authenticate --profile-name {profile_shown}`)"
            ))
        })?;
        let path = expand_home(&path, env.home.as_deref());
        let text = (env.read_file)(&path).map_err(|e| {
            Error::Config(format!(
                "the security token file {} cannot be read: {e}",
                path.display()
            ))
        })?;
        let token = SecretString::from(text.trim().to_owned());
        let claims = session_claims(token.expose_secret(), &path)?;
        Some((token, claims))
    } else {
        None
    };

    let require = |value: Option<String>, setting: &str, file_key: &str| {
        value.ok_or_else(|| {
            Error::Config(format!(
                "{setting} is not set (nor OCI_{}, nor `{file_key}` in the config file profile)",
                setting.to_ascii_uppercase()
            ))
        })
    };
    let claimed = |pick: fn(&Claims) -> Option<String>| session.as_ref().and_then(|(_, c)| pick(c));
    let tenancy = require(
        pick(&settings.tenancy_ocid, "tenancy_ocid")
            .or_else(|| from_file("tenancy"))
            .or_else(|| claimed(|c| c.tenant.clone())),
        "tenancy_ocid",
        "tenancy",
    )?;
    // A session profile has no user: the session token names it.
    let user = require(
        pick(&settings.user_ocid, "user_ocid")
            .or_else(|| from_file("user"))
            .or_else(|| claimed(|c| c.sub.clone())),
        "user_ocid",
        "user",
    )?;
    let region = pick(&settings.region, "region").or_else(|| from_file("region"));
    let passphrase = settings
        .private_key_password
        .clone()
        .or_else(|| var("private_key_password").map(SecretString::from))
        .or_else(|| from_file("pass_phrase").map(SecretString::from));
    let pem = match settings
        .private_key
        .clone()
        .or_else(|| var("private_key").map(SecretString::from))
    {
        Some(pem) => pem,
        None => {
            let path = require(
                pick(&settings.private_key_path, "private_key_path")
                    .or_else(|| from_file("key_file")),
                "private_key_path",
                "key_file",
            )?;
            let path = expand_home(&path, env.home.as_deref());
            let text = (env.read_file)(&path)
                .map_err(|e| Error::Key(format!("file {} cannot be read: {e}", path.display())))?;
            SecretString::from(text)
        }
    };
    let key = parse_private_key(&pem, passphrase.as_ref())?;
    let actual = fingerprint(&key);
    // The service compares fingerprints in lower case; accept what a user pasted in upper case.
    // A session signs with the session key's token, not a fingerprint: the profile's
    // fingerprint (if any) is not checked.
    let fingerprint = if session.is_some() {
        actual.clone()
    } else {
        pick(&settings.fingerprint, "fingerprint")
            .or_else(|| from_file("fingerprint"))
            .map(|f| f.trim().to_ascii_lowercase())
            .unwrap_or_else(|| actual.clone())
    };
    if fingerprint != actual {
        return Err(Error::Config(format!(
            "fingerprint {fingerprint} does not match the private key, whose fingerprint is {actual}"
        )));
    }
    let endpoint = settings
        .endpoint
        .clone()
        .or_else(|| (env.var)("CLIENT_HOST_OVERRIDES").and_then(|v| identity_override(&v)));
    Ok(Credentials {
        tenancy,
        user,
        fingerprint,
        key,
        region,
        endpoint,
        session: session.map(|(token, claims)| Session {
            token,
            expires: claims
                .exp
                .and_then(|exp| time::OffsetDateTime::from_unix_timestamp(exp).ok()),
            profile: profile_shown,
        }),
    })
}
