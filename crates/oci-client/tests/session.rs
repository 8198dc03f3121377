//! `auth = "SecurityToken"`: a config file profile as `oci session authenticate` writes it
//! (`security_token_file`, `key_file`, no user), requests signed with key id `ST$<token>`
//! against fake-oci, and expired sessions refused with a message that says how to refresh.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fake_oci::{Config, FakeOci, TEST_EPOCH};
use oci_client::config::{Environment, Settings, resolve};
use oci_client::{Client, Error, FixedClock, RetryPolicy};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/oci-client/signing-vectors")
            .join(name),
    )
    .unwrap()
}

/// The session key: the published 1024-bit test key, which no user has as an API key.
fn session_key() -> String {
    fixture("test_key_private_pkcs1.pem")
}

fn session_public_key() -> String {
    fixture("test_key_public_spki.pem")
}

/// What `oci session authenticate` writes for profile `SESS`, the token in `token`.
fn files(token: &str) -> BTreeMap<PathBuf, String> {
    BTreeMap::from([
        (
            PathBuf::from("/home/u/.oci/config"),
            "[DEFAULT]\nregion=us-ashburn-1\n\n[SESS]\nfingerprint=00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00\nkey_file=~/.oci/sessions/SESS/oci_api_key.pem\ntenancy=ocid1.tenancy.oc1..aaaaaaaafaketenancy0000000000000000000000000000000000000\nregion=us-ashburn-1\nsecurity_token_file=~/.oci/sessions/SESS/token\n".to_owned(),
        ),
        (
            PathBuf::from("/home/u/.oci/sessions/SESS/oci_api_key.pem"),
            session_key(),
        ),
        (PathBuf::from("/home/u/.oci/sessions/SESS/token"), format!("{token}\n")),
    ])
}

fn credentials(
    settings: &Settings,
    files: BTreeMap<PathBuf, String>,
) -> Result<oci_client::Credentials, Error> {
    let read = move |path: &Path| {
        files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    };
    let env = Environment {
        var: &|_| None,
        read_file: &read,
        home: Some(PathBuf::from("/home/u")),
    };
    resolve(settings, &env)
}

fn session_settings(endpoint: Option<String>) -> Settings {
    Settings {
        auth: Some("SecurityToken".into()),
        config_file_profile: Some("SESS".into()),
        endpoint,
        ..Settings::default()
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_elapsed: Duration::from_secs(10),
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        request_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(1),
        disabled: false,
    }
}

/// A fake, and a session of its test user valid for `lifetime` from the test epoch.
async fn session(lifetime: Duration) -> (FakeOci, String) {
    let fake = FakeOci::start(Config::for_testing()).await.unwrap();
    let token = fake
        .control()
        .issue_session(&fake.test_identity().user, &session_public_key(), lifetime)
        .unwrap();
    (fake, token)
}

#[tokio::test]
async fn a_session_profile_signs_with_st_dollar_token() {
    let (fake, token) = session(Duration::from_secs(3600)).await;
    let creds = credentials(&session_settings(Some(fake.endpoint())), files(&token)).unwrap();
    let user = fake.test_identity().user;
    assert_eq!(creds.user, user, "the user is the session token's subject");
    let signer = creds.signer();
    assert!(signer.is_session());
    assert_eq!(signer.key_id(), format!("ST${token}"));
    for shown in [format!("{creds:?}"), format!("{signer:?}")] {
        assert!(!shown.contains(&token), "{shown}");
        assert!(!shown.contains(token.split('.').nth(1).unwrap()), "{shown}");
    }
    let session = format!("{:?}", creds.session.as_ref().unwrap());
    assert!(session.starts_with("Session {"), "{session}");
    assert!(session.contains("<redacted>"), "{session}");

    let client = Client::new(&creds, fast_retries(), Arc::new(FixedClock(TEST_EPOCH))).unwrap();
    assert!(!format!("{client:?}").contains(&token));
    let made = client.create_auth_token(&user, "by session").await.unwrap();
    let listed = client.list_auth_tokens(&user).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, made.id);
    client
        .delete_auth_token(&user, &made.id, None)
        .await
        .unwrap();
    assert_eq!(fake.control().state()["tokens"], serde_json::json!([]));
}

#[tokio::test]
async fn an_expired_session_is_refused_before_any_request_and_by_the_service() {
    let (fake, token) = session(Duration::from_secs(60)).await;
    let creds = credentials(&session_settings(Some(fake.endpoint())), files(&token)).unwrap();
    let later = FixedClock(TEST_EPOCH + Duration::from_secs(61));
    let err = Client::new(&creds, fast_retries(), Arc::new(later)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::SessionExpired { .. }), "{err:?}");
    assert!(
        text.contains("oci session refresh --profile SESS"),
        "{text}"
    );
    assert!(!text.contains(&token), "{text}");
    assert!(fake.control().requests().is_empty(), "nothing was sent");

    // The service's clock is past the expiry while the client's is not.
    let client = Client::new(&creds, fast_retries(), Arc::new(FixedClock(TEST_EPOCH))).unwrap();
    fake.control().advance(Duration::from_secs(61));
    let err = client
        .list_auth_tokens(&fake.test_identity().user)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.status(), Some(401), "{text}");
    assert!(
        text.contains("oci session refresh --profile SESS"),
        "{text}"
    );
    assert!(!text.contains(&token), "{text}");
}

#[test]
fn session_profiles_that_cannot_work_are_clear_errors() {
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvY2lkMS51c2VyLm9jMS4uYSIsImV4cCI6MX0.c2ln";
    // No security_token_file in the profile.
    let mut no_file = files(token);
    no_file.insert(
        PathBuf::from("/home/u/.oci/config"),
        "[SESS]\nkey_file=/k\ntenancy=ocid1.tenancy.oc1..t\n".to_owned(),
    );
    let err = credentials(&session_settings(None), no_file).unwrap_err();
    assert!(err.to_string().contains("security_token_file"), "{err}");
    assert!(
        err.to_string().contains("oci session authenticate"),
        "{err}"
    );

    // A token file that is not a JWT: the message names the file, never its content.
    let mut garbage = files(token);
    garbage.insert(
        PathBuf::from("/home/u/.oci/sessions/SESS/token"),
        "s3cr3t-not-a-jwt".to_owned(),
    );
    let err = credentials(&session_settings(None), garbage).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("/home/u/.oci/sessions/SESS/token"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");

    // The session profile without auth = "SecurityToken" says to set it.
    let settings = Settings {
        config_file_profile: Some("SESS".into()),
        ..Settings::default()
    };
    let err = credentials(&settings, files(token)).unwrap_err();
    assert!(
        err.to_string().contains("auth = \"SecurityToken\""),
        "{err}"
    );

    // Auth types that are not implemented keep their clear error.
    let settings = Settings {
        auth: Some("InstancePrincipal".into()),
        ..session_settings(None)
    };
    let err = credentials(&settings, files(token)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unsupported {
                setting: "auth",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("SecurityToken"), "{err}");
}
