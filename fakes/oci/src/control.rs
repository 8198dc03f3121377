//! The fake's own control operations, in-process ([`Control`]) and under `/_fake/` (the
//! handlers `routes::control` adds to the kit's common ones).

use std::ops::Deref;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::AppState;
use crate::signature::fingerprint;
use crate::state::{Delay, User};

/// Test-side handle on a running fake; cheap to clone. It derefs to the kit's control, which
/// has the operations every fake has (state, reset, seed, advance, requests, faults, idle).
#[derive(Clone)]
pub struct Control {
    base: fake_kit::Control<AppState>,
}

impl Deref for Control {
    type Target = fake_kit::Control<AppState>;

    fn deref(&self) -> &Self::Target {
        &self.base
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("not a PEM public key: {0}")]
    BadKey(String),
    #[error("no such user: {0}")]
    UnknownUser(String),
}

impl fake_kit::Controlled for AppState {
    fn snapshot(&self) -> serde_json::Value {
        let now = self.clock.now();
        self.lock().snapshot(now)
    }

    fn reset_state(&self) {
        self.lock().reset();
    }

    fn reseed(&self, seed: u64) {
        self.lock().reseed(seed);
    }

    fn tick(&self, now: OffsetDateTime) {
        self.lock().tick(now);
    }
}

impl Control {
    pub(crate) fn new(app: Arc<AppState>) -> Control {
        Control {
            base: fake_kit::Control::new(app),
        }
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

    /// Makes the next `lists` lists of a user's tokens leave out each token created from now
    /// on, as the live service may right after a create (0: lists show new tokens at once).
    pub fn set_list_lag(&self, lists: u32) {
        self.app.lock().list_lag = lists;
    }

    pub fn set_token_lifetime(&self, lifetime: Option<std::time::Duration>) {
        self.app.lock().token_lifetime = lifetime.and_then(|d| time::Duration::try_from(d).ok());
    }
}

fn control(app: Arc<AppState>) -> Control {
    Control::new(app)
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
