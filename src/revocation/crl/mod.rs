//! Certificate revocation lists (RFC 5280 §5) with ALB trust-store semantics.
//!
//! A [`CrlSource`] holds any number of CRLs, each added with
//! [`CrlSource::add`] (PEM or DER, v1 or v2) and given a [`RevocationId`]
//! that never changes and is never reused, like ALB's
//! `AddTrustStoreRevocations`; [`CrlSource::remove`] deletes one by id. A
//! CRL is accepted only when its signature verifies, through the rustls
//! `CryptoProvider`, with the key of a CA certificate whose subject is the
//! CRL's issuer (and whose keyUsage, if any, allows cRLSign). At lookup a
//! CRL answers for a certificate only when the certificate's issuer in the
//! verified path has that name *and* that key.
//!
//! Each CRL is indexed once (a hash table over one contiguous arena), so a
//! lookup is O(1) and a million-entry CRL loads in a fraction of a second.
//! Negative serials (which ALB cannot revoke) are matched like any other.
//!
//! Not supported, and rejected when adding with an error that says so: delta
//! CRLs, indirect CRLs, CRLs partitioned by reason, CRLs for attribute
//! certificates, unknown critical CRL or entry extensions.

mod index;
mod list;
mod parse;
mod pem;
mod scope;
mod source;

use std::path::PathBuf;
use std::time::Duration;

use crate::x509::der::DerError;

pub use index::RevokedEntry;
pub use list::RevocationList;
pub use parse::CrlVersion;
pub use source::{CrlInfo, CrlSource, CrlSourceBuilder, RevocationId};

/// Why a CRL could not be added, reloaded or removed.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    /// The CRL file could not be read.
    #[error("cannot read {path}: {detail}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        detail: String,
    },
    /// Neither a DER CRL nor PEM with one `X509 CRL` block.
    #[error("not a CRL: {detail}")]
    NotACrl {
        /// What was found instead.
        detail: String,
    },
    /// The DER structure is wrong; names the field.
    #[error("malformed CRL: {field}")]
    Malformed {
        /// The field or rule.
        field: &'static str,
    },
    /// The CRL breaks a structure rule the configured profile enforces.
    #[error("CRL refused by the validation profile: {rule}")]
    ProfileViolation {
        /// The rule.
        rule: crate::x509::profile::ProfileRule,
    },
    /// `version` is present but not v2.
    #[error("unsupported CRL version (RFC 5280 §5.1.2.1 allows v1, by omission, and v2)")]
    UnsupportedVersion,
    /// An extension's criticality contradicts RFC 5280.
    #[error("CRL extension criticality: {rule}")]
    CriticalityViolation {
        /// The rule broken.
        rule: &'static str,
    },
    /// A critical CRL extension this crate does not process.
    #[error("unsupported critical CRL extension {oid}")]
    UnsupportedCriticalExtension {
        /// Its OID.
        oid: String,
    },
    /// A critical CRL entry extension this crate does not process.
    #[error("entry {serial}: unsupported critical CRL entry extension {oid}")]
    UnsupportedCriticalEntryExtension {
        /// The entry's serial.
        serial: String,
        /// The extension's OID.
        oid: String,
    },
    /// A delta CRL (deltaCRLIndicator); only complete CRLs are supported.
    #[error("delta CRLs are not supported; add the complete (base) CRL")]
    DeltaCrl,
    /// An indirect CRL (indirectCRL, or certificateIssuer entries).
    #[error("indirect CRLs (entries for another issuer's certificates) are not supported")]
    IndirectCrl,
    /// An issuingDistributionPoint form this crate does not handle.
    #[error("unsupported issuingDistributionPoint: {detail}")]
    UnsupportedDistributionPoint {
        /// Which form.
        detail: &'static str,
    },
    /// More bytes than the limit.
    #[error("CRL of {bytes} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// More entries than the limit.
    #[error("CRL with {count} entries exceeds the limit of {limit}")]
    TooManyEntries {
        /// How many.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// No given CA certificate has the CRL's issuer as its subject.
    #[error("CRL issuer {issuer} is not among the given CA certificates")]
    IssuerNotFound {
        /// The CRL's issuer, RFC 2253.
        issuer: String,
    },
    /// The issuer's keyUsage does not allow signing CRLs.
    #[error("CA {issuer} may not sign CRLs: its keyUsage lacks cRLSign (RFC 5280 §4.2.1.3)")]
    IssuerCannotSignCrls {
        /// The issuer, RFC 2253.
        issuer: String,
    },
    /// The signature does not verify with any candidate issuer's key.
    #[error("CRL signature does not verify with the key of {issuer} ({candidates} candidate certificate(s) tried)")]
    BadSignature {
        /// The CRL's issuer, RFC 2253.
        issuer: String,
        /// How many CA certificates with that name were tried.
        candidates: usize,
    },
    /// The signature algorithm is not one the crypto provider offers for the issuer's key.
    #[error("CRL signature algorithm {algorithm} is not supported for the issuer's key")]
    UnsupportedSignatureAlgorithm {
        /// Its OID.
        algorithm: String,
    },
    /// A reload would replace a CRL with an older one (rollback).
    #[error("reloaded CRL is older than the one in use (thisUpdate {new_this_update} < {current_this_update}, or a lower cRLNumber)")]
    Older {
        /// The reloaded CRL's thisUpdate.
        new_this_update: u64,
        /// The current one's.
        current_this_update: u64,
    },
    /// A reload changed the CRL's issuer.
    #[error("reloaded CRL is issued by {new_issuer}, not {issuer}")]
    IssuerChanged {
        /// The issuer in use.
        issuer: String,
        /// The reloaded CRL's issuer.
        new_issuer: String,
    },
    /// No CRL has this revocation id.
    #[error("no revocation with id {0}")]
    NotFound(RevocationId),
    /// The CRL was added from bytes, so there is no file to reload.
    #[error("revocation {0} was not added from a file")]
    NotFromFile(RevocationId),
}

impl From<DerError> for CrlError {
    fn from(e: DerError) -> Self {
        Self::Malformed { field: e.0 }
    }
}

/// Guards on what a CRL may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrlLimits {
    /// Largest accepted CRL (DER or PEM), in bytes. Default 512 MiB.
    pub max_crl_bytes: usize,
    /// Most entries in one CRL. Default 20 million.
    pub max_entries: usize,
}

impl Default for CrlLimits {
    fn default() -> Self {
        Self {
            max_crl_bytes: 512 * 1024 * 1024,
            max_entries: 20_000_000,
        }
    }
}

/// What a CRL past `nextUpdate` + grace (or before `thisUpdate`) answers.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum StalePolicy {
    /// Every certificate it covers is denied, whatever the source's failure
    /// policy: status `Error` (kind `Error`), reason
    /// `ClientCertCrlProcessingError`. Default.
    #[default]
    Deny,
    /// Status `Unknown`: denied under hard-fail, allowed under soft-fail.
    TreatAsUnknown,
    /// Keep answering from the stale CRL.
    KeepUsing,
}

/// What a certificate whose issuer has no CRL in the source answers.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum MissingCrlPolicy {
    /// The CRL source does not apply (ALB: certificates of CAs without a CRL
    /// are not revocation-checked). Default.
    #[default]
    NotChecked,
    /// Status `Unknown`: denied under hard-fail.
    Unknown,
}

/// Timing rules for CRL freshness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Freshness {
    /// How long after `nextUpdate` a CRL still counts as current. Default 0.
    pub grace: Duration,
    /// Tolerated clock skew for `thisUpdate` in the future. Default 5 minutes.
    pub clock_skew: Duration,
    /// What a stale CRL answers.
    pub stale: StalePolicy,
}

impl Default for Freshness {
    fn default() -> Self {
        Self {
            grace: Duration::ZERO,
            clock_skew: Duration::from_secs(300),
            stale: StalePolicy::Deny,
        }
    }
}
