//! Secrets (tokens, private keys, passphrases) are `secrecy`'s [`SecretString`]: zeroised on
//! drop, `[REDACTED]` in `Debug`, no `Display`, read only through [`ExposeSecret`].

pub use secrecy::{ExposeSecret, SecretString};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_the_value_is_only_exposed_on_request() {
        let secret = SecretString::from("hunter2-s3cr3t");
        let settings = crate::Settings {
            private_key: Some(secret.clone()),
            private_key_password: Some(SecretString::from("pass-phr4se")),
            ..crate::Settings::default()
        };
        let shown = format!("{secret:?} {settings:?} {settings:#?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("phr4se"),
            "{shown}"
        );
        assert!(shown.contains("REDACTED"), "{shown}");
        assert_eq!(secret.expose_secret(), "hunter2-s3cr3t");
    }
}
