//! Building blocks of the test PKIs: names, CA and client-leaf parameters.
//!
//! One copy, included with `#[path]` by the integration tests
//! (`tests/common`), the benches (`benches/support`), the examples' demo PKI
//! (`examples/common`), the fuzz fixtures (`fuzz/src`) and the OCSP unit
//! tests; each caller names its own organisation and adds what its
//! certificates need (dates, serials, extensions).

#![allow(dead_code)] // each includer uses a part

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose,
};

/// `C=country, O=organization, CN=common_name`, the first two when given.
pub(crate) fn name(
    country: Option<&str>,
    organization: Option<&str>,
    common_name: &str,
) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let Some(c) = country {
        dn.push(DnType::CountryName, c);
    }
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A CA named `name`: basicConstraints cA (with `path_len` when given),
/// keyCertSign and cRLSign, an authorityKeyIdentifier (RFC 5280 §4.2.1.1
/// wants one on every certificate a CA issues; harmless on a root).
pub(crate) fn ca_params(name: DistinguishedName, path_len: Option<u8>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name;
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = true;
    p
}

/// A client certificate named `name`: not a CA, digitalSignature,
/// extendedKeyUsage clientAuth, an authorityKeyIdentifier.
pub(crate) fn client_leaf_params(name: DistinguishedName) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    p
}

/// URL-encoding as ALB and CloudFront write a PEM into a header: every byte
/// but letters, digits and `-._~+=/` as `%XX`.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~+=/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
