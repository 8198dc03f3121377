//! `--debug`: the binary serves plaintext on its own and prints `TF_REATTACH_PROVIDERS`; real
//! Terraform (1.11 and 1.0.3) attaches to that process, without `dev_overrides` or `init`, and
//! drives the OCI seed example against fake-oci over protocol 6 and (forced) protocol 5. The
//! process outlives every Terraform run ("Test": true) and exits on Shutdown.

mod support;

use std::path::PathBuf;

use fake_oci::{ClockMode, Config, FakeOci};
use support::Workspace;
use support::{Handshake, Plugin, channel, health, oci_binary, shutdown};

/// Reads the debug banner up to the reattach line and returns its JSON.
async fn reattach_line(plugin: &mut Plugin) -> (String, serde_json::Value) {
    let mut banner = String::new();
    loop {
        let line = plugin.line().await;
        assert!(!line.is_empty(), "no reattach line in {banner:?}");
        banner.push_str(&line);
        if let Some(rest) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS=") {
            let json = rest.trim_matches('\'').to_owned();
            let value = serde_json::from_str(&json).unwrap();
            return (json, value);
        }
    }
}

async fn scenario(terraform: PathBuf, protocol: Option<&str>) {
    let fake = FakeOci::start(Config {
        clock: ClockMode::System,
        ..Config::for_testing()
    })
    .await
    .unwrap();
    let keys = tempfile::tempdir().unwrap();
    let oci_config = support::write_oci_config(&fake, keys.path());
    let overrides = format!("oci_identity.IdentityClient={}", fake.endpoint());
    let oci_config = oci_config.display().to_string();
    // The provider's own settings go to its process, not to Terraform's.
    let mut env = vec![
        ("OCI_CONFIG_FILE", oci_config.as_str()),
        ("CLIENT_HOST_OVERRIDES", overrides.as_str()),
        ("TF_LOG_PROVIDER", "info"),
    ];
    if let Some(protocol) = protocol {
        env.push(("TF_PROVIDER_FORCE_PROTOCOL", protocol));
    }
    let mut plugin = Plugin::spawn(oci_binary(), &["--debug"], &env);
    let (json, reattach) = reattach_line(&mut plugin).await;
    let entry = &reattach["registry.terraform.io/hashicorp/oci"];
    let expected_protocol = protocol.map_or(6, |p| p.parse().unwrap());
    assert_eq!(entry["Protocol"], "grpc");
    assert_eq!(entry["ProtocolVersion"], expected_protocol);
    assert_eq!(entry["Test"], true);
    assert_eq!(entry["Pid"], plugin.child.id().unwrap());
    assert_eq!(entry["Addr"]["Network"], "unix");
    let socket = PathBuf::from(entry["Addr"]["String"].as_str().unwrap());
    assert!(socket.starts_with(plugin.socket_dir()), "{socket:?}");

    // Terraform finds the provider only through the reattach variable: the CLI config has no
    // override and there is no `.terraform` directory.
    let mut ws = Workspace::new(&terraform, "oci_auth_token", oci_binary());
    let rc = ws.dir.path().join("reattach.tfrc");
    std::fs::write(&rc, "provider_installation {\n  direct {}\n}\n").unwrap();
    ws.set("TF_CLI_CONFIG_FILE", rc.display().to_string());
    ws.set("TF_REATTACH_PROVIDERS", json);
    ws.set("TF_VAR_user_ocid", fake.test_identity().user);
    ws.set("TF_VAR_auth_token_description", "reattached");
    let control = fake.control();
    let ws = tokio::task::spawn_blocking(move || {
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let held = control.state()["tokens"].as_array().unwrap().clone();
        assert_eq!(held.len(), 1);
        assert_eq!(ws.output("token"), held[0]["secret"]);
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 0, "second plan not empty:\n{text}");
        ws
    })
    .await
    .unwrap();

    // Terraform left the provider running; it still answers and can serve another run.
    assert!(
        plugin.child.try_wait().unwrap().is_none(),
        "the provider exited"
    );
    let hs = Handshake {
        core: "1".to_owned(),
        protocol: expected_protocol,
        network: "unix".to_owned(),
        address: socket,
        rpc: "grpc".to_owned(),
        cert: None,
    };
    let ch = channel(&hs, None).await.unwrap();
    assert_eq!(health(ch.clone()).await.unwrap(), 1);
    let control = fake.control();
    tokio::task::spawn_blocking(move || {
        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
        assert!(control.state()["tokens"].as_array().unwrap().is_empty());
    })
    .await
    .unwrap();

    shutdown(ch).await.unwrap();
    let (code, stderr) = plugin.exited().await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("oci provider configured"),
        "the runs were served by this process:\n{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(plugin.socket_dir()).unwrap().count(),
        0,
        "the socket directory is removed at exit"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_attaches_to_a_provider_started_with_debug() {
    for terraform in support::terraforms() {
        scenario(terraform.clone(), None).await;
        scenario(terraform, Some("5")).await;
    }
}
