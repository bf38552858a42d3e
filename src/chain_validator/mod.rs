//! RFC 5280 path validation for client certificates.
//!
//! [`ChainValidator`] builds a path from the leaf through the client-sent
//! intermediates to an anchor of the current [`TrustStore`](crate::TrustStore)
//! and checks signatures (through the rustls `CryptoProvider`), validity
//! (unless `ignore_expiration`), basicConstraints and pathLen, keyUsage,
//! extendedKeyUsage, name constraints, unknown critical extensions, the depth
//! limit and the key policy. X.509 v1 leaves are accepted (OpenSSL 3.0's
//! `x509 -req` makes them) but never as issuers unless configured as anchors.

mod audit;
mod cache;
mod checks;
mod error;
mod name_constraints;
mod path;
mod verified;

use std::fmt;
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls_pki_types::UnixTime;

use crate::trust_store::TrustStoreHandle;
use crate::x509::cert::Cert;
use crate::x509::extensions::KeyUsage;
use crate::x509::profile::Role;
use crate::x509::signature::{verify_signed_by, SignatureFailure};
use cache::{RefusalCache, SignatureCache, VerifiedChainCache};
use checks::{Placed, LEAF_CHECKS};
use path::{Node, PathBuilder};

pub(crate) use crate::x509::info::{ClientCertInfo, SubjectAltName};
pub(crate) use crate::x509::profile::{Profile, ProfileRule};
pub(crate) use crate::x509::signature::KeyPolicy;
pub(crate) use crate::x509::KeyPurpose;
pub use audit::{CertificateReport, ChainReport, CheckOutcome};
pub use checks::Check;
pub use error::{CertPosition, ValidationError};
pub use path::Budget;
pub use verified::VerifiedChain;

/// Runs costly work where it cannot stall other connections' I/O: through
/// `block_in_place` on a tokio multi-thread runtime, in place elsewhere.
fn off_the_io_thread<R>(work: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// The hard ceiling for `max_chain_depth` (certificates including the anchor).
pub const MAX_DEPTH_LIMIT: usize = 16;

/// What a [`ChainValidator`] checks; set through [`ChainValidatorBuilder`].
#[derive(Clone, Debug)]
pub(crate) struct ValidationOptions {
    pub(crate) profile: Profile,
    pub(crate) ignore_expiration: bool,
    pub(crate) max_chain_depth: usize,
    pub(crate) required_eku: Option<KeyPurpose>,
    pub(crate) leaf_key_usage: u16,
    pub(crate) require_v3: bool,
    pub(crate) budget: Budget,
    pub(crate) key_policy: KeyPolicy,
    pub(crate) max_intermediates: usize,
    pub(crate) max_chain_bytes: usize,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        Self {
            profile: Profile::Interop,
            ignore_expiration: false,
            max_chain_depth: 4,
            required_eku: Some(KeyPurpose::ClientAuth),
            leaf_key_usage: KeyUsage::DIGITAL_SIGNATURE,
            require_v3: false,
            budget: Budget::default(),
            key_policy: KeyPolicy::default(),
            max_intermediates: 8,
            max_chain_bytes: 64 * 1024,
        }
    }
}

/// A configuration error caught by [`ChainValidatorBuilder::build`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorBuildError {
    /// `max_chain_depth` must be between 2 (leaf + anchor) and [`MAX_DEPTH_LIMIT`].
    #[error("max_chain_depth {0} is outside 2..={MAX_DEPTH_LIMIT}")]
    InvalidMaxChainDepth(usize),
    /// The crypto provider offers no signature verification algorithm.
    #[error("the crypto provider has no signature verification algorithms")]
    NoSignatureAlgorithms,
}

/// Builds a [`ChainValidator`].
#[derive(Clone, Debug)]
pub struct ChainValidatorBuilder {
    store: TrustStoreHandle,
    provider: Arc<CryptoProvider>,
    options: ValidationOptions,
    cache_capacity: usize,
    signature_cache_capacity: usize,
    refusal_cache_capacity: usize,
    refusal_cache_ttl_secs: u64,
}

impl ChainValidatorBuilder {
    /// Which structure rules to enforce (default [`Profile::Interop`]); the
    /// security rules hold under every profile.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.options.profile = profile;
        self
    }

    /// Do not enforce validity dates of any certificate in the chain
    /// (CloudFront's `ignoreCertificateExpiry`); everything else still is.
    pub fn ignore_expiration(mut self, yes: bool) -> Self {
        self.options.ignore_expiration = yes;
        self
    }

    /// The longest accepted path, in certificates including the anchor (default 4).
    pub fn max_chain_depth(mut self, depth: usize) -> Self {
        self.options.max_chain_depth = depth;
        self
    }

    /// The key purpose the leaf (and any intermediate carrying EKU) must allow;
    /// `None` disables the check. Default: clientAuth.
    pub fn required_eku(mut self, purpose: Option<KeyPurpose>) -> Self {
        self.options.required_eku = purpose;
        self
    }

    /// keyUsage bits the leaf must assert when it carries keyUsage (bit `n` of
    /// the BIT STRING as `1 << n`). Default: digitalSignature (`1`).
    pub fn leaf_key_usage(mut self, bits: u16) -> Self {
        self.options.leaf_key_usage = bits;
        self
    }

    /// Refuse X.509 v1 leaves (ALB's strictness). Default: accept them.
    pub fn require_v3(mut self, yes: bool) -> Self {
        self.options.require_v3 = yes;
        self
    }

    /// Work limits for hostile input.
    pub fn budget(mut self, budget: Budget) -> Self {
        self.options.budget = budget;
        self
    }

    /// Key types and sizes accepted anywhere in the chain.
    pub fn key_policy(mut self, policy: KeyPolicy) -> Self {
        self.options.key_policy = policy;
        self
    }

    /// Limits on what a client may send: intermediates and total bytes
    /// (defaults 8 and 64 KiB).
    pub fn max_presented(mut self, intermediates: usize, bytes: usize) -> Self {
        self.options.max_intermediates = intermediates;
        self.options.max_chain_bytes = bytes;
        self
    }

    /// Entries of the verified-chain cache; 0 disables it. Default 4096.
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// Entries of the issuer-signature cache, which remembers signatures on
    /// CA certificates (intermediates) that verified, so the intermediate's
    /// signature is not recomputed for every new leaf it issued; 0 disables
    /// it. Leaf signatures are never cached. Default 256.
    pub fn signature_cache_capacity(mut self, entries: usize) -> Self {
        self.signature_cache_capacity = entries;
        self
    }

    /// Entries of the refused-chain cache, which remembers for a while why a
    /// presented chain was refused, so the same hostile chain presented
    /// again costs a hash and a lookup instead of another validation; 0
    /// disables it. Entries belong to one trust-store generation. Default 1024.
    pub fn refusal_cache_capacity(mut self, entries: usize) -> Self {
        self.refusal_cache_capacity = entries;
        self
    }

    /// How long a refusal is remembered (default 60 s; 0 disables the
    /// cache). A refusal that depends on the clock ("not yet valid") is
    /// re-examined after this long at the latest.
    pub fn refusal_cache_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.refusal_cache_ttl_secs = ttl.as_secs();
        self
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<ChainValidator, ValidatorBuildError> {
        let depth = self.options.max_chain_depth;
        if !(2..=MAX_DEPTH_LIMIT).contains(&depth) {
            return Err(ValidatorBuildError::InvalidMaxChainDepth(depth));
        }
        let algorithms = self.provider.signature_verification_algorithms;
        if algorithms.all.is_empty() {
            return Err(ValidatorBuildError::NoSignatureAlgorithms);
        }
        Ok(ChainValidator {
            store: self.store,
            algorithms,
            options: self.options,
            cache: (self.cache_capacity > 0).then(|| VerifiedChainCache::new(self.cache_capacity)),
            signatures: (self.signature_cache_capacity > 0)
                .then(|| SignatureCache::new(self.signature_cache_capacity)),
            refusals: (self.refusal_cache_capacity > 0 && self.refusal_cache_ttl_secs > 0).then(
                || RefusalCache::new(self.refusal_cache_capacity, self.refusal_cache_ttl_secs),
            ),
        })
    }
}

/// Validates client certificate chains against a trust store.
pub struct ChainValidator {
    store: TrustStoreHandle,
    algorithms: WebPkiSupportedAlgorithms,
    pub(crate) options: ValidationOptions,
    cache: Option<VerifiedChainCache>,
    signatures: Option<SignatureCache>,
    refusals: Option<RefusalCache>,
}

impl fmt::Debug for ChainValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainValidator")
            .field("options", &self.options)
            .field("cache", &self.cache.is_some())
            .field("signature_cache", &self.signatures.is_some())
            .field("refusal_cache", &self.refusals.is_some())
            .finish_non_exhaustive()
    }
}

impl ChainValidator {
    /// A builder validating against `store` with `provider`'s algorithms.
    pub fn builder(
        store: TrustStoreHandle,
        provider: Arc<CryptoProvider>,
    ) -> ChainValidatorBuilder {
        ChainValidatorBuilder {
            store,
            provider,
            options: ValidationOptions::default(),
            cache_capacity: 4096,
            signature_cache_capacity: 256,
            refusal_cache_capacity: 1024,
            refusal_cache_ttl_secs: 60,
        }
    }

    /// The trust store this validator reads.
    pub fn trust_store(&self) -> &TrustStoreHandle {
        &self.store
    }

    /// Whether validity dates are ignored.
    pub fn ignores_expiration(&self) -> bool {
        self.options.ignore_expiration
    }

    /// The signature algorithms of the provider (also used for CertificateVerify).
    pub fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.algorithms
    }

    /// Whether `chain`, verified earlier, still stands without being
    /// validated again: the trust store is the generation that verified it
    /// and `now` is inside the path's validity window (unless expiration is
    /// ignored).
    pub(crate) fn still_current(&self, chain: &VerifiedChain, now: UnixTime) -> bool {
        let secs = now.as_secs();
        chain.trust_store_generation() == self.store.generation()
            && (self.options.ignore_expiration
                || (secs >= chain.not_before() && secs <= chain.not_after()))
    }

    /// Validates `end_entity` with the client-sent `intermediates` at `now`,
    /// answering from the verified-chain and refused-chain caches when it can.
    ///
    /// A validation first runs within [`Budget::INLINE`]; one that needs more
    /// (an unusual chain, or a hostile one) is run again with the full
    /// budget where it cannot stall other connections: on a tokio
    /// multi-thread runtime through `block_in_place`, which hands this
    /// worker's other tasks to another thread for the duration. Elsewhere
    /// (a `current_thread` runtime, no runtime) it runs in place, bounded by
    /// the budget.
    pub fn validate(
        &self,
        end_entity: &[u8],
        intermediates: &[&[u8]],
        now: UnixTime,
    ) -> Result<VerifiedChain, ValidationError> {
        let secs = now.as_secs();
        let store = self.store.load_guard();
        let generation = store.generation();
        let key = (self.cache.is_some() || self.refusals.is_some())
            .then(|| cache::key(end_entity, intermediates));
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            if let Some(hit) = cache.get(key, generation, secs, self.options.ignore_expiration) {
                return Ok(hit);
            }
        }
        if let (Some(refusals), Some(key)) = (&self.refusals, &key) {
            if let Some(refused) = refusals.get(key, generation, secs) {
                return Err(refused);
            }
        }
        let full = self.options.budget;
        let inline = full.min(Budget::INLINE);
        let mut result = self.validate_uncached(end_entity, intermediates, secs, &store, inline);
        if matches!(result, Err(ValidationError::BudgetExceeded { .. })) && inline != full {
            result = off_the_io_thread(|| {
                self.validate_uncached(end_entity, intermediates, secs, &store, full)
            });
        }
        if let Some(key) = key {
            match &result {
                Ok(chain) => {
                    if let Some(cache) = &self.cache {
                        cache.insert(key, chain.clone(), secs);
                    }
                }
                Err(error) => {
                    if let Some(refusals) = &self.refusals {
                        refusals.insert(key, error, generation, secs);
                    }
                }
            }
        }
        result
    }

    fn validate_uncached(
        &self,
        end_entity: &[u8],
        intermediates: &[&[u8]],
        now: u64,
        store: &crate::trust_store::TrustStore,
        budget: Budget,
    ) -> Result<VerifiedChain, ValidationError> {
        let total: usize = end_entity.len() + intermediates.iter().map(|c| c.len()).sum::<usize>();
        if intermediates.len() > self.options.max_intermediates {
            return Err(ValidationError::ChainTooLarge {
                detail: format!(
                    "{} intermediates (limit {})",
                    intermediates.len(),
                    self.options.max_intermediates
                ),
            });
        }
        if total > self.options.max_chain_bytes {
            return Err(ValidationError::ChainTooLarge {
                detail: format!("{total} bytes (limit {})", self.options.max_chain_bytes),
            });
        }

        let leaf = Cert::parse(end_entity).map_err(|e| ValidationError::BadEncoding {
            position: CertPosition::Leaf,
            detail: e.0,
        })?;
        let placed = Placed {
            cert: &leaf,
            position: CertPosition::Leaf,
            role: Role::Leaf,
            cas_below: 0,
        };
        self.run_checks(LEAF_CHECKS, &placed, now)?;

        let mut presented = Vec::with_capacity(intermediates.len());
        for (i, der) in intermediates.iter().enumerate() {
            presented.push(Cert::parse(der).map_err(|e| ValidationError::BadEncoding {
                position: CertPosition::Intermediate(i),
                detail: e.0,
            })?);
        }

        let mut builder = PathBuilder {
            validator: self,
            store,
            presented: &presented,
            now,
            budget,
            best: None,
            aborted: false,
        };
        let mut path = Vec::with_capacity(self.options.max_chain_depth);
        path.push(Node {
            cert: leaf,
            position: CertPosition::Leaf,
        });
        match builder.build(&mut path) {
            Some(found) => Ok(found),
            None => Err(builder.best.unwrap_or(ValidationError::UnknownIssuer {
                position: CertPosition::Leaf,
            })),
        }
    }

    /// Checks `child`'s signature under `issuer`'s key, answering from the
    /// issuer-signature cache when the child is a CA certificate whose exact
    /// signed bytes verified under this key before.
    fn verify_link(&self, child: &Node<'_>, issuer: &Cert<'_>) -> Result<(), SignatureFailure> {
        let cache = match &self.signatures {
            Some(cache) if child.position != CertPosition::Leaf => cache,
            _ => return verify_signed_by(&self.algorithms, &child.cert, issuer),
        };
        let key = cache::signature_key(
            issuer.spki_alg,
            issuer.public_key,
            child.cert.signature_alg,
            child.cert.tbs,
            child.cert.signature,
        );
        if cache.contains(&key) {
            return Ok(());
        }
        verify_signed_by(&self.algorithms, &child.cert, issuer)?;
        cache.insert(key);
        Ok(())
    }

    /// The profile this validator enforces.
    pub fn profile(&self) -> Profile {
        self.options.profile
    }
}
