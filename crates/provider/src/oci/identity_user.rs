//! `oci_identity_user`: model transitions wired to the OCI client.

use std::time::{Duration, Instant};

use model::diag::{AttrPath, Diagnostic};
use model::oci_identity_user::{self as m, Config, ServerUser, State};
use model::value::Value;
use oci_client::Client;

/// An error of the OCI client on the user's attribute it is about: a user id that is not an
/// OCID is this resource's `id`, a compartment its `compartment_id`.
fn client_error(summary: &str, err: &oci_client::Error) -> Diagnostic {
    let path = match err {
        oci_client::Error::InvalidId {
            name: "user_id", ..
        } => AttrPath::attr("id"),
        oci_client::Error::InvalidId {
            name: "compartment_id",
            ..
        } => AttrPath::attr("compartment_id"),
        _ => AttrPath::default(),
    };
    Diagnostic::error(path, summary, err.to_string())
}
use crate::core::Outcome;

fn server_user(user: &oci_client::User) -> ServerUser {
    ServerUser {
        id: user.id.clone(),
        compartment_id: user.compartment_id.clone(),
        name: user.name.clone(),
        description: user.description.clone(),
        email: user.email.clone(),
        lifecycle_state: user.lifecycle_state.clone(),
        time_created: user.time_created,
    }
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

/// Reads the user until it is in `state` (or gone, for `DELETED`), within `limit`.
async fn wait_for(
    client: &Client,
    id: &str,
    state: &str,
    limit: Duration,
) -> Result<Option<oci_client::User>, String> {
    let start = Instant::now();
    let mut interval = Duration::from_millis(200);
    loop {
        let found = client.get_user(id).await.map_err(|e| e.to_string())?;
        let seen = found.as_ref().map(|u| u.lifecycle_state.clone());
        match seen.as_deref() {
            None if state == "DELETED" => return Ok(None),
            Some(s) if s == state => return Ok(found),
            None => return Err(format!("user {id} disappeared while waiting for {state}")),
            Some(_) => {}
        }
        if start.elapsed() + interval > limit {
            return Err(format!(
                "user {id} did not reach {state} within {limit:?} (last seen {})",
                seen.unwrap_or_default()
            ));
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_secs(5));
    }
}

async fn create(client: &Client, planned: &Value) -> Outcome {
    let config = match Config::from_value(planned) {
        Ok(c) => c,
        Err(d) => return (None, vec![d]),
    };
    let checks = m::request_checks(&config);
    if !checks.is_empty() {
        return (None, checks);
    }
    let created = match client
        .create_user(
            &config.compartment_id,
            &config.name,
            &config.description,
            config.email.as_deref(),
        )
        .await
    {
        Ok(u) => u,
        Err(err) => return (None, vec![client_error("Could not create the user", &err)]),
    };
    let mut state = m::observe(&server_user(&created));
    if created.lifecycle_state != "ACTIVE" {
        match wait_for(client, &created.id, "ACTIVE", m::WAIT).await {
            Ok(Some(found)) => state = m::observe(&server_user(&found)),
            Ok(None) => {}
            // The user exists: keep it in state so that it is not lost.
            Err(detail) => {
                return (
                    Some(state.to_value()),
                    vec![Diagnostic::error(
                        AttrPath::default(),
                        "The user did not become ACTIVE",
                        detail,
                    )],
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
    if prior_state.description == config.description
        && (config.email.is_none() || config.email == prior_state.email)
    {
        return (Some(prior.clone()), Vec::new());
    }
    match client
        .update_user(
            &prior_state.id,
            &config.description,
            config.email.as_deref(),
        )
        .await
    {
        Ok(updated) => (
            Some(m::after_update(&server_user(&updated)).to_value()),
            Vec::new(),
        ),
        Err(err) => (
            Some(prior.clone()),
            vec![client_error("Could not update the user", &err)],
        ),
    }
}

async fn delete(client: &Client, prior: &Value) -> Outcome {
    let state = match State::from_value(prior) {
        Ok(s) => s,
        Err(d) => return (Some(prior.clone()), vec![d]),
    };
    if let Err(err) = client.delete_user(&state.id).await {
        let hint = if err.status() == Some(409) {
            " A user who still holds auth tokens (or other credentials) cannot be deleted; delete them first."
        } else {
            ""
        };
        return (
            Some(prior.clone()),
            vec![Diagnostic::error(
                AttrPath::default(),
                "Could not delete the user",
                format!("{err}.{hint}"),
            )],
        );
    }
    if let Err(detail) = wait_for(client, &state.id, "DELETED", m::WAIT).await {
        return (
            None,
            vec![Diagnostic::warning(
                AttrPath::default(),
                "The user is still being deleted",
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
    if let Err(d) = m::parse_import_id(&prior.id) {
        return (Some(current), vec![d]);
    }
    match client.get_user(&prior.id).await {
        Ok(found) => (
            m::refresh(found.as_ref().map(server_user).as_ref()).map(|s| s.to_value()),
            Vec::new(),
        ),
        Err(err) => (
            Some(current),
            vec![client_error("Could not read the user", &err)],
        ),
    }
}

pub fn import(id: &str) -> Outcome {
    match m::parse_import_id(id) {
        Ok(id) => (Some(m::import_state(&id).to_value()), Vec::new()),
        Err(d) => (None, vec![d]),
    }
}
