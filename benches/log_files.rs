//! How many connection-log records one core writes into rotating files:
//! Parquet (goal: 200,000 records/s) and JSON lines, through
//! [`RotatingFiles`] as the queue sink's writer thread drives it (batches of
//! 1,000, default rotation), into a temporary directory. Each sample writes
//! 20,000 realistic records (a refused or accepted client with its leaf
//! certificate fields) into a fresh directory, completing the file at the
//! end, so opening and finishing files is paid for.
//!
//! Run with `cargo bench --features parquet --bench log_files` (about a
//! minute).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edge_mtls::ReasonCode;
use edge_mtls::{
    ConnectionLogRecord, ConnectionStatus, LogFormat, LogOutput, RotatingFiles, Rotation,
};

const RECORDS: u64 = 20_000;
const BATCH: usize = 1_000;

/// Records as the pipeline writes them: two in three accepted, one refused,
/// every one with a distinct id and the leaf's fields.
fn records(now: u64) -> Vec<ConnectionLogRecord> {
    (0..RECORDS)
        .map(|i| {
            let refused = i % 3 == 0;
            ConnectionLogRecord {
                event_timestamp: now + i / 20,
                connection_id: format!("{:0>56}", i),
                connection_status: if refused {
                    ConnectionStatus::Failed(ReasonCode::ClientCertExpired)
                } else {
                    ConnectionStatus::Success
                },
                client_ip: Some(IpAddr::V4(Ipv4Addr::new(
                    203,
                    0,
                    113,
                    u8::try_from(i % 250).expect("small"),
                ))),
                client_port: Some(u16::try_from(30_000 + i % 30_000).expect("small")),
                server_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))),
                server_port: Some(443),
                distribution_id: "E2EXAMPLE".into(),
                tls_protocol: Some("TLSv1.3".into()),
                tls_cipher: Some("TLS_AES_128_GCM_SHA256".into()),
                tls_key_exchange: Some("X25519".into()),
                tls_handshake_duration: Some(i % 9),
                tls_sni: Some("api.example.com".into()),
                client_leaf_cert_serial_number: Some(format!(
                    "00:a7:30:9e:{:02x}:{:02x}",
                    i % 256,
                    i / 256 % 256
                )),
                client_leaf_cert_subject: Some(format!(
                    "CN=device-{},OU=fleet,O=Example Corp,C=US",
                    i % 500
                )),
                client_leaf_cert_subject_rfc2253: None,
                client_leaf_cert_issuer: Some("CN=Example Issuing CA,O=Example Corp,C=US".into()),
                client_leaf_cert_validity: Some(
                    "NotBefore=2026-01-01T00:00:00Z;NotAfter=2027-01-01T00:00:00Z".into(),
                ),
                client_leaf_cert_sha256: Some(format!("{:064x}", u128::from(i) * 0x9e37_79b9)),
                connection_log_custom_data: None,
                trust_store_generation: Some(3),
                connection_status_detail: refused.then(|| {
                    "leaf certificate (CN=device,O=Example Corp,C=US): expired at \
                     2026-01-01T00:00:00Z (now 2026-12-03T11:00:00Z)"
                        .to_owned()
                }),
                ..ConnectionLogRecord::default()
            }
        })
        .collect()
}

fn write_files(c: &mut Criterion) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    let records = records(now);
    let mut group = c.benchmark_group("log_files");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(RECORDS));
    for format in [LogFormat::Parquet, LogFormat::JsonLines] {
        group.bench_function(format.as_str(), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let mut output = RotatingFiles::new(dir.path(), format, Rotation::default())
                        .expect("output");
                    let start = Instant::now();
                    for batch in records.chunks(BATCH) {
                        let progress = output.write_batch(batch, SystemTime::now());
                        assert!(progress.error.is_none(), "{:?}", progress.error);
                    }
                    let finished = output.finish();
                    assert!(finished.error.is_none(), "{:?}", finished.error);
                    total += start.elapsed();
                    black_box(&output);
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, write_files);
criterion_main!(benches);
