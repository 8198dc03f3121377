//! The fakes' self-signed TLS: a server certificate generated at start, optionally asking for
//! client certificates without requiring them (as LXD does: trust is decided later, by the
//! client certificate's fingerprint, so any well-signed client certificate is accepted here),
//! and self-signed client certificates for tests.
//!
//! The provider (AutoMTLS) and `lxd-client` (`generate_client_certificates`) have their own
//! certificate code on purpose: a fake shares no code with the clients it checks.

use std::sync::Arc;

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

#[derive(Debug)]
struct AnyClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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

pub struct ServerIdentity {
    pub cert_pem: String,
    pub fingerprint: String,
    pub config: Arc<rustls::ServerConfig>,
}

pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

pub fn der_to_pem(der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", der), config)
}

/// What the server certificate says, and what the TLS setup asks of clients.
#[derive(Debug, Clone)]
pub struct ServerCert<'a> {
    /// The subject alternative names.
    pub names: &'a [&'a str],
    pub organization: Option<&'a str>,
    pub common_name: Option<&'a str>,
    /// ECDSA P-384 when `true`, else rcgen's default (ECDSA P-256).
    pub p384: bool,
    /// Ask for client certificates (not required, any accepted).
    pub client_certs: bool,
    /// Offer HTTP/2 and HTTP/1.1 by ALPN.
    pub alpn: bool,
}

pub fn server_identity(spec: &ServerCert<'_>) -> Result<ServerIdentity, String> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let names: Vec<String> = spec.names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
    if let Some(organization) = spec.organization {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, organization);
    }
    if let Some(common_name) = spec.common_name {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
    }
    let key = if spec.p384 {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
    } else {
        rcgen::KeyPair::generate()
    }
    .map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let der = cert.der().to_vec();
    let key_der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| e.to_string())?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if spec.client_certs {
        builder.with_client_cert_verifier(Arc::new(AnyClientCert {
            algorithms: provider.signature_verification_algorithms,
        }))
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(vec![CertificateDer::from(der.clone())], key_der)
        .map_err(|e| e.to_string())?;
    if spec.alpn {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    Ok(ServerIdentity {
        cert_pem: der_to_pem(&der),
        fingerprint: fingerprint(&der),
        config: Arc::new(config),
    })
}

/// A self-signed client certificate: its PEM, key and fingerprint.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub fingerprint: String,
}

impl ClientCert {
    /// An ECDSA P-384 certificate for the common name `name`.
    pub fn generate(name: &str) -> ClientCert {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
            .unwrap_or_else(|_| rcgen::KeyPair::generate().expect("key generation"));
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap_or_default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("self-signed certificate");
        ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            fingerprint: fingerprint(cert.der()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_and_fingerprint_of_a_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(der_to_pem(cert.der()), cert.pem().replace("\r\n", "\n"));
        assert_eq!(
            fingerprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
