//! A certificate parsed once and owned: its DER and where each field lies in
//! it, shared by `Arc` between the validator's caches, the verified chain,
//! revocation sources, the policy's connection object, headers and the log.
//!
//! [`Cert`] is a borrowed view; a view cannot outlive the bytes it borrows,
//! so the owned form keeps the byte ranges the parse found
//! ([`CertLayout`]) and rebuilds the view from them without parsing again.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use super::cert::{Cert, Version};
use super::extensions::{BasicConstraints, Extensions, KeyUsage};
use super::info::ClientCertInfo;
use super::name::rfc2253;
use super::serial::SerialNumber;

/// A byte range of the certificate's DER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// Where `part` lies in `base`. Every slice a [`Cert`] holds borrows from
    /// its DER; anything else (never produced by the parser) maps to an
    /// empty range rather than to the wrong bytes.
    fn of(base: &[u8], part: &[u8]) -> Self {
        let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        match start.checked_add(part.len()) {
            Some(end) if start <= base.len() && end <= base.len() => Self {
                start: start as u32,
                end: end as u32,
            },
            _ => Self { start: 0, end: 0 },
        }
    }

    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// The parsed layout of one certificate: byte ranges for what [`Cert`]
/// borrows, values for what it decodes.
#[derive(Clone, Debug)]
struct CertLayout {
    tbs: Span,
    version: Version,
    serial: Span,
    tbs_signature_alg: Span,
    issuer: Span,
    subject: Span,
    not_before: u64,
    not_after: u64,
    generalized_time_before_2050: bool,
    spki: Span,
    spki_alg: Span,
    public_key: Span,
    signature_alg: Span,
    signature: Span,
    extensions: ExtensionsLayout,
}

#[derive(Clone, Debug)]
struct ExtensionsLayout {
    basic_constraints: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
    ext_key_usage: Option<Span>,
    subject_alt_name: Option<Span>,
    subject_alt_name_critical: bool,
    subject_alt_name_der: Option<Span>,
    name_constraints: Option<Span>,
    subject_key_id: Option<Span>,
    has_authority_key_id: bool,
    authority_key_id: Option<Span>,
    authority_key_id_names_issuer: bool,
    authority_info_access: Option<Span>,
    unsupported_critical: Option<Span>,
    default_value_encoded: bool,
    policy_constraints: bool,
    critical_flags: u8,
}

impl CertLayout {
    fn of(cert: &Cert<'_>) -> Self {
        let base = cert.der;
        let at = |part: &[u8]| Span::of(base, part);
        let e = &cert.extensions;
        Self {
            tbs: at(cert.tbs),
            version: cert.version,
            serial: at(cert.serial),
            tbs_signature_alg: at(cert.tbs_signature_alg),
            issuer: at(cert.issuer),
            subject: at(cert.subject),
            not_before: cert.not_before,
            not_after: cert.not_after,
            generalized_time_before_2050: cert.generalized_time_before_2050,
            spki: at(cert.spki),
            spki_alg: at(cert.spki_alg),
            public_key: at(cert.public_key),
            signature_alg: at(cert.signature_alg),
            signature: at(cert.signature),
            extensions: ExtensionsLayout {
                basic_constraints: e.basic_constraints,
                key_usage: e.key_usage,
                ext_key_usage: e.ext_key_usage.map(at),
                subject_alt_name: e.subject_alt_name.map(at),
                subject_alt_name_critical: e.subject_alt_name_critical,
                subject_alt_name_der: e.subject_alt_name_der.map(at),
                name_constraints: e.name_constraints.map(at),
                subject_key_id: e.subject_key_id.map(at),
                has_authority_key_id: e.has_authority_key_id,
                authority_key_id: e.authority_key_id.map(at),
                authority_key_id_names_issuer: e.authority_key_id_names_issuer,
                authority_info_access: e.authority_info_access.map(at),
                unsupported_critical: e.unsupported_critical.map(at),
                default_value_encoded: e.default_value_encoded,
                policy_constraints: e.policy_constraints,
                critical_flags: e.critical_flags,
            },
        }
    }

    fn view<'a>(&self, der: &'a [u8]) -> Cert<'a> {
        let at = |span: Span| der.get(span.range()).unwrap_or_default();
        let e = &self.extensions;
        Cert {
            der,
            tbs: at(self.tbs),
            version: self.version,
            serial: at(self.serial),
            tbs_signature_alg: at(self.tbs_signature_alg),
            issuer: at(self.issuer),
            subject: at(self.subject),
            not_before: self.not_before,
            not_after: self.not_after,
            generalized_time_before_2050: self.generalized_time_before_2050,
            spki: at(self.spki),
            spki_alg: at(self.spki_alg),
            public_key: at(self.public_key),
            signature_alg: at(self.signature_alg),
            signature: at(self.signature),
            extensions: Extensions {
                basic_constraints: e.basic_constraints,
                key_usage: e.key_usage,
                ext_key_usage: e.ext_key_usage.map(at),
                subject_alt_name: e.subject_alt_name.map(at),
                subject_alt_name_critical: e.subject_alt_name_critical,
                subject_alt_name_der: e.subject_alt_name_der.map(at),
                name_constraints: e.name_constraints.map(at),
                subject_key_id: e.subject_key_id.map(at),
                has_authority_key_id: e.has_authority_key_id,
                authority_key_id: e.authority_key_id.map(at),
                authority_key_id_names_issuer: e.authority_key_id_names_issuer,
                authority_info_access: e.authority_info_access.map(at),
                unsupported_critical: e.unsupported_critical.map(at),
                default_value_encoded: e.default_value_encoded,
                policy_constraints: e.policy_constraints,
                critical_flags: e.critical_flags,
            },
        }
    }
}

struct Inner {
    der: CertificateDer<'static>,
    layout: CertLayout,
    sha256: OnceLock<[u8; 32]>,
    spki_sha256: OnceLock<[u8; 32]>,
    /// The application's view of the certificate, formatted on first use
    /// and shared by every connection presenting it while the
    /// verified-chain cache keeps it.
    info: OnceLock<Option<Arc<ClientCertInfo>>>,
}

/// One X.509 certificate, parsed once, owning its DER. Cloning shares it.
///
/// The validator produces these for every certificate of a verified chain
/// (the trust store holds its anchors this way), so revocation sources,
/// connection policies, headers and log records read the fields the one
/// parse found.
#[derive(Clone)]
pub struct ParsedCertificate(Arc<Inner>);

impl ParsedCertificate {
    /// Parses `der`; `None` when it is not a certificate this crate reads.
    pub fn from_der(der: impl Into<CertificateDer<'static>>) -> Option<Self> {
        let der = der.into();
        let layout = CertLayout::of(&Cert::parse(&der).ok()?);
        Some(Self::with_layout(der, layout))
    }

    /// The owned form of a view parsed from its DER (no second parse).
    pub(crate) fn from_view(cert: &Cert<'_>) -> Self {
        let layout = CertLayout::of(cert);
        Self::with_layout(CertificateDer::from(cert.der.to_vec()), layout)
    }

    fn with_layout(der: CertificateDer<'static>, layout: CertLayout) -> Self {
        Self(Arc::new(Inner {
            der,
            layout,
            sha256: OnceLock::new(),
            spki_sha256: OnceLock::new(),
            info: OnceLock::new(),
        }))
    }

    /// The borrowed view of the parse, rebuilt from its byte ranges.
    pub(crate) fn view(&self) -> Cert<'_> {
        self.0.layout.view(&self.0.der)
    }

    /// The DER encoding.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.0.der
    }

    /// The serial number (`None` only for a serial this crate cannot
    /// represent, longer than RFC 5280 allows).
    pub fn serial(&self) -> Option<SerialNumber> {
        SerialNumber::from_der_contents(self.serial_bytes())
    }

    /// The serialNumber INTEGER contents (two's complement, sign byte kept).
    pub fn serial_bytes(&self) -> &[u8] {
        self.bytes(self.0.layout.serial)
    }

    /// The subject Name's full DER encoding.
    pub fn subject_der(&self) -> &[u8] {
        self.bytes(self.0.layout.subject)
    }

    /// The issuer Name's full DER encoding.
    pub fn issuer_der(&self) -> &[u8] {
        self.bytes(self.0.layout.issuer)
    }

    /// The subject, RFC 2253 (empty when it cannot be written).
    pub fn subject(&self) -> String {
        rfc2253(self.subject_der()).unwrap_or_default()
    }

    /// The issuer, RFC 2253 (empty when it cannot be written).
    pub fn issuer(&self) -> String {
        rfc2253(self.issuer_der()).unwrap_or_default()
    }

    /// The SubjectPublicKeyInfo's full DER encoding.
    pub fn spki(&self) -> &[u8] {
        self.bytes(self.0.layout.spki)
    }

    /// `notBefore`, Unix seconds.
    pub fn not_before(&self) -> u64 {
        self.0.layout.not_before
    }

    /// `notAfter`, Unix seconds.
    pub fn not_after(&self) -> u64 {
        self.0.layout.not_after
    }

    /// SHA-256 of the subjectPublicKeyInfo (how the deny list names an
    /// issuer), computed on first use.
    pub(crate) fn spki_sha256(&self) -> &[u8; 32] {
        self.0
            .spki_sha256
            .get_or_init(|| Sha256::digest(self.spki()).into())
    }

    /// The leaf's facts as the application sees them, formatted once per
    /// parsed certificate and shared (`None` when they cannot be read).
    pub(crate) fn client_cert_info(&self) -> Option<Arc<ClientCertInfo>> {
        self.0
            .info
            .get_or_init(|| ClientCertInfo::from_parsed(self).map(Arc::new))
            .clone()
    }

    /// The SHA-256 of the DER, computed on first use.
    pub fn sha256(&self) -> &[u8; 32] {
        self.0
            .sha256
            .get_or_init(|| Sha256::digest(self.0.der.as_ref()).into())
    }

    /// Whether both are the same certificate (same DER).
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.der == other.0.der
    }

    fn bytes(&self, span: Span) -> &[u8] {
        self.0.der.get(span.range()).unwrap_or_default()
    }
}

impl PartialEq for ParsedCertificate {
    fn eq(&self, other: &Self) -> bool {
        self.same_as(other)
    }
}

impl Eq for ParsedCertificate {}

impl std::fmt::Debug for ParsedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedCertificate")
            .field("subject", &self.subject())
            .field("serial", &self.serial())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["a.example".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Parsed Once");
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_view_rebuilt_from_the_layout_is_the_parse() {
        let der = self_signed();
        let parsed = Cert::parse(&der).unwrap();
        let owned = ParsedCertificate::from_view(&parsed);
        let view = owned.view();
        assert_eq!(view.tbs, parsed.tbs);
        assert_eq!(view.serial, parsed.serial);
        assert_eq!(view.issuer, parsed.issuer);
        assert_eq!(view.subject, parsed.subject);
        assert_eq!(view.spki, parsed.spki);
        assert_eq!(view.public_key, parsed.public_key);
        assert_eq!(view.signature, parsed.signature);
        assert_eq!(
            view.extensions.subject_alt_name_der,
            parsed.extensions.subject_alt_name_der
        );
        assert_eq!(
            view.extensions.subject_key_id,
            parsed.extensions.subject_key_id
        );
        assert_eq!(owned.subject(), "CN=Parsed Once");
        assert_eq!(owned.sha256(), &<[u8; 32]>::from(Sha256::digest(&der)));
    }

    #[test]
    fn a_slice_from_elsewhere_maps_to_nothing() {
        let base = [1u8, 2, 3];
        let other = [9u8; 4];
        assert_eq!(Span::of(&base, &other).range(), 0..0);
        assert_eq!(Span::of(&base, &base[1..]).range(), 1..3);
    }
}
