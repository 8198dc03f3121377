//! What the real-LXD status and chaos tests read from the real LXD 5.0.2 daemon
//! (`support::daemon::RealDaemon` with `Kind::Lxd`) through the real `lxc`: the trust store
//! and the token operations as JSON (`lxc query`), clients joining with `lxc remote add`, and
//! a poll with a deadline.

use std::time::{Duration, Instant};

use super::daemon::RealDaemon;

pub trait Lxd {
    /// `lxc query PATH` as the administrator (`null` when it prints nothing, as it does for
    /// an empty operations list).
    fn query(&self, path: &str) -> serde_json::Value;
    /// Joins with `token` as the client whose configuration is `conf` (the real
    /// `lxc remote add`); returns that client's certificate (PEM).
    fn join(&self, conf: &str, token: &str) -> String;
    /// `lxc config trust add --name NAME`: a token made outside Terraform.
    fn add_token(&self, name: &str) -> String;
    /// The trust store: (name, fingerprint, certificate PEM), sorted.
    fn certificates(&self) -> Vec<(String, String, String)>;
    /// The fingerprint of the trusted certificate whose PEM is `pem`.
    fn fingerprint_of(&self, pem: &str) -> String;
    /// The fingerprints of the certificates named `name`.
    fn named(&self, name: &str) -> Vec<String>;
    /// The ids of the running token operations, sorted.
    fn running(&self) -> Vec<String>;
    /// The status of the operation `id` (`Running`, `Cancelled`…), or `None` once it is gone.
    fn operation_status(&self, id: &str) -> Option<String>;
}

impl Lxd for RealDaemon {
    fn query(&self, path: &str) -> serde_json::Value {
        let out = self.admin(&["query", path]);
        if out.trim().is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_str(&out).unwrap()
    }

    fn join(&self, conf: &str, token: &str) -> String {
        let out = self.cli(conf, &["remote", "add", "joined", token]);
        assert!(
            out.status.success(),
            "lxc remote add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(self.path().join(conf).join("client.crt")).unwrap()
    }

    fn add_token(&self, name: &str) -> String {
        let out = self.admin(&["config", "trust", "add", "--name", name]);
        out.lines().last().unwrap().trim().to_owned()
    }

    fn certificates(&self) -> Vec<(String, String, String)> {
        let list = self.query("/1.0/certificates?recursion=1");
        let mut certs: Vec<_> = list
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let field = |k: &str| c[k].as_str().unwrap().to_owned();
                (field("name"), field("fingerprint"), field("certificate"))
            })
            .collect();
        certs.sort();
        certs
    }

    fn fingerprint_of(&self, pem: &str) -> String {
        self.certificates()
            .into_iter()
            .find(|(_, _, cert)| cert.trim() == pem.trim())
            .map(|(_, fp, _)| fp)
            .unwrap_or_else(|| panic!("no trusted certificate is {pem}"))
    }

    fn named(&self, name: &str) -> Vec<String> {
        self.certificates()
            .into_iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, fp, _)| fp)
            .collect()
    }

    fn running(&self) -> Vec<String> {
        let buckets = self.query("/1.0/operations?recursion=1");
        let mut ids: Vec<String> = buckets
            .as_object()
            .into_iter()
            .flat_map(|b| b.values())
            .filter_map(|ops| ops.as_array())
            .flatten()
            .filter(|op| op["class"] == "token" && op["status"] == "Running")
            .map(|op| op["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    fn operation_status(&self, id: &str) -> Option<String> {
        let out = self.cli("cli-admin", &["query", &format!("/1.0/operations/{id}")]);
        if !out.status.success() {
            return None;
        }
        let op: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        op["status"].as_str().map(str::to_owned)
    }
}

/// Polls `check` until it gives a value or `deadline` passes (`None` then).
pub fn poll_until<T>(deadline: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
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
