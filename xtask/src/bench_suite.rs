//! The criterion benchmarks of `cargo xtask bench`, each pair measured side by side in one run
//! and printed as a ratio against its target:
//!
//! - `terraform apply` of 100 `lxd_trust_token` against fake-lxd, beside 100 built-in
//!   `terraform_data` (`crates/provider/benches/apply_100.rs`);
//! - fake-lxd beside the real LXD 5.0.2 daemon: token create+delete pairs per second and the
//!   listing of 1000 pending tokens (`fakes/lxd/benches/vs_real_daemon.rs`);
//! - fake-oci under 100 concurrent signed clients: requests per second, errors, lost tokens
//!   (`crates/oci-client/benches/fake_oci_concurrent.rs`).
//!
//! The figures are criterion's medians, read from `target/criterion/**/new/estimates.json`
//! (only files written by this run count), and the OCI check the bench writes beside them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::Result;

use crate::{cargo, target_dir, tools};

/// One criterion benchmark target: its package, its name, and the tool it cannot do without.
struct Target {
    package: &'static str,
    bench: &'static str,
    needs: Option<&'static str>,
}

const TARGETS: &[Target] = &[
    Target {
        package: "provider",
        bench: "apply_100",
        needs: Some("XTASK_TERRAFORM"),
    },
    Target {
        package: "fake-lxd",
        bench: "vs_real_daemon",
        needs: None,
    },
    Target {
        package: "oci-client",
        bench: "fake_oci_concurrent",
        needs: None,
    },
];

/// Criterion's output of this run.
struct Results {
    home: PathBuf,
    since: SystemTime,
}

impl Results {
    /// The median time of one iteration of `group/function`, in seconds, if this run measured it.
    fn median(&self, id: &str) -> Option<f64> {
        let path = self.home.join(id).join("new/estimates.json");
        let fresh = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= self.since);
        if !fresh {
            return None;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some(v["median"]["point_estimate"].as_f64()? / 1e9)
    }

    /// What the OCI bench checked after its run.
    fn oci_check(&self) -> Option<serde_json::Value> {
        let path = self.home.join("oci_100_clients/check.json");
        let fresh = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= self.since);
        fresh
            .then(|| std::fs::read_to_string(&path).ok())
            .flatten()
            .and_then(|t| serde_json::from_str(&t).ok())
    }
}

/// The external tools the benches read, as far as they can be had.
fn tool_env(root: &Path) -> Vec<(&'static str, PathBuf)> {
    match tools::ensure(root) {
        Ok(tools) => tools
            .env()
            .into_iter()
            .filter(|(key, _)| matches!(*key, "XTASK_TERRAFORM" | "XTASK_LXD"))
            .collect(),
        Err(error) => {
            // Whatever is on PATH still serves.
            eprintln!("xtask bench: the test tools could not all be installed ({error:#})");
            [("XTASK_TERRAFORM", "terraform"), ("XTASK_LXD", "lxd")]
                .into_iter()
                .filter_map(|(key, name)| Some((key, tools::which(name)?)))
                .collect()
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs the criterion benches and prints each pair with its ratio and target.
pub fn run(root: &Path) -> Result<()> {
    let target = target_dir(root);
    let home = target.join("criterion");
    let since = SystemTime::now();
    let mut env = tool_env(root);
    let lxd = env.iter().any(|(key, _)| *key == "XTASK_LXD");
    if lxd && !is_root() {
        // The real daemon runs as root only; the fake's side is measured all the same.
        env.retain(|(key, _)| *key != "XTASK_LXD");
    }
    let mut skipped = Vec::new();
    let mut failed = Vec::new();
    for t in TARGETS {
        if let Some(var) = t.needs
            && !env.iter().any(|(key, _)| *key == var)
        {
            skipped.push(format!("{}: {var} not available", t.bench));
            continue;
        }
        let mut cmd = cargo();
        cmd.args(["bench", "--quiet", "-p", t.package, "--bench", t.bench])
            .env("CARGO_TARGET_DIR", &target)
            .env("CRITERION_HOME", &home)
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("XTASK_REQUIRE_TOOLS");
        for (key, value) in &env {
            cmd.env(key, value);
        }
        if let Err(error) = crate::run(&mut cmd) {
            eprintln!("xtask bench: {error:#}");
            failed.push(t.bench);
        }
    }
    let results = Results { home, since };
    println!();
    print_table(&results, env.iter().any(|(key, _)| *key == "XTASK_LXD"));
    for line in &skipped {
        println!("skipped: {line}");
    }
    if !failed.is_empty() {
        anyhow::bail!("benchmarks failed: {}", failed.join(", "));
    }
    Ok(())
}

/// How one pair compares with its target.
enum Goal {
    AtMost(f64),
    AtLeast(f64),
    /// Shown for what it explains; no target.
    None,
}

impl Goal {
    fn text(&self) -> String {
        match self {
            Goal::AtMost(x) => format!("<= {x}x"),
            Goal::AtLeast(x) => format!(">= {x}x"),
            Goal::None => "-".to_owned(),
        }
    }

    fn met(&self, ratio: f64) -> bool {
        match self {
            Goal::AtMost(x) => ratio <= *x,
            Goal::AtLeast(x) => ratio >= *x,
            Goal::None => true,
        }
    }
}

struct Row {
    what: &'static str,
    ours: Option<String>,
    theirs: Option<String>,
    ratio: Option<f64>,
    goal: Goal,
}

fn ms(seconds: f64) -> String {
    format!("{:.2} ms", seconds * 1000.0)
}

fn per_second(seconds: f64, per_iteration: f64) -> String {
    format!("{:.0}/s", per_iteration / seconds)
}

fn print_table(r: &Results, real_lxd: bool) {
    let apply_ours = r.median("apply_100/lxd_trust_token");
    let apply_floor = r.median("apply_100/terraform_data");
    let one_ours = r.median("apply_1/lxd_trust_token");
    let one_floor = r.median("apply_1/terraform_data");
    let more = |hundred: Option<f64>, one: Option<f64>| Some(hundred? - one?);
    let more_ours = more(apply_ours, one_ours);
    let more_floor = more(apply_floor, one_floor);
    let pair_fake = r.median("lxd_token_create_delete/fake");
    let pair_real = r.median("lxd_token_create_delete/real_daemon");
    let list_fake = r.median("lxd_list_1000_pending/fake");
    let list_real = r.median("lxd_list_1000_pending/real_daemon");
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    let rows = [
        Row {
            what: "terraform apply, 100 resources (lxd_trust_token vs terraform_data)",
            ours: apply_ours.map(ms),
            theirs: apply_floor.map(ms),
            ratio: ratio(apply_ours, apply_floor),
            goal: Goal::AtMost(1.2),
        },
        Row {
            what: "terraform apply, 1 resource (the cost of a plugin process to Terraform)",
            ours: one_ours.map(ms),
            theirs: one_floor.map(ms),
            ratio: ratio(one_ours, one_floor),
            goal: Goal::None,
        },
        Row {
            what: "terraform apply, the 99 resources after the first (100 minus 1)",
            ours: more_ours.map(ms),
            theirs: more_floor.map(ms),
            ratio: ratio(more_ours, more_floor),
            goal: Goal::AtMost(1.2),
        },
        Row {
            what: "LXD token create+delete pairs per second (fake vs real daemon)",
            ours: pair_fake.map(|s| per_second(s, 1.0)),
            theirs: pair_real.map(|s| per_second(s, 1.0)),
            // A rate: the real daemon's time over the fake's.
            ratio: ratio(pair_real, pair_fake),
            goal: Goal::AtLeast(20.0),
        },
        Row {
            what: "LXD listing of 1000 pending tokens (fake vs real daemon)",
            ours: list_fake.map(ms),
            theirs: list_real.map(ms),
            ratio: ratio(list_fake, list_real),
            goal: Goal::AtMost(0.1),
        },
    ];
    println!(
        "criterion medians (target/criterion); machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<70} {:>12} {:>12} {:>9} {:>9}  result",
        "pair (ours vs reference)", "ours", "reference", "ratio", "target"
    );
    for row in &rows {
        let verdict = match row.ratio {
            Some(_) if matches!(row.goal, Goal::None) => "(no target)".to_owned(),
            Some(x) if row.goal.met(x) => "met".to_owned(),
            Some(_) => "NOT met".to_owned(),
            None => "skipped (not measured in this run)".to_owned(),
        };
        println!(
            "{:<70} {:>12} {:>12} {:>9} {:>9}  {verdict}",
            row.what,
            row.ours.as_deref().unwrap_or("-"),
            row.theirs.as_deref().unwrap_or("-"),
            row.ratio.map_or("-".to_owned(), |x| format!("{x:.2}x")),
            row.goal.text(),
        );
    }
    if !real_lxd {
        println!(
            "skipped: the real LXD daemon side (XTASK_LXD unavailable or not root): run as root with Debian's lxd installed"
        );
    }
    print_oci(r);
}

fn print_oci(r: &Results) {
    let Some(check) = r.oci_check() else {
        println!("skipped: fake OCI under 100 concurrent clients (not measured in this run)");
        return;
    };
    let count = |key: &str| check[key].as_u64().unwrap_or(u64::MAX);
    let per_cycle = check["requests_per_iteration"].as_f64().unwrap_or(400.0);
    let rps = r
        .median("oci_100_clients/fake")
        .map_or("-".to_owned(), |s| per_second(s, per_cycle));
    let clean = count("errors") == 0 && count("lost_tokens") == 0 && count("extra_tokens") == 0;
    println!(
        "{:<70} {:>12} requests; {} requests, {} errors, {} lost and {} extra tokens  {}",
        "fake OCI under 100 concurrent signed clients",
        rps,
        count("requests"),
        count("errors"),
        count("lost_tokens"),
        count("extra_tokens"),
        if clean {
            "met (no error, no lost token)"
        } else {
            "NOT met"
        }
    );
    if let Some(sign) = r.median("oci_client_signing/one_request") {
        println!(
            "{:<70} {:>12} per request (one core; the clients share the machine with the fake)",
            "  of which the client's RSA-2048 signature",
            ms(sign)
        );
    }
}
