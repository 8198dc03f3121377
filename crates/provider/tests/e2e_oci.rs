//! The seed examples of the OCI types through real Terraform (1.11 and 1.0.3) against an
//! in-process fake-oci: apply, an empty second plan, refresh, update in place, replacement,
//! import, destroy.

mod support;

use fake_oci::{FakeOci, TEST_PUBLIC_KEY, TEST_TENANCY};
use support::Workspace;

const OTHER_USER: &str = "ocid1.user.oc1..aaaaaaaaseconduser";

async fn fake_with_config(dir: &std::path::Path) -> FakeOci {
    let fake = support::fakes::oci(dir).await;
    fake.control()
        .add_user(TEST_TENANCY, OTHER_USER, TEST_PUBLIC_KEY)
        .unwrap();
    fake
}

fn tokens(fake: &FakeOci) -> Vec<serde_json::Value> {
    fake.control().state()["tokens"].as_array().unwrap().clone()
}

async fn scenario(terraform: std::path::PathBuf, protocol: Option<&'static str>) {
    let keys = tempfile::tempdir().unwrap();
    let fake = fake_with_config(keys.path()).await;
    let user = fake.test_identity().user;
    let mut ws = Workspace::new(
        &terraform,
        "oci_auth_token",
        std::path::Path::new(env!("CARGO_BIN_EXE_terraform-provider-oci")),
    );
    ws.set(
        "OCI_CONFIG_FILE",
        keys.path().join("config").display().to_string(),
    );
    ws.set(
        "CLIENT_HOST_OVERRIDES",
        format!("oci_identity.IdentityClient={}", fake.endpoint()),
    );
    ws.set("TF_VAR_user_ocid", user.clone());
    ws.set("TF_VAR_auth_token_description", "first");
    if let Some(protocol) = protocol {
        ws.set("TF_PROVIDER_FORCE_PROTOCOL", protocol);
    }
    // Every step logs at trace level; afterwards no token may appear in the log.
    let log = ws.dir.path().join("terraform.log");
    ws.set("TF_LOG", "trace");
    ws.set("TF_LOG_PATH", log.display().to_string());
    let ws = ws;
    tokio::task::spawn_blocking(move || {
        // Apply: the output holds the secret the fake issued.
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let token = ws.output("token");
        let held = tokens(&fake);
        assert_eq!(held.len(), 1);
        assert_eq!(
            token, held[0]["secret"],
            "the output is the token the fake issued"
        );
        let id = held[0]["id"].as_str().unwrap().to_owned();
        let mut secrets = vec![held[0]["secret"].as_str().unwrap().to_owned()];

        // The next plan is empty; a refresh keeps the token.
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 0, "second plan not empty:\n{text}");
        ws.ok(&["apply", "-refresh-only", "-auto-approve", "-input=false"]);
        assert_eq!(ws.output("token"), token);
        let data = ws.attrs("data.oci_identity_auth_tokens.test_auth_tokens");
        assert_eq!(data["tokens"], data["auth_tokens"]);
        assert_eq!(data["tokens"][0]["id"], id.as_str());
        assert!(
            data["tokens"][0]["token"].is_null(),
            "the data source never shows the secret"
        );

        // A description change updates in place and keeps the token.
        let (code, text) = ws.plan_code(&["-var", "auth_token_description=second"]);
        assert_eq!(code, 2);
        assert!(text.contains("1 to change, 0 to destroy"), "{text}");
        ws.ok(&[
            "apply",
            "-auto-approve",
            "-input=false",
            "-var",
            "auth_token_description=second",
        ]);
        assert_eq!(ws.output("token"), token);
        let held = tokens(&fake);
        assert_eq!(
            (
                held.len(),
                held[0]["id"].as_str().unwrap(),
                held[0]["description"].as_str().unwrap()
            ),
            (1, id.as_str(), "second")
        );

        // A user change replaces the token.
        let args = [
            "-var",
            "auth_token_description=second",
            "-var",
            &format!("user_ocid={OTHER_USER}"),
        ];
        let (code, text) = ws.plan_code(&args);
        assert_eq!(code, 2);
        assert!(text.contains("must be replaced"), "{text}");
        let mut apply = vec!["apply", "-auto-approve", "-input=false"];
        apply.extend_from_slice(&args);
        ws.ok(&apply);
        let held = tokens(&fake);
        assert_eq!(held.len(), 1);
        assert_ne!(held[0]["id"].as_str().unwrap(), id);
        assert_eq!(held[0]["user_id"], OTHER_USER);
        secrets.push(held[0]["secret"].as_str().unwrap().to_owned());
        let new_id = held[0]["id"].as_str().unwrap().to_owned();

        // Import: forget the resource, import it back; the secret is gone and a warning says so.
        ws.ok(&["state", "rm", "oci_identity_auth_token.test_auth_token"]);
        let mut import = vec!["import", "-input=false"];
        import.extend_from_slice(&args);
        let address = format!("users/{OTHER_USER}/authTokens/{new_id}");
        import.extend_from_slice(&["oci_identity_auth_token.test_auth_token", &address]);
        let out = ws.run(&import);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains("The token secret cannot be imported"),
            "{text}"
        );
        let (code, text) = ws.plan_code(&args);
        assert_eq!(code, 0, "plan after import not empty:\n{text}");

        // Destroy leaves the fake empty.
        let mut destroy = vec!["destroy", "-auto-approve", "-input=false"];
        destroy.extend_from_slice(&args);
        ws.ok(&destroy);
        assert!(tokens(&fake).is_empty());
        let log = std::fs::read_to_string(&log).unwrap();
        assert!(
            log.contains("oci provider configured"),
            "the provider's own log lines reach Terraform's log"
        );
        if let Some(protocol) = protocol {
            assert!(
                log.contains(&format!("protocol version: {protocol}"))
                    || log.contains(&format!("\"ProtocolVersion\":{protocol}"))
                    || log.contains(&format!("plugin protocol version: {protocol}"))
                    || log.contains(&format!("version={protocol}")),
                "protocol {protocol} was used"
            );
        }
        for secret in &secrets {
            assert!(
                !log.contains(secret.as_str()),
                "a token reached the trace log"
            );
        }
        drop(fake);
    })
    .await
    .unwrap();
    let _ = user;
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_examples_with_every_terraform() {
    let terraforms = support::terraforms();
    for terraform in &terraforms {
        scenario(terraform.clone(), None).await;
    }
    // Terraform 1.11 offers 5 and 6 and gets 6; protocol 5 is served when it is the only choice.
    if let Some(newest) = terraforms.first() {
        scenario(newest.clone(), Some("5")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_configuration_is_refused_with_the_attribute_named() {
    let Some(terraform) = support::tool("XTASK_TERRAFORM") else {
        return;
    };
    let ws = Workspace::new(
        &terraform,
        "oci_auth_token",
        std::path::Path::new(env!("CARGO_BIN_EXE_terraform-provider-oci")),
    );
    std::fs::write(
        ws.dir.path().join("main.tf"),
        "resource \"oci_identity_auth_token\" \"t\" {\n  description = \"x\"\n  user_id = \"\"\n  timeouts {\n    create = \"soon\"\n  }\n}\n",
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || ws.run(&["validate"]))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("Invalid value for `user_id`") && text.contains("must not be empty"),
        "{text}"
    );
    assert!(
        text.contains("Invalid value for `timeouts.create`"),
        "{text}"
    );
}
