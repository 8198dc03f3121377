//! The URL table of the LXD API and of the control API.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::{AppState, control, handlers};

pub fn api(app: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/1.0",
            get(handlers::root)
                .put(handlers::put_root)
                .patch(handlers::patch_root),
        )
        .route(
            "/1.0/certificates",
            get(handlers::list_certificates).post(handlers::post_certificates),
        )
        .route(
            "/1.0/certificates/{fingerprint}",
            get(handlers::get_certificate).delete(handlers::delete_certificate),
        )
        .route(
            "/1.0/operations",
            get(handlers::list_operations).post(handlers::not_implemented),
        )
        .route(
            "/1.0/operations/{id}",
            get(handlers::get_operation)
                .delete(handlers::delete_operation)
                .put(handlers::not_implemented),
        )
        .route("/1.0/operations/{id}/wait", get(handlers::wait_operation))
        .route("/1.0/events", get(handlers::events))
        .route("/1.0/projects", get(handlers::list_projects))
        .route("/1.0/projects/{name}", get(handlers::get_project))
        .route("/", get(handlers::versions))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            handlers::date_header,
        ))
        .with_state(app)
}

/// The kit's common control routes plus the fake's own.
pub fn control(app: Arc<AppState>) -> Router {
    let own = Router::new()
        .route("/_fake/restart", post(control::restart))
        .route("/_fake/profile", post(control::profile))
        .route("/_fake/consume", post(control::consume))
        .route("/_fake/config", axum::routing::patch(control::config));
    fake_kit::control::routes(app, own)
}
