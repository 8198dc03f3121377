//! `lxd_trust_token`: a trust token that lets another client join an LXD server.
//!
//! The token's identity is the LXD operation that holds it, not its name: several tokens may
//! share a name. Every input forces a replacement; there is no in-place update.

use time::OffsetDateTime;
use time::macros::format_description;

use crate::diag::{AttrPath, Diagnostic};
use crate::plan::{self, Plan};
use crate::schema::{AttrType, Attribute, Block, Default, Kind, Presence, TypeSchema, Validator};
use crate::value::Value;

pub const NAME: &str = "lxd_trust_token";

/// The notes of the users' documentation, kept here so the docs page is generated from them.
pub const NOTES: &str = "\
~> **Note:** The LXD trust token resource cannot be used for the initial authentication
  with the LXD server because LXD Terraform provider needs to be authenticated in order
  to request trust tokens for other clients.

## Trust token expiry

~> **Warning:** The provider is unable to differentiate between an expired and a consumed token.
  If token generation is set to `once` and the token expires, it will not be regenerated.

Trust token expiry is defined in the server's configuration (`core.remote_token_expiry`).
If the setting is configured, `expires_at` attribute will be populated, otherwise, it will be empty.

For example, to set the token expiry to 20 minutes, run the following command:
```
lxc config set core.remote_token_expiry=20M
```

If trigger is set to `once` the token will not be regenerated on subsequent plan applies.
By setting the trigger to `always` ensures that the token is always present, and will be regenerated if missing.

## Notes

* Token's unique identifier is the operation ID and not the token name. Therefore, multiple tokens can exist with the same name.

* See the LXD [documentation](https://documentation.ubuntu.com/lxd/en/latest/authentication/#authentication-token) for more information on trust tokens.

## Keeping the token out of state and plans

`token` is not marked sensitive, so that the example's `output \"token\"` applies as written.
Marking that output `sensitive = true` (or wrapping the value with `sensitive()`) hides it only where the output itself is shown.
It does **not** keep `token` out of destroy or replace plans (`terraform plan -destroy` prints the whole token), nor out of `terraform show`, and the token is always stored in the state file in clear.
When nothing outside the run needs the token, use the ephemeral resource `lxd_trust_token` instead (Terraform 1.10 and later, see `docs/ephemeral-resources/lxd_trust_token.md`): its token never reaches the state file, a plan file or the plan output.
";

pub const EXAMPLE: &str = r#"resource "lxd_trust_token" "token1" {
  name = "mytoken"
}

output "token" {
  value = lxd_trust_token.token1.token
}
"#;

pub const IMPORT_EXAMPLE: &str = "terraform import lxd_trust_token.token1 <operation id>\n";

fn attr(
    name: &'static str,
    ty: AttrType,
    presence: Presence,
    description: &'static str,
) -> Attribute {
    Attribute {
        name,
        ty,
        presence,
        description,
        sensitive: false,
        force_new: false,
        default: None,
        validators: Vec::new(),
        deprecated: false,
    }
}

pub fn schema() -> TypeSchema {
    let string = || AttrType::String;
    TypeSchema {
        name: NAME,
        kind: Kind::Resource,
        version: 0,
        importable: true,
        import_id_format: Some("<operation id>"),
        block: Block {
            description: "The `lxd_trust_token` resource allows you to request a new trust token.",
            blocks: Vec::new(),
            attributes: vec![
                Attribute {
                    force_new: true,
                    validators: vec![Validator::NotEmpty],
                    ..attr("name", string(), Presence::Required, "Name of the token.")
                },
                Attribute {
                    force_new: true,
                    default: Some(Default::EmptyList),
                    ..attr(
                        "projects",
                        AttrType::List(Box::new(AttrType::String)),
                        Presence::OptionalComputed,
                        "List of projects to restrict the token to.",
                    )
                },
                Attribute {
                    force_new: true,
                    ..attr(
                        "remote",
                        string(),
                        Presence::Optional,
                        "The remote in which the resource will be created. If not provided, the provider's default remote will be used.",
                    )
                },
                Attribute {
                    force_new: true,
                    default: Some(Default::String("once")),
                    validators: vec![Validator::OneOf(&["once", "always"])],
                    ..attr(
                        "trigger",
                        string(),
                        Presence::OptionalComputed,
                        "When to trigger the token generation. Possible values are `once` and `always` (if missing). Defaults to `once`.",
                    )
                },
                attr(
                    "token",
                    string(),
                    Presence::Computed,
                    "The generated token.",
                ),
                attr(
                    "expires_at",
                    string(),
                    Presence::Computed,
                    "Time at which the trust token expires. If token expiry is configured, the value will be in format `YYYY/MM/DD hh:mm TZ`.",
                ),
                attr(
                    "operation_id",
                    string(),
                    Presence::Computed,
                    "The ID of the LXD operation that holds the token: the token's unique identifier.",
                ),
                attr(
                    "id",
                    string(),
                    Presence::Computed,
                    "The same as `operation_id`.",
                ),
            ],
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Once,
    Always,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Once => "once",
            Trigger::Always => "always",
        }
    }
}

/// A wholly known configuration, as apply sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub name: String,
    pub projects: Vec<String>,
    pub remote: Option<String>,
    pub trigger: Trigger,
}

/// What Terraform stores.
#[derive(Clone, PartialEq, Eq)]
pub struct State {
    pub config: Config,
    pub operation_id: String,
    pub token: String,
    /// `YYYY/MM/DD hh:mm TZ`, or empty when the token does not expire.
    pub expires_at: String,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("config", &self.config)
            .field("operation_id", &self.operation_id)
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What the server shows of a token the client created or found.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerToken {
    pub operation_id: String,
    pub name: String,
    /// The token string as `lxc config trust add` prints it.
    pub token: String,
    pub expires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for ServerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerToken")
            .field("operation_id", &self.operation_id)
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a refresh found on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// The token operation is still running: the token can be used.
    Pending(ServerToken),
    /// Consumed, revoked, expired and swept, or lost in a daemon restart: LXD cannot tell which.
    Absent,
}

/// `YYYY/MM/DD hh:mm TZ` in UTC, the way `lxc config trust list-tokens` shows it.
pub fn format_expires_at(at: Option<OffsetDateTime>) -> String {
    let Some(at) = at else {
        return String::new();
    };
    let utc = at.to_offset(time::UtcOffset::UTC);
    let format = format_description!("[year]/[month]/[day] [hour]:[minute] UTC");
    utc.format(format).unwrap_or_default()
}

pub fn validate(config: &Value) -> Vec<Diagnostic> {
    let mut diags = plan::validate(&schema().block, config);
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

pub fn plan(prior: Option<&Value>, config: &Value) -> Plan {
    plan::plan(&schema().block, prior, config)
}

impl Config {
    /// Reads a wholly known configuration (or planned state); errors name the attribute.
    pub fn from_value(value: &Value) -> Result<Config, Diagnostic> {
        let name = crate::convert::string(value, "name")?;
        let projects = crate::convert::string_list_or_empty(value, "projects")?;
        let remote = crate::convert::opt_string(value, "remote")?;
        let trigger = match crate::convert::opt_string(value, "trigger")?.as_deref() {
            None | Some("once") => Trigger::Once,
            Some("always") => Trigger::Always,
            Some(other) => {
                return Err(Diagnostic::error(
                    AttrPath::attr("trigger"),
                    "Invalid value for `trigger`",
                    format!("`trigger` must be one of \"once\", \"always\"; got \"{other}\"."),
                ));
            }
        };
        Ok(Config {
            name,
            projects,
            remote,
            trigger,
        })
    }
}

impl State {
    pub fn from_value(value: &Value) -> Result<State, Diagnostic> {
        Ok(State {
            config: Config::from_value(value)?,
            operation_id: crate::convert::string(value, "operation_id")?,
            token: crate::convert::opt_string(value, "token")?.unwrap_or_default(),
            expires_at: crate::convert::opt_string(value, "expires_at")?.unwrap_or_default(),
        })
    }

    pub fn to_value(&self) -> Value {
        Value::object([
            ("name", Value::string(&self.config.name)),
            (
                "projects",
                Value::List(self.config.projects.iter().map(Value::string).collect()),
            ),
            (
                "remote",
                self.config
                    .remote
                    .as_ref()
                    .map_or(Value::Null, Value::string),
            ),
            ("trigger", Value::string(self.config.trigger.as_str())),
            ("token", Value::string(&self.token)),
            ("expires_at", Value::string(&self.expires_at)),
            ("operation_id", Value::string(&self.operation_id)),
            ("id", Value::string(&self.operation_id)),
        ])
    }
}

/// The state after the server created `created` for `config`.
pub fn after_create(config: Config, created: &ServerToken) -> State {
    State {
        config,
        operation_id: created.operation_id.clone(),
        token: created.token.clone(),
        expires_at: format_expires_at(created.expires_at),
    }
}

/// The state after a refresh, or `None` when Terraform should forget the token (and so plan
/// a new one).
///
/// With `trigger = "once"` a token that is gone keeps its state unchanged: it is never
/// regenerated. With `trigger = "always"` a token that is gone, or whose expiry is past at
/// `now`, is forgotten so that the next plan creates a new one.
pub fn refresh(prior: &State, observed: &Observed, now: OffsetDateTime) -> Option<State> {
    match (prior.config.trigger, observed) {
        (Trigger::Once, Observed::Absent) => Some(prior.clone()),
        (Trigger::Always, Observed::Absent) => None,
        (Trigger::Always, Observed::Pending(found))
            if found.expires_at.is_some_and(|at| at <= now) =>
        {
            None
        }
        (_, Observed::Pending(found)) => Some(State {
            config: Config {
                name: found.name.clone(),
                ..prior.config.clone()
            },
            operation_id: prior.operation_id.clone(),
            token: found.token.clone(),
            expires_at: format_expires_at(found.expires_at),
        }),
    }
}

/// Checks an import id: the LXD operation id, a UUID.
pub fn parse_import_id(id: &str) -> Result<String, Diagnostic> {
    let is_uuid = id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if !is_uuid {
        return Err(Diagnostic::error(
            AttrPath::default(),
            "Invalid import id",
            format!(
                "An lxd_trust_token is imported by the id of the LXD operation that holds it, a UUID such as 38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1; got {id:?}."
            ),
        ));
    }
    Ok(id.to_ascii_lowercase())
}

/// The state after importing the pending token `found`.
///
/// The trigger is not stored on the server; an import assumes the default, `once`.
pub fn after_import(found: &ServerToken, projects: Vec<String>) -> State {
    State {
        config: Config {
            name: found.name.clone(),
            projects,
            remote: None,
            trigger: Trigger::Once,
        },
        operation_id: found.operation_id.clone(),
        token: found.token.clone(),
        expires_at: format_expires_at(found.expires_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use time::macros::datetime;

    fn config(trigger: Option<&str>) -> Value {
        Value::object([
            ("name", Value::string("mytoken")),
            ("projects", Value::Null),
            ("remote", Value::Null),
            ("trigger", trigger.map_or(Value::Null, Value::string)),
            ("token", Value::Null),
            ("expires_at", Value::Null),
            ("operation_id", Value::Null),
            ("id", Value::Null),
        ])
    }

    fn server_token(expires_at: Option<OffsetDateTime>) -> ServerToken {
        ServerToken {
            operation_id: "38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1".into(),
            name: "mytoken".into(),
            token: "eyJjbGllbnRfbmFtZSI6Im15dG9rZW4ifQ==".into(),
            expires_at,
        }
    }

    fn created_state(trigger: Trigger, expires_at: Option<OffsetDateTime>) -> State {
        let mut cfg = Config::from_value(&config(None)).unwrap();
        cfg.trigger = trigger;
        after_create(cfg, &server_token(expires_at))
    }

    #[test]
    fn create_plans_defaults_and_unknown_computed_values() {
        let plan = plan(None, &config(None));
        assert_eq!(plan.action, Action::Create);
        assert_eq!(plan.planned.get("trigger"), &Value::string("once"));
        assert_eq!(plan.planned.get("projects"), &Value::List(vec![]));
        assert_eq!(plan.planned.get("remote"), &Value::Null);
        for computed in ["token", "expires_at", "operation_id", "id"] {
            assert_eq!(plan.planned.get(computed), &Value::Unknown, "{computed}");
        }
    }

    #[test]
    fn unchanged_config_plans_nothing() {
        let state = created_state(Trigger::Once, None).to_value();
        let plan = plan(Some(&state), &config(None));
        assert_eq!(plan.action, Action::NoOp);
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn every_input_forces_replacement() {
        let state = created_state(Trigger::Once, None).to_value();
        let cases: [(&str, Value); 4] = [
            ("name", Value::string("other")),
            ("projects", Value::List(vec![Value::string("default")])),
            ("remote", Value::string("r1")),
            ("trigger", Value::string("always")),
        ];
        for (name, value) in cases {
            let mut cfg = config(None);
            if let Value::Object(map) = &mut cfg {
                map.insert(name.to_owned(), value);
            }
            let plan = plan(Some(&state), &cfg);
            assert_eq!(plan.action, Action::Replace, "{name}");
            assert_eq!(plan.requires_replace, vec![AttrPath::attr(name)]);
            assert_eq!(plan.planned.get("token"), &Value::Unknown);
        }
    }

    #[test]
    fn an_unknown_input_plans_a_replacement() {
        // Terraform replaces when a force-new value is unknown; planning an update instead
        // would turn into a replacement at apply time, which Terraform refuses.
        let state = created_state(Trigger::Once, None).to_value();
        let mut cfg = config(None);
        if let Value::Object(map) = &mut cfg {
            map.insert("name".to_owned(), Value::Unknown);
        }
        let plan = plan(Some(&state), &cfg);
        assert_eq!(plan.action, Action::Replace);
        assert_eq!(plan.requires_replace, vec![AttrPath::attr("name")]);
        assert_eq!(plan.planned.get("name"), &Value::Unknown);
        assert_eq!(plan.planned.get("token"), &Value::Unknown);
    }

    #[test]
    fn trigger_accepts_only_once_and_always() {
        let diags = validate(&config(Some("sometimes")));
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].path, AttrPath::attr("trigger"));
        assert_eq!(
            diags[0].detail,
            "`trigger` must be one of \"once\", \"always\"; got \"sometimes\"."
        );
        assert!(validate(&config(Some("always"))).is_empty());
        assert!(validate(&config(Some("once"))).is_empty());
    }

    #[test]
    fn expires_at_format() {
        assert_eq!(format_expires_at(None), "");
        assert_eq!(
            format_expires_at(Some(datetime!(2026-11-23 05:18:38.869 UTC))),
            "2026/11/23 05:18 UTC"
        );
        assert_eq!(
            format_expires_at(Some(datetime!(2026-11-23 07:18:00 +02:00))),
            "2026/11/23 05:18 UTC"
        );
    }

    #[test]
    fn refresh_with_once_keeps_a_gone_token() {
        let prior = created_state(Trigger::Once, None);
        let now = datetime!(2026-11-23 06:00 UTC);
        assert_eq!(refresh(&prior, &Observed::Absent, now), Some(prior.clone()));
    }

    #[test]
    fn refresh_with_always_forgets_a_gone_or_expired_token() {
        let at = datetime!(2026-11-23 05:18 UTC);
        let prior = created_state(Trigger::Always, Some(at));
        assert_eq!(refresh(&prior, &Observed::Absent, at), None);
        let pending = Observed::Pending(server_token(Some(at)));
        assert_eq!(
            refresh(&prior, &pending, at - time::Duration::minutes(1)),
            Some(prior.clone())
        );
        assert_eq!(refresh(&prior, &pending, at), None);
        // With `once`, an expired token that is still listed stays as it is.
        let once = created_state(Trigger::Once, Some(at));
        assert_eq!(
            refresh(&once, &pending, at + time::Duration::hours(1)),
            Some(once.clone())
        );
    }

    #[test]
    fn import_id_must_be_an_operation_uuid() {
        assert!(parse_import_id("38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1").is_ok());
        let err = parse_import_id("mytoken").unwrap_err();
        assert!(err.detail.contains("UUID"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let state = created_state(Trigger::Once, None);
        let text = format!("{state:?} {:?}", server_token(None));
        assert!(!text.contains("eyJjbGllbnRfbmFtZSI6"), "{text}");
    }
}
