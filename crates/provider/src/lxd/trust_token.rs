//! `lxd_trust_token`: model transitions wired to the LXD client.

use lxd_client::ExposeSecret;
use lxd_client::client::{TokenLook, TokenOperation};
use model::diag::{AttrPath, Diagnostic};
use model::lxd_trust_token::{
    self as m, Baseline, Config, Observation, Operation, ServerToken, State,
};
use model::value::Value;

use super::LxdProvider;
use crate::core::{Outcome, interrupted};
use crate::interrupt::settle;

fn server_token(t: &lxd_client::PendingToken) -> ServerToken {
    ServerToken {
        operation_id: t.operation_id.clone(),
        name: t.name.clone(),
        token: t.token.expose_secret().to_owned(),
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

fn observation(look: TokenLook) -> Observation {
    Observation {
        operation: match &look.operation {
            TokenOperation::Running(t) => Operation::Running(server_token(t)),
            TokenOperation::Finished => Operation::Cancelled,
            TokenOperation::Gone => Operation::Gone,
        },
        now: look.server_time,
        named: look.named,
        rivals: look.rivals,
    }
}

/// Checks what a new token needs from the server before it is made: projects that exist, and
/// on servers with unique identity names, a name no identity holds. Returns the record of the
/// trust store and of the pending tokens of that name, taken before the token exists, and the
/// listing it came from, which the create compares with when its answer is lost.
async fn preflight(
    client: &lxd_client::Client,
    config: &Config,
) -> Result<(Baseline, lxd_client::Named), Vec<Diagnostic>> {
    if !config.projects.is_empty() {
        let known = client
            .project_names()
            .await
            .map_err(|e| failed("Failed to list the LXD projects", &e))?;
        let missing = m::missing_projects(&config.projects, &known);
        if !missing.is_empty() {
            return Err(missing);
        }
    }
    // One listing of the trust store and the pending tokens, shared with the creates and looks
    // waiting at the same time (Terraform applies ten at once), so that an apply lists the
    // server about once per wave of creates rather than twice per create. The create takes
    // its pending tokens as those that were there before it, so it lists nothing itself.
    let named = client
        .named_now(&config.name)
        .await
        .map_err(|e| failed("Failed to list the trust store and the trust tokens", &e))?;
    let kind = client
        .server_kind()
        .await
        .map_err(|e| failed("Failed to read the server's version", &e))?;
    if m::enforces_unique_names(&kind.server, &kind.version)
        && let Some(taken) = named.identities.first()
    {
        return Err(vec![m::name_taken(&config.name, &taken.fingerprint)]);
    }
    let baseline = Baseline {
        named: named
            .identities
            .iter()
            .map(|c| c.fingerprint.clone())
            .collect(),
        rivals: named.tokens.clone(),
        expires_at: None,
    };
    Ok((baseline, named))
}

/// How long a plan waits for the server to answer its name check before it goes on without.
const PLAN_CHECK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// The plan-time half of the apply's preflight: a plan that makes a token restricted to a
/// project the server does not have, or whose name an identity holds on a server with unique
/// identity names, is an error on that attribute before anything is applied. Only a proven conflict is reported: a server that cannot be asked now (not
/// configured, unreachable, slow) leaves the check to the apply.
///
/// Terraform plans a replacement twice: with the prior state (checked here, knowing which
/// consumer the replacement removes first), then with a null prior state and the private
/// state of the first call, which is never empty for a token made or imported by this
/// provider. That second call is not checked again: it cannot know what the first removes.
pub async fn check_plan(
    provider: &LxdProvider,
    prior: Option<&Value>,
    prior_private: &[u8],
    plan: &model::plan::Plan,
) -> Vec<Diagnostic> {
    if prior.is_none() && !prior_private.is_empty() {
        return Vec::new();
    }
    let Some(check) = m::name_check(prior, plan) else {
        return Vec::new();
    };
    let Ok(client) = provider.client(check.remote.as_deref()) else {
        return Vec::new();
    };
    let missing = async {
        if check.projects.is_empty() {
            return Vec::new();
        }
        match client.project_names().await {
            Ok(known) => m::missing_projects(&check.projects, &known),
            Err(_) => Vec::new(),
        }
    };
    let taken = async {
        let kind = client.server_kind().await.ok()?;
        if !m::enforces_unique_names(&kind.server, &kind.version) {
            return None;
        }
        client
            .list_certificates()
            .await
            .ok()?
            .into_iter()
            .find(|c| c.name == check.name && Some(&c.fingerprint) != check.removed_first.as_ref())
    };
    let checks = async {
        let mut diags = missing.await;
        if let Some(holder) = taken.await {
            diags.push(m::name_taken(&check.name, &holder.fingerprint));
        }
        diags
    };
    tokio::time::timeout(PLAN_CHECK_PATIENCE, checks)
        .await
        .unwrap_or_default()
}

async fn create(provider: &LxdProvider, planned: &Value) -> (Outcome, Vec<u8>) {
    let config = match Config::from_value(planned) {
        Ok(c) => c,
        Err(d) => return ((None, vec![d]), Vec::new()),
    };
    let client = match provider.client(config.remote.as_deref()) {
        Ok(c) => c,
        Err(d) => return ((None, d), Vec::new()),
    };
    let (record, named) = match preflight(&client, &config).await {
        Ok(r) => r,
        Err(d) => return ((None, d), Vec::new()),
    };
    match settle(client.create_token_beside(&config.name, &config.projects, &named)).await {
        Err(_) => {
            let detail = format!(
                "Terraform was interrupted before the create of trust token {:?} finished, so LXD may hold a pending token of that name that Terraform does not know of. List the pending tokens (`lxc config trust list-tokens`) and revoke it if so.",
                config.name
            );
            ((None, interrupted(detail)), Vec::new())
        }
        Ok(Ok(created)) => {
            let mut record = record;
            record.rivals.remove(&created.operation_id);
            record.expires_at = created.expires_at;
            (
                (
                    Some(m::after_create(config, &server_token(&created)).to_value()),
                    Vec::new(),
                ),
                record.to_bytes(),
            )
        }
        Ok(Err(err)) => {
            let summary = format!("Failed to create trust token {:?}", config.name);
            let mut diags = failed(&summary, &err);
            if err.is_ambiguous() {
                diags[0].detail = format!(
                    "{}\n\nThe request may have reached LXD before its answer was lost, and no new pending token named {:?} could be told apart afterwards, so none was adopted and Terraform records none. If `lxc config trust list-tokens` shows a token of that name that no Terraform state holds, revoke it (`lxc config trust revoke-token`).",
                    diags[0].detail, config.name
                );
            }
            ((None, diags), Vec::new())
        }
    }
}

/// Destroy: revokes the token if the server still lists it, then (when asked) removes the
/// consumer it let in, by fingerprint.
async fn destroy(provider: &LxdProvider, prior: Value) -> Outcome {
    let state = match State::from_value(&prior) {
        Ok(s) => s,
        Err(d) => return (Some(prior), vec![d]),
    };
    let client = match provider.client(state.config.remote.as_deref()) {
        Ok(c) => c,
        Err(d) => return (Some(prior), d),
    };
    // A token that is no longer pending (used, expired, revoked) needs no revocation.
    match settle(client.revoke(&state.operation_id)).await {
        Err(_) => {
            return (
                Some(prior),
                interrupted(
                    "Terraform was interrupted before LXD answered the revocation; the token stays in the state, and the next plan reads whether it is still pending.",
                ),
            );
        }
        Ok(Err(err)) => {
            return (
                Some(prior),
                failed("Failed to revoke the trust token", &err),
            );
        }
        Ok(Ok(_)) => {}
    }
    if let Some(fingerprint) = m::consumer_to_remove(&state) {
        match settle(client.delete_certificate(fingerprint)).await {
            Err(_) => {
                return (
                    Some(prior),
                    interrupted(format!(
                        "Terraform was interrupted before LXD answered the removal of the consumer {fingerprint} from the trust store; the token stays in the state, and the next destroy tries again."
                    )),
                );
            }
            Ok(Err(err)) => {
                return (
                    Some(prior),
                    failed(
                        &format!(
                            "Failed to remove the consumer {fingerprint} from the trust store"
                        ),
                        &err,
                    ),
                );
            }
            Ok(Ok(_)) => {}
        }
    }
    (None, Vec::new())
}

pub async fn apply(
    provider: &LxdProvider,
    prior: Option<Value>,
    planned: Option<Value>,
    private: Vec<u8>,
) -> (Outcome, Vec<u8>) {
    match (prior, planned) {
        (None, Some(planned)) => create(provider, &planned).await,
        (Some(prior), None) => (destroy(provider, prior).await, Vec::new()),
        // Only `remove_consumer_on_destroy` changes in place; every other input replaces.
        (Some(prior), Some(planned)) => {
            let updated = State::from_value(&prior)
                .and_then(|state| Ok(m::after_update(&state, &Config::from_value(&planned)?)));
            match updated {
                Ok(state) => ((Some(state.to_value()), Vec::new()), private),
                Err(d) => ((Some(prior), vec![d]), private),
            }
        }
        (None, None) => ((None, Vec::new()), private),
    }
}

pub async fn read(provider: &LxdProvider, current: Value, private: Vec<u8>) -> (Outcome, Vec<u8>) {
    let prior = match State::from_value(&current) {
        Ok(s) => s,
        Err(d) => return ((Some(current), vec![d]), private),
    };
    // A final status never changes: nothing to ask the server.
    if prior.status.is_final() {
        return ((Some(current), Vec::new()), private);
    }
    let client = match provider.client(prior.config.remote.as_deref()) {
        Ok(c) => c,
        Err(d) => return ((Some(current), d), private),
    };
    let look = match client
        .look_at_token(&prior.operation_id, &prior.config.name)
        .await
    {
        Ok(look) => look,
        Err(err) => {
            return (
                (
                    Some(current),
                    failed("Failed to read the trust token", &err),
                ),
                private,
            );
        }
    };
    let record = Baseline::from_bytes(&private);
    let (next, record) = m::refresh(&prior, record.as_ref(), &observation(look));
    let warnings = m::refresh_warnings(&prior, &next);
    let private = record.map_or(private, |r| r.to_bytes());
    ((Some(next.to_value()), warnings), private)
}

pub async fn import(provider: &LxdProvider, id: &str) -> (Outcome, Vec<u8>) {
    let id = match m::parse_import_id(id) {
        Ok(id) => id,
        Err(d) => return ((None, vec![d]), Vec::new()),
    };
    let client = match provider.client(None) {
        Ok(c) => c,
        Err(d) => return ((None, d), Vec::new()),
    };
    let cannot = || {
        vec![Diagnostic::error(
            AttrPath::default(),
            "Cannot import the trust token",
            format!(
                "The LXD server has no pending trust token with operation id {id}; a token that was used, revoked or has expired cannot be imported."
            ),
        )]
    };
    let name = match client.get_token(&id).await {
        Ok(Some(found)) => found.name,
        Ok(None) => return ((None, cannot()), Vec::new()),
        Err(err) => {
            return (
                (None, failed("Failed to read the trust token", &err)),
                Vec::new(),
            );
        }
    };
    // While the token is pending, nothing in the trust store stems from it: the record, from
    // a look that found it still running after reading the trust store.
    let look = match client.look_at_token(&id, &name).await {
        Ok(look) => look,
        Err(err) => {
            return (
                (None, failed("Failed to read the trust token", &err)),
                Vec::new(),
            );
        }
    };
    let TokenOperation::Running(found) = &look.operation else {
        return ((None, cannot()), Vec::new());
    };
    let record = Baseline {
        named: look.named.clone(),
        rivals: look.rivals.clone(),
        expires_at: found.expires_at,
    };
    let state = m::after_import(
        &server_token(found),
        found.projects.clone(),
        look.server_time,
    );
    ((Some(state.to_value()), Vec::new()), record.to_bytes())
}
