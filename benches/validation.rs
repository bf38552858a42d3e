//! Client-certificate verification cost: edge-mtls against rustls's
//! `WebPkiClientVerifier`, verifier to verifier, on 3-level ECDSA P-256 and
//! RSA-2048 chains (the client sends leaf + intermediate; only the root is
//! trusted), the issuer-signature cache (a new leaf of a known intermediate),
//! the verified-chain cache, and loading a 1,000-CA bundle.
//!
//! Run with `cargo bench --bench validation`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use edge_mtls::{ChainValidator, MtlsClientVerifier, TrustStore, TrustStoreHandle};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, RsaKeySize, SignatureAlgorithm,
};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, UnixTime};

/// A root, an intermediate and a leaf; the client presents the last two.
struct Chain {
    root: CertificateDer<'static>,
    root_pem: String,
    intermediates: Vec<CertificateDer<'static>>,
    leaf: CertificateDer<'static>,
}

fn key_for(alg: &'static SignatureAlgorithm) -> KeyPair {
    if alg == &rcgen::PKCS_RSA_SHA256 {
        KeyPair::generate_rsa_for(alg, RsaKeySize::_2048).expect("RSA-2048 key")
    } else {
        KeyPair::generate_for(alg).expect("key")
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "edge-mtls bench");
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = true;
    p
}

fn chain(alg: &'static SignatureAlgorithm) -> Chain {
    let root_key = key_for(alg);
    let root_params = ca_params("Bench Root");
    let root = root_params.self_signed(&root_key).expect("root");
    let root_issuer = Issuer::from_params(&root_params, &root_key);

    let inter_key = key_for(alg);
    let inter_params = ca_params("Bench Intermediate");
    let intermediate = inter_params
        .signed_by(&inter_key, &root_issuer)
        .expect("intermediate");
    let inter_issuer = Issuer::from_params(&inter_params, &inter_key);

    let leaf_key = key_for(alg);
    let mut leaf_params =
        CertificateParams::new(vec!["client.example.com".to_string()]).expect("leaf params");
    leaf_params.distinguished_name = dn("bench client");
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf = leaf_params
        .signed_by(&leaf_key, &inter_issuer)
        .expect("leaf");

    Chain {
        root_pem: root.pem(),
        root: root.der().clone(),
        intermediates: vec![intermediate.der().clone()],
        leaf: leaf.der().clone(),
    }
}

/// Which of the validator's caches are on.
#[derive(Clone, Copy, PartialEq)]
enum Caches {
    /// Neither: every validation verifies every signature.
    Off,
    /// Only the issuer-signature cache: a new leaf of a known intermediate.
    Signatures,
    /// The defaults (verified-chain and issuer-signature caches).
    Default,
}

fn edge_verifier(
    chain: &Chain,
    provider: &Arc<CryptoProvider>,
    caches: Caches,
) -> MtlsClientVerifier {
    let store = TrustStore::from_pem(chain.root_pem.as_bytes()).expect("trust store");
    let mut builder = ChainValidator::builder(TrustStoreHandle::new(store), provider.clone());
    if caches != Caches::Default {
        builder = builder.cache_capacity(0);
    }
    if caches == Caches::Off {
        builder = builder.signature_cache_capacity(0);
    }
    let validator = builder.build().expect("validator");
    MtlsClientVerifier::builder(Arc::new(validator))
        .build()
        .expect("verifier")
}

fn webpki_verifier(chain: &Chain, provider: &Arc<CryptoProvider>) -> Arc<dyn ClientCertVerifier> {
    let mut roots = RootCertStore::empty();
    roots.add(chain.root.clone()).expect("root");
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("webpki verifier")
}

fn verify(verifier: &dyn ClientCertVerifier, chain: &Chain, now: UnixTime) {
    verifier
        .verify_client_cert(black_box(&chain.leaf), black_box(&chain.intermediates), now)
        .expect("chain verifies");
}

fn cold(c: &mut Criterion, name: &str, chain: &Chain, provider: &Arc<CryptoProvider>) {
    let now = UnixTime::now();
    let edge = edge_verifier(chain, provider, Caches::Off);
    let known_intermediate = edge_verifier(chain, provider, Caches::Signatures);
    let webpki = webpki_verifier(chain, provider);
    // All must accept before anything is measured.
    verify(&edge, chain, now);
    verify(&known_intermediate, chain, now);
    verify(webpki.as_ref(), chain, now);

    let mut group = c.benchmark_group(name);
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("edge-mtls", |b| b.iter(|| verify(&edge, chain, now)));
    // The chain cache off, the intermediate's signature known: what a new
    // leaf from an intermediate seen before costs.
    group.bench_function("edge-mtls-known-intermediate", |b| {
        b.iter(|| verify(&known_intermediate, chain, now))
    });
    group.bench_function("webpki-client-verifier", |b| {
        b.iter(|| verify(webpki.as_ref(), chain, now))
    });
    group.finish();
}

fn validation(c: &mut Criterion) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let p256 = chain(&rcgen::PKCS_ECDSA_P256_SHA256);
    let rsa = chain(&rcgen::PKCS_RSA_SHA256);

    cold(c, "cold/p256", &p256, &provider);
    cold(c, "cold/rsa2048", &rsa, &provider);

    // Default cache capacity: every iteration after the first is a hit.
    let now = UnixTime::now();
    let cached = edge_verifier(&p256, &provider, Caches::Default);
    verify(&cached, &p256, now);
    let mut group = c.benchmark_group("cached");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("edge-mtls/p256", |b| b.iter(|| verify(&cached, &p256, now)));
    group.finish();
}

fn trust_store_load(c: &mut Criterion) {
    // 1,000 distinct self-signed P-256 CA certificates in one PEM bundle.
    let bundle: String = (0..1000)
        .map(|i| {
            let key = KeyPair::generate().expect("key");
            let mut params = ca_params(&format!("Bench CA {i:04}"));
            params.use_authority_key_identifier_extension = false;
            params.self_signed(&key).expect("CA").pem()
        })
        .collect();
    let loaded = TrustStore::from_pem(bundle.as_bytes()).expect("bundle loads");
    assert_eq!(loaded.len(), 1000);

    let mut group = c.benchmark_group("trust_store_load");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("from_pem/1000-cas", |b| {
        b.iter(|| TrustStore::from_pem(black_box(bundle.as_bytes())).expect("bundle loads"))
    });
    group.finish();
}

criterion_group!(benches, validation, trust_store_load);
criterion_main!(benches);
