//! Why revocation checking denied a connection, and what that means on the wire.

use core::fmt;

use super::{ChainSlot, RevocationMethod};
use crate::chain_validator::ValidationError;
use crate::reason::{ReasonCode, TlsAlert};

impl fmt::Display for ChainSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Leaf => f.write_str("leaf certificate"),
            Self::Intermediate(i) => write!(f, "intermediate #{i} of the verified path"),
        }
    }
}

/// A revocation denial; each variant names the check that denied.
///
/// `serial` is CloudFront's spelling (`00:a7:30:9e`).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    /// A deny list or a CRL lists the certificate.
    #[error("{slot} (serial {serial}) is revoked according to the {} (reason {})", method_label(*method), reason_label(*reason))]
    Revoked {
        /// Which certificate.
        slot: ChainSlot,
        /// Its serial.
        serial: String,
        /// The source that listed it (`KVS` or `CRL`).
        method: RevocationMethod,
        /// The CRLReason code, when known.
        reason: Option<u8>,
    },
    /// The OCSP responder answered `revoked` or `unknown`.
    #[error("{slot} (serial {serial}): OCSP responder answered {status}")]
    OcspDenied {
        /// Which certificate.
        slot: ChainSlot,
        /// Its serial.
        serial: String,
        /// `Revoked` or `Unknown`.
        status: &'static str,
        /// The CRLReason code of a revocation, when known.
        reason: Option<u8>,
    },
    /// The OCSP status could not be determined under a hard-fail policy.
    #[error("{slot} (serial {serial}): OCSP status could not be determined: {detail}")]
    OcspProcessing {
        /// Which certificate.
        slot: ChainSlot,
        /// Its serial.
        serial: String,
        /// What went wrong.
        detail: String,
    },
    /// The CRLs could not answer (stale CRL, no CRL where one is required)
    /// under a hard-fail policy.
    #[error("{slot} (serial {serial}): CRL check failed: {detail}")]
    CrlProcessing {
        /// Which certificate.
        slot: ChainSlot,
        /// Its serial.
        serial: String,
        /// What went wrong.
        detail: String,
    },
    /// The deny-list store could not answer under a hard-fail policy.
    #[error("{slot} (serial {serial}): deny list unavailable: {detail}")]
    DenyListUnavailable {
        /// Which certificate.
        slot: ChainSlot,
        /// Its serial.
        serial: String,
        /// What went wrong.
        detail: String,
    },
    /// A certificate of the chain could not be read for revocation checking.
    #[error("{slot}: cannot be read for revocation checking: {detail}")]
    UnreadableCertificate {
        /// Which certificate.
        slot: ChainSlot,
        /// The field that failed to parse.
        detail: &'static str,
    },
    /// The verified path's trust anchor is gone (the trust store was replaced
    /// between validation and the revocation check).
    #[error("the trust anchor of the verified path is no longer in the trust store")]
    AnchorUnavailable,
    /// After the handshake (a later check, or a resumed session) the
    /// presented chain no longer validates, so there is no path to check.
    #[error("the presented chain no longer validates: {0}")]
    PathRevalidation(ValidationError),
}

fn method_label(m: RevocationMethod) -> &'static str {
    match m {
        RevocationMethod::DenyList => "deny list (KVS)",
        RevocationMethod::Crl => "CRL",
        RevocationMethod::Ocsp => "OCSP responder",
    }
}

fn reason_label(reason: Option<u8>) -> &'static str {
    match reason {
        None => "unspecified",
        Some(r) => crl_reason_name(r),
    }
}

/// The RFC 5280 §5.3.1 name of a CRLReason code.
pub fn crl_reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unrecognised",
    }
}

impl RevocationError {
    /// The connection-log reason code.
    pub fn reason_code(&self) -> ReasonCode {
        self.classify().0
    }

    /// The TLS alert the handshake ends with.
    pub fn tls_alert(&self) -> TlsAlert {
        self.classify().1
    }

    /// The certificate the error is about, when it is about one.
    pub fn slot(&self) -> Option<ChainSlot> {
        match self {
            Self::Revoked { slot, .. }
            | Self::OcspDenied { slot, .. }
            | Self::OcspProcessing { slot, .. }
            | Self::CrlProcessing { slot, .. }
            | Self::DenyListUnavailable { slot, .. }
            | Self::UnreadableCertificate { slot, .. } => Some(*slot),
            Self::AnchorUnavailable | Self::PathRevalidation(_) => None,
        }
    }

    /// The one table mapping each revocation error to a reason code and an
    /// alert. Undetermined statuses end with `unknown_ca`, as OpenSSL,
    /// BoringSSL, AWS-LC and rustls do.
    fn classify(&self) -> (ReasonCode, TlsAlert) {
        use ReasonCode as R;
        use TlsAlert as A;
        match self {
            Self::Revoked { .. } => (R::ClientCertRevoked, A::CertificateRevoked),
            Self::OcspDenied {
                status: "Revoked", ..
            } => (R::ClientCertOcspDenied, A::CertificateRevoked),
            Self::OcspDenied { .. } => (R::ClientCertOcspDenied, A::UnknownCa),
            Self::OcspProcessing { .. } => (R::ClientCertOcspProcessingError, A::UnknownCa),
            Self::CrlProcessing { .. } => (R::ClientCertCrlProcessingError, A::UnknownCa),
            Self::DenyListUnavailable { .. } => (R::Internal, A::UnknownCa),
            Self::UnreadableCertificate { .. } => (R::ClientCertInvalid, A::BadCertificate),
            Self::AnchorUnavailable => (R::Internal, A::CertificateUnknown),
            Self::PathRevalidation(e) => (e.reason_code(), e.tls_alert()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_maps_to_certificate_revoked() {
        let e = RevocationError::Revoked {
            slot: ChainSlot::Leaf,
            serial: "01".into(),
            method: RevocationMethod::Crl,
            reason: Some(1),
        };
        assert_eq!(e.reason_code(), ReasonCode::ClientCertRevoked);
        assert_eq!(e.reason_code().alb_alias(), "ClientCertCrlHit");
        assert_eq!(e.tls_alert(), TlsAlert::CertificateRevoked);
        assert_eq!(
            e.to_string(),
            "leaf certificate (serial 01) is revoked according to the CRL (reason keyCompromise)"
        );
    }

    #[test]
    fn processing_errors_map_to_their_codes() {
        let crl = RevocationError::CrlProcessing {
            slot: ChainSlot::Intermediate(0),
            serial: "01".into(),
            detail: "stale".into(),
        };
        assert_eq!(crl.reason_code(), ReasonCode::ClientCertCrlProcessingError);
        assert_eq!(crl.tls_alert(), TlsAlert::UnknownCa);
        let ocsp = RevocationError::OcspDenied {
            slot: ChainSlot::Leaf,
            serial: "01".into(),
            status: "Unknown",
            reason: None,
        };
        assert_eq!(ocsp.reason_code(), ReasonCode::ClientCertOcspDenied);
    }
}
