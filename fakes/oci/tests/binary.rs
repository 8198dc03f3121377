//! The `fake-oci` binary: `--quickstart` writes a ready config, and a signed request works.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with `--quickstart DIR` and `args`; returns it and its ready line.
fn quickstart(dir: &Path, args: &[&str]) -> (Running, serde_json::Value) {
    // The fake runs in its own process: the test's HTTPS clients need rustls's one provider.
    let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-oci"))
        .args(["--listen", "127.0.0.1:0", "--quickstart"])
        .arg(dir)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    (running, ready)
}

/// A value of the OCI config file `--quickstart` wrote into `dir`.
fn config_value(dir: &Path, key: &str) -> String {
    std::fs::read_to_string(dir.join("config"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap()
        .to_owned()
}

/// Signs with the key `--quickstart` wrote into `dir`.
fn quickstart_signer(dir: &Path) -> common::Signer {
    let value = |key: &str| config_value(dir, key);
    let key = std::fs::read_to_string(value("key_file")).unwrap();
    let pem = key.trim_end().trim_end_matches("OCI_API_KEY");
    common::Signer::new(
        &value("tenancy"),
        &value("user"),
        &value("fingerprint"),
        pem,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn quickstart_writes_a_working_config() {
    let dir = tempfile::tempdir().unwrap();
    let (_running, ready) = quickstart(dir.path(), &[]);
    let endpoint = ready["endpoint"].as_str().unwrap();
    assert!(endpoint.starts_with("http://127.0.0.1:"));
    assert!(
        ready["control"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );

    let value = |key: &str| config_value(dir.path(), key);
    assert_eq!(value("user"), ready["user"].as_str().unwrap());
    assert_eq!(value("fingerprint"), ready["fingerprint"].as_str().unwrap());
    assert_eq!(value("region"), "us-ashburn-1");
    let key = std::fs::read_to_string(value("key_file")).unwrap();
    assert!(
        key.trim_end().ends_with("OCI_API_KEY"),
        "the key carries the OCI label line"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("config"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let signer = quickstart_signer(dir.path());
    let url = format!("{endpoint}/20160918/users/{}/authTokens", value("user"));
    let created = common::send(
        &signer,
        "POST",
        &url,
        Some(r#"{"description":"from the binary"}"#),
        &[],
        time::OffsetDateTime::now_utc(),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let state: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/_fake/state",
            ready["control"].as_str().unwrap()
        ))
        .bearer_auth(ready["control_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["tokens"].as_array().unwrap().len(), 1);
    let refused = reqwest::get(format!(
        "{}/_fake/state",
        ready["control"].as_str().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(refused.status(), 401);
}

/// Two fakes started by hand (no `--rng-seed`) issue different first token ids and secrets;
/// `--rng-seed` makes them the same.
#[tokio::test(flavor = "multi_thread")]
async fn default_seeds_differ_per_run() {
    async fn first_token(args: &[&str]) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let (_running, ready) = quickstart(dir.path(), args);
        let signer = quickstart_signer(dir.path());
        let url = format!(
            "{}/20160918/users/{}/authTokens",
            ready["endpoint"].as_str().unwrap(),
            ready["user"].as_str().unwrap()
        );
        let created = common::send(
            &signer,
            "POST",
            &url,
            Some(r#"{"description":"first"}"#),
            &[],
            time::OffsetDateTime::now_utc(),
        )
        .await;
        assert_eq!(created.status, 200, "{}", created.body);
        (
            created.body["id"].as_str().unwrap().to_owned(),
            created.body["token"].as_str().unwrap().to_owned(),
        )
    }
    let (id_a, secret_a) = first_token(&[]).await;
    let (id_b, secret_b) = first_token(&[]).await;
    assert_ne!(id_a, id_b);
    assert_ne!(secret_a, secret_b);
    assert_eq!(
        first_token(&["--rng-seed", "7"]).await,
        first_token(&["--rng-seed", "7"]).await
    );
}

#[test]
fn a_non_loopback_control_address_is_refused_unless_forced() {
    let out = Command::new(env!("CARGO_BIN_EXE_fake-oci"))
        .args(["--listen", "127.0.0.1:0", "--control", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
    assert!(out.stdout.is_empty(), "no ready line");
}

#[test]
fn bad_arguments_fail_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_fake-oci"))
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.json");
    std::fs::write(&seed, "{not json").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fake-oci"))
        .arg("--seed")
        .arg(&seed)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("parsing"));
}
