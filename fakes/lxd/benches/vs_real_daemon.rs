//! The fake beside the real LXD 5.0.2 daemon, over each one's unix socket, in one run:
//! token create+delete pairs (`POST /1.0/certificates` with `token: true`, then `DELETE` of the
//! operation) and the listing `lxc config trust list-tokens` makes
//! (`GET /1.0/operations?recursion=1`) with 1000 pending tokens.
//!
//! The real daemon needs `XTASK_LXD` (set by `cargo xtask bench`) and root. In test mode
//! (`cargo test --benches`, or criterion's `--test`) only the fake runs, once: the real daemon
//! is left to the `real-lxd` tests, which must not meet a second daemon.
//!
//! Both sides get the same client: one keep-alive HTTP/1.1 connection made with hyper, on a
//! single-threaded tokio runtime. The fake runs in-process on that same thread, as it does in
//! the tests, so its figures are its CPU cost per request with the client's added; the real
//! daemon has cores of its own.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fake_lxd::{ClockMode, Config, FakeLxd};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::runtime::Runtime;

/// Pending tokens in the listing benchmark.
const PENDING: usize = 1000;

/// One keep-alive HTTP/1.1 connection to a unix socket.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(socket: &Path) -> Conn {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", socket.display()));
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        Conn { sender }
    }

    /// Sends one request and returns the status and the body.
    async fn send(&mut self, method: &str, path: &str, body: Option<&str>) -> (u16, Bytes) {
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "lxd")
            .header("user-agent", "fake-lxd-bench")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
            .expect("request");
        self.sender.ready().await.expect("connection ready");
        let response = self
            .sender
            .send_request(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("reply body")
            .to_bytes();
        (status, body)
    }

    /// Creates a token and returns its operation id.
    async fn create(&mut self, name: &str) -> String {
        let body = format!(r#"{{"name":"{name}","type":"client","token":true}}"#);
        let (status, reply) = self.send("POST", "/1.0/certificates", Some(&body)).await;
        assert_eq!(status, 202, "create: {}", String::from_utf8_lossy(&reply));
        let v: serde_json::Value = serde_json::from_slice(&reply).expect("JSON reply");
        v["metadata"]["id"]
            .as_str()
            .expect("an operation id")
            .to_owned()
    }

    async fn revoke(&mut self, id: &str) {
        let (status, reply) = self
            .send("DELETE", &format!("/1.0/operations/{id}"), None)
            .await;
        assert_eq!(status, 200, "delete: {}", String::from_utf8_lossy(&reply));
    }

    /// `GET /1.0/operations?recursion=1`, the listing `lxc config trust list-tokens` makes.
    async fn list(&mut self) -> Bytes {
        let (status, reply) = self.send("GET", "/1.0/operations?recursion=1", None).await;
        assert_eq!(status, 200, "list: {}", String::from_utf8_lossy(&reply));
        reply
    }
}

/// How many running token operations a listing shows.
fn running_tokens(reply: &[u8]) -> usize {
    let v: serde_json::Value = serde_json::from_slice(reply).expect("JSON reply");
    v["metadata"]["running"].as_array().map_or(0, |ops| {
        ops.iter().filter(|o| o["class"] == "token").count()
    })
}

/// A daemon under test: the fake in-process, or the real one as a child process.
enum Daemon {
    Fake(FakeLxd),
    Real(common::RealLxd),
}

impl Daemon {
    fn socket(&self) -> PathBuf {
        match self {
            Daemon::Fake(fake) => fake.unix_socket().to_owned(),
            Daemon::Real(real) => real.socket(),
        }
    }
}

/// One side of the comparison, started on first use and kept for both benchmarks.
struct Side {
    name: &'static str,
    start: fn(&Runtime) -> Daemon,
    daemon: Option<Daemon>,
    /// Token operations left pending for the listing benchmark.
    pending: Vec<String>,
}

impl Side {
    fn socket(&mut self, rt: &Runtime) -> PathBuf {
        let start = self.start;
        self.daemon.get_or_insert_with(|| start(rt)).socket()
    }
}

fn start_fake(rt: &Runtime) -> Daemon {
    // The system clock, so that finished operations are pruned after 5 s as the daemon does.
    let config = Config {
        clock: ClockMode::System,
        ..Config::for_testing()
    };
    Daemon::Fake(rt.block_on(FakeLxd::start(config)).expect("start the fake"))
}

fn start_real(rt: &Runtime) -> Daemon {
    let lxd = std::env::var_os("XTASK_LXD").expect("XTASK_LXD");
    let real = common::RealLxd::start(Path::new(&lxd));
    // Tokens need `core.https_address`; the daemon listens there once it is set.
    let body = format!(r#"{{"config":{{"core.https_address":"{}"}}}}"#, real.https);
    let reply = rt.block_on(common::unix_request(
        &real.socket(),
        "PATCH",
        "/1.0",
        Some(&body),
    ));
    assert_eq!(reply.status, 200, "set core.https_address: {}", reply.body);
    Daemon::Real(real)
}

/// Criterion's own rule: without `--bench` (as `cargo test --benches` runs it), or with
/// `--test`, each benchmark runs once as a test.
fn test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test")
}

fn sides() -> Vec<Side> {
    let mut sides = vec![Side {
        name: "fake",
        start: start_fake,
        daemon: None,
        pending: Vec::new(),
    }];
    if test_mode() {
        eprintln!("skipped: the real LXD daemon side in test mode (the real-lxd tests own it)");
    } else if common::tool("XTASK_LXD").is_some() {
        sides.push(Side {
            name: "real_daemon",
            start: start_real,
            daemon: None,
            pending: Vec::new(),
        });
    }
    sides
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut sides = sides();

    // The listing first, while the daemons hold nothing but the pending tokens it makes.
    let mut group = c.benchmark_group("lxd_list_1000_pending");
    group.throughput(Throughput::Elements(1));
    for side in &mut sides {
        group.bench_function(BenchmarkId::from_parameter(side.name), |b| {
            let socket = side.socket(&rt);
            // Made once, outside `iter_custom`: criterion's warm-up counts that call's wall time.
            rt.block_on(async {
                let mut conn = Conn::open(&socket).await;
                while side.pending.len() < PENDING {
                    let name = format!("bench-{}", side.pending.len());
                    side.pending.push(conn.create(&name).await);
                }
            });
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut conn = Conn::open(&socket).await;
                    // The reply is decoded once, outside the measurement: the client's JSON
                    // parsing would weigh the same on both sides and hide the servers' difference.
                    let first = conn.list().await;
                    let seen = running_tokens(&first);
                    assert!(seen >= PENDING, "the listing shows {seen} tokens");
                    let started = Instant::now();
                    for _ in 0..iters {
                        let reply = conn.list().await;
                        assert!(reply.len() >= first.len() / 2, "a short listing");
                    }
                    started.elapsed()
                })
            });
        });
    }
    group.finish();
    for side in &mut sides {
        if side.pending.is_empty() {
            continue;
        }
        let socket = side.socket(&rt);
        rt.block_on(async {
            let mut conn = Conn::open(&socket).await;
            for id in side.pending.drain(..) {
                conn.revoke(&id).await;
            }
        });
    }

    let mut group = c.benchmark_group("lxd_token_create_delete");
    group.throughput(Throughput::Elements(1));
    for side in &mut sides {
        group.bench_function(BenchmarkId::from_parameter(side.name), |b| {
            let socket = side.socket(&rt);
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut conn = Conn::open(&socket).await;
                    let started = Instant::now();
                    for _ in 0..iters {
                        let id = conn.create("bench-pair").await;
                        conn.revoke(&id).await;
                    }
                    started.elapsed()
                })
            });
        });
    }
    group.finish();
    // Dropping the sides stops the fake and kills the real daemon.
    drop(sides);
}

fn config() -> Criterion {
    Criterion::default()
        .without_plots()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = group;
    config = config();
    targets = benches
}
criterion_main!(group);
