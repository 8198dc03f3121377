//! `cargo xtask demo`: the seed examples applied by real Terraform against both fakes.
//!
//! It installs the providers into a private filesystem mirror under `target/demo/`
//! (`cargo xtask install --dir`), builds and starts the fakes as processes, and points Terraform
//! at the mirror with a `filesystem_mirror` CLI configuration: `terraform init` installs the
//! providers as it would from a registry, by version constraint, and writes a lock file.
//! It then applies `examples/`, prints the outputs, shows that a second plan is empty,
//! destroys, and stops the fakes. Nothing is written outside the checkout.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::release::{self, Platform};
use crate::{install, run, target_dir, tools};

/// A started fake process; killed when dropped.
struct Fake {
    child: Child,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_fake(program: &Path, args: &[&std::ffi::OsStr]) -> Result<(Fake, String)> {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {}", program.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if line.trim().is_empty() {
        bail!("{} exited before it was ready", program.display());
    }
    Ok((Fake { child }, line.trim().to_owned()))
}

pub fn run_demo(root: &Path) -> Result<()> {
    let target = target_dir(root);
    let version = release::version(root)?;
    let release_bin = release::build(root)?;
    run(crate::cargo()
        .args(["build", "--quiet", "-p", "fake-lxd", "-p", "fake-oci"])
        .env("CARGO_TARGET_DIR", &target))?;
    let bin = target.join("debug");
    let terraform = tools::which("terraform").context(
        "the demo needs `terraform` on PATH (cargo xtask tools installs Terraform 1.0.3 under target/tools)",
    )?;

    let work = tempdir(root, "demo")?;
    let mirror = work.join("mirror");
    install::install(&release_bin, &mirror, &version, &Platform::host())?;
    let lxd_dir = work.join("lxd");
    let oci_dir = work.join("oci");
    std::fs::create_dir_all(&lxd_dir)?;
    let socket = lxd_dir.join("unix.socket");

    let (_lxd, lxd_ready) = start_fake(
        &bin.join("fake-lxd"),
        &[
            "--unix".as_ref(),
            socket.as_os_str(),
            "--https".as_ref(),
            "127.0.0.1:0".as_ref(),
        ],
    )?;
    println!("fake-lxd ready: {lxd_ready}");
    let (_oci, oci_ready) = start_fake(
        &bin.join("fake-oci"),
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--quickstart".as_ref(),
            oci_dir.as_os_str(),
        ],
    )?;
    println!("fake-oci ready: {oci_ready}");
    let oci_endpoint = json_field(&oci_ready, "endpoint")?;
    let user_ocid = config_value(&oci_dir.join("config"), "user")?;

    let tfrc = work.join("demo.tfrc");
    std::fs::write(
        &tfrc,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n  }}\n}}\n",
            mirror.display()
        ),
    )?;
    let config = work.join("config");
    write_root_module(root, &config, &version)?;

    let tf = |args: &[&str]| {
        let mut cmd = Command::new(&terraform);
        cmd.arg(format!("-chdir={}", config.display()))
            .args(args)
            .env("TF_CLI_CONFIG_FILE", &tfrc)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("LXD_DIR", &lxd_dir)
            .env("LXD_CONF", work.join("lxc-config"))
            .env("OCI_CONFIG_FILE", oci_dir.join("config"))
            .env(
                "CLIENT_HOST_OVERRIDES",
                format!("oci_identity.IdentityClient={oci_endpoint}"),
            )
            .env("TF_VAR_user_ocid", &user_ocid);
        cmd
    };
    run(&mut tf(&["init", "-input=false"]))?;
    println!(
        "demo: terraform init installed the providers from {} and wrote {}",
        mirror.display(),
        config.join(".terraform.lock.hcl").display()
    );
    run(&mut tf(&["apply", "-auto-approve", "-input=false"]))?;
    run(&mut tf(&["output", "-json"]))?;
    let plan = tf(&["plan", "-detailed-exitcode", "-input=false"]).status()?;
    match plan.code() {
        Some(0) => println!("demo: the second plan is empty"),
        _ => bail!("the second plan was not empty (exit {plan})"),
    }
    run(&mut tf(&["destroy", "-auto-approve", "-input=false"]))?;
    println!("demo: destroyed; stopping the fakes");
    Ok(())
}

fn tempdir(root: &Path, name: &str) -> Result<PathBuf> {
    let dir = root.join("target").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// One root module from the seed examples in `examples/`, with the `required_providers` a user
/// writes. The OCI seeds read the user from `oci_identity_user.test_user.id`, a resource outside
/// our providers, so the demo supplies that OCID as the variable `user_ocid`.
fn write_root_module(root: &Path, config: &Path, version: &str) -> Result<()> {
    std::fs::create_dir_all(config)?;
    let mut main = format!(
        "terraform {{\n  required_providers {{\n    lxd = {{\n      source  = \"terraform-lxd/lxd\"\n      version = \"~> {version}\"\n    }}\n    oci = {{\n      source  = \"oracle/oci\"\n      version = \"~> {version}\"\n    }}\n  }}\n}}\n\n",
    );
    main.push_str(
        "variable \"auth_token_description\" {\n  default = \"demo token\"\n}\n\nvariable \"user_ocid\" {}\n\n",
    );
    for file in [
        "examples/resources/lxd_trust_token/resource.tf",
        "examples/resources/oci_identity_auth_token/resource.tf",
        "examples/data-sources/oci_identity_auth_tokens/data-source.tf",
    ] {
        let text =
            std::fs::read_to_string(root.join(file)).with_context(|| format!("reading {file}"))?;
        main.push_str(&text.replace("oci_identity_user.test_user.id", "var.user_ocid"));
        main.push('\n');
    }
    main.push_str(
        "output \"oci_token\" {\n  value = oci_identity_auth_token.test_auth_token.token\n}\n",
    );
    std::fs::write(config.join("main.tf"), main)?;
    Ok(())
}

/// The string value of `"key":"value"` in a one-line JSON object.
///
/// The ready lines of our fakes are flat JSON objects; a JSON parser would be one more
/// dependency for xtask, which keeps few on purpose.
fn json_field(line: &str, key: &str) -> Result<String> {
    let needle = format!("\"{key}\":\"");
    let start = line
        .find(&needle)
        .with_context(|| format!("no `{key}` in {line}"))?
        + needle.len();
    let end = line[start..]
        .find('"')
        .with_context(|| format!("unterminated `{key}` in {line}"))?;
    Ok(line[start..start + end].to_owned())
}

/// A `key=value` line of an OCI config file.
fn config_value(path: &Path, key: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_owned())
        .with_context(|| format!("no `{key}` in {}", path.display()))
}
