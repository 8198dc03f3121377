//! `cargo xtask conformance`: the conformance kit (`crates/provider/tests/conformance`) against
//! another frontend — a Terraform-compatible binary such as OpenTofu or another Terraform
//! release — and/or another build of the provider binaries.
//!
//! Without options it runs the default frontends (in-process service, gRPC 6, gRPC 5 and the
//! Terraform on PATH), as `cargo xtask test` does.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::{cargo, run, target_dir, tools};

pub fn run_conformance(root: &Path, args: &[String]) -> Result<()> {
    let mut frontend: Option<PathBuf> = None;
    let mut provider_dir: Option<PathBuf> = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--frontend" => {
                frontend = Some(rest.next().context("--frontend needs a command")?.into())
            }
            "--provider-dir" => {
                provider_dir = Some(
                    rest.next()
                        .context("--provider-dir needs a directory")?
                        .into(),
                )
            }
            other => {
                bail!("unknown option {other:?} (expected --frontend CMD, --provider-dir DIR)")
            }
        }
    }
    let mut cmd = cargo();
    cmd.args([
        "nextest",
        "run",
        "-p",
        "provider",
        "--test",
        "conformance",
        "--no-fail-fast",
    ])
    .env("CARGO_TARGET_DIR", target_dir(root))
    .env("CHECKPOINT_DISABLE", "1");
    for (key, value) in tools::ensure(root)?.env() {
        cmd.env(key, value);
    }
    if let Some(frontend) = frontend {
        let resolved = resolve(&frontend)?;
        eprintln!("xtask: conformance of {}", resolved.display());
        cmd.env("CONFORMANCE_FRONTEND", resolved);
    }
    if let Some(dir) = provider_dir {
        let dir = std::fs::canonicalize(&dir)
            .with_context(|| format!("provider directory {}", dir.display()))?;
        for name in ["terraform-provider-lxd", "terraform-provider-oci"] {
            if !dir.join(name).is_file() {
                bail!("{} has no {name}", dir.display());
            }
        }
        cmd.env("CONFORMANCE_PROVIDER_DIR", dir);
    }
    run(&mut cmd)
}

/// A command name on PATH, or a path.
fn resolve(cmd: &Path) -> Result<PathBuf> {
    if cmd.components().count() > 1 {
        return std::fs::canonicalize(cmd).with_context(|| format!("frontend {}", cmd.display()));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(cmd))
        .find(|p| p.is_file())
        .with_context(|| format!("{} is not on PATH", cmd.display()))
}
