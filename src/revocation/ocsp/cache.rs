//! Answers kept per CertID until they expire, so the handshake (stage 1)
//! can use an OCSP status without I/O.
//!
//! A verified answer lives until its `nextUpdate`, capped by a TTL
//! (CloudFront caches about 30 minutes); a failure lives for a short
//! negative TTL so an unreachable responder is not asked on every
//! connection. The map is bounded: when full, expired entries go first,
//! then the ones closest to expiry.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use super::cert_id::CertIdKey;
use crate::revocation::CertStatus;

#[derive(Clone, Debug)]
struct Entry {
    status: CertStatus,
    /// Unix seconds; the entry answers while `now < expires_at`.
    expires_at: u64,
}

/// A bounded map from CertID to status.
#[derive(Debug)]
pub(crate) struct OcspCache {
    entries: RwLock<HashMap<CertIdKey, Entry>>,
    capacity: usize,
}

impl OcspCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// The cached status of `key` at `now`, if still fresh.
    pub(crate) fn get(&self, key: &CertIdKey, now: u64) -> Option<CertStatus> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|e| now < e.expires_at)
            .map(|e| e.status.clone())
    }

    /// Keeps `status` for `key` until `expires_at` (ignored when already
    /// expired or when the cache has no room at all).
    pub(crate) fn insert(&self, key: CertIdKey, status: CertStatus, expires_at: u64, now: u64) {
        if expires_at <= now || self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, e| now < e.expires_at);
            if entries.len() >= self.capacity {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires_at)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(key, Entry { status, expires_at });
    }

    /// Drops every entry.
    pub(crate) fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// How many entries are held (fresh or not yet evicted).
    pub(crate) fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::ocsp::cert_id::CertIdHash;

    fn key(serial: u8) -> CertIdKey {
        CertIdKey {
            hash: CertIdHash::Sha1,
            issuer_name_hash: [1; 32],
            issuer_key_hash: [2; 32],
            serial: vec![serial].into(),
        }
    }

    #[test]
    fn entries_expire() {
        let cache = OcspCache::new(4);
        cache.insert(key(1), CertStatus::Good, 100, 50);
        assert_eq!(cache.get(&key(1), 99), Some(CertStatus::Good));
        assert_eq!(cache.get(&key(1), 100), None);
        assert_eq!(cache.get(&key(2), 60), None);
        cache.insert(key(3), CertStatus::Good, 50, 50);
        assert_eq!(cache.get(&key(3), 10), None, "already expired: not stored");
    }

    #[test]
    fn a_full_cache_evicts_expired_then_soonest() {
        let cache = OcspCache::new(2);
        cache.insert(key(1), CertStatus::Good, 10, 0);
        cache.insert(key(2), CertStatus::Good, 100, 0);
        cache.insert(key(3), CertStatus::Unknown, 200, 20); // key(1) expired
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&key(2), 20), Some(CertStatus::Good));
        cache.insert(key(4), CertStatus::Good, 300, 20); // evicts key(2)
        assert_eq!(cache.get(&key(2), 20), None);
        assert_eq!(cache.get(&key(3), 20), Some(CertStatus::Unknown));
        assert_eq!(cache.get(&key(4), 20), Some(CertStatus::Good));
        cache.clear();
        assert_eq!(cache.len(), 0);
    }
}
