//! LXD's response envelopes and its Operation object, with keys in the daemon's order.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use crate::state::{Operation, Profile};

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    status: &'a str,
    status_code: u16,
    operation: &'a str,
    error_code: u16,
    error: &'a str,
    metadata: serde_json::Value,
}

fn json_response(status: u16, body: &Envelope<'_>) -> Response {
    text_response(status, serde_json::to_string(body).unwrap_or_default())
}

pub fn sync(metadata: serde_json::Value) -> Response {
    sync_status(200, metadata)
}

pub fn sync_status(http: u16, metadata: serde_json::Value) -> Response {
    json_response(
        http,
        &Envelope {
            kind: "sync",
            status: "Success",
            status_code: 200,
            operation: "",
            error_code: 0,
            error: "",
            metadata,
        },
    )
}

/// A success envelope around metadata that is already JSON text; the same bytes as [`sync`].
pub fn sync_raw(metadata: &str) -> Response {
    bytes_response(200, sync_raw_body(metadata))
}

/// The body [`sync_raw`] sends.
pub fn sync_raw_body(metadata: &str) -> axum::body::Bytes {
    let mut text = String::with_capacity(SYNC_PREFIX.len() + metadata.len() + 1);
    text.push_str(SYNC_PREFIX);
    text.push_str(metadata);
    text.push('}');
    text.into()
}

/// A success envelope whose whole body is already rendered.
pub fn bytes_response(status: u16, body: axum::body::Bytes) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

const SYNC_PREFIX: &str = r#"{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":"#;

fn text_response(status: u16, text: String) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        text,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn async_op(op: &Operation, profile: Profile) -> Response {
    let location = format!("/1.0/operations/{}", op.id);
    let head = serde_json::to_string(&location).unwrap_or_default();
    let metadata = operation_text(op, profile);
    let text = format!(
        r#"{{"type":"async","status":"Operation created","status_code":100,"operation":{head},"error_code":0,"error":"","metadata":{metadata}}}"#
    );
    let mut response = text_response(202, text);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

pub fn error(status: u16, text: &str) -> Response {
    error_over(status, status, text)
}

/// An error envelope with `error_code` `code` sent with HTTP status `http` (Incus answers a
/// `/wait` that timed out with HTTP 200 and `error_code` 500).
pub fn error_over(http: u16, code: u16, text: &str) -> Response {
    let mut response = json_response(
        http,
        &Envelope {
            kind: "error",
            status: "",
            status_code: 0,
            operation: "",
            error_code: code,
            error: text,
            metadata: serde_json::Value::Null,
        },
    );
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[derive(Serialize)]
struct OperationJson<'a> {
    id: &'a str,
    class: &'a str,
    description: &'a str,
    created_at: String,
    updated_at: String,
    status: &'a str,
    status_code: u16,
    /// `null` on LXD, `{}` on Incus.
    resources: Option<Empty>,
    metadata: Option<TokenJson<'a>>,
    may_cancel: bool,
    err: &'a str,
    location: &'a str,
}

/// Serialises as `{}`.
#[derive(Serialize)]
struct Empty {}

/// The `request` a token operation echoes: LXD's (`…certificate, password, token`, and
/// `trust_token` on newer LXD) or Incus's (`…certificate, description, trust_token, token`).
#[derive(Serialize)]
#[serde(untagged)]
enum RequestJson<'a> {
    Lxd(&'a crate::state::CertificatesPost),
    Incus {
        name: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        restricted: bool,
        projects: &'a [String],
        certificate: &'a str,
        description: &'a str,
        trust_token: &'a str,
        token: bool,
    },
}

impl<'a> RequestJson<'a> {
    fn new(request: &'a crate::state::CertificatesPost, profile: Profile) -> RequestJson<'a> {
        match profile {
            Profile::V5_0 | Profile::V6 => RequestJson::Lxd(request),
            Profile::Incus6_0 => RequestJson::Incus {
                name: &request.name,
                kind: &request.kind,
                restricted: request.restricted,
                projects: &request.projects,
                certificate: &request.certificate,
                description: &request.description,
                trust_token: request.trust_token.as_deref().unwrap_or_default(),
                token: request.token,
            },
        }
    }
}

/// A token operation's metadata; the daemon emits its keys sorted.
#[derive(Serialize)]
struct TokenJson<'a> {
    addresses: &'a [String],
    #[serde(rename = "expiresAt", skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    fingerprint: &'a str,
    request: RequestJson<'a>,
    secret: &'a str,
}

/// An HTTP date (`Thu, 03 Dec 2026 10:05:49 GMT`), as LXD sends in `Date`.
pub fn http_date(at: ::time::OffsetDateTime) -> String {
    let format = ::time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.to_offset(::time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

pub fn time(at: ::time::OffsetDateTime) -> String {
    at.to_offset(::time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn render_operation(op: &Operation, profile: Profile) -> String {
    let metadata = op.token.as_ref().map(|meta| TokenJson {
        addresses: &meta.addresses,
        expires_at: meta.expires_at.map(time),
        fingerprint: &meta.fingerprint,
        request: RequestJson::new(&meta.request, profile),
        secret: &meta.secret,
    });
    let description = match (op.class, profile) {
        ("token", Profile::V6) => "Certificate add token",
        _ => op.description,
    };
    serde_json::to_string(&OperationJson {
        id: &op.id,
        class: op.class,
        description,
        created_at: time(op.created_at),
        updated_at: time(op.created_at),
        status: match op.status {
            crate::state::Status::Running => "Running",
            crate::state::Status::Cancelled => "Cancelled",
            crate::state::Status::Success => "Success",
        },
        status_code: op.status.code(),
        resources: (profile == Profile::Incus6_0).then_some(Empty {}),
        metadata,
        may_cancel: op.class == "token",
        err: "",
        location: "none",
    })
    .unwrap_or_default()
}

/// The operation's compact JSON, rendered once and kept on the operation until it changes.
/// Nothing in it depends on the time of the request.
pub fn operation_text(op: &Operation, profile: Profile) -> std::borrow::Cow<'_, str> {
    let (cached_for, text) = op
        .rendered
        .get_or_init(|| (profile, render_operation(op, profile).into_boxed_str()));
    if *cached_for == profile {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(render_operation(op, profile))
    }
}

pub fn operation_json(op: &Operation, profile: Profile) -> serde_json::Value {
    serde_json::from_str(&operation_text(op, profile)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{CertificatesPost, State};

    async fn body(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }

    fn state(profile: Profile) -> (State, Operation) {
        let now = ::time::OffsetDateTime::UNIX_EPOCH + ::time::Duration::days(20_000);
        let mut state = State::new(profile, 7, "127.0.0.1:8443".into(), "ab".into(), now);
        let config = [
            ("core.https_address".to_owned(), "127.0.0.1:8443".to_owned()),
            ("core.remote_token_expiry".to_owned(), "1H".to_owned()),
        ];
        state.set_config(config.into(), false).unwrap_or_default();
        let req = CertificatesPost {
            name: "n\"ame".into(),
            kind: "client".into(),
            projects: vec!["default".into()],
            token: true,
            ..Default::default()
        };
        let op = state.create_token(req, now).ok();
        let op = op.unwrap_or_else(|| panic!("a token operation"));
        (state, op)
    }

    /// LXD 6 describes a token operation as "Certificate add token"; LXD 5.0 and Incus say
    /// "Executing operation". An operation rendered for one profile and shown for another is
    /// rendered again, not served from the first one's cache.
    #[test]
    fn each_profile_renders_its_own_words() {
        for (profile, words) in [
            (Profile::V5_0, "Executing operation"),
            (Profile::V6, "Certificate add token"),
            (Profile::Incus6_0, "Executing operation"),
        ] {
            let (_, op) = state(profile);
            assert_eq!(operation_json(&op, profile)["description"], words);
        }
        let (_, op) = state(Profile::V5_0);
        assert!(operation_json(&op, Profile::V5_0)["resources"].is_null());
        let incus = operation_json(&op, Profile::Incus6_0);
        assert_eq!(incus["resources"], serde_json::json!({}));
        assert_eq!(
            operation_json(&op, Profile::V6)["description"],
            "Certificate add token"
        );
        assert_eq!(
            operation_text(&op, Profile::V5_0),
            render_operation(&op, Profile::V5_0),
            "the first profile's text stays cached"
        );
    }

    /// The raw envelopes give the bytes the generic ones give.
    #[tokio::test]
    async fn raw_envelopes_match_the_generic_ones() {
        for profile in [Profile::V5_0, Profile::V6, Profile::Incus6_0] {
            let (mut state, op) = state(profile);
            let generic = body(json_response(
                202,
                &Envelope {
                    kind: "async",
                    status: "Operation created",
                    status_code: 100,
                    operation: &format!("/1.0/operations/{}", op.id),
                    error_code: 0,
                    error: "",
                    metadata: operation_json(&op, profile),
                },
            ))
            .await;
            assert_eq!(body(async_op(&op, profile)).await, generic);
            let value = operation_json(&op, profile);
            let text = operation_text(&op, profile).into_owned();
            assert_eq!(body(sync_raw(&text)).await, body(sync(value)).await);
            // A change empties the cache: the cancelled operation renders as cancelled.
            let before = state.operation(&op.id).map(|o| operation_json(o, profile));
            assert_eq!(
                before.ok().map(|v| v["status"].clone()),
                Some(serde_json::json!("Running"))
            );
            let now = op.created_at;
            assert!(state.cancel(&op.id, now).is_ok());
            let listed = state.operation(&op.id).map(|o| operation_json(o, profile));
            assert_eq!(
                listed.ok().map(|v| v["status"].clone()),
                Some(serde_json::json!("Cancelled"))
            );
        }
    }
}
