//! What the application learns about a verified client certificate.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::cert::Cert;
use super::der::{context, tag, DerCursor};
use super::extensions::{GeneralName, GeneralNames};
use super::name::rfc2253;
use super::parsed::ParsedCertificate;

/// One subjectAltName entry, decoded.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubjectAltName {
    /// `dNSName`.
    Dns(String),
    /// `iPAddress`.
    Ip(IpAddr),
    /// `rfc822Name`.
    Email(String),
    /// `uniformResourceIdentifier` (SPIFFE ids included).
    Uri(String),
    /// `directoryName`, RFC 2253.
    Directory(String),
    /// Another form, by its context tag number.
    Other(u8),
}

/// Parsed facts about the leaf certificate, computed once per connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientCertInfo {
    /// The leaf DER.
    pub der: Vec<u8>,
    /// Serial number INTEGER contents (two's complement, sign byte kept).
    pub serial: Vec<u8>,
    /// Subject DER (full Name encoding).
    pub subject_der: Vec<u8>,
    /// Issuer DER (full Name encoding).
    pub issuer_der: Vec<u8>,
    /// Subject, RFC 2253.
    pub subject: String,
    /// Issuer, RFC 2253.
    pub issuer: String,
    /// `notBefore`, Unix seconds.
    pub not_before: u64,
    /// `notAfter`, Unix seconds.
    pub not_after: u64,
    /// SHA-256 of the DER.
    pub sha256: [u8; 32],
    /// SubjectPublicKeyInfo DER.
    pub spki: Vec<u8>,
    /// subjectAltName entries in certificate order.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// The subjectAltName extension value (DER), when present.
    pub subject_alt_name_der: Option<Vec<u8>>,
    /// The first OCSP responder URL from authorityInfoAccess.
    pub ocsp_url: Option<String>,
    /// X.509 version (1 or 3).
    pub version: u8,
}

impl ClientCertInfo {
    /// Parses `der`; `None` when it is not a certificate this crate can read.
    pub fn from_der(der: &[u8]) -> Option<Self> {
        Self::from_cert(&Cert::parse(der).ok()?, None)
    }

    /// The facts of a certificate parsed already (nothing is parsed again).
    pub fn from_parsed(cert: &ParsedCertificate) -> Option<Self> {
        Self::from_cert(&cert.view(), Some(cert.sha256()))
    }

    fn from_cert(cert: &Cert<'_>, sha256: Option<&[u8; 32]>) -> Option<Self> {
        let der = cert.der;
        let mut sans = Vec::new();
        if let Some(list) = cert.extensions.subject_alt_name {
            for name in GeneralNames::new(list) {
                sans.push(match name.ok()? {
                    GeneralName::Dns(v) => {
                        SubjectAltName::Dns(String::from_utf8_lossy(v).into_owned())
                    }
                    GeneralName::Email(v) => {
                        SubjectAltName::Email(String::from_utf8_lossy(v).into_owned())
                    }
                    GeneralName::Uri(v) => {
                        SubjectAltName::Uri(String::from_utf8_lossy(v).into_owned())
                    }
                    GeneralName::Ip(v) => match v.len() {
                        4 => SubjectAltName::Ip(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
                        16 => SubjectAltName::Ip(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
                        _ => SubjectAltName::Other(7),
                    },
                    GeneralName::Directory(v) => SubjectAltName::Directory(rfc2253(v)?),
                    GeneralName::Other(t) => SubjectAltName::Other(t),
                });
            }
        }
        Some(Self {
            der: der.to_vec(),
            serial: cert.serial.to_vec(),
            subject_der: cert.subject.to_vec(),
            issuer_der: cert.issuer.to_vec(),
            subject: rfc2253(cert.subject)?,
            issuer: rfc2253(cert.issuer)?,
            not_before: cert.not_before,
            not_after: cert.not_after,
            sha256: sha256
                .copied()
                .unwrap_or_else(|| Sha256::digest(der).into()),
            spki: cert.spki.to_vec(),
            subject_alt_names: sans,
            subject_alt_name_der: cert.extensions.subject_alt_name_der.map(<[u8]>::to_vec),
            ocsp_url: cert.extensions.authority_info_access.and_then(ocsp_url),
            version: match cert.version {
                super::cert::Version::V1 => 1,
                super::cert::Version::V2 => 2,
                super::cert::Version::V3 => 3,
            },
        })
    }
}

/// id-ad-ocsp 1.3.6.1.5.5.7.48.1
const AD_OCSP: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];

/// The first id-ad-ocsp URI of an AuthorityInfoAccess value (its SEQUENCE contents).
pub(crate) fn ocsp_url(aia: &[u8]) -> Option<String> {
    let mut c = DerCursor::new(aia);
    while !c.is_empty() {
        let desc = c.expect(tag::SEQUENCE, "AccessDescription").ok()?;
        let mut d = DerCursor::new(desc.value);
        let method = d.expect(tag::OID, "accessMethod").ok()?;
        let location = d.any("accessLocation").ok()?;
        if method.value == AD_OCSP && location.tag == context(6, false) {
            return Some(String::from_utf8_lossy(location.value).into_owned());
        }
    }
    None
}
