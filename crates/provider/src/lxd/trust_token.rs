//! `lxd_trust_token`: model transitions wired to the LXD client.

use model::diag::{AttrPath, Diagnostic};
use model::lxd_trust_token::{self as m, Config, Observed, ServerToken, State};
use model::value::Value;
use time::OffsetDateTime;

use super::LxdProvider;
use crate::core::{Outcome, interrupted};
use crate::interrupt::settle;

fn server_token(t: &lxd_client::PendingToken) -> ServerToken {
    ServerToken {
        operation_id: t.operation_id.clone(),
        name: t.name.clone(),
        token: t.token.expose().to_owned(),
        expires_at: t.expires_at,
    }
}

fn failed(summary: &str, err: &lxd_client::Error) -> Vec<Diagnostic> {
    vec![Diagnostic::error(
        AttrPath::default(),
        summary,
        err.to_string(),
    )]
}

pub async fn apply(
    provider: &LxdProvider,
    prior: Option<Value>,
    planned: Option<Value>,
    _config: Value,
) -> Outcome {
    match (prior, planned) {
        (None, Some(planned)) => {
            let config = match Config::from_value(&planned) {
                Ok(c) => c,
                Err(d) => return (None, vec![d]),
            };
            let client = match provider.client(config.remote.as_deref()) {
                Ok(c) => c,
                Err(d) => return (None, d),
            };
            match settle(client.create_token(&config.name, &config.projects)).await {
                Err(_) => {
                    let detail = format!(
                        "Terraform was interrupted before the create of trust token {:?} finished, so LXD may hold a pending token of that name that Terraform does not know of. List the pending tokens (`lxc config trust list-tokens`) and revoke it if so.",
                        config.name
                    );
                    (None, interrupted(detail))
                }
                Ok(Ok(created)) => (
                    Some(m::after_create(config, &server_token(&created)).to_value()),
                    Vec::new(),
                ),
                Ok(Err(err)) => (
                    None,
                    failed(
                        &format!("Failed to create trust token {:?}", config.name),
                        &err,
                    ),
                ),
            }
        }
        (Some(prior), None) => {
            let state = match State::from_value(&prior) {
                Ok(s) => s,
                Err(d) => return (Some(prior), vec![d]),
            };
            let client = match provider.client(state.config.remote.as_deref()) {
                Ok(c) => c,
                Err(d) => return (Some(prior), d),
            };
            // A token that is no longer pending (used, expired, revoked) needs nothing.
            match settle(client.revoke(&state.operation_id)).await {
                Err(_) => (
                    Some(prior),
                    interrupted(
                        "Terraform was interrupted before LXD answered the revocation; the token stays in the state, and the next plan reads whether it is still pending.",
                    ),
                ),
                Ok(Ok(_)) => (None, Vec::new()),
                Ok(Err(err)) => (
                    Some(prior),
                    failed("Failed to revoke the trust token", &err),
                ),
            }
        }
        // Every input forces a replacement, so there is no in-place update.
        (Some(prior), Some(_)) => (Some(prior), Vec::new()),
        (None, None) => (None, Vec::new()),
    }
}

pub async fn read(provider: &LxdProvider, current: Value) -> Outcome {
    let prior = match State::from_value(&current) {
        Ok(s) => s,
        Err(d) => return (Some(current), vec![d]),
    };
    let client = match provider.client(prior.config.remote.as_deref()) {
        Ok(c) => c,
        Err(d) => return (Some(current), d),
    };
    match client.get_token(&prior.operation_id).await {
        Ok(found) => {
            let observed = found
                .as_ref()
                .map_or(Observed::Absent, |t| Observed::Pending(server_token(t)));
            (
                m::refresh(&prior, &observed, OffsetDateTime::now_utc()).map(|s| s.to_value()),
                Vec::new(),
            )
        }
        Err(err) => (
            Some(current),
            failed("Failed to read the trust token", &err),
        ),
    }
}

pub async fn import(provider: &LxdProvider, id: &str) -> Outcome {
    let id = match m::parse_import_id(id) {
        Ok(id) => id,
        Err(d) => return (None, vec![d]),
    };
    let client = match provider.client(None) {
        Ok(c) => c,
        Err(d) => return (None, d),
    };
    match client.get_token(&id).await {
        Ok(Some(found)) => (
            Some(m::after_import(&server_token(&found), found.projects.clone()).to_value()),
            Vec::new(),
        ),
        Ok(None) => (
            None,
            vec![Diagnostic::error(
                AttrPath::default(),
                "Cannot import the trust token",
                format!(
                    "The LXD server has no pending trust token with operation id {id}; a token that was used, revoked or has expired cannot be imported."
                ),
            )],
        ),
        Err(err) => (None, failed("Failed to read the trust token", &err)),
    }
}
