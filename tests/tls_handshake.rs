//! Real TLS handshakes over 127.0.0.1: a tokio-rustls server authenticating
//! clients with `MtlsClientVerifier`, and tokio-rustls and curl clients.
//!
//! Each rejection is checked on the wire: the alert the client receives must
//! be the one SPEC §9 names for the failure.

mod common;

use common::{
    client_config, client_config_with_versions, curl, handshake, handshake_with,
    mtls_server_config, seed_pki, self_signed_client, wire_alert, Ca, CaKind, ClientIdentity,
    KeyAlg, LeafOptions, Outcome, Pki, Reply, TestServer,
};
use edge_mtls::ValidationMode;
use rustls::pki_types::UnixTime;
use rustls::{AlertDescription, ProtocolVersion};

const REQUIRED: ValidationMode = ValidationMode::Required;

#[tokio::test]
async fn valid_client_with_intermediate_is_accepted() {
    let pki = Pki::new(1);
    let leaf = pki.client("valid client", &LeafOptions::default());
    let config = mtls_server_config(pki.root_store(), REQUIRED, |b| b);

    let (outcome, served) = handshake(config, Some(&leaf.identity())).await;
    assert_eq!(outcome.expect_accepted(), "ok\n");
    let served = served.expect("server completed the handshake");
    assert_eq!(served.request, b"ping\n");
    assert_eq!(served.protocol, Some(ProtocolVersion::TLSv1_3));
    let peer = served
        .peer_certificates
        .expect("server sees the client chain");
    assert_eq!(peer, leaf.chain, "leaf then intermediate, as sent");
}

#[tokio::test]
async fn required_mode_without_certificate_gets_certificate_required() {
    let pki = Pki::new(0);
    let config = mtls_server_config(pki.root_store(), REQUIRED, |b| b);
    let (outcome, served) = handshake(config, None).await;
    outcome.expect_alert(AlertDescription::CertificateRequired);
    let error = served.expect_err("server refused the handshake");
    assert!(error.contains("NoCertificatesPresented"), "{error}");
}

#[tokio::test]
async fn untrusted_issuer_gets_unknown_ca() {
    let trusted = Pki::new(0);
    let other = Pki::new(1);
    let leaf = other.client("stranger", &LeafOptions::default());
    let config = mtls_server_config(trusted.root_store(), REQUIRED, |b| b);
    let (outcome, served) = handshake(config, Some(&leaf.identity())).await;
    outcome.expect_alert(AlertDescription::UnknownCA);
    assert!(served.is_err());
}

#[tokio::test]
async fn expired_leaf_gets_certificate_expired() {
    let pki = Pki::new(1);
    let leaf = pki.client("expired", &LeafOptions::expired());
    let config = mtls_server_config(pki.root_store(), REQUIRED, |b| b);
    let (outcome, _) = handshake(config, Some(&leaf.identity())).await;
    outcome.expect_alert(AlertDescription::CertificateExpired);

    let lenient = mtls_server_config(pki.root_store(), REQUIRED, |b| b.ignore_expiration(true));
    let (outcome, served) = handshake(lenient, Some(&leaf.identity())).await;
    assert_eq!(outcome.expect_accepted(), "ok\n");
    assert!(served.is_ok());
}

#[tokio::test]
async fn not_yet_valid_leaf_gets_certificate_expired() {
    let pki = Pki::new(0);
    let leaf = pki.client("future", &LeafOptions::not_yet_valid());
    let config = mtls_server_config(pki.root_store(), REQUIRED, |b| b);
    let (outcome, _) = handshake(config, Some(&leaf.identity())).await;
    outcome.expect_alert(AlertDescription::CertificateExpired);
}

#[tokio::test]
async fn server_auth_only_leaf_gets_unsupported_certificate() {
    let pki = Pki::new(1);
    let leaf = pki.client("server cert", &LeafOptions::server_auth_only());
    let config = mtls_server_config(pki.root_store(), REQUIRED, |b| b);
    let (outcome, _) = handshake(config, Some(&leaf.identity())).await;
    outcome.expect_alert(AlertDescription::UnsupportedCertificate);
}

#[tokio::test]
async fn chain_of_depth_five_needs_max_chain_depth_five() {
    // leaf + 3 intermediates + root = 5 certificates.
    let pki = Pki::new(3);
    let leaf = pki.client("deep", &LeafOptions::default());
    assert_eq!(leaf.chain.len(), 4);

    let default_depth = mtls_server_config(pki.root_store(), REQUIRED, |b| b.max_chain_depth(4));
    let (outcome, _) = handshake(default_depth, Some(&leaf.identity())).await;
    outcome.expect_alert(AlertDescription::BadCertificate);

    let deeper = mtls_server_config(pki.root_store(), REQUIRED, |b| b.max_chain_depth(5));
    let (outcome, served) = handshake(deeper, Some(&leaf.identity())).await;
    assert_eq!(outcome.expect_accepted(), "ok\n");
    assert_eq!(served.unwrap().peer_certificates.unwrap().len(), 4);
}

#[tokio::test]
async fn intermediate_without_ca_gets_bad_certificate() {
    let pki = Pki::with_kinds(&[CaKind::NotCa]);
    let leaf = pki.client("below a non-CA", &LeafOptions::default());
    let config = mtls_server_config(pki.root_store(), REQUIRED, |b| b);
    let (outcome, _) = handshake(config, Some(&leaf.identity())).await;
    outcome.expect_alert(AlertDescription::BadCertificate);
}

#[tokio::test]
async fn impostor_ca_with_a_trusted_name_is_refused() {
    // Same subject DN as the trusted root, different key: the name matches an
    // anchor but the signature cannot verify.
    let trusted = Ca::root("edge-mtls look-alike CA");
    let impostor = Ca::root("edge-mtls look-alike CA");
    let leaf = impostor.issue_leaf("victim", &LeafOptions::default(), &[]);
    let store = common::trust_store(trusted.pem().as_bytes());
    let config = mtls_server_config(store, REQUIRED, |b| b);
    let (outcome, served) = handshake(config, Some(&leaf.identity())).await;
    assert!(
        matches!(
            outcome,
            Outcome::Alert(AlertDescription::BadCertificate | AlertDescription::UnknownCA)
        ),
        "{outcome:?}"
    );
    assert!(served.is_err());
}

#[tokio::test]
async fn missing_intermediate_gets_unknown_ca() {
    let pki = Pki::new(1);
    let leaf = pki.client("no chain", &LeafOptions::default());
    let config = mtls_server_config(pki.root_store(), REQUIRED, |b| b);
    let (outcome, _) = handshake(config, Some(&leaf.identity_leaf_only())).await;
    outcome.expect_alert(AlertDescription::UnknownCA);
}

#[tokio::test]
async fn optional_mode_without_certificate_is_accepted() {
    let pki = Pki::new(0);
    let config = mtls_server_config(pki.root_store(), ValidationMode::Optional, |b| b);
    let (outcome, served) = handshake(config, None).await;
    assert_eq!(outcome.expect_accepted(), "ok\n");
    assert!(served.unwrap().peer_certificates.is_none());
}

#[tokio::test]
async fn optional_mode_with_valid_certificate_is_accepted() {
    let pki = Pki::new(1);
    let leaf = pki.client("optional", &LeafOptions::default());
    let config = mtls_server_config(pki.root_store(), ValidationMode::Optional, |b| b);
    let (outcome, served) = handshake(config, Some(&leaf.identity())).await;
    outcome.expect_accepted();
    assert_eq!(served.unwrap().peer_certificates.unwrap(), leaf.chain);
}

#[tokio::test]
async fn optional_mode_with_invalid_certificate_is_refused() {
    let pki = Pki::new(0);
    let config = mtls_server_config(pki.root_store(), ValidationMode::Optional, |b| b);
    let stranger = self_signed_client("self-signed");
    let (outcome, _) = handshake(config.clone(), Some(&stranger.identity())).await;
    outcome.expect_alert(AlertDescription::UnknownCA);

    let expired = pki.client("expired", &LeafOptions::expired());
    let (outcome, _) = handshake(config, Some(&expired.identity())).await;
    outcome.expect_alert(AlertDescription::CertificateExpired);
}

#[tokio::test]
async fn passthrough_accepts_untrusted_self_signed_certificate() {
    let pki = Pki::new(0);
    let config = mtls_server_config(pki.root_store(), ValidationMode::Passthrough, |b| b);
    let stranger = self_signed_client("self-signed");
    let (outcome, served) = handshake(config.clone(), Some(&stranger.identity())).await;
    assert_eq!(outcome.expect_accepted(), "ok\n");
    assert_eq!(served.unwrap().peer_certificates.unwrap(), stranger.chain);

    // Expiry is not checked either; only possession of the key is.
    let expired = pki.client("expired", &LeafOptions::expired());
    let (outcome, _) = handshake(config.clone(), Some(&expired.identity())).await;
    outcome.expect_accepted();

    // And no certificate at all is allowed.
    let (outcome, _) = handshake(config, None).await;
    outcome.expect_accepted();
}

#[tokio::test]
async fn passthrough_checks_proof_of_possession() {
    let pki = Pki::new(0);
    let config = mtls_server_config(pki.root_store(), ValidationMode::Passthrough, |b| b);
    let owner = self_signed_client("owner");
    let thief = self_signed_client("thief");
    // The owner's certificate with the thief's key: CertificateVerify fails.
    let stolen = ClientIdentity {
        chain: owner.chain.clone(),
        key_pkcs8: thief.key.serialize_der(),
    };
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let client = client_config_with_versions(Some(&stolen), versions);
        let (outcome, served) = handshake_with(config.clone(), client).await;
        outcome.expect_alert(AlertDescription::DecryptError);
        assert!(served.is_err());
    }
}

#[tokio::test]
async fn passthrough_refuses_unparsable_certificate() {
    let pki = Pki::new(0);
    let config = mtls_server_config(pki.root_store(), ValidationMode::Passthrough, |b| b);
    let owner = self_signed_client("owner");
    let garbage = ClientIdentity {
        chain: vec![b"\x30\x03\x02\x01\x01".to_vec().into()],
        key_pkcs8: owner.key.serialize_der(),
    };
    let (outcome, _) = handshake(config, Some(&garbage)).await;
    outcome.expect_alert(AlertDescription::BadCertificate);
}

#[tokio::test]
async fn tls12_client_is_accepted_and_refused_like_tls13() {
    let pki = Pki::new(1);
    let leaf = pki.client("tls12", &LeafOptions::default());
    let config = mtls_server_config(pki.root_store(), REQUIRED, |b| b);
    let tls12 = [&rustls::version::TLS12];

    let client = client_config_with_versions(Some(&leaf.identity()), &tls12);
    let (outcome, served) = handshake_with(config.clone(), client).await;
    match &outcome {
        Outcome::Accepted { reply, protocol } => {
            assert_eq!(reply, "ok\n");
            assert_eq!(*protocol, Some(ProtocolVersion::TLSv1_2));
        }
        other => panic!("TLS 1.2 client refused: {other:?}"),
    }
    let served = served.unwrap();
    assert_eq!(served.protocol, Some(ProtocolVersion::TLSv1_2));
    assert_eq!(served.peer_certificates.unwrap(), leaf.chain);

    // Under TLS 1.2 the rejection arrives during the handshake itself.
    let expired = pki.client("expired", &LeafOptions::expired());
    let client = client_config_with_versions(Some(&expired.identity()), &tls12);
    let (outcome, _) = handshake_with(config.clone(), client).await;
    outcome.expect_alert(AlertDescription::CertificateExpired);

    let stranger = self_signed_client("stranger");
    let client = client_config_with_versions(Some(&stranger.identity()), &tls12);
    let (outcome, _) = handshake_with(config, client).await;
    outcome.expect_alert(AlertDescription::UnknownCA);
}

#[tokio::test]
async fn seed_recipe_v1_client_completes_handshake() {
    let seed = seed_pki();
    let store = common::trust_store(seed.file("Root_CA.pem"));
    let config = mtls_server_config(store, REQUIRED, |b| b);
    let identity = seed.identity(&["my_client.pem"], "my_client.key");

    // RSA-PSS CertificateVerify under TLS 1.3, PKCS#1 or PSS under TLS 1.2.
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let client = client_config_with_versions(Some(&identity), versions);
        let (outcome, served) = handshake_with(config.clone(), client).await;
        assert_eq!(outcome.expect_accepted(), "ok\n");
        assert_eq!(
            served.unwrap().peer_certificates.unwrap(),
            vec![seed.cert_der("my_client.pem")]
        );
    }
}

#[tokio::test]
async fn seed_recipe_intermediate_client_completes_handshake() {
    let seed = seed_pki();
    let identity = seed.identity(
        &["intermediate_client.pem", "Intermediate_CA.pem"],
        "intermediate_client.key",
    );
    // Root-only store: the client sends the intermediate.
    let root_only = mtls_server_config(
        common::trust_store(seed.file("Root_CA.pem")),
        REQUIRED,
        |b| b,
    );
    let (outcome, _) = handshake(root_only, Some(&identity)).await;
    outcome.expect_accepted();

    // Bundle store: the leaf alone is enough.
    let leaf_only = seed.identity(&["intermediate_client.pem"], "intermediate_client.key");
    let bundle = mtls_server_config(
        common::trust_store(seed.file("Trust_store_bundle.pem")),
        REQUIRED,
        |b| b,
    );
    let (outcome, _) = handshake(bundle, Some(&leaf_only)).await;
    outcome.expect_accepted();
}

/// The alert on the wire is the one `ValidationError::tls_alert` names, for
/// every rejection the validator can produce here.
#[tokio::test]
async fn wire_alert_matches_validation_error() {
    let pki = Pki::new(3);
    let non_ca = Pki::with_kinds(&[CaKind::NotCa]);
    let stranger = self_signed_client("stranger");
    let cases = [
        (
            "expired",
            &pki,
            pki.client("expired", &LeafOptions::expired()),
        ),
        (
            "not yet valid",
            &pki,
            pki.client("future", &LeafOptions::not_yet_valid()),
        ),
        (
            "serverAuth only",
            &pki,
            pki.client("server", &LeafOptions::server_auth_only()),
        ),
        (
            "too deep",
            &pki,
            pki.client("deep", &LeafOptions::default()),
        ),
        (
            "non-CA issuer",
            &non_ca,
            non_ca.client("under non-CA", &LeafOptions::default()),
        ),
        ("untrusted", &pki, stranger),
    ];
    for (name, trusted, leaf) in cases {
        let validator = common::validator(trusted.root_store(), |b| b);
        let error = validator
            .validate(leaf.der(), &leaf.intermediates(), UnixTime::now())
            .expect_err(name);
        let config = mtls_server_config(trusted.root_store(), REQUIRED, |b| b);
        let (outcome, _) = handshake(config, Some(&leaf.identity())).await;
        match outcome {
            Outcome::Alert(alert) => assert_eq!(
                alert,
                wire_alert(error.tls_alert()),
                "{name}: {error} is documented as {:?}",
                error.tls_alert()
            ),
            other => panic!("{name}: expected an alert, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn unknown_critical_extension_gets_the_documented_alert() {
    let pki = Pki::new(0);
    let leaf = pki.client("critical", &LeafOptions::unknown_critical_extension());
    let validator = common::validator(pki.root_store(), |b| b);
    let error = validator
        .validate(leaf.der(), &leaf.intermediates(), UnixTime::now())
        .expect_err("unknown critical extension");
    assert!(
        matches!(
            error,
            edge_mtls::ValidationError::UnsupportedCriticalExtension { .. }
        ),
        "{error:?}"
    );
    assert_eq!(error.tls_alert(), edge_mtls::TlsAlert::BadCertificate);

    let config = mtls_server_config(pki.root_store(), REQUIRED, |b| b);
    let (outcome, _) = handshake(config, Some(&leaf.identity())).await;
    outcome.expect_alert(AlertDescription::BadCertificate);
}

#[tokio::test]
async fn curl_with_client_certificate_gets_200() {
    let pki = Pki::new(1);
    let leaf = pki.client("curl client", &LeafOptions::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client.pem"), leaf.chain_pem()).unwrap();
    std::fs::write(dir.path().join("client.key"), leaf.key_pem()).unwrap();

    let config = mtls_server_config(pki.root_store(), REQUIRED, |b| b);
    let server = TestServer::start(config, 1, Reply::Http).await;
    let run = curl(
        dir.path(),
        server.port(),
        &[
            "--key",
            "client.key",
            "--cert",
            "client.pem",
            "-w",
            "|%{http_code}",
        ],
    )
    .await;
    let served = server.finish_one().await;
    assert_eq!(
        run.code,
        Some(0),
        "curl failed: {run:?}; server: {served:?}"
    );
    assert_eq!(run.stdout, "ok|200");
    let served = served.unwrap();
    assert!(
        served.request.starts_with(b"GET / HTTP/1.1\r\n"),
        "{served:?}"
    );
    assert_eq!(served.peer_certificates.unwrap(), leaf.chain);
}

#[tokio::test]
async fn curl_with_seed_recipe_certificate_gets_200() {
    // SPEC §10: `curl --key my_client.key --cert my_client.pem` gets 200.
    let seed = seed_pki();
    let dir = tempfile::tempdir().unwrap();
    seed.write_to(dir.path(), &["my_client.pem", "my_client.key"]);

    let store = common::trust_store(seed.file("Root_CA.pem"));
    let config = mtls_server_config(store, REQUIRED, |b| b);
    let server = TestServer::start(config, 1, Reply::Http).await;
    let run = curl(
        dir.path(),
        server.port(),
        &[
            "--key",
            "my_client.key",
            "--cert",
            "my_client.pem",
            "-w",
            "|%{http_code}",
        ],
    )
    .await;
    let served = server.finish_one().await;
    assert_eq!(
        run.code,
        Some(0),
        "curl failed: {run:?}; server: {served:?}"
    );
    assert_eq!(run.stdout, "ok|200");
}

#[tokio::test]
async fn curl_without_client_certificate_fails() {
    let pki = Pki::new(0);
    let dir = tempfile::tempdir().unwrap();
    let config = mtls_server_config(pki.root_store(), REQUIRED, |b| b);
    let server = TestServer::start(config, 1, Reply::Http).await;
    let run = curl(dir.path(), server.port(), &[]).await;
    let served = server.finish_one().await;
    // 16 (HTTP/2 framing), 35 (TLS handshake) or 56 (receive failure),
    // depending on when curl reads the alert.
    assert!(
        matches!(run.code, Some(16 | 35 | 56)),
        "curl should fail without a certificate: {run:?}"
    );
    assert!(run.stdout.is_empty(), "{run:?}");
    let error = served.expect_err("server refused");
    assert!(error.contains("NoCertificatesPresented"), "{error}");
}

#[tokio::test]
async fn curl_with_untrusted_certificate_fails() {
    let trusted = Pki::new(0);
    let stranger = self_signed_client("curl stranger");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client.pem"), stranger.chain_pem()).unwrap();
    std::fs::write(dir.path().join("client.key"), stranger.key_pem()).unwrap();
    let config = mtls_server_config(trusted.root_store(), REQUIRED, |b| b);
    let server = TestServer::start(config, 1, Reply::Http).await;
    let run = curl(
        dir.path(),
        server.port(),
        &["--key", "client.key", "--cert", "client.pem"],
    )
    .await;
    let served = server.finish_one().await;
    assert!(matches!(run.code, Some(16 | 35 | 56)), "{run:?}");
    assert!(served.is_err());
}

#[tokio::test]
async fn one_server_config_serves_many_clients() {
    // The verifier (and its cache) is shared by every connection of a listener.
    let pki = Pki::new(1);
    let good = pki.client("good", &LeafOptions::default());
    let expired = pki.client("expired", &LeafOptions::expired());
    let config = mtls_server_config(pki.root_store(), REQUIRED, |b| b);
    let server = TestServer::start(config, 4, Reply::Line).await;
    for _ in 0..2 {
        common::connect(server.addr, client_config(Some(&good.identity())))
            .await
            .expect_accepted();
        common::connect(server.addr, client_config(Some(&expired.identity())))
            .await
            .expect_alert(AlertDescription::CertificateExpired);
    }
    let served = server.finish().await;
    assert_eq!(served.len(), 4);
    assert!(served[0].is_ok() && served[1].is_err() && served[2].is_ok() && served[3].is_err());
}

#[tokio::test]
async fn advertise_ca_names_sends_the_trust_store_subjects() {
    let pki = Pki::new(1);
    let leaf = pki.client("hinted", &LeafOptions::default());
    let bundle = format!("{}{}", pki.root.pem(), pki.intermediates[0].pem());
    let store = common::trust_store(bundle.as_bytes());
    // The subject Names as x509-cert encodes them, independently of the crate.
    let expected: Vec<Vec<u8>> = [pki.root.der(), pki.intermediates[0].der()]
        .iter()
        .map(|der| {
            use der::{Decode, Encode};
            let cert = x509_cert::Certificate::from_der(der).unwrap();
            cert.tbs_certificate.subject.to_der().unwrap()
        })
        .collect();

    for advertise in [true, false] {
        let validator = common::validator(store.clone(), |b| b);
        let verifier = edge_mtls::MtlsClientVerifier::builder(std::sync::Arc::new(validator))
            .advertise_ca_names(advertise)
            .build()
            .unwrap();
        let (client, recorder) = common::client_config_recording_hints(&leaf.identity());
        let (outcome, _) = handshake_with(common::server_config(verifier), client).await;
        outcome.expect_accepted();
        let hints = recorder
            .hints
            .lock()
            .unwrap()
            .clone()
            .expect("client was asked");
        if advertise {
            // Each hint is a full DER Name (RFC 5280 A.1), in store order.
            assert_eq!(hints, expected);
        } else {
            assert!(hints.is_empty(), "{hints:?}");
        }
    }
}

#[tokio::test]
async fn every_supported_key_type_authenticates_over_tls12_and_tls13() {
    // SPEC §3: RSA 2048–8192, ECDSA P-256/384/521, Ed25519; the CA signs
    // with its own key type, so certificate signatures vary too.
    for alg in KeyAlg::ALL {
        let root = Ca::root_with_key(&format!("edge-mtls {alg:?} root"), alg);
        let leaf = root.issue_leaf("client", &LeafOptions::with_key(alg), &[]);
        let store = common::trust_store(root.pem().as_bytes());
        let config = mtls_server_config(store, REQUIRED, |b| b);
        for (version, versions) in [
            ("TLS 1.3", &[&rustls::version::TLS13][..]),
            ("TLS 1.2", &[&rustls::version::TLS12][..]),
        ] {
            let client = client_config_with_versions(Some(&leaf.identity()), versions);
            let (outcome, served) = handshake_with(config.clone(), client).await;
            assert!(
                matches!(outcome, Outcome::Accepted { .. }),
                "{alg:?} over {version}: {outcome:?}; server: {served:?}"
            );
        }
    }
}

#[test]
fn advertised_ca_names_over_the_cap_fail_the_build() {
    let pki = Pki::new(1);
    let bundle = format!("{}{}", pki.root.pem(), pki.intermediates[0].pem());
    let validator = std::sync::Arc::new(common::validator(
        common::trust_store(bundle.as_bytes()),
        |b| b,
    ));
    let err = edge_mtls::MtlsClientVerifier::builder(validator.clone())
        .advertise_ca_names(true)
        .ca_names_limit(64)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, edge_mtls::VerifierBuildError::CaNamesTooLarge { limit: 64, size } if size > 64),
        "{err:?}"
    );
    assert!(err.to_string().contains("advertise_ca_names"), "{err}");
    // Without advertising, the cap is irrelevant.
    edge_mtls::MtlsClientVerifier::builder(validator)
        .advertise_ca_names(false)
        .ca_names_limit(64)
        .build()
        .expect("no names, no cap");
}
