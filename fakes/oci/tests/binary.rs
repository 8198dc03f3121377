//! The `fake-oci` binary: `--quickstart` writes a ready config, and a signed request works.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quickstart_writes_a_working_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-oci"))
        .args(["--listen", "127.0.0.1:0", "--quickstart"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    let endpoint = ready["endpoint"].as_str().unwrap();
    assert!(endpoint.starts_with("http://127.0.0.1:"));
    assert!(
        ready["control"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );

    let config = std::fs::read_to_string(dir.path().join("config")).unwrap();
    let value = |key: &str| {
        config
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_owned()
    };
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

    let pem = key.trim_end().trim_end_matches("OCI_API_KEY");
    let signer = common::Signer::new(
        &value("tenancy"),
        &value("user"),
        &value("fingerprint"),
        pem,
    );
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
    let state: serde_json::Value = reqwest::get(format!(
        "{}/_fake/state",
        ready["control"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(state["tokens"].as_array().unwrap().len(), 1);
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
