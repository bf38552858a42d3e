//! One warm call of a CloudFront connection function (feature `js`): seed
//! 000's KVS revocation function on a connection object built from a real
//! certificate (leaf + intermediate), as the acceptor runs it — a fresh
//! context, the bytecode loaded, the object built and frozen, the handler
//! and its promise driven to completion — next to the built-in Rust SAN
//! rule on the same connection. Each call gets a fresh `Connection` (its
//! CloudFront object formatted on first use); a realm keeps the frozen
//! certificate objects of the last certificates it saw, so the repeated
//! client's figure is a realm hit and `seed_000_call_distinct_leaves` (64
//! leaves in turn, more than a realm keeps) formats and parses the leaf on
//! every call. `seed_000_call_distinct_leaves_cold` is the same after
//! sweeping 4 MiB of memory before each call (not timed), so that the
//! call's data is no longer in the core's own caches, as after a handshake.
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

/// `n` connections, each with its own leaf from one intermediate.
fn connections(n: usize) -> Vec<Connection> {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Bench Intermediate CA");
    let intermediate = ca.self_signed(&ca_key).expect("intermediate");
    let issuer = Issuer::from_params(&ca, &ca_key);
    let key = KeyPair::generate().expect("key");
    (0..n)
        .map(|i| {
            let name = format!("client-{i}.bench.example");
            let mut leaf = CertificateParams::new(vec![name.clone()]).expect("params");
            leaf.distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let serial = 0x8102_0304_0506_0000_u64 + i as u64;
            leaf.serial_number = Some(serial.to_be_bytes().to_vec().into());
            let leaf = leaf.signed_by(&key, &issuer).expect("leaf");
            let info = ClientCertInfo::from_der(leaf.der()).expect("parses");
            Connection::without_certificate("203.0.113.7".parse().expect("ip"), "EBENCH", "conn-1")
                .with_endpoint(Some("api.bench.example".into()))
                .with_chain(Arc::new(info), &[intermediate.der().as_ref()])
        })
        .collect()
}

/// The median of 3 runs of 20,000 calls, each on `connection(i)`.
fn median_call(
    rt: &tokio::runtime::Runtime,
    function: &JsFunction,
    connection: impl Fn(usize) -> Connection,
) -> (Duration, Vec<Duration>) {
    let mut medians = Vec::new();
    for _ in 0..3 {
        let mut times: Vec<Duration> = (0..20_000)
            .map(|i| {
                let connection = connection(i);
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
    (medians[1], medians)
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
    let distinct = connections(DISTINCT);
    let base = distinct[0].clone();
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
    let mut i = 0;
    group.bench_function("seed_000_call_distinct_leaves", |b| {
        b.iter_batched(
            || {
                i = (i + 1) % DISTINCT;
                distinct[i].clone()
            },
            |connection| rt.block_on(function.evaluate(&connection)),
            criterion::BatchSize::SmallInput,
        )
    });
    // After a handshake, what the call touches is no longer in the core's
    // own caches: each of these calls first walks a buffer larger than
    // them (not timed).
    let mut sweep = vec![0u8; SWEEP_BYTES];
    let mut round = 0u8;
    group.bench_function("seed_000_call_distinct_leaves_cold", |b| {
        b.iter_batched(
            || {
                i = (i + 1) % DISTINCT;
                round = round.wrapping_add(1);
                for line in sweep.chunks_mut(64) {
                    line[0] = line[0].wrapping_add(round);
                }
                std::hint::black_box(&sweep);
                distinct[i].clone()
            },
            |connection| rt.block_on(function.evaluate(&connection)),
            criterion::BatchSize::PerIteration,
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

    // The figures the README states: median per call over 3 runs of 20,000
    // warm calls each; a repeated client (its certificate objects kept by
    // the realm) and a different leaf on every call.
    let (repeated, runs) = median_call(&rt, &function, |_| fresh());
    eprintln!(
        "js: seed 000 function, median per warm call: {:.1} µs (medians of 3 runs: {:?})",
        repeated.as_secs_f64() * 1e6,
        runs
    );
    let (first, runs) = median_call(&rt, &function, |i| distinct[i % DISTINCT].clone());
    eprintln!(
        "js: seed 000 function, a different leaf on every call: {:.1} µs (medians of 3 runs: {:?})",
        first.as_secs_f64() * 1e6,
        runs
    );
}

/// Distinct client certificates cycled through (more than a realm keeps).
const DISTINCT: usize = 64;

/// What a cold call first walks: several times a core's L2 cache.
const SWEEP_BYTES: usize = 4 << 20;

criterion_group!(benches, js);
criterion_main!(benches);
