//! The verified-chain cache.
//!
//! Keyed by the SHA-256 of the presented chain; an entry records the path and
//! the trust-store generation that verified it, and is never used past the
//! earliest `notAfter` (or before the latest `notBefore`) of its path, nor
//! after the store is replaced. Bounded: a full cache first drops expired
//! entries, then the oldest ones, in constant amortised time per insertion
//! (a cache that is full under a stream of distinct clients is the normal
//! state, so eviction must not scan it).
//!
//! Beside it, the issuer-signature cache remembers which CA certificates'
//! signatures have verified under which issuer key. Clients of one
//! deployment present a handful of intermediates over and over while their
//! leaves differ, so the intermediate → anchor signature is the same
//! computation on nearly every handshake. A signature check is a pure
//! function of (issuer key, signed bytes, signature): only successes are
//! remembered, keyed by the SHA-256 of all three, so an entry can only ever
//! answer for the exact bytes that verified. Every other check of the path
//! (validity, constraints, key policy, trust) still runs each time.
//!
//! The refused-chain cache remembers, per trust-store generation, why a
//! presented chain was refused, so a client presenting the same hostile
//! chain again costs a hash of its bytes and a lookup instead of another
//! validation. An entry lives at most a configured time (a refusal that
//! depends on the clock, such as "not yet valid", is re-examined after it),
//! and never past a trust-store change. Bounded; a full cache forgets its
//! oldest entry.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::{ValidationError, VerifiedChain};

/// The cache key: SHA-256 over each presented certificate, length-prefixed
/// so that different splits of the same bytes never collide.
pub(crate) fn key(end_entity: &[u8], intermediates: &[&[u8]]) -> [u8; 32] {
    length_prefixed_sha256(std::iter::once(end_entity).chain(intermediates.iter().copied()))
}

/// SHA-256 over `parts`, each preceded by its length.
fn length_prefixed_sha256<'p>(parts: impl IntoIterator<Item = &'p [u8]>) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// The issuer-signature cache key: SHA-256 over the issuer's key and the
/// child's signed data, each part length-prefixed.
pub(crate) fn signature_key(
    key_alg: &[u8],
    key: &[u8],
    signature_alg: &[u8],
    message: &[u8],
    signature: &[u8],
) -> [u8; 32] {
    length_prefixed_sha256([key_alg, key, signature_alg, message, signature])
}

/// Signatures on CA certificates known to verify (see the module docs).
/// Bounded; a full cache forgets its oldest entry.
pub(crate) struct SignatureCache {
    capacity: usize,
    entries: Mutex<KnownSignatures>,
}

/// The keys of verified signatures, and the same keys oldest first.
struct KnownSignatures {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl SignatureCache {
    pub(crate) fn new(capacity: usize) -> Self {
        let reserved = capacity.min(1 << 12);
        Self {
            capacity,
            entries: Mutex::new(KnownSignatures {
                set: HashSet::with_capacity(reserved),
                order: VecDeque::with_capacity(reserved),
            }),
        }
    }

    pub(crate) fn contains(&self, key: &[u8; 32]) -> bool {
        self.entries.lock().is_ok_and(|e| e.set.contains(key))
    }

    pub(crate) fn insert(&self, key: [u8; 32]) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let KnownSignatures { set, order } = &mut *entries;
        if !set.insert(key) {
            return;
        }
        order.push_back(key);
        while set.len() > self.capacity {
            let Some(oldest) = order.pop_front() else {
                break;
            };
            set.remove(&oldest);
        }
    }
}

/// Chains refused recently (see the module docs).
pub(crate) struct RefusalCache {
    capacity: usize,
    ttl_secs: u64,
    entries: Mutex<Refusals>,
}

struct Refusals {
    map: HashMap<[u8; 32], Refused>,
    /// Keys oldest first, each with the sequence number of its insertion.
    order: VecDeque<([u8; 32], u64)>,
    next_seq: u64,
}

struct Refused {
    error: ValidationError,
    generation: u64,
    /// When it was refused; a clock set back before it misses.
    refused_at: u64,
    expires: u64,
    seq: u64,
}

impl RefusalCache {
    pub(crate) fn new(capacity: usize, ttl_secs: u64) -> Self {
        let reserved = capacity.min(1 << 12);
        Self {
            capacity,
            ttl_secs,
            entries: Mutex::new(Refusals {
                map: HashMap::with_capacity(reserved),
                order: VecDeque::with_capacity(reserved),
                next_seq: 0,
            }),
        }
    }

    /// Why the chain with `key` was refused under trust-store `generation`,
    /// if it was within the last `ttl_secs`.
    pub(crate) fn get(&self, key: &[u8; 32], generation: u64, now: u64) -> Option<ValidationError> {
        let entries = self.entries.lock().ok()?;
        let hit = entries.map.get(key)?;
        let in_time = hit.refused_at <= now && now < hit.expires;
        (hit.generation == generation && in_time).then(|| hit.error.clone())
    }

    pub(crate) fn insert(&self, key: [u8; 32], error: &ValidationError, generation: u64, now: u64) {
        if self.capacity == 0 || self.ttl_secs == 0 {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let entries = &mut *entries;
        let seq = entries.next_seq;
        entries.next_seq += 1;
        let refused = Refused {
            error: error.clone(),
            generation,
            refused_at: now,
            expires: now.saturating_add(self.ttl_secs),
            seq,
        };
        entries.map.insert(key, refused);
        entries.order.push_back((key, seq));
        while entries.map.len() > self.capacity {
            let Some((oldest, seq)) = entries.order.pop_front() else {
                break;
            };
            if entries.map.get(&oldest).is_some_and(|e| e.seq == seq) {
                entries.map.remove(&oldest);
            }
        }
        if entries.order.len() > 2 * self.capacity.max(8) {
            let map = &entries.map;
            entries
                .order
                .retain(|(k, seq)| map.get(k).is_some_and(|e| e.seq == *seq));
        }
    }
}

pub(crate) struct VerifiedChainCache {
    capacity: usize,
    entries: Mutex<Entries>,
}

struct Entries {
    map: HashMap<[u8; 32], Entry>,
    /// Keys in insertion order, each with the sequence number of its
    /// insertion; a key re-inserted since is stale here and skipped.
    order: VecDeque<([u8; 32], u64)>,
    next_seq: u64,
    /// No entry expires before this (Unix seconds); a lower bound, so a
    /// full cache only scans for expired entries when one may exist.
    earliest_not_after: u64,
}

struct Entry {
    chain: VerifiedChain,
    seq: u64,
}

impl VerifiedChainCache {
    pub(crate) fn new(capacity: usize) -> Self {
        let reserved = capacity.min(1 << 16);
        Self {
            capacity,
            entries: Mutex::new(Entries {
                map: HashMap::with_capacity(reserved),
                order: VecDeque::with_capacity(reserved),
                next_seq: 0,
                earliest_not_after: u64::MAX,
            }),
        }
    }

    pub(crate) fn get(
        &self,
        key: &[u8; 32],
        generation: u64,
        now: u64,
        ignore_expiration: bool,
    ) -> Option<VerifiedChain> {
        let entries = self.entries.lock().ok()?;
        let chain = &entries.map.get(key)?.chain;
        let in_time = ignore_expiration || (now >= chain.not_before() && now <= chain.not_after());
        (chain.trust_store_generation() == generation && in_time).then(|| chain.clone())
    }

    /// Stores `chain`. A full cache first drops its expired entries (only
    /// when one may have expired), then the oldest ones: each insertion
    /// costs O(1) amortised, never a scan of the whole cache per insertion.
    pub(crate) fn insert(&self, key: [u8; 32], chain: VerifiedChain, now: u64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let entries = &mut *entries;
        if entries.map.len() >= self.capacity && !entries.map.contains_key(&key) {
            if now > entries.earliest_not_after {
                entries.map.retain(|_, e| e.chain.not_after() >= now);
                entries.earliest_not_after = entries
                    .map
                    .values()
                    .map(|e| e.chain.not_after())
                    .min()
                    .unwrap_or(u64::MAX);
                let map = &entries.map;
                entries
                    .order
                    .retain(|(k, seq)| map.get(k).is_some_and(|e| e.seq == *seq));
            }
            while entries.map.len() >= self.capacity {
                let Some((oldest, seq)) = entries.order.pop_front() else {
                    break;
                };
                if entries.map.get(&oldest).is_some_and(|e| e.seq == seq) {
                    entries.map.remove(&oldest);
                }
            }
        }
        if self.capacity == 0 {
            return;
        }
        let seq = entries.next_seq;
        entries.next_seq += 1;
        let not_after = chain.not_after();
        entries.map.insert(key, Entry { chain, seq });
        entries.order.push_back((key, seq));
        entries.earliest_not_after = entries.earliest_not_after.min(not_after);
        // Re-inserted keys leave stale positions behind; keep the queue
        // within a constant factor of the map.
        if entries.order.len() > 2 * self.capacity.max(8) {
            let map = &entries.map;
            entries
                .order
                .retain(|(k, seq)| map.get(k).is_some_and(|e| e.seq == *seq));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(not_after: u64, generation: u64) -> VerifiedChain {
        VerifiedChain::for_tests(0, not_after, generation)
    }

    fn key(i: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_be_bytes());
        k
    }

    #[test]
    fn bounded_and_evicts_the_oldest() {
        let cache = VerifiedChainCache::new(4);
        for i in 0..10 {
            cache.insert(key(i), path(1_000, 1), 10);
        }
        let present: Vec<u32> = (0..10)
            .filter(|i| cache.get(&key(*i), 1, 10, false).is_some())
            .collect();
        assert_eq!(present, [6, 7, 8, 9]);
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first() {
        let cache = VerifiedChainCache::new(3);
        cache.insert(key(0), path(1_000, 1), 10);
        cache.insert(key(1), path(50, 1), 10);
        cache.insert(key(2), path(1_000, 1), 10);
        // At 100, entry 1 has expired: it goes, the older entry 0 stays.
        cache.insert(key(3), path(1_000, 1), 100);
        assert!(cache.get(&key(0), 1, 100, false).is_some());
        assert!(cache.get(&key(1), 1, 100, true).is_none());
        assert!(cache.get(&key(2), 1, 100, false).is_some());
        assert!(cache.get(&key(3), 1, 100, false).is_some());
    }

    #[test]
    fn reinserting_a_key_neither_grows_nor_evicts() {
        let cache = VerifiedChainCache::new(2);
        cache.insert(key(0), path(1_000, 1), 10);
        cache.insert(key(1), path(1_000, 1), 10);
        for generation in 2..100 {
            cache.insert(key(1), path(1_000, generation), 10);
        }
        assert!(cache.get(&key(0), 1, 10, false).is_some());
        assert!(cache.get(&key(1), 99, 10, false).is_some());
        let entries = cache.entries.lock().unwrap();
        assert!(entries.order.len() <= 2 * 8 + 1, "{}", entries.order.len());
    }

    #[test]
    fn signature_cache_is_bounded_and_keyed_by_every_part() {
        let cache = SignatureCache::new(2);
        let a = signature_key(b"alg", b"key", b"sig-alg", b"tbs", b"sig");
        // Moving a byte from one part to the next changes the key.
        let b = signature_key(b"alg", b"key", b"sig-alg", b"tb", b"ssig");
        let c = signature_key(b"alg", b"key2", b"sig-alg", b"tbs", b"sig");
        assert_ne!(a, b);
        cache.insert(a);
        cache.insert(b);
        assert!(cache.contains(&a) && cache.contains(&b));
        cache.insert(c);
        assert!(!cache.contains(&a), "the oldest entry is forgotten");
        assert!(cache.contains(&b) && cache.contains(&c));
        let none = SignatureCache::new(0);
        none.insert(a);
        assert!(!none.contains(&a));
    }

    #[test]
    fn refusals_are_bounded_expire_and_belong_to_one_generation() {
        let error = ValidationError::UnknownIssuer {
            position: super::super::CertPosition::Leaf,
        };
        let cache = RefusalCache::new(2, 60);
        cache.insert(key(1), &error, 7, 1_000);
        assert_eq!(cache.get(&key(1), 7, 1_000), Some(error.clone()));
        assert_eq!(cache.get(&key(1), 7, 1_059), Some(error.clone()));
        assert_eq!(cache.get(&key(1), 7, 1_060), None, "expired after the TTL");
        assert_eq!(cache.get(&key(1), 7, 999), None, "the clock went back");
        assert_eq!(cache.get(&key(1), 8, 1_000), None, "another trust store");
        cache.insert(key(2), &error, 7, 1_000);
        cache.insert(key(3), &error, 7, 1_000);
        assert_eq!(cache.get(&key(1), 7, 1_000), None, "the oldest was dropped");
        assert!(cache.get(&key(2), 7, 1_000).is_some());
        assert!(cache.get(&key(3), 7, 1_000).is_some());
        // Re-inserting refreshes without growing.
        for _ in 0..100 {
            cache.insert(key(3), &error, 7, 1_000);
        }
        assert!(cache.get(&key(2), 7, 1_000).is_some());
        assert!(cache.entries.lock().unwrap().order.len() <= 16);
        let off = RefusalCache::new(0, 60);
        off.insert(key(1), &error, 7, 1_000);
        assert_eq!(off.get(&key(1), 7, 1_000), None);
    }

    #[test]
    fn zero_capacity_stores_nothing() {
        let cache = VerifiedChainCache::new(0);
        cache.insert(key(0), path(1_000, 1), 10);
        assert!(cache.get(&key(0), 1, 10, false).is_none());
    }
}
