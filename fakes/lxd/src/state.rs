//! The trust-token state machine of an LXD daemon. It knows no HTTP.
//!
//! Token operations have a current status (Running, then Cancelled) kept apart from their
//! retention: a finished operation stays visible for five seconds, then is pruned. Expiry is
//! enforced as LXD does it: by a periodic sweep and at consumption, so an expired token can be
//! listed as Running until the next sweep.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Which LXD generation to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Profile {
    /// Debian's LXD 5.0.2: `password` field, expired token → 500, names may repeat.
    #[serde(rename = "5.0")]
    V5_0,
    /// Newer LXD (6.7+): `trust_token` field, `password` refused, expired → 403, unique
    /// identity names (6.6+), tokens expire after 15 days when no expiry is set (6.7+).
    #[serde(rename = "6")]
    V6,
    /// Incus 6.0 LTS (6.0.4): `trust_token` only (`password` is ignored, not refused), expired
    /// → 500, names may repeat, no default expiry, a sweep every minute, `GET /1.0` with
    /// `environment.server = "incus"` and no `explicit_trust_token` extension.
    #[serde(rename = "incus-6.0")]
    Incus6_0,
}

impl Profile {
    pub fn server_version(self) -> &'static str {
        match self {
            Profile::V5_0 => "5.0.2",
            Profile::V6 => "6.7",
            Profile::Incus6_0 => "6.0.4",
        }
    }

    /// What `environment.server` says: `lxd` or `incus`.
    pub fn server(self) -> &'static str {
        match self {
            Profile::V5_0 | Profile::V6 => "lxd",
            Profile::Incus6_0 => "incus",
        }
    }

    /// The profile's name, as the command line and the control API spell it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::V5_0 => "5.0",
            Profile::V6 => "6",
            Profile::Incus6_0 => "incus-6.0",
        }
    }

    /// The profile named `name` (`5.0`, `6`, `incus-6.0`).
    pub fn from_name(name: &str) -> Option<Profile> {
        [Profile::V5_0, Profile::V6, Profile::Incus6_0]
            .into_iter()
            .find(|p| p.name() == name)
    }

    /// The token expiry when `core.remote_token_expiry` is unset.
    pub fn default_expiry(self) -> Option<time::Duration> {
        match self {
            Profile::V5_0 | Profile::Incus6_0 => None,
            Profile::V6 => Some(time::Duration::days(15)),
        }
    }

    /// How often expired tokens are swept.
    pub fn sweep_interval(self) -> time::Duration {
        match self {
            Profile::V5_0 | Profile::Incus6_0 => time::Duration::minutes(1),
            Profile::V6 => time::Duration::hours(1),
        }
    }
}

/// How long a finished operation stays visible.
pub const RETENTION: time::Duration = time::Duration::seconds(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    Running,
    Cancelled,
    Success,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Running => 103,
            Status::Cancelled => 401,
            Status::Success => 200,
        }
    }

    pub fn bucket(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Cancelled => "cancelled",
            Status::Success => "success",
        }
    }
}

/// The body of `POST /1.0/certificates`, echoed in the token operation as `request`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificatesPost {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub restricted: bool,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub projects: Vec<String>,
    #[serde(default)]
    pub certificate: String,
    #[serde(default)]
    pub password: String,
    /// Incus only (`certificate_description`); the echo of the other profiles leaves it out.
    #[serde(default, skip_serializing)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_token: Option<String>,
    #[serde(default)]
    pub token: bool,
}

/// Redacts the password and the trust token: `Debug` output may reach logs and panic text.
impl std::fmt::Debug for CertificatesPost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificatesPost")
            .field("name", &self.name)
            .field("type", &self.kind)
            .field("restricted", &self.restricted)
            .field("projects", &self.projects)
            .field("password", &redacted(!self.password.is_empty()))
            .field("trust_token", &redacted(self.trust_token.is_some()))
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

fn redacted(present: bool) -> &'static str {
    if present { "<redacted>" } else { "<none>" }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Clone, Serialize)]
pub struct Operation {
    pub id: String,
    pub class: &'static str,
    pub description: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub status: Status,
    /// A token operation's metadata; `None` for a task.
    pub token: Option<TokenMeta>,
    #[serde(skip)]
    pub finished_at: Option<OffsetDateTime>,
    /// The operation's JSON as the API renders it, for the profile it was rendered for.
    /// The envelope module fills it; the state machine empties it whenever the operation changes.
    #[serde(skip)]
    pub(crate) rendered: OnceLock<(Profile, Box<str>)>,
}

impl Operation {
    fn new(
        id: String,
        class: &'static str,
        description: &'static str,
        created_at: OffsetDateTime,
        status: Status,
        token: Option<TokenMeta>,
        finished_at: Option<OffsetDateTime>,
    ) -> Operation {
        Operation {
            id,
            class,
            description,
            created_at,
            status,
            token,
            finished_at,
            rendered: OnceLock::new(),
        }
    }
}

/// Leaves out the secret and the rendered JSON (which holds it): `Debug` output may reach logs
/// and panic text.
impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("id", &self.id)
            .field("class", &self.class)
            .field("status", &self.status)
            .field("created_at", &self.created_at)
            .field("finished_at", &self.finished_at)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Serialize)]
pub struct TokenMeta {
    pub addresses: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub fingerprint: String,
    pub request: CertificatesPost,
    pub secret: String,
}

impl std::fmt::Debug for TokenMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenMeta")
            .field("addresses", &self.addresses)
            .field("expires_at", &self.expires_at)
            .field("fingerprint", &self.fingerprint)
            .field("request", &self.request)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    pub name: String,
    pub restricted: bool,
    pub projects: Vec<String>,
    pub certificate: String,
    pub fingerprint: String,
}

/// An error as LXD reports it: the HTTP status and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LxdError {
    pub status: u16,
    pub text: String,
}

pub fn err(status: u16, text: impl Into<String>) -> LxdError {
    LxdError {
        status,
        text: text.into(),
    }
}

/// Who asks.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The unix socket: always trusted.
    pub local: bool,
    /// The SHA-256 fingerprint (hex) of the HTTPS client certificate, and its PEM.
    pub cert: Option<(String, String)>,
}

/// The outcome of a consumption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub fingerprint: String,
}

#[derive(Debug)]
pub struct State {
    pub profile: Profile,
    pub config: BTreeMap<String, String>,
    /// Every retained operation, keyed by a sequence number in creation order.
    operations: BTreeMap<u64, Operation>,
    next_seq: u64,
    /// Changes whenever an operation is added, changed or removed.
    version: u64,
    /// The sequence numbers of the operations with each id, oldest first (ids repeat only when
    /// the random source is reseeded).
    by_id: HashMap<String, Vec<u64>>,
    /// The running token operations by secret, oldest first.
    by_secret: HashMap<String, Vec<u64>>,
    /// The running token operations that expire, by expiry: what a sweep looks at.
    expiring: BTreeSet<(OffsetDateTime, u64)>,
    /// The finished operations by the time they finished: what the pruning looks at.
    finished: BTreeSet<(OffsetDateTime, u64)>,
    pub certificates: Vec<Certificate>,
    /// The address of the HTTPS listener, which `core.https_address` names.
    pub listen_address: String,
    pub server_fingerprint: String,
    pub started_at: OffsetDateTime,
    next_sweep: OffsetDateTime,
    rng: ChaCha8Rng,
}

/// Checks an expiry expression (`20M`, `1H 30M`, `10S`, `1d`…; units are case-sensitive).
pub fn parse_expiry(text: &str) -> Option<time::Duration> {
    let mut total = time::Duration::ZERO;
    for term in text.split_whitespace() {
        let (num, unit) = term.split_at(term.len().checked_sub(1)?);
        let n: i64 = num.parse().ok().filter(|n: &i64| *n >= 0)?;
        total += match unit {
            "S" => time::Duration::seconds(n),
            "M" => time::Duration::minutes(n),
            "H" => time::Duration::hours(n),
            "d" => time::Duration::days(n),
            "w" => time::Duration::weeks(n),
            "m" => time::Duration::days(30 * n),
            "y" => time::Duration::days(365 * n),
            _ => return None,
        };
    }
    Some(total)
}

impl State {
    pub fn new(
        profile: Profile,
        seed: u64,
        listen_address: String,
        server_fingerprint: String,
        now: OffsetDateTime,
    ) -> State {
        State {
            profile,
            config: BTreeMap::new(),
            operations: BTreeMap::new(),
            next_seq: 0,
            version: 0,
            by_id: HashMap::new(),
            by_secret: HashMap::new(),
            expiring: BTreeSet::new(),
            finished: BTreeSet::new(),
            certificates: Vec::new(),
            listen_address,
            server_fingerprint,
            started_at: now,
            next_sweep: now + profile.sweep_interval(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    fn hex(&mut self, bytes: usize) -> String {
        (0..bytes)
            .map(|_| format!("{:02x}", self.rng.random::<u8>()))
            .collect()
    }

    /// A version 4 UUID from the seeded source, so that a seed repeats the ids.
    fn uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.random())
            .into_uuid()
            .hyphenated()
            .to_string()
    }

    pub fn is_trusted(&self, caller: &Caller) -> bool {
        caller.local
            || caller
                .cert
                .as_ref()
                .is_some_and(|(fp, _)| self.certificates.iter().any(|c| &c.fingerprint == fp))
    }

    /// The HTTPS addresses tokens carry: `core.https_address` once set.
    pub fn addresses(&self) -> Vec<String> {
        self.config
            .get("core.https_address")
            .map(|_| vec![self.listen_address.clone()])
            .unwrap_or_default()
    }

    /// `PUT` (replace) or `PATCH` (merge) of the server config.
    pub fn set_config(
        &mut self,
        values: BTreeMap<String, String>,
        replace: bool,
    ) -> Result<(), LxdError> {
        for (key, value) in &values {
            match key.as_str() {
                "core.https_address" => {}
                "core.remote_token_expiry" if value.is_empty() || parse_expiry(value).is_some() => {
                }
                "core.remote_token_expiry" => {
                    return Err(err(
                        400,
                        format!("cannot set '{key}' to '{value}': Invalid expiry expression"),
                    ));
                }
                _ => {
                    return Err(err(
                        400,
                        format!("cannot set '{key}' to '{value}': unknown key"),
                    ));
                }
            }
        }
        if replace {
            self.config.clear();
        }
        for (key, value) in values {
            if value.is_empty() {
                self.config.remove(&key);
            } else {
                self.config.insert(key, value);
            }
        }
        Ok(())
    }

    /// `POST /1.0/certificates` with `token: true`, by a trusted caller.
    pub fn create_token(
        &mut self,
        req: CertificatesPost,
        now: OffsetDateTime,
    ) -> Result<Operation, LxdError> {
        if req.kind != "client" {
            return Err(err(
                400,
                "Tokens can only be issued for client certificates",
            ));
        }
        let v6 = self.profile == Profile::V6;
        let incus = self.profile == Profile::Incus6_0;
        if !req.certificate.is_empty() {
            return Err(err(
                400,
                if v6 {
                    "Cannot use certificate if token is requested"
                } else {
                    "Can't use certificate if token is requested"
                },
            ));
        }
        if v6 && !req.password.is_empty() {
            return Err(err(
                501,
                "Password authentication is no longer supported, please update your client",
            ));
        }
        if !self.config.contains_key("core.https_address") {
            return Err(err(
                400,
                if v6 {
                    "Cannot issue token when server is not listening on network"
                } else {
                    "Can't issue token when server isn't listening on network"
                },
            ));
        }
        if v6 && req.name.is_empty() {
            return Err(err(400, "Client name must not be empty"));
        }
        let expires_at = match self.config.get("core.remote_token_expiry") {
            Some(e) => parse_expiry(e),
            None => self.profile.default_expiry(),
        }
        .map(|d| now + d);
        let mut request = req;
        request.trust_token = match self.profile {
            Profile::V5_0 => None,
            Profile::V6 => Some(String::new()),
            // Incus echoes what was sent in `trust_token` and has no `password` field.
            Profile::Incus6_0 => Some(request.trust_token.take().unwrap_or_default()),
        };
        if incus {
            request.password.clear();
        }
        let id = self.uuid();
        let token = TokenMeta {
            addresses: self.addresses(),
            expires_at,
            fingerprint: self.server_fingerprint.clone(),
            request,
            secret: self.hex(32),
        };
        let op = Operation::new(
            id,
            "token",
            "Executing operation",
            now,
            Status::Running,
            Some(token),
            None,
        );
        self.insert(op.clone());
        Ok(op)
    }

    /// Every retained operation, in creation order.
    pub fn operations(&self) -> impl Iterator<Item = &Operation> {
        self.operations.values()
    }

    /// A number that changes whenever an operation is added, changed or removed, so that
    /// what is derived from the operations can be kept until it does.
    pub fn version(&self) -> u64 {
        self.version
    }

    fn insert(&mut self, op: Operation) {
        self.version += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_id.entry(op.id.clone()).or_default().push(seq);
        match (&op.token, op.status, op.finished_at) {
            (Some(meta), Status::Running, _) => {
                self.by_secret
                    .entry(meta.secret.clone())
                    .or_default()
                    .push(seq);
                if let Some(expires) = meta.expires_at {
                    self.expiring.insert((expires, seq));
                }
            }
            (_, _, Some(at)) => {
                self.finished.insert((at, seq));
            }
            _ => {}
        }
        self.operations.insert(seq, op);
    }

    /// Ends the running operation `seq` with `status` at `at`.
    fn finish(&mut self, seq: u64, status: Status, at: OffsetDateTime) {
        let Some(op) = self.operations.get_mut(&seq) else {
            return;
        };
        self.version += 1;
        op.status = status;
        op.finished_at = Some(at);
        op.rendered = OnceLock::new();
        if let Some(meta) = &op.token {
            if let Some(expires) = meta.expires_at {
                self.expiring.remove(&(expires, seq));
            }
            remove_seq(&mut self.by_secret, &meta.secret, seq);
        }
        self.finished.insert((at, seq));
    }

    fn remove(&mut self, seq: u64) {
        let Some(op) = self.operations.remove(&seq) else {
            return;
        };
        self.version += 1;
        remove_seq(&mut self.by_id, &op.id, seq);
        if let Some(meta) = &op.token {
            if let Some(expires) = meta.expires_at {
                self.expiring.remove(&(expires, seq));
            }
            remove_seq(&mut self.by_secret, &meta.secret, seq);
        }
        if let Some(at) = op.finished_at {
            self.finished.remove(&(at, seq));
        }
    }

    /// The oldest operation with `id`.
    fn seq_of(&self, id: &str) -> Option<u64> {
        self.by_id.get(id).and_then(|seqs| seqs.first().copied())
    }

    /// Runs what became due at `now`: the expiry sweep and the pruning of finished operations.
    /// Its cost depends on what is due, not on how many operations are retained.
    pub fn tick(&mut self, now: OffsetDateTime) {
        let interval = self.profile.sweep_interval();
        while self.next_sweep <= now {
            let at = self.next_sweep;
            // Sweeps before the first expiry find nothing: skip them, but never past the first
            // sweep after `now`, which a token made later may need.
            let step = interval.whole_nanoseconds().max(1);
            let to_now = (now - at).whole_nanoseconds() / step + 1;
            let to_due = match self.expiring.first() {
                Some((e, _)) if *e > at => ((*e - at).whole_nanoseconds() + step - 1) / step,
                Some(_) => 0,
                None => to_now,
            };
            let skipped = i32::try_from(to_now.min(to_due)).unwrap_or(i32::MAX);
            if skipped > 0 {
                self.next_sweep = at.saturating_add(interval.saturating_mul(skipped));
                continue;
            }
            let expired: Vec<u64> = self
                .expiring
                .iter()
                .take_while(|(e, _)| *e <= at)
                .map(|(_, seq)| *seq)
                .collect();
            // A sweep runs only when a token is due (the skip above passes every other one),
            // so it always leaves its task behind.
            for seq in expired {
                self.finish(seq, Status::Cancelled, at);
            }
            let id = self.uuid();
            self.insert(Operation::new(
                id,
                "task",
                "Remove expired tokens",
                at,
                Status::Success,
                None,
                Some(at),
            ));
            self.next_sweep = at + interval;
        }
        while let Some(&(at, seq)) = self.finished.first() {
            if at + RETENTION > now {
                break;
            }
            self.remove(seq);
        }
    }

    pub fn operation(&self, id: &str) -> Result<&Operation, LxdError> {
        self.seq_of(id)
            .and_then(|seq| self.operations.get(&seq))
            .ok_or_else(|| err(404, "Operation not found"))
    }

    /// `DELETE /1.0/operations/{id}`: a running token is cancelled.
    pub fn cancel(&mut self, id: &str, now: OffsetDateTime) -> Result<(), LxdError> {
        let seq = self
            .seq_of(id)
            .ok_or_else(|| err(404, "Operation not found"))?;
        if self.operations.get(&seq).map(|op| op.status) != Some(Status::Running) {
            return Err(err(400, "Only running operations can be cancelled"));
        }
        self.finish(seq, Status::Cancelled, now);
        Ok(())
    }

    /// A daemon restart: pending tokens live in memory only and are lost.
    pub fn restart(&mut self, now: OffsetDateTime) {
        self.operations.clear();
        self.version += 1;
        self.by_id.clear();
        self.by_secret.clear();
        self.expiring.clear();
        self.finished.clear();
        self.started_at = now;
        self.next_sweep = now + self.profile.sweep_interval();
    }

    /// An untrusted HTTPS client presents a token. `field` says which body field carried it.
    pub fn consume(
        &mut self,
        caller: &Caller,
        body: &CertificatesPost,
        now: OffsetDateTime,
    ) -> Result<Consumed, LxdError> {
        self.consume_reporting(caller, body, now).0
    }

    /// [`State::consume`], which also returns the token operation it burnt, if any.
    pub fn consume_reporting(
        &mut self,
        caller: &Caller,
        body: &CertificatesPost,
        now: OffsetDateTime,
    ) -> (Result<Consumed, LxdError>, Option<Operation>) {
        let mut burnt = None;
        let result = self.consume_inner(caller, body, now, &mut burnt);
        let op = burnt.and_then(|seq| self.operations.get(&seq).cloned());
        (result, op)
    }

    fn consume_inner(
        &mut self,
        caller: &Caller,
        body: &CertificatesPost,
        now: OffsetDateTime,
        burnt: &mut Option<u64>,
    ) -> Result<Consumed, LxdError> {
        let v6 = self.profile == Profile::V6;
        let token_text = match self.profile {
            Profile::V5_0 => body.password.clone(),
            Profile::V6 if !body.password.is_empty() => {
                return Err(err(
                    501,
                    "Password authentication is no longer supported, please update your client",
                ));
            }
            // Incus has no `password` field: one sent is ignored, not refused.
            Profile::V6 | Profile::Incus6_0 => body.trust_token.clone().unwrap_or_default(),
        };
        let already = self.is_trusted(caller);
        if already && !v6 {
            return Err(err(400, "Client is already trusted"));
        }
        let Some(token) = decode_token(&token_text) else {
            return Err(err(403, "not authorized"));
        };
        let found = self
            .by_secret
            .get(&token.secret)
            .and_then(|seqs| seqs.first().copied());
        let Some(seq) = found else {
            return Err(err(403, "No matching certificate add operation found"));
        };
        // The token is burnt as soon as the secret matches, before the later checks.
        self.finish(seq, Status::Cancelled, now);
        *burnt = Some(seq);
        let meta = self
            .operations
            .get(&seq)
            .and_then(|op| op.token.clone())
            .unwrap_or_else(unreachable_meta);
        if meta.expires_at.is_some_and(|e| e <= now) {
            let text =
                "Failed during search for certificate add token operation: Token has expired";
            return Err(err(if v6 { 403 } else { 500 }, text));
        }
        if already {
            return Err(err(409, "Client is already trusted"));
        }
        let Some((fingerprint, pem)) = caller.cert.clone() else {
            return Err(err(400, "No client certificate provided"));
        };
        if meta.request.projects.iter().any(|p| p != "default") {
            return Err(err(404, "Project not found"));
        }
        if v6
            && self
                .certificates
                .iter()
                .any(|c| c.name == meta.request.name)
        {
            return Err(err(409, "This \"identity\" entry already exists"));
        }
        self.certificates.push(Certificate {
            name: meta.request.name.clone(),
            restricted: meta.request.restricted,
            projects: meta.request.projects.clone(),
            certificate: pem,
            fingerprint: fingerprint.clone(),
        });
        Ok(Consumed { fingerprint })
    }

    pub fn certificate(&self, prefix: &str) -> Result<&Certificate, LxdError> {
        let mut matches = self
            .certificates
            .iter()
            .filter(|c| !prefix.is_empty() && c.fingerprint.starts_with(prefix));
        match (matches.next(), matches.next()) {
            (Some(c), None) => Ok(c),
            _ => Err(err(404, "Certificate not found")),
        }
    }

    pub fn delete_certificate(&mut self, prefix: &str) -> Result<(), LxdError> {
        let fingerprint = self.certificate(prefix)?.fingerprint.clone();
        self.certificates.retain(|c| c.fingerprint != fingerprint);
        Ok(())
    }
}

fn remove_seq(index: &mut HashMap<String, Vec<u64>>, key: &str, seq: u64) {
    if let Some(seqs) = index.get_mut(key) {
        seqs.retain(|s| *s != seq);
        if seqs.is_empty() {
            index.remove(key);
        }
    }
}

fn unreachable_meta() -> TokenMeta {
    TokenMeta {
        addresses: Vec::new(),
        expires_at: None,
        fingerprint: String::new(),
        request: CertificatesPost::default(),
        secret: String::new(),
    }
}

/// The fields of a token string the daemon checks.
#[derive(Debug, Deserialize)]
pub struct TokenFields {
    #[serde(default)]
    pub client_name: String,
    #[serde(default)]
    pub fingerprint: String,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub secret: String,
}

/// Decodes a token as the daemon does: strict padded standard base64 of JSON with a non-empty
/// client name, fingerprint, secret and at least one address. Anything else is not a token.
pub fn decode_token(text: &str) -> Option<TokenFields> {
    let bytes = STANDARD.decode(text.trim()).ok()?;
    let fields: TokenFields = serde_json::from_slice(&bytes).ok()?;
    let complete = !fields.client_name.is_empty()
        && !fields.fingerprint.is_empty()
        && !fields.secret.is_empty()
        && !fields.addresses.is_empty();
    complete.then_some(fields)
}

/// The token string `lxc config trust add` prints for an operation (the daemon never returns
/// it; the control API and tests build it this way).
pub fn token_string(op: &Operation, profile: Profile) -> Option<String> {
    let meta = op.token.as_ref()?;
    let expires = meta
        .expires_at
        .map(|e| {
            e.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        })
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned());
    let mut json = format!(
        "{{\"client_name\":{},\"fingerprint\":{},\"addresses\":{},\"secret\":{},\"expires_at\":{}",
        serde_json::to_string(&meta.request.name).ok()?,
        serde_json::to_string(&meta.fingerprint).ok()?,
        serde_json::to_string(&meta.addresses).ok()?,
        serde_json::to_string(&meta.secret).ok()?,
        serde_json::to_string(&expires).ok()?,
    );
    if profile == Profile::V6 {
        json.push_str(",\"type\":\"\"");
    }
    json.push('}');
    Some(STANDARD.encode(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(state: &State) -> usize {
        state
            .operations()
            .filter(|o| o.status == Status::Running)
            .count()
    }

    /// Sweeps skipped while nothing can expire never delay the sweep a later token needs, and
    /// finished operations leave after the retention.
    #[test]
    fn sweeps_and_retention_after_idle_time() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let minutes = time::Duration::minutes;
        let mut state = State::new(Profile::V5_0, 1, "a:1".into(), "f".into(), start);
        let config = [
            ("core.https_address".to_owned(), "a:1".to_owned()),
            ("core.remote_token_expiry".to_owned(), "90S".to_owned()),
        ];
        assert!(state.set_config(config.into(), false).is_ok());
        // Ten idle hours: no token, so every sweep is skipped.
        let later = start + time::Duration::hours(10) + time::Duration::seconds(30);
        state.tick(later);
        let req = CertificatesPost {
            kind: "client".into(),
            token: true,
            ..Default::default()
        };
        assert!(state.create_token(req, later).is_ok());
        // Expires at 10:02:00; the sweep at 10:02 cancels it, not the one at 10:01.
        state.tick(later + minutes(1));
        assert_eq!(running(&state), 1);
        state.tick(later + time::Duration::seconds(90));
        assert_eq!(running(&state), 0);
        let finished: Vec<_> = state.operations().map(|o| (o.class, o.status)).collect();
        assert_eq!(
            finished,
            [("token", Status::Cancelled), ("task", Status::Success)]
        );
        // Both finished at 10:02:00 and leave five seconds later.
        let swept_at = start + time::Duration::hours(10) + minutes(2);
        state.tick(swept_at + time::Duration::seconds(4));
        assert_eq!(state.operations().count(), 2);
        state.tick(swept_at + RETENTION);
        assert_eq!(state.operations().count(), 0);
    }

    #[test]
    fn expiry_expressions() {
        assert_eq!(parse_expiry("20M"), Some(time::Duration::minutes(20)));
        assert_eq!(parse_expiry("1H 30M"), Some(time::Duration::minutes(90)));
        assert_eq!(parse_expiry("0M"), Some(time::Duration::ZERO));
        let days = time::Duration::days;
        assert_eq!(parse_expiry("10S"), Some(time::Duration::seconds(10)));
        assert_eq!(parse_expiry("2H"), Some(time::Duration::hours(2)));
        assert_eq!(parse_expiry("1d"), Some(days(1)));
        assert_eq!(parse_expiry("2w"), Some(days(14)));
        assert_eq!(parse_expiry("1m"), Some(days(30)));
        assert_eq!(parse_expiry("2m"), Some(days(60)));
        assert_eq!(parse_expiry("2y 1d"), Some(days(731)));
        for bad in ["bogus", "10s", "-5M", "20"] {
            assert_eq!(parse_expiry(bad), None, "{bad}");
        }
    }

    #[test]
    fn tokens_decode_strictly() {
        let json = r#"{"client_name":"t","fingerprint":"f","addresses":["a"],"secret":"s","expires_at":"0001-01-01T00:00:00Z"}"#;
        let padded = STANDARD.encode(json);
        assert!(decode_token(&padded).is_some());
        assert!(decode_token(padded.trim_end_matches('=')).is_none() || !padded.ends_with('='));
        let nameless = STANDARD
            .encode(r#"{"client_name":"","fingerprint":"f","addresses":["a"],"secret":"s"}"#);
        assert!(decode_token(&nameless).is_none());
        assert!(decode_token("not-a-token").is_none());
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let mut state = with_address(Profile::V6, 1);
        let req = token_request("n");
        assert!(state.create_token(req, start).is_ok());
        let op = state.operations().next().expect("the token operation");
        let secret = op.token.as_ref().expect("token metadata").secret.clone();
        crate::envelope::operation_json(op, Profile::V6);
        let text = format!("{op:?} {:?}", op.token);
        assert!(!text.contains(&secret), "{text}");
        assert!(text.contains("<redacted>"));
        let join = CertificatesPost {
            password: "hunter2-password".into(),
            trust_token: Some("a-trust-token".into()),
            ..CertificatesPost::default()
        };
        let text = format!("{join:?}");
        assert!(
            !text.contains("hunter2-password") && !text.contains("a-trust-token"),
            "{text}"
        );
        // Whether there is one is still shown, and the rest of the request as it is.
        assert!(text.starts_with("CertificatesPost {"), "{text}");
        assert!(text.contains(r#"password: "<redacted>""#), "{text}");
        assert!(text.contains(r#"trust_token: "<redacted>""#), "{text}");
        let text = format!("{:?}", CertificatesPost::default());
        assert!(text.contains(r#"password: "<none>""#), "{text}");
        assert!(text.contains(r#"trust_token: "<none>""#), "{text}");
        let text = format!("{op:?}");
        assert!(text.starts_with("Operation {"), "{text}");
        assert!(text.contains(&op.id) && text.contains("Running"), "{text}");
    }

    /// Reseeding makes what the fake makes up (operation ids, secrets) repeat, whatever the
    /// seed it started with.
    #[test]
    fn a_reseeded_state_makes_the_same_tokens() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let made = |seed: u64| {
            let mut state = with_address(Profile::V5_0, seed);
            state.reseed(7);
            let req = token_request("t");
            assert!(state.create_token(req, start).is_ok());
            let op = state.operations().next().unwrap();
            (op.id.clone(), op.token.as_ref().unwrap().secret.clone())
        };
        assert_eq!(made(1), made(2));
    }

    /// A state of `profile` from `seed`, started at the epoch, listening on `a:1`.
    fn with_address(profile: Profile, seed: u64) -> State {
        let start = OffsetDateTime::UNIX_EPOCH;
        let mut state = State::new(profile, seed, "a:1".into(), "f".into(), start);
        let config = [("core.https_address".to_owned(), "a:1".to_owned())];
        assert!(state.set_config(config.into(), false).is_ok());
        state
    }

    fn v5_with_address() -> State {
        with_address(Profile::V5_0, 1)
    }

    fn token_request(name: &str) -> CertificatesPost {
        CertificatesPost {
            name: name.into(),
            kind: "client".into(),
            token: true,
            ..CertificatesPost::default()
        }
    }

    #[test]
    fn operation_ids_are_version_4_uuids() {
        let mut state = v5_with_address();
        for i in 0..32 {
            let req = token_request(&format!("t{i}"));
            assert!(state.create_token(req, OffsetDateTime::UNIX_EPOCH).is_ok());
        }
        for op in state.operations() {
            let id = uuid::Uuid::try_parse(&op.id).unwrap();
            assert_eq!(id.get_version_num(), 4, "{}", op.id);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122, "{}", op.id);
            assert_eq!(id.hyphenated().to_string(), op.id);
        }
    }

    #[test]
    fn an_invalid_expiry_is_refused_as_lxd_refuses_it() {
        let mut state = v5_with_address();
        let set = |value: &str| {
            BTreeMap::from([("core.remote_token_expiry".to_owned(), value.to_owned())])
        };
        assert!(state.set_config(set("1H 30M"), false).is_ok());
        let refused = state.set_config(set("soon"), false).unwrap_err();
        assert_eq!(refused.status, 400);
        assert_eq!(
            refused.text,
            "cannot set 'core.remote_token_expiry' to 'soon': Invalid expiry expression"
        );
        let refused = state
            .set_config(
                BTreeMap::from([("core.bogus".to_owned(), "1".to_owned())]),
                false,
            )
            .unwrap_err();
        assert_eq!(refused.text, "cannot set 'core.bogus' to '1': unknown key");
    }

    /// LXD 6 and LXD 5.0 word the refusal of a token request that carries a certificate
    /// differently.
    #[test]
    fn a_token_request_with_a_certificate_is_refused_in_each_profile_words() {
        let start = OffsetDateTime::UNIX_EPOCH;
        for (profile, text) in [
            (Profile::V5_0, "Can't use certificate if token is requested"),
            (Profile::V6, "Cannot use certificate if token is requested"),
        ] {
            let mut state = with_address(profile, 1);
            let req = CertificatesPost {
                certificate: "MIIB".into(),
                ..token_request("t")
            };
            let refused = state.create_token(req, start).unwrap_err();
            assert_eq!(
                (refused.status, refused.text.as_str()),
                (400, text),
                "{profile:?}"
            );
        }
    }

    #[test]
    fn the_version_changes_with_every_operation_change() {
        let mut state = v5_with_address();
        let start = OffsetDateTime::UNIX_EPOCH;
        let v0 = state.version();
        assert!(state.create_token(token_request("t"), start).is_ok());
        let v1 = state.version();
        assert!(v1 > v0);
        let id = state.operations().next().unwrap().id.clone();
        assert!(state.cancel(&id, start).is_ok());
        let v2 = state.version();
        assert!(v2 > v1);
        // The cancelled operation leaves after the retention.
        state.tick(start + RETENTION);
        assert_eq!(state.operations().count(), 0);
        assert!(state.version() > v2);
    }

    /// The operations as a client sees them, to compare two states.
    fn seen(state: &State) -> Vec<(String, Status, OffsetDateTime, Option<OffsetDateTime>)> {
        state
            .operations()
            .map(|o| (o.id.clone(), o.status, o.created_at, o.finished_at))
            .collect()
    }

    proptest::proptest! {
        /// `tick` skips the sweeps that find nothing; one long tick must leave the state that
        /// ticking at every sweep time leaves: the same tokens expired at the same sweeps.
        #[test]
        fn one_long_tick_does_what_a_tick_at_every_sweep_does(
            profile in proptest::prop_oneof![
                proptest::strategy::Just(Profile::V5_0),
                proptest::strategy::Just(Profile::V6),
                proptest::strategy::Just(Profile::Incus6_0),
            ],
            expiry in proptest::sample::select(vec!["", "1S", "30S", "60S", "90S", "2M", "1H"]),
            // Steps of whole quarter minutes, so that tokens are often made, and expire, at
            // sweep times.
            steps in proptest::collection::vec(
                (
                    proptest::bool::ANY,
                    proptest::strategy::Strategy::prop_map(0i64..700, |n| n * 15),
                ),
                1..12,
            ),
        ) {
            let start = OffsetDateTime::UNIX_EPOCH;
            let config = BTreeMap::from([
                ("core.https_address".to_owned(), "a:1".to_owned()),
                ("core.remote_token_expiry".to_owned(), expiry.to_owned()),
            ]);
            let mut jump = State::new(profile, 1, "a:1".into(), "f".into(), start);
            let mut stepped = State::new(profile, 1, "a:1".into(), "f".into(), start);
            proptest::prop_assert!(jump.set_config(config.clone(), false).is_ok());
            proptest::prop_assert!(stepped.set_config(config, false).is_ok());
            let mut now = start;
            for (i, (create, seconds)) in steps.into_iter().enumerate() {
                now += time::Duration::seconds(seconds);
                jump.tick(now);
                while stepped.next_sweep <= now {
                    let at = stepped.next_sweep;
                    stepped.tick(at);
                }
                stepped.tick(now);
                proptest::prop_assert_eq!(seen(&jump), seen(&stepped), "at {}", now);
                if create {
                    let name = format!("t{i}");
                    proptest::prop_assert!(jump.create_token(token_request(&name), now).is_ok());
                    proptest::prop_assert!(stepped.create_token(token_request(&name), now).is_ok());
                }
            }
        }
    }

    fn joiner(fingerprint: &str) -> Caller {
        Caller {
            local: false,
            cert: Some((fingerprint.into(), "PEM".into())),
        }
    }

    /// The body each profile's client sends with `token`.
    fn join(profile: Profile, token: &str) -> CertificatesPost {
        match profile {
            Profile::V5_0 => CertificatesPost {
                password: token.into(),
                ..CertificatesPost::default()
            },
            _ => CertificatesPost {
                trust_token: Some(token.into()),
                ..CertificatesPost::default()
            },
        }
    }

    /// A token joins its client once, under the token's name, and the certificate can then
    /// be found by a fingerprint prefix and deleted; each profile refuses what LXD refuses.
    #[test]
    fn tokens_join_clients_once_in_every_profile() {
        let start = OffsetDateTime::UNIX_EPOCH;
        for profile in [Profile::V5_0, Profile::V6, Profile::Incus6_0] {
            let mut state = with_address(profile, 1);
            let op = state.create_token(token_request("joiner"), start).unwrap();
            let token = token_string(&op, profile).unwrap();
            let joined = state.consume(&joiner("ab12"), &join(profile, &token), start);
            assert_eq!(joined.unwrap().fingerprint, "ab12", "{profile:?}");
            assert_eq!(state.certificates[0].name, "joiner");
            // Burnt: the same token again is refused, as an unknown one.
            let again = state
                .consume(&joiner("cd34"), &join(profile, &token), start)
                .unwrap_err();
            assert_eq!(
                (again.status, again.text.as_str()),
                (403, "No matching certificate add operation found"),
                "{profile:?}"
            );
            // A trusted client presenting a token: LXD 6 looks at the token first.
            let trusted = state
                .consume(&joiner("ab12"), &join(profile, &token), start)
                .unwrap_err();
            let want = if profile == Profile::V6 { 403 } else { 400 };
            assert_eq!(trusted.status, want, "{profile:?}: {}", trusted.text);
            // LXD 6 refuses a password outright; Incus ignores one.
            let password = CertificatesPost {
                password: "p".into(),
                ..CertificatesPost::default()
            };
            let refused = state
                .consume(&joiner("ef56"), &password, start)
                .unwrap_err();
            let want = if profile == Profile::V6 { 501 } else { 403 };
            assert_eq!(refused.status, want, "{profile:?}: {}", refused.text);

            assert_eq!(state.certificate("ab").unwrap().name, "joiner");
            assert_eq!(state.certificate("").unwrap_err().status, 404, "no prefix");
            assert_eq!(state.certificate("cd").unwrap_err().status, 404);
            assert!(state.delete_certificate("cd").is_err());
            assert!(state.delete_certificate("ab").is_ok());
            assert!(state.certificates.is_empty());
        }
    }

    #[test]
    fn a_restart_loses_pending_tokens_and_restarts_the_sweep_clock() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let mut state = v5_with_address();
        assert!(state.create_token(token_request("t"), start).is_ok());
        let v = state.version();
        let later = start + time::Duration::seconds(90);
        state.restart(later);
        assert_eq!(state.operations().count(), 0);
        assert!(state.version() > v);
        assert_eq!(state.started_at, later);
        assert_eq!(state.next_sweep, later + time::Duration::minutes(1));
    }

    /// What the token operation echoes of its request: LXD 5.0 keeps a password and has no
    /// `trust_token`, LXD 6 an empty `trust_token`, Incus what was sent and no password.
    #[test]
    fn the_echoed_request_as_each_server_keeps_it() {
        let start = OffsetDateTime::UNIX_EPOCH;
        for (profile, password, trust_token) in [
            (Profile::V5_0, "p", None),
            (Profile::V6, "", Some("")),
            (Profile::Incus6_0, "", Some("sent")),
        ] {
            let mut state = with_address(profile, 1);
            let req = CertificatesPost {
                password: if profile == Profile::V6 { "" } else { "p" }.into(),
                trust_token: Some("sent".into()),
                ..token_request("t")
            };
            let op = state.create_token(req, start).unwrap();
            let echoed = &op.token.as_ref().unwrap().request;
            assert_eq!(echoed.password, password, "{profile:?}");
            assert_eq!(echoed.trust_token.as_deref(), trust_token, "{profile:?}");
        }
    }

    /// A token restricted to projects the server does not have cannot join its client; one
    /// restricted to `default` can.
    #[test]
    fn a_token_for_a_missing_project_cannot_join() {
        let start = OffsetDateTime::UNIX_EPOCH;
        for (projects, joined) in [(vec!["web"], false), (vec!["default"], true)] {
            let mut state = v5_with_address();
            let req = CertificatesPost {
                restricted: true,
                projects: projects.iter().map(|p| p.to_string()).collect(),
                ..token_request("t")
            };
            let op = state.create_token(req, start).unwrap();
            let token = token_string(&op, Profile::V5_0).unwrap();
            let result = state.consume(&joiner("ab12"), &join(Profile::V5_0, &token), start);
            match result {
                Ok(_) => assert!(joined, "{projects:?}"),
                Err(e) => {
                    assert!(!joined, "{projects:?}: {e:?}");
                    assert_eq!((e.status, e.text.as_str()), (404, "Project not found"));
                }
            }
            assert_eq!(state.certificates.len(), usize::from(joined));
        }
    }

    /// The token string is base64 of the join data; only LXD 6 adds an empty `type`.
    #[test]
    fn token_strings_carry_a_type_only_for_lxd_6() {
        let start = OffsetDateTime::UNIX_EPOCH;
        for profile in [Profile::V5_0, Profile::V6, Profile::Incus6_0] {
            let mut state = with_address(profile, 1);
            let op = state.create_token(token_request("t"), start).unwrap();
            let json = STANDARD
                .decode(token_string(&op, profile).unwrap())
                .unwrap();
            let data: serde_json::Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(data["client_name"], "t");
            assert_eq!(data["secret"], op.token.as_ref().unwrap().secret.as_str());
            let typed = data.as_object().unwrap().contains_key("type");
            assert_eq!(typed, profile == Profile::V6, "{profile:?}: {data}");
        }
    }

    /// The status codes and list buckets LXD gives its operations.
    #[test]
    fn operation_statuses_as_lxd_shows_them() {
        let shown: Vec<_> = [Status::Running, Status::Cancelled, Status::Success]
            .into_iter()
            .map(|s| (s.code(), s.bucket()))
            .collect();
        assert_eq!(
            shown,
            [(103, "running"), (401, "cancelled"), (200, "success")]
        );
    }

    /// A token made with no `core.remote_token_expiry` set: LXD 6 gives it fifteen days, LXD
    /// 5.0 and Incus 6.0 none.
    #[test]
    fn tokens_expire_by_the_profile_default_when_no_expiry_is_set() {
        let start = OffsetDateTime::UNIX_EPOCH;
        for (profile, expiry) in [
            (Profile::V5_0, None),
            (Profile::V6, Some(start + time::Duration::days(15))),
            (Profile::Incus6_0, None),
        ] {
            let mut state = with_address(profile, 1);
            let req = token_request("t");
            if let Err(e) = state.create_token(req, start) {
                panic!("{profile:?}: {e:?}");
            }
            let op = state.operations().next().unwrap();
            assert_eq!(op.token.as_ref().unwrap().expires_at, expiry, "{profile:?}");
        }
    }

    /// A null project list, as clients send for an unrestricted token, is an empty one.
    #[test]
    fn null_projects_are_no_projects() {
        let post: CertificatesPost = serde_json::from_str(r#"{"projects":null}"#).unwrap();
        assert!(post.projects.is_empty());
        let post: CertificatesPost = serde_json::from_str(r#"{"projects":["a","b"]}"#).unwrap();
        assert_eq!(post.projects, ["a", "b"]);
        let post: CertificatesPost = serde_json::from_str("{}").unwrap();
        assert!(post.projects.is_empty());
    }
}
