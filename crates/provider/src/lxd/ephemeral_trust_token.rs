//! `ephemeral "lxd_trust_token"`: Open creates a token, Close revokes it if it is still pending.
//!
//! Close receives the private bytes of Open, which name the remote and the operation; the
//! token string itself is never in them.

use lxd_client::ExposeSecret;
use model::diag::{AttrPath, Diagnostic};
use model::ephemeral_lxd_trust_token::{self as m, Config, Private};
use model::lxd_trust_token::ServerToken;
use model::value::Value;

use super::LxdProvider;
use crate::core::Opened;

fn server_token(t: &lxd_client::PendingToken) -> ServerToken {
    ServerToken {
        operation_id: t.operation_id.clone(),
        name: t.name.clone(),
        token: t.token.expose_secret().to_owned(),
        expires_at: t.expires_at,
    }
}

pub async fn open(provider: &LxdProvider, config: Value) -> Opened {
    // Terraform validates before it opens; another client may not, and bad input must change
    // nothing.
    let invalid = m::validate(&config);
    if model::diag::has_errors(&invalid) {
        return Opened::failed(invalid);
    }
    let config = match Config::from_value(&config) {
        Ok(c) => c,
        Err(d) => return Opened::failed(vec![d]),
    };
    let client = match provider.client(config.remote.as_deref()) {
        Ok(c) => c,
        Err(d) => return Opened::failed(d),
    };
    match client.create_token(&config.name, &config.projects).await {
        Ok(created) => {
            let created = server_token(&created);
            let private = Private::new(&config, &created);
            tracing::info!(
                operation_id = %private.operation_id,
                revoke_on_close = private.revoke_on_close,
                "ephemeral trust token opened"
            );
            Opened {
                result: Some(m::result(&config, &created)),
                private: private.to_bytes(),
                diagnostics: Vec::new(),
            }
        }
        Err(err) => Opened::failed(vec![Diagnostic::error(
            AttrPath::default(),
            format!("Failed to create trust token {:?}", config.name),
            err.to_string(),
        )]),
    }
}

pub async fn close(provider: &LxdProvider, private: &[u8]) -> Vec<Diagnostic> {
    let private = match Private::from_bytes(private) {
        Ok(p) => p,
        Err(d) => return vec![d],
    };
    if !private.revoke_on_close {
        tracing::info!(operation_id = %private.operation_id, "ephemeral trust token kept (revoke_on_close = false)");
        return Vec::new();
    }
    let client = match provider.client(private.remote.as_deref()) {
        Ok(c) => c,
        Err(d) => return d,
    };
    // A token that was used, has expired or is gone needs nothing: `revoke` says Ok(false).
    match client.revoke(&private.operation_id).await {
        Ok(revoked) => {
            tracing::info!(operation_id = %private.operation_id, revoked, "ephemeral trust token closed");
            Vec::new()
        }
        Err(err) => vec![Diagnostic::error(
            AttrPath::default(),
            "Failed to revoke the ephemeral trust token",
            format!(
                "The trust token {:?} (LXD operation {}) made for this run could not be revoked: {err}. It stays usable until it is used or expires; revoke it with `lxc config trust revoke-token {}`.",
                private.name, private.operation_id, private.name
            ),
        )],
    }
}
