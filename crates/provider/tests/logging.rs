//! The provider's stderr: hclog JSON lines at the level `TF_LOG_PROVIDER` (else `TF_LOG`) asks
//! for, nothing when neither is set, and no secret of the provider configuration in the log or
//! in the diagnostics, whether configuring succeeds or fails. Real Terraform (1.11 and 1.0.3)
//! parses our lines and re-logs each at its own level, so `TF_LOG` filters them.

mod support;

use model::value::Value;
use provider::proto::tfplugin6 as v6;
use support::{Plugin, channel, health, oci_binary, shutdown};

const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

/// Starts the OCI provider with `env`, asks for its health, configures it with `config`, and
/// returns the diagnostics and everything it wrote on stderr.
async fn session(env: &[(&str, &str)], config: Option<Value>) -> (Vec<v6::Diagnostic>, String) {
    let mut plugin = Plugin::start(oci_binary(), "6", env);
    let hs = plugin.handshake().await;
    let ch = channel(&hs, None).await.unwrap();
    assert_eq!(health(ch.clone()).await.unwrap(), 1);
    let mut diagnostics = Vec::new();
    if let Some(config) = config {
        diagnostics = v6::provider_client::ProviderClient::new(ch.clone())
            .configure_provider(v6::configure_provider::Request {
                terraform_version: "1.11.4".to_owned(),
                config: Some(v6::DynamicValue {
                    msgpack: provider::codec::encode(&config),
                    json: vec![],
                }),
                client_capabilities: None,
            })
            .await
            .unwrap()
            .into_inner()
            .diagnostics;
    }
    shutdown(ch).await.unwrap();
    let (code, stderr) = plugin.exited().await;
    assert_eq!(code, Some(0), "{stderr}");
    (diagnostics, stderr)
}

/// Every line is an hclog JSON object; returns the levels seen.
fn levels(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            let level = v["@level"].as_str().unwrap().to_owned();
            assert!(LEVELS.contains(&level.as_str()), "{line}");
            assert!(v["@message"].is_string(), "{line}");
            // go-plugin parses `@timestamp` with hclog's layout, six fractional digits exactly.
            let at = v["@timestamp"].as_str().unwrap();
            let hclog =
                regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
                    .unwrap();
            assert!(hclog.is_match(at), "timestamp {at:?}");
            level
        })
        .collect()
}

#[tokio::test]
async fn levels_follow_tf_log_provider_then_tf_log() {
    let (_, quiet) = session(&[], None).await;
    assert_eq!(quiet, "", "nothing is logged unless asked");

    let (_, trace) = session(&[("TF_LOG", "trace")], None).await;
    let seen = levels(&trace);
    assert!(seen.iter().any(|l| l == "trace"), "{trace}");

    let (_, off) = session(&[("TF_LOG", "trace"), ("TF_LOG_PROVIDER", "off")], None).await;
    assert_eq!(off, "", "TF_LOG_PROVIDER wins over TF_LOG");

    let (_, warn) = session(&[("TF_LOG", "trace"), ("TF_LOG_PROVIDER", "WARN")], None).await;
    assert!(
        levels(&warn).iter().all(|l| l == "warn" || l == "error"),
        "{warn}"
    );
}

fn oci_config(fingerprint: &str, private_key: &str, password: Option<&str>) -> Value {
    let fake = |name: &str| Value::string(format!("ocid1.{name}.oc1..aaaaaaaalogtest"));
    let mut config = model::value::Value::object([
        ("tenancy_ocid", fake("tenancy")),
        ("user_ocid", fake("user")),
        ("fingerprint", Value::string(fingerprint)),
        ("region", Value::string("us-ashburn-1")),
        ("private_key", Value::string(private_key)),
    ]);
    if let (Value::Object(map), Some(p)) = (&mut config, password) {
        map.insert("private_key_password".to_owned(), Value::string(p));
    }
    // Every other attribute of the provider schema is null, as Terraform sends it.
    let schema = model::provider_oci::schema();
    let json = serde_json::to_string(&to_json(&config)).unwrap();
    provider::codec::decode_block_json(&schema.block, json.as_bytes()).unwrap()
}

fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Object(map) => {
            serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        Value::String(s) => s.as_str().into(),
        _ => serde_json::Value::Null,
    }
}

#[tokio::test]
async fn configuration_secrets_reach_neither_the_log_nor_the_diagnostics() {
    // A usable key: configuring succeeds and the log says so, without the key.
    let fake = fake_oci::FakeOci::start(fake_oci::Config::for_testing())
        .await
        .unwrap();
    let id = fake.test_identity();
    let pem = id.private_key_pem.as_str();
    let config = oci_config(&id.fingerprint, pem, None);
    let (diags, stderr) = session(&[("TF_LOG", "trace")], Some(config)).await;
    assert!(diags.is_empty(), "{diags:?}");
    assert!(stderr.contains("oci provider configured"), "{stderr}");
    let body: Vec<&str> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .collect();
    assert!(!body.is_empty());
    for line in body {
        assert!(
            !stderr.contains(line),
            "a line of the private key was logged"
        );
    }

    // An unusable key and a passphrase: a clear error, and neither secret is repeated.
    let key =
        "-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL0123456789\n-----END PRIVATE KEY-----\n";
    let (diags, stderr) = session(
        &[("TF_LOG", "trace")],
        Some(oci_config(
            &id.fingerprint,
            key,
            Some("SECRETPASSPHRASE9876"),
        )),
    )
    .await;
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].severity, v6::diagnostic::Severity::Error as i32);
    let shown = format!("{diags:?}{stderr}");
    for secret in ["SECRETKEYMATERIAL0123456789", "SECRETPASSPHRASE9876"] {
        assert!(!shown.contains(secret), "{secret} was shown:\n{shown}");
    }
}

/// Runs `terraform plan` of the OCI scenario with `TF_LOG=level` and returns Terraform's log.
fn terraform_log(terraform: &std::path::Path, fake: &fake_oci::FakeOci, level: &str) -> String {
    let mut ws = support::Workspace::new(terraform, "oci_auth_token", oci_binary());
    let config = support::write_oci_config(fake, ws.dir.path());
    ws.set("OCI_CONFIG_FILE", config.display().to_string());
    ws.set(
        "CLIENT_HOST_OVERRIDES",
        format!("oci_identity.IdentityClient={}", fake.endpoint()),
    );
    ws.set("TF_VAR_user_ocid", fake.test_identity().user);
    ws.set("TF_VAR_auth_token_description", "logged");
    let log = ws.dir.path().join("terraform.log");
    ws.set("TF_LOG", level);
    ws.set("TF_LOG_PATH", log.display().to_string());
    ws.ok(&["plan", "-input=false"]);
    std::fs::read_to_string(&log).unwrap()
}

#[tokio::test]
async fn terraform_logs_our_lines_at_their_own_level() {
    let fake = std::sync::Arc::new(
        fake_oci::FakeOci::start(fake_oci::Config {
            clock: fake_oci::ClockMode::System,
            ..fake_oci::Config::for_testing()
        })
        .await
        .unwrap(),
    );
    for terraform in support::terraforms() {
        let fake = fake.clone();
        tokio::task::spawn_blocking(move || {
            let ours = |log: &str| -> Vec<String> {
                log.lines()
                    .filter(|l| l.contains("oci provider configured"))
                    .map(str::to_owned)
                    .collect()
            };
            // Our INFO line shows as INFO, at INFO and at DEBUG, with its fields.
            for level in ["INFO", "DEBUG"] {
                let log = terraform_log(&terraform, &fake, level);
                let lines = ours(&log);
                assert_eq!(lines.len(), 1, "TF_LOG={level}:\n{log}");
                let line = &lines[0];
                assert!(
                    line.contains("[INFO]")
                        && line
                            .contains("provider.terraform-provider-oci: oci provider configured:")
                        && line.contains(&format!("endpoint={}", fake.endpoint())),
                    "TF_LOG={level}: {line}"
                );
                assert!(!line.contains("@level"), "shown raw: {line}");
            }
            // WARN hides it.
            let log = terraform_log(&terraform, &fake, "WARN");
            assert!(ours(&log).is_empty(), "TF_LOG=WARN:\n{log}");
        })
        .await
        .unwrap();
    }
}
