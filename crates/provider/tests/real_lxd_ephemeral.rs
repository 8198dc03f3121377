//! The ephemeral `lxd_trust_token` through real Terraform 1.11 against the real LXD 5.0.2
//! daemon: the token opened from the default provider (the daemon's unix socket) lets a second,
//! aliased provider with its own client certificate and configuration directory join over
//! HTTPS in the same run (`fixtures/ephemeral/lxd_join`), and a resource through that alias
//! works. Afterwards no ephemeral token is pending on the daemon, and none of the secrets the
//! daemon issued (read from its own event stream, `lxc monitor`) is in the state file, the saved
//! plan file, the plan or apply output, or the `TF_LOG=trace` log.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use support::Workspace;
use support::daemon::{Kind, RealDaemon};

const JOINER: &str = "terraform-joiner";

/// `lxc monitor --type=operation`: every operation event, the token secrets among them.
struct Monitor {
    child: Child,
    out: std::path::PathBuf,
}

impl Monitor {
    /// Starts the monitor and waits (with a deadline) until it sees a probe token, so that no
    /// later event is missed.
    fn start(lxc_bin: &Path, daemon: &RealDaemon, dir: &Path) -> Monitor {
        let out = dir.join("monitor.yaml");
        let child = Command::new(lxc_bin)
            .args(["monitor", "--type=operation", "--format=yaml"])
            .env("LXD_DIR", daemon.path())
            .env("LXD_CONF", daemon.path().join("cli-admin"))
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let monitor = Monitor { child, out };
        let mut probes = 0;
        let seen = support::eventually(Duration::from_secs(30), || {
            probes += 1;
            let name = format!("monitor-probe-{probes}");
            daemon.admin(&["config", "trust", "add", "--name", &name]);
            daemon.admin(&["config", "trust", "revoke-token", name.as_str()]);
            std::fs::read_to_string(&monitor.out)
                .unwrap_or_default()
                .contains(&name)
        });
        assert!(seen, "lxc monitor saw no operation event");
        monitor
    }

    /// Every token secret the daemon announced so far.
    fn secrets(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let re = regex::Regex::new(r#"secret"?:\s*"?([0-9a-f]{64})"#).unwrap();
        let mut secrets: Vec<String> = re.captures_iter(&text).map(|c| c[1].to_owned()).collect();
        secrets.sort();
        secrets.dedup();
        secrets
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` with every long base64 run decoded beside it, so that a token (base64 JSON holding
/// its secret) is found by its secret.
fn with_decoded(text: &str) -> String {
    let re = regex::Regex::new(r"[A-Za-z0-9+/]{60,}={0,2}").unwrap();
    let mut out = text.to_owned();
    for m in re.find_iter(text) {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(m.as_str()) {
            out.push('\n');
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    out
}

fn plan_file_contents(path: &Path) -> String {
    let out = Command::new("unzip").arg("-p").arg(path).output().unwrap();
    assert!(out.status.success(), "unzip failed on the plan file");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn ephemeral_token_joins_an_aliased_provider_to_the_real_daemon() {
    let (Some((lxd, lxc_bin)), Some(terraform)) = (
        RealDaemon::tools(Kind::Lxd),
        support::tool("XTASK_TERRAFORM"),
    ) else {
        return;
    };
    tokio::task::spawn_blocking(move || {
        let daemon = RealDaemon::start(Kind::Lxd, &lxd, &lxc_bin);
        let mut ws = Workspace::new(&terraform, "../ephemeral/lxd_join", support::lxd_binary());
        let monitor = Monitor::start(&lxc_bin, &daemon, ws.dir.path());
        ws.set("LXD_DIR", daemon.path().display().to_string());
        ws.set(
            "LXD_CONF",
            ws.dir.path().join("lxc-config").display().to_string(),
        );
        ws.set("TF_VAR_https_address", daemon.https_address());
        let log = ws.dir.path().join("terraform.log");
        ws.set("TF_LOG", "trace");
        ws.set("TF_LOG_PATH", log.display().to_string());

        let mut printed = ws.ok(&["plan", "-input=false", "-out=saved.tfplan"]);
        assert!(
            daemon.pending_names().is_empty(),
            "the plan left a token pending"
        );
        printed.push_str(&ws.ok(&["apply", "-input=false", "saved.tfplan"]));
        // The alias joined with an ephemeral token: the daemon trusts a certificate of that
        // name, and the token the alias made through its HTTPS connection is pending.
        let trusted = daemon.trusted_names();
        assert!(trusted.iter().any(|n| n == JOINER), "{trusted:?}");
        assert_eq!(
            daemon.pending_names(),
            vec!["made-through-the-alias".to_owned()],
            "only the managed token is pending"
        );
        let via_alias = ws.attrs("lxd_trust_token.via_alias");
        assert_eq!(via_alias["name"], "made-through-the-alias");

        printed.push_str(&ws.ok(&["destroy", "-auto-approve", "-input=false"]));
        assert!(
            daemon.pending_names().is_empty(),
            "nothing is left pending after destroy"
        );

        // Every secret the daemon issued for the ephemeral resource: all but the probes' and
        // the managed token's (which the state holds by design).
        let managed = via_alias["token"].as_str().unwrap().to_owned();
        let managed_decoded = with_decoded(&managed);
        let secrets: Vec<String> = monitor
            .secrets()
            .into_iter()
            .filter(|s| !managed_decoded.contains(s.as_str()))
            .collect();
        // Plan, apply and destroy's refresh each opened one token, and the probe one more.
        assert!(secrets.len() >= 4, "{} secrets seen", secrets.len());
        let artifacts = [
            (
                "the state file",
                std::fs::read_to_string(ws.dir.path().join("terraform.tfstate")).unwrap(),
            ),
            (
                "the saved plan file",
                plan_file_contents(&ws.dir.path().join("saved.tfplan")),
            ),
            ("the plan, apply and destroy output", printed),
            ("the trace log", std::fs::read_to_string(&log).unwrap()),
        ];
        for (what, text) in &artifacts {
            let text = with_decoded(text);
            for secret in &secrets {
                assert!(!text.contains(secret.as_str()), "a secret reached {what}");
            }
        }
        // The search finds what is there: the managed token's secret is in the backup state
        // written before destroy.
        let backup =
            std::fs::read_to_string(ws.dir.path().join("terraform.tfstate.backup")).unwrap();
        let managed_secret = monitor
            .secrets()
            .into_iter()
            .find(|s| managed_decoded.contains(s.as_str()))
            .expect("the monitor saw the managed token's secret");
        assert!(with_decoded(&backup).contains(&managed_secret));
    })
    .await
    .unwrap();
}
