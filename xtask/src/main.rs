//! Project automation, run as `cargo xtask <command>`.
//!
//! This is an ordinary binary crate with few dependencies (rust-analyzer's xtask pattern).
//! `cargo xtask test` is the one test command: it installs what the tests need, runs the
//! tidy checks and every test suite, then clippy and rustfmt.

mod bench;
mod bench_suite;
mod conformance;
mod demo;
mod docs;
mod fakes;
mod install;
mod mutants;
mod release;
mod startup_order;
mod tidy;
mod tools;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const HELP: &str = "\
cargo xtask <command>

Commands:
  test [--long]       install the test tools, run tidy checks, every test, clippy and rustfmt
                      (--long runs the fault-schedule properties with 10,000 cases)
  bench [BENCH]...    our provider beside the Go terraform-provider-lxd: handshake time, RSS, size;
                      then the criterion benches, each pair with its ratio and target: terraform
                      apply and refresh-only plan of lxd_trust_token vs the Go null provider's
                      null_resource (1, 100; and 10 to 1000 for the scale, with the same scale
                      of oci_identity_auth_token and oci_identity_auth_tokens against fake-oci),
                      the first token over HTTPS vs the unix socket, fake-lxd vs the real LXD
                      daemon, fake-oci under 100 concurrent clients; naming `handshake` or
                      criterion benches (terraform_runs, vs_real_daemon, fake_oci_concurrent)
                      runs only those
  conformance [--frontend CMD] [--provider-dir DIR]
                      run the conformance scenarios (fixtures/conformance) through a frontend:
                      CMD is a Terraform-compatible binary (terraform, tofu); DIR holds another
                      build of terraform-provider-lxd and terraform-provider-oci
  demo                apply the seed examples with real Terraform against both fakes, then destroy
  docs [--check]      regenerate docs/ and examples/ from the model schema (--check: fail when stale)
  mutants [--in-diff [BASE]] [-p CRATE]... [-f FILE]... [-j N] [--iterate] [-- TEST-ARGS]
                      mutation testing (cargo-mutants, each crate against its own tests, with
                      nextest): the crates given, or those changed since BASE (default: the merge
                      base with main); --in-diff mutates only the changed lines; -j N runs N
                      builds and tests at once, each in its own copy of the tree; --iterate
                      re-tests only what the crate's last run did not catch; TEST-ARGS go to
                      nextest (a filter); prints caught, missed, unviable and timeout per crate
                      and fails on a missed mutant
  fakes               start fake-lxd and fake-oci for the contributor loop (Ctrl-C stops them)
  install [--dir DIR] build the release binaries and install both providers into a filesystem
                      mirror (default: ~/.terraform.d/plugins), so that `terraform init` finds them
  release [--dir DIR] [--gpg-key ID]
                      the Terraform Registry's release files: zips, SHA256SUMS (signed with the
                      GnuPG key ID when given) and manifest (default DIR: target/dist/VERSION)
  startup-order       list again the functions the release binaries run up to their handshake line
                      (valgrind's callgrind), which the release link places first and together
  tools               install the external tools the tests use and print their locations
";

fn main() -> Result<()> {
    if env::var_os(startup_order::LINKER_ENV).is_some() {
        // The release build links through xtask (see startup_order.rs).
        std::process::exit(startup_order::link(env::args_os().skip(1).collect())?);
    }
    let args: Vec<String> = env::args().skip(1).collect();
    let root = project_root();
    // Paths on the command line are relative to where the user ran the command.
    let invoked_from = env::current_dir()?;
    env::set_current_dir(&root)?;
    let Some(cmd) = args.first() else {
        print!("{HELP}");
        return Ok(());
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "test" => test(&root, rest.iter().any(|a| a == "--long")),
        "fakes" => fakes::start(&root),
        "demo" => demo::run_demo(&root),
        "install" => install::run_install(&root, &invoked_from, rest),
        "release" => release::run_release(&root, &invoked_from, rest),
        "conformance" => conformance::run_conformance(&root, rest),
        "bench" => bench::run_bench(&root, rest),
        "mutants" => mutants::run_mutants(&root, rest),
        "startup-order" => startup_order::run_generate(&root),
        "docs" => docs::run(&root, rest.iter().any(|a| a == "--check")),
        "tools" => {
            let tools = tools::ensure(&root)?;
            for (key, value) in tools.env() {
                println!("{key}={}", value.display());
            }
            Ok(())
        }
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{HELP}"),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
///
/// Cargo's run-time `CARGO_MANIFEST_DIR` comes first: clones that share one target directory
/// (as CI's do, see [`target_dir`]) share one `target/debug/xtask`, and cargo does not put
/// back a clone's own build that it finds up to date, so the path built in may be another
/// clone's, or one since deleted.
pub fn project_root() -> PathBuf {
    root_from(env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from))
}

/// The workspace root above `manifest_dir` (cargo's run-time `CARGO_MANIFEST_DIR`) when that
/// holds a manifest, else above the directory this binary was built in.
fn root_from(manifest_dir: Option<PathBuf>) -> PathBuf {
    manifest_dir
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Where cargo builds go. On CI (`CI` set) the build cache lives outside the clone so that
/// later runs on the same machine reuse it; locally it is the usual `target/`.
pub fn target_dir(root: &Path) -> PathBuf {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    if env::var_os("CI").is_some() {
        return cache_home().join("target");
    }
    root.join("target")
}

/// A per-machine cache directory for this project, outside any clone.
pub fn cache_home() -> PathBuf {
    let base = env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(env::temp_dir);
    base.join("tf-short-lived-credentials")
}

pub fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()))
}

pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed with {status}", describe(cmd));
    }
    Ok(())
}

fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

fn test(root: &Path, long: bool) -> Result<()> {
    let target = target_dir(root);
    eprintln!("xtask: cargo target dir {}", target.display());

    tidy::check(root)?;
    docs::run(root, true)?;
    mutants::check_exclusions(root)?;

    let tools = tools::ensure(root)?;

    // The workspace has no doctests, so nextest (which skips them) covers every test.
    let nextest = cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut tests = cargo();
    if nextest {
        tests.args([
            "nextest",
            "run",
            "--workspace",
            "--all-targets",
            "--no-fail-fast",
        ]);
    } else {
        tests.args(["test", "--workspace", "--all-targets", "--no-fail-fast"]);
    }
    tests.env("CARGO_TARGET_DIR", &target);
    tests.env("XTASK_REQUIRE_TOOLS", "1");
    tests.env("CHECKPOINT_DISABLE", "1");
    for (key, value) in tools.env() {
        tests.env(key, value);
    }
    // Only the fault-schedule properties grow: `PROPTEST_CASES` would raise every property
    // test of the workspace (proptest applies it over each test's own count), and some of them
    // run Terraform's rules through the gRPC service, minutes per thousand cases.
    if long {
        tests.env("XTASK_FAULT_CASES", "10000");
    }
    run(&mut tests)?;
    run(cargo()
        .args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .env("CARGO_TARGET_DIR", &target))?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    eprintln!("xtask: all checks passed");
    Ok(())
}

#[cfg(test)]
mod root_tests {
    use super::*;

    #[test]
    fn the_run_time_manifest_dir_wins_when_it_holds_a_manifest() {
        let clone = tempfile::tempdir().unwrap();
        let xtask = clone.path().join("xtask");
        std::fs::create_dir(&xtask).unwrap();
        let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        // A directory without a manifest (a clone since deleted, say) is not taken.
        assert_eq!(root_from(Some(xtask.clone())), built_in);
        assert_eq!(root_from(None), built_in);
        std::fs::write(xtask.join("Cargo.toml"), "[package]\n").unwrap();
        assert_eq!(root_from(Some(xtask)), clone.path());
    }
}
