//! The seed example of `lxd_trust_token` through real Terraform (1.11 and 1.0.3) against an
//! in-process fake-lxd on its unix socket (the provider's default remote, as lxc finds it):
//! apply, a token the fake accepts, an empty second plan, refresh, `trigger` once/always after
//! the token is used or expires, import, destroy.

mod support;

use std::path::Path;

use fake_lxd::{ClockMode, Profile};
use support::Workspace;

fn workspace(terraform: &Path, scenario: &str, lxd_dir: &Path) -> Workspace {
    let mut ws = Workspace::new(terraform, scenario, support::lxd_binary());
    ws.set("LXD_DIR", lxd_dir.display().to_string());
    ws.set(
        "LXD_CONF",
        ws.dir.path().join("lxc-config").display().to_string(),
    );
    ws
}

async fn once_scenario(terraform: std::path::PathBuf) {
    let (fake, lxd_dir) = support::fakes::lxd(Profile::V5_0, ClockMode::System).await;
    let mut ws = workspace(&terraform, "lxd_trust_token", lxd_dir.path());
    // Every step logs at trace level; afterwards no token may appear in the log.
    let log = ws.dir.path().join("terraform.log");
    ws.set("TF_LOG", "trace");
    ws.set("TF_LOG_PATH", log.display().to_string());
    tokio::task::spawn_blocking(move || {
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let token = ws.output("token");
        let pending = fake.control().pending_tokens();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            token,
            pending[0].1.as_str(),
            "the output is the token lxc would print"
        );
        let attrs = ws.attrs("lxd_trust_token.token1");
        assert_eq!(attrs["id"], pending[0].0.as_str());
        assert_eq!(attrs["operation_id"], pending[0].0.as_str());
        assert_eq!(attrs["trigger"], "once");
        assert_eq!(attrs["projects"], serde_json::json!([]));
        assert_eq!(attrs["expires_at"], "", "no expiry configured: empty");

        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 0, "second plan not empty:\n{text}");
        ws.ok(&["apply", "-refresh-only", "-auto-approve", "-input=false"]);
        assert_eq!(ws.output("token"), token);

        // The fake accepts the token; with trigger "once" the used token is kept, not replaced.
        let (status, error, _) = fake.control().consume(token.as_str().unwrap(), None);
        assert_eq!((status, error), (201, None));
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 0, "trigger once must not plan a new token:\n{text}");
        assert_eq!(ws.output("token"), token, "the used token stays in state");

        // Import: forget the resource, make a new pending token, import it by operation id.
        ws.ok(&["state", "rm", "lxd_trust_token.token1"]);
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let id = ws.attrs("lxd_trust_token.token1")["operation_id"]
            .as_str()
            .unwrap()
            .to_owned();
        ws.ok(&["state", "rm", "lxd_trust_token.token1"]);
        ws.ok(&["import", "-input=false", "lxd_trust_token.token1", &id]);
        // `terraform import` writes no outputs, so only the output may show as a change.
        let (_, text) = ws.plan_code(&[]);
        assert!(
            !text.contains("Plan:") && !text.contains("will be"),
            "plan after import changes the resource:\n{text}"
        );
        assert_eq!(
            ws.attrs("lxd_trust_token.token1")["operation_id"],
            id.as_str()
        );
        let out = ws.run(&[
            "import",
            "-input=false",
            "lxd_trust_token.other",
            "not-an-id",
        ]);
        assert!(!out.status.success());

        // Destroy revokes the pending token: the fake has none left.
        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
        assert!(fake.control().pending_tokens().is_empty());
        let log = std::fs::read_to_string(&log).unwrap();
        assert!(
            log.contains("lxd provider configured"),
            "the provider's own log lines reach Terraform's log"
        );
        let secret = fake_lxd::state::decode_token(token.as_str().unwrap())
            .unwrap()
            .secret;
        assert!(
            !log.contains(&secret),
            "a token secret reached the trace log"
        );
    })
    .await
    .unwrap();
}

async fn always_scenario(terraform: std::path::PathBuf) {
    let (fake, lxd_dir) = support::fakes::lxd(Profile::V5_0, ClockMode::System).await;
    let ws = workspace(&terraform, "lxd_trust_token_always", lxd_dir.path());
    tokio::task::spawn_blocking(move || {
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let first = ws.output("token");
        // Once the token is used, trigger "always" plans a new one.
        let (status, _, _) = fake.control().consume(first.as_str().unwrap(), None);
        assert_eq!(status, 201);
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 2, "a used token must be planned anew:\n{text}");
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let second = ws.output("token");
        assert_ne!(second, first);
        assert_eq!(fake.control().pending_tokens().len(), 1);
        // Revoked elsewhere (a daemon restart loses every pending token): planned anew too.
        fake.control().restart();
        let (code, _) = ws.plan_code(&[]);
        assert_eq!(code, 2);
        // An expired token (expiry "0M" expires at creation) is planned anew as well, and
        // `expires_at` shows the expiry as lxc does.
        fake.control()
            .set_config("core.remote_token_expiry", "0M")
            .unwrap();
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let expires = ws.attrs("lxd_trust_token.token1")["expires_at"]
            .as_str()
            .unwrap()
            .to_owned();
        let shape = regex::Regex::new(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2} UTC$").unwrap();
        assert!(shape.is_match(&expires), "{expires}");
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 2, "an expired token must be planned anew:\n{text}");
        fake.control()
            .set_config("core.remote_token_expiry", "")
            .unwrap();
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        // Switching the trigger is a replacement (every input forces one).
        let (code, text) = ws.plan_code(&["-var", "trigger=once"]);
        assert_eq!(code, 2);
        assert!(text.contains("1 to add"), "{text}");
        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_example_with_every_terraform() {
    for terraform in support::terraforms() {
        once_scenario(terraform.clone()).await;
        always_scenario(terraform).await;
    }
}
