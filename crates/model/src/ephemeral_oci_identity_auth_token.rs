//! `ephemeral "oci_identity_auth_token"`: an auth token made for one Terraform run and deleted
//! when the run no longer needs it.
//!
//! OCI auth tokens never expire and a user may hold only two, while Terraform opens an
//! ephemeral resource in the plan and again in the apply. So Close must delete reliably, and a
//! Close that fails is an error naming the token and its user. Close receives the private
//! bytes of Open, so [`Private`] holds everything it needs, and nothing secret.

use serde::{Deserialize, Serialize};

use crate::convert;
use crate::diag::{AttrPath, Diagnostic};
use crate::oci_identity_auth_token::{ServerAuthToken, format_time};
use crate::plan;
use crate::schema::{AttrType, Attribute, Block, Kind, Presence, TypeSchema, Validator};
use crate::value::Value;

pub const NAME: &str = "oci_identity_auth_token";

pub const NOTES: &str = "\
## Why ephemeral

The managed resource `oci_identity_auth_token` keeps its `token` in the state file, and any plan that destroys or replaces it prints the token.
Marking an output `sensitive` does not change that: `terraform plan -destroy` and `terraform show` still show it.
This ephemeral resource never reaches the state file, a saved plan file or the plan output.
It needs Terraform 1.10 or later.
Use it whenever nothing outside the run needs the token, for example as a write-only argument or a provider setting of another provider.

## Lifecycle

* Terraform opens the resource in every plan and again in every apply: each opening creates a new token and waits until it is `ACTIVE`.
* When the run no longer needs the token, the provider deletes it, with the same retries as the managed resource; a token that is already gone counts as deleted.
* OCI auth tokens never expire, and each user may hold at most two.
  If a deletion fails, the run fails with an error that names the token's OCID and its user, so that the token can be deleted by hand (`oci iam auth-token delete`).
* If OCI's answer to the create is lost after OCI made the token, the provider finds the token by listing the user's tokens before and after the create, and deletes it; when it cannot tell which token is the create's, or cannot delete it, the error names what to delete by hand.
* Values not known until apply in the configuration make Terraform open the resource during apply only.
";

pub const EXAMPLE: &str = r#"ephemeral "oci_identity_auth_token" "registry_login" {
  user_id     = var.user_ocid
  description = "registry login for one terraform run"
}
"#;

fn attr(name: &'static str, presence: Presence, description: &'static str) -> Attribute {
    crate::schema::attr(name, AttrType::String, presence, description)
}

pub fn schema() -> TypeSchema {
    TypeSchema {
        name: NAME,
        kind: Kind::Ephemeral,
        version: 0,
        importable: false,
        import_id_format: None,
        block: Block {
            description: "The ephemeral `oci_identity_auth_token` creates an auth token for the duration of one Terraform run and deletes it afterwards. The token never reaches the state file, a plan file or the plan output.",
            blocks: Vec::new(),
            attributes: vec![
                Attribute {
                    validators: vec![Validator::NotEmpty],
                    ..attr(
                        "user_id",
                        Presence::Required,
                        "The OCID of the user, such as `ocid1.user.oc1..aaaa…`.",
                    )
                },
                attr(
                    "description",
                    Presence::Required,
                    "The description you assign to the auth token. Does not have to be unique; it may be empty.",
                ),
                attr("id", Presence::Computed, "The OCID of the auth token."),
                Attribute {
                    sensitive: true,
                    ..attr("token", Presence::Computed, "The auth token.")
                },
                attr(
                    "state",
                    Presence::Computed,
                    "The token's current state: `ACTIVE` once Open returns.",
                ),
                attr(
                    "time_created",
                    Presence::Computed,
                    "Date and time the `AuthToken` object was created, in the format defined by RFC3339.  Example: `2016-08-25T21:10:29.600Z`",
                ),
                attr(
                    "time_expires",
                    Presence::Computed,
                    "Date and time when this auth token will expire, in the format defined by RFC3339. Null if it never expires.",
                ),
            ],
        },
    }
}

/// A wholly known configuration, as Open sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub user_id: String,
    pub description: String,
}

impl Config {
    pub fn from_value(value: &Value) -> Result<Config, Diagnostic> {
        Ok(Config {
            user_id: convert::string(value, "user_id")?,
            description: convert::string(value, "description")?,
        })
    }
}

/// `true` for the shape of a user OCID: `ocid1.user.<realm>.[region].<unique id>`.
pub fn is_user_ocid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() >= 5
        && parts[0] == "ocid1"
        && parts[1] == "user"
        && !parts[2].is_empty()
        && parts.last().is_some_and(|unique| !unique.is_empty())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Checks a configuration; unknown values pass (Terraform opens the resource once they are
/// known).
pub fn validate(config: &Value) -> Vec<Diagnostic> {
    let mut diags = plan::validate(&schema().block, config);
    if let Value::String(user) = config.get("user_id")
        && !user.is_empty()
        && !is_user_ocid(user)
    {
        diags.push(Diagnostic::error(
            AttrPath::attr("user_id"),
            "Invalid value for `user_id`",
            format!(
                "`user_id` must be the OCID of a user, such as \"ocid1.user.oc1..aaaaaaaaexample\"; got {user:?}."
            ),
        ));
    }
    diags
}

/// The result of an Open that created `created` (the create response, which holds the secret)
/// and saw it become `found` (`None` when it was `ACTIVE` at once).
pub fn result(
    config: &Config,
    created: &ServerAuthToken,
    found: Option<&ServerAuthToken>,
) -> Value {
    let seen = found.unwrap_or(created);
    Value::object([
        ("user_id", Value::string(&config.user_id)),
        ("description", Value::string(&config.description)),
        ("id", Value::string(&created.id)),
        (
            "token",
            created.token.as_ref().map_or(Value::Null, Value::string),
        ),
        ("state", Value::string(&seen.lifecycle_state)),
        (
            "time_created",
            Value::string(format_time(seen.time_created)),
        ),
        (
            "time_expires",
            seen.time_expires
                .map_or(Value::Null, |at| Value::string(format_time(at))),
        ),
    ])
}

/// What Close needs, kept in Open's private bytes: the user and the token's OCID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Private {
    pub user_id: String,
    pub token_id: String,
}

impl Private {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Private, Diagnostic> {
        serde_json::from_slice(bytes).map_err(|_| {
            Diagnostic::error(
                AttrPath::default(),
                "Cannot close the ephemeral auth token",
                "The private data Terraform passed back is not what Open returned, so the token to delete is not known; list the user's auth tokens and delete the one this run made.",
            )
        })
    }
}

/// The error of a Close whose deletion failed: the token lives on and never expires.
pub fn close_failed(private: &Private, reason: &str) -> Diagnostic {
    Diagnostic::error(
        AttrPath::default(),
        "Could not delete the ephemeral auth token",
        format!(
            "The auth token {} of user {} made for this run could not be deleted: {reason}. OCI auth tokens never expire and a user may hold only two; delete it with `oci iam auth-token delete --user-id {} --auth-token-id {}`.",
            private.token_id, private.user_id, private.user_id, private.token_id
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn config(user: Value) -> Value {
        Value::object([
            ("user_id", user),
            ("description", Value::string("ci")),
            ("id", Value::Null),
            ("token", Value::Null),
            ("state", Value::Null),
            ("time_created", Value::Null),
            ("time_expires", Value::Null),
        ])
    }

    fn created(state: &str) -> ServerAuthToken {
        ServerAuthToken {
            id: "ocid1.credential.oc1..aaaatoken".into(),
            user_id: "ocid1.user.oc1..aaaauser".into(),
            description: "ci".into(),
            token: Some("s3cr3t-token-value".into()),
            lifecycle_state: state.into(),
            inactive_status: None,
            time_created: datetime!(2026-11-23 05:05:45.114 UTC),
            time_expires: None,
        }
    }

    #[test]
    fn user_ids_must_be_user_ocids() {
        for bad in [
            "alice",
            "ocid1.tenancy.oc1..aaaa",
            "ocid1.user.oc1..",
            "ocid1.user oc1..a",
        ] {
            let diags = validate(&config(Value::string(bad)));
            assert_eq!(diags.len(), 1, "{bad:?}: {diags:?}");
            assert_eq!(diags[0].path, AttrPath::attr("user_id"));
        }
        let empty = validate(&config(Value::string("")));
        assert_eq!(empty.len(), 1);
        assert!(empty[0].detail.contains("must not be empty"), "{empty:?}");
        assert!(validate(&config(Value::string("ocid1.user.oc1..aaaauser"))).is_empty());
        assert!(validate(&config(Value::string("ocid1.user.oc1.phx.aaaa_u-1"))).is_empty());
        assert!(validate(&config(Value::Unknown)).is_empty());
    }

    #[test]
    fn result_has_the_secret_of_the_create_and_the_state_last_seen() {
        let cfg = Config::from_value(&config(Value::string("ocid1.user.oc1..aaaauser"))).unwrap();
        let mut active = created("ACTIVE");
        active.token = None;
        let value = result(&cfg, &created("CREATING"), Some(&active));
        assert!(crate::value::conforms_block(&schema().block, &value));
        assert_eq!(value.get("token"), &Value::string("s3cr3t-token-value"));
        assert_eq!(value.get("state"), &Value::string("ACTIVE"));
        assert_eq!(
            value.get("time_created"),
            &Value::string("2026-11-23T05:05:45.114Z")
        );
        assert_eq!(value.get("time_expires"), &Value::Null);
    }

    #[test]
    fn private_round_trips_and_a_failed_close_names_token_and_user() {
        let private = Private {
            user_id: "ocid1.user.oc1..aaaauser".into(),
            token_id: "ocid1.credential.oc1..aaaatoken".into(),
        };
        assert_eq!(Private::from_bytes(&private.to_bytes()).unwrap(), private);
        assert!(Private::from_bytes(b"").is_err());
        let diag = close_failed(&private, "service unavailable");
        assert!(diag.detail.contains("ocid1.credential.oc1..aaaatoken"));
        assert!(diag.detail.contains("ocid1.user.oc1..aaaauser"));
    }
}
