//! What the handshake benches share: key and name helpers for their rcgen
//! PKIs, a bench-only server-certificate verifier, and per-thread CPU time
//! from `/proc` (Linux).

#![allow(dead_code)] // each bench uses its own subset

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

pub fn p256() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key")
}

#[path = "../../testkit/pki.rs"]
mod pki;

#[allow(unused_imports)] // each bench uses its own subset
pub(crate) use pki::{client_leaf_params, url_encode};

pub fn dn(common_name: &str) -> DistinguishedName {
    pki::name(Some("US"), Some("Edge mTLS Bench"), common_name)
}

pub fn ca_params(common_name: &str) -> CertificateParams {
    pki::ca_params(dn(common_name), None)
}

/// The server certificate of the handshake benches (`localhost`,
/// `127.0.0.1`), issued by `issuer`, and its key.
pub fn localhost_server<S: rcgen::SigningKey>(
    issuer: &rcgen::Issuer<'_, S>,
) -> (rcgen::Certificate, KeyPair) {
    let key = p256();
    let mut params = CertificateParams::default();
    params.distinguished_name = dn("localhost");
    params.subject_alt_names = vec![
        rcgen::SanType::DnsName("localhost".try_into().expect("DNS name")),
        rcgen::SanType::IpAddress([127, 0, 0, 1].into()),
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, issuer).expect("server certificate");
    (cert, key)
}

/// A TLS 1.3 client (resumption off) presenting client `i`'s own leaf,
/// `client-{i}.{domain}` with serial `0x01000000 + i`, issued by `issuer`,
/// and `intermediate` after it.
pub fn bench_client<S: rcgen::SigningKey>(
    i: usize,
    domain: &str,
    issuer: &rcgen::Issuer<'_, S>,
    intermediate: &CertificateDer<'static>,
    provider: &Arc<CryptoProvider>,
    verifier: &Arc<SignatureOnly>,
) -> Arc<rustls::ClientConfig> {
    let key = p256();
    let name = format!("client-{i}.{domain}");
    let mut p = client_leaf_params(dn(&name));
    let serial = u32::try_from(0x0100_0000 + i).expect("serial fits");
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial.to_be_bytes()));
    p.subject_alt_names = vec![rcgen::SanType::DnsName(name.try_into().expect("DNS name"))];
    let leaf = p.signed_by(&key, issuer).expect("client certificate");
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_client_auth_cert(
            vec![leaf.der().clone(), intermediate.clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("client configuration");
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// Bench clients only: accepts the server certificate without building its
/// chain, but (by default) verifies the handshake signature with the
/// provider's algorithms, so the client does the TLS work a real client does
/// minus path validation.
#[derive(Debug)]
pub struct SignatureOnly {
    pub provider: Arc<CryptoProvider>,
    /// `THROUGHPUT_CLIENT_SKIPS_SIGNATURE=1`: accept the TLS 1.3
    /// CertificateVerify unchecked too. The server's work is the same; the
    /// client gets cheaper, for machines where it would otherwise compete
    /// with the server thread for the CPU (a server thread busy well under
    /// 100% in the summary).
    pub skip: bool,
}

pub fn client_skips_signature() -> bool {
    std::env::var_os("THROUGHPUT_CLIENT_SKIPS_SIGNATURE").is_some_and(|v| v == "1")
}

impl ServerCertVerifier for SignatureOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
        if self.skip {
            return Ok(HandshakeSignatureValid::assertion());
        }
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

/// A thread's time on a CPU, from its `schedstat` (Linux).
pub fn cpu_time(schedstat: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(schedstat).ok()?;
    let ns = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

pub fn thread_id() -> Option<u32> {
    // `/proc/thread-self` links to `<pid>/task/<tid>`.
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// One full handshake as a client; `true` when it read the server's `ok`.
/// Under TLS 1.3 a refused client certificate shows up on that first read.
pub async fn handshake(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> bool {
    use tokio::io::AsyncReadExt;
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from("localhost").expect("server name");
    let Ok(mut tls) = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
    else {
        return false;
    };
    let mut reply = Vec::with_capacity(8);
    tls.read_to_end(&mut reply).await.is_ok() && reply == b"ok"
}
