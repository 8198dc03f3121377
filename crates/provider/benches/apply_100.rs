//! `terraform apply` of 100 `lxd_trust_token` against an in-process fake-lxd, beside
//! `terraform apply` of 100 built-in `terraform_data`: the floor Terraform itself sets.
//!
//! Each iteration applies into a fresh state (the state file is removed and the fake reset
//! first, outside the measurement), with Terraform's default parallelism (10). Only the apply
//! is measured: Terraform's start, the provider's start and handshake, plan and apply.
//! The same with one resource each shows what a plugin costs Terraform before any resource
//! (`cargo xtask bench` prints the cost of the other 99 side by side too).
//! Terraform comes from `XTASK_TERRAFORM`; the provider is this build's binary (release under
//! `cargo bench`), found through `dev_overrides` as in the end-to-end tests.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use fake_lxd::{ClockMode, Config, FakeLxd};

const RESOURCES: usize = 100;

fn provider_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_terraform-provider-lxd"))
}

/// A Terraform working directory with one configuration and the environment to run it.
struct Workspace {
    dir: tempfile::TempDir,
    terraform: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Workspace {
    fn new(terraform: &Path, main_tf: &str, lxd_dir: &Path) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("main.tf"), main_tf).expect("main.tf");
        let rc = dir.path().join("bench.tfrc");
        let bin_dir = provider_binary().parent().expect("the binary's directory");
        std::fs::write(&rc, support::cli_config(bin_dir)).expect("CLI config");
        let lxc_conf = dir.path().join("lxc-config");
        // Both sides get the same environment, though only the provider reads the LXD part.
        let env = vec![
            ("TF_CLI_CONFIG_FILE", rc.display().to_string()),
            ("CHECKPOINT_DISABLE", "1".to_owned()),
            ("TF_IN_AUTOMATION", "1".to_owned()),
            ("LXD_DIR", lxd_dir.display().to_string()),
            ("LXD_CONF", lxc_conf.display().to_string()),
        ];
        Workspace {
            dir,
            terraform: terraform.to_owned(),
            env,
        }
    }

    /// Forgets the previous apply: the next one starts from an empty state.
    fn fresh_state(&self) {
        for name in ["terraform.tfstate", "terraform.tfstate.backup"] {
            let _ = std::fs::remove_file(self.dir.path().join(name));
        }
    }

    fn apply(&self) {
        let mut cmd = Command::new(&self.terraform);
        cmd.arg(format!("-chdir={}", self.dir.path().display()))
            .args(["apply", "-auto-approve", "-input=false", "-no-color"])
            .env_remove("TF_LOG");
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        let out = cmd.output().expect("run terraform");
        assert!(
            out.status.success(),
            "terraform apply failed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// How many resource instances the state holds.
    fn instances(&self) -> usize {
        let text = std::fs::read_to_string(self.dir.path().join("terraform.tfstate"))
            .expect("a state file after apply");
        let state: serde_json::Value = serde_json::from_str(&text).expect("state JSON");
        state["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["instances"].as_array())
            .map(Vec::len)
            .sum()
    }
}

fn main_tf(kind: &str, count: usize) -> String {
    match kind {
        "lxd_trust_token" => format!(
            "resource \"lxd_trust_token\" \"t\" {{\n  count = {count}\n  name  = \"bench-${{count.index}}\"\n}}\n"
        ),
        _ => format!(
            "resource \"terraform_data\" \"t\" {{\n  count = {count}\n  input = \"bench-${{count.index}}\"\n}}\n"
        ),
    }
}

/// The fake and the two workspaces, made on first use (never while criterion only lists).
struct Setup {
    fake: FakeLxd,
    _lxd_dir: tempfile::TempDir,
    lxd: Workspace,
    floor: Workspace,
    /// One resource each: what a plugin costs Terraform before any resource.
    lxd_one: Workspace,
    floor_one: Workspace,
}

impl Setup {
    fn start(rt: &tokio::runtime::Runtime, terraform: &Path) -> Setup {
        let lxd_dir = tempfile::tempdir().expect("temp dir");
        let fake = rt
            .block_on(FakeLxd::start(Config {
                clock: ClockMode::System,
                unix_socket: Some(lxd_dir.path().join("unix.socket")),
                ..Config::for_testing()
            }))
            .expect("start the fake");
        let workspace =
            |kind, count| Workspace::new(terraform, &main_tf(kind, count), lxd_dir.path());
        Setup {
            lxd: workspace("lxd_trust_token", RESOURCES),
            floor: workspace("terraform_data", RESOURCES),
            lxd_one: workspace("lxd_trust_token", 1),
            floor_one: workspace("terraform_data", 1),
            fake,
            _lxd_dir: lxd_dir,
        }
    }
}

fn benches(c: &mut Criterion) {
    let Some(terraform) = support::tool("XTASK_TERRAFORM") else {
        return;
    };
    // The fake serves from the runtime's threads while Terraform runs as a child process.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut setup: Option<Setup> = None;
    for (group_name, count) in [("apply_100", RESOURCES), ("apply_1", 1)] {
        let mut group = c.benchmark_group(group_name);
        group.sampling_mode(SamplingMode::Flat);
        group.bench_function("terraform_data", |b| {
            let s = setup.get_or_insert_with(|| Setup::start(&rt, &terraform));
            let ws = if count == 1 { &s.floor_one } else { &s.floor };
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    ws.fresh_state();
                    let started = Instant::now();
                    ws.apply();
                    total += started.elapsed();
                    assert_eq!(ws.instances(), count);
                }
                total
            });
        });
        group.bench_function("lxd_trust_token", |b| {
            let s = setup.get_or_insert_with(|| Setup::start(&rt, &terraform));
            let ws = if count == 1 { &s.lxd_one } else { &s.lxd };
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    ws.fresh_state();
                    s.fake.control().reset();
                    let started = Instant::now();
                    ws.apply();
                    total += started.elapsed();
                    assert_eq!(ws.instances(), count);
                    assert_eq!(s.fake.control().pending_tokens().len(), count);
                }
                total
            });
        });
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .without_plots()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20))
}

criterion_group! {
    name = group;
    config = config();
    targets = benches
}
criterion_main!(group);
