//! `lxd_trust_tokens`: the pending trust tokens of an LXD remote, never with their secrets.

use time::OffsetDateTime;

use crate::convert;
use crate::diag::{AttrPath, Diagnostic};
use crate::lxd_trust_token::{Status, format_expires_at};
use crate::plan;
use crate::schema::{AttrType, Attribute, Block, Kind, Presence, TypeSchema, Validator, attr};
use crate::value::Value;

pub const NAME: &str = "lxd_trust_tokens";

pub const NOTES: &str = "\
## Listed tokens

The list holds every trust token the server still lists as pending (a running token operation), oldest first, as `lxc config trust list-tokens` shows them.
A token the server lists after its expiry (LXD removes expired tokens only at its next periodic sweep) is listed with `status = \"expired\"`; expiry is measured against the server's clock.
The token strings themselves are never listed: they are secrets, and only the `lxd_trust_token` that made a token holds it.
";

pub const EXAMPLE: &str = r#"data "lxd_trust_tokens" "pending" {
  name = "mytoken"
}

output "pending_token_ids" {
  value = data.lxd_trust_tokens.pending.tokens[*].operation_id
}
"#;

fn item_type() -> AttrType {
    AttrType::Object(vec![
        ("name", AttrType::String),
        ("operation_id", AttrType::String),
        ("projects", AttrType::List(Box::new(AttrType::String))),
        ("expires_at", AttrType::String),
        ("status", AttrType::String),
    ])
}

pub fn schema() -> TypeSchema {
    TypeSchema {
        name: NAME,
        kind: Kind::DataSource,
        version: 0,
        importable: false,
        import_id_format: None,
        block: Block {
            description: "The `lxd_trust_tokens` data source lists the pending trust tokens of an LXD remote, without their secrets.",
            blocks: Vec::new(),
            attributes: vec![
                Attribute {
                    validators: vec![Validator::NotEmpty],
                    ..attr(
                        "name",
                        AttrType::String,
                        Presence::Optional,
                        "Lists only the tokens with this name.",
                    )
                },
                attr(
                    "remote",
                    AttrType::String,
                    Presence::Optional,
                    "The remote whose tokens are listed. If not provided, the provider's default remote is used.",
                ),
                attr(
                    "tokens",
                    AttrType::List(Box::new(item_type())),
                    Presence::Computed,
                    "The pending tokens, oldest first: `name`, `operation_id`, `projects`, `expires_at` (`YYYY/MM/DD hh:mm TZ`, empty when the token does not expire) and `status` (`pending`, or `expired` when the server still lists a token whose expiry has passed).",
                ),
            ],
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub name: Option<String>,
    pub remote: Option<String>,
}

impl Config {
    pub fn from_value(value: &Value) -> Result<Config, Diagnostic> {
        Ok(Config {
            name: convert::opt_string(value, "name")?,
            remote: convert::opt_string(value, "remote")?,
        })
    }
}

pub fn validate(config: &Value) -> Vec<Diagnostic> {
    plan::validate(&schema().block, config)
}

/// A pending token as the server lists it, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub operation_id: String,
    pub projects: Vec<String>,
    pub expires_at: Option<OffsetDateTime>,
}

/// The data source's value: the listed tokens that match, with their status at the server's
/// time `now`.
pub fn read(config: &Config, listed: &[Listed], now: OffsetDateTime) -> Value {
    let tokens = listed
        .iter()
        .filter(|t| config.name.as_ref().is_none_or(|n| *n == t.name))
        .map(|t| {
            let status = if t.expires_at.is_some_and(|at| at <= now) {
                Status::Expired
            } else {
                Status::Pending
            };
            Value::object([
                ("name", Value::string(&t.name)),
                ("operation_id", Value::string(&t.operation_id)),
                (
                    "projects",
                    Value::List(t.projects.iter().map(Value::string).collect()),
                ),
                ("expires_at", Value::string(format_expires_at(t.expires_at))),
                ("status", Value::string(status.as_str())),
            ])
        })
        .collect();
    Value::object([
        (
            "name",
            config.name.as_ref().map_or(Value::Null, Value::string),
        ),
        (
            "remote",
            config.remote.as_ref().map_or(Value::Null, Value::string),
        ),
        ("tokens", Value::List(tokens)),
    ])
}

/// The error for a listing the server answered with something unusable.
pub fn listing_failed(detail: impl Into<String>) -> Diagnostic {
    Diagnostic::error(
        AttrPath::attr("tokens"),
        "Failed to list the trust tokens",
        detail,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn listed(name: &str, id: &str, expires_at: Option<OffsetDateTime>) -> Listed {
        Listed {
            name: name.into(),
            operation_id: id.into(),
            projects: vec!["default".into()],
            expires_at,
        }
    }

    #[test]
    fn filters_by_name_and_tells_expired_tokens() {
        let at = datetime!(2026-11-23 05:18 UTC);
        let all = [
            listed("a", "1", Some(at)),
            listed("b", "2", None),
            listed("a", "3", None),
        ];
        let config = Config {
            name: Some("a".into()),
            remote: None,
        };
        let value = read(&config, &all, at);
        let Value::List(tokens) = value.get("tokens") else {
            panic!("tokens is a list: {value:?}");
        };
        let seen: Vec<_> = tokens
            .iter()
            .map(|t| {
                (
                    t.get("operation_id")
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    t.get("status").as_str().unwrap_or_default().to_owned(),
                    t.get("expires_at").as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("1".into(), "expired".into(), "2026/11/23 05:18 UTC".into()),
                ("3".into(), "pending".into(), String::new())
            ]
        );
        let everything = read(
            &Config {
                name: None,
                remote: None,
            },
            &all,
            at,
        );
        assert!(matches!(everything.get("tokens"), Value::List(t) if t.len() == 3));
    }

    #[test]
    fn the_schema_lists_no_secret() {
        let schema = schema();
        let tokens = schema.block.attributes.iter().find(|a| a.name == "tokens");
        let Some(AttrType::List(item)) = tokens.map(|a| &a.ty) else {
            panic!("tokens is a list");
        };
        let AttrType::Object(fields) = item.as_ref() else {
            panic!("a token is an object");
        };
        let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["name", "operation_id", "projects", "expires_at", "status"]
        );
        assert!(schema.block.attributes.iter().all(|a| !a.sensitive));
    }

    #[test]
    fn an_empty_name_is_refused() {
        let config = Value::object([
            ("name", Value::string("")),
            ("remote", Value::Null),
            ("tokens", Value::Null),
        ]);
        let diags = validate(&config);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].path, AttrPath::attr("name"));
    }
}
