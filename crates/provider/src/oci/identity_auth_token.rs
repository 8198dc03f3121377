//! `oci_identity_auth_token`: model transitions wired to the OCI client.

use model::diag::Diagnostic;
use model::oci_identity_auth_token::{self as m, Config, State, Timeouts};
use model::value::Value;
use oci_client::Client;

use model::oci_token_limit::{self as limit, Replacing};
use model::plan::{Action, Plan};

use super::{client_error, held_token, server_token};
use crate::core::{Outcome, interrupted};
use crate::interrupt::{settle, unless_interrupted};

fn invalid(d: Diagnostic) -> Outcome {
    (None, vec![d])
}

pub async fn apply(
    client: &Client,
    prior: Option<Value>,
    planned: Option<Value>,
    _config: Value,
) -> Outcome {
    match (prior, planned) {
        (None, Some(planned)) => create(client, &planned).await,
        (Some(prior), Some(planned)) => update(client, &prior, &planned).await,
        (Some(prior), None) => delete(client, &prior).await,
        (None, None) => (None, Vec::new()),
    }
}

async fn create(client: &Client, planned: &Value) -> Outcome {
    let config = match Config::from_value(planned) {
        Ok(c) => c,
        Err(d) => return invalid(d),
    };
    let before = super::ids_before_create(client, &config.user_id).await;
    let created = match settle(client.create_auth_token(&config.user_id, &config.description)).await
    {
        Ok(Ok(t)) => t,
        Ok(Err(err)) if err.may_be_token_limit() => {
            return (
                None,
                vec![limit_reached(client, &config.user_id, &err).await],
            );
        }
        Ok(Err(err)) => {
            let mut diags = vec![client_error("Could not create the auth token", &err)];
            if super::create_may_have_acted(&err) {
                // Terraform records no state for a failed create: nothing may be left behind.
                diags.extend(
                    super::undo_lost_create(
                        client,
                        &config.user_id,
                        &config.description,
                        before.as_deref(),
                    )
                    .await,
                );
            }
            return (None, diags);
        }
        Err(_) => {
            let detail = format!(
                "Terraform was interrupted before OCI answered the create, so OCI may have made an auth token for user {} with description {:?} that Terraform does not know of. List that user's auth tokens and delete it if so.",
                config.user_id, config.description
            );
            return (None, interrupted(detail));
        }
    };
    let mut state = m::after_create(&config, &server_token(&created));
    if created.lifecycle_state != "ACTIVE" {
        let limit = Timeouts::create(config.timeouts.as_ref());
        match unless_interrupted(client.wait_for_state(
            &config.user_id,
            &created.id,
            "ACTIVE",
            limit,
        ))
        .await
        {
            // The token exists: it goes into the state, which Terraform keeps (tainted).
            Err(_) => {
                let detail = format!(
                    "Terraform was interrupted while waiting for auth token {} to become ACTIVE; it was created and is recorded in the state.",
                    created.id
                );
                return (Some(state.to_value()), interrupted(detail));
            }
            Ok(Ok(found)) => {
                let found = found.map(|t| server_token(&t));
                state = m::refresh(&state, found.as_ref()).unwrap_or(state);
            }
            // The token exists: keep it in state so that it is not lost, and say what happened.
            Ok(Err(err)) => {
                return (
                    Some(state.to_value()),
                    vec![client_error("The auth token did not become ACTIVE", &err)],
                );
            }
        }
    }
    (Some(state.to_value()), Vec::new())
}

async fn update(client: &Client, prior: &Value, planned: &Value) -> Outcome {
    let (prior_state, config) = match (State::from_value(prior), Config::from_value(planned)) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(d), _) | (_, Err(d)) => return (Some(prior.clone()), vec![d]),
    };
    if prior_state.description != config.description {
        let updated = settle(client.update_auth_token(
            &config.user_id,
            &prior_state.id,
            &config.description,
            None,
        ))
        .await;
        let diags = match updated {
            Ok(Ok(_)) => Vec::new(),
            Ok(Err(err)) => vec![client_error("Could not update the auth token", &err)],
            Err(_) => interrupted(
                "Terraform was interrupted before OCI answered the update; the next plan reads the description OCI holds.",
            ),
        };
        if !diags.is_empty() {
            return (Some(prior.clone()), diags);
        }
    }
    (
        Some(m::after_update(&prior_state, &config).to_value()),
        Vec::new(),
    )
}

async fn delete(client: &Client, prior: &Value) -> Outcome {
    let state = match State::from_value(prior) {
        Ok(s) => s,
        Err(d) => return (Some(prior.clone()), vec![d]),
    };
    match settle(client.delete_auth_token(&state.user_id, &state.id, None)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            return (
                Some(prior.clone()),
                vec![client_error("Could not delete the auth token", &err)],
            );
        }
        Err(_) => {
            let detail = "Terraform was interrupted before OCI answered the delete; the token stays in the state, and the next plan reads whether it still exists.";
            return (Some(prior.clone()), interrupted(detail));
        }
    }
    // OCI accepted the delete: the token leaves the state even if the wait ends early.
    let limit = Timeouts::delete(state.timeouts.as_ref());
    let waited =
        unless_interrupted(client.wait_for_state(&state.user_id, &state.id, "DELETED", limit))
            .await;
    let still = match waited {
        Ok(Ok(_)) => None,
        Ok(Err(err)) => Some(err.to_string()),
        Err(_) => Some(
            "Terraform was interrupted while waiting for OCI to finish deleting it.".to_owned(),
        ),
    };
    if let Some(detail) = still {
        return (
            None,
            vec![Diagnostic::warning(
                model::diag::AttrPath::default(),
                "The auth token is still being deleted",
                detail,
            )],
        );
    }
    (None, Vec::new())
}

pub async fn read(client: &Client, current: Value) -> Outcome {
    let prior = match State::from_value(&current) {
        Ok(s) => s,
        Err(d) => return (Some(current), vec![d]),
    };
    match client.get_auth_token(&prior.user_id, &prior.id).await {
        Ok(found) => {
            let found = found.map(|t| server_token(&t));
            (
                m::refresh(&prior, found.as_ref()).map(|s| s.to_value()),
                Vec::new(),
            )
        }
        // A list that answers 404 means the user is missing or not visible with these
        // credentials (a wrong user or a missing policy); the token stays in the state.
        Err(err) => (
            Some(current),
            vec![client_error("Could not read the auth token", &err)],
        ),
    }
}

/// The import id's two parts must be OCIDs: they go into the paths of signed requests.
pub fn import(id: &str) -> Outcome {
    let (user, token) = match m::parse_import_id(id) {
        Ok(parts) => parts,
        Err(d) => return invalid(d),
    };
    for (name, value) in [("user_id", &user), ("token_id", &token)] {
        if let Err(err) = oci_client::path::check_ocid(name, value) {
            return invalid(Diagnostic::error(
                model::diag::AttrPath::default(),
                "Invalid import id",
                format!(
                    "An oci_identity_auth_token is imported as users/{{userId}}/authTokens/{{authTokenId}}, both OCIDs; {err}."
                ),
            ));
        }
    }
    (
        Some(m::import_state(&user, &token).to_value()),
        vec![m::import_warning()],
    )
}

/// Checks OCI's two-token limit when `plan` creates a token: on a new instance (which may also
/// be the replacement of a tainted one, as Terraform plans both alike) and on the first plan of
/// a replacement, whose prior token may free a slot. Terraform drops the warnings of the
/// second plan of a replacement (the create half, without prior state), so the replacement is
/// checked on its first. A list that fails only warns: the create will say what is wrong.
pub async fn check_limit(client: &Client, prior: Option<&Value>, plan: &Plan) -> Vec<Diagnostic> {
    let replacing = match (prior, &plan.action) {
        (None, Action::Create) => Replacing::Unknown,
        (Some(prior), Action::Replace) => match prior.get("id").as_str() {
            Some(id) => Replacing::Token(id.to_owned()),
            None => Replacing::Unknown,
        },
        _ => return Vec::new(),
    };
    // An unknown user (made in the same run) has no tokens yet; a malformed one is validate's.
    let Some(user_id) = plan.planned.get("user_id").as_str() else {
        return Vec::new();
    };
    if oci_client::path::check_ocid("user_id", user_id).is_err() {
        return Vec::new();
    }
    match client.list_auth_tokens(user_id).await {
        Ok(tokens) => {
            let held: Vec<_> = tokens.iter().map(held_token).collect();
            limit::check(user_id, &held, &replacing, None)
                .into_iter()
                .collect()
        }
        Err(err) => vec![Diagnostic::warning(
            model::diag::AttrPath::attr("user_id"),
            "Could not check the auth token limit",
            format!(
                "Listing the auth tokens of user {user_id} failed, so the plan could not check OCI's limit of {} tokens per user: {err}",
                limit::TOKENS_PER_USER
            ),
        )],
    }
}

/// The error of a create OCI refused, perhaps for the limit: with the user's tokens named
/// when it was the limit, else the service's answer as it is.
pub(crate) async fn limit_reached(
    client: &Client,
    user_id: &str,
    err: &oci_client::Error,
) -> Diagnostic {
    // Without the list there is nothing to name: the service's answer is all there is.
    let Ok(tokens) = client.list_auth_tokens(user_id).await else {
        return client_error("Could not create the auth token", err);
    };
    let held: Vec<_> = tokens.iter().map(held_token).collect();
    let full = held
        .iter()
        .filter(|t| t.lifecycle_state != "DELETED")
        .count()
        >= limit::TOKENS_PER_USER;
    if full || err.is_limit_exceeded() {
        limit::at_apply(user_id, &held, &err.to_string())
    } else {
        client_error("Could not create the auth token", err)
    }
}
