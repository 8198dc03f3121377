//! Chaos against the real LXD 5.0.2 daemon through real Terraform 1.11: the daemon restarted
//! between an apply and the next plan (pending tokens do not survive a restart), and the
//! daemon killed in the middle of a create, after it made the token and before its reply
//! reached the provider. The state stays true, the next apply recovers, and nothing is left
//! pending or made twice.

mod common;
mod real_lxd_daemon;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::Workspace;
use real_lxd_daemon::RealLxd;

const APPLY: [&str; 5] = [
    "apply",
    "-auto-approve",
    "-input=false",
    "-var",
    "trigger=always",
];
const REFRESH: [&str; 6] = [
    "apply",
    "-refresh-only",
    "-auto-approve",
    "-input=false",
    "-var",
    "trigger=always",
];
const PLAN: [&str; 2] = ["-var", "trigger=always"];
const DESTROY: [&str; 5] = [
    "destroy",
    "-auto-approve",
    "-input=false",
    "-var",
    "trigger=always",
];

fn workspace(terraform: &Path, socket: &Path) -> Workspace {
    let mut ws = Workspace::new(
        terraform,
        "lxd_trust_token",
        Path::new(env!("CARGO_BIN_EXE_terraform-provider-lxd")),
    );
    std::fs::copy(
        common::fixture("lxd/trust_token_status.tf"),
        ws.dir.path().join("main.tf"),
    )
    .unwrap();
    ws.set("LXD_SOCKET", socket.display().to_string());
    ws.set(
        "LXD_CONF",
        ws.dir.path().join("lxc-config").display().to_string(),
    );
    ws
}

fn attr(ws: &Workspace, name: &str) -> String {
    ws.attrs("lxd_trust_token.token1")[name]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn tools() -> Option<(PathBuf, PathBuf, PathBuf)> {
    Some((
        common::tool("XTASK_LXD")?,
        common::tool("XTASK_LXC")?,
        common::tool("XTASK_TERRAFORM")?,
    ))
}

/// A restart loses the pending token: the refresh reads `unknown` (gone without proof of
/// why), the plan replaces it with a warning, and the apply makes exactly one new token. A
/// token consumed before a restart still reads `consumed`: the trust store survives it.
#[tokio::test(flavor = "multi_thread")]
async fn chaos_restart_between_apply_and_plan() {
    let Some((lxd, lxc, terraform)) = tools() else {
        return;
    };
    tokio::task::spawn_blocking(move || {
        let mut daemon = RealLxd::start(&lxd, &lxc);
        let ws = workspace(&terraform, &daemon.socket());
        ws.ok(&APPLY);
        let lost = attr(&ws, "operation_id");
        assert_eq!(daemon.running(), std::slice::from_ref(&lost));

        daemon.restart();
        assert!(daemon.running().is_empty(), "pending tokens survived");
        let (code, text) = ws.plan_code(&PLAN);
        assert_eq!(code, 2, "{text}");
        assert!(text.contains("Trust token will be replaced"), "{text}");
        assert!(text.contains("no longer on the server"), "{text}");
        assert!(text.contains(&lost), "{text}");
        ws.ok(&REFRESH);
        assert_eq!(attr(&ws, "status"), "unknown");
        assert_eq!(attr(&ws, "operation_id"), lost, "the lost token is kept");

        ws.ok(&APPLY);
        let fresh = attr(&ws, "operation_id");
        assert_ne!(fresh, lost);
        assert_eq!(attr(&ws, "status"), "pending");
        assert_eq!(daemon.running(), std::slice::from_ref(&fresh));
        let (code, text) = ws.plan_code(&PLAN);
        assert_eq!(code, 0, "{text}");

        // Consumed, then the daemon restarts before the next refresh.
        let consumer = daemon.join("lxc-joiner", &attr(&ws, "token"));
        let consumer = daemon.fingerprint_of(&consumer);
        daemon.restart();
        ws.ok(&REFRESH);
        assert_eq!(attr(&ws, "status"), "consumed");
        assert_eq!(attr(&ws, "consumed_by"), consumer);

        ws.ok(&DESTROY);
        assert!(daemon.running().is_empty());
        assert_eq!(daemon.named("mytoken"), [consumer], "the consumer stays");
    })
    .await
    .unwrap();
}

/// A unix-socket proxy in front of the daemon that, once armed, kills the daemon (SIGKILL)
/// when the daemon answers the first token create: the daemon made the token, the provider
/// never hears so. Sends on `killed` when it did.
struct KillingProxy {
    socket: PathBuf,
    armed: Arc<AtomicBool>,
    pid: Arc<AtomicU32>,
    _dir: tempfile::TempDir,
}

impl KillingProxy {
    fn start(upstream: PathBuf, killed: mpsc::Sender<()>) -> KillingProxy {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("unix.socket");
        let listener = UnixListener::bind(&socket).unwrap();
        let armed = Arc::new(AtomicBool::new(false));
        let pid = Arc::new(AtomicU32::new(0));
        let (armed_, pid_) = (armed.clone(), pid.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                // While the daemon is down the connection is refused: dropped here too.
                let Ok(server) = UnixStream::connect(&upstream) else {
                    continue;
                };
                relay(client, server, armed_.clone(), pid_.clone(), killed.clone());
            }
        });
        KillingProxy {
            socket,
            armed,
            pid,
            _dir: dir,
        }
    }

    fn arm(&self, pid: u32) {
        self.pid.store(pid, Ordering::SeqCst);
        self.armed.store(true, Ordering::SeqCst);
    }
}

fn relay(
    mut client: UnixStream,
    mut server: UnixStream,
    armed: Arc<AtomicBool>,
    pid: Arc<AtomicU32>,
    killed: mpsc::Sender<()>,
) {
    let create_sent = Arc::new(AtomicBool::new(false));
    let (mut client_r, mut server_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let sent = create_sent.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match client_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // HTTP/1.1 without pipelining: a request starts a chunk.
            if buf[..n].starts_with(b"POST /1.0/certificates")
                && armed.swap(false, Ordering::SeqCst)
            {
                sent.store(true, Ordering::SeqCst);
            }
            if server_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server_w.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match server.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if create_sent.load(Ordering::SeqCst) {
                // The daemon answered the create: it made the token. It dies before the
                // provider hears of it.
                let status = std::process::Command::new("kill")
                    .args(["-KILL", &pid.load(Ordering::SeqCst).to_string()])
                    .status()
                    .unwrap();
                assert!(status.success());
                let _ = killed.send(());
                break;
            }
            if client.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = client.shutdown(std::net::Shutdown::Both);
        let _ = server.shutdown(std::net::Shutdown::Both);
    });
}

/// The daemon is killed after it made the token and before the provider got the reply, and
/// comes back while the provider is still finding out what happened: Terraform reports a
/// clear error, the state holds no token, the restart left nothing pending, and the next
/// apply makes exactly one token.
#[tokio::test(flavor = "multi_thread")]
async fn chaos_daemon_killed_mid_create() {
    let Some((lxd, lxc, terraform)) = tools() else {
        return;
    };
    tokio::task::spawn_blocking(move || {
        let mut daemon = RealLxd::start(&lxd, &lxc);
        let (killed_tx, killed) = mpsc::channel();
        let proxy = KillingProxy::start(daemon.socket(), killed_tx);
        let ws = workspace(&terraform, &proxy.socket);
        proxy.arm(daemon.pid().unwrap());
        let out = std::thread::scope(|scope| {
            let apply = scope.spawn(|| ws.run(&APPLY));
            killed
                .recv_timeout(Duration::from_secs(120))
                .expect("the create never reached the daemon");
            daemon.restart();
            apply.join().unwrap()
        });
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{text}");
        assert!(
            text.contains("Failed to create trust token \"mytoken\""),
            "{text}"
        );
        assert!(text.contains("may have reached LXD"), "{text}");
        assert_eq!(
            ws.attrs("lxd_trust_token.token1"),
            serde_json::Value::Null,
            "no token in the state"
        );
        assert!(daemon.running().is_empty(), "nothing left pending");

        ws.ok(&APPLY);
        let made = attr(&ws, "operation_id");
        assert_eq!(daemon.running(), [made], "exactly one token");
        let (code, text) = ws.plan_code(&PLAN);
        assert_eq!(code, 0, "{text}");
        ws.ok(&DESTROY);
        assert!(daemon.running().is_empty());
    })
    .await
    .unwrap();
}
