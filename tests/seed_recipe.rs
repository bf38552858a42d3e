//! The OpenSSL recipe of seed 000 (CloudFront viewer mTLS), run with the real
//! `openssl` binary, must produce certificates the validator accepts.
//!
//! OpenSSL 3.0's `x509 -req` without `-extfile` issues X.509 v1 certificates
//! (no extensions at all); SPEC §4 requires them to be accepted as leaves.

mod common;

use std::time::Duration;

use common::{openssl, openssl_line, seed_pki, validator, LeafOptions, Pki};
use edge_mtls::{CertPosition, ReasonCode, TlsAlert, TrustStore, ValidationError};
use rustls_pki_types::UnixTime;

fn now() -> UnixTime {
    UnixTime::now()
}

#[test]
fn seed_client_is_x509_v1_without_extensions() {
    let seed = seed_pki();
    let dir = tempfile::tempdir().unwrap();
    seed.write_to(dir.path(), &["my_client.pem"]);
    let text = openssl(
        dir.path(),
        &["x509", "-in", "my_client.pem", "-noout", "-text"],
    );
    assert!(
        text.contains("Version: 1 (0x0)"),
        "the seed recipe is expected to yield a v1 certificate on OpenSSL 3.0:\n{text}"
    );
    assert!(!text.contains("X509v3 extensions"), "{text}");
}

#[test]
fn seed_client_validates_against_seed_root() {
    let seed = seed_pki();
    let store = TrustStore::from_pem(seed.file("Root_CA.pem")).unwrap();
    assert_eq!(store.len(), 1);
    assert_eq!(
        store.anchors()[0].subject(),
        "CN=rootcamtls.com,OU=rootCA,O=mTLS,L=Seattle,ST=Washington,C=US"
    );
    let handle = edge_mtls::TrustStoreHandle::new(store);
    let v = validator(handle, |b| b);
    let client = seed.cert_der("my_client.pem");
    let path = v
        .validate(&client, &[], now())
        .expect("the seed's v1 client certificate must validate");
    assert_eq!(anchor_index(&v, &path), 0);
    assert_eq!(path.intermediate_indices().count(), 0);
    assert_eq!(path.trust_store_generation(), 1);
}

#[test]
fn seed_client_expires_after_its_ten_years() {
    let seed = seed_pki();
    let client = seed.cert_der("my_client.pem");
    let later = UnixTime::since_unix_epoch(Duration::from_secs(now().as_secs() + 3651 * 86_400));

    let strict = validator(common::trust_store(seed.file("Root_CA.pem")), |b| b);
    let err = strict.validate(&client, &[], later).unwrap_err();
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
    assert_eq!(err.reason_code(), ReasonCode::ClientCertExpired);
    assert_eq!(err.tls_alert(), TlsAlert::CertificateExpired);

    // The root (also 3650 days) has expired by then too; ignore_expiration
    // waives every certificate's dates.
    let lenient = validator(common::trust_store(seed.file("Root_CA.pem")), |b| {
        b.ignore_expiration(true)
    });
    lenient
        .validate(&client, &[], later)
        .expect("ignore_expiration accepts the expired seed certificate");
}

#[test]
fn seed_client_is_untrusted_by_another_root() {
    let seed = seed_pki();
    let other = Pki::new(0);
    let v = validator(other.root_store(), |b| b);
    let err = v
        .validate(&seed.cert_der("my_client.pem"), &[], now())
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::UnknownIssuer { .. }),
        "{err:?}"
    );
    assert_eq!(err.reason_code(), ReasonCode::ClientCertUntrusted);
    assert_eq!(err.tls_alert(), TlsAlert::UnknownCa);
}

#[test]
fn seed_bundle_with_intermediate_validates_intermediate_client() {
    let seed = seed_pki();
    // `cat Root_CA.pem Intermediate_CA.pem > Trust_store_bundle.pem`
    let store = TrustStore::from_pem(seed.file("Trust_store_bundle.pem")).unwrap();
    assert_eq!(store.len(), 2, "both CAs of the bundle are anchors");
    assert!(store.warnings().is_empty(), "{:?}", store.warnings());
    let v = validator(edge_mtls::TrustStoreHandle::new(store), |b| b);

    // The client sends only its own certificate: the intermediate in the
    // store is an anchor, so the path ends there.
    let client = seed.cert_der("intermediate_client.pem");
    let path = v
        .validate(&client, &[], now())
        .expect("client of the bundled intermediate validates");
    assert_eq!(anchor_index(&v, &path), 1, "the intermediate is the anchor");

    // The root-issued seed client validates against the same bundle.
    v.validate(&seed.cert_der("my_client.pem"), &[], now())
        .expect("root-issued client validates against the bundle");
}

#[test]
fn seed_root_only_store_with_intermediate_sent_by_client() {
    let seed = seed_pki();
    let v = validator(common::trust_store(seed.file("Root_CA.pem")), |b| b);
    let client = seed.cert_der("intermediate_client.pem");
    let intermediate = seed.cert_der("Intermediate_CA.pem");

    let path = v
        .validate(&client, &[intermediate.as_ref()], now())
        .expect("root -> sent intermediate -> v1 client validates");
    assert_eq!(path.intermediate_indices().collect::<Vec<_>>(), vec![0]);
    assert_eq!(anchor_index(&v, &path), 0);

    // Without the intermediate there is no path.
    let err = v.validate(&client, &[], now()).unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::UnknownIssuer {
                position: CertPosition::Leaf
            }
        ),
        "{err:?}"
    );
}

#[test]
fn seed_v1_client_is_never_an_issuer() {
    // A certificate "signed" by the v1 seed client: the recipe's v1 leaf must
    // not be usable as a CA even though OpenSSL will happily sign with it.
    let seed = seed_pki();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    seed.write_to(d, &["my_client.pem", "my_client.key"]);
    openssl_line(d, "genrsa -out sub.key 2048");
    openssl_line(d, "req -new -key sub.key -out sub.csr -subj /CN=sub");
    openssl_line(
        d,
        "x509 -req -in sub.csr -CA my_client.pem -CAkey my_client.key \
         -set_serial 07 -out sub.pem -days 30 -sha256",
    );
    let sub = common::pem_cert(&std::fs::read(d.join("sub.pem")).unwrap());

    let v = validator(common::trust_store(seed.file("Root_CA.pem")), |b| b);
    let v1_issuer = seed.cert_der("my_client.pem");
    let err = v.validate(&sub, &[v1_issuer.as_ref()], now()).unwrap_err();
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
fn require_v3_refuses_seed_v1_client_with_a_clear_error() {
    let seed = seed_pki();
    let v = validator(common::trust_store(seed.file("Root_CA.pem")), |b| {
        b.require_v3(true)
    });
    let err = v
        .validate(&seed.cert_der("my_client.pem"), &[], now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::UnsupportedVersion {
                position: CertPosition::Leaf,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("leaf") && message.contains("v1") && message.contains("require_v3"),
        "the error should say which certificate and why: {message}"
    );
    assert_eq!(err.reason_code(), ReasonCode::ClientCertInvalid);
    assert_eq!(err.tls_alert(), TlsAlert::UnsupportedCertificate);

    // The option refuses v1 only: a v3 client still validates.
    let pki = Pki::new(1);
    let leaf = pki.client("v3 client", &LeafOptions::default());
    let v3 = validator(pki.root_store(), |b| b.require_v3(true));
    v3.validate(leaf.der(), &leaf.intermediates(), now())
        .expect("a v3 client passes require_v3");
}

/// Which trust-store anchor the verified path ends at.
fn anchor_index(v: &edge_mtls::ChainValidator, path: &edge_mtls::VerifiedChain) -> usize {
    v.trust_store()
        .load()
        .anchors()
        .iter()
        .position(|a| a.certificate() == path.anchor())
        .expect("the path ends at an anchor of the store")
}
