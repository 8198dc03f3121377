//! The URL table of the Identity API and of the control API.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};

use crate::{AppState, control, handlers};

pub fn api(app: Arc<AppState>) -> Router {
    let tokens = get(handlers::list).post(handlers::create);
    let token = put(handlers::update).delete(handlers::delete);
    let users = get(handlers::list_users).post(handlers::create_user);
    let user = get(handlers::get_user)
        .put(handlers::update_user)
        .delete(handlers::delete_user);
    Router::new()
        .route("/20160918/users", users.clone())
        .route("/20160918/users/", users)
        .route("/20160918/users/{user_id}", user)
        .route("/20160918/users/{user_id}/authTokens", tokens.clone())
        .route("/20160918/users/{user_id}/authTokens/", tokens)
        .route("/20160918/users/{user_id}/authTokens/{token_id}", token)
        .fallback(handlers::not_found)
        .with_state(app)
}

/// The kit's common control routes plus the fake's own.
pub fn control(app: Arc<AppState>) -> Router {
    let own = Router::new()
        .route("/_fake/users", post(control::add_user))
        .route("/_fake/lifecycle", post(control::lifecycle))
        .route("/_fake/poke", post(control::poke))
        .route("/_fake/token-expiry", post(control::token_expiry))
        .route("/_fake/page-size", post(control::page_size))
        .route("/_fake/sessions", post(control::issue_session));
    fake_kit::control::routes(app, own)
}
