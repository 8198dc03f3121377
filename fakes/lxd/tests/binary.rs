//! The built `fake-lxd` binary: it prints one JSON line when ready and serves what it printed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_its_addresses_and_serves_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("unix.socket");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-lxd"))
        .arg("--unix")
        .arg(&socket)
        .args([
            "--https",
            "127.0.0.1:0",
            "--profile",
            "6",
            "--control",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start fake-lxd");
    let stdout = child.stdout.take().expect("stdout");
    let _guard = Kill(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), line)
        .await
        .expect("ready line in time")
        .expect("join")
        .expect("read");
    let ready: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    assert_eq!(ready["profile"], "6");
    assert_eq!(ready["fingerprint"].as_str().map(str::len), Some(64));

    let root = common::unix_request(&socket, "GET", "/1.0", None).await;
    assert_eq!(root.status, 200);
    let meta = &root.json()["metadata"];
    assert_eq!(meta["auth"], "trusted");
    assert!(
        meta["api_extensions"]
            .as_array()
            .expect("extensions")
            .iter()
            .any(|e| e == "explicit_trust_token")
    );
    assert_eq!(
        meta["environment"]["certificate_fingerprint"],
        ready["fingerprint"]
    );

    let created = common::unix_request(
        &socket,
        "POST",
        "/1.0/certificates",
        Some(r#"{"name":"bin","type":"client","token":true}"#),
    )
    .await;
    assert_eq!(created.status, 202);
    assert_eq!(
        created.json()["metadata"]["metadata"]["addresses"][0],
        ready["https"]
    );

    let https = common::https_request(
        &common::https_client(None),
        ready["https"].as_str().expect("https"),
        "GET",
        "/1.0",
        None,
    )
    .await;
    assert_eq!(https.json()["metadata"]["auth"], "untrusted");

    let control = ready["control"].as_str().expect("control url");
    let state: serde_json::Value = reqwest::get(format!("{control}/_fake/state"))
        .await
        .expect("control")
        .json()
        .await
        .expect("json");
    assert_eq!(state["operations"].as_array().map(Vec::len), Some(1));
}
