//! `lxd_trust_token`: a trust token that lets another client join an LXD server.
//!
//! The token's identity is the LXD operation that holds it, not its name: several tokens may
//! share a name. Every input forces a replacement; there is no in-place update.

use time::OffsetDateTime;
use time::macros::format_description;

use crate::diag::{AttrPath, Diagnostic};
use crate::plan::{self, Plan};
use crate::schema::{
    AttrType, Attribute, Block, Default, Kind, Presence, TypeSchema, Validator, attr,
};
use crate::value::Value;

pub const NAME: &str = "lxd_trust_token";

/// The notes of the users' documentation, kept here so the docs page is generated from them.
pub const NOTES: &str = "\
~> **Note:** The LXD trust token resource cannot be used for the initial authentication
  with the LXD server because LXD Terraform provider needs to be authenticated in order
  to request trust tokens for other clients.

## Trust token expiry

Trust token expiry is defined in the server's configuration (`core.remote_token_expiry`).
If the setting is configured, `expires_at` attribute will be populated, otherwise, it will be empty.
LXD 5.21.5 and later, and 6.7 and later, give every token a 15-day expiry when the setting is unset.

For example, to set the token expiry to 20 minutes, run the following command:
```
lxc config set core.remote_token_expiry=20M
```

If trigger is set to `once` the token will not be regenerated on subsequent plan applies: `status` shows what became of it, and the plan warns once when it expired unused.
By setting the trigger to `always` ensures that the token is always present: a token whose `status` is anything but `pending` is replaced, and the plan warns why.
The replacement revokes the old token first if the server still lists it, so no token made by the resource is left pending after an apply or a destroy.

## Status

Every refresh decides `status` from three things the server shows: the token's operation (running, cancelled, or gone), `expires_at` against the server's own clock (the `Date` of its reply), and the trust store (the certificates, or identities on newer LXD, named like the token).
The provider records in its private state which trust-store entries of that name, and which other pending tokens of that name, existed while the token was still pending, and the token's exact expiry (`expires_at` shows only the minute).

* `pending` - The operation is running and the expiry, if any, is still ahead: the token can be used.
* `consumed` - The operation is cancelled or gone, and exactly one trust-store entry of the token's name appeared that the record does not hold, while no other token of that name that the record holds disappeared. `consumed_by` is that entry's fingerprint.
* `expired` - The expiry passed while the token was unused: the server still lists it (LXD removes expired tokens only at a periodic sweep, every minute on LXD 5.0.2, hourly on LXD 5.0.4+, 5.21.3+ and 6.2+), or it is gone after its expiry and no new entry of its name appeared.
* `revoked` - The operation is still retained as cancelled (LXD keeps a finished operation for five seconds) before the expiry, and no new entry of its name appeared: it was revoked, for example with `lxc config trust revoke-token`, or burnt by a join that failed (a project that does not exist, no client certificate).
* `unknown` - The operation is gone and the server gives no proof of why: it was revoked more than five seconds ago, lost in a daemon restart, or used while another token of the same name also disappeared, so the new entry cannot be told apart.

Once a token is anything but `pending` its status never changes again.
The rules are the same on every generation: LXD 5.0 lists the consumer under `/1.0/certificates`, newer LXD and Incus keep serving that list for TLS identities.
Limits: a certificate added by other means (`lxc config trust add-certificate --name`) with the token's name, or a token of the same name made and used between two refreshes, can be taken for this token's consumer; a consumer deleted before the next refresh leaves `expired`, `revoked` or `unknown` instead of `consumed`.
A token imported with `terraform import` has no record of the trust store before it was made, so it is recorded at import.

## Removing the consumer

With `remove_consumer_on_destroy = true`, destroying (or replacing) a `consumed` token also deletes its consumer from the trust store, by the fingerprint in `consumed_by`: never another certificate of the same name.
LXD 5.21.5+ and 6.6+ refuse a second identity of the same name, so this is what lets a replacement reuse the name there (terraform-provider-lxd issue #760).
On those servers a token whose name an identity already holds is refused with an error naming that identity, rather than a token that fails when redeemed: at plan when the server answers within a few seconds, and at apply in any case.

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
                attr(
                    "status",
                    string(),
                    Presence::Computed,
                    "What became of the token: `pending` (usable), `consumed` (a client joined with it), `expired`, `revoked`, or `unknown` (gone from the server without proof of why). See [Status](#status).",
                ),
                attr(
                    "consumed_by",
                    string(),
                    Presence::Computed,
                    "When `status` is `consumed`: the fingerprint of the client certificate that joined with the token; otherwise null.",
                ),
                Attribute {
                    default: Some(Default::Bool(false)),
                    ..attr(
                        "remove_consumer_on_destroy",
                        AttrType::Bool,
                        Presence::OptionalComputed,
                        "When `true`, destroying (or replacing) a consumed token also removes the client certificate its consumption added to the server's trust store: exactly the one whose fingerprint is `consumed_by`, never another of the same name. Defaults to `false`.",
                    )
                },
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

/// What became of a token, as far as the server proves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// The token operation is running and its expiry (if any) is still ahead: usable.
    Pending,
    /// A client joined with it; `consumed_by` names that client.
    Consumed,
    /// Its expiry passed before anybody joined with it.
    Expired,
    /// The operation was cancelled without a client joining (revoked, or a failed join burnt it).
    Revoked,
    /// The operation is gone and the server gives no proof of why.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Consumed => "consumed",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
            Status::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::Consumed,
            Status::Expired,
            Status::Revoked,
            Status::Unknown,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Anything but `pending`: the token can no longer be used, whatever happens next.
    pub fn is_final(self) -> bool {
        self != Status::Pending
    }
}

/// What the server shows of the token's operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Running: the token is listed (it may still have expired; LXD sweeps late).
    Running(ServerToken),
    /// Cancelled and still retained (LXD keeps a finished operation for five seconds).
    Cancelled,
    /// Not found: pruned after it finished, or lost in a daemon restart.
    Gone,
}

/// The provider's private record of a token: the trust store and the rival tokens as they
/// were last seen while the token was still pending. A trust-store entry is only ever
/// attributed to this token when it is not in this record.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    /// Fingerprints of the trust-store entries named like the token.
    pub named: std::collections::BTreeSet<String>,
    /// The other pending tokens (operation ids) with the same name.
    pub rivals: std::collections::BTreeSet<String>,
    /// The token's expiry as the server gave it, to the nanosecond: the state's `expires_at`
    /// keeps only the minute, which cannot tell a revocation in the token's last minute from
    /// its expiry once the operation is no longer listed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires_at: Option<OffsetDateTime>,
}

impl Baseline {
    /// The private-state bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads private-state bytes; `None` when there are none (a state written before the
    /// record existed) or they are unreadable, so no consumption is ever claimed from them.
    pub fn from_bytes(bytes: &[u8]) -> Option<Baseline> {
        serde_json::from_slice(bytes).ok()
    }
}

/// One look at the server, at the server's own time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub operation: Operation,
    /// The server's clock when it answered (its `Date`), which expiry is measured against.
    pub now: OffsetDateTime,
    /// Fingerprints of the trust-store entries (certificates, identities) named like the token.
    pub named: std::collections::BTreeSet<String>,
    /// Ids of the other running token operations with the token's name.
    pub rivals: std::collections::BTreeSet<String>,
}

/// The status the server proves, and the client that consumed the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub consumed_by: Option<String>,
}

/// Decides a token's status from the prior verdict, the private record and one observation;
/// returns the new verdict and the record to keep.
///
/// - A final status (anything but pending) never changes again.
/// - Running: `expired` when `expires_at` is at or before the server's clock, else `pending`.
///   While running, nothing in the trust store can stem from this token, so the record takes
///   in every entry of that name and the rivals running now.
/// - Cancelled or gone: `consumed` by fingerprint F only when F is the one entry of that name
///   that is new since the record and no rival of the record has disappeared too (which could
///   have made F instead). With no proof: `expired` when the expiry has passed and nothing new
///   appeared, `revoked` when the cancelled operation is still retained, `unknown` otherwise.
pub fn decide(
    prior: &Verdict,
    expires_at: Option<OffsetDateTime>,
    record: Option<&Baseline>,
    seen: &Observation,
) -> (Verdict, Option<Baseline>) {
    if prior.status.is_final() {
        return (prior.clone(), record.cloned());
    }
    let verdict = |status, consumed_by| Verdict {
        status,
        consumed_by,
    };
    if let Operation::Running(found) = &seen.operation {
        let mut next = record.cloned().unwrap_or_default();
        next.named.extend(seen.named.iter().cloned());
        next.rivals = seen.rivals.clone();
        next.expires_at = found.expires_at;
        let status = if expires_at.is_some_and(|at| at <= seen.now) {
            Status::Expired
        } else {
            Status::Pending
        };
        return (verdict(status, None), Some(next));
    }
    let expired = expires_at.is_some_and(|at| at <= seen.now);
    let Some(record) = record else {
        // Nothing was recorded while the token was pending: no outcome can be proven.
        return (verdict(Status::Unknown, None), None);
    };
    let new: Vec<&String> = seen.named.difference(&record.named).collect();
    let rivals_gone = record.rivals.difference(&seen.rivals).next().is_some();
    let status = match (new.as_slice(), rivals_gone) {
        ([only], false) => {
            let consumer = Some((*only).clone());
            return (verdict(Status::Consumed, consumer), Some(record.clone()));
        }
        ([], _) if expired => Status::Expired,
        ([], false) if seen.operation == Operation::Cancelled => Status::Revoked,
        _ => Status::Unknown,
    };
    (verdict(status, None), Some(record.clone()))
}

/// A wholly known configuration, as apply sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub name: String,
    pub projects: Vec<String>,
    pub remote: Option<String>,
    pub trigger: Trigger,
    pub remove_consumer_on_destroy: bool,
}

/// What Terraform stores.
#[derive(Clone, PartialEq, Eq)]
pub struct State {
    pub config: Config,
    pub operation_id: String,
    pub token: String,
    /// `YYYY/MM/DD hh:mm TZ`, or empty when the token does not expire.
    pub expires_at: String,
    pub status: Status,
    pub consumed_by: Option<String>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("config", &self.config)
            .field("operation_id", &self.operation_id)
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("status", &self.status)
            .field("consumed_by", &self.consumed_by)
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

/// `YYYY/MM/DD hh:mm TZ` in UTC, the way `lxc config trust list-tokens` shows it.
pub fn format_expires_at(at: Option<OffsetDateTime>) -> String {
    let Some(at) = at else {
        return String::new();
    };
    let utc = at.to_offset(time::UtcOffset::UTC);
    let format = format_description!("[year]/[month]/[day] [hour]:[minute] UTC");
    utc.format(format).unwrap_or_default()
}

/// Reads back what [`format_expires_at`] wrote; `None` for an empty or foreign text.
pub fn parse_expires_at(text: &str) -> Option<OffsetDateTime> {
    let format = format_description!("[year]/[month]/[day] [hour]:[minute] UTC");
    time::PrimitiveDateTime::parse(text, format)
        .ok()
        .map(|t| t.assume_utc())
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

/// The attributes only the server fills in, unknown in a plan that makes a new token.
const COMPUTED: [&str; 6] = [
    "token",
    "expires_at",
    "operation_id",
    "id",
    "status",
    "consumed_by",
];

/// Plans the configuration. Beyond the schema's rules: with `trigger = "always"`, a token
/// that can no longer be used (any status but `pending`) is replaced, the replacement shown as
/// forced by `status`.
pub fn plan(prior: Option<&Value>, config: &Value) -> Plan {
    let mut planned = plan::plan(&schema().block, prior, config);
    let Some(prior) = prior else {
        return planned;
    };
    let spent = prior
        .get("status")
        .as_str()
        .and_then(Status::parse)
        .is_some_and(Status::is_final);
    let always = prior.get("trigger").as_str() == Some("always")
        && planned.planned.get("trigger").as_str() == Some("always");
    if spent && always {
        planned.action = plan::Action::Replace;
        planned.requires_replace.push(AttrPath::attr("status"));
    }
    if planned.action == plan::Action::Replace
        && let Value::Object(map) = &mut planned.planned
    {
        for name in COMPUTED {
            map.insert(name.to_owned(), Value::Unknown);
        }
    }
    planned
}

/// The warnings a plan carries: why and since when a `trigger = "always"` token is replaced.
pub fn plan_warnings(prior: Option<&Value>, plan: &Plan) -> Vec<Diagnostic> {
    let Some(prior) = prior else {
        return Vec::new();
    };
    if !plan.requires_replace.contains(&AttrPath::attr("status")) {
        return Vec::new();
    }
    let name = prior.get("name").as_str().unwrap_or_default();
    let status = prior.get("status").as_str().and_then(Status::parse);
    let why = match status {
        Some(Status::Consumed) => format!(
            "was consumed: the client with certificate fingerprint {} joined with it",
            prior.get("consumed_by").as_str().unwrap_or("(not known)")
        ),
        Some(Status::Expired) => format!(
            "expired at {} without being used",
            prior.get("expires_at").as_str().unwrap_or_default()
        ),
        Some(Status::Revoked) => {
            "was revoked on the server (or burnt by a failed join)".to_owned()
        }
        _ => "is no longer on the server, which gives no proof of why (revoked, expired and swept, or lost in a daemon restart)".to_owned(),
    };
    vec![Diagnostic::warning(
        AttrPath::attr("status"),
        "Trust token will be replaced",
        format!(
            "The trust token {name:?} (operation {}) {why}, as seen at the last refresh. With trigger = \"always\" this apply revokes it (if it is still listed) and creates a new token.",
            prior.get("operation_id").as_str().unwrap_or_default()
        ),
    )]
}

/// The warning a refresh gives once, when a `trigger = "once"` token is found expired unused.
pub fn refresh_warnings(prior: &State, refreshed: &State) -> Vec<Diagnostic> {
    if prior.status != Status::Pending
        || refreshed.status != Status::Expired
        || refreshed.config.trigger != Trigger::Once
    {
        return Vec::new();
    }
    vec![Diagnostic::warning(
        AttrPath::attr("status"),
        "Trust token expired unused",
        format!(
            "The trust token {:?} (operation {}) expired at {} and was never used. With trigger = \"once\" it is not replaced; set trigger = \"always\" or replace it to get a usable token.",
            prior.config.name, prior.operation_id, refreshed.expires_at
        ),
    )]
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
        let remove_consumer_on_destroy =
            crate::convert::opt_bool(value, "remove_consumer_on_destroy")?.unwrap_or(false);
        Ok(Config {
            name,
            projects,
            remote,
            trigger,
            remove_consumer_on_destroy,
        })
    }
}

impl State {
    pub fn from_value(value: &Value) -> Result<State, Diagnostic> {
        let status = match crate::convert::opt_string(value, "status")? {
            // A state written before `status` existed: the token was pending when last seen.
            None => Status::Pending,
            Some(text) => Status::parse(&text).ok_or_else(|| {
                Diagnostic::error(
                    AttrPath::attr("status"),
                    "Invalid value for `status`",
                    format!("`status` must be one of pending, consumed, expired, revoked, unknown; got {text:?}."),
                )
            })?,
        };
        Ok(State {
            config: Config::from_value(value)?,
            operation_id: crate::convert::string(value, "operation_id")?,
            token: crate::convert::opt_string(value, "token")?.unwrap_or_default(),
            expires_at: crate::convert::opt_string(value, "expires_at")?.unwrap_or_default(),
            status,
            consumed_by: crate::convert::opt_string(value, "consumed_by")?,
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
            ("status", Value::string(self.status.as_str())),
            (
                "consumed_by",
                self.consumed_by.as_ref().map_or(Value::Null, Value::string),
            ),
            (
                "remove_consumer_on_destroy",
                Value::Bool(self.config.remove_consumer_on_destroy),
            ),
        ])
    }

    fn verdict(&self) -> Verdict {
        Verdict {
            status: self.status,
            consumed_by: self.consumed_by.clone(),
        }
    }
}

/// The state after the server created `created` for `config`.
pub fn after_create(config: Config, created: &ServerToken) -> State {
    State {
        config,
        operation_id: created.operation_id.clone(),
        token: created.token.clone(),
        expires_at: format_expires_at(created.expires_at),
        status: Status::Pending,
        consumed_by: None,
    }
}

/// The state after an in-place update: only `remove_consumer_on_destroy` can change in place.
pub fn after_update(prior: &State, config: &Config) -> State {
    State {
        config: Config {
            remove_consumer_on_destroy: config.remove_consumer_on_destroy,
            ..prior.config.clone()
        },
        ..prior.clone()
    }
}

/// The state after a refresh, and the private record to keep.
///
/// The token is never forgotten: a token that can no longer be used keeps its state with the
/// status that says why, so that `trigger = "always"` plans a replacement (which revokes the
/// old operation if it is still listed) and `trigger = "once"` keeps it as the seed says.
pub fn refresh(
    prior: &State,
    record: Option<&Baseline>,
    seen: &Observation,
) -> (State, Option<Baseline>) {
    // The exact expiry the record holds; a record written without it has only the minute.
    let expires_at = match &seen.operation {
        Operation::Running(found) => found.expires_at,
        _ => record
            .and_then(|r| r.expires_at)
            .or_else(|| parse_expires_at(&prior.expires_at)),
    };
    let (verdict, record) = decide(&prior.verdict(), expires_at, record, seen);
    let mut next = State {
        status: verdict.status,
        consumed_by: verdict.consumed_by,
        ..prior.clone()
    };
    if let (Operation::Running(found), false) = (&seen.operation, prior.status.is_final()) {
        next.config.name = found.name.clone();
        next.token = found.token.clone();
        next.expires_at = format_expires_at(found.expires_at);
    }
    (next, record)
}

/// The trust-store entry destroy removes: the consumer, when the user opted in and the
/// consumption is proven.
pub fn consumer_to_remove(state: &State) -> Option<&str> {
    (state.config.remove_consumer_on_destroy && state.status == Status::Consumed)
        .then_some(state.consumed_by.as_deref())
        .flatten()
}

/// Whether the server refuses a second TLS identity of the same name (LXD 5.21.5+ and 6.6+;
/// never Incus), which makes a token of a taken name fail when redeemed.
pub fn enforces_unique_names(server: &str, version: &str) -> bool {
    if server != "lxd" {
        return false;
    }
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    let patch = parts.next().unwrap_or(0);
    match (major, minor) {
        (5, 21) => patch >= 5,
        (6, m) => m >= 6,
        (m, _) => m > 6,
    }
}

/// What a plan that makes a new token can check on the server before the apply: the name
/// that must be free on a server with unique identity names, the consumer the replacement
/// removes from the trust store before it creates (holding the name is no obstacle then), and
/// the projects that must exist (empty when none is asked for or one is not known yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCheck {
    pub name: String,
    pub remote: Option<String>,
    pub removed_first: Option<String>,
    pub projects: Vec<String>,
}

/// The name check a plan calls for: only when it makes a new token whose name and remote are
/// known. `None` otherwise (the apply checks again in any case).
pub fn name_check(prior: Option<&Value>, plan: &Plan) -> Option<NameCheck> {
    if !matches!(plan.action, plan::Action::Create | plan::Action::Replace) {
        return None;
    }
    let name = plan
        .planned
        .get("name")
        .as_str()
        .filter(|n| !n.is_empty())?;
    let remote = match plan.planned.get("remote") {
        Value::Null => None,
        other => Some(other.as_str()?.to_owned()),
    };
    let removed_first = prior
        .filter(|_| plan.action == plan::Action::Replace)
        .and_then(|prior| State::from_value(prior).ok())
        .and_then(|state| consumer_to_remove(&state).map(str::to_owned));
    let projects = match plan.planned.get("projects") {
        Value::List(items) => items
            .iter()
            .map(|p| p.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Some(NameCheck {
        name: name.to_owned(),
        remote,
        removed_first,
        projects,
    })
}

/// The errors for projects the server does not have, each on its element of `projects`.
pub fn missing_projects(
    projects: &[String],
    known: &std::collections::BTreeSet<String>,
) -> Vec<Diagnostic> {
    projects
        .iter()
        .enumerate()
        .filter(|(_, p)| !known.contains(*p))
        .map(|(idx, p)| {
            Diagnostic::error(
                AttrPath::attr("projects").index(idx),
                "Invalid value for `projects`",
                format!(
                    "The LXD server has no project {p:?}; a token restricted to it could never be used."
                ),
            )
        })
        .collect()
}

/// The error for a token name an identity already holds on a server with unique names.
pub fn name_taken(name: &str, fingerprint: &str) -> Diagnostic {
    Diagnostic::error(
        AttrPath::attr("name"),
        "Trust token name already taken",
        format!(
            "The LXD server already has the identity {name:?} (certificate fingerprint {fingerprint}) and refuses a second identity of the same name, so a token named {name:?} would fail when redeemed (\"This \\\"identity\\\" entry already exists\"). Choose another name, or delete that identity first (remove_consumer_on_destroy = true does this for a token's own consumer)."
        ),
    )
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

/// The state after importing the pending token `found`, seen at the server's time `now`.
///
/// The trigger is not stored on the server; an import assumes the default, `once`.
pub fn after_import(found: &ServerToken, projects: Vec<String>, now: OffsetDateTime) -> State {
    let expired = found.expires_at.is_some_and(|at| at <= now);
    State {
        config: Config {
            name: found.name.clone(),
            projects,
            remote: None,
            trigger: Trigger::Once,
            remove_consumer_on_destroy: false,
        },
        operation_id: found.operation_id.clone(),
        token: found.token.clone(),
        expires_at: format_expires_at(found.expires_at),
        status: if expired {
            Status::Expired
        } else {
            Status::Pending
        },
        consumed_by: None,
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
            ("status", Value::Null),
            ("consumed_by", Value::Null),
            ("remove_consumer_on_destroy", Value::Null),
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

    fn set(names: &[&str]) -> std::collections::BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn seen(operation: Operation, minute: i64, named: &[&str], rivals: &[&str]) -> Observation {
        Observation {
            operation,
            now: datetime!(2026-11-23 05:00 UTC) + time::Duration::minutes(minute),
            named: set(named),
            rivals: set(rivals),
        }
    }

    /// Runs `decide` from a pending token over `steps`, with expiry at minute 20, and returns
    /// the status and consumer after each step.
    fn check(steps: &[Observation], expected: &[(Status, Option<&str>)]) {
        let expires = Some(datetime!(2026-11-23 05:20 UTC));
        let mut verdict = Verdict {
            status: Status::Pending,
            consumed_by: None,
        };
        let mut record = Some(Baseline::default());
        let mut got = Vec::new();
        for step in steps {
            (verdict, record) = decide(&verdict, expires, record.as_ref(), step);
            got.push((verdict.status, verdict.consumed_by.clone()));
        }
        let expected: Vec<_> = expected
            .iter()
            .map(|(s, c)| (*s, c.map(str::to_owned)))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn status_rules() {
        let running = || Operation::Running(server_token(Some(datetime!(2026-11-23 05:20 UTC))));
        use Operation::{Cancelled, Gone};
        use Status::*;
        // Consumed by the one new certificate of that name; older ones are never taken.
        check(
            &[
                seen(running(), 0, &["old"], &[]),
                seen(Cancelled, 1, &["old", "new"], &[]),
            ],
            &[(Pending, None), (Consumed, Some("new"))],
        );
        // Final statuses stay, even when the certificate is deleted or the clock passes expiry.
        check(
            &[
                seen(running(), 0, &[], &[]),
                seen(Gone, 1, &["c"], &[]),
                seen(Gone, 30, &[], &[]),
            ],
            &[
                (Pending, None),
                (Consumed, Some("c")),
                (Consumed, Some("c")),
            ],
        );
        // Expired while still listed (the sweep is late), then gone: expired.
        check(
            &[seen(running(), 20, &[], &[]), seen(Gone, 21, &[], &[])],
            &[(Expired, None), (Expired, None)],
        );
        // Gone after the expiry with nothing new: expired.
        check(
            &[seen(running(), 0, &[], &[]), seen(Gone, 25, &[], &[])],
            &[(Pending, None), (Expired, None)],
        );
        // Cancelled before the expiry, nothing new: revoked; gone with nothing new: unknown.
        check(
            &[seen(running(), 0, &[], &[]), seen(Cancelled, 1, &[], &[])],
            &[(Pending, None), (Revoked, None)],
        );
        check(
            &[seen(running(), 0, &[], &[]), seen(Gone, 1, &[], &[])],
            &[(Pending, None), (Unknown, None)],
        );
        // Two same-name tokens, both gone, one new certificate: no proof whose it is.
        check(
            &[
                seen(running(), 0, &[], &["rival"]),
                seen(Gone, 1, &["c"], &[]),
            ],
            &[(Pending, None), (Unknown, None)],
        );
        // The rival is still pending: the new certificate is ours.
        check(
            &[
                seen(running(), 0, &[], &["rival"]),
                seen(Gone, 1, &["c"], &["rival"]),
            ],
            &[(Pending, None), (Consumed, Some("c"))],
        );
        // A rival consumed while ours was pending is absorbed into the record.
        check(
            &[
                seen(running(), 0, &[], &["rival"]),
                seen(running(), 1, &["theirs"], &[]),
                seen(Gone, 2, &["theirs", "ours"], &[]),
            ],
            &[(Pending, None), (Pending, None), (Consumed, Some("ours"))],
        );
        // Two new certificates of that name: unknown.
        check(
            &[
                seen(running(), 0, &[], &[]),
                seen(Gone, 1, &["a", "b"], &[]),
            ],
            &[(Pending, None), (Unknown, None)],
        );
    }

    #[test]
    fn a_revocation_in_the_last_minute_is_not_an_expiry() {
        // The state shows `05:20`; the token really expires at 05:20:40 and is revoked at
        // 05:20:10: revoked, which only the exact expiry in the record can tell.
        let exact = datetime!(2026-11-23 05:20:40 UTC);
        let prior = created_state(Trigger::Always, Some(exact));
        assert_eq!(prior.expires_at, "2026/11/23 05:20 UTC");
        let observe = |operation, now| Observation {
            operation,
            now,
            named: std::collections::BTreeSet::new(),
            rivals: std::collections::BTreeSet::new(),
        };
        let running = Operation::Running(server_token(Some(exact)));
        let (pending, record) = refresh(
            &prior,
            Some(&Baseline::default()),
            &observe(running, datetime!(2026-11-23 05:19 UTC)),
        );
        assert_eq!(pending.status, Status::Pending);
        assert_eq!(record.as_ref().and_then(|r| r.expires_at), Some(exact));
        let cancelled_at = datetime!(2026-11-23 05:20:10 UTC);
        let (state, _) = refresh(
            &pending,
            record.as_ref(),
            &observe(Operation::Cancelled, cancelled_at),
        );
        assert_eq!(state.status, Status::Revoked);
        // A record written before it kept the exact expiry: only the minute is known.
        let (state, _) = refresh(
            &pending,
            Some(&Baseline::default()),
            &observe(Operation::Cancelled, cancelled_at),
        );
        assert_eq!(state.status, Status::Expired);
        // Gone after the exact expiry: expired.
        let (state, _) = refresh(
            &pending,
            record.as_ref(),
            &observe(Operation::Gone, datetime!(2026-11-23 05:20:41 UTC)),
        );
        assert_eq!(state.status, Status::Expired);
    }

    #[test]
    fn without_a_record_nothing_is_proven() {
        let pending = Verdict {
            status: Status::Pending,
            consumed_by: None,
        };
        let (verdict, record) = decide(
            &pending,
            None,
            None,
            &seen(Operation::Cancelled, 1, &["c"], &[]),
        );
        assert_eq!(verdict.status, Status::Unknown);
        assert_eq!(record, None);
        let running = Operation::Running(server_token(None));
        let (verdict, record) = decide(&pending, None, None, &seen(running, 1, &["c"], &[]));
        assert_eq!(verdict.status, Status::Pending);
        assert_eq!(record.map(|r| r.named), Some(set(&["c"])));
    }

    #[test]
    fn always_replaces_a_spent_token_and_once_keeps_it() {
        for status in [
            Status::Consumed,
            Status::Expired,
            Status::Revoked,
            Status::Unknown,
        ] {
            let mut state = created_state(Trigger::Always, None);
            state.status = status;
            state.consumed_by = (status == Status::Consumed).then(|| "fp".to_owned());
            let prior = state.to_value();
            let planned = plan(Some(&prior), &config(Some("always")));
            assert_eq!(planned.action, Action::Replace, "{status:?}");
            assert_eq!(planned.requires_replace, vec![AttrPath::attr("status")]);
            for computed in COMPUTED {
                assert_eq!(planned.planned.get(computed), &Value::Unknown, "{computed}");
            }
            let warnings = plan_warnings(Some(&prior), &planned);
            assert_eq!(warnings.len(), 1);
            assert_eq!(warnings[0].severity, crate::diag::Severity::Warning);
            let mut once = state.clone();
            once.config.trigger = Trigger::Once;
            let planned = plan(Some(&once.to_value()), &config(Some("once")));
            assert_eq!(planned.action, Action::NoOp, "{status:?}");
            assert!(plan_warnings(Some(&once.to_value()), &planned).is_empty());
        }
        let pending = created_state(Trigger::Always, None).to_value();
        assert_eq!(
            plan(Some(&pending), &config(Some("always"))).action,
            Action::NoOp
        );
    }

    #[test]
    fn warnings_say_why() {
        let mut state = created_state(Trigger::Always, Some(datetime!(2026-11-23 05:18 UTC)));
        state.status = Status::Expired;
        let prior = state.to_value();
        let warning = &plan_warnings(Some(&prior), &plan(Some(&prior), &config(Some("always"))))[0];
        assert!(
            warning.detail.contains("expired at 2026/11/23 05:18 UTC"),
            "{}",
            warning.detail
        );
        state.status = Status::Consumed;
        state.consumed_by = Some("abc123".into());
        let prior = state.to_value();
        let warning = &plan_warnings(Some(&prior), &plan(Some(&prior), &config(Some("always"))))[0];
        assert!(warning.detail.contains("abc123"), "{}", warning.detail);
        // `once`: one warning when the refresh finds the token expired unused, then none.
        let pending = created_state(Trigger::Once, Some(datetime!(2026-11-23 05:18 UTC)));
        let mut expired = pending.clone();
        expired.status = Status::Expired;
        assert_eq!(refresh_warnings(&pending, &expired).len(), 1);
        assert!(refresh_warnings(&expired, &expired).is_empty());
    }

    #[test]
    fn refresh_keeps_every_token_and_refreshes_a_running_one() {
        let at = datetime!(2026-11-23 05:18 UTC);
        let prior = created_state(Trigger::Always, Some(at));
        let observe = |operation, now| Observation {
            operation,
            now,
            named: std::collections::BTreeSet::new(),
            rivals: std::collections::BTreeSet::new(),
        };
        let record = Baseline::default();
        let (state, _) = refresh(&prior, Some(&record), &observe(Operation::Gone, at));
        assert_eq!(state.status, Status::Expired);
        assert_eq!(state.token, prior.token);
        let running = Operation::Running(server_token(Some(at)));
        let (state, _) = refresh(
            &prior,
            Some(&record),
            &observe(running.clone(), at - time::Duration::minutes(1)),
        );
        assert_eq!(state, prior);
        let (state, _) = refresh(&prior, Some(&record), &observe(running, at));
        assert_eq!(state.status, Status::Expired);
    }

    #[test]
    fn unique_names_by_server_version() {
        for (server, version, unique) in [
            ("lxd", "5.0.2", false),
            ("lxd", "5.21.4", false),
            ("lxd", "5.21.5", true),
            ("lxd", "6.5", false),
            ("lxd", "6.6", true),
            ("lxd", "6.9", true),
            ("lxd", "7.0", true),
            ("lxd", "10.1", true),
            ("incus", "6.6", false),
            ("incus", "7.0", false),
        ] {
            assert_eq!(
                enforces_unique_names(server, version),
                unique,
                "{server} {version}"
            );
        }
    }

    #[test]
    fn plans_that_make_a_token_check_its_name() {
        let check = |prior: Option<&Value>, cfg: &Value| name_check(prior, &plan(prior, cfg));
        assert_eq!(
            check(None, &config(None)),
            Some(NameCheck {
                name: "mytoken".into(),
                remote: None,
                removed_first: None,
                projects: Vec::new(),
            })
        );
        let mut restricted = config(None);
        if let Value::Object(map) = &mut restricted {
            map.insert(
                "projects".to_owned(),
                Value::List(vec![Value::string("default"), Value::string("nope")]),
            );
        }
        let wanted = check(None, &restricted).map(|c| c.projects);
        assert_eq!(wanted, Some(vec!["default".to_owned(), "nope".to_owned()]));
        let missing = missing_projects(&wanted.unwrap(), &set(&["default"]));
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].path, AttrPath::attr("projects").index(1));
        // A project not known yet cannot be checked.
        if let Value::Object(map) = &mut restricted {
            map.insert("projects".to_owned(), Value::List(vec![Value::Unknown]));
        }
        assert_eq!(
            check(None, &restricted).map(|c| c.projects),
            Some(Vec::new())
        );
        // Nothing new is made: no check.
        let pending = created_state(Trigger::Always, None);
        assert_eq!(
            check(Some(&pending.to_value()), &config(Some("always"))),
            None
        );
        // An unknown name cannot be checked.
        let mut unknown = config(None);
        if let Value::Object(map) = &mut unknown {
            map.insert("name".to_owned(), Value::Unknown);
        }
        assert_eq!(check(None, &unknown), None);
        // A consumed token replaced with remove_consumer_on_destroy frees the name first.
        let mut consumed = pending.clone();
        consumed.status = Status::Consumed;
        consumed.consumed_by = Some("fp".into());
        let replace = |state: &State| {
            check(Some(&state.to_value()), &config(Some("always"))).map(|c| c.removed_first)
        };
        assert_eq!(replace(&consumed), Some(None));
        consumed.config.remove_consumer_on_destroy = true;
        assert_eq!(replace(&consumed), Some(Some("fp".to_owned())));
    }

    #[test]
    fn private_record_round_trips() {
        let record = Baseline {
            named: set(&["a"]),
            rivals: set(&["r"]),
            expires_at: Some(datetime!(2026-11-23 05:20:40.123456789 UTC)),
        };
        assert_eq!(Baseline::from_bytes(&record.to_bytes()), Some(record));
        // A record written before the exact expiry was kept reads without it.
        let older = Baseline::from_bytes(br#"{"named":["a"],"rivals":[]}"#).unwrap();
        assert_eq!(older.expires_at, None);
        assert_eq!(Baseline::from_bytes(b""), None);
        assert_eq!(Baseline::from_bytes(b"{bad"), None);
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
