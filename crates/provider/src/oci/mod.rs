//! `terraform-provider-oci`: its configuration, and one module per Terraform type.

pub mod ephemeral_auth_token;
pub mod identity_auth_token;
pub mod identity_auth_tokens;
pub mod identity_user;
#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock};

use model::diag::{AttrPath, Diagnostic};
use model::plan::Plan;
use model::schema::TypeSchema;
use model::value::Value;
use oci_client::{Client, Environment, RetryPolicy, SecretString, Settings, SystemClock};

use oci_client::ExposeSecret;

use crate::core::{Opened, Outcome, Provider};

pub struct OciProvider {
    client: RwLock<Option<Arc<Client>>>,
    /// The clock the client signs with and measures the eventual-consistency window by.
    clock: Arc<dyn oci_client::Clock>,
}

impl Default for OciProvider {
    fn default() -> Self {
        OciProvider::with_clock(Arc::new(SystemClock))
    }
}

fn opt_string(config: &Value, name: &str) -> Option<String> {
    config
        .get(name)
        .as_str()
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

/// The error Terraform shows when a resource is used before `configure` succeeded.
fn not_configured() -> Vec<Diagnostic> {
    vec![Diagnostic::error(
        AttrPath::default(),
        "Provider not configured",
        "The oci provider could not be configured; see the earlier error.",
    )]
}

/// Whether OCI may have made a token although the create failed: its answer was lost (the
/// connection broke or the request timed out) or the service failed while acting (5xx).
pub fn create_may_have_acted(err: &oci_client::Error) -> bool {
    match err {
        oci_client::Error::RetriesExhausted { last, .. } => create_may_have_acted(last),
        oci_client::Error::Connect { .. } | oci_client::Error::Timeout { .. } => true,
        oci_client::Error::Service { status, .. } => *status >= 500,
        _ => false,
    }
}

/// The ids of the user's tokens before a create, so that a create whose answer is lost can
/// find the token it made; `None` when they cannot be listed.
pub async fn ids_before_create(client: &Client, user_id: &str) -> Option<Vec<String>> {
    let tokens = client.list_auth_tokens(user_id).await.ok()?;
    Some(tokens.into_iter().map(|t| t.id).collect())
}

/// After a create for `user_id` with `description` that failed where OCI may have acted:
/// deletes the token it made (listed now, not in `before`, with the description), so that
/// nothing Terraform does not know of is left behind. Tokens it cannot tell apart, or cannot
/// delete, are named with the command that deletes them.
pub async fn undo_lost_create(
    client: &Client,
    user_id: &str,
    description: &str,
    before: Option<&[String]>,
) -> Vec<Diagnostic> {
    let unsure = |why: String| {
        vec![Diagnostic::warning(
            AttrPath::default(),
            "The create may have made an auth token",
            format!(
                "OCI may have made an auth token for user {user_id} with description {description:?} before the create failed, and {why}. List that user's auth tokens (`oci iam auth-token list --user-id {user_id}`) and delete it if so: auth tokens never expire and a user may hold only two."
            ),
        )]
    };
    let Some(before) = before else {
        return unsure("its tokens could not be listed before the create".to_owned());
    };
    let after = match client.list_auth_tokens(user_id).await {
        Ok(tokens) => tokens,
        Err(err) => return unsure(format!("they could not be listed after it: {err}")),
    };
    let after: Vec<_> = after.iter().map(server_token).collect();
    match model::oci_identity_auth_token::made_by_lost_create(before, &after, description)[..] {
        [] => Vec::new(),
        [made] => match client.delete_auth_token(user_id, &made.id, None).await {
            Ok(()) => vec![Diagnostic::warning(
                AttrPath::default(),
                "The auth token of the failed create was deleted",
                format!(
                    "The create's answer was lost, but OCI had made auth token {} for user {user_id}; it was deleted.",
                    made.id
                ),
            )],
            Err(err) => vec![Diagnostic::error(
                AttrPath::default(),
                "Could not delete the auth token of the failed create",
                format!(
                    "The create's answer was lost, but OCI had made auth token {} for user {user_id}, and it could not be deleted: {err}. Delete it with `oci iam auth-token delete --user-id {user_id} --auth-token-id {}`.",
                    made.id, made.id
                ),
            )],
        },
        ref several => {
            let ids: Vec<&str> = several.iter().map(|t| t.id.as_str()).collect();
            vec![Diagnostic::error(
                AttrPath::default(),
                "The failed create may have made one of several auth tokens",
                format!(
                    "The create's answer was lost, and user {user_id} now holds several new auth tokens with description {description:?}: {}. One may be the create's, the others another client's; delete the create's with `oci iam auth-token delete --user-id {user_id} --auth-token-id ID`.",
                    ids.join(", ")
                ),
            )]
        }
    }
}

/// An error of the OCI client as a diagnostic (client errors never carry secrets), on the
/// attribute it is about when it is about an id.
pub fn client_error(summary: &str, err: &oci_client::Error) -> Diagnostic {
    let path = match err {
        oci_client::Error::InvalidId {
            name: "user_id", ..
        } => AttrPath::attr("user_id"),
        oci_client::Error::InvalidId {
            name: "token_id", ..
        } => AttrPath::attr("id"),
        _ => AttrPath::default(),
    };
    Diagnostic::error(path, summary, err.to_string())
}

/// An error diagnostic on `attribute` when its value is known and not an OCID. An empty
/// string is left to the schema's `NotEmpty` rule.
pub fn check_ocid(config: &Value, attribute: &'static str) -> Option<Diagnostic> {
    let value = config.get(attribute).as_str().filter(|v| !v.is_empty())?;
    let err = oci_client::path::check_ocid(attribute, value).err()?;
    Some(Diagnostic::error(
        AttrPath::attr(attribute),
        format!("Invalid value for `{attribute}`"),
        err.to_string(),
    ))
}

impl OciProvider {
    /// A provider whose client reads `clock` (tests move it together with a fake's).
    pub fn with_clock(clock: Arc<dyn oci_client::Clock>) -> OciProvider {
        OciProvider {
            client: RwLock::new(None),
            clock,
        }
    }

    pub fn client(&self) -> Result<Arc<Client>, Vec<Diagnostic>> {
        self.client
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(not_configured)
    }

    /// The provider's settings from its configuration block; the environment and the OCI
    /// config file fill the rest (see `oci_client::config`).
    pub fn settings(config: &Value) -> Settings {
        Settings {
            auth: opt_string(config, "auth"),
            tenancy_ocid: opt_string(config, "tenancy_ocid"),
            user_ocid: opt_string(config, "user_ocid"),
            fingerprint: opt_string(config, "fingerprint"),
            private_key: opt_string(config, "private_key").map(SecretString::from),
            private_key_path: opt_string(config, "private_key_path"),
            private_key_password: opt_string(config, "private_key_password")
                .map(SecretString::from),
            region: opt_string(config, "region"),
            config_file_profile: opt_string(config, "config_file_profile"),
            endpoint: opt_string(config, "endpoint"),
        }
    }

    /// The retry policy the configuration asks for; an out-of-range `retry_duration_seconds`
    /// is an error on that attribute. The window never shortens a request's own time limit.
    pub fn retry_policy(config: &Value) -> Result<RetryPolicy, Diagnostic> {
        let mut policy = RetryPolicy::default();
        if let Some(window) = model::provider_oci::retry_duration(config)? {
            policy.max_elapsed = window;
        }
        if config.get("disable_auto_retries") == &Value::Bool(true) {
            policy.disabled = true;
        }
        Ok(policy)
    }
}

#[tonic::async_trait]
impl Provider for OciProvider {
    fn provider_schema(&self) -> TypeSchema {
        model::provider_oci::schema()
    }

    fn resources(&self) -> Vec<TypeSchema> {
        vec![
            model::oci_identity_auth_token::schema(),
            model::oci_identity_user::schema(),
        ]
    }

    fn data_sources(&self) -> Vec<TypeSchema> {
        vec![model::oci_identity_auth_tokens::schema()]
    }

    fn ephemeral_resources(&self) -> Vec<TypeSchema> {
        model::oci_ephemeral_types()
    }

    fn validate_ephemeral(&self, type_name: &str, config: &Value) -> Vec<Diagnostic> {
        match type_name {
            model::ephemeral_oci_identity_auth_token::NAME => {
                model::ephemeral_oci_identity_auth_token::validate(config)
            }
            other => crate::core::unknown_type(other, "ephemeral resource"),
        }
    }

    async fn open_ephemeral(&self, type_name: &str, config: Value) -> Opened {
        let client = match self.client() {
            Ok(c) => c,
            Err(d) => return Opened::failed(d),
        };
        match type_name {
            model::ephemeral_oci_identity_auth_token::NAME => {
                ephemeral_auth_token::open(&client, config).await
            }
            other => Opened::failed(crate::core::unknown_type(other, "ephemeral resource")),
        }
    }

    async fn close_ephemeral(&self, type_name: &str, private: &[u8]) -> Vec<Diagnostic> {
        match type_name {
            model::ephemeral_oci_identity_auth_token::NAME => {
                ephemeral_auth_token::close(self.client(), private).await
            }
            other => crate::core::unknown_type(other, "ephemeral resource"),
        }
    }

    fn validate_provider(&self, config: &Value) -> Vec<Diagnostic> {
        model::provider_oci::validate(config)
    }

    fn validate(&self, type_name: &str, config: &Value) -> Vec<Diagnostic> {
        let mut diags = match type_name {
            model::oci_identity_auth_token::NAME => {
                model::oci_identity_auth_token::validate(config)
            }
            model::oci_identity_auth_tokens::NAME => {
                model::oci_identity_auth_tokens::validate(config)
            }
            model::oci_identity_user::NAME => model::oci_identity_user::validate(config),
            _ => return Vec::new(),
        };
        diags.extend(check_ocid(config, "user_id"));
        diags
    }

    async fn configure(&self, config: &Value) -> Vec<Diagnostic> {
        if config.contains_unknown() {
            return vec![Diagnostic::error(
                AttrPath::default(),
                "Provider configuration not known",
                "The oci provider's settings depend on values not known until apply; set them from variables or the environment.",
            )];
        }
        let retry = match Self::retry_policy(config) {
            Ok(retry) => retry,
            Err(diag) => return vec![diag],
        };
        let settings = Self::settings(config);
        let credentials = match oci_client::config::resolve(&settings, &Environment::process()) {
            Ok(c) => c,
            Err(err) => {
                let path = match &err {
                    oci_client::Error::Unsupported {
                        setting: "auth", ..
                    } => AttrPath::attr("auth"),
                    _ => AttrPath::default(),
                };
                return vec![Diagnostic::error(
                    path,
                    "Invalid oci provider configuration",
                    err.to_string(),
                )];
            }
        };
        match Client::new(&credentials, retry, self.clock.clone()) {
            Ok(client) => {
                tracing::info!(endpoint = client.endpoint(), "oci provider configured");
                let mut diags = Vec::new();
                if client.plain_http_to_remote() {
                    diags.push(Diagnostic::warning(
                        AttrPath::attr("endpoint"),
                        "Unencrypted OCI endpoint",
                        format!(
                            "The endpoint {} is plain http:// to a host that is not loopback: signed requests and the auth token secrets in the replies cross the network unencrypted. Use https://, or http:// only to 127.0.0.1, ::1 or localhost.",
                            client.endpoint()
                        ),
                    ));
                }
                *self.client.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(client));
                diags
            }
            Err(err) => vec![Diagnostic::error(
                AttrPath::default(),
                "Invalid oci provider configuration",
                err.to_string(),
            )],
        }
    }

    fn plan(
        &self,
        type_name: &str,
        prior: Option<&Value>,
        config: &Value,
    ) -> Result<Plan, Vec<Diagnostic>> {
        match type_name {
            model::oci_identity_auth_token::NAME => {
                Ok(model::oci_identity_auth_token::plan(prior, config))
            }
            model::oci_identity_user::NAME => Ok(model::oci_identity_user::plan(prior, config)),
            other => Err(crate::core::unknown_type(other, "resource")),
        }
    }

    async fn check_plan(
        &self,
        type_name: &str,
        prior: Option<&Value>,
        _prior_private: &[u8],
        plan: &Plan,
    ) -> Vec<Diagnostic> {
        if type_name != model::oci_identity_auth_token::NAME {
            return Vec::new();
        }
        // Without a client, configure has already said why.
        let Ok(client) = self.client() else {
            return Vec::new();
        };
        identity_auth_token::check_limit(&client, prior, plan).await
    }

    async fn apply(
        &self,
        type_name: &str,
        prior: Option<Value>,
        planned: Option<Value>,
        config: Value,
    ) -> Outcome {
        let client = match self.client() {
            Ok(c) => c,
            Err(d) => return (None, d),
        };
        match type_name {
            model::oci_identity_auth_token::NAME => {
                identity_auth_token::apply(&client, prior, planned, config).await
            }
            model::oci_identity_user::NAME => {
                identity_user::apply(&client, prior, planned, config).await
            }
            _ => (None, Vec::new()),
        }
    }

    async fn read(&self, type_name: &str, current: Value) -> Outcome {
        let client = match self.client() {
            Ok(c) => c,
            Err(d) => return (Some(current), d),
        };
        match type_name {
            model::oci_identity_auth_token::NAME => {
                identity_auth_token::read(&client, current).await
            }
            model::oci_identity_user::NAME => identity_user::read(&client, current).await,
            _ => (Some(current), Vec::new()),
        }
    }

    async fn import(&self, type_name: &str, id: &str) -> Outcome {
        match type_name {
            model::oci_identity_auth_token::NAME => identity_auth_token::import(id),
            model::oci_identity_user::NAME => identity_user::import(id),
            _ => (None, Vec::new()),
        }
    }

    async fn read_data(&self, type_name: &str, config: Value) -> Outcome {
        let client = match self.client() {
            Ok(c) => c,
            Err(d) => return (None, d),
        };
        match type_name {
            model::oci_identity_auth_tokens::NAME => {
                identity_auth_tokens::read(&client, config).await
            }
            _ => (None, Vec::new()),
        }
    }
}

/// A token as the limit check sees it.
pub fn held_token(token: &oci_client::AuthToken) -> model::oci_token_limit::HeldToken {
    model::oci_token_limit::HeldToken {
        id: token.id.clone(),
        description: token.description.clone(),
        lifecycle_state: token.lifecycle_state.clone(),
    }
}

/// The model's view of a token the client returned.
pub fn server_token(
    token: &oci_client::AuthToken,
) -> model::oci_identity_auth_token::ServerAuthToken {
    model::oci_identity_auth_token::ServerAuthToken {
        id: token.id.clone(),
        user_id: token.user_id.clone(),
        description: token.description.clone(),
        token: token.token.as_ref().map(|t| t.expose_secret().to_owned()),
        lifecycle_state: token.lifecycle_state.clone(),
        inactive_status: token.inactive_status,
        time_created: token.time_created,
        time_expires: token.time_expires,
    }
}
