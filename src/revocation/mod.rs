//! Revocation: deny lists, CRLs and OCSP, composed into CloudFront's
//! `revocationStatus` chain object.
//!
//! A [`RevocationSource`] answers for one certificate and its issuer. Sources
//! that need no I/O (deny lists, CRLs, cached OCSP answers) answer
//! synchronously through [`RevocationSource::check_now`], which the TLS
//! verifier calls inside the handshake (stage 1); the rest answer through the
//! asynchronous [`RevocationSource::check`] after the handshake (stage 2).
//!
//! A [`RevocationChecker`] composes sources in a declared order, each with a
//! [`FailurePolicy`], over a [`RevocationScope`], and produces CloudFront's
//! [`RevocationStatus`] object. The sources here: [`DenyListSource`] over a
//! [`KeyValueStore`](kvs::KeyValueStore) (CloudFront's KeyValueStore
//! recipe) and [`CrlSource`](crl::CrlSource) (ALB trust-store revocations).
//!
//! ```
//! use std::sync::Arc;
//! use edge_mtls::{ImportOptions, MemoryKeyValueStore};
//! use edge_mtls::{DenyListSource, RevocationChecker, RevocationScope};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
//! store.import_kvs_json(
//!     br#"{"data":[{"key":"ABC123DEF456","value":""}]}"#,
//!     ImportOptions::default(),
//! )?;
//! let checker = RevocationChecker::builder()
//!     .source(Arc::new(DenyListSource::new(store)))
//!     .scope(RevocationScope::WholeChain)
//!     .build()?;
//! # let _ = checker;
//! # Ok(())
//! # }
//! ```

mod chain;
mod checker;
pub(crate) mod crl;
mod deny_list;
mod error;
pub(crate) mod generation;
pub(crate) mod kvs;
mod status;

use core::fmt;

pub(crate) use crate::chain_validator::CertPosition;

use rustls_pki_types::UnixTime;

pub(crate) use crate::x509::parsed::ParsedCertificate;
pub(crate) use crate::x509::serial::{SerialNumber, SerialParseError};
pub use chain::RevocationChain;
pub(crate) use checker::KeptAnswer;
pub use checker::{
    CheckerBuildError, FailurePolicy, ImmediateCheck, RevocationChecker, RevocationCheckerBuilder,
    RevocationOutcome, RevocationScope,
};
pub use deny_list::{issuer_id, scoped_key, DenyListSource, IssuerScoping};
pub use error::{CrlReason, RevocationError};
pub use status::{
    CertStatusKind, CertificateRevocationStatus, ChainRevocationStatuses, ChainValidity,
    RevocationStatus,
};

pub(crate) mod ocsp;

/// How a certificate's status was determined (CloudFront's `method`:
/// `KVS`, `CRL` or `OCSP` in the `revocationStatus` object).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum RevocationMethod {
    /// A deny list of serial numbers (CloudFront KeyValueStore recipe).
    #[serde(rename = "KVS")]
    DenyList,
    /// A certificate revocation list.
    #[serde(rename = "CRL")]
    Crl,
    /// The Online Certificate Status Protocol.
    #[serde(rename = "OCSP")]
    Ocsp,
}

impl RevocationMethod {
    /// The name used in the `revocationStatus` object.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DenyList => "KVS",
            Self::Crl => "CRL",
            Self::Ocsp => "OCSP",
        }
    }
}

/// Why a status could not be determined (CloudFront's `errorType`).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusErrorKind {
    /// The source itself failed (timeout, unreachable responder, stale CRL).
    InternalError(String),
    /// The answer was unusable (bad signature, wrong CertID, garbage).
    Error(String),
}

impl StatusErrorKind {
    /// `InternalError` or `Error`, as CloudFront writes it.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::InternalError(_) => "InternalError",
            Self::Error(_) => "Error",
        }
    }

    /// What went wrong, for logs.
    pub fn detail(&self) -> &str {
        match self {
            Self::InternalError(d) | Self::Error(d) => d,
        }
    }
}

/// The revocation status of one certificate.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// Not revoked.
    Good,
    /// Revoked.
    Revoked {
        /// The CRLReason code (RFC 5280 §5.3.1), when known.
        reason: Option<CrlReason>,
        /// When it was revoked (Unix seconds), when known.
        revoked_at: Option<u64>,
    },
    /// The source does not know the certificate (OCSP `unknown`).
    Unknown,
    /// The status could not be determined.
    Error(StatusErrorKind),
}

impl CertStatus {
    /// Which status this is, without its details.
    pub fn kind(&self) -> CertStatusKind {
        match self {
            Self::Good => CertStatusKind::Good,
            Self::Revoked { .. } => CertStatusKind::Revoked,
            Self::Unknown => CertStatusKind::Unknown,
            Self::Error(_) => CertStatusKind::Error,
        }
    }

    /// `Good`, `Revoked`, `Unknown` or `Error`, as CloudFront writes it.
    pub fn as_str(&self) -> &'static str {
        self.kind().as_str()
    }
}

impl CertStatusKind {
    /// `Good`, `Revoked`, `Unknown` or `Error`, as CloudFront writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Good => "Good",
            Self::Revoked => "Revoked",
            Self::Unknown => "Unknown",
            Self::Error => "Error",
        }
    }
}

/// One certificate to check, with the certificate that issued it.
#[derive(Clone, Copy, Debug)]
pub struct CertToCheck<'a> {
    /// The certificate.
    pub cert: &'a ParsedCertificate,
    /// Its issuer (from the verified path, or the trust anchor).
    pub issuer: &'a ParsedCertificate,
    /// Its place in what the client presented (the leaf, or an
    /// intermediate by its index among the certificates sent after it).
    pub position: CertPosition,
}

/// A place revocation answers come from.
#[async_trait::async_trait]
pub trait RevocationSource: Send + Sync + fmt::Debug {
    /// The method reported for answers of this source.
    fn method(&self) -> RevocationMethod;

    /// Whether this source has anything to say about `cert` (a CRL source
    /// has nothing for a CA that publishes no CRL). A certificate no source
    /// applies to is reported `Unknown` and does not deny. Default: always.
    fn applies_to(&self, cert: &CertToCheck<'_>) -> bool {
        let _ = cert;
        true
    }

    /// An answer available without I/O (deny list, CRL, cached OCSP), or
    /// `None` when only [`check`](Self::check) can tell.
    fn check_now(&self, cert: &CertToCheck<'_>, now: UnixTime) -> Option<CertStatus>;

    /// The full answer, performing I/O when needed.
    async fn check(&self, cert: &CertToCheck<'_>, now: UnixTime) -> CertStatus;

    /// A stamp of the data [`applies_to`](Self::applies_to) and
    /// [`check_now`](Self::check_now) answer from: while it stays the same,
    /// so do their answers for a given certificate, whatever the time. A
    /// change takes a new stamp from [`next_data_stamp`]. `None` (the
    /// default) when answers may change without a new stamp (they depend on
    /// the time, like a CRL's `nextUpdate` or a cached OCSP response's
    /// expiry): such a source is asked on every connection.
    ///
    /// A repeated client's chain keeps the answers of its last check with
    /// the stamps they were given under, and is checked again only when a
    /// stamp differs.
    fn data_version(&self) -> Option<u64> {
        None
    }
}

/// A new, process-wide unique stamp for [`RevocationSource::data_version`]
/// and [`KeyValueStore::version`](crate::KeyValueStore::version) (never 0;
/// later calls return larger numbers).
pub fn next_data_stamp() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
