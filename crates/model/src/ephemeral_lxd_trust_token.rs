//! `ephemeral "lxd_trust_token"`: a trust token made for one Terraform run and revoked when the
//! run no longer needs it.
//!
//! Terraform opens an ephemeral resource anew in each phase (plan, then apply) and never stores
//! its result. Close receives the private bytes of Open (not of a later Renew), so [`Private`]
//! holds everything Close needs, and nothing secret.

use serde::{Deserialize, Serialize};

use crate::convert;
use crate::diag::{AttrPath, Diagnostic};
use crate::lxd_trust_token::{ServerToken, format_expires_at};
use crate::plan;
use crate::schema::{
    AttrType, Attribute, Block, Default, Kind, Presence, TypeSchema, Validator, attr,
};
use crate::value::Value;

pub const NAME: &str = "lxd_trust_token";

pub const NOTES: &str = "\
## Why ephemeral

The managed resource `lxd_trust_token` keeps its `token` in the state file, and any plan that destroys or replaces it prints the token.
Marking an output `sensitive` does not change that: `terraform plan -destroy` and `terraform show` still show it.
This ephemeral resource never reaches the state file, a saved plan file or the plan output.
It needs Terraform 1.10 or later.
Use it whenever nothing outside the run needs the token, for example to let a second, aliased `lxd` provider join the server:

```hcl
ephemeral \"lxd_trust_token\" \"join\" {
  name = \"terraform-joiner\"
}

provider \"lxd\" {
  alias                        = \"joined\"
  config_dir                   = \"${path.module}/joined-config\"
  generate_client_certificates = true

  remote {
    name    = \"server\"
    address = \"https://lxd.example.com:8443\"
    token   = ephemeral.lxd_trust_token.join.token
    default = true
  }
}
```

## Lifecycle

* Terraform opens the resource in every plan and again in every apply: each opening creates a new token.
* When the run no longer needs the token, the provider revokes it if it is still pending; a token that was used, has expired or is gone counts as revoked.
* With `revoke_on_close = false` the token outlives the run (for machines that join later).
  Such a token is then tracked by nothing but its server-side expiry (`core.remote_token_expiry`): no state records it, and no later run revokes it.
* Values not known until apply in the configuration make Terraform open the resource during apply only.
";

pub const EXAMPLE: &str = r#"ephemeral "lxd_trust_token" "join" {
  name = "terraform-joiner"
}
"#;

pub fn schema() -> TypeSchema {
    let string = || AttrType::String;
    TypeSchema {
        name: NAME,
        kind: Kind::Ephemeral,
        version: 0,
        importable: false,
        import_id_format: None,
        block: Block {
            description: "The ephemeral `lxd_trust_token` requests a trust token for the duration of one Terraform run and revokes it afterwards. The token never reaches the state file, a plan file or the plan output.",
            blocks: Vec::new(),
            attributes: vec![
                Attribute {
                    validators: vec![Validator::NotEmpty],
                    ..attr(
                        "name",
                        string(),
                        Presence::Required,
                        "Name of the token. It must not start with a hyphen or contain a forward slash.",
                    )
                },
                Attribute {
                    default: Some(Default::EmptyList),
                    ..attr(
                        "projects",
                        AttrType::List(Box::new(AttrType::String)),
                        Presence::OptionalComputed,
                        "List of projects to restrict the token to.",
                    )
                },
                attr(
                    "remote",
                    string(),
                    Presence::Optional,
                    "The remote in which the token will be created. If not provided, the provider's default remote will be used.",
                ),
                Attribute {
                    default: Some(Default::Bool(true)),
                    ..attr(
                        "revoke_on_close",
                        AttrType::Bool,
                        Presence::OptionalComputed,
                        "Whether to revoke the token, if it is still pending, when the run no longer needs it. With `false` the token outlives the run and only its server-side expiry ends it.",
                    )
                },
                Attribute {
                    sensitive: true,
                    ..attr(
                        "token",
                        string(),
                        Presence::Computed,
                        "The generated token.",
                    )
                },
                attr(
                    "expires_at",
                    string(),
                    Presence::Computed,
                    "Time at which the trust token expires. If token expiry is configured, the value will be in format `YYYY/MM/DD hh:mm TZ`; otherwise it is empty.",
                ),
                attr(
                    "operation_id",
                    string(),
                    Presence::Computed,
                    "The ID of the LXD operation that holds the token.",
                ),
            ],
        },
    }
}

/// A wholly known configuration, as Open sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub name: String,
    pub projects: Vec<String>,
    pub remote: Option<String>,
    pub revoke_on_close: bool,
}

impl Config {
    /// Reads a wholly known configuration; errors name the attribute.
    pub fn from_value(value: &Value) -> Result<Config, Diagnostic> {
        Ok(Config {
            name: convert::string(value, "name")?,
            projects: convert::string_list_or_empty(value, "projects")?,
            remote: convert::opt_string(value, "remote")?,
            revoke_on_close: convert::opt_bool(value, "revoke_on_close")?.unwrap_or(true),
        })
    }
}

/// Checks a configuration; unknown values pass (Terraform opens the resource once they are
/// known).
pub fn validate(config: &Value) -> Vec<Diagnostic> {
    let mut diags = plan::validate(&schema().block, config);
    if let Value::String(name) = config.get("name")
        && (name.starts_with('-') || name.contains('/'))
    {
        diags.push(Diagnostic::error(
            AttrPath::attr("name"),
            "Invalid value for `name`",
            format!(
                "A token name must not start with a hyphen or contain a forward slash (LXD refuses it); got {name:?}."
            ),
        ));
    }
    if let Value::List(projects) = config.get("projects") {
        for (idx, project) in projects.iter().enumerate() {
            if project.as_str() == Some("") {
                diags.push(Diagnostic::error(
                    AttrPath::attr("projects").index(idx),
                    "Invalid value for `projects`",
                    "A project name must not be empty.",
                ));
            }
        }
    }
    diags
}

/// The result of an Open that created `created` for `config`.
pub fn result(config: &Config, created: &ServerToken) -> Value {
    Value::object([
        ("name", Value::string(&config.name)),
        (
            "projects",
            Value::List(config.projects.iter().map(Value::string).collect()),
        ),
        (
            "remote",
            config.remote.as_ref().map_or(Value::Null, Value::string),
        ),
        ("revoke_on_close", Value::Bool(config.revoke_on_close)),
        ("token", Value::string(&created.token)),
        (
            "expires_at",
            Value::string(format_expires_at(created.expires_at)),
        ),
        ("operation_id", Value::string(&created.operation_id)),
    ])
}

/// What Close needs, kept in Open's private bytes: where the token lives and whether to revoke
/// it. It holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Private {
    pub remote: Option<String>,
    pub operation_id: String,
    pub name: String,
    pub revoke_on_close: bool,
}

impl Private {
    pub fn new(config: &Config, created: &ServerToken) -> Private {
        Private {
            remote: config.remote.clone(),
            operation_id: created.operation_id.clone(),
            name: config.name.clone(),
            revoke_on_close: config.revoke_on_close,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Private, Diagnostic> {
        serde_json::from_slice(bytes).map_err(|_| {
            Diagnostic::error(
                AttrPath::default(),
                "Cannot close the ephemeral trust token",
                "The private data Terraform passed back is not what Open returned; the token, if any, is ended only by its expiry.",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: Value) -> Value {
        Value::object([
            ("name", name),
            ("projects", Value::Null),
            ("remote", Value::Null),
            ("revoke_on_close", Value::Null),
            ("token", Value::Null),
            ("expires_at", Value::Null),
            ("operation_id", Value::Null),
        ])
    }

    fn created() -> ServerToken {
        ServerToken {
            operation_id: "38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1".into(),
            name: "joiner".into(),
            token: "eyJjbGllbnRfbmFtZSI6ImpvaW5lciJ9".into(),
            expires_at: None,
        }
    }

    #[test]
    fn names_lxd_refuses_are_errors_on_name() {
        for bad in ["", "-joiner", "a/b"] {
            let diags = validate(&config(Value::string(bad)));
            assert_eq!(diags.len(), 1, "{bad:?}: {diags:?}");
            assert_eq!(diags[0].path, AttrPath::attr("name"), "{bad:?}");
        }
        assert!(validate(&config(Value::string("joiner-1"))).is_empty());
        assert!(validate(&config(Value::Unknown)).is_empty());
    }

    #[test]
    fn results_cannot_be_configured() {
        let mut cfg = config(Value::string("joiner"));
        if let Value::Object(map) = &mut cfg {
            map.insert("token".into(), Value::string("x"));
        }
        let diags = validate(&cfg);
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].path, AttrPath::attr("token"));
    }

    #[test]
    fn revoke_on_close_defaults_to_true_and_the_result_keeps_the_configuration() {
        let cfg = Config::from_value(&config(Value::string("joiner"))).unwrap();
        assert!(cfg.revoke_on_close);
        let result = result(&cfg, &created());
        assert!(crate::value::conforms_block(&schema().block, &result));
        assert_eq!(result.get("revoke_on_close"), &Value::Bool(true));
        assert_eq!(result.get("projects"), &Value::List(Vec::new()));
        assert_eq!(result.get("expires_at"), &Value::string(""));
    }

    #[test]
    fn private_round_trips_and_holds_no_secret() {
        let cfg = Config::from_value(&config(Value::string("joiner"))).unwrap();
        let private = Private::new(&cfg, &created());
        let bytes = private.to_bytes();
        assert_eq!(Private::from_bytes(&bytes).unwrap(), private);
        assert!(!String::from_utf8_lossy(&bytes).contains(&created().token));
        assert!(Private::from_bytes(b"junk").is_err());
    }
}
