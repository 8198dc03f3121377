//! The server generation read from `GET /1.0`, and what it changes: Incus against the fake's
//! `incus-6.0` profile, the 501 fallback of a newer LXD that hides its extensions from
//! strangers (a scripted server), and the diagnostics of bad input (a server without the token
//! extension, an untrusted client, an expired token).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_lxd::{ClientCert, Config, FakeLxd, Profile};
use lxd_client::{
    Client, ClientIdentity, Error, ExposeSecret, Generation, RetryPolicy, SecretString,
    ServerTrust, Target,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fast() -> RetryPolicy {
    RetryPolicy {
        deadline: Duration::from_secs(2),
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
        request_timeout: Duration::from_secs(2),
        create_attempts: 3,
    }
}

async fn incus() -> FakeLxd {
    FakeLxd::start(Config {
        profile: Profile::Incus6_0,
        ..Config::for_testing()
    })
    .await
    .unwrap()
}

fn unix(fake: &FakeLxd) -> Client {
    Client::new(Target::Unix(fake.unix_socket().to_owned()), fast())
}

/// A client of the fake over HTTPS with a fresh client certificate.
fn stranger(fake: &FakeLxd, name: &str) -> (Client, ClientCert) {
    let cert = ClientCert::generate(name);
    let identity = ClientIdentity {
        cert_pem: cert.cert_pem.clone(),
        key_pem: SecretString::from(cert.key_pem.clone()),
    };
    let target = Target::https(
        &fake.https_addr().to_string(),
        &ServerTrust::Pinned(fake.server_fingerprint().to_owned()),
        Some(&identity),
    )
    .unwrap();
    (Client::new(target, fast()), cert)
}

/// How many `POST /1.0/certificates` the fake answered.
fn posts(fake: &FakeLxd) -> usize {
    fake.control()
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/1.0/certificates")
        .count()
}

#[tokio::test]
async fn incus_is_told_apart_once_trusted_and_reuses_names() {
    let fake = incus().await;
    let client = unix(&fake);
    let info = client.server_info().await.unwrap();
    assert_eq!(info.generation(), Generation::Incus);
    assert_eq!(
        (info.server.as_deref(), info.server_version.as_deref()),
        (Some("incus"), Some("6.0.4"))
    );
    assert!(!info.typed_tokens() && info.issues_tokens());

    // Incus has no name rule: two pending tokens of one name, both redeemable.
    let first = client.create_token("same", &[]).await.unwrap();
    let second = client.create_token("same", &[]).await.unwrap();
    assert_eq!(first.expires_at, None, "Incus sets no default expiry");
    let pending = fake.control().pending_tokens();
    for token in [&first, &second] {
        // The token string is the one `incus config trust add` prints (no `type` key).
        assert!(
            pending
                .iter()
                .any(|(id, t)| id == &token.operation_id && t == token.token.expose_secret())
        );
        let (remote, _) = stranger(&fake, "joiner");
        remote.consume_token(&token.token).await.unwrap();
    }
    let names: Vec<String> = fake
        .control()
        .certificates()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["same", "same"]);
}

#[tokio::test]
async fn incus_takes_the_token_only_in_trust_token() {
    let fake = incus().await;
    let token = unix(&fake).create_token("joiner", &[]).await.unwrap();
    let (remote, cert) = stranger(&fake, "joiner");
    // Before trust, Incus 6.0 shows what LXD 5.0 shows: only its extensions.
    let info = remote.server_info().await.unwrap();
    assert!(!info.trusted);
    assert_eq!(info.generation(), Generation::Password);

    // In `password` alone (as LXD 5.0 wants it) the token is refused and kept.
    let before = posts(&fake);
    let err = remote.consume_password(&token.token).await.unwrap_err();
    assert!(
        matches!(&err, Error::Refused { status: 403, message } if message.starts_with("not authorized: ")),
        "{err}"
    );
    assert_eq!(posts(&fake), before + 1);
    assert_eq!(fake.control().pending_tokens().len(), 1, "not burnt");

    // The token in both fields: Incus reads `trust_token`, in one request.
    remote.consume_token(&token.token).await.unwrap();
    assert_eq!(posts(&fake), before + 2);
    assert_eq!(
        fake.control().certificates(),
        [("joiner".to_owned(), cert.fingerprint.clone())]
    );
    let info = remote.server_info().await.unwrap();
    assert!(info.trusted);
    assert_eq!(info.generation(), Generation::Incus);

    // Known as Incus, a password is refused before any request: Incus has none.
    let err = remote
        .consume_password(&SecretString::from("hunter2".to_owned()))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Incus has no trust passwords"),
        "{err}"
    );
    assert_eq!(posts(&fake), before + 2);
}

/// A scripted newer LXD over a unix socket: it hides its extensions from strangers (as Incus
/// 7 does), answers a non-empty `password` with 501, and takes `trust_token` alone.
async fn newer_lxd(bodies: Arc<Mutex<Vec<serde_json::Value>>>) -> (tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unix.socket");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut len = 0;
                // One request per connection: read until the body announced is in.
                loop {
                    let Ok(n) = stream.read(&mut buf[len..]).await else {
                        return;
                    };
                    len += n;
                    let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let want = head
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= want || n == 0 {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
                let (status, reply) = if head.starts_with("GET /1.0 ") {
                    (
                        "200 OK",
                        r#"{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":{"api_status":"stable","api_version":"1.0","auth":"untrusted","public":false,"auth_methods":["tls"]}}"#.to_owned(),
                    )
                } else {
                    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
                    let password = value["password"].as_str().is_some_and(|p| !p.is_empty());
                    bodies.lock().unwrap().push(value);
                    if password {
                        (
                            "501 Not Implemented",
                            r#"{"type":"error","status":"","status_code":0,"operation":"","error_code":501,"error":"Password authentication is no longer supported, please update your client","metadata":null}"#.to_owned(),
                        )
                    } else {
                        (
                            "201 Created",
                            r#"{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":null}"#.to_owned(),
                        )
                    }
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (dir, Client::new(Target::Unix(path), fast()))
}

#[tokio::test]
async fn newer_lxd_hiding_its_extensions_gets_trust_token_after_a_501() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (_dir, client) = newer_lxd(bodies.clone()).await;
    // Any well-formed token will do: the scripted server reads only the fields.
    let token = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(
            r#"{"client_name":"n","fingerprint":"ab","addresses":["127.0.0.1:8443"],"secret":"s","expires_at":"0001-01-01T00:00:00Z"}"#,
        )
    };
    let token = SecretString::from(token);
    client.consume_token(&token).await.unwrap();
    let bodies = bodies.lock().unwrap();
    let fields: Vec<Vec<&str>> = bodies
        .iter()
        .map(|b| {
            b.as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        fields,
        [
            vec!["type", "password", "trust_token"],
            vec!["type", "trust_token"]
        ]
    );
    assert_eq!(bodies[1]["trust_token"], token.expose_secret());
}

#[tokio::test]
async fn an_incus_server_without_the_token_extension_is_told_before_any_request() {
    let fake = incus().await;
    fake.control().hide_extension("certificate_token");
    let before = posts(&fake);
    let err = unix(&fake).create_token("t", &[]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "incus 6.0.4 does not list the API extension \"certificate_token\", so it cannot issue trust tokens; upgrade the server"
    );
    assert_eq!(posts(&fake), before);
    assert!(fake.control().pending_tokens().is_empty());
}

#[tokio::test]
async fn an_untrusted_client_is_told_before_any_request() {
    let fake = incus().await;
    let (remote, _) = stranger(&fake, "stranger");
    let err = remote.create_token("t", &[]).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("does not trust this client's certificate, so it cannot issue trust tokens")
            && text.contains("incus config trust add-certificate"),
        "{text}"
    );
    assert_eq!(posts(&fake), 0);
    assert!(fake.control().pending_tokens().is_empty());
}

#[tokio::test]
async fn an_expired_token_is_refused_with_what_to_do() {
    let fake = incus().await;
    fake.control()
        .set_config("core.remote_token_expiry", "1M")
        .unwrap();
    // Sweeps run a minute apart from the start: made at 0:30, the token expires at 1:30 and
    // is swept at 2:00.
    fake.control().advance(Duration::from_secs(30));
    let token = unix(&fake).create_token("late", &[]).await.unwrap();
    // Past the expiry but before the sweep: the token is still listed as running.
    fake.control().advance(Duration::from_secs(61));
    assert_eq!(fake.control().pending_tokens().len(), 1);
    let (remote, _) = stranger(&fake, "late");
    let before = posts(&fake);
    let err = remote.consume_token(&token.token).await.unwrap_err();
    assert!(
        matches!(&err, Error::Refused { status: 500, message } if message == "Failed during search for certificate add token operation: Token has expired: the token expired; request a new one"),
        "{err}"
    );
    // Not retried: a second try of a spent token could only fail.
    assert_eq!(posts(&fake), before + 1);
    assert!(fake.control().pending_tokens().is_empty(), "burnt");
    assert!(fake.control().certificates().is_empty());
}
