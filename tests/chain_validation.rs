//! Chain validation across modules (SPEC §4): path building from what
//! clients really send, the RFC 5280 checks on issuers, the verified-chain
//! cache against the clock, and the reason code each failure maps to.

mod common;

use std::time::{Duration, SystemTime};

use common::{validator, CaKind, LeafOptions, Pki};
use edge_mtls::{CertPosition, ReasonCode, TlsAlert, TrustStore, ValidationError};
use rustls_pki_types::UnixTime;

fn now() -> UnixTime {
    UnixTime::now()
}

fn at(offset_secs: i64) -> UnixTime {
    let secs = now().as_secs().checked_add_signed(offset_secs).unwrap();
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

const DAY: i64 = 86_400;

#[test]
fn intermediates_in_any_order_with_duplicates_and_extras() {
    let pki = Pki::new(2);
    let other = Pki::new(1);
    let leaf = pki.client("client", &LeafOptions::default());
    let v = validator(pki.root_store(), |b| b.max_chain_depth(4));
    // `leaf.chain` is [leaf, int2, int1].
    let (int2, int1) = (leaf.chain[1].as_ref(), leaf.chain[2].as_ref());
    let stray = other.intermediates[0].der().as_ref();

    let cases = [
        ("as sent", vec![int2, int1], vec![0, 1]),
        ("reversed", vec![int1, int2], vec![1, 0]),
        ("duplicates", vec![int2, int2, int1, int1], vec![0, 2]),
        ("extras", vec![stray, int1, stray, int2], vec![3, 1]),
    ];
    for (name, sent, expected) in cases {
        let path = v
            .validate(leaf.der(), &sent, now())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            path.intermediate_indices().collect::<Vec<_>>(),
            expected,
            "{name}: the path uses the right presented certificates, leaf's issuer first"
        );
    }
}

#[test]
fn intermediate_in_the_trust_store_is_an_anchor() {
    let pki = Pki::new(1);
    let leaf = pki.client("client", &LeafOptions::default());
    // Only the intermediate is trusted (CloudFront: any CA in the store is an
    // anchor, chain building stops there).
    let v = validator(
        common::trust_store(pki.intermediates[0].pem().as_bytes()),
        |b| b,
    );
    let path = v.validate(leaf.der(), &[], now()).unwrap();
    assert_eq!(path.intermediate_indices().count(), 0);
    // Sending the intermediate too changes nothing.
    let path = v
        .validate(leaf.der(), &leaf.intermediates(), now())
        .unwrap();
    assert_eq!(path.intermediate_indices().count(), 0);
}

#[test]
fn depth_limit_counts_the_anchor() {
    let pki = Pki::new(3);
    let leaf = pki.client("deep", &LeafOptions::default());
    let v = validator(pki.root_store(), |b| b.max_chain_depth(4));
    let err = v
        .validate(leaf.der(), &leaf.intermediates(), now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::MaxChainDepthExceeded { depth: 5, limit: 4 }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.reason_code(),
        ReasonCode::ClientCertMaxChainDepthExceeded
    );
    assert_eq!(err.tls_alert(), TlsAlert::BadCertificate);

    // leaf + 2 intermediates + root = 4 fits the default.
    let pki = Pki::new(2);
    let leaf = pki.client("fits", &LeafOptions::default());
    let v = validator(pki.root_store(), |b| b);
    v.validate(leaf.der(), &leaf.intermediates(), now())
        .expect("depth 4 is within the default limit of 4");
    let v = validator(pki.root_store(), |b| b.max_chain_depth(3));
    assert!(v
        .validate(leaf.der(), &leaf.intermediates(), now())
        .is_err());
}

#[test]
fn invalid_max_chain_depth_is_a_build_error() {
    let pki = Pki::new(0);
    for depth in [0, 1, 17] {
        let built = edge_mtls::ChainValidator::builder(pki.root_store(), common::provider())
            .max_chain_depth(depth)
            .build();
        assert!(built.is_err(), "max_chain_depth({depth}) must be refused");
    }
}

#[test]
fn non_ca_issuer_is_refused() {
    let pki = Pki::with_kinds(&[CaKind::NotCa]);
    let leaf = pki.client("client", &LeafOptions::default());
    let v = validator(pki.root_store(), |b| b);
    let err = v
        .validate(leaf.der(), &leaf.intermediates(), now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::IssuerNotCa {
                position: CertPosition::Intermediate(0)
            }
        ),
        "{err:?}"
    );
}

#[test]
fn path_len_constraint_is_enforced() {
    // root -> int1 (pathLen 0) -> int2 -> leaf: int2 is one CA too many.
    let pki = Pki::with_kinds(&[CaKind::PathLen(0), CaKind::Ca]);
    let leaf = pki.client("client", &LeafOptions::default());
    let v = validator(pki.root_store(), |b| b);
    let err = v
        .validate(leaf.der(), &leaf.intermediates(), now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::PathLenConstraintViolated {
                limit: 0,
                actual: 1,
                ..
            }
        ),
        "{err:?}"
    );

    // pathLen 1 allows it; pathLen 0 directly above the leaf is fine.
    let pki = Pki::with_kinds(&[CaKind::PathLen(1), CaKind::PathLen(0)]);
    let leaf = pki.client("client", &LeafOptions::default());
    let v = validator(pki.root_store(), |b| b);
    v.validate(leaf.der(), &leaf.intermediates(), now())
        .expect("pathLen 1 then 0 allows one CA below the first");
}

#[test]
fn name_constraints_of_an_intermediate_apply_to_the_leaf() {
    let pki = Pki::with_kinds(&[CaKind::PermittedDns("example.com")]);
    let v = validator(pki.root_store(), |b| b);

    let inside = pki.client("inside", &LeafOptions::dns("api.example.com"));
    v.validate(inside.der(), &inside.intermediates(), now())
        .expect("api.example.com is inside example.com");

    let outside = pki.client("outside", &LeafOptions::dns("api.example.net"));
    let err = v
        .validate(outside.der(), &outside.intermediates(), now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::NameConstraintViolation {
                position: CertPosition::Leaf,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.reason_code(), ReasonCode::ClientCertRejected);

    // A look-alike suffix is not inside the subtree.
    let lookalike = pki.client("lookalike", &LeafOptions::dns("evilexample.com"));
    assert!(v
        .validate(lookalike.der(), &lookalike.intermediates(), now())
        .is_err());
}

#[test]
fn intermediate_eku_restricts_what_it_issues() {
    let pki = Pki::with_kinds(&[CaKind::ServerAuthEku]);
    let leaf = pki.client("client", &LeafOptions::default());
    let v = validator(pki.root_store(), |b| b);
    let err = v
        .validate(leaf.der(), &leaf.intermediates(), now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::RequiredEkuNotFound {
                position: CertPosition::Intermediate(0),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.reason_code(), ReasonCode::ClientCertIntentInvalid);
}

#[test]
fn required_eku_is_configurable() {
    let pki = Pki::new(0);
    let server_cert = pki.client("server", &LeafOptions::server_auth_only());
    let default = validator(pki.root_store(), |b| b);
    let err = default.validate(server_cert.der(), &[], now()).unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::RequiredEkuNotFound {
                position: CertPosition::Leaf,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.tls_alert(), TlsAlert::UnsupportedCertificate);

    let none = validator(pki.root_store(), |b| b.required_eku(None));
    none.validate(server_cert.der(), &[], now())
        .expect("EKU check disabled");
    let server = validator(pki.root_store(), |b| {
        b.required_eku(Some(edge_mtls::KeyPurpose::ServerAuth))
    });
    server
        .validate(server_cert.der(), &[], now())
        .expect("serverAuth required and present");
}

#[test]
fn cached_verdict_never_outlives_the_validity_window() {
    let pki = Pki::new(1);
    let start = SystemTime::now() - Duration::from_secs(DAY as u64);
    let end = SystemTime::now() + Duration::from_secs(DAY as u64);
    let leaf = pki.client(
        "short-lived",
        &LeafOptions {
            validity: Some((start, end)),
            ..LeafOptions::default()
        },
    );
    // One validator, cache on (the default): the first call fills the cache.
    let v = validator(pki.root_store(), |b| b.cache_capacity(16));
    let sent = leaf.intermediates();
    v.validate(leaf.der(), &sent, now()).unwrap();
    v.validate(leaf.der(), &sent, now()).unwrap();

    let err = v.validate(leaf.der(), &sent, at(2 * DAY)).unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::Expired {
                position: CertPosition::Leaf,
                ..
            }
        ),
        "{err:?}"
    );
    let err = v.validate(leaf.der(), &sent, at(-2 * DAY)).unwrap_err();
    assert!(
        matches!(err, ValidationError::NotYetValid { .. }),
        "{err:?}"
    );
    assert_eq!(err.reason_code(), ReasonCode::ClientCertNotYetValid);
    // And back in the window it is valid again.
    v.validate(leaf.der(), &sent, now()).unwrap();
}

#[test]
fn cache_does_not_confuse_different_chains() {
    let pki = Pki::new(1);
    let leaf = pki.client("client", &LeafOptions::default());
    let v = validator(pki.root_store(), |b| b);
    v.validate(leaf.der(), &leaf.intermediates(), now())
        .unwrap();
    // Same leaf without its intermediate: a different chain, no cached pass.
    let err = v.validate(leaf.der(), &[], now()).unwrap_err();
    assert!(
        matches!(err, ValidationError::UnknownIssuer { .. }),
        "{err:?}"
    );
}

#[test]
fn ignore_expiration_covers_every_certificate_but_nothing_else() {
    let pki = Pki::new(1);
    let expired = pki.client("expired", &LeafOptions::expired());
    let lenient = validator(pki.root_store(), |b| b.ignore_expiration(true));
    let path = lenient
        .validate(expired.der(), &expired.intermediates(), now())
        .unwrap();
    assert!(
        path.is_expired_at(now()),
        "the policy must still see `expired`"
    );

    // Everything else is still enforced.
    let stranger = common::self_signed_client("stranger");
    assert!(matches!(
        lenient.validate(stranger.der(), &[], now()),
        Err(ValidationError::UnknownIssuer { .. })
    ));
    let server = pki.client("server", &LeafOptions::server_auth_only());
    assert!(matches!(
        lenient.validate(server.der(), &server.intermediates(), now()),
        Err(ValidationError::RequiredEkuNotFound { .. })
    ));
    // Far in the future, when root and intermediate are long expired as well.
    lenient
        .validate(
            expired.der(),
            &expired.intermediates(),
            at(3_000 * 365 * DAY),
        )
        .expect("ignore_expiration waives the CAs' dates too");
}

#[test]
fn presented_chain_size_limits() {
    let pki = Pki::new(2);
    let leaf = pki.client("client", &LeafOptions::default());
    let v = validator(pki.root_store(), |b| b.max_presented(1, 64 * 1024));
    let err = v
        .validate(leaf.der(), &leaf.intermediates(), now())
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::ChainTooLarge { .. }),
        "{err:?}"
    );
    assert_eq!(err.reason_code(), ReasonCode::ClientCertMaxSizeExceeded);

    let v = validator(pki.root_store(), |b| b.max_presented(8, 200));
    let err = v
        .validate(leaf.der(), &leaf.intermediates(), now())
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::ChainTooLarge { .. }),
        "{err:?}"
    );
}

#[test]
fn tampered_leaf_signature_is_refused() {
    let pki = Pki::new(0);
    let leaf = pki.client("client", &LeafOptions::default());
    let mut der = leaf.der().to_vec();
    // Flip a bit in the subject CN ("client"): still well-formed DER, but the
    // issuer's signature no longer covers these bytes.
    let at = der
        .windows(6)
        .position(|w| w == b"client")
        .expect("CN bytes");
    der[at] ^= 0x01;
    let v = validator(pki.root_store(), |b| b);
    let err = v.validate(&der, &[], now()).unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::BadSignature {
                position: CertPosition::Leaf
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.reason_code(), ReasonCode::ClientCertInvalid);
}

#[test]
fn issuer_signature_cache_answers_only_for_the_exact_intermediate() {
    let pki = Pki::new(1);
    let first = pki.client("first", &LeafOptions::default());
    let second = pki.client("second", &LeafOptions::default());
    let v = validator(pki.root_store(), |b| b.cache_capacity(0));
    // Warm the issuer-signature cache with the intermediate's signature.
    v.validate(first.der(), &first.intermediates(), now())
        .unwrap();
    // Another leaf of the same intermediate: the cached link is reused.
    v.validate(second.der(), &second.intermediates(), now())
        .unwrap();

    // The same intermediate with one bit of its signature flipped (the last
    // byte of the ECDSA `s` INTEGER: still well-formed DER).
    let mut intermediate = first.intermediates()[0].to_vec();
    *intermediate.last_mut().unwrap() ^= 0x01;
    let err = v
        .validate(second.der(), &[&intermediate], now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::BadSignature {
                position: CertPosition::Intermediate(0)
            }
        ),
        "{err:?}"
    );

    // A tampered leaf under the cached intermediate: leaf signatures are
    // checked on every validation.
    let mut leaf = second.der().to_vec();
    let at = leaf
        .windows(6)
        .position(|w| w == b"second")
        .expect("CN bytes");
    leaf[at] ^= 0x01;
    let err = v
        .validate(&leaf, &second.intermediates(), now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::BadSignature {
                position: CertPosition::Leaf
            }
        ),
        "{err:?}"
    );

    // With the cache disabled, the same chains give the same answers.
    let uncached = validator(pki.root_store(), |b| {
        b.cache_capacity(0).signature_cache_capacity(0)
    });
    uncached
        .validate(second.der(), &second.intermediates(), now())
        .unwrap();
    assert!(uncached
        .validate(second.der(), &[&intermediate], now())
        .is_err());
}

#[test]
fn garbage_leaf_is_a_bad_encoding() {
    let pki = Pki::new(0);
    let v = validator(pki.root_store(), |b| b);
    let err = v.validate(b"\x30\x03\x02\x01\x01", &[], now()).unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::BadEncoding {
                position: CertPosition::Leaf,
                ..
            }
        ),
        "{err:?}"
    );
    let leaf = pki.client("client", &LeafOptions::default());
    let err = v
        .validate(leaf.der(), &[b"not a certificate".as_slice()], now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::BadEncoding {
                position: CertPosition::Intermediate(0),
                ..
            }
        ),
        "{err:?}"
    );
}

/// Differential check against rustls-webpki (SPEC §4's oracle): on a corpus
/// of chains both can parse, this validator never accepts what webpki
/// rejects, and accepts what webpki accepts unless it is deliberately
/// stricter (the depth limit).
#[test]
fn never_accepts_what_webpki_rejects() {
    struct Case {
        name: &'static str,
        anchors: Vec<rustls_pki_types::CertificateDer<'static>>,
        leaf: common::Leaf,
        /// This crate checks something webpki does not (depth limit).
        stricter: bool,
    }
    let mut cases = Vec::new();
    let mut add = |name, pki: &Pki, options: &LeafOptions, stricter| {
        cases.push(Case {
            name,
            anchors: vec![pki.root.der().clone()],
            leaf: pki.client(name, options),
            stricter,
        });
    };
    let p0 = Pki::new(0);
    let p1 = Pki::new(1);
    let p2 = Pki::new(2);
    let p3 = Pki::new(3);
    add("direct", &p0, &LeafOptions::default(), false);
    add("one intermediate", &p1, &LeafOptions::default(), false);
    add("two intermediates", &p2, &LeafOptions::default(), false);
    add("depth 5", &p3, &LeafOptions::default(), true);
    add("expired", &p1, &LeafOptions::expired(), false);
    add("not yet valid", &p1, &LeafOptions::not_yet_valid(), false);
    add(
        "serverAuth only",
        &p1,
        &LeafOptions::server_auth_only(),
        false,
    );
    add(
        "unknown critical extension",
        &p1,
        &LeafOptions::unknown_critical_extension(),
        false,
    );
    add(
        "with SAN",
        &p1,
        &LeafOptions::dns("client.example.com"),
        false,
    );
    for alg in common::KeyAlg::ALL {
        let label: &'static str = Box::leak(format!("{alg:?} leaf").into_boxed_str());
        add(label, &p1, &LeafOptions::with_key(alg), false);
    }
    let non_ca = Pki::with_kinds(&[CaKind::NotCa]);
    add(
        "non-CA intermediate",
        &non_ca,
        &LeafOptions::default(),
        false,
    );
    let path_len = Pki::with_kinds(&[CaKind::PathLen(0), CaKind::Ca]);
    add(
        "pathLen violated",
        &path_len,
        &LeafOptions::default(),
        false,
    );
    let constrained = Pki::with_kinds(&[CaKind::PermittedDns("example.com")]);
    add(
        "name constraint inside",
        &constrained,
        &LeafOptions::dns("a.example.com"),
        false,
    );
    add(
        "name constraint outside",
        &constrained,
        &LeafOptions::dns("a.example.org"),
        false,
    );
    let server_eku = Pki::with_kinds(&[CaKind::ServerAuthEku]);
    add(
        "serverAuth intermediate",
        &server_eku,
        &LeafOptions::default(),
        false,
    );
    let stranger = common::self_signed_client("stranger");
    cases.push(Case {
        name: "untrusted self-signed",
        anchors: vec![p0.root.der().clone()],
        leaf: stranger,
        stricter: false,
    });
    let missing = p1.client("missing intermediate", &LeafOptions::default());
    cases.push(Case {
        name: "missing intermediate",
        anchors: vec![p1.root.der().clone()],
        leaf: common::Leaf {
            chain: vec![missing.chain[0].clone()],
            ..missing
        },
        stricter: false,
    });

    let provider = common::provider();
    let algs = provider.signature_verification_algorithms.all;
    let time = now();
    let (mut both_accept, mut both_reject) = (0, 0);
    for case in &cases {
        let bundle: String = case.anchors.iter().map(|a| common::der_to_pem(a)).collect();
        let ours = validator(common::trust_store(bundle.as_bytes()), |b| b).validate(
            case.leaf.der(),
            &case.leaf.intermediates(),
            time,
        );

        let anchors: Vec<_> = case
            .anchors
            .iter()
            .map(|a| webpki::anchor_from_trusted_cert(a).unwrap().to_owned())
            .collect();
        // A leaf webpki refuses to parse counts as a webpki rejection.
        let theirs = webpki::EndEntityCert::try_from(&case.leaf.chain[0]).and_then(|ee| {
            ee.verify_for_usage(
                algs,
                &anchors,
                &case.leaf.chain[1..],
                time,
                webpki::KeyUsage::client_auth(),
                None,
                None,
            )
            .map(|_| ())
        });

        match (&ours, &theirs) {
            (Ok(_), Err(e)) => panic!("{}: accepted, but webpki rejects: {e:?}", case.name),
            (Err(e), Ok(_)) if !case.stricter => {
                panic!("{}: rejected ({e}), but webpki accepts", case.name)
            }
            (Ok(_), Ok(_)) => both_accept += 1,
            (Err(_), Err(_)) => both_reject += 1,
            _ => {}
        }
    }
    // The corpus exercises both verdicts (a broken harness would not).
    assert!(
        both_accept >= 10 && both_reject >= 9,
        "{both_accept} / {both_reject}"
    );
}

/// Structure rules are decided per class and per profile: a chain that
/// breaks only an issuer's rule is accepted by `Interop` and refused by
/// `Strict` naming the rule; a rule OpenSSL and webpki both enforce (an
/// unhandled critical extension) is refused by both; a root's structure
/// breaks are load-time warnings, never load errors.
#[test]
fn profiles_decide_structure_rules_by_class() {
    use edge_mtls::{Profile, ProfileRule};
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};

    fn ca_params(cn: &str, aki: bool) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.use_authority_key_identifier_extension = aki;
        p
    }
    fn leaf_params(serial: Option<u8>, critical_aki: bool) -> CertificateParams {
        let mut p = CertificateParams::new(vec!["client.example".to_string()]).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "client");
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        p.use_authority_key_identifier_extension = !critical_aki;
        if let Some(s) = serial {
            p.serial_number = Some(rcgen::SerialNumber::from_slice(&[s]));
        }
        if critical_aki {
            // authorityKeyIdentifier { keyIdentifier 20 octets }, critical.
            let mut value = vec![0x30, 22, 0x80, 20];
            value.extend([0x5a; 20]);
            let mut ext = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 35], value);
            ext.set_criticality(true);
            p.custom_extensions.push(ext);
        }
        p
    }

    // root (serial 0, no AKI) -> intermediate without AKI -> leaf.
    let root_key = KeyPair::generate().unwrap();
    let mut root_params = ca_params("profile root", false);
    root_params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0]));
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = rcgen::Issuer::from_params(&root_params, &root_key);
    let int_key = KeyPair::generate().unwrap();
    let int_params = ca_params("profile intermediate", false);
    let int = int_params.signed_by(&int_key, &root_issuer).unwrap();
    let int_issuer = rcgen::Issuer::from_params(&int_params, &int_key);
    let leaf_for = |serial, critical_aki| {
        let key = KeyPair::generate().unwrap();
        leaf_params(serial, critical_aki)
            .signed_by(&key, &int_issuer)
            .unwrap()
    };

    let store =
        edge_mtls::TrustStore::from_pem(root.pem().as_bytes()).expect("a serial-0 root loads");
    assert!(
        store
            .warnings()
            .iter()
            .any(|w| w.to_string().contains("serial number is zero or negative")),
        "the serial-0 root is reported: {:?}",
        store.warnings()
    );
    let store = edge_mtls::TrustStoreHandle::new(store);
    let interop = validator(store.clone(), |b| b);
    let strict = validator(store, |b| b.profile(Profile::Strict));
    assert_eq!(
        interop.profile(),
        Profile::Interop,
        "Interop is the default"
    );
    let intermediates = [int.der().as_ref()];

    let plain = leaf_for(None, false);
    interop.validate(plain.der(), &intermediates, now()).expect(
        "interop accepts an intermediate without authorityKeyIdentifier under a serial-0 root",
    );
    let e = strict
        .validate(plain.der(), &intermediates, now())
        .unwrap_err();
    assert!(
        matches!(
            e,
            ValidationError::ProfileViolation {
                rule: ProfileRule::MissingAuthorityKeyIdentifier,
                position: CertPosition::Intermediate(0)
            } | ValidationError::ProfileViolation {
                rule: ProfileRule::SerialNotPositive,
                position: CertPosition::TrustAnchor(0)
            }
        ),
        "strict names the rule and the certificate: {e}"
    );
    assert_eq!(e.reason_code(), ReasonCode::ClientCertInvalid);

    let zero = leaf_for(Some(0), false);
    interop
        .validate(zero.der(), &intermediates, now())
        .expect("interop accepts serial 0");

    // Both OpenSSL and webpki refuse a critical authorityKeyIdentifier as an
    // unhandled critical extension: so do both profiles.
    let critical = leaf_for(None, true);
    for v in [&interop, &strict] {
        let e = v
            .validate(critical.der(), &intermediates, now())
            .unwrap_err();
        assert!(
            matches!(e, ValidationError::ProfileViolation { .. }),
            "{:?}: {e}",
            v.profile()
        );
        assert!(
            e.to_string()
                .contains("authorityKeyIdentifier marked critical")
                || v.profile() == Profile::Strict,
            "{e}"
        );
    }
    let e = interop
        .validate(critical.der(), &intermediates, now())
        .unwrap_err();
    assert_eq!(
        e,
        ValidationError::ProfileViolation {
            position: CertPosition::Leaf,
            rule: ProfileRule::CriticalAuthorityKeyIdentifier
        }
    );

    // Every rule has a source and a description, and the interop profile
    // enforces only what OpenSSL or webpki refuse as well.
    for rule in ProfileRule::ALL {
        assert!(!rule.description().is_empty());
        assert!(
            rule.source().to_string().starts_with("RFC 5280 §")
                || rule.source().to_string().starts_with("CA/B Forum BR ")
        );
        assert!(Profile::Strict.enforces(*rule));
    }
    let enforced: Vec<_> = ProfileRule::ALL
        .iter()
        .filter(|r| Profile::Interop.enforces(**r))
        .collect();
    assert_eq!(
        enforced,
        [
            &ProfileRule::SignatureAlgorithmMismatch,
            &ProfileRule::CriticalAuthorityKeyIdentifier,
            &ProfileRule::CriticalSubjectKeyIdentifier,
            &ProfileRule::CriticalAuthorityInfoAccess,
            &ProfileRule::CaWithoutKeyCertSign,
        ]
    );
}

/// A chain that runs out of the work budget is told apart from a malformed
/// one: its own reason code, so an operator sees an attack, not a broken PKI.
#[test]
fn an_exhausted_budget_has_its_own_reason_code() {
    let pki = Pki::new(2);
    let leaf = pki.client("client", &LeafOptions::default());
    let budget = edge_mtls::Budget {
        signatures: 1,
        ..edge_mtls::Budget::default()
    };
    let v = validator(pki.root_store(), |b| b.budget(budget));
    let sent: Vec<&[u8]> = leaf.chain[1..].iter().map(|c| c.as_ref()).collect();
    let e = v.validate(leaf.der(), &sent, now()).unwrap_err();
    assert!(
        matches!(e, ValidationError::BudgetExceeded { what: "signature" }),
        "{e}"
    );
    assert_eq!(
        e.reason_code(),
        ReasonCode::ClientCertValidationBudgetExceeded
    );
    assert_eq!(e.tls_alert(), TlsAlert::BadCertificate);
    // The same chain within the default budget validates.
    validator(pki.root_store(), |b| b)
        .validate(leaf.der(), &sent, now())
        .expect("valid within the default budget");
}

/// The path-building budget: each candidate issuer considered costs one
/// step; a chain needing more steps than allowed is refused as such.
#[test]
fn the_path_building_budget_bounds_candidate_issuers() {
    let pki = Pki::new(2);
    let leaf = pki.client("client", &LeafOptions::default());
    let sent: Vec<&[u8]> = leaf.chain[1..].iter().map(|c| c.as_ref()).collect();
    // leaf → intermediate 2 → intermediate 1 → root: three steps.
    let tight = edge_mtls::Budget {
        build_chain_calls: 2,
        ..edge_mtls::Budget::default()
    };
    let e = validator(pki.root_store(), |b| b.budget(tight))
        .validate(leaf.der(), &sent, now())
        .unwrap_err();
    assert!(
        matches!(
            e,
            ValidationError::BudgetExceeded {
                what: "path-building"
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.reason_code(),
        ReasonCode::ClientCertValidationBudgetExceeded
    );
    let enough = edge_mtls::Budget {
        build_chain_calls: 3,
        ..edge_mtls::Budget::default()
    };
    validator(pki.root_store(), |b| b.budget(enough))
        .validate(leaf.der(), &sent, now())
        .expect("three steps suffice");
}

/// The name-constraint budget: every comparison of a name with a subtree of
/// its form costs one; a subject DN is not compared with dNSName subtrees.
#[test]
fn the_name_constraint_budget_counts_same_form_comparisons() {
    let pki = Pki::with_kinds(&[CaKind::PermittedDns("example.com")]);
    let names: Vec<String> = (0..10).map(|i| format!("h{i}.example.com")).collect();
    let leaf = pki.client(
        "client",
        &LeafOptions {
            dns_names: names,
            ..LeafOptions::default()
        },
    );
    let sent: Vec<&[u8]> = leaf.chain[1..].iter().map(|c| c.as_ref()).collect();
    // One subtree, ten DNS names: ten comparisons.
    let nine = edge_mtls::Budget {
        name_constraint_comparisons: 9,
        ..edge_mtls::Budget::default()
    };
    let e = validator(pki.root_store(), |b| b.budget(nine))
        .validate(leaf.der(), &sent, now())
        .unwrap_err();
    assert!(
        matches!(
            e,
            ValidationError::BudgetExceeded {
                what: "name-constraint"
            }
        ),
        "{e}"
    );
    let ten = edge_mtls::Budget {
        name_constraint_comparisons: 10,
        ..edge_mtls::Budget::default()
    };
    validator(pki.root_store(), |b| b.budget(ten))
        .validate(leaf.der(), &sent, now())
        .expect("ten comparisons suffice");
}

/// The refused-chain cache answers within one trust-store generation only:
/// once the store trusts the issuer, the same chain is validated again and
/// accepted.
#[test]
fn a_remembered_refusal_ends_with_the_trust_store_generation() {
    let pki = Pki::new(1);
    let other = Pki::new(0);
    let leaf = pki.client("client", &LeafOptions::default());
    let sent: Vec<&[u8]> = leaf.chain[1..].iter().map(|c| c.as_ref()).collect();
    let store = other.root_store();
    let v = validator(store.clone(), |b| b.refusal_cache_capacity(16));
    for _ in 0..2 {
        let e = v.validate(leaf.der(), &sent, now()).unwrap_err();
        assert!(matches!(e, ValidationError::UnknownIssuer { .. }), "{e}");
    }
    store.replace(TrustStore::from_pem(pki.root.pem().as_bytes()).expect("store"));
    v.validate(leaf.der(), &sent, now())
        .expect("trusted under the new generation");
}
