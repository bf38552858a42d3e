//! Why revocation checking denied a connection, and what that means on the wire.

use super::{CertPosition, CertStatusKind, RevocationMethod};
use crate::chain_validator::ValidationError;
use crate::reason::{ReasonCode, TlsAlert};
use crate::x509::serial::SerialNumber;

/// A revocation denial; each variant names the check that denied.
///
/// A `serial` displays in CloudFront's spelling (`00:a7:30:9e`).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    /// A deny list or a CRL lists the certificate.
    #[error("{position} (serial {serial}) is revoked according to the {} (reason {})", method_label(*method), reason_label(*reason))]
    Revoked {
        /// Which certificate.
        position: CertPosition,
        /// Its serial.
        serial: SerialNumber,
        /// The source that listed it (`KVS` or `CRL`).
        method: RevocationMethod,
        /// The CRLReason code, when known.
        reason: Option<CrlReason>,
    },
    /// The OCSP responder answered `revoked` or `unknown`.
    #[error("{position} (serial {serial}): OCSP responder answered {}", status.as_str())]
    OcspDenied {
        /// Which certificate.
        position: CertPosition,
        /// Its serial.
        serial: SerialNumber,
        /// `Revoked` or `Unknown`.
        status: CertStatusKind,
        /// The CRLReason code of a revocation, when known.
        reason: Option<CrlReason>,
    },
    /// The OCSP status could not be determined under a hard-fail policy.
    #[error("{position} (serial {serial}): OCSP status could not be determined: {detail}")]
    OcspProcessing {
        /// Which certificate.
        position: CertPosition,
        /// Its serial.
        serial: SerialNumber,
        /// What went wrong.
        detail: String,
    },
    /// The CRLs could not answer (stale CRL, no CRL where one is required)
    /// under a hard-fail policy.
    #[error("{position} (serial {serial}): CRL check failed: {detail}")]
    CrlProcessing {
        /// Which certificate.
        position: CertPosition,
        /// Its serial.
        serial: SerialNumber,
        /// What went wrong.
        detail: String,
    },
    /// The deny-list store could not answer under a hard-fail policy.
    #[error("{position} (serial {serial}): deny list unavailable: {detail}")]
    DenyListUnavailable {
        /// Which certificate.
        position: CertPosition,
        /// Its serial.
        serial: SerialNumber,
        /// What went wrong.
        detail: String,
    },
    /// A certificate of the chain could not be read for revocation checking.
    #[error("{position}: cannot be read for revocation checking: {detail}")]
    UnreadableCertificate {
        /// Which certificate.
        position: CertPosition,
        /// The field that failed to parse.
        detail: &'static str,
    },
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

fn reason_label(reason: Option<CrlReason>) -> &'static str {
    reason.map_or("unspecified", CrlReason::name)
}

/// Why a certificate was revoked: a CRLReason code (RFC 5280 §5.3.1), as
/// CRL entries and OCSP responses carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CrlReason(u8);

impl CrlReason {
    /// `unspecified` (0).
    pub const UNSPECIFIED: Self = Self(0);
    /// `keyCompromise` (1).
    pub const KEY_COMPROMISE: Self = Self(1);
    /// `cACompromise` (2).
    pub const CA_COMPROMISE: Self = Self(2);
    /// `affiliationChanged` (3).
    pub const AFFILIATION_CHANGED: Self = Self(3);
    /// `superseded` (4).
    pub const SUPERSEDED: Self = Self(4);
    /// `cessationOfOperation` (5).
    pub const CESSATION_OF_OPERATION: Self = Self(5);
    /// `certificateHold` (6).
    pub const CERTIFICATE_HOLD: Self = Self(6);
    /// `removeFromCRL` (8).
    pub const REMOVE_FROM_CRL: Self = Self(8);
    /// `privilegeWithdrawn` (9).
    pub const PRIVILEGE_WITHDRAWN: Self = Self(9);
    /// `aACompromise` (10).
    pub const AA_COMPROMISE: Self = Self(10);

    /// The reason with ENUMERATED value `code` (values RFC 5280 does not
    /// define are kept and named `unrecognised`).
    pub const fn from_code(code: u8) -> Self {
        Self(code)
    }

    /// The ENUMERATED value.
    pub const fn code(self) -> u8 {
        self.0
    }

    /// The RFC 5280 §5.3.1 name (`keyCompromise`).
    pub const fn name(self) -> &'static str {
        match self.0 {
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
}

impl core::fmt::Display for CrlReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
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
    pub fn position(&self) -> Option<CertPosition> {
        match self {
            Self::Revoked { position, .. }
            | Self::OcspDenied { position, .. }
            | Self::OcspProcessing { position, .. }
            | Self::CrlProcessing { position, .. }
            | Self::DenyListUnavailable { position, .. }
            | Self::UnreadableCertificate { position, .. } => Some(*position),
            Self::PathRevalidation(_) => None,
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
                status: CertStatusKind::Revoked,
                ..
            } => (R::ClientCertOcspDenied, A::CertificateRevoked),
            Self::OcspDenied { .. } => (R::ClientCertOcspDenied, A::UnknownCa),
            Self::OcspProcessing { .. } => (R::ClientCertOcspProcessingError, A::UnknownCa),
            Self::CrlProcessing { .. } => (R::ClientCertCrlProcessingError, A::UnknownCa),
            Self::DenyListUnavailable { .. } => (R::Internal, A::UnknownCa),
            Self::UnreadableCertificate { .. } => (R::ClientCertInvalid, A::BadCertificate),
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
            position: CertPosition::Leaf,
            serial: SerialNumber::parse("01").unwrap(),
            method: RevocationMethod::Crl,
            reason: Some(CrlReason::KEY_COMPROMISE),
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
            position: CertPosition::Intermediate(0),
            serial: SerialNumber::parse("01").unwrap(),
            detail: "stale".into(),
        };
        assert_eq!(crl.reason_code(), ReasonCode::ClientCertCrlProcessingError);
        assert_eq!(crl.tls_alert(), TlsAlert::UnknownCa);
        let ocsp = RevocationError::OcspDenied {
            position: CertPosition::Leaf,
            serial: SerialNumber::parse("01").unwrap(),
            status: CertStatusKind::Unknown,
            reason: None,
        };
        assert_eq!(ocsp.reason_code(), ReasonCode::ClientCertOcspDenied);
    }
}
