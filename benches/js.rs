//! One warm call of a CloudFront connection function (feature `js`): seed
//! 000's KVS revocation function on a connection object built from a real
//! certificate (leaf + intermediate), as the acceptor runs it — a fresh
//! context, the bytecode loaded, the object built and frozen, the handler
//! and its promise driven to completion — next to the built-in Rust SAN
//! rule on the same connection.
//!
//! Run with `cargo bench --bench js --features js`; prints the median time
//! per call of 3 runs of the measurement.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use edge_mtls::{ClientCertInfo, MemoryKeyValueStore};
use edge_mtls::{Connection, ConnectionPolicy, Decision, Matcher, NamePattern, Rule};
use edge_mtls::{JsFunction, JsLimits};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

fn connection() -> Connection {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Bench Intermediate CA");
    let intermediate = ca.self_signed(&ca_key).expect("intermediate");
    let issuer = Issuer::from_params(&ca, &ca_key);
    let mut leaf = CertificateParams::new(vec!["client-1.bench.example".into()]).expect("params");
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "client-1.bench.example");
    leaf.serial_number = Some(vec![0x81, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08].into());
    let leaf = leaf
        .signed_by(&KeyPair::generate().expect("key"), &issuer)
        .expect("leaf");
    let info = ClientCertInfo::from_der(leaf.der()).expect("parses");
    Connection::without_certificate("203.0.113.7".parse().expect("ip"), "EBENCH", "conn-1")
        .with_endpoint(Some("api.bench.example".into()))
        .with_chain(Arc::new(info), &[intermediate.der().as_ref()])
}

fn js(c: &mut Criterion) {
    let store = MemoryKeyValueStore::for_serial_numbers();
    for serial in ["00:a7:30:9e:12:34", "7F:00:00:01", "DEADBEEF"] {
        store.put(serial, "revoked").expect("serial");
    }
    let function = JsFunction::compile(
        "seed000_kvs_revocation.js",
        include_str!("../tests/fixtures/js/seed000_kvs_revocation.js"),
        JsLimits::default(),
    )
    .expect("compiles")
    .with_kvs(Arc::new(store));
    let rust = Rule::allow_if(Matcher::DnsSan(NamePattern::Suffix(
        ".bench.example".into(),
    )));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    // Each call gets a fresh Connection, as each TLS connection does (its
    // CloudFront object is formatted on first use).
    let base = connection();
    let fresh = || base.clone().with_endpoint(Some("api.bench.example".into()));
    assert_eq!(function.run(&fresh()).decision, Some(Decision::Allow));

    let mut group = c.benchmark_group("js");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("seed_000_call", |b| {
        b.iter_batched(
            fresh,
            |connection| rt.block_on(function.evaluate(&connection)),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("rust_san_rule_call", |b| {
        b.iter_batched(
            fresh,
            |connection| rt.block_on(rust.evaluate(&connection)),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();

    // The figure the README states: median per call over 3 runs of 20,000
    // warm calls each.
    let mut medians = Vec::new();
    for _ in 0..3 {
        let mut times: Vec<Duration> = (0..20_000)
            .map(|_| {
                let connection = fresh();
                let start = Instant::now();
                let verdict = rt.block_on(function.evaluate(&connection));
                let took = start.elapsed();
                assert!(verdict.is_ok());
                took
            })
            .collect();
        times.sort();
        medians.push(times[times.len() / 2]);
    }
    medians.sort();
    eprintln!(
        "js: seed 000 function, median per warm call: {:.1} µs (medians of 3 runs: {:?})",
        medians[1].as_secs_f64() * 1e6,
        medians
    );
}

criterion_group!(benches, js);
criterion_main!(benches);
