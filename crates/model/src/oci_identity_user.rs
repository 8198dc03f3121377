//! `oci_identity_user`: a user of an OCI tenancy, with the Oracle provider's names.
//!
//! `description` and `email` update in place; `name` and `compartment_id` force a new user.
//! The user is imported by its OCID.

use time::OffsetDateTime;

use crate::convert;
use crate::diag::{AttrPath, Diagnostic};
use crate::oci_identity_auth_token::format_time;
use crate::ocid;
use crate::plan::{self, Plan};
use crate::schema::{AttrType, Attribute, Block, Kind, Presence, TypeSchema, Validator};
use crate::value::Value;

pub const NAME: &str = "oci_identity_user";

pub const NOTES: &str = "\
### Create Operation
Creates a new user in your tenancy. You must specify your tenancy's OCID as the compartment ID (the tenancy is the root compartment).
The *name* must be unique across all users in your tenancy and cannot be changed; a new `name` or `compartment_id` replaces the user.
The *description* (which may be empty) and `email` can be changed in place.

The provider waits for the new user's `state` to become `ACTIVE`.

### Delete Operation
A user who still holds auth tokens cannot be deleted; Terraform deletes the `oci_identity_auth_token` resources that depend on the user first.

Only these attributes of the Oracle provider's `oci_identity_user` are supported: tags, capabilities and the login times are not.
";

pub const EXAMPLE: &str = r#"resource "oci_identity_user" "test_user" {
	#Required
	compartment_id = "${var.tenancy_ocid}"
	description = "${var.user_description}"
	name = "${var.user_name}"

	#Optional
	email = "${var.user_email}"
}
"#;

pub const IMPORT_EXAMPLE: &str = "terraform import oci_identity_user.test_user \"id\"\n";

/// Default time to wait for a new user to become ACTIVE, and for a deleted one to go.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

fn attribute(name: &'static str, presence: Presence, description: &'static str) -> Attribute {
    crate::schema::attr(name, AttrType::String, presence, description)
}

pub fn schema() -> TypeSchema {
    let mut compartment = attribute(
        "compartment_id",
        Presence::Required,
        "The OCID of the tenancy containing the user.",
    );
    compartment.force_new = true;
    compartment.validators = vec![Validator::NotEmpty];
    let mut name = attribute(
        "name",
        Presence::Required,
        "The name you assign to the user during creation. This is the user's login for the Console. The name must be unique across all users in the tenancy and cannot be changed.",
    );
    name.force_new = true;
    name.validators = vec![Validator::NotEmpty];
    TypeSchema {
        name: NAME,
        kind: Kind::Resource,
        version: 0,
        importable: true,
        import_id_format: Some("{userId}"),
        block: Block {
            description: "Creates a new user in your tenancy.",
            attributes: vec![
                compartment,
                attribute(
                    "description",
                    Presence::Required,
                    "(Updatable) The description you assign to the user during creation. Does not have to be unique, and it's changeable.",
                ),
                attribute(
                    "email",
                    Presence::OptionalComputed,
                    "(Updatable) The email you assign to the user. Has to be unique across the tenancy.",
                ),
                attribute("id", Presence::Computed, "The OCID of the user."),
                name,
                attribute(
                    "state",
                    Presence::Computed,
                    "The user's current state. After creating a user, make sure its `lifecycleState` changes from CREATING to ACTIVE before using it.",
                ),
                attribute(
                    "time_created",
                    Presence::Computed,
                    "Date and time the user was created, in the format defined by RFC3339.  Example: `2016-08-25T21:10:29.600Z`",
                ),
            ],
            blocks: Vec::new(),
        },
    }
}

/// What the user wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub compartment_id: String,
    pub name: String,
    pub description: String,
    pub email: Option<String>,
}

impl Config {
    pub fn from_value(value: &Value) -> Result<Config, Diagnostic> {
        Ok(Config {
            compartment_id: convert::string(value, "compartment_id")?,
            name: convert::string(value, "name")?,
            description: convert::string(value, "description")?,
            // Unset in a create, the email is planned unknown: the server decides (none).
            email: match value.get("email") {
                Value::Unknown => None,
                _ => convert::opt_string(value, "email")?,
            },
        })
    }
}

/// A user as the server shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUser {
    pub id: String,
    pub compartment_id: String,
    pub name: String,
    pub description: String,
    pub email: Option<String>,
    pub lifecycle_state: String,
    pub time_created: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub id: String,
    pub compartment_id: String,
    pub name: String,
    pub description: String,
    pub email: Option<String>,
    pub state: Option<String>,
    pub time_created: Option<String>,
}

impl State {
    pub fn from_value(value: &Value) -> Result<State, Diagnostic> {
        Ok(State {
            id: convert::string(value, "id")?,
            compartment_id: convert::opt_string(value, "compartment_id")?.unwrap_or_default(),
            name: convert::opt_string(value, "name")?.unwrap_or_default(),
            description: convert::opt_string(value, "description")?.unwrap_or_default(),
            email: convert::opt_string(value, "email")?,
            state: convert::opt_string(value, "state")?,
            time_created: convert::opt_string(value, "time_created")?,
        })
    }

    pub fn to_value(&self) -> Value {
        let opt = |v: &Option<String>| v.as_ref().map_or(Value::Null, Value::string);
        Value::object([
            ("compartment_id", Value::string(&self.compartment_id)),
            ("description", Value::string(&self.description)),
            ("email", opt(&self.email)),
            ("id", Value::string(&self.id)),
            ("name", Value::string(&self.name)),
            ("state", opt(&self.state)),
            ("time_created", opt(&self.time_created)),
        ])
    }
}

/// The state that mirrors what the server shows.
pub fn observe(found: &ServerUser) -> State {
    State {
        id: found.id.clone(),
        compartment_id: found.compartment_id.clone(),
        name: found.name.clone(),
        description: found.description.clone(),
        email: found.email.clone(),
        state: Some(found.lifecycle_state.clone()),
        time_created: Some(format_time(found.time_created)),
    }
}

/// `true` for a user name the API accepts: letters, numerals, `-`, `.`, `_`, `+` and `@`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._+@".contains(c))
}

/// The checks that need no server and must pass before any request: the compartment is an
/// OCID, the name is one the API takes.
pub fn request_checks(config: &Config) -> Vec<Diagnostic> {
    let mut diags: Vec<Diagnostic> = ocid::check(
        "compartment_id",
        &config.compartment_id,
        &["tenancy", "compartment"],
    )
    .into_iter()
    .collect();
    if !valid_name(&config.name) {
        diags.push(Diagnostic::error(
            AttrPath::attr("name"),
            "Invalid value for `name`",
            format!(
                "`name` may hold only letters, numerals, hyphens, periods, underscores, + and @ (no spaces), at most 100 characters; got {:?}.",
                config.name.chars().take(80).collect::<String>()
            ),
        ));
    }
    diags
}

pub fn validate(config: &Value) -> Vec<Diagnostic> {
    let mut diags = plan::validate(&schema().block, config);
    if !diags.is_empty() {
        return diags;
    }
    if let Value::String(compartment) = config.get("compartment_id")
        && let Some(d) = ocid::check("compartment_id", compartment, &["tenancy", "compartment"])
    {
        diags.push(d);
    }
    if let Value::String(name) = config.get("name")
        && !valid_name(name)
    {
        let config = Config {
            compartment_id: "ocid1.tenancy.oc1..x".to_owned(),
            name: name.clone(),
            description: String::new(),
            email: None,
        };
        diags.extend(request_checks(&config));
    }
    diags
}

pub fn plan(prior: Option<&Value>, config: &Value) -> Plan {
    plan::plan(&schema().block, prior, config)
}

/// The state after an in-place update: the server's answer.
pub fn after_update(updated: &ServerUser) -> State {
    observe(updated)
}

/// The state after a refresh, or `None` when the user is gone (absent or DELETED).
pub fn refresh(found: Option<&ServerUser>) -> Option<State> {
    let found = found?;
    if found.lifecycle_state == "DELETED" {
        return None;
    }
    Some(observe(found))
}

/// The user OCID an import names.
pub fn parse_import_id(id: &str) -> Result<String, Diagnostic> {
    match ocid::problem(id, &["user"]) {
        None => Ok(id.to_owned()),
        Some(why) => Err(Diagnostic::error(
            AttrPath::default(),
            "Invalid import id",
            format!(
                "An oci_identity_user is imported by its OCID (ocid1.user.oc1..…); the id {why}."
            ),
        )),
    }
}

/// The partial state an import starts from; the read that follows fills it.
pub fn import_state(id: &str) -> State {
    State {
        id: id.to_owned(),
        compartment_id: String::new(),
        name: String::new(),
        description: String::new(),
        email: None,
        state: None,
        time_created: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use time::macros::datetime;

    const TENANCY: &str = "ocid1.tenancy.oc1..aaaa";

    fn config(name: &str, description: &str, email: Option<&str>) -> Value {
        Value::object([
            ("compartment_id", Value::string(TENANCY)),
            ("name", Value::string(name)),
            ("description", Value::string(description)),
            ("email", email.map_or(Value::Null, Value::string)),
            ("id", Value::Null),
            ("state", Value::Null),
            ("time_created", Value::Null),
        ])
    }

    fn server() -> ServerUser {
        ServerUser {
            id: "ocid1.user.oc1..u1".into(),
            compartment_id: TENANCY.into(),
            name: "alice".into(),
            description: "d1".into(),
            email: None,
            lifecycle_state: "ACTIVE".into(),
            time_created: datetime!(2016-08-25 21:10:29.6 UTC),
        }
    }

    #[test]
    fn description_and_email_update_in_place_name_and_compartment_replace() {
        let prior = observe(&server()).to_value();
        assert_eq!(
            plan(Some(&prior), &config("alice", "d1", None)).action,
            Action::NoOp
        );
        assert_eq!(
            plan(Some(&prior), &config("alice", "d2", None)).action,
            Action::Update
        );
        assert_eq!(
            plan(Some(&prior), &config("alice", "d1", Some("a@example.com"))).action,
            Action::Update
        );
        let renamed = plan(Some(&prior), &config("bob", "d1", None));
        assert_eq!(renamed.action, Action::Replace);
        assert_eq!(renamed.requires_replace, vec![AttrPath::attr("name")]);
        let mut moved = config("alice", "d1", None);
        if let Value::Object(map) = &mut moved {
            map.insert(
                "compartment_id".into(),
                Value::string("ocid1.tenancy.oc1..other"),
            );
        }
        let moved = plan(Some(&prior), &moved);
        assert_eq!(
            moved.requires_replace,
            vec![AttrPath::attr("compartment_id")]
        );
        let created = plan(None, &config("alice", "d1", None));
        assert_eq!(created.planned.get("email"), &Value::Unknown);
        assert_eq!(created.planned.get("id"), &Value::Unknown);
    }

    #[test]
    fn refresh_and_import() {
        let state = refresh(Some(&server())).unwrap();
        assert_eq!(
            state.time_created.as_deref(),
            Some("2016-08-25T21:10:29.6Z")
        );
        let mut deleted = server();
        deleted.lifecycle_state = "DELETED".into();
        assert_eq!(refresh(Some(&deleted)), None);
        assert_eq!(refresh(None), None);
        assert_eq!(
            parse_import_id("ocid1.user.oc1..u1").unwrap(),
            "ocid1.user.oc1..u1"
        );
        for bad in ["..", "users/x", "ocid1.tenancy.oc1..x", ""] {
            assert!(parse_import_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_input_names_the_attribute() {
        let diags = validate(&config("has space", "d", None));
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].path.to_string(), "name");
        let mut cfg = config("alice", "d", None);
        if let Value::Object(map) = &mut cfg {
            map.insert("compartment_id".into(), Value::string("../x"));
        }
        let diags = validate(&cfg);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].path.to_string(), "compartment_id");
        assert!(validate(&config("a.b+c@d_e-f", "", Some("x@y"))).is_empty());
    }
}
