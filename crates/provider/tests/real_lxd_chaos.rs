//! Chaos against the real LXD 5.0.2 daemon through real Terraform 1.11: the daemon restarted
//! between an apply and the next plan (pending tokens do not survive a restart), and the
//! daemon killed in the middle of a create, after it made the token and before its reply
//! reached the provider (a unix-socket proxy between them holds the reply back). The state stays true, the next apply recovers, and nothing is left
//! pending or made twice.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::Workspace;
use support::daemon::{Kind, RealDaemon};
use support::lxd_cli::Lxd;

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
    let mut ws = Workspace::new(terraform, "lxd_trust_token", support::lxd_binary());
    std::fs::copy(
        support::fixture("lxd/trust_token_status.tf"),
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
    let (lxd, lxc) = RealDaemon::tools(Kind::Lxd)?;
    Some((lxd, lxc, support::tool("XTASK_TERRAFORM")?))
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
        let mut daemon = RealDaemon::start(Kind::Lxd, &lxd, &lxc);
        let ws = workspace(&terraform, &daemon.path().join("unix.socket"));
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

/// A unix-socket proxy in front of the daemon that, once armed, holds back the daemon's answer
/// to the first token create: it says so on `answered` (the daemon made the token), waits on
/// `release` (the test kills the daemon meanwhile), then drops the connection, so the provider
/// never hears of the token.
struct HoldingProxy {
    socket: PathBuf,
    armed: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl HoldingProxy {
    fn start(
        upstream: PathBuf,
        answered: mpsc::Sender<()>,
        release: mpsc::Receiver<()>,
    ) -> HoldingProxy {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("unix.socket");
        let listener = UnixListener::bind(&socket).unwrap();
        let armed = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Some((answered, release))));
        let armed_ = armed.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                // While the daemon is down the connection is refused: dropped here too.
                let Ok(server) = UnixStream::connect(&upstream) else {
                    continue;
                };
                relay(client, server, armed_.clone(), held.clone());
            }
        });
        HoldingProxy {
            socket,
            armed,
            _dir: dir,
        }
    }

    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
}

type Hold = Arc<Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>>;

fn relay(mut client: UnixStream, mut server: UnixStream, armed: Arc<AtomicBool>, held: Hold) {
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
                // The daemon answered the create: it made the token. Held back until the
                // test has killed the daemon.
                let hold = held.lock().unwrap().take();
                if let Some((answered, release)) = hold {
                    let _ = answered.send(());
                    let _ = release.recv_timeout(Duration::from_secs(120));
                }
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
        let mut daemon = RealDaemon::start(Kind::Lxd, &lxd, &lxc);
        let (answered_tx, answered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let proxy = HoldingProxy::start(daemon.path().join("unix.socket"), answered_tx, release_rx);
        let ws = workspace(&terraform, &proxy.socket);
        proxy.arm();
        let out = std::thread::scope(|scope| {
            let apply = scope.spawn(|| ws.run(&APPLY));
            answered
                .recv_timeout(Duration::from_secs(120))
                .expect("the create never reached the daemon");
            // The daemon made the token; it dies before the provider hears of it, and comes
            // back while the provider is still finding out what happened.
            daemon.kill();
            release.send(()).unwrap();
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
