//! An async client of the OCI Identity API's auth tokens.
//!
//! [`config::resolve`] finds credentials (explicit settings, `OCI_*` variables, the OCI config
//! file), [`signer`] signs requests as the SDKs do, and [`Client`] runs the auth-token
//! operations with retries: every create carries one `opc-retry-token` reused on each retry,
//! so a retried create never makes a second token.
//!
//! This crate knows nothing about Terraform, and shares no code with `fake-oci`.
//!
//! Limits:
//! - API-key authentication and `auth = "SecurityToken"` (a session profile of
//!   `oci session authenticate`); every other `auth` value is refused as not supported yet.
//!   A session is not refreshed by the client: an expired one is an error saying to run
//!   `oci session refresh`.
//! - The 240 s eventual-consistency window covers the tokens this client created, by its own
//!   record: a new process (a new Terraform command) does not wait for a token it did not make.
//! - A create whose every attempt failed ambiguously (connection lost after sending, or timed
//!   out) until the deadline may have made a token that the caller never learns of; within
//!   the deadline, the reused `opc-retry-token` makes the service replay the first result.
//! - A `retry-after` longer than what is left of the deadline ends the retries at once; one in
//!   the HTTP-date form is ignored (OCI sends seconds), and one longer than a day counts as a day.
//! - The retry window (`RetryPolicy::max_elapsed`) only decides whether another attempt starts;
//!   each attempt has its full `request_timeout`, so a call may end up to one `request_timeout`
//!   after the window.
//! - User and token ids must be OCIDs ([`path::check_ocid`]); anything else is refused before
//!   any request. Redirects are refused ([`Error::Redirect`]), never followed.
//! - A plain `http://` endpoint to a host that is not loopback is accepted;
//!   [`Client::plain_http_to_remote`] tells the caller, who should warn.
//! - HTTPS uses the WebPKI roots only; there is no option for a private CA.
//! - The config file is `OCI_CONFIG_FILE` when set, else `~/.oci/config`; `~/.oraclebmc/config`
//!   is not read. Region short keys (`iad`) are not translated.

pub mod client;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod path;
pub mod secret;
pub mod signer;

pub use client::{AuthToken, Client, Clock, FixedClock, RetryPolicy, SystemClock, User};
pub use config::{Credentials, Environment, Settings};
pub use error::Error;
pub use secret::{ExposeSecret, SecretString};
