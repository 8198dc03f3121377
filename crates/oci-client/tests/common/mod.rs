//! Shared by the tests and the bench: credentials of a fake-oci user signing with the fake's
//! test key, resolved from explicit settings only (no environment, no files).

#![allow(dead_code)]

use fake_oci::FakeOci;
use oci_client::SecretString;
use oci_client::{Credentials, Environment, Settings};

/// An environment with no variables, no files and no home directory.
pub fn empty_environment() -> Environment<'static> {
    Environment {
        var: &|_| None,
        read_file: &|_| Err(std::io::ErrorKind::NotFound.into()),
        home: None,
    }
}

/// The settings of `user` at `fake`, with the test key.
pub fn settings(fake: &FakeOci, user: &str) -> Settings {
    let id = fake.test_identity();
    Settings {
        tenancy_ocid: Some(id.tenancy),
        user_ocid: Some(user.to_owned()),
        fingerprint: Some(id.fingerprint),
        private_key: Some(SecretString::from(id.private_key_pem)),
        endpoint: Some(fake.endpoint()),
        ..Settings::default()
    }
}

/// Resolved credentials of `user` at `fake`.
pub fn credentials(fake: &FakeOci, user: &str) -> Credentials {
    oci_client::config::resolve(&settings(fake, user), &empty_environment())
        .expect("the test identity resolves")
}
