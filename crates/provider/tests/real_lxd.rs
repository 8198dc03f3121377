//! The seed example of `lxd_trust_token` through real Terraform against the real LXD 5.0.2
//! daemon (Debian's `lxd`, started here with a temporary `LXD_DIR`), and its token consumed
//! by the real `lxc remote add`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::Workspace;

/// A real LXD daemon in a temporary directory; stopped (and its mounts released) on drop.
struct RealLxd {
    dir: tempfile::TempDir,
    child: Child,
}

impl RealLxd {
    fn start(lxd: &Path, lxc: &Path) -> RealLxd {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(lxd)
            .args(["--group", "root", "--logfile"])
            .arg(dir.path().join("lxd.log"))
            .env("LXD_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let daemon = RealLxd { dir, child };
        let ready = Command::new(lxd)
            .args(["waitready", "--timeout=60"])
            .env("LXD_DIR", daemon.dir.path())
            .status()
            .unwrap();
        assert!(ready.success(), "the LXD daemon did not start");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let set = Command::new(lxc)
            .args([
                "config",
                "set",
                "core.https_address",
                &format!("127.0.0.1:{port}"),
            ])
            .env("LXD_DIR", daemon.dir.path())
            .env("LXD_CONF", daemon.dir.path().join("lxc-admin"))
            .output()
            .unwrap();
        assert!(
            set.status.success(),
            "{}",
            String::from_utf8_lossy(&set.stderr)
        );
        daemon
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for RealLxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A killed daemon leaves tmpfs mounts behind in its directory.
        for mount in ["shmounts", "devlxd"] {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path().join(mount))
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_example_against_the_real_daemon() {
    let (Some(lxd), Some(lxc), Some(terraform)) = (
        common::tool("XTASK_LXD"),
        common::tool("XTASK_LXC"),
        common::tool("XTASK_TERRAFORM"),
    ) else {
        return;
    };
    tokio::task::spawn_blocking(move || {
        let daemon = RealLxd::start(&lxd, &lxc);
        let mut ws = Workspace::new(
            &terraform,
            "lxd_trust_token",
            Path::new(env!("CARGO_BIN_EXE_terraform-provider-lxd")),
        );
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
        let lxc_env = |cmd: &mut Command| {
            cmd.env("LXD_DIR", daemon.path())
                .env("LXD_CONF", daemon.path().join("lxc-joiner"));
        };
        let mut list = Command::new(&lxc);
        list.args(["config", "trust", "list-tokens", "--format", "csv"]);
        lxc_env(&mut list);
        let listed = String::from_utf8(list.output().unwrap().stdout).unwrap();
        assert_eq!(listed.trim(), format!("mytoken,{token},"));
        let mut join = Command::new(&lxc);
        join.args(["remote", "add", "joined", &token]);
        lxc_env(&mut join);
        let joined = join.output().unwrap();
        assert!(
            joined.status.success(),
            "{}",
            String::from_utf8_lossy(&joined.stderr)
        );

        // trigger "once": the used token is not replaced.
        let (code, text) = ws.plan_code(&[]);
        assert_eq!(code, 0, "{text}");
        ws.ok(&["destroy", "-auto-approve", "-input=false"]);
        let mut list = Command::new(&lxc);
        list.args(["config", "trust", "list", "--format", "csv"]);
        lxc_env(&mut list);
        let trusted = String::from_utf8(list.output().unwrap().stdout).unwrap();
        assert!(
            trusted.contains("mytoken"),
            "the certificate made by the token survives destroy: {trusted}"
        );
    })
    .await
    .unwrap();
}
