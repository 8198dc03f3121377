//! HTTP handlers of the Identity API: parse the request, call the state machine, serialise.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::signature::{self, SignedRequest};
use crate::state::ApiError;

/// An error in OCI's envelope.
pub struct Failure {
    status: u16,
    code: &'static str,
    message: String,
}

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Failure {
        let (status, code) = err.status_and_code();
        Failure {
            status,
            code,
            message: err.to_string(),
        }
    }
}

fn not_authenticated() -> Failure {
    Failure {
        status: 401,
        code: "NotAuthenticated",
        message:
            "The required information to complete authentication was not provided or was incorrect."
                .into(),
    }
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        status: 400,
        code: "InvalidParameter",
        message: message.into(),
    }
}

pub fn error_response(
    app: &AppState,
    status: u16,
    code: &str,
    message: &str,
    request_id: Option<&str>,
) -> Response {
    let request_id = request_id.map_or_else(|| app.lock().request_id(), str::to_owned);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [
            ("content-type", "application/json"),
            ("opc-request-id", request_id.as_str()),
        ],
        json!({"code": code, "message": message}).to_string(),
    )
        .into_response()
}

fn fail(app: &AppState, headers: &HeaderMap, failure: Failure) -> Response {
    error_response(
        app,
        failure.status,
        failure.code,
        &failure.message,
        header(headers, "opc-request-id"),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn ok(
    app: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    body: Option<serde_json::Value>,
    etag: Option<String>,
) -> Response {
    let request_id =
        header(headers, "opc-request-id").map_or_else(|| app.lock().request_id(), str::to_owned);
    let mut response = match body {
        Some(body) => (
            status,
            [("content-type", "application/json")],
            body.to_string(),
        )
            .into_response(),
        None => status.into_response(),
    };
    let out = response.headers_mut();
    if let Ok(v) = request_id.parse() {
        out.insert("opc-request-id", v);
    }
    if let Some(etag) = etag.and_then(|e| e.parse().ok()) {
        out.insert("etag", etag);
    }
    response
}

/// Who signed a request: the tenancy and user the key or session belongs to.
pub struct Caller {
    pub tenancy: String,
    pub user: String,
}

/// Checks the signature, by an API key or by a session token the control API issued (key id
/// `ST$<token>`); an expired session is refused with a message that says to refresh it.
fn verify_caller(
    app: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Caller, Failure> {
    let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let req = SignedRequest {
        method: method.as_str(),
        target,
        headers: headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body,
    };
    let now = app.clock.now();
    let state = app.lock();
    let signer = signature::verify(
        &req,
        |id| match &id.session {
            Some(token) => state.sessions.get(token).map(|s| s.key.clone()),
            None => {
                let user = state.users.get(&id.user)?;
                (user.tenancy == id.tenancy).then_some(())?;
                user.keys.get(&id.fingerprint).cloned()
            }
        },
        now,
    )
    .map_err(|err| {
        tracing::debug!(%err, "request refused");
        not_authenticated()
    })?;
    match &signer.session {
        Some(token) => {
            let session = state.sessions.get(token).ok_or_else(not_authenticated)?;
            if session.expires <= now {
                return Err(ApiError::SessionExpired.into());
            }
            Ok(Caller {
                tenancy: session.tenancy.clone(),
                user: session.user.clone(),
            })
        }
        None => Ok(Caller {
            tenancy: signer.tenancy,
            user: signer.user,
        }),
    }
}

/// Checks the signature, and that the signer may manage `user_id`'s tokens (a user of the same
/// tenancy). An unknown target user is 404, as OCI answers.
fn authenticate(
    app: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    user_id: &str,
) -> Result<(), Failure> {
    let caller = verify_caller(app, method, uri, headers, body)?;
    match app.lock().users.get(user_id) {
        Some(target) if target.tenancy == caller.tenancy => Ok(()),
        _ => Err(ApiError::NotFound.into()),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateDetails {
    description: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateDetails {
    #[serde(default)]
    description: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body)
        .map_err(|err| invalid(format!("The request body is not valid: {err}")))
}

pub async fn create(
    State(app): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        authenticate(&app, &method, &uri, &headers, &body, &user_id)?;
        let details: CreateDetails = parse(&body)?;
        let now = app.clock.now();
        let retry = header(&headers, "opc-retry-token");
        Ok::<_, Failure>(
            app.lock()
                .create(&user_id, &details.description, retry, &body, now)?,
        )
    })();
    match result {
        Ok((token, etag)) => ok(&app, &headers, StatusCode::OK, Some(token), Some(etag)),
        Err(failure) => fail(&app, &headers, failure),
    }
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        authenticate(&app, &method, &uri, &headers, &body, &user_id)?;
        let page = query_param(&uri, "page");
        let mut state = app.lock();
        let items = match state.list(&user_id)? {
            serde_json::Value::Array(items) => items,
            _ => Vec::new(),
        };
        Ok::<_, Failure>(state.page(items, page.as_deref())?)
    })();
    match result {
        Ok((list, next)) => {
            with_next_page(ok(&app, &headers, StatusCode::OK, Some(list), None), next)
        }
        Err(failure) => fail(&app, &headers, failure),
    }
}

pub async fn update(
    State(app): State<Arc<AppState>>,
    Path((user_id, token_id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        authenticate(&app, &method, &uri, &headers, &body, &user_id)?;
        let details: UpdateDetails = parse(&body)?;
        Ok::<_, Failure>(app.lock().update(
            &user_id,
            &token_id,
            details.description.as_deref(),
            header(&headers, "if-match"),
        )?)
    })();
    match result {
        Ok((token, etag)) => ok(&app, &headers, StatusCode::OK, Some(token), Some(etag)),
        Err(failure) => fail(&app, &headers, failure),
    }
}

pub async fn delete(
    State(app): State<Arc<AppState>>,
    Path((user_id, token_id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        authenticate(&app, &method, &uri, &headers, &body, &user_id)?;
        let now = app.clock.now();
        Ok::<_, Failure>(app.lock().delete(
            &user_id,
            &token_id,
            header(&headers, "if-match"),
            now,
        )?)
    })();
    match result {
        Ok(()) => ok(&app, &headers, StatusCode::NO_CONTENT, None, None),
        Err(failure) => fail(&app, &headers, failure),
    }
}

pub async fn not_found(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    fail(
        &app,
        &headers,
        Failure {
            status: 404,
            code: "NotFound",
            message: "The requested resource was not found.".into(),
        },
    )
}

/// A query parameter, decoded as a form value (`%XX` and `+`).
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

fn with_next_page(mut response: Response, next: Option<String>) -> Response {
    if let Some(next) = next.and_then(|n| n.parse().ok()) {
        response.headers_mut().insert("opc-next-page", next);
    }
    response
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateUserDetails {
    compartment_id: String,
    name: String,
    description: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    freeform_tags: Option<serde_json::Value>,
    #[serde(default)]
    #[allow(dead_code)]
    defined_tags: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateUserDetails {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

pub async fn create_user(
    State(app): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        let caller = verify_caller(&app, &method, &uri, &headers, &body)?;
        let details: CreateUserDetails = parse(&body)?;
        let now = app.clock.now();
        let retry = header(&headers, "opc-retry-token");
        Ok::<_, Failure>(app.lock().create_user(
            &caller.tenancy,
            crate::state::NewUser {
                compartment_id: &details.compartment_id,
                name: &details.name,
                description: &details.description,
                email: details.email.as_deref(),
            },
            retry,
            &body,
            now,
        )?)
    })();
    match result {
        Ok((user, etag)) => ok(&app, &headers, StatusCode::OK, Some(user), Some(etag)),
        Err(failure) => fail(&app, &headers, failure),
    }
}

pub async fn list_users(
    State(app): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        let caller = verify_caller(&app, &method, &uri, &headers, &body)?;
        let compartment = query_param(&uri, "compartmentId")
            .ok_or_else(|| invalid("compartmentId is required."))?;
        let name = query_param(&uri, "name");
        let page = query_param(&uri, "page");
        let mut state = app.lock();
        let items = state.list_users(&caller.tenancy, &compartment, name.as_deref())?;
        Ok::<_, Failure>(state.page(items, page.as_deref())?)
    })();
    match result {
        Ok((list, next)) => {
            with_next_page(ok(&app, &headers, StatusCode::OK, Some(list), None), next)
        }
        Err(failure) => fail(&app, &headers, failure),
    }
}

pub async fn get_user(
    State(app): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        let caller = verify_caller(&app, &method, &uri, &headers, &body)?;
        Ok::<_, Failure>(app.lock().get_user(&caller.tenancy, &user_id)?)
    })();
    match result {
        Ok((user, etag)) => ok(&app, &headers, StatusCode::OK, Some(user), Some(etag)),
        Err(failure) => fail(&app, &headers, failure),
    }
}

pub async fn update_user(
    State(app): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        let caller = verify_caller(&app, &method, &uri, &headers, &body)?;
        let details: UpdateUserDetails = parse(&body)?;
        Ok::<_, Failure>(app.lock().update_user(
            &caller.tenancy,
            &user_id,
            details.description.as_deref(),
            details.email.as_deref(),
            header(&headers, "if-match"),
        )?)
    })();
    match result {
        Ok((user, etag)) => ok(&app, &headers, StatusCode::OK, Some(user), Some(etag)),
        Err(failure) => fail(&app, &headers, failure),
    }
}

pub async fn delete_user(
    State(app): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        let caller = verify_caller(&app, &method, &uri, &headers, &body)?;
        let now = app.clock.now();
        Ok::<_, Failure>(app.lock().delete_user(
            &caller.tenancy,
            &user_id,
            header(&headers, "if-match"),
            now,
        )?)
    })();
    match result {
        Ok(()) => ok(&app, &headers, StatusCode::NO_CONTENT, None, None),
        Err(failure) => fail(&app, &headers, failure),
    }
}
