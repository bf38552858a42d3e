//! Client-certificate chains made by the PKI tools people actually use, with
//! their default or documented settings, must be ACCEPTED by the default
//! validation profile over a real TLS handshake; the same kind of chains with
//! one security defect must be REFUSED with the right connection-log reason
//! code.
//!
//! Every chain is generated at test time in a temporary directory by the tool
//! itself (the OpenSSL CLI, `openssl ca`, easy-rsa, keytool, pyca/cryptography,
//! rcgen). Each handshake is real: a rustls client on 127.0.0.1 presents the
//! leaf and its intermediates, the server runs `MtlsClientVerifier` in
//! `Required` mode with the chain's root as its whole trust store, and the
//! refusal reason is the one the server's verifier reports (what the
//! connection log records). Before a chain is expected to be accepted,
//! `openssl verify -purpose sslclient` must accept it; before a defect is
//! expected to be refused, `openssl verify -auth_level 2` must refuse it.
//!
//! Needs the `openssl`, `python3` (with `cryptography`), easy-rsa and
//! `keytool` (Java) binaries; a missing easy-rsa or keytool fails the test.

mod common;

use std::time::{Duration, SystemTime};

use common::pki_tools::{
    assert_accepted, assert_refused, keytool, pkcs8_key, EasyRsa, ToolChain, ToolDir,
};
use common::python::python3;
use common::{der_to_pem, INTERMEDIATE_EXTENSIONS};
use edge_mtls::{CertPosition, ReasonCode, ValidationError};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair,
};

// ---------------------------------------------------------------------------
// Extension files, as the usual OpenSSL recipes write them
// ---------------------------------------------------------------------------

/// `-extfile` for a TLS client certificate (the recipe of most tutorials).
/// OpenSSL 3 adds subjectKeyIdentifier and authorityKeyIdentifier itself.
const CLIENT_EXT: &str = "\
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = clientAuth
";

/// `CLIENT_EXT` with a server purpose instead of clientAuth (the defect).
const SERVER_AUTH_ONLY_EXT: &str = "\
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = serverAuth
";

/// An intermediate's `-extfile` with only the two lines tutorials give:
/// non-critical basicConstraints and keyUsage. OpenSSL 3 still adds the key
/// identifiers by default.
const BARE_INTERMEDIATE_EXT: &str = "\
basicConstraints = CA:TRUE
keyUsage = keyCertSign, cRLSign
";

/// [`BARE_INTERMEDIATE_EXT`] without key identifiers: OpenSSL 3 adds them
/// unless told `none` (x509v3_config(5)).
const NO_KEY_ID_INTERMEDIATE_EXT: &str = "\
basicConstraints = CA:TRUE
keyUsage = keyCertSign, cRLSign
subjectKeyIdentifier = none
authorityKeyIdentifier = none
";

/// [`CLIENT_EXT`] without key identifiers.
const NO_KEY_ID_CLIENT_EXT: &str = "\
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = none
authorityKeyIdentifier = none
";

/// A minimal `openssl req` configuration whose root has no key identifiers.
const NO_KEY_ID_REQ_CONFIG: &str = "\
[ req ]
distinguished_name = req_distinguished_name
x509_extensions = v3_ca

[ req_distinguished_name ]

[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = keyCertSign, cRLSign
subjectKeyIdentifier = none
authorityKeyIdentifier = none
";

/// The top CA of the pathLen defect: [`INTERMEDIATE_EXTENSIONS`] plus
/// `pathlen:0`.
const PATHLEN_ZERO_EXT: &str = "\
[ v3_intermediate_ca ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
";

/// An `openssl ca` configuration in the style of the default openssl.cnf:
/// its `[ CA_default ]`, `policy_anything` and `usr_cert` sections, with a
/// `demoCA`-like layout in the working directory.
const OPENSSL_CA_CNF: &str = "\
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = .
certs = $dir/certs
crl_dir = $dir/crl
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/cacert.pem
serial = $dir/serial
crlnumber = $dir/crlnumber
crl = $dir/crl.pem
private_key = $dir/private/cakey.pem
x509_extensions = usr_cert
name_opt = ca_default
cert_opt = ca_default
default_days = 365
default_crl_days = 30
default_md = default
preserve = no
policy = policy_anything

[ policy_anything ]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
emailAddress = optional

[ usr_cert ]
basicConstraints = CA:FALSE
nsComment = \"OpenSSL Generated Certificate\"
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
";

// ---------------------------------------------------------------------------
// Chain builders
// ---------------------------------------------------------------------------

const OPENSSL_X509: &str = "openssl 3 (req -x509 + x509 -req)";
const OPENSSL_CA: &str = "openssl 3 (ca, default openssl.cnf style)";

/// `openssl req -x509` root (system openssl.cnf `v3_ca`: critical
/// basicConstraints, SKI, AKI) in `dir` as `root`, and the client `-extfile`s.
fn openssl_root(dir: &ToolDir) {
    dir.req_x509_root("root", "/O=interop/CN=openssl x509 root", &[]);
    dir.write("client.ext", CLIENT_EXT);
}

/// A client CSR `name` signed by `root` with `x509 -req <extra>`, as a chain.
fn openssl_root_client(dir: &ToolDir, name: &str, chain_name: &str, extra: &[&str]) -> ToolChain {
    dir.csr(name, &format!("/O=interop/CN={name}"));
    dir.x509_req(name, "root", extra);
    dir.chain(OPENSSL_X509, chain_name, "root", &[name], name)
}

/// An `openssl ca` working directory with the default-style configuration
/// and a `req -x509` root (system openssl.cnf `v3_ca`).
fn openssl_ca_dir() -> ToolDir {
    let dir = ToolDir::new();
    dir.write("ca.cnf", OPENSSL_CA_CNF);
    dir.write("index.txt", "");
    dir.write("serial", "1000\n");
    for sub in ["private", "newcerts", "certs", "crl"] {
        std::fs::create_dir(dir.join(sub)).expect("mkdir");
    }
    common::openssl_pkcs8_ec_key(dir.path(), "private/cakey.pem");
    dir.openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "private/cakey.pem",
        "-subj",
        "/O=interop/CN=openssl ca root",
        "-days",
        "30",
        "-out",
        "cacert.pem",
    ]);
    dir
}

/// A client `name` issued by `openssl ca -batch` (the `usr_cert` section)
/// with extra `openssl ca` options.
fn openssl_ca_client(dir: &ToolDir, name: &str, chain_name: &str, extra: &[&str]) -> ToolChain {
    dir.csr(name, &format!("/O=interop/CN={name}"));
    let (csr, out) = (format!("{name}.csr"), format!("{name}.pem"));
    let mut args = vec![
        "ca", "-batch", "-notext", "-config", "ca.cnf", "-in", &csr, "-out", &out,
    ];
    args.extend_from_slice(extra);
    dir.openssl(&args);
    dir.chain_from_files(
        OPENSSL_CA,
        chain_name,
        "cacert.pem",
        &[out.as_str()],
        &format!("{name}.key"),
    )
}

/// root -> intermediate -> client, all by `openssl x509 -req`, with the
/// intermediate's `-extfile` section `v3_intermediate_ca` of `int_ext`.
fn openssl_three_tier(dir: &ToolDir, chain_name: &str, int_ext: &str) -> ToolChain {
    openssl_root(dir);
    dir.write("int.cnf", int_ext);
    dir.csr("int", "/O=interop/CN=openssl intermediate");
    dir.x509_req(
        "int",
        "root",
        &["-extfile", "int.cnf", "-extensions", "v3_intermediate_ca"],
    );
    dir.csr("client", "/O=interop/CN=openssl three-tier client");
    dir.x509_req("client", "int", &["-extfile", "client.ext"]);
    dir.chain(
        OPENSSL_X509,
        chain_name,
        "root",
        &["client", "int"],
        "client",
    )
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

// ---------------------------------------------------------------------------
// Accepted: the tools' default or documented chains
// ---------------------------------------------------------------------------

/// 1a. The most common recipe: `req -x509` root, `x509 -req` without
/// `-extfile`. OpenSSL 3.0 makes an X.509 v1 leaf (no extensions at all).
#[tokio::test]
async fn openssl_x509_req_v1_leaf_is_accepted() {
    let dir = ToolDir::new();
    openssl_root(&dir);
    let chain = openssl_root_client(
        &dir,
        "v1-client",
        "req -x509 root -> x509 -req leaf without -extfile (v1)",
        &[],
    );
    assert!(
        dir.text("v1-client").contains("Version: 1 (0x0)"),
        "OpenSSL 3.0's x509 -req without -extfile is expected to make a v1 certificate:\n{}",
        dir.text("v1-client")
    );
    assert_accepted(&chain).await;
}

/// 1b. The same with `-extfile` (basicConstraints CA:FALSE, keyUsage
/// digitalSignature, extendedKeyUsage clientAuth): a v3 leaf.
#[tokio::test]
async fn openssl_x509_req_v3_client_leaf_is_accepted() {
    let dir = ToolDir::new();
    openssl_root(&dir);
    let chain = openssl_root_client(
        &dir,
        "v3-client",
        "req -x509 root -> x509 -req -extfile client leaf (v3)",
        &["-extfile", "client.ext"],
    );
    assert_accepted(&chain).await;
}

/// 2. `openssl ca` with the default openssl.cnf's `usr_cert` section
/// (basicConstraints CA:FALSE, nsComment, SKI, AKI keyid,issuer; no
/// keyUsage, no extendedKeyUsage) under a `req -x509` root.
#[tokio::test]
async fn openssl_ca_usr_cert_leaf_is_accepted() {
    let dir = openssl_ca_dir();
    let chain = openssl_ca_client(
        &dir,
        "ca-client",
        "req -x509 root -> ca -batch usr_cert leaf",
        &[],
    );
    assert_accepted(&chain).await;
}

/// 3a. Three tiers by `x509 -req`, the intermediate with key identifiers
/// and a critical basicConstraints (the usual `v3_intermediate_ca`).
#[tokio::test]
async fn openssl_three_tier_with_key_identifiers_is_accepted() {
    let dir = ToolDir::new();
    let chain = openssl_three_tier(
        &dir,
        "root -> v3_intermediate_ca (critical BC, SKI, AKI) -> client",
        INTERMEDIATE_EXTENSIONS,
    );
    assert_accepted(&chain).await;
}

/// 3b. Three tiers where the intermediate's `-extfile` has only
/// `basicConstraints = CA:TRUE` (not critical) and keyUsage; OpenSSL 3 adds
/// SKI and AKI by itself.
#[tokio::test]
async fn openssl_three_tier_with_non_critical_basic_constraints_is_accepted() {
    let dir = ToolDir::new();
    let chain = openssl_three_tier(
        &dir,
        "root -> intermediate with non-critical BC (OpenSSL adds SKI/AKI) -> client",
        &format!("[ v3_intermediate_ca ]\n{BARE_INTERMEDIATE_EXT}"),
    );
    let text = dir.text("int");
    assert!(
        text.contains("X509v3 Basic Constraints: \n") && text.contains("Subject Key Identifier"),
        "expected a non-critical basicConstraints and OpenSSL's default SKI:\n{text}"
    );
    assert_accepted(&chain).await;
}

/// root -> intermediate -> client by `x509 -req` without any key identifier
/// (`subjectKeyIdentifier = none`, `authorityKeyIdentifier = none`, since
/// OpenSSL 3 adds them otherwise): the root from a minimal `req -config`,
/// the intermediate's basicConstraints critical or not.
fn openssl_chain_without_key_identifiers(critical_ca: bool) -> ToolChain {
    let dir = ToolDir::new();
    dir.write("req.cnf", NO_KEY_ID_REQ_CONFIG);
    dir.req_x509_root(
        "root",
        "/O=interop/CN=openssl root without key ids",
        &["-config", "req.cnf"],
    );
    let int_ext = if critical_ca {
        NO_KEY_ID_INTERMEDIATE_EXT.replace("CA:TRUE", "critical, CA:TRUE")
    } else {
        NO_KEY_ID_INTERMEDIATE_EXT.to_string()
    };
    dir.write("int.ext", &int_ext);
    dir.csr("int", "/O=interop/CN=openssl intermediate without key ids");
    dir.x509_req("int", "root", &["-extfile", "int.ext"]);
    dir.write("client.ext", NO_KEY_ID_CLIENT_EXT);
    dir.csr("client", "/O=interop/CN=openssl client without key ids");
    dir.x509_req("client", "int", &["-extfile", "client.ext"]);
    for cert in ["root", "int", "client"] {
        let text = dir.text(cert);
        assert!(
            !text.contains("Key Identifier"),
            "{cert} was meant to have no key identifier:\n{text}"
        );
    }
    assert_eq!(
        dir.text("int")
            .contains("X509v3 Basic Constraints: critical"),
        critical_ca,
        "{}",
        dir.text("int")
    );
    let chain_name = if critical_ca {
        "root -> intermediate without SKI/AKI, critical BC -> client"
    } else {
        "root -> intermediate without SKI/AKI, non-critical BC -> client"
    };
    dir.chain(
        OPENSSL_X509,
        chain_name,
        "root",
        &["client", "int"],
        "client",
    )
}

/// 3c. Three tiers without any key identifier and with a non-critical
/// basicConstraints on the intermediate.
#[tokio::test]
async fn openssl_three_tier_without_key_identifiers_is_accepted() {
    assert_accepted(&openssl_chain_without_key_identifiers(false)).await;
}

/// 3d. Three tiers without any key identifier, the intermediate's
/// basicConstraints critical: only the missing SKI/AKI differ from 3a.
#[tokio::test]
async fn openssl_three_tier_critical_ca_without_key_identifiers_is_accepted() {
    assert_accepted(&openssl_chain_without_key_identifiers(true)).await;
}

/// 4. rcgen 0.14 defaults: a CA with `IsCa::Ca(Unconstrained)`, an
/// intermediate with default parameters but `is_ca` (rcgen writes no
/// authorityKeyIdentifier unless asked to), a leaf with clientAuth.
#[tokio::test]
async fn rcgen_default_chain_is_accepted() {
    let mut root_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    root_params.distinguished_name = name("rcgen default root");
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root_key = KeyPair::generate().expect("key");
    let root = root_params.self_signed(&root_key).expect("root");

    let mut int_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    int_params.distinguished_name = name("rcgen default intermediate");
    int_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let int_key = KeyPair::generate().expect("key");
    let intermediate = int_params
        .signed_by(&int_key, &Issuer::from_params(&root_params, &root_key))
        .expect("intermediate");

    let mut leaf_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    leaf_params.distinguished_name = name("rcgen default client");
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = leaf_params
        .signed_by(&leaf_key, &Issuer::from_params(&int_params, &int_key))
        .expect("leaf");

    let chain = ToolChain {
        tool: "rcgen 0.14 (defaults)",
        chain_name: "Ca(Unconstrained) root -> default intermediate (no AKI) -> clientAuth leaf"
            .into(),
        root_pem: root.pem().into_bytes(),
        chain: vec![leaf.der().clone(), intermediate.der().clone()],
        key_pkcs8: leaf_key.serialize_der(),
    };
    assert_accepted(&chain).await;
}

/// The pyca/cryptography builder script: root (critical BasicConstraints,
/// keyUsage, SKI), intermediate with `BasicConstraints(ca=True,
/// path_length=None)` marked `critical=False` and no SKI/AKI, leaf with
/// `ExtendedKeyUsage([CLIENT_AUTH])` only.
const PYCA_SCRIPT: &str = r#"
import datetime
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

now = datetime.datetime.now(datetime.timezone.utc)

def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

def builder(subject, issuer, key):
    return (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
    )

def ca_key_usage():
    return x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )

def write(path, cert):
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))

root_key = ec.generate_private_key(ec.SECP256R1())
root = (
    builder("pyca root", "pyca root", root_key)
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .add_extension(ca_key_usage(), critical=True)
    .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
    .sign(root_key, hashes.SHA256())
)

int_key = ec.generate_private_key(ec.SECP256R1())
intermediate = (
    builder("pyca intermediate", "pyca root", int_key)
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=False)
    .add_extension(ca_key_usage(), critical=True)
    .sign(root_key, hashes.SHA256())
)

leaf_key = ec.generate_private_key(ec.SECP256R1())
leaf = (
    builder("pyca client", "pyca intermediate", leaf_key)
    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    .sign(int_key, hashes.SHA256())
)

write("root.pem", root)
write("int.pem", intermediate)
write("client.pem", leaf)
with open("client.key", "wb") as f:
    f.write(leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
"#;

/// 5. pyca/cryptography's `CertificateBuilder`: an intermediate with a
/// non-critical BasicConstraints and no key identifiers.
#[tokio::test]
async fn pyca_cryptography_chain_without_key_identifiers_is_accepted() {
    let dir = ToolDir::new();
    python3(dir.path(), PYCA_SCRIPT, &[]);
    let chain = dir.chain(
        "pyca/cryptography (CertificateBuilder)",
        "root -> intermediate BasicConstraints(ca=True) critical=False, no SKI/AKI -> clientAuth leaf",
        "root",
        &["client", "int"],
        "client",
    );
    assert_accepted(&chain).await;
}

/// 6a. easy-rsa 3: `init-pki`, `build-ca nopass`, `build-client-full
/// client1 nopass`. easy-rsa's CA has a non-critical basicConstraints.
#[tokio::test]
async fn easy_rsa_client_is_accepted() {
    let easyrsa = EasyRsa::new();
    easyrsa.run("pki", &[], &["init-pki"]);
    easyrsa.run(
        "pki",
        &[("EASYRSA_REQ_CN", "easy-rsa interop root")],
        &["build-ca", "nopass"],
    );
    easyrsa.run("pki", &[], &["build-client-full", "client1", "nopass"]);
    let chain = easyrsa.dir.chain_from_files(
        "easy-rsa 3 (build-ca, build-client-full)",
        "build-ca nopass root (non-critical BC) -> build-client-full client1",
        "pki/ca.crt",
        &["pki/issued/client1.crt"],
        "pki/private/client1.key",
    );
    assert_accepted(&chain).await;
}

/// 6b. easy-rsa 3's sub-CA flow: `build-ca nopass subca` in a second PKI,
/// `import-req` + `sign-req ca` by the root PKI, then `build-client-full` by
/// the sub-CA. Both CAs have a non-critical basicConstraints.
#[tokio::test]
async fn easy_rsa_sub_ca_client_is_accepted() {
    let easyrsa = EasyRsa::new();
    easyrsa.run("root-pki", &[], &["init-pki"]);
    easyrsa.run(
        "root-pki",
        &[("EASYRSA_REQ_CN", "easy-rsa interop root")],
        &["build-ca", "nopass"],
    );
    easyrsa.run("sub-pki", &[], &["init-pki"]);
    easyrsa.run(
        "sub-pki",
        &[("EASYRSA_REQ_CN", "easy-rsa interop sub-CA")],
        &["build-ca", "nopass", "subca"],
    );
    let request = easyrsa.pki("sub-pki").join("reqs").join("ca.req");
    easyrsa.run(
        "root-pki",
        &[],
        &["import-req", request.to_str().expect("UTF-8 path"), "subca"],
    );
    easyrsa.run("root-pki", &[], &["sign-req", "ca", "subca"]);
    std::fs::copy(
        easyrsa.pki("root-pki").join("issued").join("subca.crt"),
        easyrsa.pki("sub-pki").join("ca.crt"),
    )
    .expect("install the signed sub-CA certificate");
    easyrsa.run("sub-pki", &[], &["build-client-full", "client2", "nopass"]);
    let chain = easyrsa.dir.chain_from_files(
        "easy-rsa 3 (sub-CA: build-ca subca, sign-req ca)",
        "root (non-critical BC) -> sub-CA (non-critical BC) -> build-client-full client2",
        "root-pki/ca.crt",
        &["sub-pki/issued/client2.crt", "sub-pki/ca.crt"],
        "sub-pki/private/client2.key",
    );
    assert_accepted(&chain).await;
}

/// 7. A root with serial number 0 (`req -x509 -set_serial 0`) as the trust
/// anchor: only its name, key and constraints matter (RFC 5280 §6.1.1(d)).
#[tokio::test]
async fn openssl_root_with_serial_zero_is_accepted() {
    let dir = ToolDir::new();
    dir.req_x509_root(
        "root",
        "/O=interop/CN=openssl serial zero root",
        &["-set_serial", "0"],
    );
    dir.write("client.ext", CLIENT_EXT);
    let text = dir.text("root");
    assert!(
        text.contains("Serial Number: 0 (0x0)"),
        "expected serial 0:\n{text}"
    );
    let chain = openssl_root_client(
        &dir,
        "serial-zero-client",
        "req -x509 -set_serial 0 root -> x509 -req -extfile client leaf",
        &["-extfile", "client.ext"],
    );
    assert_accepted(&chain).await;
}

/// 8. keytool as the JDK documentation chains certificates: a root with
/// `-ext bc:c`, an intermediate signed with `-gencert -ext BC=0`
/// (non-critical, pathLen 0), a client signed with `-ext ku:c=dig -ext
/// eku=clientAuth`; PKCS#12 keystores, EC P-256 keys.
#[tokio::test]
async fn keytool_chain_is_accepted() {
    let dir = ToolDir::new();
    let d = dir.path();
    let pass = ["-storepass", "changeit", "-keypass", "changeit"];
    let genkeypair = |alias: &str, cn: &str, ext: &[&str]| {
        let store = format!("{alias}.p12");
        let dname = format!("CN={cn}");
        let mut args = vec![
            "-genkeypair",
            "-keystore",
            &store,
            "-alias",
            alias,
            "-keyalg",
            "EC",
            "-groupname",
            "secp256r1",
            "-dname",
            &dname,
            "-validity",
            "30",
        ];
        args.extend_from_slice(&pass);
        args.extend_from_slice(ext);
        keytool(d, &args);
    };
    genkeypair("root", "keytool root", &["-ext", "bc:c"]);
    genkeypair("ca", "keytool intermediate", &["-ext", "bc:c"]);
    genkeypair("client", "keytool client", &[]);
    let with_pass = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&pass);
        keytool(d, &all);
    };
    with_pass(&[
        "-exportcert",
        "-keystore",
        "root.p12",
        "-alias",
        "root",
        "-rfc",
        "-file",
        "root.pem",
    ]);
    with_pass(&[
        "-certreq",
        "-keystore",
        "ca.p12",
        "-alias",
        "ca",
        "-file",
        "ca.csr",
    ]);
    with_pass(&[
        "-gencert",
        "-keystore",
        "root.p12",
        "-alias",
        "root",
        "-ext",
        "BC=0",
        "-rfc",
        "-infile",
        "ca.csr",
        "-outfile",
        "ca.pem",
        "-validity",
        "30",
    ]);
    with_pass(&[
        "-certreq",
        "-keystore",
        "client.p12",
        "-alias",
        "client",
        "-file",
        "client.csr",
    ]);
    with_pass(&[
        "-gencert",
        "-keystore",
        "ca.p12",
        "-alias",
        "ca",
        "-ext",
        "ku:c=dig",
        "-ext",
        "eku=clientAuth",
        "-rfc",
        "-infile",
        "client.csr",
        "-outfile",
        "client.pem",
        "-validity",
        "30",
    ]);
    dir.openssl(&[
        "pkcs12",
        "-in",
        "client.p12",
        "-nocerts",
        "-nodes",
        "-passin",
        "pass:changeit",
        "-out",
        "client.key",
    ]);
    let chain = dir.chain(
        "keytool (JDK, PKCS#12 keystores)",
        "-ext bc:c root -> -gencert -ext BC=0 intermediate (non-critical) -> clientAuth client",
        "root",
        &["client", "ca"],
        "client",
    );
    assert_accepted(&chain).await;
}

// ---------------------------------------------------------------------------
// Refused: the same kind of chains with one security defect
// ---------------------------------------------------------------------------

/// `openssl ca` as in [`openssl_ca_usr_cert_leaf_is_accepted`], with
/// `-startdate`/`-enddate` two days and one day ago.
#[tokio::test]
async fn expired_openssl_ca_leaf_is_refused_as_expired() {
    let dir = openssl_ca_dir();
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let start = common::pki_tools::openssl_utc_time(now - 2 * day);
    let end = common::pki_tools::openssl_utc_time(now - day);
    let chain = openssl_ca_client(
        &dir,
        "expired-client",
        "req -x509 root -> ca -batch usr_cert leaf that expired yesterday",
        &["-startdate", &start, "-enddate", &end],
    );
    assert_refused(
        &chain,
        ReasonCode::ClientCertExpired,
        "the leaf's notAfter",
        |e| {
            matches!(
                e,
                ValidationError::Expired {
                    position: CertPosition::Leaf,
                    ..
                }
            )
        },
    )
    .await;
}

/// [`openssl_x509_req_v3_client_leaf_is_accepted`] with
/// `extendedKeyUsage = serverAuth` instead of clientAuth.
#[tokio::test]
async fn server_auth_only_leaf_is_refused_as_intent_invalid() {
    let dir = ToolDir::new();
    openssl_root(&dir);
    dir.write("server.ext", SERVER_AUTH_ONLY_EXT);
    let chain = openssl_root_client(
        &dir,
        "server-auth-client",
        "req -x509 root -> x509 -req leaf with extendedKeyUsage serverAuth only",
        &["-extfile", "server.ext"],
    );
    assert_refused(
        &chain,
        ReasonCode::ClientCertIntentInvalid,
        "the leaf's extendedKeyUsage without clientAuth",
        |e| {
            matches!(
                e,
                ValidationError::RequiredEkuNotFound {
                    position: CertPosition::Leaf,
                    ..
                }
            )
        },
    )
    .await;
}

/// [`openssl_three_tier_with_key_identifiers_is_accepted`] with one more
/// CA level under a CA whose basicConstraints says `pathlen:0`:
/// root -> CA (pathlen:0) -> CA -> leaf.
#[tokio::test]
async fn path_len_exceeded_is_refused_as_invalid() {
    let dir = ToolDir::new();
    openssl_root(&dir);
    dir.write("pathlen0.cnf", PATHLEN_ZERO_EXT);
    dir.write("int.cnf", INTERMEDIATE_EXTENSIONS);
    let section = "v3_intermediate_ca";
    dir.csr("top", "/O=interop/CN=openssl CA with pathlen 0");
    dir.x509_req(
        "top",
        "root",
        &["-extfile", "pathlen0.cnf", "-extensions", section],
    );
    dir.csr("sub", "/O=interop/CN=openssl CA below the pathlen 0 CA");
    dir.x509_req(
        "sub",
        "top",
        &["-extfile", "int.cnf", "-extensions", section],
    );
    dir.csr("client", "/O=interop/CN=openssl client below two CAs");
    dir.x509_req("client", "sub", &["-extfile", "client.ext"]);
    let chain = dir.chain(
        OPENSSL_X509,
        "root -> CA pathlen:0 -> CA -> client",
        "root",
        &["client", "sub", "top"],
        "client",
    );
    assert_refused(
        &chain,
        ReasonCode::ClientCertInvalid,
        "the pathLenConstraint 0 of the top CA",
        |e| {
            matches!(
                e,
                ValidationError::PathLenConstraintViolated {
                    position: CertPosition::Intermediate(1),
                    limit: 0,
                    ..
                }
            )
        },
    )
    .await;
}

/// [`openssl_x509_req_v3_client_leaf_is_accepted`], but the leaf is signed by
/// another key under the trusted root's exact name (`req -x509` with the same
/// `-subj`). A bad signature is `ClientCertInvalid` (ValidationError's
/// classification of `BadSignature`).
#[tokio::test]
async fn leaf_signed_by_the_wrong_issuer_key_is_refused_as_invalid() {
    let dir = ToolDir::new();
    openssl_root(&dir);
    dir.req_x509_root("impostor", "/O=interop/CN=openssl x509 root", &[]);
    dir.csr("forged-client", "/O=interop/CN=forged-client");
    dir.x509_req("forged-client", "impostor", &["-extfile", "client.ext"]);
    let chain = dir.chain(
        OPENSSL_X509,
        "req -x509 root; leaf signed by another key under the root's name",
        "root",
        &["forged-client"],
        "forged-client",
    );
    assert_refused(
        &chain,
        ReasonCode::ClientCertInvalid,
        "the leaf's signature",
        |e| {
            matches!(
                e,
                ValidationError::BadSignature {
                    position: CertPosition::Leaf
                }
            )
        },
    )
    .await;
}

/// [`openssl_x509_req_v3_client_leaf_is_accepted`] with an RSA-1024 leaf key.
///
/// rustls' aws-lc-rs provider cannot sign with an RSA key below 2048 bits,
/// so the client signs its CertificateVerify with a P-256 key: the server
/// judges the certificate chain before it looks at that signature.
#[tokio::test]
async fn rsa_1024_leaf_is_refused_as_type_unsupported() {
    let dir = ToolDir::new();
    openssl_root(&dir);
    dir.rsa_key("rsa1024-client", 1024);
    let mut chain = openssl_root_client(
        &dir,
        "rsa1024-client",
        "req -x509 root -> x509 -req -extfile client leaf with an RSA-1024 key",
        &["-extfile", "client.ext"],
    );
    dir.ec_key("handshake-signer");
    chain.key_pkcs8 = pkcs8_key(dir.path(), "handshake-signer.key");
    assert_refused(
        &chain,
        ReasonCode::ClientCertTypeUnsupported,
        "the leaf's RSA-1024 key",
        |e| {
            matches!(
                e,
                ValidationError::UnsupportedKey {
                    position: CertPosition::Leaf,
                    ..
                }
            )
        },
    )
    .await;
}

/// [`openssl_x509_req_v3_client_leaf_is_accepted`] signed with `-sha1`
/// (ecdsa-with-SHA1).
#[tokio::test]
async fn sha1_signed_leaf_is_refused_as_type_unsupported() {
    let dir = ToolDir::new();
    openssl_root(&dir);
    let chain = openssl_root_client(
        &dir,
        "sha1-client",
        "req -x509 root -> x509 -req -sha1 -extfile client leaf",
        &["-extfile", "client.ext", "-sha1"],
    );
    let text = dir.text("sha1-client");
    assert!(
        text.contains("ecdsa-with-SHA1"),
        "expected a SHA-1 signature:\n{text}"
    );
    assert_refused(
        &chain,
        ReasonCode::ClientCertTypeUnsupported,
        "the leaf's SHA-1 signature",
        |e| {
            matches!(
                e,
                ValidationError::UnsupportedSignatureAlgorithm {
                    position: CertPosition::Leaf,
                    ..
                }
            )
        },
    )
    .await;
}

/// The chains above are only meaningful if the tools wrote what their
/// documentation says: spot-check the properties the accepted cases are
/// about, with `openssl x509 -text` as the reader.
#[test]
fn tools_write_the_properties_the_cases_are_about() {
    // easy-rsa: a CA with a non-critical basicConstraints.
    let easyrsa = EasyRsa::new();
    easyrsa.run("pki", &[], &["init-pki"]);
    easyrsa.run(
        "pki",
        &[("EASYRSA_REQ_CN", "easy-rsa property root")],
        &["build-ca", "nopass"],
    );
    let ca = easyrsa
        .dir
        .openssl(&["x509", "-in", "pki/ca.crt", "-noout", "-text"]);
    assert!(
        ca.contains("X509v3 Basic Constraints: \n") && ca.contains("CA:TRUE"),
        "easy-rsa's CA was expected to have a non-critical basicConstraints:\n{ca}"
    );

    // pyca/cryptography: the intermediate has no key identifiers.
    let dir = ToolDir::new();
    python3(dir.path(), PYCA_SCRIPT, &[]);
    let int = dir.text("int");
    assert!(
        !int.contains("Key Identifier") && int.contains("X509v3 Basic Constraints: \n"),
        "pyca intermediate:\n{int}"
    );

    // rcgen: an intermediate from default parameters has no AKI.
    let mut root_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root_key = KeyPair::generate().expect("key");
    let mut int_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    int_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let int_key = KeyPair::generate().expect("key");
    let intermediate = int_params
        .signed_by(&int_key, &Issuer::from_params(&root_params, &root_key))
        .expect("intermediate");
    dir.write("rcgen-int.pem", &der_to_pem(intermediate.der()));
    let text = dir.openssl(&["x509", "-in", "rcgen-int.pem", "-noout", "-text"]);
    assert!(
        !text.contains("Authority Key Identifier"),
        "rcgen's default intermediate:\n{text}"
    );
}
