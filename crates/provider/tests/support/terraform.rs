//! Running real Terraform offline against our provider binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An external tool from `cargo xtask test`, or `None` (with a note) when run another way.
pub fn tool(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("XTASK_REQUIRE_TOOLS").is_some() => {
            panic!("{var} not set (run through cargo xtask test)")
        }
        None => {
            eprintln!("skipped: {var} not set (run through cargo xtask test)");
            None
        }
    }
}

/// The Terraform binaries to run: the one on PATH (1.11) and 1.0.3.
pub fn terraforms() -> Vec<PathBuf> {
    ["XTASK_TERRAFORM", "XTASK_TERRAFORM_1_0"]
        .iter()
        .filter_map(|v| tool(v))
        .collect()
}

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(path)
}

/// A Terraform CLI configuration that takes our providers from `bin_dir` (`dev_overrides`:
/// no registry, no `terraform init`).
pub fn cli_config(bin_dir: &Path) -> String {
    format!(
        "provider_installation {{\n  dev_overrides {{\n    \"hashicorp/lxd\" = \"{0}\"\n    \"hashicorp/oci\" = \"{0}\"\n  }}\n  direct {{}}\n}}\n",
        bin_dir.display()
    )
}

/// A working directory with a copy of a scenario, a CLI config that points Terraform at our
/// binaries (`dev_overrides`, no registry, no `terraform init`), and the environment.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub terraform: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Workspace {
    pub fn new(terraform: &Path, scenario: &str, provider_binary: &Path) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(fixture(&format!("scenarios/{scenario}"))).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        let rc = dir.path().join("test.tfrc");
        std::fs::write(&rc, cli_config(provider_binary.parent().unwrap())).unwrap();
        let env = vec![
            ("TF_CLI_CONFIG_FILE".to_owned(), rc.display().to_string()),
            ("CHECKPOINT_DISABLE".to_owned(), "1".to_owned()),
            ("TF_IN_AUTOMATION".to_owned(), "1".to_owned()),
        ];
        Workspace {
            dir,
            terraform: terraform.to_owned(),
            env,
        }
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.into()));
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.terraform);
        cmd.arg(format!("-chdir={}", self.dir.path().display()))
            .args(args)
            .arg("-no-color")
            .env_remove("TF_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "terraform {args:?} failed ({})\nstdout:\n{stdout}\nstderr:\n{}",
            self.terraform.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// `terraform plan -detailed-exitcode`: 0 when empty, 2 when there are changes.
    pub fn plan_code(&self, extra: &[&str]) -> (i32, String) {
        let mut args = vec!["plan", "-detailed-exitcode", "-input=false"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    pub fn output(&self, name: &str) -> serde_json::Value {
        let text = self.ok(&["output", "-json"]);
        let all: serde_json::Value = serde_json::from_str(&text).unwrap();
        all[name]["value"].clone()
    }

    pub fn state(&self) -> serde_json::Value {
        let text = self.ok(&["show", "-json"]);
        serde_json::from_str(&text).unwrap()
    }

    /// The attribute values of the resource or data source at `address` in the state.
    pub fn attrs(&self, address: &str) -> serde_json::Value {
        let state = self.state();
        state["values"]["root_module"]["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["address"] == address))
            .map(|r| r["values"].clone())
            .unwrap_or(serde_json::Value::Null)
    }
}

/// The OCI config file of the fake's test identity, in `dir`.
pub fn write_oci_config(fake: &fake_oci::FakeOci, dir: &Path) -> PathBuf {
    let id = fake.test_identity();
    let key = dir.join("key.pem");
    std::fs::write(&key, &id.private_key_pem).unwrap();
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[DEFAULT]\nuser={}\nfingerprint={}\nkey_file={}\ntenancy={}\nregion=us-ashburn-1\n",
            id.user,
            id.fingerprint,
            key.display(),
            id.tenancy
        ),
    )
    .unwrap();
    config
}
