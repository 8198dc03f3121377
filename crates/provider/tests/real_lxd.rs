//! The seed example of `lxd_trust_token` through real Terraform against the real LXD 5.0.2
//! daemon (Debian's `lxd`, started here with a temporary `LXD_DIR`), and its token consumed
//! by the real `lxc remote add`.

mod support;

use support::Workspace;
use support::daemon::{Kind, RealDaemon};

#[tokio::test(flavor = "multi_thread")]
async fn seed_example_against_the_real_daemon() {
    let (Some((lxd, lxc)), Some(terraform)) = (
        RealDaemon::tools(Kind::Lxd),
        support::tool("XTASK_TERRAFORM"),
    ) else {
        return;
    };
    tokio::task::spawn_blocking(move || {
        let daemon = RealDaemon::start(Kind::Lxd, &lxd, &lxc);
        let mut ws = Workspace::new(&terraform, "lxd_trust_token", support::lxd_binary());
        ws.set("LXD_DIR", daemon.path().display().to_string());
        ws.set(
            "LXD_CONF",
            ws.dir.path().join("lxc-config").display().to_string(),
        );

        ws.ok(&["apply", "-auto-approve", "-input=false"]);
        let token = ws.output("token").as_str().unwrap().to_owned();
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 0, "second plan not empty:\n{text}");
        let attrs = ws.attrs("lxd_trust_token.token1");
        assert_eq!(attrs["expires_at"], "");

        // The real lxc lists the token and joins with it.
        assert_eq!(daemon.pending(), [("mytoken".to_owned(), token.clone())]);
        let joined = daemon.cli("lxc-joiner", &["remote", "add", "joined", &token]);
        assert!(
            joined.status.success(),
            "{}",
            String::from_utf8_lossy(&joined.stderr)
        );

        // trigger "once": the used token is not replaced.
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 0, "{text}");
        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
        assert!(
            daemon.trusted_names().contains(&"mytoken".to_owned()),
            "the certificate made by the token survives destroy: {:?}",
            daemon.trust_lines()
        );
    })
    .await
    .unwrap();
}
