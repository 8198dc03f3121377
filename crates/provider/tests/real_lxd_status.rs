//! `lxd_trust_token`'s `status` through real Terraform against the real LXD 5.0.2 daemon:
//! consumed by the real `lxc remote add` (and `consumed_by` is that client's fingerprint, never
//! a namesake's), revoked with `lxc config trust revoke-token`, expired with a short
//! `core.remote_token_expiry` (polled with a deadline), `trigger = "always"` replacing each
//! spent token (`once` keeping it, with one warning when it expired unused), destroy leaving no
//! running operation, and `remove_consumer_on_destroy` deleting exactly the consumer.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::Workspace;
use support::daemon::{Kind, RealDaemon};
use support::lxd_cli::{Lxd, poll_until};

/// LXD 5.0.2 keeps a cancelled operation this long before it answers 404.
const CANCELLED_RETENTION: Duration = Duration::from_secs(5);

const APPLY: [&str; 3] = ["apply", "-auto-approve", "-input=false"];
const REFRESH: [&str; 4] = ["apply", "-refresh-only", "-auto-approve", "-input=false"];
const DESTROY: [&str; 3] = ["destroy", "-auto-approve", "-input=false"];

fn with<'a>(base: &[&'a str], vars: &[&'a str]) -> Vec<&'a str> {
    let mut args = base.to_vec();
    for var in vars {
        args.extend(["-var", var]);
    }
    args
}

fn workspace(terraform: &Path, daemon: &RealDaemon) -> Workspace {
    let mut ws = Workspace::new(terraform, "lxd_trust_token", support::lxd_binary());
    std::fs::copy(
        support::fixture("lxd/trust_token_status.tf"),
        ws.dir.path().join("main.tf"),
    )
    .unwrap();
    ws.set("LXD_DIR", daemon.path().display().to_string());
    ws.set(
        "LXD_CONF",
        ws.dir.path().join("lxc-config").display().to_string(),
    );
    ws
}

fn attrs(ws: &Workspace) -> serde_json::Value {
    ws.attrs("lxd_trust_token.token1")
}

fn attr(ws: &Workspace, name: &str) -> String {
    attrs(ws)[name].as_str().unwrap_or_default().to_owned()
}

/// `once`: a namesake consumed by another client while ours is pending is never taken for
/// ours; ours consumed by the real `lxc remote add` reads `consumed` by that client; the plan
/// stays empty; destroy with `remove_consumer_on_destroy` deletes exactly that certificate.
fn consumed_once(ws: &Workspace, daemon: &RealDaemon) {
    let vars = ["trigger=once", "remove_consumer=true"];
    ws.ok(&with(&APPLY, &vars));
    let ours = attr(ws, "operation_id");
    assert_eq!(attr(ws, "status"), "pending");
    assert_eq!(
        ws.output("listed"),
        serde_json::json!([{"name": "mytoken", "operation_id": ours, "projects": [], "expires_at": "", "status": "pending"}]),
        "the data source lists the pending token, never its secret"
    );
    assert_eq!(daemon.running(), std::slice::from_ref(&ours));

    // Another client joins with another token of the same name, made outside Terraform.
    let theirs = daemon.add_token("mytoken");
    let namesake = daemon.join("lxc-namesake", &theirs);
    let namesake = daemon.fingerprint_of(&namesake);
    ws.ok(&with(&REFRESH, &vars));
    assert_eq!(
        attr(ws, "status"),
        "pending",
        "a namesake's consumption is not ours"
    );
    assert_eq!(attrs(ws)["consumed_by"], serde_json::Value::Null);

    let consumer = daemon.join("lxc-joiner", &attr(ws, "token"));
    let consumer = daemon.fingerprint_of(&consumer);
    assert_eq!(daemon.named("mytoken").len(), 2);
    let text = ws.ok(&with(&REFRESH, &vars));
    assert!(
        !text.contains("Trust token"),
        "no warning for a consumed token: {text}"
    );
    assert_eq!(attr(ws, "status"), "consumed");
    assert_eq!(attr(ws, "consumed_by"), consumer);
    let (code, text) = ws.plan_code(&with(&[], &vars));
    assert_eq!(code, 0, "trigger once keeps a consumed token:\n{text}");

    ws.ok(&with(&DESTROY, &vars));
    assert_eq!(
        daemon.named("mytoken"),
        [namesake],
        "exactly the consumer is removed, never its namesake"
    );
    assert!(daemon.running().is_empty());
}

/// `always`: a consumed token is replaced with a warning naming its consumer (which the
/// replacement removes); a token revoked with `lxc config trust revoke-token` reads `revoked`
/// and is replaced; a token past its expiry reads `expired` and is replaced, the old operation
/// revoked if LXD still lists it; destroy leaves nothing running.
fn always(ws: &Workspace, daemon: &RealDaemon) {
    let vars = ["trigger=always", "remove_consumer=true"];
    let others = daemon.named("mytoken");
    ws.ok(&with(&APPLY, &vars));
    let first = attr(ws, "operation_id");
    let consumer = daemon.join("lxc-always", &attr(ws, "token"));
    let consumer = daemon.fingerprint_of(&consumer);
    let (code, text) = ws.plan_code(&with(&[], &vars));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("Trust token will be replaced"), "{text}");
    assert!(text.contains("was consumed"), "{text}");
    assert!(text.contains(&consumer), "{text}");
    ws.ok(&with(&APPLY, &vars));
    let second = attr(ws, "operation_id");
    assert_ne!(second, first);
    assert_eq!(attr(ws, "status"), "pending");
    assert_eq!(daemon.running(), std::slice::from_ref(&second));
    assert_eq!(
        daemon.named("mytoken"),
        others,
        "the replaced token's consumer is removed, and only it"
    );

    revoked(ws, daemon, &vars);

    // Expiry: LXD 5.0.2 takes seconds (`S`); the replacement of the revoked token, made now,
    // expires ten seconds on.
    daemon.admin(&["config", "set", "core.remote_token_expiry", "10S"]);
    let revoked_id = attr(ws, "operation_id");
    ws.ok(&with(&APPLY, &vars));
    assert_ne!(attr(ws, "operation_id"), revoked_id);
    let expiring = attr(ws, "operation_id");
    assert_ne!(attr(ws, "expires_at"), "");
    let status = poll_until(Duration::from_secs(90), || {
        ws.ok(&with(&REFRESH, &vars));
        Some(attr(ws, "status")).filter(|s| s != "pending")
    });
    assert_eq!(status.as_deref(), Some("expired"));
    daemon.admin(&["config", "unset", "core.remote_token_expiry"]);
    // LXD sweeps expired tokens once a minute: the expired one is likely still listed.
    let still_listed = daemon.operation_status(&expiring).as_deref() == Some("Running");
    let (code, text) = ws.plan_code(&with(&[], &vars));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("without being used"), "{text}");
    ws.ok(&with(&APPLY, &vars));
    let fresh = attr(ws, "operation_id");
    assert_eq!(
        daemon.running(),
        [fresh],
        "the expired token (listed before the apply: {still_listed}) was revoked"
    );
    assert_eq!(attr(ws, "expires_at"), "");

    ws.ok(&with(&DESTROY, &vars));
    assert!(
        daemon.running().is_empty(),
        "destroy leaves nothing running"
    );
    assert_eq!(daemon.named("mytoken"), others);
}

/// Revokes the pending token with the real `lxc` and refreshes: `revoked` while LXD retains
/// the cancelled operation (five seconds), `unknown` (no proof) only when the refresh came
/// later; a loaded machine gets a few tries, each late one replaced by the next apply. Leaves
/// the revoked token in the state, its replacement planned.
fn revoked(ws: &Workspace, daemon: &RealDaemon, vars: &[&str]) {
    for attempt in 1..=3 {
        let id = attr(ws, "operation_id");
        let start = Instant::now();
        let said = daemon.admin(&["config", "trust", "revoke-token", "mytoken"]);
        assert!(said.contains("deleted"), "{said}");
        ws.ok(&with(&REFRESH, vars));
        let late = start.elapsed() >= CANCELLED_RETENTION;
        let status = attr(ws, "status");
        assert!(daemon.running().is_empty());
        let (code, text) = ws.plan_code(&with(&[], vars));
        assert_eq!(code, 2, "{text}");
        match status.as_str() {
            "revoked" => {
                assert!(text.contains("was revoked"), "{text}");
                return;
            }
            "unknown" if late => {
                eprintln!("attempt {attempt}: the refresh came after LXD forgot the revocation");
                assert!(text.contains("no longer on the server"), "{text}");
            }
            other => panic!("a revoked token reads {other:?} (late: {late})"),
        }
        ws.ok(&with(&APPLY, vars));
        assert_ne!(attr(ws, "operation_id"), id);
        assert_eq!(daemon.running(), [attr(ws, "operation_id")]);
    }
    panic!("no refresh came within five seconds of the revocation in three tries");
}

/// `once`: a token that expires unused reads `expired`, the refresh that finds it so warns
/// once, the plan stays empty, and destroy revokes it if LXD still lists it (its sweep runs
/// once a minute): nothing is left running.
fn expired_once(ws: &Workspace, daemon: &RealDaemon) {
    let vars = ["trigger=once"];
    daemon.admin(&["config", "set", "core.remote_token_expiry", "5S"]);
    ws.ok(&with(&APPLY, &vars));
    daemon.admin(&["config", "unset", "core.remote_token_expiry"]);
    assert_eq!(attr(ws, "status"), "pending");
    let text = poll_until(Duration::from_secs(90), || {
        let text = ws.ok(&with(&REFRESH, &vars));
        (attr(ws, "status") != "pending").then_some(text)
    })
    .expect("the token never left pending");
    assert_eq!(attr(ws, "status"), "expired");
    assert!(text.contains("Trust token expired unused"), "{text}");
    let (code, text) = ws.plan_code(&with(&[], &vars));
    assert_eq!(code, 0, "trigger once keeps an expired token:\n{text}");
    assert!(
        !text.contains("Trust token"),
        "the warning comes once: {text}"
    );
    ws.ok(&with(&DESTROY, &vars));
    assert!(
        daemon.running().is_empty(),
        "destroy leaves nothing running"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn statuses_against_the_real_daemon() {
    let (Some((lxd, lxc)), Some(terraform)) = (
        RealDaemon::tools(Kind::Lxd),
        support::tool("XTASK_TERRAFORM"),
    ) else {
        return;
    };
    tokio::task::spawn_blocking(move || {
        let daemon = RealDaemon::start(Kind::Lxd, &lxd, &lxc);
        let ws = workspace(&terraform, &daemon);
        consumed_once(&ws, &daemon);
        always(&ws, &daemon);
        expired_once(&ws, &daemon);
    })
    .await
    .unwrap();
}
