//! Starting a provider binary the way go-plugin does (or with `--debug`) and talking to it
//! over its unix socket, with or without TLS, as an independent client.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tonic::transport::{Channel, Endpoint, Uri};

pub const MAGIC_COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// A safety net for waits that normally finish at once.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The fields of the go-plugin handshake line.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub core: String,
    pub protocol: u32,
    pub network: String,
    pub address: PathBuf,
    pub rpc: String,
    /// The server certificate (DER) when AutoMTLS is on.
    pub cert: Option<Vec<u8>>,
}

impl Handshake {
    pub fn parse(line: &str) -> Handshake {
        let fields: Vec<&str> = line.trim_end_matches('\n').split('|').collect();
        assert_eq!(fields.len(), 6, "handshake line {line:?}");
        Handshake {
            core: fields[0].to_owned(),
            protocol: fields[1].parse().expect("protocol field"),
            network: fields[2].to_owned(),
            address: PathBuf::from(fields[3]),
            rpc: fields[4].to_owned(),
            cert: (!fields[5].is_empty()).then(|| {
                STANDARD_NO_PAD
                    .decode(fields[5])
                    .expect("the certificate field is unpadded standard base64")
            }),
        }
    }
}

/// A provider process started by the test; killed on drop if it is still running.
pub struct Plugin {
    pub child: Child,
    pub stdout: BufReader<ChildStdout>,
    /// Where its stderr goes (read it after the process exited).
    pub stderr_path: PathBuf,
    /// Holds the socket directory (`PLUGIN_UNIX_SOCKET_DIR`) and the stderr file.
    pub dir: tempfile::TempDir,
}

impl Plugin {
    /// Starts `binary` with exactly `env` (plus `PATH`) and `args`; the socket goes into a
    /// directory of the test's own.
    pub fn spawn(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Plugin {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("sockets");
        std::fs::create_dir(&sockets).unwrap();
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PLUGIN_UNIX_SOCKET_DIR", &sockets)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Plugin {
            child,
            stdout,
            stderr_path,
            dir,
        }
    }

    /// Started as Terraform starts it: the cookie, the offered versions, and `extra`.
    pub fn start(binary: &Path, versions: &str, extra: &[(&str, &str)]) -> Plugin {
        let mut env = vec![
            ("TF_PLUGIN_MAGIC_COOKIE", MAGIC_COOKIE),
            ("PLUGIN_PROTOCOL_VERSIONS", versions),
            ("PLUGIN_MIN_PORT", "10000"),
            ("PLUGIN_MAX_PORT", "25000"),
        ];
        env.extend_from_slice(extra);
        Plugin::spawn(binary, &[], &env)
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sockets")
    }

    /// The next line on stdout ("" at end of output).
    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        tokio::time::timeout(PATIENCE, self.stdout.read_line(&mut line))
            .await
            .expect("the provider printed nothing")
            .unwrap();
        line
    }

    pub async fn handshake(&mut self) -> Handshake {
        let line = self.line().await;
        Handshake::parse(&line)
    }

    /// Waits for the process to exit (the timeout is only a safety net) and returns its exit
    /// code and what it wrote on stderr.
    pub async fn exited(&mut self) -> (Option<i32>, String) {
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("the provider did not exit")
            .unwrap();
        let stderr = std::fs::read_to_string(&self.stderr_path).unwrap();
        (status.code(), stderr)
    }
}

/// A P-521 certificate like the one go-plugin's client makes (self-signed CA, `localhost`,
/// client and server auth), with its key.
pub struct Identity {
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

impl Identity {
    pub fn p521() -> Identity {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
            rcgen::KeyUsagePurpose::KeyAgreement,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "HashiCorp");
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
        let cert = params.self_signed(&key).unwrap();
        Identity {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

/// Trusts exactly the certificate of the handshake line, as go-plugin's client does (it
/// makes that certificate its only root), and checks the handshake signatures.
#[derive(Debug)]
struct PinnedServer {
    expected: Vec<u8>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        assert_eq!(server_name.to_str(), "localhost");
        if end_entity.as_ref() == self.expected.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A gRPC channel to the provider of `handshake`: plaintext when the handshake carries no
/// certificate, otherwise TLS presenting `identity` (or no client certificate at all).
pub async fn channel(
    handshake: &Handshake,
    identity: Option<&Identity>,
) -> Result<Channel, tonic::transport::Error> {
    let path = handshake.address.clone();
    let tls = handshake.cert.as_ref().map(|cert| {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedServer {
                expected: cert.clone(),
                provider,
            }));
        let mut config = match identity {
            Some(id) => builder
                .with_client_auth_cert(
                    vec![id.cert_der.clone()],
                    PrivateKeyDer::try_from(id.key_der.clone()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(config))
    });
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            let tls = tls.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(&path).await?;
                let io: Box<dyn Io> = match tls {
                    Some(tls) => {
                        let name = ServerName::try_from("localhost").unwrap();
                        Box::new(tls.connect(name, stream).await?)
                    }
                    None => Box::new(stream),
                };
                Ok::<_, std::io::Error>(TokioIo::new(io))
            }
        }))
        .await
}

pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// The health of service `plugin`, as go-plugin's `Ping` asks for it.
pub async fn health(channel: Channel) -> Result<i32, tonic::Status> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "plugin".to_owned(),
        })
        .await?;
    Ok(reply.into_inner().status)
}

/// Asks the provider to exit, as Terraform does when it is done with it.
pub async fn shutdown(channel: Channel) -> Result<(), tonic::Status> {
    use provider::proto::plugin::Empty;
    use provider::proto::plugin::grpc_controller_client::GrpcControllerClient;
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await?;
    Ok(())
}
