//! Why a client certificate chain was rejected, and what that means on the wire.

use core::fmt;

use crate::reason::{ReasonCode, TlsAlert};
use crate::x509::fields::iso8601;
use crate::x509::profile::ProfileRule;

/// Which certificate a validation error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertPosition {
    /// The end-entity (leaf) certificate.
    Leaf,
    /// The certificate at this index of the intermediates the client sent
    /// (0-based, in the order received).
    Intermediate(usize),
    /// The trust anchor at this index of the trust store.
    TrustAnchor(usize),
}

impl fmt::Display for CertPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Leaf => f.write_str("leaf certificate"),
            Self::Intermediate(i) => write!(f, "intermediate certificate #{i}"),
            Self::TrustAnchor(i) => write!(f, "trust anchor #{i}"),
        }
    }
}

/// A chain-validation failure; each variant names the check that failed.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A certificate is not valid DER or violates the X.509 structure.
    #[error("{position}: malformed certificate: {detail}")]
    BadEncoding {
        /// The certificate.
        position: CertPosition,
        /// The field or rule that failed.
        detail: &'static str,
    },
    /// A certificate breaks a structure rule the validation profile
    /// enforces (see [`Profile`](super::Profile)).
    #[error("{position}: {rule}")]
    ProfileViolation {
        /// The certificate.
        position: CertPosition,
        /// The rule, with its source.
        rule: ProfileRule,
    },
    /// A certificate carries policyConstraints; certificate policies are not
    /// processed, so the constraint could not be honoured.
    #[error("{position}: policyConstraints present; certificate policy processing (RFC 5280 §6.1.3 (d)-(f)) is not supported")]
    PolicyConstraintsNotProcessed {
        /// The certificate.
        position: CertPosition,
    },
    /// `notAfter` is in the past.
    #[error("{position}: expired at {} (now {})", iso8601(*not_after), iso8601(*now))]
    Expired {
        /// The certificate.
        position: CertPosition,
        /// Its `notAfter`.
        not_after: u64,
        /// The validation time.
        now: u64,
    },
    /// `notBefore` is in the future.
    #[error("{position}: not valid before {} (now {})", iso8601(*not_before), iso8601(*now))]
    NotYetValid {
        /// The certificate.
        position: CertPosition,
        /// Its `notBefore`.
        not_before: u64,
        /// The validation time.
        now: u64,
    },
    /// No path from the leaf to a trust anchor could be built.
    #[error("no path to a trust anchor: issuer of the {position} is unknown")]
    UnknownIssuer {
        /// The certificate whose issuer could not be found.
        position: CertPosition,
    },
    /// A signature does not verify with the issuer's key.
    #[error("{position}: signature does not verify with the issuer's key")]
    BadSignature {
        /// The certificate whose signature failed.
        position: CertPosition,
    },
    /// The signature algorithm is not supported by the crypto provider or policy.
    #[error("{position}: unsupported signature algorithm {algorithm}")]
    UnsupportedSignatureAlgorithm {
        /// The certificate.
        position: CertPosition,
        /// The algorithm's OID.
        algorithm: String,
    },
    /// A public key is of an unsupported type or size.
    #[error("{position}: unsupported key: {detail}")]
    UnsupportedKey {
        /// The certificate.
        position: CertPosition,
        /// The key type or size.
        detail: String,
    },
    /// An issuer is not a CA (no basicConstraints `cA`, or a v1 certificate
    /// that is not a configured anchor).
    #[error("{position}: used as an issuer but is not a CA certificate")]
    IssuerNotCa {
        /// The issuer.
        position: CertPosition,
    },
    /// An issuer's pathLenConstraint is exceeded.
    #[error("{position}: pathLenConstraint {limit} exceeded by {actual} intermediate(s) below it")]
    PathLenConstraintViolated {
        /// The issuer.
        position: CertPosition,
        /// Its pathLenConstraint.
        limit: u64,
        /// The number of non-self-issued intermediates below it.
        actual: u64,
    },
    /// An issuer's keyUsage lacks `keyCertSign`.
    #[error("{position}: keyUsage lacks keyCertSign")]
    IssuerKeyUsageInvalid {
        /// The issuer.
        position: CertPosition,
    },
    /// The leaf's keyUsage lacks a required bit (e.g. `digitalSignature`).
    #[error("leaf certificate: keyUsage lacks a required usage (required bits {required:#06x})")]
    LeafKeyUsageInvalid {
        /// The required bits (bit `n` of the ASN.1 BIT STRING as `1 << n`).
        required: u16,
    },
    /// The required extended key usage (e.g. clientAuth) is not allowed.
    #[error("{position}: extendedKeyUsage does not allow {required}")]
    RequiredEkuNotFound {
        /// The certificate.
        position: CertPosition,
        /// The required key purpose OID.
        required: String,
    },
    /// A name is outside a CA's name constraints.
    #[error("{position}: name constraints of an issuer violated: {detail}")]
    NameConstraintViolation {
        /// The certificate whose name violates the constraint.
        position: CertPosition,
        /// Which name and how.
        detail: String,
    },
    /// A certificate has a critical extension this crate does not process.
    #[error("{position}: unsupported critical extension {oid}")]
    UnsupportedCriticalExtension {
        /// The certificate.
        position: CertPosition,
        /// The extension's OID.
        oid: String,
    },
    /// The path is longer than `max_chain_depth`.
    #[error("chain depth {depth} exceeds the limit of {limit} (including the trust anchor)")]
    MaxChainDepthExceeded {
        /// The shortest path length found.
        depth: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The presented chain has too many certificates or bytes.
    #[error("presented chain too large: {detail}")]
    ChainTooLarge {
        /// Which limit.
        detail: String,
    },
    /// A certificate version is not accepted (v1 under `require_v3`, or v2).
    #[error("{position}: X.509 version not accepted: {detail}")]
    UnsupportedVersion {
        /// The certificate.
        position: CertPosition,
        /// Why.
        detail: &'static str,
    },
    /// Path building ran out of its work budget.
    #[error("path building exceeded its {what} budget")]
    BudgetExceeded {
        /// Which budget: signatures, path-building calls or name comparisons.
        what: &'static str,
    },
}

impl ValidationError {
    /// The connection-log reason code.
    pub fn reason_code(&self) -> ReasonCode {
        self.classify().0
    }

    /// The TLS alert the handshake ends with.
    pub fn tls_alert(&self) -> TlsAlert {
        self.classify().1
    }

    /// The certificate the failed check concerns, when it concerns one
    /// (chain-wide limits such as depth and work budgets concern none).
    pub fn position(&self) -> Option<CertPosition> {
        match self {
            Self::BadEncoding { position, .. }
            | Self::ProfileViolation { position, .. }
            | Self::Expired { position, .. }
            | Self::NotYetValid { position, .. }
            | Self::UnknownIssuer { position }
            | Self::BadSignature { position }
            | Self::UnsupportedSignatureAlgorithm { position, .. }
            | Self::UnsupportedKey { position, .. }
            | Self::IssuerNotCa { position }
            | Self::PathLenConstraintViolated { position, .. }
            | Self::IssuerKeyUsageInvalid { position }
            | Self::RequiredEkuNotFound { position, .. }
            | Self::NameConstraintViolation { position, .. }
            | Self::UnsupportedCriticalExtension { position, .. }
            | Self::PolicyConstraintsNotProcessed { position }
            | Self::UnsupportedVersion { position, .. } => Some(*position),
            Self::LeafKeyUsageInvalid { .. } => Some(CertPosition::Leaf),
            Self::MaxChainDepthExceeded { .. }
            | Self::ChainTooLarge { .. }
            | Self::BudgetExceeded { .. } => None,
        }
    }

    /// The one table mapping each validation error to a reason code and an alert.
    fn classify(&self) -> (ReasonCode, TlsAlert) {
        use ReasonCode as R;
        use TlsAlert as A;
        match self {
            Self::BadEncoding { .. } => (R::ClientCertInvalid, A::BadCertificate),
            Self::ProfileViolation { .. } => (R::ClientCertInvalid, A::BadCertificate),
            Self::Expired { .. } => (R::ClientCertExpired, A::CertificateExpired),
            Self::NotYetValid { .. } => (R::ClientCertNotYetValid, A::CertificateExpired),
            Self::UnknownIssuer { .. } => (R::ClientCertUntrusted, A::UnknownCa),
            Self::BadSignature { .. } => (R::ClientCertInvalid, A::BadCertificate),
            Self::UnsupportedSignatureAlgorithm { .. } => {
                (R::ClientCertTypeUnsupported, A::UnsupportedCertificate)
            }
            Self::UnsupportedKey { .. } => {
                (R::ClientCertTypeUnsupported, A::UnsupportedCertificate)
            }
            Self::IssuerNotCa { .. } => (R::ClientCertUntrusted, A::BadCertificate),
            Self::PathLenConstraintViolated { .. } => (R::ClientCertInvalid, A::BadCertificate),
            Self::IssuerKeyUsageInvalid { .. } => (R::ClientCertInvalid, A::BadCertificate),
            Self::LeafKeyUsageInvalid { .. } => {
                (R::ClientCertIntentInvalid, A::UnsupportedCertificate)
            }
            Self::RequiredEkuNotFound { .. } => {
                (R::ClientCertIntentInvalid, A::UnsupportedCertificate)
            }
            Self::NameConstraintViolation { .. } => (R::ClientCertRejected, A::BadCertificate),
            Self::UnsupportedCriticalExtension { .. } => (R::ClientCertInvalid, A::BadCertificate),
            Self::PolicyConstraintsNotProcessed { .. } => {
                (R::ClientCertInvalid, A::UnsupportedCertificate)
            }
            Self::MaxChainDepthExceeded { .. } => {
                (R::ClientCertMaxChainDepthExceeded, A::BadCertificate)
            }
            Self::ChainTooLarge { .. } => (R::ClientCertMaxSizeExceeded, A::BadCertificate),
            Self::UnsupportedVersion { .. } => (R::ClientCertInvalid, A::UnsupportedCertificate),
            Self::BudgetExceeded { .. } => {
                (R::ClientCertValidationBudgetExceeded, A::BadCertificate)
            }
        }
    }

    /// How specific the error is, to report the most telling failure when
    /// several candidate paths fail (higher wins).
    pub(crate) fn rank(&self) -> u8 {
        match self {
            Self::UnknownIssuer { .. } => 0,
            Self::MaxChainDepthExceeded { .. } => 2,
            Self::BudgetExceeded { .. } => 3,
            _ => 1,
        }
    }
}
