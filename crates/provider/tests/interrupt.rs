//! Ctrl-C while the provider waits on the remote: `StopProvider` ends the wait at once and the
//! apply reports what exists (a created token goes into the state with an error), a cancelled
//! gRPC call stops where it is, and real Terraform, interrupted the way a terminal does it
//! (SIGINT to its whole process group, the provider included), exits promptly with the state
//! and the fake agreeing: an OCI token made before the interrupt is recorded and later
//! destroyed, and an LXD create held by the server ends in an error naming the token that may
//! exist.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use fake_oci::{ClockMode, Config, Delay, FakeOci};
use model::value::Value;
use provider::proto::tfplugin6 as v6;
use support::{PATIENCE, Plugin, channel, oci_binary, shutdown};
use tonic::transport::Channel;
use v6::provider_client::ProviderClient;

/// A fake whose new tokens stay CREATING until poked, and the environment that points the OCI
/// provider at it.
async fn holding_fake(dir: &Path) -> (FakeOci, Vec<(String, String)>) {
    let fake = FakeOci::start(Config {
        clock: ClockMode::System,
        ..Config::for_testing()
    })
    .await
    .unwrap();
    fake.control()
        .set_lifecycle(Delay::Manual, Delay::Immediate);
    let config = support::write_oci_config(&fake, dir);
    let env = vec![
        ("OCI_CONFIG_FILE".to_owned(), config.display().to_string()),
        (
            "CLIENT_HOST_OVERRIDES".to_owned(),
            format!("oci_identity.IdentityClient={}", fake.endpoint()),
        ),
    ];
    (fake, env)
}

/// Polls (with a deadline) until the provider created a token and is waiting for it.
async fn until_waiting(fake: &FakeOci) {
    let deadline = Instant::now() + PATIENCE * 2;
    loop {
        let requests = fake.control().requests();
        let created = requests
            .iter()
            .position(|r| r.method == "POST" && r.path.ends_with("/authTokens"));
        if created.is_some_and(|at| requests[at + 1..].iter().any(|r| r.method == "GET")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no create and wait: {requests:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tokens(fake: &FakeOci) -> Vec<serde_json::Value> {
    fake.control().state()["tokens"].as_array().unwrap().clone()
}

fn dynamic(value: &Value) -> Option<v6::DynamicValue> {
    Some(v6::DynamicValue {
        msgpack: provider::codec::encode(value),
        json: Vec::new(),
    })
}

/// Starts the OCI provider, configures it, and returns a client with the planned creation of
/// a token for the fake's user: (client, channel, planned, config).
async fn configured(
    plugin: &mut Plugin,
    user: &str,
) -> (ProviderClient<Channel>, Channel, Value, Value) {
    let hs = plugin.handshake().await;
    let ch = channel(&hs, None).await.unwrap();
    let mut client = ProviderClient::new(ch.clone());
    let provider_config =
        provider::codec::decode_block_json(&model::provider_oci::schema().block, b"{}").unwrap();
    let configured = client
        .configure_provider(v6::configure_provider::Request {
            terraform_version: "1.11.4".to_owned(),
            config: dynamic(&provider_config),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(configured.diagnostics.is_empty(), "{configured:?}");
    let schema = model::oci_identity_auth_token::schema();
    let json = serde_json::json!({"user_id": user, "description": "held"}).to_string();
    let config = provider::codec::decode_block_json(&schema.block, json.as_bytes()).unwrap();
    let plan = client
        .plan_resource_change(v6::plan_resource_change::Request {
            type_name: schema.name.to_owned(),
            prior_state: dynamic(&Value::Null),
            proposed_new_state: dynamic(&config),
            config: dynamic(&config),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(plan.diagnostics.is_empty(), "{plan:?}");
    let planned =
        provider::codec::decode_block(&schema.block, &plan.planned_state.unwrap().msgpack).unwrap();
    (client, ch, planned, config)
}

fn apply_request(planned: &Value, config: &Value) -> v6::apply_resource_change::Request {
    v6::apply_resource_change::Request {
        type_name: model::oci_identity_auth_token::NAME.to_owned(),
        prior_state: dynamic(&Value::Null),
        planned_state: dynamic(planned),
        config: dynamic(config),
        ..Default::default()
    }
}

#[tokio::test]
async fn stop_provider_ends_a_wait_and_the_created_token_is_reported() {
    let keys = tempfile::tempdir().unwrap();
    let (fake, env) = holding_fake(keys.path()).await;
    let user = fake.test_identity().user;
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("TF_LOG", "warn"));
    let mut plugin = Plugin::start(oci_binary(), "6", &env);
    let (mut client, ch, planned, config) = configured(&mut plugin, &user).await;

    let applying = tokio::spawn(async move {
        client
            .apply_resource_change(apply_request(&planned, &config))
            .await
    });
    until_waiting(&fake).await;
    let stopped_at = Instant::now();
    let stop = ProviderClient::new(ch.clone())
        .stop_provider(v6::stop_provider::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stop.error, "");
    let applied = tokio::time::timeout(PATIENCE, applying)
        .await
        .expect("the apply did not return after StopProvider")
        .unwrap()
        .unwrap()
        .into_inner();
    let took = stopped_at.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");

    // The token exists: its id is in the returned state, with an error saying why it stopped.
    let held = tokens(&fake);
    assert_eq!(held.len(), 1, "{held:?}");
    let schema = model::oci_identity_auth_token::schema();
    let state =
        provider::codec::decode_block(&schema.block, &applied.new_state.unwrap().msgpack).unwrap();
    assert_eq!(
        state.get("id"),
        &Value::string(held[0]["id"].as_str().unwrap())
    );
    assert_eq!(state.get("state"), &Value::string("CREATING"));
    assert_eq!(applied.diagnostics.len(), 1, "{:?}", applied.diagnostics);
    let diag = &applied.diagnostics[0];
    assert_eq!(diag.severity, v6::diagnostic::Severity::Error as i32);
    assert_eq!(diag.summary, "Interrupted");
    assert!(
        diag.detail.contains(held[0]["id"].as_str().unwrap()),
        "{diag:?}"
    );

    // The stop ended the calls in flight only: the provider serves the next one.
    let mut client = ProviderClient::new(ch.clone());
    let read = client
        .read_resource(v6::read_resource::Request {
            type_name: schema.name.to_owned(),
            current_state: dynamic(&state),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);

    shutdown(ch).await.unwrap();
    let (code, stderr) = plugin.exited().await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(r#""@level":"warn""#) && stderr.contains("interrupted"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_cancelled_grpc_call_stops_where_it_is() {
    let keys = tempfile::tempdir().unwrap();
    let (fake, env) = holding_fake(keys.path()).await;
    let user = fake.test_identity().user;
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("TF_LOG", "warn"));
    let mut plugin = Plugin::start(oci_binary(), "6", &env);
    let (mut client, ch, planned, config) = configured(&mut plugin, &user).await;

    let applying = tokio::spawn(async move {
        client
            .apply_resource_change(apply_request(&planned, &config))
            .await
    });
    until_waiting(&fake).await;
    // Dropping the client's call resets its HTTP/2 stream, as Terraform's cancelled context does.
    applying.abort();
    assert!(applying.await.unwrap_err().is_cancelled());

    // The provider noticed: it logs the abandoned call, and polls the fake no more.
    let deadline = Instant::now() + PATIENCE;
    let stderr_path = plugin.stderr_path.clone();
    loop {
        let stderr = std::fs::read_to_string(&stderr_path).unwrap();
        if stderr.contains("ApplyResourceChange") {
            assert!(stderr.contains("Terraform cancelled the call"), "{stderr}");
            break;
        }
        assert!(Instant::now() < deadline, "no sign of the cancel: {stderr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let polls = fake.control().requests().len();
    // The provider still serves, and by the time a full round trip is done nothing more came.
    let mut client = ProviderClient::new(ch.clone());
    client
        .get_metadata(v6::get_metadata::Request {})
        .await
        .unwrap();
    assert_eq!(fake.control().requests().len(), polls);
    shutdown(ch).await.unwrap();
    let (code, stderr) = plugin.exited().await;
    assert_eq!(code, Some(0), "{stderr}");
}

/// `kill -INT -- -group`: the signal a terminal sends on Ctrl-C.
fn interrupt_group(group: u32) {
    let status = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{group}")])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs `terraform apply` in a process group of its own, interrupts the group once `ready`
/// returns, and returns Terraform's output and how long it took to exit after the interrupt.
async fn run_and_interrupt<F: std::future::Future<Output = ()>>(
    ws: &support::Workspace,
    ready: impl FnOnce() -> F,
) -> (String, Duration) {
    let mut cmd = tokio::process::Command::new(&ws.terraform);
    cmd.arg(format!("-chdir={}", ws.dir.path().display()))
        .args(["apply", "-auto-approve", "-input=false", "-no-color"])
        .env_remove("TF_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (k, v) in &ws.env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let group = child.id().unwrap();
    ready().await;
    let interrupted_at = Instant::now();
    interrupt_group(group);
    let out = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("terraform did not exit after the interrupt")
        .unwrap();
    let took = interrupted_at.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    (text, took)
}

async fn terraform_interrupted_during_a_wait(terraform: std::path::PathBuf) {
    let keys = tempfile::tempdir().unwrap();
    let (fake, env) = holding_fake(keys.path()).await;
    let user = fake.test_identity().user;
    let mut ws = support::Workspace::new(&terraform, "oci_auth_token", oci_binary());
    for (k, v) in env {
        ws.set(&k, v);
    }
    ws.set("TF_VAR_user_ocid", user);
    ws.set("TF_VAR_auth_token_description", "interrupted");
    let log = ws.dir.path().join("terraform.log");
    ws.set("TF_LOG", "WARN");
    ws.set("TF_LOG_PATH", log.display().to_string());

    let (text, took) = run_and_interrupt(&ws, || until_waiting(&fake)).await;
    assert!(took < Duration::from_secs(10), "took {took:?}:\n{text}");
    assert!(text.contains("Interrupted"), "{text}");

    // Terraform recorded the token the provider made, and it is the fake's only one.
    let held = tokens(&fake);
    assert_eq!(held.len(), 1, "{held:?}");
    let ws2 = ws;
    let id = held[0]["id"].as_str().unwrap().to_owned();
    let ws = tokio::task::spawn_blocking(move || {
        let attrs = ws2.attrs("oci_identity_auth_token.test_auth_token");
        assert_eq!(attrs["id"], id.as_str(), "{attrs}");
        ws2
    })
    .await
    .unwrap();

    // Terraform's own log shows the provider's warning at WARN.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.lines().any(|l| l.contains("[WARN]")
            && l.contains("provider.terraform-provider-oci")
            && l.contains("interrupted: stopping the calls in flight")),
        "{logged}"
    );

    // Once the token is ACTIVE, a destroy removes it: nothing is left behind.
    fake.control().poke(true);
    tokio::task::spawn_blocking(move || {
        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
    })
    .await
    .unwrap();
    let left: Vec<_> = tokens(&fake)
        .into_iter()
        .filter(|t| t["state"] != "DELETED")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn terraform_interrupted_during_a_wait_records_the_token_and_exits_promptly() {
    for terraform in support::terraforms() {
        terraform_interrupted_during_a_wait(terraform).await;
    }
}

/// LXD holds the create: Terraform, interrupted, exits within the grace with an error that
/// names the token that may exist, and records nothing.
async fn terraform_interrupted_during_an_lxd_create(terraform: std::path::PathBuf) {
    let lxd_dir = tempfile::tempdir().unwrap();
    let fake = fake_lxd::FakeLxd::start(fake_lxd::Config {
        clock: fake_lxd::ClockMode::System,
        unix_socket: Some(lxd_dir.path().join("unix.socket")),
        ..fake_lxd::Config::for_testing()
    })
    .await
    .unwrap();
    fake.control().add_fault(fake_lxd::faults::Rule {
        method: "POST".into(),
        path: "/1.0/certificates".into(),
        times: None,
        action: fake_lxd::faults::Action::Delay { delay_ms: 120_000 },
    });
    let lxd_binary = Path::new(env!("CARGO_BIN_EXE_terraform-provider-lxd"));
    let mut ws = support::Workspace::new(&terraform, "lxd_trust_token", lxd_binary);
    ws.set("LXD_DIR", lxd_dir.path().display().to_string());
    ws.set(
        "LXD_CONF",
        ws.dir.path().join("lxc-config").display().to_string(),
    );
    let ready = || async {
        // The create took its baseline of operations: the held POST comes next.
        let deadline = Instant::now() + PATIENCE * 2;
        while !fake
            .control()
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path == "/1.0/operations")
        {
            assert!(Instant::now() < deadline, "no create started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (text, took) = run_and_interrupt(&ws, ready).await;
    assert!(
        took < provider::interrupt::GRACE + Duration::from_secs(8),
        "took {took:?}:\n{text}"
    );
    assert!(
        text.contains("Interrupted") && text.contains("mytoken"),
        "{text}"
    );
    assert!(fake.control().pending_tokens().is_empty());
    let state = tokio::task::spawn_blocking(move || ws.attrs("lxd_trust_token.token1"))
        .await
        .unwrap();
    assert!(state.is_null(), "{state}");
}

#[tokio::test]
async fn terraform_interrupted_during_an_lxd_create_exits_promptly_and_says_what_may_exist() {
    for terraform in support::terraforms() {
        terraform_interrupted_during_an_lxd_create(terraform).await;
    }
}
