//! A node's cold start on a Redis deny list: connects, loads the whole set
//! (the handshake's local snapshot), and reports the time it took, the keys
//! loaded and the process's resident memory.
//!
//! ```text
//! edge-mtls import --redis redis://127.0.0.1:6379 --store big serials.txt
//! cargo run --release --features redis --example redis_sync -- redis://127.0.0.1:6379 big
//! ```

use std::time::{Duration, Instant};

use edge_mtls::{RedisKeyValueStore, RedisStoreOptions};

/// `VmRSS` / `VmHWM` of /proc/self/status, in KiB.
fn memory(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(url), store) = (args.next(), args.next()) else {
        eprintln!("usage: redis_sync REDIS_URL [STORE]");
        return std::process::ExitCode::from(2);
    };
    let options = RedisStoreOptions {
        store: store.unwrap_or_else(|| "edge-mtls".into()),
        ..RedisStoreOptions::default()
    };
    let before = memory("VmRSS:").unwrap_or(0);
    let started = Instant::now();
    let store = match RedisKeyValueStore::connect(&url, options) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("redis_sync: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if !store.wait_synced(Duration::from_secs(120)).await {
        eprintln!("redis_sync: not synchronised within 120 s");
        return std::process::ExitCode::FAILURE;
    }
    let took = started.elapsed();
    let status = store.status();
    println!(
        "cold start: {} keys (version {}) in {:.2} s; resident memory {} MiB (peak {} MiB, {} MiB before)",
        status.keys,
        status.version,
        took.as_secs_f64(),
        memory("VmRSS:").unwrap_or(0) / 1024,
        memory("VmHWM:").unwrap_or(0) / 1024,
        before / 1024
    );
    std::process::ExitCode::SUCCESS
}
