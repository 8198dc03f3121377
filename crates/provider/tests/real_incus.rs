//! `lxd_trust_token` through real Terraform against the real Incus 6.0 daemon (Debian's
//! `incus` from bookworm-backports, started here with a temporary `INCUS_DIR`): the provider
//! finds the daemon through `INCUS_DIR` as `incus` does, the real `incus remote add` consumes
//! the token, `trigger = "always"` plans a new one, destroy leaves nothing pending, and a
//! `remote` block joins the daemon over HTTPS with a token made by `incus config trust add`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::Workspace;

/// A real Incus daemon in a temporary directory; stopped (and its mounts released) on drop.
struct RealIncus {
    dir: tempfile::TempDir,
    child: Child,
    incus: PathBuf,
    port: u16,
}

impl RealIncus {
    fn start(incusd: &Path, incus: &Path) -> RealIncus {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(incusd)
            .args(["--group", "root", "--logfile"])
            .arg(dir.path().join("incusd.log"))
            .env("INCUS_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let daemon = RealIncus {
            dir,
            child,
            incus: incus.to_owned(),
            port,
        };
        let ready = Command::new(incusd)
            .args(["waitready", "--timeout=60"])
            .env("INCUS_DIR", daemon.dir.path())
            .status()
            .unwrap();
        assert!(ready.success(), "the Incus daemon did not start");
        daemon.admin(&[
            "config",
            "set",
            &format!("core.https_address=127.0.0.1:{port}"),
        ]);
        daemon
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// The real `incus` client with its own configuration directory `conf`.
    fn incus(&self, conf: &str, args: &[&str]) -> Output {
        Command::new(&self.incus)
            .args(args)
            .env("INCUS_DIR", self.dir.path())
            .env("INCUS_CONF", self.dir.path().join(conf))
            .output()
            .unwrap()
    }

    /// `incus` as the daemon's administrator (over the unix socket); must succeed.
    fn admin(&self, args: &[&str]) -> String {
        let out = self.incus("incus-admin", args);
        assert!(
            out.status.success(),
            "incus {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The names of the pending tokens, as `incus config trust list-tokens` shows them.
    fn pending_names(&self) -> Vec<String> {
        let csv = self.admin(&["config", "trust", "list-tokens", "--format", "csv"]);
        csv.lines()
            .filter_map(|l| l.split(',').next())
            .map(str::to_owned)
            .collect()
    }

    /// The names of the trusted certificates (the first column of Incus' CSV, where lxc 5.0
    /// puts the type).
    fn trusted_names(&self) -> Vec<String> {
        let csv = self.admin(&["config", "trust", "list", "--format", "csv"]);
        csv.lines()
            .filter_map(|l| l.split(',').next())
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for RealIncus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The daemon mounts small tmpfs directories inside its directory.
        for mount in ["shmounts", "guestapi"] {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path().join(mount))
                .status();
        }
    }
}

/// Polls `check` until it holds or `deadline` passes.
fn eventually(deadline: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if check() {
            return true;
        }
        if start.elapsed() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trust_tokens_against_the_real_incus_daemon() {
    let (Some(incusd), Some(incus), Some(terraform)) = (
        common::tool("XTASK_INCUSD"),
        common::tool("XTASK_INCUS"),
        common::tool("XTASK_TERRAFORM"),
    ) else {
        return;
    };
    tokio::task::spawn_blocking(move || {
        let daemon = RealIncus::start(&incusd, &incus);
        let provider = Path::new(env!("CARGO_BIN_EXE_terraform-provider-lxd"));

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
        let joined = daemon.incus(
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
