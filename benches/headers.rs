//! Header and connection-log costs on the hot paths SPEC §7 and §8 budget:
//!
//! - per connection: `ClientCertInfo::from_der`, `CertFields` (created, and
//!   with every form computed), `HeaderBuilder::render` (CloudFront + ALB
//!   verify + RFC 9440), what the acceptor does by default (CloudFront
//!   headers and the log record's certificate fields) and a SAN policy's
//!   connection object, for a realistic ECDSA P-256 leaf sent with its
//!   intermediate;
//! - per request: `ConnectionHeaders::apply` of the CloudFront set onto a
//!   request holding eight typical headers (target: median ≤ 300 ns);
//! - per connection attempt: encoding a log record as a JSON line (target:
//!   median ≤ 2 µs), a W3C line and an ALB line, and `QueueSink::submit`.
//!
//! Run with `cargo bench --bench headers` (well under two minutes).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use edge_mtls::internal::{alb_line, json_line, w3c_line};
use edge_mtls::CertFields;
use edge_mtls::ClientCertInfo;
use edge_mtls::{evaluate_policy, Connection, Matcher, NamePattern, Rule};
use edge_mtls::{ConnectionFacts, HeaderBuilder, HeaderProfile};
use edge_mtls::{ConnectionLogRecord, ConnectionLogSink, ConnectionStatus, LogFormat, QueueSink};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// A leaf and the intermediate that issued it, as a client presents them.
struct Presented {
    leaf: Vec<u8>,
    intermediate: Vec<u8>,
}

fn dn(org_unit: &str, common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::StateOrProvinceName, "Washington");
    dn.push(DnType::LocalityName, "Seattle");
    dn.push(DnType::OrganizationName, "mTLS");
    dn.push(DnType::OrganizationalUnitName, org_unit);
    dn.push(DnType::CommonName, common_name);
    dn
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn("CA", common_name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = true;
    p
}

fn p256() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key")
}

fn presented_chain() -> Presented {
    let root_key = p256();
    let root_params = ca_params("rootcamtls.com");
    let _root = root_params.self_signed(&root_key).expect("root");
    let root_issuer = Issuer::from_params(&root_params, &root_key);

    let inter_key = p256();
    let inter_params = ca_params("intermediatecamtls.com");
    let intermediate = inter_params
        .signed_by(&inter_key, &root_issuer)
        .expect("intermediate");
    let inter_issuer = Issuer::from_params(&inter_params, &inter_key);

    let leaf_key = p256();
    let mut leaf_params = CertificateParams::default();
    leaf_params.distinguished_name = dn("client-3", "client.example.com");
    leaf_params.serial_number = Some(rcgen::SerialNumber::from_slice(&[
        0xb1, 0x43, 0xed, 0x93, 0xd2, 0xd8, 0xf3, 0x9d,
    ]));
    leaf_params.subject_alt_names = vec![
        SanType::DnsName("client.example.com".try_into().expect("DNS name")),
        SanType::URI(
            "spiffe://example.com/ns/default/sa/client"
                .try_into()
                .expect("URI"),
        ),
    ];
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf = leaf_params
        .signed_by(&leaf_key, &inter_issuer)
        .expect("leaf");
    Presented {
        leaf: leaf.der().to_vec(),
        intermediate: intermediate.der().to_vec(),
    }
}

fn facts(cert: &CertFields) -> ConnectionFacts<'_> {
    ConnectionFacts {
        cert: Some(cert),
        verified: true,
        connection_id: Some("xdzQ6lJUDUt8b7OuqOD8lmzOC9HcMaXPmhH5ZdzLCZpKxqzfCPpR4A=="),
        tls_version: Some("TLSv1.3"),
        tls_cipher: Some("TLS13_AES_128_GCM_SHA256"),
    }
}

fn per_connection(c: &mut Criterion) {
    let chain = presented_chain();
    let sent = [chain.intermediate.as_slice()];
    let info = ClientCertInfo::from_der(&chain.leaf).expect("leaf parses");
    let fields = CertFields::new(&info, &sent);
    let builder = HeaderBuilder::builder()
        .profile(HeaderProfile::CloudFront)
        .profile(HeaderProfile::AlbVerify)
        .profile(HeaderProfile::Rfc9440)
        .build()
        .expect("builder");

    let mut group = c.benchmark_group("per_connection");
    group
        .sample_size(40)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("client_cert_info_from_der", |b| {
        b.iter(|| ClientCertInfo::from_der(black_box(&chain.leaf)))
    });
    group.bench_function("cert_fields_new", |b| {
        b.iter(|| CertFields::new(black_box(&info), black_box(&sent)))
    });
    // Every form at once (what `CertFields::new` computed eagerly before
    // forms were computed on first use).
    group.bench_function("cert_fields_every_dialect", |b| {
        b.iter(|| {
            let f = CertFields::new(black_box(&info), black_box(&sent));
            black_box((
                f.serial_cloudfront().len(),
                f.serial_alb().len(),
                f.subject_log().len() + f.issuer_log().len(),
                f.validity().len() + f.not_before().len() + f.not_after().len(),
                f.sha256_hex().len() + f.sha256_colon().len(),
                f.chain_pem_urlencoded().len(),
                f.leaf_der_base64().len() + f.chain_der_base64().len(),
                f.san().len() + f.spki_hex().len(),
            ));
            f
        })
    });
    group.bench_function("render_cloudfront_alb_rfc9440", |b| {
        b.iter(|| builder.render(black_box(&facts(&fields))))
    });
    // What the acceptor does after every handshake with the default
    // configuration: format the leaf, render the CloudFront headers and fill
    // the connection-log record's certificate fields.
    let cloudfront = HeaderBuilder::builder()
        .profile(HeaderProfile::CloudFront)
        .build()
        .expect("builder");
    group.bench_function("cert_fields_cloudfront_headers_and_log", |b| {
        b.iter(|| {
            let fields = CertFields::new(black_box(&info), black_box(&sent));
            let headers = cloudfront.render(&facts(&fields));
            let mut record = ConnectionLogRecord::default();
            record.set_leaf(&fields);
            (headers, record)
        })
    });
    // The connection object a Rust policy (here a SAN rule) receives.
    let shared = Arc::new(info.clone());
    let rule = Rule::allow_if(Matcher::DnsSan(NamePattern::Suffix("example.com".into())));
    group.bench_function("policy_connection_and_san_rule", |b| {
        b.iter(|| {
            let connection = Connection::without_certificate(
                IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
                "E1NXS4MQZH501R",
                "xdzQ6lJUDUt8b7OuqOD8lmzOC9HcMaXPmhH5ZdzLCZpKxqzfCPpR4A==",
            )
            .with_endpoint(Some("api.example.com".into()))
            .with_chain(shared.clone(), black_box(&sent));
            futures_util::FutureExt::now_or_never(evaluate_policy(&rule, &connection))
        })
    });
    group.finish();
}

/// What a request typically carries when it reaches the application.
fn typical_request() -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in [
        ("host", "api.example.com"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, deflate, br"),
        ("content-type", "application/json"),
        ("content-length", "128"),
        ("x-forwarded-for", "203.0.113.7"),
        (
            "x-amzn-trace-id",
            "Root=1-65f1c0de-0123456789abcdef01234567",
        ),
    ] {
        map.append(name, HeaderValue::from_static(value));
    }
    map
}

fn per_request(c: &mut Criterion) {
    let chain = presented_chain();
    let info = ClientCertInfo::from_der(&chain.leaf).expect("leaf parses");
    let fields = CertFields::new(&info, &[chain.intermediate.as_slice()]);
    let cloudfront = HeaderBuilder::builder()
        .profile(HeaderProfile::CloudFront)
        .build()
        .expect("builder")
        .render(&facts(&fields));
    assert_eq!(cloudfront.len(), 7, "the full CloudFront set");
    let template = typical_request();

    let mut group = c.benchmark_group("per_request");
    group
        .sample_size(40)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("apply_cloudfront_onto_8_headers", |b| {
        b.iter_batched_ref(
            || template.clone(),
            |map| cloudfront.apply(black_box(map)),
            BatchSize::SmallInput,
        )
    });
    // The floor: the same prebuilt name/value pairs appended to the same
    // request by `http::HeaderMap` alone, without removing client-sent
    // copies (which `apply` must do).
    let pairs: Vec<(HeaderName, HeaderValue)> = cloudfront
        .entries()
        .map(|(n, v)| {
            (
                HeaderName::from_bytes(n.as_bytes()).expect("name"),
                HeaderValue::from_bytes(v).expect("value"),
            )
        })
        .collect();
    group.bench_function("floor_headermap_append_same_pairs", |b| {
        b.iter_batched_ref(
            || template.clone(),
            |map| {
                let map = black_box(map);
                map.reserve(pairs.len());
                for (name, value) in &pairs {
                    map.append(name.clone(), value.clone());
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn record(fields: &CertFields) -> ConnectionLogRecord {
    let mut record = ConnectionLogRecord {
        event_timestamp: 1_695_261_017_123,
        connection_id: "xdzQ6lJUDUt8b7OuqOD8lmzOC9HcMaXPmhH5ZdzLCZpKxqzfCPpR4A==".into(),
        connection_status: ConnectionStatus::Success,
        client_ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
        client_port: Some(52_114),
        server_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 20))),
        server_port: Some(443),
        distribution_id: "E1NXS4MQZH501R".into(),
        tls_protocol: Some("TLSv1.3".into()),
        tls_cipher: Some("TLS_AES_128_GCM_SHA256".into()),
        tls_key_exchange: Some("X25519".into()),
        tls_handshake_duration: Some(12),
        tls_sni: Some("api.example.com".into()),
        connection_log_custom_data: Some("Valid certificate: 00b143ed93d2d8f39d".into()),
        trust_store_generation: Some(3),
        ..ConnectionLogRecord::default()
    };
    record.set_leaf(fields);
    record
}

fn logs(c: &mut Criterion) {
    let chain = presented_chain();
    let info = ClientCertInfo::from_der(&chain.leaf).expect("leaf parses");
    let fields = CertFields::new(&info, &[chain.intermediate.as_slice()]);
    let record = record(&fields);
    let mut line = String::with_capacity(1024);

    let mut group = c.benchmark_group("connection_log");
    group
        .sample_size(40)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("encode_json_line", |b| {
        b.iter(|| {
            line.clear();
            json_line(&mut line, black_box(&record));
        })
    });
    group.bench_function("encode_w3c_line", |b| {
        b.iter(|| {
            line.clear();
            w3c_line(&mut line, black_box(&record));
        })
    });
    group.bench_function("encode_alb_line", |b| {
        b.iter(|| {
            line.clear();
            alb_line(&mut line, black_box(&record));
        })
    });
    // Only the enqueue is timed. Each chunk gets a fresh sink whose queue
    // holds the whole chunk, so every submit takes the accepting path (not
    // the cheaper drop path) while the writer thread drains concurrently, and
    // no more than one chunk of records is ever in memory.
    const CHUNK: u64 = 1 << 16;
    let mut dropped = 0;
    group.bench_function("queue_sink_submit", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CHUNK);
                left -= n;
                let capacity = usize::try_from(n).expect("chunk fits usize");
                let sink = QueueSink::new(std::io::sink(), LogFormat::JsonLines, capacity)
                    .expect("queue sink");
                let batch: Vec<ConnectionLogRecord> = (0..n).map(|_| record.clone()).collect();
                let start = Instant::now();
                for r in batch {
                    sink.submit(r);
                }
                elapsed += start.elapsed();
                dropped += sink.dropped();
                sink.shutdown().expect("sink shutdown");
            }
            elapsed
        })
    });
    group.finish();
    assert_eq!(dropped, 0, "the timed path must never drop");
}

criterion_group!(benches, per_connection, per_request, logs);
criterion_main!(benches);
