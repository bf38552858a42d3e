//! Revocation fixtures: CRLs from the real `openssl ca -gencrl` (v1 without a
//! `crlnumber` file, v2 with one), TLS servers whose verifier checks
//! revocation, and stores/sources that behave like remote ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use edge_mtls::RevocationChecker;
use edge_mtls::{ChainValidatorBuilder, MtlsClientVerifier, TrustStoreHandle, ValidationMode};
use edge_mtls::{KeyNormalization, KeyValueStore, KvsError, KvsMeta};
use rustls::ServerConfig;

use super::openssl;
use super::openssl_ca::OpensslCa;

/// How long a generated CRL is current.
#[derive(Clone, Copy, Debug)]
pub enum CrlValidity {
    Days(u32),
    Hours(u32),
    /// `-crlsec`: seconds (a CRL that goes stale while the test runs).
    Seconds(u32),
}

impl OpensslCa {
    /// Marks `name.pem` revoked in `index.txt` without a reason code (so the
    /// CRL entry has no extensions and a CRL without `crlnumber` stays v1).
    pub fn revoke_without_reason(&self, name: &str) {
        openssl(
            self.dir(),
            &["ca", "-config", "ca.cnf", "-revoke", &format!("{name}.pem")],
        );
    }

    /// `openssl ca -gencrl` into `out` (PEM), returning its bytes. With
    /// `crl_number` the CA config names a `crlnumber` file (created at 1000
    /// the first time), which makes OpenSSL write a v2 CRL with cRLNumber;
    /// without it, and without reason codes, a v1 CRL.
    pub fn gen_crl(&self, out: &str, crl_number: bool, validity: CrlValidity) -> Vec<u8> {
        let d = self.dir();
        let mut config = std::fs::read_to_string(d.join("ca.cnf")).expect("read ca.cnf");
        if crl_number {
            if !d.join("crlnumber").exists() {
                std::fs::write(d.join("crlnumber"), "1000\n").expect("write crlnumber");
            }
            config = config.replace(
                "[ CA_default ]\n",
                "[ CA_default ]\ncrlnumber = ./crlnumber\n",
            );
        }
        std::fs::write(d.join("crl.cnf"), config).expect("write crl.cnf");
        let (flag, value) = match validity {
            CrlValidity::Days(n) => ("-crldays", n),
            CrlValidity::Hours(n) => ("-crlhours", n),
            CrlValidity::Seconds(n) => ("-crlsec", n),
        };
        openssl(
            d,
            &[
                "ca",
                "-gencrl",
                "-config",
                "crl.cnf",
                flag,
                &value.to_string(),
                "-out",
                out,
            ],
        );
        std::fs::read(d.join(out)).expect("read the CRL")
    }
}

/// A server config validating against `store` and checking revocation with
/// `checker` (stage 1 in the handshake).
pub fn revocation_server_config(
    store: TrustStoreHandle,
    checker: Arc<RevocationChecker>,
    configure: impl FnOnce(ChainValidatorBuilder) -> ChainValidatorBuilder,
) -> Arc<ServerConfig> {
    super::server_config(revocation_verifier(store, checker, configure))
}

/// The verifier of [`revocation_server_config`].
pub fn revocation_verifier(
    store: TrustStoreHandle,
    checker: Arc<RevocationChecker>,
    configure: impl FnOnce(ChainValidatorBuilder) -> ChainValidatorBuilder,
) -> MtlsClientVerifier {
    MtlsClientVerifier::builder(Arc::new(super::validator(store, configure)))
        .mode(ValidationMode::Required)
        .revocation(checker)
        .build()
        .expect("verifier")
}

/// How a [`RemoteLikeStore`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remote {
    /// Answers asynchronously from the inner store after a short delay.
    Reachable,
    /// Every call fails as an unreachable server would.
    Down,
}

/// A store with no local copy (like a remote Redis before its first
/// snapshot): `exists_local` is `None`, so only stage 2 can answer.
#[derive(Debug)]
pub struct RemoteLikeStore {
    pub inner: Arc<dyn KeyValueStore>,
    pub behaviour: Remote,
    pub calls: AtomicUsize,
}

impl RemoteLikeStore {
    pub fn new(inner: Arc<dyn KeyValueStore>, behaviour: Remote) -> RemoteLikeStore {
        RemoteLikeStore {
            inner,
            behaviour,
            calls: AtomicUsize::new(0),
        }
    }

    async fn reach(&self) -> Result<(), KvsError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(5)).await;
        match self.behaviour {
            Remote::Reachable => Ok(()),
            Remote::Down => Err(KvsError::Unavailable {
                detail: "connection refused (127.0.0.1:6379)".into(),
            }),
        }
    }
}

#[async_trait::async_trait]
impl KeyValueStore for RemoteLikeStore {
    async fn get(&self, key: &str) -> Result<Option<String>, KvsError> {
        self.reach().await?;
        self.inner.get(key).await
    }

    async fn exists(&self, key: &str) -> Result<bool, KvsError> {
        self.reach().await?;
        self.inner.exists(key).await
    }

    async fn meta(&self) -> Result<KvsMeta, KvsError> {
        self.reach().await?;
        self.inner.meta().await
    }

    fn exists_local(&self, _key: &str) -> Option<bool> {
        None
    }

    fn normalization(&self) -> KeyNormalization {
        self.inner.normalization()
    }
}

/// The TLS identity of `name.pem` / `name.key` issued by `ca` (leaf only:
/// the CA is the trust anchor).
pub fn openssl_identity(ca: &OpensslCa, name: &str) -> super::ClientIdentity {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    let key = std::fs::read(ca.path(&format!("{name}.key"))).expect("read key");
    let PrivateKeyDer::Pkcs8(key) = PrivateKeyDer::from_pem_slice(&key).expect("PEM key") else {
        panic!("openssl genpkey writes PKCS#8");
    };
    super::ClientIdentity {
        chain: vec![ca.cert_der(name).into()],
        key_pkcs8: key.secret_pkcs8_der().to_vec(),
    }
}

/// The serial INTEGER contents of a certificate.
pub fn serial_of(cert_der: &[u8]) -> Vec<u8> {
    use der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(cert_der).expect("a certificate");
    let serial = cert.tbs_certificate.serial_number.to_der().expect("serial");
    // Skip the INTEGER header (short form: serials are at most a few dozen octets).
    serial[2..].to_vec()
}

/// The DER of a PEM CRL as `openssl ca -gencrl` writes it.
pub fn crl_pem_to_der(pem: &[u8]) -> Vec<u8> {
    let (label, der) = pem_rfc7468::decode_vec(pem).expect("a PEM CRL");
    assert_eq!(label, "X509 CRL");
    der
}

/// The `nextUpdate` of a PEM CRL, Unix seconds.
pub fn next_update_of(pem: &[u8]) -> u64 {
    edge_mtls::RevocationList::parse(&crl_pem_to_der(pem))
        .expect("a CRL")
        .next_update()
        .expect("nextUpdate")
}

/// A client leaf issued by `ca` whose cRLDistributionPoints names `cdp`
/// (none when `None`); DER.
pub fn leaf_with_cdp(ca: &super::Ca, common_name: &str, cdp: Option<&str>) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    if let Some(url) = cdp {
        params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec![url.to_string()],
        }];
    }
    let key = rcgen::KeyPair::generate().expect("key");
    params
        .signed_by(&key, &ca.issuer())
        .expect("sign leaf")
        .der()
        .to_vec()
}
