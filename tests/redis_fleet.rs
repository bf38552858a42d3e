//! A fleet sharing one deny list through a real `redis-server`: revocations
//! reach every node, a node cut off from Redis misses nothing (resuming from
//! its last stream id, or reloading the whole set when that id was trimmed
//! away), a Redis crash leaves decisions to the snapshot, and
//! `fail_closed_after` refuses new connections once the snapshot is too old.
//! Real TLS handshakes over loopback through the connection pipeline.

#![cfg(all(feature = "redis", feature = "acceptor"))]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::e2e::{serve_echo_ok, MemorySink};
use common::redis::{PausableProxy, RedisServer};
use common::{client_config, connect, server_identity, Leaf, LeafOptions, Outcome, Pki};
use edge_mtls::DenyListSettings;
use edge_mtls::RedisKeyValueStore;
use edge_mtls::{Edge, MtlsConfig};
use edge_mtls::{RedisDenyListAdmin, SyncState};

struct Node {
    edge: Edge,
    addr: SocketAddr,
    _sink: Arc<MemorySink>,
}

impl Node {
    fn redis(&self) -> &RedisKeyValueStore {
        self.edge.redis_deny_list().expect("a Redis deny list")
    }

    async fn accepts(&self, leaf: &Leaf) -> bool {
        match connect(self.addr, client_config(Some(&leaf.identity()))).await {
            Outcome::Accepted { reply, .. } => reply == "ok",
            _ => false,
        }
    }
}

async fn node(
    pki: &Pki,
    dir: &std::path::Path,
    url: &str,
    name: &str,
    fail_closed_after: Option<&str>,
) -> Node {
    let ca = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca, pki.root.pem()).expect("write CA");
    let sink = Arc::new(MemorySink::default());
    let identity = server_identity();
    let mut b = MtlsConfig::builder()
        .distribution_id(name)
        .trust_store_file(&ca)
        .server_identity(identity.chain.clone(), identity.key())
        .log_sink(sink.clone());
    b.settings().revocation.deny_list = Some(DenyListSettings {
        redis: Some(url.to_string()),
        store: "fleet".into(),
        node_name: Some(name.into()),
        fail_closed_after: fail_closed_after.map(str::to_string),
        ..DenyListSettings::default()
    });
    let edge = b.build().expect("edge");
    let redis = edge.redis_deny_list().expect("redis").clone();
    assert!(
        redis.wait_synced(Duration::from_secs(10)).await,
        "first sync"
    );
    let addr = serve_echo_ok(edge.clone()).await;
    Node {
        edge,
        addr,
        _sink: sink,
    }
}

fn leaves(pki: &Pki, first: u64, n: u64) -> Vec<(String, Leaf)> {
    (first..first + n)
        .map(|serial| {
            let leaf = pki.client(
                &format!("client {serial:x}"),
                &LeafOptions {
                    serial: Some(serial.to_be_bytes().to_vec()),
                    ..LeafOptions::default()
                },
            );
            (format!("{serial:X}"), leaf)
        })
        .collect()
}

async fn wait_for<F: Fn() -> bool>(what: &str, timeout: Duration, f: F) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_redis_misses_nothing() {
    let redis = RedisServer::start();
    let proxy = PausableProxy::start(format!("127.0.0.1:{}", redis.port).parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(1);
    let mut admin = RedisDenyListAdmin::connect(&redis.url(), "fleet", 100_000)
        .await
        .expect("admin");
    let a = node(&pki, dir.path(), &redis.url(), "node-a", None).await;
    let b = node(&pki, dir.path(), &proxy.url(), "node-b", None).await;
    let all = leaves(&pki, 0x5000, 200);
    let (first, second) = all.split_at(100);
    for (_, leaf) in first.iter().step_by(10) {
        assert!(a.accepts(leaf).await && b.accepts(leaf).await);
    }

    // B is cut off; 100 serials are revoked, one change each.
    proxy.pause();
    for (serial, _) in first {
        admin
            .revoke(std::slice::from_ref(serial))
            .await
            .expect("revoke");
    }
    let target = admin.status().await.expect("status").version;
    a.redis()
        .wait_for_version(target, Duration::from_secs(5))
        .await;
    wait_for("B notices", Duration::from_secs(10), || {
        b.redis().state() == SyncState::Disconnected
    })
    .await;
    assert!(
        b.redis().status().version < target,
        "B cannot have them yet"
    );
    // A refuses them at once; B keeps deciding from its snapshot.
    for (_, leaf) in first {
        assert!(!a.accepts(leaf).await, "A refuses every revoked serial");
    }
    assert!(b.accepts(&first[0].1).await, "B decides from its snapshot");

    // B reconnects and resumes from its last id: all 100 refused.
    proxy.resume();
    let caught_up = wait_for("B catches up", Duration::from_secs(15), || {
        b.redis().status().version >= target
    })
    .await;
    for (_, leaf) in first {
        assert!(
            !b.accepts(leaf).await,
            "B refuses every serial revoked while it was away"
        );
    }
    assert_eq!(
        b.redis().status().full_reloads,
        1,
        "resumed, no full reload"
    );
    eprintln!(
        "resume path: B caught up {caught_up:?} after the proxy resumed (100 serials, 100 events)"
    );

    // Again, with the stream trimmed below B's last id: a full reload.
    proxy.pause();
    wait_for("B notices", Duration::from_secs(10), || {
        b.redis().state() == SyncState::Disconnected
    })
    .await;
    for (serial, _) in second {
        admin
            .revoke(std::slice::from_ref(serial))
            .await
            .expect("revoke");
    }
    admin.trim_stream(5).await.expect("XTRIM");
    let stream = admin.status().await.expect("status");
    assert!(stream.stream_length <= 5, "{stream:?}");
    proxy.resume();
    let caught_up = wait_for("B reloads", Duration::from_secs(15), || {
        b.redis().status().version >= stream.version
    })
    .await;
    assert_eq!(
        b.redis().status().full_reloads,
        2,
        "the trimmed stream forced a full reload"
    );
    for (_, leaf) in second.iter().chain(first) {
        assert!(!b.accepts(leaf).await, "B refuses all 200");
    }
    eprintln!(
        "trimmed path: B reloaded {} keys {caught_up:?} after the proxy resumed",
        b.redis().status().keys
    );

    // A replacement of the whole list is one step: B reloads it in full.
    let replaced = admin
        .replace_all(&[second[0].0.clone(), first[1].0.clone()])
        .await
        .expect("replace");
    assert_eq!(replaced.changed, 2);
    b.redis()
        .wait_for_version(replaced.version, Duration::from_secs(5))
        .await;
    assert_eq!(b.redis().status().full_reloads, 3);
    assert_eq!(b.redis().status().keys, 2);
    assert!(!b.accepts(&second[0].1).await && !b.accepts(&first[1].1).await);
    assert!(b.accepts(&second[1].1).await && a.accepts(&first[2].1).await);

    // Unrevoking reaches B too; `status` shows both nodes without lag.
    admin
        .unrevoke(&[first[0].0.clone()])
        .await
        .expect("unrevoke");
    let status = admin.status().await.expect("status");
    b.redis()
        .wait_for_version(status.version, Duration::from_secs(5))
        .await;
    assert!(b.accepts(&first[0].1).await);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let status = admin.status().await.expect("status");
    let names: Vec<&str> = status.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(names, ["node-a", "node-b"], "{status:?}");
    assert!(
        status.nodes.iter().all(|n| n.version == status.version),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crash_and_restart_keeps_deciding_and_reconnects() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(1);
    let all = leaves(&pki, 0x7000, 3);
    let mut admin = RedisDenyListAdmin::connect(&redis.url(), "fleet", 1_000)
        .await
        .expect("admin");
    admin.revoke(&[all[0].0.clone()]).await.expect("revoke");
    let a = node(&pki, dir.path(), &redis.url(), "node-a", None).await;
    assert!(!a.accepts(&all[0].1).await);

    redis.kill();
    wait_for("A notices", Duration::from_secs(10), || {
        a.redis().state() == SyncState::Disconnected
    })
    .await;
    // Decided from the snapshot while Redis is down, for seconds.
    for _ in 0..3 {
        assert!(!a.accepts(&all[0].1).await, "still refused");
        assert!(a.accepts(&all[1].1).await, "still accepted");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    redis.restart();
    let mut admin = RedisDenyListAdmin::connect(&redis.url(), "fleet", 1_000)
        .await
        .expect("admin after restart");
    let change = admin.revoke(&[all[2].0.clone()]).await.expect("revoke");
    let back = wait_for("A reconnects", Duration::from_secs(15), || {
        a.redis().status().version >= change.version
    })
    .await;
    assert_eq!(a.redis().state(), SyncState::Live);
    assert!(
        !a.accepts(&all[2].1).await,
        "a revocation after the restart reaches A"
    );
    assert!(!a.accepts(&all[0].1).await);
    eprintln!("A applied the first revocation after the restart {back:?} after it was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_after_refuses_new_connections_once_the_snapshot_is_too_old() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(1);
    let all = leaves(&pki, 0x9000, 1);
    let a = node(&pki, dir.path(), &redis.url(), "node-a", Some("1s")).await;
    assert!(a.accepts(&all[0].1).await);

    redis.kill();
    assert!(
        a.accepts(&all[0].1).await,
        "within the bound: the snapshot decides"
    );
    wait_for("fail-closed", Duration::from_secs(10), || {
        a.redis().state() == SyncState::FailClosed
    })
    .await;
    assert!(a.redis().staleness().unwrap() > Duration::from_secs(1));
    assert!(!a.accepts(&all[0].1).await, "past the bound: refused");

    redis.restart();
    wait_for("live again", Duration::from_secs(15), || {
        a.redis().state() == SyncState::Live
    })
    .await;
    assert!(a.accepts(&all[0].1).await, "Redis answers again: accepted");
}
