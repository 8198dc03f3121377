//! OCI's limit of two auth tokens per user through Terraform 1.11 against an in-process
//! fake-oci: reported at plan time (an error when the create fails whatever Terraform does, a
//! warning when it fails only in some cases the provider cannot see, such as
//! `create_before_destroy`), and named clearly when the create is refused at apply.

mod support;

use fake_oci::{ClockMode, Config, FakeOci, TEST_PUBLIC_KEY, TEST_TENANCY};
use support::Workspace;

const OTHER_USER: &str = "ocid1.user.oc1..aaaaaaaaseconduser";

fn held(fake: &FakeOci, user: &str) -> Vec<String> {
    fake.control().state()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["user_id"] == user)
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_names(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_two_token_limit_is_reported_at_plan_and_at_apply() {
    let Some(terraform) = support::tool("XTASK_TERRAFORM") else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    // Terraform signs with the wall clock, so the fake follows it.
    let fake = FakeOci::start(Config {
        clock: ClockMode::System,
        ..Config::for_testing()
    })
    .await
    .unwrap();
    fake.control()
        .add_user(TEST_TENANCY, OTHER_USER, TEST_PUBLIC_KEY)
        .unwrap();
    support::write_oci_config(&fake, keys.path());
    let user = fake.test_identity().user;
    let mut ws = Workspace::new(
        &terraform,
        "../oci/terraform/oci_token_limit",
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
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let client = support::fakes::oci_test_client(&fake);
        let make = |user: &str, description: &str| {
            runtime
                .block_on(client.create_auth_token(user, description))
                .unwrap()
                .id
        };
        let first = make(&user, "made elsewhere 1");
        let second = make(&user, "made elsewhere 2");

        // A new instance for a full user: a warning (it could be the replacement of a tainted
        // token, which Terraform plans alike), then the apply's refusal names the tokens.
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 2, "{text}");
        assert_names(
            &text,
            &[
                "Warning: Auth token limit may be reached",
                &user,
                &first,
                &second,
                "\"made elsewhere 1\"",
                "\"made elsewhere 2\"",
            ],
        );
        let out = ws.run(&["apply", "-auto-approve", "-input=false"]);
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success());
        assert_names(
            &text,
            &[
                "Error: Auth token limit reached",
                &user,
                &first,
                &second,
                "LimitExceeded",
            ],
        );
        assert_eq!(held(&fake, &user).len(), 2, "nothing was created");

        // With a free slot the create goes through, without any diagnostic.
        runtime
            .block_on(client.delete_auth_token(&user, &second, None))
            .unwrap();
        let stdout = ws.ok(&["apply", "-auto-approve", "-input=false"]);
        assert!(!stdout.contains("Auth token limit"), "{stdout}");
        let managed = ws.attrs("oci_identity_auth_token.managed")["id"]
            .as_str()
            .unwrap()
            .to_owned();

        // Destroy-then-create (Terraform's default) frees the slot. A tainted token is planned
        // like a new instance, so the plan can only warn; the apply succeeds.
        ws.ok(&["taint", "oci_identity_auth_token.managed"]);
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 2, "{text}");
        assert_names(
            &text,
            &["Warning: Auth token limit may be reached", &managed],
        );
        assert!(!text.contains("Error"), "{text}");
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let retainted = ws.attrs("oci_identity_auth_token.managed")["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(retainted, managed);
        // `-replace` plans the create a second time without prior state, and Terraform keeps
        // only the errors of that second plan: nothing is shown, and the apply succeeds.
        let replace = "-replace=oci_identity_auth_token.managed";
        let (code, text) = ws.plan_code(&[replace]);
        assert_eq!(code, 2, "{text}");
        assert!(!text.contains("Auth token limit"), "{text}");
        ws.ok(&["apply", "-auto-approve", "-input=false", replace]);
        let replaced = ws.attrs("oci_identity_auth_token.managed")["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(replaced, retainted);
        assert_eq!(held(&fake, &user).len(), 2);

        // A new user_id for a user already holding two: the replacement frees nothing there,
        // so the plan fails, naming that user's tokens.
        let other1 = make(OTHER_USER, "other 1");
        let other2 = make(OTHER_USER, "other 2");
        let moved = format!("user_ocid={OTHER_USER}");
        let (code, text) = ws.plan_code(&["-var", &moved]);
        assert_eq!(code, 1, "{text}");
        assert_names(
            &text,
            &[
                "Error: Auth token limit reached",
                OTHER_USER,
                &other1,
                &other2,
                "\"other 1\"",
            ],
        );

        // Create-before-destroy needs a free slot. The protocol does not tell the provider
        // about it, and the plan of `-replace` shows no warning (see above); the apply is
        // refused clearly, and the token in the state stays.
        std::fs::copy(
            support::fixture("oci/terraform/oci_token_limit_cbd/main.tf"),
            ws.dir.path().join("main.tf"),
        )
        .unwrap();
        let (code, text) = ws.plan_code(&[replace]);
        assert_eq!(code, 2, "{text}");
        let out = ws.run(&["apply", "-auto-approve", "-input=false", replace]);
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success());
        assert_names(
            &text,
            &["Error: Auth token limit reached", &first, &replaced],
        );
        assert_eq!(
            ws.attrs("oci_identity_auth_token.managed")["id"],
            replaced.as_str()
        );

        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
        assert_eq!(held(&fake, &user), vec![first]);
        drop(fake);
    })
    .await
    .unwrap();
}
