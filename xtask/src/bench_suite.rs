//! The criterion benchmarks of `cargo xtask bench`, each pair measured side by side in one run
//! and printed as a ratio against its target:
//!
//! - `terraform apply` and a refresh-only `terraform plan` of 1 and 100 `lxd_trust_token`
//!   against fake-lxd, beside 1 and 100 `null_resource` of the Go `hashicorp/null` provider,
//!   with the gRPC calls Terraform made per resource; the same for 10 and 1000
//!   `lxd_trust_token`, and of 10, 100 and 1000 `oci_identity_auth_token` against fake-oci and
//!   (plan only) as many `oci_identity_auth_tokens` data sources (the cost per resource must
//!   stay flat); one token over HTTPS beside one over the unix socket
//!   (`crates/provider/benches/terraform_runs.rs`);
//! - fake-lxd beside the real LXD 5.0.2 daemon: token create+delete pairs per second and the
//!   listing of 1000 pending tokens (`fakes/lxd/benches/vs_real_daemon.rs`);
//! - fake-oci under 100 concurrent signed clients: requests per second, errors, lost tokens
//!   (`crates/oci-client/benches/fake_oci_concurrent.rs`).
//!
//! The figures are criterion's medians with their median absolute deviation, read from
//! `target/criterion/**/new/estimates.json` (only files written by this run count), and what
//! the benches write beside them (the OCI check, the gRPC call counts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::Result;

use crate::{cargo, target_dir, tools};

/// One criterion benchmark target: its package, its name, and the tools it cannot do without.
struct Target {
    package: &'static str,
    bench: &'static str,
    needs: &'static [&'static str],
}

const TARGETS: &[Target] = &[
    Target {
        package: "provider",
        bench: "terraform_runs",
        needs: &["XTASK_TERRAFORM", "XTASK_NULL_PROVIDER_DIR"],
    },
    Target {
        package: "fake-lxd",
        bench: "vs_real_daemon",
        needs: &[],
    },
    Target {
        package: "oci-client",
        bench: "fake_oci_concurrent",
        needs: &[],
    },
];

/// A criterion median and its spread (median absolute deviation), in seconds.
#[derive(Clone, Copy)]
struct Estimate {
    median: f64,
    mad: f64,
}

/// Criterion's output of this run.
struct Results {
    home: PathBuf,
    since: SystemTime,
}

impl Results {
    /// The median time of one iteration of `group/function`, in seconds, if this run measured it.
    fn median(&self, id: &str) -> Option<f64> {
        self.estimate(id).map(|e| e.median)
    }

    /// The median of `group/function` and its spread, if this run measured it.
    fn estimate(&self, id: &str) -> Option<Estimate> {
        let v = self.json(&format!("{id}/new/estimates.json"))?;
        Some(Estimate {
            median: v["median"]["point_estimate"].as_f64()? / 1e9,
            mad: v["median_abs_dev"]["point_estimate"].as_f64()? / 1e9,
        })
    }

    /// A JSON file under the criterion directory, if this run wrote it.
    fn json(&self, path: &str) -> Option<serde_json::Value> {
        let path = self.home.join(path);
        let fresh = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= self.since);
        fresh
            .then(|| std::fs::read_to_string(&path).ok())
            .flatten()
            .and_then(|t| serde_json::from_str(&t).ok())
    }

    /// What the OCI bench checked after its run.
    fn oci_check(&self) -> Option<serde_json::Value> {
        self.json("oci_100_clients/check.json")
    }
}

/// The external tools the benches read, as far as they can be had.
fn tool_env(root: &Path) -> Vec<(&'static str, PathBuf)> {
    match tools::ensure(root) {
        Ok(tools) => tools
            .env()
            .into_iter()
            .filter(|(key, _)| {
                matches!(
                    *key,
                    "XTASK_TERRAFORM" | "XTASK_LXD" | "XTASK_NULL_PROVIDER_DIR"
                )
            })
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

/// Runs the criterion benches (those named in `only`, or all) and prints each pair with its
/// ratio and target.
pub fn run(root: &Path, only: &[String]) -> Result<()> {
    if let Some(unknown) = only.iter().find(|b| !TARGETS.iter().any(|t| t.bench == *b)) {
        anyhow::bail!("no criterion bench {unknown:?}");
    }
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
        if !only.is_empty() && !only.iter().any(|b| b == t.bench) {
            continue;
        }
        if let Some(var) = t
            .needs
            .iter()
            .find(|var| !env.iter().any(|(key, _)| key == *var))
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

/// How one figure compares with its target.
enum Goal {
    /// A ratio, ours over the reference.
    AtMost(f64),
    AtLeast(f64),
    /// A difference, ours minus the reference, in milliseconds.
    MsAtMost(f64),
    /// Shown for what it explains; no target.
    None,
}

impl Goal {
    fn text(&self) -> String {
        match self {
            Goal::AtMost(x) => format!("<= {x}x"),
            Goal::AtLeast(x) => format!(">= {x}x"),
            Goal::MsAtMost(x) => format!("<= {x} ms"),
            Goal::None => "-".to_owned(),
        }
    }

    fn show(&self, figure: f64) -> String {
        match self {
            Goal::MsAtMost(_) => format!("{figure:+.1} ms"),
            _ => format!("{figure:.2}x"),
        }
    }

    fn met(&self, figure: f64) -> bool {
        match self {
            Goal::AtMost(x) | Goal::MsAtMost(x) => figure <= *x,
            Goal::AtLeast(x) => figure >= *x,
            Goal::None => true,
        }
    }
}

struct Row {
    what: String,
    ours: Option<String>,
    theirs: Option<String>,
    figure: Option<f64>,
    goal: Goal,
}

fn ms(seconds: f64) -> String {
    format!("{:.2} ms", seconds * 1000.0)
}

fn ms_spread(e: Estimate) -> String {
    format!("{:.1} ±{:.1} ms", e.median * 1000.0, e.mad * 1000.0)
}

fn per_second(seconds: f64, per_iteration: f64) -> String {
    format!("{:.0}/s", per_iteration / seconds)
}

/// The cost of the resources after the first: `(t(n) - t(1)) / (n - 1)`.
fn marginal(n: u32, at_n: Option<Estimate>, at_one: Option<Estimate>) -> Option<f64> {
    Some((at_n?.median - at_one?.median) / f64::from(n - 1))
}

/// The least-squares slope of time over resource count, in seconds per resource.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let cov: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    cov / var
}

/// The types measured at 10, 100 and 1000, by run, beside `null_resource`.
const SCALED: &[(&str, &[&str])] = &[
    ("apply", &["lxd_trust_token", "oci_identity_auth_token"]),
    (
        "plan_refresh",
        &[
            "lxd_trust_token",
            "oci_identity_auth_token",
            "oci_identity_auth_tokens",
        ],
    ),
];

/// How the table names a type: data sources as such.
fn label(kind: &str) -> String {
    if kind == "oci_identity_auth_tokens" {
        format!("data {kind}")
    } else {
        kind.to_owned()
    }
}

/// The scale of `kind` in `run`: the growth of the marginal cost per resource from 10..100 to
/// 100..1000 (1 when flat, about 10 when the time grows with the square of the count).
fn scale(r: &Results, run: &str, kind: &str) -> Option<(Vec<(f64, f64)>, f64)> {
    let at = |n: u32| {
        r.median(&format!("{run}/{kind}/{n}"))
            .map(|t| (f64::from(n), t))
    };
    let points = vec![at(10)?, at(100)?, at(1000)?];
    let low = (points[1].1 - points[0].1) / 90.0;
    let high = (points[2].1 - points[1].1) / 900.0;
    Some((points, high / low))
}

fn print_table(r: &Results, real_lxd: bool) {
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    let mut rows = Vec::new();
    for (run, title) in [
        ("apply", "terraform apply"),
        ("plan_refresh", "terraform plan -refresh-only"),
    ] {
        let get = |kind: &str, n: u32| r.estimate(&format!("{run}/{kind}/{n}"));
        let (ours_100, null_100) = (get("lxd_trust_token", 100), get("null_resource", 100));
        let (ours_1, null_1) = (get("lxd_trust_token", 1), get("null_resource", 1));
        rows.push(Row {
            what: format!("{title}, 100 lxd_trust_token vs 100 Go null_resource"),
            ours: ours_100.map(ms_spread),
            theirs: null_100.map(ms_spread),
            figure: ratio(ours_100.map(|e| e.median), null_100.map(|e| e.median)),
            goal: Goal::AtMost(0.6),
        });
        let sized_100 = get("null_resource_sized", 100);
        rows.push(Row {
            what: format!(
                "{title}, 100 lxd_trust_token vs 100 null_resource with as large a state (proposed)"
            ),
            ours: ours_100.map(ms_spread),
            theirs: sized_100.map(ms_spread),
            figure: ratio(ours_100.map(|e| e.median), sized_100.map(|e| e.median)),
            // Proposed in place of 0.6x of the plain null_resource, which no plugin with a
            // token's state can reach: Terraform's cost per resource grows with the state.
            goal: Goal::AtMost(1.2),
        });
        // Terraform alone on 100 resources with a token's state (its built-in terraform_data,
        // no plugin), and with our fixed cost of running a plugin at all added (our time for
        // one resource minus terraform_data's): no provider with this state goes below that.
        let (builtin_100, builtin_1) = (
            get("terraform_data_sized", 100),
            get("terraform_data_sized", 1),
        );
        rows.push(Row {
            what: format!(
                "{title}, 100 terraform_data with a token's state (Terraform alone, no plugin) vs 100 Go null_resource"
            ),
            ours: builtin_100.map(ms_spread),
            theirs: null_100.map(ms_spread),
            figure: ratio(builtin_100.map(|e| e.median), null_100.map(|e| e.median)),
            goal: Goal::None,
        });
        let floor = builtin_100
            .zip(builtin_1)
            .zip(ours_1)
            .map(|((b100, b1), o1)| b100.median + (o1.median - b1.median));
        rows.push(Row {
            what: format!(
                "{title}, a plugin's floor: that plus our plugin's fixed cost (t1 - terraform_data's t1) vs 100 null_resource"
            ),
            ours: floor.map(ms),
            theirs: null_100.map(ms_spread),
            figure: ratio(floor, null_100.map(|e| e.median)),
            goal: Goal::None,
        });
        rows.push(Row {
            what: format!("{title}, 1 resource each (Terraform and a plugin's start)"),
            ours: ours_1.map(ms_spread),
            theirs: null_1.map(ms_spread),
            figure: ratio(ours_1.map(|e| e.median), null_1.map(|e| e.median)),
            goal: Goal::None,
        });
        let (more_ours, more_null) = (
            marginal(100, ours_100, ours_1),
            marginal(100, null_100, null_1),
        );
        rows.push(Row {
            what: format!("{title}, per resource after the first ((t100 - t1) / 99)"),
            ours: more_ours.map(ms),
            theirs: more_null.map(ms),
            figure: ratio(more_ours, more_null),
            goal: Goal::None,
        });
        let kinds = SCALED
            .iter()
            .filter(|(r, _)| *r == run)
            .flat_map(|(_, k)| *k);
        let terraform = scale(r, run, "null_resource");
        // Terraform's own cost per resource grows with the size of the state it holds: at
        // 1000, a null_resource padded to a token's state takes about twice as long as a plain
        // one. Beside a reference of the same state size, what remains is the provider's and
        // the fake's.
        let sized = scale(r, run, "null_resource_sized");
        let shown = |s: &Option<(Vec<(f64, f64)>, f64)>| {
            s.as_ref()
                .map(|(points, g)| format!("{:.2} ms/res {g:.2}x", slope(points) * 1000.0))
        };
        for kind in kinds {
            let growth = scale(r, run, kind);
            // Terraform's own cost per resource grows with the count (its graph and state are
            // walked per resource); what a provider adds is the growth beyond its reference's.
            let beside = |reference: &Option<(Vec<(f64, f64)>, f64)>, what: String| Row {
                what,
                ours: shown(&growth),
                theirs: shown(reference),
                figure: growth
                    .as_ref()
                    .zip(reference.as_ref())
                    .map(|((_, ours), (_, theirs))| ours / theirs),
                // Flat is 1; a cost that grows with the square of the count gives about 10.
                goal: Goal::AtMost(1.5),
            };
            rows.push(beside(
                &terraform,
                format!(
                    "{title}, {} vs null_resource 10/100/1000: growth of the per-resource cost",
                    label(kind)
                ),
            ));
            if *kind == "lxd_trust_token" {
                rows.push(beside(
                    &sized,
                    format!(
                        "{title}, {} vs null_resource with as large a state 10/100/1000: growth (proposed)",
                        label(kind)
                    ),
                ));
            }
        }
    }
    let https = r.estimate("first_token/https");
    let unix = r.estimate("first_token/unix");
    rows.push(Row {
        what: "provider start to first token: HTTPS (client certificate) vs unix socket".to_owned(),
        ours: https.map(ms_spread),
        theirs: unix.map(ms_spread),
        figure: https.zip(unix).map(|(h, u)| (h.median - u.median) * 1000.0),
        goal: Goal::MsAtMost(5.0),
    });
    let pair_fake = r.median("lxd_token_create_delete/fake");
    let pair_real = r.median("lxd_token_create_delete/real_daemon");
    let list_fake = r.median("lxd_list_1000_pending/fake");
    let list_real = r.median("lxd_list_1000_pending/real_daemon");
    rows.push(Row {
        what: "LXD token create+delete pairs per second (fake vs real daemon)".to_owned(),
        ours: pair_fake.map(|s| per_second(s, 1.0)),
        theirs: pair_real.map(|s| per_second(s, 1.0)),
        // A rate: the real daemon's time over the fake's.
        figure: ratio(pair_real, pair_fake),
        goal: Goal::AtLeast(20.0),
    });
    rows.push(Row {
        what: "LXD listing of 1000 pending tokens (fake vs real daemon)".to_owned(),
        ours: list_fake.map(ms),
        theirs: list_real.map(ms),
        figure: ratio(list_fake, list_real),
        goal: Goal::AtMost(0.1),
    });
    println!(
        "criterion medians ±median absolute deviation (target/criterion); machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<84} {:>18} {:>18} {:>9} {:>9}  result",
        "pair (ours vs reference)", "ours", "reference", "ratio", "target"
    );
    for row in &rows {
        let verdict = match row.figure {
            Some(_) if matches!(row.goal, Goal::None) => "(no target)".to_owned(),
            Some(x) if row.goal.met(x) => "met".to_owned(),
            Some(_) => "NOT met".to_owned(),
            None => "skipped (not measured in this run)".to_owned(),
        };
        println!(
            "{:<84} {:>18} {:>18} {:>9} {:>9}  {verdict}",
            row.what,
            row.ours.as_deref().unwrap_or("-"),
            row.theirs.as_deref().unwrap_or("-"),
            row.figure.map_or("-".to_owned(), |x| row.goal.show(x)),
            row.goal.text(),
        );
    }
    if !real_lxd {
        println!(
            "skipped: the real LXD daemon side (XTASK_LXD unavailable or not root): run as root with Debian's lxd installed"
        );
    }
    print_scale(r);
    print_rpcs(r);
    print_oci(r);
}

/// The time of 10, 100 and 1000 of each scaled type, per resource, with the least-squares
/// slope.
fn print_scale(r: &Results) {
    for (run, kind) in SCALED.iter().flat_map(|(run, kinds)| {
        kinds
            .iter()
            .chain(&["null_resource", "null_resource_sized"])
            .map(move |k| (*run, *k))
    }) {
        let Some((points, growth)) = scale(r, run, kind) else {
            continue;
        };
        let each: Vec<String> = points
            .iter()
            .map(|(n, t)| format!("N={n}: {} ({:.2} ms/res)", ms(*t), t / n * 1000.0))
            .collect();
        println!(
            "  scale of {run}, {}: {}; slope {:.2} ms per resource; growth {growth:.2}x{}",
            label(kind),
            each.join(", "),
            slope(&points) * 1000.0,
            if growth > 1.5 { " SUPER-LINEAR" } else { "" }
        );
    }
}

/// The gRPC calls Terraform made per resource (calls at N minus calls at 1, over N - 1, for
/// the largest N counted), and those it made for one resource.
fn print_rpcs(r: &Results) {
    let Some(counts) = r.json("rpcs.json") else {
        return;
    };
    let calls = |v: &serde_json::Value| -> BTreeMap<String, f64> {
        v.as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, n)| Some((k.clone(), n.as_f64()?)))
            .collect()
    };
    let text = |calls: &BTreeMap<String, f64>| {
        calls
            .iter()
            .filter(|(_, n)| n.abs() > 1e-9)
            .map(|(k, n)| format!("{k} {}", (n * 100.0).round() / 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("gRPC calls Terraform made (its GRPCProvider trace lines):");
    for (run, kinds) in counts.as_object().into_iter().flatten() {
        for (kind, by_count) in kinds.as_object().into_iter().flatten() {
            let one = calls(&by_count["1"]);
            // Terraform's built-in terraform_data runs no plugin: it has no calls to show.
            if one.is_empty() {
                continue;
            }
            let Some((n, at_n)) = by_count
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(n, v)| Some((n.parse::<u32>().ok()?, calls(v))))
                .filter(|(n, _)| *n > 1)
                .max_by_key(|(n, _)| *n)
            else {
                continue;
            };
            let mut each = at_n.clone();
            for (method, calls) in &mut each {
                *calls = (*calls - one.get(method).copied().unwrap_or(0.0)) / f64::from(n - 1);
            }
            println!("  {run} {kind}: per resource: {}", text(&each));
            println!("  {run} {kind}: for 1 resource: {}", text(&one));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Criterion's output for `id` with the given median, in milliseconds.
    fn estimate(home: &Path, id: &str, median_ms: f64) {
        let dir = home.join(id).join("new");
        std::fs::create_dir_all(&dir).unwrap();
        let json = serde_json::json!({
            "median": {"point_estimate": median_ms * 1e6},
            "median_abs_dev": {"point_estimate": 1e6},
        });
        std::fs::write(dir.join("estimates.json"), json.to_string()).unwrap();
    }

    #[test]
    fn each_scaled_type_gets_its_own_slope_and_growth() {
        let home = tempfile::tempdir().unwrap();
        let results = Results {
            home: home.path().to_owned(),
            since: SystemTime::UNIX_EPOCH,
        };
        // Flat: 2 ms per resource throughout.
        for (n, t) in [(10, 120.0), (100, 300.0), (1000, 2100.0)] {
            estimate(
                home.path(),
                &format!("plan_refresh/oci_identity_auth_token/{n}"),
                t,
            );
        }
        // Quadratic: t = n² / 100 ms.
        for n in [10_u32, 100, 1000] {
            let t = f64::from(n * n) / 100.0;
            estimate(
                home.path(),
                &format!("apply/oci_identity_auth_token/{n}"),
                t,
            );
        }
        let (points, flat) = scale(&results, "plan_refresh", "oci_identity_auth_token").unwrap();
        assert!((flat - 1.0).abs() < 1e-9, "{flat}");
        assert!((slope(&points) * 1000.0 - 2.0).abs() < 1e-9);
        let (_, square) = scale(&results, "apply", "oci_identity_auth_token").unwrap();
        assert!((square - 10.0).abs() < 1e-9, "{square}");
        // Nothing measured for the data source, nor for lxd_trust_token: no figure.
        assert!(scale(&results, "plan_refresh", "oci_identity_auth_tokens").is_none());
        assert!(scale(&results, "apply", "lxd_trust_token").is_none());
    }
}
