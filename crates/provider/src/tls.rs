//! AutoMTLS: the server certificate we present, and a client-certificate verifier that accepts
//! exactly the certificate Terraform passed in `PLUGIN_CLIENT_CERT`.
//!
//! Terraform's client certificate is a self-signed P-521 CA certificate used directly as an
//! end-entity certificate, which WebPKI verifiers refuse. Instead of switching client
//! authentication off, [`PinnedClientCert`] requires a client certificate, compares it byte for
//! byte with the pinned one, and verifies the handshake signature (aws-lc-rs handles P-521).
//!
//! Everything else (our key, the certificate's signature, key exchange, the TLS randomness) is
//! aws-lc's, whose random generator reads the operating system's: it is built without CPU
//! jitter entropy (`AWS_LC_SYS_NO_JITTER_ENTROPY` in `.cargo/config.toml`), whose seeding cost
//! about 30 ms of CPU in every process, nine tenths of the time Terraform waited for the
//! handshake line.

use std::sync::Arc;

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("PLUGIN_CLIENT_CERT holds no PEM certificate")]
    NoClientCert,
    #[error("cannot make the server certificate: {0}")]
    Generate(String),
    #[error("cannot set up TLS: {0}")]
    Config(String),
}

#[derive(Debug)]
pub struct PinnedClientCert {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientCert {
    pub fn new(expected: CertificateDer<'static>, provider: &CryptoProvider) -> PinnedClientCert {
        PinnedClientCert {
            expected,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for PinnedClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
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

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// The server side of AutoMTLS: our certificate (DER, for the handshake line) and the rustls
/// configuration that pins Terraform's certificate.
pub struct AutoMtls {
    pub server_cert_der: Vec<u8>,
    pub config: Arc<rustls::ServerConfig>,
}

/// Sets up AutoMTLS for the client certificate PEM Terraform passed.
pub fn auto_mtls(client_cert_pem: &str) -> Result<AutoMtls, TlsError> {
    let client = rustls_pemfile::certs(&mut client_cert_pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .ok_or(TlsError::NoClientCert)?;

    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "HashiCorp");
    // A random serial, as go-plugin's is (rcgen would derive it from the key).
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial)
        .map_err(|_| TlsError::Generate("no randomness for the serial number".to_owned()))?;
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let server_cert_der = cert.der().to_vec();
    let key_der = PrivateKeyDer::Pkcs8(key.serialize_der().into());

    // Terraform signs with P-521, which aws-lc verifies (ring could not).
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(PinnedClientCert::new(client, &provider));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![CertificateDer::from(server_cert_der.clone())], key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(AutoMtls {
        server_cert_der,
        config: Arc::new(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";

    #[test]
    fn the_server_certificate_is_a_self_signed_p256_ca_whose_signature_verifies() {
        let mtls = auto_mtls(CLIENT_PEM).unwrap();
        let (rest, cert) = x509_parser::parse_x509_certificate(&mtls.server_cert_der).unwrap();
        assert!(rest.is_empty());
        assert!(cert.is_ca());
        assert_eq!(cert.subject(), cert.issuer());
        let serial = cert.raw_serial();
        assert!(!serial.is_empty() && serial.len() <= 17 && serial[0] & 0x80 == 0);

        // The subject key identifier is the SHA-256 of the public key info, cut to 20 bytes.
        let spki = cert.public_key().raw;
        let ski = cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            ski,
            &aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki).as_ref()[..20]
        );

        let key = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
            cert.public_key().subject_public_key.data.as_ref(),
        );
        key.verify(
            cert.tbs_certificate.as_ref(),
            cert.signature_value.data.as_ref(),
        )
        .expect("the self-signature verifies");
    }

    #[test]
    fn each_start_makes_a_new_key_and_serial() {
        let a = auto_mtls(CLIENT_PEM).unwrap();
        let b = auto_mtls(CLIENT_PEM).unwrap();
        let (_, a) = x509_parser::parse_x509_certificate(&a.server_cert_der).unwrap();
        let (_, b) = x509_parser::parse_x509_certificate(&b.server_cert_der).unwrap();
        assert_ne!(a.public_key().raw, b.public_key().raw);
        assert_ne!(a.raw_serial(), b.raw_serial());
    }

    #[test]
    fn a_client_pem_without_a_certificate_is_refused() {
        assert!(matches!(
            auto_mtls("no pem here"),
            Err(TlsError::NoClientCert)
        ));
    }
}
