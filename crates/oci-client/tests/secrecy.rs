//! No token secret, private key or signature reaches logs, `Debug` output or error texts,
//! even at trace level.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_oci::faults::{Action, ResetWhen, Rule};
use fake_oci::{Config, FakeOci, TEST_EPOCH};
use oci_client::ExposeSecret;
use oci_client::{Client, Environment, FixedClock, RetryPolicy, SecretString, Settings};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_reach_logs_debug_or_errors() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    // The global subscriber (this test binary holds only this test) also takes the `log`
    // records of reqwest and its dependencies, so every library's trace output is checked.
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish()
        .try_init()
        .expect("the only subscriber of this test binary");

    let fake = FakeOci::start(Config::for_testing()).await.unwrap();
    let id = fake.test_identity();
    let settings = Settings {
        tenancy_ocid: Some(id.tenancy.clone()),
        user_ocid: Some(id.user.clone()),
        private_key: Some(SecretString::from(id.private_key_pem.clone())),
        private_key_password: Some(SecretString::from("unused-passphrase")),
        endpoint: Some(fake.endpoint()),
        ..Settings::default()
    };
    let env = Environment {
        var: &|_| None,
        read_file: &|_| Err(std::io::ErrorKind::NotFound.into()),
        home: None,
    };
    let creds = oci_client::config::resolve(&settings, &env).unwrap();
    let retry = RetryPolicy {
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        ..RetryPolicy::default()
    };
    let client = Client::new(&creds, retry, Arc::new(FixedClock(TEST_EPOCH))).unwrap();

    let mut seen = String::new();
    fake.control().add_fault(Rule {
        method: "POST".into(),
        path: "/**".into(),
        times: Some(1),
        action: Action::Reset {
            reset: ResetWhen::After,
        },
    });
    let first = client.create_auth_token(&id.user, "one").await.unwrap();
    let second = client.create_auth_token(&id.user, "two").await.unwrap();
    seen.push_str(&format!(
        "{first:?} {second:?} {client:?} {creds:?} {settings:?}"
    ));
    let third = client
        .create_auth_token(&id.user, "three")
        .await
        .unwrap_err();
    seen.push_str(&format!("{third} {third:?}"));
    let list = client.list_auth_tokens(&id.user).await.unwrap();
    seen.push_str(&format!("{list:?}"));
    let skewed = Client::new(
        &creds,
        RetryPolicy::default(),
        Arc::new(FixedClock(TEST_EPOCH + time::Duration::hours(1))),
    )
    .unwrap();
    let refused = skewed.list_auth_tokens(&id.user).await.unwrap_err();
    seen.push_str(&format!("{refused} {refused:?}"));
    // Wrong passphrases and unreadable keys end in errors that must not echo what was given.
    let encrypted = include_str!("../../../fixtures/oci/keys/test_user_key_encrypted.pem");
    let wrong = Settings {
        private_key: Some(SecretString::from(encrypted)),
        private_key_password: Some(SecretString::from("wrong-passphrase-value")),
        ..settings.clone()
    };
    let err = oci_client::config::resolve(&wrong, &env).unwrap_err();
    seen.push_str(&format!("{err} {err:?} {wrong:?}"));

    // The signer is deterministic under the fixed clock, so these are the signatures the
    // client really sent for the creates and the list above.
    let host = fake.endpoint().trim_start_matches("http://").to_owned();
    let collection = format!("/20160918/users/{}/authTokens", id.user);
    let signature_of = |method: &str, body: Option<&[u8]>| {
        let signed = creds
            .signer()
            .sign(method, &host, &collection, body, TEST_EPOCH);
        let authorization = &signed
            .headers
            .iter()
            .find(|(n, _)| *n == "authorization")
            .unwrap()
            .1;
        authorization
            .split("signature=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches('"')
            .to_owned()
    };
    let mut signatures = vec![signature_of("GET", None)];
    for description in ["one", "two", "three"] {
        let body = format!(r#"{{"description":"{description}"}}"#);
        signatures.push(signature_of("POST", Some(body.as_bytes())));
    }
    let sent: Vec<_> = fake.control().requests();
    assert!(
        sent.iter().filter(|r| r.status == Some(200)).count() >= 3,
        "the signatures were accepted: {sent:?}"
    );

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("OCI request"),
        "the test captured the client's logs"
    );
    assert!(
        logs.contains("reqwest") || logs.contains("hyper"),
        "the test captured the HTTP stack's logs"
    );
    let everything = format!("{seen}\n{logs}");
    let mut secrets = vec![
        (
            "first token",
            first.token.as_ref().unwrap().expose_secret().to_owned(),
        ),
        (
            "second token",
            second.token.as_ref().unwrap().expose_secret().to_owned(),
        ),
        ("passphrase", "unused-passphrase".to_owned()),
        ("wrong passphrase", "wrong-passphrase-value".to_owned()),
    ];
    for line in id.private_key_pem.lines().skip(1).take(3) {
        secrets.push(("private key line", line.to_owned()));
    }
    for line in encrypted.lines().skip(1).take(3) {
        secrets.push(("encrypted key line", line.to_owned()));
    }
    for signature in signatures {
        secrets.push(("signature", signature));
    }
    for (what, secret) in &secrets {
        // The message names the kind of secret, never the secret itself.
        assert!(!everything.contains(secret.as_str()), "a {what} leaked");
    }
}
