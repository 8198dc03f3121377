//! `oci_identity_auth_tokens`: the auth tokens of a user, never with their secrets.

use regex::Regex;

use crate::convert;
use crate::diag::{AttrPath, Diagnostic};
use crate::oci_identity_auth_token::{ServerAuthToken, format_time, token_attributes};
use crate::plan;
use crate::schema::{AttrType, Block, Kind, NestedBlock, Nesting, Presence, TypeSchema, attr};
use crate::value::Value;

pub const NAME: &str = "oci_identity_auth_tokens";

pub const NOTES: &str = "\
### List Operation
Lists the auth tokens for the specified user. The returned object contains the token's OCID, but not
the token itself. The actual token is returned only upon creation.

The list is exported twice, as `auth_tokens` and as `tokens` (the name existing configurations use); `token` is always null in both.

### Filters
Each `filter` block keeps the tokens whose attribute `name` equals one of `values` (or, with `regex = true`, matches one of them as an unanchored regular expression).
Several `filter` blocks must all match.
";

pub const EXAMPLE: &str = r#"data "oci_identity_auth_tokens" "test_auth_tokens" {
	#Required
	user_id = "${oci_identity_user.test_user.id}"
}
"#;

/// The names of the attributes a listed token has, in schema order.
const ITEM_ATTRS: [&str; 8] = [
    "description",
    "id",
    "inactive_state",
    "state",
    "time_created",
    "time_expires",
    "token",
    "user_id",
];

fn item_type() -> AttrType {
    AttrType::Object(
        ITEM_ATTRS
            .iter()
            .map(|name| (*name, AttrType::String))
            .collect(),
    )
}

pub fn schema() -> TypeSchema {
    debug_assert_eq!(
        token_attributes()
            .iter()
            .map(|a| a.name)
            .collect::<Vec<_>>(),
        ITEM_ATTRS
    );
    TypeSchema {
        name: NAME,
        kind: Kind::DataSource,
        version: 0,
        importable: false,
        import_id_format: None,
        block: Block {
            description: "Gets a list of auth_tokens.",
            attributes: vec![
                attr(
                    "user_id",
                    AttrType::String,
                    Presence::Required,
                    "The OCID of the user.",
                ),
                attr(
                    "auth_tokens",
                    AttrType::List(Box::new(item_type())),
                    Presence::Computed,
                    "The list of auth_tokens.",
                ),
                attr(
                    "tokens",
                    AttrType::List(Box::new(item_type())),
                    Presence::Computed,
                    "The same list as `auth_tokens`, under the name the Oracle provider uses.",
                ),
                attr(
                    "id",
                    AttrType::String,
                    Presence::Computed,
                    "An identifier of this list, derived from `user_id`.",
                ),
            ],
            blocks: vec![NestedBlock {
                type_name: "filter",
                nesting: Nesting::Set,
                min_items: 0,
                max_items: 0,
                force_new: false,
                description: "Keeps only the tokens that match; several blocks must all match.",
                block: Block {
                    description: "",
                    blocks: Vec::new(),
                    attributes: vec![
                        attr(
                            "name",
                            AttrType::String,
                            Presence::Required,
                            "The attribute of a token to compare, such as `state` or `description`.",
                        ),
                        attr(
                            "values",
                            AttrType::List(Box::new(AttrType::String)),
                            Presence::Required,
                            "The values to compare with; one match is enough.",
                        ),
                        attr(
                            "regex",
                            AttrType::Bool,
                            Presence::Optional,
                            "Treat `values` as regular expressions (unanchored). Defaults to `false`.",
                        ),
                    ],
                },
            }],
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
    pub regex: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub user_id: String,
    pub filters: Vec<Filter>,
}

impl Config {
    pub fn from_value(value: &Value) -> Result<Config, Diagnostic> {
        let user_id = convert::string(value, "user_id")?;
        let mut filters = Vec::new();
        if let Value::Set(items) | Value::List(items) = value.get("filter") {
            for item in items {
                filters.push(Filter {
                    name: convert::string(item, "name")?,
                    values: convert::string_list_or_empty(item, "values")?,
                    regex: convert::opt_bool(item, "regex")?.unwrap_or(false),
                });
            }
        }
        Ok(Config { user_id, filters })
    }
}

pub fn validate(config: &Value) -> Vec<Diagnostic> {
    let mut diags = plan::validate(&schema().block, config);
    if let Value::Set(items) | Value::List(items) = config.get("filter") {
        for (idx, item) in items.iter().enumerate() {
            let at = AttrPath::attr("filter").index(idx);
            if let Value::String(name) = item.get("name")
                && !ITEM_ATTRS.contains(&name.as_str())
            {
                diags.push(Diagnostic::error(
                    at.clone().child("name"),
                    "Invalid value for `filter.name`",
                    format!(
                        "`name` must be one of {}; got {name:?}.",
                        ITEM_ATTRS.map(|a| format!("\"{a}\"")).join(", ")
                    ),
                ));
            }
            if item.get("regex") != &Value::Bool(true) {
                continue;
            }
            if let Value::List(values) = item.get("values") {
                for (vidx, pattern) in values.iter().enumerate() {
                    if let Value::String(pattern) = pattern
                        && let Err(err) = Regex::new(pattern)
                    {
                        diags.push(Diagnostic::error(
                            at.clone().child("values").index(vidx),
                            "Invalid regular expression in `filter.values`",
                            format!("{pattern:?} is not a valid regular expression: {err}"),
                        ));
                    }
                }
            }
        }
    }
    diags
}

/// One listed token as the data source exports it: every attribute a string or null, and
/// never the secret.
fn item(found: &ServerAuthToken) -> [(&'static str, Option<String>); 8] {
    [
        ("description", Some(found.description.clone())),
        ("id", Some(found.id.clone())),
        (
            "inactive_state",
            found.inactive_status.map(|s| s.to_string()),
        ),
        ("state", Some(found.lifecycle_state.clone())),
        ("time_created", Some(format_time(found.time_created))),
        ("time_expires", found.time_expires.map(format_time)),
        ("token", None),
        ("user_id", Some(found.user_id.clone())),
    ]
}

/// `true` when the token passes the filter. A token lacking the attribute never passes; an
/// invalid regular expression matches nothing.
fn passes(filter: &Filter, fields: &[(&'static str, Option<String>); 8]) -> bool {
    let Some((_, Some(actual))) = fields.iter().find(|(name, _)| *name == filter.name) else {
        return false;
    };
    filter.values.iter().any(|wanted| {
        if filter.regex {
            Regex::new(wanted).is_ok_and(|re| re.is_match(actual))
        } else {
            wanted == actual
        }
    })
}

/// The data source's state for `config`, from the tokens the server listed.
pub fn read(config_value: &Value, config: &Config, listed: &[ServerAuthToken]) -> Value {
    let items: Vec<Value> = listed
        .iter()
        .map(item)
        .filter(|fields| config.filters.iter().all(|f| passes(f, fields)))
        .map(|fields| {
            Value::object(
                fields
                    .into_iter()
                    .map(|(name, v)| (name, v.map_or(Value::Null, Value::String))),
            )
        })
        .collect();
    let mut state = match config_value {
        Value::Object(map) => map.clone(),
        _ => Default::default(),
    };
    state.insert("auth_tokens".into(), Value::List(items.clone()));
    state.insert("tokens".into(), Value::List(items));
    state.insert("id".into(), Value::String(data_source_id(&config.user_id)));
    if !state.contains_key("filter") {
        state.insert("filter".into(), Value::Set(Vec::new()));
    }
    Value::Object(state)
}

/// A stable id from the user id (FNV-1a, so it needs no hashing dependency).
pub fn data_source_id(user_id: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in user_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("IdentityAuthTokensDataSource-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn token(id: &str, description: &str, state: &str) -> ServerAuthToken {
        ServerAuthToken {
            id: id.into(),
            user_id: "u1".into(),
            description: description.into(),
            token: Some("never-exported".into()),
            lifecycle_state: state.into(),
            inactive_status: None,
            time_created: datetime!(2026-01-01 00:00 UTC),
            time_expires: None,
        }
    }

    fn check(filters: &[(&str, &[&str], bool)], expected: &[&str]) {
        let config = Config {
            user_id: "u1".into(),
            filters: filters
                .iter()
                .map(|(name, values, regex)| Filter {
                    name: (*name).into(),
                    values: values.iter().map(|v| (*v).into()).collect(),
                    regex: *regex,
                })
                .collect(),
        };
        let listed = [
            token("t1", "ci deploy", "ACTIVE"),
            token("t2", "laptop", "ACTIVE"),
            token("t3", "ci old", "DELETING"),
        ];
        let state = read(
            &Value::object([("user_id", Value::string("u1"))]),
            &config,
            &listed,
        );
        let Value::List(items) = state.get("auth_tokens") else {
            panic!("no list")
        };
        let ids: Vec<&str> = items
            .iter()
            .map(|i| i.get("id").as_str().unwrap())
            .collect();
        assert_eq!(ids, expected);
        assert_eq!(state.get("auth_tokens"), state.get("tokens"));
        assert!(items.iter().all(|i| i.get("token").is_null()));
    }

    #[test]
    fn filters() {
        check(&[], &["t1", "t2", "t3"]);
        check(&[("state", &["ACTIVE"], false)], &["t1", "t2"]);
        check(
            &[("description", &["laptop", "ci old"], false)],
            &["t2", "t3"],
        );
        check(&[("description", &["^ci"], true)], &["t1", "t3"]);
        check(&[("description", &["deploy"], true)], &["t1"]);
        check(
            &[
                ("description", &["ci"], true),
                ("state", &["ACTIVE"], false),
            ],
            &["t1"],
        );
        check(&[("description", &["("], true)], &[]);
        check(&[("time_expires", &[""], false)], &[]);
    }

    #[test]
    fn validation_names_the_filter_attribute() {
        let config = Value::object([
            ("user_id", Value::string("u1")),
            (
                "filter",
                Value::Set(vec![Value::object([
                    ("name", Value::string("state")),
                    ("values", Value::List(vec![Value::string("(")])),
                    ("regex", Value::Bool(true)),
                ])]),
            ),
        ]);
        let diags = validate(&config);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].path.to_string(), "filter[0].values[0]");
    }
}
