//! Typed errors. None of them carries a secret.

/// An error of the OCI client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or wrong; the message names it.
    #[error("OCI configuration: {0}")]
    Config(String),
    #[error(
        "{setting} = {value:?} is not supported yet; only auth = \"ApiKey\" (an API signing key) and auth = \"SecurityToken\" (a session of `oci session authenticate`) are"
    )]
    Unsupported {
        setting: &'static str,
        value: String,
    },
    /// The session token of `auth = "SecurityToken"` is past its expiry.
    #[error(
        "the session token of config file profile {profile:?} expired at {expired_at}; refresh it with `oci session refresh --profile {profile}` (or sign in again with `oci session authenticate` once it can no longer be refreshed)"
    )]
    SessionExpired { profile: String, expired_at: String },
    #[error("the private key {0}")]
    Key(String),
    /// An id the caller gave (or a state held) that cannot go into a request path; nothing
    /// was sent. `name` is the argument, such as `user_id`.
    #[error("{name} {value}: {reason}")]
    InvalidId {
        name: &'static str,
        value: String,
        reason: String,
    },
    /// The server answered a redirect. The Identity API never sends one, and following it
    /// would re-send a signed request elsewhere, so it is refused.
    #[error(
        "OCI answered {status} (a redirect to {location:?}), which the API never sends; it was not followed"
    )]
    Redirect { status: u16, location: String },
    #[error("cannot reach the OCI endpoint {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("the request to {endpoint} timed out")]
    Timeout { endpoint: String },
    /// The service answered with an error envelope.
    #[error("OCI answered {status} {code}: {message} (opc-request-id {request_id})")]
    Service {
        status: u16,
        code: String,
        message: String,
        request_id: String,
    },
    /// The service answered something that is not what the API defines.
    #[error("unexpected reply from OCI ({status}): {detail}")]
    Malformed { status: u16, detail: String },
    #[error("the reply from OCI is too large ({0} bytes)")]
    TooLarge(u64),
    #[error("gave up after {attempts} attempts in {elapsed:?}: {last}")]
    RetriesExhausted {
        attempts: u32,
        elapsed: std::time::Duration,
        last: Box<Error>,
    },
    /// A token this client created recently is still missing from its user's list.
    #[error(
        "auth token {id}, created by this provider {age:?} ago, is not listed yet after {attempts} lists (OCI is eventually consistent for up to 240 s)"
    )]
    NotYetListed {
        id: String,
        age: std::time::Duration,
        attempts: u32,
    },
    #[error("auth token {id} did not reach {state} within {timeout:?} (last seen {seen})")]
    WaitTimeout {
        id: String,
        state: String,
        seen: String,
        timeout: std::time::Duration,
    },
}

impl Error {
    /// `true` for failures the SDKs retry: throttling, server errors (but 501), a `409` with
    /// code `IncorrectState` or `LockConflict`, and the network.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Service {
                status: 409, code, ..
            } => matches!(code.as_str(), "IncorrectState" | "LockConflict"),
            Error::Service { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            Error::Connect { .. } | Error::Timeout { .. } => true,
            _ => false,
        }
    }

    /// The service's error code, when it answered with its envelope.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Service { code, .. } => Some(code),
            Error::RetriesExhausted { last, .. } => last.code(),
            _ => None,
        }
    }

    /// `true` for `400 LimitExceeded`, what the fake answers a create at the two-token limit.
    /// The live service's answer is not documented; see [`Error::may_be_token_limit`].
    pub fn is_limit_exceeded(&self) -> bool {
        matches!(self, Error::Service { status: 400 | 409, code, .. } if code == "LimitExceeded")
    }

    /// `true` for the answers a create may get at the two-token limit: `400 LimitExceeded`, or
    /// a `409` that is not one the client retries or a retry-token conflict. The caller lists
    /// the user's tokens to tell.
    pub fn may_be_token_limit(&self) -> bool {
        match self {
            Error::Service {
                status: 409, code, ..
            } => !matches!(
                code.as_str(),
                "IncorrectState" | "LockConflict" | "InvalidatedRetryToken"
            ),
            _ => self.is_limit_exceeded(),
        }
    }

    /// The HTTP status, when the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Service { status, .. } | Error::Malformed { status, .. } => Some(*status),
            Error::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> Error {
        Error::Service {
            status,
            code: code.to_owned(),
            message: String::new(),
            request_id: String::new(),
        }
    }

    #[test]
    fn the_token_limit_is_told_by_status_and_code() {
        for (status, code, limit, maybe) in [
            (400, "LimitExceeded", true, true),
            (409, "LimitExceeded", true, true),
            (400, "InvalidParameter", false, false),
            (409, "Conflict", false, true),
            (409, "IncorrectState", false, false),
            (409, "LockConflict", false, false),
            (409, "InvalidatedRetryToken", false, false),
            (500, "LimitExceeded", false, false),
        ] {
            let err = service(status, code);
            assert_eq!(err.is_limit_exceeded(), limit, "{status} {code}");
            assert_eq!(err.may_be_token_limit(), maybe, "{status} {code}");
        }
    }
}
