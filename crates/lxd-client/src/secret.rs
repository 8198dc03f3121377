//! Secrets (tokens, private keys, passphrases) are [`secrecy::SecretString`]: zeroised on drop,
//! redacted by `Debug`, without `Display`, and read only through [`ExposeSecret`] at the one
//! place that sends them.

pub use secrecy::{ExposeSecret, SecretString};
