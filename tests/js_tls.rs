//! JavaScript connection functions over real TLS with the real curl: the
//! seed functions verbatim (seed 000; seed 003 with its line breaks
//! restored), hostile functions while another client keeps getting 200,
//! and seed 003's OCSP examples against the real `openssl ocsp` responder.
#![cfg(all(feature = "js", feature = "axum"))]

mod common;
#[path = "../examples/common/echo.rs"]
mod echo;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::e2e::{as_client, Fixture, MemorySink};
use common::openssl_ca::{client_extensions, free_port, OpensslCa};
use edge_mtls::FailurePolicy;
use edge_mtls::OcspSettings;
use edge_mtls::{Connection, ConnectionPolicy, Decision};
use edge_mtls::{ConnectionLogRecord, ConnectionStatus};
use edge_mtls::{Edge, MtlsConfig, ReasonCode, ValidationMode};
use edge_mtls::{JsFunction, JsLimits};
use tokio::net::TcpListener;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/js")
        .join(name)
}

async fn serve(edge: Edge) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(edge_mtls::axum::serve(listener, edge, echo::router()));
    addr
}

/// The quickstart's configuration with `function` as the policy and the
/// demo deny list bound to `cf.kvs()` only (not a revocation source, so the
/// function is what denies the revoked client).
fn edge_with(fx: &Fixture, sink: &Arc<MemorySink>, function: &Path) -> Edge {
    let mut b = fx
        .builder(ValidationMode::Required, sink)
        .connection_function(function);
    b.settings().revocation.deny_list = None;
    b.settings().policy.kvs_json = vec![fx.pki.revoked_serials()];
    b.build().expect("edge")
}

fn custom_data(record: &ConnectionLogRecord) -> &str {
    record.connection_log_custom_data.as_deref().unwrap_or("")
}

async fn seed_kvs_function(file: &str, valid_prefix: &str, revoked_prefix: &str) {
    let fx = Fixture::new();
    let demo = fx.pki.dir.clone();
    let sink = Arc::new(MemorySink::default());
    let addr = serve(edge_with(&fx, &sink, &fixture(file))).await;
    let ok = as_client(&fx, &demo, addr, "my_client").await;
    let revoked = as_client(&fx, &demo, addr, "revoked_client").await;
    let records = sink.wait_for(2).await;
    assert_eq!(ok.code, Some(0), "{ok:?} {records:?}");
    assert_eq!(ok.json()["CloudFront-Viewer-Cert-Present"], "1");
    revoked.assert_refused();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0].connection_status, ConnectionStatus::Success);
    assert!(
        custom_data(&records[0]).starts_with(valid_prefix),
        "{:?}",
        records[0]
    );
    assert_eq!(
        records[1].connection_status,
        ConnectionStatus::Failed(ReasonCode::ConnectionFunctionDenied)
    );
    assert!(
        custom_data(&records[1]).starts_with(revoked_prefix),
        "{:?}",
        records[1]
    );
    eprintln!(
        "{file}: {:?} / {:?}",
        custom_data(&records[0]),
        custom_data(&records[1])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_function_allows_valid_and_denies_revoked_over_tls() {
    seed_kvs_function(
        "seed000_kvs_revocation.js",
        "Valid certificate: ",
        "Revoked certificate: ",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_kvs_function_denies_revoked_over_tls() {
    seed_kvs_function(
        "seed003_kvs_revocation.js",
        "",
        "Connection denied — certificate revoked",
    )
    .await;
}

/// A hostile behaviour for the `revoked-client` certificate only; every
/// other client is allowed (and denied if it sees a global another
/// connection left behind).
fn hostile_source(body: &str, is_async: bool) -> String {
    format!(
        "{}function connectionHandler(connection) {{
            if (globalThis.leaked) {{ connection.logCustomData('leaked'); return connection.deny(); }}
            if (connection.clientCertificate.certificates.leaf.subject.indexOf('revoked-client') >= 0) {{
                {body}
            }}
            return connection.allow();
        }}\n",
        if is_async { "async " } else { "" }
    )
}

struct Hostile {
    name: &'static str,
    body: &'static str,
    is_async: bool,
    reason: ReasonCode,
}

const HOSTILE: &[Hostile] = &[
    Hostile {
        name: "while(true){}",
        body: "while (true) {}",
        is_async: false,
        reason: ReasonCode::ConnectionFunctionError,
    },
    Hostile {
        name: "while(true){} in an async function",
        body: "await null; while (true) {}",
        is_async: true,
        reason: ReasonCode::ConnectionFunctionError,
    },
    Hostile {
        name: "memory bomb",
        body: "const a = []; while (true) a.push(new Array(100000).fill(a.length));",
        is_async: false,
        reason: ReasonCode::ConnectionFunctionError,
    },
    Hostile {
        name: "unbounded recursion",
        body: "const f = (n) => f(n + 1) + 1; f(0);",
        is_async: false,
        reason: ReasonCode::ConnectionFunctionError,
    },
    Hostile {
        name: "throw",
        body: "throw new Error('hostile');",
        is_async: false,
        reason: ReasonCode::ConnectionFunctionError,
    },
    Hostile {
        name: "no decision",
        body: "return;",
        is_async: false,
        reason: ReasonCode::ConnectionFunctionDenied,
    },
    Hostile {
        name: "10 MB logCustomData",
        body: "connection.logCustomData('x'.repeat(10 * 1024 * 1024)); return connection.allow();",
        is_async: false,
        reason: ReasonCode::ConnectionFunctionError,
    },
    Hostile {
        name: "a promise that never resolves",
        body: "await new Promise(() => {}); return connection.allow();",
        is_async: true,
        reason: ReasonCode::ConnectionFunctionError,
    },
    Hostile {
        name: "mutating the connection object",
        body: "connection.clientIp = '10.0.0.1'; connection.allow = () => {}; return connection.allow();",
        is_async: false,
        reason: ReasonCode::ConnectionFunctionError,
    },
    // The realm is frozen: the write throws (TypeError), and the other
    // client, which is denied if it ever sees the global, keeps getting 200.
    Hostile {
        name: "a global for the next connection",
        body: "connection.logCustomData('fresh'); globalThis.leaked = true; return connection.deny();",
        is_async: false,
        reason: ReasonCode::ConnectionFunctionError,
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_functions_are_denied_while_another_client_keeps_getting_200() {
    let fx = Fixture::new();
    let demo = fx.pki.dir.clone();
    let functions = tempfile::tempdir().expect("tempdir");
    let mut report = Vec::new();
    for (i, h) in HOSTILE.iter().enumerate() {
        let path = functions.path().join(format!("hostile{i}.js"));
        std::fs::write(&path, hostile_source(h.body, h.is_async)).expect("write");
        let sink = Arc::new(MemorySink::default());
        let addr = serve(edge_with(&fx, &sink, &path)).await;

        // Another client keeps connecting (and must keep getting 200).
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let good = {
            let (stop, served, demo) = (stop.clone(), served.clone(), demo.clone());
            let root = fx.pki.root();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let out = tokio::process::Command::new("curl")
                        .current_dir(&demo)
                        .args([
                            "-sS",
                            "-o",
                            "/dev/null",
                            "-w",
                            "%{http_code}",
                            "--max-time",
                            "20",
                        ])
                        .arg("--cacert")
                        .arg(&root)
                        .args(["--key", "my_client.key", "--cert", "my_client.pem"])
                        .arg(format!("https://{addr}/"))
                        .output()
                        .await
                        .expect("curl");
                    let code = String::from_utf8_lossy(&out.stdout).into_owned();
                    assert_eq!(code, "200", "the other client: {out:?}");
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        };

        // The limit is wall-clock: on a loaded machine a preempted call of a
        // case that is not about time may be interrupted too; such a
        // connection is still denied (ConnectionFunctionError) and the case
        // is tried again, up to 6 connections for 2 verdicts.
        let is_timeout_case = h.name.contains("while");
        let verdicts = |records: &[ConnectionLogRecord]| {
            records
                .iter()
                .filter(|r| r.connection_status != ConnectionStatus::Success)
                .filter(|r| {
                    is_timeout_case
                        || !r
                            .connection_status_detail
                            .as_deref()
                            .unwrap_or("")
                            .contains("interrupted")
                })
                .count()
        };
        let mut times = Vec::new();
        for _ in 0..6 {
            let start = Instant::now();
            as_client(&fx, &demo, addr, "revoked_client")
                .await
                .assert_refused();
            times.push(start.elapsed());
            let refused = times.len();
            let records = sink.wait_for_failed(refused).await;
            if verdicts(&records) >= 2 {
                break;
            }
        }
        // The server serves the next connection.
        let after = as_client(&fx, &demo, addr, "my_client").await;
        assert_eq!(
            after.json()["CloudFront-Viewer-Cert-Present"],
            "1",
            "{}",
            h.name
        );
        while served.load(Ordering::Relaxed) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.store(true, Ordering::Relaxed);
        good.await.expect("the other client got 200 every time");

        let records = sink.records();
        let all_denied = records
            .iter()
            .filter(|r| r.connection_status != ConnectionStatus::Success)
            .count();
        assert_eq!(
            all_denied,
            times.len(),
            "{}: every hostile connection is denied",
            h.name
        );
        let denied: Vec<_> = records
            .iter()
            .filter(|r| r.connection_status != ConnectionStatus::Success)
            .filter(|r| {
                is_timeout_case
                    || !r
                        .connection_status_detail
                        .as_deref()
                        .unwrap_or("")
                        .contains("interrupted")
            })
            .collect();
        assert!(denied.len() >= 2, "{}: {records:?}", h.name);
        for r in &denied {
            assert_eq!(
                r.connection_status,
                ConnectionStatus::Failed(h.reason),
                "{}: {r:?}",
                h.name
            );
        }
        if h.name.starts_with("a global") {
            assert!(
                denied.iter().all(|r| r
                    .connection_status_detail
                    .as_deref()
                    .unwrap_or("")
                    .contains("TypeError")),
                "{denied:?}"
            );
        }
        assert!(records
            .iter()
            .filter(|r| r.connection_status == ConnectionStatus::Success)
            .all(|r| custom_data(r) != "leaked"));
        let detail = denied[1]
            .connection_status_detail
            .clone()
            .unwrap_or_default();
        report.push(format!(
            "{:<36} {:?} in {} connection(s), curl {:?}, other client served {} times; {detail}",
            h.name,
            h.reason,
            times.len(),
            times,
            served.load(Ordering::Relaxed)
        ));
        // Bounded by the deadline plus a handshake and a curl process, on a
        // loaded 2-core machine.
        assert!(
            times.iter().all(|t| *t < Duration::from_secs(2)),
            "{times:?}"
        );
    }
    for line in report {
        eprintln!("{line}");
    }
}

// ---------------------------------------------------------------------------
// Seed 003's OCSP examples against the real `openssl ocsp` responder
// ---------------------------------------------------------------------------

struct OcspFixture {
    ca: OpensslCa,
    port: u16,
    dir: tempfile::TempDir,
}

impl OcspFixture {
    fn new() -> Self {
        let ca = OpensslCa::new("JS OCSP Test CA");
        let dir = tempfile::tempdir().expect("tempdir");
        // The server's certificate, from the same CA.
        let server = ca.issue(
            "server",
            "localhost",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        );
        std::fs::write(dir.path().join("server.pem"), common::der_to_pem(&server)).unwrap();
        std::fs::copy(ca.path("server.key"), dir.path().join("server.key")).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Self {
            ca,
            port: free_port(),
            dir,
        }
    }

    fn client(&self, name: &str) {
        let url = format!("http://127.0.0.1:{}", self.port);
        self.ca.issue(name, name, &client_extensions(Some(&url)));
        std::fs::write(
            self.dir.path().join(format!("{name}.pem")),
            common::der_to_pem(&self.ca.cert_der(name)),
        )
        .unwrap();
        std::fs::copy(
            self.ca.path(&format!("{name}.key")),
            self.dir.path().join(format!("{name}.key")),
        )
        .unwrap();
    }

    fn edge(&self, function: &Path, kvs: Option<&Path>, sink: &Arc<MemorySink>) -> Edge {
        let mut config = MtlsConfig {
            distribution_id: "js-ocsp".into(),
            ..MtlsConfig::default()
        };
        config.revocation.ocsp = Some(OcspSettings {
            request_timeout_ms: 500,
            deadline_ms: 1_000,
            failure_policy: FailurePolicy::SoftFail,
            ..OcspSettings::default()
        });
        config.policy.js = Some(function.to_path_buf());
        if let Some(kvs) = kvs {
            config.policy.kvs_json = vec![kvs.to_path_buf()];
        }
        config
            .into_builder()
            .server_files(
                self.dir.path().join("server.pem"),
                self.dir.path().join("server.key"),
            )
            .trust_store_file(self.dir.path().join("ca.pem"))
            .log_sink(sink.clone())
            .build()
            .expect("edge")
    }

    async fn curl(&self, addr: SocketAddr, name: &str) -> common::e2e::Curl {
        let output = tokio::process::Command::new("curl")
            .current_dir(self.dir.path())
            .args(["-sS", "--max-time", "20", "--cacert", "ca.pem"])
            .args([
                "--key",
                &format!("{name}.key"),
                "--cert",
                &format!("{name}.pem"),
            ])
            .arg(format!("https://localhost:{}/", addr.port()))
            .args(["--resolve", &format!("localhost:{}:127.0.0.1", addr.port())])
            .output()
            .await
            .expect("curl");
        common::e2e::Curl {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

trait WaitFailed {
    async fn wait_for_failed(&self, n: usize) -> Vec<ConnectionLogRecord>;
}

impl WaitFailed for MemorySink {
    /// Waits until `n` records of refused connections arrived.
    async fn wait_for_failed(&self, n: usize) -> Vec<ConnectionLogRecord> {
        for _ in 0..300 {
            let records = self.records();
            let failed = records
                .iter()
                .filter(|r| r.connection_status != ConnectionStatus::Success)
                .count();
            if failed >= n {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.records()
    }
}

async fn last_record(sink: &MemorySink, n: usize) -> ConnectionLogRecord {
    let records = sink.wait_for(n).await;
    assert_eq!(records.len(), n, "{records:?}");
    records[n - 1].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_ocsp_examples_against_the_openssl_responder() {
    let f = OcspFixture::new();
    f.client("good");
    f.client("revoked");
    f.ca.revoke("revoked", "keyCompromise");
    // A certificate the responder's database does not know: `unknown`.
    let unknown =
        f.ca.issue_outside_database("stranger", "stranger", "0x7A7A7A");
    std::fs::write(
        f.dir.path().join("stranger.pem"),
        common::der_to_pem(&unknown),
    )
    .unwrap();
    std::fs::copy(f.ca.path("stranger.key"), f.dir.path().join("stranger.key")).unwrap();

    // Soft fail on Error/Unknown: the responder is down → Error → allowed.
    let sink = Arc::new(MemorySink::default());
    let addr = serve(f.edge(&fixture("seed003_ocsp_soft_fail.js"), None, &sink)).await;
    let down = f.curl(addr, "good").await;
    assert_eq!(
        down.json()["CloudFront-Viewer-Cert-Present"],
        "1",
        "{down:?}"
    );
    let r = last_record(&sink, 1).await;
    assert_eq!(r.connection_status, ConnectionStatus::Success);
    assert_eq!(custom_data(&r), "OCSP_SOFT_FAIL:InternalError");

    // The trusted-IP example: the responder is down → leaf status Error →
    // logged and denied.
    let sink = Arc::new(MemorySink::default());
    let addr = serve(f.edge(&fixture("seed003_ocsp_trusted_ip.js"), None, &sink)).await;
    f.curl(addr, "good").await.assert_refused();
    let r = last_record(&sink, 1).await;
    assert_eq!(
        r.connection_status,
        ConnectionStatus::Failed(ReasonCode::ConnectionFunctionDenied)
    );

    // Now the responder answers.
    let _responder = f.ca.start_responder(f.port, "ca");
    let sink = Arc::new(MemorySink::default());
    let addr = serve(f.edge(&fixture("seed003_ocsp_trusted_ip.js"), None, &sink)).await;
    let ok = f.curl(addr, "good").await;
    assert_eq!(ok.json()["CloudFront-Viewer-Cert-Present"], "1", "{ok:?}");
    assert_eq!(
        last_record(&sink, 1).await.connection_status,
        ConnectionStatus::Success
    );

    // Soft fail on `unknown` from the real responder.
    let sink = Arc::new(MemorySink::default());
    let addr = serve(f.edge(&fixture("seed003_ocsp_soft_fail.js"), None, &sink)).await;
    let stranger = f.curl(addr, "stranger").await;
    assert_eq!(
        stranger.json()["CloudFront-Viewer-Cert-Present"],
        "1",
        "{stranger:?}"
    );
    let r = last_record(&sink, 1).await;
    assert_eq!(custom_data(&r), "OCSP_SOFT_FAIL:undefined", "{r:?}");

    // KVS + OCSP: a serial in the KVS is denied first; a good one allowed.
    let kvs = f.dir.path().join("kvs.json");
    let serial = common::revocation::serial_of(&f.ca.cert_der("revoked"));
    let hex: String = serial.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(
        &kvs,
        format!("{{\"data\":[{{\"key\":\"{hex}\",\"value\":\"revoked\"}}]}}"),
    )
    .unwrap();
    let sink = Arc::new(MemorySink::default());
    let addr = serve(f.edge(&fixture("seed003_ocsp_kvs_grace.js"), Some(&kvs), &sink)).await;
    let ok = f.curl(addr, "good").await;
    assert_eq!(ok.json()["CloudFront-Viewer-Cert-Present"], "1", "{ok:?}");
    f.curl(addr, "revoked").await.assert_refused();
    let records = sink.wait_for(2).await;
    assert_eq!(records[0].connection_status, ConnectionStatus::Success);
    assert_eq!(
        records[1].connection_status,
        ConnectionStatus::Failed(ReasonCode::ConnectionFunctionDenied)
    );
    assert!(
        custom_data(&records[1]).starts_with("KVS_REVOKED:"),
        "{:?}",
        records[1]
    );

    // An OCSP-revoked certificate: the pipeline refuses it before any
    // policy runs, so seed 003's functions meet the real responder's
    // `revoked` answer through the policy API. This crate (like seed 003's
    // trusted-IP example) reports a revoked chain as chainValidity
    // "Invalid"; the grace-period example only acts on "Valid" + "Revoked",
    // so it falls through to its final allow() — a hazard of that example,
    // stated in the README.
    let checker = Arc::new(
        edge_mtls::RevocationChecker::builder()
            .source_with_policy(
                Arc::new(
                    edge_mtls::OcspSource::builder(common::provider())
                        .build()
                        .expect("ocsp"),
                ),
                FailurePolicy::SoftFail,
            )
            .build()
            .expect("checker"),
    );
    let store = common::trust_store(&f.ca.pem());
    let verifier = common::revocation::revocation_verifier(store, checker, |b| b);
    let revoked = f.ca.cert_der("revoked");
    let stage2 = verifier
        .check_connection(&[revoked.clone().into()], rustls_pki_types::UnixTime::now())
        .await
        .expect("validates")
        .expect("revocation configured");
    let status = stage2.status().clone();
    assert_eq!(
        status.certificates.leaf.status,
        edge_mtls::CertStatusKind::Revoked
    );
    assert_eq!(status.chain_validity, edge_mtls::ChainValidity::Invalid);
    let info = Arc::new(edge_mtls::ClientCertInfo::from_der(&revoked).unwrap());
    let connection = |ip: &str| {
        Connection::without_certificate(ip.parse().unwrap(), "js-ocsp", "c1")
            .with_chain(info.clone(), &[] as &[&[u8]])
            .with_revocation_status(status.clone())
    };
    let load = |file: &str| {
        JsFunction::load(&fixture(file), JsLimits::default())
            .expect("loads")
            .with_kvs(Arc::new(
                edge_mtls::MemoryKeyValueStore::for_serial_numbers(),
            ))
    };
    // Trusted-IP example: "Invalid" from an untrusted address is denied (the
    // seed's "[IP_ADDRESS]" placeholder matches no address).
    let verdict = load("seed003_ocsp_trusted_ip.js")
        .evaluate(&connection("192.0.2.9"))
        .await
        .expect("runs");
    assert_eq!(verdict.decision, Some(Decision::Deny));
    // Soft-fail example: "Invalid" is denied.
    let verdict = load("seed003_ocsp_soft_fail.js")
        .evaluate(&connection("192.0.2.9"))
        .await
        .expect("runs");
    assert_eq!(verdict.decision, Some(Decision::Deny));
    // Grace-period example: neither branch matches; its last line allows.
    for ip in ["10.0.3.4", "192.0.2.9"] {
        let verdict = load("seed003_ocsp_kvs_grace.js")
            .evaluate(&connection(ip))
            .await
            .expect("runs");
        assert_eq!(
            (verdict.decision, verdict.custom_data),
            (Some(Decision::Allow), None),
            "{ip}"
        );
    }
}
