//! The fakes as the end-to-end tests start them: one fresh fake per test.

use std::path::Path;

use fake_lxd::FakeLxd;
use fake_oci::FakeOci;

/// A fake LXD on its unix socket (in the returned directory, the test's `LXD_DIR`) and on
/// HTTPS, with the given profile and clock.
pub async fn lxd(
    profile: fake_lxd::Profile,
    clock: fake_lxd::ClockMode,
) -> (FakeLxd, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeLxd::start(fake_lxd::Config {
        profile,
        clock,
        unix_socket: Some(dir.path().join("unix.socket")),
        ..fake_lxd::Config::for_testing()
    })
    .await
    .unwrap();
    (fake, dir)
}

/// A fake OCI on the wall clock (Terraform signs with it), with an OCI configuration file
/// for its test user written into `dir`.
pub async fn oci(dir: &Path) -> FakeOci {
    let fake = FakeOci::start(fake_oci::Config {
        clock: fake_oci::ClockMode::System,
        ..fake_oci::Config::for_testing()
    })
    .await
    .unwrap();
    super::write_oci_config(&fake, dir);
    fake
}

/// A client of `fake` signing as its test user, to make or change tokens behind Terraform's
/// back.
pub fn oci_test_client(fake: &FakeOci) -> oci_client::Client {
    let id = fake.test_identity();
    let settings = oci_client::Settings {
        tenancy_ocid: Some(id.tenancy),
        user_ocid: Some(id.user),
        fingerprint: Some(id.fingerprint),
        private_key: Some(oci_client::SecretString::from(id.private_key_pem)),
        endpoint: Some(fake.endpoint()),
        ..Default::default()
    };
    let env = oci_client::Environment {
        var: &|_| None,
        read_file: &|_| Err(std::io::Error::other("no files")),
        home: None,
    };
    let credentials = oci_client::config::resolve(&settings, &env).expect("OCI credentials");
    oci_client::Client::new(
        &credentials,
        oci_client::RetryPolicy::default(),
        std::sync::Arc::new(oci_client::SystemClock),
    )
    .expect("OCI client")
}
