//! Reading and verifying an OCSPResponse (RFC 6960 §4.2) for one
//! certificate: a pure function of the bytes, the issuer, the expected
//! CertID, the nonce sent and the time — no I/O, no clock.
//!
//! The response is walked with the crate's strict zero-copy DER reader so the
//! signature is checked over the exact `tbsResponseData` bytes received, and
//! nothing in it is trusted until that signature verifies.

use der::Decode;
use rustls::crypto::WebPkiSupportedAlgorithms;

use super::cert_id::CertIdHash;
use super::error::OcspError;
use super::responder::{authorized_signer, describe, ResponderId};
use crate::revocation::{CertStatus, CrlReason};
use crate::x509::cert::Cert;
use crate::x509::der::{bit_string_octets, context, single, tag, DerCursor, Tlv};
use crate::x509::signature::verify_raw;

/// id-pkix-ocsp-basic 1.3.6.1.5.5.7.48.1.1
const OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// id-pkix-ocsp-nonce 1.3.6.1.5.5.7.48.1.2
pub(crate) const OCSP_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
const ENUMERATED: u8 = 0x0a;

/// At most this many SingleResponses and extensions are read.
const MAX_SINGLE_RESPONSES: usize = 512;
const MAX_EXTENSIONS: usize = 32;

/// A verified OCSP answer for one certificate.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspAnswer {
    /// `Good`, `Revoked { reason, revoked_at }` or `Unknown`.
    pub status: CertStatus,
    /// `producedAt`, Unix seconds.
    pub produced_at: u64,
    /// `thisUpdate`, Unix seconds.
    pub this_update: u64,
    /// `nextUpdate`, Unix seconds, when the responder gave one.
    pub next_update: Option<u64>,
}

/// What a response must match.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expectation<'a> {
    /// The issuer of the certificate asked about.
    pub(crate) issuer: &'a Cert<'a>,
    /// The certificate's serialNumber INTEGER contents.
    pub(crate) serial: &'a [u8],
    /// The nonce extnValue sent, which the response must echo.
    pub(crate) nonce_value: Option<&'a [u8]>,
    /// Verification time, Unix seconds.
    pub(crate) now: u64,
    /// Allowed clock difference with the responder, seconds.
    pub(crate) clock_skew: u64,
    /// Longest accepted age of a response without `nextUpdate`, seconds.
    pub(crate) max_age_without_next_update: Option<u64>,
}

/// Verifies `der` as the answer about `expect.serial`.
pub(crate) fn verify_response(
    algorithms: &WebPkiSupportedAlgorithms,
    expect: &Expectation<'_>,
    der: &[u8],
) -> Result<OcspAnswer, OcspError> {
    let basic = basic_response_bytes(der)?;
    let basic = BasicResponse::parse(basic)?;

    let signer = authorized_signer(
        algorithms,
        expect.issuer,
        basic.responder,
        basic.certs,
        expect.now,
        expect.clock_skew,
    )?;
    verify_raw(
        algorithms,
        signer.algorithm,
        signer.key,
        basic.signature_alg,
        basic.tbs,
        basic.signature,
    )
    .map_err(|f| OcspError::Signature(describe(f)))?;

    // From here on the content is the signer's word.
    if let Some(sent) = expect.nonce_value {
        if basic.nonce != Some(sent) {
            return Err(OcspError::NonceMismatch);
        }
    }
    let single = find_single(expect, basic.responses)?;
    check_times(expect, &single)?;
    Ok(OcspAnswer {
        status: single.status,
        produced_at: basic.produced_at,
        this_update: single.this_update,
        next_update: single.next_update,
    })
}

/// OCSPResponse → the BasicOCSPResponse DER, after `responseStatus`.
fn basic_response_bytes(der: &[u8]) -> Result<&[u8], OcspError> {
    let m = OcspError::Malformed;
    let outer = single(der, tag::SEQUENCE, "OCSPResponse").map_err(|_| m("OCSPResponse"))?;
    let mut c = DerCursor::new(outer.value);
    let status = c
        .expect(ENUMERATED, "responseStatus")
        .map_err(|_| m("responseStatus"))?;
    match status.value {
        [0] => {}
        [n] => {
            return Err(OcspError::ResponderStatus {
                status: match n {
                    1 => "malformedRequest",
                    2 => "internalError",
                    3 => "tryLater",
                    5 => "sigRequired",
                    6 => "unauthorized",
                    _ => "an undefined responseStatus",
                },
            })
        }
        _ => return Err(m("responseStatus")),
    }
    let bytes = c
        .expect(context(0, true), "responseBytes")
        .map_err(|_| m("responseBytes"))?;
    c.finish("OCSPResponse")
        .map_err(|_| m("OCSPResponse (trailing data)"))?;
    let rb = single(bytes.value, tag::SEQUENCE, "ResponseBytes").map_err(|_| m("ResponseBytes"))?;
    let mut r = DerCursor::new(rb.value);
    let kind = r
        .expect(tag::OID, "responseType")
        .map_err(|_| m("responseType"))?;
    let response = r
        .expect(tag::OCTET_STRING, "response")
        .map_err(|_| m("response"))?;
    r.finish("ResponseBytes")
        .map_err(|_| m("ResponseBytes (trailing data)"))?;
    if kind.value != OCSP_BASIC {
        return Err(OcspError::UnsupportedResponseType {
            oid: describe_oid(kind.value),
        });
    }
    Ok(response.value)
}

/// BasicOCSPResponse, borrowed.
struct BasicResponse<'a> {
    /// The whole `tbsResponseData` encoding: what the signature covers.
    tbs: &'a [u8],
    responder: ResponderId<'a>,
    produced_at: u64,
    /// Contents of `responses` (SEQUENCE OF SingleResponse).
    responses: &'a [u8],
    /// The nonce extension's extnValue contents.
    nonce: Option<&'a [u8]>,
    signature_alg: &'a [u8],
    signature: &'a [u8],
    /// Contents of `certs` (SEQUENCE OF Certificate); empty when absent.
    certs: &'a [u8],
}

impl<'a> BasicResponse<'a> {
    fn parse(der: &'a [u8]) -> Result<Self, OcspError> {
        let m = OcspError::Malformed;
        let outer =
            single(der, tag::SEQUENCE, "BasicOCSPResponse").map_err(|_| m("BasicOCSPResponse"))?;
        let mut c = DerCursor::new(outer.value);
        let tbs = c
            .expect(tag::SEQUENCE, "tbsResponseData")
            .map_err(|_| m("tbsResponseData"))?;
        let signature_alg = c
            .expect(tag::SEQUENCE, "signatureAlgorithm")
            .map_err(|_| m("signatureAlgorithm"))?
            .value;
        let signature = c
            .expect(tag::BIT_STRING, "signature")
            .and_then(|t| bit_string_octets(t, "signature"))
            .map_err(|_| m("signature"))?;
        let certs = match c
            .optional(context(0, true), "certs")
            .map_err(|_| m("certs"))?
        {
            Some(wrapper) => {
                single(wrapper.value, tag::SEQUENCE, "certs")
                    .map_err(|_| m("certs"))?
                    .value
            }
            None => &[],
        };
        c.finish("BasicOCSPResponse")
            .map_err(|_| m("BasicOCSPResponse (trailing data)"))?;

        let mut t = DerCursor::new(tbs.value);
        if let Some(v) = t
            .optional(context(0, true), "version")
            .map_err(|_| m("version"))?
        {
            let int = single(v.value, tag::INTEGER, "version").map_err(|_| m("version"))?;
            if int.value != [0] {
                return Err(OcspError::UnsupportedVersion);
            }
        }
        let rid = t.any("responderID").map_err(|_| m("responderID"))?;
        let responder = if rid.tag == context(1, true) {
            ResponderId::ByName(
                single(rid.value, tag::SEQUENCE, "responderID byName")
                    .map_err(|_| m("responderID byName"))?
                    .full,
            )
        } else if rid.tag == context(2, true) {
            ResponderId::ByKey(
                single(rid.value, tag::OCTET_STRING, "responderID byKey")
                    .map_err(|_| m("responderID byKey"))?
                    .value,
            )
        } else {
            return Err(m("responderID"));
        };
        let produced_at = generalized_time(
            t.expect(tag::GENERALIZED_TIME, "producedAt")
                .map_err(|_| m("producedAt"))?,
            "producedAt",
        )?;
        let responses = t
            .expect(tag::SEQUENCE, "responses")
            .map_err(|_| m("responses"))?
            .value;
        let mut nonce = None;
        if let Some(exts) = t
            .optional(context(1, true), "responseExtensions")
            .map_err(|_| m("responseExtensions"))?
        {
            for_each_extension(exts.value, "responseExtensions", |oid, critical, value| {
                if oid == OCSP_NONCE {
                    nonce = Some(value);
                    Ok(())
                } else if critical {
                    Err(OcspError::UnsupportedCriticalExtension {
                        oid: describe_oid(oid),
                    })
                } else {
                    Ok(())
                }
            })?;
        }
        t.finish("tbsResponseData")
            .map_err(|_| m("tbsResponseData (trailing data)"))?;
        Ok(Self {
            tbs: tbs.full,
            responder,
            produced_at,
            responses,
            nonce,
            signature_alg,
            signature,
            certs,
        })
    }
}

/// Calls `f(oid, critical, extnValue contents)` for each Extension inside
/// an `[n] EXPLICIT Extensions` wrapper's contents.
fn for_each_extension<'a>(
    wrapper: &'a [u8],
    what: &'static str,
    mut f: impl FnMut(&'a [u8], bool, &'a [u8]) -> Result<(), OcspError>,
) -> Result<(), OcspError> {
    let m = OcspError::Malformed;
    let list = single(wrapper, tag::SEQUENCE, what).map_err(|_| m(what))?;
    let mut c = DerCursor::new(list.value);
    for _ in 0..MAX_EXTENSIONS {
        if c.is_empty() {
            return Ok(());
        }
        let ext = c.expect(tag::SEQUENCE, what).map_err(|_| m(what))?;
        let mut e = DerCursor::new(ext.value);
        let oid = e.expect(tag::OID, what).map_err(|_| m(what))?.value;
        let critical = match e.optional(tag::BOOLEAN, what).map_err(|_| m(what))? {
            None => false,
            Some(b) => match b.value {
                [0xff] => true,
                // DER forbids encoding the DEFAULT FALSE, but responders do.
                [0x00] => false,
                _ => return Err(m(what)),
            },
        };
        let value = e
            .expect(tag::OCTET_STRING, what)
            .map_err(|_| m(what))?
            .value;
        e.finish(what).map_err(|_| m(what))?;
        f(oid, critical, value)?;
    }
    Err(m("too many extensions"))
}

/// The matching SingleResponse, decoded.
struct Single {
    status: CertStatus,
    this_update: u64,
    next_update: Option<u64>,
}

/// Finds the SingleResponse whose CertID is the expected one, whatever hash
/// algorithm (SHA-1 or SHA-256) the responder chose.
fn find_single(expect: &Expectation<'_>, responses: &[u8]) -> Result<Single, OcspError> {
    let m = OcspError::Malformed;
    let issuer = expect.issuer;
    // (name hash, key hash) per algorithm, computed on first use.
    let mut hashes: [Option<([u8; 32], [u8; 32])>; 2] = [None, None];
    let mut c = DerCursor::new(responses);
    for _ in 0..MAX_SINGLE_RESPONSES {
        if c.is_empty() {
            return Err(OcspError::CertIdMismatch);
        }
        let single_tlv = c
            .expect(tag::SEQUENCE, "SingleResponse")
            .map_err(|_| m("SingleResponse"))?;
        let mut s = DerCursor::new(single_tlv.value);
        let cert_id = s.expect(tag::SEQUENCE, "certID").map_err(|_| m("certID"))?;
        let mut id = DerCursor::new(cert_id.value);
        let alg = id
            .expect(tag::SEQUENCE, "hashAlgorithm")
            .map_err(|_| m("certID.hashAlgorithm"))?;
        let name_hash = id
            .expect(tag::OCTET_STRING, "issuerNameHash")
            .map_err(|_| m("certID.issuerNameHash"))?
            .value;
        let key_hash = id
            .expect(tag::OCTET_STRING, "issuerKeyHash")
            .map_err(|_| m("certID.issuerKeyHash"))?
            .value;
        let serial = id
            .expect(tag::INTEGER, "serialNumber")
            .map_err(|_| m("certID.serialNumber"))?
            .value;
        id.finish("certID")
            .map_err(|_| m("certID (trailing data)"))?;

        let Some(hash) = CertIdHash::from_algorithm(alg.value) else {
            continue; // an algorithm we never ask with: not our entry
        };
        let slot = match hash {
            CertIdHash::Sha1 => 0,
            CertIdHash::Sha256 => 1,
        };
        let (want_name, want_key) = match hashes.get_mut(slot) {
            Some(Some(h)) => *h,
            Some(entry) => {
                *entry.insert((hash.digest(issuer.subject), hash.digest(issuer.public_key)))
            }
            None => continue,
        };
        let len = hash.len();
        if serial != expect.serial
            || Some(name_hash) != want_name.get(..len)
            || Some(key_hash) != want_key.get(..len)
        {
            continue;
        }
        return parse_single_rest(s);
    }
    Err(OcspError::Malformed("too many SingleResponses"))
}

/// certStatus, thisUpdate, nextUpdate and singleExtensions of a SingleResponse.
fn parse_single_rest(mut s: DerCursor<'_>) -> Result<Single, OcspError> {
    let m = OcspError::Malformed;
    let status_tlv = s.any("certStatus").map_err(|_| m("certStatus"))?;
    let status = if status_tlv.tag == context(0, false) && status_tlv.value.is_empty() {
        CertStatus::Good
    } else if status_tlv.tag == context(2, false) && status_tlv.value.is_empty() {
        CertStatus::Unknown
    } else if status_tlv.tag == context(1, true) {
        let mut r = DerCursor::new(status_tlv.value);
        let at = generalized_time(
            r.expect(tag::GENERALIZED_TIME, "revocationTime")
                .map_err(|_| m("revocationTime"))?,
            "revocationTime",
        )?;
        let reason = match r
            .optional(context(0, true), "revocationReason")
            .map_err(|_| m("revocationReason"))?
        {
            None => None,
            Some(wrapper) => match single(wrapper.value, ENUMERATED, "revocationReason")
                .map_err(|_| m("revocationReason"))?
                .value
            {
                // CRLReason (RFC 5280 §5.3.1): 0..=10, 7 unused.
                [n] if *n <= 10 && *n != 7 => Some(*n),
                _ => return Err(m("revocationReason")),
            },
        };
        r.finish("RevokedInfo").map_err(|_| m("RevokedInfo"))?;
        CertStatus::Revoked {
            reason: reason.map(CrlReason::from_code),
            revoked_at: Some(at),
        }
    } else {
        return Err(m("certStatus"));
    };
    let this_update = generalized_time(
        s.expect(tag::GENERALIZED_TIME, "thisUpdate")
            .map_err(|_| m("thisUpdate"))?,
        "thisUpdate",
    )?;
    let next_update = match s
        .optional(context(0, true), "nextUpdate")
        .map_err(|_| m("nextUpdate"))?
    {
        None => None,
        Some(wrapper) => Some(generalized_time(
            single(wrapper.value, tag::GENERALIZED_TIME, "nextUpdate")
                .map_err(|_| m("nextUpdate"))?,
            "nextUpdate",
        )?),
    };
    if let Some(exts) = s
        .optional(context(1, true), "singleExtensions")
        .map_err(|_| m("singleExtensions"))?
    {
        for_each_extension(exts.value, "singleExtensions", |oid, critical, _| {
            if critical {
                Err(OcspError::UnsupportedCriticalExtension {
                    oid: describe_oid(oid),
                })
            } else {
                Ok(())
            }
        })?;
    }
    s.finish("SingleResponse")
        .map_err(|_| m("SingleResponse (trailing data)"))?;
    if next_update.is_some_and(|n| n < this_update) {
        return Err(m("nextUpdate before thisUpdate"));
    }
    Ok(Single {
        status,
        this_update,
        next_update,
    })
}

/// RFC 6960 §4.2.2.1: a response is current between thisUpdate and
/// nextUpdate; both ends get the configured clock skew.
fn check_times(expect: &Expectation<'_>, single: &Single) -> Result<(), OcspError> {
    let now = expect.now;
    if single.this_update > now.saturating_add(expect.clock_skew) {
        return Err(OcspError::ThisUpdateInFuture {
            this_update: single.this_update,
            now,
        });
    }
    match single.next_update {
        Some(next_update) if next_update.saturating_add(expect.clock_skew) < now => {
            Err(OcspError::Expired { next_update, now })
        }
        None if expect
            .max_age_without_next_update
            .is_some_and(|max| single.this_update.saturating_add(max) < now) =>
        {
            Err(OcspError::TooOld {
                this_update: single.this_update,
                now,
            })
        }
        _ => Ok(()),
    }
}

/// A DER GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix seconds.
fn generalized_time(tlv: Tlv<'_>, what: &'static str) -> Result<u64, OcspError> {
    der::asn1::GeneralizedTime::from_der(tlv.full)
        .map(|t| t.to_unix_duration().as_secs())
        .map_err(|_| OcspError::Malformed(what))
}

fn describe_oid(contents: &[u8]) -> String {
    der::asn1::ObjectIdentifier::from_bytes(contents)
        .map(|o| o.to_string())
        .unwrap_or_else(|_| "(malformed OID)".into())
}
