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

use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Value};
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
}

/// One parsed stream entry.
struct Event {
    id: String,
    version: u64,
    op: Op,
    keys: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Del,
    Reset,
}

fn bulk(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

fn items(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        _ => None,
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::Nil => Some(0),
        other => std::str::from_utf8(bulk(other)?).ok()?.parse().ok(),
    }
}

/// Parses the entries of one stream (`[[id, [field, value, …]], …]`).
fn parse_entries(keys: &Keys, entries: &Value) -> Result<Vec<Event>, RedisStoreError> {
    let bad = |detail: &str| keys.unexpected(&keys.events, detail);
    let list = items(entries).ok_or_else(|| bad("entries are not an array"))?;
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        let pair = items(entry).ok_or_else(|| bad("an entry is not an array"))?;
        let [id, fields] = pair else {
            return Err(bad("an entry is not [id, fields]"));
        };
        let id = std::str::from_utf8(bulk(id).ok_or_else(|| bad("an id is not a string"))?)
            .map_err(|_| bad("an id is not UTF-8"))?
            .to_string();
        let fields = items(fields).ok_or_else(|| bad("fields are not an array"))?;
        let (mut version, mut op, mut list) = (None, None, String::new());
        for pair in fields.chunks(2) {
            let [name, value] = pair else { break };
            let value = bulk(value).unwrap_or_default();
            match bulk(name).unwrap_or_default() {
                b"v" => version = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()),
                b"op" => {
                    op = match value {
                        b"add" => Some(Op::Add),
                        b"del" => Some(Op::Del),
                        b"reset" => Some(Op::Reset),
                        _ => None,
                    }
                }
                b"keys" => list = String::from_utf8_lossy(value).into_owned(),
                _ => {}
            }
        }
        let (Some(version), Some(op)) = (version, op) else {
            return Err(bad(&format!("entry {id} has no valid `v` and `op`")));
        };
        let keys = list
            .split('\n')
            .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_BYTES)
            .map(str::to_string)
            .collect();
        out.push(Event {
            id,
            version,
            op,
            keys,
        });
    }
    Ok(out)
}

/// What happened to a session with Redis.
enum SessionEnd {
    /// The store was dropped.
    Dropped,
    /// Redis failed; retry after a pause.
    Failed(RedisStoreError),
}

/// The background task: one session after another, with backoff between.
async fn follow(weak: std::sync::Weak<Shared>, client: Client) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let contact_before = shared.contact_ms.load(Ordering::Acquire);
        let end = session(&shared, &client).await;
        let max_backoff = shared.options.max_backoff;
        if shared.contact_ms.load(Ordering::Acquire) != contact_before {
            // Redis answered during that session: start over from the
            // shortest pause.
            backoff = Duration::from_millis(100);
        }
        match end {
            SessionEnd::Dropped => return,
            SessionEnd::Failed(e) => {
                if shared.synced.load(Ordering::Acquire) {
                    shared.set_state(SyncState::Disconnected, &e);
                } else {
                    tracing::warn!(
                        store = %shared.keys.store,
                        "deny list `{}`: first synchronisation failed ({e}); retrying",
                        shared.keys.store
                    );
                }
                drop(shared);
                // Sleep in short steps so fail-closed is entered on time.
                let until = Instant::now() + backoff;
                while Instant::now() < until {
                    let Some(shared) = weak.upgrade() else { return };
                    if shared.synced.load(Ordering::Acquire) && !shared.answerable() {
                        shared.set_state(SyncState::FailClosed, &"Redis still unreachable");
                    }
                    shared.export_staleness();
                    drop(shared);
                    tokio::time::sleep(Duration::from_millis(50).min(backoff)).await;
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}

async fn session(shared: &Arc<Shared>, client: &Client) -> SessionEnd {
    let keys = &shared.keys;
    let options = &shared.options;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(options.timeout))
        .set_response_timeout(Some(options.timeout + options.block));
    let mut con = match client
        .get_multiplexed_async_connection_with_config(&config)
        .await
    {
        Ok(con) => con,
        Err(e) => return SessionEnd::Failed(keys.redis("connect")(e)),
    };
    shared.touch();
    if !shared.synced.load(Ordering::Acquire) {
        if let Err(e) = full_reload(shared, &mut con).await {
            return SessionEnd::Failed(e);
        }
    } else {
        // Resuming from the last id: the stream tells whether anything was
        // lost (a version gap), so no full reload unless it was.
        shared.set_state(SyncState::Live, &"reconnected, resuming from the last id");
    }
    let block_ms = u64::try_from(options.block.as_millis()).unwrap_or(1_000);
    let mut reported = Instant::now() - Duration::from_secs(10);
    loop {
        if Arc::strong_count(shared) <= 1 {
            return SessionEnd::Dropped;
        }
        let last_id = read_lock(&shared.last_id).clone();
        let reply: Value = match redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_BATCH)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&keys.events)
            .arg(&last_id)
            .query_async(&mut con)
            .await
        {
            Ok(v) => v,
            Err(e) => return SessionEnd::Failed(keys.redis("XREAD")(e)),
        };
        shared.touch();
        shared.export_staleness();
        let events = match xread_entries(keys, &reply) {
            Ok(events) => events,
            Err(e) => return SessionEnd::Failed(e),
        };
        let changed = !events.is_empty();
        if changed {
            if let Err(e) = apply_events(shared, &mut con, events).await {
                return SessionEnd::Failed(e);
            }
        }
        if changed || reported.elapsed() >= options.block {
            reported = Instant::now();
            report(shared, &mut con).await;
        }
    }
}

/// The entries of an `XREAD` reply for our one stream (RESP2 or RESP3).
fn xread_entries(keys: &Keys, reply: &Value) -> Result<Vec<Event>, RedisStoreError> {
    match reply {
        Value::Nil => Ok(Vec::new()),
        Value::Map(streams) => match streams.first() {
            Some((_, entries)) => parse_entries(keys, entries),
            None => Ok(Vec::new()),
        },
        other => {
            let streams =
                items(other).ok_or_else(|| keys.unexpected(&keys.events, "XREAD reply"))?;
            match streams.first().and_then(items) {
                Some([_, entries]) => parse_entries(keys, entries),
                Some(_) => Err(keys.unexpected(&keys.events, "XREAD reply")),
                None => Ok(Vec::new()),
            }
        }
    }
}

/// Applies tailed events in order; a version gap means a full reload.
async fn apply_events(
    shared: &Arc<Shared>,
    con: &mut MultiplexedConnection,
    events: Vec<Event>,
) -> Result<(), RedisStoreError> {
    match apply_in_order(shared, &events)? {
        None => Ok(()),
        Some(why) => {
            tracing::info!(
                store = %shared.keys.store,
                "deny list `{}`: {why}; reloading the whole set",
                shared.keys.store
            );
            full_reload(shared, con).await
        }
    }
}

/// Applies events while each makes the next version; returns why a full
/// reload is needed when one does not.
fn apply_in_order(shared: &Shared, events: &[Event]) -> Result<Option<String>, RedisStoreError> {
    let mut version = shared.version.load(Ordering::Acquire);
    let mut last_id = None;
    let mut reload = None;
    {
        let mut set = write_lock(&shared.set);
        for event in events {
            if event.op == Op::Reset {
                reload = Some(format!(
                    "the store was replaced at version {}",
                    event.version
                ));
                break;
            }
            if event.version != version + 1 {
                reload = Some(format!(
                    "version gap: entry {} made version {}, {version} applied (stream trimmed past the last id, or the store was reset)",
                    event.id, event.version
                ));
                break;
            }
            apply(&mut set, event, shared.options.max_keys).map_err(|limit| {
                RedisStoreError::TooManyKeys {
                    address: shared.keys.address.clone(),
                    store: shared.keys.store.clone(),
                    limit,
                }
            })?;
            version = event.version;
            last_id = Some(event.id.clone());
        }
    }
    if let Some(id) = last_id {
        publish(shared, version, id);
    }
    Ok(reload)
}

fn apply(set: &mut KeySet, event: &Event, limit: usize) -> Result<(), usize> {
    for key in &event.keys {
        let key = normalize_key(KeyNormalization::SerialNumbers, key);
        match event.op {
            Op::Add => {
                if set.len() >= limit {
                    return Err(limit);
                }
                set.insert(fingerprint(&key));
            }
            Op::Del => {
                set.remove(&fingerprint(&key));
            }
            Op::Reset => {}
        }
    }
    Ok(())
}

fn publish(shared: &Shared, version: u64, last_id: String) {
    *write_lock(&shared.last_id) = last_id;
    shared.version.store(version, Ordering::Release);
    shared.updated.store(Shared::now_secs(), Ordering::Release);
}

/// Reloads the whole set: the tail position and version first (atomically),
/// then the set, then every entry published since that position.
async fn full_reload(
    shared: &Arc<Shared>,
    con: &mut MultiplexedConnection,
) -> Result<(), RedisStoreError> {
    let keys = &shared.keys;
    let limit = shared.options.max_keys;
    'attempt: for _ in 0..5 {
        // The tail position, the version and the set's size, in one MULTI.
        let reply: Value = redis::pipe()
            .atomic()
            .get(&keys.version)
            .scard(&keys.set)
            .cmd("XREVRANGE")
            .arg(&keys.events)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(con)
            .await
            .map_err(keys.redis("MULTI GET XREVRANGE"))?;
        let parts = items(&reply).ok_or_else(|| keys.unexpected(&keys.version, "MULTI reply"))?;
        let [version, size, last] = parts else {
            return Err(keys.unexpected(&keys.version, "MULTI reply"));
        };
        let mut version =
            as_u64(version).ok_or_else(|| keys.unexpected(&keys.version, "not an integer"))?;
        let size = as_u64(size)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        if size > limit {
            return Err(RedisStoreError::TooManyKeys {
                address: keys.address.clone(),
                store: keys.store.clone(),
                limit,
            });
        }
        let mut last_id = parse_entries(keys, last)?
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_string(), |e| e.id);

        // Sized once (the scan may see a few more or fewer keys).
        let mut set = KeySet::with_capacity_and_hasher(size, Default::default());
        let mut cursor = 0u64;
        loop {
            let reply: Value = redis::cmd("SSCAN")
                .arg(&keys.set)
                .arg(cursor)
                .arg("COUNT")
                .arg(10_000)
                .query_async(con)
                .await
                .map_err(keys.redis("SSCAN"))?;
            let parts = items(&reply).ok_or_else(|| keys.unexpected(&keys.set, "SSCAN reply"))?;
            let [next, members] = parts else {
                return Err(keys.unexpected(&keys.set, "SSCAN reply"));
            };
            cursor = as_u64(next).ok_or_else(|| keys.unexpected(&keys.set, "SSCAN cursor"))?;
            for member in items(members).unwrap_or_default() {
                let Some(bytes) = bulk(member) else { continue };
                if bytes.is_empty() || bytes.len() > MAX_KEY_BYTES {
                    continue;
                }
                let Ok(text) = std::str::from_utf8(bytes) else {
                    continue;
                };
                if set.len() >= limit {
                    return Err(RedisStoreError::TooManyKeys {
                        address: keys.address.clone(),
                        store: keys.store.clone(),
                        limit,
                    });
                }
                set.insert(fingerprint(&normalize_key(
                    KeyNormalization::SerialNumbers,
                    text,
                )));
            }
            shared.touch();
            if cursor == 0 {
                break;
            }
        }

        // Replay what was published since the tail position.
        loop {
            let reply: Value = redis::cmd("XRANGE")
                .arg(&keys.events)
                .arg(format!("({last_id}"))
                .arg("+")
                .arg("COUNT")
                .arg(READ_BATCH)
                .query_async(con)
                .await
                .map_err(keys.redis("XRANGE"))?;
            let events = parse_entries(keys, &reply)?;
            if events.is_empty() {
                break;
            }
            for event in &events {
                if event.version != version + 1 || event.op == Op::Reset {
                    // Trimmed or replaced during the reload: start again.
                    continue 'attempt;
                }
                apply(&mut set, event, limit).map_err(|limit| RedisStoreError::TooManyKeys {
                    address: keys.address.clone(),
                    store: keys.store.clone(),
                    limit,
                })?;
                version = event.version;
                last_id.clone_from(&event.id);
            }
        }

        let count = set.len();
        *write_lock(&shared.set) = set;
        publish(shared, version, last_id);
        shared.full_reloads.fetch_add(1, Ordering::AcqRel);
        shared.touch();
        let first = !shared.synced.swap(true, Ordering::AcqRel);
        shared.ready.notify_waiters();
        tracing::info!(
            store = %keys.store,
            version,
            keys = count,
            "deny list `{}`: loaded {count} key(s) at version {version}",
            keys.store
        );
        shared.set_state(
            SyncState::Live,
            &if first { "first load" } else { "full reload" },
        );
        return Ok(());
    }
    Err(keys.unexpected(
        &keys.events,
        "the stream was trimmed or replaced during five reloads in a row",
    ))
}

/// Reports this node's version in the store's `nodes` hash.
async fn report(shared: &Shared, con: &mut MultiplexedConnection) {
    let value = format!(
        "{} {}",
        shared.version.load(Ordering::Acquire),
        Shared::now_secs()
    );
    let result: redis::RedisResult<Value> = redis::cmd("HSET")
        .arg(&shared.keys.nodes)
        .arg(&shared.options.node_name)
        .arg(value)
        .query_async(con)
        .await;
    if let Err(e) = result {
        tracing::debug!("deny list `{}`: node report failed: {e}", shared.keys.store);
    }
}

/// The change script: set add or remove, version increment and stream
/// entry, in one atomic step. Returns `{version, changed, id}`.
const CHANGE_SCRIPT: &str = r"
local op = ARGV[1]
local changed = 0
for i = 3, #ARGV do
  if op == 'del' then
    changed = changed + redis.call('SREM', KEYS[1], ARGV[i])
  else
    changed = changed + redis.call('SADD', KEYS[1], ARGV[i])
  end
end
local v = redis.call('INCR', KEYS[2])
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'v', v, 'op', op, 'keys', table.concat(ARGV, '\n', 3))
return {v, changed, id}
";

/// The replacement script: the staging set becomes the list (or the list
/// is emptied), the version is incremented and a `reset` entry recorded.
/// Returns `{version, keys, id}`.
const REPLACE_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('RENAME', KEYS[4], KEYS[1])
else
  redis.call('DEL', KEYS[1])
end
local v = redis.call('INCR', KEYS[2])
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', 'v', v, 'op', 'reset', 'keys', '')
return {v, redis.call('SCARD', KEYS[1]), id}
";

/// What one change did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeReport {
    /// The store version after the change.
    pub version: u64,
    /// Keys actually added or removed (already present or absent ones are
    /// not counted); for a replacement, the keys of the new list.
    pub changed: u64,
    /// Stream entries written (one per [`MAX_KEYS_PER_CHANGE`] keys).
    pub events: u64,
}

/// One node's last report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeReport {
    /// The node's name.
    pub node: String,
    /// The version it had applied.
    pub version: u64,
    /// When it reported, Unix seconds.
    pub reported_at: u64,
}

/// A store as Redis holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreStatus {
    /// The store name.
    pub store: String,
    /// The version counter.
    pub version: u64,
    /// Keys in the set.
    pub count: u64,
    /// Entries in the stream.
    pub stream_length: u64,
    /// The stream's first and last ids.
    pub first_id: Option<String>,
    /// The stream's last id.
    pub last_id: Option<String>,
    /// Nodes that reported, with their version.
    pub nodes: Vec<NodeReport>,
}

/// Changes a Redis deny list (revoke, unrevoke, replace) and reads its
/// status. Uses a [`ConnectionManager`] (reconnects by itself).
#[derive(Clone)]
pub struct RedisDenyListAdmin {
    keys: Keys,
    con: ConnectionManager,
    stream_length: u64,
}

impl fmt::Debug for RedisDenyListAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisDenyListAdmin")
            .field("store", &self.keys.store)
            .field("address", &self.keys.address)
            .finish_non_exhaustive()
    }
}

impl RedisDenyListAdmin {
    /// Connects to the store `store` at `url`; the stream is trimmed to
    /// about `stream_length` entries.
    pub async fn connect(
        url: &str,
        store: &str,
        stream_length: u64,
    ) -> Result<Self, RedisStoreError> {
        let keys = Keys::new(url, store)?;
        let client = open_client(url, &keys)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(30)))
            .set_number_of_retries(3);
        let con = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(keys.redis("connect"))?;
        Ok(Self {
            keys,
            con,
            stream_length: stream_length.max(1),
        })
    }

    /// Normalises and checks keys (serials in any common spelling, or
    /// `<issuer id>/<serial>`).
    fn prepare(&self, keys: &[String]) -> Result<Vec<String>, RedisStoreError> {
        keys.iter()
            .map(|k| {
                let invalid = |source| RedisStoreError::InvalidKey {
                    store: self.keys.store.clone(),
                    source,
                };
                if k.len() > MAX_KEY_BYTES {
                    return Err(invalid(KvsError::KeyTooLarge {
                        key: k.chars().take(64).collect(),
                        len: k.len(),
                    }));
                }
                let n = normalize_key(KeyNormalization::SerialNumbers, k);
                if n.is_empty() || n.contains('\n') {
                    return Err(invalid(KvsError::EmptyKey { location: None }));
                }
                Ok(n.into_owned())
            })
            .collect()
    }

    async fn change(&mut self, op: &str, keys: &[String]) -> Result<ChangeReport, RedisStoreError> {
        let keys = self.prepare(keys)?;
        let mut report = ChangeReport::default();
        let script = redis::Script::new(CHANGE_SCRIPT);
        for chunk in keys.chunks(MAX_KEYS_PER_CHANGE) {
            let mut invocation = script.key(&self.keys.set);
            invocation
                .key(&self.keys.version)
                .key(&self.keys.events)
                .arg(op)
                .arg(self.stream_length);
            for key in chunk {
                invocation.arg(key);
            }
            let reply: Value = invocation
                .invoke_async(&mut self.con)
                .await
                .map_err(self.keys.redis("EVALSHA change"))?;
            let parts = items(&reply)
                .ok_or_else(|| self.keys.unexpected(&self.keys.events, "script reply"))?;
            report.version = parts.first().and_then(as_u64).unwrap_or(0);
            report.changed += parts.get(1).and_then(as_u64).unwrap_or(0);
            report.events += 1;
        }
        Ok(report)
    }

    /// Adds keys to the deny list.
    pub async fn revoke(&mut self, keys: &[String]) -> Result<ChangeReport, RedisStoreError> {
        self.change("add", keys).await
    }

    /// Removes keys from the deny list.
    pub async fn unrevoke(&mut self, keys: &[String]) -> Result<ChangeReport, RedisStoreError> {
        self.change("del", keys).await
    }

    /// Replaces the whole list with `keys` in one atomic step: the keys are
    /// written to a staging set first, which one script then renames over
    /// the list while recording a `reset` change (nodes reload it in full,
    /// and never see half of it).
    pub async fn replace_all(&mut self, keys: &[String]) -> Result<ChangeReport, RedisStoreError> {
        let keys = self.prepare(keys)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let staging = format!(
            "edge-mtls:{{{}}}:staging:{}:{nanos}",
            self.keys.store,
            std::process::id()
        );
        let _: Value = redis::cmd("DEL")
            .arg(&staging)
            .query_async(&mut self.con)
            .await
            .map_err(self.keys.redis("DEL staging"))?;
        for chunk in keys.chunks(MAX_KEYS_PER_CHANGE * 10) {
            let _: Value = redis::cmd("SADD")
                .arg(&staging)
                .arg(chunk)
                .query_async(&mut self.con)
                .await
                .map_err(self.keys.redis("SADD staging"))?;
        }
        let reply: Value = redis::Script::new(REPLACE_SCRIPT)
            .key(&self.keys.set)
            .key(&self.keys.version)
            .key(&self.keys.events)
            .key(&staging)
            .arg(self.stream_length)
            .invoke_async(&mut self.con)
            .await
            .map_err(self.keys.redis("EVALSHA replace"))?;
        let parts =
            items(&reply).ok_or_else(|| self.keys.unexpected(&self.keys.events, "script reply"))?;
        Ok(ChangeReport {
            version: parts.first().and_then(as_u64).unwrap_or(0),
            changed: parts.get(1).and_then(as_u64).unwrap_or(0),
            events: 1,
        })
    }

    /// The store's version, key count, stream length and node reports.
    pub async fn status(&mut self) -> Result<StoreStatus, RedisStoreError> {
        let keys = &self.keys;
        let reply: Value = redis::pipe()
            .atomic()
            .get(&keys.version)
            .scard(&keys.set)
            .xlen(&keys.events)
            .cmd("XRANGE")
            .arg(&keys.events)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .cmd("XREVRANGE")
            .arg(&keys.events)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .hgetall(&keys.nodes)
            .query_async(&mut self.con)
            .await
            .map_err(keys.redis("MULTI status"))?;
        let parts = items(&reply).ok_or_else(|| keys.unexpected(&keys.version, "MULTI reply"))?;
        let [version, count, length, first, last, nodes] = parts else {
            return Err(keys.unexpected(&keys.version, "MULTI reply"));
        };
        let id = |v: &Value| -> Result<Option<String>, RedisStoreError> {
            Ok(parse_entries(keys, v)?.into_iter().next().map(|e| e.id))
        };
        let mut reports = Vec::new();
        let pairs: Vec<(&Value, &Value)> = match nodes {
            Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
            other => items(other)
                .unwrap_or_default()
                .chunks(2)
                .filter_map(|c| match c {
                    [k, v] => Some((k, v)),
                    _ => None,
                })
                .collect(),
        };
        for (node, value) in pairs.into_iter().take(10_000) {
            let node = String::from_utf8_lossy(bulk(node).unwrap_or_default()).into_owned();
            let value = String::from_utf8_lossy(bulk(value).unwrap_or_default()).into_owned();
            let mut fields = value.split(' ').map(str::parse::<u64>);
            if let (Some(Ok(version)), Some(Ok(reported_at))) = (fields.next(), fields.next()) {
                reports.push(NodeReport {
                    node,
                    version,
                    reported_at,
                });
            }
        }
        reports.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(StoreStatus {
            store: keys.store.clone(),
            version: as_u64(version).unwrap_or(0),
            count: as_u64(count).unwrap_or(0),
            stream_length: as_u64(length).unwrap_or(0),
            first_id: id(first)?,
            last_id: id(last)?,
            nodes: reports,
        })
    }

    /// Trims the stream to about `max_len` entries (operators; tests of the
    /// full-reload path).
    pub async fn trim_stream(&mut self, max_len: u64) -> Result<u64, RedisStoreError> {
        redis::cmd("XTRIM")
            .arg(&self.keys.events)
            .arg("MAXLEN")
            .arg(max_len)
            .query_async(&mut self.con)
            .await
            .map_err(self.keys.redis("XTRIM"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
