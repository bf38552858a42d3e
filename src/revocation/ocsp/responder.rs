//! Who may sign an OCSP response (RFC 6960 §4.2.2.2): the certificate's
//! issuer itself, or a delegated responder whose certificate the issuer
//! signed directly and marked with id-kp-OCSPSigning.
//!
//! Accepting any certificate the issuer signed would let every client
//! certificate holder sign "good" answers for revoked siblings, so the EKU
//! is mandatory and the delegation is one level deep.

use rustls::crypto::WebPkiSupportedAlgorithms;
use sha1::{Digest, Sha1};

use super::error::OcspError;
use crate::x509::cert::Cert;
use crate::x509::der::{tag, DerCursor};
use crate::x509::extensions::KeyUsage;
use crate::x509::signature::{verify_signed_by, SignatureFailure};

/// id-kp-OCSPSigning 1.3.6.1.5.5.7.3.9
const KP_OCSP_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];

/// How many certificates of `certs` are looked at: real responders send one
/// (the delegated responder) or two (plus its issuer).
pub(crate) const MAX_RESPONDER_CERTS: usize = 8;

/// `ResponderID` (RFC 6960 §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResponderId<'a> {
    /// `byName`: the whole Name encoding.
    ByName(&'a [u8]),
    /// `byKey`: SHA-1 of the responder's subjectPublicKey BIT STRING octets.
    ByKey(&'a [u8]),
}

impl ResponderId<'_> {
    fn matches(&self, subject: &[u8], public_key: &[u8]) -> bool {
        match self {
            Self::ByName(name) => *name == subject,
            Self::ByKey(hash) => *hash == Sha1::digest(public_key).as_slice(),
        }
    }
}

/// The key a response must verify under: AlgorithmIdentifier contents and
/// the BIT STRING octets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SignerKey<'a> {
    pub(crate) algorithm: &'a [u8],
    pub(crate) key: &'a [u8],
}

/// Finds and authorizes the signer named by `responder`.
pub(crate) fn authorized_signer<'a>(
    algorithms: &WebPkiSupportedAlgorithms,
    issuer: &Cert<'a>,
    responder: ResponderId<'_>,
    certs: &'a [u8],
    now: u64,
    clock_skew: u64,
) -> Result<SignerKey<'a>, OcspError> {
    if responder.matches(issuer.subject, issuer.public_key) {
        return Ok(SignerKey {
            algorithm: issuer.spki_alg,
            key: issuer.public_key,
        });
    }
    let mut list = DerCursor::new(certs);
    for _ in 0..MAX_RESPONDER_CERTS {
        if list.is_empty() {
            break;
        }
        let der = list
            .expect(tag::SEQUENCE, "certs")
            .map_err(|_| OcspError::Malformed("certs"))?
            .full;
        let cert = Cert::parse(der).map_err(|_| OcspError::Malformed("responder certificate"))?;
        if !responder.matches(cert.subject, cert.public_key) {
            continue;
        }
        authorize_delegate(algorithms, issuer, &cert, now, clock_skew)?;
        return Ok(SignerKey {
            algorithm: cert.spki_alg,
            key: cert.public_key,
        });
    }
    Err(OcspError::ResponderNotFound)
}

fn authorize_delegate(
    algorithms: &WebPkiSupportedAlgorithms,
    issuer: &Cert<'_>,
    delegate: &Cert<'_>,
    now: u64,
    clock_skew: u64,
) -> Result<(), OcspError> {
    if delegate.issuer != issuer.subject {
        return Err(OcspError::ResponderNotIssuedByIssuer);
    }
    verify_signed_by(algorithms, delegate, issuer)
        .map_err(|f| OcspError::ResponderCertSignature(describe(f)))?;
    if delegate.extensions.eku_contains(KP_OCSP_SIGNING) != Some(true) {
        return Err(OcspError::ResponderMissingOcspSigning);
    }
    if delegate
        .extensions
        .key_usage
        .is_some_and(|ku| !ku.has(KeyUsage::DIGITAL_SIGNATURE))
    {
        return Err(OcspError::ResponderKeyUsage);
    }
    if delegate.not_before > now.saturating_add(clock_skew)
        || delegate.not_after.saturating_add(clock_skew) < now
    {
        return Err(OcspError::ResponderCertNotValid {
            now,
            not_before: delegate.not_before,
            not_after: delegate.not_after,
        });
    }
    Ok(())
}

/// A short reason for a failed signature check.
pub(crate) fn describe(failure: SignatureFailure) -> &'static str {
    match failure {
        SignatureFailure::UnsupportedAlgorithm => "unsupported signature algorithm",
        SignatureFailure::AlgorithmKeyMismatch => "signature algorithm does not fit the key",
        SignatureFailure::Invalid => "invalid signature",
    }
}
