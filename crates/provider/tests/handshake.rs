//! The go-plugin side of the binaries: the magic cookie, the handshake line, AutoMTLS that
//! accepts exactly the client certificate Terraform passed (a P-521 CA certificate, like
//! go-plugin's) and refuses any other, and a prompt exit on `GRPCController/Shutdown`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hyper_util::rt::TokioIo;
use provider::proto::plugin::grpc_controller_client::GrpcControllerClient;
use provider::proto::tfplugin6::provider_client::ProviderClient;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// A certificate like go-plugin's client certificate: self-signed P-521, a CA, used directly.
fn go_plugin_like_cert() -> (String, Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "HashiCorp");
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().to_vec(), key.serialize_der())
}

struct Plugin(Child);

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(client_cert_pem: &str) -> (Plugin, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_terraform-provider-oci"))
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_CLIENT_CERT", client_cert_pem)
        .env_remove("TF_PROVIDER_FORCE_PROTOCOL")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (
        Plugin(child),
        line.trim().split('|').map(str::to_owned).collect(),
    )
}

#[derive(Debug)]
struct PinServer(Vec<u8>);

impl ServerCertVerifier for PinServer {
    fn verify_server_cert(
        &self,
        cert: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if cert.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the handshake certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A gRPC channel over the plugin's unix socket, with TLS presenting `cert`/`key`.
async fn channel(
    socket: &str,
    server_der: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinServer(server_der)))
        .with_client_auth_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::try_from(key).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let socket = socket.to_owned();
    tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let connector = connector.clone();
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                let tls = connector
                    .connect(ServerName::try_from("localhost").unwrap(), stream)
                    .await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
}

#[tokio::test]
async fn the_pinned_client_certificate_is_accepted_and_another_refused() {
    let (pem, der, key) = go_plugin_like_cert();
    let (_plugin, fields) = start(&pem);
    assert_eq!(&fields[..3], ["1", "6", "unix"], "{fields:?}");
    assert_eq!(fields[4], "grpc");
    let server_der = STANDARD_NO_PAD.decode(&fields[5]).unwrap();

    let good = channel(&fields[3], server_der.clone(), der, key)
        .await
        .unwrap();
    let schema = ProviderClient::new(good)
        .get_provider_schema(provider::proto::tfplugin6::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        schema
            .resource_schemas
            .contains_key("oci_identity_auth_token")
    );
    assert!(
        schema
            .data_source_schemas
            .contains_key("oci_identity_auth_tokens")
    );
    assert!(
        !schema.resource_schemas.contains_key("lxd_trust_token"),
        "each binary serves only its own types"
    );

    let (_, other_der, other_key) = go_plugin_like_cert();
    let refused = match channel(&fields[3], server_der, other_der, other_key).await {
        Err(_) => true,
        Ok(bad) => ProviderClient::new(bad)
            .get_provider_schema(provider::proto::tfplugin6::get_provider_schema::Request {})
            .await
            .is_err(),
    };
    assert!(refused, "another client certificate must be refused");
}

#[tokio::test]
async fn shutdown_makes_the_plugin_exit() {
    let (pem, der, key) = go_plugin_like_cert();
    let (mut plugin, fields) = start(&pem);
    let server_der = STANDARD_NO_PAD.decode(&fields[5]).unwrap();
    let ch = channel(&fields[3], server_der, der, key).await.unwrap();
    GrpcControllerClient::new(ch)
        .shutdown(provider::proto::plugin::Empty {})
        .await
        .unwrap();
    let status = tokio::task::spawn_blocking(move || plugin.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn run_by_hand_it_says_it_is_a_plugin() {
    let out = Command::new(env!("CARGO_BIN_EXE_terraform-provider-lxd"))
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing on stdout");
    assert!(String::from_utf8_lossy(&out.stderr).contains("This binary is a plugin"));
}

#[test]
fn debug_mode_prints_the_reattach_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_terraform-provider-lxd"))
        .arg("--debug")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    while !text.contains("TF_REATTACH_PROVIDERS=") {
        if reader.read_line(&mut text).unwrap() == 0 {
            break;
        }
    }
    let _plugin = Plugin(child);
    let line = text
        .lines()
        .find(|l| l.contains("TF_REATTACH_PROVIDERS="))
        .unwrap();
    let json = line.split_once('=').unwrap().1.trim().trim_matches('\'');
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let entry = &value["registry.terraform.io/hashicorp/lxd"];
    assert_eq!(entry["Protocol"], "grpc");
    assert_eq!(entry["ProtocolVersion"], 6);
    assert_eq!(entry["Addr"]["Network"], "unix");
}
