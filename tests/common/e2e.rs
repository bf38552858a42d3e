//! The end-to-end matrix every HTTP integration (axum, actix-web) passes: the
//! demo PKI of the examples, certificates made by the seed's exact OpenSSL
//! recipe, the real `curl` binary exactly as the seeds run it, and the
//! connection log.
//!
//! A test supplies `launch`: given an [`Edge`], start a server on
//! 127.0.0.1:0 that answers every request with its headers as a JSON object
//! (the quickstart's echo) and return its address.

#![allow(dead_code)]

#[path = "../../examples/common/demo_pki.rs"]
pub mod demo_pki;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edge_mtls::DenyListSettings;
use edge_mtls::{
    AllowAll, Connection, ConnectionPolicy, FirstMatch, Matcher, NamePattern, PolicyError, Rule,
    Verdict,
};
use edge_mtls::{ConnectionLogRecord, ConnectionLogSink, ConnectionStatus};
use edge_mtls::{Edge, HeaderProfile, MtlsConfig, MtlsConfigBuilder, ReasonCode, ValidationMode};
use serde_json::Value;

use super::{openssl, seed_pki};

/// Serves `edge` on 127.0.0.1 until the test ends: accepted connections
/// read a 5-byte line and answer `ok`.
pub async fn serve_echo_ok(edge: Edge) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                continue;
            };
            let edge = edge.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = edge.acceptor().accept_tcp(tcp, peer).await {
                    let mut line = [0u8; 5];
                    let _ = tls.read_exact(&mut line).await;
                    let _ = tls.write_all(b"ok").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

/// Collects connection-log records in memory.
#[derive(Debug, Default)]
pub struct MemorySink(Mutex<Vec<ConnectionLogRecord>>);

impl ConnectionLogSink for MemorySink {
    fn submit(&self, record: ConnectionLogRecord) {
        self.0.lock().expect("sink lock").push(record);
    }
}

impl MemorySink {
    pub fn records(&self) -> Vec<ConnectionLogRecord> {
        self.0.lock().expect("sink lock").clone()
    }

    /// Waits until `n` records arrived (the record of a refused connection
    /// is written as the server closes it, possibly after curl returned).
    pub async fn wait_for(&self, n: usize) -> Vec<ConnectionLogRecord> {
        for _ in 0..200 {
            let records = self.records();
            if records.len() >= n {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.records()
    }
}

/// A policy that panics for one client (its SAN names `my-client`) and
/// allows the others, to show the server survives it.
#[derive(Debug)]
pub struct PanicsForMyClient;

#[async_trait::async_trait]
impl ConnectionPolicy for PanicsForMyClient {
    async fn evaluate(&self, connection: &Connection) -> Result<Verdict, PolicyError> {
        let san = connection
            .client_certificate()
            .as_ref()
            .map(|c| c.certificates.leaf.san.as_str())
            .unwrap_or_default();
        if san.contains("my-client") {
            panic!("policy bug")
        }
        Ok(Verdict::allow())
    }
}

/// The demo PKI and the seed recipe's files in one temporary directory.
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub pki: demo_pki::DemoPki,
    /// Where the seed's `Root_CA.pem`, `my_client.pem` and `my_client.key` are.
    pub seed: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pki, created) = demo_pki::ensure(&dir.path().join("demo-pki")).expect("demo PKI");
        assert!(created);
        let seed = dir.path().join("seed");
        std::fs::create_dir_all(&seed).expect("seed dir");
        seed_pki().write_to(&seed, &["Root_CA.pem", "my_client.pem", "my_client.key"]);
        Self {
            _dir: dir,
            pki,
            seed,
        }
    }

    /// A configuration as the quickstart's: the demo server certificate and
    /// trust store, the demo deny list, CloudFront + RFC 9440 headers, logs
    /// into `sink`.
    pub fn builder(&self, mode: ValidationMode, sink: &Arc<MemorySink>) -> MtlsConfigBuilder {
        let mut b = MtlsConfig::builder()
            .distribution_id("e2e")
            .mode(mode)
            .server_files(self.pki.path("server.pem"), self.pki.path("server.key"))
            .trust_store_file(self.pki.trust_store())
            .header_profiles([HeaderProfile::CloudFront, HeaderProfile::Rfc9440])
            .log_sink(sink.clone());
        b.settings().revocation.deny_list = Some(DenyListSettings {
            kvs_json: vec![self.pki.revoked_serials()],
            ..DenyListSettings::default()
        });
        b
    }

    /// `openssl x509 -noout <what> -nameopt RFC2253` of a PEM file, without
    /// the `subject=` style prefix.
    pub fn openssl_field(&self, dir: &Path, file: &str, what: &str) -> String {
        let out = openssl(
            dir,
            &["x509", "-in", file, "-noout", what, "-nameopt", "RFC2253"],
        );
        out.trim()
            .split_once('=')
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    }
}

/// What one curl run did.
#[derive(Debug)]
pub struct Curl {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Curl {
    /// The echoed headers (panics with curl's output when not JSON).
    pub fn json(&self) -> Value {
        assert_eq!(self.code, Some(0), "curl failed: {self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// curl could not complete the exchange: the handshake failed (35), TLS
    /// 1.3's certificate_required alert (16 in some builds), a refusal seen
    /// on the first read (56: the alert, or "Connection reset by peer" after a
    /// stage 2 denial) or while sending the request (55).
    pub fn assert_refused(&self) {
        assert!(
            matches!(self.code, Some(16 | 35 | 55 | 56)),
            "expected curl to fail with 16, 35, 55 or 56: {self:?}"
        );
    }

    /// What curl does without a certificate in Required mode: 16, 35 or 56.
    pub fn assert_no_certificate_refused(&self) {
        assert!(
            matches!(self.code, Some(16 | 35 | 56)),
            "expected curl to fail with 16, 35 or 56: {self:?}"
        );
    }
}

/// Runs the real curl as the seeds do (`curl --key K --cert C https://…/`),
/// from `dir`, trusting the demo root for the server certificate.
pub async fn curl(fx: &Fixture, dir: &Path, addr: SocketAddr, args: &[&str]) -> Curl {
    let root = fx.pki.root();
    let output = tokio::process::Command::new("curl")
        .current_dir(dir)
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&root)
        .args(args)
        .arg(format!("https://{addr}/"))
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the curl binary");
    Curl {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// curl as the seeds run it: `curl --key NAME.key --cert NAME.pem https://…/`.
pub async fn as_client(fx: &Fixture, dir: &Path, addr: SocketAddr, name: &str) -> Curl {
    let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
    curl(fx, dir, addr, &["--key", &key, "--cert", &cert]).await
}

/// The echoed `CloudFront-Viewer-Cert-Present` is `expected`.
#[track_caller]
pub fn assert_present(json: &Value, expected: &str, label: &str) {
    assert_eq!(
        header(json, "CloudFront-Viewer-Cert-Present"),
        Some(expected),
        "{label}: {json}"
    );
}

/// A header of the echoed JSON, by case-insensitive name.
pub fn header<'v>(json: &'v Value, name: &str) -> Option<&'v str> {
    json.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

fn cloudfront_serial(openssl_serial: &str) -> String {
    // openssl prints the serial's hex without the DER sign byte; CloudFront
    // keeps it: add 00 when the top bit is set, pad to whole bytes.
    let mut hex = openssl_serial.to_ascii_lowercase();
    if hex.len() % 2 == 1 {
        hex.insert(0, '0');
    }
    if u8::from_str_radix(&hex[..2], 16).expect("hex") >= 0x80 {
        hex.insert_str(0, "00");
    }
    hex.as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect::<Vec<_>>()
        .join(":")
}

fn assert_status(record: &ConnectionLogRecord, expected: ConnectionStatus) {
    assert_eq!(record.connection_status, expected, "{record:?}");
}

/// The whole matrix; `label` names the integration in failure messages.
pub async fn run_matrix<F, Fut>(label: &str, launch: F)
where
    F: Fn(Edge) -> Fut,
    Fut: Future<Output = SocketAddr>,
{
    let fx = Fixture::new();
    let demo = fx.pki.dir.clone();
    let seed = fx.seed.clone();

    // Required mode, the quickstart's configuration.
    let sink = Arc::new(MemorySink::default());
    let addr = launch(
        fx.builder(ValidationMode::Required, &sink)
            .build()
            .expect("edge"),
    )
    .await;
    let ok = as_client(&fx, &demo, addr, "my_client").await;
    let json = ok.json();
    assert_present(&json, "1", label);
    let serial = fx.openssl_field(&demo, "my_client.pem", "-serial");
    assert_eq!(
        header(&json, "CloudFront-Viewer-Cert-Serial-Number"),
        Some(cloudfront_serial(&serial).as_str()),
        "{label}"
    );
    assert_eq!(
        header(&json, "CloudFront-Viewer-Cert-Subject"),
        Some(
            fx.openssl_field(&demo, "my_client.pem", "-subject")
                .as_str()
        ),
        "{label}"
    );
    assert_eq!(
        header(&json, "CloudFront-Viewer-Cert-Issuer"),
        Some(fx.openssl_field(&demo, "my_client.pem", "-issuer").as_str()),
        "{label}"
    );
    curl(&fx, &demo, addr, &[])
        .await
        .assert_no_certificate_refused();
    as_client(&fx, &demo, addr, "revoked_client")
        .await
        .assert_refused();
    as_client(&fx, &demo, addr, "expired_client")
        .await
        .assert_refused();
    let records = sink.wait_for(4).await;
    assert_eq!(
        records.len(),
        4,
        "{label}: one record per connection: {records:?}"
    );
    assert_status(&records[0], ConnectionStatus::Success);
    let failed: Vec<_> = records[1..].iter().map(|r| r.connection_status).collect();
    for reason in [
        ReasonCode::ClientCertMissing,
        ReasonCode::ClientCertRevoked,
        ReasonCode::ClientCertExpired,
    ] {
        assert!(
            failed.contains(&ConnectionStatus::Failed(reason)),
            "{label}: no {reason:?} in {failed:?}"
        );
    }
    // Refused inside the handshake (stage 1, the deny list): the log names
    // the presented leaf and why it was refused.
    let revoked = records
        .iter()
        .find(|r| r.connection_status == ConnectionStatus::Failed(ReasonCode::ClientCertRevoked))
        .unwrap_or_else(|| panic!("{label}: {records:?}"));
    let serial = cloudfront_serial(&fx.openssl_field(&demo, "revoked_client.pem", "-serial"));
    assert_eq!(
        revoked.client_leaf_cert_serial_number.as_deref(),
        Some(serial.as_str()),
        "{label}"
    );
    let subject = fx.openssl_field(&demo, "revoked_client.pem", "-subject");
    assert_eq!(
        revoked.connection_status_detail.as_deref(),
        Some(
            format!(
                "leaf certificate ({subject}) (serial {serial}) is revoked according to the \
                 deny list (KVS) (reason unspecified)"
            )
            .as_str()
        ),
        "{label}"
    );

    // ignore_expiration: the expired certificate is accepted.
    let sink = Arc::new(MemorySink::default());
    let edge = fx
        .builder(ValidationMode::Required, &sink)
        .ignore_expiration(true)
        .build()
        .expect("edge");
    let addr = launch(edge).await;
    let json = as_client(&fx, &demo, addr, "expired_client").await.json();
    assert_present(&json, "1", label);

    // The seed's OpenSSL recipe: Root_CA.pem as the trust store, curl with
    // exactly the seed's arguments.
    let sink = Arc::new(MemorySink::default());
    let mut b = fx.builder(ValidationMode::Required, &sink);
    b.settings().trust_store.files = vec![seed.join("Root_CA.pem")];
    let addr = launch(b.build().expect("edge")).await;
    let json = as_client(&fx, &seed, addr, "my_client").await.json();
    assert_present(&json, "1", label);
    assert_eq!(
        header(&json, "CloudFront-Viewer-Cert-Serial-Number"),
        Some("01"),
        "{label}: -set_serial 01"
    );
    assert_eq!(
        header(&json, "CloudFront-Viewer-Cert-Subject"),
        Some(
            fx.openssl_field(&seed, "my_client.pem", "-subject")
                .as_str()
        ),
        "{label}"
    );
    curl(&fx, &seed, addr, &[])
        .await
        .assert_no_certificate_refused();

    // Optional: no certificate is served with Present: 0; an untrusted or
    // expired one is refused.
    let sink = Arc::new(MemorySink::default());
    let addr = launch(
        fx.builder(ValidationMode::Optional, &sink)
            .build()
            .expect("edge"),
    )
    .await;
    let json = curl(&fx, &demo, addr, &[]).await.json();
    assert_present(&json, "0", label);
    assert_eq!(
        header(&json, "CloudFront-Viewer-Cert-Serial-Number"),
        None,
        "{label}"
    );
    as_client(&fx, &seed, addr, "my_client")
        .await
        .assert_refused();
    as_client(&fx, &demo, addr, "expired_client")
        .await
        .assert_refused();
    let records = sink.wait_for(3).await;
    assert_status(&records[0], ConnectionStatus::Success);
    assert!(
        records[1..]
            .iter()
            .any(|r| r.connection_status
                == ConnectionStatus::Failed(ReasonCode::ClientCertUntrusted)),
        "{label}: {records:?}"
    );

    // Passthrough: any certificate (here one the trust store does not know)
    // is served with RFC 9440 headers; no certificate is served too.
    let sink = Arc::new(MemorySink::default());
    let addr = launch(
        fx.builder(ValidationMode::Passthrough, &sink)
            .build()
            .expect("edge"),
    )
    .await;
    let json = as_client(&fx, &seed, addr, "my_client").await.json();
    let client_cert = header(&json, "Client-Cert").unwrap_or_else(|| panic!("{label}: {json}"));
    assert!(
        client_cert.starts_with(':') && client_cert.ends_with(':'),
        "{label}"
    );
    assert_eq!(
        header(&json, "CloudFront-Viewer-Cert-Present"),
        None,
        "{label}: unverified"
    );
    let json = curl(&fx, &demo, addr, &[]).await.json();
    assert_eq!(header(&json, "Client-Cert"), None, "{label}");

    // A Rust connection policy denying one SAN: logged with its custom data.
    let sink = Arc::new(MemorySink::default());
    let policy = FirstMatch(vec![
        Arc::new(
            Rule::deny_if(Matcher::DnsSan(NamePattern::Exact(
                "my-client.clients.demo.test".into(),
            )))
            .with_custom_data("denied: my-client"),
        ),
        Arc::new(AllowAll),
    ]);
    let edge = fx
        .builder(ValidationMode::Required, &sink)
        .ignore_expiration(true)
        .policy(Arc::new(policy))
        .build()
        .expect("edge");
    let addr = launch(edge).await;
    as_client(&fx, &demo, addr, "my_client")
        .await
        .assert_refused();
    let json = as_client(&fx, &demo, addr, "expired_client").await.json();
    assert_present(&json, "1", label);
    let records = sink.wait_for(2).await;
    let denied = records
        .iter()
        .find(|r| {
            r.connection_status == ConnectionStatus::Failed(ReasonCode::ConnectionFunctionDenied)
        })
        .unwrap_or_else(|| panic!("{label}: {records:?}"));
    assert_eq!(
        denied.connection_log_custom_data.as_deref(),
        Some("denied: my-client")
    );

    // A panicking policy: ConnectionFunctionError, and the server goes on
    // serving the next connections.
    let sink = Arc::new(MemorySink::default());
    let edge = fx
        .builder(ValidationMode::Required, &sink)
        .ignore_expiration(true)
        .policy(Arc::new(PanicsForMyClient))
        .build()
        .expect("edge");
    let addr = launch(edge).await;
    for _ in 0..3 {
        as_client(&fx, &demo, addr, "my_client")
            .await
            .assert_refused();
        let json = as_client(&fx, &demo, addr, "expired_client").await.json();
        assert_present(&json, "1", label);
    }
    let records = sink.wait_for(6).await;
    assert_eq!(records.len(), 6, "{label}: {records:?}");
    let errors = records
        .iter()
        .filter(|r| {
            r.connection_status == ConnectionStatus::Failed(ReasonCode::ConnectionFunctionError)
        })
        .count();
    let served = records
        .iter()
        .filter(|r| r.connection_status == ConnectionStatus::Success)
        .count();
    assert_eq!((errors, served), (3, 3), "{label}: {records:?}");
}
