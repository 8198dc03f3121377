//! The Identity service's auth-token state machine. It knows no HTTP.
//!
//! Each token keeps its current lifecycle state apart from a pending transition (CREATING →
//! ACTIVE, DELETING → DELETED) that completes immediately, after some reads, after some time
//! on the fake's clock, or when a test pokes it.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rsa::RsaPublicKey;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Auth tokens a user may hold at once.
pub const TOKENS_PER_USER: usize = 2;

/// How long a lifecycle transition lasts.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Delay {
    #[default]
    Immediate,
    /// Completes on the N-th list that shows the token.
    Reads(u32),
    /// Completes once the fake's clock has moved this many seconds.
    Seconds(f64),
    /// Completes only when poked.
    Manual,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Lifecycle {
    Creating,
    Active,
    Inactive,
    Deleting,
    Deleted,
}

impl Lifecycle {
    pub fn as_str(&self) -> &'static str {
        match self {
            Lifecycle::Creating => "CREATING",
            Lifecycle::Active => "ACTIVE",
            Lifecycle::Inactive => "INACTIVE",
            Lifecycle::Deleting => "DELETING",
            Lifecycle::Deleted => "DELETED",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Pending {
    target: Lifecycle,
    reads_left: Option<u32>,
    #[serde(with = "time::serde::rfc3339::option")]
    due: Option<OffsetDateTime>,
}

#[derive(Clone, Serialize)]
pub struct Token {
    pub id: String,
    pub user_id: String,
    pub description: String,
    /// Shown in the create response only.
    #[serde(skip)]
    pub secret: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time_created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub time_expires: Option<OffsetDateTime>,
    pub state: Lifecycle,
    pub etag: String,
    pending: Option<Pending>,
    /// How many more lists leave this token out (eventual consistency after its create).
    #[serde(skip)]
    hidden_lists: u32,
}

#[derive(Debug, Clone)]
pub struct User {
    pub tenancy: String,
    /// API signing keys by fingerprint.
    pub keys: BTreeMap<String, RsaPublicKey>,
}

/// Leaves out the secret: `Debug` output may reach logs and panic text.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("description", &self.description)
            .field("secret", &"<redacted>")
            .field("time_created", &self.time_created)
            .field("time_expires", &self.time_expires)
            .field("state", &self.state)
            .field("etag", &self.etag)
            .field("pending", &self.pending)
            .finish()
    }
}

/// What a create returned, remembered under its `opc-retry-token`.
#[derive(Clone)]
struct Retried {
    body_hash: [u8; 32],
    token_id: String,
    response: serde_json::Value,
}

/// Leaves out the remembered response, which holds the secret.
impl std::fmt::Debug for Retried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retried")
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

/// Typed errors of the Identity API; the handlers turn them into OCI's envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("Authorization failed or requested resource not found.")]
    NotFound,
    #[error("{0}")]
    InvalidParameter(String),
    #[error("You have reached the maximum number of auth tokens ({TOKENS_PER_USER}) for user {0}.")]
    LimitExceeded(String),
    #[error("The retry token was used for a different request; use a new opc-retry-token.")]
    RetryTokenReused,
    #[error("The etag in if-match does not match the resource's current etag.")]
    EtagMismatch,
    #[error("The resource is in state {0} and cannot be changed.")]
    IncorrectState(&'static str),
    /// A user name already taken in the tenancy.
    #[error("A user named {0:?} already exists in the tenancy.")]
    UserExists(String),
    /// DeleteUser on a user that still holds auth tokens (code and text presumed).
    #[error("The user still has {0} auth token(s); delete them before deleting the user.")]
    UserHasTokens(usize),
    /// A session token that is past its expiry.
    #[error("The session token has expired; refresh it (oci session refresh) and retry.")]
    SessionExpired,
}

impl ApiError {
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            ApiError::NotFound => (404, "NotAuthorizedOrNotFound"),
            ApiError::InvalidParameter(_) => (400, "InvalidParameter"),
            ApiError::LimitExceeded(_) => (400, "LimitExceeded"),
            ApiError::RetryTokenReused => (409, "InvalidatedRetryToken"),
            ApiError::EtagMismatch => (412, "NoEtagMatch"),
            ApiError::IncorrectState(_) => (409, "IncorrectState"),
            ApiError::UserExists(_) => (409, "NotAuthorizedOrResourceAlreadyExists"),
            ApiError::UserHasTokens(_) => (409, "Conflict"),
            ApiError::SessionExpired => (401, "NotAuthenticated"),
        }
    }
}

#[derive(Debug)]
pub struct State {
    pub users: BTreeMap<String, User>,
    /// The Users API's view of users: created through the API, or made on first read for
    /// users registered through the control API.
    profiles: BTreeMap<String, UserProfile>,
    /// Session tokens issued through the control API: token → (user, expiry, key).
    pub sessions: BTreeMap<String, Session>,
    /// When set, lists return pages of at most this many items with `opc-next-page`.
    pub page_size: Option<usize>,
    tokens: Vec<Token>,
    retries: BTreeMap<(String, String), Retried>,
    pub creating: Delay,
    pub deleting: Delay,
    pub token_lifetime: Option<time::Duration>,
    /// How many lists after its create leave a new token out, as the live service may for up
    /// to 240 s (its eventual consistency); 0 by default.
    pub list_lag: u32,
    /// Draws object ids, secrets and etags: they depend only on the writes made, never on
    /// how many reads came in between, so the same scenario gives the same objects whatever
    /// the client (Terraform reads more often than a script does).
    rng: ChaCha8Rng,
    /// Draws request ids.
    request_rng: ChaCha8Rng,
}

/// Separates the request-id stream from the object stream of the same seed.
const REQUEST_STREAM: u64 = 0x5245_5155_4553_5453;

const SECRET_CHARS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789()+:;<>[]{}.#-_";
const ID_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

impl State {
    pub fn new(seed: u64) -> State {
        State {
            users: BTreeMap::new(),
            profiles: BTreeMap::new(),
            sessions: BTreeMap::new(),
            page_size: None,
            tokens: Vec::new(),
            retries: BTreeMap::new(),
            creating: Delay::Immediate,
            deleting: Delay::Immediate,
            token_lifetime: None,
            list_lag: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            request_rng: ChaCha8Rng::seed_from_u64(seed ^ REQUEST_STREAM),
        }
    }

    pub fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        self.request_rng = ChaCha8Rng::seed_from_u64(seed ^ REQUEST_STREAM);
    }

    /// Forgets every token and retry token; users, keys and settings stay.
    pub fn reset(&mut self) {
        self.tokens.clear();
        self.retries.clear();
        self.sessions.clear();
        let created: Vec<String> = self
            .profiles
            .iter()
            .filter(|(_, p)| p.created_by_api)
            .map(|(id, _)| id.clone())
            .collect();
        for id in created {
            self.profiles.remove(&id);
            self.users.remove(&id);
        }
    }

    pub fn random_string(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[self.rng.random_range(0..alphabet.len())] as char)
            .collect()
    }

    pub fn request_id(&mut self) -> String {
        const HEX: &[u8] = b"0123456789ABCDEF";
        (0..32)
            .map(|_| HEX[self.request_rng.random_range(0..HEX.len())] as char)
            .collect()
    }

    fn user_exists(&self, user_id: &str) -> Result<(), ApiError> {
        if self.users.contains_key(user_id) {
            Ok(())
        } else {
            Err(ApiError::NotFound)
        }
    }

    fn transition(delay: Delay, target: Lifecycle, now: OffsetDateTime) -> Option<Pending> {
        match delay {
            Delay::Immediate => None,
            Delay::Reads(n) => Some(Pending {
                target,
                reads_left: Some(n),
                due: None,
            }),
            Delay::Seconds(s) => Some(Pending {
                target,
                reads_left: None,
                due: Some(now + time::Duration::seconds_f64(s)),
            }),
            Delay::Manual => Some(Pending {
                target,
                reads_left: None,
                due: None,
            }),
        }
    }

    /// CreateAuthToken. `retry` is the `opc-retry-token` header; the same token with the same
    /// body replays the first response and creates nothing.
    pub fn create(
        &mut self,
        user_id: &str,
        description: &str,
        retry: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(serde_json::Value, String), ApiError> {
        self.user_exists(user_id)?;
        let body_hash: [u8; 32] = Sha256::digest(body).into();
        if let Some(retry) = retry
            && let Some(first) = self.retries.get(&(user_id.to_owned(), retry.to_owned()))
        {
            if first.body_hash != body_hash {
                return Err(ApiError::RetryTokenReused);
            }
            let etag = self
                .tokens
                .iter()
                .find(|t| t.id == first.token_id)
                .map_or_else(String::new, |t| t.etag.clone());
            return Ok((first.response.clone(), etag));
        }
        let held = self
            .tokens
            .iter()
            .filter(|t| t.user_id == user_id && t.state != Lifecycle::Deleted)
            .count();
        if held >= TOKENS_PER_USER {
            return Err(ApiError::LimitExceeded(user_id.to_owned()));
        }
        let pending = Self::transition(self.creating, Lifecycle::Active, now);
        let token = Token {
            id: format!(
                "ocid1.credential.oc1..aaaaaaaa{}",
                self.random_string(ID_CHARS, 52)
            ),
            user_id: user_id.to_owned(),
            description: description.to_owned(),
            secret: self.random_string(SECRET_CHARS, 20),
            time_created: now,
            time_expires: self.token_lifetime.map(|d| now + d),
            state: if pending.is_some() {
                Lifecycle::Creating
            } else {
                Lifecycle::Active
            },
            etag: self.random_string(b"0123456789abcdef", 32),
            pending,
            hidden_lists: self.list_lag,
        };
        let response = token_json(&token, true);
        let etag = token.etag.clone();
        if let Some(retry) = retry {
            self.retries.insert(
                (user_id.to_owned(), retry.to_owned()),
                Retried {
                    body_hash,
                    token_id: token.id.clone(),
                    response: response.clone(),
                },
            );
        }
        self.tokens.push(token);
        Ok((response, etag))
    }

    /// ListAuthTokens: every token of the user that is not DELETED, without secrets. Each list
    /// counts as one read for transitions that wait for reads.
    pub fn list(&mut self, user_id: &str) -> Result<serde_json::Value, ApiError> {
        self.user_exists(user_id)?;
        for token in self.tokens.iter_mut().filter(|t| t.user_id == user_id) {
            let Some(pending) = &mut token.pending else {
                continue;
            };
            if let Some(left) = &mut pending.reads_left {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    token.state = pending.target.clone();
                    token.pending = None;
                }
            }
        }
        self.tokens.retain(|t| t.state != Lifecycle::Deleted);
        let mut items = Vec::new();
        for token in self.tokens.iter_mut().filter(|t| t.user_id == user_id) {
            if token.hidden_lists > 0 {
                token.hidden_lists -= 1;
                continue;
            }
            items.push(token_json(token, false));
        }
        Ok(serde_json::Value::Array(items))
    }

    /// One page of `items`: the whole list when no page size is set, else `page_size` items
    /// from the offset named by `page` (a token this fake handed out), and the next page's
    /// token when more follow.
    pub fn page(
        &self,
        items: Vec<serde_json::Value>,
        page: Option<&str>,
    ) -> Result<(serde_json::Value, Option<String>), ApiError> {
        let start = match page {
            None => 0,
            Some(page) => page
                .strip_prefix("page-")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n <= items.len())
                .ok_or_else(|| {
                    ApiError::InvalidParameter(format!("Invalid page token {page:?}."))
                })?,
        };
        let Some(size) = self.page_size.filter(|s| *s > 0) else {
            return Ok((serde_json::Value::Array(items[start..].to_vec()), None));
        };
        let end = (start + size).min(items.len());
        let next = (end < items.len()).then(|| format!("page-{end}"));
        Ok((serde_json::Value::Array(items[start..end].to_vec()), next))
    }

    fn find(&mut self, user_id: &str, token_id: &str) -> Result<&mut Token, ApiError> {
        self.user_exists(user_id)?;
        self.tokens
            .iter_mut()
            .find(|t| t.user_id == user_id && t.id == token_id && t.state != Lifecycle::Deleted)
            .ok_or(ApiError::NotFound)
    }

    /// UpdateAuthToken: a new description (when given) and a new etag.
    pub fn update(
        &mut self,
        user_id: &str,
        token_id: &str,
        description: Option<&str>,
        if_match: Option<&str>,
    ) -> Result<(serde_json::Value, String), ApiError> {
        let etag = self.random_string(b"0123456789abcdef", 32);
        let token = self.find(user_id, token_id)?;
        if if_match.is_some_and(|m| m != token.etag) {
            return Err(ApiError::EtagMismatch);
        }
        if matches!(token.state, Lifecycle::Deleting) {
            return Err(ApiError::IncorrectState("DELETING"));
        }
        if let Some(description) = description {
            token.description = description.to_owned();
        }
        token.etag = etag.clone();
        Ok((token_json(token, false), etag))
    }

    /// DeleteAuthToken.
    pub fn delete(
        &mut self,
        user_id: &str,
        token_id: &str,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), ApiError> {
        let delay = self.deleting;
        let token = self.find(user_id, token_id)?;
        if if_match.is_some_and(|m| m != token.etag) {
            return Err(ApiError::EtagMismatch);
        }
        if token.state == Lifecycle::Deleting {
            return Ok(());
        }
        match Self::transition(delay, Lifecycle::Deleted, now) {
            None => token.state = Lifecycle::Deleted,
            Some(pending) => {
                token.state = Lifecycle::Deleting;
                token.pending = Some(pending);
            }
        }
        self.tokens.retain(|t| t.state != Lifecycle::Deleted);
        Ok(())
    }

    /// The Users API view of `user_id`, made on first use for users the control API registered.
    fn profile(&mut self, user_id: &str) -> Option<&mut UserProfile> {
        let tenancy = self.users.get(user_id)?.tenancy.clone();
        if !self.profiles.contains_key(user_id) {
            let name = user_id.rsplit('.').next().unwrap_or(user_id).to_owned();
            let etag = self.random_string(b"0123456789abcdef", 32);
            self.profiles.insert(
                user_id.to_owned(),
                UserProfile {
                    id: user_id.to_owned(),
                    compartment_id: tenancy,
                    name,
                    description: String::new(),
                    email: None,
                    time_created: crate::TEST_EPOCH,
                    state: Lifecycle::Active,
                    etag,
                    pending: None,
                    created_by_api: false,
                },
            );
        }
        self.profiles.get_mut(user_id)
    }

    /// CreateUser in `compartment_id`, which must be the caller's tenancy (users live in the
    /// root compartment). Names are unique per tenancy.
    #[allow(clippy::too_many_arguments)]
    pub fn create_user(
        &mut self,
        caller_tenancy: &str,
        details: NewUser<'_>,
        retry: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(serde_json::Value, String), ApiError> {
        if details.compartment_id != caller_tenancy {
            return Err(ApiError::NotFound);
        }
        if details.name.is_empty()
            || !details
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._+@".contains(c))
        {
            return Err(ApiError::InvalidParameter(format!(
                "The user name {:?} is not valid: use letters, numerals, hyphens, periods, underscores, + and @, and no spaces.",
                details.name
            )));
        }
        let body_hash: [u8; 32] = Sha256::digest(body).into();
        let retry_key = retry.map(|r| (format!("users:{caller_tenancy}"), r.to_owned()));
        if let Some(key) = &retry_key
            && let Some(first) = self.retries.get(key)
        {
            if first.body_hash != body_hash {
                return Err(ApiError::RetryTokenReused);
            }
            let etag = self
                .profiles
                .get(&first.token_id)
                .map_or_else(String::new, |u| u.etag.clone());
            return Ok((first.response.clone(), etag));
        }
        let known: Vec<String> = self
            .users
            .iter()
            .filter(|(_, u)| u.tenancy == caller_tenancy)
            .map(|(id, _)| id.clone())
            .collect();
        for id in known {
            if self
                .profile(&id)
                .is_some_and(|p| p.name == details.name && p.state != Lifecycle::Deleted)
            {
                return Err(ApiError::UserExists(details.name.to_owned()));
            }
        }
        let pending = Self::transition(self.creating, Lifecycle::Active, now);
        let id = format!(
            "ocid1.user.oc1..aaaaaaaa{}",
            self.random_string(ID_CHARS, 52)
        );
        let profile = UserProfile {
            id: id.clone(),
            compartment_id: details.compartment_id.to_owned(),
            name: details.name.to_owned(),
            description: details.description.to_owned(),
            email: details.email.map(str::to_owned),
            time_created: now,
            state: if pending.is_some() {
                Lifecycle::Creating
            } else {
                Lifecycle::Active
            },
            etag: self.random_string(b"0123456789abcdef", 32),
            pending,
            created_by_api: true,
        };
        let response = user_json(&profile);
        let etag = profile.etag.clone();
        if let Some(key) = retry_key {
            self.retries.insert(
                key,
                Retried {
                    body_hash,
                    token_id: id.clone(),
                    response: response.clone(),
                },
            );
        }
        self.users.insert(
            id.clone(),
            User {
                tenancy: caller_tenancy.to_owned(),
                keys: BTreeMap::new(),
            },
        );
        self.profiles.insert(id, profile);
        Ok((response, etag))
    }

    /// GetUser.
    pub fn get_user(
        &mut self,
        caller_tenancy: &str,
        user_id: &str,
    ) -> Result<(serde_json::Value, String), ApiError> {
        let profile = self
            .profile(user_id)
            .filter(|p| p.compartment_id == caller_tenancy && p.state != Lifecycle::Deleted)
            .ok_or(ApiError::NotFound)?;
        if let Some(pending) = &mut profile.pending
            && let Some(left) = &mut pending.reads_left
        {
            *left = left.saturating_sub(1);
            if *left == 0 {
                profile.state = pending.target.clone();
                profile.pending = None;
            }
        }
        let (body, etag) = (user_json(profile), profile.etag.clone());
        self.sweep_users();
        Ok((body, etag))
    }

    /// ListUsers of a compartment (the tenancy), oldest first, optionally one name only.
    pub fn list_users(
        &mut self,
        caller_tenancy: &str,
        compartment_id: &str,
        name: Option<&str>,
    ) -> Result<Vec<serde_json::Value>, ApiError> {
        if compartment_id != caller_tenancy {
            return Err(ApiError::NotFound);
        }
        let ids: Vec<String> = self
            .users
            .iter()
            .filter(|(_, u)| u.tenancy == caller_tenancy)
            .map(|(id, _)| id.clone())
            .collect();
        let mut out: Vec<(OffsetDateTime, String, serde_json::Value)> = Vec::new();
        for id in ids {
            if let Some(p) = self.profile(&id)
                && p.state != Lifecycle::Deleted
                && name.is_none_or(|n| n == p.name)
            {
                out.push((p.time_created, p.id.clone(), user_json(p)));
            }
        }
        out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(out.into_iter().map(|(_, _, v)| v).collect())
    }

    /// UpdateUser: description and email, each when given.
    pub fn update_user(
        &mut self,
        caller_tenancy: &str,
        user_id: &str,
        description: Option<&str>,
        email: Option<&str>,
        if_match: Option<&str>,
    ) -> Result<(serde_json::Value, String), ApiError> {
        let etag = self.random_string(b"0123456789abcdef", 32);
        let profile = self
            .profile(user_id)
            .filter(|p| p.compartment_id == caller_tenancy && p.state != Lifecycle::Deleted)
            .ok_or(ApiError::NotFound)?;
        if if_match.is_some_and(|m| m != profile.etag) {
            return Err(ApiError::EtagMismatch);
        }
        if profile.state == Lifecycle::Deleting {
            return Err(ApiError::IncorrectState("DELETING"));
        }
        if let Some(description) = description {
            profile.description = description.to_owned();
        }
        if let Some(email) = email {
            profile.email = Some(email.to_owned());
        }
        profile.etag = etag.clone();
        Ok((user_json(profile), etag))
    }

    /// DeleteUser. A user who still holds auth tokens (in any state but DELETED) is refused
    /// with a 409: the code and text are presumed, the live service's are not known.
    pub fn delete_user(
        &mut self,
        caller_tenancy: &str,
        user_id: &str,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), ApiError> {
        let held = self
            .tokens
            .iter()
            .filter(|t| t.user_id == user_id && t.state != Lifecycle::Deleted)
            .count();
        let delay = self.deleting;
        let profile = self
            .profile(user_id)
            .filter(|p| p.compartment_id == caller_tenancy && p.state != Lifecycle::Deleted)
            .ok_or(ApiError::NotFound)?;
        if if_match.is_some_and(|m| m != profile.etag) {
            return Err(ApiError::EtagMismatch);
        }
        if profile.state == Lifecycle::Deleting {
            return Ok(());
        }
        if held > 0 {
            return Err(ApiError::UserHasTokens(held));
        }
        match Self::transition(delay, Lifecycle::Deleted, now) {
            None => profile.state = Lifecycle::Deleted,
            Some(pending) => {
                profile.state = Lifecycle::Deleting;
                profile.pending = Some(pending);
            }
        }
        self.sweep_users();
        Ok(())
    }

    /// Issues a session token for `user_id` (a user the fake knows), signed for with `key`, as
    /// `oci session authenticate` obtains one: a JWT with `sub`, `tenant`, `iat` and `exp`.
    pub fn issue_session(
        &mut self,
        user_id: &str,
        key: RsaPublicKey,
        lifetime: time::Duration,
        now: OffsetDateTime,
    ) -> Result<String, ApiError> {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let tenancy = self
            .users
            .get(user_id)
            .ok_or(ApiError::NotFound)?
            .tenancy
            .clone();
        let expires = now + lifetime;
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": "fake-oci"});
        let claims = json!({
            "sub": user_id,
            "tenant": tenancy,
            "iss": "authService.oracle.com",
            "iat": now.unix_timestamp(),
            "exp": expires.unix_timestamp(),
            "jti": self.random_string(ID_CHARS, 32),
        });
        let signature = self.random_string(ID_CHARS, 64);
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(signature)
        );
        self.sessions.insert(
            token.clone(),
            Session {
                user: user_id.to_owned(),
                tenancy,
                key,
                expires,
            },
        );
        Ok(token)
    }

    /// Forgets users that reached DELETED.
    fn sweep_users(&mut self) {
        let gone: Vec<String> = self
            .profiles
            .iter()
            .filter(|(_, p)| p.state == Lifecycle::Deleted)
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.profiles.remove(&id);
            self.users.remove(&id);
            self.sessions.retain(|_, s| s.user != id);
        }
    }

    /// Completes the transitions that are due at `now`.
    pub fn tick(&mut self, now: OffsetDateTime) {
        for profile in self.profiles.values_mut() {
            if let Some(pending) = &profile.pending
                && pending.due.is_some_and(|due| due <= now)
            {
                profile.state = pending.target.clone();
                profile.pending = None;
            }
        }
        self.sweep_users();
        for token in &mut self.tokens {
            if let Some(pending) = &token.pending
                && pending.due.is_some_and(|due| due <= now)
            {
                token.state = pending.target.clone();
                token.pending = None;
            }
        }
        self.tokens.retain(|t| t.state != Lifecycle::Deleted);
    }

    /// Completes one pending transition (the oldest), or all of them. Returns how many.
    pub fn poke(&mut self, drain: bool) -> usize {
        let mut done = 0;
        for token in &mut self.tokens {
            if let Some(pending) = token.pending.take() {
                token.state = pending.target;
                done += 1;
                if !drain {
                    break;
                }
            }
        }
        self.tokens.retain(|t| t.state != Lifecycle::Deleted);
        if done == 0 || drain {
            for profile in self.profiles.values_mut() {
                if let Some(pending) = profile.pending.take() {
                    profile.state = pending.target;
                    done += 1;
                    if !drain {
                        break;
                    }
                }
            }
            self.sweep_users();
        }
        done
    }

    /// The whole state, for `GET /_fake/state` (secrets included: the control API is for tests).
    pub fn snapshot(&self, now: OffsetDateTime) -> serde_json::Value {
        let users: BTreeMap<&String, serde_json::Value> = self
            .users
            .iter()
            .map(|(id, u)| (id, json!({"tenancy": u.tenancy, "fingerprints": u.keys.keys().collect::<Vec<_>>()})))
            .collect();
        let tokens: Vec<serde_json::Value> = self
            .tokens
            .iter()
            .map(|t| {
                let mut v = serde_json::to_value(t).unwrap_or_default();
                v["secret"] = json!(t.secret);
                v
            })
            .collect();
        let profiles: Vec<serde_json::Value> = self.profiles.values().map(user_json).collect();
        let mut snapshot = json!({
            "now": format_time(now),
            "users": users,
            "tokens": tokens,
            "retry_tokens": self.retries.len(),
            "lifecycle": {"creating": self.creating, "deleting": self.deleting},
        });
        // The Users API's view, sessions and paging appear once used, so that the snapshots
        // of scenarios that use none of them stay as they were.
        if !profiles.is_empty() {
            snapshot["user_profiles"] = json!(profiles);
        }
        if !self.sessions.is_empty() {
            snapshot["sessions"] = json!(self.sessions.len());
        }
        if let Some(size) = self.page_size {
            snapshot["page_size"] = json!(size);
        }
        snapshot
    }
}

/// A user as the Users API shows it.
#[derive(Debug, Clone)]
pub struct UserProfile {
    pub id: String,
    pub compartment_id: String,
    pub name: String,
    pub description: String,
    pub email: Option<String>,
    pub time_created: OffsetDateTime,
    pub state: Lifecycle,
    pub etag: String,
    pending: Option<Pending>,
    /// Made through CreateUser (a reset forgets it), not registered through the control API.
    created_by_api: bool,
}

/// What CreateUser asks for.
#[derive(Debug, Clone, Copy)]
pub struct NewUser<'a> {
    pub compartment_id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub email: Option<&'a str>,
}

/// A session token the control API issued, as `oci session authenticate` would get one.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub tenancy: String,
    /// The session's public key, which signs requests with key id `ST$<token>`.
    pub key: RsaPublicKey,
    pub expires: OffsetDateTime,
}

/// The User model in the API's JSON (camelCase).
pub fn user_json(user: &UserProfile) -> serde_json::Value {
    json!({
        "id": user.id,
        "compartmentId": user.compartment_id,
        "name": user.name,
        "description": user.description,
        "email": user.email,
        "emailVerified": false,
        "timeCreated": format_time(user.time_created),
        "lifecycleState": user.state.as_str(),
        "inactiveStatus": serde_json::Value::Null,
        "freeformTags": {},
        "definedTags": {},
        "capabilities": {
            "canUseConsolePassword": true,
            "canUseApiKeys": true,
            "canUseAuthTokens": true,
            "canUseSmtpCredentials": true,
            "canUseCustomerSecretKeys": true,
            "canUseOAuth2ClientCredentials": true,
            "canUseDbCredentials": true
        },
        "isMfaActivated": false,
    })
}

/// RFC 3339 with milliseconds, as OCI writes times (`2016-08-25T21:10:29.600Z`).
pub fn format_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// The AuthToken model in the API's JSON (camelCase). The secret only when `with_secret`.
pub fn token_json(token: &Token, with_secret: bool) -> serde_json::Value {
    let mut value = json!({
        "id": token.id,
        "userId": token.user_id,
        "description": token.description,
        "timeCreated": format_time(token.time_created),
        "timeExpires": token.time_expires.map(format_time),
        "lifecycleState": token.state.as_str(),
        "inactiveStatus": serde_json::Value::Null,
    });
    if with_secret {
        value["token"] = json!(token.secret);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state with one user, `u` of tenancy `t`.
    fn with_user_u() -> State {
        let mut state = State::new(0);
        state.users.insert(
            "u".to_owned(),
            User {
                tenancy: "t".to_owned(),
                keys: BTreeMap::new(),
            },
        );
        state
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let mut state = with_user_u();
        let now = OffsetDateTime::UNIX_EPOCH;
        let (response, _) = state
            .create("u", "d", Some("retry"), b"{}", now)
            .expect("a token");
        let secret = response["token"].as_str().expect("the secret").to_owned();
        let text = format!("{state:?}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(!text.contains(&secret), "{text}");
    }

    #[test]
    fn a_remembered_create_shows_its_token_id_only() {
        let mut state = with_user_u();
        let (response, _) = state
            .create("u", "d", Some("retry"), b"{}", OffsetDateTime::UNIX_EPOCH)
            .expect("a token");
        let id = response["id"].as_str().expect("an id");
        let secret = response["token"].as_str().expect("the secret");
        let text = format!("{:?}", state.retries);
        assert!(text.contains("Retried") && text.contains(id), "{text}");
        assert!(!text.contains(secret), "{text}");
    }

    #[test]
    fn an_unknown_user_has_no_tokens() {
        let mut state = State::new(0);
        let now = OffsetDateTime::UNIX_EPOCH;
        assert!(matches!(
            state.create("nobody", "d", None, b"{}", now),
            Err(ApiError::NotFound)
        ));
        assert!(matches!(state.list("nobody"), Err(ApiError::NotFound)));
        assert!(state.tokens.is_empty());
    }

    #[test]
    fn request_ids_are_upper_hex_and_follow_the_seed() {
        let first = |seed: u64| {
            let mut state = State::new(seed);
            (state.request_id(), state.request_id())
        };
        let (a, b) = first(1);
        assert_eq!(a.len(), 32);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)),
            "{a}"
        );
        assert_ne!(a, b);
        assert_eq!(first(1), first(1));
        let reseeded = |seed: u64| {
            let mut state = State::new(99);
            state.request_id();
            state.reseed(seed);
            state.request_id()
        };
        assert_eq!(reseeded(1), a);
        for (x, y) in [(1, 3), (4, 8)] {
            assert_ne!(first(x).0, first(y).0, "{x} {y}");
            assert_ne!(reseeded(x), reseeded(y), "{x} {y}");
        }
    }
}
