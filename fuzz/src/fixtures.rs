//! Certificate chains generated once per process with rcgen from the fixed
//! keys in [`crate::keys`], plus the trust store and webpki anchors built
//! from their roots.

use crate::pki;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use edge_mtls::{ChainValidator, KeyPurpose, TrustStore, TrustStoreHandle};
use rcgen::{
    CertificateParams, CidrSubnet, CrlDistributionPoint, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, NameConstraints, SanType,
    SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};

use crate::keys;

/// The fixed validation time: 2026-01-01T00:00:00Z. Every fixture is valid
/// from 2024-01-01 to 2034-01-01.
pub const NOW_SECS: u64 = 1_767_225_600;

/// [`NOW_SECS`] as a [`UnixTime`].
pub fn now() -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(NOW_SECS))
}

/// A certificate with the key that signs what it issues.
pub struct Ca {
    /// DER of the certificate.
    pub der: Vec<u8>,
    /// Its private key (test-only).
    pub key: KeyPair,
}

/// One generated chain: the leaf and the intermediates a client would send.
pub struct BaseChain {
    /// What the chain exercises.
    pub name: &'static str,
    /// DER of the leaf.
    pub leaf: Vec<u8>,
    /// DER of the intermediates, leaf's issuer first.
    pub intermediates: Vec<Vec<u8>>,
    /// `signers[i]` is the key that signs certificate `i` of
    /// `[leaf, intermediates...]` (the next certificate's key, or the root's).
    pub signers: Vec<&'static KeyPair>,
}

impl BaseChain {
    /// `[leaf, intermediates...]`.
    pub fn certs(&self) -> Vec<Vec<u8>> {
        let mut v = vec![self.leaf.clone()];
        v.extend(self.intermediates.iter().cloned());
        v
    }
}

/// Everything the fuzz targets share.
pub struct Fixtures {
    /// The crypto provider (aws-lc-rs).
    pub provider: Arc<CryptoProvider>,
    /// The roots, in trust-store order.
    pub roots: Vec<Vec<u8>>,
    /// The roots as one PEM bundle.
    pub roots_pem: String,
    /// The base chains.
    pub chains: Vec<BaseChain>,
    /// The trust store handle over `roots`.
    pub store: TrustStoreHandle,
    /// webpki anchors from `roots`.
    pub anchors: Vec<TrustAnchor<'static>>,
}

static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
static KEYS: OnceLock<Vec<KeyPair>> = OnceLock::new();

/// Index into [`all_keys`].
#[derive(Clone, Copy)]
enum K {
    RootA = 0,
    RootB,
    Inter0,
    Inter1,
    Inter2,
    Inter3,
    Inter5a,
    Inter5b,
    Leaf0,
    Leaf1,
    Leaf2,
    Leaf3,
    Leaf4,
    Leaf5,
    Inter6,
    Leaf6,
    Inter7,
    Leaf7,
}

fn all_keys() -> &'static [KeyPair] {
    KEYS.get_or_init(|| {
        [
            keys::ROOT_A,
            keys::ROOT_B,
            keys::INTER_0,
            keys::INTER_1,
            keys::INTER_2,
            keys::INTER_3,
            keys::INTER_5A,
            keys::INTER_5B,
            keys::LEAF_0,
            keys::LEAF_1,
            keys::LEAF_2,
            keys::LEAF_3,
            keys::LEAF_4,
            keys::LEAF_5,
            keys::INTER_6,
            keys::LEAF_6,
            keys::INTER_7,
            keys::LEAF_7,
        ]
        .iter()
        .map(|pem| KeyPair::from_pem(pem).expect("fixture key"))
        .collect()
    })
}

fn key(k: K) -> &'static KeyPair {
    &all_keys()[k as usize]
}

/// The shared fixtures, generated on first use.
pub fn fixtures() -> &'static Fixtures {
    FIXTURES.get_or_init(generate)
}

/// A validator over the fixture roots with the differential settings:
/// clientAuth required, cache disabled, depth 8.
pub fn differential_validator(f: &Fixtures) -> ChainValidator {
    ChainValidator::builder(f.store.clone(), f.provider.clone())
        .required_eku(Some(KeyPurpose::ClientAuth))
        .cache_capacity(0)
        .max_chain_depth(8)
        .build()
        .expect("validator")
}

pub(crate) fn dn(cn: &str) -> DistinguishedName {
    pki::name(None, Some("edge-mtls fuzz"), cn)
}

/// Serial and the fixtures' fixed validity (2024–2034).
fn dated(mut p: CertificateParams, serial: u64) -> CertificateParams {
    p.serial_number = Some(SerialNumber::from(serial));
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2034, 1, 1);
    p
}

fn ca_params(cn: &str, serial: u64, path_len: Option<u8>) -> CertificateParams {
    dated(pki::ca_params(dn(cn), path_len), serial)
}

fn leaf_params(cn: &str, serial: u64) -> CertificateParams {
    dated(pki::client_leaf_params(dn(cn)), serial)
}

fn ia5(s: &str) -> rcgen::string::Ia5String {
    rcgen::string::Ia5String::try_from(s).expect("ASCII")
}

fn sign(params: &CertificateParams, subject: K, issuer: &Issuer<'_, &KeyPair>) -> Vec<u8> {
    params
        .signed_by(key(subject), issuer)
        .expect("sign fixture")
        .der()
        .to_vec()
}

fn generate() -> Fixtures {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());

    // Roots.
    let root_a_params = ca_params("Fuzz Root A", 1, None);
    let root_a = root_a_params
        .self_signed(key(K::RootA))
        .expect("root A")
        .der()
        .to_vec();
    let root_a_issuer = Issuer::from_params(&root_a_params, key(K::RootA));

    let mut root_b_params = ca_params("Fuzz Root B (P-384, name-constrained)", 2, None);
    root_b_params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("example.org".into()),
            GeneralSubtree::IpAddress(CidrSubnet::V4([172, 16, 0, 0], [255, 240, 0, 0])),
        ],
        excluded_subtrees: vec![GeneralSubtree::DnsName("bad.example.org".into())],
    });
    let root_b = root_b_params
        .self_signed(key(K::RootB))
        .expect("root B")
        .der()
        .to_vec();
    let root_b_issuer = Issuer::from_params(&root_b_params, key(K::RootB));

    let mut chains = Vec::new();

    // 0: a plain three-level chain.
    {
        let i_params = ca_params("Fuzz Intermediate 0", 10, Some(0));
        let inter = sign(&i_params, K::Inter0, &root_a_issuer);
        let i_issuer = Issuer::from_params(&i_params, key(K::Inter0));
        let mut l = leaf_params("client-0", 100);
        l.subject_alt_names = vec![SanType::DnsName(ia5("client.example.com"))];
        let leaf = sign(&l, K::Leaf0, &i_issuer);
        chains.push(BaseChain {
            name: "plain",
            leaf,
            intermediates: vec![inter],
            signers: vec![key(K::Inter0), key(K::RootA)],
        });
    }

    // 1: permitted and excluded DNS and IP subtrees (the forms webpki
    // implements too), a leaf with DNS, IP and URI names.
    {
        let mut i_params = ca_params("Fuzz Intermediate 1 (name constraints)", 11, Some(0));
        i_params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![
                GeneralSubtree::DnsName("example.com".into()),
                GeneralSubtree::IpAddress(CidrSubnet::V4([10, 0, 0, 0], [255, 0, 0, 0])),
            ],
            excluded_subtrees: vec![
                GeneralSubtree::DnsName("bad.example.com".into()),
                GeneralSubtree::IpAddress(CidrSubnet::V4([10, 9, 0, 0], [255, 255, 0, 0])),
            ],
        });
        let inter = sign(&i_params, K::Inter1, &root_a_issuer);
        let i_issuer = Issuer::from_params(&i_params, key(K::Inter1));
        let mut l = leaf_params("client-1", 101);
        l.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        l.subject_alt_names = vec![
            SanType::DnsName(ia5("a.example.com")),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
            SanType::URI(ia5("spiffe://example.com/svc")),
        ];
        let leaf = sign(&l, K::Leaf1, &i_issuer);
        chains.push(BaseChain {
            name: "name-constraints",
            leaf,
            intermediates: vec![inter],
            signers: vec![key(K::Inter1), key(K::RootA)],
        });
    }

    // 2: excluded subtrees only (what a wildcard or odd name might slip past).
    {
        let mut i_params = ca_params("Fuzz Intermediate 2 (excluded only)", 12, None);
        i_params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![],
            excluded_subtrees: vec![
                GeneralSubtree::DnsName("x.example.com".into()),
                GeneralSubtree::IpAddress(CidrSubnet::V4([192, 168, 0, 0], [255, 255, 0, 0])),
            ],
        });
        i_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let inter = sign(&i_params, K::Inter2, &root_a_issuer);
        let i_issuer = Issuer::from_params(&i_params, key(K::Inter2));
        let mut l = leaf_params("client-2", 102);
        l.subject_alt_names = vec![
            SanType::DnsName(ia5("a.example.com")),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
        ];
        let leaf = sign(&l, K::Leaf2, &i_issuer);
        chains.push(BaseChain {
            name: "excluded-subtrees",
            leaf,
            intermediates: vec![inter],
            signers: vec![key(K::Inter2), key(K::RootA)],
        });
    }

    // 3: P-384 name-constrained root, an intermediate with EKU, an Ed25519
    // leaf without keyUsage or EKU.
    {
        let mut i_params = ca_params("Fuzz Intermediate 3", 13, None);
        i_params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::EmailProtection,
        ];
        let inter = sign(&i_params, K::Inter3, &root_b_issuer);
        let i_issuer = Issuer::from_params(&i_params, key(K::Inter3));
        let mut l = leaf_params("client-3", 103);
        l.key_usages = vec![];
        l.extended_key_usages = vec![];
        l.is_ca = IsCa::NoCa;
        l.subject_alt_names = vec![
            SanType::DnsName(ia5("host.example.org")),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(172, 16, 5, 5))),
        ];
        let leaf = sign(&l, K::Leaf3, &i_issuer);
        chains.push(BaseChain {
            name: "p384-root-ed25519-leaf",
            leaf,
            intermediates: vec![inter],
            signers: vec![key(K::Inter3), key(K::RootB)],
        });
    }

    // 4: a leaf issued by the root directly, with CRL distribution points.
    {
        let mut l = leaf_params("client-4", 104);
        l.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec!["http://crl.example.com/root.crl".into()],
        }];
        l.subject_alt_names = vec![SanType::URI(ia5("spiffe://example.com/ns/a"))];
        let leaf = sign(&l, K::Leaf4, &root_a_issuer);
        chains.push(BaseChain {
            name: "leaf-under-root",
            leaf,
            intermediates: vec![],
            signers: vec![key(K::RootA)],
        });
    }

    // 5: two intermediates with pathLen constraints.
    {
        let i_a_params = ca_params("Fuzz Intermediate 5a", 15, Some(1));
        let inter_a = sign(&i_a_params, K::Inter5a, &root_a_issuer);
        let i_a_issuer = Issuer::from_params(&i_a_params, key(K::Inter5a));
        let i_b_params = ca_params("Fuzz Intermediate 5b", 16, Some(0));
        let inter_b = sign(&i_b_params, K::Inter5b, &i_a_issuer);
        let i_b_issuer = Issuer::from_params(&i_b_params, key(K::Inter5b));
        let l = leaf_params("client-5", 105);
        let leaf = sign(&l, K::Leaf5, &i_b_issuer);
        chains.push(BaseChain {
            name: "two-intermediates",
            leaf,
            intermediates: vec![inter_b, inter_a],
            signers: vec![key(K::Inter5b), key(K::Inter5a), key(K::RootA)],
        });
    }

    // 6: rfc822Name and directoryName subtrees (forms webpki does not
    // implement: exercised by chain_validation and the signature oracle).
    {
        let mut i_params = ca_params(
            "Fuzz Intermediate 6 (email/directory constraints)",
            17,
            None,
        );
        i_params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![
                GeneralSubtree::Rfc822Name("example.com".into()),
                GeneralSubtree::DirectoryName({
                    let mut d = DistinguishedName::new();
                    d.push(DnType::OrganizationName, "edge-mtls fuzz");
                    d
                }),
            ],
            excluded_subtrees: vec![GeneralSubtree::Rfc822Name("bad@example.com".into())],
        });
        let inter = sign(&i_params, K::Inter6, &root_a_issuer);
        let i_issuer = Issuer::from_params(&i_params, key(K::Inter6));
        let mut l = leaf_params("client-6", 106);
        l.subject_alt_names = vec![SanType::Rfc822Name(ia5("user@example.com"))];
        let leaf = sign(&l, K::Leaf6, &i_issuer);
        chains.push(BaseChain {
            name: "email-directory-constraints",
            leaf,
            intermediates: vec![inter],
            signers: vec![key(K::Inter6), key(K::RootA)],
        });
    }

    // 7: an RSA-2048 intermediate (leaf edits are re-signed with RSA, slower).
    {
        let i_params = ca_params("Fuzz Intermediate 7 (RSA)", 18, Some(0));
        let inter = sign(&i_params, K::Inter7, &root_a_issuer);
        let i_issuer = Issuer::from_params(&i_params, key(K::Inter7));
        let mut l = leaf_params("client-7", 107);
        l.subject_alt_names = vec![SanType::DnsName(ia5("rsa.example.com"))];
        let leaf = sign(&l, K::Leaf7, &i_issuer);
        chains.push(BaseChain {
            name: "rsa-intermediate",
            leaf,
            intermediates: vec![inter],
            signers: vec![key(K::Inter7), key(K::RootA)],
        });
    }

    let roots = vec![root_a, root_b];
    let roots_pem = roots.iter().map(|d| pem("CERTIFICATE", d)).collect();
    let store = TrustStoreHandle::new(
        TrustStore::from_pem(
            roots.concat().as_slice(), // concatenated DER
        )
        .expect("fixture trust store"),
    );
    let anchors = roots
        .iter()
        .map(|d| {
            webpki::anchor_from_trusted_cert(&CertificateDer::from(d.as_slice()))
                .expect("fixture anchor")
                .to_owned()
        })
        .collect();

    Fixtures {
        provider,
        roots,
        roots_pem,
        chains,
        store,
        anchors,
    }
}

/// PEM-armours `der` (64-column base64).
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
