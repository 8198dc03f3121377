//! The real LXD 5.0.2 and Incus 6.0 daemons, started by hand in a temporary directory as
//! `cargo xtask test` installs them, with their own command-line clients.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Which daemon: the two differ in their variables, binaries and client conventions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Debian's LXD 5.0.2 (`lxd`, `lxc`, `LXD_DIR`, `LXD_CONF`).
    Lxd,
    /// Debian's Incus 6.0 from bookworm-backports (`incusd`, `incus`, `INCUS_DIR`, `INCUS_CONF`).
    Incus,
}

impl Kind {
    /// The variable naming the daemon's directory.
    pub fn dir_var(self) -> &'static str {
        match self {
            Kind::Lxd => "LXD_DIR",
            Kind::Incus => "INCUS_DIR",
        }
    }

    /// The variable naming the client's configuration directory.
    pub fn conf_var(self) -> &'static str {
        match self {
            Kind::Lxd => "LXD_CONF",
            Kind::Incus => "INCUS_CONF",
        }
    }

    /// The `cargo xtask tools` variables of the daemon and of its client.
    fn tools(self) -> (&'static str, &'static str) {
        match self {
            Kind::Lxd => ("XTASK_LXD", "XTASK_LXC"),
            Kind::Incus => ("XTASK_INCUSD", "XTASK_INCUS"),
        }
    }

    /// The tmpfs mounts the daemon makes inside its directory.
    fn mounts(self) -> &'static [&'static str] {
        match self {
            Kind::Lxd => &["shmounts", "devlxd"],
            Kind::Incus => &["shmounts", "guestapi"],
        }
    }
}

/// A real daemon in a temporary directory, listening on its unix socket and on HTTPS at
/// `127.0.0.1:port`; stopped (and its mounts released) on drop.
pub struct RealDaemon {
    pub kind: Kind,
    dir: tempfile::TempDir,
    child: Option<Child>,
    daemon: PathBuf,
    client: PathBuf,
    pub port: u16,
}

impl RealDaemon {
    /// The daemon and client binaries from `cargo xtask tools`, or `None` (with a note) when
    /// the test runs without them.
    pub fn tools(kind: Kind) -> Option<(PathBuf, PathBuf)> {
        let (daemon, client) = kind.tools();
        Some((super::tool(daemon)?, super::tool(client)?))
    }

    /// Starts the daemon and gives it an HTTPS address on a free loopback port.
    pub fn start(kind: Kind, daemon: &Path, client: &Path) -> RealDaemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut real = RealDaemon {
            kind,
            dir: tempfile::tempdir().unwrap(),
            child: None,
            daemon: daemon.to_owned(),
            client: client.to_owned(),
            port,
        };
        real.launch();
        // `core.https_address` outlives a restart: the daemon keeps it in its database.
        let address = format!("127.0.0.1:{port}");
        match kind {
            Kind::Lxd => real.admin(&["config", "set", "core.https_address", &address]),
            Kind::Incus => real.admin(&["config", "set", &format!("core.https_address={address}")]),
        };
        real
    }

    fn launch(&mut self) {
        let log = match self.kind {
            Kind::Lxd => "lxd.log",
            Kind::Incus => "incusd.log",
        };
        let child = Command::new(&self.daemon)
            .args(["--group", "root", "--logfile"])
            .arg(self.dir.path().join(log))
            .env(self.kind.dir_var(), self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let ready = Command::new(&self.daemon)
            .args(["waitready", "--timeout=60"])
            .env(self.kind.dir_var(), self.dir.path())
            .status()
            .unwrap();
        assert!(ready.success(), "the {:?} daemon did not start", self.kind);
    }

    /// Kills the daemon (as a crash would) without starting it again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for mount in self.kind.mounts() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path().join(mount))
                .status();
        }
    }

    /// Kills the daemon and starts it again on the same directory (and HTTPS address).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// The daemon's directory (`LXD_DIR` or `INCUS_DIR`).
    pub fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// The daemon's HTTPS address.
    pub fn https_address(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The real client (`lxc` or `incus`) with its own configuration directory `conf`
    /// (inside the daemon's directory).
    pub fn cli(&self, conf: &str, args: &[&str]) -> Output {
        Command::new(&self.client)
            .args(args)
            .env(self.kind.dir_var(), self.dir.path())
            .env(self.kind.conf_var(), self.dir.path().join(conf))
            .output()
            .unwrap()
    }

    /// The client as the daemon's administrator (over the unix socket); must succeed.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = self.cli("cli-admin", args);
        assert!(
            out.status.success(),
            "{:?} {args:?}: {}",
            self.kind,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The pending tokens, as `config trust list-tokens --format csv` shows them:
    /// (name, token) pairs.
    pub fn pending(&self) -> Vec<(String, String)> {
        let csv = self.admin(&["config", "trust", "list-tokens", "--format", "csv"]);
        csv.lines()
            .filter_map(|l| {
                let mut fields = l.split(',');
                Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
            })
            .collect()
    }

    /// The names of the pending tokens.
    pub fn pending_names(&self) -> Vec<String> {
        self.pending().into_iter().map(|(name, _)| name).collect()
    }

    /// The trust store as `config trust list --format csv` shows it, one line per entry.
    /// (lxc 5.0 puts the type first and the name second; incus puts the name first.)
    pub fn trust_lines(&self) -> Vec<String> {
        let csv = self.admin(&["config", "trust", "list", "--format", "csv"]);
        csv.lines().map(str::to_owned).collect()
    }

    /// The names of the trusted certificates.
    pub fn trusted_names(&self) -> Vec<String> {
        let column = match self.kind {
            Kind::Lxd => 1,
            Kind::Incus => 0,
        };
        self.trust_lines()
            .iter()
            .filter_map(|l| l.split(',').nth(column))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for RealDaemon {
    fn drop(&mut self) {
        self.kill();
    }
}
