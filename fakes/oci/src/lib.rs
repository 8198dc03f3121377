//! `fake-oci`: the auth-token surface of the OCI Identity API (20160918), as a server.
//!
//! Requests must carry valid OCI request signatures. A test starts one [`FakeOci`] on loopback
//! port 0, points a client at [`FakeOci::endpoint`], and steers it through [`Control`] or the
//! HTTP control API under `/_fake/` on a separate listener.
//!
//! Layout: `routes` (URL table) → `handlers` (parse and serialise) → `state` (the state
//! machine, no HTTP); `signature` verifies requests; `control` holds the fake's own control
//! operations. The clock, faults, serve loop, control plumbing and TLS are `fake-kit`'s.

pub mod control;
pub mod handlers;
pub mod routes;
pub mod signature;
pub mod state;

pub use fake_kit::{clock, faults};

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use fake_kit::{ControlListener, Kit, OnHangup, Service, Tasks};
use tokio::net::TcpListener;

pub use control::Control;
pub use fake_kit::{Bind, ClockMode, RequestRecord, TEST_EPOCH};
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
    /// Where the control listener may bind: loopback only unless forced.
    pub control_bind: Bind,
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
            control_bind: Bind::LoopbackOnly,
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

pub struct AppState {
    state: Mutex<state::State>,
    kit: Kit,
}

impl AppState {
    pub(crate) fn lock(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
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
        let (code, message) = match status {
            429 => ("TooManyRequests", "Too many requests for the user."),
            500 => ("InternalServerError", "An internal server error occurred."),
            503 => (
                "ServiceUnavailable",
                "The service is currently unavailable.",
            ),
            _ => ("InjectedFault", "A fault injected by the test."),
        };
        let mut response = handlers::error_response(self, status, code, message, None);
        if let Some(body) = body {
            *response.body_mut() = Body::from(body.to_string());
        }
        response
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
    control_token: String,
    control: Control,
    fingerprint: String,
    tasks: Tasks,
}

impl FakeOci {
    pub async fn start(config: Config) -> Result<FakeOci, Error> {
        let app = Arc::new(AppState {
            state: Mutex::new(state::State::new(config.seed)),
            kit: Kit::new(config.clock),
        });
        let control = Control::new(app.clone());
        let fingerprint = if config.test_user {
            control.add_user(TEST_TENANCY, TEST_USER, TEST_PUBLIC_KEY)?
        } else {
            String::new()
        };
        let api_listener = TcpListener::bind(config.listen).await?;
        let control_listener = ControlListener::bind(config.control, config.control_bind).await?;
        let scheme = if config.tls { "https" } else { "http" };
        let endpoint = format!("{scheme}://{}", api_listener.local_addr()?);
        let tls = if config.tls {
            let identity = fake_kit::tls::server_identity(&fake_kit::tls::ServerCert {
                names: &["localhost", "127.0.0.1"],
                organization: None,
                common_name: None,
                p384: false,
                client_certs: false,
                alpn: false,
            })
            .map_err(Error::Tls)?;
            Some(tokio_rustls::TlsAcceptor::from(identity.config))
        } else {
            None
        };
        let service = Service::new(
            app.clone(),
            routes::api(app.clone()),
            None,
            OnHangup::Cancel,
        );
        let mut tasks = Tasks::default();
        tasks.spawn(fake_kit::serve::accept_tcp(
            api_listener,
            tls,
            service,
            |_| (),
        ));
        let control_url = control_listener.url().to_owned();
        let control_token = control_listener.token().to_owned();
        tasks.spawn(control_listener.serve(routes::control(app)));
        Ok(FakeOci {
            endpoint,
            control_url,
            control_token,
            control,
            fingerprint,
            tasks,
        })
    }

    /// The API endpoint, such as `http://127.0.0.1:PORT`; SDKs append `/20160918`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    pub fn control_url(&self) -> String {
        self.control_url.clone()
    }

    /// The bearer token the HTTP control API wants: `Authorization: Bearer TOKEN`.
    pub fn control_token(&self) -> &str {
        &self.control_token
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

    /// Stops accepting connections and waits until the requests in flight are done.
    pub async fn shutdown(self) {
        let app = self.control.app.clone();
        self.tasks.shutdown(&app).await;
    }
}
