//! CRL revocation with CRLs from the real `openssl ca` (v1 without a
//! `crlnumber` file, v2 with one), checked in real TLS handshakes over
//! 127.0.0.1; stale CRLs under each policy; forged and malformed CRLs;
//! negative serials; revocation ids and reloads (ALB semantics); whole-chain
//! scope; issuingDistributionPoint handling.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::crl_der::{subject_of, unix_now, CrlSpec, Entry};
use common::openssl_ca::{client_extensions, OpensslCa};
use common::revocation::{
    crl_pem_to_der, leaf_with_cdp, next_update_of, openssl_identity, revocation_server_config,
    serial_of, CrlValidity,
};
use common::{
    client_config_with_versions, handshake, handshake_with, provider, trust_store, Ca, CaKind,
    LeafOptions, Pki,
};
use edge_mtls::ReasonCode;
use edge_mtls::{
    CertPosition, CertStatus, CertStatusKind, CertToCheck, ChainValidity, FailurePolicy,
    ImmediateCheck, RevocationChain, RevocationChecker, RevocationError, RevocationScope,
    RevocationSource, SerialNumber,
};
use edge_mtls::{
    CrlError, CrlSource, CrlVersion, MissingCrlPolicy, RevocationId, RevocationList, StalePolicy,
};
use rustls::AlertDescription;
use rustls_pki_types::UnixTime;

fn crl_source() -> CrlSource {
    CrlSource::builder(&provider()).build()
}

fn checker(source: Arc<dyn RevocationSource>) -> Arc<RevocationChecker> {
    Arc::new(
        RevocationChecker::builder()
            .source(source)
            .build()
            .expect("checker"),
    )
}

fn at(secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

/// An `openssl ca` with clients `alice` (to be revoked) and `bob`.
fn ca_with_two_clients(name: &str) -> OpensslCa {
    let ca = OpensslCa::new(name);
    ca.issue("alice", "alice", &client_extensions(None));
    ca.issue("bob", "bob", &client_extensions(None));
    ca
}

#[tokio::test]
async fn v1_crl_from_openssl_ca_without_crlnumber_revokes_in_the_handshake() {
    let ca = ca_with_two_clients("CRL v1 CA");
    ca.revoke_without_reason("alice");
    let crl = ca.gen_crl("crl.pem", false, CrlValidity::Days(30));

    // What OpenSSL wrote is a v1 CRL: no version field, no extensions.
    let text = common::openssl(ca.dir(), &["crl", "-in", "crl.pem", "-noout", "-text"]);
    assert!(text.contains("Version 1 (0x0)"), "{text}");

    let store = trust_store(&ca.pem());
    let source = Arc::new(crl_source());
    let info = source
        .add_with_trust_store(&crl, &store.load())
        .expect("a v1 CRL signed by the CA");
    assert_eq!(info.version, CrlVersion::V1);
    assert_eq!(info.id, RevocationId(1));
    assert_eq!(info.entries, 1);
    assert_eq!(info.crl_number, None);
    assert_eq!(info.issuer, "CN=CRL v1 CA,O=edge-mtls tests");
    // The strict profile holds CRL issuers to RFC 5280 §5.2.3 (cRLNumber MUST).
    let strict = CrlSource::builder(&common::provider())
        .profile(edge_mtls::Profile::Strict)
        .build();
    assert_eq!(
        strict
            .add_with_trust_store(&crl, &store.load())
            .unwrap_err(),
        CrlError::ProfileViolation {
            rule: edge_mtls::ProfileRule::CrlWithoutCrlNumber
        }
    );

    let config = revocation_server_config(store, checker(source), |b| b);
    let (outcome, served) = handshake(config.clone(), Some(&openssl_identity(&ca, "alice"))).await;
    outcome.expect_alert(AlertDescription::CertificateRevoked);
    let error = served.expect_err("the server refused alice");
    assert!(error.contains("Revoked"), "{error}");

    let (outcome, served) = handshake(config, Some(&openssl_identity(&ca, "bob"))).await;
    assert_eq!(outcome.expect_accepted(), "ok\n");
    served.expect("bob served");
}

#[tokio::test]
async fn v2_crl_with_crlnumber_and_reason_over_tls12_and_tls13() {
    let ca = ca_with_two_clients("CRL v2 CA");
    ca.revoke("alice", "keyCompromise");
    let crl = ca.gen_crl("crl.pem", true, CrlValidity::Days(30));
    let text = common::openssl(ca.dir(), &["crl", "-in", "crl.pem", "-noout", "-text"]);
    assert!(text.contains("Version 2 (0x1)"), "{text}");

    let store = trust_store(&ca.pem());
    let source = Arc::new(crl_source());
    let info = source.add(&crl, &[&ca.der()]).expect("v2 CRL");
    assert_eq!(info.version, CrlVersion::V2);
    // OpenSSL writes the number from the crlnumber file (hex 1000).
    assert_eq!(info.crl_number.as_deref(), Some("10:00"));

    // The reason and date reach the status.
    let alice = ca.cert_der("alice");
    let status = source
        .check_now(
            &CertToCheck {
                cert: &parsed(&alice),
                issuer: &parsed(&ca.der()),
                position: CertPosition::Leaf,
            },
            UnixTime::now(),
        )
        .expect("CRLs answer synchronously");
    assert!(
        matches!(status, CertStatus::Revoked { reason: Some(edge_mtls::CrlReason::KEY_COMPROMISE), revoked_at: Some(t) } if t + 600 > unix_now()),
        "{status:?}"
    );

    let config = revocation_server_config(store, checker(source), |b| b);
    for versions in [
        &[&rustls::version::TLS12][..],
        &[&rustls::version::TLS13][..],
    ] {
        let alice = openssl_identity(&ca, "alice");
        let (outcome, _) = handshake_with(
            config.clone(),
            client_config_with_versions(Some(&alice), versions),
        )
        .await;
        outcome.expect_alert(AlertDescription::CertificateRevoked);
        let bob = openssl_identity(&ca, "bob");
        let (outcome, _) = handshake_with(
            config.clone(),
            client_config_with_versions(Some(&bob), versions),
        )
        .await;
        outcome.expect_accepted();
    }
}

#[tokio::test]
async fn negative_serial_is_revoked() {
    // ALB cannot revoke negative serials; this crate can.
    let ca = OpensslCa::new("Negative serial CA");
    ca.issue_outside_database("minus5", "minus5", "-5");
    ca.issue_outside_database("minus6", "minus6", "-6");
    let text = common::openssl(
        ca.dir(),
        &["x509", "-in", "minus5.pem", "-noout", "-serial"],
    );
    assert_eq!(text.trim(), "serial=-05");
    // `openssl ca -revoke` adds the unknown certificate to index.txt as revoked.
    ca.revoke("minus5", "keyCompromise");
    let crl = ca.gen_crl("crl.pem", false, CrlValidity::Days(30));

    let der = crl_pem_to_der(&crl);
    let list = RevocationList::parse(&der).expect("parse");
    let minus5 = SerialNumber::parse("-5").unwrap();
    assert!(minus5.is_negative());
    assert!(list.lookup(&minus5).is_some());
    assert!(list.lookup(&SerialNumber::parse("5").unwrap()).is_none());
    assert!(list.lookup(&SerialNumber::parse("fb").unwrap()).is_none());

    let store = trust_store(&ca.pem());
    let source = Arc::new(crl_source());
    source.add(&crl, &[&ca.der()]).expect("CRL");
    let config = revocation_server_config(store, checker(source), |b| b);
    let (outcome, _) = handshake(config.clone(), Some(&openssl_identity(&ca, "minus5"))).await;
    outcome.expect_alert(AlertDescription::CertificateRevoked);
    let (outcome, _) = handshake(config, Some(&openssl_identity(&ca, "minus6"))).await;
    outcome.expect_accepted();
}

#[tokio::test]
async fn stale_crl_goes_stale_during_the_test_and_denies() {
    let ca = ca_with_two_clients("Stale CRL CA");
    let crl = ca.gen_crl("crl.pem", true, CrlValidity::Seconds(1));
    let store = trust_store(&ca.pem());
    let source = Arc::new(crl_source());
    source.add(&crl, &[&ca.der()]).expect("CRL");
    let config = revocation_server_config(store, checker(source), |b| b);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    // Past nextUpdate, no grace, StalePolicy::Deny: undetermined, so the
    // handshake ends with unknown_ca (as OpenSSL and rustls do).
    let (outcome, served) = handshake(config, Some(&openssl_identity(&ca, "bob"))).await;
    outcome.expect_alert(AlertDescription::UnknownCA);
    assert!(served.unwrap_err().contains("UnknownRevocationStatus"));
}

#[test]
fn stale_crl_follows_the_configured_policy() {
    let ca = ca_with_two_clients("Stale policy CA");
    ca.revoke("alice", "superseded");
    let crl = ca.gen_crl("crl.pem", true, CrlValidity::Days(1));
    let (alice, bob, ca_der) = (ca.cert_der("alice"), ca.cert_der("bob"), ca.der());
    let (alice, bob) = (alice.as_slice(), bob.as_slice());
    let next_update = next_update_of(&crl);

    let run = |stale: StalePolicy, failure: FailurePolicy, grace: u64, now: u64, leaf: &[u8]| {
        let source = CrlSource::builder(&provider())
            .stale_policy(stale)
            .grace(Duration::from_secs(grace))
            .build();
        source.add(&crl, &[&ca_der]).expect("CRL");
        let checker = RevocationChecker::builder()
            .source_with_policy(Arc::new(source), failure)
            .build()
            .unwrap();
        checker.check_now(
            &RevocationChain::from_der(leaf, [], &ca_der).unwrap(),
            at(now),
        )
    };
    let fresh = next_update - 60;
    let stale = next_update + 3600;

    // Fresh: bob is good.
    let ImmediateCheck::Allowed(status) =
        run(StalePolicy::Deny, FailurePolicy::HardFail, 0, fresh, bob)
    else {
        panic!("fresh CRL, good certificate")
    };
    assert_eq!(status.chain_validity, ChainValidity::Valid);

    // Deny: stale denies whatever the failure policy.
    for failure in [FailurePolicy::HardFail, FailurePolicy::SoftFail] {
        let ImmediateCheck::Denied(e) = run(StalePolicy::Deny, failure, 0, stale, bob) else {
            panic!("stale CRL under Deny must deny ({failure:?})")
        };
        assert_eq!(e.reason_code(), ReasonCode::ClientCertCrlProcessingError);
        assert!(e.to_string().contains("is not current"), "{e}");
    }
    // A grace window keeps it current.
    assert!(matches!(
        run(StalePolicy::Deny, FailurePolicy::HardFail, 7200, stale, bob),
        ImmediateCheck::Allowed(_)
    ));
    // TreatAsUnknown: denied under hard-fail, allowed (reported Unknown) under soft-fail.
    assert!(matches!(
        run(
            StalePolicy::TreatAsUnknown,
            FailurePolicy::HardFail,
            0,
            stale,
            bob
        ),
        ImmediateCheck::Denied(RevocationError::CrlProcessing { .. })
    ));
    let ImmediateCheck::Allowed(status) = run(
        StalePolicy::TreatAsUnknown,
        FailurePolicy::SoftFail,
        0,
        stale,
        bob,
    ) else {
        panic!("soft-fail forgives Unknown")
    };
    assert_eq!(status.chain_validity, ChainValidity::Unknown);
    assert_eq!(status.certificates.leaf.status, CertStatusKind::Unknown);
    // KeepUsing: the stale CRL still answers.
    assert!(matches!(
        run(
            StalePolicy::KeepUsing,
            FailurePolicy::HardFail,
            0,
            stale,
            bob
        ),
        ImmediateCheck::Allowed(_)
    ));
    // A revocation in a stale CRL is still a revocation.
    for policy in [StalePolicy::KeepUsing, StalePolicy::TreatAsUnknown] {
        assert!(matches!(
            run(policy, FailurePolicy::SoftFail, 0, stale, alice),
            ImmediateCheck::Denied(RevocationError::Revoked {
                reason: Some(edge_mtls::CrlReason::SUPERSEDED),
                ..
            })
        ));
    }
    // A CRL from the future (thisUpdate beyond the skew) is not current either.
    let before = next_update - 2 * 86_400;
    assert!(matches!(
        run(StalePolicy::Deny, FailurePolicy::HardFail, 0, before, bob),
        ImmediateCheck::Denied(RevocationError::CrlProcessing { .. })
    ));
}

#[test]
fn crl_signed_by_the_wrong_key_is_rejected() {
    let ca = ca_with_two_clients("Wrong key CA");
    ca.revoke("alice", "keyCompromise");
    // Same name, different key: an impostor.
    let impostor = OpensslCa::new("Wrong key CA");
    impostor.issue("x", "x", &client_extensions(None));
    impostor.revoke("x", "keyCompromise");
    let forged = impostor.gen_crl("crl.pem", true, CrlValidity::Days(30));
    let source = crl_source();
    let err = source.add(&forged, &[&ca.der()]).unwrap_err();
    assert_eq!(
        err,
        CrlError::BadSignature {
            issuer: "CN=Wrong key CA,O=edge-mtls tests".into(),
            candidates: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "CRL signature does not verify with the key of CN=Wrong key CA,O=edge-mtls tests (1 candidate certificate(s) tried)"
    );
    // The real CA's CRL with one flipped signature bit.
    let genuine = ca.gen_crl("crl.pem", true, CrlValidity::Days(30));
    let mut der = crl_pem_to_der(&genuine);
    let last = der.len() - 1;
    der[last] ^= 1;
    assert!(matches!(
        source.add(&der, &[&ca.der()]),
        Err(CrlError::BadSignature { .. })
    ));
    // A CRL from a CA nobody gave.
    let stranger = OpensslCa::new("Stranger CA");
    let theirs = stranger.gen_crl("crl.pem", false, CrlValidity::Days(30));
    assert_eq!(
        source.add(&theirs, &[&ca.der()]).unwrap_err().to_string(),
        "CRL issuer CN=Stranger CA,O=edge-mtls tests is not among the given CA certificates"
    );
    assert!(source.list().is_empty(), "nothing was added");
    // Both CA certificates given: the genuine one verifies.
    assert!(source.add(&genuine, &[&impostor.der(), &ca.der()]).is_ok());
}

#[test]
fn revocation_ids_are_stable_and_never_reused_and_files_reload() {
    let ca = ca_with_two_clients("Reload CA");
    ca.revoke("alice", "keyCompromise");
    let first = ca.gen_crl("crl.pem", true, CrlValidity::Days(30));
    let other = OpensslCa::new("Other CA");
    let other_crl = other.gen_crl("crl.pem", false, CrlValidity::Days(30));

    let source = Arc::new(crl_source());
    let a = source.add_file(ca.path("crl.pem"), &[&ca.der()]).unwrap();
    let b = source.add(&other_crl, &[&other.der()]).unwrap();
    assert_eq!((a.id, b.id), (RevocationId(1), RevocationId(2)));
    assert_eq!(a.path.as_deref(), Some(ca.path("crl.pem").as_path()));
    let removed = source.remove(RevocationId(1)).unwrap();
    assert_eq!(removed.entries, 1);
    assert_eq!(
        source.remove(RevocationId(1)),
        Err(CrlError::NotFound(RevocationId(1)))
    );
    let again = source.add_file(ca.path("crl.pem"), &[&ca.der()]).unwrap();
    assert_eq!(again.id, RevocationId(3), "ids are never reused");
    let ids: Vec<_> = source.list().iter().map(|i| i.id).collect();
    assert_eq!(ids, vec![RevocationId(2), RevocationId(3)]);

    let bob = ca.cert_der("bob");
    let ca_der = ca.der();
    let bob_status = |s: &CrlSource| {
        s.check_now(
            &CertToCheck {
                cert: &parsed(&bob),
                issuer: &parsed(&ca_der),
                position: CertPosition::Leaf,
            },
            UnixTime::now(),
        )
    };
    assert_eq!(bob_status(&source), Some(CertStatus::Good));

    // The CA revokes bob and publishes a new CRL to the same file.
    std::thread::sleep(Duration::from_millis(1100)); // a later thisUpdate
    ca.revoke("bob", "cessationOfOperation");
    ca.gen_crl("crl.pem", true, CrlValidity::Days(30));
    let reloaded = source.reload(RevocationId(3)).unwrap();
    assert_eq!((reloaded.id, reloaded.entries), (RevocationId(3), 2));
    assert_eq!(reloaded.crl_number.as_deref(), Some("10:01"));
    assert!(matches!(
        bob_status(&source),
        Some(CertStatus::Revoked {
            reason: Some(edge_mtls::CrlReason::CESSATION_OF_OPERATION),
            ..
        })
    ));

    // Rolling the file back to the older CRL is refused; the newer stays.
    std::fs::write(ca.path("crl.pem"), &first).unwrap();
    assert!(matches!(
        source.reload(RevocationId(3)),
        Err(CrlError::Older { .. })
    ));
    assert!(matches!(
        bob_status(&source),
        Some(CertStatus::Revoked { .. })
    ));
    // Garbage in the file: refused, the CRL in use stays.
    std::fs::write(ca.path("crl.pem"), b"not a CRL").unwrap();
    assert!(matches!(
        source.reload(RevocationId(3)),
        Err(CrlError::NotACrl { .. })
    ));
    assert_eq!(source.get(RevocationId(3)).unwrap().entries, 2);
    assert_eq!(
        source.reload(RevocationId(2)),
        Err(CrlError::NotFromFile(RevocationId(2)))
    );
    let all = source.reload_all();
    assert_eq!(all.len(), 1);
}

#[tokio::test]
async fn whole_chain_scope_checks_intermediates_leaf_only_does_not() {
    let pki = Pki::new(1);
    let leaf = pki.client("chain client", &LeafOptions::default());
    let intermediate = &pki.intermediates[0];
    let now = unix_now();
    // The root revokes the intermediate; the intermediate's own CRL is empty.
    let mut root_crl = CrlSpec::new(subject_of(pki.root.der()), now);
    root_crl
        .entries
        .push(Entry::new(&serial_of(intermediate.der()), now - 60).with_reason(2));
    let root_crl = root_crl
        .with_crl_number(7, false)
        .sign(&pki.root.key.serialize_der());
    let issuing_crl = CrlSpec::new(subject_of(intermediate.der()), now)
        .with_crl_number(1, false)
        .sign(&intermediate.key.serialize_der());

    let source = Arc::new(crl_source());
    source.add(&root_crl, &[pki.root.der()]).expect("root CRL");
    source
        .add(&issuing_crl, &[intermediate.der()])
        .expect("intermediate CRL");

    let whole = checker(source.clone());
    let config = revocation_server_config(pki.root_store(), whole.clone(), |b| b);
    let (outcome, _) = handshake(config, Some(&leaf.identity())).await;
    outcome.expect_alert(AlertDescription::CertificateRevoked);

    let chain =
        RevocationChain::from_der(leaf.der(), [intermediate.der().as_ref()], pki.root.der())
            .unwrap();
    let outcome = whole.check(&chain, UnixTime::now()).await;
    let status = outcome.status();
    assert_eq!(status.chain_validity, ChainValidity::Invalid);
    assert_eq!(status.certificates.leaf.status, CertStatusKind::Good);
    assert_eq!(status.certificates.intermediates.len(), 1);
    assert_eq!(
        status.certificates.intermediates[0].status,
        CertStatusKind::Revoked
    );
    assert!(matches!(
        outcome.error(),
        Some(RevocationError::Revoked {
            position: CertPosition::Intermediate(0),
            reason: Some(edge_mtls::CrlReason::CA_COMPROMISE),
            ..
        })
    ));
    let json = serde_json::to_value(status).unwrap();
    assert_eq!(json["certificates"]["intermediates"][0]["method"], "CRL");

    let leaf_only = Arc::new(
        RevocationChecker::builder()
            .source(source)
            .scope(RevocationScope::LeafOnly)
            .build()
            .unwrap(),
    );
    let config = revocation_server_config(pki.root_store(), leaf_only, |b| b);
    let (outcome, _) = handshake(config, Some(&leaf.identity())).await;
    outcome.expect_accepted();
}

#[test]
fn issuers_without_a_crl_follow_the_missing_crl_policy() {
    let pki = Pki::new(0);
    let leaf = pki.client("no crl", &LeafOptions::default());
    let chain = RevocationChain::from_der(leaf.der(), [], pki.root.der()).unwrap();
    // Default: not checked (ALB) — reported Unknown, allowed.
    let ImmediateCheck::Allowed(status) =
        checker(Arc::new(crl_source())).check_now(&chain, UnixTime::now())
    else {
        panic!("no CRL for the issuer is not a denial by default")
    };
    assert_eq!(status.certificates.leaf.status, CertStatusKind::Unknown);
    assert!(status.certificates.leaf.error_type.is_none());
    // Required: Unknown, denied under hard-fail.
    let strict = CrlSource::builder(&provider())
        .missing_crl(MissingCrlPolicy::Unknown)
        .build();
    assert!(matches!(
        checker(Arc::new(strict)).check_now(&chain, UnixTime::now()),
        ImmediateCheck::Denied(RevocationError::CrlProcessing { .. })
    ));
}

#[test]
fn unsupported_crl_features_are_rejected_with_a_named_reason() {
    let ca = Ca::root("Feature CA");
    let key = ca.key.serialize_der();
    let issuer = subject_of(ca.der());
    let now = unix_now();
    let add = |spec: &CrlSpec| crl_source().add(&spec.sign(&key), &[ca.der()]);
    let base = || CrlSpec::new(issuer.clone(), now).with_crl_number(1, false);

    assert!(add(&base()).is_ok());
    // RFC 5280 §5.2.3: cRLNumber MUST be non-critical (x509-limbo crl::crlnumber-critical).
    assert!(matches!(
        add(&CrlSpec::new(issuer.clone(), now).with_crl_number(1, true)),
        Err(CrlError::CriticalityViolation { .. })
    ));
    let mut unknown = base();
    unknown.extensions.push((
        vec![0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb2, 0x03, 0x01],
        true,
        vec![0x05, 0x00],
    ));
    assert_eq!(
        add(&unknown).unwrap_err().to_string(),
        "unsupported critical CRL extension 1.3.6.1.4.1.55555.1"
    );
    let mut delta = base();
    delta
        .extensions
        .push((vec![0x55, 0x1d, 0x1b], true, vec![0x02, 0x01, 0x01]));
    assert_eq!(add(&delta), Err(CrlError::DeltaCrl));
    let mut entry_ext = base();
    let mut e = Entry::new(&[0x01], now);
    e.extensions.push((
        vec![0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb2, 0x03, 0x02],
        true,
        vec![0x05, 0x00],
    ));
    entry_ext.entries.push(e);
    assert_eq!(
        add(&entry_ext).unwrap_err().to_string(),
        "entry 01: unsupported critical CRL entry extension 1.3.6.1.4.1.55555.2"
    );
    let mut indirect = base();
    let mut e = Entry::new(&[0x02], now);
    e.extensions
        .push((vec![0x55, 0x1d, 0x1d], true, vec![0x30, 0x00]));
    indirect.entries.push(e);
    assert_eq!(add(&indirect), Err(CrlError::IndirectCrl));
    // issuingDistributionPoint: indirectCRL, onlySomeReasons, attribute certificates.
    for (idp, expected) in [
        (vec![0x30, 0x03, 0x84, 0x01, 0xff], "indirect CRLs"),
        (vec![0x30, 0x04, 0x83, 0x02, 0x07, 0x80], "onlySomeReasons"),
        (
            vec![0x30, 0x03, 0x85, 0x01, 0xff],
            "onlyContainsAttributeCerts",
        ),
    ] {
        let mut spec = base();
        spec.extensions.push((vec![0x55, 0x1d, 0x1c], true, idp));
        let err = add(&spec).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
    // The number of CRL extensions is bounded (decoded before the signature check).
    let mut crowded = base();
    for i in 0..40u8 {
        crowded.extensions.push((
            vec![0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb2, 0x04, i],
            false,
            vec![0x05, 0x00],
        ));
    }
    assert_eq!(
        add(&crowded),
        Err(CrlError::Malformed {
            field: "too many CRL extensions"
        })
    );
    // A v1 CRL may not carry extensions (RFC 5280 §5.1.2.1).
    let mut v1 = base();
    v1.v2 = false;
    assert!(matches!(add(&v1), Err(CrlError::Malformed { .. })));
    // A CA whose keyUsage lacks cRLSign may not sign CRLs (x509-limbo crl::issuer-missing-crlsign).
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "No cRLSign CA");
    let no_crl_sign_key = rcgen::KeyPair::generate().unwrap();
    let no_crl_sign = params.self_signed(&no_crl_sign_key).unwrap();
    let spec = CrlSpec::new(subject_of(no_crl_sign.der()), now);
    assert!(matches!(
        crl_source().add(
            &spec.sign(&no_crl_sign_key.serialize_der()),
            &[no_crl_sign.der()]
        ),
        Err(CrlError::IssuerCannotSignCrls { .. })
    ));
}

#[test]
fn issuing_distribution_points_narrow_what_a_crl_covers() {
    let pki = Pki::with_kinds(&[CaKind::Ca]);
    let ca = &pki.intermediates[0];
    let url = "http://crl.example/ica.crl";
    let with_cdp = leaf_with_cdp(ca, "cdp client", Some(url));
    let without_cdp = leaf_with_cdp(ca, "no cdp client", None);
    let now = unix_now();
    let idp_full_name = {
        let uri = common::crl_der::tlv(0x86, url.as_bytes());
        let full_name = common::crl_der::tlv(0xa0, &uri);
        let dp = common::crl_der::tlv(0xa0, &full_name);
        common::crl_der::tlv(0x30, &dp)
    };
    let mut spec = CrlSpec::new(subject_of(ca.der()), now).with_crl_number(3, false);
    spec.extensions
        .push((vec![0x55, 0x1d, 0x1c], true, idp_full_name));
    for leaf in [&with_cdp, &without_cdp] {
        spec.entries.push(Entry::new(&serial_of(leaf), now - 10));
    }
    let source = Arc::new(crl_source());
    source
        .add(&spec.sign(&ca.key.serialize_der()), &[ca.der()])
        .expect("partitioned CRL");

    let status = |leaf: &[u8]| {
        let chain = RevocationChain::from_der(leaf, [], ca.der()).unwrap();
        checker(source.clone()).check_now(&chain, UnixTime::now())
    };
    // Names the CRL's distribution point: covered, and revoked.
    assert!(matches!(
        status(&with_cdp),
        ImmediateCheck::Denied(RevocationError::Revoked { .. })
    ));
    // Names none: a partitioned CRL does not speak for it.
    let ImmediateCheck::Allowed(s) = status(&without_cdp) else {
        panic!("outside the CRL's partition")
    };
    assert_eq!(s.certificates.leaf.status, CertStatusKind::Unknown);

    // onlyContainsCACerts: a CA-only CRL says nothing about leaves.
    let mut ca_only = CrlSpec::new(subject_of(ca.der()), now).with_crl_number(4, false);
    ca_only.extensions.push((
        vec![0x55, 0x1d, 0x1c],
        true,
        vec![0x30, 0x03, 0x82, 0x01, 0xff],
    ));
    ca_only
        .entries
        .push(Entry::new(&serial_of(&with_cdp), now - 10));
    let source = Arc::new(crl_source());
    source
        .add(&ca_only.sign(&ca.key.serialize_der()), &[ca.der()])
        .unwrap();
    let chain = RevocationChain::from_der(&with_cdp, [], ca.der()).unwrap();
    assert!(matches!(
        checker(source).check_now(&chain, UnixTime::now()),
        ImmediateCheck::Allowed(_)
    ));
}

#[test]
fn a_hundred_thousand_entries_index_and_answer() {
    let ca = Ca::root("Big CRL CA");
    let now = unix_now();
    let mut spec = CrlSpec::new(subject_of(ca.der()), now).with_crl_number(9, false);
    for i in 0u32..100_000 {
        let mut serial = vec![0x00, 0x9f];
        serial.extend_from_slice(&i.to_be_bytes());
        let mut entry = Entry::new(&serial, now - 100);
        if i % 10 == 0 {
            entry = entry.with_reason(1);
        }
        spec.entries.push(entry);
    }
    let der = spec.sign(&ca.key.serialize_der());
    let source = crl_source();
    let info = source.add(&der, &[ca.der()]).unwrap();
    assert_eq!(info.entries, 100_000);
    let list = RevocationList::parse(&der).unwrap();
    assert_eq!(list.entries().count(), 100_000);
    let hit = list
        .lookup(&SerialNumber::parse("9f:00:00:00:0a").unwrap())
        .unwrap();
    assert_eq!(hit.reason, Some(edge_mtls::CrlReason::KEY_COMPROMISE));
    assert!(list
        .lookup(&SerialNumber::parse("9f:00:01:86:a0").unwrap())
        .is_none());
}

/// A certificate parsed, as the validator hands them to revocation sources.
fn parsed(der: &[u8]) -> edge_mtls::ParsedCertificate {
    edge_mtls::ParsedCertificate::from_der(der.to_vec()).expect("a certificate")
}
