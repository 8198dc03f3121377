//! The scenario format (documented in `fixtures/conformance/README.md`): a Terraform root
//! module in Terraform's JSON syntax, the fake it runs against, and the steps to take.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(skip)]
    pub name: String,
    pub description: String,
    /// `lxd` or `oci`: which provider, and which fake.
    pub provider: Which,
    #[serde(default)]
    pub fake: FakeSettings,
    /// The root module, in Terraform's JSON configuration syntax, without a `provider` block
    /// (the kit writes one that points at the fake).
    pub config: serde_json::Value,
    /// A directory of `fixtures/scenarios/` whose HCL is the same module as `config`: the CLI
    /// frontend runs the HCL instead, so the HCL scenarios are held to the same transcript.
    #[serde(default)]
    pub hcl: Option<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Which {
    Lxd,
    Oci,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeSettings {
    /// fake-lxd's profile: `"5.0"` (the default), `"6"` or `"incus-6.0"`.
    pub profile: Option<String>,
    /// The seed of the fake's random numbers (default 0).
    #[serde(default)]
    pub seed: u64,
    /// fake-oci: more users (OCIDs) that accept the test key.
    #[serde(default)]
    pub users: Vec<String>,
}

pub type Vars = BTreeMap<String, String>;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Plan and apply that plan (`terraform plan -out` then `terraform apply PLAN`).
    Apply(WithVars),
    /// Plan only.
    Plan(WithVars),
    /// `terraform apply -refresh-only`.
    Refresh(WithVars),
    /// `terraform import ADDRESS ID`; `id` may hold `{fake:/json/pointer}` placeholders that
    /// read the fake's state, and `{var:NAME}`.
    Import(Import),
    /// `terraform state rm ADDRESS`.
    StateRm(String),
    /// Plan destruction and apply it.
    Destroy(WithVars),
    /// Something happens on the server, outside Terraform.
    Event(Event),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithVars {
    /// Variables to set from this step on (they stay set for later steps).
    #[serde(default)]
    pub vars: Vars,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Import {
    pub address: String,
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// fake-lxd: a client joins with the N-th pending token (0 = oldest).
    Consume(usize),
    /// fake-lxd: the server clock moves on by this many seconds (expiry, sweeps).
    AdvanceSeconds(u64),
    /// fake-lxd: the daemon restarts (pending tokens are lost).
    Restart,
    /// fake-lxd: `lxc config set KEY VALUE` on the server (e.g. `core.remote_token_expiry`).
    SetConfig { key: String, value: String },
}

impl Step {
    pub fn vars(&self) -> Option<&Vars> {
        match self {
            Step::Apply(w) | Step::Plan(w) | Step::Refresh(w) | Step::Destroy(w) => Some(&w.vars),
            _ => None,
        }
    }

    pub fn label(&self) -> String {
        match self {
            Step::Apply(_) => "apply".into(),
            Step::Plan(_) => "plan".into(),
            Step::Refresh(_) => "refresh".into(),
            Step::Import(i) => format!("import {}", i.address),
            Step::StateRm(a) => format!("state rm {a}"),
            Step::Destroy(_) => "destroy".into(),
            Step::Event(e) => format!("event {e:?}"),
        }
    }
}

/// The directory of the scenarios.
pub fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/conformance")
}

/// Reads `fixtures/conformance/<name>.yaml`.
pub fn load(name: &str) -> Result<Scenario> {
    let path = dir().join(format!("{name}.yaml"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    // Through JSON values, so enums read as `{variant: value}` maps or plain strings.
    let value: serde_json::Value =
        serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut scenario: Scenario =
        serde_json::from_value(value).with_context(|| format!("reading {}", path.display()))?;
    scenario.name = name.to_owned();
    if scenario.config.get("provider").is_some() {
        bail!("{name}: the kit writes the provider block; leave it out");
    }
    Ok(scenario)
}

/// The names of every scenario file.
pub fn all() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".yaml"))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
