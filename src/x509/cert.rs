//! A borrowed view of one X.509 certificate (RFC 5280 §4.1).
//!
//! Only the envelope and the extensions path validation needs are decoded;
//! everything else stays as borrowed DER so a handshake pays for no copies.

use der::Decode;

use super::der::{bit_string_octets, context, single, tag, DerCursor, Tlv};
pub(crate) use super::der::{check_integer_encoding, CertParseError};
use super::extensions::Extensions;

/// The certificate's `version` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
    V3,
}

/// A parsed certificate borrowing from its DER encoding.
#[derive(Clone, Debug)]
pub(crate) struct Cert<'a> {
    pub(crate) der: &'a [u8],
    /// The whole `tbsCertificate` encoding: what the signature covers.
    pub(crate) tbs: &'a [u8],
    pub(crate) version: Version,
    /// Contents of the serial INTEGER (two's complement, sign byte kept).
    pub(crate) serial: &'a [u8],
    /// Contents of the TBS `signature` AlgorithmIdentifier.
    pub(crate) tbs_signature_alg: &'a [u8],
    /// The full encoding of the issuer Name.
    pub(crate) issuer: &'a [u8],
    /// The full encoding of the subject Name.
    pub(crate) subject: &'a [u8],
    /// `notBefore`, seconds since the Unix epoch.
    pub(crate) not_before: u64,
    /// `notAfter`, seconds since the Unix epoch.
    pub(crate) not_after: u64,
    /// A validity date before 2050 is encoded as GeneralizedTime (RFC 5280
    /// §4.1.2.5 wants UTCTime; a structure rule, see `profile`).
    pub(crate) generalized_time_before_2050: bool,
    /// The full SubjectPublicKeyInfo encoding.
    pub(crate) spki: &'a [u8],
    /// Contents of the SPKI AlgorithmIdentifier.
    pub(crate) spki_alg: &'a [u8],
    /// The `subjectPublicKey` BIT STRING octets.
    pub(crate) public_key: &'a [u8],
    /// Contents of the outer `signatureAlgorithm`.
    pub(crate) signature_alg: &'a [u8],
    /// The signature octets.
    pub(crate) signature: &'a [u8],
    pub(crate) extensions: Extensions<'a>,
}

/// Certificates parsed so far (debug builds only): lets tests count the
/// parses one handshake costs.
#[cfg(debug_assertions)]
static PARSES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn count_parse() {
    #[cfg(debug_assertions)]
    PARSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// How many certificates this process has parsed, in whole or in part
/// (`None` in release builds, which do not count).
pub(crate) fn parses_so_far() -> Option<u64> {
    #[cfg(debug_assertions)]
    return Some(PARSES.load(std::sync::atomic::Ordering::Relaxed));
    #[cfg(not(debug_assertions))]
    None
}

impl<'a> Cert<'a> {
    /// Parses a DER certificate; trailing data is an error.
    pub(crate) fn parse(der: &'a [u8]) -> Result<Self, CertParseError> {
        count_parse();
        let outer = single(der, tag::SEQUENCE, "Certificate")?;
        let mut body = DerCursor::new(outer.value);
        let tbs = body.expect(tag::SEQUENCE, "tbsCertificate")?;
        let signature_alg = body.expect(tag::SEQUENCE, "signatureAlgorithm")?.value;
        let signature = bit_string_octets(
            body.expect(tag::BIT_STRING, "signatureValue")?,
            "signatureValue",
        )?;
        body.finish("Certificate (trailing data)")?;

        let mut t = DerCursor::new(tbs.value);
        let version = match t.optional(context(0, true), "version")? {
            None => Version::V1,
            Some(v) => {
                let int = single(v.value, tag::INTEGER, "version")?;
                match int.value {
                    // DER forbids encoding the DEFAULT v1 explicitly.
                    [1] => Version::V2,
                    [2] => Version::V3,
                    _ => return Err(CertParseError("version")),
                }
            }
        };
        let serial = t.expect(tag::INTEGER, "serialNumber")?.value;
        check_integer_encoding(serial).ok_or(CertParseError("serialNumber"))?;
        let tbs_signature_alg = t.expect(tag::SEQUENCE, "signature")?.value;
        let issuer = t.expect(tag::SEQUENCE, "issuer")?.full;
        let validity = t.expect(tag::SEQUENCE, "validity")?;
        let (not_before, not_after, generalized_time_before_2050) = parse_validity(validity)?;
        let subject = t.expect(tag::SEQUENCE, "subject")?.full;
        let spki_tlv = t.expect(tag::SEQUENCE, "subjectPublicKeyInfo")?;
        let (spki_alg, public_key) = parse_spki(spki_tlv.value)?;

        if t.optional(context(1, false), "issuerUniqueID")?.is_some() && version == Version::V1 {
            return Err(CertParseError("issuerUniqueID in a v1 certificate"));
        }
        if t.optional(context(2, false), "subjectUniqueID")?.is_some() && version == Version::V1 {
            return Err(CertParseError("subjectUniqueID in a v1 certificate"));
        }
        let extensions = match t.optional(context(3, true), "extensions")? {
            None => Extensions::default(),
            Some(_) if version != Version::V3 => {
                return Err(CertParseError("extensions in a non-v3 certificate"))
            }
            Some(wrapper) => {
                let seq = single(wrapper.value, tag::SEQUENCE, "extensions")?;
                Extensions::parse(seq.value)?
            }
        };
        t.finish("tbsCertificate (trailing data)")?;

        Ok(Self {
            der,
            tbs: tbs.full,
            version,
            serial,
            tbs_signature_alg,
            issuer,
            subject,
            not_before,
            not_after,
            generalized_time_before_2050,
            spki: spki_tlv.full,
            spki_alg,
            public_key,
            signature_alg,
            signature,
            extensions,
        })
    }

    /// Only the SubjectPublicKeyInfo of a certificate (its serial number
    /// checked on the way): what a handshake signature check and an issuer
    /// id need, without the names and extensions.
    pub(crate) fn parse_head(der: &'a [u8]) -> Result<Head<'a>, CertParseError> {
        count_parse();
        let outer = single(der, tag::SEQUENCE, "Certificate")?;
        let tbs = DerCursor::new(outer.value).expect(tag::SEQUENCE, "tbsCertificate")?;
        let mut t = DerCursor::new(tbs.value);
        t.optional(context(0, true), "version")?;
        let serial = t.expect(tag::INTEGER, "serialNumber")?.value;
        check_integer_encoding(serial).ok_or(CertParseError("serialNumber"))?;
        for field in ["signature", "issuer", "validity", "subject"] {
            t.expect(tag::SEQUENCE, field)?;
        }
        let spki_tlv = t.expect(tag::SEQUENCE, "subjectPublicKeyInfo")?;
        let (spki_alg, public_key) = parse_spki(spki_tlv.value)?;
        Ok(Head {
            spki: spki_tlv.full,
            spki_alg,
            public_key,
        })
    }

    /// Whether the certificate may act as a CA when configured as a trust
    /// anchor. RFC 5280 §6.1.4 (k) lets v1/v2 certificates be CAs only as
    /// anchors; a v3 certificate is one when basicConstraints asserts `cA`
    /// or, without basicConstraints, when keyUsage asserts keyCertSign (what
    /// OpenSSL's `X509_check_ca` accepts). A present basicConstraints
    /// without `cA` is a constraint and always wins.
    pub(crate) fn may_act_as_anchor_ca(&self) -> bool {
        match (self.version, self.extensions.basic_constraints) {
            (Version::V1 | Version::V2, _) => true,
            (Version::V3, Some(bc)) => bc.ca,
            (Version::V3, None) => self
                .extensions
                .key_usage
                .is_some_and(|ku| ku.has(super::extensions::KeyUsage::KEY_CERT_SIGN)),
        }
    }

    /// Subject and issuer are the same name (RFC 5280 §6.1 "self-issued").
    pub(crate) fn is_self_issued(&self) -> bool {
        self.subject == self.issuer
    }

    /// The subject Name contents (the RDNSequence without its header).
    pub(crate) fn subject_is_empty(&self) -> bool {
        matches!(single(self.subject, tag::SEQUENCE, "subject"), Ok(t) if t.value.is_empty())
    }
}

/// DER INTEGER contents must be minimal and non-empty (X.690 §8.3.2).
/// The key of a certificate ([`Cert::parse_head`]).
pub(crate) struct Head<'a> {
    /// The whole SubjectPublicKeyInfo TLV.
    pub(crate) spki: &'a [u8],
    /// Its AlgorithmIdentifier's contents.
    pub(crate) spki_alg: &'a [u8],
    /// The key bits.
    pub(crate) public_key: &'a [u8],
}

/// The algorithm and key bits of a SubjectPublicKeyInfo's contents.
fn parse_spki(contents: &[u8]) -> Result<(&[u8], &[u8]), CertParseError> {
    let mut s = DerCursor::new(contents);
    let alg = s
        .expect(tag::SEQUENCE, "subjectPublicKeyInfo.algorithm")?
        .value;
    let key = bit_string_octets(
        s.expect(tag::BIT_STRING, "subjectPublicKey")?,
        "subjectPublicKey",
    )?;
    s.finish("subjectPublicKeyInfo")?;
    Ok((alg, key))
}

fn parse_validity(validity: Tlv<'_>) -> Result<(u64, u64, bool), CertParseError> {
    let mut v = DerCursor::new(validity.value);
    let (not_before, early_before) = parse_time(v.any("notBefore")?, "notBefore")?;
    let (not_after, early_after) = parse_time(v.any("notAfter")?, "notAfter")?;
    v.finish("validity")?;
    Ok((not_before, not_after, early_before || early_after))
}

/// A UTCTime or GeneralizedTime in `Z`, as Unix seconds, and whether it is a
/// GeneralizedTime before 2050. RFC 5280 §4.1.2.5 tells CAs to use UTCTime
/// through 2049; the instant is unambiguous either way (OpenSSL and webpki
/// read both), so the choice is a structure rule, not a parse error.
pub(crate) fn parse_time(tlv: Tlv<'_>, what: &'static str) -> Result<(u64, bool), CertParseError> {
    match tlv.tag {
        tag::UTC_TIME => Ok((
            der::asn1::UtcTime::from_der(tlv.full)
                .map_err(|_| CertParseError(what))?
                .to_unix_duration()
                .as_secs(),
            false,
        )),
        tag::GENERALIZED_TIME => {
            let t =
                der::asn1::GeneralizedTime::from_der(tlv.full).map_err(|_| CertParseError(what))?;
            Ok((
                t.to_unix_duration().as_secs(),
                t.to_date_time().year() < 2050,
            ))
        }
        _ => Err(CertParseError(what)),
    }
}
