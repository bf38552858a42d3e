//! Revocation fixtures for the `crl_parse` and `kvs_json_import` targets: a
//! P-256 CA with a fixed key, a client it issued, CRL writers (shared with
//! the integration tests) and the seed corpora.

use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};

#[path = "../../tests/common/crl_der.rs"]
pub mod crl_der;

use crl_der::{CrlSpec, Entry};

/// `crl_parse` input modes (first byte, low bit).
pub mod mode {
    /// The rest is a CRL (DER or PEM) as is.
    pub const RAW: u8 = 0;
    /// The rest is a tbsCertList, signed with the fixture CA's key first, so
    /// mutations get past the signature and reach indexing and lookups.
    pub const SIGN_TBS: u8 = 1;
}

/// A CA whose key signs the fuzzed CRLs, and a client it issued.
pub struct CrlFixture {
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
    /// The CA's subject Name, DER.
    pub issuer_name: Vec<u8>,
    /// The CA key, PKCS#8.
    pub key_pkcs8: Vec<u8>,
    /// A client certificate with serial 0x1001, DER.
    pub leaf_der: Vec<u8>,
}

/// The fixture, built once per process.
pub fn crl_fixture() -> &'static CrlFixture {
    static FIXTURE: OnceLock<CrlFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = KeyPair::from_pem(crate::keys::ROOT_A).expect("fixed P-256 key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.distinguished_name
            .push(DnType::CommonName, "edge-mtls fuzz CRL CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&key).expect("CA");
        let mut leaf = CertificateParams::new(Vec::<String>::new()).expect("params");
        leaf.distinguished_name
            .push(DnType::CommonName, "fuzz client");
        leaf.serial_number = Some(SerialNumber::from_slice(&[0x10, 0x01]));
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let leaf_key = KeyPair::from_pem(crate::keys::INTER_0).expect("fixed key");
        let leaf_der = leaf
            .signed_by(&leaf_key, &Issuer::from_params(&ca, &key))
            .expect("leaf")
            .der()
            .to_vec();
        CrlFixture {
            issuer_name: crl_der::subject_of(ca_cert.der()),
            ca_der: ca_cert.der().to_vec(),
            key_pkcs8: key.serialize_der(),
            leaf_der,
        }
    })
}

/// The fixed time of the fixture CRLs (2026-01-01T00:00:00Z).
pub const CRL_NOW: u64 = 1_767_225_600;

fn specs() -> Vec<CrlSpec> {
    let f = crl_fixture();
    let now = CRL_NOW;
    let base = || CrlSpec::new(f.issuer_name.clone(), now);
    let mut out = Vec::new();
    // v1, as `openssl ca -gencrl` without crlnumber writes it.
    let mut v1 = base();
    v1.v2 = false;
    v1.entries = vec![
        Entry::new(&[0x10, 0x01], now - 10),
        Entry::new(&[0xfb], now),
    ];
    out.push(v1);
    // v2 with a number, reasons, a negative serial and a duplicate.
    let mut v2 = base().with_crl_number(7, false);
    v2.entries = vec![
        Entry::new(&[0x10, 0x01], now - 10).with_reason(1),
        Entry::new(&[0x00, 0xa7, 0x30, 0x9e], now).with_reason(6),
        Entry::new(&[0xff, 0x7f], now),
        Entry::new(&[0x10, 0x01], now),
    ];
    out.push(v2);
    // Empty, and without nextUpdate.
    let mut empty = base().with_crl_number(1, false);
    empty.next_update = None;
    out.push(empty);
    // issuingDistributionPoint with a URI, and CA-only.
    let mut idp = base().with_crl_number(2, false);
    idp.extensions.push((
        vec![0x55, 0x1d, 0x1c],
        true,
        crl_der::tlv(
            0x30,
            &crl_der::tlv(
                0xa0,
                &crl_der::tlv(0xa0, &crl_der::tlv(0x86, b"http://crl.example/ca.crl")),
            ),
        ),
    ));
    idp.entries.push(Entry::new(&[0x10, 0x01], now));
    out.push(idp);
    let mut ca_only = base().with_crl_number(3, false);
    ca_only.extensions.push((
        vec![0x55, 0x1d, 0x1c],
        true,
        vec![0x30, 0x03, 0x82, 0x01, 0xff],
    ));
    out.push(ca_only);
    // Stale.
    let mut stale = base().with_crl_number(4, false);
    stale.this_update = now - 10 * 86_400;
    stale.next_update = Some(now - 86_400);
    stale.entries.push(Entry::new(&[0x20], now - 20 * 86_400));
    out.push(stale);
    // A thousand entries.
    let mut many = base().with_crl_number(5, false);
    many.entries = (0u16..1000)
        .map(|i| Entry::new(&[0x30, (i >> 8) as u8, i as u8], now))
        .collect();
    out.push(many);
    out
}

/// Seeds for `crl_parse`: each CRL signed (raw, DER and PEM) and as a TBS
/// to be signed.
pub fn crl_parse_seeds() -> Vec<Vec<u8>> {
    let f = crl_fixture();
    let mut out = Vec::new();
    for spec in specs() {
        let der = spec.sign(&f.key_pkcs8);
        let mut raw = vec![mode::RAW];
        raw.extend_from_slice(&der);
        out.push(raw);
        let mut pem = vec![mode::RAW];
        pem.extend_from_slice(crate::fixtures::pem("X509 CRL", &der).as_bytes());
        out.push(pem);
        let mut tbs = vec![mode::SIGN_TBS];
        tbs.extend_from_slice(&spec.tbs());
        out.push(tbs);
    }
    out
}

/// Seeds for `kvs_json_import`: the CloudFront documentation's KVS JSON,
/// variants, and plain-text serial lists.
pub fn kvs_json_seeds() -> Vec<Vec<u8>> {
    let issuer = "ab".repeat(32);
    vec![
        br#"{ "data": [ { "key": "ABC123DEF456", "value": "" }, { "key": "789XYZ012GHI", "value": "" } ] }"#.to_vec(),
        br#"{"data":[]}"#.to_vec(),
        br#"{"data":[{"key":"00:a7:30:9e","value":"revoked 2024-05-01"},{"key":"a7309e"},{"key":"-05","value":"x"}]}"#.to_vec(),
        format!(r#"{{"data":[{{"key":"{issuer}/00:10:01","value":""}},{{"key":"\u0041B","value":"\n"}}]}}"#).into_bytes(),
        b"# revoked serials\n01\nA7:30:9E  # laptop\n\n00a7309e\n-05\n".to_vec(),
        format!("{issuer}/1001\n0x7F\n").into_bytes(),
    ]
}
