//! No token, secret or client key reaches logs, `Debug` output or error texts, at trace level.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_lxd::faults::{Action, ResetWhen, Rule};
use fake_lxd::{ClientCert, Config, FakeLxd};
use lxd_client::{
    Client, ClientIdentity, ExposeSecret, RetryPolicy, SecretString, ServerTrust, Target,
};

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
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    let retry = RetryPolicy {
        deadline: Duration::from_secs(2),
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        request_timeout: Duration::from_secs(2),
        create_attempts: 2,
    };
    let local = Client::new(Target::Unix(fake.unix_socket().to_owned()), retry.clone());
    fake.control().add_fault(Rule {
        method: "POST".into(),
        path: "/1.0/certificates".into(),
        times: Some(1),
        action: Action::Reset {
            reset: ResetWhen::After,
        },
    });
    let token = local.create_token("secret-holder", &[]).await.unwrap();
    let data = lxd_client::token::decode(&token.token).unwrap();
    let cert = ClientCert::generate("joiner");
    let identity = ClientIdentity {
        cert_pem: cert.cert_pem.clone(),
        key_pem: SecretString::from(cert.key_pem.clone()),
    };
    let remote = Client::new(
        Target::https(
            &data.addresses[0],
            &ServerTrust::Pinned(data.fingerprint.clone()),
            Some(&identity),
        )
        .unwrap(),
        retry,
    );
    remote.consume_token(&token.token).await.unwrap();
    let reuse = remote.consume_token(&token.token).await.unwrap_err();
    let listed = local.list_tokens().await.unwrap();

    let seen = format!(
        "{token:?} {data:?} {identity:?} {local:?} {remote:?} {reuse} {reuse:?} {listed:?}"
    );
    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("reconciling"),
        "the test captured the client's logs: {logs}"
    );
    let everything = format!("{seen}\n{logs}");
    let key_line = cert.key_pem.lines().nth(1).unwrap().to_owned();
    for secret in [
        token.token.expose_secret(),
        data.secret.expose_secret(),
        key_line.as_str(),
    ] {
        assert!(!everything.contains(secret), "a secret leaked");
    }
}

#[test]
fn an_identity_shows_its_fingerprint_and_parses_its_key() {
    let cert = ClientCert::generate("shown");
    let identity = ClientIdentity {
        cert_pem: cert.cert_pem.clone(),
        key_pem: SecretString::from(cert.key_pem.clone()),
    };
    let shown = format!("{identity:?}");
    assert!(shown.starts_with("ClientIdentity {"), "{shown}");
    assert!(shown.contains(&cert.fingerprint), "{shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(lxd_client::transport::parse_key(&identity.key_pem).is_some());
    assert!(
        lxd_client::transport::parse_key(&SecretString::from("not a key".to_owned())).is_none()
    );
}
