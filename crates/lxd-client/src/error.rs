//! Typed errors. None of them carries a secret.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("lxc configuration: {0}")]
    Config(String),
    #[error("cannot reach LXD at {target}: {message}")]
    Connect { target: String, message: String },
    /// The request may have reached the server, but no answer came back.
    #[error("the connection to LXD at {target} broke before the answer: {message}")]
    Interrupted { target: String, message: String },
    #[error("the request to LXD at {target} timed out")]
    Timeout { target: String },
    #[error(
        "the LXD server's certificate (fingerprint {actual}) is not the one expected ({expected}); pin the right certificate or accept it explicitly"
    )]
    ServerCertificate { expected: String, actual: String },
    /// LXD answered with its error envelope.
    #[error("LXD answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("unexpected reply from LXD ({status}): {detail}")]
    Malformed { status: u16, detail: String },
    #[error("the reply from LXD is too large ({0} bytes)")]
    TooLarge(u64),
    #[error("not a trust token: {0}")]
    BadToken(String),
    #[error("{message}")]
    Refused { status: u16, message: String },
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted { attempts: u32, last: Box<Error> },
    /// Refused before any request: operation ids are UUIDs, and nothing else goes in a path.
    #[error("{0} is not an LXD operation id (a UUID such as 38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1)")]
    BadOperationId(String),
    /// Refused before any request: the server said it does not trust this client.
    #[error(
        "LXD at {target} does not trust this client's certificate, so it cannot {action}; make the client trusted first (a trust token in the remote's `token`, or its certificate added on the server with `lxc config trust add-certificate` or `incus config trust add-certificate`)"
    )]
    Untrusted {
        target: String,
        action: &'static str,
    },
    /// Refused before any request: the server does not list an API extension this needs.
    #[error(
        "{server} does not list the API extension {extension:?}, so it cannot {action}; upgrade the server"
    )]
    MissingExtension {
        server: String,
        extension: &'static str,
        action: &'static str,
    },
    /// The LXD API never redirects, so a redirect is not followed (it could re-send a create).
    #[error("LXD at {target} answered with a redirect ({status}{}), which is not followed", location.as_deref().map(|l| format!(" to {l}")).unwrap_or_default())]
    Redirect {
        target: String,
        status: u16,
        location: Option<String>,
    },
    /// A create that may have acted without an answer, after which more than one pending token
    /// of its name appeared: none is adopted and none revoked, since any could be another
    /// client's.
    #[error(
        "the request to create trust token {name:?} may have reached LXD without a usable answer ({cause}), and {} pending tokens of that name appeared meanwhile (operation ids {}); none was adopted or revoked, since any of them may be another client's: import the one that is yours by its operation id, and revoke the others with `lxc operation delete ID`",
        candidates.len(),
        candidates.join(", ")
    )]
    AmbiguousCreate {
        name: String,
        candidates: Vec<String>,
        cause: Box<Error>,
    },
}

impl Error {
    /// Failures a read is retried on: the network, timeouts and server errors.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Interrupted { .. } | Error::Timeout { .. } => true,
            Error::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// `true` when a request that changes state may have acted although its answer does not
    /// say so: the connection broke after sending, the answer timed out or could not be read,
    /// or a 5xx came back (a proxy may answer 502 or 504 after forwarding the request).
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Error::Interrupted { .. }
            | Error::Timeout { .. }
            | Error::TooLarge(_)
            | Error::Malformed { .. } => true,
            Error::Api { status, .. } => *status >= 500,
            Error::RetriesExhausted { last, .. } => last.is_ambiguous(),
            _ => false,
        }
    }

    /// `true` when the request surely never reached the server (no connection was made).
    pub fn is_unsent(&self) -> bool {
        matches!(self, Error::Connect { .. })
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. }
            | Error::Malformed { status, .. }
            | Error::Refused { status, .. } => Some(*status),
            Error::RetriesExhausted { last, .. } => last.status(),
            Error::Redirect { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    fn exhausted(last: Error) -> Error {
        Error::RetriesExhausted {
            attempts: 3,
            last: Box::new(last),
        }
    }

    fn timeout() -> Error {
        Error::Timeout {
            target: "lxd".into(),
        }
    }

    fn connect() -> Error {
        Error::Connect {
            target: "lxd".into(),
            message: "refused".into(),
        }
    }

    #[test]
    fn retries_exhausted_is_what_its_last_failure_was() {
        assert!(exhausted(timeout()).is_ambiguous());
        assert!(!exhausted(connect()).is_ambiguous());
        assert!(connect().is_unsent() && !timeout().is_unsent());
        assert!(
            !exhausted(connect()).is_unsent(),
            "only a bare connect failure"
        );
        let redirect = Error::Redirect {
            target: "lxd".into(),
            status: 307,
            location: None,
        };
        assert_eq!(redirect.status(), Some(307));
        assert_eq!(exhausted(redirect).status(), Some(307));
        assert_eq!(exhausted(timeout()).status(), None);
    }
}
