//! Deny lists (CloudFront's KeyValueStore revocation recipe): the seed's KVS
//! JSON imported verbatim, every spelling of a serial matching, issuer
//! scoping across CAs with colliding serials, stage 2 for stores without a
//! local copy, hard- and soft-fail, and the `revocationStatus` object
//! compared field for field with the CloudFront documentation's.

mod common;

use std::sync::Arc;

use common::openssl_ca::OpensslCa;
use common::revocation::{
    openssl_identity, revocation_server_config, revocation_verifier, serial_of, Remote,
    RemoteLikeStore,
};
use common::{handshake, trust_store, LeafOptions, Pki, TestServer};
use edge_mtls::ReasonCode;
use edge_mtls::{
    issuer_id, scoped_key, CertPosition, CertStatus, CertStatusKind, CertToCheck, ChainValidity,
    DenyListSource, FailurePolicy, ImmediateCheck, IssuerScoping, RevocationChain,
    RevocationChecker, RevocationError, RevocationMethod, RevocationSource, SerialNumber,
    StatusErrorKind,
};
use edge_mtls::{ImportOptions, KeyValueStore, KvsError, MemoryKeyValueStore};
use rustls::AlertDescription;
use rustls_pki_types::UnixTime;

/// The KVS JSON of the CloudFront documentation (seed 003), verbatim.
const SEED_KVS_JSON: &str = r#"{ "data": [ { "key": "ABC123DEF456", "value": "" }, { "key": "789XYZ012GHI", "value": "" } ] }"#;

fn deny_checker(store: Arc<dyn KeyValueStore>) -> Arc<RevocationChecker> {
    Arc::new(
        RevocationChecker::builder()
            .source(Arc::new(DenyListSource::new(store)))
            .build()
            .expect("checker"),
    )
}

fn serial_leaf(pki: &Pki, name: &str, magnitude: &[u8]) -> common::Leaf {
    pki.client(
        name,
        &LeafOptions {
            serial: Some(magnitude.to_vec()),
            ..LeafOptions::default()
        },
    )
}

#[tokio::test]
async fn seed_kvs_json_denies_its_serial_in_the_handshake() {
    let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
    let report = store
        .import_kvs_json(SEED_KVS_JSON.as_bytes(), ImportOptions::default())
        .expect("the documentation's JSON imports");
    // ABC123DEF456 is hex (a serial); 789XYZ012GHI is not: kept as an opaque
    // key (CloudFront accepts any key) and reported, never matching a certificate.
    assert_eq!(report.entries, 2);
    assert_eq!(report.opaque_keys, vec!["789XYZ012GHI".to_string()]);
    assert_eq!(store.exists_local("00:ab:c1:23:de:f4:56"), Some(true));
    assert!(store.exists("789xyz012ghi").await.unwrap());

    let pki = Pki::new(0);
    let revoked = serial_leaf(&pki, "listed", &[0xab, 0xc1, 0x23, 0xde, 0xf4, 0x56]);
    let other = serial_leaf(&pki, "unlisted", &[0x12, 0x34]);
    assert_eq!(
        serial_of(revoked.der()),
        [0x00, 0xab, 0xc1, 0x23, 0xde, 0xf4, 0x56]
    );

    let config = revocation_server_config(pki.root_store(), deny_checker(store), |b| b);
    let (outcome, served) = handshake(config.clone(), Some(&revoked.identity())).await;
    outcome.expect_alert(AlertDescription::CertificateRevoked);
    assert!(served.unwrap_err().contains("Revoked"));
    let (outcome, _) = handshake(config, Some(&other.identity())).await;
    outcome.expect_accepted();
}

#[test]
fn strict_import_rejects_the_seed_key_that_is_not_hex() {
    let store = MemoryKeyValueStore::for_serial_numbers();
    let err = store
        .import_kvs_json(SEED_KVS_JSON.as_bytes(), ImportOptions::strict())
        .unwrap_err();
    assert!(matches!(&err, KvsError::InvalidSerial { key, .. } if key == "789XYZ012GHI"));
    assert_eq!(
        err.to_string(),
        "data[1]: key \"789XYZ012GHI\" is not a serial number: 'X' is not a hex digit"
    );
    assert!(store.is_empty(), "nothing imported");
}

#[test]
fn every_spelling_of_a_revoked_serial_matches() {
    let pki = Pki::new(0);
    let magnitude = [0xa7, 0x30, 0x9e, 0x73, 0x7b, 0x3e, 0x63, 0xbd];
    let leaf = serial_leaf(&pki, "spellings", &magnitude);
    let chain = RevocationChain::from_der(leaf.der(), [], pki.root.der()).unwrap();
    let serial = SerialNumber::from_der_contents(&serial_of(leaf.der())).unwrap();
    assert_eq!(serial.to_cloudfront(), "00:a7:30:9e:73:7b:3e:63:bd");
    for key in [
        "00:a7:30:9e:73:7b:3e:63:bd", // CloudFront's header / connection object
        "00a7309e737b3e63bd",         // the recipe's replaceAll(":", "")
        "A7309E737B3E63BD",           // ALB's header, openssl x509 -serial
        "a7:30:9e:73:7b:3e:63:bd",
        "00A7309E737B3E63BD",
        "0xA7309E737B3E63BD",
    ] {
        let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
        store.put(key, "").unwrap();
        assert!(
            matches!(
                deny_checker(store).check_now(&chain, UnixTime::now()),
                ImmediateCheck::Denied(RevocationError::Revoked {
                    method: RevocationMethod::DenyList,
                    ..
                })
            ),
            "{key}"
        );
    }
    // Text lists: one per line, comments.
    let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
    store
        .import_serial_list(
            b"# revoked on 2024-05-01\n01\na7:30:9e:73:7b:3e:63:bd  # lost laptop\n",
            ImportOptions::default(),
        )
        .unwrap();
    assert!(matches!(
        deny_checker(store).check_now(&chain, UnixTime::now()),
        ImmediateCheck::Denied(_)
    ));
    // A different serial does not match.
    let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
    store.put("a7309e737b3e63be", "").unwrap();
    assert!(matches!(
        deny_checker(store).check_now(&chain, UnixTime::now()),
        ImmediateCheck::Allowed(_)
    ));
}

#[tokio::test]
async fn issuer_scoping_separates_colliding_serials() {
    // Two CAs each issue serial 0x1001: serial-only keys collide.
    let pki_a = Pki::new(0);
    let pki_b = Pki::new(0);
    let a = serial_leaf(&pki_a, "from A", &[0x10, 0x01]);
    let b = serial_leaf(&pki_b, "from B", &[0x10, 0x01]);
    let serial = SerialNumber::parse("1001").unwrap();
    let check = |store: Arc<MemoryKeyValueStore>,
                 scoping: IssuerScoping,
                 leaf: &common::Leaf,
                 root: &[u8]| {
        let checker = RevocationChecker::builder()
            .source(Arc::new(DenyListSource::new(store).issuer_scoping(scoping)))
            .build()
            .unwrap();
        checker.check_now(
            &RevocationChain::from_der(leaf.der(), [], root).unwrap(),
            UnixTime::now(),
        )
    };
    let denied = |r: &ImmediateCheck| matches!(r, ImmediateCheck::Denied(_));

    // Scoped to A: only A's certificate is denied.
    let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
    store
        .put(&scoped_key(pki_a.root.der(), &serial).unwrap(), "")
        .unwrap();
    assert!(denied(&check(
        store.clone(),
        IssuerScoping::Both,
        &a,
        pki_a.root.der()
    )));
    assert!(!denied(&check(
        store.clone(),
        IssuerScoping::Both,
        &b,
        pki_b.root.der()
    )));
    // SerialOnly ignores scoped entries.
    assert!(!denied(&check(
        store,
        IssuerScoping::SerialOnly,
        &a,
        pki_a.root.der()
    )));

    // Serial-only: both are denied (the collision scoping exists to avoid).
    let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
    store.put("10:01", "").unwrap();
    assert!(denied(&check(
        store.clone(),
        IssuerScoping::Both,
        &a,
        pki_a.root.der()
    )));
    assert!(denied(&check(
        store.clone(),
        IssuerScoping::Both,
        &b,
        pki_b.root.der()
    )));
    assert!(!denied(&check(
        store,
        IssuerScoping::IssuerOnly,
        &b,
        pki_b.root.der()
    )));

    // The issuer id is what OpenSSL computes for the CA's public key, and
    // scoped keys accept any spelling of both halves.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), pki_a.root.pem()).unwrap();
    common::shell(
        dir.path(),
        "openssl x509 -in ca.pem -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r > id.txt",
    );
    let from_openssl = std::fs::read_to_string(dir.path().join("id.txt")).unwrap();
    let id = issuer_id(pki_a.root.der()).unwrap();
    assert_eq!(from_openssl.split_whitespace().next(), Some(id.as_str()));
    let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
    store
        .put(&format!("{}/00:10:01", id.to_uppercase()), "")
        .unwrap();
    assert!(denied(&check(
        store,
        IssuerScoping::Both,
        &a,
        pki_a.root.der()
    )));

    // Over TLS, with both CAs in one trust store.
    let bundle = format!("{}{}", pki_a.root.pem(), pki_b.root.pem());
    let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
    store
        .put(&scoped_key(pki_b.root.der(), &serial).unwrap(), "")
        .unwrap();
    let config =
        revocation_server_config(trust_store(bundle.as_bytes()), deny_checker(store), |b| b);
    let (outcome, _) = handshake(config.clone(), Some(&a.identity())).await;
    outcome.expect_accepted();
    let (outcome, _) = handshake(config, Some(&b.identity())).await;
    outcome.expect_alert(AlertDescription::CertificateRevoked);
}

#[tokio::test]
async fn negative_serials_match_both_spellings() {
    let ca = OpensslCa::new("Negative deny-list CA");
    ca.issue_outside_database("minus5", "minus5", "-5");
    let cert = ca.cert_der("minus5");
    let chain_check = |key: &str| {
        let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
        store.put(key, "").unwrap();
        let ca_der = ca.der();
        deny_checker(store).check_now(
            &RevocationChain::from_der(&cert, [], &ca_der).unwrap(),
            UnixTime::now(),
        )
    };
    // OpenSSL's spelling, and the DER octets read as a number (fail closed).
    for key in ["-5", "-05", "fb", "FB", "00:fb"] {
        assert!(
            matches!(chain_check(key), ImmediateCheck::Denied(_)),
            "{key}"
        );
    }
    assert!(matches!(chain_check("5"), ImmediateCheck::Allowed(_)));

    let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
    store
        .import_serial_list(b"-05\n", ImportOptions::default())
        .unwrap();
    let config = revocation_server_config(trust_store(&ca.pem()), deny_checker(store), |b| b);
    let (outcome, _) = handshake(config, Some(&openssl_identity(&ca, "minus5"))).await;
    outcome.expect_alert(AlertDescription::CertificateRevoked);
}

#[tokio::test]
async fn stores_without_a_local_copy_are_checked_after_the_handshake() {
    let pki = Pki::new(1);
    let revoked = serial_leaf(&pki, "remote revoked", &[0x0b, 0xad]);
    let fine = serial_leaf(&pki, "remote fine", &[0x0f, 0x0f]);
    let backing = Arc::new(MemoryKeyValueStore::for_serial_numbers());
    backing.put("0bad", "").unwrap();
    let remote = Arc::new(RemoteLikeStore::new(backing, Remote::Reachable));
    let checker = deny_checker(remote.clone());
    let store = pki.root_store();
    let verifier = revocation_verifier(store.clone(), checker.clone(), |b| b);

    // Stage 1 cannot answer: the certificates are pending, the handshake completes.
    let chain = RevocationChain::from_der(
        revoked.der(),
        [pki.intermediates[0].der().as_ref()],
        pki.root.der(),
    )
    .unwrap();
    assert_eq!(
        checker.check_now(&chain, UnixTime::now()),
        ImmediateCheck::Pending(vec![CertPosition::Leaf, CertPosition::Intermediate(0)])
    );
    let config = common::server_config(revocation_verifier(store, checker.clone(), |b| b));
    let server = TestServer::start(config, 1, common::Reply::Line).await;
    let outcome = common::connect(
        server.addr,
        common::client_config(Some(&revoked.identity())),
    )
    .await;
    outcome.expect_accepted();
    let served = server.finish_one().await.expect("served");
    let peer = served.peer_certificates.expect("client certificates");

    // Stage 2, as the acceptor runs it after the handshake.
    let result = verifier
        .check_connection(&peer, UnixTime::now())
        .await
        .expect("the chain still validates")
        .expect("revocation configured");
    let error = result.error().expect("denied in stage 2");
    assert_eq!(error.reason_code(), ReasonCode::ClientCertRevoked);
    assert_eq!(result.status().chain_validity, ChainValidity::Invalid);
    assert!(remote.calls.load(std::sync::atomic::Ordering::Relaxed) >= 1);

    let fine_chain: Vec<_> = fine.chain.clone();
    let ok = verifier
        .check_connection(&fine_chain, UnixTime::now())
        .await
        .unwrap()
        .unwrap();
    assert!(ok.is_allowed());
    assert_eq!(ok.status().chain_validity, ChainValidity::Valid);
    assert_eq!(ok.status().certificates.intermediates.len(), 1);

    // A chain that no longer validates (here: from an unknown CA) is an error.
    let stranger = Pki::new(0).client("stranger", &LeafOptions::default());
    let err = verifier
        .check_connection(&stranger.chain, UnixTime::now())
        .await
        .unwrap_err();
    assert_eq!(err.reason_code(), ReasonCode::ClientCertUntrusted);
}

#[tokio::test]
async fn unreachable_store_denies_under_hard_fail_and_is_reported_under_soft_fail() {
    let pki = Pki::new(0);
    let leaf = serial_leaf(&pki, "store down", &[0x42]);
    let chain = RevocationChain::from_der(leaf.der(), [], pki.root.der()).unwrap();
    let down: Arc<dyn KeyValueStore> = Arc::new(RemoteLikeStore::new(
        Arc::new(MemoryKeyValueStore::for_serial_numbers()),
        Remote::Down,
    ));
    let hard = deny_checker(down.clone());
    let outcome = hard.check(&chain, UnixTime::now()).await;
    let error = outcome.error().expect("hard-fail denies");
    assert!(matches!(error, RevocationError::DenyListUnavailable { .. }));
    assert_eq!(error.reason_code(), ReasonCode::Internal);

    let soft = RevocationChecker::builder()
        .source_with_policy(Arc::new(DenyListSource::new(down)), FailurePolicy::SoftFail)
        .build()
        .unwrap();
    let outcome = soft.check(&chain, UnixTime::now()).await;
    assert!(outcome.is_allowed());
    let leaf_status = &outcome.status().certificates.leaf;
    assert_eq!(leaf_status.status, CertStatusKind::Error);
    assert_eq!(leaf_status.error_type.as_deref(), Some("InternalError"));
    assert_eq!(outcome.status().chain_validity, ChainValidity::Unknown);
}

/// An OCSP-like source for the JSON shape test: the leaf is Good, every
/// intermediate an `InternalError` (the documentation's example).
#[derive(Debug)]
struct DocumentationExample;

#[async_trait::async_trait]
impl RevocationSource for DocumentationExample {
    fn method(&self) -> RevocationMethod {
        RevocationMethod::Ocsp
    }

    fn check_now(&self, cert: &CertToCheck<'_>, _now: UnixTime) -> Option<CertStatus> {
        Some(match cert.position {
            CertPosition::Leaf => CertStatus::Good,
            _ => CertStatus::Error(StatusErrorKind::InternalError("responder timed out".into())),
        })
    }

    async fn check(&self, cert: &CertToCheck<'_>, now: UnixTime) -> CertStatus {
        self.check_now(cert, now).unwrap_or(CertStatus::Unknown)
    }
}

#[tokio::test]
async fn revocation_status_matches_the_documentation_field_for_field() {
    // The documentation's leaf and intermediate share the serial
    // 00:a7:30:9e:73:7b:3e:63:bd:b7:c0:7e:bf:d5:c9:86; so do these.
    let magnitude = [
        0xa7, 0x30, 0x9e, 0x73, 0x7b, 0x3e, 0x63, 0xbd, 0xb7, 0xc0, 0x7e, 0xbf, 0xd5, 0xc9, 0x86,
    ];
    let root = common::Ca::root("Root CA");
    let mut params = common::Ca::root("Intermediate CA").params;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&magnitude));
    let ica_key = rcgen::KeyPair::generate().unwrap();
    let ica_cert = params.signed_by(&ica_key, &root.issuer()).unwrap();
    let ica = common::Ca {
        params,
        key: ica_key,
        cert: ica_cert,
    };
    let doc_leaf = ica.issue_leaf(
        "client.example.com",
        &LeafOptions {
            serial: Some(magnitude.to_vec()),
            ..LeafOptions::default()
        },
        &[ica.der().clone()],
    );

    let checker = RevocationChecker::builder()
        .source_with_policy(Arc::new(DocumentationExample), FailurePolicy::SoftFail)
        .build()
        .unwrap();
    let chain =
        RevocationChain::from_der(doc_leaf.der(), [ica.der().as_ref()], root.der()).unwrap();
    let outcome = checker.check(&chain, UnixTime::now()).await;

    // The documentation's revocationStatus, with its `//` comments removed.
    let documented = serde_json::json!({
        "chainValidity": "Valid",
        "certificates": {
            "leaf": {
                "method": "OCSP",
                "status": "Good",
                "serialNumber": "00:a7:30:9e:73:7b:3e:63:bd:b7:c0:7e:bf:d5:c9:86"
            },
            "intermediates": [ {
                "method": "OCSP",
                "status": "Error",
                "errorType": "InternalError",
                "serialNumber": "00:a7:30:9e:73:7b:3e:63:bd:b7:c0:7e:bf:d5:c9:86"
            } ]
        }
    });
    let ours = serde_json::to_value(outcome.status()).unwrap();
    // Same fields, same values, except chainValidity: the documentation
    // calls a chain with an Error intermediate "Valid"; this crate reports
    // "Unknown" for any undetermined certificate (the documented set allows it).
    assert_eq!(ours["certificates"], documented["certificates"]);
    assert_eq!(ours["chainValidity"], "Unknown");
    // Field order as documented: method, status, errorType, serialNumber.
    let text = outcome.status().to_json();
    assert_eq!(
        text,
        concat!(
            r#"{"chainValidity":"Unknown","certificates":{"#,
            r#""leaf":{"method":"OCSP","status":"Good","serialNumber":"00:a7:30:9e:73:7b:3e:63:bd:b7:c0:7e:bf:d5:c9:86"},"#,
            r#""intermediates":[{"method":"OCSP","status":"Error","errorType":"InternalError","serialNumber":"00:a7:30:9e:73:7b:3e:63:bd:b7:c0:7e:bf:d5:c9:86"}]}}"#
        )
    );
    // The object round-trips (log-only details are not part of it).
    let back: edge_mtls::RevocationStatus = serde_json::from_str(&text).unwrap();
    assert_eq!(back.to_json(), text);

    // A deny list over the same chain: KVS entries, Valid, no errorType.
    let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
    store.put("01", "").unwrap();
    let outcome = deny_checker(store).check(&chain, UnixTime::now()).await;
    let json = serde_json::to_value(outcome.status()).unwrap();
    assert_eq!(json["chainValidity"], "Valid");
    assert_eq!(json["certificates"]["leaf"]["method"], "KVS");
    assert!(json["certificates"]["leaf"].get("errorType").is_none());
    // Keys of every entry are exactly the documented ones.
    let keys =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&json), keys(&documented));
    assert_eq!(
        keys(&json["certificates"]),
        keys(&documented["certificates"])
    );
    assert_eq!(
        keys(&json["certificates"]["leaf"]),
        keys(&documented["certificates"]["leaf"])
    );
}
