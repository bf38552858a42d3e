//! The outcome of a successful validation: the verified chain, owned and
//! parsed, from the leaf to its trust anchor.

use std::any::Any;
use std::sync::{Arc, RwLock};

use rustls_pki_types::UnixTime;

use crate::x509::info::ClientCertInfo;
use crate::x509::parsed::ParsedCertificate;

/// A verified chain: the leaf, the intermediates of the path (the leaf's
/// issuer first) and the trust anchor, each parsed once.
///
/// Cheap to clone (shared). The verified-chain cache keeps these, so a
/// repeated client's handshake hands out the same parsed certificates
/// without parsing anything; revocation sources, the connection policy,
/// headers and the log record all read from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedChain(Arc<Inner>);

#[derive(Debug, PartialEq, Eq)]
struct Inner {
    /// Leaf, intermediates (path order), anchor.
    certs: Vec<ParsedCertificate>,
    /// For each path intermediate, its index among what the client sent.
    presented: Vec<u16>,
    not_before: u64,
    not_after: u64,
    generation: u64,
    /// What a later stage keeps with the chain for the next connection that
    /// presents it (the revocation answers of its last check); opaque here.
    kept: Kept,
}

/// A slot for [`VerifiedChain::kept`]; not part of the chain's identity.
#[derive(Default)]
struct Kept(RwLock<Option<Arc<dyn Any + Send + Sync>>>);

impl PartialEq for Kept {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Kept {}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kept")
    }
}

impl VerifiedChain {
    /// A path of `leaf`, `intermediates` (leaf's issuer first) and `anchor`;
    /// `presented` is the index of each intermediate in what the client sent.
    pub(crate) fn new(
        leaf: ParsedCertificate,
        intermediates: impl IntoIterator<Item = ParsedCertificate>,
        anchor: ParsedCertificate,
        presented: Vec<u16>,
        generation: u64,
    ) -> Self {
        let mut certs = vec![leaf];
        certs.extend(intermediates);
        certs.push(anchor);
        let not_before = certs.iter().map(|c| c.not_before()).max().unwrap_or(0);
        let not_after = certs.iter().map(|c| c.not_after()).min().unwrap_or(0);
        Self(Arc::new(Inner {
            certs,
            presented,
            not_before,
            not_after,
            generation,
            kept: Kept::default(),
        }))
    }

    /// What was kept with this chain by [`keep`](Self::keep), if it is a `T`.
    pub(crate) fn kept<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let slot = self.0.kept.0.read().ok()?;
        slot.clone()?.downcast::<T>().ok()
    }

    /// Keeps `value` with this chain (replacing what was kept).
    pub(crate) fn keep<T: Any + Send + Sync>(&self, value: Arc<T>) {
        if let Ok(mut slot) = self.0.kept.0.write() {
            *slot = Some(value);
        }
    }

    /// Whether `other` is this very chain (a clone of it), not merely an
    /// equal one.
    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The leaf certificate.
    pub fn end_entity(&self) -> &ParsedCertificate {
        // `new` puts the leaf first and the anchor last.
        &self.0.certs[0]
    }

    /// The intermediates of the path, the leaf's issuer first.
    pub fn intermediates(&self) -> &[ParsedCertificate] {
        let n = self.0.certs.len();
        self.0.certs.get(1..n.saturating_sub(1)).unwrap_or_default()
    }

    /// The trust anchor the path ends at.
    pub fn anchor(&self) -> &ParsedCertificate {
        &self.0.certs[self.0.certs.len() - 1]
    }

    /// Every certificate of the path: leaf, intermediates, anchor.
    pub fn certificates(&self) -> &[ParsedCertificate] {
        &self.0.certs
    }

    /// Where each intermediate of the path was in what the client sent
    /// (indices into the presented intermediates), the leaf's issuer first.
    pub fn intermediate_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.presented.iter().map(|i| usize::from(*i))
    }

    /// The trust-store generation that verified the chain.
    pub fn trust_store_generation(&self) -> u64 {
        self.0.generation
    }

    /// The latest `notBefore` of the path (Unix seconds).
    pub fn not_before(&self) -> u64 {
        self.0.not_before
    }

    /// The earliest `notAfter` of the path (Unix seconds).
    pub fn not_after(&self) -> u64 {
        self.0.not_after
    }

    /// Whether any certificate of the path is outside its validity at `now`
    /// (only possible with `ignore_expiration`; CloudFront's `expired: true`).
    pub fn is_expired_at(&self, now: UnixTime) -> bool {
        let now = now.as_secs();
        now > self.0.not_after || now < self.0.not_before
    }

    /// The leaf's facts as the application sees them (formatted from the
    /// parse; nothing is parsed again).
    pub fn client_cert_info(&self) -> Option<ClientCertInfo> {
        ClientCertInfo::from_parsed(self.end_entity())
    }

    /// A one-certificate chain with the given dates, for cache tests.
    #[cfg(test)]
    pub(crate) fn for_tests(not_before: u64, not_after: u64, generation: u64) -> Self {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["cache.test".into()]).expect("params");
        let der = params
            .self_signed(&key)
            .expect("certificate")
            .der()
            .to_vec();
        let cert = ParsedCertificate::from_der(der).expect("parsable");
        Self(Arc::new(Inner {
            certs: vec![cert.clone(), cert],
            presented: Vec::new(),
            not_before,
            not_after,
            generation,
            kept: Kept::default(),
        }))
    }
}
