//! Which certificates a CRL speaks for: the issuingDistributionPoint
//! extension (RFC 5280 §5.2.5) against the certificate's
//! cRLDistributionPoints (§4.2.1.13), as §6.3.3 (b) prescribes.
//!
//! Handled: a distributionPoint `fullName` (a partitioned CRL covers only
//! certificates naming one of its names in their own distribution points),
//! `onlyContainsUserCerts` and `onlyContainsCACerts`. Rejected when loading,
//! because a CRL using them is not complete for its issuer's certificates
//! in a way this crate can account for: `indirectCRL`, `onlySomeReasons`,
//! `onlyContainsAttributeCerts` and `nameRelativeToCRLIssuer`.

use crate::x509::cert::Cert;
use crate::x509::der::{context, single, tag, DerCursor};
use crate::x509::extensions::oid as cert_oid;

use super::CrlError;

/// The parts of an issuingDistributionPoint this crate honours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IssuingDistributionPoint {
    /// The full encodings of the `fullName` GeneralNames, when present.
    pub(crate) full_names: Option<Vec<Box<[u8]>>>,
    pub(crate) only_user_certs: bool,
    pub(crate) only_ca_certs: bool,
}

impl IssuingDistributionPoint {
    pub(crate) fn parse(value: &[u8]) -> Result<Self, CrlError> {
        let seq = single(value, tag::SEQUENCE, "issuingDistributionPoint")?;
        let mut c = DerCursor::new(seq.value);
        let mut idp = Self::default();
        if let Some(dp) = c.optional(
            context(0, true),
            "issuingDistributionPoint.distributionPoint",
        )? {
            idp.full_names = Some(distribution_point_names(dp.value)?);
        }
        idp.only_user_certs = flag(&mut c, 1, "onlyContainsUserCerts")?;
        idp.only_ca_certs = flag(&mut c, 2, "onlyContainsCACerts")?;
        if c.optional(context(3, false), "onlySomeReasons")?.is_some() {
            return Err(CrlError::UnsupportedDistributionPoint {
                detail: "onlySomeReasons (a CRL partitioned by revocation reason)",
            });
        }
        if flag(&mut c, 4, "indirectCRL")? {
            return Err(CrlError::IndirectCrl);
        }
        if flag(&mut c, 5, "onlyContainsAttributeCerts")? {
            return Err(CrlError::UnsupportedDistributionPoint {
                detail: "onlyContainsAttributeCerts (a CRL for attribute certificates)",
            });
        }
        c.finish("issuingDistributionPoint (trailing data)")?;
        // RFC 5280 §5.2.5: at most one of the three "only" flags.
        if idp.only_user_certs && idp.only_ca_certs {
            return Err(CrlError::Malformed {
                field: "issuingDistributionPoint asserts both onlyContainsUserCerts and onlyContainsCACerts",
            });
        }
        Ok(idp)
    }

    /// Whether a CRL with this IDP speaks for `cert`.
    pub(crate) fn covers(&self, cert: &Cert<'_>) -> bool {
        let is_ca = cert.extensions.basic_constraints.is_some_and(|b| b.ca);
        if (self.only_user_certs && is_ca) || (self.only_ca_certs && !is_ca) {
            return false;
        }
        let Some(idp_names) = &self.full_names else {
            return true;
        };
        // A partitioned CRL covers a certificate only through a distribution
        // point the certificate itself names (webpki and Go agree: no
        // cRLDistributionPoints, no coverage).
        let Some(cdp) = certificate_extension(cert.tbs, cert_oid::CRL_DISTRIBUTION_POINTS) else {
            return false;
        };
        let Ok(points) = single(cdp, tag::SEQUENCE, "cRLDistributionPoints") else {
            return false;
        };
        let mut points = DerCursor::new(points.value);
        while let Ok(point) = points.expect(tag::SEQUENCE, "DistributionPoint") {
            let mut p = DerCursor::new(point.value);
            let Ok(Some(name)) = p.optional(context(0, true), "distributionPoint") else {
                continue;
            };
            let Ok(names) = distribution_point_names(name.value) else {
                continue;
            };
            if names.iter().any(|n| idp_names.contains(n)) {
                return true;
            }
        }
        false
    }
}

/// The GeneralName encodings of a DistributionPointName's `fullName`.
fn distribution_point_names(choice: &[u8]) -> Result<Vec<Box<[u8]>>, CrlError> {
    let mut c = DerCursor::new(choice);
    let name = c.any("DistributionPointName")?;
    c.finish("DistributionPointName (trailing data)")?;
    if name.tag == context(1, true) {
        return Err(CrlError::UnsupportedDistributionPoint {
            detail: "nameRelativeToCRLIssuer",
        });
    }
    if name.tag != context(0, true) {
        return Err(CrlError::Malformed {
            field: "DistributionPointName",
        });
    }
    let mut names = Vec::new();
    let mut g = DerCursor::new(name.value);
    while !g.is_empty() {
        let tlv = g.any("GeneralName")?;
        crate::x509::extensions::general_name(tlv)
            .map_err(|e| CrlError::Malformed { field: e.0 })?;
        names.push(tlv.full.into());
        if names.len() > 64 {
            return Err(CrlError::Malformed {
                field: "DistributionPointName (more than 64 names)",
            });
        }
    }
    if names.is_empty() {
        return Err(CrlError::Malformed {
            field: "DistributionPointName (empty fullName)",
        });
    }
    Ok(names)
}

/// An optional `[n] IMPLICIT BOOLEAN DEFAULT FALSE`.
fn flag(c: &mut DerCursor<'_>, n: u8, what: &'static str) -> Result<bool, CrlError> {
    match c.optional(context(n, false), what)? {
        None => Ok(false),
        Some(t) if t.value == [0xff] => Ok(true),
        // DER never encodes the DEFAULT (FALSE).
        Some(_) => Err(CrlError::Malformed { field: what }),
    }
}

/// The extnValue contents of the extension `oid` of a certificate, found by
/// walking its `tbsCertificate` (already validated by [`Cert::parse`]).
pub(crate) fn certificate_extension<'a>(tbs: &'a [u8], oid: &[u8]) -> Option<&'a [u8]> {
    let tbs = single(tbs, tag::SEQUENCE, "tbsCertificate").ok()?;
    let mut t = DerCursor::new(tbs.value);
    t.optional(context(0, true), "version").ok()?;
    for what in [
        "serialNumber",
        "signature",
        "issuer",
        "validity",
        "subject",
        "spki",
    ] {
        t.any(what).ok()?;
    }
    t.optional(context(1, false), "issuerUniqueID").ok()?;
    t.optional(context(2, false), "subjectUniqueID").ok()?;
    let wrapper = t.optional(context(3, true), "extensions").ok()??;
    let seq = single(wrapper.value, tag::SEQUENCE, "extensions").ok()?;
    let mut exts = DerCursor::new(seq.value);
    while let Ok(ext) = exts.expect(tag::SEQUENCE, "Extension") {
        let mut e = DerCursor::new(ext.value);
        let id = e.expect(tag::OID, "extnID").ok()?;
        e.optional(tag::BOOLEAN, "critical").ok()?;
        let value = e.expect(tag::OCTET_STRING, "extnValue").ok()?;
        if id.value == oid {
            return Some(value.value);
        }
    }
    None
}
