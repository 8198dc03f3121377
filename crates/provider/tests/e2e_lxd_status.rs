//! `lxd_trust_token`'s `status` through real Terraform (1.11 and 1.0.3) against an in-process
//! fake-lxd on its unix socket, with the fake's clock under the test's control: every
//! transition (pending, consumed, expired, revoked, unknown), `trigger = "always"` replacing a
//! spent token with a warning, `remove_consumer_on_destroy`, unique identity names on newer
//! LXD (profile 6), the `lxd_trust_tokens` data source, bad input and a failing server.

mod support;

use std::path::Path;
use std::time::Duration;

use fake_lxd::faults::{Action, Rule};
use fake_lxd::state::Profile;
use fake_lxd::{ClockMode, FakeLxd, TEST_EPOCH};
use support::Workspace;

async fn fake(profile: Profile) -> (FakeLxd, tempfile::TempDir) {
    support::fakes::lxd(profile, ClockMode::Manual(TEST_EPOCH)).await
}

/// The replacement plans Terraform shows, as a snapshot: from Terraform's first line about the
/// plan on, with operation ids, certificate fingerprints and token strings (random per run)
/// replaced.
fn plan_snapshot(terraform: &Path, plans: &[(&str, String)]) {
    let version = std::process::Command::new(terraform)
        .arg("version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    let minor = regex::Regex::new(r"Terraform v(\d+\.\d+)")
        .unwrap()
        .captures(&version)
        .map(|c| c[1].to_owned())
        .unwrap_or_default();
    let uuid =
        regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    let fingerprint = regex::Regex::new(r"\b[0-9a-f]{64}\b").unwrap();
    // The token is not sensitive (the seed's `output "token"` applies as written); its text
    // holds the fake's address and a fresh secret.
    let token = regex::Regex::new(r#""eyJ[A-Za-z0-9+/=]*""#).unwrap();
    let mut snapshot = String::new();
    for (step, text) in plans {
        let start = text
            .find("Terraform used the selected providers")
            .unwrap_or_else(|| panic!("{step}: no plan in\n{text}"));
        let plan = uuid.replace_all(&text[start..], "<operation-id>");
        let plan = fingerprint.replace_all(&plan, "<fingerprint>");
        let plan = token.replace_all(&plan, "\"<token>\"");
        snapshot.push_str(&format!("=== {step}\n{}\n", plan.trim_end()));
    }
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!(format!("lxd_status_always_plans_terraform_{minor}"), snapshot);
    });
}

fn workspace(terraform: &Path, lxd_dir: &Path) -> Workspace {
    // The seed scenario's workspace, with the status module (`fixtures/lxd/`) as its main.tf.
    let mut ws = Workspace::new(terraform, "lxd_trust_token", support::lxd_binary());
    std::fs::copy(
        support::fixture("lxd/trust_token_status.tf"),
        ws.dir.path().join("main.tf"),
    )
    .unwrap();
    ws.set("LXD_DIR", lxd_dir.display().to_string());
    ws.set(
        "LXD_CONF",
        ws.dir.path().join("lxc-config").display().to_string(),
    );
    ws
}

const APPLY: [&str; 3] = ["apply", "-auto-approve", "-input=false"];
const REFRESH: [&str; 4] = ["apply", "-refresh-only", "-auto-approve", "-input=false"];

fn with<'a>(base: &[&'a str], vars: &[&'a str]) -> Vec<&'a str> {
    let mut args = base.to_vec();
    for var in vars {
        args.extend(["-var", var]);
    }
    args
}

fn token_attrs(ws: &Workspace) -> serde_json::Value {
    ws.attrs("lxd_trust_token.token1")
}

fn token_of(ws: &Workspace) -> String {
    token_attrs(ws)["token"].as_str().unwrap().to_owned()
}

fn id_of(ws: &Workspace) -> String {
    token_attrs(ws)["operation_id"].as_str().unwrap().to_owned()
}

/// `once`: pending, then consumed by the client that joined; the plan stays empty; the data
/// source lists the pending token without its secret; destroy leaves the consumer by default.
async fn once(terraform: std::path::PathBuf) {
    let (fake, lxd_dir) = fake(Profile::V5_0).await;
    let ws = workspace(&terraform, lxd_dir.path());
    tokio::task::spawn_blocking(move || {
        ws.ok(&APPLY);
        let attrs = token_attrs(&ws);
        assert_eq!(attrs["status"], "pending");
        assert_eq!(attrs["consumed_by"], serde_json::Value::Null);
        assert_eq!(attrs["remove_consumer_on_destroy"], false);
        let listed = ws.output("listed");
        assert_eq!(
            listed,
            serde_json::json!([{"name": "mytoken", "operation_id": id_of(&ws), "projects": [], "expires_at": "", "status": "pending"}]),
            "the data source lists the pending token, never its secret"
        );

        let (status, _, client) = fake.control().consume(&token_of(&ws), None);
        assert_eq!(status, 201);
        let text = ws.ok(&REFRESH);
        assert!(!text.contains("Trust token"), "no warning for a consumed token: {text}");
        let attrs = token_attrs(&ws);
        assert_eq!(attrs["status"], "consumed");
        assert_eq!(attrs["consumed_by"], client.fingerprint.as_str());
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 0, "trigger once keeps a consumed token:\n{text}");
        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
        assert_eq!(
            fake.control().certificates(),
            [("mytoken".to_owned(), client.fingerprint.clone())],
            "the consumer stays unless asked"
        );
    })
    .await
    .unwrap();
}

/// `always` on newer LXD (profile 6: hourly sweep, unique identity names): a consumed, an
/// expired-but-listed, a revoked and a lost token are each replaced with a warning saying why,
/// and no operation the resource made is left running.
async fn always(terraform: std::path::PathBuf) {
    let (fake, lxd_dir) = fake(Profile::V6).await;
    let ws = workspace(&terraform, lxd_dir.path());
    let vars = ["trigger=always", "remove_consumer=true"];
    tokio::task::spawn_blocking(move || {
        let mut plans = Vec::new();
        fake.control()
            .set_config("core.remote_token_expiry", "20M")
            .unwrap();
        ws.ok(&with(&APPLY, &vars));
        assert_eq!(token_attrs(&ws)["status"], "pending");

        // Consumed: replaced; the consumer is removed, so the name is free again.
        let (status, _, client) = fake.control().consume(&token_of(&ws), None);
        assert_eq!(status, 201);
        let (code, text) = ws.plan_code(&with(&[], &vars));
        assert_eq!(code, 2, "{text}");
        assert!(text.contains("Trust token will be replaced"), "{text}");
        plans.push(("consumed", text.clone()));
        assert!(text.contains("was consumed"), "{text}");
        assert!(text.contains(&client.fingerprint), "{text}");
        ws.ok(&with(&APPLY, &vars));
        assert!(fake.control().certificates().is_empty());
        let second = id_of(&ws);
        assert_eq!(token_attrs(&ws)["status"], "pending");

        // Expired but still listed (the sweep is hourly): replaced, and the old one revoked.
        fake.control().advance(Duration::from_secs(21 * 60));
        let running: Vec<String> = fake
            .control()
            .pending_tokens()
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(
            running,
            std::slice::from_ref(&second),
            "the expired token is still listed"
        );
        let (code, text) = ws.plan_code(&with(&[], &vars));
        assert_eq!(code, 2, "{text}");
        assert!(text.contains("expired at"), "{text}");
        plans.push(("expired", text.clone()));
        ws.ok(&with(&APPLY, &vars));
        let third = id_of(&ws);
        let running: Vec<String> = fake
            .control()
            .pending_tokens()
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(
            running,
            std::slice::from_ref(&third),
            "the expired token was revoked before the new one"
        );

        // Revoked elsewhere (still retained as cancelled): revoked, then replaced.
        fake.control().revoke(&third).unwrap();
        ws.ok(&with(&REFRESH, &vars));
        assert_eq!(token_attrs(&ws)["status"], "revoked");
        let (code, text) = ws.plan_code(&with(&[], &vars));
        assert_eq!(code, 2, "{text}");
        assert!(text.contains("was revoked"), "{text}");
        plans.push(("revoked", text.clone()));
        ws.ok(&with(&APPLY, &vars));

        // Lost in a daemon restart: no proof of why, replaced.
        fake.control().restart();
        ws.ok(&with(&REFRESH, &vars));
        assert_eq!(token_attrs(&ws)["status"], "unknown");
        let (code, text) = ws.plan_code(&with(&[], &vars));
        assert_eq!(code, 2, "{text}");
        assert!(text.contains("no longer on the server"), "{text}");
        plans.push(("lost", text.clone()));
        ws.ok(&with(&APPLY, &vars));
        assert_eq!(fake.control().pending_tokens().len(), 1);

        ws.ok(&with(&["destroy", "-auto-approve", "-input=false"], &vars));
        assert!(
            fake.control().pending_tokens().is_empty(),
            "destroy leaves nothing running"
        );
        plan_snapshot(&terraform, &plans);
    })
    .await
    .unwrap();
}

/// Profile 6 refuses a second identity of a name: a token of a taken name is a plan (and
/// apply) error naming the identity, instead of a token that fails when redeemed.
async fn name_taken(terraform: std::path::PathBuf) {
    let (fake, lxd_dir) = fake(Profile::V6).await;
    let ws = workspace(&terraform, lxd_dir.path());
    tokio::task::spawn_blocking(move || {
        ws.ok(&with(&APPLY, &["trigger=always"]));
        let (status, _, client) = fake.control().consume(&token_of(&ws), None);
        assert_eq!(status, 201);
        // Already at plan time.
        let (code, text) = ws.plan_code(&with(&[], &["trigger=always"]));
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("Trust token name already taken"), "{text}");
        assert!(text.contains(&client.fingerprint), "{text}");
        let out = ws.run(&with(&APPLY, &["trigger=always"]));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{text}");
        assert!(text.contains("Trust token name already taken"), "{text}");
        assert!(text.contains(&client.fingerprint), "{text}");
        assert!(
            fake.control().pending_tokens().is_empty(),
            "no token was made: {text}"
        );
    })
    .await
    .unwrap();
}

/// Two tokens of one name and one new certificate: `unknown`, never a claimed consumption;
/// `remove_consumer_on_destroy` deletes exactly the proven consumer, never a namesake.
async fn namesakes(terraform: std::path::PathBuf) {
    let (fake, lxd_dir) = fake(Profile::V5_0).await;
    let ws = workspace(&terraform, lxd_dir.path());
    let vars = ["remove_consumer=true"];
    tokio::task::spawn_blocking(move || {
        ws.ok(&with(&APPLY, &vars));
        let first = token_of(&ws);
        ws.ok(&["state", "rm", "lxd_trust_token.token1"]);
        ws.ok(&with(&APPLY, &vars));
        let second = id_of(&ws);
        // The first token (not in state any more) is used; ours is revoked.
        let (status, _, namesake) = fake.control().consume(&first, None);
        assert_eq!(status, 201);
        fake.control().revoke(&second).unwrap();
        ws.ok(&with(&REFRESH, &vars));
        let attrs = token_attrs(&ws);
        assert_eq!(
            attrs["status"], "unknown",
            "no proof whose certificate it is"
        );
        assert_eq!(attrs["consumed_by"], serde_json::Value::Null);
        ws.ok(&with(&["destroy", "-auto-approve", "-input=false"], &vars));
        assert_eq!(
            fake.control().certificates().len(),
            1,
            "nothing unproven is removed"
        );

        ws.ok(&with(&APPLY, &vars));
        let (status, _, consumer) = fake.control().consume(&token_of(&ws), None);
        assert_eq!(status, 201);
        ws.ok(&with(&REFRESH, &vars));
        assert_eq!(
            token_attrs(&ws)["consumed_by"],
            consumer.fingerprint.as_str()
        );
        ws.ok(&with(&["destroy", "-auto-approve", "-input=false"], &vars));
        assert_eq!(
            fake.control().certificates(),
            [("mytoken".to_owned(), namesake.fingerprint.clone())],
            "exactly the consumer is removed, never its namesake"
        );
    })
    .await
    .unwrap();
}

fn failed_with(ws: &Workspace, args: &[&str], words: &[&str]) {
    let out = ws.run(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{args:?} succeeded:\n{text}");
    for word in words {
        assert!(text.contains(word), "{args:?}: no {word:?} in\n{text}");
    }
}

/// Bad input is refused naming the attribute; a failed read is an error and leaves the state
/// as it was (malformed replies: `crates/lxd-client/tests/status_reads.rs`).
async fn bad_input(terraform: std::path::PathBuf) {
    let (fake, lxd_dir) = fake(Profile::V5_0).await;
    let ws = workspace(&terraform, lxd_dir.path());
    tokio::task::spawn_blocking(move || {
        failed_with(
            &ws,
            &with(&["plan", "-input=false"], &["trigger=sometimes"]),
            &["trigger", "sometimes"],
        );
        failed_with(&ws, &with(&["plan", "-input=false"], &["name="]), &["name"]);
        // Already at plan time, and again at apply.
        failed_with(
            &ws,
            &with(
                &["plan", "-input=false"],
                &[r#"projects=["default","nope"]"#],
            ),
            &["Invalid value for `projects`", "no project \"nope\""],
        );
        failed_with(
            &ws,
            &with(&APPLY, &[r#"projects=["nope"]"#]),
            &["projects", "nope"],
        );
        assert!(fake.control().pending_tokens().is_empty());

        ws.ok(&APPLY);
        let before = token_attrs(&ws);
        // The trust store cannot be read: the refresh fails and the state stays as it was.
        fake.control().add_fault(Rule {
            method: "GET".into(),
            path: "/1.0/certificates".into(),
            times: None,
            action: Action::Status {
                status: 500,
                body: Some(serde_json::json!("the trust store is unreadable")),
                headers: None,
            },
        });
        failed_with(
            &ws,
            &REFRESH,
            &[
                "Failed to read the trust token",
                "the trust store is unreadable",
            ],
        );
        assert_eq!(token_attrs(&ws), before, "a failed read changes nothing");
        fake.control().clear_faults();
        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
    })
    .await
    .unwrap();
}

/// A client joins between the refresh's read of the trust store and its read of the token
/// operation (the fake holds that reply back): the refresh must not take the new certificate
/// for one that existed before, which would leave the consumption unprovable; it reads
/// `consumed` by that client.
async fn joined_during_the_refresh(terraform: std::path::PathBuf) {
    let (fake, lxd_dir) = fake(Profile::V5_0).await;
    let ws = workspace(&terraform, lxd_dir.path());
    tokio::task::spawn_blocking(move || {
        ws.ok(&APPLY);
        let id = id_of(&ws);
        let token = token_of(&ws);
        // The GETs of `path` the fake has answered so far.
        let gets = |path: &str| {
            fake.control()
                .requests()
                .iter()
                .filter(|r| r.method == "GET" && r.path == path)
                .count()
        };
        let listings = || gets("/1.0/certificates");
        let operation = format!("/1.0/operations/{id}");
        let operation_reads = || gets(&operation);
        let listings_before = listings();
        let reads_before = operation_reads();
        fake.control().add_fault(Rule {
            method: "GET".into(),
            path: "/1.0/operations".into(),
            times: Some(1),
            action: Action::Delay { delay_ms: 3000 },
        });
        std::thread::scope(|scope| {
            let refresh = scope.spawn(|| ws.ok(&REFRESH));
            // The trust store was read, the operations listing is being held back: join now.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while listings() == listings_before {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the refresh never read the trust store"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let (status, _, client) = fake.control().consume(&token, None);
            assert_eq!(status, 201);
            refresh.join().unwrap();
            // The listing no longer showed the token running: its operation was read.
            assert_eq!(operation_reads(), reads_before + 1);
            let attrs = token_attrs(&ws);
            assert_eq!(attrs["status"], "consumed", "{attrs}");
            assert_eq!(attrs["consumed_by"], client.fingerprint.as_str());
        });
        fake.control().clear_faults();
        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
    })
    .await
    .unwrap();
}

/// Replies the client cannot take (an error envelope with HTTP 200, a refusal) fail the step
/// that got them and change nothing: no token is made or forgotten.
async fn bad_replies(terraform: std::path::PathBuf) {
    let (fake, lxd_dir) = fake(Profile::V5_0).await;
    let ws = workspace(&terraform, lxd_dir.path());
    let fault = |method: &str, path: &str, status: u16, text: &str| Rule {
        method: method.into(),
        path: path.into(),
        times: None,
        action: Action::Status {
            status,
            body: Some(serde_json::json!(text)),
            headers: None,
        },
    };
    tokio::task::spawn_blocking(move || {
        // A project name must not be empty.
        failed_with(
            &ws,
            &with(&["plan", "-input=false"], &[r#"projects=[""]"#]),
            &["projects", "must not be empty"],
        );
        // The create's reply is an error envelope sent as HTTP 200: an error, no state.
        fake.control()
            .add_fault(fault("POST", "/1.0/certificates", 200, "half a reply"));
        failed_with(
            &ws,
            &APPLY,
            &["Failed to create trust token", "half a reply"],
        );
        assert_eq!(token_attrs(&ws), serde_json::Value::Null);
        assert!(fake.control().pending_tokens().is_empty());
        fake.control().clear_faults();

        ws.ok(&APPLY);
        let before = token_attrs(&ws);
        // The operations listing answers with an error envelope on HTTP 200.
        fake.control()
            .add_fault(fault("GET", "/1.0/operations", 200, "not a listing"));
        failed_with(
            &ws,
            &REFRESH,
            &["Failed to read the trust token", "not a listing"],
        );
        assert_eq!(token_attrs(&ws), before, "a failed read changes nothing");
        fake.control().clear_faults();
        // The revocation is refused: destroy fails, the token stays in the state and pending.
        fake.control()
            .add_fault(fault("DELETE", "/1.0/operations/*", 403, "not authorized"));
        failed_with(
            &ws,
            &["destroy", "-auto-approve", "-input=false"],
            &["Failed to revoke the trust token", "not authorized"],
        );
        assert_eq!(token_attrs(&ws), before);
        assert_eq!(fake.control().pending_tokens().len(), 1);
        fake.control().clear_faults();
        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
        assert!(fake.control().pending_tokens().is_empty());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_status_transition_with_every_terraform() {
    for terraform in support::terraforms() {
        once(terraform.clone()).await;
        always(terraform.clone()).await;
        name_taken(terraform.clone()).await;
        namesakes(terraform.clone()).await;
        joined_during_the_refresh(terraform.clone()).await;
        bad_replies(terraform.clone()).await;
        bad_input(terraform).await;
    }
}
