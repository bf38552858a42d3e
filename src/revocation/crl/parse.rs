//! Decoding a CertificateList (RFC 5280 §5.1) with the crate's strict DER
//! walker, v1 and v2 alike.
//!
//! `x509-cert` cannot read v1 CRLs (what `openssl ca -gencrl` writes without a
//! `crlnumber` file), and the handshake-adjacent code borrows instead of
//! building trees, so the structure is walked here directly.

use crate::x509::cert::parse_time;
use crate::x509::der::{bit_string_octets, context, single, tag, DerCursor, Tlv};
use crate::x509::extensions::oid as cert_oid;

use super::scope::IssuingDistributionPoint;
use super::CrlError;

/// Encoded OID contents of the CRL and CRL-entry extensions (RFC 5280 §5.2, §5.3).
pub(crate) mod oid {
    pub(crate) const CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
    pub(crate) const REASON_CODE: &[u8] = &[0x55, 0x1d, 0x15];
    pub(crate) const HOLD_INSTRUCTION_CODE: &[u8] = &[0x55, 0x1d, 0x17];
    pub(crate) const INVALIDITY_DATE: &[u8] = &[0x55, 0x1d, 0x18];
    pub(crate) const DELTA_CRL_INDICATOR: &[u8] = &[0x55, 0x1d, 0x1b];
    pub(crate) const ISSUING_DISTRIBUTION_POINT: &[u8] = &[0x55, 0x1d, 0x1c];
    pub(crate) const CERTIFICATE_ISSUER: &[u8] = &[0x55, 0x1d, 0x1d];
    pub(crate) const EXPIRED_CERTS_ON_CRL: &[u8] = &[0x55, 0x1d, 0x3c];
}

/// Most extensions accepted in one CRL.
const MAX_CRL_EXTENSIONS: usize = 32;

/// The CRL's `version` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrlVersion {
    /// No version field: no extensions of any kind (OpenSSL without `crlnumber`).
    V1,
    /// `v2`: extensions allowed.
    V2,
}

/// A CertificateList borrowed from its DER encoding; entries stay undecoded
/// until [`RevokedEntries`] walks them.
#[derive(Clone, Debug)]
pub(crate) struct CrlView<'a> {
    /// The whole `tbsCertList` encoding: what the signature covers.
    pub(crate) tbs: &'a [u8],
    pub(crate) version: CrlVersion,
    /// Contents of the TBS `signature` AlgorithmIdentifier.
    pub(crate) tbs_signature_alg: &'a [u8],
    /// The full encoding of the issuer Name.
    pub(crate) issuer: &'a [u8],
    pub(crate) this_update: u64,
    pub(crate) next_update: Option<u64>,
    /// Contents of `revokedCertificates` (empty when absent).
    pub(crate) revoked: &'a [u8],
    /// Contents of the outer `signatureAlgorithm`.
    pub(crate) signature_alg: &'a [u8],
    pub(crate) signature: &'a [u8],
    /// `cRLNumber` INTEGER contents.
    pub(crate) crl_number: Option<&'a [u8]>,
    /// `authorityKeyIdentifier.keyIdentifier`.
    pub(crate) authority_key_id: Option<&'a [u8]>,
    pub(crate) idp: Option<IssuingDistributionPoint>,
}

impl<'a> CrlView<'a> {
    /// Decodes a DER CertificateList; trailing data is an error.
    pub(crate) fn parse(der: &'a [u8]) -> Result<Self, CrlError> {
        let outer = single(der, tag::SEQUENCE, "CertificateList")?;
        let mut body = DerCursor::new(outer.value);
        let tbs = body.expect(tag::SEQUENCE, "tbsCertList")?;
        let signature_alg = body.expect(tag::SEQUENCE, "signatureAlgorithm")?.value;
        let signature = bit_string_octets(
            body.expect(tag::BIT_STRING, "signatureValue")?,
            "signatureValue",
        )?;
        body.finish("CertificateList (trailing data)")?;

        let mut t = DerCursor::new(tbs.value);
        let version = match t.optional(tag::INTEGER, "version")? {
            None => CrlVersion::V1,
            Some(v) if v.value == [1] => CrlVersion::V2,
            // RFC 5280 §5.1.2.1: if present, version MUST be v2.
            Some(_) => return Err(CrlError::UnsupportedVersion),
        };
        let tbs_signature_alg = t.expect(tag::SEQUENCE, "signature")?.value;
        let issuer = t.expect(tag::SEQUENCE, "issuer")?;
        if issuer.value.is_empty() {
            // RFC 5280 §5.1.2.3: the issuer field MUST contain a non-empty name.
            return Err(CrlError::Malformed {
                field: "issuer (empty name)",
            });
        }
        let this_update = time(t.any("thisUpdate")?, "thisUpdate")?;
        let next_update = match t.optional(tag::UTC_TIME, "nextUpdate")? {
            Some(tlv) => Some(time(tlv, "nextUpdate")?),
            None => match t.optional(tag::GENERALIZED_TIME, "nextUpdate")? {
                Some(tlv) => Some(time(tlv, "nextUpdate")?),
                None => None,
            },
        };
        let revoked = t
            .optional(tag::SEQUENCE, "revokedCertificates")?
            .map_or(&[][..], |s| s.value);
        let mut view = Self {
            tbs: tbs.full,
            version,
            tbs_signature_alg,
            issuer: issuer.full,
            this_update,
            next_update,
            revoked,
            signature_alg,
            signature,
            crl_number: None,
            authority_key_id: None,
            idp: None,
        };
        if let Some(wrapper) = t.optional(context(0, true), "crlExtensions")? {
            if version == CrlVersion::V1 {
                // RFC 5280 §5.1.2.1: a CRL with extensions MUST be v2.
                return Err(CrlError::Malformed {
                    field: "crlExtensions in a v1 CRL",
                });
            }
            let seq = single(wrapper.value, tag::SEQUENCE, "crlExtensions")?;
            view.absorb_extensions(seq.value)?;
        }
        t.finish("tbsCertList (trailing data)")?;
        if view.tbs_signature_alg != view.signature_alg {
            return Err(CrlError::Malformed {
                field: "signature algorithm differs between tbsCertList and CertificateList (RFC 5280 §5.1.1.2)",
            });
        }
        Ok(view)
    }

    fn absorb_extensions(&mut self, contents: &'a [u8]) -> Result<(), CrlError> {
        let mut seen: Vec<&[u8]> = Vec::new();
        let mut cursor = DerCursor::new(contents);
        if cursor.is_empty() {
            return Err(CrlError::Malformed {
                field: "crlExtensions (empty SEQUENCE)",
            });
        }
        while !cursor.is_empty() {
            let (id, critical, value) = extension(&mut cursor, "crlExtensions")?;
            if seen.contains(&id) {
                return Err(CrlError::Malformed {
                    field: "duplicate CRL extension",
                });
            }
            // Bounds the duplicate check on hostile input (parsed before the
            // signature is verified); real CRLs carry a handful.
            if seen.len() >= MAX_CRL_EXTENSIONS {
                return Err(CrlError::Malformed {
                    field: "too many CRL extensions",
                });
            }
            seen.push(id);
            match id {
                oid::CRL_NUMBER => {
                    if critical {
                        return Err(CrlError::CriticalityViolation {
                            rule: "cRLNumber marked critical (RFC 5280 §5.2.3)",
                        });
                    }
                    let n = single(value, tag::INTEGER, "cRLNumber")?.value;
                    // RFC 5280 §5.2.3: a non-negative integer of at most 20 octets.
                    if n.is_empty() || n.first().is_some_and(|b| b & 0x80 != 0) || n.len() > 21 {
                        return Err(CrlError::Malformed { field: "cRLNumber" });
                    }
                    self.crl_number = Some(n);
                }
                cert_oid::AUTHORITY_KEY_ID => {
                    if critical {
                        return Err(CrlError::CriticalityViolation {
                            rule: "authorityKeyIdentifier marked critical (RFC 5280 §5.2.1)",
                        });
                    }
                    let seq = single(value, tag::SEQUENCE, "authorityKeyIdentifier")?;
                    let mut c = DerCursor::new(seq.value);
                    self.authority_key_id = c
                        .optional(context(0, false), "authorityKeyIdentifier.keyIdentifier")?
                        .map(|t| t.value);
                }
                oid::DELTA_CRL_INDICATOR => return Err(CrlError::DeltaCrl),
                oid::ISSUING_DISTRIBUTION_POINT => {
                    self.idp = Some(IssuingDistributionPoint::parse(value)?);
                }
                // Informational, whatever their criticality.
                cert_oid::ISSUER_ALT_NAME
                | cert_oid::FRESHEST_CRL
                | cert_oid::AUTHORITY_INFO_ACCESS
                | oid::EXPIRED_CERTS_ON_CRL => {}
                other if critical => {
                    return Err(CrlError::UnsupportedCriticalExtension {
                        oid: describe_oid(other),
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// One revoked certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawEntry<'a> {
    /// `userCertificate` INTEGER contents, as encoded.
    pub(crate) serial: &'a [u8],
    /// `revocationDate`, Unix seconds.
    pub(crate) revoked_at: u64,
    /// `reasonCode`, when present.
    pub(crate) reason: Option<u8>,
}

/// Walks the `revokedCertificates` of a CRL, checking each entry.
pub(crate) struct RevokedEntries<'a> {
    cursor: DerCursor<'a>,
    version: CrlVersion,
    failed: bool,
}

impl<'a> RevokedEntries<'a> {
    pub(crate) fn new(view: &CrlView<'a>) -> Self {
        Self {
            cursor: DerCursor::new(view.revoked),
            version: view.version,
            failed: false,
        }
    }

    fn entry(&mut self) -> Result<RawEntry<'a>, CrlError> {
        let seq = self
            .cursor
            .expect(tag::SEQUENCE, "revokedCertificates entry")?;
        let mut e = DerCursor::new(seq.value);
        let serial = e.expect(tag::INTEGER, "userCertificate")?.value;
        if serial.is_empty() || serial.len() > crate::x509::serial::MAX_SERIAL_OCTETS + 1 {
            return Err(CrlError::Malformed {
                field: "userCertificate (empty or longer than 65 octets)",
            });
        }
        let revoked_at = time(e.any("revocationDate")?, "revocationDate")?;
        let mut reason = None;
        if let Some(exts) = e.optional(tag::SEQUENCE, "crlEntryExtensions")? {
            if self.version == CrlVersion::V1 {
                return Err(CrlError::Malformed {
                    field: "crlEntryExtensions in a v1 CRL",
                });
            }
            reason = entry_extensions(exts.value, serial)?;
        }
        e.finish("revokedCertificates entry (trailing data)")?;
        Ok(RawEntry {
            serial,
            revoked_at,
            reason,
        })
    }
}

impl<'a> Iterator for RevokedEntries<'a> {
    type Item = Result<RawEntry<'a>, CrlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.cursor.is_empty() {
            return None;
        }
        let item = self.entry();
        self.failed = item.is_err();
        Some(item)
    }
}

/// Checks the entry extensions and returns the reasonCode.
fn entry_extensions(contents: &[u8], serial: &[u8]) -> Result<Option<u8>, CrlError> {
    let mut cursor = DerCursor::new(contents);
    let mut reason = None;
    let mut seen: [&[u8]; 8] = [&[]; 8];
    let mut seen_len = 0usize;
    if cursor.is_empty() {
        return Err(CrlError::Malformed {
            field: "crlEntryExtensions (empty SEQUENCE)",
        });
    }
    while !cursor.is_empty() {
        let (id, critical, value) = extension(&mut cursor, "crlEntryExtensions")?;
        if seen.get(..seen_len).is_some_and(|s| s.contains(&id)) {
            return Err(CrlError::Malformed {
                field: "duplicate CRL entry extension",
            });
        }
        match seen.get_mut(seen_len) {
            Some(slot) => {
                *slot = id;
                seen_len += 1;
            }
            None => {
                return Err(CrlError::Malformed {
                    field: "too many CRL entry extensions",
                })
            }
        }
        match id {
            oid::REASON_CODE => {
                let e = single(value, 0x0a, "reasonCode (ENUMERATED)")?;
                match e.value {
                    // 7 is unused; removeFromCRL (8) only belongs in delta CRLs.
                    [r @ (0..=6 | 9 | 10)] => reason = Some(*r),
                    _ => {
                        return Err(CrlError::Malformed {
                            field: "reasonCode (unknown or out-of-place value)",
                        })
                    }
                }
            }
            oid::INVALIDITY_DATE => {
                single(value, tag::GENERALIZED_TIME, "invalidityDate")?;
            }
            oid::HOLD_INSTRUCTION_CODE => {}
            // An entry about another issuer's certificate: an indirect CRL.
            oid::CERTIFICATE_ISSUER => return Err(CrlError::IndirectCrl),
            other if critical => {
                return Err(CrlError::UnsupportedCriticalEntryExtension {
                    serial: crate::x509::fields::serial_cloudfront(serial),
                    oid: describe_oid(other),
                })
            }
            _ => {}
        }
    }
    Ok(reason)
}

/// Reads one Extension: (extnID contents, critical, extnValue contents).
fn extension<'a>(
    cursor: &mut DerCursor<'a>,
    what: &'static str,
) -> Result<(&'a [u8], bool, &'a [u8]), CrlError> {
    let ext = cursor.expect(tag::SEQUENCE, what)?;
    let mut e = DerCursor::new(ext.value);
    let id = e.expect(tag::OID, "extnID")?.value;
    let critical = match e.optional(tag::BOOLEAN, "critical")? {
        None => false,
        Some(b) => match b.value {
            [0xff] => true,
            // DER: DEFAULT FALSE is never encoded, and TRUE is 0xff.
            _ => {
                return Err(CrlError::Malformed {
                    field: "extension critical flag (not DER)",
                })
            }
        },
    };
    let value = e.expect(tag::OCTET_STRING, "extnValue")?.value;
    e.finish("Extension (trailing data)")?;
    Ok((id, critical, value))
}

fn time(tlv: Tlv<'_>, what: &'static str) -> Result<u64, CrlError> {
    parse_time(tlv, what)
        .map(|(secs, _)| secs)
        .map_err(|e| CrlError::Malformed { field: e.0 })
}

/// The dotted form of encoded OID contents.
pub(crate) fn describe_oid(contents: &[u8]) -> String {
    der::asn1::ObjectIdentifier::from_bytes(contents)
        .map(|o| o.to_string())
        .unwrap_or_else(|_| "(malformed OID)".into())
}
