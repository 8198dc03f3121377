//! A real LXD 5.0.2 daemon (Debian's `lxd`) started by a test in a temporary `LXD_DIR`, the
//! real `lxc` as its administrator and as joining clients, and polls with a deadline.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// A real LXD daemon in a temporary directory; killed (and its mounts released) on drop.
pub struct RealLxd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    lxd: PathBuf,
    lxc: PathBuf,
    pub port: u16,
}

impl RealLxd {
    /// Starts the daemon and makes it listen on a free loopback port (tokens need an address).
    pub fn start(lxd: &Path, lxc: &Path) -> RealLxd {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut daemon = RealLxd {
            dir: tempfile::tempdir().unwrap(),
            child: None,
            lxd: lxd.to_owned(),
            lxc: lxc.to_owned(),
            port,
        };
        daemon.spawn();
        daemon.admin(&[
            "config",
            "set",
            "core.https_address",
            &format!("127.0.0.1:{port}"),
        ]);
        daemon
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.lxd)
            .args(["--group", "root", "--logfile"])
            .arg(self.dir.path().join("lxd.log"))
            .env("LXD_DIR", self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let ready = Command::new(&self.lxd)
            .args(["waitready", "--timeout=60"])
            .env("LXD_DIR", self.dir.path())
            .status()
            .unwrap();
        assert!(ready.success(), "the LXD daemon did not start");
    }

    /// The daemon's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the daemon at once (SIGKILL), as a crash would, and releases its mounts.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for mount in ["shmounts", "devlxd"] {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path().join(mount))
                .status();
        }
    }

    /// Starts the daemon again on the same directory (its database and configuration kept).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("unix.socket")
    }

    /// The real `lxc` with its own configuration directory `conf` (a client of its own).
    pub fn lxc(&self, conf: &str, args: &[&str]) -> Output {
        Command::new(&self.lxc)
            .args(args)
            .env("LXD_DIR", self.dir.path())
            .env("LXD_CONF", self.dir.path().join(conf))
            .output()
            .unwrap()
    }

    /// `lxc` as the daemon's administrator (over the unix socket); must succeed.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = self.lxc("lxc-admin", args);
        assert!(
            out.status.success(),
            "lxc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `lxc query PATH` as the administrator (`null` when it prints nothing, as it does for an
    /// empty operations list).
    pub fn query(&self, path: &str) -> serde_json::Value {
        let out = self.admin(&["query", path]);
        if out.trim().is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_str(&out).unwrap()
    }

    /// Joins the daemon with `token` as the client whose configuration is `conf` (the real
    /// `lxc remote add`); returns that client's certificate (PEM).
    pub fn join(&self, conf: &str, token: &str) -> String {
        let out = self.lxc(conf, &["remote", "add", "joined", token]);
        assert!(
            out.status.success(),
            "lxc remote add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(self.dir.path().join(conf).join("client.crt")).unwrap()
    }

    /// `lxc config trust add --name NAME`: a token made outside Terraform; returns it.
    pub fn add_token(&self, name: &str) -> String {
        let out = self.admin(&["config", "trust", "add", "--name", name]);
        out.lines().last().unwrap().trim().to_owned()
    }

    /// The trust store: (name, fingerprint, certificate PEM) of each certificate.
    pub fn certificates(&self) -> Vec<(String, String, String)> {
        let list = self.query("/1.0/certificates?recursion=1");
        let mut certs: Vec<_> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let field = |k: &str| c[k].as_str().unwrap().to_owned();
                (field("name"), field("fingerprint"), field("certificate"))
            })
            .collect();
        certs.sort();
        certs
    }

    /// The fingerprint of the trusted certificate whose PEM is `pem`.
    pub fn fingerprint_of(&self, pem: &str) -> String {
        self.certificates()
            .into_iter()
            .find(|(_, _, cert)| cert.trim() == pem.trim())
            .map(|(_, fp, _)| fp)
            .unwrap_or_else(|| panic!("no trusted certificate is {pem}"))
    }

    /// The fingerprints of the certificates named `name`.
    pub fn named(&self, name: &str) -> Vec<String> {
        self.certificates()
            .into_iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, fp, _)| fp)
            .collect()
    }

    /// The token operations by status (`Running`, `Cancelled`): (id, name), sorted.
    pub fn token_operations(&self, status: &str) -> Vec<(String, String)> {
        let buckets = self.query("/1.0/operations?recursion=1");
        let mut ops: Vec<(String, String)> = buckets
            .as_object()
            .into_iter()
            .flat_map(|b| b.values())
            .filter_map(|ops| ops.as_array())
            .flatten()
            .filter(|op| op["class"] == "token" && op["status"] == status)
            .map(|op| {
                (
                    op["id"].as_str().unwrap().to_owned(),
                    op["metadata"]["request"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        ops.sort();
        ops
    }

    /// The ids of the running token operations.
    pub fn running(&self) -> Vec<String> {
        self.token_operations("Running")
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// The status of the operation `id` (`Running`, `Cancelled`…), or `None` once it is gone.
    pub fn operation_status(&self, id: &str) -> Option<String> {
        let out = self.lxc("lxc-admin", &["query", &format!("/1.0/operations/{id}")]);
        if !out.status.success() {
            return None;
        }
        let op: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        op["status"].as_str().map(str::to_owned)
    }
}

impl Drop for RealLxd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it gives a value or `deadline` passes (`None` then).
pub fn eventually<T>(deadline: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if start.elapsed() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
