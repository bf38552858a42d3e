//! End to end: the real `curl` sends forged certificate headers to an
//! application behind a tokio-rustls listener (`MtlsClientVerifier` in
//! Required, Optional and Passthrough mode) that attaches each connection's
//! headers with `ConnectionHeaders::apply`; the application answers with the
//! headers it received. Whatever the mode, and whether or not a certificate
//! was presented, no forged value may reach the application: it sees exactly
//! what the connection established.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::header_echo::{EchoedConnection, HeaderEchoServer};
use common::structured_fields::{parse_sf_binary, parse_sf_binary_list, percent_decode};
use common::{
    curl, der_to_pem, mtls_server_config, openssl, self_signed_client, CurlRun, Leaf, LeafOptions,
    Pki,
};
use edge_mtls::ValidationMode;
use edge_mtls::{HeaderBuilder, HeaderProfile, XfccMode};

/// Forged copies of every header a profile of the listener emits: canonical,
/// upper-case and `_` spellings, one of them sent twice.
const FORGED: &[(&str, &str)] = &[
    ("CloudFront-Viewer-Cert-Present", "1"),
    ("CloudFront-Viewer-Cert-Present", "1"),
    ("CloudFront-Viewer-Cert-Serial-Number", "00:de:ad:be:ef"),
    ("CloudFront-Viewer-Cert-Subject", "CN=evil"),
    ("CloudFront-Viewer-Cert-Issuer", "CN=evil CA"),
    (
        "CloudFront-Viewer-Cert-Validity",
        "NotBefore=2000-01-01T00:00:00Z;NotAfter=2999-01-01T00:00:00Z",
    ),
    (
        "cloudfront_viewer_cert_sha256",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ),
    (
        "CLOUDFRONT-VIEWER-CERT-PEM",
        "-----BEGIN%20CERTIFICATE-----%0Aevil",
    ),
    ("X-Amzn-Mtls-Clientcert-Subject", "CN=evil"),
    ("X-Amzn-Mtls-Clientcert-Issuer", "CN=evil CA"),
    ("X-Amzn-Mtls-Clientcert-Serial-Number", "DEADBEEF"),
    ("x_amzn_mtls_clientcert_leaf", "evil"),
    ("X-Amzn-Mtls-Clientcert", "x"),
    ("X-Amzn-Tls-Version", "TLSv1"),
    ("X_Amzn_Tls_Cipher_Suite", "NULL-SHA"),
    ("client-cert", ":AAAA:"),
    ("Client-Cert-Chain", ":AAAA:, :AAAA:"),
    ("X_Forwarded_Client_Cert", "By=evil"),
    ("x-forwarded-client-cert", "By=evil;Hash=00"),
    ("X-Client-Cert-Present", "1"),
    ("X_Client_Cert_Subject", "CN=evil"),
    ("X-Edge-Connection-Id", "forged-connection-id"),
    ("X-Edge-Mtls-Too-Large", "forged"),
];

/// Client headers the application must still see: proof that client headers
/// do get through (an underscore name included), so the absence of the
/// forged ones means something.
const CONTROLS: &[(&str, &str)] = &[
    ("x-test-control", "visible"),
    ("x_edge_probe", "underscore-kept"),
    ("cloudfront-viewer-country", "US"),
];

/// The families the test itself considers certificate headers (independent
/// of the crate's list): lowercase, `_` read as `-`.
fn is_certificate_header(name: &str) -> bool {
    let folded = name.to_ascii_lowercase().replace('_', "-");
    [
        "cloudfront-viewer-cert-",
        "x-amzn-mtls-clientcert",
        "x-amzn-tls-",
        "client-cert",
        "x-forwarded-client-cert",
        "x-client-cert-",
        "x-edge-connection-id",
        "x-edge-mtls-too-large",
    ]
    .iter()
    .any(|p| folded.starts_with(p))
}

fn header_builder() -> Arc<HeaderBuilder> {
    let builder = HeaderBuilder::builder()
        .profile(HeaderProfile::CloudFront)
        .profile(HeaderProfile::AlbVerify)
        .profile(HeaderProfile::AlbPassthrough)
        .profile(HeaderProfile::Rfc9440)
        .profile(HeaderProfile::EnvoyXfcc(XfccMode::SanitizeSet))
        .profile(HeaderProfile::Custom {
            prefix: "X-Client-Cert-".into(),
        })
        .connection_id_header("X-Edge-Connection-Id")
        .tls_headers(true)
        .build()
        .expect("header builder");
    Arc::new(builder)
}

/// What one curl request through one connection produced.
struct Exchange {
    run: CurlRun,
    server: Result<EchoedConnection, String>,
}

impl Exchange {
    /// The request headers the application received, in order.
    #[track_caller]
    fn seen(&self) -> Vec<(String, String)> {
        assert_eq!(
            self.run.code,
            Some(0),
            "curl failed: {:?}; server: {:?}",
            self.run.stderr,
            self.server.as_ref().err()
        );
        serde_json::from_str(&self.run.stdout)
            .unwrap_or_else(|e| panic!("{e}: {:?}", self.run.stdout))
    }

    #[track_caller]
    fn connection(&self) -> &EchoedConnection {
        self.server.as_ref().expect("server served the connection")
    }
}

/// One server for one connection in `mode`, and one curl request with every
/// forged header, presenting `client` (leaf and chain) when given.
async fn exchange(dir: &Path, pki: &Pki, mode: ValidationMode, client: Option<&Leaf>) -> Exchange {
    let config = mtls_server_config(pki.root_store(), mode, |b| b);
    let verified = mode != ValidationMode::Passthrough;
    let server = HeaderEchoServer::start(config, header_builder(), 1, verified).await;
    let mut args: Vec<String> = vec!["--http1.1".into(), "-v".into()];
    if let Some(leaf) = client {
        std::fs::write(dir.join("client.pem"), leaf.chain_pem()).expect("write chain");
        std::fs::write(dir.join("client.key"), leaf.key_pem()).expect("write key");
        args.extend(["--cert", "client.pem", "--key", "client.key"].map(String::from));
    }
    for (name, value) in FORGED.iter().chain(CONTROLS) {
        args.push("-H".into());
        args.push(format!("{name}: {value}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = curl(dir, server.port(), &args).await;
    let mut served = server.finish().await;
    assert_eq!(served.len(), 1);
    Exchange {
        run,
        server: served.remove(0),
    }
}

/// The checks every exchange that reached the application must pass.
#[track_caller]
fn assert_no_forgery_reached_the_application(exchange: &Exchange) {
    let seen = exchange.seen();
    let connection = exchange.connection();
    // curl sends the underscore spellings as written (no folding on the way).
    assert!(
        exchange
            .run
            .stderr
            .contains("> X_Forwarded_Client_Cert: By=evil"),
        "curl did not send the underscore header as written:\n{}",
        exchange.run.stderr
    );
    for (name, value) in CONTROLS {
        let got: Vec<&str> = seen
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(got, [*value], "control header {name}");
    }
    // Certificate headers: exactly what the connection rendered, nothing
    // more, in no other spelling.
    let mut got: Vec<(String, String)> = seen
        .iter()
        .filter(|(n, _)| is_certificate_header(n))
        .cloned()
        .collect();
    let mut rendered: Vec<(String, String)> = connection
        .headers
        .entries()
        .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    got.sort();
    rendered.sort();
    assert_eq!(got, rendered, "certificate headers the application saw");
    for (name, value) in &got {
        assert!(!name.contains('_'), "{name} reached the application");
        for (forged_name, forged_value) in FORGED {
            // `Present: 1` is also the genuine value with a certificate.
            if *forged_value != "1" {
                assert_ne!(
                    value, forged_value,
                    "{name} carries the value forged as {forged_name}"
                );
            }
        }
    }
    // The id is the one this connection got, in CloudFront's shape.
    let id = header(&seen, "x-edge-connection-id");
    assert_eq!(id, connection.connection_id);
    assert_eq!(id.len(), 56);
    assert_eq!(header(&seen, "x-amzn-tls-version"), "TLSv1.3");
    assert_eq!(
        Some(header(&seen, "x-amzn-tls-cipher-suite").as_str()),
        connection.tls_cipher.as_deref()
    );
}

/// The single value of `name`.
#[track_caller]
fn header(seen: &[(String, String)], name: &str) -> String {
    let values: Vec<&String> = seen
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values.len(), 1, "{name}: {values:?}");
    values[0].clone()
}

/// What the OpenSSL CLI reads from `leaf`: serial magnitude (uppercase
/// hex), RFC 2253 subject and issuer, SHA-256 fingerprint (lowercase hex).
struct OpensslView {
    serial: String,
    subject: String,
    issuer: String,
    sha256: String,
}

fn openssl_view(dir: &Path, leaf: &[u8]) -> OpensslView {
    std::fs::write(dir.join("leaf.pem"), der_to_pem(leaf)).expect("write leaf");
    let out = openssl(
        dir,
        &[
            "x509",
            "-in",
            "leaf.pem",
            "-noout",
            "-serial",
            "-subject",
            "-issuer",
            "-nameopt",
            "RFC2253",
            "-fingerprint",
            "-sha256",
        ],
    );
    let field = |label: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} in {out}"))
            .to_string()
    };
    OpensslView {
        serial: field("serial="),
        subject: field("subject="),
        issuer: field("issuer="),
        sha256: field("sha256 Fingerprint=")
            .replace(':', "")
            .to_ascii_lowercase(),
    }
}

/// CloudFront's serial from the magnitude: a `00` sign byte when the first
/// bit is set, lowercase pairs joined by `:`.
fn cloudfront_serial(magnitude_hex: &str) -> String {
    let mut hex = magnitude_hex.to_ascii_lowercase();
    if hex.chars().next().is_some_and(|c| c >= '8') {
        hex.insert_str(0, "00");
    }
    let pairs: Vec<&str> = (0..hex.len()).step_by(2).map(|i| &hex[i..i + 2]).collect();
    pairs.join(":")
}

/// Passthrough certificates are not validated: the application gets them in
/// the passthrough dialects only, never a verified-looking `Present: 1`.
#[track_caller]
fn assert_passthrough_certificate(exchange: &Exchange, leaf: &Leaf) {
    let seen = exchange.seen();
    let get = |name: &str| header(&seen, name);
    assert_eq!(
        percent_decode(&get("x-amzn-mtls-clientcert")).expect("percent-encoded"),
        leaf.chain_pem().as_bytes(),
        "the whole presented chain, leaf first"
    );
    assert_eq!(
        parse_sf_binary(&get("client-cert")).expect("Client-Cert"),
        leaf.der()
    );
    for verified_only in [
        "cloudfront-viewer-cert-present",
        "cloudfront-viewer-cert-subject",
        "x-amzn-mtls-clientcert-subject",
        "x-client-cert-present",
        "x-forwarded-client-cert",
    ] {
        assert!(
            seen.iter().all(|(n, _)| n != verified_only),
            "{verified_only} sent for an unvalidated certificate"
        );
    }
}

/// With a certificate, the application sees the real one in every dialect.
#[track_caller]
fn assert_real_certificate(exchange: &Exchange, dir: &Path, leaf: &Leaf) {
    let seen = exchange.seen();
    let view = openssl_view(dir, leaf.der());
    let get = |name: &str| header(&seen, name);
    assert_eq!(get("cloudfront-viewer-cert-present"), "1");
    assert_eq!(get("x-client-cert-present"), "1");
    let cloudfront = cloudfront_serial(&view.serial);
    assert_eq!(get("cloudfront-viewer-cert-serial-number"), cloudfront);
    assert_eq!(get("x-client-cert-serial-number"), cloudfront);
    assert_eq!(get("x-amzn-mtls-clientcert-serial-number"), view.serial);
    for name in [
        "cloudfront-viewer-cert-subject",
        "x-amzn-mtls-clientcert-subject",
        "x-client-cert-subject",
    ] {
        assert_eq!(get(name), view.subject, "{name}");
    }
    for name in [
        "cloudfront-viewer-cert-issuer",
        "x-amzn-mtls-clientcert-issuer",
        "x-client-cert-issuer",
    ] {
        assert_eq!(get(name), view.issuer, "{name}");
    }
    assert_eq!(get("cloudfront-viewer-cert-sha256"), view.sha256);
    assert_eq!(get("x-client-cert-sha256"), view.sha256);
    let leaf_pem = der_to_pem(leaf.der());
    for name in [
        "cloudfront-viewer-cert-pem",
        "x-amzn-mtls-clientcert-leaf",
        "x-client-cert-pem",
    ] {
        assert_eq!(
            percent_decode(&get(name)).expect("percent-encoded"),
            leaf_pem.as_bytes(),
            "{name}"
        );
    }
    assert_eq!(
        percent_decode(&get("x-amzn-mtls-clientcert")).expect("percent-encoded"),
        leaf.chain_pem().as_bytes(),
        "the whole presented chain, leaf first"
    );
    assert_eq!(
        parse_sf_binary(&get("client-cert")).expect("Client-Cert"),
        leaf.der()
    );
    let intermediates = leaf.intermediates();
    if intermediates.is_empty() {
        assert!(seen.iter().all(|(n, _)| n != "client-cert-chain"));
    } else {
        assert_eq!(
            parse_sf_binary_list(&get("client-cert-chain")).expect("Client-Cert-Chain"),
            intermediates
        );
    }
    let xfcc = get("x-forwarded-client-cert");
    assert!(
        xfcc.starts_with(&format!("Hash={};Cert=\"", view.sha256)),
        "{xfcc}"
    );
    assert!(
        xfcc.contains(&format!(";Subject=\"{}\"", view.subject)),
        "{xfcc}"
    );
}

/// Without a certificate: `Present: 0`, and no other certificate header.
#[track_caller]
fn assert_no_certificate(exchange: &Exchange) {
    let seen = exchange.seen();
    let mut names: Vec<&str> = seen
        .iter()
        .filter(|(n, _)| is_certificate_header(n))
        .map(|(n, _)| n.as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "cloudfront-viewer-cert-present",
            "x-amzn-tls-cipher-suite",
            "x-amzn-tls-version",
            "x-client-cert-present",
            "x-edge-connection-id",
        ]
    );
    assert_eq!(header(&seen, "cloudfront-viewer-cert-present"), "0");
    assert_eq!(header(&seen, "x-client-cert-present"), "0");
}

fn client_leaf(pki: &Pki) -> Leaf {
    pki.client(
        "curl client",
        &LeafOptions {
            serial: Some(vec![0xb1, 0x43, 0xed, 0x93, 0xd2, 0xd8, 0xf3, 0x9d]),
            dns_names: vec!["client.example.com".into()],
            ..LeafOptions::default()
        },
    )
}

#[tokio::test]
async fn required_mode_with_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(1);
    let leaf = client_leaf(&pki);
    let exchange = exchange(dir.path(), &pki, ValidationMode::Required, Some(&leaf)).await;
    assert_no_forgery_reached_the_application(&exchange);
    assert_real_certificate(&exchange, dir.path(), &leaf);
    assert_eq!(
        exchange.connection().peer_certificates.as_ref(),
        Some(&leaf.chain)
    );
}

#[tokio::test]
async fn required_mode_without_certificate_never_reaches_the_application() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(1);
    let exchange = exchange(dir.path(), &pki, ValidationMode::Required, None).await;
    assert_ne!(
        exchange.run.code,
        Some(0),
        "curl must fail: {:?}",
        exchange.run
    );
    assert!(exchange.run.stdout.is_empty(), "{:?}", exchange.run.stdout);
    assert!(exchange.server.is_err(), "the handshake must fail");
}

#[tokio::test]
async fn optional_mode_with_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(1);
    let leaf = client_leaf(&pki);
    let exchange = exchange(dir.path(), &pki, ValidationMode::Optional, Some(&leaf)).await;
    assert_no_forgery_reached_the_application(&exchange);
    assert_real_certificate(&exchange, dir.path(), &leaf);
}

#[tokio::test]
async fn optional_mode_without_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(1);
    let exchange = exchange(dir.path(), &pki, ValidationMode::Optional, None).await;
    assert_no_forgery_reached_the_application(&exchange);
    assert_no_certificate(&exchange);
}

#[tokio::test]
async fn passthrough_mode_with_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(1);
    let leaf = client_leaf(&pki);
    let exchange = exchange(dir.path(), &pki, ValidationMode::Passthrough, Some(&leaf)).await;
    assert_no_forgery_reached_the_application(&exchange);
    assert_passthrough_certificate(&exchange, &leaf);
}

#[tokio::test]
async fn passthrough_mode_with_untrusted_certificate() {
    // Passthrough does not consult the trust store: a self-signed leaf gets
    // through and the application receives it (and only it) to judge.
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(1);
    let leaf = self_signed_client("self-signed curl client");
    let exchange = exchange(dir.path(), &pki, ValidationMode::Passthrough, Some(&leaf)).await;
    assert_no_forgery_reached_the_application(&exchange);
    assert_passthrough_certificate(&exchange, &leaf);
}

#[tokio::test]
async fn passthrough_mode_without_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(1);
    let exchange = exchange(dir.path(), &pki, ValidationMode::Passthrough, None).await;
    assert_no_forgery_reached_the_application(&exchange);
    assert_no_certificate(&exchange);
}
