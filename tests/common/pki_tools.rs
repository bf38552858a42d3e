//! Client-certificate chains made at test time by the PKI tools people use —
//! the OpenSSL CLI (`req -x509`, `x509 -req`, `ca`), easy-rsa, keytool,
//! pyca/cryptography and rcgen — with their default or documented settings,
//! and one real TLS handshake per chain that reports what the server decided
//! and why.
//!
//! Keys live only in temporary directories (deleted with their
//! [`ToolDir`]) and in the test process.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use edge_mtls::internal::capture_stage1;
use edge_mtls::{Rejection, TrustStore, TrustStoreHandle, ValidationError, ValidationMode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{
    client_config, connect, mtls_server_config, openssl, serve_one, wire_alert, ClientIdentity,
    Outcome, Reply, Served, IO_TIMEOUT,
};

// ---------------------------------------------------------------------------
// A chain as a tool wrote it
// ---------------------------------------------------------------------------

/// A client chain made by one tool: the trust anchor, the chain the client
/// sends (leaf first) and the key the client signs the handshake with.
pub struct ToolChain {
    /// The tool, e.g. `easy-rsa 3 (build-client-full)`.
    pub tool: &'static str,
    /// Which chain of that tool, e.g. `root -> sub-CA -> client`.
    pub chain_name: String,
    /// The root certificate(s), PEM: the whole trust store.
    pub root_pem: Vec<u8>,
    /// What the client sends: the leaf, then its intermediates bottom-up.
    pub chain: Vec<CertificateDer<'static>>,
    /// The client's PKCS#8 private key.
    pub key_pkcs8: Vec<u8>,
}

impl ToolChain {
    /// `tool` / `chain_name`, for failure messages.
    pub fn label(&self) -> String {
        format!("{}: {}", self.tool, self.chain_name)
    }

    /// The identity the rustls client presents.
    pub fn identity(&self) -> ClientIdentity {
        ClientIdentity {
            chain: self.chain.clone(),
            key_pkcs8: self.key_pkcs8.clone(),
        }
    }

    /// Runs `openssl verify` on the chain as an independent oracle: `Ok`
    /// with OpenSSL's output when it accepts the chain for TLS client
    /// authentication, `Err` with its output when it refuses it.
    /// `extra` adds options such as `-auth_level 2`.
    pub fn openssl_verify(&self, extra: &[&str]) -> Result<String, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("root.pem"), &self.root_pem).expect("write root");
        std::fs::write(d.join("leaf.pem"), super::der_to_pem(&self.chain[0])).expect("leaf");
        let untrusted: String = self.chain[1..]
            .iter()
            .map(|c| super::der_to_pem(c))
            .collect();
        std::fs::write(d.join("untrusted.pem"), untrusted).expect("write intermediates");
        let mut args = vec!["verify", "-CAfile", "root.pem", "-purpose", "sslclient"];
        if self.chain.len() > 1 {
            args.extend(["-untrusted", "untrusted.pem"]);
        }
        args.extend_from_slice(extra);
        args.push("leaf.pem");
        let output = Command::new("openssl")
            .args(&args)
            .current_dir(d)
            .output()
            .expect("run the openssl binary");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if output.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    /// Panics unless `openssl verify` accepts the chain: a chain OpenSSL
    /// refuses would be a broken fixture, not an interoperability case.
    #[track_caller]
    pub fn assert_openssl_accepts(&self) {
        if let Err(text) = self.openssl_verify(&[]) {
            panic!(
                "{}: `openssl verify -purpose sslclient` refuses the chain, so the fixture is \
                 wrong:\n{text}",
                self.label()
            );
        }
    }

    /// Panics unless `openssl verify -auth_level 2` refuses the chain too
    /// (security level 2: RSA keys of 2048 bits or more, no SHA-1).
    #[track_caller]
    pub fn assert_openssl_refuses(&self) {
        if let Ok(text) = self.openssl_verify(&["-auth_level", "2"]) {
            panic!(
                "{}: `openssl verify -purpose sslclient -auth_level 2` accepts the chain, so the \
                 defect is not one:\n{text}",
                self.label()
            );
        }
    }
}

/// Reads a private key written by any tool (SEC1, PKCS#1, PKCS#8, with or
/// without OpenSSL's "Bag Attributes" preamble) as PKCS#8, converting it with
/// `openssl pkey` (which writes PKCS#8).
pub fn pkcs8_key(dir: &Path, key_file: &str) -> Vec<u8> {
    let out = format!("{key_file}.pkcs8.pem");
    openssl(dir, &["pkey", "-in", key_file, "-out", &out]);
    let pem = std::fs::read(dir.join(&out)).expect("read the PKCS#8 key");
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(PrivateKeyDer::Pkcs8(key)) => key.secret_pkcs8_der().to_vec(),
        other => panic!("{key_file}: `openssl pkey` did not write PKCS#8: {other:?}"),
    }
}

/// Every certificate of a PEM file, in file order.
pub fn pem_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    let pem = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    assert!(!certs.is_empty(), "{} holds no certificate", path.display());
    certs
}

// ---------------------------------------------------------------------------
// A working directory for a tool
// ---------------------------------------------------------------------------

/// A temporary working directory where a tool writes its files, with
/// shorthands for the OpenSSL CLI steps the usual recipes run.
pub struct ToolDir {
    dir: tempfile::TempDir,
}

impl Default for ToolDir {
    fn default() -> Self {
        Self::new()
    }
}

impl ToolDir {
    pub fn new() -> ToolDir {
        ToolDir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name`.
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
    }

    /// `openssl <args>` in this directory.
    pub fn openssl(&self, args: &[&str]) -> String {
        openssl(self.path(), args)
    }

    /// `openssl genpkey` P-256 key `name.key` (PKCS#8).
    pub fn ec_key(&self, name: &str) {
        super::openssl_pkcs8_ec_key(self.path(), &format!("{name}.key"));
    }

    /// `openssl genpkey` RSA key `name.key` of `bits` bits.
    pub fn rsa_key(&self, name: &str, bits: u32) {
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &format!("rsa_keygen_bits:{bits}"),
            "-out",
            &format!("{name}.key"),
        ]);
    }

    /// A self-signed root `name.pem` over `name.key` (made here when absent)
    /// from `openssl req -x509 -new`, with the system openssl.cnf's
    /// `x509_extensions` unless `extra` says otherwise.
    pub fn req_x509_root(&self, name: &str, subject: &str, extra: &[&str]) {
        if !self.join(&format!("{name}.key")).exists() {
            self.ec_key(name);
        }
        let (key, out) = (format!("{name}.key"), format!("{name}.pem"));
        let mut args = vec![
            "req", "-x509", "-new", "-key", &key, "-subj", subject, "-days", "30", "-out", &out,
        ];
        args.extend_from_slice(extra);
        self.openssl(&args);
    }

    /// A CSR `name.csr` for `subject` over `name.key` (a P-256 key made here
    /// when absent).
    pub fn csr(&self, name: &str, subject: &str) {
        if !self.join(&format!("{name}.key")).exists() {
            self.ec_key(name);
        }
        self.openssl(&[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            subject,
            "-out",
            &format!("{name}.csr"),
        ]);
    }

    /// `openssl x509 -req -in name.csr -CA ca.pem -CAkey ca.key
    /// -CAcreateserial -days 30 -out name.pem <extra>`: the signing step of
    /// the usual OpenSSL recipes (`extra` adds `-extfile`, `-sha1`, ...).
    pub fn x509_req(&self, name: &str, ca: &str, extra: &[&str]) {
        let (csr, out) = (format!("{name}.csr"), format!("{name}.pem"));
        let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            &out,
        ];
        args.extend_from_slice(extra);
        self.openssl(&args);
    }

    /// `openssl x509 -text` of `name.pem`, for failure messages.
    pub fn text(&self, name: &str) -> String {
        self.openssl(&["x509", "-in", &format!("{name}.pem"), "-noout", "-text"])
    }

    /// The chain `certs` (file stems, leaf first, each `stem.pem`) under the
    /// root `root` (`root.pem`), with the key `key.key`.
    pub fn chain(
        &self,
        tool: &'static str,
        chain_name: &str,
        root: &str,
        certs: &[&str],
        key: &str,
    ) -> ToolChain {
        self.chain_from_files(
            tool,
            chain_name,
            &format!("{root}.pem"),
            &certs.iter().map(|c| format!("{c}.pem")).collect::<Vec<_>>(),
            &format!("{key}.key"),
        )
    }

    /// Like [`ToolDir::chain`] with file names relative to this directory;
    /// each certificate file contributes its first certificate.
    pub fn chain_from_files(
        &self,
        tool: &'static str,
        chain_name: &str,
        root_file: &str,
        cert_files: &[impl AsRef<str>],
        key_file: &str,
    ) -> ToolChain {
        let root_pem = std::fs::read(self.join(root_file))
            .unwrap_or_else(|e| panic!("{tool}: read {root_file}: {e}"));
        let chain = cert_files
            .iter()
            .map(|f| pem_certs(&self.join(f.as_ref())).remove(0))
            .collect();
        ToolChain {
            tool,
            chain_name: chain_name.to_string(),
            root_pem,
            chain,
            key_pkcs8: pkcs8_key(self.path(), key_file),
        }
    }
}

/// Recursively copies the directory `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// `when` as `openssl ca -startdate/-enddate` takes it: `YYMMDDHHMMSSZ`
/// (UTCTime, what RFC 5280 wants for dates before 2050).
pub fn openssl_utc_time(when: SystemTime) -> String {
    let t = der::DateTime::from_system_time(when).expect("a representable date");
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        t.year() % 100,
        t.month(),
        t.day(),
        t.hour(),
        t.minutes(),
        t.seconds()
    )
}

/// The directory holding the `easyrsa` script: `/usr/share/easy-rsa` (the
/// Debian/Ubuntu package), else wherever `easyrsa` on `PATH` resolves to.
/// Panics when easy-rsa is not installed: the test must not pass without it.
pub fn easyrsa_home() -> PathBuf {
    let debian = Path::new("/usr/share/easy-rsa");
    if debian.join("easyrsa").is_file() {
        return debian.to_path_buf();
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("easyrsa"))
            .find(|p| p.is_file())
    });
    if let Some(script) = on_path {
        let real = std::fs::canonicalize(&script).unwrap_or(script);
        return real.parent().expect("easyrsa's directory").to_path_buf();
    }
    panic!(
        "easy-rsa is not installed (no /usr/share/easy-rsa/easyrsa and no `easyrsa` on PATH): \
         install it (`apt-get install easy-rsa`; CI installs it) — this interoperability test \
         must not pass without it"
    )
}

/// An easy-rsa 3 installation copied into a temporary directory (easy-rsa
/// writes next to itself), run in batch mode with EC P-256 keys.
pub struct EasyRsa {
    pub dir: ToolDir,
    script: PathBuf,
}

impl Default for EasyRsa {
    fn default() -> Self {
        Self::new()
    }
}

impl EasyRsa {
    pub fn new() -> EasyRsa {
        let home = easyrsa_home();
        let dir = ToolDir::new();
        let copy = dir.join("easy-rsa");
        copy_dir(&home, &copy);
        EasyRsa {
            script: copy.join("easyrsa"),
            dir,
        }
    }

    /// The PKI directory `name` (what `EASYRSA_PKI` points to).
    pub fn pki(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `easyrsa <args>` on the PKI `pki`, with `EASYRSA_BATCH=1`,
    /// `EASYRSA_ALGO=ec` and the extra environment `env`; panics with its
    /// output when it fails.
    pub fn run(&self, pki: &str, env: &[(&str, &str)], args: &[&str]) -> String {
        let output = Command::new("sh")
            .arg(&self.script)
            .args(args)
            .current_dir(self.dir.path())
            .env("EASYRSA_PKI", self.pki(pki))
            .env("EASYRSA_BATCH", "1")
            .env("EASYRSA_ALGO", "ec")
            .env("EASYRSA_CURVE", "prime256v1")
            .envs(env.iter().copied())
            .output()
            .expect("run easyrsa");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "easyrsa {} (EASYRSA_PKI={pki}) failed ({}):\n{text}",
            args.join(" "),
            output.status
        );
        text
    }
}

/// Runs `keytool <args>` in `dir`; panics with its output when it fails,
/// and with an installation hint when there is no `keytool`.
pub fn keytool(dir: &Path, args: &[&str]) {
    let output = match Command::new("keytool").args(args).current_dir(dir).output() {
        Ok(output) => output,
        Err(e) => panic!(
            "cannot run `keytool` ({e}): install a Java runtime (e.g. `apt-get install \
             default-jre-headless`)"
        ),
    };
    assert!(
        output.status.success(),
        "keytool {} failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------
// The handshake
// ---------------------------------------------------------------------------

/// What one real TLS handshake with a tool's chain ended with, on both sides.
#[derive(Debug)]
pub struct HandshakeResult {
    /// What the rustls client saw.
    pub client: Outcome,
    /// What the server saw: the served connection, or its handshake error.
    pub server: Result<Served, String>,
    /// Why stage 1 refused the certificate, as the server's verifier
    /// reported it (the connection log's reason code comes from here).
    pub rejection: Option<Rejection>,
}

/// The trust store holding `chain`'s root; panics naming the tool when the
/// store refuses the root (the chain could never be accepted then).
pub fn tool_trust_store(chain: &ToolChain) -> TrustStoreHandle {
    match TrustStore::from_pem(&chain.root_pem) {
        Ok(store) => TrustStoreHandle::new(store),
        Err(e) => panic!(
            "{}: the trust store refuses the tool's root certificate: {e}",
            chain.label()
        ),
    }
}

/// One real handshake over 127.0.0.1: a tokio-rustls server whose
/// `MtlsClientVerifier` runs the default validation profile in `Required`
/// mode with `chain`'s root as the whole trust store, and a rustls client
/// presenting `chain`. The server side runs under `capture_stage1`, exactly
/// as the crate's acceptor does to fill the connection log.
pub async fn present(chain: &ToolChain) -> HandshakeResult {
    let config = mtls_server_config(tool_trust_store(chain), ValidationMode::Required, |b| b);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let acceptor = TlsAcceptor::from(config);
    let server = tokio::spawn(async move {
        let (tcp, _) = tokio::time::timeout(IO_TIMEOUT, listener.accept())
            .await
            .expect("the client connected in time")
            .expect("accept");
        capture_stage1(serve_one(&acceptor, tcp, Reply::Line)).await
    });
    let client = connect(addr, client_config(Some(&chain.identity()))).await;
    let (served, report) = tokio::time::timeout(IO_TIMEOUT * 2, server)
        .await
        .expect("the server finished in time")
        .expect("server task");
    HandshakeResult {
        client,
        server: served,
        rejection: report.rejection,
    }
}

/// Presents `chain` and panics unless the server accepted it and the client
/// got the server's answer; the message names the tool, the chain and the
/// server's rejection.
pub async fn assert_accepted(chain: &ToolChain) {
    chain.assert_openssl_accepts();
    let result = present(chain).await;
    if let Some(rejection) = &result.rejection {
        panic!(
            "{}: REFUSED by the default validation profile — reason {} — {rejection} \
             (client saw {:?}); `openssl verify -purpose sslclient` accepts this chain",
            chain.label(),
            rejection.reason_code(),
            result.client
        );
    }
    match &result.client {
        Outcome::Accepted { reply, .. } if reply == "ok\n" => {}
        other => panic!(
            "{}: the client did not complete the exchange: {other:?} (server: {:?})",
            chain.label(),
            result.server.as_ref().map(|_| "served")
        ),
    }
    let served = result
        .server
        .unwrap_or_else(|e| panic!("{}: the server failed: {e}", chain.label()));
    assert_eq!(
        served.peer_certificates.as_deref(),
        Some(&chain.chain[..]),
        "{}: the server saw another chain than the one presented",
        chain.label()
    );
}

/// Presents `chain` and panics unless the server refused it in stage 1
/// with `expected` as the reason code, for the check `check` describes
/// (`is_expected` picks the `ValidationError` variant), and the client saw
/// the handshake fail with the alert that error calls for. `openssl verify`
/// (security level 2) must refuse the chain too.
pub async fn assert_refused(
    chain: &ToolChain,
    expected: edge_mtls::ReasonCode,
    check: &str,
    is_expected: impl Fn(&ValidationError) -> bool,
) {
    chain.assert_openssl_refuses();
    let result = present(chain).await;
    let label = chain.label();
    let Some(rejection) = &result.rejection else {
        panic!(
            "{label}: ACCEPTED, expected a refusal for {check} ({expected}); client saw {:?}",
            result.client
        );
    };
    assert_eq!(
        rejection.reason_code(),
        expected,
        "{label}: refused for another reason than {check}: {rejection}"
    );
    let Rejection::Validation(error) = rejection else {
        panic!("{label}: refused by something else than chain validation: {rejection}");
    };
    assert!(
        is_expected(error),
        "{label}: refused with the right reason code but not for {check}: {error:?}"
    );
    assert!(
        result.server.is_err(),
        "{label}: the server served the connection"
    );
    match &result.client {
        Outcome::Alert(alert) => assert_eq!(
            *alert,
            wire_alert(error.tls_alert()),
            "{label}: the client got another alert than the one for {error}"
        ),
        other => panic!("{label}: the client should have seen the handshake fail: {other:?}"),
    }
}
