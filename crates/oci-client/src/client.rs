//! The auth-token operations of the Identity API, with signing, retries and limits.

mod users;

pub use users::User;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use time::OffsetDateTime;

use secrecy::SecretString;

use crate::config::Credentials;
use crate::endpoint;
use crate::error::Error;
use crate::path::{check_ocid, segment};
use crate::signer::Signer;

/// Where the client gets the time it signs with.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// How long after its create a token may still be missing from lists (the SDKs' eventual
/// consistency window for Identity).
pub const CONSISTENCY_WINDOW: Duration = Duration::from_secs(240);

/// A clock fixed at one instant, for tests.
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

/// How hard the client tries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// No retry starts once this much time has passed since the first attempt. It decides
    /// whether to retry, never how long an attempt may take: that is `request_timeout`, so a
    /// zero window still gives the one attempt its full time.
    pub max_elapsed: Duration,
    /// The first backoff; each retry doubles it, with jitter, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// The limit for one attempt.
    pub request_timeout: Duration,
    /// How often `wait_for_state` looks again.
    pub poll_interval: Duration,
    /// Do not retry at all.
    pub disabled: bool,
}

impl Default for RetryPolicy {
    /// What the OCI SDKs do, roughly: up to 10 minutes, 1 s doubling to 30 s.
    fn default() -> Self {
        RetryPolicy {
            max_elapsed: Duration::from_secs(600),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(2),
            disabled: false,
        }
    }
}

/// The largest reply body the client reads.
pub const MAX_BODY: u64 = 16 * 1024 * 1024;

/// The longest `retry-after` taken from a server; a longer one is cut to this (and then ends
/// the retries, as it is longer than any sensible retry window).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// An auth token as the API returns it.
#[derive(Debug, Clone)]
pub struct AuthToken {
    pub id: String,
    pub user_id: String,
    pub description: String,
    /// Only in the reply to a create.
    pub token: Option<SecretString>,
    pub lifecycle_state: String,
    pub inactive_status: Option<i64>,
    pub time_created: OffsetDateTime,
    pub time_expires: Option<OffsetDateTime>,
    /// The `etag` header of the reply that carried this token, if any.
    pub etag: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireToken {
    id: String,
    user_id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    token: Option<String>,
    lifecycle_state: String,
    #[serde(default)]
    inactive_status: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    time_created: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    time_expires: Option<OffsetDateTime>,
}

impl WireToken {
    fn into_token(self, etag: Option<String>) -> AuthToken {
        AuthToken {
            id: self.id,
            user_id: self.user_id,
            description: self.description,
            token: self.token.filter(|t| !t.is_empty()).map(SecretString::from),
            lifecycle_state: self.lifecycle_state,
            inactive_status: self.inactive_status,
            time_created: self.time_created,
            time_expires: self.time_expires,
            etag,
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    code: String,
    message: String,
}

struct Reply {
    status: u16,
    etag: Option<String>,
    next_page: Option<String>,
    body: Vec<u8>,
}

/// One failed attempt, and how long the server asked us to wait.
struct Attempt {
    error: Error,
    retry_after: Option<Duration>,
}

/// A client of the Identity API's auth tokens.
pub struct Client {
    http: reqwest::Client,
    signer: Signer,
    /// The config file profile of the session this client signs as, if it does.
    session_profile: Option<String>,
    base: reqwest::Url,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    rng: Mutex<StdRng>,
    /// When this client created each token it still holds, by its clock: a token missing from
    /// a list within [`CONSISTENCY_WINDOW`] of that is looked for again, not taken as gone.
    created: Mutex<std::collections::BTreeMap<String, OffsetDateTime>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Client {
    /// A client for `credentials`: the endpoint override if there is one, else the region's.
    pub fn new(
        credentials: &Credentials,
        retry: RetryPolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<Client, Error> {
        let endpoint = match (&credentials.endpoint, &credentials.region) {
            (Some(endpoint), _) => endpoint.clone(),
            (None, Some(region)) => endpoint::for_region(region)?,
            (None, None) => return Err(Error::Config("region is not set (nor OCI_REGION, nor `region` in the config file profile), and no endpoint override is given".into())),
        };
        let base = endpoint::check_override(&endpoint)?;
        if let Some(session) = &credentials.session
            && let Some(expires) = session.expires
            && expires <= clock.now()
        {
            return Err(Error::SessionExpired {
                profile: session.profile.clone(),
                expired_at: expires
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            });
        }
        // reqwest takes the process's default crypto provider: aws-lc, whose random generator
        // reads the operating system's (`AWS_LC_SYS_NO_JITTER_ENTROPY` in `.cargo/config.toml`).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(retry.request_timeout)
            // The API never redirects, and following a redirect would re-send a signed
            // request (a create included) to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "terraform-provider-oci-rs/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            http,
            signer: credentials.signer(),
            session_profile: credentials.session.as_ref().map(|s| s.profile.clone()),
            base,
            retry,
            clock,
            rng: Mutex::new(StdRng::from_os_rng()),
            created: Mutex::new(std::collections::BTreeMap::new()),
        })
    }

    pub fn endpoint(&self) -> &str {
        self.base.as_str()
    }

    /// `true` when the endpoint is plain `http://` to a host that is not loopback.
    pub fn plain_http_to_remote(&self) -> bool {
        endpoint::is_plain_http_to_remote(&self.base)
    }

    /// The URL of `path` (already escaped) under the API version, with `query` (already
    /// escaped) if any. `set_path` would escape a `?`, so the query is set on its own.
    /// The URL parser resolves dot segments (`%2E` included), so the path it made is checked
    /// to be exactly the one built: nothing is ever sent elsewhere than where it was meant.
    fn url(&self, path: &str, query: Option<&str>) -> Result<reqwest::Url, Error> {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        let wanted = format!("{prefix}/20160918{path}");
        url.set_path(&wanted);
        url.set_query(query);
        if url.path() != wanted {
            return Err(Error::InvalidId {
                name: "path",
                value: format!("{wanted:?}"),
                reason: "it would not be sent as built".to_owned(),
            });
        }
        Ok(url)
    }

    fn random(&self, len: usize) -> String {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        (0..len)
            .map(|_| ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())] as char)
            .collect()
    }

    async fn once(
        &self,
        method: &reqwest::Method,
        url: &reqwest::Url,
        body: Option<&[u8]>,
        extra: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Reply, Attempt> {
        let endpoint = self.base.as_str().to_owned();
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let signed = self
            .signer
            .sign(method.as_str(), &host, &target, body, self.clock.now());
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .timeout(timeout)
            .header("accept", "application/json");
        if !self.retry.disabled {
            req = req.header("opc-client-retries", "true");
        }
        for (name, value) in &signed.headers {
            if *name != "content-length" {
                req = req.header(*name, value);
            }
        }
        req = req.header("opc-request-id", self.random(32));
        for (name, value) in extra {
            req = req.header(*name, value);
        }
        if let Some(body) = body {
            req = req.body(body.to_vec());
        } else if !matches!(method, &reqwest::Method::GET) {
            req = req.header("content-length", "0");
        }
        let fail = |error: Error| Attempt {
            error,
            retry_after: None,
        };
        let resp = req.send().await.map_err(|e| {
            fail(if e.is_timeout() {
                Error::Timeout {
                    endpoint: endpoint.clone(),
                }
            } else {
                Error::Connect {
                    endpoint: endpoint.clone(),
                    message: error_chain(&e),
                }
            })
        })?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header("etag");
        let next_page = header("opc-next-page");
        let request_id = header("opc-request-id").unwrap_or_default();
        let retry_after = header("retry-after").and_then(|v| parse_retry_after(&v));
        if (300..400).contains(&status) {
            let location = header("location").unwrap_or_default();
            return Err(fail(Error::Redirect {
                status,
                location: printable(location.as_bytes()),
            }));
        }
        if let Some(length) = resp.content_length()
            && length > MAX_BODY
        {
            return Err(fail(Error::TooLarge(length)));
        }
        let body = read_limited(resp).await.map_err(|e| {
            fail(match e {
                ReadError::TooLarge(n) => Error::TooLarge(n),
                ReadError::Timeout => Error::Timeout {
                    endpoint: endpoint.clone(),
                },
                ReadError::Other(message) => Error::Connect {
                    endpoint: endpoint.clone(),
                    message,
                },
            })
        })?;
        if (200..300).contains(&status) {
            return Ok(Reply {
                status,
                etag,
                next_page,
                body,
            });
        }
        let error = match serde_json::from_slice::<Envelope>(&body) {
            Ok(envelope) => Error::Service {
                status,
                code: envelope.code,
                message: match (&self.session_profile, status) {
                    (Some(profile), 401) => format!(
                        "{} (requests are signed with the session token of config file profile {profile:?}; if it expired, refresh it with `oci session refresh --profile {profile}`, or sign in again with `oci session authenticate`)",
                        envelope.message
                    ),
                    _ => envelope.message,
                },
                request_id,
            },
            Err(_) => Error::Service {
                status,
                code: "Unknown".into(),
                message: format!(
                    "a reply that is not OCI's error envelope: {}",
                    printable(&body)
                ),
                request_id,
            },
        };
        Err(Attempt { error, retry_after })
    }

    /// The wait before retry number `attempts`: the base doubled each time, with jitter, up to
    /// the maximum.
    fn backoff(&self, attempts: u32) -> Duration {
        let exp = self
            .retry
            .base_backoff
            .saturating_mul(1u32 << attempts.min(16))
            .min(self.retry.max_backoff);
        let jitter = self
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random_range(0.5..=1.0);
        scaled(exp, jitter)
    }

    /// How long ago, by the client's clock, this client created `token_id`, while that is
    /// within [`CONSISTENCY_WINDOW`].
    fn recently_created(&self, token_id: &str) -> Option<Duration> {
        let created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        let at = *created.get(token_id)?;
        let age = Duration::try_from(self.clock.now() - at).unwrap_or(Duration::ZERO);
        (age < CONSISTENCY_WINDOW).then_some(age)
    }

    /// Remembers that this client created `token_id` now, and forgets the creates that are
    /// out of the window.
    fn record_create(&self, token_id: &str) {
        let now = self.clock.now();
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        created.retain(|_, at| {
            Duration::try_from(now - *at).unwrap_or(Duration::ZERO) < CONSISTENCY_WINDOW
        });
        created.insert(token_id.to_owned(), now);
    }

    /// Sends a request, retrying what the SDKs retry until the policy's time runs out.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: Option<&str>,
        body: Option<&[u8]>,
        extra: &[(&str, String)],
    ) -> Result<Reply, Error> {
        let url = self.url(path, query)?;
        let start = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts = attempts.saturating_add(1);
            // Every attempt gets its full time: the retry window only decides whether another
            // attempt starts.
            let timeout = self.retry.request_timeout;
            let attempt = match self.once(&method, &url, body, extra, timeout).await {
                Ok(reply) => {
                    tracing::debug!(method = %method, path, status = reply.status, attempts, "OCI request");
                    return Ok(reply);
                }
                Err(attempt) => attempt,
            };
            tracing::debug!(method = %method, path, attempts, error = %attempt.error, "OCI request failed");
            if self.retry.disabled || !attempt.error.is_retryable() {
                return Err(attempt.error);
            }
            let mut wait = self.backoff(attempts);
            if let Some(asked) = attempt.retry_after {
                wait = wait.max(asked);
            }
            if start.elapsed().saturating_add(wait) > self.retry.max_elapsed {
                return Err(Error::RetriesExhausted {
                    attempts,
                    elapsed: start.elapsed(),
                    last: Box::new(attempt.error),
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// CreateAuthToken. One `opc-retry-token` serves every retry of this call, so a retried
    /// create never makes a second token.
    pub async fn create_auth_token(
        &self,
        user_id: &str,
        description: &str,
    ) -> Result<AuthToken, Error> {
        check_ocid("user_id", user_id)?;
        let body = serde_json::to_vec(&serde_json::json!({"description": description}))
            .map_err(|e| Error::Config(e.to_string()))?;
        let retry_token = self.random(30);
        let reply = self
            .call(
                reqwest::Method::POST,
                &format!("/users/{}/authTokens", segment("user_id", user_id)?),
                None,
                Some(&body),
                &[("opc-retry-token", retry_token)],
            )
            .await?;
        let token = parse_token(&reply)?;
        self.record_create(&token.id);
        Ok(token)
    }

    /// ListAuthTokens, following `opc-next-page` when the service pages (see `list_all`).
    pub async fn list_auth_tokens(&self, user_id: &str) -> Result<Vec<AuthToken>, Error> {
        check_ocid("user_id", user_id)?;
        let items: Vec<WireToken> = self
            .list_all(
                &format!("/users/{}/authTokens", segment("user_id", user_id)?),
                &[],
            )
            .await?;
        Ok(items.into_iter().map(|t| t.into_token(None)).collect())
    }

    /// The token `token_id`, found by listing (the API has no GetAuthToken); `None` when the
    /// list does not show it.
    ///
    /// As in the SDKs, a token this client created less than [`CONSISTENCY_WINDOW`] ago (by
    /// its clock) that the list does not show yet, or whose list answers 404, is looked for
    /// again within the retry policy; if it still is not shown when the policy's time runs out,
    /// that is an error, never `None`. A list that answers 404 is an error in every case: the
    /// user is missing or not visible to the caller, which says nothing about the token.
    pub async fn get_auth_token(
        &self,
        user_id: &str,
        token_id: &str,
    ) -> Result<Option<AuthToken>, Error> {
        check_ocid("token_id", token_id)?;
        let start = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts = attempts.saturating_add(1);
            let listed = self.list_auth_tokens(user_id).await;
            let young = self.recently_created(token_id);
            let missing = match listed {
                Ok(tokens) => match tokens.into_iter().find(|t| t.id == token_id) {
                    Some(found) => return Ok(Some(found)),
                    None if young.is_none() => return Ok(None),
                    None => Error::NotYetListed {
                        id: token_id.to_owned(),
                        age: young.unwrap_or_default(),
                        attempts,
                    },
                },
                Err(err) if err.status() == Some(404) && young.is_some() => err,
                Err(err) => return Err(err),
            };
            let wait = self.backoff(attempts);
            if self.retry.disabled || start.elapsed().saturating_add(wait) > self.retry.max_elapsed
            {
                return Err(missing);
            }
            tracing::debug!(
                token_id,
                attempts,
                "auth token created recently is not listed yet; looking again"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// UpdateAuthToken: a new description; `if_match` guards against concurrent changes.
    pub async fn update_auth_token(
        &self,
        user_id: &str,
        token_id: &str,
        description: &str,
        if_match: Option<&str>,
    ) -> Result<AuthToken, Error> {
        let path = token_path(user_id, token_id)?;
        let body = serde_json::to_vec(&serde_json::json!({"description": description}))
            .map_err(|e| Error::Config(e.to_string()))?;
        let extra: Vec<(&str, String)> = if_match
            .map(|e| ("if-match", e.to_owned()))
            .into_iter()
            .collect();
        let reply = self
            .call(reqwest::Method::PUT, &path, None, Some(&body), &extra)
            .await?;
        parse_token(&reply)
    }

    /// DeleteAuthToken. A token that is already gone (404) counts as deleted.
    pub async fn delete_auth_token(
        &self,
        user_id: &str,
        token_id: &str,
        if_match: Option<&str>,
    ) -> Result<(), Error> {
        let path = token_path(user_id, token_id)?;
        let extra: Vec<(&str, String)> = if_match
            .map(|e| ("if-match", e.to_owned()))
            .into_iter()
            .collect();
        let deleted = match self
            .call(reqwest::Method::DELETE, &path, None, None, &extra)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.status() == Some(404) => Ok(()),
            Err(err) => Err(err),
        };
        if deleted.is_ok() {
            // Gone on purpose: a list without it means it is deleted, not that it is late.
            self.created
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(token_id);
        }
        deleted
    }

    /// Lists until the token is in `state` (or gone, when `state` is `DELETED`), or `timeout` passes.
    pub async fn wait_for_state(
        &self,
        user_id: &str,
        token_id: &str,
        state: &str,
        timeout: Duration,
    ) -> Result<Option<AuthToken>, Error> {
        let start = Instant::now();
        let mut interval = self.retry.poll_interval;
        loop {
            let found = self.get_auth_token(user_id, token_id).await?;
            let seen = found
                .as_ref()
                .map_or("absent".to_owned(), |t| t.lifecycle_state.clone());
            if found.is_none() && state == "DELETED" || seen == state {
                return Ok(found);
            }
            if found.is_none() {
                return Err(Error::Service {
                    status: 404,
                    code: "NotAuthorizedOrNotFound".into(),
                    message: format!("auth token {token_id} disappeared while waiting for {state}"),
                    request_id: String::new(),
                });
            }
            if start.elapsed().saturating_add(interval) > timeout {
                return Err(Error::WaitTimeout {
                    id: token_id.to_owned(),
                    state: state.to_owned(),
                    seen,
                    timeout,
                });
            }
            tokio::time::sleep(interval).await;
            interval = interval
                .saturating_mul(2)
                .min(self.retry.max_backoff.max(self.retry.poll_interval));
        }
    }
}

fn parse_token(reply: &Reply) -> Result<AuthToken, Error> {
    let wire: WireToken = parse_json(reply)?;
    Ok(wire.into_token(reply.etag.clone()))
}

fn parse_json<T: serde::de::DeserializeOwned>(reply: &Reply) -> Result<T, Error> {
    serde_json::from_slice(&reply.body).map_err(|e| malformed(reply, e))
}

fn malformed(reply: &Reply, err: serde_json::Error) -> Error {
    Error::Malformed {
        status: reply.status,
        detail: format!(
            "the body is not the expected JSON: {}",
            without_values(&err)
        ),
    }
}

/// A serde error's text with the quoted value replaced by `"…"`: serde quotes the string it
/// could not use (`invalid type: string "…", expected …`), and that string could be a secret.
/// Everything from the first quote to the last goes, so quotes inside the value do not matter;
/// field names (in backticks) and the position stay.
fn without_values(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match (text.find('"'), text.rfind('"')) {
        (Some(first), Some(last)) if first < last => {
            format!("{}\"…\"{}", &text[..first], &text[last + 1..])
        }
        (Some(first), _) => format!("{}\"…", &text[..first]),
        _ => text,
    }
}

/// `/users/{userId}/authTokens/{authTokenId}`, both ids checked to be OCIDs.
fn token_path(user_id: &str, token_id: &str) -> Result<String, Error> {
    check_ocid("user_id", user_id)?;
    check_ocid("token_id", token_id)?;
    Ok(format!(
        "/users/{}/authTokens/{}",
        segment("user_id", user_id)?,
        segment("token_id", token_id)?
    ))
}

/// A `retry-after` header in seconds (OCI sends a number, maybe with a fraction), cut to
/// [`MAX_RETRY_AFTER`]; `None` for anything else. An HTTP date is not read.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds = value.trim().parse::<f64>().ok()?;
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    Some(
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(MAX_RETRY_AFTER)
            .min(MAX_RETRY_AFTER),
    )
}

/// `duration` times `factor` (a jitter between 0 and 1), without the panic of
/// `Duration::mul_f64` when the product rounds past the largest duration.
fn scaled(duration: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor)
        .unwrap_or(duration)
        .min(duration)
}

/// The start of a non-JSON reply, safe to show.
fn printable(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

enum ReadError {
    TooLarge(u64),
    Timeout,
    Other(String),
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > MAX_BODY {
                    return Err(ReadError::TooLarge((body.len() + chunk.len()) as u64));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err(ReadError::Timeout),
            Err(e) => return Err(ReadError::Other(error_chain(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_error(json: &str) -> serde_json::Error {
        serde_json::from_str::<Vec<i64>>(json).unwrap_err()
    }

    #[test]
    fn serde_errors_lose_their_values() {
        let text = without_values(&serde_error(r#"["se"cret"]"#));
        assert!(!text.contains("se") && !text.contains("cret"), "{text}");
        assert!(text.starts_with("invalid type: string \"…\""), "{text}");
        assert!(text.contains("line 1"), "{text}");
        let text = without_values(&serde_error("[1,"));
        assert!(text.contains("EOF"), "{text}");
    }

    #[test]
    fn a_lone_quote_hides_the_rest() {
        let custom = <serde_json::Error as serde::de::Error>::custom;
        assert_eq!(without_values(&custom("bad \"se cret")), "bad \"…");
        assert_eq!(without_values(&custom("a \"x\" b")), "a \"…\" b");
        assert_eq!(without_values(&custom("no quotes")), "no quotes");
    }

    #[test]
    fn retry_after_is_clamped() {
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        for huge in ["1e20", "inf", "1e400", "18446744073709551616"] {
            assert_eq!(parse_retry_after(huge), Some(MAX_RETRY_AFTER), "{huge}");
        }
        // The cap is one day.
        assert_eq!(
            parse_retry_after("86399"),
            Some(Duration::from_secs(86_399))
        );
        assert_eq!(
            parse_retry_after("100000"),
            Some(Duration::from_secs(86_400))
        );
        for junk in ["", "-1", "NaN", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(junk), None, "{junk}");
        }
    }

    #[test]
    fn backoff_doubles_from_the_base_with_jitter_up_to_the_maximum() {
        let settings = crate::Settings {
            tenancy_ocid: Some("ocid1.tenancy.oc1..t".into()),
            user_ocid: Some("ocid1.user.oc1..u".into()),
            private_key: Some(SecretString::from(include_str!(
                "../../../fixtures/oci/keys/test_user_key.pem"
            ))),
            endpoint: Some("http://127.0.0.1:1".into()),
            ..crate::Settings::default()
        };
        let env = crate::Environment {
            var: &|_| None,
            read_file: &|_| Err(std::io::ErrorKind::NotFound.into()),
            home: None,
        };
        let credentials = crate::config::resolve(&settings, &env).unwrap();
        let retry = RetryPolicy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let client = Client::new(&credentials, retry, Arc::new(SystemClock)).unwrap();
        for _ in 0..20 {
            for (attempts, full) in [(0, 100), (1, 200), (3, 800), (4, 1000), (40, 1000)] {
                let wait = client.backoff(attempts);
                let full = Duration::from_millis(full);
                assert!(wait >= full / 2 && wait <= full, "{attempts}: {wait:?}");
            }
        }
    }

    #[test]
    fn scaling_never_overflows() {
        assert_eq!(scaled(Duration::MAX, 1.0), Duration::MAX);
        assert_eq!(scaled(Duration::from_secs(2), 0.5), Duration::from_secs(1));
        assert_eq!(scaled(Duration::ZERO, 0.7), Duration::ZERO);
    }
}
