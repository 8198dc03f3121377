//! One HTTP/1.1 exchange with LXD over its unix socket or over HTTPS with a client certificate.
//!
//! Server identity over HTTPS is either a pinned certificate fingerprint (what `lxc` stores in
//! `servercerts/`), a CA, or — only when asked for explicitly — any certificate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::{TcpStream, UnixStream};

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
        // ring, not aws-lc-rs: aws-lc seeds its random generator from CPU jitter entropy on
        // its first draw, about 30 ms of CPU in the first handshake of every provider process.
        // ring draws from the operating system and verifies what LXD signs with (P-256, P-384,
        // RSA, Ed25519).
        let provider = Arc::new(rustls::crypto::ring::default_provider());
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

async fn exchange<S>(io: S, req: hyper::Request<Full<Bytes>>, target: &str) -> Result<Reply, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let connect = |e: &dyn std::fmt::Display| Error::Connect {
        target: target.to_owned(),
        message: e.to_string(),
    };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| connect(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Error::Interrupted {
            target: target.to_owned(),
            message: e.to_string(),
        })?;
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
            target: target.to_owned(),
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
                    target: target.to_owned(),
                    message: e.to_string(),
                }
            }
        })?;
    Ok(Reply {
        status,
        location,
        date,
        body: body.to_bytes(),
    })
}

/// Sends one request, within `timeout`.
pub async fn send(
    target: &Target,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Reply, Error> {
    let name = target.name();
    let host = match target {
        Target::Unix(_) => "lxd".to_owned(),
        Target::Https { address, .. } => address.clone(),
    };
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", host)
        .header("user-agent", "terraform-provider-lxd-rs");
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let req = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| Error::Config(e.to_string()))?;
    let work = async {
        match target {
            Target::Unix(path) => {
                let stream = UnixStream::connect(path)
                    .await
                    .map_err(|e| Error::Connect {
                        target: name.clone(),
                        message: e.to_string(),
                    })?;
                exchange(stream, req, &name).await
            }
            Target::Https {
                address,
                tls,
                pinned,
                seen,
            } => {
                let tcp =
                    TcpStream::connect(address.as_str())
                        .await
                        .map_err(|e| Error::Connect {
                            target: name.clone(),
                            message: e.to_string(),
                        })?;
                let host = address
                    .rsplit_once(':')
                    .map_or(address.as_str(), |(h, _)| h)
                    .trim_matches(['[', ']'])
                    .to_owned();
                let server_name =
                    ServerName::try_from(host).map_err(|e| Error::Config(e.to_string()))?;
                let connector = tokio_rustls::TlsConnector::from(tls.clone());
                let stream = match connector.connect(server_name, tcp).await {
                    Ok(s) => s,
                    Err(e) => {
                        let actual = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        return Err(match (pinned, actual) {
                            (Some(expected), Some(actual)) if &actual != expected => {
                                Error::ServerCertificate {
                                    expected: expected.clone(),
                                    actual,
                                }
                            }
                            _ => Error::Connect {
                                target: name.clone(),
                                message: e.to_string(),
                            },
                        });
                    }
                };
                exchange(stream, req, &name).await
            }
        }
    };
    tokio::time::timeout(timeout, work)
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
