//! The serve loop: accept connections, count each API request as in flight until it is done,
//! apply injected faults, record every request, and stop gracefully.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::clock::{Clock, ClockMode};
use crate::faults::{self, Action, ResetWhen, Rule};

/// One request as the fake saw it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The listener it came through (`"unix"`, `"https"`), for fakes with more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<&'static str>,
    /// `None` when the connection was dropped by a fault.
    pub status: Option<u16>,
}

/// What every fake has besides its own state: the clock, the injected faults, the request log
/// and the count of API requests in flight.
#[derive(Debug)]
pub struct Kit {
    pub clock: Clock,
    faults: Mutex<Vec<Rule>>,
    log: Mutex<Vec<RequestRecord>>,
    inflight: AtomicUsize,
    idle: tokio::sync::Notify,
    /// Connections served since the start (after the TLS handshake on HTTPS).
    connections: AtomicUsize,
}

impl Kit {
    pub fn new(clock: ClockMode) -> Kit {
        // rustls in this workspace has one crypto provider, aws-lc; made the process default,
        // it also serves the HTTPS clients (reqwest's among them) that run beside a fake.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        Kit {
            clock: Clock::new(clock),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            inflight: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            connections: AtomicUsize::new(0),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn add_fault(&self, rule: Rule) {
        self.faults().push(rule);
    }

    pub fn clear_faults(&self) {
        self.faults().clear();
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.log().clone()
    }

    pub fn clear_requests(&self) {
        self.log().clear();
    }

    /// How many connections the fake has served: clients that keep theirs open between
    /// requests make fewer than they send requests.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// How many API requests are being handled (a delayed one included).
    pub fn in_flight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }

    /// Waits until no API request is being handled.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }

    fn faults(&self) -> MutexGuard<'_, Vec<Rule>> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self) -> MutexGuard<'_, Vec<RequestRecord>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a fake gives the serve loop.
pub trait Api: Send + Sync + 'static {
    fn kit(&self) -> &Kit;

    /// The reply to an injected status fault, in the fake's own error format; `body` is the
    /// rule's body, if any. The rule's headers are added to it afterwards.
    fn fault_response(&self, status: u16, body: Option<serde_json::Value>) -> Response;
}

/// The error a service returns to make hyper drop the connection without answering.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

/// What happens to a request whose client hangs up before the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnHangup {
    /// The request runs to its end in its own task, as a real daemon finishes what it started.
    Finish,
    /// The request is dropped with its connection.
    Cancel,
}

/// One API's router with the fake behind it, ready to serve connections.
pub struct Service<A> {
    app: Arc<A>,
    router: Router,
    transport: Option<&'static str>,
    on_hangup: OnHangup,
}

impl<A> Clone for Service<A> {
    fn clone(&self) -> Self {
        Service {
            app: self.app.clone(),
            router: self.router.clone(),
            transport: self.transport,
            on_hangup: self.on_hangup,
        }
    }
}

impl<A: Api> Service<A> {
    /// `transport` names the listener in the request log when the fake has several.
    pub fn new(
        app: Arc<A>,
        router: Router,
        transport: Option<&'static str>,
        on_hangup: OnHangup,
    ) -> Service<A> {
        Service {
            app,
            router,
            transport,
            on_hangup,
        }
    }

    /// Serves one connection (HTTP/1 with upgrades, or HTTP/2); `extension` goes into every
    /// request's extensions (who the caller is, for instance).
    pub async fn serve_connection<I, X>(self, io: I, extension: X)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        X: Clone + Send + Sync + 'static,
    {
        self.app.kit().connections.fetch_add(1, Ordering::SeqCst);
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(extension.clone());
            self.clone().handle(req)
        });
        let _ = auto::Builder::new(TokioExecutor::new())
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .await;
    }

    async fn handle(self, req: hyper::Request<Incoming>) -> Result<Response, DropConnection> {
        let inflight = InFlight::new(&self.app);
        match self.on_hangup {
            OnHangup::Finish => tokio::spawn(self.handle_counted(req, inflight))
                .await
                .unwrap_or(Err(DropConnection)),
            OnHangup::Cancel => self.handle_counted(req, inflight).await,
        }
    }

    async fn handle_counted(
        self,
        req: hyper::Request<Incoming>,
        _inflight: InFlight<A>,
    ) -> Result<Response, DropConnection> {
        let kit = self.app.kit();
        let method = req.method().to_string();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().map(str::to_owned);
        let record = |status: Option<u16>| {
            kit.log().push(RequestRecord {
                method: method.clone(),
                path: path.clone(),
                query: query.clone(),
                transport: self.transport,
                status,
            });
        };
        let fault = faults::take(&mut kit.faults(), &method, &path);
        let mut reset_after = false;
        match fault {
            Some(Action::Status {
                status,
                body,
                headers,
            }) => {
                record(Some(status));
                let mut response = self.app.fault_response(status, body);
                for (name, value) in headers.unwrap_or_default() {
                    if let (Ok(name), Ok(value)) = (
                        axum::http::HeaderName::from_bytes(name.as_bytes()),
                        axum::http::HeaderValue::from_str(&value),
                    ) {
                        response.headers_mut().insert(name, value);
                    }
                }
                return Ok(response);
            }
            Some(Action::Delay { delay_ms }) => {
                // A slow reply, to exercise client timeouts; the state is not waited on.
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            }
            Some(Action::Reset {
                reset: ResetWhen::Before,
            }) => {
                record(None);
                return Err(DropConnection);
            }
            Some(Action::Reset {
                reset: ResetWhen::After,
            }) => reset_after = true,
            None => {}
        }
        let response = self
            .router
            .clone()
            .oneshot(req.map(Body::new))
            .await
            .unwrap_or_else(|never| match never {});
        if reset_after {
            record(None);
            return Err(DropConnection);
        }
        record(Some(response.status().as_u16()));
        Ok(response)
    }
}

/// Counts a request as in flight until dropped, even when hyper drops it early.
struct InFlight<A: Api>(Arc<A>);

impl<A: Api> InFlight<A> {
    fn new(app: &Arc<A>) -> InFlight<A> {
        app.kit().inflight.fetch_add(1, Ordering::SeqCst);
        InFlight(app.clone())
    }
}

impl<A: Api> Drop for InFlight<A> {
    fn drop(&mut self) {
        let kit = self.0.kit();
        if kit.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            kit.idle.notify_waiters();
        }
    }
}

/// Accepts connections on a unix socket forever; every request carries `extension`.
pub async fn accept_unix<A: Api, X>(listener: UnixListener, service: Service<A>, extension: X)
where
    X: Clone + Send + Sync + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(service.clone().serve_connection(stream, extension.clone()));
    }
}

/// Accepts TCP connections forever, behind TLS when `tls` is set. Every request carries the
/// extension `extension` makes of the client certificate (its DER), if the client sent one.
pub async fn accept_tcp<A: Api, X, F>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    service: Service<A>,
    extension: F,
) where
    X: Clone + Send + Sync + 'static,
    F: Fn(Option<&[u8]>) -> X + Clone + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Go's net package turns Nagle's algorithm off on every TCP connection, so LXD's and
        // OCI's servers send each write at once. With it on, a reply or a session ticket
        // written in two parts waits for the client's delayed ACK (40 ms on Linux) on a
        // connection the client keeps open.
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let tls = tls.clone();
        let extension = extension.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let peer = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|der| extension(Some(der.as_ref())))
                        .unwrap_or_else(|| extension(None));
                    service.serve_connection(stream, peer).await;
                }
                None => service.serve_connection(stream, extension(None)).await,
            }
        });
    }
}

/// A running fake's listener tasks; dropping it stops them at once.
#[derive(Debug, Default)]
pub struct Tasks {
    tasks: Vec<JoinHandle<()>>,
}

impl Tasks {
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(tokio::spawn(future));
    }

    /// Stops accepting connections, then waits until the requests in flight are done.
    pub async fn shutdown(self, kit: &Kit) {
        drop(self);
        kit.wait_idle().await;
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DropConnection;

    #[test]
    fn a_dropped_connection_says_why() {
        assert_eq!(
            DropConnection.to_string(),
            "connection dropped by an injected fault"
        );
    }
}
