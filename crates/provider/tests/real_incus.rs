//! `lxd_trust_token` through real Terraform against the real Incus 6.0 daemon (Debian's
//! `incus` from bookworm-backports, started here with a temporary `INCUS_DIR`): the provider
//! finds the daemon through `INCUS_DIR` as `incus` does, the real `incus remote add` consumes
//! the token, `trigger = "always"` plans a new one, destroy leaves nothing pending, and a
//! `remote` block joins the daemon over HTTPS with a token made by `incus config trust add`.

mod support;

use std::time::Duration;

use support::daemon::{Kind, RealDaemon};
use support::{Workspace, eventually};

#[tokio::test(flavor = "multi_thread")]
async fn trust_tokens_against_the_real_incus_daemon() {
    let (Some((incusd, incus)), Some(terraform)) = (
        RealDaemon::tools(Kind::Incus),
        support::tool("XTASK_TERRAFORM"),
    ) else {
        return;
    };
    tokio::task::spawn_blocking(move || {
        let daemon = RealDaemon::start(Kind::Incus, &incusd, &incus);
        let provider = support::lxd_binary();

        // Found through INCUS_DIR alone, as `incus` finds its local daemon.
        let mut ws = Workspace::new(&terraform, "lxd_trust_token_always", provider);
        ws.set("INCUS_DIR", daemon.path().display().to_string());
        ws.set(
            "INCUS_CONF",
            ws.dir.path().join("incus-config").display().to_string(),
        );
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let token = ws.output("token").as_str().unwrap().to_owned();
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 0, "second plan not empty:\n{text}");
        assert_eq!(daemon.pending_names(), ["mytoken"]);

        // The real incus joins with it: the certificate takes the token's name.
        let joined = daemon.cli(
            "incus-joiner",
            &["remote", "add", "joined", &token, "--accept-certificate"],
        );
        assert!(
            joined.status.success(),
            "{}",
            String::from_utf8_lossy(&joined.stderr)
        );
        assert!(daemon.trusted_names().contains(&"mytoken".to_owned()));
        // Incus cancels a used token at once and forgets it about five seconds later.
        assert!(
            eventually(Duration::from_secs(30), || daemon
                .pending_names()
                .is_empty()),
            "the used token is still listed"
        );

        // trigger "always": the used token is planned anew, and the apply makes exactly one.
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(
            code, 2,
            "a used token with trigger = always plans a new one:\n{text}"
        );
        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let second = ws.output("token").as_str().unwrap().to_owned();
        assert_ne!(second, token);
        assert_eq!(daemon.pending_names(), ["mytoken"]);
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 0, "{text}");

        // Destroy leaves nothing pending.
        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
        assert_eq!(daemon.pending_names(), Vec::<String>::new());

        // A remote block joins over HTTPS with a token that `incus config trust add` printed:
        // Incus takes it only in `trust_token`.
        let added = daemon.admin(&["config", "trust", "add", "terraform"]);
        let join_token = added.lines().last().unwrap().trim().to_owned();
        let mut https = Workspace::new(&terraform, "lxd_trust_token_always", provider);
        std::fs::write(
            https.dir.path().join("main.tf"),
            format!(
                r#"
provider "lxd" {{
  config_dir                   = "{conf}"
  generate_client_certificates = true
  remote {{
    name     = "incus"
    address  = "https://127.0.0.1:{port}"
    protocol = "incus"
    token    = "{join_token}"
    default  = true
  }}
}}

resource "lxd_trust_token" "over_https" {{
  name = "via-https"
}}
"#,
                conf = https.dir.path().join("client-config").display(),
                port = daemon.port,
            ),
        )
        .unwrap();
        https.set("INCUS_DIR", "/nonexistent");
        https.ok(&["apply", "-auto-approve", "-input=false"]);
        assert!(daemon.trusted_names().contains(&"terraform".to_owned()));
        assert_eq!(daemon.pending_names(), ["via-https"]);
        https.ok(&["destroy", "-auto-approve", "-input=false"]);
        assert_eq!(daemon.pending_names(), Vec::<String>::new());
    })
    .await
    .unwrap();
}
