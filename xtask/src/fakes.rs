//! `cargo xtask fakes`: both fakes as standalone processes, for the contributor loop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::{run, target_dir};

pub fn start(root: &Path) -> Result<()> {
    let target = target_dir(root);
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "-p", "fake-lxd", "-p", "fake-oci"])
            .env("CARGO_TARGET_DIR", &target),
    )?;
    let state = root.join("target").join("fakes");
    std::fs::create_dir_all(&state)?;
    let socket = state.join("lxd").join("unix.socket");
    std::fs::create_dir_all(socket.parent().unwrap_or(&state))?;
    let _ = std::fs::remove_file(&socket);
    let oci_dir = state.join("oci");

    let mut lxd = Command::new(target.join("debug/fake-lxd"))
        .arg("--unix")
        .arg(&socket)
        .args(["--https", "127.0.0.1:18443", "--control", "127.0.0.1:18444"])
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start fake-lxd")?;
    let mut oci = Command::new(target.join("debug/fake-oci"))
        .args([
            "--listen",
            "127.0.0.1:18080",
            "--control",
            "127.0.0.1:18081",
            "--quickstart",
        ])
        .arg(&oci_dir)
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start fake-oci")?;
    for (name, child) in [("fake-lxd", &mut lxd), ("fake-oci", &mut oci)] {
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        println!("{name}: {}", line.trim());
    }
    println!(
        "lxc: LXD_DIR={} lxc config trust list-tokens\noci: oci --config-file {}/config iam auth-token list --user-id <user> --endpoint http://127.0.0.1:18080\nCtrl-C stops both.",
        socket.parent().unwrap_or(&state).display(),
        oci_dir.display()
    );
    lxd.wait()?;
    oci.wait()?;
    Ok(())
}
