//! `oci_identity_user` and the seed's two OCI examples verbatim (with the user they
//! reference), through real Terraform (1.11 and 1.0.3) against an in-process fake-oci.

mod support;

use fake_oci::FakeOci;
use support::Workspace;

fn workspace(
    terraform: &std::path::Path,
    scenario: &str,
    fake: &FakeOci,
    keys: &std::path::Path,
) -> Workspace {
    let mut ws = Workspace::new(
        terraform,
        scenario,
        std::path::Path::new(env!("CARGO_BIN_EXE_terraform-provider-oci")),
    );
    ws.set("OCI_CONFIG_FILE", keys.join("config").display().to_string());
    ws.set(
        "CLIENT_HOST_OVERRIDES",
        format!("oci_identity.IdentityClient={}", fake.endpoint()),
    );
    ws.set("TF_VAR_tenancy_ocid", fake.test_identity().tenancy);
    ws
}

fn users(fake: &FakeOci) -> Vec<serde_json::Value> {
    let state = fake.control().state();
    state["user_profiles"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|u| u["name"] == "seed-user")
        .cloned()
        .collect()
}

fn tokens(fake: &FakeOci) -> Vec<serde_json::Value> {
    fake.control().state()["tokens"].as_array().unwrap().clone()
}

async fn seed_scenario(terraform: std::path::PathBuf) {
    let keys = tempfile::tempdir().unwrap();
    let fake = support::fakes::oci(keys.path()).await;
    let mut ws = workspace(
        &terraform,
        "../oci/terraform/oci_seed_verbatim",
        &fake,
        keys.path(),
    );
    ws.set("TF_VAR_auth_token_description", "seed token");
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let made = users(&fake);
        assert_eq!(made.len(), 1, "{made:?}");
        assert_eq!(made[0]["lifecycleState"], "ACTIVE");
        let user = made[0]["id"].as_str().unwrap().to_owned();
        let held = tokens(&fake);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0]["user_id"], user.as_str());
        assert_eq!(held[0]["description"], "seed token");
        // The data source depends on the user only, so it may be read before the token exists.
        let state_user = ws.attrs("oci_identity_user.test_user");
        assert_eq!(state_user["id"], user.as_str());
        assert_eq!(state_user["state"], "ACTIVE");

        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 0, "second plan not empty:\n{text}");

        // A second token made elsewhere; the data source pages through both, one per page.
        let client = support::fakes::oci_test_client(&fake);
        let other = runtime
            .block_on(client.create_auth_token(&user, "made elsewhere"))
            .unwrap();
        fake.control().set_page_size(Some(1));
        ws.ok(&["apply", "-refresh-only", "-auto-approve", "-input=false"]);
        let data = ws.attrs("data.oci_identity_auth_tokens.test_auth_tokens");
        let listed: Vec<&str> = data["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(listed.len(), 2, "{data}");
        assert!(listed.contains(&held[0]["id"].as_str().unwrap()));
        assert!(listed.contains(&other.id.as_str()));
        assert!(
            fake.control()
                .requests()
                .iter()
                .any(|r| r.query.as_deref().is_some_and(|q| q.starts_with("page="))),
            "the data source asked for the second page"
        );
        fake.control().set_page_size(None);

        // The user still holds the token made elsewhere: its delete is refused, clearly.
        let out = ws.run(&["destroy", "-auto-approve", "-input=false"]);
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            text.contains("Could not delete the user") && text.contains("auth tokens"),
            "{text}"
        );
        runtime
            .block_on(client.delete_auth_token(&user, &other.id, None))
            .unwrap();
        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
        assert!(users(&fake).is_empty());
        assert!(tokens(&fake).is_empty());
        drop(fake);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_examples_apply_verbatim_with_every_terraform() {
    for terraform in support::terraforms() {
        seed_scenario(terraform).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_updates_in_place_replaces_on_rename_and_imports() {
    let Some(terraform) = support::tool("XTASK_TERRAFORM") else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let fake = support::fakes::oci(keys.path()).await;
    let mut ws = workspace(
        &terraform,
        "../oci/terraform/oci_identity_user",
        &fake,
        keys.path(),
    );
    ws.set("TF_VAR_user_name", "alice");
    ws.set("TF_VAR_user_description", "first");
    tokio::task::spawn_blocking(move || {
        let profiles = |fake: &FakeOci| -> Vec<serde_json::Value> {
            fake.control().state()["user_profiles"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter(|u| u["name"] != "fakeuser00000000000000000000000000000000000000000")
                .filter(|u| {
                    u["name"]
                        .as_str()
                        .is_some_and(|n| !n.starts_with("aaaaaaaa"))
                })
                .cloned()
                .collect()
        };
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let id = ws.output("user_id").as_str().unwrap().to_owned();
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 0, "{text}");

        // Description and email change in place.
        let args = [
            "-var",
            "user_description=second",
            "-var",
            "user_email=a@example.com",
        ];
        let (code, text) = ws.plan_code(&args);
        assert_eq!(code, 2);
        assert!(text.contains("1 to change, 0 to destroy"), "{text}");
        let mut apply = vec!["apply", "-auto-approve", "-input=false"];
        apply.extend_from_slice(&args);
        ws.ok(&apply);
        assert_eq!(ws.output("user_id"), id.as_str());
        let now = profiles(&fake);
        let alice = now.iter().find(|u| u["id"] == id.as_str()).unwrap();
        assert_eq!(alice["description"], "second");
        assert_eq!(alice["email"], "a@example.com");
        let (code, text) = ws.plan_code(&args);
        assert_eq!(code, 0, "{text}");

        // Import by OCID gives the same state: the next plan is empty.
        ws.ok(&["state", "rm", "oci_identity_user.test_user"]);
        let mut import = vec!["import", "-input=false"];
        import.extend_from_slice(&args);
        import.extend_from_slice(&["oci_identity_user.test_user", &id]);
        ws.ok(&import);
        let (code, text) = ws.plan_code(&args);
        assert_eq!(code, 0, "plan after import not empty:\n{text}");

        // A malformed import id is refused before any request.
        ws.ok(&["state", "rm", "oci_identity_user.test_user"]);
        let before = fake.control().requests().len();
        let mut bad = vec!["import", "-input=false"];
        bad.extend_from_slice(&args);
        bad.extend_from_slice(&["oci_identity_user.test_user", "../x"]);
        let out = ws.run(&bad);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Invalid import id"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            fake.control().requests().len(),
            before,
            "no request was sent"
        );
        ws.ok(&import);

        // A new name replaces the user.
        let renamed = [
            "-var",
            "user_description=second",
            "-var",
            "user_email=a@example.com",
            "-var",
            "user_name=bob",
        ];
        let mut apply = vec!["apply", "-auto-approve", "-input=false"];
        apply.extend_from_slice(&renamed);
        ws.ok(&apply);
        let new_id = ws.output("user_id").as_str().unwrap().to_owned();
        assert_ne!(new_id, id);
        let now = profiles(&fake);
        assert!(now.iter().all(|u| u["id"] != id.as_str()), "{now:?}");
        assert!(now.iter().any(|u| u["name"] == "bob"));

        let mut destroy = vec!["destroy", "-auto-approve", "-input=false"];
        destroy.extend_from_slice(&renamed);
        ws.ok(&destroy);
        assert!(profiles(&fake).iter().all(|u| u["name"] != "bob"));
        drop(fake);
    })
    .await
    .unwrap();
}
