//! The connection pipeline end to end: real TLS over 127.0.0.1, the real
//! `curl` binary, stage 2 and the connection policy, one log record per
//! connection attempt with the right reason code.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{curl, provider, validator, verifier, CaKind, LeafOptions, Pki};
use edge_mtls::internal::json_line;
use edge_mtls::{AcceptError, MtlsAcceptor};
use edge_mtls::{CertPosition, ReasonCode, Rejection, ValidationError, ValidationMode};
use edge_mtls::{Connection, ConnectionPolicy, Matcher, NamePattern, PolicyError, Rule, Verdict};
use edge_mtls::{ConnectionLogRecord, ConnectionLogSink, ConnectionStatus};
use edge_mtls::{HeaderBuilder, HeaderProfile};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Collects records in memory.
#[derive(Debug, Default)]
struct MemorySink(Mutex<Vec<ConnectionLogRecord>>);

impl ConnectionLogSink for MemorySink {
    fn submit(&self, record: ConnectionLogRecord) {
        self.0.lock().expect("sink lock").push(record);
    }
}

impl MemorySink {
    fn records(&self) -> Vec<ConnectionLogRecord> {
        self.0.lock().expect("sink lock").clone()
    }
}

/// A policy that panics, to show the server survives it.
#[derive(Debug)]
struct Panics;

#[async_trait::async_trait]
impl ConnectionPolicy for Panics {
    async fn evaluate(&self, _: &Connection) -> Result<Verdict, PolicyError> {
        panic!("policy bug")
    }
}

struct Server {
    port: u16,
    sink: Arc<MemorySink>,
    task: tokio::task::JoinHandle<Vec<Result<String, AcceptError>>>,
}

/// Serves `connections` connections through the acceptor; each accepted one
/// gets an HTTP answer with the CloudFront headers it would forward.
async fn serve(
    pki: &Pki,
    mode: ValidationMode,
    policy: Option<Arc<dyn ConnectionPolicy>>,
    timeout: Duration,
    connections: usize,
) -> Server {
    let verifier = Arc::new(verifier(validator(pki.root_store(), |b| b), mode));
    let config = server_config_for(verifier.clone());
    let sink = Arc::new(MemorySink::default());
    let headers = HeaderBuilder::builder()
        .profile(HeaderProfile::CloudFront)
        .build()
        .expect("headers");
    let mut builder = MtlsAcceptor::builder(config, verifier, provider().secure_random)
        .headers(Arc::new(headers))
        .log(sink.clone())
        .distribution_id("test-listener")
        .handshake_timeout(timeout);
    if let Some(p) = policy {
        builder = builder.policy(p);
    }
    let acceptor = builder.build().expect("acceptor");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let mut handles = Vec::new();
        for _ in 0..connections {
            let Ok(Ok((tcp, peer))) =
                tokio::time::timeout(Duration::from_secs(20), listener.accept()).await
            else {
                break;
            };
            let acceptor = acceptor.clone();
            let local = tcp.local_addr().ok();
            handles.push(tokio::spawn(async move {
                match acceptor.accept(tcp, peer, local).await {
                    Ok(mut conn) => {
                        let mut buf = vec![0u8; 4096];
                        let _ = conn.stream.read(&mut buf).await;
                        let mut map = http::HeaderMap::new();
                        conn.info.headers.apply(&mut map);
                        let body = map
                            .get("cloudfront-viewer-cert-present")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-")
                            .to_string();
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = conn.stream.write_all(response.as_bytes()).await;
                        let _ = conn.stream.shutdown().await;
                        Ok(body)
                    }
                    Err(e) => Err(e),
                }
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("connection task"));
        }
        out
    });
    Server { port, sink, task }
}

fn server_config_for(verifier: Arc<edge_mtls::MtlsClientVerifier>) -> Arc<rustls::ServerConfig> {
    let server = common::server_identity();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(server.chain.clone(), server.key())
            .expect("server config"),
    )
}

async fn finish(server: Server) -> (Vec<Result<String, AcceptError>>, Vec<ConnectionLogRecord>) {
    let outcomes = server.task.await.expect("server");
    (outcomes, server.sink.records())
}

fn write_client(dir: &std::path::Path, leaf: &common::Leaf) -> [&'static str; 4] {
    std::fs::write(dir.join("client.pem"), leaf.chain_pem()).expect("chain");
    std::fs::write(dir.join("client.key"), leaf.key_pem()).expect("key");
    ["--cert", "client.pem", "--key", "client.key"]
}

#[tokio::test]
async fn valid_missing_and_expired_certificates_are_logged_with_their_reason() {
    let pki = Pki::new(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(
        &pki,
        ValidationMode::Required,
        None,
        Duration::from_secs(10),
        3,
    )
    .await;

    let valid = pki.client("valid.example.com", &LeafOptions::default());
    let run = curl(dir.path(), server.port, &write_client(dir.path(), &valid)).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "1");

    let run = curl(dir.path(), server.port, &[]).await;
    assert!(matches!(run.code, Some(16 | 35 | 56)), "{run:?}");

    let expired = pki.client(
        "expired.example.com",
        &LeafOptions {
            serial: Some(vec![0x8a, 0x01, 0x02]),
            ..LeafOptions::expired()
        },
    );
    let run = curl(dir.path(), server.port, &write_client(dir.path(), &expired)).await;
    assert!(matches!(run.code, Some(16 | 35 | 56)), "{run:?}");

    let (outcomes, records) = finish(server).await;
    assert_eq!(records.len(), 3, "one record per connection attempt");
    let statuses: Vec<ConnectionStatus> = records.iter().map(|r| r.connection_status).collect();
    assert!(statuses.contains(&ConnectionStatus::Success));
    assert!(statuses.contains(&ConnectionStatus::Failed(ReasonCode::ClientCertMissing)));
    assert!(statuses.contains(&ConnectionStatus::Failed(ReasonCode::ClientCertExpired)));
    let ok = records
        .iter()
        .find(|r| r.connection_status == ConnectionStatus::Success)
        .expect("success record");
    assert_eq!(ok.connection_id.len(), 56);
    assert_eq!(ok.tls_protocol.as_deref(), Some("TLSv1.3"));
    assert_eq!(ok.distribution_id, "test-listener");
    assert!(ok
        .client_leaf_cert_subject
        .as_deref()
        .is_some_and(|s| s.contains("CN=valid.example.com")));
    assert_eq!(ok.connection_status_detail, None, "{ok:?}");

    // No certificate: nothing to name, the TLS error says what happened.
    let missing = record_with(&records, ReasonCode::ClientCertMissing);
    assert_eq!(missing.client_leaf_cert_serial_number, None, "{missing:?}");
    assert_eq!(missing.client_leaf_cert_subject, None, "{missing:?}");
    assert_eq!(missing.client_leaf_cert_sha256, None, "{missing:?}");

    // Refused inside the handshake: the log names the presented leaf and
    // the check it failed.
    let refused = record_with(&records, ReasonCode::ClientCertExpired);
    assert_eq!(
        refused.client_leaf_cert_serial_number.as_deref(),
        Some("00:8a:01:02"),
        "{refused:?}"
    );
    assert_eq!(
        refused.client_leaf_cert_subject.as_deref(),
        Some("O=edge-mtls tests, CN=expired.example.com")
    );
    assert!(refused
        .client_leaf_cert_issuer
        .as_deref()
        .is_some_and(|s| s.contains("CN=edge-mtls test intermediate CA ")));
    assert!(refused
        .client_leaf_cert_validity
        .as_deref()
        .is_some_and(|s| s.starts_with("NotBefore=")));
    assert_eq!(
        refused.client_leaf_cert_sha256.as_deref(),
        Some(sha256_hex(expired.der()).as_str())
    );
    let detail = refused.connection_status_detail.as_deref().unwrap_or("");
    assert!(
        detail.starts_with(
            "leaf certificate (CN=expired.example.com,O=edge-mtls tests): expired at "
        ),
        "{detail:?}"
    );
    let mut line = String::new();
    json_line(&mut line, refused);
    let json: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
    assert_eq!(json["clientLeafCertSerialNumber"], "00:8a:01:02");
    assert_eq!(json["connectionStatusDetail"], detail);

    // The application gets the typed reason.
    let error = error_with(&outcomes, ReasonCode::ClientCertExpired);
    assert!(
        matches!(
            error,
            AcceptError::Handshake {
                rejection: Some(Rejection::Validation(ValidationError::Expired {
                    position: CertPosition::Leaf,
                    ..
                })),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("TLS handshake failed (ClientCertExpired): leaf certificate: expired at "),
        "{error}"
    );
    let missing = error_with(&outcomes, ReasonCode::ClientCertMissing);
    assert!(
        matches!(
            missing,
            AcceptError::Handshake {
                rejection: None,
                ..
            }
        ),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_chain_refused_for_its_intermediate_names_the_intermediate() {
    // The leaf's issuer has basicConstraints cA=FALSE.
    let pki = Pki::with_kinds(&[CaKind::NotCa]);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(
        &pki,
        ValidationMode::Required,
        None,
        Duration::from_secs(10),
        1,
    )
    .await;
    let leaf = pki.client(
        "leaf.example.com",
        &LeafOptions {
            serial: Some(vec![0x42]),
            ..LeafOptions::default()
        },
    );
    let run = curl(dir.path(), server.port, &write_client(dir.path(), &leaf)).await;
    assert!(matches!(run.code, Some(16 | 35 | 56)), "{run:?}");
    let (outcomes, records) = finish(server).await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert!(
        matches!(record.connection_status, ConnectionStatus::Failed(_)),
        "{record:?}"
    );
    // The leaf is named even though the intermediate failed.
    assert_eq!(record.client_leaf_cert_serial_number.as_deref(), Some("42"));
    assert_eq!(
        record.client_leaf_cert_sha256.as_deref(),
        Some(sha256_hex(leaf.der()).as_str())
    );
    let detail = record.connection_status_detail.as_deref().unwrap_or("");
    assert!(
        detail.starts_with("intermediate certificate #0 (CN=edge-mtls test intermediate CA "),
        "{detail:?}"
    );
    assert!(
        detail.ends_with(".1,O=edge-mtls tests): used as an issuer but is not a CA certificate"),
        "{detail:?}"
    );
    assert!(
        matches!(
            outcomes.as_slice(),
            [Err(AcceptError::Handshake {
                rejection: Some(Rejection::Validation(ValidationError::IssuerNotCa {
                    position: CertPosition::Intermediate(0)
                })),
                ..
            })]
        ),
        "{outcomes:?}"
    );
}

/// The one record with `Failed:<reason>`.
fn record_with(records: &[ConnectionLogRecord], reason: ReasonCode) -> &ConnectionLogRecord {
    let mut matching = records
        .iter()
        .filter(|r| r.connection_status == ConnectionStatus::Failed(reason));
    let record = matching
        .next()
        .unwrap_or_else(|| panic!("no {reason:?} record in {records:?}"));
    assert!(matching.next().is_none(), "two {reason:?} records");
    record
}

fn sha256_hex(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_policy_denial_and_a_policy_panic_are_logged_and_the_server_keeps_serving() {
    let pki = Pki::new(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let deny_admins: Arc<dyn ConnectionPolicy> = Arc::new(edge_mtls::FirstMatch(vec![
        Arc::new(
            Rule::deny_if(Matcher::DnsSan(NamePattern::Suffix(
                "admin.example.com".into(),
            )))
            .with_custom_data("admin SAN refused"),
        ),
        Arc::new(edge_mtls::AllowAll),
    ]));
    let server = serve(
        &pki,
        ValidationMode::Required,
        Some(deny_admins),
        Duration::from_secs(10),
        2,
    )
    .await;
    let admin = pki.client(
        "ops",
        &LeafOptions {
            dns_names: vec!["ops.admin.example.com".into()],
            ..LeafOptions::default()
        },
    );
    let run = curl(dir.path(), server.port, &write_client(dir.path(), &admin)).await;
    assert_ne!(run.code, Some(0), "{run:?}");
    let user = pki.client("user.example.com", &LeafOptions::default());
    let run = curl(dir.path(), server.port, &write_client(dir.path(), &user)).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let (_, records) = finish(server).await;
    let denied = records
        .iter()
        .find(|r| {
            r.connection_status == ConnectionStatus::Failed(ReasonCode::ConnectionFunctionDenied)
        })
        .expect("a denied record");
    assert_eq!(
        denied.connection_log_custom_data.as_deref(),
        Some("admin SAN refused")
    );
    assert_eq!(
        denied.to_owned().connection_status.to_string(),
        "Failed:ConnectionFunctionDenied"
    );
    // Refused after the handshake: the leaf and the refusal's detail.
    assert!(denied
        .client_leaf_cert_subject
        .as_deref()
        .is_some_and(|s| s.ends_with("CN=ops")));
    assert_eq!(
        denied.connection_status_detail.as_deref(),
        Some("denied by the connection policy")
    );

    let panicking: Arc<dyn ConnectionPolicy> = Arc::new(Panics);
    let server = serve(
        &pki,
        ValidationMode::Required,
        Some(panicking),
        Duration::from_secs(10),
        2,
    )
    .await;
    for _ in 0..2 {
        let run = curl(dir.path(), server.port, &write_client(dir.path(), &user)).await;
        assert_ne!(run.code, Some(0), "{run:?}");
    }
    let (outcomes, records) = finish(server).await;
    assert_eq!(
        outcomes.len(),
        2,
        "the server kept accepting after the panic"
    );
    assert!(records
        .iter()
        .all(|r| r.connection_status
            == ConnectionStatus::Failed(ReasonCode::ConnectionFunctionError)));
    assert!(
        records.iter().all(|r| r
            .connection_status_detail
            .as_deref()
            .is_some_and(|d| d.starts_with("connection policy panicked: policy bug"))),
        "{records:?}"
    );
    // The application gets the typed cause, not only the text.
    for outcome in &outcomes {
        match outcome {
            Err(AcceptError::Refused {
                cause:
                    edge_mtls::RefusalCause::Policy {
                        reason: ReasonCode::ConnectionFunctionError,
                        detail: Some(detail),
                    },
                ..
            }) => assert!(detail.starts_with("connection policy panicked")),
            other => panic!("expected a typed policy refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn optional_and_passthrough_modes_admit_clients_without_certificates() {
    let pki = Pki::new(0);
    let dir = tempfile::tempdir().expect("tempdir");
    for mode in [ValidationMode::Optional, ValidationMode::Passthrough] {
        let server = serve(&pki, mode, None, Duration::from_secs(10), 1).await;
        let run = curl(dir.path(), server.port, &[]).await;
        assert_eq!(run.code, Some(0), "{mode:?}: {}", run.stderr);
        assert_eq!(
            run.stdout, "0",
            "{mode:?}: CloudFront-Viewer-Cert-Present: 0"
        );
        let (_, records) = finish(server).await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].connection_status, ConnectionStatus::Success);
        assert_eq!(records[0].connection_status_detail, None);
    }
}

#[tokio::test]
async fn a_silent_client_is_cut_off_at_the_handshake_timeout() {
    let pki = Pki::new(0);
    let server = serve(
        &pki,
        ValidationMode::Required,
        None,
        Duration::from_millis(300),
        1,
    )
    .await;
    // Opens TCP and never sends a ClientHello.
    let silent = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .expect("connect");
    let (outcomes, records) = finish(server).await;
    drop(silent);
    assert!(
        matches!(outcomes.as_slice(), [Err(AcceptError::Timeout)]),
        "{outcomes:?}"
    );
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].connection_status,
        ConnectionStatus::Failed(ReasonCode::TcpTimeout)
    );
    assert_eq!(
        records[0].connection_status_detail.as_deref(),
        Some("the TLS handshake did not finish within 300 ms")
    );
    assert!(matches!(
        AcceptError::Timeout.reason_code(),
        ReasonCode::TcpTimeout
    ));
}

/// The accept error with `reason` among `outcomes`.
fn error_with<T>(outcomes: &[Result<T, AcceptError>], reason: ReasonCode) -> &AcceptError {
    outcomes
        .iter()
        .find_map(|o| match o {
            Err(e) if e.reason_code() == reason => Some(e),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no accept error with {reason}"))
}

/// Failures before any certificate is seen get codes of their own (beyond
/// CloudFront's set): plain HTTP on the TLS port is a protocol error, a
/// TLS 1.1-only client a protocol mismatch — not `UnmappedConnectionError`.
#[tokio::test]
async fn protocol_failures_are_logged_with_their_own_reason() {
    let pki = Pki::new(1);
    let server = serve(
        &pki,
        ValidationMode::Required,
        None,
        Duration::from_secs(10),
        2,
    )
    .await;
    let addr = format!("127.0.0.1:{}", server.port);

    // Plain HTTP where a ClientHello is expected.
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut sink)).await;
    drop(tcp);

    // A client offering TLS 1.1 only (OpenSSL allows it at security level 0).
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tokio::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr,
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run openssl s_client");
    assert!(!output.status.success(), "a TLS 1.1 handshake succeeded");

    let (_, records) = finish(server).await;
    let mut codes: Vec<String> = records
        .iter()
        .map(|r| r.connection_status.to_string())
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        ["Failed:TlsProtocolError", "Failed:TlsProtocolMismatch"],
        "{records:#?}"
    );
    for record in &records {
        assert!(record.client_leaf_cert_serial_number.is_none());
        assert!(
            record
                .connection_status_detail
                .as_deref()
                .is_some_and(|d| !d.is_empty()),
            "{record:?}"
        );
    }
}

/// The builder route refuses the SNI mistakes the configuration route
/// refuses: a pattern that is not a host name or a one-label wildcard, and
/// the same pattern twice.
#[test]
fn the_acceptor_builder_checks_sni_patterns() {
    let pki = Pki::new(1);
    let verifier = Arc::new(verifier(
        validator(pki.root_store(), |b| b),
        ValidationMode::Required,
    ));
    let site = || edge_mtls::Site::new(server_config_for(verifier.clone()), verifier.clone());
    let builder = || MtlsAcceptor::builder_for(site(), provider().secure_random);
    for bad in [
        "",
        "*.",
        "a..b",
        "*.*.example.com",
        "exa mple.com",
        "api.example.com:443",
    ] {
        let e = builder().sni(bad, site()).build().unwrap_err();
        assert!(
            matches!(e, edge_mtls::AcceptorBuildError::InvalidSniPattern { .. }),
            "{bad:?}: {e}"
        );
    }
    let e = builder()
        .sni("API.example.com", site())
        .sni("api.example.com", site())
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "SNI pattern `api.example.com` is given twice"
    );
    builder()
        .sni("api.example.com", site())
        .sni("*.example.com", site())
        .build()
        .expect("two good patterns");
}
