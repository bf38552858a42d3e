//! Revocation costs on the handshake path (stage 1 of SPEC §9) and at load:
//!
//! - deny-list lookup in a 1,000,000-entry store: the normalised-key lookup
//!   itself (target: median ≤ 100 ns) and the whole `DenyListSource::check_now`
//!   (certificate parse, key spelling, lookup; with and without issuer scoping);
//! - loading a 1,000,000-entry CRL through `CrlSource::add` (PEM/DER decode,
//!   signature through the provider, indexing; target ≤ 1 s and ≤ 64 MiB),
//!   with the resident-memory growth read from `/proc/self/statm`, and a
//!   lookup in it;
//! - OCSP cache hit: see `ocsp_cache_hit` below (benches/ocsp.rs).
//!
//! Run with `cargo bench --bench revocation`. The figures the targets are
//! about are printed first as `REPORT` lines (medians of repeated batches),
//! then criterion runs.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use edge_mtls::CrlSource;
use edge_mtls::{
    CertPosition, CertToCheck, DenyListSource, IssuerScoping, RevocationSource, SerialNumber,
};
use edge_mtls::{KeyValueStore, MemoryKeyValueStore};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::UnixTime;

#[path = "../tests/common/crl_der.rs"]
mod crl_der;

const ENTRIES: usize = 1_000_000;

/// A deterministic 16-octet serial for entry `i` (what CAs issue: 128 random bits).
fn serial(i: u64) -> [u8; 16] {
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef_cafe_f00d;
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(8) {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 29;
        chunk.copy_from_slice(&x.to_be_bytes());
    }
    out[0] &= 0x7f; // positive, like conforming serials
    out
}

struct Fixture {
    ca_der: Vec<u8>,
    ca_key: KeyPair,
    leaf_der: Vec<u8>,
    /// The leaf's serial is entry 123_456 of every list.
    leaf_serial: [u8; 16],
}

fn fixture() -> Fixture {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.distinguished_name
        .push(DnType::CommonName, "Bench CRL CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let leaf_serial = serial(123_456);
    let mut leaf = CertificateParams::new(Vec::<String>::new()).expect("params");
    leaf.distinguished_name
        .push(DnType::CommonName, "bench client");
    leaf.serial_number = Some(rcgen::SerialNumber::from_slice(&leaf_serial));
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_der = leaf
        .signed_by(&leaf_key, &Issuer::from_params(&ca, &ca_key))
        .expect("leaf")
        .der()
        .to_vec();
    Fixture {
        ca_der: ca_cert.der().to_vec(),
        ca_key,
        leaf_der,
        leaf_serial,
    }
}

/// Resident set size and its high-water mark, in bytes (Linux).
fn memory() -> (u64, u64) {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (pages * 4096, hwm_kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Median of `rounds` batches of `batch` calls, in nanoseconds per call.
fn median_ns(rounds: usize, batch: u32, mut f: impl FnMut()) -> f64 {
    let mut per_call: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(batch)
        })
        .collect();
    per_call.sort_by(|a, b| a.total_cmp(b));
    per_call[per_call.len() / 2]
}

fn deny_list_store() -> Arc<MemoryKeyValueStore> {
    let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
    let keys: Vec<String> = (0..ENTRIES as u64)
        .map(|i| {
            SerialNumber::from_der_contents(&serial(i))
                .expect("serial")
                .to_key()
        })
        .collect();
    store
        .put_many(keys.iter().map(|k| (k.as_str(), "")))
        .expect("1M keys");
    store
}

fn crl_der(f: &Fixture) -> Vec<u8> {
    let now = crl_der::unix_now();
    let mut spec =
        crl_der::CrlSpec::new(crl_der::subject_of(&f.ca_der), now).with_crl_number(1, false);
    spec.entries = (0..ENTRIES as u64)
        .map(|i| {
            let e = crl_der::Entry::new(&serial(i), now - 86_400);
            if i % 4 == 0 {
                e.with_reason(1)
            } else {
                e
            }
        })
        .collect();
    spec.sign(&f.ca_key.serialize_der())
}

fn reports(f: &Fixture, store: &Arc<MemoryKeyValueStore>, crl: &[u8]) {
    // Deny list: the O(1) lookup itself, by normalised key.
    let hit = SerialNumber::from_der_contents(&f.leaf_serial)
        .unwrap()
        .to_key();
    let miss = SerialNumber::from_der_contents(&serial(u64::MAX))
        .unwrap()
        .to_key();
    let lookup_hit = median_ns(101, 20_000, || {
        black_box(store.exists_local(black_box(&hit)));
    });
    let lookup_miss = median_ns(101, 20_000, || {
        black_box(store.exists_local(black_box(&miss)));
    });
    println!(
        "REPORT deny-list lookup, {ENTRIES} entries: median {lookup_hit:.1} ns (hit), {lookup_miss:.1} ns (miss) [target <= 100 ns] {}",
        if lookup_hit.max(lookup_miss) <= 100.0 { "PASS" } else { "FAIL" }
    );
    let cert = CertToCheck {
        cert: &parsed(&f.leaf_der),
        issuer: &parsed(&f.ca_der),
        position: CertPosition::Leaf,
    };
    for (name, scoping) in [
        ("serial keys only", IssuerScoping::SerialOnly),
        ("serial + issuer-scoped keys", IssuerScoping::Both),
    ] {
        let source = DenyListSource::new(store.clone()).issuer_scoping(scoping);
        let ns = median_ns(51, 5_000, || {
            black_box(source.check_now(black_box(&cert), UnixTime::now()));
        });
        println!("REPORT DenyListSource::check_now ({name}), {ENTRIES} entries: median {ns:.1} ns");
    }

    // CRL: load time and memory, each load in a fresh process so the
    // allocator's state (and the memory this process already holds) cannot
    // hide or inflate the growth.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("crl.der"), crl).expect("write CRL");
    std::fs::write(dir.path().join("ca.der"), &f.ca_der).expect("write CA");
    std::fs::write(dir.path().join("leaf.der"), &f.leaf_der).expect("write leaf");
    let mut runs: Vec<(f64, u64, u64, usize)> = Vec::new();
    for round in 0..5 {
        let out = std::process::Command::new(std::env::current_exe().expect("bench binary"))
            .env(CHILD_ENV, dir.path())
            .output()
            .expect("run the CRL load child");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("CHILD "))
            .unwrap_or_else(|| panic!("child failed: {}", String::from_utf8_lossy(&out.stderr)));
        let v: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        runs.push((v[0], v[1] as u64, v[2] as u64, v[3] as usize));
        if round == 0 {
            println!(
                "REPORT CrlSource::check_now in the {ENTRIES}-entry CRL: median {:.1} ns",
                v[4]
            );
        }
    }
    let median = |mut xs: Vec<f64>| {
        xs.sort_by(|a, b| a.total_cmp(b));
        xs[xs.len() / 2]
    };
    let time_ms = median(runs.iter().map(|r| r.0).collect());
    let growth = median(runs.iter().map(|r| r.1 as f64).collect()) as u64;
    let peak = median(runs.iter().map(|r| r.2 as f64).collect()) as u64;
    let index_bytes = runs[0].3 as u64;
    println!(
        "REPORT CRL load, {ENTRIES} entries ({:.1} MiB DER): median {time_ms:.0} ms [target <= 1000 ms] {}; resident growth {:.1} MiB (index heap {:.1} MiB) [target <= 64 MiB] {}; peak during load {:.1} MiB above the loaded DER",
        mib(crl.len() as u64),
        if time_ms <= 1000.0 { "PASS" } else { "FAIL" },
        mib(growth),
        mib(index_bytes),
        if growth <= 64 * 1024 * 1024 { "PASS" } else { "FAIL" },
        mib(peak),
    );
}

const CHILD_ENV: &str = "EDGE_MTLS_BENCH_CRL_LOAD";

/// One CRL load in a fresh process: prints `CHILD ms growth peak index_bytes lookup_ns`.
fn crl_load_child(dir: &std::path::Path) {
    let crl = std::fs::read(dir.join("crl.der")).expect("read CRL");
    let ca = std::fs::read(dir.join("ca.der")).expect("read CA");
    let leaf = std::fs::read(dir.join("leaf.der")).expect("read leaf");
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let (rss_before, _) = memory();
    let start = Instant::now();
    let source = CrlSource::builder(&provider).build();
    let info = source.add(&crl, &[&ca]).expect("1M-entry CRL");
    let elapsed = start.elapsed();
    let (rss_after, hwm_after) = memory();
    assert_eq!(info.entries, ENTRIES);
    let cert = CertToCheck {
        cert: &parsed(&leaf),
        issuer: &parsed(&ca),
        position: CertPosition::Leaf,
    };
    assert!(matches!(
        source.check_now(&cert, UnixTime::now()),
        Some(edge_mtls::CertStatus::Revoked { .. })
    ));
    let lookup = median_ns(51, 10_000, || {
        black_box(source.check_now(black_box(&cert), UnixTime::now()));
    });
    println!(
        "CHILD {} {} {} {} {}",
        elapsed.as_secs_f64() * 1000.0,
        rss_after.saturating_sub(rss_before),
        hwm_after.saturating_sub(rss_before),
        info.index_bytes,
        lookup
    );
}

fn deny_list_lookup(c: &mut Criterion, f: &Fixture, store: &Arc<MemoryKeyValueStore>) {
    let key = SerialNumber::from_der_contents(&f.leaf_serial)
        .unwrap()
        .to_key();
    c.bench_function("deny_list_lookup/1M/exists_local", |b| {
        b.iter(|| store.exists_local(black_box(&key)))
    });
    let cert = CertToCheck {
        cert: &parsed(&f.leaf_der),
        issuer: &parsed(&f.ca_der),
        position: CertPosition::Leaf,
    };
    let source = DenyListSource::new(store.clone()).issuer_scoping(IssuerScoping::SerialOnly);
    c.bench_function("deny_list_lookup/1M/check_now", |b| {
        b.iter(|| source.check_now(black_box(&cert), UnixTime::now()))
    });
}

fn crl_load(c: &mut Criterion, f: &Fixture, crl: &[u8]) {
    let mut group = c.benchmark_group("crl_load");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("1M_entries", |b| {
        b.iter(|| {
            let source = CrlSource::builder(&rustls::crypto::aws_lc_rs::default_provider()).build();
            source.add(black_box(crl), &[&f.ca_der]).expect("CRL")
        })
    });
    group.finish();
}

/// OCSP cache hit (stage 1 answer from a cached OCSP response): measured in
/// `benches/ocsp.rs` (`ocsp_cache_hit`), next to the OCSP source.
fn ocsp_cache_hit(_c: &mut Criterion) {}

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        crl_load_child(std::path::Path::new(&dir));
        return;
    }
    let f = fixture();
    let store = deny_list_store();
    let crl = crl_der(&f);
    reports(&f, &store, &crl);
    let mut c = Criterion::default().configure_from_args();
    deny_list_lookup(&mut c, &f, &store);
    crl_load(&mut c, &f, &crl);
    ocsp_cache_hit(&mut c);
    c.final_summary();
}

/// A certificate parsed, as the validator hands them to revocation sources.
fn parsed(der: &[u8]) -> edge_mtls::ParsedCertificate {
    edge_mtls::ParsedCertificate::from_der(der.to_vec()).expect("a certificate")
}
