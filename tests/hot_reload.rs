//! Atomic hot reload of the trust store, the CRLs and the deny list as one
//! generation: under load (≥ 200 handshakes/s for 10 s, real TLS through the
//! connection pipeline) the trust store is swapped 20 times, 5 of them with
//! an invalid bundle: no handshake of a client valid under both generations
//! fails, every invalid bundle is refused naming its file while the previous
//! generation serves, and the log records carry the generations. CRLs and
//! deny list change with the trust store; `watch = true` reloads on a file
//! change.

#![cfg(feature = "acceptor")]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::crl_der::{subject_of, unix_now, CrlSpec, Entry};
use common::e2e::{serve_echo_ok, MemorySink};
use common::{client_config, connect, server_identity, Leaf, LeafOptions, Outcome, Pki};
use edge_mtls::ConnectionStatus;
use edge_mtls::{CrlSettings, DenyListSettings, ReloadError};
use edge_mtls::{Edge, MtlsConfig};

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Replaces a file atomically (write, then rename), as deployments do.
    fn put(&self, name: &str, bytes: &[u8]) {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }
}

fn leaf(pki: &Pki, serial: u16) -> Leaf {
    pki.client(
        &format!("client {serial:x}"),
        &LeafOptions {
            serial: Some(serial.to_be_bytes().to_vec()),
            ..LeafOptions::default()
        },
    )
}

fn crl(pki: &Pki, revoked: &[u16]) -> Vec<u8> {
    let mut spec = CrlSpec::new(subject_of(pki.root.der()), unix_now()).with_crl_number(1, false);
    spec.entries = revoked
        .iter()
        .map(|s| Entry::new(&s.to_be_bytes(), unix_now() - 60))
        .collect();
    spec.sign(&pki.root.key.serialize_der())
}

fn edge(files: &Files, sink: &Arc<MemorySink>, watch: bool) -> Edge {
    let identity = server_identity();
    let mut b = MtlsConfig::builder()
        .distribution_id("reload")
        .trust_store_file(files.path("ca.pem"))
        .server_identity(identity.chain.clone(), identity.key())
        .log_sink(sink.clone());
    let s = b.settings();
    s.revocation.deny_list = Some(DenyListSettings {
        serial_files: vec![files.path("deny.txt")],
        ..DenyListSettings::default()
    });
    s.revocation.crl = Some(CrlSettings {
        files: vec![files.path("root.crl")],
        ..CrlSettings::default()
    });
    s.watch = watch;
    b.build().expect("edge")
}

async fn accepts(addr: std::net::SocketAddr, leaf: &Leaf) -> bool {
    matches!(connect(addr, client_config(Some(&leaf.identity()))).await,
        Outcome::Accepted { reply, .. } if reply == "ok")
}

fn setup(pki: &Pki, other: &Pki) -> Files {
    let files = Files {
        dir: tempfile::tempdir().unwrap(),
    };
    files.put("ca.pem", pki.root.pem().as_bytes());
    files.put("other.pem", other.root.pem().as_bytes());
    files.put("deny.txt", b"# nothing yet\n");
    files.put("root.crl", &crl(pki, &[0x0c01]));
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_under_load_fail_no_handshake_and_refuse_bad_bundles_whole() {
    let (pki, other) = (Pki::new(0), Pki::new(0));
    let files = setup(&pki, &other);
    let sink = Arc::new(MemorySink::default());
    let edge = edge(&files, &sink, false);
    let addr = serve_echo_ok(edge.clone()).await;
    let client = Arc::new(leaf(&pki, 0x0a01));
    assert!(accepts(addr, &client).await);

    // The load: 4 clients in a loop for 10 s.
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Instant::now() + Duration::from_secs(10);
    let mut drivers = Vec::new();
    for _ in 0..4 {
        let (client, ok, failed) = (client.clone(), ok.clone(), failed.clone());
        drivers.push(tokio::spawn(async move {
            let config = client_config(Some(&client.identity()));
            while Instant::now() < stop {
                match connect(addr, config.clone()).await {
                    Outcome::Accepted { reply, .. } if reply == "ok" => {
                        ok.fetch_add(1, Ordering::Relaxed)
                    }
                    other => {
                        eprintln!("failed handshake: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }

    // 20 swaps, one every 450 ms: valid bundles alternate between the root
    // alone and the root with another CA (the client is valid under both);
    // swaps 3, 7, 11, 15 and 19 are invalid.
    let both = format!("{}{}", pki.root.pem(), other.root.pem());
    let root_only = pki.root.pem();
    let invalid: [(&str, Vec<u8>); 5] = [
        (
            "garbage.pem",
            b"this is not a certificate bundle\n".to_vec(),
        ),
        ("leaf.pem", common::der_to_pem(client.der()).into_bytes()),
        ("empty.pem", Vec::new()),
        ("truncated.pem", pki.root.pem().as_bytes()[..200].to_vec()),
        (
            "badbase64.pem",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_vec(),
        ),
    ];
    let mut generations = vec![edge.generation()];
    let mut refused = Vec::new();
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(450)).await;
        let before = edge.generation();
        if i % 4 == 3 {
            let (name, bytes) = &invalid[i / 4];
            files.put("ca.pem", bytes);
            let e = tokio::task::block_in_place(|| edge.reload())
                .expect_err("an invalid bundle is refused");
            let text = e.to_string();
            assert!(matches!(e, ReloadError::TrustStore { .. }), "{name}: {e:?}");
            assert!(
                text.contains(&files.path("ca.pem").display().to_string()),
                "{name}: names the file: {text}"
            );
            assert_eq!(
                edge.generation(),
                before,
                "{name}: the previous generation keeps serving"
            );
            refused.push(format!("{name}: {text}"));
        } else {
            let bundle = if i % 2 == 0 {
                both.as_bytes()
            } else {
                root_only.as_bytes()
            };
            files.put("ca.pem", bundle);
            let g = tokio::task::block_in_place(|| edge.reload()).expect("a valid bundle is taken");
            assert_eq!(g, before + 1);
            generations.push(g);
        }
    }
    for d in drivers {
        d.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let rate = ok as f64 / 10.0;
    eprintln!(
        "{ok} handshakes in 10 s ({rate:.0}/s), {failed} failed; generations {generations:?}"
    );
    for r in &refused {
        eprintln!("refused: {r}");
    }
    assert_eq!(
        failed, 0,
        "no failed handshake for a client valid under both generations"
    );
    assert!(rate >= 200.0, "{rate:.0} handshakes/s");
    assert_eq!(refused.len(), 5);
    assert_eq!(generations.len(), 16);

    // Every record names its generation; the log shows them all.
    let records = sink.records();
    let seen: BTreeSet<u64> = records
        .iter()
        .filter(|r| r.connection_status == ConnectionStatus::Success)
        .filter_map(|r| r.trust_store_generation)
        .collect();
    assert!(records.iter().all(|r| r.trust_store_generation.is_some()));
    eprintln!("generations in the log: {seen:?}");
    assert!(seen.len() >= 12, "{seen:?}");
    assert!(seen.contains(&edge.generation()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crls_and_deny_list_change_with_the_trust_store_and_bad_files_are_refused_whole() {
    let (pki, other) = (Pki::new(0), Pki::new(0));
    let files = setup(&pki, &other);
    let sink = Arc::new(MemorySink::default());
    let edge = edge(&files, &sink, false);
    let addr = serve_echo_ok(edge.clone()).await;
    let (crl_revoked, denied, client, other_client) = (
        leaf(&pki, 0x0c01),
        leaf(&pki, 0x0d01),
        leaf(&pki, 0x0a01),
        leaf(&other, 0x0e01),
    );
    assert!(!accepts(addr, &crl_revoked).await, "in the CRL");
    assert!(accepts(addr, &denied).await);
    assert!(
        !accepts(addr, &other_client).await,
        "other CA not trusted yet"
    );

    // A bad CRL refuses the whole reload, even with a good trust store and
    // deny list beside it: nothing of the new files is used.
    files.put(
        "ca.pem",
        format!("{}{}", pki.root.pem(), other.root.pem()).as_bytes(),
    );
    files.put("deny.txt", b"0D01\n");
    files.put("root.crl", b"not a CRL");
    let g = edge.generation();
    let e = edge.reload().expect_err("bad CRL");
    assert!(
        matches!(&e, ReloadError::Crl { path, .. } if path == &files.path("root.crl")),
        "{e:?}"
    );
    assert!(e.to_string().contains("root.crl"), "{e}");
    assert_eq!(edge.generation(), g);
    assert!(accepts(addr, &denied).await, "old deny list");
    assert!(!accepts(addr, &other_client).await, "old trust store");

    // A bad deny list names its file too.
    files.put("root.crl", &crl(&pki, &[]));
    files.put("deny.txt", b"0D01\nnot-a-serial\n");
    let e = edge.reload().expect_err("bad deny list");
    assert!(
        matches!(&e, ReloadError::DenyList { path, .. } if path == &files.path("deny.txt")),
        "{e:?}"
    );
    assert!(e.to_string().contains("deny.txt: line 2"), "{e}");

    // All good: the three change together.
    files.put("deny.txt", b"0D01\n");
    let g2 = edge.reload().expect("reload");
    assert_eq!(g2, g + 1);
    assert!(accepts(addr, &crl_revoked).await, "no longer in the CRL");
    assert!(!accepts(addr, &denied).await, "now denied");
    let trusted = accepts(addr, &other_client).await;
    assert!(trusted, "other CA trusted: {:?}", sink.records().last());
    assert!(accepts(addr, &client).await);
    let denied_record = sink
        .records()
        .into_iter()
        .rev()
        .find(|r| r.connection_status != ConnectionStatus::Success)
        .unwrap();
    assert_eq!(denied_record.trust_store_generation, Some(g2));
    assert_eq!(
        edge.deny_list().unwrap().len(),
        1,
        "the accessor follows the generation"
    );
}

#[cfg(feature = "watch")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reloads_on_change_and_keeps_serving_through_a_bad_file() {
    let (pki, other) = (Pki::new(0), Pki::new(0));
    let files = setup(&pki, &other);
    let sink = Arc::new(MemorySink::default());
    let edge = edge(&files, &sink, true);
    let addr = serve_echo_ok(edge.clone()).await;
    let denied = leaf(&pki, 0x0d01);
    assert!(accepts(addr, &denied).await);
    let g = edge.generation();

    files.put("deny.txt", b"0D01\n");
    wait(Duration::from_secs(5), || edge.generation() > g).await;
    assert!(
        !accepts(addr, &denied).await,
        "the watch reloaded the deny list"
    );

    let g = edge.generation();
    files.put("ca.pem", b"garbage");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(edge.generation(), g, "a bad bundle is refused");
    assert!(
        !accepts(addr, &denied).await,
        "the previous generation serves"
    );

    files.put("ca.pem", pki.root.pem().as_bytes());
    files.put("deny.txt", b"\n");
    wait(Duration::from_secs(5), || edge.generation() > g).await;
    assert!(accepts(addr, &denied).await);
}

#[cfg(feature = "watch")]
async fn wait(timeout: Duration, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
