//! A CRL writer for tests and benchmarks: any version, entries (negative
//! serials included), extensions of any criticality, signed through the
//! rustls crypto provider with an ECDSA P-256 key.
//!
//! Self-contained (rcgen, rustls, der) so `benches/revocation.rs` can include
//! it with `#[path]` as well.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use der::Encode;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::PrivateKeyDer;
use rustls::SignatureScheme;

/// ecdsa-with-SHA256 AlgorithmIdentifier (full encoding).
pub const ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

/// One revoked certificate.
#[derive(Clone, Debug)]
pub struct Entry {
    /// INTEGER contents, exactly as they are to be encoded.
    pub serial: Vec<u8>,
    pub revoked_at: u64,
    /// `(OID contents, critical, extnValue contents)`.
    pub extensions: Vec<(Vec<u8>, bool, Vec<u8>)>,
}

impl Entry {
    pub fn new(serial: &[u8], revoked_at: u64) -> Entry {
        Entry {
            serial: serial.to_vec(),
            revoked_at,
            extensions: Vec::new(),
        }
    }

    /// With a reasonCode entry extension.
    pub fn with_reason(mut self, reason: u8) -> Entry {
        self.extensions
            .push((vec![0x55, 0x1d, 0x15], false, vec![0x0a, 0x01, reason]));
        self
    }
}

/// A CRL to write.
#[derive(Clone, Debug)]
pub struct CrlSpec {
    /// The issuer Name, full DER.
    pub issuer: Vec<u8>,
    pub v2: bool,
    pub this_update: u64,
    pub next_update: Option<u64>,
    pub entries: Vec<Entry>,
    /// CRL extensions: `(OID contents, critical, extnValue contents)`.
    pub extensions: Vec<(Vec<u8>, bool, Vec<u8>)>,
}

impl CrlSpec {
    /// A v2 CRL from `issuer`, current for a day around `now`.
    pub fn new(issuer: Vec<u8>, now: u64) -> CrlSpec {
        CrlSpec {
            issuer,
            v2: true,
            this_update: now - 3600,
            next_update: Some(now + 86_400),
            entries: Vec::new(),
            extensions: Vec::new(),
        }
    }

    /// Adds a cRLNumber extension.
    pub fn with_crl_number(mut self, n: u8, critical: bool) -> CrlSpec {
        self.extensions
            .push((vec![0x55, 0x1d, 0x14], critical, vec![0x02, 0x01, n]));
        self
    }

    /// The tbsCertList encoding.
    pub fn tbs(&self) -> Vec<u8> {
        let mut body = Vec::new();
        if self.v2 {
            body.extend_from_slice(&[0x02, 0x01, 0x01]);
        }
        body.extend_from_slice(ECDSA_SHA256);
        body.extend_from_slice(&self.issuer);
        body.extend(time(self.this_update));
        if let Some(next) = self.next_update {
            body.extend(time(next));
        }
        if !self.entries.is_empty() {
            let mut list = Vec::new();
            for e in &self.entries {
                let mut entry = tlv(0x02, &e.serial);
                entry.extend(time(e.revoked_at));
                if !e.extensions.is_empty() {
                    entry.extend(extensions(&e.extensions));
                }
                list.extend(tlv(0x30, &entry));
            }
            body.extend(tlv(0x30, &list));
        }
        if !self.extensions.is_empty() {
            body.extend(tlv(0xa0, &extensions(&self.extensions)));
        }
        tlv(0x30, &body)
    }

    /// The signed CertificateList DER.
    pub fn sign(&self, key_pkcs8: &[u8]) -> Vec<u8> {
        sign_tbs(&self.tbs(), key_pkcs8)
    }
}

/// Wraps `tbs` into a CertificateList signed with the P-256 key `key_pkcs8`.
pub fn sign_tbs(tbs: &[u8], key_pkcs8: &[u8]) -> Vec<u8> {
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(key_pkcs8.to_vec().into()))
        .expect("P-256 key");
    let signer = key
        .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
        .expect("an ECDSA P-256 key");
    let signature = signer.sign(tbs).expect("sign");
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    let mut body = tbs.to_vec();
    body.extend_from_slice(ECDSA_SHA256);
    body.extend(tlv(0x03, &bits));
    tlv(0x30, &body)
}

fn extensions(list: &[(Vec<u8>, bool, Vec<u8>)]) -> Vec<u8> {
    let mut all = Vec::new();
    for (oid, critical, value) in list {
        let mut ext = tlv(0x06, oid);
        if *critical {
            ext.extend_from_slice(&[0x01, 0x01, 0xff]);
        }
        ext.extend(tlv(0x04, value));
        all.extend(tlv(0x30, &ext));
    }
    tlv(0x30, &all)
}

/// UTCTime (before 2050) or GeneralizedTime.
pub fn time(secs: u64) -> Vec<u8> {
    let d = Duration::from_secs(secs);
    match der::asn1::UtcTime::from_unix_duration(d) {
        Ok(t) => t.to_der().expect("UTCTime"),
        Err(_) => der::asn1::GeneralizedTime::from_unix_duration(d)
            .expect("time")
            .to_der()
            .expect("GeneralizedTime"),
    }
}

/// A DER tag-length-value.
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

/// The subject Name (full DER) of a certificate.
pub fn subject_of(cert_der: &[u8]) -> Vec<u8> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(cert_der).expect("a certificate");
    cert.tbs_certificate.subject.to_der().expect("Name")
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
