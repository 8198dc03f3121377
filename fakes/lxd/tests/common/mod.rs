//! Shared helpers of the fake-lxd tests: external tools, a real LXD daemon, raw HTTP clients,
//! and the normalisation used to compare the fake with the real daemon.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The location of an external tool from `var`, or `None` (after printing the skip line) when
/// the variable is unset; with `XTASK_REQUIRE_TOOLS=1` an unset variable is a failure.
pub fn tool(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            let message = format!("skipped: {var} not set (run through cargo xtask test)");
            if std::env::var("XTASK_REQUIRE_TOOLS").as_deref() == Ok("1") {
                panic!("{message}");
            }
            println!("{message}");
            None
        }
    }
}

/// A reply as seen on the wire.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request over a unix socket, `Connection: close`, chunked replies decoded.
pub async fn unix_request(socket: &Path, method: &str, path: &str, body: Option<&str>) -> Reply {
    let exchange = unix_exchange(socket, method, path, body);
    tokio::time::timeout(std::time::Duration::from_secs(20), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path} over the unix socket timed out"))
}

async fn unix_exchange(socket: &Path, method: &str, path: &str, body: Option<&str>) -> Reply {
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect to the unix socket");
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: lxd\r\nUser-Agent: fake-lxd-tests\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read the reply");
    parse_http1(&raw)
}

fn parse_http1(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        let Some(chunk) = after.get(..n) else { break };
        out.push_str(chunk);
        rest = &after[n..];
        rest = rest.strip_prefix("\r\n").unwrap_or(rest);
    }
    out
}

/// A client certificate (self-signed EC P-384, like the ones `lxc` and openssl make).
pub struct Cert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Cert {
    pub fn generate(name: &str) -> Cert {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("certificate");
        Cert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// An HTTPS client that accepts any server certificate and presents `cert` if given.
pub fn https_client(cert: Option<&Cert>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true);
    if let Some(cert) = cert {
        let identity =
            reqwest::Identity::from_pem(format!("{}{}", cert.key_pem, cert.cert_pem).as_bytes())
                .expect("identity");
        builder = builder.identity(identity);
    }
    builder
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("https client")
}

pub async fn https_request(
    client: &reqwest::Client,
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method, format!("https://{addr}{path}"));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.expect("https request");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = response.text().await.expect("body");
    Reply {
        status,
        headers,
        body,
    }
}

/// The token string `lxc config trust add` builds from a token operation (compact JSON, std base64).
pub fn token_from_op(op: &serde_json::Value) -> String {
    use base64::Engine;
    let meta = &op["metadata"];
    let json = serde_json::json!({
        "client_name": meta["request"]["name"],
        "fingerprint": meta["fingerprint"],
        "addresses": meta["addresses"],
        "secret": meta["secret"],
        "expires_at": meta.get("expiresAt").cloned().unwrap_or(serde_json::json!("0001-01-01T00:00:00Z")),
    });
    base64::engine::general_purpose::STANDARD.encode(json.to_string())
}

/// Replaces what differs between two daemons by nature (ids, secrets, fingerprints, times,
/// certificates, ports, tokens) by placeholders, keeping everything else byte for byte.
pub fn normalise(text: &str) -> String {
    let rules: &[(&str, &str)] = &[
        (
            r"-----BEGIN CERTIFICATE-----(\\n|\n|[^-])*-----END CERTIFICATE-----(\\n|\n)?",
            "<PEM>",
        ),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "<UUID>",
        ),
        (r"[0-9a-f]{64}", "<HEX64>"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<TS>"),
        (r"\d{4}/\d\d/\d\d \d\d:\d\d UTC", "<DATE>"),
        (r"127\.0\.0\.1:\d+", "<ADDR>"),
        (r"eyJ[A-Za-z0-9+/=]+", "<TOKEN>"),
    ];
    let mut out = text.trim_end().to_owned();
    for (pattern, replacement) in rules {
        let re = regex::Regex::new(pattern).expect("pattern");
        out = re.replace_all(&out, *replacement).into_owned();
    }
    out
}

/// Which real daemon: how it is started and where it keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    /// Debian's LXD 5.0.2 (`lxd`, `LXD_DIR`).
    Lxd,
    /// Debian's Incus 6.0 (`incusd`, `INCUS_DIR`).
    Incus,
}

impl Daemon {
    fn dir_var(self) -> &'static str {
        match self {
            Daemon::Lxd => "LXD_DIR",
            Daemon::Incus => "INCUS_DIR",
        }
    }

    /// The tmpfs the daemon mounts inside its directory.
    fn mounts(self) -> [&'static str; 2] {
        match self {
            Daemon::Lxd => ["shmounts", "devlxd"],
            Daemon::Incus => ["shmounts", "guestapi"],
        }
    }
}

/// A real LXD or Incus daemon in a temporary directory, killed on drop.
pub struct RealDaemon {
    child: Child,
    pub daemon: Daemon,
    pub dir: tempfile::TempDir,
    pub https: String,
}

/// The LXD daemon's older name, kept for the benchmark.
pub type RealLxd = RealDaemon;

impl RealDaemon {
    /// Starts `lxd` and waits (`lxd waitready`) until its socket answers.
    pub fn start(lxd: &Path) -> RealDaemon {
        RealDaemon::start_as(Daemon::Lxd, lxd)
    }

    /// Starts `incusd` and waits (`incusd waitready`) until its socket answers.
    pub fn start_incus(incusd: &Path) -> RealDaemon {
        RealDaemon::start_as(Daemon::Incus, incusd)
    }

    fn start_as(daemon: Daemon, binary: &Path) -> RealDaemon {
        let dir = tempfile::Builder::new()
            .prefix("real-daemon")
            .tempdir()
            .expect("temp dir");
        let log = dir.path().join("daemon.log");
        let child = Command::new(binary)
            .args(["--group", "root", "--logfile"])
            .arg(&log)
            .env(daemon.dir_var(), dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the daemon");
        let mut real = RealDaemon {
            child,
            daemon,
            dir,
            https: String::new(),
        };
        let ready = Command::new(binary)
            .args(["waitready", "--timeout=60"])
            .env(daemon.dir_var(), real.dir.path())
            .status()
            .expect("waitready");
        assert!(
            ready.success(),
            "{daemon:?} did not become ready; log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        real.https = format!("127.0.0.1:{port}");
        real
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("unix.socket")
    }
}

impl Drop for RealDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A killed daemon leaves its tmpfs mounted, which would keep the temporary directory
        // from being removed.
        for mount in self.daemon.mounts() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path().join(mount))
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `list-tokens --format json|yaml` keeps the daemon's map order, which is random on the real
/// daemon; those outputs are compared as sorted lists of entries.
pub fn unordered(args: &[&str], stdout: String) -> String {
    match args.last() {
        Some(&"json") => {
            let mut items: Vec<serde_json::Value> =
                serde_json::from_str(&stdout).unwrap_or_default();
            items.sort_by_key(|v| v.to_string());
            serde_json::to_string(&items).unwrap_or_default()
        }
        Some(&"yaml") => {
            let mut items: Vec<&str> = stdout
                .split("- ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            items.sort();
            items.join("\n- ")
        }
        _ => stdout,
    }
}

/// Asserts that a client's session against the fake went step by step as against the real
/// daemon; a difference lists each step and the requests the fake did not know (404s).
pub fn assert_same_steps<L: PartialEq + std::fmt::Debug, T: PartialEq + std::fmt::Debug>(
    expected: &[(L, T)],
    actual: &[(L, T)],
    fake: &fake_lxd::FakeLxd,
) {
    assert_eq!(expected.len(), actual.len());
    let differences: Vec<String> = expected
        .iter()
        .zip(actual)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("step {:?}\n  real: {:?}\n  fake: {:?}", a.0, a.1, b.1))
        .collect();
    let unknown: Vec<_> = fake
        .control()
        .requests()
        .into_iter()
        .filter(|r| r.status == Some(404))
        .collect();
    assert!(
        differences.is_empty(),
        "{} steps differ:\n{}\nfake 404s: {unknown:?}",
        differences.len(),
        differences.join("\n")
    );
}
