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

    /// `true` when the server may have acted although we got no answer.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Error::Interrupted { .. } | Error::Timeout { .. })
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. }
            | Error::Malformed { status, .. }
            | Error::Refused { status, .. } => Some(*status),
            Error::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }
}
