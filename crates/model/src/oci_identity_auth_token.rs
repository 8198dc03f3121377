//! `oci_identity_auth_token`: an auth token of an OCI user.
//!
//! `description` updates in place; `user_id` forces a replacement. The secret `token` is only
//! in the create response, so it is kept from then on through every refresh and update.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::convert;
use crate::diag::{AttrPath, Diagnostic};
use crate::plan::{self, Plan};
use crate::schema::{
    AttrType, Attribute, Block, Kind, NestedBlock, Nesting, Presence, TypeSchema, Validator,
};
use crate::value::Value;

pub const NAME: &str = "oci_identity_auth_token";

pub const NOTES: &str = "\
### Create Operation
Creates a new auth token for the specified user. For information about what auth tokens are for, see
[Managing User Credentials](https://docs.us-phoenix-1.oraclecloud.com/Content/Identity/Tasks/managingcredentials.htm).

You must specify a *description* for the auth token (although it can be an empty string). It does not
have to be unique, and you can change it anytime with
[UpdateAuthToken](https://docs.us-phoenix-1.oraclecloud.com/api/#/en/identity/20160918/AuthToken/UpdateAuthToken).

Every user has permission to create an auth token for *their own user ID*. An administrator in your organization
does not need to write a policy to give users this ability. To compare, administrators who have permission to the
tenancy can use this operation to create an auth token for any user, including themselves.

The provider waits for the new token's `state` to become `ACTIVE`, within the `create` timeout.

If OCI's answer to the create is lost (the connection breaks, the request times out, the service fails) after OCI made the token, Terraform records nothing, and the token's secret is gone with the answer.
The provider lists the user's tokens before each create; after such a failure it lists them again, deletes the one new token with the create's description, and says so in a warning beside the error.
When it cannot tell (several new tokens with that description, or no list before the create) or cannot delete, the error or warning names what to delete by hand.

### The limit of two tokens per user
OCI allows each user two auth tokens at a time.
When a plan creates a token, the provider lists the user's tokens and reports the limit before apply:
an error when the create fails whatever Terraform does (such as a new `user_id` whose user already holds two ACTIVE tokens),
a warning when it fails only in cases the provider cannot see.
Terraform does not tell a provider about `create_before_destroy`, and it plans a tainted token's replacement like a new resource, so a new token for a user who holds two gets a warning (it fits if one of them is the tainted token being replaced), and so does a replacement that would fit only when the old token is destroyed first.
Tokens that are not ACTIVE (CREATING, INACTIVE, DELETING) may count toward the limit and make a warning.
If OCI refuses the create anyway (`400 LimitExceeded`, or a `409` from a service that answers so), the error names the user and the descriptions and OCIDs of the tokens it holds.

### Update Operation
Updates the specified auth token's description.

** IMPORTANT **
Any change to a property that does not support update will force the destruction and recreation of the resource with the new property values

### The token secret
`token` is returned only when the token is created; the provider keeps it in state through every later refresh and update.
It is not marked sensitive, so that existing configurations that output it keep working.
Marking such an output `sensitive = true` hides it only where the output itself is shown.
It does **not** keep `token` out of destroy or replace plans (`terraform plan -destroy` prints it), nor out of `terraform show`, and the token is always stored in the state file in clear.
When nothing outside the run needs the token, use the ephemeral resource `oci_identity_auth_token` instead (Terraform 1.10 and later, see `docs/ephemeral-resources/oci_identity_auth_token.md`): its token never reaches the state file, a plan file or the plan output, and it is deleted when the run ends.
An imported token has no `token` (a warning says so).
";

pub const EXAMPLE: &str = r#"resource "oci_identity_auth_token" "test_auth_token" {
	#Required
	description = "${var.auth_token_description}"
	user_id = "${oci_identity_user.test_user.id}"
}
"#;

pub const IMPORT_EXAMPLE: &str = "terraform import oci_identity_auth_token.test_auth_token \"users/{userId}/authTokens/{authTokenId}\"\n";

/// The attributes of an auth token as both the resource and the data source export them.
pub(crate) fn token_attributes() -> Vec<Attribute> {
    let computed = |name, description| Attribute {
        name,
        ty: AttrType::String,
        presence: Presence::Computed,
        description,
        sensitive: false,
        force_new: false,
        default: None,
        validators: Vec::new(),
        deprecated: false,
    };
    vec![
        computed(
            "description",
            "The description you assign to the auth token. Does not have to be unique, and it's changeable.",
        ),
        computed("id", "The OCID of the auth token."),
        computed(
            "inactive_state",
            "The detailed status of INACTIVE lifecycleState.",
        ),
        computed(
            "state",
            "The token's current state. After creating an auth token, make sure its `lifecycleState` changes from CREATING to ACTIVE before using it.",
        ),
        computed(
            "time_created",
            "Date and time the `AuthToken` object was created, in the format defined by RFC3339.  Example: `2016-08-25T21:10:29.600Z`",
        ),
        computed(
            "time_expires",
            "Date and time when this auth token will expire, in the format defined by RFC3339. Null if it never expires.  Example: `2016-08-25T21:10:29.600Z`",
        ),
        computed(
            "token",
            "The auth token. The value is available only in the response for `CreateAuthToken`, and not for `ListAuthTokens` or `UpdateAuthToken`.",
        ),
        computed("user_id", "The OCID of the user the auth token belongs to."),
    ]
}

pub fn schema() -> TypeSchema {
    let mut attributes = token_attributes();
    for attr in &mut attributes {
        match attr.name {
            "description" => {
                attr.presence = Presence::Required;
                attr.description = "The description you assign to the auth token during creation. Does not have to be unique, and it's changeable.";
            }
            "user_id" => {
                attr.presence = Presence::Required;
                attr.force_new = true;
                attr.validators = vec![Validator::NotEmpty];
                attr.description = "The OCID of the user.";
            }
            _ => {}
        }
    }
    let timeout = |name, description| Attribute {
        name,
        ty: AttrType::String,
        presence: Presence::Optional,
        description,
        sensitive: false,
        force_new: false,
        default: None,
        validators: Vec::new(),
        deprecated: false,
    };
    TypeSchema {
        name: NAME,
        kind: Kind::Resource,
        version: 0,
        importable: true,
        import_id_format: Some("users/{userId}/authTokens/{authTokenId}"),
        block: Block {
            description: "Creates a new auth token for the specified user.",
            attributes,
            blocks: vec![NestedBlock {
                type_name: "timeouts",
                nesting: Nesting::Single,
                min_items: 0,
                max_items: 1,
                force_new: false,
                description: "How long to wait for each operation, as a duration such as `20m` or `1h30m`. Each defaults to 20 minutes.",
                block: Block {
                    description: "",
                    blocks: Vec::new(),
                    attributes: vec![
                        timeout(
                            "create",
                            "How long to wait for a new token to become ACTIVE.",
                        ),
                        timeout("update", "How long to wait for an update."),
                        timeout("delete", "How long to wait for a deletion."),
                    ],
                },
            }],
        },
    }
}

/// Per-operation time limits; `None` means the default of 20 minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeouts {
    pub create: Option<String>,
    pub update: Option<String>,
    pub delete: Option<String>,
}

pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

impl Timeouts {
    fn from_value(value: &Value) -> Result<Option<Timeouts>, Diagnostic> {
        if value.is_null() {
            return Ok(None);
        }
        Ok(Some(Timeouts {
            create: convert::opt_string(value, "create")?,
            update: convert::opt_string(value, "update")?,
            delete: convert::opt_string(value, "delete")?,
        }))
    }

    fn to_value(timeouts: Option<&Timeouts>) -> Value {
        let Some(t) = timeouts else {
            return Value::Null;
        };
        let opt = |v: &Option<String>| v.as_ref().map_or(Value::Null, Value::string);
        Value::object([
            ("create", opt(&t.create)),
            ("update", opt(&t.update)),
            ("delete", opt(&t.delete)),
        ])
    }

    /// The create limit, or the default.
    pub fn create(timeouts: Option<&Timeouts>) -> std::time::Duration {
        timeouts
            .and_then(|t| t.create.as_deref())
            .and_then(|text| parse_duration(text).ok())
            .unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The delete limit, or the default.
    pub fn delete(timeouts: Option<&Timeouts>) -> std::time::Duration {
        timeouts
            .and_then(|t| t.delete.as_deref())
            .and_then(|text| parse_duration(text).ok())
            .unwrap_or(DEFAULT_TIMEOUT)
    }
}

/// The longest timeout: what Terraform's own duration type (Go's, in nanoseconds in an `i64`)
/// holds, about 292 years.
pub const MAX_TIMEOUT: std::time::Duration = std::time::Duration::from_nanos(i64::MAX as u64);

/// Why a timeout is not a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// Not numbers with units such as `20m` or `1h30m`.
    Syntax,
    /// Longer than [`MAX_TIMEOUT`].
    TooLong,
}

/// Parses a duration such as `20m`, `1h30m`, `45s` or `1.5h`, as Terraform's timeouts do
/// (units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, DurationError> {
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(DurationError::Syntax);
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)
            .ok_or(DurationError::Syntax)?;
        let amount: f64 = rest[..digits].parse().map_err(|_| DurationError::Syntax)?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(DurationError::Syntax),
        };
        total += amount * seconds;
        rest = &rest[unit_len..];
    }
    // `total` is finite and not negative here unless it overflowed to infinity, which the
    // bound catches too.
    if total.is_nan() || total > MAX_TIMEOUT.as_secs_f64() {
        return Err(DurationError::TooLong);
    }
    std::time::Duration::try_from_secs_f64(total)
        .map(|d| d.min(MAX_TIMEOUT))
        .map_err(|_| DurationError::TooLong)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub description: String,
    pub user_id: String,
    pub timeouts: Option<Timeouts>,
}

impl Config {
    pub fn from_value(value: &Value) -> Result<Config, Diagnostic> {
        Ok(Config {
            description: convert::string(value, "description")?,
            user_id: convert::string(value, "user_id")?,
            timeouts: Timeouts::from_value(value.get("timeouts"))?,
        })
    }
}

/// The tokens a create whose answer was lost may have made: listed after it (`after`) but not
/// before it (`before`, the ids), with the create's description, and not being deleted.
///
/// One such token is the create's, unless another client made a token with the same
/// description for the same user at the same time: the caller deletes a lone candidate and
/// names several.
pub fn made_by_lost_create<'a>(
    before: &[String],
    after: &'a [ServerAuthToken],
    description: &str,
) -> Vec<&'a ServerAuthToken> {
    after
        .iter()
        .filter(|t| {
            !before.contains(&t.id)
                && t.description == description
                && !matches!(t.lifecycle_state.as_str(), "DELETING" | "DELETED")
        })
        .collect()
}

/// An auth token as the server shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerAuthToken {
    pub id: String,
    pub user_id: String,
    pub description: String,
    /// Only in a create response.
    pub token: Option<String>,
    pub lifecycle_state: String,
    pub inactive_status: Option<i64>,
    pub time_created: OffsetDateTime,
    pub time_expires: Option<OffsetDateTime>,
}

impl std::fmt::Debug for ServerAuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAuthToken")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("description", &self.description)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("lifecycle_state", &self.lifecycle_state)
            .field("inactive_status", &self.inactive_status)
            .field("time_created", &self.time_created)
            .field("time_expires", &self.time_expires)
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct State {
    pub id: String,
    pub user_id: String,
    pub description: String,
    pub token: Option<String>,
    pub state: Option<String>,
    pub inactive_state: Option<String>,
    pub time_created: Option<String>,
    pub time_expires: Option<String>,
    pub timeouts: Option<Timeouts>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("description", &self.description)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("state", &self.state)
            .field("time_created", &self.time_created)
            .finish_non_exhaustive()
    }
}

/// RFC 3339 with milliseconds in UTC, like `2016-08-25T21:10:29.600Z`.
pub fn format_time(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    let millis = utc.replace_nanosecond(utc.millisecond() as u32 * 1_000_000);
    match millis {
        Ok(t) => t.format(&Rfc3339).unwrap_or_default(),
        Err(_) => utc.format(&Rfc3339).unwrap_or_default(),
    }
}

impl State {
    pub fn from_value(value: &Value) -> Result<State, Diagnostic> {
        Ok(State {
            id: convert::string(value, "id")?,
            user_id: convert::string(value, "user_id")?,
            description: convert::opt_string(value, "description")?.unwrap_or_default(),
            token: convert::opt_string(value, "token")?,
            state: convert::opt_string(value, "state")?,
            inactive_state: convert::opt_string(value, "inactive_state")?,
            time_created: convert::opt_string(value, "time_created")?,
            time_expires: convert::opt_string(value, "time_expires")?,
            timeouts: Timeouts::from_value(value.get("timeouts"))?,
        })
    }

    pub fn to_value(&self) -> Value {
        let opt = |v: &Option<String>| v.as_ref().map_or(Value::Null, Value::string);
        Value::object([
            ("description", Value::string(&self.description)),
            ("id", Value::string(&self.id)),
            ("inactive_state", opt(&self.inactive_state)),
            ("state", opt(&self.state)),
            ("time_created", opt(&self.time_created)),
            ("time_expires", opt(&self.time_expires)),
            ("token", opt(&self.token)),
            ("user_id", Value::string(&self.user_id)),
            ("timeouts", Timeouts::to_value(self.timeouts.as_ref())),
        ])
    }

    /// This state with the server's view of everything but the secret.
    fn observe(&self, found: &ServerAuthToken) -> State {
        State {
            id: found.id.clone(),
            user_id: found.user_id.clone(),
            description: found.description.clone(),
            token: self.token.clone(),
            state: Some(found.lifecycle_state.clone()),
            inactive_state: found.inactive_status.map(|s| s.to_string()),
            time_created: Some(format_time(found.time_created)),
            time_expires: found.time_expires.map(format_time),
            timeouts: self.timeouts.clone(),
        }
    }
}

pub fn validate(config: &Value) -> Vec<Diagnostic> {
    let mut diags = plan::validate(&schema().block, config);
    if let Value::Object(timeouts) = config.get("timeouts") {
        for (name, value) in timeouts {
            let Value::String(text) = value else {
                continue;
            };
            let detail = match parse_duration(text) {
                Ok(_) => continue,
                Err(DurationError::Syntax) => format!(
                    "A timeout is a duration such as \"20m\", \"1h30m\" or \"45s\"; got {text:?}."
                ),
                Err(DurationError::TooLong) => {
                    format!("A timeout is at most 2562047h (about 292 years); got {text:?}.")
                }
            };
            diags.push(Diagnostic::error(
                AttrPath::attr("timeouts").child(name),
                format!("Invalid value for `timeouts.{name}`"),
                detail,
            ));
        }
    }
    diags
}

pub fn plan(prior: Option<&Value>, config: &Value) -> Plan {
    plan::plan(&schema().block, prior, config)
}

/// The state after the server created `created` (the create response, which holds the secret).
pub fn after_create(config: &Config, created: &ServerAuthToken) -> State {
    let blank = State {
        id: created.id.clone(),
        user_id: created.user_id.clone(),
        description: created.description.clone(),
        token: created.token.clone(),
        state: None,
        inactive_state: None,
        time_created: None,
        time_expires: None,
        timeouts: config.timeouts.clone(),
    };
    blank.observe(created)
}

/// The state after an in-place update: the new description; everything else, the secret
/// included, stays as it was planned.
pub fn after_update(prior: &State, config: &Config) -> State {
    State {
        description: config.description.clone(),
        timeouts: config.timeouts.clone(),
        ..prior.clone()
    }
}

/// The state after a refresh, or `None` when the token is gone (absent from the list or DELETED).
/// The secret is never taken from the server: lists and updates do not carry it.
pub fn refresh(prior: &State, found: Option<&ServerAuthToken>) -> Option<State> {
    let found = found?;
    if found.lifecycle_state == "DELETED" {
        return None;
    }
    Some(prior.observe(found))
}

/// The import id `users/{userId}/authTokens/{authTokenId}` split into (user id, token id).
pub fn parse_import_id(id: &str) -> Result<(String, String), Diagnostic> {
    let parts: Vec<&str> = id.split('/').collect();
    let bad = || {
        Diagnostic::error(
            AttrPath::default(),
            "Invalid import id",
            format!(
                "An oci_identity_auth_token is imported as users/{{userId}}/authTokens/{{authTokenId}}; got {id:?}."
            ),
        )
    };
    match parts.as_slice() {
        ["users", user, "authTokens", token] if !user.is_empty() && !token.is_empty() => Ok((
            unescape(user).ok_or_else(bad)?,
            unescape(token).ok_or_else(bad)?,
        )),
        _ => Err(bad()),
    }
}

/// Undoes URL path escaping (`%2F` and friends); `None` for a malformed escape.
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        if bytes[idx] == b'%' {
            let hex = text.get(idx + 1..idx + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            idx += 3;
        } else {
            out.push(bytes[idx]);
            idx += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The partial state an import starts from; the read that follows fills it.
pub fn import_state(user_id: &str, token_id: &str) -> State {
    State {
        id: token_id.to_owned(),
        user_id: user_id.to_owned(),
        description: String::new(),
        token: None,
        state: None,
        inactive_state: None,
        time_created: None,
        time_expires: None,
        timeouts: None,
    }
}

/// What an import tells the user about the secret.
pub fn import_warning() -> Diagnostic {
    Diagnostic::warning(
        AttrPath::attr("token"),
        "The token secret cannot be imported",
        "OCI returns an auth token's secret only when the token is created, so an imported oci_identity_auth_token has no `token` (it is null in state).",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use time::macros::datetime;

    fn config(description: &str, user: &str) -> Value {
        let mut map = match Value::null_block(&schema().block) {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        map.insert("description".into(), Value::string(description));
        map.insert("user_id".into(), Value::string(user));
        Value::Object(map)
    }

    #[test]
    fn a_lost_create_made_the_new_token_with_its_description_that_is_not_going() {
        let token = |id: &str, description: &str, state: &str| ServerAuthToken {
            id: id.into(),
            description: description.into(),
            lifecycle_state: state.into(),
            ..created()
        };
        let after = vec![
            token("old", "d1", "ACTIVE"),
            token("new", "d1", "CREATING"),
            token("other", "d2", "ACTIVE"),
            token("going", "d1", "DELETING"),
            token("gone", "d1", "DELETED"),
        ];
        let ids = |found: Vec<&ServerAuthToken>| -> Vec<String> {
            found.into_iter().map(|t| t.id.clone()).collect()
        };
        let before = vec!["old".to_owned()];
        assert_eq!(ids(made_by_lost_create(&before, &after, "d1")), ["new"]);
        assert_eq!(ids(made_by_lost_create(&before, &after, "d2")), ["other"]);
        assert!(made_by_lost_create(&before, &after, "d3").is_empty());
        // Nothing listed before: every token of the description that is not going is a candidate.
        assert_eq!(ids(made_by_lost_create(&[], &after, "d1")), ["old", "new"]);
        assert!(made_by_lost_create(&before, &[], "d1").is_empty());
    }

    fn created() -> ServerAuthToken {
        ServerAuthToken {
            id: "ocid1.credential.oc1..aaaa".into(),
            user_id: "ocid1.user.oc1..u1".into(),
            description: "d1".into(),
            token: Some("s3cr3t-T0ken".into()),
            lifecycle_state: "ACTIVE".into(),
            inactive_status: None,
            time_created: datetime!(2016-08-25 21:10:29.6 UTC),
            time_expires: None,
        }
    }

    fn state() -> State {
        let cfg = Config::from_value(&config("d1", "ocid1.user.oc1..u1")).unwrap();
        after_create(&cfg, &created())
    }

    #[test]
    fn create_keeps_the_secret_and_formats_rfc3339() {
        let state = state();
        assert_eq!(state.token.as_deref(), Some("s3cr3t-T0ken"));
        assert_eq!(
            state.time_created.as_deref(),
            Some("2016-08-25T21:10:29.6Z")
        );
        assert_eq!(state.time_expires, None);
        assert_eq!(state.state.as_deref(), Some("ACTIVE"));
    }

    #[test]
    fn description_updates_in_place_and_user_id_replaces() {
        let prior = state().to_value();
        let same = plan(Some(&prior), &config("d1", "ocid1.user.oc1..u1"));
        assert_eq!(same.action, Action::NoOp);
        let update = plan(Some(&prior), &config("d2", "ocid1.user.oc1..u1"));
        assert_eq!(update.action, Action::Update);
        assert_eq!(update.planned.get("token"), &Value::string("s3cr3t-T0ken"));
        let replace = plan(Some(&prior), &config("d1", "ocid1.user.oc1..u2"));
        assert_eq!(replace.action, Action::Replace);
        assert_eq!(replace.requires_replace, vec![AttrPath::attr("user_id")]);
        assert_eq!(replace.planned.get("token"), &Value::Unknown);
    }

    #[test]
    fn the_secret_survives_refresh_and_update() {
        let prior = state();
        let mut listed = created();
        listed.token = None;
        listed.description = "changed elsewhere".into();
        let refreshed = refresh(&prior, Some(&listed)).unwrap();
        assert_eq!(refreshed.token.as_deref(), Some("s3cr3t-T0ken"));
        assert_eq!(refreshed.description, "changed elsewhere");
        let cfg = Config::from_value(&config("d2", "ocid1.user.oc1..u1")).unwrap();
        assert_eq!(
            after_update(&refreshed, &cfg).token.as_deref(),
            Some("s3cr3t-T0ken")
        );
    }

    #[test]
    fn gone_or_deleted_tokens_are_forgotten() {
        assert_eq!(refresh(&state(), None), None);
        let mut deleted = created();
        deleted.lifecycle_state = "DELETED".into();
        assert_eq!(refresh(&state(), Some(&deleted)), None);
    }

    #[test]
    fn import_ids() {
        assert_eq!(
            parse_import_id("users/ocid1.user.oc1..u1/authTokens/ocid1.credential.oc1..t").unwrap(),
            (
                "ocid1.user.oc1..u1".to_owned(),
                "ocid1.credential.oc1..t".to_owned()
            )
        );
        assert_eq!(
            parse_import_id("users/a%2Fb/authTokens/t").unwrap().0,
            "a/b"
        );
        for bad in [
            "ocid1.credential.oc1..t",
            "users//authTokens/t",
            "users/u/tokens/t",
            "users/u/authTokens/t/x",
            "users/%zz/authTokens/t",
        ] {
            assert!(parse_import_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timeouts_are_durations() {
        assert_eq!(
            parse_duration("20m"),
            Ok(std::time::Duration::from_secs(1200))
        );
        assert_eq!(
            parse_duration("1h30m"),
            Ok(std::time::Duration::from_secs(5400))
        );
        assert_eq!(
            parse_duration("1.5s250ms"),
            Ok(std::time::Duration::from_millis(1750))
        );
        assert_eq!(
            parse_duration("2562047h"),
            Ok(std::time::Duration::from_secs(2_562_047 * 3600))
        );
        assert_eq!(parse_duration("soon"), Err(DurationError::Syntax));
        assert_eq!(parse_duration("1..5m"), Err(DurationError::Syntax));
        assert_eq!(parse_duration("-5m"), Err(DurationError::Syntax));
        for huge in [
            "99999999999999999999999h",
            "2562048h",
            &format!("{}h", "9".repeat(400)),
            &"9999999999h".repeat(50),
        ] {
            assert_eq!(parse_duration(huge), Err(DurationError::TooLong), "{huge}");
        }
        let mut cfg = config("d", "u");
        if let Value::Object(map) = &mut cfg {
            map.insert(
                "timeouts".into(),
                Value::object([
                    ("create", Value::string("soon")),
                    ("update", Value::Null),
                    ("delete", Value::Null),
                ]),
            );
        }
        let diags = validate(&cfg);
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].path.to_string(), "timeouts.create");
    }
}
