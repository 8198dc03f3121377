//! `auth = "SecurityToken"` through Terraform 1.11 against an in-process fake-oci: the
//! provider signs with a session of `oci session authenticate` (a profile with
//! `security_token_file` and `key_file`), the token never reaches the trace log, and an
//! expired session is a clear error that says how to refresh it.

mod support;

use fake_oci::{ClockMode, Config, FakeOci};
use support::Workspace;

fn session_key(name: &str) -> String {
    std::fs::read_to_string(support::fixture(&format!(
        "oci-client/signing-vectors/{name}"
    )))
    .unwrap()
}

/// Writes the session files `oci session authenticate` would write for profile SESS.
fn write_session(dir: &std::path::Path, fake: &FakeOci, token: &str) {
    let key = dir.join("oci_api_key.pem");
    std::fs::write(&key, session_key("test_key_private_pkcs1.pem")).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, token).unwrap();
    std::fs::write(
        dir.join("config"),
        format!(
            "[SESS]\nfingerprint=00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00\nkey_file={}\ntenancy={}\nregion=us-ashburn-1\nsecurity_token_file={}\n",
            key.display(),
            fake.test_identity().tenancy,
            token_file.display()
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_provider_signs_with_a_session_token() {
    let Some(terraform) = support::tool("XTASK_TERRAFORM") else {
        return;
    };
    // Terraform signs with the wall clock, so the fake follows it.
    let fake = FakeOci::start(Config {
        clock: ClockMode::System,
        ..Config::for_testing()
    })
    .await
    .unwrap();
    let user = fake.test_identity().user;
    let public = session_key("test_key_public_spki.pem");
    let token = fake
        .control()
        .issue_session(&user, &public, std::time::Duration::from_secs(3600))
        .unwrap();
    let files = tempfile::tempdir().unwrap();
    write_session(files.path(), &fake, &token);
    let mut ws = Workspace::new(
        &terraform,
        "../oci/terraform/oci_session",
        std::path::Path::new(env!("CARGO_BIN_EXE_terraform-provider-oci")),
    );
    ws.set(
        "OCI_CONFIG_FILE",
        files.path().join("config").display().to_string(),
    );
    ws.set(
        "CLIENT_HOST_OVERRIDES",
        format!("oci_identity.IdentityClient={}", fake.endpoint()),
    );
    ws.set("TF_VAR_user_ocid", user.clone());
    let log = ws.dir.path().join("terraform.log");
    ws.set("TF_LOG", "trace");
    ws.set("TF_LOG_PATH", log.display().to_string());
    tokio::task::spawn_blocking(move || {
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let made = fake.control().state()["tokens"].as_array().unwrap().clone();
        assert_eq!(made.len(), 1);
        assert_eq!(made[0]["user_id"], user.as_str());
        assert_eq!(made[0]["description"], "by session");
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 0, "{text}");

        // An expired session: refused before any request, with how to refresh it.
        let expired = fake
            .control()
            .issue_session(&user, &public, std::time::Duration::ZERO)
            .unwrap();
        std::fs::write(files.path().join("token"), &expired).unwrap();
        let before = fake.control().requests().len();
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 1, "{text}");
        assert!(
            text.contains("expired") && text.contains("oci session refresh --profile SESS"),
            "{text}"
        );
        assert!(!text.contains(&expired), "{text}");
        assert_eq!(fake.control().requests().len(), before, "nothing was sent");

        std::fs::write(files.path().join("token"), &token).unwrap();
        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
        assert_eq!(fake.control().state()["tokens"], serde_json::json!([]));
        let logged = std::fs::read_to_string(&log).unwrap();
        for secret in [&token, &expired] {
            assert!(
                !logged.contains(secret.as_str()),
                "a session token is in the log"
            );
            let claims = secret.split('.').nth(1).unwrap();
            assert!(!logged.contains(claims), "a session token is in the log");
        }
        drop(fake);
    })
    .await
    .unwrap();
}
