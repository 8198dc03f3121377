//! The control API under `/_fake/`, on its own loopback listener, and the same operations
//! in-process ([`Control`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::envelope::operation_json;
use crate::faults::Rule;
use crate::state::{Caller, CertificatesPost, Profile, token_string};
use crate::{AppState, RequestRecord};

/// Test-side handle on a running fake; cheap to clone.
#[derive(Clone)]
pub struct Control {
    pub(crate) app: Arc<AppState>,
}

/// A client certificate made for a consumption: its PEM, key and fingerprint.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub fingerprint: String,
}

impl ClientCert {
    pub fn generate(name: &str) -> ClientCert {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
            .unwrap_or_else(|_| rcgen::KeyPair::generate().expect("key generation"));
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap_or_default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("self-signed certificate");
        ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            fingerprint: crate::tls::fingerprint(cert.der()),
        }
    }
}

impl Control {
    pub fn profile(&self) -> Profile {
        self.app.lock().profile
    }

    pub fn state(&self) -> serde_json::Value {
        let now = self.app.clock.now();
        let mut state = self.app.lock();
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

    pub fn reset(&self) {
        let now = self.app.clock.now();
        let mut state = self.app.lock();
        state.restart(now);
        state.certificates.clear();
        drop(state);
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

    pub fn restart(&self) {
        let now = self.app.clock.now();
        self.app.lock().restart(now);
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
            Profile::V5_0 => CertificatesPost {
                kind: "client".into(),
                password: token.to_owned(),
                ..Default::default()
            },
            Profile::V6 => CertificatesPost {
                kind: "client".into(),
                trust_token: Some(token.to_owned()),
                ..Default::default()
            },
        };
        match state.consume(&caller, &body, now) {
            Ok(_) => (201, None, cert),
            Err(e) => (e.status, Some(e.text), cert),
        }
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

    /// Waits until the fake is handling no API request.
    pub async fn idle(&self) {
        self.app.wait_idle().await;
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

pub async fn restart(State(app): State<Arc<AppState>>) -> StatusCode {
    control(app).restart();
    StatusCode::NO_CONTENT
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
