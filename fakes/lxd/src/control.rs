//! The fake's own control operations, in-process ([`Control`]) and under `/_fake/` (the
//! handlers `routes::control` adds to the kit's common ones).

use std::ops::Deref;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::envelope::operation_json;
use crate::state::{Caller, CertificatesPost, Profile, token_string};
use crate::tls::ClientCert;

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

impl fake_kit::Controlled for AppState {
    fn snapshot(&self) -> serde_json::Value {
        let now = self.clock.now();
        let mut state = self.lock();
        state.tick(now);
        let profile = state.profile;
        json!({
            "now": crate::envelope::time(now),
            "profile": profile,
            "config": state.config,
            "operations": state.operations().map(|o| {
                let mut v = operation_json(o, profile);
                v["token"] = json!(token_string(o, profile));
                v
            }).collect::<Vec<_>>(),
            "certificates": state.certificates,
        })
    }

    fn reset_state(&self) {
        let now = self.clock.now();
        let mut state = self.lock();
        state.restart(now);
        state.certificates.clear();
    }

    fn reseed(&self, seed: u64) {
        self.lock().reseed(seed);
    }
}

impl Control {
    pub(crate) fn new(app: Arc<AppState>) -> Control {
        Control {
            base: fake_kit::Control::new(app),
        }
    }

    pub fn profile(&self) -> Profile {
        self.app.lock().profile
    }

    /// The token strings of the running token operations, as `lxc config trust add` prints them.
    pub fn pending_tokens(&self) -> Vec<(String, String)> {
        let now = self.app.clock.now();
        let mut state = self.app.lock();
        state.tick(now);
        let profile = state.profile;
        state
            .operations()
            .filter(|o| o.status == crate::state::Status::Running)
            .filter_map(|o| Some((o.id.clone(), token_string(o, profile)?)))
            .collect()
    }

    /// Restarts the fake as another server: pending tokens are lost, as in any restart; the
    /// config and the trust store stay.
    pub fn set_profile(&self, profile: Profile) {
        let now = self.app.clock.now();
        let mut state = self.app.lock();
        state.profile = profile;
        state.restart(now);
    }

    pub fn restart(&self) {
        let now = self.app.clock.now();
        self.app.lock().restart(now);
    }

    pub fn set_config(&self, key: &str, value: &str) -> Result<(), String> {
        self.app
            .lock()
            .set_config([(key.to_owned(), value.to_owned())].into(), false)
            .map_err(|e| e.text)
    }

    /// Consumes `token` as an untrusted HTTPS client with `cert` (one is made when `None`).
    /// Returns the HTTP status the daemon would answer, and the error text if any.
    pub fn consume(
        &self,
        token: &str,
        cert: Option<&ClientCert>,
    ) -> (u16, Option<String>, ClientCert) {
        let cert = cert
            .cloned()
            .unwrap_or_else(|| ClientCert::generate("fake-client"));
        let caller = Caller {
            local: false,
            cert: Some((cert.fingerprint.clone(), cert.cert_pem.clone())),
        };
        let now = self.app.clock.now();
        let mut state = self.app.lock();
        state.tick(now);
        let body = match state.profile {
            // A join's type comes from the token's request: the body's `type` is not read.
            Profile::V5_0 => CertificatesPost {
                password: token.to_owned(),
                ..Default::default()
            },
            Profile::V6 | Profile::Incus6_0 => CertificatesPost {
                trust_token: Some(token.to_owned()),
                ..Default::default()
            },
        };
        match state.consume(&caller, &body, now) {
            Ok(_) => (201, None, cert),
            Err(e) => (e.status, Some(e.text), cert),
        }
    }

    /// Leaves `extension` out of the `api_extensions` of `GET /1.0`, as a server that lacks it
    /// would (the behaviour it stands for is not taken away).
    pub fn hide_extension(&self, extension: &str) {
        self.app
            .hidden_extensions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(extension.to_owned());
    }

    /// The trust store: (name, fingerprint) of every certificate, oldest first.
    pub fn certificates(&self) -> Vec<(String, String)> {
        self.app
            .lock()
            .certificates
            .iter()
            .map(|c| (c.name.clone(), c.fingerprint.clone()))
            .collect()
    }

    /// `lxc config trust revoke-token`, by operation id: cancels a running token.
    pub fn revoke(&self, id: &str) -> Result<(), String> {
        let now = self.app.clock.now();
        let mut state = self.app.lock();
        state.tick(now);
        state.cancel(id, now).map_err(|e| e.text)
    }
}

fn control(app: Arc<AppState>) -> Control {
    Control::new(app)
}

pub async fn restart(State(app): State<Arc<AppState>>) -> StatusCode {
    control(app).restart();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
pub struct SetProfile {
    profile: String,
}

/// `POST /_fake/profile {"profile": "incus-6.0"}`: see [`Control::set_profile`].
pub async fn profile(State(app): State<Arc<AppState>>, Json(body): Json<SetProfile>) -> Response {
    let Some(profile) = Profile::from_name(&body.profile) else {
        let text = format!(
            "unknown profile {:?}: expected 5.0, 6 or incus-6.0",
            body.profile
        );
        return (StatusCode::BAD_REQUEST, text).into_response();
    };
    control(app).set_profile(profile);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
pub struct Consume {
    token: String,
}

pub async fn consume(
    State(app): State<Arc<AppState>>,
    Json(body): Json<Consume>,
) -> Json<serde_json::Value> {
    let (status, error, cert) = control(app).consume(&body.token, None);
    Json(json!({"status": status, "error": error, "fingerprint": cert.fingerprint}))
}

pub async fn config(
    State(app): State<Arc<AppState>>,
    Json(body): Json<std::collections::BTreeMap<String, String>>,
) -> Response {
    let control = control(app);
    for (key, value) in body {
        if let Err(text) = control.set_config(&key, &value) {
            return (StatusCode::BAD_REQUEST, text).into_response();
        }
    }
    StatusCode::NO_CONTENT.into_response()
}
