//! The verified-chain cache (SPEC §4).
//!
//! Keyed by the SHA-256 of the presented chain; an entry records the path and
//! the trust-store generation that verified it, and is never used past the
//! earliest `notAfter` (or before the latest `notBefore`) of its path, nor
//! after the store is replaced. Bounded: a full cache first drops expired
//! entries, then arbitrary ones.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::VerifiedPath;

/// The cache key: SHA-256 over each presented certificate, length-prefixed
/// so that different splits of the same bytes never collide.
pub(crate) fn key(end_entity: &[u8], intermediates: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for cert in std::iter::once(end_entity).chain(intermediates.iter().copied()) {
        h.update(u64::try_from(cert.len()).unwrap_or(u64::MAX).to_be_bytes());
        h.update(cert);
    }
    h.finalize().into()
}

pub(crate) struct VerifiedChainCache {
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], VerifiedPath>>,
}

impl VerifiedChainCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::with_capacity(capacity.min(1 << 16))),
        }
    }

    pub(crate) fn get(
        &self,
        key: &[u8; 32],
        generation: u64,
        now: u64,
        ignore_expiration: bool,
    ) -> Option<VerifiedPath> {
        let entries = self.entries.lock().ok()?;
        let path = *entries.get(key)?;
        let in_time = ignore_expiration || (now >= path.not_before && now <= path.not_after);
        (path.generation == generation && in_time).then_some(path)
    }

    pub(crate) fn insert(&self, key: [u8; 32], path: VerifiedPath, now: u64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity {
            entries.retain(|_, p| p.not_after >= now);
        }
        if entries.len() >= self.capacity {
            if let Some(victim) = entries.keys().next().copied() {
                entries.remove(&victim);
            }
        }
        entries.insert(key, path);
    }
}
