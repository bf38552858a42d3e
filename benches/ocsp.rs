//! OCSP on the handshake path: `OcspSource::check_now` answering from the
//! cache (stage 1 of §9) — the CertID is computed from the presented
//! certificate and its issuer on every call, then looked up. The cache is
//! filled once through `check` with an in-process transport serving a
//! signed response.
//!
//! Run with `cargo bench --bench ocsp`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use der::asn1::{BitString, ObjectIdentifier};
use der::{Decode, Encode};
use edge_mtls::{CertPosition, CertStatus, CertToCheck, OcspSource, RevocationSource};
use edge_mtls::{OcspTransport, TransportError};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, RsaKeySize, SigningKey,
};
use rustls_pki_types::UnixTime;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, OcspGeneralizedTime, OcspResponse, ResponderId, ResponseData,
    SingleResponse,
};

/// Serves one fixed response to every request.
#[derive(Debug)]
struct Fixed(Bytes);

#[async_trait::async_trait]
impl OcspTransport for Fixed {
    async fn post(&self, _: &http::Uri, _: Bytes) -> Result<Bytes, TransportError> {
        Ok(self.0.clone())
    }

    async fn get(&self, _: &http::Uri) -> Result<Bytes, TransportError> {
        Ok(self.0.clone())
    }
}

struct Pki {
    issuer: Vec<u8>,
    leaf: Vec<u8>,
    response: Vec<u8>,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "edge-mtls bench");
    dn.push(DnType::CommonName, cn);
    dn
}

/// An issuer with `ca_key`, a leaf naming an OCSP responder, and a "good"
/// response for it signed by the issuer (`signature_oid`, with NULL
/// parameters for RSA).
fn pki(ca_key: KeyPair, signature_oid: &str, rsa: bool) -> Pki {
    let mut ca = CertificateParams::default();
    ca.distinguished_name = dn("Bench OCSP CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer_der = ca.self_signed(&ca_key).expect("CA").der().to_vec();

    let url = b"http://ocsp.bench.invalid";
    // AuthorityInfoAccess ::= SEQUENCE { SEQUENCE { id-ad-ocsp, [6] url } }
    let mut desc = vec![
        0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x86,
    ];
    desc.push(u8::try_from(url.len()).expect("short URL"));
    desc.extend_from_slice(url);
    let inner_len = u8::try_from(desc.len()).expect("short URL");
    let mut aia = vec![0x30, inner_len + 2, 0x30, inner_len];
    aia.extend_from_slice(&desc);
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = dn("client");
    leaf.serial_number = Some(0x0102_0304_0506u64.into());
    leaf.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 1, 1],
        aia,
    )];
    let leaf_der = leaf
        .signed_by(
            &KeyPair::generate().expect("leaf key"),
            &Issuer::from_params(&ca, &ca_key),
        )
        .expect("leaf")
        .der()
        .to_vec();

    let issuer = x509_cert::Certificate::from_der(&issuer_der).expect("issuer");
    let serial = x509_cert::Certificate::from_der(&leaf_der)
        .expect("leaf")
        .tbs_certificate
        .serial_number;
    let at = |offset: u64| -> OcspGeneralizedTime {
        let unix = UnixTime::now().as_secs() + offset;
        der::DateTime::from_unix_duration(Duration::from_secs(unix))
            .expect("time")
            .into()
    };
    let (now, later) = (at(0), at(24 * 3600));
    let tbs = ResponseData {
        version: x509_ocsp::Version::V1,
        responder_id: ResponderId::ByName(issuer.tbs_certificate.subject.clone()),
        produced_at: now,
        responses: vec![SingleResponse {
            cert_id: CertId::from_issuer::<sha1::Sha1>(&issuer, serial).expect("CertID"),
            cert_status: x509_ocsp::CertStatus::good(),
            this_update: now,
            next_update: Some(later),
            single_extensions: None,
        }],
        response_extensions: None,
    };
    let signature = ca_key
        .sign(&tbs.to_der().expect("tbs"))
        .expect("sign response");
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap(signature_oid),
            parameters: rsa.then(|| der::asn1::Null.into()),
        },
        signature: BitString::from_bytes(&signature).expect("signature"),
        certs: None,
    };
    let response = OcspResponse::successful(basic)
        .expect("response")
        .to_der()
        .expect("encode");
    Pki {
        issuer: issuer_der,
        leaf: leaf_der,
        response,
    }
}

/// A source whose cache holds the answer for `pki`'s leaf.
fn warmed(pki: &Pki) -> OcspSource {
    let source = OcspSource::builder(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .transport(Arc::new(Fixed(Bytes::from(pki.response.clone()))))
        .build()
        .expect("source");
    let cert = CertToCheck {
        cert: &parsed(&pki.leaf),
        issuer: &parsed(&pki.issuer),
        position: CertPosition::Leaf,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = runtime.block_on(source.check(&cert, UnixTime::now()));
    assert_eq!(status, CertStatus::Good, "the bench response must verify");
    assert_eq!(
        source.check_now(&cert, UnixTime::now()),
        Some(CertStatus::Good)
    );
    source
}

fn cache_hit(c: &mut Criterion) {
    let p256 = pki(
        KeyPair::generate().expect("P-256 key"),
        "1.2.840.10045.4.3.2",
        false,
    );
    let rsa = pki(
        KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048).expect("RSA key"),
        "1.2.840.113549.1.1.11",
        true,
    );
    let now = UnixTime::now();
    let mut group = c.benchmark_group("ocsp");
    group
        .sample_size(100)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, pki) in [
        ("ocsp_cache_hit", &p256),
        ("ocsp_cache_hit/rsa2048-issuer", &rsa),
    ] {
        let source = warmed(pki);
        let cert = CertToCheck {
            cert: &parsed(&pki.leaf),
            issuer: &parsed(&pki.issuer),
            position: CertPosition::Leaf,
        };
        group.bench_function(name, |b| {
            b.iter(|| black_box(source.check_now(black_box(&cert), now)))
        });
    }
    // What the checker does per certificate in stage 1: ask whether the
    // source applies (parses the certificate for its OCSP URL), then answer.
    let source = warmed(&p256);
    let cert = CertToCheck {
        cert: &parsed(&p256.leaf),
        issuer: &parsed(&p256.issuer),
        position: CertPosition::Leaf,
    };
    group.bench_function("ocsp_cache_hit/with-applies-to", |b| {
        b.iter(|| {
            let cert = black_box(&cert);
            black_box(source.applies_to(cert) && source.check_now(cert, now).is_some())
        })
    });
    group.finish();
}

criterion_group!(benches, cache_hit);
criterion_main!(benches);

/// A certificate parsed, as the validator hands them to revocation sources.
fn parsed(der: &[u8]) -> edge_mtls::ParsedCertificate {
    edge_mtls::ParsedCertificate::from_der(der.to_vec()).expect("a certificate")
}
