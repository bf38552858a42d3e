//! Every reason code a client can cause, caused over real TLS on 127.0.0.1
//! against the whole pipeline (built through `MtlsConfig`), and read back
//! from the connection log. The codes no client can cause are listed with
//! the reason; a code added later must land in one list or the other.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::e2e::{serve_echo_ok, MemorySink};
use common::{
    client_config, connect, openssl, provider, self_signed_client, server_identity, Ca,
    LeafOptions, Pki,
};
use edge_mtls::{Connection, ConnectionPolicy, PolicyError, Verdict};
use edge_mtls::{Edge, MtlsConfig, ReasonCode, TrustStore, TrustStoreHandle};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose,
    NameConstraints,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Codes no client can cause on its own: they come from the revocation
/// infrastructure (a CRL or OCSP responder that fails; covered in
/// `revocation_crl.rs` and `revocation_ocsp.rs`), from the server itself, or
/// are the fallback no failure path reaches.
const NOT_CLIENT_CAUSED: [ReasonCode; 5] = [
    ReasonCode::ClientCertCrlProcessingError,
    ReasonCode::ClientCertOcspProcessingError,
    ReasonCode::Internal,
    ReasonCode::UnmappedConnectionError,
    // A revoked certificate the OCSP responder reports: covered over real
    // TLS with an `openssl ocsp` responder in `revocation_ocsp.rs`.
    ReasonCode::ClientCertOcspDenied,
];

/// Denies `denied.example`, fails for `broken.example`, allows the rest.
#[derive(Debug)]
struct ByName;

#[async_trait::async_trait]
impl ConnectionPolicy for ByName {
    async fn evaluate(&self, connection: &Connection) -> Result<Verdict, PolicyError> {
        let san = connection
            .client_certificate()
            .as_ref()
            .map(|c| c.certificates.leaf.san.clone())
            .unwrap_or_default();
        if san.contains("denied.example") {
            return Ok(Verdict::deny());
        }
        if san.contains("broken.example") {
            return Err(PolicyError::Failed(
                "the policy's lookup table is empty".into(),
            ));
        }
        Ok(Verdict::allow())
    }
}

fn edge(store: &str, sink: &Arc<MemorySink>, max_connections: usize, denied: &str) -> Edge {
    let server = server_identity();
    let config = MtlsConfig {
        max_connections,
        ..MtlsConfig::default()
    };
    config
        .into_builder()
        .crypto_provider(provider())
        .distribution_id("reason-codes")
        .server_identity(server.chain.clone(), server.key())
        .trust_store(TrustStoreHandle::new(
            TrustStore::from_pem(store.as_bytes()).expect("trust store"),
        ))
        .deny_serials([denied])
        .policy(Arc::new(ByName))
        .handshake_timeout(Duration::from_millis(800))
        .log_sink(sink.clone())
        .build()
        .expect("edge")
}

/// A CA whose name constraints permit `subtrees` DNS subtrees, each name of
/// the leaf below matching only the last one: checking it takes
/// `subtrees × names` comparisons.
fn name_constraint_bomb(root: &Ca, subtrees: usize, names: usize) -> common::Leaf {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "reason-codes constrained CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: (0..subtrees)
            .map(|i| GeneralSubtree::DnsName(format!("allowed-{i}.example")))
            .collect(),
        excluded_subtrees: Vec::new(),
    });
    let key = KeyPair::generate().expect("key");
    let cert = params
        .signed_by(&key, &root.issuer())
        .expect("constrained CA");
    let ca = Ca { params, key, cert };
    let options = LeafOptions {
        dns_names: (0..names)
            .map(|i| format!("n{i}.allowed-{}.example", subtrees - 1))
            .collect(),
        ..LeafOptions::default()
    };
    ca.issue_leaf("bomb", &options, &[ca.der().clone()])
}

/// A client with an RSA-1024 key, issued by `root` with the OpenSSL CLI;
/// returns the file names (certificate, key) in `dir`.
fn rsa1024_client(dir: &std::path::Path, root: &Ca) -> (String, String) {
    std::fs::write(dir.join("root.pem"), root.pem()).expect("root");
    std::fs::write(dir.join("root.key"), root.key.serialize_pem()).expect("root key");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-keyout",
            "weak.key",
            "-subj",
            "/CN=weak-key",
            "-out",
            "weak.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509", "-req", "-in", "weak.csr", "-CA", "root.pem", "-CAkey", "root.key", "-days",
            "30", "-out", "weak.pem",
        ],
    );
    ("weak.pem".into(), "weak.key".into())
}

/// `openssl s_client` against `addr` at security level 0 (weak keys and old
/// protocols allowed), run in `dir` with no input.
async fn s_client(addr: SocketAddr, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .args(["-cipher", "DEFAULT@SECLEVEL=0"])
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("openssl s_client")
}

/// The connection status of the record that arrives after `before` records.
async fn next_status(sink: &MemorySink, before: usize) -> String {
    let records = sink.wait_for(before + 1).await;
    assert_eq!(
        records.len(),
        before + 1,
        "expected exactly one new record: {records:#?}"
    );
    records[before].connection_status.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reason_code_a_client_can_cause_is_logged_as_such() {
    let pki = Pki::new(1);
    let deep = Pki::new(4); // leaf + 4 intermediates + root: depth 6 > 4
    let constrained = Pki::with_kinds(&[common::CaKind::PermittedDns("allowed.example")]);
    let bundle = [&pki, &deep, &constrained]
        .iter()
        .map(|p| p.root.pem())
        .collect::<String>();
    let sink = Arc::new(MemorySink::default());
    let revoked_serial = "0d:ea:d0";
    let addr = serve_echo_ok(edge(&bundle, &sink, 0, revoked_serial)).await;

    let leaf = |name: &str, options: LeafOptions| pki.client(name, &options);
    let named = |dns: &str| LeafOptions::dns(dns);
    let revoked = LeafOptions {
        serial: Some(vec![0x0d, 0xea, 0xd0]),
        ..LeafOptions::default()
    };
    let mut nine_copies = leaf("many intermediates", LeafOptions::default());
    let intermediate = nine_copies.chain[1].clone();
    nine_copies
        .chain
        .extend(std::iter::repeat_n(intermediate, 8));
    let oversized = {
        let options = LeafOptions {
            dns_names: (0..4_000)
                .map(|i| format!("name-{i}.oversized.example"))
                .collect(),
            ..LeafOptions::default()
        };
        pki.client("oversized", &options)
    };
    let bomb = name_constraint_bomb(&pki.root, 1_000, 1_000);

    // (what the client does, the logged code)
    let certificate_cases: Vec<(&str, Option<common::Leaf>, ReasonCode)> = vec![
        ("no certificate", None, ReasonCode::ClientCertMissing),
        (
            "4 intermediates (max_chain_depth 4)",
            Some(deep.client("deep", &LeafOptions::default())),
            ReasonCode::ClientCertMaxChainDepthExceeded,
        ),
        (
            "9 intermediates (a client may send 8)",
            Some(nine_copies),
            ReasonCode::ClientCertMaxSizeExceeded,
        ),
        (
            "a Certificate message over rustls' ceiling",
            Some(oversized),
            ReasonCode::ClientCertMaxSizeExceeded,
        ),
        (
            "an untrusted self-signed certificate",
            Some(self_signed_client("stranger")),
            ReasonCode::ClientCertUntrusted,
        ),
        (
            "not yet valid",
            Some(leaf("early", LeafOptions::not_yet_valid())),
            ReasonCode::ClientCertNotYetValid,
        ),
        (
            "expired",
            Some(leaf("late", LeafOptions::expired())),
            ReasonCode::ClientCertExpired,
        ),
        (
            "an unknown critical extension",
            Some(leaf("odd", LeafOptions::unknown_critical_extension())),
            ReasonCode::ClientCertInvalid,
        ),
        (
            "serverAuth only",
            Some(leaf("server", LeafOptions::server_auth_only())),
            ReasonCode::ClientCertIntentInvalid,
        ),
        (
            "a name outside the issuer's name constraints",
            Some(constrained.client("outside", &LeafOptions::dns("outside.example"))),
            ReasonCode::ClientCertRejected,
        ),
        (
            "a serial on the deny list",
            Some(leaf("revoked", revoked)),
            ReasonCode::ClientCertRevoked,
        ),
        (
            "denied by the connection policy",
            Some(leaf("denied", named("denied.example"))),
            ReasonCode::ConnectionFunctionDenied,
        ),
        (
            "the connection policy fails",
            Some(leaf("broken", named("broken.example"))),
            ReasonCode::ConnectionFunctionError,
        ),
        (
            "a name-constraint bomb",
            Some(bomb),
            ReasonCode::ClientCertValidationBudgetExceeded,
        ),
    ];

    let mut caused = Vec::new();
    for (what, client, expected) in certificate_cases {
        let before = sink.records().len();
        let outcome = connect(
            addr,
            client_config(client.as_ref().map(|l| l.identity()).as_ref()),
        )
        .await;
        assert!(
            !matches!(outcome, common::Outcome::Accepted { .. }),
            "{what}: accepted"
        );
        let status = next_status(&sink, before).await;
        assert_eq!(status, format!("Failed:{expected}"), "{what}");
        caused.push(expected);
    }

    // The control: a valid client is served.
    let before = sink.records().len();
    connect(
        addr,
        client_config(Some(&leaf("valid", LeafOptions::default()).identity())),
    )
    .await
    .expect_accepted();
    assert_eq!(next_status(&sink, before).await, "Success");

    // An RSA-1024 client key (OpenSSL, at security level 0).
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = rsa1024_client(dir.path(), &pki.root);
    let before = sink.records().len();
    let output = s_client(
        addr,
        dir.path(),
        &["-cert", &cert, "-key", &key, "-ign_eof"],
    )
    .await;
    let status = next_status(&sink, before).await;
    assert_eq!(
        status,
        "Failed:ClientCertTypeUnsupported",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    caused.push(ReasonCode::ClientCertTypeUnsupported);

    // Plain HTTP on the TLS port.
    let before = sink.records().len();
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut Vec::new())).await;
    assert_eq!(next_status(&sink, before).await, "Failed:TlsProtocolError");
    caused.push(ReasonCode::TlsProtocolError);

    // A TLS 1.1-only client.
    let before = sink.records().len();
    let output = s_client(addr, dir.path(), &["-tls1_1"]).await;
    assert!(!output.status.success(), "a TLS 1.1 handshake succeeded");
    assert_eq!(
        next_status(&sink, before).await,
        "Failed:TlsProtocolMismatch"
    );
    caused.push(ReasonCode::TlsProtocolMismatch);

    // Half a ClientHello, then a reset.
    let before = sink.records().len();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut tcp = tcp;
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    tcp.set_zero_linger().expect("linger");
    drop(tcp);
    assert_eq!(next_status(&sink, before).await, "Failed:TcpError");
    caused.push(ReasonCode::TcpError);

    // A client that sends nothing: the handshake timeout (800 ms).
    let before = sink.records().len();
    let silent = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(next_status(&sink, before).await, "Failed:TcpTimeout");
    drop(silent);
    caused.push(ReasonCode::TcpTimeout);

    // One connection more than max_connections.
    let limited_sink = Arc::new(MemorySink::default());
    let limited = serve_echo_ok(edge(&bundle, &limited_sink, 1, revoked_serial)).await;
    let holder = TcpStream::connect(limited).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let outcome = connect(
        limited,
        client_config(Some(&leaf("second", LeafOptions::default()).identity())),
    )
    .await;
    assert!(!matches!(outcome, common::Outcome::Accepted { .. }));
    let records = limited_sink.wait_for(1).await;
    assert_eq!(
        records[0].connection_status.to_string(),
        "Failed:ConnectionLimitExceeded",
        "{records:#?}"
    );
    assert!(records[0]
        .connection_status_detail
        .as_deref()
        .is_some_and(|d| d.contains("max_connections 1")));
    caused.push(ReasonCode::ConnectionLimitExceeded);
    // The slot is released with the connection: the holder times out, then
    // a valid client is served.
    assert_eq!(
        limited_sink.wait_for(2).await[1]
            .connection_status
            .to_string(),
        "Failed:TcpTimeout"
    );
    drop(holder);
    connect(
        limited,
        client_config(Some(&leaf("third", LeafOptions::default()).identity())),
    )
    .await
    .expect_accepted();

    // Every code is either caused above or listed as not client-caused.
    for &code in ReasonCode::ALL {
        assert!(
            caused.contains(&code) || NOT_CLIENT_CAUSED.contains(&code),
            "{code}: neither caused by a client here nor listed as not client-caused"
        );
    }
}
