//! An OpenSSL CA with an `index.txt` database (`openssl ca`), able to issue
//! and revoke certificates, and the real `openssl ocsp` responder serving
//! that database on a local port.
//!
//! Keys are P-256 (fast to generate) and live only in the CA's temporary
//! directory, which is deleted with the [`OpensslCa`].

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::openssl;

/// A root CA run by `openssl ca`.
pub struct OpensslCa {
    dir: tempfile::TempDir,
}

/// An extension section for a client certificate whose authorityInfoAccess
/// names `ocsp_url` (when given).
pub fn client_extensions(ocsp_url: Option<&str>) -> String {
    let mut ext = String::from(
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = clientAuth\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n",
    );
    if let Some(url) = ocsp_url {
        ext.push_str(&format!("authorityInfoAccess = OCSP;URI:{url}\n"));
    }
    ext
}

/// An extension section for a delegated OCSP responder certificate, with or
/// without extendedKeyUsage id-kp-OCSPSigning.
pub fn responder_extensions(ocsp_signing: bool) -> String {
    let mut ext = String::from(
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n",
    );
    ext.push_str(if ocsp_signing {
        "extendedKeyUsage = OCSPSigning\n"
    } else {
        "extendedKeyUsage = clientAuth\n"
    });
    ext
}

const CA_CONFIG: &str = "\
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = .
database = ./index.txt
new_certs_dir = ./newcerts
certificate = ./ca.pem
private_key = ./ca.key
serial = ./serial
default_md = sha256
default_days = 365
policy = policy_any
unique_subject = no
copy_extensions = none

[ policy_any ]
commonName = supplied
organizationName = optional
";

const CA_EXTENSIONS: &str = "\
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
";

impl OpensslCa {
    /// A self-signed root named `common_name` with an empty database.
    pub fn new(common_name: &str) -> OpensslCa {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("ca.cnf"), CA_CONFIG).expect("write ca.cnf");
        std::fs::write(d.join("ca_ext.cnf"), CA_EXTENSIONS).expect("write ca_ext.cnf");
        std::fs::write(d.join("index.txt"), "").expect("write index.txt");
        std::fs::write(d.join("serial"), "1000\n").expect("write serial");
        std::fs::create_dir(d.join("newcerts")).expect("mkdir newcerts");
        generate_key(d, "ca.key");
        openssl(
            d,
            &[
                "req",
                "-new",
                "-x509",
                "-days",
                "365",
                "-key",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                &format!("/O=edge-mtls tests/CN={common_name}"),
                "-config",
                "ca_ext.cnf",
                "-extensions",
                "v3_ca",
            ],
        );
        OpensslCa { dir }
    }

    /// The CA's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A file of the CA's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> Vec<u8> {
        self.cert_der("ca")
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> Vec<u8> {
        std::fs::read(self.path("ca.pem")).expect("read ca.pem")
    }

    /// The DER of the certificate issued as `name`.
    pub fn cert_der(&self, name: &str) -> Vec<u8> {
        super::pem_cert(&std::fs::read(self.path(&format!("{name}.pem"))).expect("read cert"))
            .to_vec()
    }

    /// Issues `name.pem` (key `name.key`) for `/CN=common_name` with the
    /// extension section `extensions` through `openssl ca`, recording it in
    /// `index.txt`; returns its DER.
    pub fn issue(&self, name: &str, common_name: &str, extensions: &str) -> Vec<u8> {
        let d = self.dir();
        generate_key(d, &format!("{name}.key"));
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={common_name}"),
            ],
        );
        std::fs::write(
            d.join(format!("{name}.ext")),
            format!("[ ext ]\n{extensions}"),
        )
        .expect("write extfile");
        openssl(
            d,
            &[
                "ca",
                "-batch",
                "-notext",
                "-config",
                "ca.cnf",
                "-in",
                &format!("{name}.csr"),
                "-out",
                &format!("{name}.pem"),
                "-extfile",
                &format!("{name}.ext"),
                "-extensions",
                "ext",
            ],
        );
        self.cert_der(name)
    }

    /// Issues an intermediate CA `/CN=common_name` (recorded in this CA's
    /// database, authorityInfoAccess naming `ocsp_url` when given) and
    /// returns it as a CA of its own, with an empty database.
    pub fn issue_intermediate(
        &self,
        name: &str,
        common_name: &str,
        ocsp_url: Option<&str>,
    ) -> OpensslCa {
        let mut ext = String::from(
            "basicConstraints = critical, CA:TRUE, pathlen:0\n\
             keyUsage = critical, keyCertSign, cRLSign\n\
             subjectKeyIdentifier = hash\n\
             authorityKeyIdentifier = keyid\n",
        );
        if let Some(url) = ocsp_url {
            ext.push_str(&format!("authorityInfoAccess = OCSP;URI:{url}\n"));
        }
        self.issue(name, common_name, &ext);
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::copy(self.path(&format!("{name}.pem")), d.join("ca.pem")).expect("copy cert");
        std::fs::copy(self.path(&format!("{name}.key")), d.join("ca.key")).expect("copy key");
        std::fs::write(d.join("ca.cnf"), CA_CONFIG).expect("write ca.cnf");
        std::fs::write(d.join("index.txt"), "").expect("write index.txt");
        std::fs::write(d.join("serial"), "2000\n").expect("write serial");
        std::fs::create_dir(d.join("newcerts")).expect("mkdir newcerts");
        OpensslCa { dir }
    }

    /// Signs `name.pem` with the CA key through `openssl x509 -req` with
    /// serial `serial`, bypassing `index.txt`: a certificate the responder
    /// has never heard of.
    pub fn issue_outside_database(&self, name: &str, common_name: &str, serial: &str) -> Vec<u8> {
        let d = self.dir();
        generate_key(d, &format!("{name}.key"));
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={common_name}"),
            ],
        );
        std::fs::write(
            d.join(format!("{name}.ext")),
            format!("[ ext ]\n{}", client_extensions(None)),
        )
        .expect("write extfile");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                serial,
                "-days",
                "30",
                "-sha256",
                "-extfile",
                &format!("{name}.ext"),
                "-extensions",
                "ext",
                "-out",
                &format!("{name}.pem"),
            ],
        );
        self.cert_der(name)
    }

    /// Marks `name.pem` revoked in `index.txt` with a CRLReason
    /// (`keyCompromise`, `superseded`, ...).
    pub fn revoke(&self, name: &str, reason: &str) {
        openssl(
            self.dir(),
            &[
                "ca",
                "-config",
                "ca.cnf",
                "-revoke",
                &format!("{name}.pem"),
                "-crl_reason",
                reason,
            ],
        );
    }

    /// Starts `openssl ocsp` on `port`, answering from `index.txt`, signing
    /// with `signer` (`"ca"` for the CA itself, or the name of an issued
    /// certificate: a delegated responder). Answers carry a nextUpdate an
    /// hour ahead.
    pub fn start_responder(&self, port: u16, signer: &str) -> OcspResponder {
        let log_path = self.path(&format!("ocsp-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("create the responder log");
        let child = Command::new("openssl")
            .current_dir(self.dir())
            .args([
                "ocsp",
                "-index",
                "index.txt",
                "-port",
                &port.to_string(),
                "-rsigner",
                &format!("{signer}.pem"),
                "-rkey",
                &format!("{signer}.key"),
                "-CA",
                "ca.pem",
                "-rmd",
                "sha256",
                "-nmin",
                "60",
                "-ignore_err",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start openssl ocsp");
        let responder = OcspResponder {
            child,
            port,
            log: log_path,
        };
        responder.wait_until_listening();
        responder
    }
}

fn generate_key(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            name,
        ],
    );
}

/// A running `openssl ocsp` responder; killed when dropped.
pub struct OcspResponder {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl OcspResponder {
    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits for the responder's "waiting for OCSP client connections"
    /// line, printed once it listens. (A probe connection would not do: the
    /// responder serves one connection at a time and stalls on an empty one.)
    fn wait_until_listening(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains("waiting for OCSP client connections") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "openssl ocsp did not start listening on port {}: {}",
            self.port,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now (bind 127.0.0.1:0, read, release).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}
