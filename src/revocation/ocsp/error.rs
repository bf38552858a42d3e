//! What can go wrong while asking an OCSP responder, and how each failure is
//! reported in CloudFront's `revocationStatus` object.

use super::transport::TransportError;
use crate::revocation::StatusErrorKind;

/// Why an OCSP answer could not be obtained or was not accepted.
///
/// Every variant names the check that failed. [`to_status_error`] maps the
/// ones where the responder or the network failed to CloudFront's
/// `InternalError` and the ones where an answer arrived but could not be
/// trusted to `Error` ("OCSP response verification failed: ...").
///
/// [`to_status_error`]: OcspError::to_status_error
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// The certificate has no id-ad-ocsp URL in authorityInfoAccess and
    /// every certificate is required to carry one (CloudFront's rule).
    #[error("the certificate has no OCSP responder URL (authorityInfoAccess id-ad-ocsp)")]
    NoResponderUrl,
    /// The responder URL is not a URI the transport can use.
    #[error("invalid OCSP responder URL {url:?}")]
    InvalidResponderUrl {
        /// The URL as found in the certificate or configuration.
        url: String,
    },
    /// The certificate or its issuer could not be read.
    #[error("unreadable {which} certificate ({field})")]
    CertificateUnreadable {
        /// `certificate` or `issuer`.
        which: &'static str,
        /// The field the DER reader stopped at.
        field: &'static str,
    },
    /// The request could not be encoded (for example a serial number longer
    /// than RFC 5280 allows).
    #[error("OCSP request encoding failed: {0}")]
    RequestEncoding(String),
    /// The HTTP exchange failed.
    #[error("OCSP transport: {0}")]
    Transport(#[from] TransportError),
    /// No answer arrived within the total deadline.
    #[error("no OCSP answer within the deadline of {deadline_ms} ms")]
    DeadlineExceeded {
        /// The configured deadline.
        deadline_ms: u64,
    },
    /// [`check`](crate::revocation::RevocationSource::check) was called
    /// outside a tokio runtime.
    #[error("OCSP lookups need a tokio runtime")]
    NoRuntime,
    /// The lookup this check was waiting on was abandoned.
    #[error("the shared OCSP lookup was abandoned")]
    LookupAbandoned,
    /// The response is not well-formed DER of the expected structure.
    #[error("malformed OCSP response ({0})")]
    Malformed(&'static str),
    /// `responseStatus` is not `successful` (RFC 6960 §4.2.1).
    #[error("OCSP responder answered {status}")]
    ResponderStatus {
        /// `malformedRequest`, `internalError`, `tryLater`, `sigRequired`,
        /// `unauthorized` or the raw number.
        status: &'static str,
    },
    /// `responseType` is not id-pkix-ocsp-basic.
    #[error("unsupported OCSP responseType {oid}")]
    UnsupportedResponseType {
        /// The OID, dotted.
        oid: String,
    },
    /// `ResponseData.version` is not v1.
    #[error("unsupported OCSP ResponseData version")]
    UnsupportedVersion,
    /// The response carries a critical extension this crate does not process.
    #[error("unsupported critical extension {oid} in the OCSP response")]
    UnsupportedCriticalExtension {
        /// The OID, dotted.
        oid: String,
    },
    /// Neither the issuer nor a certificate in `certs` matches `responderID`.
    #[error("no certificate matches the responderID")]
    ResponderNotFound,
    /// A delegated responder certificate is not issued by the certificate's issuer.
    #[error("delegated OCSP responder certificate is not issued by the certificate's issuer")]
    ResponderNotIssuedByIssuer,
    /// The issuer's signature on a delegated responder certificate does not verify.
    #[error("delegated OCSP responder certificate signature does not verify: {0}")]
    ResponderCertSignature(&'static str),
    /// A delegated responder certificate lacks extendedKeyUsage id-kp-OCSPSigning
    /// (RFC 6960 §4.2.2.2).
    #[error("delegated OCSP responder certificate lacks id-kp-OCSPSigning (1.3.6.1.5.5.7.3.9)")]
    ResponderMissingOcspSigning,
    /// A delegated responder certificate's keyUsage forbids digitalSignature.
    #[error("delegated OCSP responder certificate keyUsage lacks digitalSignature")]
    ResponderKeyUsage,
    /// A delegated responder certificate is outside its validity period.
    #[error("delegated OCSP responder certificate is not valid at {now} (notBefore {not_before}, notAfter {not_after})")]
    ResponderCertNotValid {
        /// Verification time, Unix seconds.
        now: u64,
        /// `notBefore`, Unix seconds.
        not_before: u64,
        /// `notAfter`, Unix seconds.
        not_after: u64,
    },
    /// The response signature does not verify with the signer's key.
    #[error("OCSP response signature does not verify: {0}")]
    Signature(&'static str),
    /// No SingleResponse carries the requested CertID (hash algorithm,
    /// issuerNameHash, issuerKeyHash and serial number).
    #[error("no SingleResponse matches the requested CertID")]
    CertIdMismatch,
    /// `thisUpdate` is later than now plus the allowed clock skew.
    #[error("OCSP thisUpdate {this_update} is in the future (now {now})")]
    ThisUpdateInFuture {
        /// `thisUpdate`, Unix seconds.
        this_update: u64,
        /// Verification time, Unix seconds.
        now: u64,
    },
    /// `nextUpdate` is earlier than now minus the allowed clock skew.
    #[error("OCSP response is stale: nextUpdate {next_update} has passed (now {now})")]
    Expired {
        /// `nextUpdate`, Unix seconds.
        next_update: u64,
        /// Verification time, Unix seconds.
        now: u64,
    },
    /// A response without `nextUpdate` is older than the configured maximum age.
    #[error("OCSP response without nextUpdate is too old: thisUpdate {this_update} (now {now})")]
    TooOld {
        /// `thisUpdate`, Unix seconds.
        this_update: u64,
        /// Verification time, Unix seconds.
        now: u64,
    },
    /// A nonce was sent and the response does not echo it.
    #[error("OCSP response does not echo the request nonce")]
    NonceMismatch,
}

impl OcspError {
    /// The status error reported for this failure: `InternalError` when the
    /// responder could not be asked (network, deadline, responder-side
    /// failure), `Error` when an answer was unusable.
    pub fn to_status_error(&self) -> StatusErrorKind {
        match self {
            Self::Transport(_)
            | Self::DeadlineExceeded { .. }
            | Self::LookupAbandoned
            | Self::NoRuntime
            | Self::ResponderStatus { .. }
            | Self::RequestEncoding(_) => StatusErrorKind::InternalError(self.to_string()),
            Self::NoResponderUrl | Self::InvalidResponderUrl { .. } => {
                StatusErrorKind::Error(self.to_string())
            }
            _ => StatusErrorKind::Error(format!("OCSP response verification failed: {self}")),
        }
    }
}

/// A configuration error caught by
/// [`OcspSourceBuilder::build`](super::OcspSourceBuilder::build).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OcspBuildError {
    /// The override responder URL does not parse as an absolute URI.
    #[error("invalid OCSP responder override URL {0:?}")]
    InvalidOverrideUrl(String),
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// The per-request timeout is longer than the total deadline.
    #[error("request_timeout ({request_ms} ms) exceeds the deadline ({deadline_ms} ms)")]
    TimeoutExceedsDeadline {
        /// The per-request timeout.
        request_ms: u64,
        /// The total deadline.
        deadline_ms: u64,
    },
    /// The response size limit is outside 1 KiB..=1 MiB.
    #[error("max_response_size {0} is outside 1024..=1048576 bytes")]
    InvalidResponseSizeLimit(usize),
    /// The nonce length is outside 1..=32 (RFC 8954).
    #[error("nonce length {0} is outside 1..=32 (RFC 8954)")]
    InvalidNonceLength(usize),
    /// The crypto provider offers no signature verification algorithm.
    #[error("the crypto provider has no signature verification algorithms")]
    NoSignatureAlgorithms,
    /// No transport was set and the built-in HTTP one is not compiled in.
    #[error("no OCSP transport: set one with `transport` or enable the `ocsp-http` feature")]
    NoTransport,
}
