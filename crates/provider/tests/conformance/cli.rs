//! The Terraform CLI frontend: a Terraform-compatible binary (Terraform, OpenTofu) runs the
//! scenario offline, with the provider binaries through `dev_overrides`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value as Json};

use crate::scenario::{Vars, Which};
use crate::wire::UNKNOWN;

pub struct Cli {
    binary: PathBuf,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    /// What each plan printed, with the strings it may show: the values already in state
    /// (Terraform renders the prior values of non-sensitive attributes and outputs it changes,
    /// and of objects that changed outside Terraform).
    plans: std::sync::Mutex<Vec<(String, Vec<String>)>>,
}

impl Cli {
    /// A working directory holding the module (`main.tf.json`, or the HCL files of `hcl`
    /// with the provider block beside them) and a CLI configuration that points the
    /// provider's address at `provider_binary`.
    pub fn new(
        binary: &Path,
        which: Which,
        module: &Json,
        provider_config: &Json,
        provider_binary: &Path,
        hcl: Option<&Path>,
    ) -> Result<Cli> {
        let dir = tempfile::tempdir()?;
        let name = match which {
            Which::Lxd => "lxd",
            Which::Oci => "oci",
        };
        let provider = serde_json::json!({ name: provider_config });
        match hcl {
            Some(hcl) => {
                for entry in
                    std::fs::read_dir(hcl).with_context(|| format!("reading {}", hcl.display()))?
                {
                    let entry = entry?;
                    std::fs::copy(entry.path(), dir.path().join(entry.file_name()))?;
                }
                std::fs::write(
                    dir.path().join("provider.tf.json"),
                    serde_json::to_string_pretty(&serde_json::json!({ "provider": provider }))?,
                )?;
            }
            None => {
                let mut root = module.clone();
                root.as_object_mut()
                    .context("a module is a JSON object")?
                    .insert("provider".into(), provider);
                std::fs::write(
                    dir.path().join("main.tf.json"),
                    serde_json::to_string_pretty(&root)?,
                )?;
            }
        }
        let plugins = provider_binary
            .parent()
            .context("the provider binary has a directory")?;
        let rc = dir.path().join("cli.tfrc");
        std::fs::write(&rc, crate::support::cli_config(plugins))?;
        let env = vec![
            ("TF_CLI_CONFIG_FILE".into(), rc.display().to_string()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("HOME".into(), dir.path().display().to_string()),
            // Every command logs at trace level; the kit greps the log for secrets.
            ("TF_LOG".into(), "trace".into()),
            (
                "TF_LOG_PATH".into(),
                dir.path().join("terraform.log").display().to_string(),
            ),
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
        ];
        Ok(Cli {
            binary: binary.to_owned(),
            dir,
            env,
            plans: Default::default(),
        })
    }

    /// Terraform's trace log of every command so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("terraform.log")).unwrap_or_default()
    }

    pub fn plan_outputs(&self) -> Vec<(String, Vec<String>)> {
        self.plans.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn run(&self, args: &[&str], vars: &Vars) -> Result<String> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg(format!("-chdir={}", self.dir.path().display()))
            .args(args)
            .env_clear();
        // Variables go through the environment, which every command reads (and an apply of a
        // saved plan ignores).
        for (k, v) in vars {
            cmd.env(format!("TF_VAR_{k}"), v);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "{} {args:?} failed ({}):\n{stdout}\n{}",
                self.binary.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stdout)
    }

    fn saved_plan(&self, vars: &Vars, destroy: bool) -> Result<Json> {
        let mut args = vec!["plan", "-input=false", "-no-color", "-out=tfplan"];
        if destroy {
            args.push("-destroy");
        }
        let state: Json = serde_json::from_str(&self.run(&["show", "-json"], vars)?)
            .context("terraform show -json")?;
        let mut in_state = Vec::new();
        strings(&state["values"], &mut in_state);
        let printed = self.run(&args, vars)?;
        let shown = self.run(&["show", "-json", "tfplan"], vars)?;
        let plan: Json = serde_json::from_str(&shown).context("terraform show -json")?;
        if let Ok(mut plans) = self.plans.lock() {
            plans.push((printed, in_state));
        }
        Ok(changes(&plan))
    }

    pub fn plan(&self, vars: &Vars) -> Result<Json> {
        self.saved_plan(vars, false)
    }

    pub fn apply(&self, vars: &Vars, destroy: bool) -> Result<Json> {
        let record = self.saved_plan(vars, destroy)?;
        self.run(&["apply", "-input=false", "-no-color", "tfplan"], vars)?;
        Ok(record)
    }

    pub fn refresh(&self, vars: &Vars) -> Result<()> {
        self.run(
            &[
                "apply",
                "-refresh-only",
                "-auto-approve",
                "-input=false",
                "-no-color",
            ],
            vars,
        )
        .map(|_| ())
    }

    pub fn import(&self, address: &str, id: &str, vars: &Vars) -> Result<()> {
        self.run(&["import", "-input=false", "-no-color", address, id], vars)
            .map(|_| ())
    }

    pub fn state_rm(&self, address: &str) -> Result<()> {
        self.run(&["state", "rm", address], &Vars::new())
            .map(|_| ())
    }

    pub fn outputs(&self) -> Result<Json> {
        let text = self.run(&["output", "-json"], &Vars::new())?;
        let all: Json = serde_json::from_str(&text).context("terraform output -json")?;
        Ok(Json::Object(
            all.as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v["value"].clone()))
                        .collect::<Map<_, _>>()
                })
                .unwrap_or_default(),
        ))
    }
}

/// The managed resources' changes of a `terraform show -json` plan, as the kit records them:
/// address, actions, before, and after with unknown values written as [`UNKNOWN`].
pub fn changes(plan: &Json) -> Json {
    let mut out = Vec::new();
    for rc in plan["resource_changes"].as_array().into_iter().flatten() {
        if rc["mode"] != "managed" || rc["change"]["actions"] == serde_json::json!(["no-op"]) {
            continue;
        }
        let change = &rc["change"];
        let mut after = change["after"].clone();
        mark_unknown(&mut after, &change["after_unknown"]);
        out.push(serde_json::json!({
            "address": rc["address"],
            "actions": change["actions"],
            "before": change["before"],
            "after": after,
        }));
    }
    out.sort_by(|a, b| a["address"].as_str().cmp(&b["address"].as_str()));
    Json::Array(out)
}

fn strings(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::String(s) => out.push(s.clone()),
        Json::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Json::Object(m) => m.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fn mark_unknown(value: &mut Json, unknown: &Json) {
    match unknown {
        Json::Bool(true) => *value = Json::String(UNKNOWN.to_owned()),
        Json::Object(m) => {
            if value.is_null() {
                // An object Terraform left out because all of it is unknown or absent.
                return;
            }
            for (k, u) in m {
                if let Some(obj) = value.as_object_mut() {
                    let slot = obj.entry(k.clone()).or_insert(Json::Null);
                    mark_unknown(slot, u);
                }
            }
        }
        Json::Array(items) => {
            if let Some(values) = value.as_array_mut() {
                for (v, u) in values.iter_mut().zip(items) {
                    mark_unknown(v, u);
                }
            }
        }
        _ => {}
    }
}
