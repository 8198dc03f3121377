//! The trust-token API of LXD.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::error::Error;
use crate::secret::{ExposeSecret, SecretString};
use crate::token::{self, TokenData};
use crate::transport::{self, Reply, Target};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Reads stop retrying once this much time has passed.
    pub deadline: Duration,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// The limit for one request.
    pub request_timeout: Duration,
    /// How many times a create is attempted again after reconciliation showed it made nothing.
    pub create_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            deadline: Duration::from_secs(60),
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            create_attempts: 3,
        }
    }
}

pub use crate::info::{Generation, ServerInfo};

/// A pending trust token: a running token operation.
#[derive(Debug, Clone)]
pub struct PendingToken {
    pub operation_id: String,
    pub name: String,
    pub projects: Vec<String>,
    pub restricted: bool,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    /// The token string, as `lxc config trust add` prints it.
    pub token: SecretString,
}

/// `secrecy` leaves equality out on purpose; tests compare tokens, so it is spelled out here.
impl PartialEq for PendingToken {
    fn eq(&self, other: &Self) -> bool {
        self.operation_id == other.operation_id
            && self.name == other.name
            && self.projects == other.projects
            && self.restricted == other.restricted
            && self.created_at == other.created_at
            && self.expires_at == other.expires_at
            && self.token.expose_secret() == other.token.expose_secret()
    }
}

impl Eq for PendingToken {}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Certificate {
    pub name: String,
    #[serde(default)]
    pub restricted: bool,
    #[serde(default)]
    pub projects: Vec<String>,
    pub fingerprint: String,
}

/// LXD's reply envelope. The metadata is kept as the reply's own text, checked for syntax
/// but not built into a `serde_json::Value`: a listing of many tokens is read from it in place,
/// into just the fields it needs.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    metadata: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct OperationWire {
    id: String,
    class: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    status_code: u16,
    #[serde(default)]
    metadata: Option<TokenMetaWire>,
}

#[derive(Deserialize)]
struct TokenMetaWire {
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(rename = "expiresAt", default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    #[serde(default)]
    fingerprint: String,
    request: Option<RequestWire>,
    #[serde(default)]
    secret: Option<SecretString>,
}

#[derive(Deserialize)]
struct RequestWire {
    #[serde(default)]
    name: String,
    #[serde(default)]
    restricted: bool,
    #[serde(default)]
    projects: Option<Vec<String>>,
}

/// A client of one LXD server.
pub struct Client {
    target: Target,
    /// The open connections to `target`.
    pool: transport::Pool,
    retry: RetryPolicy,
    /// `GET /1.0`, kept until the client's trust changes.
    info: tokio::sync::Mutex<Option<Arc<ServerInfo>>>,
    /// One lock per token name: creates of the same name through this client run one at a
    /// time, so that a reconciliation never sees a token its neighbour is making.
    creates: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The last listing of the trust store and the pending tokens, shared by the callers
    /// that asked for one recent enough (`Client::listing`).
    listing: tokio::sync::Mutex<Option<Arc<Listing>>>,
    /// What each running operation seen is: a pending token, or `None` when it is something
    /// else (`pending_tokens`). A token's content never changes while it runs.
    known: std::sync::Mutex<HashMap<String, Option<Arc<PendingToken>>>>,
    /// The token operations this client made (`remember`): a reconciliation never adopts one
    /// of them, whatever baseline it compares with. Never pruned (a listing may predate a
    /// token just made): an id per create, for a client that lives one Terraform command.
    mine: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// The trust store, then the pending tokens, listed one after the other.
/// What the server holds under one name (`Client::named_now`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The trust store's certificates of that name.
    pub identities: Vec<Certificate>,
    /// The operation ids of the pending tokens of that name.
    pub tokens: BTreeSet<String>,
}

struct Listing {
    started: Instant,
    /// When the operations were asked for: after the trust store was read.
    operations_asked: Instant,
    /// The server's clock when it listed the operations.
    server_time: OffsetDateTime,
    certificates: Vec<Certificate>,
    /// The pending tokens, each as first seen (whole, or made by this client).
    tokens: Vec<Arc<PendingToken>>,
}

/// How recent a listing a caller can use (`Client::listing`).
#[derive(Debug, Clone, Copy)]
enum Recent {
    /// One that began at or after this instant: it shows the server as it was after then.
    BeganAfter(Instant),
    /// One that asked for the operations at or after this instant: a token it lists was
    /// pending then, and so had made nothing in the trust store it had read before.
    OperationsAfter(Instant),
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

fn malformed(status: u16, what: &str, err: impl std::fmt::Display) -> Error {
    Error::Malformed {
        status,
        detail: format!("{what}: {}", scrub(&err.to_string())),
    }
}

/// serde quotes the value it could not use; that value may be a secret, so it goes.
fn scrub(text: &str) -> String {
    match (text.find('"'), text.rfind('"')) {
        (Some(a), Some(b)) if a < b => format!("{}\"…\"{}", &text[..a], &text[b + 1..]),
        _ => text.to_owned(),
    }
}

/// Turns a reply into its envelope's metadata, or a typed error.
fn metadata(reply: &Reply) -> Result<serde_json::Value, Error> {
    let raw = raw_metadata(reply)?;
    match raw {
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|e| malformed(reply.status, "the body is not LXD's JSON envelope", e)),
        None => Ok(serde_json::Value::Null),
    }
}

/// Turns a reply into its envelope's metadata as sent (`None` when it has none), or a typed error.
fn raw_metadata(reply: &Reply) -> Result<Option<Box<RawValue>>, Error> {
    let envelope: Envelope = match serde_json::from_slice(&reply.body) {
        Ok(e) => e,
        Err(err) if reply.status >= 400 => {
            let text = String::from_utf8_lossy(&reply.body[..reply.body.len().min(120)])
                .trim()
                .to_owned();
            let _ = err;
            return Err(Error::Api {
                status: reply.status,
                message: format!(
                    "a reply that is not LXD's error envelope: {}",
                    text.chars().filter(|c| !c.is_control()).collect::<String>()
                ),
            });
        }
        Err(err) => {
            return Err(malformed(
                reply.status,
                "the body is not LXD's JSON envelope",
                err,
            ));
        }
    };
    if envelope.kind == "error" || reply.status >= 400 {
        let message = if envelope.error.is_empty() {
            format!("HTTP {}", reply.status)
        } else {
            envelope.error
        };
        return Err(Error::Api {
            status: reply.status.max(400),
            message,
        });
    }
    Ok(envelope.metadata.filter(|raw| raw.get() != "null"))
}

impl Client {
    pub fn new(target: Target, retry: RetryPolicy) -> Client {
        Client {
            pool: transport::Pool::new(&target),
            target,
            retry,
            info: tokio::sync::Mutex::new(None),
            creates: std::sync::Mutex::new(HashMap::new()),
            listing: tokio::sync::Mutex::new(None),
            known: std::sync::Mutex::new(HashMap::new()),
            mine: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    async fn once(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, Error> {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        transport::send(
            &self.target,
            &self.pool,
            method,
            path,
            bytes,
            self.retry.request_timeout,
        )
        .await
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .retry
            .base_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.retry.max_backoff);
        // Not `mul_f64`, which panics when the product rounds past the largest duration.
        let jitter: f64 = rand::rng().random_range(0.5..=1.0);
        Duration::try_from_secs_f64(exp.as_secs_f64() * jitter)
            .unwrap_or(exp)
            .min(exp)
    }

    /// A read, retried on transient failures until the deadline.
    async fn read(&self, path: &str) -> Result<serde_json::Value, Error> {
        match self.read_raw(path).await? {
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| malformed(200, "the body is not LXD's JSON envelope", e)),
            None => Ok(serde_json::Value::Null),
        }
    }

    /// A read whose metadata is kept as sent (`None` when it is absent or null), retried on
    /// transient failures until the deadline.
    async fn read_raw(&self, path: &str) -> Result<Option<Box<RawValue>>, Error> {
        Ok(self.read_timed(path).await?.0)
    }

    /// As [`Client::read_raw`], with the server's clock when it answered (as
    /// [`Client::server_time`] reads it, from this answer's `Date`), so that a look learns the
    /// time from the read it makes anyway rather than from one more `GET /1.0`.
    async fn read_timed(
        &self,
        path: &str,
    ) -> Result<(Option<Box<RawValue>>, OffsetDateTime), Error> {
        let start = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent = OffsetDateTime::now_utc();
            let result = match self.once("GET", path, None).await {
                Ok(reply) => raw_metadata(&reply).map(|raw| {
                    let read = OffsetDateTime::now_utc();
                    let date = reply.date.as_deref().and_then(parse_http_date);
                    (raw, server_now(date, sent, read))
                }),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_transient() => {
                    let wait = self.backoff(attempts);
                    tracing::debug!(path, attempts, error = %e, "LXD read failed");
                    if start.elapsed().saturating_add(wait) > self.retry.deadline {
                        return Err(Error::RetriesExhausted {
                            attempts,
                            last: Box::new(e),
                        });
                    }
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// What `GET /1.0` says, read once and kept until the client's trust changes. Shared, not
    /// copied: every look and create asks, and a server lists hundreds of API extensions.
    pub async fn server_info(&self) -> Result<Arc<ServerInfo>, Error> {
        let mut cached = self.info.lock().await;
        if let Some(info) = cached.as_ref() {
            return Ok(info.clone());
        }
        let meta = self.read("/1.0").await?;
        let info = Arc::new(ServerInfo::from_metadata(&meta));
        *cached = Some(info.clone());
        Ok(info)
    }

    fn pending(&self, op: OperationWire, typed: bool) -> Option<PendingToken> {
        if !is_pending(&op) {
            return None;
        }
        let meta = op.metadata?;
        let request = meta.request?;
        let secret = meta.secret?;
        let data = TokenData {
            client_name: request.name.clone(),
            fingerprint: meta.fingerprint,
            addresses: meta.addresses,
            secret,
            expires_at: meta.expires_at,
        };
        Some(PendingToken {
            operation_id: op.id,
            name: request.name,
            projects: request.projects.unwrap_or_default(),
            restricted: request.restricted,
            created_at: op.created_at,
            expires_at: data.expires_at,
            token: token::encode(&data, typed),
        })
    }

    /// Every pending trust token (running `token` operations of certificate requests).
    pub async fn list_tokens(&self) -> Result<Vec<PendingToken>, Error> {
        let typed = self.server_info().await?.typed_tokens();
        let mut out: Vec<PendingToken> = self
            .token_operations()
            .await?
            .into_iter()
            .filter_map(|op| self.pending(op, typed))
            .collect();
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then(a.operation_id.cmp(&b.operation_id))
        });
        Ok(out)
    }

    /// The running token operations of the server, each read from its own part of the
    /// listing: other classes (tasks, websockets), join tokens (which have no request) and
    /// operations that do not read as a token are skipped.
    async fn token_operations(&self) -> Result<Vec<OperationWire>, Error> {
        let raw = self
            .read_raw("/1.0/operations?project=default&recursion=1")
            .await?;
        let mut out = Vec::new();
        for (_, ops) in buckets(raw.as_deref(), "not a list")? {
            for op in ops {
                if let Ok(op) = serde_json::from_str::<OperationWire>(op.get())
                    && is_pending(&op)
                {
                    out.push(op);
                }
            }
        }
        Ok(out)
    }

    /// The pending token held by operation `id`, or `None` when it is gone or no longer running.
    pub async fn get_token(&self, id: &str) -> Result<Option<PendingToken>, Error> {
        let path = operation_path(id)?;
        let typed = self.server_info().await?.typed_tokens();
        match self.read(&path).await {
            Ok(meta) => {
                let op: OperationWire =
                    serde_json::from_value(meta).map_err(|e| malformed(200, "the operation", e))?;
                Ok(self.pending(op, typed))
            }
            Err(Error::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Revokes a pending token. `Ok(false)` when it was already gone or finished.
    pub async fn revoke(&self, id: &str) -> Result<bool, Error> {
        let path = operation_path(id)?;
        let start = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = match self.once("DELETE", &path, None).await {
                Ok(reply) => metadata(&reply),
                Err(e) => Err(e),
            };
            match result {
                Ok(_) => return Ok(true),
                Err(Error::Api {
                    status: 404 | 400, ..
                }) if attempts > 1 => return Ok(true),
                Err(Error::Api {
                    status: 404 | 400, ..
                }) => return Ok(false),
                // Deleting is idempotent, so it is retried like a read.
                Err(e) if e.is_transient() && start.elapsed() < self.retry.deadline => {
                    tokio::time::sleep(self.backoff(attempts)).await
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates a trust token. LXD has no idempotency key, so a create is never blindly
    /// retried, and what it did is found out, not assumed:
    /// - when the request surely never reached the server (no connection), it is sent again;
    /// - when it may have acted without a usable answer (the connection broke after sending,
    ///   the answer timed out or was unreadable, or a 5xx came back, which a proxy may send
    ///   after forwarding), it is never sent again: the client watches, until the deadline,
    ///   for pending tokens of that name that were not there before the request. Once the
    ///   request had one more request timeout to act, exactly one is adopted, and several are
    ///   an [`Error::AmbiguousCreate`] naming them all.
    ///
    /// A create never revokes anything, since it cannot prove that a token it did not get an
    /// answer for is its own. Creates of the same name through one client run one at a time,
    /// so that they never take each other's tokens for their own.
    pub async fn create_token(
        &self,
        name: &str,
        projects: &[String],
    ) -> Result<PendingToken, Error> {
        self.create(name, projects, None).await
    }

    /// As [`Client::create_token`], with the pending tokens of that name that `named` (from
    /// [`Client::named_now`], before this call) lists as those that were there before the
    /// request, so that the create lists nothing itself: an apply of N tokens then lists the
    /// server once per token, not twice. A token of that name made by another client between
    /// that listing and the request may be taken for this create's own when its answer is
    /// lost, as one made while the answer was on its way may be in any case; this client's
    /// own tokens never are.
    pub async fn create_token_beside(
        &self,
        name: &str,
        projects: &[String],
        named: &Named,
    ) -> Result<PendingToken, Error> {
        self.create(name, projects, Some(&named.tokens)).await
    }

    async fn create(
        &self,
        name: &str,
        projects: &[String],
        known_before: Option<&BTreeSet<String>>,
    ) -> Result<PendingToken, Error> {
        let lock = {
            let mut locks = self.creates.lock().unwrap_or_else(|e| e.into_inner());
            // Locks nobody holds or waits for are dropped, so the map stays small.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            locks.entry(name.to_owned()).or_default().clone()
        };
        let _serialised = match lock.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                tracing::debug!(name, "waiting for another create of the same name");
                lock.lock().await
            }
        };
        let info = self.server_info().await?;
        if !info.trusted {
            return Err(Error::Untrusted {
                target: format!("{:?}", self.target),
                action: "issue trust tokens",
            });
        }
        if !info.issues_tokens() {
            return Err(Error::MissingExtension {
                server: info.describe(),
                extension: crate::info::TOKEN_EXTENSION,
                action: "issue trust tokens",
            });
        }
        let restricted = !projects.is_empty();
        let body = json!({"name": name, "type": "client", "restricted": restricted, "projects": projects, "token": true});
        let start = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            // A create that was not sent made nothing, so a baseline stays true for the next
            // attempt.
            let before = match known_before {
                Some(tokens) => tokens.clone(),
                None => self.operation_ids().await?,
            };
            let result = match self
                .once("POST", "/1.0/certificates?project=default", Some(&body))
                .await
            {
                Ok(reply) => metadata(&reply).and_then(|meta| {
                    let op: OperationWire = serde_json::from_value(meta)
                        .map_err(|e| malformed(reply.status, "the token operation", e))?;
                    self.pending(op, info.typed_tokens()).ok_or_else(|| {
                        malformed(reply.status, "the token operation", "not a running token")
                    })
                }),
                Err(e) => Err(e),
            };
            let error = match result {
                Ok(token) => {
                    self.remember(&token);
                    return Ok(token);
                }
                Err(e) if e.is_unsent() => e,
                Err(e) if e.is_ambiguous() => {
                    tracing::debug!(name, attempts, error = %e, "token create may have acted; reconciling");
                    let create = Create {
                        name,
                        projects,
                        restricted,
                        before,
                        start,
                        attempts,
                    };
                    return self.reconcile(&create, e).await;
                }
                Err(e) => return Err(explain(e, info.generation())),
            };
            tracing::debug!(name, attempts, error = %error, "token create was not sent");
            let wait = self.backoff(attempts);
            if attempts >= self.retry.create_attempts
                || start.elapsed().saturating_add(wait) > self.retry.deadline
            {
                return Err(Error::RetriesExhausted {
                    attempts,
                    last: Box::new(error),
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Watches for the token an ambiguous create may have made: the pending tokens of its
    /// name and projects that were not there before the request. Nothing is decided before
    /// the request had one more request timeout to act (it may still be on its way), so that a
    /// late own token is counted too (even when that takes the watch past the deadline); then a
    /// sole candidate is adopted, several are reported, and none is watched for until the
    /// deadline.
    async fn reconcile(&self, create: &Create<'_>, error: Error) -> Result<PendingToken, Error> {
        let settled_at = Instant::now() + self.retry.request_timeout;
        let mut polls = 0;
        loop {
            polls += 1;
            let mut candidates: Vec<PendingToken> = self
                .list_tokens()
                .await?
                .into_iter()
                .filter(|t| {
                    !create.before.contains(&t.operation_id)
                        && !self.made_here(&t.operation_id)
                        && t.name == create.name
                        && t.projects == create.projects
                        && t.restricted == create.restricted
                })
                .collect();
            let wait = self.backoff(polls);
            let out_of_time = create.start.elapsed() + wait > self.retry.deadline;
            // Not even the deadline decides before the request had its time to act: a sole
            // candidate seen earlier may be another client's token, with ours still on its way.
            let settled = Instant::now() >= settled_at;
            if settled {
                match candidates.len() {
                    0 if out_of_time => {
                        return Err(Error::RetriesExhausted {
                            attempts: create.attempts,
                            last: Box::new(error),
                        });
                    }
                    0 => {}
                    1 => {
                        let token = candidates.remove(0);
                        self.remember(&token);
                        return Ok(token);
                    }
                    _ => {
                        return Err(Error::AmbiguousCreate {
                            name: create.name.to_owned(),
                            candidates: candidates.into_iter().map(|t| t.operation_id).collect(),
                            cause: Box::new(error),
                        });
                    }
                }
            }
            // Before the request has had its time, the next look comes when it has, not a
            // whole backoff later.
            let wait = if settled {
                wait
            } else {
                wait.min(settled_at.saturating_duration_since(Instant::now()))
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The ids of every operation the server holds: a listing without recursion, so that the
    /// baseline a create takes costs little even with many tokens pending.
    async fn operation_ids(&self) -> Result<BTreeSet<String>, Error> {
        Ok(self
            .operation_buckets()
            .await?
            .0
            .into_iter()
            .flat_map(|(_, ids)| ids)
            .collect())
    }

    /// The ids of the server's operations by bucket (`running`, `success`, …), from a listing
    /// without recursion.
    async fn operation_buckets(
        &self,
    ) -> Result<(Vec<(String, Vec<String>)>, OffsetDateTime), Error> {
        let (raw, server_time) = self.read_timed("/1.0/operations?project=default").await?;
        let mut out = Vec::new();
        for (bucket, urls) in buckets(raw.as_deref(), "not a list")? {
            let mut ids = Vec::with_capacity(urls.len());
            for url in urls {
                let url: String = serde_json::from_str(url.get())
                    .map_err(|e| malformed(200, "an operations bucket", e))?;
                let path = url.split('?').next().unwrap_or_default();
                if let Some(id) = path.rsplit('/').next().filter(|id| !id.is_empty()) {
                    ids.push(id.to_owned());
                }
            }
            out.push((bucket, ids));
        }
        Ok((out, server_time))
    }

    /// The pending tokens, with the server's clock when it listed them. The running operations
    /// are listed by id (a few dozen bytes each); only when one of them is not yet known (by an
    /// earlier listing or as this client's own token) are they listed whole, so that a listing
    /// costs about the same with a thousand tokens pending as with ten, when the new ones are
    /// this client's. What an operation is never changes, so what is known of an id stays true
    /// while it runs.
    async fn pending_tokens(&self) -> Result<(Vec<Arc<PendingToken>>, OffsetDateTime), Error> {
        let (buckets, server_time) = self.operation_buckets().await?;
        let running: Vec<String> = buckets
            .into_iter()
            .filter(|(bucket, _)| bucket == "running")
            .flat_map(|(_, ids)| ids)
            .collect();
        let unknown = {
            let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            running.iter().any(|id| !known.contains_key(id))
        };
        let whole = if unknown {
            let typed = self.server_info().await?.typed_tokens();
            let ops = self.token_operations().await?;
            Some((
                typed,
                ops.into_iter()
                    .map(|op| (op.id.clone(), op))
                    .collect::<HashMap<String, OperationWire>>(),
            ))
        } else {
            None
        };
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((typed, mut whole)) = whole {
            // Only the ids new to this client become tokens: a token string is built once.
            for id in &running {
                if !known.contains_key(id) {
                    let token = whole.remove(id).and_then(|op| self.pending(op, typed));
                    known.insert(id.clone(), token.map(Arc::new));
                }
            }
        }
        // Only what still runs is kept, so the record never outgrows the server's listing.
        let running_now: std::collections::HashSet<&String> = running.iter().collect();
        known.retain(|id, _| running_now.contains(id));
        let tokens = running
            .iter()
            .filter_map(|id| known.get(id)?.clone())
            .collect();
        Ok((tokens, server_time))
    }

    /// Records a token this client made, so that listings need not read it whole.
    fn remember(&self, token: &PendingToken) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.operation_id.clone(), Some(Arc::new(token.clone())));
        self.mine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.operation_id.clone());
    }

    /// Whether this client made the token operation `id`.
    fn made_here(&self, id: &str) -> bool {
        self.mine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }

    pub async fn list_certificates(&self) -> Result<Vec<Certificate>, Error> {
        let raw = self.read_raw("/1.0/certificates?recursion=1").await?;
        serde_json::from_str(raw.as_deref().map_or("null", RawValue::get))
            .map_err(|e| malformed(200, "the certificates list", e))
    }

    /// Makes this client trusted with a trust password (LXD 5.0's `core.trust_password`).
    pub async fn consume_password(&self, password: &SecretString) -> Result<(), Error> {
        self.become_trusted(Credential::Password(password)).await
    }

    /// Makes this client trusted by presenting `token` (over HTTPS with a client certificate),
    /// as `lxc remote add NAME TOKEN` does. The field follows the server's generation.
    pub async fn consume_token(&self, token: &SecretString) -> Result<(), Error> {
        self.become_trusted(Credential::Token(token)).await
    }

    /// The one request path of both trust requests, never retried on failure (a second try of
    /// a used token fails); only a 501 refusal of the `password` field, which consumed nothing,
    /// is followed by one request in `trust_token` alone.
    async fn become_trusted(&self, credential: Credential<'_>) -> Result<(), Error> {
        if let Credential::Token(token) = credential {
            token::decode(token)?;
        }
        let generation = self.server_info().await?.generation();
        let body = match (credential, generation) {
            (Credential::Password(_), Generation::Incus) => {
                return Err(Error::Refused {
                    status: 400,
                    message: "Incus has no trust passwords (it knows no core.trust_password); use a trust token".into(),
                });
            }
            (Credential::Token(token), Generation::Incus) => {
                json!({"type": "client", "trust_token": token.expose_secret()})
            }
            (Credential::Password(_), Generation::TrustToken) => {
                return Err(Error::Refused {
                    status: 501,
                    message: "this LXD server no longer accepts trust passwords; use a trust token"
                        .into(),
                });
            }
            (Credential::Token(token), Generation::TrustToken) => {
                json!({"type": "client", "trust_token": token.expose_secret()})
            }
            (Credential::Password(password), Generation::Password) => {
                json!({"type": "client", "password": password.expose_secret()})
            }
            // A server that shows no `explicit_trust_token` before trust is LXD 5.0, which reads
            // the token from `password` and ignores `trust_token`, or Incus, which reads it only
            // from `trust_token` and then ignores `password` (Incus 7 also hides its extensions
            // from untrusted clients). Both fields serve both.
            (Credential::Token(token), Generation::Password) => json!({
                "type": "client",
                "password": token.expose_secret(),
                "trust_token": token.expose_secret(),
            }),
        };
        let result = self.trust_request(&body, generation).await;
        match (credential, generation, result) {
            // A newer LXD that hid its extensions would refuse a non-empty `password` with 501
            // before looking at the token: ask once more with `trust_token` alone.
            (
                Credential::Token(token),
                Generation::Password,
                Err(Error::Api { status: 501, .. } | Error::Refused { status: 501, .. }),
            ) => {
                let body = json!({"type": "client", "trust_token": token.expose_secret()});
                self.trust_request(&body, Generation::TrustToken).await
            }
            (_, _, result) => result,
        }
    }

    async fn trust_request(
        &self,
        body: &serde_json::Value,
        generation: Generation,
    ) -> Result<(), Error> {
        let reply = self.once("POST", "/1.0/certificates", Some(body)).await?;
        metadata(&reply).map_err(|e| explain(e, generation))?;
        // Trusted now: what the server shows us changes.
        *self.info.lock().await = None;
        Ok(())
    }
}

/// What the server shows of a token's operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOperation {
    /// Running: the token is listed.
    Running(PendingToken),
    /// Finished (cancelled) and still retained.
    Finished,
    /// Not found: pruned, or lost in a daemon restart.
    Gone,
}

/// One look at a token and at the trust store, for telling what became of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLook {
    pub operation: TokenOperation,
    /// The server's clock (its `Date`), or this machine's when the server sent none.
    pub server_time: OffsetDateTime,
    /// The fingerprints of the trust-store entries named `name`.
    pub named: BTreeSet<String>,
    /// The other running token operations named `name`.
    pub rivals: BTreeSet<String>,
}

/// Which server software and version `GET /1.0` reports (`lxd`, `incus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKind {
    pub server: String,
    pub version: String,
}

/// Reads an HTTP date (`Thu, 03 Dec 2026 10:05:49 GMT`).
pub fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text.trim(), format)
        .ok()
        .map(|t| t.assume_utc())
}

/// The server's time when its answer was read, from the answer's `Date` and this machine's
/// clock before the request (`sent`) and after the answer (`read`).
///
/// `Date` has whole seconds, and the server wrote it somewhere between `sent` and `read`.
/// When that second overlaps the request, the two clocks agree and this machine's `read` says
/// the same time more precisely (a token made this second may already have expired). Checking
/// only that `read` falls in the `Date`'s second put the server up to a second behind whenever
/// the second turned while the answer was on its way.
fn server_now(
    date: Option<OffsetDateTime>,
    sent: OffsetDateTime,
    read: OffsetDateTime,
) -> OffsetDateTime {
    let Some(date) = date else {
        return read;
    };
    let agrees = date <= read && sent < date + time::Duration::SECOND;
    if agrees { read } else { date }
}

impl Client {
    /// The server's clock: the `Date` of its answer to `GET /1.0`, or this machine's clock
    /// when it sends none.
    pub async fn server_time(&self) -> Result<OffsetDateTime, Error> {
        let sent = OffsetDateTime::now_utc();
        let reply = self.once("GET", "/1.0", None).await?;
        metadata(&reply)?;
        let read = OffsetDateTime::now_utc();
        Ok(server_now(
            reply.date.as_deref().and_then(parse_http_date),
            sent,
            read,
        ))
    }

    /// Which server software and version this is: from the cached `GET /1.0` when it shows
    /// them (a trusted client's), so that a plan or apply of many tokens asks once, not once
    /// per token; read again when it does not (an untrusted client sees no environment).
    pub async fn server_kind(&self) -> Result<ServerKind, Error> {
        let info = self.server_info().await?;
        if let (Some(server), Some(version)) = (&info.server, &info.server_version) {
            return Ok(ServerKind {
                server: server.clone(),
                version: version.clone(),
            });
        }
        let meta = self.read("/1.0").await?;
        let field = |name: &str| {
            meta["environment"][name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| malformed(200, "the server environment", format!("no {name}")))
        };
        Ok(ServerKind {
            server: field("server")?,
            version: field("server_version")?,
        })
    }

    /// What the server shows of the token operation `id` named `name`: the operation, the
    /// trust-store entries of that name and the other pending tokens of that name.
    ///
    /// The listing comes first: the trust store, then the running operations, asked for after
    /// this look began. A token still running then had made nothing in the trust store the
    /// listing read before (a token is never pending again once used), so the listing is a
    /// sound record of what was there before the token, and the token is as the client first
    /// saw it whole (its content never changes while it runs). So a look at a running token
    /// (every refresh of a pending one) reads nothing of its own, and looks at once share
    /// their listing. A token the listing does not show running has its operation read, and
    /// is shown with a listing that began after that read: one that holds whatever its use
    /// made.
    pub async fn look_at_token(&self, id: &str, name: &str) -> Result<TokenLook, Error> {
        let path = operation_path(id)?;
        let before = self
            .listing(Recent::OperationsAfter(Instant::now()))
            .await?;
        let listed = before.tokens.iter().find(|t| t.operation_id == id);
        let (operation, server_time, listing) = match listed {
            Some(token) => (
                TokenOperation::Running(PendingToken::clone(token)),
                before.server_time,
                before,
            ),
            None => self.read_token_operation(id, &path, before).await?,
        };
        let named = listing
            .certificates
            .iter()
            .filter(|c| c.name == name)
            .map(|c| c.fingerprint.clone())
            .collect();
        let rivals = listing
            .tokens
            .iter()
            .filter(|t| t.name == name && t.operation_id != id)
            .map(|t| t.operation_id.clone())
            .collect();
        Ok(TokenLook {
            operation,
            server_time,
            named,
            rivals,
        })
    }

    /// A look at a token its listing (`before`) did not show running: its operation as read
    /// now, the server's clock then, and the listing that records the trust store for it.
    async fn read_token_operation(
        &self,
        id: &str,
        path: &str,
        before: Arc<Listing>,
    ) -> Result<(TokenOperation, OffsetDateTime, Arc<Listing>), Error> {
        let typed = self.server_info().await?.typed_tokens();
        // The server's clock from the operation's own answer; a 404 carries none through
        // the error, so a gone token costs one more `GET /1.0`.
        let (operation, server_time) = match self.read_timed(path).await {
            Ok((raw, server_time)) => {
                let op: OperationWire =
                    serde_json::from_str(raw.as_deref().map_or("null", RawValue::get))
                        .map_err(|e| malformed(200, "the operation", e))?;
                if op.id != id {
                    return Err(malformed(200, "the operation", "another operation's id"));
                }
                let operation = match self.pending(op, typed) {
                    Some(token) => TokenOperation::Running(token),
                    None => TokenOperation::Finished,
                };
                (operation, server_time)
            }
            Err(Error::Api { status: 404, .. }) => {
                (TokenOperation::Gone, self.server_time().await?)
            }
            Err(e) => return Err(e),
        };
        let listing = match operation {
            // Running when read after the listing: the listing is still a sound record.
            TokenOperation::Running(_) => before,
            TokenOperation::Finished | TokenOperation::Gone => {
                self.listing(Recent::BeganAfter(Instant::now())).await?
            }
        };
        Ok((operation, server_time, listing))
    }

    /// The identities named `name` in the trust store and the pending tokens of that name, from
    /// a listing of the server that began after this call: what a new token of that name
    /// must be told apart from later. Calls and looks that wait while a listing runs share the
    /// next one, so N creates at once list the server about once per wave, not once each.
    pub async fn named_now(&self, name: &str) -> Result<Named, Error> {
        let listing = self.listing(Recent::BeganAfter(Instant::now())).await?;
        Ok(Named {
            identities: listing
                .certificates
                .iter()
                .filter(|c| c.name == name)
                .cloned()
                .collect(),
            tokens: listing
                .tokens
                .iter()
                .filter(|t| t.name == name)
                .map(|t| t.operation_id.clone())
                .collect(),
        })
    }

    /// The trust store, then the pending tokens, as listed by a listing as recent as `recent`
    /// asks: the last one when it is, else a new one.
    ///
    /// Each look at a token needs both whole lists, since LXD filters neither by name. Callers
    /// that wait here while a listing reads the trust store share it
    /// (`Recent::OperationsAfter`), or the next one (`Recent::BeganAfter`), so Terraform's
    /// refresh of N tokens (ten at a time) lists the server about once per wave of looks rather
    /// than once per token.
    async fn listing(&self, recent: Recent) -> Result<Arc<Listing>, Error> {
        let mut slot = self.listing.lock().await;
        if let Some(listing) = slot.as_ref()
            && match recent {
                Recent::BeganAfter(at) => listing.started >= at,
                Recent::OperationsAfter(at) => listing.operations_asked >= at,
            }
        {
            return Ok(listing.clone());
        }
        let started = Instant::now();
        let certificates = self.list_certificates().await?;
        let operations_asked = Instant::now();
        let (tokens, server_time) = self.pending_tokens().await?;
        let listing = Arc::new(Listing {
            started,
            operations_asked,
            server_time,
            certificates,
            tokens,
        });
        *slot = Some(listing.clone());
        Ok(listing)
    }

    /// The names of the server's projects.
    pub async fn project_names(&self) -> Result<BTreeSet<String>, Error> {
        let meta = self.read("/1.0/projects").await?;
        let urls: Vec<String> =
            serde_json::from_value(meta).map_err(|e| malformed(200, "the projects list", e))?;
        Ok(urls
            .iter()
            .filter_map(|url| url.split('?').next()?.rsplit('/').next())
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// Deletes the trust-store entry with exactly this fingerprint. `Ok(false)` when there is
    /// none. A fingerprint that is not a whole SHA-256 is refused, since LXD would take it as
    /// a prefix of another certificate's.
    pub async fn delete_certificate(&self, fingerprint: &str) -> Result<bool, Error> {
        if fingerprint.len() != 64 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Refused {
                status: 400,
                message: format!(
                    "{fingerprint:?} is not a whole certificate fingerprint (64 hex digits)"
                ),
            });
        }
        let path = format!(
            "/1.0/certificates/{}",
            utf8_percent_encode(fingerprint, SEGMENT)
        );
        let reply = self.once("DELETE", &path, None).await?;
        match metadata(&reply) {
            Ok(_) => Ok(true),
            Err(Error::Api { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Whether `op` holds a pending trust token: a running `token` operation of a certificate
/// request with a secret.
fn is_pending(op: &OperationWire) -> bool {
    op.class == "token"
        && op.status_code == 103
        && op.metadata.as_ref().is_some_and(|meta| {
            meta.request.is_some()
                && meta
                    .secret
                    .as_ref()
                    .is_some_and(|s| !s.expose_secret().is_empty())
        })
}

/// The buckets (`running`, `success`, …) of an operations listing, each a list of its entries
/// as sent. `not_a_list` says what a bucket that is not a list is.
fn buckets<'a>(
    raw: Option<&'a RawValue>,
    not_a_list: &str,
) -> Result<Vec<(String, Vec<&'a RawValue>)>, Error> {
    let raw = raw.map_or("null", RawValue::get);
    let buckets: HashMap<String, &RawValue> = serde_json::from_str(raw)
        .map_err(|_| malformed(200, "the operations list", "not an object"))?;
    buckets
        .into_iter()
        .map(|(name, bucket)| {
            let entries = serde_json::from_str(bucket.get())
                .map_err(|_| malformed(200, "an operations bucket", not_a_list))?;
            Ok((name, entries))
        })
        .collect()
}

/// A create whose request may have acted: what its reconciliation looks for.
struct Create<'a> {
    name: &'a str,
    projects: &'a [String],
    restricted: bool,
    /// The operations that were there before the request.
    before: BTreeSet<String>,
    start: Instant,
    attempts: u32,
}

#[derive(Clone, Copy)]
enum Credential<'a> {
    Password(&'a SecretString),
    Token(&'a SecretString),
}

/// Adds what to do to the refusals a user can act on.
fn explain(err: Error, generation: Generation) -> Error {
    let Error::Api { status, message } = &err else {
        return err;
    };
    let hint = match (*status, message.as_str()) {
        (400, m)
            if (m.contains("isn't listening on network")
                || m.contains("not listening on network"))
                && generation == Generation::Incus =>
        {
            "set core.https_address on the server (incus config set core.https_address :8443)"
        }
        (400, m)
            if m.contains("isn't listening on network")
                || m.contains("not listening on network") =>
        {
            "set core.https_address on the server (lxc config set core.https_address :8443)"
        }
        (403, "not authorized") => {
            "this client is not trusted by the server, or the token is not valid"
        }
        (403 | 500, m) if m.contains("Token has expired") => "the token expired; request a new one",
        (403, m) if m.contains("No matching certificate add operation") => {
            "the token was already used, revoked or lost in a server restart; request a new one"
        }
        (409, m) if m.contains("entry already exists") => {
            "the server already has a client of this name; use a unique token name or delete that certificate first"
        }
        (400 | 409, m) if m.contains("already trusted") => {
            "this client is already trusted by the server"
        }
        (501, m) if m.contains("Password authentication") && generation == Generation::Password => {
            "the server no longer takes passwords; it reports no explicit_trust_token extension, so check its version"
        }
        _ => return err,
    };
    Error::Refused {
        status: *status,
        message: format!("{message}: {hint}"),
    }
}

/// What a path segment built from input may hold as it is: RFC 3986's unreserved characters
/// but `.`, so that no segment can be `.` or `..` and walk the path.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// The path of operation `id`, refused unless `id` is a UUID, before any request.
fn operation_path(id: &str) -> Result<String, Error> {
    let valid = uuid::Uuid::try_parse(id)
        .is_ok_and(|uuid| uuid.hyphenated().to_string() == id.to_ascii_lowercase());
    if !valid {
        let shown: String = id.chars().take(64).collect();
        return Err(Error::BadOperationId(format!("{shown:?}")));
    }
    Ok(format!(
        "/1.0/operations/{}?project=default",
        utf8_percent_encode(id, SEGMENT)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_time_is_read_when_its_date_overlaps_the_request() {
        use time::macros::datetime;
        let date = datetime!(2026-12-03 10:05:49 UTC);
        let at = |ms: i64| date + time::Duration::milliseconds(ms);
        // Read in the `Date`'s second.
        assert_eq!(server_now(Some(date), at(100), at(300)), at(300));
        // Sent in that second, read in the next: the second turned on the way back.
        assert_eq!(server_now(Some(date), at(900), at(1_100)), at(1_100));
        // Sent before that second: the server wrote it while the request was on its way.
        assert_eq!(server_now(Some(date), at(-200), at(50)), at(50));
        // Sent a second later or more: the server's clock is behind this one.
        assert_eq!(server_now(Some(date), at(1_000), at(1_200)), date);
        // Read before that second: the server's clock is ahead.
        assert_eq!(server_now(Some(date), at(-900), at(-1)), date);
        // No `Date`: this machine's clock.
        assert_eq!(server_now(None, at(0), at(5)), at(5));
    }

    #[test]
    fn operation_paths_take_uuids_only() {
        let id = "38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1";
        assert_eq!(
            operation_path(id).unwrap(),
            format!("/1.0/operations/{id}?project=default")
        );
        assert!(operation_path(&id.to_ascii_uppercase()).is_ok());
        for bad in [
            "",
            ".",
            "..",
            "../certificates",
            "38c4bd1a6f724d2bb5bfe1d99aaf62c1",
            "{38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1}",
            "urn:uuid:38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1",
            "38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1?project=x",
            "38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1/wait",
        ] {
            assert!(
                matches!(operation_path(bad), Err(Error::BadOperationId(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pending_tokens_are_equal_only_when_every_field_is() {
        let base = PendingToken {
            operation_id: "38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1".into(),
            name: "alice".into(),
            projects: vec!["default".into()],
            restricted: true,
            created_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: None,
            token: SecretString::from("token-a"),
        };
        assert_eq!(base, base.clone());
        let changes: [fn(&mut PendingToken); 7] = [
            |t| t.operation_id = "00000000-0000-0000-0000-000000000000".into(),
            |t| t.name = "bob".into(),
            |t| t.projects.clear(),
            |t| t.restricted = false,
            |t| t.created_at += time::Duration::SECOND,
            |t| t.expires_at = Some(OffsetDateTime::UNIX_EPOCH),
            |t| t.token = SecretString::from("token-b"),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut other = base.clone();
            change(&mut other);
            assert_ne!(base, other, "change {i}");
        }
    }

    #[test]
    fn serde_errors_keep_their_words_and_lose_the_quoted_value() {
        assert_eq!(
            scrub(r#"invalid type: string "hunter2", expected u64 at line 1 column 9"#),
            r#"invalid type: string "…", expected u64 at line 1 column 9"#
        );
        // The first and the last quote bound what goes, whatever lies between.
        assert_eq!(scrub(r#"a "x" b "y" c"#), r#"a "…" c"#);
        // With no pair of quotes there is nothing to take.
        for kept in ["EOF while parsing a value", r#"one " quote"#, ""] {
            assert_eq!(scrub(kept), kept);
        }
    }

    #[test]
    fn a_client_shows_its_target_and_nothing_else() {
        let client = Client::new(
            Target::Unix("/run/lxd/unix.socket".into()),
            RetryPolicy::default(),
        );
        let shown = format!("{client:?}");
        assert!(shown.starts_with("Client {"), "{shown}");
        assert!(shown.contains("/run/lxd/unix.socket"), "{shown}");
        assert!(shown.ends_with(".. }"), "{shown}");
    }

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap_with_jitter_below() {
        let client = Client::new(
            Target::Unix("/run/lxd/unix.socket".into()),
            RetryPolicy {
                base_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                ..RetryPolicy::default()
            },
        );
        let ms = Duration::from_millis;
        for (attempt, full) in [
            (0, ms(100)),
            (1, ms(200)),
            (3, ms(800)),
            (4, ms(1000)),
            (40, ms(1000)),
        ] {
            let waits: Vec<Duration> = (0..64).map(|_| client.backoff(attempt)).collect();
            for wait in &waits {
                assert!(
                    *wait >= full / 2 && *wait <= full,
                    "attempt {attempt}: {wait:?}"
                );
            }
            // Jitter takes off up to half: 64 draws are never all the full wait.
            assert!(
                waits.iter().any(|w| *w < full),
                "attempt {attempt}: no jitter"
            );
        }
    }

    #[tokio::test]
    async fn the_lock_of_a_name_nobody_creates_any_more_is_dropped() {
        let fake = fake_lxd::FakeLxd::start(fake_lxd::Config::for_testing())
            .await
            .unwrap();
        let client = Client::new(
            Target::Unix(fake.unix_socket().to_owned()),
            RetryPolicy::default(),
        );
        for name in ["a", "b", "c", "c"] {
            client.create_token(name, &[]).await.unwrap();
        }
        let names: Vec<String> = client.creates.lock().unwrap().keys().cloned().collect();
        assert_eq!(names, ["c"], "only the last create's lock is left");
    }

    #[test]
    fn refusals_a_user_can_act_on_say_what_to_do() {
        use Generation::{Incus, Password, TrustToken};
        let cases: &[(u16, &str, Generation, Option<&str>)] = &[
            (
                400,
                "Cannot join: the server isn't listening on network",
                Incus,
                Some("incus config set core.https_address"),
            ),
            (
                400,
                "server not listening on network",
                Incus,
                Some("incus config set core.https_address"),
            ),
            (
                400,
                "the server isn't listening on network",
                Password,
                Some("lxc config set core.https_address"),
            ),
            (
                400,
                "not listening on network",
                TrustToken,
                Some("lxc config set core.https_address"),
            ),
            (400, "bad request", Incus, None),
            (
                403,
                "not authorized",
                Password,
                Some("not trusted by the server"),
            ),
            (
                403,
                "Token has expired",
                TrustToken,
                Some("the token expired"),
            ),
            (500, "Token has expired", Incus, Some("the token expired")),
            (
                403,
                "No matching certificate add operation found",
                Password,
                Some("already used, revoked or lost"),
            ),
            (403, "forbidden", Password, None),
            (
                409,
                "Certificate entry already exists",
                TrustToken,
                Some("already has a client of this name"),
            ),
            (
                409,
                "Client is already trusted",
                Password,
                Some("already trusted by the server"),
            ),
            (
                400,
                "Client is already trusted",
                Incus,
                Some("already trusted by the server"),
            ),
            (409, "conflict", Password, None),
            (
                501,
                "Password authentication is not supported",
                Password,
                Some("no longer takes passwords"),
            ),
            (
                501,
                "Password authentication is not supported",
                TrustToken,
                None,
            ),
            (501, "not implemented", Password, None),
        ];
        for (status, message, generation, hint) in cases {
            let refused = explain(
                Error::Api {
                    status: *status,
                    message: (*message).to_owned(),
                },
                *generation,
            );
            match (hint, &refused) {
                (
                    Some(hint),
                    Error::Refused {
                        status: s,
                        message: m,
                    },
                ) => {
                    assert_eq!(s, status);
                    assert!(m.starts_with(message) && m.contains(hint), "{m}");
                }
                (
                    None,
                    Error::Api {
                        status: s,
                        message: m,
                    },
                ) => {
                    assert_eq!((s, m.as_str()), (status, *message));
                }
                _ => panic!("{status} {message} {generation:?}: {refused:?}"),
            }
        }
        let other = explain(Error::BadOperationId("x".into()), Password);
        assert!(matches!(other, Error::BadOperationId(_)));
    }

    #[test]
    fn path_segments_never_walk() {
        for (input, encoded) in [
            (".", "%2E"),
            ("..", "%2E%2E"),
            ("a/../b", "a%2F%2E%2E%2Fb"),
            ("x?y#z", "x%3Fy%23z"),
            ("%2e", "%252e"),
            ("é", "%C3%A9"),
            ("A-z_0~9", "A-z_0~9"),
        ] {
            assert_eq!(utf8_percent_encode(input, SEGMENT).to_string(), encoded);
        }
    }
}
