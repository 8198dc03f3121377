//! The control API under `/_fake/`, on its own loopback listener, and the same operations
//! for tests in-process ([`Control`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use serde::Deserialize;
use serde_json::json;

use crate::faults::Rule;
use crate::signature::fingerprint;
use crate::state::{Delay, User};
use crate::{AppState, RequestRecord};

/// Test-side handle on a running fake; cheap to clone.
#[derive(Clone)]
pub struct Control {
    pub(crate) app: Arc<AppState>,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("not a PEM public key: {0}")]
    BadKey(String),
    #[error("no such user: {0}")]
    UnknownUser(String),
}

impl Control {
    pub fn state(&self) -> serde_json::Value {
        let now = self.app.clock.now();
        self.app.lock().snapshot(now)
    }

    /// Waits until the fake is handling no API request (a delayed one included).
    pub async fn idle(&self) {
        self.app.wait_idle().await;
    }

    pub fn reset(&self) {
        self.app.lock().reset();
        self.app
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.app
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn seed(&self, seed: u64) {
        self.app.lock().reseed(seed);
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.app
            .clock
            .advance(time::Duration::try_from(by).unwrap_or(time::Duration::MAX));
        let now = self.app.clock.now();
        self.app.lock().tick(now);
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.app
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn add_fault(&self, rule: Rule) {
        self.app
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rule);
    }

    pub fn clear_faults(&self) {
        self.app
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Registers a user (creating it when new) and one API signing key; returns the key's fingerprint.
    pub fn add_user(
        &self,
        tenancy: &str,
        user: &str,
        public_key_pem: &str,
    ) -> Result<String, ControlError> {
        let key = RsaPublicKey::from_public_key_pem(public_key_pem.trim())
            .map_err(|e| ControlError::BadKey(e.to_string()))?;
        let fp = fingerprint(&key);
        let mut state = self.app.lock();
        let entry = state.users.entry(user.to_owned()).or_insert_with(|| User {
            tenancy: tenancy.to_owned(),
            keys: Default::default(),
        });
        entry.keys.insert(fp.clone(), key);
        Ok(fp)
    }

    pub fn set_lifecycle(&self, creating: Delay, deleting: Delay) {
        let mut state = self.app.lock();
        state.creating = creating;
        state.deleting = deleting;
    }

    pub fn poke(&self, drain: bool) -> usize {
        self.app.lock().poke(drain)
    }

    /// Makes lists return pages of at most `size` items (`None`: everything at once).
    pub fn set_page_size(&self, size: Option<usize>) {
        self.app.lock().page_size = size;
    }

    /// Issues a session token for a known user whose session key is `public_key_pem`, valid
    /// for `lifetime` on the fake's clock; requests signed with key id `ST$<token>` then act
    /// as that user.
    pub fn issue_session(
        &self,
        user: &str,
        public_key_pem: &str,
        lifetime: std::time::Duration,
    ) -> Result<String, ControlError> {
        let key = RsaPublicKey::from_public_key_pem(public_key_pem.trim())
            .map_err(|e| ControlError::BadKey(e.to_string()))?;
        let now = self.app.clock.now();
        let lifetime = time::Duration::try_from(lifetime).unwrap_or(time::Duration::MAX);
        self.app
            .lock()
            .issue_session(user, key, lifetime, now)
            .map_err(|_| ControlError::UnknownUser(user.to_owned()))
    }

    pub fn set_token_lifetime(&self, lifetime: Option<std::time::Duration>) {
        self.app.lock().token_lifetime = lifetime.and_then(|d| time::Duration::try_from(d).ok());
    }
}

fn control(app: Arc<AppState>) -> Control {
    Control { app }
}

pub async fn state(State(app): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(control(app).state())
}

pub async fn reset(State(app): State<Arc<AppState>>) -> StatusCode {
    control(app).reset();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
pub struct Seed {
    seed: u64,
}

pub async fn seed(State(app): State<Arc<AppState>>, Json(body): Json<Seed>) -> StatusCode {
    control(app).seed(body.seed);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
pub struct Advance {
    seconds: f64,
}

pub async fn advance(State(app): State<Arc<AppState>>, Json(body): Json<Advance>) -> Response {
    if !(body.seconds.is_finite() && body.seconds >= 0.0) {
        return (
            StatusCode::BAD_REQUEST,
            "seconds must be a finite number ≥ 0",
        )
            .into_response();
    }
    let control = control(app);
    control.advance(std::time::Duration::from_secs_f64(body.seconds));
    Json(json!({"now": control.state()["now"]})).into_response()
}

pub async fn requests(State(app): State<Arc<AppState>>) -> Json<Vec<RequestRecord>> {
    Json(control(app).requests())
}

pub async fn add_fault(State(app): State<Arc<AppState>>, Json(rule): Json<Rule>) -> StatusCode {
    control(app).add_fault(rule);
    StatusCode::NO_CONTENT
}

pub async fn clear_faults(State(app): State<Arc<AppState>>) -> StatusCode {
    control(app).clear_faults();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
pub struct NewUser {
    tenancy: String,
    user: String,
    public_key_pem: String,
}

pub async fn add_user(State(app): State<Arc<AppState>>, Json(body): Json<NewUser>) -> Response {
    match control(app).add_user(&body.tenancy, &body.user, &body.public_key_pem) {
        Ok(fp) => Json(json!({"fingerprint": fp})).into_response(),
        Err(err) => (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
pub struct LifecycleBody {
    #[serde(default)]
    creating: Delay,
    #[serde(default)]
    deleting: Delay,
}

pub async fn lifecycle(
    State(app): State<Arc<AppState>>,
    Json(body): Json<LifecycleBody>,
) -> StatusCode {
    control(app).set_lifecycle(body.creating, body.deleting);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
pub struct Poke {
    #[serde(default)]
    drain: bool,
}

pub async fn poke(
    State(app): State<Arc<AppState>>,
    Json(body): Json<Poke>,
) -> Json<serde_json::Value> {
    Json(json!({"completed": control(app).poke(body.drain)}))
}

#[derive(Deserialize)]
pub struct Expiry {
    seconds: Option<f64>,
}

pub async fn token_expiry(
    State(app): State<Arc<AppState>>,
    Json(body): Json<Expiry>,
) -> StatusCode {
    let lifetime = body
        .seconds
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(std::time::Duration::from_secs_f64);
    control(app).set_token_lifetime(lifetime);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
pub struct PageSize {
    size: Option<usize>,
}

pub async fn page_size(State(app): State<Arc<AppState>>, Json(body): Json<PageSize>) -> StatusCode {
    control(app).set_page_size(body.size);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
pub struct NewSession {
    user: String,
    public_key_pem: String,
    seconds: f64,
}

pub async fn issue_session(
    State(app): State<Arc<AppState>>,
    Json(body): Json<NewSession>,
) -> Response {
    if !(body.seconds.is_finite() && body.seconds >= 0.0 && body.seconds < 1e9) {
        return (
            StatusCode::BAD_REQUEST,
            "seconds must be a finite number from 0 to 1e9",
        )
            .into_response();
    }
    match control(app).issue_session(
        &body.user,
        &body.public_key_pem,
        std::time::Duration::from_secs_f64(body.seconds),
    ) {
        Ok(token) => Json(json!({"token": token})).into_response(),
        Err(err) => (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    }
}
