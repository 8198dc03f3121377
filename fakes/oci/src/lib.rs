//! `fake-oci`: the auth-token surface of the OCI Identity API (20160918), as a server.
//!
//! Requests must carry valid OCI request signatures. A test starts one [`FakeOci`] on loopback
//! port 0, points a client at [`FakeOci::endpoint`], and steers it through [`Control`] or the
//! HTTP control API under `/_fake/` on a separate listener.
//!
//! Layout: `routes` (URL table) → `handlers` (parse and serialise) → `state` (the state
//! machine, no HTTP); `signature` verifies requests; `control` and `faults` are for tests.

pub mod clock;
pub mod control;
pub mod faults;
pub mod handlers;
pub mod routes;
pub mod signature;
pub mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt;

pub use clock::{ClockMode, TEST_EPOCH};
pub use control::Control;
pub use state::Delay;

/// The test user the fake knows from the start, with a key pair kept in `fixtures/oci/keys/`.
pub const TEST_TENANCY: &str =
    "ocid1.tenancy.oc1..aaaaaaaafaketenancy0000000000000000000000000000000000000";
pub const TEST_USER: &str =
    "ocid1.user.oc1..aaaaaaaafakeuser00000000000000000000000000000000000000000";
pub const TEST_PUBLIC_KEY: &str = include_str!("../../../fixtures/oci/keys/test_user_public.pem");
pub const TEST_PRIVATE_KEY: &str = include_str!("../../../fixtures/oci/keys/test_user_key.pem");

#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub clock: ClockMode,
    /// Serve HTTPS with a generated certificate instead of plain HTTP.
    pub tls: bool,
    /// Register [`TEST_USER`] with the fixture key.
    pub test_user: bool,
    pub listen: SocketAddr,
    pub control: SocketAddr,
}

impl Config {
    /// Loopback port 0, plain HTTP, seed 0, a manual clock at [`TEST_EPOCH`], the test user.
    pub fn for_testing() -> Config {
        Config {
            seed: 0,
            clock: ClockMode::Manual(TEST_EPOCH),
            tls: false,
            test_user: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            control: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    #[error(transparent)]
    Control(#[from] control::ControlError),
}

/// One request as the fake saw it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// `None` when the connection was dropped by a fault.
    pub status: Option<u16>,
}

pub struct AppState {
    state: Mutex<state::State>,
    /// API requests being handled, and a signal when that drops to zero.
    inflight: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
    pub(crate) clock: clock::Clock,
    pub(crate) faults: Mutex<Vec<faults::Rule>>,
    pub(crate) log: Mutex<Vec<RequestRecord>>,
}

impl AppState {
    pub(crate) fn lock(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The identity a client needs to sign requests as the test user.
#[derive(Debug, Clone)]
pub struct TestIdentity {
    pub tenancy: String,
    pub user: String,
    pub fingerprint: String,
    pub private_key_pem: String,
}

/// A running fake; it stops when dropped.
pub struct FakeOci {
    endpoint: String,
    control_url: String,
    control: Control,
    fingerprint: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeOci {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl FakeOci {
    pub async fn start(config: Config) -> Result<FakeOci, Error> {
        let app = Arc::new(AppState {
            state: Mutex::new(state::State::new(config.seed)),
            inflight: std::sync::atomic::AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            clock: clock::Clock::new(config.clock),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
        });
        let control = Control { app: app.clone() };
        let fingerprint = if config.test_user {
            control.add_user(TEST_TENANCY, TEST_USER, TEST_PUBLIC_KEY)?
        } else {
            String::new()
        };
        let api_listener = TcpListener::bind(config.listen).await?;
        let control_listener = TcpListener::bind(config.control).await?;
        let scheme = if config.tls { "https" } else { "http" };
        let endpoint = format!("{scheme}://{}", api_listener.local_addr()?);
        let control_url = format!("http://{}", control_listener.local_addr()?);
        let tls = if config.tls {
            Some(tls_acceptor()?)
        } else {
            None
        };
        let api = tokio::spawn(serve_api(api_listener, app.clone(), tls));
        let router = routes::control(app.clone());
        let control_task = tokio::spawn(async move {
            let _ = axum::serve(control_listener, router).await;
        });
        Ok(FakeOci {
            endpoint,
            control_url,
            control,
            fingerprint,
            tasks: vec![api, control_task],
        })
    }

    /// The API endpoint, such as `http://127.0.0.1:PORT`; SDKs append `/20160918`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    pub fn control_url(&self) -> String {
        self.control_url.clone()
    }

    pub fn control(&self) -> Control {
        self.control.clone()
    }

    pub fn test_identity(&self) -> TestIdentity {
        TestIdentity {
            tenancy: TEST_TENANCY.to_owned(),
            user: TEST_USER.to_owned(),
            fingerprint: self.fingerprint.clone(),
            private_key_pem: TEST_PRIVATE_KEY.to_owned(),
        }
    }

    pub async fn shutdown(self) {
        drop(self);
    }
}

fn tls_acceptor() -> Result<tokio_rustls::TlsAcceptor, Error> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(|e| Error::Tls(e.to_string()))?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
        .map_err(|e| Error::Tls(e.to_string()))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The error a service returns to make hyper drop the connection without answering.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

async fn serve_api(
    listener: TcpListener,
    app: Arc<AppState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let router = routes::api(app.clone());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        let router = router.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                handle(app.clone(), router.clone(), req)
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
        });
    }
}

/// Counts a request as in flight until dropped, even when hyper drops it early.
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

impl AppState {
    /// Waits until no API request is being handled.
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

async fn handle(
    app: Arc<AppState>,
    router: axum::Router,
    req: hyper::Request<Incoming>,
) -> Result<axum::response::Response, DropConnection> {
    let _inflight = InFlight::new(&app);
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
            let (code, message) = match status {
                429 => ("TooManyRequests", "Too many requests for the user."),
                500 => ("InternalServerError", "An internal server error occurred."),
                503 => (
                    "ServiceUnavailable",
                    "The service is currently unavailable.",
                ),
                _ => ("InjectedFault", "A fault injected by the test."),
            };
            let mut response = handlers::error_response(&app, status, code, message, None);
            if let Some(body) = body {
                *response.body_mut() = Body::from(body.to_string());
            }
            for (name, value) in headers.unwrap_or_default() {
                if let (Ok(name), Ok(value)) = (
                    axum::http::HeaderName::from_bytes(name.as_bytes()),
                    axum::http::HeaderValue::from_str(&value),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            return Ok(response);
        }
        Some(faults::Action::Delay { delay_ms }) => {
            // A slow reply, to exercise client timeouts; the state is not waited on.
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
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
