//! Connection logs as rotating files: rotation by size and by time, Hive
//! paths, files completed after a crash, and 10,000 connection attempts over
//! real TLS through the whole pipeline into Parquet files that pyarrow and
//! DuckDB (in a Python venv the test sets up) read back.

mod common;
#[path = "log_files_support/mod.rs"]
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edge_mtls::ReasonCode;
use edge_mtls::{
    ConnectionLogRecord, ConnectionStatus, LogFormat, LogOutput, RotatingFiles, Rotation,
};
use support::{file_name, files_under};

/// 2026-12-03T11:00:00Z in Unix milliseconds.
const ELEVEN: u64 = 1_796_295_600_000;
const MINUTE: u64 = 60_000;

/// A record as the pipeline writes it, with a unique connection id.
fn record(i: u64, millis: u64, distribution_id: &str) -> ConnectionLogRecord {
    let failed = i % 3 == 0;
    ConnectionLogRecord {
        event_timestamp: millis,
        connection_id: format!("conn-{i:08}"),
        connection_status: if failed {
            ConnectionStatus::Failed(ReasonCode::ClientCertMissing)
        } else {
            ConnectionStatus::Success
        },
        client_ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 42))),
        client_port: Some(40_000 + u16::try_from(i % 20_000).expect("small")),
        server_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        server_port: Some(8443),
        distribution_id: distribution_id.to_owned(),
        tls_protocol: Some("TLSv1.3".into()),
        tls_cipher: Some("TLS_AES_128_GCM_SHA256".into()),
        tls_handshake_duration: Some(i % 7),
        tls_sni: Some("localhost".into()),
        client_leaf_cert_subject: (!failed).then(|| "CN=my-client,O=edge-mtls demo".into()),
        connection_status_detail: failed.then(|| "no client certificate".into()),
        trust_store_generation: Some(1),
        ..ConnectionLogRecord::default()
    }
}

fn at(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// Writes `records` in one batch and checks that all of them got through.
fn write_all(output: &mut RotatingFiles, records: &[ConnectionLogRecord], now: u64) {
    let progress = output.write_batch(records, at(now));
    assert!(progress.error.is_none(), "{:?}", progress.error);
    assert_eq!(progress.lost, 0);
}

/// The JSON lines of every file, in name order (oldest first), as
/// `(file, eventTimestamp, connectionId)`.
fn json_records(dir: &Path) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    for file in files_under(dir) {
        let text = std::fs::read_to_string(dir.join(&file)).expect("read a log file");
        for line in text.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            out.push((
                file.clone(),
                value["eventTimestamp"].as_u64().expect("eventTimestamp"),
                value["connectionId"]
                    .as_str()
                    .expect("connectionId")
                    .to_owned(),
            ));
        }
    }
    out
}

#[test]
fn size_rotation_keeps_every_line_file_within_its_limit() {
    const MAX: u64 = 4_096;
    for format in [LogFormat::JsonLines, LogFormat::W3c, LogFormat::Alb] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let rotation = Rotation {
            max_bytes: MAX,
            ..Rotation::default()
        };
        let mut output = RotatingFiles::new(tmp.path(), format, rotation).expect("output");
        let records: Vec<ConnectionLogRecord> = (0..200)
            .map(|i| record(i, ELEVEN + i * 10, "E2SIZE"))
            .collect();
        for batch in records.chunks(20) {
            write_all(&mut output, batch, ELEVEN);
        }
        let finished = output.finish();
        assert!(finished.error.is_none(), "{:?}", finished.error);
        assert_eq!(output.pending(), 0);

        let files = files_under(tmp.path());
        assert!(files.len() >= 5, "{format:?}: {files:?}");
        let mut lines = 0;
        for file in &files {
            let name = file_name(file);
            let ext = format.file_extension();
            let stamp = name
                .strip_prefix("E2SIZE.")
                .and_then(|rest| rest.strip_suffix(&format!(".{ext}")))
                .unwrap_or_else(|| panic!("{format:?}: unexpected name {name}"));
            // <YYYY-MM-DD-HH-MM-SS>.<seq>
            assert!(stamp.starts_with("2026-12-03-11-00-0"), "{name}");
            assert_eq!(stamp.len(), "2026-12-03-11-00-00.0000".len(), "{name}");
            let bytes = std::fs::read(tmp.path().join(file)).expect("read");
            assert!(bytes.len() as u64 <= MAX, "{name}: {} bytes", bytes.len());
            let text = String::from_utf8(bytes).expect("UTF-8");
            if format == LogFormat::W3c {
                assert!(text.starts_with("#Version: 1.0\n#Fields: "), "{name}");
            }
            lines += text.lines().filter(|l| !l.starts_with('#')).count();
        }
        assert_eq!(lines, 200, "{format:?}");
        if format == LogFormat::JsonLines {
            // Name order is write order: the records come back in order.
            let stamps: Vec<u64> = json_records(tmp.path()).iter().map(|r| r.1).collect();
            let expected: Vec<u64> = (0..200).map(|i| ELEVEN + i * 10).collect();
            assert_eq!(stamps, expected);
        }
    }
}

#[test]
fn time_rotation_and_hive_paths_follow_the_records_intervals() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rotation = Rotation {
        interval: Duration::from_secs(15 * 60),
        hive: true,
        ..Rotation::default()
    };
    let mut output =
        RotatingFiles::new(tmp.path(), LogFormat::JsonLines, rotation).expect("output");
    let a = |i: u64, millis: u64| record(i, millis, "E2A");
    write_all(
        &mut output,
        &[
            a(0, ELEVEN - 10 * MINUTE),
            a(1, ELEVEN - 1),
            a(2, ELEVEN),
            record(3, ELEVEN + 5 * MINUTE, "E2B/../x"),
            a(4, ELEVEN + 14 * MINUTE),
            a(5, ELEVEN + 15 * MINUTE),
        ],
        ELEVEN + 15 * MINUTE,
    );
    // A late record (its interval's file was completed) goes to the open
    // file of its distribution id.
    write_all(
        &mut output,
        &[a(6, ELEVEN + 44 * MINUTE), a(7, ELEVEN + 29 * MINUTE)],
        ELEVEN + 44 * MINUTE,
    );
    let hour = |h: &str| format!("distributionid=E2A/year=2026/month=12/day=03/hour={h}");
    let e2b = "distributionid=E2B____x/year=2026/month=12/day=03/hour=11";
    let listed = files_under(tmp.path());
    let finals: Vec<&String> = listed
        .iter()
        .filter(|f| !file_name(f).starts_with('.'))
        .collect();
    assert_eq!(
        finals,
        [
            &format!("{}/E2A.2026-12-03-10-50-00.0000.jsonl", hour("10")),
            &format!("{}/E2A.2026-12-03-11-00-00.0001.jsonl", hour("11")),
            &format!("{}/E2A.2026-12-03-11-15-00.0003.jsonl", hour("11")),
        ],
        "{listed:?}"
    );

    // The files of ended intervals are completed by the clock alone, one
    // second after the interval (late records get that long).
    let progress = output.tick(at(ELEVEN + 45 * MINUTE + 500));
    assert!(progress.error.is_none());
    let still_open: Vec<String> = files_under(tmp.path())
        .into_iter()
        .filter(|f| file_name(f).starts_with('.'))
        .collect();
    assert_eq!(
        still_open,
        [format!(
            "{}/.E2A.2026-12-03-11-44-00.0004.jsonl.tmp",
            hour("11")
        )],
        "the E2B file's interval ended long ago; E2A's is in its grace second"
    );
    let progress = output.tick(at(ELEVEN + 45 * MINUTE + 1_100));
    assert!(progress.error.is_none());
    let expected = [
        format!("{}/E2A.2026-12-03-10-50-00.0000.jsonl", hour("10")),
        format!("{}/E2A.2026-12-03-11-00-00.0001.jsonl", hour("11")),
        format!("{}/E2A.2026-12-03-11-15-00.0003.jsonl", hour("11")),
        format!("{}/E2A.2026-12-03-11-44-00.0004.jsonl", hour("11")),
        format!("{e2b}/E2B____x.2026-12-03-11-05-00.0002.jsonl"),
    ];
    assert_eq!(files_under(tmp.path()), expected);
    let by_file: Vec<(String, String)> = json_records(tmp.path())
        .into_iter()
        .map(|(file, _, id)| (file_name(&file).to_owned(), id))
        .collect();
    let names = |ids: &[u64], file: &str| -> Vec<(String, String)> {
        ids.iter()
            .map(|i| (file.to_owned(), format!("conn-{i:08}")))
            .collect()
    };
    let mut want = Vec::new();
    want.extend(names(&[0, 1], "E2A.2026-12-03-10-50-00.0000.jsonl"));
    want.extend(names(&[2, 4], "E2A.2026-12-03-11-00-00.0001.jsonl"));
    want.extend(names(&[5], "E2A.2026-12-03-11-15-00.0003.jsonl"));
    want.extend(names(&[6, 7], "E2A.2026-12-03-11-44-00.0004.jsonl"));
    want.extend(names(&[3], "E2B____x.2026-12-03-11-05-00.0002.jsonl"));
    assert_eq!(by_file, want);

    // With Hive paths a file never spans two hours, whatever the interval.
    let tmp = tempfile::tempdir().expect("tempdir");
    let rotation = Rotation {
        interval: Duration::from_secs(86_400),
        hive: true,
        ..Rotation::default()
    };
    let mut output = RotatingFiles::new(tmp.path(), LogFormat::Alb, rotation).expect("output");
    write_all(
        &mut output,
        &[a(0, ELEVEN + 59 * MINUTE), a(1, ELEVEN + 61 * MINUTE)],
        ELEVEN + 61 * MINUTE,
    );
    assert!(output.finish().error.is_none());
    assert_eq!(
        files_under(tmp.path()),
        [
            format!("{}/E2A.2026-12-03-11-59-00.0000.alb.log", hour("11")),
            format!("{}/E2A.2026-12-03-12-01-00.0001.alb.log", hour("12")),
        ]
    );
}

#[test]
fn a_crashed_writers_line_file_is_completed_at_the_next_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut output =
        RotatingFiles::new(tmp.path(), LogFormat::JsonLines, Rotation::default()).expect("output");
    let records: Vec<ConnectionLogRecord> =
        (0..10).map(|i| record(i, ELEVEN + i, "E2CRASH")).collect();
    write_all(&mut output, &records, ELEVEN);
    // The process dies in the middle of the next write.
    let open = files_under(tmp.path());
    assert_eq!(open, [".E2CRASH.2026-12-03-11-00-00.0000.jsonl.tmp"]);
    let mut half = String::new();
    edge_mtls::internal::json_line(&mut half, &record(10, ELEVEN, "E2CRASH"));
    half.truncate(half.len() / 2);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(tmp.path().join(&open[0]))
        .expect("open the leftover");
    std::io::Write::write_all(&mut file, half.as_bytes()).expect("append");
    drop(file);
    std::mem::forget(output);

    // The next process completes it before writing its own.
    let mut output =
        RotatingFiles::new(tmp.path(), LogFormat::JsonLines, Rotation::default()).expect("output");
    write_all(&mut output, &[record(11, ELEVEN + 20, "E2CRASH")], ELEVEN);
    assert!(output.finish().error.is_none());
    let files = files_under(tmp.path());
    assert_eq!(
        files,
        [
            "E2CRASH.2026-12-03-11-00-00.0000.jsonl",
            "E2CRASH.2026-12-03-11-00-00.0001.jsonl"
        ]
    );
    let ids: Vec<String> = json_records(tmp.path()).into_iter().map(|r| r.2).collect();
    let expected: Vec<String> = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11]
        .iter()
        .map(|i| format!("conn-{i:08}"))
        .collect();
    assert_eq!(ids, expected);
}

#[cfg(feature = "parquet")]
mod parquet {
    use super::*;

    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;

    use common::{client_config, connect, provider, self_signed_client, server_identity, Pki};
    use edge_mtls::internal::JSON_FIELDS;
    use edge_mtls::LogSettings;
    use edge_mtls::MtlsConfig;
    use serde_json::Value;
    use support::read_parquet_dir;

    /// The schema pyarrow reads: the JSON field names, all strings, null
    /// allowed where the JSON value can be `null`.
    fn expected_schema() -> Value {
        let required = [
            "eventTimestamp",
            "connectionId",
            "connectionStatus",
            "distributionId",
            "forwarded",
        ];
        Value::Array(
            JSON_FIELDS
                .iter()
                .map(|name| serde_json::json!([name, "string", !required.contains(name)]))
                .collect(),
        )
    }

    /// The size of a Parquet file without its footer.
    fn data_len(path: &Path) -> u64 {
        let bytes = std::fs::read(path).expect("read");
        assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
        let len: [u8; 4] = bytes[bytes.len() - 8..bytes.len() - 4]
            .try_into()
            .expect("4 bytes");
        bytes.len() as u64 - 8 - u64::from(u32::from_le_bytes(len))
    }

    #[test]
    fn size_rotation_bounds_parquet_files_and_row_groups() {
        const MAX: u64 = 96 * 1024;
        let tmp = tempfile::tempdir().expect("tempdir");
        let rotation = Rotation {
            max_bytes: MAX,
            row_group_rows: 500,
            ..Rotation::default()
        };
        let mut output =
            RotatingFiles::new(tmp.path(), LogFormat::Parquet, rotation).expect("output");
        let records: Vec<ConnectionLogRecord> = (0..20_000)
            .map(|i| record(i, ELEVEN + i, "E2PARQUET"))
            .collect();
        let mut written = 0;
        for batch in records.chunks(700) {
            let progress = output.write_batch(batch, at(ELEVEN));
            assert!(progress.error.is_none(), "{:?}", progress.error);
            written += progress.written;
            // At most one row group per open file waits in memory.
            assert!(output.pending() < 500 + 700, "{}", output.pending());
        }
        let finished = output.finish();
        assert!(finished.error.is_none(), "{:?}", finished.error);
        assert_eq!(written + finished.written, 20_000);
        assert_eq!(output.pending(), 0);

        let files = files_under(tmp.path());
        assert!(files.len() >= 3, "{files:?}");
        for file in &files {
            assert!(
                file.ends_with(".parquet") && !file.starts_with('.'),
                "{file}"
            );
            let len = data_len(&tmp.path().join(file));
            assert!(len <= MAX, "{file}: {len} bytes of row groups");
        }
        let read = read_parquet_dir(tmp.path(), false);
        assert_eq!(read["pyarrow_rows"], 20_000, "{read}");
        assert_eq!(read["duckdb_rows"], 20_000, "{read}");
        assert_eq!(read["distinct_ids"], 20_000, "{read}");
        assert_eq!(read["schema"], expected_schema());
    }

    #[test]
    fn a_crashed_writers_parquet_file_keeps_its_written_row_groups() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let rotation = Rotation {
            row_group_rows: 100,
            ..Rotation::default()
        };
        let mut output =
            RotatingFiles::new(tmp.path(), LogFormat::Parquet, rotation.clone()).expect("output");
        let records: Vec<ConnectionLogRecord> =
            (0..350).map(|i| record(i, ELEVEN + i, "E2CRASH")).collect();
        let progress = output.write_batch(&records, at(ELEVEN));
        assert!(progress.error.is_none(), "{:?}", progress.error);
        assert_eq!(progress.written, 300, "three full row groups");
        assert_eq!(output.pending(), 50, "the open row group");
        // The process dies: nothing is completed, nothing is readable.
        std::mem::forget(output);
        assert_eq!(
            files_under(tmp.path()),
            [
                ".E2CRASH.2026-12-03-11-00-00.0000.parquet.footer",
                ".E2CRASH.2026-12-03-11-00-00.0000.parquet.tmp",
            ]
        );
        assert_eq!(read_parquet_dir(tmp.path(), false)["pyarrow_rows"], 0);

        // The next start completes it with its three row groups.
        let mut output =
            RotatingFiles::new(tmp.path(), LogFormat::Parquet, rotation).expect("output");
        assert!(output.finish().error.is_none());
        assert_eq!(
            files_under(tmp.path()),
            ["E2CRASH.2026-12-03-11-00-00.0000.parquet"]
        );
        let read = read_parquet_dir(tmp.path(), false);
        assert_eq!(read["pyarrow_rows"], 300, "{read}");
        assert_eq!(read["duckdb_rows"], 300, "{read}");
        assert_eq!(read["distinct_ids"], 300, "{read}");
        assert_eq!(read["schema"], expected_schema());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_thousand_attempts_reach_rotating_parquet_files() {
        const ATTEMPTS: usize = 10_000;
        const IN_FLIGHT: usize = 16;
        // Set up the readers first (a no-op once the venv exists).
        tokio::task::spawn_blocking(support::venv_python)
            .await
            .expect("venv");
        let tmp = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new(1);
        let server = server_identity();
        let config = MtlsConfig {
            log: LogSettings {
                format: LogFormat::Parquet,
                target: format!("dir:{}", tmp.path().display()),
                queue_capacity: ATTEMPTS,
                max_bytes: 96 * 1024,
                row_group_rows: 1_000,
                hive: true,
                ..LogSettings::default()
            },
            ..MtlsConfig::default()
        };
        let edge = config
            .into_builder()
            .crypto_provider(provider())
            .distribution_id("E2LOGFILES")
            .server_identity(server.chain.clone(), server.key())
            .trust_store(pki.root_store())
            .build()
            .expect("edge");
        let addr = common::e2e::serve_echo_ok(edge.clone()).await;

        // 3 in 10 valid clients (one config each, so TLS 1.3 resumption
        // makes most of their handshakes cheap), 5 without a certificate,
        // 2 with an untrusted one.
        let valid = client_config(Some(
            &pki.client("valid", &common::LeafOptions::default())
                .identity(),
        ));
        let none = client_config(None);
        let untrusted = client_config(Some(&self_signed_client("stranger").identity()));
        let next = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let started = std::time::Instant::now();
        let workers: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let (next, accepted, refused) = (next.clone(), accepted.clone(), refused.clone());
                let configs = [valid.clone(), none.clone(), untrusted.clone()];
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= ATTEMPTS {
                            return;
                        }
                        let (config, should_pass) = match i % 10 {
                            0..=2 => (&configs[0], true),
                            3..=7 => (&configs[1], false),
                            _ => (&configs[2], false),
                        };
                        let outcome = connect(addr, config.clone()).await;
                        let passed = matches!(outcome, common::Outcome::Accepted { .. });
                        assert_eq!(passed, should_pass, "attempt {i}: {outcome:?}");
                        if passed {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        } else {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.expect("client worker");
        }
        let elapsed = started.elapsed();

        // Every attempt's record is submitted as the server closes it.
        let queue = edge.log_queue().expect("the configured log").clone();
        let total = |s: &edge_mtls::CountersSnapshot| {
            s.success + s.failed.iter().map(|(_, n)| n).sum::<u64>()
        };
        for _ in 0..500 {
            if total(&queue.counters().snapshot()) >= ATTEMPTS as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let counters = queue.counters().snapshot();
        assert_eq!(total(&counters), ATTEMPTS as u64, "{counters:?}");
        assert_eq!(counters.success, accepted.load(Ordering::Relaxed));
        let written = tokio::task::spawn_blocking({
            let edge = edge.clone();
            move || edge.flush_log()
        })
        .await
        .expect("flush")
        .expect("flush the log");
        assert_eq!(written, ATTEMPTS as u64);
        assert_eq!(queue.dropped(), 0);
        assert_eq!(queue.unwritten(), 0);

        let files = files_under(tmp.path());
        assert!(
            files.iter().all(|f| !file_name(f).starts_with('.')),
            "a temporary file is left: {files:?}"
        );
        assert!(files.len() >= 4, "several files: {files:?}");
        for file in &files {
            assert!(
                file.starts_with("distributionid=E2LOGFILES/year=")
                    && file_name(file).starts_with("E2LOGFILES.")
                    && file.ends_with(".parquet"),
                "{file}"
            );
        }
        let read = tokio::task::spawn_blocking({
            let dir = tmp.path().to_path_buf();
            move || read_parquet_dir(&dir, true)
        })
        .await
        .expect("read");
        assert_eq!(read["pyarrow_rows"], ATTEMPTS, "{read}");
        assert_eq!(read["duckdb_rows"], ATTEMPTS, "{read}");
        assert_eq!(read["distinct_ids"], ATTEMPTS, "{read}");
        assert_eq!(read["schema"], expected_schema());
        assert_eq!(read["hive_mismatched"], 0, "{read}");
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        expected.insert("Success".into(), counters.success);
        for (code, n) in &counters.failed {
            expected.insert(format!("Failed:{code}"), *n);
        }
        let seen: BTreeMap<String, u64> = read["duckdb_status"]
            .as_object()
            .expect("status counts")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().expect("a count")))
            .collect();
        assert_eq!(seen, expected);
        assert_eq!(
            expected.get("Failed:ClientCertMissing").copied(),
            Some(5_000)
        );
        assert_eq!(
            expected.get("Failed:ClientCertUntrusted").copied(),
            Some(2_000)
        );
        assert_eq!(refused.load(Ordering::Relaxed), 7_000);
        eprintln!(
            "{ATTEMPTS} attempts in {elapsed:.1?}, {} files: {:?}",
            files.len(),
            read["duckdb_status"]
        );
    }
}
