//! Per-request verification of a forwarded 3-certificate chain (leaf,
//! intermediate, root: ALB passthrough's `X-Amzn-Mtls-Clientcert`, URL-encoded
//! PEM), through `ForwardedVerifier::judge`: the trust boundary, reading the
//! header, chain validation, the deny list (stage 1), the CloudFront headers
//! and the connection-log record (built, no sink), side by side with the
//! floor, rustls' `WebPkiClientVerifier` verifying the same chain from DER
//! (no header to read, no deny list, no headers, no record):
//!
//! - `forwarded_first_sight`: every request carries a different leaf, and the
//!   forwarded-chain and verified-chain caches are off, so each request
//!   decodes, parses and validates (the issuer-signature cache hits, as in
//!   any deployment: the intermediate's signature is checked once);
//! - `forwarded_repeated`: the same header on every request (cache hits:
//!   the header bytes are compared, the trust-store generation and validity
//!   window are checked again, and the deny list's answer is reused only
//!   while the list is unchanged);
//! - `webpki_floor`: `WebPkiClientVerifier::verify_client_cert` on the
//!   first-sight chains.
//!
//! Each request's header map is built before the measurement (a server has
//! it before anything verifies it), and `judge` is awaited inside one task
//! per batch of iterations (criterion's `to_async`), as a server awaits it
//! inside the connection's task; the `ConnectionInfo` it returns is dropped
//! inside the measurement.
//!
//! Goal: `forwarded_repeated` median ≤ 2 µs. Run with
//! `cargo bench --bench forwarded` (about 30 s); the ratios to the floor are
//! printed at the end from criterion's medians.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use edge_mtls::{
    CacheSettings, DenyListSettings, Edge, ForwardedSettings, ForwardedVerifier, HeaderProfile,
    LogSettings, MtlsConfig,
};
use http::{HeaderMap, HeaderValue};
use rcgen::{Issuer, SanType, SerialNumber};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use support::{ca_params, client_leaf_params, dn, p256, url_encode};

const DISTINCT: usize = 256;

struct Chains {
    root_pem: String,
    root: CertificateDer<'static>,
    /// `[leaf, intermediate]` DER per client.
    chains: Vec<Vec<CertificateDer<'static>>>,
    /// The ALB header value per client: leaf, intermediate, root.
    headers: Vec<HeaderValue>,
}

fn pem(der: &[u8]) -> String {
    pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der).expect("PEM")
}

fn chains() -> Chains {
    let root_key = p256();
    let root_params = ca_params("Forwarded Bench Root CA");
    let root = root_params.self_signed(&root_key).expect("root");
    let root_issuer = Issuer::from_params(&root_params, &root_key);
    let inter_key = p256();
    let inter_params = ca_params("Forwarded Bench Intermediate CA");
    let inter = inter_params
        .signed_by(&inter_key, &root_issuer)
        .expect("intermediate");
    let inter_issuer = Issuer::from_params(&inter_params, &inter_key);
    let mut chains = Vec::new();
    let mut headers = Vec::new();
    for i in 0..DISTINCT {
        let key = p256();
        let name = format!("client-{i}.forwarded.bench");
        let mut p = client_leaf_params(dn(&name));
        let serial = u32::try_from(0x0100_0000 + i).expect("serial fits");
        p.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        p.subject_alt_names = vec![SanType::DnsName(name.try_into().expect("DNS name"))];
        let leaf = p.signed_by(&key, &inter_issuer).expect("leaf");
        let text = format!("{}{}{}", pem(leaf.der()), pem(inter.der()), pem(root.der()));
        headers.push(HeaderValue::from_str(&url_encode(&text)).expect("header value"));
        chains.push(vec![leaf.der().clone(), inter.der().clone()]);
    }
    Chains {
        root_pem: pem(root.der()),
        root: root.der().clone(),
        chains,
        headers,
    }
}

fn edge(chains: &Chains, caches: bool) -> Edge {
    let mut b = MtlsConfig::builder()
        .header_profiles([HeaderProfile::CloudFront])
        .forwarded(ForwardedSettings {
            dialect: "alb_passthrough".into(),
            trusted_proxies: vec!["10.0.0.0/8".into()],
            cache_entries: if caches { 4096 } else { 0 },
            ..ForwardedSettings::default()
        });
    let settings = b.settings();
    settings.trust_store.pem = Some(chains.root_pem.clone());
    settings.log = LogSettings {
        target: "off".into(),
        ..LogSettings::default()
    };
    settings.revocation.deny_list = Some(DenyListSettings {
        serials: vec!["0badc0de".into(), "01".into(), "02".into()],
        ..DenyListSettings::default()
    });
    if !caches {
        settings.cache = CacheSettings {
            verified_chains: 0,
            ..CacheSettings::default()
        };
    }
    b.build().expect("edge")
}

/// The load balancer's address (inside the trusted network).
const PEER: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(10, 0, 0, 7),
    40000,
));

/// The request headers a server hands over, holding the forwarded header
/// (built once: a request has its header map before anything verifies it).
fn request_headers(header: &HeaderValue) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-amzn-mtls-clientcert", header.clone());
    headers
}

/// One request's verification, awaited inside the server's task
/// (criterion's `to_async`: one runtime entry per batch of iterations, not
/// per request).
async fn request(verifier: &ForwardedVerifier, headers: &HeaderMap) {
    let info = verifier
        .judge(Some(PEER), None, headers)
        .await
        .expect("admitted");
    black_box(info);
}

fn forwarded(c: &mut Criterion) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chains = chains();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let first = edge(&chains, false);
    let first = first.forwarded().expect("[forwarded]").clone();
    let repeated = edge(&chains, true);
    let repeated = repeated.forwarded().expect("[forwarded]").clone();
    let mut roots = RootCertStore::empty();
    roots.add(chains.root.clone()).expect("root");
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .expect("webpki verifier");

    let mut group = c.benchmark_group("forwarded");
    let mut i = 0usize;
    let requests: Vec<HeaderMap> = chains.headers.iter().map(request_headers).collect();
    group.bench_function("forwarded_first_sight", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % DISTINCT;
            request(&first, &requests[i])
        })
    });
    group.bench_function("forwarded_repeated", |b| {
        b.to_async(&rt).iter(|| request(&repeated, &requests[0]))
    });
    let mut j = 0usize;
    group.bench_function("webpki_floor", |b| {
        b.iter(|| {
            j = (j + 1) % DISTINCT;
            let chain = &chains.chains[j];
            black_box(
                webpki
                    .verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
                    .expect("verified"),
            );
        })
    });
    group.finish();
}

/// The medians criterion recorded, and their ratios to the floor.
fn summary() {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("target"))
        .join("criterion/forwarded");
    let median = |case: &str| -> Option<f64> {
        let text = std::fs::read_to_string(dir.join(case).join("new/estimates.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["median"]["point_estimate"].as_f64()
    };
    let (Some(first), Some(repeated), Some(floor)) = (
        median("forwarded_first_sight"),
        median("forwarded_repeated"),
        median("webpki_floor"),
    ) else {
        return;
    };
    println!(
        "forwarded medians: first sight {:.2} µs ({:.2}× the webpki floor of {:.2} µs), \
         repeated {:.2} µs ({:.3}× the floor; goal ≤ 2 µs)",
        first / 1000.0,
        first / floor,
        floor / 1000.0,
        repeated / 1000.0,
        repeated / floor
    );
}

fn benches(c: &mut Criterion) {
    forwarded(c);
    summary();
}

criterion_group!(group, benches);
criterion_main!(group);
