//! Changing the store (one Lua script per change) and reading its status:
//! what the `edge-mtls revoke|unrevoke|import|status` commands use.

use super::follow::{as_u64, items};
use super::*;
use core::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use redis::Value;

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
