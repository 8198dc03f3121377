//! HTTP handlers of the LXD API: parse the request, call the state machine, serialise.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::envelope::{
    async_op, bytes_response, error, error_over, operation_text, sync, sync_raw, sync_raw_body,
    sync_status,
};
use crate::state::{Caller, CertificatesPost, LxdError, Profile, Status};

type App = State<Arc<AppState>>;

fn fail(e: LxdError) -> Response {
    error(e.status, &e.text)
}

/// The state as a trusted caller of the operations API sees it: locked and brought up to
/// the fake's clock (expiry and retention applied); `None` for a stranger.
fn operations_view<'a>(
    app: &'a AppState,
    caller: &Caller,
) -> Option<(
    std::sync::MutexGuard<'a, crate::state::State>,
    time::OffsetDateTime,
)> {
    let now = app.clock.now();
    let mut state = app.lock();
    if !state.is_trusted(caller) {
        return None;
    }
    state.tick(now);
    Some((state, now))
}

/// Every reply carries the fake's clock in `Date`, as LXD's carry the daemon's.
pub async fn date_header(
    State(app): App,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let now = app.clock.now();
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&crate::envelope::http_date(now)) {
        response.headers_mut().insert(header::DATE, value);
    }
    response
}

fn forbidden() -> Response {
    error(403, "not authorized")
}

#[derive(serde::Deserialize, Default)]
pub struct Recursion {
    #[serde(default)]
    recursion: Option<String>,
}

impl Recursion {
    fn on(&self) -> bool {
        self.recursion.as_deref().is_some_and(|r| r != "0")
    }
}

/// The text Go's `encoding/json` gives for a body that does not fit `CertificatesPost`-like
/// structs, for the common cases; other syntax errors fall back to serde's text.
fn decode_error(body: &[u8], type_name: &str, fields: &[(&str, &str)]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Some("EOF".into());
    }
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            let mut chars = trimmed.chars();
            if chars.next() == Some('{') {
                let next = chars.find(|c| !c.is_whitespace());
                if let Some(c) = next.filter(|c| *c != '"' && *c != '}') {
                    return Some(format!(
                        "invalid character '{c}' looking for beginning of object key string"
                    ));
                }
            }
            // Go's decoder says only this when the body stops inside a value.
            if e.is_eof() {
                return Some("unexpected EOF".into());
            }
            return Some(e.to_string());
        }
    };
    let kind = |v: &serde_json::Value| match v {
        serde_json::Value::Array(_) => "array",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Object(_) => "object",
        serde_json::Value::Null => "null",
    };
    let Some(object) = value.as_object() else {
        return Some(format!(
            "json: cannot unmarshal {} into Go value of type {type_name}",
            kind(&value)
        ));
    };
    let short = type_name.rsplit('.').next().unwrap_or(type_name);
    for (field, go_type) in fields {
        let Some(v) = object.get(*field) else {
            continue;
        };
        let fits = match *go_type {
            "string" => v.is_string() || v.is_null(),
            "bool" => v.is_boolean() || v.is_null(),
            "[]string" => {
                v.is_null()
                    || v.as_array()
                        .is_some_and(|a| a.iter().all(|s| s.is_string()))
            }
            // The rest are Go maps (`map[string]string`, `map[string]interface {}`).
            _ => v.is_object() || v.is_null(),
        };
        if !fits {
            let shown = kind(v);
            let (what, field_path) = match v.as_array() {
                Some(items) if *go_type == "[]string" => (
                    items
                        .iter()
                        .find(|i| !i.is_string())
                        .map(kind)
                        .unwrap_or(shown),
                    format!("{short}.{field}"),
                ),
                _ => (shown, format!("{short}.{field}")),
            };
            let of_type = if v.is_array() && *go_type == "[]string" {
                "string"
            } else {
                go_type
            };
            return Some(format!(
                "json: cannot unmarshal {what} into Go struct field {field_path} of type {of_type}"
            ));
        }
    }
    None
}

const CERT_FIELDS: &[(&str, &str)] = &[
    ("name", "string"),
    ("type", "string"),
    ("restricted", "bool"),
    ("projects", "[]string"),
    ("certificate", "string"),
    ("password", "string"),
    ("trust_token", "string"),
    ("token", "bool"),
];

/// Incus's `CertificatesPost`: no `password` (a number there is ignored), a `description`.
const INCUS_CERT_FIELDS: &[(&str, &str)] = &[
    ("name", "string"),
    ("type", "string"),
    ("restricted", "bool"),
    ("projects", "[]string"),
    ("certificate", "string"),
    ("description", "string"),
    ("trust_token", "string"),
    ("token", "bool"),
];

pub async fn root(State(app): App, Extension(caller): Extension<Caller>) -> Response {
    // The extension list takes the state lock itself, so it is read before the lock is held.
    let extensions = app.api_extensions();
    let state = app.lock();
    let incus = state.profile == Profile::Incus6_0;
    if !state.is_trusted(&caller) {
        let mut untrusted = serde_json::Map::new();
        // Incus shows an empty config to strangers; LXD leaves the key out.
        if incus {
            untrusted.insert("config".into(), json!({}));
        }
        for (key, value) in [
            ("api_extensions", json!(extensions)),
            ("api_status", json!("stable")),
            ("api_version", json!("1.0")),
            ("auth", json!("untrusted")),
            ("public", json!(false)),
            ("auth_methods", json!(["tls"])),
        ] {
            untrusted.insert(key.into(), value);
        }
        return sync(serde_json::Value::Object(untrusted));
    }
    let mut trusted = serde_json::Map::new();
    for (key, value) in [
        ("config", json!(state.config)),
        ("api_extensions", json!(extensions)),
        ("api_status", json!("stable")),
        ("api_version", json!("1.0")),
        ("auth", json!("trusted")),
        ("public", json!(false)),
        ("auth_methods", json!(["tls"])),
    ] {
        trusted.insert(key.into(), value);
    }
    if incus {
        // Who Incus thinks is asking: `root` over the socket, the fingerprint over HTTPS.
        let (user, method) = match &caller.cert {
            // Only HTTPS callers carry a certificate.
            Some((fingerprint, _)) => (fingerprint.as_str(), "tls"),
            _ => ("root", "unix"),
        };
        trusted.insert("auth_user_name".into(), json!(user));
        trusted.insert("auth_user_method".into(), json!(method));
    }
    let mut environment = serde_json::Map::new();
    for (key, value) in [
        ("addresses", json!(state.addresses())),
        ("architectures", json!(["x86_64", "i686"])),
        ("certificate", json!(app.server_cert_pem)),
        ("certificate_fingerprint", json!(state.server_fingerprint)),
        ("driver", json!("lxc")),
        (
            "driver_version",
            json!(if incus {
                "5.0.2"
            } else {
                state.profile.server_version()
            }),
        ),
        (
            "firewall",
            json!(if incus { "nftables" } else { "xtables" }),
        ),
        ("kernel", json!("Linux")),
        ("kernel_architecture", json!("x86_64")),
    ] {
        environment.insert(key.into(), value);
    }
    if incus {
        environment.insert("kernel_features".into(), json!({}));
        environment.insert("kernel_version".into(), json!("6.1.0"));
        environment.insert("lxc_features".into(), json!({}));
    }
    for (key, value) in [
        ("os_name", json!("fake-lxd")),
        ("os_version", json!("0")),
        ("project", json!("default")),
        ("server", json!(state.profile.server())),
        ("server_clustered", json!(false)),
        ("server_event_mode", json!("full-mesh")),
        ("server_name", json!("fake-lxd")),
        ("server_pid", json!(std::process::id())),
        ("server_version", json!(state.profile.server_version())),
        ("storage", json!("")),
        ("storage_version", json!("")),
        ("storage_supported_drivers", json!([])),
    ] {
        environment.insert(key.into(), value);
    }
    trusted.insert("environment".into(), serde_json::Value::Object(environment));
    let mut response = sync(serde_json::Value::Object(trusted));
    let etag = format!(
        "\"{}\"",
        crate::tls::fingerprint(
            serde_json::to_string(&state.config)
                .unwrap_or_default()
                .as_bytes()
        )
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

#[derive(serde::Deserialize)]
struct ServerPut {
    #[serde(default)]
    config: std::collections::BTreeMap<String, serde_json::Value>,
}

async fn put_config(app: Arc<AppState>, caller: Caller, body: Bytes, replace: bool) -> Response {
    if !app.lock().is_trusted(&caller) {
        return forbidden();
    }
    // The servers' `ServerPut.config`: LXD's holds any JSON value, Incus's only strings.
    let config_type = match app.lock().profile {
        Profile::Incus6_0 => "map[string]string",
        Profile::V5_0 | Profile::V6 => "map[string]interface {}",
    };
    if let Some(text) = decode_error(&body, "api.ServerPut", &[("config", config_type)]) {
        return error(400, &text);
    }
    let put: ServerPut = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error(400, &e.to_string()),
    };
    let values = put
        .config
        .into_iter()
        .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        .collect();
    match app.lock().set_config(values, replace) {
        Ok(()) => sync(json!({})),
        Err(e) => fail(e),
    }
}

pub async fn put_root(
    State(app): App,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    put_config(app, caller, body, true).await
}

pub async fn patch_root(
    State(app): App,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    put_config(app, caller, body, false).await
}

pub async fn post_certificates(
    State(app): App,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let fields = match app.lock().profile {
        Profile::Incus6_0 => INCUS_CERT_FIELDS,
        Profile::V5_0 | Profile::V6 => CERT_FIELDS,
    };
    if let Some(text) = decode_error(&body, "api.CertificatesPost", fields) {
        return error(400, &text);
    }
    let req: CertificatesPost = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(400, &e.to_string()),
    };
    let now = app.clock.now();
    let mut state = app.lock();
    state.tick(now);
    let trusted = state.is_trusted(&caller);
    if req.token {
        // Restricted clients may not issue tokens either (the real daemon answers 403).
        let restricted = caller.cert.as_ref().is_some_and(|(fp, _)| {
            state
                .certificates
                .iter()
                .any(|c| &c.fingerprint == fp && c.restricted)
        });
        if !trusted || (!caller.local && restricted) {
            return forbidden();
        }
        return match state.create_token(req, now) {
            Ok(op) => {
                let profile = state.profile;
                drop(state);
                app.event(&op);
                async_op(&op, profile)
            }
            Err(e) => fail(e),
        };
    }
    if trusted && state.profile == Profile::V5_0 && req.password.is_empty() {
        return error(501, "not implemented");
    }
    let (result, burnt) = state.consume_reporting(&caller, &req, now);
    drop(state);
    if let Some(op) = &burnt {
        app.event(op);
    }
    match result {
        Ok(consumed) => {
            let mut response = sync_status(201, serde_json::Value::Null);
            if let Ok(v) =
                HeaderValue::from_str(&format!("/1.0/certificates/{}", consumed.fingerprint))
            {
                response.headers_mut().insert(header::LOCATION, v);
            }
            response
        }
        Err(e) => fail(e),
    }
}

pub async fn list_certificates(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Query(q): Query<Recursion>,
) -> Response {
    let state = app.lock();
    if !state.is_trusted(&caller) {
        return forbidden();
    }
    if q.on() {
        let profile = state.profile;
        sync(json!(
            state
                .certificates
                .iter()
                .map(|c| cert_json(c, profile))
                .collect::<Vec<_>>()
        ))
    } else {
        sync(json!(
            state
                .certificates
                .iter()
                .map(|c| format!("/1.0/certificates/{}", c.fingerprint))
                .collect::<Vec<_>>()
        ))
    }
}

fn cert_json(c: &crate::state::Certificate, profile: Profile) -> serde_json::Value {
    if profile == Profile::Incus6_0 {
        // Incus adds a description, which a redeemed token never carries over.
        return json!({"name": c.name, "type": "client", "restricted": c.restricted, "projects": c.projects, "certificate": c.certificate, "description": "", "fingerprint": c.fingerprint});
    }
    json!({"name": c.name, "type": "client", "restricted": c.restricted, "projects": c.projects, "certificate": c.certificate, "fingerprint": c.fingerprint})
}

pub async fn get_certificate(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Path(fp): Path<String>,
) -> Response {
    let state = app.lock();
    if !state.is_trusted(&caller) {
        return forbidden();
    }
    match state.certificate(&fp) {
        Ok(c) => sync(cert_json(c, state.profile)),
        Err(e) => fail(e),
    }
}

pub async fn delete_certificate(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Path(fp): Path<String>,
) -> Response {
    let mut state = app.lock();
    if !state.is_trusted(&caller) {
        return forbidden();
    }
    match state.delete_certificate(&fp) {
        Ok(()) => sync(json!({})),
        Err(e) => fail(e),
    }
}

pub async fn list_operations(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Query(q): Query<Recursion>,
) -> Response {
    let Some((state, _)) = operations_view(&app, &caller) else {
        return forbidden();
    };
    let recursion = q.on();
    let version = state.version();
    let mut cache = app.listing.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((v, r, body)) = cache.as_ref()
        && *v == version
        && *r == recursion
    {
        return bytes_response(200, body.clone());
    }
    let body = sync_raw_body(&listing(&state, recursion));
    *cache = Some((version, recursion, body.clone()));
    bytes_response(200, body)
}

/// The metadata of an operations listing, joined from each operation's cached JSON in the
/// bytes `sync` would give.
fn listing(state: &crate::state::State, recursion: bool) -> String {
    fn item(
        op: &crate::state::Operation,
        profile: crate::state::Profile,
        recursion: bool,
    ) -> std::borrow::Cow<'_, str> {
        if recursion {
            operation_text(op, profile)
        } else {
            std::borrow::Cow::Owned(format!("\"/1.0/operations/{}\"", op.id))
        }
    }
    let item = |op| item(op, state.profile, recursion);
    let size: usize = state.operations().map(|op| item(op).len() + 1).sum();
    let mut body = String::with_capacity(size + 64);
    body.push('{');
    // The daemon's buckets are a Go map, which its JSON encoder writes in key order.
    for status in [Status::Cancelled, Status::Running, Status::Success] {
        let mut first = true;
        for op in state.operations().filter(|o| o.status == status) {
            if first {
                if body.len() > 1 {
                    body.push(',');
                }
                body.push('"');
                body.push_str(status.bucket());
                body.push_str("\":[");
                first = false;
            } else {
                body.push(',');
            }
            body.push_str(&item(op));
        }
        if !first {
            body.push(']');
        }
    }
    body.push('}');
    body
}

pub async fn get_operation(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let Some((state, _)) = operations_view(&app, &caller) else {
        return forbidden();
    };
    match state.operation(&id) {
        Ok(op) => sync_raw(&operation_text(op, state.profile)),
        Err(e) => fail(e),
    }
}

#[derive(serde::Deserialize, Default)]
pub struct WaitQuery {
    #[serde(default)]
    timeout: Option<String>,
}

/// `GET /1.0/operations/{id}/wait?timeout=N`: answers when the operation is no longer running,
/// or when the fake's clock has moved `N` seconds on (never, for a negative or absent timeout).
/// A timed-out wait gives the running operation on LXD, and on Incus HTTP 200 with an error
/// envelope (500 `context deadline exceeded`).
pub async fn wait_operation(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Response {
    let deadline = wait_deadline(q.timeout.as_deref(), app.clock.now());
    loop {
        {
            let Some((state, now)) = operations_view(&app, &caller) else {
                return forbidden();
            };
            let op = match state.operation(&id) {
                Ok(op) => op,
                Err(e) => return fail(e),
            };
            let timed_out = deadline.is_some_and(|d| now >= d);
            if op.status != Status::Running {
                return sync_raw(&operation_text(op, state.profile));
            }
            if timed_out {
                return match state.profile {
                    Profile::Incus6_0 => error_over(200, 500, "context deadline exceeded"),
                    Profile::V5_0 | Profile::V6 => sync_raw(&operation_text(op, state.profile)),
                };
            }
        }
        // The fake's clock moves with the wall clock or when a test advances it: look again.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// When a wait asked at `now` with `timeout` ends on the fake's clock: `None` (never) for an
/// absent, negative or unreadable timeout, as LXD reads them, and for one past the calendar.
fn wait_deadline(timeout: Option<&str>, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
    let timeout = timeout.and_then(|t| t.parse::<i64>().ok()).unwrap_or(-1);
    if timeout < 0 {
        return None;
    }
    now.checked_add(time::Duration::seconds(timeout))
}

pub async fn delete_operation(
    State(app): App,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let Some((mut state, now)) = operations_view(&app, &caller) else {
        return forbidden();
    };
    match state.cancel(&id, now) {
        Ok(()) => {
            let op = state.operation(&id).ok().cloned();
            drop(state);
            if let Some(op) = op {
                app.event(&op);
            }
            sync(json!({}))
        }
        Err(e) => fail(e),
    }
}

pub async fn not_implemented() -> Response {
    error(501, "not implemented")
}

pub async fn not_found() -> Response {
    error(404, "not found")
}

/// `GET /1.0/events`: a websocket of operation events; without an upgrade, a plain-text 400
/// as the daemon answers.
pub async fn events(
    State(app): App,
    Extension(caller): Extension<Caller>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if !app.lock().is_trusted(&caller) {
        return forbidden();
    }
    match upgrade {
        Ok(ws) => {
            let events = app.events.subscribe();
            ws.on_upgrade(move |socket| stream_events(socket, events))
        }
        Err(_) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Bad Request\n",
        )
            .into_response(),
    }
}

async fn stream_events(
    mut socket: WebSocket,
    mut events: tokio::sync::broadcast::Receiver<serde_json::Value>,
) {
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    if socket.send(Message::Text(event.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(_)) => continue,
                _ => return,
            },
        }
    }
}

/// `GET /1.0/projects/{name}`: only the `default` project exists (`lxc remote add` reads it).
pub async fn get_project(
    State(app): App,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    if !app.lock().is_trusted(&caller) {
        return forbidden();
    }
    if name != "default" {
        return error(404, "Project not found");
    }
    let profile = app.lock().profile;
    sync(default_project(profile))
}

/// The `default` project as each server describes it.
fn default_project(profile: Profile) -> serde_json::Value {
    match profile {
        Profile::Incus6_0 => json!({
            "config": {"features.images": "true", "features.networks": "true", "features.networks.zones": "true", "features.profiles": "true", "features.storage.buckets": "true", "features.storage.volumes": "true"},
            "description": "Default Incus project",
            "name": "default",
            "used_by": ["/1.0/profiles/default"],
        }),
        Profile::V5_0 | Profile::V6 => json!({
            "config": {"features.images": "true", "features.networks": "true", "features.profiles": "true", "features.storage.volumes": "true"},
            "description": "Default LXD project",
            "name": "default",
            "used_by": ["/1.0/profiles/default"],
        }),
    }
}

/// `GET /1.0/projects`: the one `default` project (`lxc remote add` lists them after trust).
pub async fn list_projects(
    State(app): App,
    Extension(caller): Extension<Caller>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    if !app.lock().is_trusted(&caller) {
        return forbidden();
    }
    let recursive = query
        .unwrap_or_default()
        .split('&')
        .any(|kv| kv.starts_with("recursion=") && kv != "recursion=0");
    if recursive {
        let profile = app.lock().profile;
        return sync(json!([default_project(profile)]));
    }
    sync(json!(["/1.0/projects/default"]))
}

/// `GET /`: the API versions, as the real daemon lists them.
pub async fn versions() -> Response {
    sync(json!(["/1.0"]))
}

#[cfg(test)]
mod tests {
    use super::wait_deadline;
    use time::{Duration, OffsetDateTime};

    #[test]
    fn a_wait_ends_only_for_a_readable_timeout_of_zero_or_more() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        assert_eq!(wait_deadline(None, now), None);
        assert_eq!(wait_deadline(Some("soon"), now), None);
        assert_eq!(wait_deadline(Some("-1"), now), None);
        assert_eq!(wait_deadline(Some("0"), now), Some(now));
        assert_eq!(
            wait_deadline(Some("7"), now),
            Some(now + Duration::seconds(7))
        );
        assert_eq!(wait_deadline(Some(&i64::MAX.to_string()), now), None);
    }
}
