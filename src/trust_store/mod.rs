//! Trust stores: the CA certificates client certificates must chain to.
//!
//! A [`TrustStore`] is built from one or more CA bundles (PEM with comments
//! and blank lines between blocks, or DER). Every certificate in it is a trust
//! anchor: path building stops at the first one it reaches, whether it is a
//! root or an intermediate (CloudFront and ALB semantics). A
//! [`TrustStoreHandle`] swaps whole stores atomically for hot reloads.

mod bundle;
mod handle;
mod source;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use rustls::DistinguishedName;
use rustls_pki_types::CertificateDer;

use crate::x509::cert::Cert;
use crate::x509::name::rfc2253;
use crate::x509::parsed::ParsedCertificate;
use crate::x509::profile::{self, ProfileRule, Role};
use crate::x509::signature::KeyPolicy;

pub use handle::TrustStoreHandle;
pub use source::{BytesSource, DirectorySource, FileSource, TrustStoreSource};

/// Why a trust store could not be built; names the source, block and subject.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TrustStoreError {
    /// A bundle file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A bundle file is not a regular file, is larger than the limit, or
    /// cannot be read.
    #[error(transparent)]
    File(#[from] crate::file_input::FileInputError),
    /// A PEM block could not be decoded, or the bundle is neither PEM nor DER.
    #[error("{source_name}: block #{block}: {detail}")]
    Pem {
        /// The bundle's name (file path or caller-given label).
        source_name: String,
        /// The 0-based block index within the bundle.
        block: usize,
        /// What was wrong.
        detail: String,
    },
    /// A block is not a parsable X.509 certificate.
    #[error("{source_name}: block #{block}: not a valid certificate (cannot decode {detail})")]
    UnparsableCertificate {
        /// The bundle's name.
        source_name: String,
        /// The 0-based block index.
        block: usize,
        /// The field that failed to parse.
        detail: &'static str,
    },
    /// A certificate is not a CA certificate (v3 without basicConstraints cA).
    #[error("{source_name}: block #{block} ({subject}): not a CA certificate")]
    NotCa {
        /// The bundle's name.
        source_name: String,
        /// The 0-based block index.
        block: usize,
        /// The certificate's subject, RFC 2253.
        subject: String,
    },
    /// A certificate's key or signature algorithm is not supported.
    #[error("{source_name}: block #{block} ({subject}): unsupported key: {detail}")]
    UnsupportedKey {
        /// The bundle's name.
        source_name: String,
        /// The 0-based block index.
        block: usize,
        /// The certificate's subject, RFC 2253.
        subject: String,
        /// The key type or size.
        detail: String,
    },
    /// The store would hold no certificate.
    #[error("trust store is empty")]
    Empty,
    /// More certificates than the configured limit.
    #[error("trust store holds {count} certificates, more than the limit of {limit}")]
    TooManyCertificates {
        /// How many were given.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A bundle is larger than the configured limit.
    #[error("{source_name}: {bytes} bytes, more than the limit of {limit}")]
    BundleTooLarge {
        /// The bundle's name.
        source_name: String,
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

/// A note about a bundle that did not stop it from loading.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustStoreWarning {
    /// The same certificate appeared more than once; later copies were dropped.
    Duplicate {
        /// The bundle's name.
        source_name: String,
        /// The 0-based block index of the dropped copy.
        block: usize,
        /// The subject, RFC 2253.
        subject: String,
    },
    /// The certificate breaks structure rules a conforming CA follows. It is
    /// loaded all the same: a trust anchor is an input (RFC 5280 §6.1.1 (d)),
    /// and only the `Strict` validation profile refuses paths ending at it.
    StructureRules {
        /// The bundle's name.
        source_name: String,
        /// The 0-based block index.
        block: usize,
        /// The subject, RFC 2253.
        subject: String,
        /// The rules broken.
        rules: Vec<ProfileRule>,
    },
}

impl core::fmt::Display for TrustStoreWarning {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Duplicate {
                source_name,
                block,
                subject,
            } => write!(
                f,
                "{source_name}: block #{block} ({subject}): duplicate certificate, dropped"
            ),
            Self::StructureRules {
                source_name,
                block,
                subject,
                rules,
            } => {
                write!(
                    f,
                    "{source_name}: block #{block} ({subject}): loaded; breaks "
                )?;
                for (i, rule) in rules.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{rule}")?;
                }
                f.write_str(" (refused only under the strict profile)")
            }
        }
    }
}

/// Limits on what a trust store accepts (no arbitrary CloudFront-style caps;
/// these are guards against mistakes, configurable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustStoreLimits {
    /// Maximum number of CA certificates.
    pub max_certificates: usize,
    /// Maximum size of one bundle, in bytes.
    pub max_bundle_bytes: usize,
}

impl Default for TrustStoreLimits {
    fn default() -> Self {
        Self {
            max_certificates: 100_000,
            max_bundle_bytes: 256 * 1024 * 1024,
        }
    }
}

/// One trust anchor.
#[derive(Clone, Debug)]
pub struct TrustAnchor {
    cert: ParsedCertificate,
    subject: String,
}

impl TrustAnchor {
    /// The anchor's DER encoding.
    pub fn der(&self) -> &CertificateDer<'static> {
        self.cert.der()
    }

    /// The anchor, parsed (once, when the store was built).
    pub fn certificate(&self) -> &ParsedCertificate {
        &self.cert
    }

    /// The anchor's subject, RFC 2253.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

/// An immutable set of trust anchors, indexed for path building.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor>,
    by_subject: HashMap<Box<[u8]>, Vec<usize>>,
    by_key_id: HashMap<Box<[u8]>, Vec<usize>>,
    subjects: Vec<DistinguishedName>,
    warnings: Vec<TrustStoreWarning>,
    generation: u64,
    /// The CRLs and deny list of the same generation (hot reload swaps all
    /// three at once).
    /// What rides along with this generation (the revocation module's CRLs
    /// and deny list; the trust store does not look inside).
    attached: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl TrustStore {
    /// A builder for a store made of several bundles.
    pub fn builder() -> TrustStoreBuilder {
        TrustStoreBuilder::default()
    }

    /// Builds a store from one PEM or DER bundle.
    pub fn from_pem(bundle: &[u8]) -> Result<Self, TrustStoreError> {
        Self::builder().add_bundle("bundle", bundle).build()
    }

    /// The number of CA certificates (CloudFront's `NumberOfCaCertificates`).
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether the store holds no certificate (never true for a built store).
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// The anchors, in load order after de-duplication.
    pub fn anchors(&self) -> &[TrustAnchor] {
        &self.anchors
    }

    /// Notes from loading (duplicates dropped).
    pub fn warnings(&self) -> &[TrustStoreWarning] {
        &self.warnings
    }

    /// The subject DNs of every anchor, for `advertise_ca_names`.
    pub fn subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }

    /// The reload generation this store was installed as (0 before any handle).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Indices of the anchors whose subject is exactly `name_der`.
    pub(crate) fn anchors_named(&self, name_der: &[u8]) -> &[usize] {
        self.by_subject.get(name_der).map_or(&[], Vec::as_slice)
    }

    /// Indices of the anchors whose subjectKeyIdentifier is `key_id`.
    pub(crate) fn anchors_with_key_id(&self, key_id: &[u8]) -> &[usize] {
        self.by_key_id.get(key_id).map_or(&[], Vec::as_slice)
    }

    /// The anchor at `index`.
    pub(crate) fn anchor(&self, index: usize) -> Option<&ParsedCertificate> {
        self.anchors.get(index).map(|a| &a.cert)
    }

    pub(crate) fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }

    /// What rides along with this generation, when anything does.
    pub(crate) fn attached(&self) -> Option<&Arc<dyn std::any::Any + Send + Sync>> {
        self.attached.as_ref()
    }

    /// This store with `data` riding along.
    pub(crate) fn with_attached(mut self, data: Arc<dyn std::any::Any + Send + Sync>) -> Self {
        self.attached = Some(data);
        self
    }
}

/// Collects bundles and limits, then validates everything in [`build`](Self::build).
#[derive(Default)]
pub struct TrustStoreBuilder {
    bundles: Vec<(String, Vec<u8>)>,
    errors: Vec<TrustStoreError>,
    limits: TrustStoreLimits,
    key_policy: KeyPolicy,
}

impl TrustStoreBuilder {
    /// Adds a PEM or DER bundle under a name used in errors.
    pub fn add_bundle(mut self, name: impl Into<String>, bytes: &[u8]) -> Self {
        self.bundles.push((name.into(), bytes.to_vec()));
        self
    }

    /// Adds every bundle of a [`TrustStoreSource`] (file, directory, bytes).
    pub fn add_source(mut self, source: &dyn TrustStoreSource) -> Self {
        match source.bundles() {
            Ok(b) => self.bundles.extend(b),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Adds a bundle file.
    pub fn add_file(self, path: impl Into<PathBuf>) -> Self {
        self.add_source(&FileSource::new(path))
    }

    /// Adds every `.pem`, `.crt`, `.cer` and `.der` file of a directory.
    pub fn add_directory(self, path: impl Into<PathBuf>) -> Self {
        self.add_source(&DirectorySource::new(path))
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: TrustStoreLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the key policy anchors must satisfy (the validator's, by default).
    pub fn key_policy(mut self, policy: KeyPolicy) -> Self {
        self.key_policy = policy;
        self
    }

    /// Parses and checks every certificate; the first error wins.
    pub fn build(self) -> Result<TrustStore, TrustStoreError> {
        if let Some(e) = self.errors.into_iter().next() {
            return Err(e);
        }
        let mut store = TrustStore::default();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for (source_name, bytes) in &self.bundles {
            if bytes.len() > self.limits.max_bundle_bytes {
                return Err(TrustStoreError::BundleTooLarge {
                    source_name: source_name.clone(),
                    bytes: bytes.len(),
                    limit: self.limits.max_bundle_bytes,
                });
            }
            for (block, der) in bundle::split_bundle(source_name, bytes)?
                .into_iter()
                .enumerate()
            {
                let cert =
                    Cert::parse(&der).map_err(|e| TrustStoreError::UnparsableCertificate {
                        source_name: source_name.clone(),
                        block,
                        detail: e.0,
                    })?;
                let subject =
                    rfc2253(cert.subject).unwrap_or_else(|| "(unreadable subject)".into());
                if !cert.may_act_as_anchor_ca() {
                    return Err(TrustStoreError::NotCa {
                        source_name: source_name.clone(),
                        block,
                        subject,
                    });
                }
                self.key_policy
                    .check(&cert)
                    .map_err(|e| TrustStoreError::UnsupportedKey {
                        source_name: source_name.clone(),
                        block,
                        subject: subject.clone(),
                        detail: e.0,
                    })?;
                if !seen.insert(der.clone()) {
                    store.warnings.push(TrustStoreWarning::Duplicate {
                        source_name: source_name.clone(),
                        block,
                        subject,
                    });
                    continue;
                }
                let rules = profile::violations(&cert, Role::Anchor, None);
                if !rules.is_empty() {
                    store.warnings.push(TrustStoreWarning::StructureRules {
                        source_name: source_name.clone(),
                        block,
                        subject: subject.clone(),
                        rules,
                    });
                }
                let index = store.anchors.len();
                let subject_der = cert.subject.to_vec();
                store
                    .by_subject
                    .entry(cert.subject.to_vec().into_boxed_slice())
                    .or_default()
                    .push(index);
                if let Some(ski) = cert.extensions.subject_key_id {
                    store
                        .by_key_id
                        .entry(ski.to_vec().into_boxed_slice())
                        .or_default()
                        .push(index);
                }
                // The full DER Name, as rustls sends it in certificate_authorities.
                store.subjects.push(DistinguishedName::from(subject_der));
                store.anchors.push(TrustAnchor {
                    cert: ParsedCertificate::from_view(&cert),
                    subject,
                });
            }
        }
        if store.anchors.is_empty() {
            return Err(TrustStoreError::Empty);
        }
        if store.anchors.len() > self.limits.max_certificates {
            return Err(TrustStoreError::TooManyCertificates {
                count: store.anchors.len(),
                limit: self.limits.max_certificates,
            });
        }
        Ok(store)
    }
}
