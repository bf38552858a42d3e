//! The in-memory [`KeyValueStore`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use rustls_pki_types::UnixTime;

use crate::revocation::next_data_stamp;

use super::{
    normalize_key, KeyNormalization, KeyValueStore, KvsError, KvsMeta, MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
};

/// A key-value store held in memory: a hash map on normalised keys, so
/// every lookup is O(1) whatever the store's size.
///
/// Reads take a shared lock (uncontended on the handshake path: writers are
/// imports and administrative changes); bulk changes are applied under one
/// A checked, normalised key and its value.
type Entry = (Box<str>, Box<str>);

/// write lock so readers never see half an import.
pub struct MemoryKeyValueStore {
    normalization: KeyNormalization,
    max_keys: usize,
    clock: fn() -> UnixTime,
    inner: RwLock<Inner>,
    /// A new stamp after every write (see [`KeyValueStore::version`]).
    version: AtomicU64,
}

struct Inner {
    map: HashMap<Box<str>, Box<str>>,
    created: u64,
    updated: u64,
}

impl core::fmt::Debug for MemoryKeyValueStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryKeyValueStore")
            .field("normalization", &self.normalization)
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryKeyValueStore {
    fn default() -> Self {
        Self::new(KeyNormalization::Exact)
    }
}

impl MemoryKeyValueStore {
    /// An empty store comparing keys as `normalization` says.
    pub fn new(normalization: KeyNormalization) -> Self {
        Self::with_clock(normalization, UnixTime::now)
    }

    /// An empty store for a serial-number deny list
    /// ([`KeyNormalization::SerialNumbers`]).
    pub fn for_serial_numbers() -> Self {
        Self::new(KeyNormalization::SerialNumbers)
    }

    /// An empty store whose `meta()` times come from `clock` (tests).
    pub fn with_clock(normalization: KeyNormalization, clock: fn() -> UnixTime) -> Self {
        let now = clock().as_secs();
        Self {
            normalization,
            max_keys: usize::MAX,
            clock,
            inner: RwLock::new(Inner {
                map: HashMap::new(),
                created: now,
                updated: now,
            }),
            version: AtomicU64::new(next_data_stamp()),
        }
    }

    /// Caps the number of keys (default: no cap).
    pub fn max_keys(mut self, limit: usize) -> Self {
        self.max_keys = limit;
        self
    }

    /// How keys are compared.
    pub fn key_normalization(&self) -> KeyNormalization {
        self.normalization
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.read(|i| i.map.len())
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: &str, value: &str) -> Result<(), KvsError> {
        self.put_many([(key, value)])
    }

    /// Sets many keys at once: all are checked first, then applied under one
    /// lock, so a bad entry changes nothing.
    pub fn put_many<'k>(
        &self,
        entries: impl IntoIterator<Item = (&'k str, &'k str)>,
    ) -> Result<(), KvsError> {
        self.apply(self.prepare_all(entries)?, false)
    }

    /// Replaces the whole content with `entries` (an import that supersedes
    /// the previous one); on error the old content stays.
    pub fn replace_all<'k>(
        &self,
        entries: impl IntoIterator<Item = (&'k str, &'k str)>,
    ) -> Result<(), KvsError> {
        self.apply(self.prepare_all(entries)?, true)
    }

    /// Removes `key`; returns whether it was present.
    pub fn delete(&self, key: &str) -> bool {
        let key = normalize_key(self.normalization, key);
        let now = (self.clock)().as_secs();
        self.write(|i| {
            let removed = i.map.remove(key.as_ref()).is_some();
            if removed {
                i.updated = now;
            }
            removed
        })
    }

    /// Every key, normalised, in no particular order (exports, and imports
    /// into another store).
    pub fn keys(&self) -> Vec<String> {
        self.read(|i| i.map.keys().map(|k| k.to_string()).collect())
    }

    fn meta_now(&self) -> KvsMeta {
        self.read(|i| KvsMeta {
            creation_date_time: i.created,
            last_updated_date_time: i.updated,
            key_count: u64::try_from(i.map.len()).unwrap_or(u64::MAX),
        })
    }

    /// The value of `key`, without going through the async trait.
    pub fn get_local(&self, key: &str) -> Option<String> {
        let key = normalize_key(self.normalization, key);
        self.read(|i| i.map.get(key.as_ref()).map(|v| v.to_string()))
    }

    /// Checks and normalises one entry.
    /// Every entry checked and normalised, or the first error.
    fn prepare_all<'k>(
        &self,
        entries: impl IntoIterator<Item = (&'k str, &'k str)>,
    ) -> Result<Vec<Entry>, KvsError> {
        entries
            .into_iter()
            .map(|(k, v)| self.prepare(k, v))
            .collect()
    }

    pub(crate) fn prepare(&self, key: &str, value: &str) -> Result<Entry, KvsError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(KvsError::KeyTooLarge {
                key: key.chars().take(64).collect(),
                len: key.len(),
            });
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvsError::ValueTooLarge {
                key: key.to_string(),
                len: value.len(),
            });
        }
        let normalized = normalize_key(self.normalization, key);
        if normalized.is_empty() {
            return Err(KvsError::EmptyKey { location: None });
        }
        Ok((normalized.into(), value.into()))
    }

    /// Inserts prepared entries (replacing everything when `replace`).
    pub(crate) fn apply(&self, entries: Vec<Entry>, replace: bool) -> Result<(), KvsError> {
        let now = (self.clock)().as_secs();
        let limit = self.max_keys;
        self.write(|i| {
            if replace {
                let mut map = HashMap::with_capacity(entries.len());
                map.extend(entries);
                if map.len() > limit {
                    return Err(KvsError::TooManyKeys {
                        count: map.len(),
                        limit,
                    });
                }
                i.map = map;
            } else {
                let fresh = entries
                    .iter()
                    .filter(|(k, _)| !i.map.contains_key(k))
                    .count();
                let count = i.map.len().saturating_add(fresh);
                if count > limit {
                    return Err(KvsError::TooManyKeys { count, limit });
                }
                i.map.reserve(fresh);
                i.map.extend(entries);
            }
            i.updated = now;
            Ok(())
        })
    }

    fn read<T>(&self, f: impl FnOnce(&Inner) -> T) -> T {
        // A writer that panicked leaves consistent data (every mutation is a
        // single map operation), so a poisoned lock is still readable.
        let guard = self.inner.read().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }

    fn write<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut guard = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let result = f(&mut guard);
        // After the change, under the lock: a reader that saw the old stamp
        // may have read either content, one that sees the new stamp reads
        // the new content.
        self.version.store(next_data_stamp(), Ordering::Release);
        result
    }
}

#[async_trait::async_trait]
impl KeyValueStore for MemoryKeyValueStore {
    async fn get(&self, key: &str) -> Result<Option<String>, KvsError> {
        Ok(self.get_local(key))
    }

    async fn exists(&self, key: &str) -> Result<bool, KvsError> {
        Ok(self.exists_local(key).unwrap_or(false))
    }

    async fn meta(&self) -> Result<KvsMeta, KvsError> {
        Ok(self.meta_now())
    }

    fn value_local(&self, key: &str) -> Option<Option<String>> {
        Some(self.get_local(key))
    }

    fn meta_local(&self) -> Option<KvsMeta> {
        Some(self.meta_now())
    }

    fn exists_local(&self, key: &str) -> Option<bool> {
        let key = normalize_key(self.normalization, key);
        Some(self.read(|i| i.map.contains_key(key.as_ref())))
    }

    fn normalization(&self) -> KeyNormalization {
        self.normalization
    }

    fn version(&self) -> Option<u64> {
        Some(self.version.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    fn fixed() -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000))
    }

    #[test]
    fn exact_store_is_byte_for_byte() {
        let s = MemoryKeyValueStore::with_clock(KeyNormalization::Exact, fixed);
        s.put("ABC123", "").unwrap();
        assert_eq!(s.exists_local("ABC123"), Some(true));
        assert_eq!(s.exists_local("abc123"), Some(false));
    }

    #[test]
    fn serial_store_normalises_both_sides() {
        let s = MemoryKeyValueStore::with_clock(KeyNormalization::SerialNumbers, fixed);
        s.put("ABC123DEF456", "revoked 2024-01-01").unwrap();
        for k in ["abc123def456", "00:ab:c1:23:de:f4:56", "00ABC123DEF456"] {
            assert_eq!(s.exists_local(k), Some(true), "{k}");
        }
        assert_eq!(
            s.get_local("ab:c1:23:de:f4:56").as_deref(),
            Some("revoked 2024-01-01")
        );
        assert!(s.delete("00abc123def456"));
        assert!(s.is_empty());
    }

    #[test]
    fn limits_are_enforced_without_partial_changes() {
        let s = MemoryKeyValueStore::with_clock(KeyNormalization::Exact, fixed).max_keys(2);
        s.put("a", "1").unwrap();
        assert!(matches!(
            s.put_many([("b", "2"), ("c", "3")]),
            Err(KvsError::TooManyKeys { count: 3, limit: 2 })
        ));
        assert_eq!(s.len(), 1);
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(matches!(
            s.put(&long, ""),
            Err(KvsError::KeyTooLarge { .. })
        ));
        let big = "v".repeat(MAX_VALUE_BYTES + 1);
        assert!(matches!(
            s.put("k", &big),
            Err(KvsError::ValueTooLarge { .. })
        ));
    }

    #[test]
    fn meta_uses_cloudfront_names() {
        let s = MemoryKeyValueStore::with_clock(KeyNormalization::Exact, fixed);
        s.put("a", "").unwrap();
        let meta = futures_lite_block_on(s.meta()).unwrap();
        assert_eq!(
            serde_json::to_string(&meta).unwrap(),
            r#"{"creationDateTime":"2023-11-14T22:13:20Z","lastUpdatedDateTime":"2023-11-14T22:13:20Z","keyCount":1}"#
        );
    }

    /// Drives a future that never waits (the memory store's) to completion.
    fn futures_lite_block_on<F: core::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(f)
    }
}
