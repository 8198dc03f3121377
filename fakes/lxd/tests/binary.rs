//! The built `fake-lxd` binary: it prints one JSON line when ready and serves what it printed.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary on `socket` with `args`; returns it and its ready line.
async fn start(socket: &Path, args: &[&str]) -> (Kill, serde_json::Value) {
    // The fake runs in its own process: the test's HTTPS clients need rustls's one provider.
    let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-lxd"))
        .arg("--unix")
        .arg(socket)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start fake-lxd");
    let stdout = child.stdout.take().expect("stdout");
    let guard = Kill(child);
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
    (guard, ready)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_its_addresses_and_serves_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("unix.socket");
    let (_guard, ready) = start(
        &socket,
        &[
            "--https",
            "127.0.0.1:0",
            "--profile",
            "6",
            "--control",
            "127.0.0.1:0",
        ],
    )
    .await;
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
    let token = ready["control_token"].as_str().expect("control token");
    let state: serde_json::Value = reqwest::Client::new()
        .get(format!("{control}/_fake/state"))
        .bearer_auth(token)
        .send()
        .await
        .expect("control")
        .json()
        .await
        .expect("json");
    assert_eq!(state["operations"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_wants_the_printed_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("unix.socket");
    let (_guard, ready) = start(&socket, &[]).await;
    let control = ready["control"].as_str().expect("control url");
    let token = ready["control_token"].as_str().expect("control token");
    assert_eq!(token.len(), 64, "{token}");
    let client = reqwest::Client::new();
    let url = format!("{control}/_fake/state");
    let status = |request: reqwest::RequestBuilder| async move {
        request.send().await.expect("control").status().as_u16()
    };
    assert_eq!(status(client.get(&url)).await, 401);
    assert_eq!(
        status(client.get(&url).bearer_auth("not-the-token")).await,
        401
    );
    assert_eq!(
        status(client.get(&url).bearer_auth(&token[..token.len() - 1])).await,
        401
    );
    assert_eq!(status(client.get(&url).bearer_auth(token)).await, 200);
}

#[test]
fn a_non_loopback_control_address_is_refused_unless_forced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_fake-lxd"))
        .arg("--unix")
        .arg(dir.path().join("unix.socket"))
        .args(["--control", "0.0.0.0:0"])
        .output()
        .expect("run fake-lxd");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
    assert!(out.stdout.is_empty(), "no ready line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_remote_control_binds_any_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("unix.socket");
    let (_guard, ready) = start(
        &socket,
        &["--control", "0.0.0.0:0", "--force-remote-control"],
    )
    .await;
    let control = ready["control"].as_str().expect("control url");
    assert!(control.starts_with("http://0.0.0.0:"), "{control}");
}

/// Two fakes started by hand (no `--seed`) issue different first operation ids and secrets;
/// `--seed` makes them the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_seeds_differ_per_run() {
    async fn first_token(args: &[&str]) -> (String, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("unix.socket");
        let (_guard, _) = start(&socket, args).await;
        let created = common::unix_request(
            &socket,
            "POST",
            "/1.0/certificates",
            Some(r#"{"name":"first","type":"client","token":true}"#),
        )
        .await;
        assert_eq!(created.status, 202);
        let op = &created.json()["metadata"];
        (
            op["id"].as_str().expect("id").to_owned(),
            op["metadata"]["secret"]
                .as_str()
                .expect("secret")
                .to_owned(),
        )
    }
    let (id_a, secret_a) = first_token(&[]).await;
    let (id_b, secret_b) = first_token(&[]).await;
    assert_ne!(id_a, id_b);
    assert_ne!(secret_a, secret_b);
    assert_eq!(
        first_token(&["--seed", "7"]).await,
        first_token(&["--seed", "7"]).await
    );
}

/// `--profile incus-6.0` makes an Incus: it says so in `GET /1.0`, shows no
/// `explicit_trust_token`, and its control API reports the profile by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_the_incus_profile() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("unix.socket");
    let (_guard, ready) = start(&socket, &["--profile", "incus-6.0"]).await;
    assert_eq!(ready["profile"], "incus-6.0");
    let root = common::unix_request(&socket, "GET", "/1.0", None).await;
    let meta = &root.json()["metadata"];
    assert_eq!(meta["environment"]["server"], "incus");
    assert_eq!(meta["environment"]["server_version"], "6.0.4");
    assert_eq!(meta["auth_user_method"], "unix");
    let extensions = meta["api_extensions"].as_array().expect("extensions");
    assert_eq!(extensions.len(), 450);
    assert!(!extensions.iter().any(|e| e == "explicit_trust_token"));
    let control = ready["control"].as_str().expect("control url");
    let token = ready["control_token"].as_str().expect("control token");
    let state: serde_json::Value = reqwest::Client::new()
        .get(format!("{control}/_fake/state"))
        .bearer_auth(token)
        .send()
        .await
        .expect("control")
        .json()
        .await
        .expect("json");
    assert_eq!(state["profile"], "incus-6.0");

    // The control API restarts it as another server.
    let switch = |profile: &str| {
        reqwest::Client::new()
            .post(format!("{control}/_fake/profile"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "profile": profile }))
            .send()
    };
    let status = switch("5.0").await.expect("control").status().as_u16();
    assert_eq!(status, 204);
    let root = common::unix_request(&socket, "GET", "/1.0", None).await;
    assert_eq!(root.json()["metadata"]["environment"]["server"], "lxd");
    let refused = switch("5.21").await.expect("control");
    assert_eq!(refused.status().as_u16(), 400);
    assert_eq!(
        refused.text().await.expect("text"),
        "unknown profile \"5.21\": expected 5.0, 6 or incus-6.0"
    );
}
