//! A handshake parses each client certificate once: the validator's parse
//! is what the revocation sources (deny list, CRL, OCSP with a real `openssl
//! ocsp` responder), the CertificateVerify check, the connection policy's
//! connection object, the headers and the log record all read. A repeated
//! client's chain comes from the verified-chain cache and parses nothing.
//!
//! The count is process-wide (debug builds count every parse), so this file
//! holds one test and runs one connection at a time.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use edge_mtls::internal::certificate_parses;
use edge_mtls::KeyNormalization;
use edge_mtls::{Connection, ConnectionPolicy, PolicyError, Verdict};
use edge_mtls::{CrlSource, MemoryKeyValueStore, MtlsAcceptor};
use edge_mtls::{DenyListSource, OcspSource, RevocationChecker};
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use common::openssl_ca::{client_extensions, free_port, OpensslCa};
use common::revocation::{openssl_identity, revocation_verifier, CrlValidity};

/// Allows a connection after reading everything the connection object
/// offers about the certificates (the CloudFront objects are formatted from
/// the parsed chain).
#[derive(Debug, Default)]
struct ReadsEverything {
    intermediates_seen: AtomicUsize,
}

#[async_trait::async_trait]
impl ConnectionPolicy for ReadsEverything {
    async fn evaluate(&self, connection: &Connection) -> Result<Verdict, PolicyError> {
        let cert = connection
            .client_certificate()
            .ok_or_else(|| PolicyError::Failed("no certificate".into()))?;
        assert!(!cert.certificates.leaf.serial_number.is_empty());
        assert!(cert.revocation_status.is_some(), "revocation ran first");
        self.intermediates_seen
            .store(cert.certificates.intermediates.len(), Ordering::Relaxed);
        let json = serde_json::to_string(connection).expect("serializable");
        assert!(json.contains("Parse Count Issuing CA"), "{json}");
        Ok(Verdict::allow())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_parses_each_certificate_once() {
    let Some(start) = certificate_parses() else {
        eprintln!("release build: parses are not counted");
        return;
    };
    let (root_port, issuing_port) = (free_port(), free_port());
    let root = OpensslCa::new("Parse Count Root");
    let issuing = root.issue_intermediate(
        "issuing",
        "Parse Count Issuing CA",
        Some(&format!("http://127.0.0.1:{root_port}")),
    );
    let leaf_der = issuing.issue(
        "client",
        "parse-count client",
        &client_extensions(Some(&format!("http://127.0.0.1:{issuing_port}"))),
    );
    let _root_responder = root.start_responder(root_port, "ca");
    let issuing_responder = issuing.start_responder(issuing_port, "ca");

    // Every revocation source, over the whole chain.
    let provider = common::provider();
    let crls = CrlSource::builder(&provider).build();
    let (root_der, issuing_der) = (root.der(), issuing.der());
    let issuers: [&[u8]; 2] = [&root_der, &issuing_der];
    crls.add(
        &root.gen_crl("root.crl", true, CrlValidity::Days(1)),
        &issuers,
    )
    .expect("root CRL");
    crls.add(
        &issuing.gen_crl("issuing.crl", true, CrlValidity::Days(1)),
        &issuers,
    )
    .expect("issuing CRL");
    let deny = MemoryKeyValueStore::new(KeyNormalization::SerialNumbers);
    deny.put("7e57", "revoked elsewhere").expect("deny list");
    let checker = RevocationChecker::builder()
        .source(Arc::new(DenyListSource::new(Arc::new(deny))))
        .source(Arc::new(crls))
        .source(Arc::new(
            OcspSource::builder(provider.clone()).build().expect("OCSP"),
        ))
        .build()
        .expect("checker");
    let verifier = Arc::new(revocation_verifier(
        common::trust_store(&root.pem()),
        Arc::new(checker),
        |b| b,
    ));
    let server = common::server_identity();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier.clone())
            .with_single_cert(server.chain.clone(), server.key())
            .expect("server config"),
    );
    let policy = Arc::new(ReadsEverything::default());
    let acceptor = MtlsAcceptor::builder(config, verifier, provider.secure_random)
        .policy(policy.clone())
        .build()
        .expect("acceptor");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");

    let mut identity = openssl_identity(&issuing, "client");
    identity.chain = vec![
        CertificateDer::from(leaf_der),
        CertificateDer::from(issuing_der.clone()),
    ];
    let setup_parses = certificate_parses().expect("counted") - start;

    let mut per_handshake = Vec::new();
    for round in 0..2 {
        // A fresh client config: a full handshake, never a resumed session.
        let client = tokio::spawn(common::connect(
            addr,
            common::client_config(Some(&identity)),
        ));
        let (tcp, peer) = listener.accept().await.expect("accept");
        let before = certificate_parses().expect("counted");
        let mut conn = acceptor
            .accept(tcp, peer, None)
            .await
            .unwrap_or_else(|e| panic!("round {round}: refused: {e}"));
        // Everything the application reads, formatted from the parse.
        let info = conn.info.clone();
        let chain = info.chain.as_ref().expect("a verified chain");
        assert_eq!(chain.intermediates().len(), 1);
        let fields = info.cert_fields.as_ref().expect("fields");
        assert!(!fields.sha256_hex().is_empty() && !fields.spki_hex().is_empty());
        let _ = (
            fields.san(),
            fields.leaf_pem_urlencoded(),
            fields.subject_log(),
        );
        assert_eq!(
            info.revocation_status
                .as_ref()
                .expect("revocation status")
                .certificates
                .intermediates
                .len(),
            1
        );
        let mut map = http::HeaderMap::new();
        info.headers.apply(&mut map);
        per_handshake.push(certificate_parses().expect("counted") - before);

        let mut line = [0u8; 5];
        conn.stream.read_exact(&mut line).await.expect("ping");
        conn.stream.write_all(b"pong\n").await.expect("pong");
        conn.stream.shutdown().await.expect("shutdown");
        client.await.expect("client").expect_accepted();
        assert_eq!(policy.intermediates_seen.load(Ordering::Relaxed), 1);
    }
    assert!(
        issuing_responder.requests() >= 1,
        "stage 2 asked the real responder"
    );
    eprintln!(
        "certificate parses: setup {setup_parses}, first handshake {}, repeated client {}",
        per_handshake[0], per_handshake[1]
    );
    // The leaf and the intermediate, once each (the anchor was parsed when
    // the trust store was built).
    assert_eq!(per_handshake[0], 2, "first handshake");
    // The same chain again: the verified-chain cache hands out its parse.
    assert_eq!(per_handshake[1], 0, "repeated client");
    tokio::time::sleep(Duration::from_millis(10)).await;
}
