//! `fake-lxd`: the trust-token surface of the LXD REST API, as a server.
//!
//! It listens on a unix socket (whose clients are trusted, as LXD's local clients are) and on
//! HTTPS (where trust follows the client certificate). Two profiles imitate Debian's LXD 5.0.2
//! and newer LXD. A test starts one [`FakeLxd`] and steers it through [`Control`] or the HTTP
//! control API under `/_fake/` on a separate loopback listener.
//!
//! Layout: `routes` (URL table) → `handlers` (parse and serialise; `envelope` writes LXD's
//! JSON) → `state` (the state machine, no HTTP); `tls`, `control`, `faults`, `clock`.

pub mod clock;
pub mod control;
pub mod envelope;
pub mod faults;
pub mod handlers;
pub mod routes;
pub mod state;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Serialize;
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;
use tower::ServiceExt;

pub use clock::{ClockMode, TEST_EPOCH};
pub use control::{ClientCert, Control};
pub use state::{Caller, Profile};

/// The API extensions of LXD 5.0.2, as the real daemon lists them.
const EXTENSIONS_5_0: &str = include_str!("../../../fixtures/lxd/api_extensions_5.0.2.json");

/// Extensions newer LXD adds that matter for trust tokens.
const EXTENSIONS_6_EXTRA: &[&str] = &["explicit_trust_token", "access_management_tls"];

#[derive(Debug, Clone)]
pub struct Config {
    pub profile: Profile,
    pub seed: u64,
    pub clock: ClockMode,
    /// Where the unix socket goes; a private temp dir when `None`.
    pub unix_socket: Option<PathBuf>,
    pub https: SocketAddr,
    pub control: SocketAddr,
    /// Set `core.https_address` at start, so tokens can be issued at once.
    pub https_address_set: bool,
}

impl Config {
    /// Profile 5.0, seed 0, a manual clock at [`TEST_EPOCH`], loopback port 0 everywhere,
    /// `core.https_address` set.
    pub fn for_testing() -> Config {
        Config {
            profile: Profile::V5_0,
            seed: 0,
            clock: ClockMode::Manual(TEST_EPOCH),
            unix_socket: None,
            https: SocketAddr::from(([127, 0, 0, 1], 0)),
            control: SocketAddr::from(([127, 0, 0, 1], 0)),
            https_address_set: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// `"unix"` or `"https"`.
    pub transport: &'static str,
    /// `None` when the connection was dropped by a fault.
    pub status: Option<u16>,
}

pub struct AppState {
    state: Mutex<state::State>,
    pub(crate) clock: clock::Clock,
    pub(crate) faults: Mutex<Vec<faults::Rule>>,
    pub(crate) log: Mutex<Vec<RequestRecord>>,
    /// The last operations listing body: the state's version, recursion, and the bytes.
    pub(crate) listing: Mutex<Option<(u64, bool, axum::body::Bytes)>>,
    pub(crate) events: tokio::sync::broadcast::Sender<serde_json::Value>,
    pub(crate) server_cert_pem: String,
    inflight: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl AppState {
    pub(crate) fn lock(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn api_extensions(&self) -> Vec<String> {
        let mut list: Vec<String> = serde_json::from_str(EXTENSIONS_5_0).unwrap_or_default();
        if self.lock().profile == Profile::V6 {
            list.extend(EXTENSIONS_6_EXTRA.iter().map(|s| (*s).to_owned()));
        }
        list
    }

    /// Sends an operation lifecycle event to the `/1.0/events` listeners.
    pub(crate) fn event(&self, op: &state::Operation) {
        // Nobody listens: nothing to render.
        if self.events.receiver_count() == 0 {
            return;
        }
        let profile = self.lock().profile;
        let event = serde_json::json!({
            "type": "operation",
            "timestamp": envelope::time(self.clock.now()),
            "metadata": envelope::operation_json(op, profile),
            "location": "none",
            "project": "default",
        });
        let _ = self.events.send(event);
    }

    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.inflight.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A running fake; it stops when dropped.
pub struct FakeLxd {
    socket: PathBuf,
    https: SocketAddr,
    control_url: String,
    control: Control,
    cert_pem: String,
    fingerprint: String,
    tasks: Vec<JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for FakeLxd {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl FakeLxd {
    pub async fn start(config: Config) -> Result<FakeLxd, Error> {
        let identity = tls::server_identity().map_err(Error::Tls)?;
        let (dir, socket) = match &config.unix_socket {
            Some(path) => (None, path.clone()),
            None => {
                let dir = tempfile::tempdir()?;
                let path = dir.path().join("unix.socket");
                (Some(dir), path)
            }
        };
        let _ = std::fs::remove_file(&socket);
        let unix = UnixListener::bind(&socket)?;
        let https = TcpListener::bind(config.https).await?;
        let https_addr = https.local_addr()?;
        let control_listener = TcpListener::bind(config.control).await?;
        let control_url = format!("http://{}", control_listener.local_addr()?);
        let clock = clock::Clock::new(config.clock);
        let mut st = state::State::new(
            config.profile,
            config.seed,
            https_addr.to_string(),
            identity.fingerprint.clone(),
            clock.now(),
        );
        if config.https_address_set {
            let _ = st.set_config(
                [("core.https_address".to_owned(), https_addr.to_string())].into(),
                false,
            );
        }
        let (events, _) = tokio::sync::broadcast::channel(256);
        let app = Arc::new(AppState {
            state: Mutex::new(st),
            clock,
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            listing: Mutex::new(None),
            events,
            server_cert_pem: identity.cert_pem.clone(),
            inflight: std::sync::atomic::AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        });
        let router = routes::api(app.clone());
        let unix_task = tokio::spawn(serve_unix(unix, app.clone(), router.clone()));
        let acceptor = tokio_rustls::TlsAcceptor::from(identity.config.clone());
        let https_task = tokio::spawn(serve_https(https, acceptor, app.clone(), router));
        let control_router = routes::control(app.clone());
        let control_task = tokio::spawn(async move {
            let _ = axum::serve(control_listener, control_router).await;
        });
        Ok(FakeLxd {
            socket,
            https: https_addr,
            control_url,
            control: Control { app },
            cert_pem: identity.cert_pem,
            fingerprint: identity.fingerprint,
            tasks: vec![unix_task, https_task, control_task],
            _dir: dir,
        })
    }

    pub fn unix_socket(&self) -> &Path {
        &self.socket
    }

    pub fn https_addr(&self) -> SocketAddr {
        self.https
    }

    pub fn control_url(&self) -> String {
        self.control_url.clone()
    }

    pub fn server_cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn server_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn control(&self) -> Control {
        self.control.clone()
    }

    pub async fn shutdown(self) {
        drop(self);
    }
}

async fn serve_unix(listener: UnixListener, app: Arc<AppState>, router: axum::Router) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let caller = Caller {
            local: true,
            cert: None,
        };
        tokio::spawn(serve_connection(
            TokioIo::new(stream),
            app.clone(),
            router.clone(),
            caller,
            "unix",
        ));
    }
}

async fn serve_https(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Arc<AppState>,
    router: axum::Router,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|der| (tls::fingerprint(der), tls::der_to_pem(der)));
            let caller = Caller { local: false, cert };
            serve_connection(TokioIo::new(tls), app, router, caller, "https").await;
        });
    }
}

async fn serve_connection<I>(
    io: TokioIo<I>,
    app: Arc<AppState>,
    router: axum::Router,
    caller: Caller,
    transport: &'static str,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(caller.clone());
        handle(app.clone(), router.clone(), req, transport)
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(io, service)
        .await;
}

#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

struct InFlight(Arc<AppState>);

impl InFlight {
    fn new(app: &Arc<AppState>) -> InFlight {
        app.inflight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlight(app.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self
            .0
            .inflight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.idle.notify_waiters();
        }
    }
}

/// Handles one request in its own task, so that a client hanging up does not stop the work
/// (a real daemon finishes what it started), and the fake counts it as in flight until done.
async fn handle(
    app: Arc<AppState>,
    router: axum::Router,
    req: hyper::Request<Incoming>,
    transport: &'static str,
) -> Result<axum::response::Response, DropConnection> {
    let inflight = InFlight::new(&app);
    tokio::spawn(handle_inner(app, router, req, transport, inflight))
        .await
        .unwrap_or(Err(DropConnection))
}

async fn handle_inner(
    app: Arc<AppState>,
    router: axum::Router,
    req: hyper::Request<Incoming>,
    transport: &'static str,
    _inflight: InFlight,
) -> Result<axum::response::Response, DropConnection> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let record = |status: Option<u16>| {
        app.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(RequestRecord {
                method: method.clone(),
                path: path.clone(),
                query: query.clone(),
                transport,
                status,
            });
    };
    let fault = faults::take(
        &mut app.faults.lock().unwrap_or_else(|e| e.into_inner()),
        &method,
        &path,
    );
    let mut reset_after = false;
    match fault {
        Some(faults::Action::Status {
            status,
            body,
            headers,
        }) => {
            record(Some(status));
            let text = body
                .as_ref()
                .and_then(|b| b.as_str())
                .unwrap_or("Injected fault")
                .to_owned();
            let mut response = envelope::error(status, &text);
            for (name, value) in headers.unwrap_or_default() {
                if let (Ok(n), Ok(v)) = (
                    axum::http::HeaderName::from_bytes(name.as_bytes()),
                    axum::http::HeaderValue::from_str(&value),
                ) {
                    response.headers_mut().insert(n, v);
                }
            }
            return Ok(response);
        }
        Some(faults::Action::Delay { delay_ms }) => {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await
        }
        Some(faults::Action::Reset {
            reset: faults::ResetWhen::Before,
        }) => {
            record(None);
            return Err(DropConnection);
        }
        Some(faults::Action::Reset {
            reset: faults::ResetWhen::After,
        }) => reset_after = true,
        None => {}
    }
    let response = router
        .oneshot(req.map(Body::new))
        .await
        .unwrap_or_else(|never| match never {});
    if reset_after {
        record(None);
        return Err(DropConnection);
    }
    record(Some(response.status().as_u16()));
    Ok(response)
}
