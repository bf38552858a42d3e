//! Following the store: the change stream tailed with `XREAD BLOCK`,
//! resumed from the last id, and the whole-set reload when the stream was
//! trimmed past it.

use super::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Value};

/// One parsed stream entry.
pub(super) struct Event {
    pub(super) id: String,
    pub(super) version: u64,
    pub(super) op: Op,
    pub(super) keys: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Add,
    Del,
    Reset,
}

pub(super) fn bulk(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

pub(super) fn items(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        _ => None,
    }
}

pub(super) fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::Nil => Some(0),
        other => std::str::from_utf8(bulk(other)?).ok()?.parse().ok(),
    }
}

/// Parses the entries of one stream (`[[id, [field, value, …]], …]`).
pub(super) fn parse_entries(keys: &Keys, entries: &Value) -> Result<Vec<Event>, RedisStoreError> {
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
pub(super) enum SessionEnd {
    /// The store was dropped.
    Dropped,
    /// Redis failed; retry after a pause.
    Failed(RedisStoreError),
}

/// The background task: one session after another, with backoff between.
pub(super) async fn follow(weak: std::sync::Weak<Shared>, client: Client) {
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

pub(super) async fn session(shared: &Arc<Shared>, client: &Client) -> SessionEnd {
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
pub(super) fn xread_entries(keys: &Keys, reply: &Value) -> Result<Vec<Event>, RedisStoreError> {
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
pub(super) async fn apply_events(
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
pub(super) fn apply_in_order(
    shared: &Shared,
    events: &[Event],
) -> Result<Option<String>, RedisStoreError> {
    let mut version = shared.version.load(Ordering::Acquire);
    let mut last_id = None;
    let mut reload = None;
    {
        let _restamp = Restamp(&shared.stamp);
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

pub(super) fn apply(set: &mut KeySet, event: &Event, limit: usize) -> Result<(), usize> {
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

pub(super) fn publish(shared: &Shared, version: u64, last_id: String) {
    *write_lock(&shared.last_id) = last_id;
    shared.version.store(version, Ordering::Release);
    shared.updated.store(Shared::now_secs(), Ordering::Release);
}

/// Reloads the whole set: the tail position and version first (atomically),
/// then the set, then every entry published since that position.
pub(super) async fn full_reload(
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
        {
            let _restamp = Restamp(&shared.stamp);
            *write_lock(&shared.set) = set;
        }
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
pub(super) async fn report(shared: &Shared, con: &mut MultiplexedConnection) {
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
