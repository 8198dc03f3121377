//! A client keeps its connection open between requests, and replaces one the server closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fake_lxd::{ClientCert, Config, FakeLxd};
use lxd_client::{
    Client, ClientIdentity, ExposeSecret, RetryPolicy, SecretString, ServerTrust, Target,
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

/// Makes three tokens and lists them, then returns how many requests the fake saw and how
/// many connections it served meanwhile.
async fn requests_and_connections(fake: &FakeLxd, client: &Client) -> (usize, usize) {
    let control = fake.control();
    let (requests, connections) = (control.requests().len(), control.connections());
    for name in ["a", "b", "c"] {
        client.create_token(name, &[]).await.unwrap();
    }
    assert!(client.list_tokens().await.unwrap().len() >= 3);
    (
        control.requests().len() - requests,
        control.connections() - connections,
    )
}

#[tokio::test]
async fn one_connection_serves_a_clients_requests_over_both_transports() {
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    let unix = Client::new(Target::Unix(fake.unix_socket().to_owned()), fast());
    let (requests, connections) = requests_and_connections(&fake, &unix).await;
    assert!(requests >= 4, "{requests} requests");
    assert_eq!(connections, 1, "{requests} requests over the unix socket");

    // A certificate the fake trusts, through a token made over the socket.
    let token = unix.create_token("https-client", &[]).await.unwrap();
    let cert = ClientCert::generate("keep-alive");
    let (status, error, _) = fake
        .control()
        .consume(token.token.expose_secret(), Some(&cert));
    assert_eq!(status, 201, "{error:?}");
    let target = Target::https(
        &fake.https_addr().to_string(),
        &ServerTrust::Pinned(fake.server_fingerprint().to_owned()),
        Some(&ClientIdentity {
            cert_pem: cert.cert_pem.clone(),
            key_pem: SecretString::from(cert.key_pem.clone()),
        }),
    )
    .unwrap();
    let https = Client::new(target, fast());
    let (requests, connections) = requests_and_connections(&fake, &https).await;
    assert!(requests >= 4, "{requests} requests");
    assert_eq!(connections, 1, "{requests} requests over HTTPS");
}

#[tokio::test]
async fn a_connection_the_server_closed_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unix.socket");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    let counter = accepted.clone();
    // Each connection gets one keep-alive answer, then the server closes it, as a server
    // does with a connection idle past its limit.
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = stream.read(&mut buf).await;
                let body = r#"{"type":"sync","status":"Success","status_code":200,"metadata":[]}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
                drop(stream);
                let _ = closed_tx.send(());
            });
        }
    });
    let client = Client::new(Target::Unix(path), fast());
    assert!(client.list_certificates().await.unwrap().is_empty());
    closed.recv().await.unwrap();
    assert!(client.list_certificates().await.unwrap().is_empty());
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// Requests sent one after the other from a task, each as soon as the answer before it was
/// read, on a one-thread runtime (the provider's: each gRPC call is such a task), to a server
/// in its own threads. The connection must be back in the pool by then, or the pool opens
/// another that nothing uses: over HTTPS, a TLS handshake on both sides for nothing.
#[test]
fn a_task_sending_requests_back_to_back_keeps_one_connection() {
    let server = tokio::runtime::Runtime::new().unwrap();
    let fake = server
        .block_on(FakeLxd::start(Config::for_testing()))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let control = fake.control();
    let client = Arc::new(Client::new(
        Target::Unix(fake.unix_socket().to_owned()),
        fast(),
    ));
    let before = control.connections();
    let task = client.clone();
    let work = runtime.spawn(async move {
        for name in ["a", "b", "c"] {
            task.named_now(name).await.unwrap();
            task.server_kind().await.unwrap();
            task.create_token(name, &[]).await.unwrap();
        }
    });
    runtime.block_on(work).unwrap();
    assert_eq!(control.connections() - before, 1);
}
