//! The fake a scenario runs against (a fresh one per frontend), the provider block that points
//! at it, the server-side events, and the normalisation that makes transcripts comparable
//! (and snapshots stable): generated certificates, ports and wall-clock times are replaced by
//! placeholders; everything the fake derives from its seed is kept.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;
use fake_lxd::{FakeLxd, Profile};
use fake_oci::{FakeOci, TEST_PUBLIC_KEY, TEST_TENANCY};
use serde_json::{Value as Json, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::scenario::{Event, Scenario, Which};

pub enum Fake {
    Lxd(FakeLxd),
    Oci(FakeOci),
}

pub struct World {
    pub fake: Fake,
    /// The provider block (Terraform JSON syntax) that points at the fake.
    pub provider_config: Json,
    /// Where the fake's clock started (LXD: times are written relative to it).
    start: OffsetDateTime,
    /// Holds the socket, the lxc configuration directory and the key file.
    pub dir: tempfile::TempDir,
}

impl World {
    pub async fn start(scenario: &Scenario) -> Result<World> {
        let dir = tempfile::tempdir()?;
        // The provider compares expiry with the wall clock, so the fake's manual clock starts
        // at the wall clock (the whole minute, as `expires_at` shows minutes) and then moves
        // only when a step says so.
        let start = OffsetDateTime::now_utc()
            .replace_nanosecond(0)?
            .replace_second(0)?;
        match scenario.provider {
            Which::Lxd => {
                let name = scenario.fake.profile.as_deref().unwrap_or("5.0");
                let Some(profile) = Profile::from_name(name) else {
                    bail!("unknown fake-lxd profile {name:?}");
                };
                let socket = dir.path().join("unix.socket");
                let fake = FakeLxd::start(fake_lxd::Config {
                    profile,
                    seed: scenario.fake.seed,
                    clock: fake_lxd::ClockMode::Manual(start),
                    unix_socket: Some(socket.clone()),
                    ..fake_lxd::Config::for_testing()
                })
                .await?;
                let config_dir = dir.path().join("lxc-config");
                let provider_config = json!({
                    "config_dir": config_dir.display().to_string(),
                    "remote": [{
                        "name": "fake",
                        "address": format!("unix://{}", socket.display()),
                        "default": true,
                    }],
                });
                Ok(World {
                    fake: Fake::Lxd(fake),
                    provider_config,
                    start,
                    dir,
                })
            }
            Which::Oci => {
                // Requests are signed with the wall clock, so the fake follows it.
                let fake = FakeOci::start(fake_oci::Config {
                    seed: scenario.fake.seed,
                    clock: fake_oci::ClockMode::System,
                    ..fake_oci::Config::for_testing()
                })
                .await?;
                for user in &scenario.fake.users {
                    fake.control()
                        .add_user(TEST_TENANCY, user, TEST_PUBLIC_KEY)
                        .map_err(|e| anyhow::anyhow!("adding user {user}: {e}"))?;
                }
                let id = fake.test_identity();
                let key = dir.path().join("key.pem");
                std::fs::write(&key, &id.private_key_pem)?;
                let provider_config = json!({
                    "tenancy_ocid": id.tenancy,
                    "user_ocid": id.user,
                    "fingerprint": id.fingerprint,
                    "private_key_path": key.display().to_string(),
                    "region": "us-ashburn-1",
                    "endpoint": fake.endpoint(),
                });
                Ok(World {
                    fake: Fake::Oci(fake),
                    provider_config,
                    start,
                    dir,
                })
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The fake's state once every request in flight has finished.
    pub async fn state(&self) -> Json {
        match &self.fake {
            Fake::Lxd(f) => {
                f.control().idle().await;
                f.control().state()
            }
            Fake::Oci(f) => {
                f.control().idle().await;
                f.control().state()
            }
        }
    }

    pub async fn event(&self, event: &Event) -> Result<Json> {
        let Fake::Lxd(fake) = &self.fake else {
            bail!("event {event:?} needs fake-lxd");
        };
        let control = fake.control();
        control.idle().await;
        Ok(match event {
            Event::Consume(n) => {
                let pending = control.pending_tokens();
                let Some((_, token)) = pending.get(*n) else {
                    bail!(
                        "there is no pending token #{n} (there are {})",
                        pending.len()
                    );
                };
                let (status, error, _) = control.consume(token, None);
                json!({"status": status, "error": error})
            }
            Event::AdvanceSeconds(s) => {
                control.advance(std::time::Duration::from_secs(*s));
                Json::Null
            }
            Event::Restart => {
                control.restart();
                Json::Null
            }
            Event::SetConfig { key, value } => {
                control
                    .set_config(key, value)
                    .map_err(|e| anyhow::anyhow!("setting {key}: {e}"))?;
                Json::Null
            }
        })
    }

    /// Expands `{fake:/json/pointer}` (into the fake's state) and `{var:NAME}` in `text`.
    pub async fn expand(&self, text: &str, vars: &crate::scenario::Vars) -> Result<String> {
        let state = self.state().await;
        let mut out = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                bail!("unclosed placeholder in {text:?}");
            };
            let inner = &rest[open + 1..open + close];
            let value = if let Some(pointer) = inner.strip_prefix("fake:") {
                state
                    .pointer(pointer)
                    .and_then(Json::as_str)
                    .with_context(|| format!("the fake's state has no string at {pointer}"))?
                    .to_owned()
            } else if let Some(name) = inner.strip_prefix("var:") {
                vars.get(name)
                    .cloned()
                    .with_context(|| format!("variable {name} is not set"))?
            } else {
                bail!("unknown placeholder {{{inner}}} in {text:?}");
            };
            out.push_str(&value);
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// `value` with everything that differs between two runs of one scenario replaced.
    pub fn normalise(&self, value: &Json) -> Json {
        let mut subs: Vec<(String, String)> = Vec::new();
        match &self.fake {
            Fake::Lxd(f) => {
                subs.push((
                    f.server_fingerprint().to_owned(),
                    "<server-fingerprint>".into(),
                ));
                subs.push((f.https_addr().to_string(), "<https-address>".into()));
                subs.push((self.path().display().to_string(), "<dir>".into()));
            }
            Fake::Oci(f) => {
                subs.push((f.endpoint(), "<endpoint>".into()));
                subs.push((self.path().display().to_string(), "<dir>".into()));
            }
        }
        self.walk(value, &subs)
    }

    fn walk(&self, value: &Json, subs: &[(String, String)]) -> Json {
        match value {
            Json::String(s) => self.string(s, subs),
            Json::Array(items) => Json::Array(items.iter().map(|v| self.walk(v, subs)).collect()),
            Json::Object(map) => {
                // Sorted keys, so that snapshots do not depend on insertion order.
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Json::Object(
                    keys.into_iter()
                        .map(|k| {
                            let v = self.walk(&map[k], subs);
                            // A certificate generated during the run (a joining client's).
                            let generated = (k == "fingerprint" || k == "consumed_by")
                                && v.as_str().is_some_and(|s| !s.starts_with('<'));
                            (
                                k.clone(),
                                if generated {
                                    json!("<client-fingerprint>")
                                } else {
                                    v
                                },
                            )
                        })
                        .collect(),
                )
            }
            other => other.clone(),
        }
    }

    fn string(&self, s: &str, subs: &[(String, String)]) -> Json {
        if s.starts_with("-----BEGIN ") {
            return json!("<pem>");
        }
        if let Some(token) = lxd_token(s) {
            return json!({"lxd-token": self.walk(&token, subs)});
        }
        if let Ok(at) = OffsetDateTime::parse(s, &Rfc3339) {
            if at.year() < 2000 {
                return json!(s);
            }
            return match self.fake {
                Fake::Lxd(_) => json!(format!("<start{:+}s>", (at - self.start).whole_seconds())),
                Fake::Oci(_) => json!("<time>"),
            };
        }
        if let Some(at) = minutes_time(s) {
            return json!(format!("<start{:+}s>", (at - self.start).whole_seconds()));
        }
        let mut out = s.to_owned();
        for (from, to) in subs {
            out = out.replace(from, to);
        }
        json!(out)
    }
}

/// The secrets in a fake's (raw) state: LXD token secrets and token strings, OCI token
/// secrets.
pub fn secrets(state: &Json, out: &mut std::collections::BTreeSet<String>) {
    for op in state["operations"].as_array().into_iter().flatten() {
        for s in [&op["metadata"]["secret"], &op["token"]] {
            if let Some(s) = s.as_str().filter(|s| !s.is_empty()) {
                out.insert(s.to_owned());
            }
        }
    }
    for token in state["tokens"].as_array().into_iter().flatten() {
        if let Some(s) = token["secret"].as_str().filter(|s| !s.is_empty()) {
            out.insert(s.to_owned());
        }
    }
}

/// `YYYY/MM/DD hh:mm UTC`, the seed's form of `expires_at`.
fn minutes_time(s: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!("[year]/[month]/[day] [hour]:[minute] UTC");
    time::PrimitiveDateTime::parse(s, format)
        .ok()
        .map(|t| t.assume_utc())
}

/// An LXD trust token (base64 of a JSON object with a secret), decoded.
fn lxd_token(s: &str) -> Option<Json> {
    if s.len() < 40 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    let value: Json = serde_json::from_slice(&bytes).ok()?;
    value.get("secret")?;
    Some(value)
}

/// The provider binaries to test: built with this crate, or those in `CONFORMANCE_PROVIDER_DIR`
/// (another build of the providers).
pub fn provider_binary(which: Which) -> PathBuf {
    let own = match which {
        Which::Lxd => env!("CARGO_BIN_EXE_terraform-provider-lxd"),
        Which::Oci => env!("CARGO_BIN_EXE_terraform-provider-oci"),
    };
    match std::env::var_os("CONFORMANCE_PROVIDER_DIR") {
        Some(dir) => PathBuf::from(dir).join(
            Path::new(own)
                .file_name()
                .expect("a binary path has a file name"),
        ),
        None => PathBuf::from(own),
    }
}
