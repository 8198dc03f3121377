//! The control API's plumbing: the operations every fake has (state, reset, seed, clock,
//! request log, faults), in-process ([`Control`]) and over HTTP under `/_fake/` on a listener
//! of its own that binds loopback only and wants a per-run bearer token ([`ControlListener`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::faults::Rule;
use crate::serve::{Api, RequestRecord};

/// What a fake gives the control API besides what the serve loop needs.
pub trait Controlled: Api {
    /// The fake's state as `GET /_fake/state` shows it, brought up to the clock's time; it
    /// has a `now` field.
    fn snapshot(&self) -> serde_json::Value;

    /// Back to the state of a fresh start (the kit clears the faults and the request log).
    fn reset_state(&self);

    /// Reseeds the random generator behind ids and secrets.
    fn reseed(&self, seed: u64);

    /// Brings the state up to `now` after the clock moved (expiries, completions). A fake
    /// whose every reader brings the state up to its clock first (fake-lxd's) keeps the
    /// default, which does nothing.
    fn tick(&self, _now: OffsetDateTime) {}
}

/// Test-side handle on a running fake; cheap to clone. A fake's own control handle derefs to
/// it and adds the operations that are the fake's own.
pub struct Control<A> {
    pub app: Arc<A>,
}

impl<A> Clone for Control<A> {
    fn clone(&self) -> Self {
        Control {
            app: self.app.clone(),
        }
    }
}

impl<A: Controlled> Control<A> {
    pub fn new(app: Arc<A>) -> Control<A> {
        Control { app }
    }

    pub fn state(&self) -> serde_json::Value {
        self.app.snapshot()
    }

    pub fn reset(&self) {
        self.app.reset_state();
        self.app.kit().clear_faults();
        self.app.kit().clear_requests();
    }

    pub fn seed(&self, seed: u64) {
        self.app.reseed(seed);
    }

    pub fn advance(&self, by: std::time::Duration) {
        let kit = self.app.kit();
        kit.clock
            .advance(time::Duration::try_from(by).unwrap_or(time::Duration::MAX));
        self.app.tick(kit.now());
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.app.kit().requests()
    }

    /// How many connections the fake has served since it started.
    pub fn connections(&self) -> usize {
        self.app.kit().connections()
    }

    pub fn add_fault(&self, rule: Rule) {
        self.app.kit().add_fault(rule);
    }

    pub fn clear_faults(&self) {
        self.app.kit().clear_faults();
    }

    /// Waits until the fake is handling no API request (a delayed one included).
    pub async fn idle(&self) {
        self.app.kit().wait_idle().await;
    }
}

/// The control routes every fake has, merged with the fake's own `extra` routes.
pub fn routes<A: Controlled>(app: Arc<A>, extra: Router<Arc<A>>) -> Router {
    Router::new()
        .route("/_fake/state", get(state::<A>))
        .route("/_fake/reset", post(reset::<A>))
        .route("/_fake/seed", post(seed::<A>))
        .route("/_fake/clock/advance", post(advance::<A>))
        .route("/_fake/requests", get(requests::<A>))
        .route(
            "/_fake/faults",
            post(add_fault::<A>).delete(clear_faults::<A>),
        )
        .merge(extra)
        .with_state(app)
}

async fn state<A: Controlled>(State(app): State<Arc<A>>) -> Json<serde_json::Value> {
    Json(Control::new(app).state())
}

async fn reset<A: Controlled>(State(app): State<Arc<A>>) -> StatusCode {
    Control::new(app).reset();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Seed {
    seed: u64,
}

async fn seed<A: Controlled>(State(app): State<Arc<A>>, Json(body): Json<Seed>) -> StatusCode {
    Control::new(app).seed(body.seed);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Advance {
    seconds: f64,
}

async fn advance<A: Controlled>(State(app): State<Arc<A>>, Json(body): Json<Advance>) -> Response {
    if !(body.seconds.is_finite() && body.seconds >= 0.0) {
        return (
            StatusCode::BAD_REQUEST,
            "seconds must be a finite number ≥ 0",
        )
            .into_response();
    }
    let control = Control::new(app);
    control.advance(std::time::Duration::from_secs_f64(body.seconds));
    Json(json!({"now": control.state()["now"]})).into_response()
}

async fn requests<A: Controlled>(State(app): State<Arc<A>>) -> Json<Vec<RequestRecord>> {
    Json(Control::new(app).requests())
}

async fn add_fault<A: Controlled>(State(app): State<Arc<A>>, Json(rule): Json<Rule>) -> StatusCode {
    Control::new(app).add_fault(rule);
    StatusCode::NO_CONTENT
}

async fn clear_faults<A: Controlled>(State(app): State<Arc<A>>) -> StatusCode {
    Control::new(app).clear_faults();
    StatusCode::NO_CONTENT
}

/// Where the control listener may bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// Loopback addresses only: anyone who reaches the control API can read every secret.
    LoopbackOnly,
    /// Any address, because the operator said so explicitly.
    Forced,
}

/// The control API's listener, bound, with its bearer token.
pub struct ControlListener {
    listener: TcpListener,
    url: String,
    token: String,
}

impl ControlListener {
    /// Binds `addr`; a non-loopback address is refused unless `bind` is [`Bind::Forced`].
    pub async fn bind(addr: SocketAddr, bind: Bind) -> std::io::Result<ControlListener> {
        if bind == Bind::LoopbackOnly && !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the control API listens on loopback only, and {addr} is not loopback (force it explicitly to allow it)"
                ),
            ));
        }
        let listener = TcpListener::bind(addr).await?;
        let url = format!("http://{}", listener.local_addr()?);
        Ok(ControlListener {
            listener,
            url,
            token: random_token(),
        })
    }

    /// `http://HOST:PORT`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bearer token every control request must carry: `Authorization: Bearer TOKEN`.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Serves `router` behind the token check until the task is dropped.
    pub async fn serve(self, router: Router) {
        let expected = Arc::new(format!("Bearer {}", self.token));
        let router = router.layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let expected = expected.clone();
                async move { authorise(&expected, req, next).await }
            },
        ));
        let _ = axum::serve(self.listener, router).await;
    }
}

async fn authorise(expected: &str, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if constant_time_eq(given, expected.as_bytes()) {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "the control API wants the bearer token the fake printed when it started",
    )
        .into_response()
}

/// Compares without stopping at the first difference, so timing does not tell a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn random_token() -> String {
    hex::encode(rand::rng().random::<[u8; 32]>())
}

/// The seed a standalone fake uses: the one given, or a random one, so that two fakes started
/// by hand do not issue the same ids and secrets.
pub fn seed_or_random(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| rand::rng().random())
}

/// The line a standalone fake prints on stdout when it is ready: `fields` (an object) plus the
/// control API's `control` URL and `control_token`.
pub fn ready_line(control_url: &str, control_token: &str, fields: serde_json::Value) -> String {
    let mut ready = fields;
    if let Some(object) = ready.as_object_mut() {
        object.insert("control".to_owned(), control_url.into());
        object.insert("control_token".to_owned(), control_token.into());
    }
    ready.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"Bearer abc", b"Bearer abc"));
        assert!(!constant_time_eq(b"Bearer abd", b"Bearer abc"));
        assert!(!constant_time_eq(b"Bearer ab", b"Bearer abc"));
        assert!(!constant_time_eq(b"", b"Bearer abc"));
        // Two differences that cancel out under xor-folding still differ.
        assert!(!constant_time_eq(b"Bearer abc", b"Bearer bac"));
    }

    #[test]
    fn the_ready_line_adds_the_control_url_and_token() {
        let line = ready_line(
            "http://127.0.0.1:1",
            "tok",
            serde_json::json!({"endpoint": "x"}),
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"endpoint": "x", "control": "http://127.0.0.1:1", "control_token": "tok"})
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn tokens_and_seeds_differ_per_run() {
        assert_eq!(random_token().len(), 64);
        assert_ne!(random_token(), random_token());
        assert_ne!(seed_or_random(None), seed_or_random(None));
        assert_eq!(seed_or_random(Some(7)), 7);
    }

    #[tokio::test]
    async fn non_loopback_binds_are_refused_unless_forced() {
        let err = ControlListener::bind(SocketAddr::from(([0, 0, 0, 0], 0)), Bind::LoopbackOnly)
            .await
            .err()
            .expect("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("loopback"), "{err}");
        let forced = ControlListener::bind(SocketAddr::from(([0, 0, 0, 0], 0)), Bind::Forced)
            .await
            .expect("forced");
        assert!(forced.url().starts_with("http://0.0.0.0:"));
        let local =
            ControlListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), Bind::LoopbackOnly)
                .await
                .expect("loopback");
        assert!(local.url().starts_with("http://127.0.0.1:"));
    }
}
