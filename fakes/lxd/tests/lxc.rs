//! The real `lxc` client drives the fake and a real LXD daemon; outputs compared (normalised).

mod common;

use std::path::Path;
use std::process::Command;

use common::{RealDaemon as RealLxd, normalise, tool, unix_request};
use fake_lxd::{Config, FakeLxd};

/// Runs `lxc` with `LXD_DIR=dir` (its `local:` remote) and a private `LXD_CONF`.
fn lxc(lxc: &Path, dir: &Path, conf: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(lxc)
        .args(args)
        .env("LXD_DIR", dir)
        .env("LXD_CONF", conf)
        .env("HOME", conf)
        .output()
        .expect("run lxc");
    let stderr = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| {
            !l.contains("first time running LXD")
                && !l.contains("To start your first")
                && !l.contains("lxc launch")
                && !l.trim().is_empty()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let short_fingerprint = regex::Regex::new(r"\b[0-9a-f]{12}\b").expect("pattern");
    let stdout = normalise(&String::from_utf8_lossy(&out.stdout));
    let stdout = short_fingerprint
        .replace_all(&stdout, "<FP12>")
        .into_owned();
    (
        out.status.code().unwrap_or(-1),
        common::unordered(args, stdout),
        normalise(&stderr),
    )
}

fn session(lxc_bin: &Path, dir: &Path) -> Vec<(String, (i32, String, String))> {
    let conf = tempfile::tempdir().expect("conf dir");
    let other = tempfile::tempdir().expect("second conf dir");
    let run = |args: &[&str]| lxc(lxc_bin, dir, conf.path(), args);
    let mut log = Vec::new();
    log.push((
        "trust add".to_owned(),
        run(&["config", "trust", "add", "--name", "cli-tok"]),
    ));
    log.push((
        "trust add restricted".to_owned(),
        run(&[
            "config",
            "trust",
            "add",
            "--name",
            "cli-restr",
            "--restricted",
            "--projects",
            "default",
        ]),
    ));
    for format in ["table", "csv", "json", "yaml", "compact"] {
        log.push((
            format!("list-tokens {format}"),
            run(&["config", "trust", "list-tokens", "--format", format]),
        ));
    }
    log.push((
        "revoke-token".to_owned(),
        run(&["config", "trust", "revoke-token", "cli-restr"]),
    ));
    log.push((
        "revoke-token again".to_owned(),
        run(&["config", "trust", "revoke-token", "cli-restr"]),
    ));
    log.push((
        "list-tokens after revoke".to_owned(),
        run(&["config", "trust", "list-tokens", "--format", "csv"]),
    ));
    // The raw csv (not normalised) carries the token of `cli-restr`.
    let csv = Command::new(lxc_bin)
        .args(["config", "trust", "list-tokens", "--format", "csv"])
        .env("LXD_DIR", dir)
        .env("LXD_CONF", conf.path())
        .env("HOME", conf.path())
        .output()
        .expect("lxc");
    let csv = String::from_utf8_lossy(&csv.stdout).into_owned();
    let token = csv
        .lines()
        .find(|l| l.starts_with("cli-tok,"))
        .and_then(|l| l.split(',').nth(1))
        .unwrap_or_default()
        .to_owned();
    log.push((
        "remote add".to_owned(),
        run(&["remote", "add", "r1", &token]),
    ));
    log.push((
        "remote add again, same cert".to_owned(),
        run(&["remote", "add", "r2", &token]),
    ));
    log.push((
        "remote add again, other cert".to_owned(),
        lxc(lxc_bin, dir, other.path(), &["remote", "add", "r3", &token]),
    ));
    log.push((
        "trust list".to_owned(),
        run(&["config", "trust", "list", "--format", "csv"]),
    ));
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lxc_sees_the_fake_as_it_sees_the_real_daemon() {
    let Some(lxd) = tool("XTASK_LXD") else { return };
    let Some(lxc_bin) = tool("XTASK_LXC") else {
        return;
    };
    let real = RealLxd::start(&lxd);
    let body = format!(r#"{{"config":{{"core.https_address":"{}"}}}}"#, real.https);
    assert_eq!(
        unix_request(&real.socket(), "PATCH", "/1.0", Some(&body))
            .await
            .status,
        200
    );

    let fake_dir = tempfile::tempdir().expect("fake dir");
    let fake = FakeLxd::start(Config {
        unix_socket: Some(fake_dir.path().join("unix.socket")),
        ..Config::for_testing()
    })
    .await
    .expect("fake starts");

    let real_dir = real.dir.path().to_owned();
    let lxc_real = lxc_bin.clone();
    let expected = tokio::task::spawn_blocking(move || session(&lxc_real, &real_dir))
        .await
        .expect("real session");
    let fake_path = fake_dir.path().to_owned();
    let actual = tokio::task::spawn_blocking(move || session(&lxc_bin, &fake_path))
        .await
        .expect("fake session");
    common::assert_same_steps(&expected, &actual, &fake);
    // The consumed token left a trusted certificate in the fake.
    assert_eq!(
        fake.control().state()["certificates"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
