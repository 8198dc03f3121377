//! A fault-injecting proxy in front of fake-lxd's unix socket, for tests that must know what
//! each request did on the server. It forwards one request per connection, applies the next
//! queued fault to the creates (`POST /1.0/certificates`) that pass through it, and records
//! every exchange: whether it reached the server, and which token a create made there, even
//! when the answer is then withheld from the client. Faults live here rather than in the fake
//! so that a client talking to the fake directly (the "outside client" of the tests) is never
//! hit by them, and so that a 5xx can come after the server acted, as from a proxy.

#![allow(dead_code)]

pub mod cases;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub enum Fault {
    /// Drop the connection without forwarding.
    DropBefore,
    /// Forward, then drop the connection without answering.
    DropAfter,
    /// Answer 503 without forwarding.
    UnavailableBefore,
    /// Forward, then answer 502 with an HTML page, as a proxy that lost the answer.
    BadGatewayAfter,
    /// Answer 502 at once, and forward this much later: a proxy that gave up on a slow server.
    BadGatewayThenForward(Duration),
    /// Wait this long, then forward and answer.
    Slow(Duration),
    /// Forward, say so on `reached`, wait for `release`, then drop the connection.
    HoldAfter {
        reached: Arc<Notify>,
        release: Arc<Notify>,
    },
}

/// One request that went through the proxy.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    /// The `name` of a create's body.
    pub name: Option<String>,
    pub fault: Option<String>,
    /// `true` when the request reached the server.
    pub forwarded: bool,
    /// The operation a create made on the server, read from the server's answer.
    pub made: Option<String>,
}

struct Inner {
    upstream: PathBuf,
    faults: Mutex<VecDeque<Fault>>,
    log: Mutex<Vec<Exchange>>,
    /// Requests being handled (a client hanging up does not stop them), and a signal when
    /// there are none left.
    inflight: AtomicUsize,
    idle: Notify,
}

struct InFlight(Arc<Inner>);

impl InFlight {
    fn new(inner: &Arc<Inner>) -> InFlight {
        inner.inflight.fetch_add(1, Ordering::SeqCst);
        InFlight(inner.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

pub struct Proxy {
    socket: PathBuf,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dropped by the test proxy")
    }
}

impl std::error::Error for Dropped {}

impl Proxy {
    pub fn start(upstream: &Path) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("proxy.socket");
        let listener = UnixListener::bind(&socket).unwrap();
        let inner = Arc::new(Inner {
            upstream: upstream.to_owned(),
            faults: Mutex::new(VecDeque::new()),
            log: Mutex::new(Vec::new()),
            inflight: AtomicUsize::new(0),
            idle: Notify::new(),
        });
        let shared = inner.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inner = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let inflight = InFlight::new(&inner);
                        let work = tokio::spawn(handle(inner.clone(), req, inflight));
                        async move { work.await.unwrap_or(Err(Dropped)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Proxy {
            socket,
            inner,
            task,
            _dir: dir,
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Queues a fault for the next create that passes.
    pub fn fault(&self, fault: Fault) {
        self.inner.faults.lock().unwrap().push_back(fault);
    }

    pub fn log(&self) -> Vec<Exchange> {
        self.inner.log.lock().unwrap().clone()
    }

    /// Waits until no request is being handled.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.inner.inflight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    pub fn reset(&self) {
        self.inner.faults.lock().unwrap().clear();
        self.inner.log.lock().unwrap().clear();
    }
}

pub async fn forward(
    upstream: &Path,
    parts: &http::request::Parts,
    body: Bytes,
) -> Result<(http::response::Parts, Bytes), Dropped> {
    let stream = UnixStream::connect(upstream).await.map_err(|_| Dropped)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Dropped)?;
    tokio::spawn(conn);
    let mut builder = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.clone());
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let response = sender
        .send_request(builder.body(Full::new(body)).map_err(|_| Dropped)?)
        .await
        .map_err(|_| Dropped)?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    Ok((parts, body))
}

async fn handle(
    inner: Arc<Inner>,
    req: hyper::Request<Incoming>,
    inflight: InFlight,
) -> Result<hyper::Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let is_create = parts.method == "POST" && parts.uri.path() == "/1.0/certificates";
    let fault = if is_create {
        inner.faults.lock().unwrap().pop_front()
    } else {
        None
    };
    let name = is_create
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .flatten()
        .and_then(|v| v["name"].as_str().map(str::to_owned));
    let mut exchange = Exchange {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        name,
        fault: fault.as_ref().map(|f| format!("{f:?}")),
        forwarded: false,
        made: None,
    };
    let record = |exchange: Exchange| inner.log.lock().unwrap().push(exchange);
    match &fault {
        Some(Fault::DropBefore) => {
            record(exchange);
            return Err(Dropped);
        }
        Some(Fault::UnavailableBefore) => {
            record(exchange);
            return Ok(status(
                503,
                "application/json",
                r#"{"type":"error","status":"","status_code":0,"operation":"","error_code":503,"error":"Service Unavailable","metadata":null}"#,
            ));
        }
        Some(Fault::BadGatewayThenForward(delay)) => {
            let delay = *delay;
            let inner = inner.clone();
            tokio::spawn(async move {
                let _inflight = inflight;
                tokio::time::sleep(delay).await;
                if let Ok((_, reply_body)) = forward(&inner.upstream, &parts, body).await {
                    exchange.forwarded = true;
                    exchange.made = made(&reply_body);
                }
                inner.log.lock().unwrap().push(exchange);
            });
            return Ok(bad_gateway());
        }
        Some(Fault::Slow(delay)) => tokio::time::sleep(*delay).await,
        _ => {}
    }
    let (reply, reply_body) = forward(&inner.upstream, &parts, body).await?;
    exchange.forwarded = true;
    if is_create {
        exchange.made = made(&reply_body);
    }
    record(exchange);
    match fault {
        Some(Fault::DropAfter) => Err(Dropped),
        Some(Fault::BadGatewayAfter) => Ok(bad_gateway()),
        Some(Fault::HoldAfter { reached, release }) => {
            reached.notify_one();
            release.notified().await;
            Err(Dropped)
        }
        _ => Ok(hyper::Response::from_parts(reply, Full::new(reply_body))),
    }
}

/// The operation a create's answer names.
fn made(reply_body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(reply_body)
        .ok()
        .and_then(|v| v["metadata"]["id"].as_str().map(str::to_owned))
}

fn bad_gateway() -> hyper::Response<Full<Bytes>> {
    status(
        502,
        "text/html",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
    )
}

fn status(code: u16, content_type: &str, body: &str) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(code)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}
