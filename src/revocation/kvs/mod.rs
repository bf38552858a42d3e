//! Key-value stores with CloudFront KeyValueStore (`cf.kvs()`) semantics.
//!
//! A [`KeyValueStore`] answers `get`, `exists` and `meta` asynchronously, as
//! `cf.kvs()` does in a connection function, plus a synchronous
//! [`exists_local`](KeyValueStore::exists_local) for stores holding a local
//! copy (memory, a replicated snapshot), which is what lets a deny list
//! answer inside the TLS handshake. [`MemoryKeyValueStore`] is the in-memory
//! implementation; it imports CloudFront's KVS JSON and plain serial lists.
//!
//! Keys are compared as the store's [`KeyNormalization`] says: `Exact` is
//! CloudFront's byte-for-byte behaviour; `SerialNumbers` makes every spelling
//! of one certificate serial the same key (see [`normalize_key`]).

mod import;
mod memory;
mod normalize;
#[cfg(feature = "redis")]
pub(crate) mod redis;

use core::fmt;

use serde::{Serialize, Serializer};

use crate::x509::fields::iso8601;

use super::SerialParseError;

pub use import::{ImportOptions, ImportReport};
pub use memory::MemoryKeyValueStore;
pub use normalize::{normalize_key, KeyNormalization};
#[cfg(feature = "redis")]
pub use redis::{
    ChangeReport, NodeReport, RedisDenyListAdmin, RedisKeyValueStore, RedisStoreError,
    RedisStoreOptions, StoreStatus, SyncState, SyncStatus, DEFAULT_STORE_NAME,
    DEFAULT_STREAM_LENGTH, MAX_KEYS_PER_CHANGE,
};

/// CloudFront's limit on a key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// CloudFront's limit on a value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;

/// What `meta()` returns (CloudFront's field names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KvsMeta {
    /// When the store was created, Unix seconds.
    pub creation_date_time: u64,
    /// When it last changed, Unix seconds.
    pub last_updated_date_time: u64,
    /// How many keys it holds.
    pub key_count: u64,
}

impl Serialize for KvsMeta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("KvsMeta", 3)?;
        s.serialize_field("creationDateTime", &iso8601(self.creation_date_time))?;
        s.serialize_field("lastUpdatedDateTime", &iso8601(self.last_updated_date_time))?;
        s.serialize_field("keyCount", &self.key_count)?;
        s.end()
    }
}

/// Where in an import a bad entry sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportLocation {
    /// The 0-based index in the KVS JSON `data` array.
    Entry(usize),
    /// The 1-based line of a text list.
    Line(usize),
}

impl fmt::Display for ImportLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Entry(i) => write!(f, "data[{i}]"),
            Self::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// A key-value store or import failure; each variant names the check.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvsError {
    /// The store could not be reached (remote stores).
    #[error("key-value store unavailable: {detail}")]
    Unavailable {
        /// What failed.
        detail: String,
    },
    /// A key is empty.
    #[error("empty key{}", location.map(|l| format!(" at {l}")).unwrap_or_default())]
    EmptyKey {
        /// Where, for imports.
        location: Option<ImportLocation>,
    },
    /// A key is longer than [`MAX_KEY_BYTES`].
    #[error("key {key:?}… is {len} bytes, more than {MAX_KEY_BYTES}")]
    KeyTooLarge {
        /// The key's first 64 characters.
        key: String,
        /// Its length.
        len: usize,
    },
    /// A value is longer than [`MAX_VALUE_BYTES`].
    #[error("value of key {key:?} is {len} bytes, more than {MAX_VALUE_BYTES}")]
    ValueTooLarge {
        /// The key.
        key: String,
        /// The value's length.
        len: usize,
    },
    /// The import is not CloudFront's KVS JSON (`{"data":[{"key":..,"value":..}]}`).
    #[error("not CloudFront KeyValueStore JSON: {detail}")]
    InvalidJson {
        /// The parser's message, with line and column.
        detail: String,
    },
    /// A key is not a serial number and the import is strict.
    #[error("{location}: key {key:?} is not a serial number: {reason}")]
    InvalidSerial {
        /// Where.
        location: ImportLocation,
        /// The key as written.
        key: String,
        /// Why it is not a serial.
        reason: SerialParseError,
    },
    /// The input is larger than the import limit.
    #[error("import of {bytes} bytes exceeds the limit of {limit}")]
    InputTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The store would hold more keys than its limit.
    #[error("{count} keys exceed the store's limit of {limit}")]
    TooManyKeys {
        /// How many there would be.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

/// A read-only key-value store with CloudFront `cf.kvs()` semantics.
///
/// Object-safe; the deny list, the JavaScript `cf.kvs()` API and remote
/// (Redis) stores all sit behind it.
#[async_trait::async_trait]
pub trait KeyValueStore: Send + Sync + fmt::Debug {
    /// The value of `key`, or `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<String>, KvsError>;

    /// Whether `key` is present.
    async fn exists(&self, key: &str) -> Result<bool, KvsError>;

    /// Creation time, last update and key count.
    async fn meta(&self) -> Result<KvsMeta, KvsError>;

    /// Whether `key` is present, answered from a local copy without I/O, or
    /// `None` when only [`exists`](Self::exists) can tell (used inside the
    /// TLS handshake, so it must not block).
    fn exists_local(&self, key: &str) -> Option<bool>;

    /// The value of `key` from a local copy without I/O (`Some(None)` when
    /// absent), or `None` when only [`get`](Self::get) can tell (what the
    /// JavaScript `cf.kvs().get` answers from).
    fn value_local(&self, key: &str) -> Option<Option<String>> {
        let _ = key;
        None
    }

    /// [`meta`](Self::meta) from a local copy, or `None` when only `meta`
    /// can tell.
    fn meta_local(&self) -> Option<KvsMeta> {
        None
    }

    /// How this store compares keys.
    fn normalization(&self) -> KeyNormalization {
        KeyNormalization::Exact
    }

    /// A stamp of the local copy [`exists_local`](Self::exists_local)
    /// answers from, from [`next_data_stamp`](crate::next_data_stamp):
    /// a new one is taken after every change. `None` (the default) when
    /// answers may change without a new stamp (no local copy, or one whose
    /// usability depends on the time).
    fn version(&self) -> Option<u64> {
        None
    }
}
