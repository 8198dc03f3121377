//! LXD's response envelopes and its Operation object, with keys in the daemon's order.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
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
    let text = serde_json::to_string(body).unwrap_or_default();
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

pub fn async_op(op: &Operation, profile: Profile) -> Response {
    let location = format!("/1.0/operations/{}", op.id);
    let mut response = json_response(
        202,
        &Envelope {
            kind: "async",
            status: "Operation created",
            status_code: 100,
            operation: &location,
            error_code: 0,
            error: "",
            metadata: operation_json(op, profile),
        },
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

pub fn error(status: u16, text: &str) -> Response {
    let mut response = json_response(
        status,
        &Envelope {
            kind: "error",
            status: "",
            status_code: 0,
            operation: "",
            error_code: status,
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
    resources: serde_json::Value,
    metadata: serde_json::Value,
    may_cancel: bool,
    err: &'a str,
    location: &'a str,
}

pub fn time(at: ::time::OffsetDateTime) -> String {
    at.to_offset(::time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

pub fn operation_json(op: &Operation, profile: Profile) -> serde_json::Value {
    let metadata = match &op.token {
        // serde_json's map keeps keys sorted, as the daemon emits them.
        Some(meta) => {
            let mut m = serde_json::Map::new();
            m.insert("addresses".into(), json!(meta.addresses));
            if let Some(expires) = meta.expires_at {
                m.insert("expiresAt".into(), json!(time(expires)));
            }
            m.insert("fingerprint".into(), json!(meta.fingerprint));
            m.insert(
                "request".into(),
                serde_json::to_value(&meta.request).unwrap_or_default(),
            );
            m.insert("secret".into(), json!(meta.secret));
            serde_json::Value::Object(m)
        }
        None => serde_json::Value::Null,
    };
    let description = match (op.class, profile) {
        ("token", Profile::V6) => "Certificate add token",
        _ => op.description,
    };
    serde_json::to_value(OperationJson {
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
        resources: serde_json::Value::Null,
        metadata,
        may_cancel: op.class == "token",
        err: "",
        location: "none",
    })
    .unwrap_or_default()
}
