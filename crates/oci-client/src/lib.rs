//! An async client of the OCI Identity API's auth tokens.
//!
//! [`config::resolve`] finds credentials (explicit settings, `OCI_*` variables, the OCI config
//! file), [`signer`] signs requests as the SDKs do, and [`Client`] runs the auth-token
//! operations with retries: every create carries one `opc-retry-token` reused on each retry,
//! so a retried create never makes a second token.
//!
//! This crate knows nothing about Terraform, and shares no code with `fake-oci`.

pub mod client;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod secret;
pub mod signer;

pub use client::{AuthToken, Client, Clock, FixedClock, RetryPolicy, SystemClock};
pub use config::{Credentials, Environment, Settings};
pub use error::Error;
pub use secret::Secret;
