//! `oci_identity_auth_tokens`: the list, filtered by the model, never with secrets.

use model::oci_identity_auth_tokens::{self as m, Config};
use model::value::Value;
use oci_client::Client;

use super::{client_error, server_token};
use crate::core::Outcome;

pub async fn read(client: &Client, config_value: Value) -> Outcome {
    let config = match Config::from_value(&config_value) {
        Ok(c) => c,
        Err(d) => return (None, vec![d]),
    };
    match client.list_auth_tokens(&config.user_id).await {
        Ok(tokens) => {
            let listed: Vec<_> = tokens.iter().map(server_token).collect();
            (Some(m::read(&config_value, &config, &listed)), Vec::new())
        }
        Err(err) => (
            None,
            vec![client_error("Could not list the auth tokens", &err)],
        ),
    }
}
