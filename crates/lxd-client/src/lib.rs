//! An async client of the LXD REST API for trust tokens.
//!
//! [`transport`] speaks to the unix socket or HTTPS with a client certificate (server identity
//! pinned, by CA, or accepted only on explicit request); [`config`] reads lxc's configuration
//! directory; [`token`] builds and decodes token strings exactly as `lxc` prints them;
//! [`Client`] is the typed API, with retried reads and creates reconciled after ambiguous
//! failures.
//!
//! This crate knows nothing about Terraform, and shares no code with `fake-lxd`.

pub mod client;
pub mod config;
pub mod error;
pub mod info;
pub mod secret;
pub mod token;
pub mod transport;

pub use client::{Certificate, Client, Generation, Named, PendingToken, RetryPolicy, ServerInfo};
pub use error::Error;
pub use secret::{ExposeSecret, SecretString};
pub use transport::{ClientIdentity, ServerTrust, Target};
