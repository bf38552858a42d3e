//! Shared test fixtures: PKIs built at test time (rcgen and the OpenSSL CLI),
//! validator construction, and a real TLS harness over 127.0.0.1.
//!
//! Every integration test file includes this module with `mod common;`; no
//! file copies setup code. Nothing here is a mock: certificates are real
//! X.509, handshakes are real rustls over loopback TCP, and the OpenSSL and
//! curl binaries are the system ones.

// Each test binary compiles this module on its own and uses a different part.
#![allow(dead_code)]

pub mod awkward_names;
pub mod crl_der;
pub mod e2e;
pub mod header_echo;
pub mod openssl_ca;
pub mod pki_tools;
pub mod python;
pub mod redis;
pub mod revocation;
pub mod structured_fields;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use edge_mtls::{
    ChainValidator, ChainValidatorBuilder, MtlsClientVerifier, TrustStore, TrustStoreHandle,
    ValidationMode,
};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, ClientConfig, ProtocolVersion, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Upper bound for any single network step; a hang fails the test instead of
/// blocking the suite.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// The crypto provider, always passed explicitly (no process default).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

// ---------------------------------------------------------------------------
// rcgen PKIs
// ---------------------------------------------------------------------------

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "edge-mtls tests");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// How a CA certificate of a test PKI is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaKind {
    /// basicConstraints critical cA=TRUE, keyUsage keyCertSign+cRLSign, SKI, AKI.
    Ca,
    /// Used as an issuer but its basicConstraints says cA=FALSE (still has
    /// SKI and AKI, so only the cA check can reject it).
    NotCa,
    /// A CA with this pathLenConstraint.
    PathLen(u8),
    /// A CA whose name constraints permit only this DNS subtree.
    PermittedDns(&'static str),
    /// A CA whose extendedKeyUsage allows serverAuth only.
    ServerAuthEku,
}

/// A CA certificate with its key (root or intermediate).
pub struct Ca {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub cert: rcgen::Certificate,
}

impl Ca {
    /// A self-signed root CA.
    pub fn root(common_name: &str) -> Ca {
        Ca::root_with_key(common_name, KeyAlg::default())
    }

    /// A self-signed root CA with a key of type `alg`.
    pub fn root_with_key(common_name: &str, alg: KeyAlg) -> Ca {
        let params = ca_params(common_name, CaKind::Ca);
        let key = alg.generate();
        let cert = params.self_signed(&key).expect("self-sign root");
        Ca { params, key, cert }
    }

    /// The rcgen issuer view of this CA.
    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// A CA certificate signed by this one.
    pub fn issue_ca(&self, common_name: &str, kind: CaKind) -> Ca {
        let params = ca_params(common_name, kind);
        let key = KeyPair::generate().expect("generate intermediate key");
        let cert = params
            .signed_by(&key, &self.issuer())
            .expect("sign intermediate");
        Ca { params, key, cert }
    }

    /// A leaf signed by this CA; `chain_above` are the intermediates between
    /// this CA and the root (this CA's own certificate included when it is an
    /// intermediate), leaf's issuer first.
    pub fn issue_leaf(
        &self,
        common_name: &str,
        options: &LeafOptions,
        chain_above: &[CertificateDer<'static>],
    ) -> Leaf {
        let params = leaf_params(common_name, options);
        let key = options.key.generate();
        let cert = params.signed_by(&key, &self.issuer()).expect("sign leaf");
        let mut chain = vec![cert.der().clone()];
        chain.extend(chain_above.iter().cloned());
        Leaf { cert, key, chain }
    }

    pub fn der(&self) -> &CertificateDer<'static> {
        self.cert.der()
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }
}

pub(crate) use e2e::demo_pki::pki;

fn ca_params(common_name: &str, kind: CaKind) -> CertificateParams {
    let mut params = pki::ca_params(distinguished_name(common_name), None);
    match kind {
        CaKind::Ca => {}
        CaKind::NotCa => {
            // keyCertSign without cA would be a profile violation of its own;
            // leave keyUsage out so the cA check is the one that fires.
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = Vec::new();
        }
        CaKind::PathLen(n) => params.is_ca = IsCa::Ca(BasicConstraints::Constrained(n)),
        CaKind::PermittedDns(subtree) => {
            params.name_constraints = Some(rcgen::NameConstraints {
                permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName(subtree.into())],
                excluded_subtrees: Vec::new(),
            });
        }
        CaKind::ServerAuthEku => {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
    }
    params
}

/// The key type of a test certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyAlg {
    #[default]
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Ed25519,
    Rsa2048,
    Rsa4096,
}

impl KeyAlg {
    pub const ALL: [KeyAlg; 6] = [
        KeyAlg::EcdsaP256,
        KeyAlg::EcdsaP384,
        KeyAlg::EcdsaP521,
        KeyAlg::Ed25519,
        KeyAlg::Rsa2048,
        KeyAlg::Rsa4096,
    ];

    pub fn generate(self) -> KeyPair {
        let key = match self {
            KeyAlg::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlg::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyAlg::EcdsaP521 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512),
            KeyAlg::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
            KeyAlg::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
            KeyAlg::Rsa4096 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA512, rcgen::RsaKeySize::_4096)
            }
        };
        key.unwrap_or_else(|e| panic!("generate {self:?} key: {e}"))
    }
}

/// Which extendedKeyUsage a test leaf carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Eku {
    /// id-kp-clientAuth.
    #[default]
    ClientAuth,
    /// id-kp-serverAuth only (a server certificate misused as a client one).
    ServerAuthOnly,
}

/// Options for a test leaf.
#[derive(Clone, Debug, Default)]
pub struct LeafOptions {
    /// `(notBefore, notAfter)`; default rcgen's 1975..4096.
    pub validity: Option<(SystemTime, SystemTime)>,
    pub eku: Eku,
    pub key: KeyAlg,
    /// subjectAltName dNSName entries.
    pub dns_names: Vec<String>,
    /// Adds a critical extension with an OID nobody processes.
    pub unknown_critical_extension: bool,
    /// The serial number's magnitude, big-endian (rcgen adds the DER sign
    /// byte when the first bit is set); default a hash of the public key.
    pub serial: Option<Vec<u8>>,
}

impl LeafOptions {
    /// Valid from two days ago until yesterday.
    pub fn expired() -> Self {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        Self {
            validity: Some((now - 2 * day, now - day)),
            ..Self::default()
        }
    }

    /// Valid from tomorrow.
    pub fn not_yet_valid() -> Self {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        Self {
            validity: Some((now + day, now + 2 * day)),
            ..Self::default()
        }
    }

    pub fn server_auth_only() -> Self {
        Self {
            eku: Eku::ServerAuthOnly,
            ..Self::default()
        }
    }

    pub fn with_key(key: KeyAlg) -> Self {
        Self {
            key,
            ..Self::default()
        }
    }

    pub fn dns(name: &str) -> Self {
        Self {
            dns_names: vec![name.to_string()],
            ..Self::default()
        }
    }

    pub fn unknown_critical_extension() -> Self {
        Self {
            unknown_critical_extension: true,
            ..Self::default()
        }
    }
}

fn leaf_params(common_name: &str, options: &LeafOptions) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
    params.distinguished_name = distinguished_name(common_name);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.subject_alt_names = options
        .dns_names
        .iter()
        .map(|name| rcgen::SanType::DnsName(name.clone().try_into().expect("DNS name")))
        .collect();
    params.extended_key_usages = match options.eku {
        Eku::ClientAuth => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Eku::ServerAuthOnly => vec![ExtendedKeyUsagePurpose::ServerAuth],
    };
    if let Some((not_before, not_after)) = options.validity {
        params.not_before = not_before.into();
        params.not_after = not_after.into();
    }
    if let Some(serial) = &options.serial {
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
    }
    if options.unknown_critical_extension {
        // 1.3.6.1.4.1.55555.1 (a private arc), contents: NULL.
        let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![5, 0]);
        ext.set_criticality(true);
        params.custom_extensions.push(ext);
    }
    params
}

/// A client certificate with its key and the chain a client sends.
pub struct Leaf {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
    /// Leaf first, then the intermediates up to (not including) the root.
    pub chain: Vec<CertificateDer<'static>>,
}

impl Leaf {
    pub fn der(&self) -> &[u8] {
        self.cert.der().as_ref()
    }

    /// The intermediates the client sends, leaf's issuer first.
    pub fn intermediates(&self) -> Vec<&[u8]> {
        self.chain.iter().skip(1).map(|c| c.as_ref()).collect()
    }

    /// The identity a TLS client presents (whole chain).
    pub fn identity(&self) -> ClientIdentity {
        ClientIdentity {
            chain: self.chain.clone(),
            key_pkcs8: self.key.serialize_der(),
        }
    }

    /// The identity without intermediates (leaf only).
    pub fn identity_leaf_only(&self) -> ClientIdentity {
        ClientIdentity {
            chain: vec![self.cert.der().clone()],
            key_pkcs8: self.key.serialize_der(),
        }
    }

    /// The chain as PEM (what curl's `--cert` takes), leaf first.
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|c| der_to_pem(c)).collect()
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
}

/// PEM-armours a DER certificate.
pub fn der_to_pem(der: &[u8]) -> String {
    pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der)
        .expect("PEM encoding")
}

/// A root, a line of intermediates below it, and leaves issued by the last.
pub struct Pki {
    pub root: Ca,
    /// `intermediates[0]` is signed by the root, each next one by the previous.
    pub intermediates: Vec<Ca>,
}

impl Pki {
    /// A root and `n` well-formed intermediates.
    pub fn new(n: usize) -> Pki {
        Pki::with_kinds(&vec![CaKind::Ca; n])
    }

    /// A root and one intermediate per entry of `kinds`, top-down.
    ///
    /// Every PKI gets distinct names, so two PKIs of one test never share an
    /// issuer name (which would make "unknown issuer" a signature failure).
    pub fn with_kinds(kinds: &[CaKind]) -> Pki {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let root = Ca::root(&format!("edge-mtls test root CA {n}"));
        let mut intermediates: Vec<Ca> = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let name = format!("edge-mtls test intermediate CA {n}.{}", i + 1);
            let ca = intermediates.last().unwrap_or(&root).issue_ca(&name, *kind);
            intermediates.push(ca);
        }
        Pki {
            root,
            intermediates,
        }
    }

    /// The CA that issues leaves: the last intermediate, or the root.
    pub fn issuing_ca(&self) -> &Ca {
        self.intermediates.last().unwrap_or(&self.root)
    }

    /// A client leaf with the intermediates in its chain (bottom-up).
    pub fn client(&self, common_name: &str, options: &LeafOptions) -> Leaf {
        let above: Vec<CertificateDer<'static>> = self
            .intermediates
            .iter()
            .rev()
            .map(|ca| ca.der().clone())
            .collect();
        self.issuing_ca().issue_leaf(common_name, options, &above)
    }

    /// A trust store holding only the root.
    pub fn root_store(&self) -> TrustStoreHandle {
        trust_store(self.root.pem().as_bytes())
    }
}

/// The DER of the first certificate in a PEM text.
pub fn pem_cert(pem: &[u8]) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem).expect("a PEM certificate")
}

/// A trust-store handle from a PEM bundle (panics with the store's error).
pub fn trust_store(bundle: &[u8]) -> TrustStoreHandle {
    TrustStoreHandle::new(TrustStore::from_pem(bundle).expect("trust store"))
}

/// A validator over `store`, configured by `configure`.
pub fn validator(
    store: TrustStoreHandle,
    configure: impl FnOnce(ChainValidatorBuilder) -> ChainValidatorBuilder,
) -> ChainValidator {
    configure(ChainValidator::builder(store, provider()))
        .build()
        .expect("validator")
}

/// A self-signed client certificate no trust store knows.
pub fn self_signed_client(common_name: &str) -> Leaf {
    let params = leaf_params(common_name, &LeafOptions::default());
    let key = KeyPair::generate().expect("generate key");
    let cert = params.self_signed(&key).expect("self-sign");
    let chain = vec![cert.der().clone()];
    Leaf { cert, key, chain }
}

// ---------------------------------------------------------------------------
// The OpenSSL CLI and the seed's recipe
// ---------------------------------------------------------------------------

/// Runs `openssl args...` in `dir`; panics with its stderr when it fails.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the openssl binary");
    assert!(
        output.status.success(),
        "openssl {} failed ({}):\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs one `openssl` command line (the part after `openssl`, split on
/// whitespace, so arguments must not contain spaces) in `dir`.
pub fn openssl_line(dir: &Path, line: &str) -> String {
    let args: Vec<&str> = line.split_whitespace().collect();
    openssl(dir, &args)
}

/// `openssl x509 <args>` on the PEM file `file`, with the `label=` prefix
/// and the one trailing newline removed (a value may end in an escaped space,
/// so nothing else is trimmed).
pub fn openssl_x509_print(dir: &Path, file: &str, args: &[&str], label: &str) -> String {
    let mut all = vec!["x509", "-in", file, "-noout"];
    all.extend_from_slice(args);
    let out = openssl(dir, &all);
    let line = out.strip_suffix('\n').unwrap_or(&out);
    line.strip_prefix(label)
        .unwrap_or_else(|| panic!("openssl printed {line:?}, expected a {label:?} line"))
        .to_string()
}

/// Writes a fresh P-256 key made by `openssl ecparam` to `dir/name`.
pub fn openssl_ec_key(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            name,
        ],
    );
}

/// Writes a fresh P-256 key made by `openssl genpkey` (PKCS#8) to
/// `dir/file`.
pub fn openssl_pkcs8_ec_key(dir: &Path, file: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            file,
        ],
    );
}

/// A self-signed certificate from `openssl req -x509` over the key file
/// `key`, with `subj` in `-subj` syntax (`/`, `+` and `\` inside values
/// escaped with `\`; an unescaped `+` joins a multi-valued RDN) read as
/// UTF-8, and `serial` as `-set_serial` takes it (`0x…` or decimal). Writes
/// `dir/out` and returns the PEM text exactly as OpenSSL wrote it.
pub fn openssl_self_signed(dir: &Path, key: &str, subj: &str, serial: &str, out: &str) -> String {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            key,
            "-subj",
            subj,
            "-utf8",
            "-multivalue-rdn",
            "-set_serial",
            serial,
            "-days",
            "30",
            "-sha256",
            "-out",
            out,
        ],
    );
    std::fs::read_to_string(dir.join(out)).expect("read the certificate openssl wrote")
}

/// Runs a shell command line in `dir` (for the seed's `cat ... > ...`).
pub fn shell(dir: &Path, command_line: &str) {
    let status = Command::new("sh")
        .args(["-c", command_line])
        .current_dir(dir)
        .status()
        .expect("run sh");
    assert!(status.success(), "`{command_line}` failed: {status}");
}

/// The distinguished names typed at the seed's interactive prompts.
pub const ROOT_SUBJECT: &str = "/C=US/ST=Washington/L=Seattle/O=mTLS/OU=rootCA/CN=rootcamtls.com";
pub const CLIENT_SUBJECT: &str = "/C=US/ST=Washington/L=Seattle/O=mTLS/OU=client/CN=my_client";
pub const INTERMEDIATE_SUBJECT: &str =
    "/C=US/ST=Washington/L=Seattle/O=mTLS/OU=intermediateCA/CN=intermediatecamtls.com";
pub const INTERMEDIATE_CLIENT_SUBJECT: &str =
    "/C=US/ST=Washington/L=Seattle/O=mTLS/OU=client/CN=intermediate_client";

/// A v3_ca-style section for the intermediate (the seed's "Step 1a" leaves
/// the intermediate to the reader; this is OpenSSL's `v3_intermediate_ca`).
pub const INTERMEDIATE_EXTENSIONS: &str = "\
[ v3_intermediate_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
";

/// Every file the seed's OpenSSL recipe produced, read into memory (the
/// temporary directory is gone; private keys never leave the test process).
pub struct SeedPki {
    files: BTreeMap<String, Vec<u8>>,
}

impl SeedPki {
    pub fn file(&self, name: &str) -> &[u8] {
        self.files
            .get(name)
            .unwrap_or_else(|| panic!("the seed recipe made no {name}"))
    }

    pub fn text(&self, name: &str) -> &str {
        std::str::from_utf8(self.file(name)).expect("PEM is text")
    }

    /// The DER of the (first) certificate in a PEM file.
    pub fn cert_der(&self, name: &str) -> CertificateDer<'static> {
        pem_cert(self.file(name))
    }

    /// A client identity from a certificate file and a key file.
    pub fn identity(&self, cert_names: &[&str], key_name: &str) -> ClientIdentity {
        let key = PrivateKeyDer::from_pem_slice(self.file(key_name))
            .unwrap_or_else(|e| panic!("{key_name}: {e:?}"));
        let PrivateKeyDer::Pkcs8(key) = key else {
            panic!("{key_name}: OpenSSL 3 genrsa writes PKCS#8");
        };
        ClientIdentity {
            chain: cert_names.iter().map(|n| self.cert_der(n)).collect(),
            key_pkcs8: key.secret_pkcs8_der().to_vec(),
        }
    }

    /// Writes the named files into `dir`.
    pub fn write_to(&self, dir: &Path, names: &[&str]) {
        for name in names {
            std::fs::write(dir.join(name), self.file(name)).expect("write seed file");
        }
    }
}

/// Runs the seed's recipe once per test binary (the 4096-bit root key takes
/// a second or two) and keeps the results.
pub fn seed_pki() -> &'static SeedPki {
    static SEED: OnceLock<SeedPki> = OnceLock::new();
    SEED.get_or_init(run_seed_recipe)
}

fn run_seed_recipe() -> SeedPki {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    // Step 1: the private CA. `-subj` answers the interactive DN prompts.
    openssl_line(d, "genrsa -out Root_CA.key 4096");
    openssl_line(
        d,
        &format!(
            "req -new -x509 -days 3650 -key Root_CA.key -out Root_CA.pem -subj {ROOT_SUBJECT}"
        ),
    );

    // Step 2: the client key and CSR.
    openssl_line(d, "genrsa -out my_client.key 2048");
    openssl_line(
        d,
        &format!("req -new -key my_client.key -out my_client.csr -subj {CLIENT_SUBJECT}"),
    );

    // Step 3: sign the client CSR with the root, exactly as the seed does.
    openssl_line(
        d,
        "x509 -req -in my_client.csr -CA Root_CA.pem -CAkey Root_CA.key \
         -set_serial 01 -out my_client.pem -days 3650 -sha256",
    );

    // Step 1a (optional in the seed): an intermediate CA signed by the root,
    // and the seed's bundle of both.
    std::fs::write(d.join("v3_ca.cnf"), INTERMEDIATE_EXTENSIONS).expect("write extfile");
    openssl_line(d, "genrsa -out Intermediate_CA.key 2048");
    openssl_line(
        d,
        &format!(
            "req -new -key Intermediate_CA.key -out Intermediate_CA.csr -subj {INTERMEDIATE_SUBJECT}"
        ),
    );
    openssl_line(
        d,
        "x509 -req -in Intermediate_CA.csr -CA Root_CA.pem -CAkey Root_CA.key \
         -set_serial 02 -out Intermediate_CA.pem -days 1825 -sha256 \
         -extfile v3_ca.cnf -extensions v3_intermediate_ca",
    );
    shell(
        d,
        "cat Root_CA.pem Intermediate_CA.pem > Trust_store_bundle.pem",
    );

    // A client signed by the intermediate with the seed's Step 3 command.
    openssl_line(d, "genrsa -out intermediate_client.key 2048");
    openssl_line(
        d,
        &format!(
            "req -new -key intermediate_client.key -out intermediate_client.csr \
             -subj {INTERMEDIATE_CLIENT_SUBJECT}"
        ),
    );
    openssl_line(
        d,
        "x509 -req -in intermediate_client.csr -CA Intermediate_CA.pem \
         -CAkey Intermediate_CA.key -set_serial 01 -out intermediate_client.pem \
         -days 3650 -sha256",
    );
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(d).expect("read seed dir") {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name")
            .to_owned();
        files.insert(name, std::fs::read(&path).expect("read seed file"));
    }
    SeedPki { files }
}

// ---------------------------------------------------------------------------
// TLS harness
// ---------------------------------------------------------------------------

/// The server's own certificate: `localhost` and `127.0.0.1`, issued by a
/// server CA unrelated to any client PKI.
pub struct ServerIdentity {
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    pub chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Vec<u8>,
}

impl ServerIdentity {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_pkcs8.clone().into())
    }
}

pub fn server_identity() -> &'static ServerIdentity {
    static SERVER: OnceLock<ServerIdentity> = OnceLock::new();
    SERVER.get_or_init(|| {
        let ca = Ca::root("edge-mtls test server CA");
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into()])
            .expect("server params");
        params.distinguished_name = distinguished_name("localhost");
        params.use_authority_key_identifier_extension = true;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &ca.issuer()).expect("server cert");
        ServerIdentity {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            chain: vec![cert.der().clone()],
            key_pkcs8: key.serialize_der(),
        }
    })
}

/// A verifier over `validator` in `mode`.
pub fn verifier(validator: ChainValidator, mode: ValidationMode) -> MtlsClientVerifier {
    MtlsClientVerifier::builder(Arc::new(validator))
        .mode(mode)
        .build()
        .expect("verifier")
}

/// A server config (TLS 1.2 and 1.3) that authenticates clients with `verifier`.
pub fn server_config(verifier: MtlsClientVerifier) -> Arc<ServerConfig> {
    let server = server_identity();
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(server.chain.clone(), server.key())
        .expect("server certificate");
    Arc::new(config)
}

/// Shorthand: a server config validating against `store` in `mode`.
pub fn mtls_server_config(
    store: TrustStoreHandle,
    mode: ValidationMode,
    configure: impl FnOnce(ChainValidatorBuilder) -> ChainValidatorBuilder,
) -> Arc<ServerConfig> {
    server_config(verifier(validator(store, configure), mode))
}

/// What the test server answers once the handshake completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Reads one line, answers `ok\n`.
    Line,
    /// Reads an HTTP/1.1 request head, answers `200` with body `ok`.
    Http,
}

/// What the server saw on one connection that completed its handshake.
#[derive(Debug)]
pub struct Served {
    pub peer_certificates: Option<Vec<CertificateDer<'static>>>,
    pub protocol: Option<ProtocolVersion>,
    pub request: Vec<u8>,
}

/// A tokio-rustls server on 127.0.0.1 that serves a fixed number of
/// connections, one after the other, and then stops.
pub struct TestServer {
    pub addr: SocketAddr,
    task: JoinHandle<Vec<Result<Served, String>>>,
}

impl TestServer {
    pub async fn start(config: Arc<ServerConfig>, connections: usize, reply: Reply) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let acceptor = TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            let mut seen = Vec::with_capacity(connections);
            for _ in 0..connections {
                let tcp = match tokio::time::timeout(IO_TIMEOUT, listener.accept()).await {
                    Ok(Ok((tcp, _))) => tcp,
                    Ok(Err(e)) => {
                        seen.push(Err(format!("accept: {e}")));
                        continue;
                    }
                    Err(_) => {
                        seen.push(Err("no connection arrived".into()));
                        break;
                    }
                };
                seen.push(serve_one(&acceptor, tcp, reply).await);
            }
            seen
        });
        TestServer { addr, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits for the server to finish and returns one entry per connection:
    /// what it served, or the handshake error.
    pub async fn finish(self) -> Vec<Result<Served, String>> {
        tokio::time::timeout(IO_TIMEOUT * 2, self.task)
            .await
            .expect("server finished in time")
            .expect("server task")
    }

    /// For single-connection servers: the one outcome.
    pub async fn finish_one(self) -> Result<Served, String> {
        let mut all = self.finish().await;
        assert_eq!(all.len(), 1, "expected exactly one connection");
        all.remove(0)
    }
}

async fn serve_one(acceptor: &TlsAcceptor, tcp: TcpStream, reply: Reply) -> Result<Served, String> {
    let accepted = tokio::time::timeout(IO_TIMEOUT, acceptor.accept(tcp).into_fallible()).await;
    let mut tls = match accepted {
        Err(_) => return Err("handshake timed out".into()),
        Ok(Err((error, mut tcp))) => {
            // The alert is already written. Keep the socket until the client
            // closes: closing with its unread request pending would make the
            // kernel send a RST, which can overtake the alert.
            drain(&mut tcp).await;
            return Err(describe_io_error(&error));
        }
        Ok(Ok(tls)) => tls,
    };
    let (_, conn) = tls.get_ref();
    let peer_certificates = conn
        .peer_certificates()
        .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect());
    let protocol = conn.protocol_version();
    let request = match reply {
        Reply::Line => read_until(&mut tls, b"\n").await,
        Reply::Http => read_until(&mut tls, b"\r\n\r\n").await,
    }
    .map_err(|e| format!("reading the request: {}", describe_io_error(&e)))?;
    let response: &[u8] = match reply {
        Reply::Line => b"ok\n",
        Reply::Http => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    };
    let written = async {
        tls.write_all(response).await?;
        tls.shutdown().await
    };
    tokio::time::timeout(IO_TIMEOUT, written)
        .await
        .map_err(|_| "writing the response timed out".to_string())?
        .map_err(|e| format!("writing the response: {e}"))?;
    Ok(Served {
        peer_certificates,
        protocol,
        request,
    })
}

async fn drain(tcp: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

async fn read_until<R: AsyncRead + Unpin>(
    stream: &mut R,
    terminator: &[u8],
) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(IO_TIMEOUT, async {
        while !data.windows(terminator.len()).any(|w| w == terminator) {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
            if data.len() > 64 * 1024 {
                return Err(io::Error::other("request too large"));
            }
        }
        Ok(())
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "read timed out"))??;
    Ok(data)
}

/// The rustls error inside an I/O error from tokio-rustls, if any.
pub fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error.get_ref()?.downcast_ref::<rustls::Error>()
}

fn describe_io_error(error: &io::Error) -> String {
    match rustls_error(error) {
        Some(e) => format!("{e:?}"),
        None => error.to_string(),
    }
}

/// A client certificate chain and its PKCS#8 private key.
#[derive(Clone)]
pub struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_pkcs8: Vec<u8>,
}

/// A client config trusting the server CA, offering `identity` when given,
/// restricted to `versions`.
pub fn client_config_with_versions(
    identity: Option<&ClientIdentity>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let builder = client_builder(versions);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => builder.with_client_cert_resolver(Arc::new(
            rustls::sign::SingleCertAndKey::from(id.certified_key()),
        )),
    };
    Arc::new(config)
}

fn client_builder(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert> {
    let mut roots = RootCertStore::empty();
    roots
        .add(server_identity().ca_der.clone())
        .expect("server CA");
    ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(roots)
}

impl ClientIdentity {
    /// The rustls signing identity.
    ///
    /// `CertifiedKey::new` rather than `with_client_auth_cert`: the latter
    /// re-parses the leaf with webpki, which refuses the v1 certificates the
    /// seed's OpenSSL recipe makes.
    pub fn certified_key(&self) -> rustls::sign::CertifiedKey {
        let key = provider()
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(self.key_pkcs8.clone().into()))
            .expect("client key");
        rustls::sign::CertifiedKey::new(self.chain.clone(), key)
    }
}

/// A client certificate resolver that records the CA names the server
/// advertised in its CertificateRequest.
#[derive(Debug)]
pub struct HintRecorder {
    key: Arc<rustls::sign::CertifiedKey>,
    pub hints: Mutex<Option<Vec<Vec<u8>>>>,
}

impl rustls::client::ResolvesClientCert for HintRecorder {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let hints = root_hint_subjects.iter().map(|h| h.to_vec()).collect();
        *self.hints.lock().expect("hints lock") = Some(hints);
        Some(self.key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A client config presenting `identity` whose resolver records the CA
/// names the server advertises.
pub fn client_config_recording_hints(
    identity: &ClientIdentity,
) -> (Arc<ClientConfig>, Arc<HintRecorder>) {
    let recorder = Arc::new(HintRecorder {
        key: Arc::new(identity.certified_key()),
        hints: Mutex::new(None),
    });
    let config = client_builder(rustls::ALL_VERSIONS).with_client_cert_resolver(recorder.clone());
    (Arc::new(config), recorder)
}

/// A client config for TLS 1.3 and 1.2.
pub fn client_config(identity: Option<&ClientIdentity>) -> Arc<ClientConfig> {
    client_config_with_versions(identity, rustls::ALL_VERSIONS)
}

/// How a client's connection attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// The handshake completed and the server answered.
    Accepted {
        reply: String,
        protocol: Option<ProtocolVersion>,
    },
    /// The server ended the connection with this alert.
    Alert(AlertDescription),
    /// Any other failure.
    Failed(String),
}

impl Outcome {
    fn from_io(error: io::Error) -> Outcome {
        match rustls_error(&error) {
            Some(rustls::Error::AlertReceived(alert)) => Outcome::Alert(*alert),
            Some(other) => Outcome::Failed(format!("{other:?}")),
            None => Outcome::Failed(format!("{:?}: {error}", error.kind())),
        }
    }

    /// Panics unless the connection was accepted; returns the server's reply.
    #[track_caller]
    pub fn expect_accepted(&self) -> &str {
        match self {
            Outcome::Accepted { reply, .. } => reply,
            other => panic!("expected the handshake to succeed, got {other:?}"),
        }
    }

    /// Panics unless the server sent `expected`.
    #[track_caller]
    pub fn expect_alert(&self, expected: AlertDescription) {
        match self {
            Outcome::Alert(alert) if *alert == expected => {}
            other => panic!("expected alert {expected:?}, got {other:?}"),
        }
    }
}

/// Connects to `addr` as `localhost`, writes a line, and reads the answer.
///
/// Under TLS 1.3 the client's handshake completes before the server has
/// looked at the client certificate, so a rejection only shows on the first
/// read after the handshake (SPEC §9); writing then reading observes it.
pub async fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> Outcome {
    let attempt = async {
        let tcp = match TcpStream::connect(addr).await {
            Ok(tcp) => tcp,
            Err(e) => return Outcome::Failed(format!("connect: {e}")),
        };
        let name = ServerName::try_from("localhost").expect("server name");
        let mut tls = match TlsConnector::from(config).connect(name, tcp).await {
            Ok(tls) => tls,
            Err(e) => return Outcome::from_io(e),
        };
        if let Err(e) = tls.write_all(b"ping\n").await {
            return Outcome::from_io(e);
        }
        let mut reply = Vec::new();
        if let Err(e) = tls.read_to_end(&mut reply).await {
            return Outcome::from_io(e);
        }
        let protocol = tls.get_ref().1.protocol_version();
        Outcome::Accepted {
            reply: String::from_utf8_lossy(&reply).into_owned(),
            protocol,
        }
    };
    tokio::time::timeout(IO_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Outcome::Failed("client timed out".into()))
}

/// One full round: a single-connection server with `config`, one client with
/// `identity`; returns what the client saw and what the server saw.
pub async fn handshake(
    config: Arc<ServerConfig>,
    identity: Option<&ClientIdentity>,
) -> (Outcome, Result<Served, String>) {
    handshake_with(config, client_config(identity)).await
}

/// Like [`handshake`] with a prepared client config.
pub async fn handshake_with(
    config: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
) -> (Outcome, Result<Served, String>) {
    let server = TestServer::start(config, 1, Reply::Line).await;
    let outcome = connect(server.addr, client).await;
    let served = server.finish_one().await;
    (outcome, served)
}

/// The rustls alert for one of the crate's alerts (same wire value).
pub fn wire_alert(alert: edge_mtls::TlsAlert) -> AlertDescription {
    AlertDescription::from(alert.code())
}

// ---------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------

/// What the curl binary did.
#[derive(Debug)]
pub struct CurlRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the real `curl` against `https://localhost:port/` (resolved to
/// 127.0.0.1), trusting the test server CA written to `dir`, with extra
/// arguments such as `--cert`/`--key` (paths relative to `dir`).
pub async fn curl(dir: &Path, port: u16, extra: &[&str]) -> CurlRun {
    std::fs::write(dir.join("server_ca.pem"), &server_identity().ca_pem).expect("write CA");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let url = format!("https://localhost:{port}/");
    let output = tokio::process::Command::new("curl")
        .current_dir(dir)
        .args(["-sS", "--max-time", "20", "--cacert", "server_ca.pem"])
        .args(["--resolve", &resolve])
        .args(extra)
        .arg(&url)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the curl binary");
    CurlRun {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
