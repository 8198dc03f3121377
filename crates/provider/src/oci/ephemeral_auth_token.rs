//! `ephemeral "oci_identity_auth_token"`: Open creates a token and waits for ACTIVE, Close
//! deletes it and waits until it is gone.
//!
//! OCI auth tokens never expire and a user holds at most two, so nothing may be left behind:
//! an Open that fails after the create deletes the token itself (Terraform does not call Close
//! after a failed Open), and a Close that cannot delete is an error naming token and user.

use std::sync::Arc;

use model::diag::{AttrPath, Diagnostic};
use model::ephemeral_oci_identity_auth_token::{self as m, Config, Private, close_failed};
use model::oci_identity_auth_token::DEFAULT_TIMEOUT;
use model::value::Value;
use oci_client::Client;

use super::{client_error, server_token};
use crate::core::Opened;

pub async fn open(client: &Client, config: Value) -> Opened {
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
    let before = super::ids_before_create(client, &config.user_id).await;
    let created = match client
        .create_auth_token(&config.user_id, &config.description)
        .await
    {
        Ok(t) => t,
        Err(err) if err.may_be_token_limit() => {
            let diag =
                super::identity_auth_token::limit_reached(client, &config.user_id, &err).await;
            return Opened::failed(vec![diag]);
        }
        Err(err) => {
            let mut diags = vec![client_error(
                "Could not create the ephemeral auth token",
                &err,
            )];
            if super::create_may_have_acted(&err) {
                // Terraform will not call Close for a failed Open: nothing may be left behind.
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
            return Opened::failed(diags);
        }
    };
    let private = Private {
        user_id: config.user_id.clone(),
        token_id: created.id.clone(),
    };
    let mut found = None;
    if created.lifecycle_state != "ACTIVE" {
        match client
            .wait_for_state(&config.user_id, &created.id, "ACTIVE", DEFAULT_TIMEOUT)
            .await
        {
            Ok(seen) => found = seen,
            Err(err) => {
                // Terraform will not call Close for a failed Open: delete the token here.
                let mut diags = vec![client_error("The auth token did not become ACTIVE", &err)];
                diags.extend(delete(client, &private).await);
                return Opened::failed(diags);
            }
        }
    }
    tracing::info!(token_id = %private.token_id, "ephemeral auth token opened");
    Opened {
        result: Some(m::result(
            &config,
            &server_token(&created),
            found.as_ref().map(server_token).as_ref(),
        )),
        private: private.to_bytes(),
        diagnostics: Vec::new(),
    }
}

pub async fn close(
    client: Result<Arc<Client>, Vec<Diagnostic>>,
    private: &[u8],
) -> Vec<Diagnostic> {
    let private = match Private::from_bytes(private) {
        Ok(p) => p,
        Err(d) => return vec![d],
    };
    let client = match client {
        Ok(c) => c,
        Err(d) => {
            let reason = d.first().map_or_else(String::new, |d| d.detail.clone());
            return vec![close_failed(&private, &reason)];
        }
    };
    let diags = delete(&client, &private).await;
    if diags.is_empty() {
        tracing::info!(token_id = %private.token_id, "ephemeral auth token closed");
    }
    diags
}

/// Deletes the token (already gone counts as deleted, with the client's retries) and waits
/// until it is gone, so that the user's slot is free for the next Open.
async fn delete(client: &Client, private: &Private) -> Vec<Diagnostic> {
    if let Err(err) = client
        .delete_auth_token(&private.user_id, &private.token_id, None)
        .await
    {
        return vec![close_failed(private, &err.to_string())];
    }
    match client
        .wait_for_state(
            &private.user_id,
            &private.token_id,
            "DELETED",
            DEFAULT_TIMEOUT,
        )
        .await
    {
        Ok(_) => Vec::new(),
        Err(err) => vec![Diagnostic::warning(
            AttrPath::default(),
            "The ephemeral auth token is still being deleted",
            format!(
                "The auth token {} of user {} is being deleted but was not gone yet: {err}",
                private.token_id, private.user_id
            ),
        )],
    }
}
