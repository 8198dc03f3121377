//! Protocol 5 and protocol 6 tell Terraform the same things: the same schema as Terraform
//! renders it (`terraform providers schema -json`, both binaries, Terraform 1.11 and 1.0.3, with
//! Terraform's log confirming the generation in use), and the same diagnostics, attribute paths
//! included, for the same invalid configurations sent over each generation's own RPC.

mod support;

use model::value::Value;
use provider::proto::tfplugin5 as v5;
use provider::proto::tfplugin6 as v6;
use support::Workspace;
use support::{Plugin, channel, lxd_binary, oci_binary, shutdown};

/// `terraform providers schema -json` for `scenario`, and the plugin protocol Terraform logged.
fn schema_json(
    terraform: &std::path::Path,
    scenario: &str,
    binary: &std::path::Path,
    force: Option<&str>,
) -> (serde_json::Value, String) {
    let mut ws = Workspace::new(terraform, scenario, binary);
    let log = ws.dir.path().join("terraform.log");
    ws.set("TF_LOG", "debug");
    ws.set("TF_LOG_PATH", log.display().to_string());
    if let Some(force) = force {
        ws.set("TF_PROVIDER_FORCE_PROTOCOL", force);
    }
    let text = ws.ok(&["providers", "schema", "-json"]);
    let log = std::fs::read_to_string(&log).unwrap();
    let version = log
        .lines()
        .find_map(|l| {
            l.split_once("using plugin: version=")
                .map(|(_, v)| v.trim())
        })
        .unwrap_or_else(|| panic!("no plugin version in the log:\n{log}"))
        .to_owned();
    (serde_json::from_str(&text).unwrap(), version)
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_sees_the_same_schema_over_both_protocols() {
    let terraforms = support::terraforms();
    tokio::task::spawn_blocking(move || {
        for terraform in &terraforms {
            for (scenario, binary, address) in [
                (
                    "lxd_trust_token",
                    lxd_binary(),
                    "registry.terraform.io/hashicorp/lxd",
                ),
                (
                    "oci_auth_token",
                    oci_binary(),
                    "registry.terraform.io/hashicorp/oci",
                ),
            ] {
                let (six, version6) = schema_json(terraform, scenario, binary, None);
                let (five, version5) = schema_json(terraform, scenario, binary, Some("5"));
                assert_eq!((version6.as_str(), version5.as_str()), ("6", "5"));
                let schemas = &six["provider_schemas"][address];
                assert!(
                    schemas["resource_schemas"].is_object(),
                    "{address} has resources: {six}"
                );
                assert_eq!(
                    six["provider_schemas"],
                    five["provider_schemas"],
                    "{scenario} with {}",
                    terraform.display()
                );
            }
        }
    })
    .await
    .unwrap();
}

/// A configuration of `oci_identity_auth_token` as Terraform would send it (msgpack, every
/// attribute present).
fn token_config(json: serde_json::Value) -> Vec<u8> {
    let schema = model::oci_identity_auth_token::schema();
    let value: Value =
        provider::codec::decode_block_json(&schema.block, json.to_string().as_bytes()).unwrap();
    provider::codec::encode(&value)
}

/// A diagnostic reduced to what both generations share: severity, summary, detail, and the
/// attribute path as text (`a.b[0]["k"]`).
type Seen = (i32, String, String, String);

fn path6(path: Option<&v6::AttributePath>) -> String {
    use v6::attribute_path::step::Selector;
    let mut out = String::new();
    for step in path.map(|p| p.steps.as_slice()).unwrap_or_default() {
        match &step.selector {
            Some(Selector::AttributeName(n)) if out.is_empty() => out.push_str(n),
            Some(Selector::AttributeName(n)) => out.push_str(&format!(".{n}")),
            Some(Selector::ElementKeyString(k)) => out.push_str(&format!("[{k:?}]")),
            Some(Selector::ElementKeyInt(i)) => out.push_str(&format!("[{i}]")),
            None => out.push('?'),
        }
    }
    out
}

fn path5(path: Option<&v5::AttributePath>) -> String {
    use v5::attribute_path::step::Selector;
    let mut out = String::new();
    for step in path.map(|p| p.steps.as_slice()).unwrap_or_default() {
        match &step.selector {
            Some(Selector::AttributeName(n)) if out.is_empty() => out.push_str(n),
            Some(Selector::AttributeName(n)) => out.push_str(&format!(".{n}")),
            Some(Selector::ElementKeyString(k)) => out.push_str(&format!("[{k:?}]")),
            Some(Selector::ElementKeyInt(i)) => out.push_str(&format!("[{i}]")),
            None => out.push('?'),
        }
    }
    out
}

#[tokio::test]
async fn both_protocols_report_the_same_diagnostics_with_attribute_paths() {
    let mut p5 = Plugin::start(oci_binary(), "5", &[]);
    let mut p6 = Plugin::start(oci_binary(), "6", &[]);
    let (hs5, hs6) = (p5.handshake().await, p6.handshake().await);
    assert_eq!((hs5.protocol, hs6.protocol), (5, 6));
    let (ch5, ch6) = (
        channel(&hs5, None).await.unwrap(),
        channel(&hs6, None).await.unwrap(),
    );
    let mut c5 = v5::provider_client::ProviderClient::new(ch5.clone());
    let mut c6 = v6::provider_client::ProviderClient::new(ch6.clone());

    let cases = [
        (
            serde_json::json!({"description": "x", "user_id": ""}),
            vec!["user_id"],
        ),
        (
            serde_json::json!({"description": "x", "user_id": "ocid1.user.oc1..a",
                "timeouts": {"create": "soon"}}),
            vec!["timeouts.create"],
        ),
        (
            serde_json::json!({"description": "x", "user_id": "ocid1.user.oc1..a"}),
            vec![],
        ),
    ];
    for (config, paths) in cases {
        let msgpack = token_config(config.clone());
        let five: Vec<Seen> = c5
            .validate_resource_type_config(v5::validate_resource_type_config::Request {
                type_name: "oci_identity_auth_token".to_owned(),
                config: Some(v5::DynamicValue {
                    msgpack: msgpack.clone(),
                    json: vec![],
                }),
                client_capabilities: None,
            })
            .await
            .unwrap()
            .into_inner()
            .diagnostics
            .iter()
            .map(|d| {
                (
                    d.severity,
                    d.summary.clone(),
                    d.detail.clone(),
                    path5(d.attribute.as_ref()),
                )
            })
            .collect();
        let six: Vec<Seen> = c6
            .validate_resource_config(v6::validate_resource_config::Request {
                type_name: "oci_identity_auth_token".to_owned(),
                config: Some(v6::DynamicValue {
                    msgpack,
                    json: vec![],
                }),
                client_capabilities: None,
            })
            .await
            .unwrap()
            .into_inner()
            .diagnostics
            .iter()
            .map(|d| {
                (
                    d.severity,
                    d.summary.clone(),
                    d.detail.clone(),
                    path6(d.attribute.as_ref()),
                )
            })
            .collect();
        assert_eq!(five, six, "{config}");
        let seen_paths: Vec<&str> = six.iter().map(|d| d.3.as_str()).collect();
        assert_eq!(seen_paths, paths, "{config}: {six:?}");
        // Both generations number ERROR as 1.
        assert!(six.iter().all(|d| d.0 == 1), "{six:?}");
    }

    // An unknown type is an error diagnostic on both, not a transport failure.
    let five = c5
        .validate_resource_type_config(v5::validate_resource_type_config::Request {
            type_name: "oci_nothing".to_owned(),
            config: None,
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner()
        .diagnostics;
    let six = c6
        .validate_resource_config(v6::validate_resource_config::Request {
            type_name: "oci_nothing".to_owned(),
            config: None,
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner()
        .diagnostics;
    assert_eq!(
        (five.len(), five[0].summary.as_str()),
        (six.len(), six[0].summary.as_str())
    );
    assert!(six[0].detail.contains("oci_nothing"));

    // GetMetadata answers on both generations with the same type names.
    let m5 = c5
        .get_metadata(v5::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    let m6 = c6
        .get_metadata(v6::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    let names5: Vec<&str> = m5.resources.iter().map(|r| r.type_name.as_str()).collect();
    let names6: Vec<&str> = m6.resources.iter().map(|r| r.type_name.as_str()).collect();
    assert_eq!(names5, ["oci_identity_auth_token", "oci_identity_user"]);
    assert_eq!(names5, names6);

    shutdown(ch5).await.unwrap();
    shutdown(ch6).await.unwrap();
    drop((c5, c6));
    assert_eq!(p5.exited().await.0, Some(0));
    assert_eq!(p6.exited().await.0, Some(0));
}
