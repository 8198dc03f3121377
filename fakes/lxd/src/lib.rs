//! `fake-lxd`: the trust-token surface of the LXD REST API, as a server.
//!
//! It listens on a unix socket (whose clients are trusted, as LXD's local clients are) and on
//! HTTPS (where trust follows the client certificate). Three profiles imitate Debian's LXD
//! 5.0.2 (`5.0`), newer LXD (`6`) and Incus 6.0 LTS (`incus-6.0`). A test starts one [`FakeLxd`] and steers it through [`Control`] or the HTTP
//! control API under `/_fake/` on a separate loopback listener.
//!
//! Layout: `routes` (URL table) → `handlers` (parse and serialise; `envelope` writes LXD's
//! JSON) → `state` (the state machine, no HTTP); `control` holds the fake's own control
//! operations. The clock, faults, serve loop, control plumbing and TLS are `fake-kit`'s.

pub mod control;
pub mod envelope;
pub mod handlers;
pub mod routes;
pub mod state;

pub use fake_kit::{clock, faults, tls};

use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use fake_kit::{ControlListener, Kit, OnHangup, Service, Tasks};
use tokio::net::{TcpListener, UnixListener};

pub use control::Control;
pub use fake_kit::tls::ClientCert;
pub use fake_kit::{Bind, ClockMode, RequestRecord, TEST_EPOCH};
pub use state::{Caller, Profile};

/// The API extensions of LXD 5.0.2, as the real daemon lists them.
const EXTENSIONS_5_0: &str = include_str!("../../../fixtures/lxd/api_extensions_5.0.2.json");

/// The API extensions of Incus 6.0.4, as the real daemon lists them (to trusted and untrusted
/// clients alike).
const EXTENSIONS_INCUS_6_0: &str =
    include_str!("../../../fixtures/lxd/api_extensions_incus_6.0.4.json");

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
    /// Where the control listener may bind: loopback only unless forced.
    pub control_bind: Bind,
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
            control_bind: Bind::LoopbackOnly,
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

pub struct AppState {
    state: Mutex<state::State>,
    kit: Kit,
    /// The last operations listing body: the state's version, recursion, and the bytes.
    pub(crate) listing: Mutex<Option<(u64, bool, axum::body::Bytes)>>,
    pub(crate) events: tokio::sync::broadcast::Sender<serde_json::Value>,
    pub(crate) server_cert_pem: String,
    /// API extensions a test took away (`Control::hide_extension`), to imitate a server
    /// that lacks them.
    pub(crate) hidden_extensions: Mutex<std::collections::BTreeSet<String>>,
}

/// The fake's state derefs to its kit: `app.clock`, the faults, the request log.
impl Deref for AppState {
    type Target = Kit;

    fn deref(&self) -> &Kit {
        &self.kit
    }
}

impl fake_kit::Api for AppState {
    fn kit(&self) -> &Kit {
        &self.kit
    }

    fn fault_response(
        &self,
        status: u16,
        body: Option<serde_json::Value>,
    ) -> axum::response::Response {
        let text = body
            .as_ref()
            .and_then(|b| b.as_str())
            .unwrap_or("Injected fault")
            .to_owned();
        envelope::error(status, &text)
    }
}

impl AppState {
    pub(crate) fn lock(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn api_extensions(&self) -> Vec<String> {
        let profile = self.lock().profile;
        let base = match profile {
            Profile::V5_0 | Profile::V6 => EXTENSIONS_5_0,
            Profile::Incus6_0 => EXTENSIONS_INCUS_6_0,
        };
        let mut list: Vec<String> = serde_json::from_str(base).unwrap_or_default();
        if profile == Profile::V6 {
            list.extend(EXTENSIONS_6_EXTRA.iter().map(|s| (*s).to_owned()));
        }
        let hidden = self
            .hidden_extensions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        list.retain(|e| !hidden.contains(e));
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
}

/// A running fake; it stops when dropped.
pub struct FakeLxd {
    socket: PathBuf,
    https: SocketAddr,
    control_url: String,
    control_token: String,
    control: Control,
    cert_pem: String,
    fingerprint: String,
    tasks: Tasks,
    _dir: Option<tempfile::TempDir>,
}

impl FakeLxd {
    pub async fn start(config: Config) -> Result<FakeLxd, Error> {
        let identity = tls::server_identity(&tls::ServerCert {
            names: &["localhost", "127.0.0.1"],
            organization: Some("LXD"),
            common_name: Some("root@fake-lxd"),
            p384: true,
            client_certs: true,
            alpn: true,
        })
        .map_err(Error::Tls)?;
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
        let control_listener = ControlListener::bind(config.control, config.control_bind).await?;
        let kit = Kit::new(config.clock);
        let mut st = state::State::new(
            config.profile,
            config.seed,
            https_addr.to_string(),
            identity.fingerprint.clone(),
            kit.now(),
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
            kit,
            listing: Mutex::new(None),
            events,
            server_cert_pem: identity.cert_pem.clone(),
            hidden_extensions: Mutex::default(),
        });
        let router = routes::api(app.clone());
        let service = |transport| {
            Service::new(
                app.clone(),
                router.clone(),
                Some(transport),
                OnHangup::Finish,
            )
        };
        let local = Caller {
            local: true,
            cert: None,
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(identity.config.clone());
        let remote = |der: Option<&[u8]>| Caller {
            local: false,
            cert: der.map(|der| (tls::fingerprint(der), tls::der_to_pem(der))),
        };
        let mut tasks = Tasks::default();
        tasks.spawn(fake_kit::serve::accept_unix(unix, service("unix"), local));
        tasks.spawn(fake_kit::serve::accept_tcp(
            https,
            Some(acceptor),
            service("https"),
            remote,
        ));
        let control_url = control_listener.url().to_owned();
        let control_token = control_listener.token().to_owned();
        tasks.spawn(control_listener.serve(routes::control(app.clone())));
        Ok(FakeLxd {
            socket,
            https: https_addr,
            control_url,
            control_token,
            control: Control::new(app),
            cert_pem: identity.cert_pem,
            fingerprint: identity.fingerprint,
            tasks,
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

    /// The bearer token the HTTP control API wants: `Authorization: Bearer TOKEN`.
    pub fn control_token(&self) -> &str {
        &self.control_token
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

    /// Stops accepting connections and waits until the requests in flight are done.
    pub async fn shutdown(self) {
        let kit = self.control.app.clone();
        self.tasks.shutdown(&kit).await;
    }
}
