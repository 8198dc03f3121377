//! HTTP/1.1 exchanges with LXD over its unix socket or over HTTPS with a client certificate,
//! on connections each client keeps open between its requests.
//!
//! Server identity over HTTPS is either a pinned certificate fingerprint (what `lxc` stores in
//! `servercerts/`), a CA, or — only when asked for explicitly — any certificate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::UnixStream;

use crate::error::Error;
use crate::secret::{ExposeSecret, SecretString};

/// The largest reply body read.
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// How the server's certificate is checked.
#[derive(Debug, Clone)]
pub enum ServerTrust {
    /// The SHA-256 fingerprint (hex) of the expected certificate.
    Pinned(String),
    /// Certificates signed by these CAs (PEM), checked against the host name.
    Ca(String),
    /// Any certificate. Only on explicit request (`accept_remote_certificate`).
    AcceptAny,
}

/// A client certificate and its key (PEM).
#[derive(Clone)]
pub struct ClientIdentity {
    pub cert_pem: String,
    pub key_pem: SecretString,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("fingerprint", &fingerprint_pem(&self.cert_pem))
            .finish_non_exhaustive()
    }
}

pub fn fingerprint_der(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

pub fn fingerprint_pem(pem: &str) -> Option<String> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()?
        .ok()
        .map(|c| fingerprint_der(&c))
}

#[derive(Debug)]
struct Pinned {
    fingerprint: Option<String>,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Arc<std::sync::Mutex<Option<String>>>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual = fingerprint_der(end_entity);
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(actual.clone());
        match &self.fingerprint {
            Some(expected) if !expected.eq_ignore_ascii_case(&actual) => {
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Where requests go.
#[derive(Clone)]
pub enum Target {
    Unix(PathBuf),
    Https {
        address: String,
        tls: Arc<rustls::ClientConfig>,
        pinned: Option<String>,
        seen: Arc<std::sync::Mutex<Option<String>>>,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(path) => write!(f, "unix:{}", path.display()),
            Target::Https { address, .. } => write!(f, "https://{address}"),
        }
    }
}

impl Target {
    /// The SHA-256 fingerprint of the server certificate seen on the last HTTPS connection.
    pub fn seen_fingerprint(&self) -> Option<String> {
        match self {
            Target::Https { seen, .. } => seen.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            Target::Unix(_) => None,
        }
    }

    pub fn https(
        address: &str,
        trust: &ServerTrust,
        identity: Option<&ClientIdentity>,
    ) -> Result<Target, Error> {
        // aws-lc throughout: its P-384 (what LXD, Incus and lxc's client keys use) reads a key
        // and signs in about a fifth of ring's time and verifies in a third. Its random
        // generator is built without CPU jitter entropy (`AWS_LC_SYS_NO_JITTER_ENTROPY` in
        // `.cargo/config.toml`), so its first draw reads the operating system's generator and
        // no longer costs the first handshake of each provider process about 30 ms.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(e.to_string()))?;
        let seen = Arc::new(std::sync::Mutex::new(None));
        let (builder, pinned) = match trust {
            ServerTrust::Ca(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_pemfile::certs(&mut pem.as_bytes()).flatten() {
                    roots.add(cert).map_err(|e| {
                        Error::Config(format!("the CA certificate is not usable: {e}"))
                    })?;
                }
                (builder.with_root_certificates(roots), None)
            }
            ServerTrust::Pinned(fp) => {
                let verifier = Pinned {
                    fingerprint: Some(fp.to_ascii_lowercase()),
                    algorithms: provider.signature_verification_algorithms,
                    seen: seen.clone(),
                };
                (
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(verifier)),
                    Some(fp.to_ascii_lowercase()),
                )
            }
            ServerTrust::AcceptAny => {
                let verifier = Pinned {
                    fingerprint: None,
                    algorithms: provider.signature_verification_algorithms,
                    seen: seen.clone(),
                };
                (
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(verifier)),
                    None,
                )
            }
        };
        let mut config = match identity {
            Some(id) => {
                let certs: Vec<CertificateDer<'static>> =
                    rustls_pemfile::certs(&mut id.cert_pem.as_bytes())
                        .flatten()
                        .collect();
                let key = rustls_pemfile::private_key(&mut id.key_pem.expose_secret().as_bytes())
                    .ok()
                    .flatten()
                    .ok_or_else(|| {
                        Error::Config("the client key is not a PEM private key".into())
                    })?;
                builder.with_client_auth_cert(certs, key).map_err(|e| {
                    Error::Config(format!("the client certificate is not usable: {e}"))
                })?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let address = address
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_owned();
        let address = if address
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            address
        } else {
            format!("{address}:8443")
        };
        Ok(Target::Https {
            address,
            tls: Arc::new(config),
            pinned,
            seen,
        })
    }

    fn name(&self) -> String {
        format!("{self:?}")
    }
}

pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    /// The server's clock when it answered (the `Date` header), as sent.
    pub date: Option<String>,
    pub body: Bytes,
}

/// The connections of one client, kept open between its requests (HTTP/1.1 keep-alive), so
/// that a run of requests pays one TCP connection and one TLS handshake, not one per request.
/// A request whose pooled connection the server closed before it was written is sent again on
/// a new connection (hyper-util's pool does that, and only that: a request that reached the
/// server is never sent twice by the pool).
#[derive(Clone)]
pub enum Pool {
    Unix(LegacyClient<UnixConnector, Full<Bytes>>),
    Https(LegacyClient<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

/// How long an unused connection stays open. LXD's own HTTP server keeps idle connections
/// longer; a provider process rarely waits this long between two requests.
const IDLE: Duration = Duration::from_secs(30);

impl Pool {
    pub fn new(target: &Target) -> Pool {
        let mut builder = LegacyClient::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE);
        match target {
            Target::Unix(path) => Pool::Unix(builder.build(UnixConnector {
                path: Arc::new(path.clone()),
            })),
            Target::Https { tls, .. } => {
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_nodelay(true);
                // The builder sets ALPN itself (HTTP/1.1 only) and refuses a config with it.
                let mut config = (**tls).clone();
                config.alpn_protocols.clear();
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_only()
                    .enable_http1()
                    .wrap_connector(http);
                Pool::Https(builder.build(https))
            }
        }
    }
}

/// Connects to LXD's unix socket, whatever the request's URI names.
#[derive(Clone)]
pub struct UnixConnector {
    path: Arc<PathBuf>,
}

impl tower_service::Service<hyper::Uri> for UnixConnector {
    type Response = TokioIo<UnixStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let path = self.path.clone();
        Box::pin(async move { UnixStream::connect(path.as_path()).await.map(TokioIo::new) })
    }
}

/// The error and its causes, outermost first: hyper-util's own message ("client error
/// (Connect)") says nothing without them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

async fn exchange(
    pool: &Pool,
    req: hyper::Request<Full<Bytes>>,
    target: &Target,
    name: &str,
) -> Result<Reply, Error> {
    let sent = match pool {
        Pool::Unix(client) => client.request(req).await,
        Pool::Https(client) => client.request(req).await,
    };
    let resp = match sent {
        Ok(resp) => resp,
        // No connection could be made: the request never left.
        Err(e) if e.is_connect() => {
            if let Target::Https {
                pinned: Some(expected),
                seen,
                ..
            } = target
                && let Some(actual) = seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
                && &actual != expected
            {
                return Err(Error::ServerCertificate {
                    expected: expected.clone(),
                    actual,
                });
            }
            return Err(Error::Connect {
                target: name.to_owned(),
                message: chain(&e),
            });
        }
        Err(e) => {
            return Err(Error::Interrupted {
                target: name.to_owned(),
                message: chain(&e),
            });
        }
    };
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(|l| l.chars().take(200).filter(|c| !c.is_control()).collect());
    let date = resp
        .headers()
        .get("date")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The LXD API never redirects (a create answers 202 with a `Location`, which is no
    // redirect); following one could send a create, or a credential, somewhere else.
    if resp.status().is_redirection() {
        return Err(Error::Redirect {
            target: name.to_owned(),
            status,
            location,
        });
    }
    if let Some(length) = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > MAX_BODY as u64
    {
        return Err(Error::TooLarge(length));
    }
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Error::TooLarge(MAX_BODY as u64 + 1)
            } else {
                // The server answered already: whatever the request did is done.
                Error::Interrupted {
                    target: name.to_owned(),
                    message: e.to_string(),
                }
            }
        })?;
    // hyper-util puts an HTTP/1 connection back into the pool from a task of its own, once
    // the connection is ready for its next request, which is after the body above ended. A
    // request sent before that task ran would find the pool empty and open a second
    // connection (over HTTPS, a TLS handshake on both sides) that nothing then uses. One
    // yield lets it run first on a one-thread runtime, the provider's.
    tokio::task::yield_now().await;
    Ok(Reply {
        status,
        location,
        date,
        body: body.to_bytes(),
    })
}

/// Sends one request on one of `pool`'s connections to `target`, within `timeout`.
pub async fn send(
    target: &Target,
    pool: &Pool,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Reply, Error> {
    let name = target.name();
    let (host, uri) = match target {
        Target::Unix(_) => ("lxd".to_owned(), format!("http://lxd{path}")),
        Target::Https { address, .. } => (address.clone(), format!("https://{address}{path}")),
    };
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", host)
        .header("user-agent", "terraform-provider-lxd-rs");
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let req = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| Error::Config(e.to_string()))?;
    tokio::time::timeout(timeout, exchange(pool, req, target, &name))
        .await
        .map_err(|_| Error::Timeout {
            target: name.clone(),
        })?
}

/// Reads a PEM private key's first block, for checks.
pub fn parse_key(pem: &SecretString) -> Option<PrivateKeyDer<'static>> {
    rustls_pemfile::private_key(&mut pem.expose_secret().as_bytes())
        .ok()
        .flatten()
}
