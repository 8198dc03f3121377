//! `lxd_trust_tokens`: the pending tokens of a remote, listed without their secrets.

use model::lxd_trust_tokens::{self as m, Config, Listed};
use model::value::Value;

use super::LxdProvider;
use crate::core::Outcome;

pub async fn read(provider: &LxdProvider, config: Value) -> Outcome {
    let config = match Config::from_value(&config) {
        Ok(c) => c,
        Err(d) => return (None, vec![d]),
    };
    let client = match provider.client(config.remote.as_deref()) {
        Ok(c) => c,
        Err(d) => return (None, d),
    };
    let listed = match client.list_tokens().await {
        Ok(tokens) => tokens,
        Err(err) => return (None, vec![m::listing_failed(err.to_string())]),
    };
    let now = match client.server_time().await {
        Ok(now) => now,
        Err(err) => return (None, vec![m::listing_failed(err.to_string())]),
    };
    let listed: Vec<Listed> = listed
        .into_iter()
        .map(|t| Listed {
            name: t.name,
            operation_id: t.operation_id,
            projects: t.projects,
            expires_at: t.expires_at,
        })
        .collect();
    (Some(m::read(&config, &listed, now)), Vec::new())
}
