//! A create that could not even connect surely did nothing, so it is sent again, up to
//! `create_attempts` times and within the deadline. A gate in front of fake-lxd serves the
//! reads, and after the operations listing that comes before each create it takes its socket
//! away (the create's connection fails: nothing was sent) until the client says it will try
//! again; a tracing writer puts the socket back at that line, so nothing here depends on timing.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fake_lxd::{Config, FakeLxd};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use lxd_client::{Client, Error, RetryPolicy, Target};
use tokio::net::UnixListener;

struct Gate {
    socket: PathBuf,
    away: PathBuf,
    /// How many more creates find no socket.
    refusals: AtomicUsize,
    /// How many creates found no socket.
    refused: AtomicUsize,
}

impl Gate {
    fn start(dir: &Path, upstream: &Path, refusals: usize) -> Arc<Gate> {
        let gate = Arc::new(Gate {
            socket: dir.join("gate.socket"),
            away: dir.join("gate.socket.away"),
            refusals: AtomicUsize::new(refusals),
            refused: AtomicUsize::new(0),
        });
        let listener = UnixListener::bind(&gate.socket).unwrap();
        let upstream = upstream.to_owned();
        let shared = gate.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (gate, upstream) = (shared.clone(), upstream.clone());
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let (gate, upstream) = (gate.clone(), upstream.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map_err(|_| support::Dropped)?;
                        let (reply, reply_body) =
                            support::forward(&upstream, &parts, body.to_bytes()).await?;
                        let mut reply = hyper::Response::from_parts(reply, Full::new(reply_body));
                        // One request a connection, so that the create must connect anew.
                        reply
                            .headers_mut()
                            .insert("connection", "close".parse().unwrap());
                        if parts.method == "GET"
                            && parts.uri.path() == "/1.0/operations"
                            && gate.refusals.load(Ordering::SeqCst) > 0
                        {
                            gate.refusals.fetch_sub(1, Ordering::SeqCst);
                            gate.refused.fetch_add(1, Ordering::SeqCst);
                            std::fs::rename(&gate.socket, &gate.away).unwrap();
                        }
                        Ok::<_, support::Dropped>(reply)
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        gate
    }
}

/// The log writer: at the client's "not sent" line the gate's socket comes back.
#[derive(Clone)]
struct Reopen(Arc<Gate>);

impl Write for Reopen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if String::from_utf8_lossy(buf).contains("token create was not sent") {
            std::fs::rename(&self.0.away, &self.0.socket).unwrap();
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs_to(gate: &Arc<Gate>) -> tracing::subscriber::DefaultGuard {
    let writer = Reopen(gate.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_default(subscriber)
}

fn policy(deadline: Duration, create_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        deadline,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(10),
        request_timeout: Duration::from_secs(5),
        create_attempts,
    }
}

async fn setup(
    refusals: usize,
    retry: RetryPolicy,
) -> (FakeLxd, tempfile::TempDir, Arc<Gate>, Client) {
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start(dir.path(), fake.unix_socket(), refusals);
    let client = Client::new(Target::Unix(gate.socket.clone()), retry);
    (fake, dir, gate, client)
}

#[tokio::test]
async fn a_create_that_never_connected_is_sent_again() {
    let (fake, _dir, gate, client) = setup(1, policy(Duration::from_secs(30), 3)).await;
    let _logs = logs_to(&gate);
    let token = client.create_token("again", &[]).await.unwrap();
    assert_eq!(gate.refused.load(Ordering::SeqCst), 1);
    let pending = fake.control().pending_tokens();
    assert_eq!(pending.len(), 1, "one token, made by the second attempt");
    assert_eq!(pending[0].0, token.operation_id);
}

#[tokio::test]
async fn a_create_that_never_connects_stops_after_its_attempts() {
    let (fake, _dir, gate, client) = setup(usize::MAX, policy(Duration::from_secs(30), 3)).await;
    let _logs = logs_to(&gate);
    let err = client.create_token("never", &[]).await.unwrap_err();
    assert!(
        matches!(&err, Error::RetriesExhausted { attempts: 3, last } if last.is_unsent()),
        "{err:?}"
    );
    assert_eq!(gate.refused.load(Ordering::SeqCst), 3);
    assert!(fake.control().pending_tokens().is_empty());
}

#[tokio::test]
async fn a_create_that_never_connects_stops_at_its_deadline() {
    let deadline = Duration::from_millis(200);
    let (fake, _dir, gate, client) = setup(usize::MAX, policy(deadline, 1000)).await;
    let _logs = logs_to(&gate);
    let started = Instant::now();
    let err = client.create_token("late", &[]).await.unwrap_err();
    let Error::RetriesExhausted { attempts, last } = &err else {
        panic!("{err:?}");
    };
    assert!(last.is_unsent(), "{err:?}");
    // Each attempt waits at least 2.5 ms, so the deadline ends it long before its 1000.
    assert!((2..200).contains(attempts), "{attempts} attempts");
    assert_eq!(gate.refused.load(Ordering::SeqCst), *attempts as usize);
    assert!(started.elapsed() <= deadline + Duration::from_secs(5));
    assert!(fake.control().pending_tokens().is_empty());
}
