//! [`RedisKeyValueStore`]: a deny list a fleet shares through Redis, with
//! nothing lost (feature `redis`).
//!
//! The authoritative state lives in Redis, per store name `NAME` (the
//! `{NAME}` hash tag keeps the keys of one store in one cluster slot):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `edge-mtls:{NAME}:revoked` | set | the revoked keys, normalised (`00a7309e`, `<issuer id>/<serial>`) |
//! | `edge-mtls:{NAME}:version` | string | a counter, incremented by every change |
//! | `edge-mtls:{NAME}:events` | stream | one entry per change: `v` (the version it made), `op` (`add`, `del`, `reset`), `keys` (newline-separated) |
//! | `edge-mtls:{NAME}:nodes` | hash | per node: the version it has applied and when (`status` shows the lag) |
//!
//! Every change is one Lua script (atomic): set add or remove, version
//! increment, `XADD … MAXLEN ~ N`. [`RedisDenyListAdmin`] makes changes (the
//! `edge-mtls revoke|unrevoke|import` commands use it).
//!
//! Each node keeps a local snapshot, which is what the TLS handshake reads
//! ([`exists_local`](KeyValueStore::exists_local) never does I/O): a set of
//! 128-bit fingerprints (SHA-256) of the normalised keys, 16 bytes a key. A
//! background task tails the stream with `XREAD BLOCK` from the last id it
//! applied, and resumes from that id after a reconnection. When an entry's
//! version is not the next one (the stream was trimmed past the node's last
//! id, or the store was reset), the node reloads the whole set: it first
//! records the stream's last id and the version together (`MULTI`), which is
//! where its tail starts, then scans the set (`SSCAN`) and replays every
//! entry after that id, so nothing published during the reload is missed.
//!
//! While Redis is unreachable the node keeps deciding from its snapshot;
//! with [`RedisStoreOptions::fail_closed_after`], once the snapshot is older
//! than that, lookups answer "unavailable" (a deny list's hard-fail policy
//! then refuses new connections) until Redis answers again. The snapshot's
//! age is [`RedisKeyValueStore::staleness`] (and, with feature `metrics`, the
//! gauge `edge_mtls_deny_list_staleness_seconds`); every change of
//! [`SyncState`] is logged once through `tracing`.

use core::fmt;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::Client;
use sha2::{Digest, Sha256};

use super::{normalize_key, KeyNormalization, KeyValueStore, KvsError, KvsMeta, MAX_KEY_BYTES};

/// The default store name.
pub const DEFAULT_STORE_NAME: &str = "edge-mtls";
/// The default approximate length the change stream is trimmed to.
pub const DEFAULT_STREAM_LENGTH: u64 = 100_000;
/// Keys per change (one script call, one stream entry).
pub const MAX_KEYS_PER_CHANGE: usize = 1_000;
/// Stream entries read per `XREAD` / `XRANGE`.
const READ_BATCH: usize = 1_000;

/// Why a Redis deny-list operation failed. Every variant names the store.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RedisStoreError {
    /// The URL is not a Redis URL.
    #[error("store `{store}`: `{address}` is not a Redis URL: {source}")]
    InvalidUrl {
        /// The URL, without its password.
        address: String,
        /// The store name.
        store: String,
        /// redis-rs's message.
        #[source]
        source: redis::RedisError,
    },
    /// Redis could not be reached or refused a command.
    #[error("store `{store}` at {address}: {command}: {source}")]
    Redis {
        /// The URL, without its password.
        address: String,
        /// The store name.
        store: String,
        /// The command that failed.
        command: &'static str,
        /// redis-rs's error.
        #[source]
        source: redis::RedisError,
    },
    /// Redis answered something this store does not write (a key of the
    /// wrong type, a malformed stream entry).
    #[error("store `{store}` at {address}: unexpected data in `{key}`: {detail}")]
    UnexpectedData {
        /// The URL, without its password.
        address: String,
        /// The store name.
        store: String,
        /// The Redis key.
        key: String,
        /// What was wrong.
        detail: String,
    },
    /// [`RedisKeyValueStore::connect`] was called outside a tokio runtime.
    #[error("store `{store}`: following Redis needs a tokio runtime")]
    NoRuntime {
        /// The store name.
        store: String,
    },
    /// A store name must be 1 to 64 characters of `A-Z a-z 0-9 _ - . :`.
    #[error("`{name}` is not a store name (1 to 64 characters of A-Z a-z 0-9 _ - . :)")]
    InvalidStoreName {
        /// The name given.
        name: String,
    },
    /// A key to revoke is not acceptable.
    #[error("store `{store}`: {source}")]
    InvalidKey {
        /// The store name.
        store: String,
        /// Why.
        #[source]
        source: KvsError,
    },
    /// The set holds more keys than [`RedisStoreOptions::max_keys`].
    #[error("store `{store}` at {address}: more than {limit} keys")]
    TooManyKeys {
        /// The URL, without its password.
        address: String,
        /// The store name.
        store: String,
        /// The limit.
        limit: usize,
    },
}

/// The URL without its password (for messages and logs).
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

fn check_store_name(name: &str) -> Result<(), RedisStoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(RedisStoreError::InvalidStoreName {
            name: name.to_string(),
        })
    }
}

/// The Redis keys of one store.
#[derive(Clone, Debug)]
struct Keys {
    address: String,
    store: String,
    set: String,
    version: String,
    events: String,
    nodes: String,
}

impl Keys {
    fn new(url: &str, store: &str) -> Result<Self, RedisStoreError> {
        check_store_name(store)?;
        let base = format!("edge-mtls:{{{store}}}");
        Ok(Self {
            address: redact(url),
            store: store.to_string(),
            set: format!("{base}:revoked"),
            version: format!("{base}:version"),
            events: format!("{base}:events"),
            nodes: format!("{base}:nodes"),
        })
    }

    fn redis(&self, command: &'static str) -> impl FnOnce(redis::RedisError) -> RedisStoreError {
        let (address, store) = (self.address.clone(), self.store.clone());
        move |source| RedisStoreError::Redis {
            address,
            store,
            command,
            source,
        }
    }

    fn unexpected(&self, key: &str, detail: impl Into<String>) -> RedisStoreError {
        RedisStoreError::UnexpectedData {
            address: self.address.clone(),
            store: self.store.clone(),
            key: key.to_string(),
            detail: detail.into(),
        }
    }
}

fn open_client(url: &str, keys: &Keys) -> Result<Client, RedisStoreError> {
    Client::open(url).map_err(|source| RedisStoreError::InvalidUrl {
        address: keys.address.clone(),
        store: keys.store.clone(),
        source,
    })
}

/// How a node follows a Redis deny list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisStoreOptions {
    /// The store name (default [`DEFAULT_STORE_NAME`]).
    pub store: String,
    /// After Redis has been unreachable this long, lookups answer
    /// "unavailable" so new connections are refused (default: never).
    pub fail_closed_after: Option<Duration>,
    /// How long one `XREAD BLOCK` waits (default 1 s; also how often the
    /// node reports its version).
    pub block: Duration,
    /// Connection and response timeout of other commands (default 5 s).
    pub timeout: Duration,
    /// Largest set accepted from Redis (default 20,000,000 keys).
    pub max_keys: usize,
    /// This node's name in the store's `nodes` hash (default `host:pid`).
    pub node_name: String,
    /// How long the first lookups wait for the first synchronisation
    /// after start (default 5 s; the handshake itself never waits).
    pub initial_sync_wait: Duration,
    /// Longest pause between reconnection attempts (default 5 s; the first
    /// is 100 ms, doubling).
    pub max_backoff: Duration,
}

impl Default for RedisStoreOptions {
    fn default() -> Self {
        Self {
            store: DEFAULT_STORE_NAME.to_string(),
            fail_closed_after: None,
            block: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            max_keys: 20_000_000,
            node_name: default_node_name(),
            initial_sync_wait: Duration::from_secs(5),
            max_backoff: Duration::from_secs(5),
        }
    }
}

fn default_node_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().chars().take(64).collect::<String>())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    format!("{host}:{}", std::process::id())
}

/// Where a node stands with its Redis store.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncState {
    /// Started; the first full load has not completed.
    Starting,
    /// Following the change stream.
    Live,
    /// Redis is unreachable; deciding from the last snapshot.
    Disconnected,
    /// Unreachable for longer than `fail_closed_after`: lookups answer
    /// "unavailable".
    FailClosed,
}

impl SyncState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Live,
            2 => Self::Disconnected,
            3 => Self::FailClosed,
            _ => Self::Starting,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::Starting => 0,
            Self::Live => 1,
            Self::Disconnected => 2,
            Self::FailClosed => 3,
        }
    }
}

impl fmt::Display for SyncState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Starting => "starting",
            Self::Live => "live",
            Self::Disconnected => "disconnected",
            Self::FailClosed => "fail-closed",
        })
    }
}

/// A node's view of its store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncStatus {
    /// The state.
    pub state: SyncState,
    /// The store version the snapshot reflects.
    pub version: u64,
    /// The last stream id applied.
    pub last_id: String,
    /// Keys in the snapshot.
    pub keys: usize,
    /// Time since Redis last answered (`None` before the first answer).
    pub staleness: Option<Duration>,
    /// Full reloads done (the first load included).
    pub full_reloads: u64,
}

/// A 128-bit fingerprint of a normalised key: already uniform, so the set
/// hashes it by taking its low bits.
type Fingerprint = u128;

#[derive(Default)]
struct LowBits(u64);

impl Hasher for LowBits {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        // Truncation intended: the low 64 bits of a SHA-256 prefix.
        self.0 = v as u64;
    }
}

type KeySet = HashSet<Fingerprint, BuildHasherDefault<LowBits>>;

fn fingerprint(normalized: &str) -> Fingerprint {
    let digest = Sha256::digest(normalized.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

struct Shared {
    keys: Keys,
    options: RedisStoreOptions,
    set: RwLock<KeySet>,
    synced: AtomicBool,
    state: AtomicU8,
    /// Milliseconds since `epoch` at the last answer from Redis (0: never).
    contact_ms: AtomicU64,
    epoch: Instant,
    version: AtomicU64,
    /// A new data stamp after every change to `set` (see
    /// [`KeyValueStore::version`]).
    stamp: AtomicU64,
    last_id: RwLock<String>,
    full_reloads: AtomicU64,
    created: u64,
    updated: AtomicU64,
    ready: tokio::sync::Notify,
}

impl Shared {
    fn staleness(&self) -> Option<Duration> {
        let at = self.contact_ms.load(Ordering::Acquire);
        (at != 0).then(|| {
            let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            Duration::from_millis(now.saturating_sub(at))
        })
    }

    fn touch(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.contact_ms.store(now, Ordering::Release);
    }

    /// Whether lookups may be answered from the snapshot: synchronised, and
    /// either following the stream or cut off for less than
    /// `fail_closed_after` (counted from Redis's last answer; a connection
    /// that dies silently is noticed within the response timeout).
    fn answerable(&self) -> bool {
        if !self.synced.load(Ordering::Acquire) {
            return false;
        }
        if SyncState::from_u8(self.state.load(Ordering::Acquire)) == SyncState::Live {
            return true;
        }
        match (self.options.fail_closed_after, self.staleness()) {
            (Some(bound), Some(age)) => age <= bound,
            _ => true,
        }
    }

    fn set_state(&self, state: SyncState, detail: &dyn fmt::Display) {
        let old = SyncState::from_u8(self.state.swap(state.as_u8(), Ordering::AcqRel));
        if old == state {
            return;
        }
        let store = &self.keys.store;
        let address = &self.keys.address;
        let version = self.version.load(Ordering::Acquire);
        match state {
            SyncState::Live => tracing::info!(
                store = %store, address = %address, version,
                "deny list `{store}` ({address}): live at version {version} ({detail})"
            ),
            SyncState::Disconnected => tracing::warn!(
                store = %store, address = %address, version,
                "deny list `{store}` ({address}): Redis unreachable, deciding from the snapshot of version {version} ({detail})"
            ),
            SyncState::FailClosed => tracing::error!(
                store = %store, address = %address, version,
                "deny list `{store}` ({address}): snapshot older than fail_closed_after, new connections are refused ({detail})"
            ),
            SyncState::Starting => {}
        }
    }

    fn export_staleness(&self) {
        #[cfg(feature = "metrics")]
        if let Some(age) = self.staleness() {
            metrics::gauge!("edge_mtls_deny_list_staleness_seconds", "store" => self.keys.store.clone())
                .set(age.as_secs_f64());
        }
    }

    fn now_secs() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A deny list kept in Redis and followed by a local snapshot (see the
/// module documentation). Create it with [`connect`](Self::connect) inside a
/// tokio runtime; the background task stops when the last clone of the
/// store is dropped.
#[derive(Clone)]
pub struct RedisKeyValueStore {
    shared: Arc<Shared>,
}

impl fmt::Debug for RedisKeyValueStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisKeyValueStore")
            .field("store", &self.shared.keys.store)
            .field("address", &self.shared.keys.address)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl RedisKeyValueStore {
    /// Starts following the store at `url` (`redis://host:port/db`). Returns
    /// at once; the first full load runs in the background (lookups wait
    /// for it at most [`RedisStoreOptions::initial_sync_wait`], the
    /// handshake not at all). Must be called inside a tokio runtime, whose
    /// task does the following.
    pub fn connect(url: &str, options: RedisStoreOptions) -> Result<Self, RedisStoreError> {
        let keys = Keys::new(url, &options.store)?;
        let client = open_client(url, &keys)?;
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| RedisStoreError::NoRuntime {
                store: keys.store.clone(),
            })?;
        let created = Shared::now_secs();
        let shared = Arc::new(Shared {
            keys,
            options,
            set: RwLock::new(KeySet::default()),
            synced: AtomicBool::new(false),
            state: AtomicU8::new(SyncState::Starting.as_u8()),
            contact_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            version: AtomicU64::new(0),
            stamp: AtomicU64::new(crate::revocation::next_data_stamp()),
            last_id: RwLock::new("0-0".into()),
            full_reloads: AtomicU64::new(0),
            created,
            updated: AtomicU64::new(created),
            ready: tokio::sync::Notify::new(),
        });
        runtime.spawn(follow(Arc::downgrade(&shared), client));
        Ok(Self { shared })
    }

    /// Waits until the first full load has completed, at most `timeout`;
    /// returns whether it has.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.ready.notified();
                if self.shared.synced.load(Ordering::Acquire) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Waits until the snapshot reflects at least `version`, at most
    /// `timeout`; returns whether it does.
    pub async fn wait_for_version(&self, version: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.synced() && self.shared.version.load(Ordering::Acquire) >= version {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn synced(&self) -> bool {
        self.shared.synced.load(Ordering::Acquire)
    }

    /// The current state.
    pub fn state(&self) -> SyncState {
        SyncState::from_u8(self.shared.state.load(Ordering::Acquire))
    }

    /// Time since Redis last answered (`None` before it ever did).
    pub fn staleness(&self) -> Option<Duration> {
        self.shared.staleness()
    }

    /// The store name.
    pub fn store_name(&self) -> &str {
        &self.shared.keys.store
    }

    /// The node's view: state, version, last id, key count, staleness.
    pub fn status(&self) -> SyncStatus {
        SyncStatus {
            state: self.state(),
            version: self.shared.version.load(Ordering::Acquire),
            last_id: read_lock(&self.shared.last_id).clone(),
            keys: read_lock(&self.shared.set).len(),
            staleness: self.staleness(),
            full_reloads: self.shared.full_reloads.load(Ordering::Acquire),
        }
    }

    fn unavailable(&self) -> KvsError {
        let keys = &self.shared.keys;
        let detail = if self.synced() {
            format!(
                "deny list `{}` ({}): snapshot is {} ms old, more than fail_closed_after",
                keys.store,
                keys.address,
                self.staleness().map_or(0, |d| d.as_millis())
            )
        } else {
            format!(
                "deny list `{}` ({}): not synchronised with Redis yet",
                keys.store, keys.address
            )
        };
        KvsError::Unavailable { detail }
    }

    async fn answerable_after_wait(&self) -> bool {
        if !self.synced() {
            self.wait_synced(self.shared.options.initial_sync_wait)
                .await;
        }
        self.shared.answerable()
    }

    fn contains(&self, key: &str) -> bool {
        let key = normalize_key(KeyNormalization::SerialNumbers, key);
        read_lock(&self.shared.set).contains(&fingerprint(&key))
    }
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

#[async_trait::async_trait]
impl KeyValueStore for RedisKeyValueStore {
    /// Listed keys have the empty value (the set holds no values).
    async fn get(&self, key: &str) -> Result<Option<String>, KvsError> {
        Ok(self.exists(key).await?.then(String::new))
    }

    async fn exists(&self, key: &str) -> Result<bool, KvsError> {
        if self.answerable_after_wait().await {
            Ok(self.contains(key))
        } else {
            Err(self.unavailable())
        }
    }

    async fn meta(&self) -> Result<KvsMeta, KvsError> {
        if !self.answerable_after_wait().await {
            return Err(self.unavailable());
        }
        Ok(KvsMeta {
            creation_date_time: self.shared.created,
            last_updated_date_time: self.shared.updated.load(Ordering::Acquire),
            key_count: u64::try_from(read_lock(&self.shared.set).len()).unwrap_or(u64::MAX),
        })
    }

    fn exists_local(&self, key: &str) -> Option<bool> {
        // Not synchronised yet, or stale past the bound: stage 2 asks
        // `exists`, which answers "unavailable".
        self.shared.answerable().then(|| self.contains(key))
    }

    fn normalization(&self) -> KeyNormalization {
        KeyNormalization::SerialNumbers
    }

    /// Only without a staleness bound (with one, answers change with the
    /// time since the last contact), and once synchronised.
    fn version(&self) -> Option<u64> {
        if self.shared.options.fail_closed_after.is_some() || !self.shared.answerable() {
            return None;
        }
        Some(self.shared.stamp.load(Ordering::Acquire))
    }
}

/// Takes a new data stamp when dropped: declared before the set's write
/// guard, it runs after the change is complete, on every path out.
struct Restamp<'a>(&'a AtomicU64);

impl Drop for Restamp<'_> {
    fn drop(&mut self) {
        self.0
            .store(crate::revocation::next_data_stamp(), Ordering::Release);
    }
}

mod admin;
mod follow;

pub use admin::{ChangeReport, NodeReport, RedisDenyListAdmin, StoreStatus};
use follow::*;

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    #[test]
    fn names_and_urls() {
        assert!(check_store_name("edge-mtls").is_ok());
        assert!(check_store_name("fleet:eu-1.prod").is_ok());
        for bad in ["", "a b", "x{y}", &"n".repeat(65)] {
            assert!(check_store_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            redact("redis://:secret@host:6379/0"),
            "redis://…@host:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        let keys = Keys::new("redis://h", "s").unwrap();
        assert_eq!(keys.set, "edge-mtls:{s}:revoked");
        assert_eq!(keys.events, "edge-mtls:{s}:events");
    }

    #[test]
    fn malformed_stream_entries_are_errors_not_panics() {
        let keys = Keys::new("redis://h", "s").unwrap();
        let bs = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let good = Value::Array(vec![Value::Array(vec![
            bs("1-0"),
            Value::Array(vec![
                bs("v"),
                bs("1"),
                bs("op"),
                bs("add"),
                bs("keys"),
                bs("01\n02"),
            ]),
        ])]);
        let events = parse_entries(&keys, &good).unwrap();
        assert_eq!(events[0].keys, vec!["01", "02"]);
        for bad in [
            Value::Int(3),
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![bs("1-0")])]),
            Value::Array(vec![Value::Array(vec![
                bs("1-0"),
                Value::Array(vec![bs("v")]),
            ])]),
            Value::Array(vec![Value::Array(vec![
                bs("1-0"),
                Value::Array(vec![bs("v"), bs("x"), bs("op"), bs("add")]),
            ])]),
        ] {
            assert!(parse_entries(&keys, &bad).is_err());
        }
    }

    #[test]
    fn fingerprints_follow_normalisation() {
        let mut set = KeySet::default();
        let event = Event {
            id: "1-0".into(),
            version: 1,
            op: Op::Add,
            keys: vec!["AB:C1:23".into()],
        };
        apply(&mut set, &event, 10).unwrap();
        assert!(set.contains(&fingerprint(&normalize_key(
            KeyNormalization::SerialNumbers,
            "00abc123"
        ))));
        assert_eq!(
            apply(
                &mut set,
                &Event {
                    keys: vec!["01".into()],
                    ..event
                },
                1
            ),
            Err(1)
        );
    }
}
