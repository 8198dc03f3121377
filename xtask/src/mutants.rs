//! `cargo xtask mutants`: mutation testing with cargo-mutants, one crate at a time.
//!
//! Each crate's mutants are tested against that crate's own tests (cargo-mutants' default),
//! with nextest. The equivalent mutants we accept are listed in `.cargo/mutants.toml`
//! (`exclude_re`, one 'literal string' a line, each after a one-line reason); `cargo xtask test` checks with a cheap
//! `--list` (no build, no test run) that every entry still names a mutant that exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{run, target_dir, tools};

/// Pinned so that mutant names (and so the exclusion list) stay stable.
const CARGO_MUTANTS_VERSION: &str = "27.1.0";

/// The crates of the workspace, by folder.
const CRATES: &[(&str, &str)] = &[
    ("crates/model/", "model"),
    ("crates/lxd-client/", "lxd-client"),
    ("crates/oci-client/", "oci-client"),
    ("crates/provider/", "provider"),
    ("fakes/kit/", "fake-kit"),
    ("fakes/lxd/", "fake-lxd"),
    ("fakes/oci/", "fake-oci"),
    ("xtask/", "xtask"),
];

const CONFIG: &str = ".cargo/mutants.toml";

/// Property-test cases per mutant, unless `PROPTEST_CASES` says otherwise.
const MUTANT_CASES: &str = "32";

struct Args {
    base: Option<String>,
    in_diff: bool,
    packages: Vec<String>,
    files: Vec<String>,
    /// Parallel builds and test runs, each in its own copy of the tree with its own target
    /// directory (one first build each); 1 builds in the workspace's target directory.
    jobs: u32,
    /// Re-test only what the last run of that crate did not catch.
    iterate: bool,
    /// Passed to the test tool: a nextest filter (`-E 'not binary(real_daemon)'`), say.
    test_args: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut parsed = Args {
        base: None,
        in_diff: false,
        packages: Vec::new(),
        files: Vec::new(),
        jobs: 1,
        iterate: false,
        test_args: Vec::new(),
    };
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--in-diff" => {
                parsed.in_diff = true;
                parsed.base = iter.next_if(|next| !next.starts_with('-')).cloned();
            }
            "-p" | "--package" => parsed.packages.push(value_of(arg, iter.next())?),
            "-f" | "--file" => parsed.files.push(value_of(arg, iter.next())?),
            "-j" | "--jobs" => {
                let value = value_of(arg, iter.next())?;
                parsed.jobs = value
                    .parse()
                    .ok()
                    .filter(|jobs| (1..=64).contains(jobs))
                    .with_context(|| {
                        format!("`{arg}` takes a number of jobs from 1 to 64, not `{value}`")
                    })?;
            }
            "--iterate" => parsed.iterate = true,
            "--" => {
                parsed.test_args = iter.by_ref().cloned().collect();
            }
            other => bail!("unknown argument `{other}` for `cargo xtask mutants`"),
        }
    }
    Ok(parsed)
}

fn value_of(name: &str, value: Option<&String>) -> Result<String> {
    value
        .cloned()
        .with_context(|| format!("`{name}` needs a value"))
}

/// The cargo-mutants binary, installed into the tools folder on first use.
pub fn ensure_cargo_mutants(root: &Path) -> Result<PathBuf> {
    let dir = tools::tools_dir(root).join("cargo-mutants");
    let bin = dir.join("bin").join("cargo-mutants");
    let installed = Command::new(&bin)
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CARGO_MUTANTS_VERSION)
        });
    if !installed {
        run(crate::cargo()
            .args(["install", "--locked", "--root"])
            .arg(&dir)
            .args(["cargo-mutants", "--version", CARGO_MUTANTS_VERSION]))?;
    }
    Ok(bin)
}

fn git(root: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .current_dir(root)
        .args(args)
        .output()
        .context("could not run git")?;
    if !out.status.success() {
        bail!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The package that owns `path`, a path relative to the workspace root.
fn package_of(path: &str) -> Option<&'static str> {
    CRATES
        .iter()
        .find(|(dir, _)| path.starts_with(dir))
        .map(|(_, name)| *name)
}

pub fn run_mutants(root: &Path, args: &[String]) -> Result<()> {
    let args = parse_args(args)?;
    let bin = ensure_cargo_mutants(root)?;
    let out_root = target_dir(root).join("mutants");
    std::fs::create_dir_all(&out_root)?;

    let base = match &args.base {
        Some(base) => base.clone(),
        None => git(root, &["merge-base", "HEAD", "main"])?
            .trim()
            .to_owned(),
    };
    let mut packages = args.packages.clone();
    let mut diff_file = None;
    if args.in_diff || packages.is_empty() {
        let diff = git(root, &["diff", &base, "--", "*.rs"])?;
        let file = out_root.join("in-diff.patch");
        std::fs::write(&file, &diff)?;
        if packages.is_empty() {
            let changed = git(root, &["diff", "--name-only", &base, "--", "*.rs"])?;
            for path in changed.lines() {
                if let Some(name) = package_of(path)
                    && !packages.iter().any(|p| p == name)
                {
                    packages.push(name.to_owned());
                }
            }
            if packages.is_empty() {
                eprintln!("xtask: no Rust file changed since {base}; nothing to mutate");
                return Ok(());
            }
        }
        if args.in_diff {
            diff_file = Some(file);
        }
    }

    let mut summaries = Vec::new();
    for package in &packages {
        let out_dir = out_root.join(package);
        if !args.iterate {
            let _ = std::fs::remove_dir_all(out_dir.join("mutants.out"));
        }
        let mut cmd = Command::new(&bin);
        cmd.arg("mutants")
            .args(["--package", package, "--test-tool", "nextest", "--jobs"])
            .arg(args.jobs.to_string())
            .arg("--output")
            .arg(&out_dir);
        if args.jobs == 1 {
            // One build directory: it can share the workspace's build products.
            cmd.env("CARGO_TARGET_DIR", target_dir(root));
        } else {
            // Jobs sharing one target directory would wait on its lock and rebuild each
            // other's mutants: each copy of the tree keeps its own.
            cmd.env_remove("CARGO_TARGET_DIR");
        }
        if args.iterate {
            cmd.arg("--iterate");
        }
        cmd
            // Property tests run few cases per mutant (proptest applies `PROPTEST_CASES` over
            // each test's own count): a mutant is caught by its first failing case, and the full
            // counts made `model` alone a run of many hours (81 s of tests for each of 459).
            .env(
                "PROPTEST_CASES",
                std::env::var("PROPTEST_CASES").unwrap_or_else(|_| MUTANT_CASES.to_owned()),
            );
        if let Some(file) = &diff_file {
            cmd.arg("--in-diff").arg(file);
        }
        for file in &args.files {
            cmd.args(["--file", file]);
        }
        if !args.test_args.is_empty() {
            cmd.arg("--").args(&args.test_args);
        }
        let started = std::time::Instant::now();
        eprintln!("$ {cmd:?}");
        // cargo-mutants exits non-zero when a mutant is missed; the summary says which.
        let status = cmd.status().context("could not start cargo-mutants")?;
        let outcomes = out_dir.join("mutants.out").join("outcomes.json");
        if status.success() && !outcomes.is_file() {
            println!("{package}: no mutants to test");
            continue;
        }
        let summary = Summary::read(package, &outcomes, started.elapsed())
            .with_context(|| format!("cargo-mutants ({status}) left no readable {outcomes:?}"))?;
        summaries.push(summary);
    }
    let mut any_missed = false;
    for summary in &summaries {
        summary.print();
        any_missed |= !summary.missed.is_empty();
    }
    if any_missed {
        bail!("missed mutants: add a test that catches each, or list it in {CONFIG} with a reason");
    }
    Ok(())
}

struct Summary {
    package: String,
    counts: BTreeMap<String, usize>,
    missed: Vec<String>,
    seconds: u64,
}

impl Summary {
    fn read(package: &str, outcomes: &Path, elapsed: std::time::Duration) -> Result<Summary> {
        let text = std::fs::read_to_string(outcomes)?;
        let json: serde_json::Value = serde_json::from_str(&text)?;
        let mut counts = BTreeMap::new();
        for key in ["caught", "missed", "unviable", "timeout"] {
            let n = json.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
            counts.insert(key.to_owned(), n as usize);
        }
        let mut missed = Vec::new();
        for outcome in json
            .get("outcomes")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            if outcome.get("summary").and_then(|v| v.as_str()) != Some("MissedMutant") {
                continue;
            }
            missed
                .push(mutant_name(outcome.get("scenario")).unwrap_or_else(|| outcome.to_string()));
        }
        Ok(Summary {
            package: package.to_owned(),
            counts,
            missed,
            seconds: elapsed.as_secs(),
        })
    }

    fn print(&self) {
        let n = |key: &str| self.counts.get(key).copied().unwrap_or(0);
        println!(
            "{}: caught {}, missed {}, unviable {}, timeout {} ({}s)",
            self.package,
            n("caught"),
            n("missed"),
            n("unviable"),
            n("timeout"),
            self.seconds
        );
        for name in &self.missed {
            println!("  missed: {name}");
        }
    }
}

/// `file:line:col: replace ... with ...`, from an outcome's scenario.
fn mutant_name(scenario: Option<&serde_json::Value>) -> Option<String> {
    let mutant = scenario?.get("Mutant")?;
    let file = mutant.get("file")?.as_str()?;
    let line = mutant
        .get("span")
        .and_then(|s| s.get("start"))
        .and_then(|s| s.get("line"))
        .and_then(|l| l.as_u64())
        .unwrap_or(0);
    let function = mutant
        .get("function")
        .and_then(|f| f.get("function_name"))
        .and_then(|f| f.as_str())
        .unwrap_or("");
    let replacement = mutant.get("replacement").and_then(|r| r.as_str())?;
    let genre = mutant.get("genre").and_then(|g| g.as_str()).unwrap_or("");
    Some(format!(
        "{file}:{line}: {genre} in {function} with {replacement}"
    ))
}

/// The `exclude_re` patterns of `.cargo/mutants.toml`: one `'…',` literal string a line.
fn exclusions(root: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(root.join(CONFIG))
        .with_context(|| format!("could not read {CONFIG}"))?;
    parse_exclusions(&text)
}

fn parse_exclusions(text: &str) -> Result<Vec<String>> {
    let mut patterns = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("exclude_re") {
            inside = !line.ends_with(']');
            continue;
        }
        if !inside {
            continue;
        }
        if line.starts_with(']') {
            inside = false;
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Literal TOML strings ('...') so that regex backslashes need no escaping.
        let entry = line.strip_suffix(',').unwrap_or(line);
        let Some(pattern) = entry
            .strip_prefix('\'')
            .and_then(|rest| rest.strip_suffix('\''))
        else {
            bail!("{CONFIG}: `{line}` is not one 'literal string' on its own line");
        };
        patterns.push(pattern.to_owned());
    }
    Ok(patterns)
}

/// Fails when an exclusion in `.cargo/mutants.toml` matches no mutant any more. Cheap: it
/// lists the mutants (parsing only, no build) of the packages the patterns could concern.
pub fn check_exclusions(root: &Path) -> Result<()> {
    let patterns = exclusions(root)?;
    if patterns.is_empty() {
        eprintln!("xtask: {CONFIG} excludes no mutant");
        return Ok(());
    }
    let bin = ensure_cargo_mutants(root)?;
    let started = std::time::Instant::now();
    let out = Command::new(&bin)
        .current_dir(root)
        .args(["mutants", "--list", "--no-config"])
        .output()
        .context("could not start cargo-mutants")?;
    if !out.status.success() {
        bail!(
            "`cargo mutants --list` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = String::from_utf8_lossy(&out.stdout);
    let mut stale = Vec::new();
    for pattern in &patterns {
        let re = regex::Regex::new(pattern)
            .with_context(|| format!("{CONFIG}: `{pattern}` is not a regular expression"))?;
        if !listed.lines().any(|line| re.is_match(line)) {
            stale.push(pattern);
        }
    }
    eprintln!(
        "xtask: checked {} mutant exclusions in {:.1}s",
        patterns.len(),
        started.elapsed().as_secs_f64()
    );
    if !stale.is_empty() {
        bail!("{CONFIG} excludes mutants that no longer exist; remove these entries: {stale:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_are_read_one_literal_string_a_line() {
        let text = "test_tool = \"nextest\"\nexclude_re = [\n  # Reason one.\n  'a\\.rs: replace x',\n\n  # Reason two.\n  'b'\n]\nother = ['c']\n";
        assert_eq!(parse_exclusions(text).unwrap(), ["a\\.rs: replace x", "b"]);
        assert_eq!(
            parse_exclusions("exclude_re = []\n").unwrap(),
            Vec::<String>::new()
        );
        let err = parse_exclusions("exclude_re = [\n  \"double\",\n]\n").unwrap_err();
        assert!(err.to_string().contains("\"double\""), "{err}");
    }

    #[test]
    fn the_committed_exclusions_parse() {
        exclusions(&crate::project_root()).unwrap();
    }

    #[test]
    fn changed_files_map_to_their_package() {
        assert_eq!(package_of("crates/model/src/plan.rs"), Some("model"));
        assert_eq!(package_of("fakes/oci/src/signature.rs"), Some("fake-oci"));
        assert_eq!(package_of("xtask/src/main.rs"), Some("xtask"));
        assert_eq!(package_of("crates/modelling/src/x.rs"), None);
        assert_eq!(package_of("README.md"), None);
        assert_eq!(package_of("fakes/kit/src/serve.rs"), Some("fake-kit"));
    }

    #[test]
    fn every_workspace_member_has_its_package() {
        let manifest = std::fs::read_to_string(crate::project_root().join("Cargo.toml")).unwrap();
        let members = manifest
            .split("members = [")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .unwrap();
        let folders: Vec<&str> = members
            .split(',')
            .map(|m| m.trim().trim_matches('"'))
            .filter(|m| !m.is_empty())
            .collect();
        assert_eq!(folders.len(), CRATES.len());
        for folder in folders {
            let package = package_of(&format!("{folder}/src/lib.rs"));
            let manifest =
                std::fs::read_to_string(crate::project_root().join(folder).join("Cargo.toml"))
                    .unwrap();
            let name = format!("name = \"{}\"", package.unwrap_or("none"));
            assert!(manifest.contains(&name), "{folder}: {package:?}");
        }
    }

    #[test]
    fn arguments_take_packages_files_and_an_optional_base() {
        let args =
            |list: &[&str]| parse_args(&list.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        let parsed = args(&["--in-diff", "-p", "model", "-f", "crates/model/src/plan.rs"]).unwrap();
        assert!(parsed.in_diff);
        assert_eq!(parsed.base, None);
        assert_eq!(parsed.packages, ["model"]);
        assert_eq!(parsed.files, ["crates/model/src/plan.rs"]);
        let parsed = args(&["--in-diff", "origin/main"]).unwrap();
        assert_eq!(parsed.base.as_deref(), Some("origin/main"));
        assert!(args(&["-p"]).is_err());
        assert!(!parsed.iterate && parsed.jobs == 1 && parsed.test_args.is_empty());
        let parsed = args(&[
            "-j",
            "2",
            "--iterate",
            "-p",
            "fake-lxd",
            "--",
            "-E",
            "not binary(real_daemon)",
            "-p",
        ])
        .unwrap();
        assert_eq!((parsed.jobs, parsed.iterate), (2, true));
        assert_eq!(parsed.packages, ["fake-lxd"]);
        assert_eq!(parsed.test_args, ["-E", "not binary(real_daemon)", "-p"]);
        for bad in ["0", "65", "two", "-1"] {
            let err = args(&["--jobs", bad]).err().unwrap().to_string();
            assert!(err.contains("--jobs") && err.contains(bad), "{err}");
        }
        assert!(args(&["--jobs"]).is_err());
        assert!(args(&["--shard", "1/2"]).is_err());
    }

    #[test]
    fn outcomes_are_counted_and_missed_mutants_named() {
        let dir = std::env::temp_dir().join(format!("xtask-mutants-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("outcomes.json");
        let json = serde_json::json!({
            "caught": 3, "missed": 1, "unviable": 2, "timeout": 0,
            "outcomes": [
                {"summary": "Success", "scenario": "Baseline"},
                {"summary": "CaughtMutant", "scenario": {"Mutant": {"file": "src/a.rs"}}},
                {"summary": "MissedMutant", "scenario": {"Mutant": {
                    "file": "src/diag.rs", "genre": "FnValue", "replacement": "false",
                    "span": {"start": {"line": 94, "column": 5}},
                    "function": {"function_name": "has_errors"}}}}
            ]
        });
        std::fs::write(&file, json.to_string()).unwrap();
        let summary = Summary::read("model", &file, std::time::Duration::from_secs(7)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(summary.counts["caught"], 3);
        assert_eq!(summary.counts["missed"], 1);
        assert_eq!(summary.counts["unviable"], 2);
        assert_eq!(summary.counts["timeout"], 0);
        assert_eq!(
            summary.missed,
            ["src/diag.rs:94: FnValue in has_errors with false"]
        );
    }
}
