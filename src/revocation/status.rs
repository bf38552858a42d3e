//! CloudFront's `revocationStatus` object, as connection functions see it.
//!
//! ```json
//! { "chainValidity": "Valid",
//!   "certificates": {
//!     "leaf": { "method": "OCSP", "status": "Good", "serialNumber": "00:a7:30:9e" },
//!     "intermediates": [ { "method": "OCSP", "status": "Error",
//!                          "errorType": "InternalError", "serialNumber": "00:a7:30:9e" } ] } }
//! ```
//!
//! Field names and order follow the CloudFront documentation; `errorType` is
//! present only when `status` is `Error`.

use serde::{Deserialize, Serialize};

use super::{CertStatus, CrlReason, RevocationMethod, StatusErrorKind};

/// The verdict over the whole chain (CloudFront's `chainValidity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChainValidity {
    /// Every checked certificate is `Good`.
    Valid,
    /// At least one certificate is `Revoked`.
    Invalid,
    /// No certificate is revoked, but at least one status is `Unknown` or `Error`.
    Unknown,
}

/// Which [`CertStatus`] a certificate has, without its details: the
/// `status` of one certificate's entry in the `revocationStatus` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CertStatusKind {
    /// Not revoked.
    Good,
    /// Revoked.
    Revoked,
    /// The source does not know the certificate, or no source covers it.
    Unknown,
    /// The status could not be determined.
    Error,
}

/// One certificate's entry (`leaf`, or an element of `intermediates`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CertificateRevocationStatus {
    /// How the status was determined.
    pub method: RevocationMethod,
    /// The status.
    pub status: CertStatusKind,
    /// `InternalError` or `Error`; present only when `status` is `Error`.
    #[serde(rename = "errorType", default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// CloudFront's serial spelling (`00:a7:30:9e`).
    #[serde(rename = "serialNumber")]
    pub serial_number: String,
    /// What went wrong, for logs (not part of CloudFront's object).
    #[serde(skip)]
    pub detail: Option<String>,
    /// The CRLReason code of a revocation, when known (not serialised).
    #[serde(skip)]
    pub revocation_reason: Option<CrlReason>,
}

impl CertificateRevocationStatus {
    /// The entry for `status` reported by a source of `method`.
    pub fn new(method: RevocationMethod, status: &CertStatus, serial_number: String) -> Self {
        let (name, error, reason) = match status {
            CertStatus::Good | CertStatus::Unknown => (status.kind(), None, None),
            CertStatus::Revoked { reason, .. } => (status.kind(), None, *reason),
            CertStatus::Error(kind) => (status.kind(), Some(kind), None),
        };
        Self {
            method,
            status: name,
            error_type: error.map(|k: &StatusErrorKind| k.error_type().to_string()),
            serial_number,
            detail: error.map(|k| k.detail().to_string()),
            revocation_reason: reason,
        }
    }
}

/// `certificates`: the leaf and the intermediates of the verified path,
/// leaf's issuer first (the trust anchor is never checked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChainRevocationStatuses {
    /// The leaf.
    pub leaf: CertificateRevocationStatus,
    /// The intermediates (empty when only the leaf is in scope).
    pub intermediates: Vec<CertificateRevocationStatus>,
}

/// CloudFront's `revocationStatus` object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RevocationStatus {
    /// The verdict over the chain.
    #[serde(rename = "chainValidity")]
    pub chain_validity: ChainValidity,
    /// One entry per checked certificate.
    pub certificates: ChainRevocationStatuses,
}

impl RevocationStatus {
    /// Builds the object from per-certificate entries, computing `chainValidity`.
    pub fn from_entries(
        leaf: CertificateRevocationStatus,
        intermediates: Vec<CertificateRevocationStatus>,
    ) -> Self {
        let all = core::iter::once(&leaf).chain(intermediates.iter());
        let mut validity = ChainValidity::Valid;
        for entry in all {
            match entry.status {
                CertStatusKind::Revoked => validity = ChainValidity::Invalid,
                CertStatusKind::Unknown | CertStatusKind::Error
                    if validity == ChainValidity::Valid =>
                {
                    validity = ChainValidity::Unknown;
                }
                _ => {}
            }
        }
        Self {
            chain_validity: validity,
            certificates: ChainRevocationStatuses {
                leaf,
                intermediates,
            },
        }
    }

    /// The object as CloudFront's JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and enums cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
