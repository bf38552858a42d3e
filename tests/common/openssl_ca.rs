//! An OpenSSL CA with an `index.txt` database (`openssl ca`), able to issue
//! and revoke certificates, and an OCSP responder serving that database on
//! 127.0.0.1: a small HTTP/1.1 front end handing each request to the real
//! `openssl ocsp`.
//!
//! Keys are P-256 (fast to generate) and live only in the CA's temporary
//! directory, which is deleted with the [`OpensslCa`].

use std::convert::Infallible;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

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
        super::openssl_pkcs8_ec_key(d, "ca.key");
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
        super::openssl_pkcs8_ec_key(d, &format!("{name}.key"));
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
        super::openssl_pkcs8_ec_key(d, &format!("{name}.key"));
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

    /// Starts an OCSP responder on `127.0.0.1:port` (`0`: any free port,
    /// see [`OcspResponder::url`]) answering from `index.txt`, signing with
    /// `signer` (`"ca"` for the CA itself, or the name of an issued
    /// certificate: a delegated responder). Answers carry a nextUpdate an
    /// hour ahead.
    ///
    /// `openssl ocsp -port` listens on every address, so the HTTP side is a
    /// small front end bound to 127.0.0.1 only; every request it receives is
    /// answered by the real `openssl ocsp`, run once per request on the
    /// request's DER (`-reqin`) with the CA's database. The listener is
    /// bound before this returns, so clients may connect at once.
    pub fn start_responder(&self, port: u16, signer: &str) -> OcspResponder {
        for file in [format!("{signer}.pem"), format!("{signer}.key")] {
            assert!(
                self.path(&file).is_file(),
                "no responder signer {file} in the CA directory"
            );
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port} for the OCSP responder: {e}"));
        let port = listener.local_addr().expect("responder address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking responder listener");
        let log = self.path(&format!("ocsp-{port}.log"));
        let state = Arc::new(ResponderState {
            dir: self.dir().to_path_buf(),
            signer: signer.to_string(),
            log: Mutex::new(std::fs::File::create(&log).expect("create the responder log")),
            requests: AtomicUsize::new(0),
        });
        // A runtime of its own, on a thread of its own: stopping the
        // responder then closes the listener and every connection before
        // `drop` returns, whichever runtime (if any) the test runs on.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("build the responder runtime");
        let (stop, stopped) = oneshot::channel();
        let serving = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ocsp-responder-{port}"))
            .spawn(move || runtime.block_on(serve(listener, serving, stopped)))
            .expect("spawn the responder thread");
        OcspResponder {
            port,
            log,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

/// A running OCSP responder (see [`OpensslCa::start_responder`]); stopped
/// when dropped.
pub struct OcspResponder {
    port: u16,
    log: PathBuf,
    state: Arc<ResponderState>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OcspResponder {
    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The OCSP requests (POST or GET) it has received so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Its log: one line per request, and `openssl ocsp`'s errors.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OcspResponder {
    /// Stops accepting, closes the listener and every connection, and waits
    /// for `openssl ocsp` runs under way (each takes milliseconds).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the front end's connections share.
struct ResponderState {
    /// The CA directory: `index.txt`, `ca.pem` and the signer's files.
    dir: PathBuf,
    /// The signer's file stem (`<signer>.pem`, `<signer>.key`).
    signer: String,
    log: Mutex<std::fs::File>,
    requests: AtomicUsize,
}

/// The largest request body accepted.
const MAX_REQUEST: usize = 64 * 1024;

/// OCSPResponse { responseStatus malformedRequest(1) }: what `openssl ocsp`
/// answers to a request it cannot decode.
const MALFORMED_REQUEST: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x01];

type HttpResponse = Response<Full<Bytes>>;

/// Accepts connections until `stop` fires (or its sender is gone), serving
/// each on a task of its own; dropping the runtime afterwards closes them.
async fn serve(listener: TcpListener, state: Arc<ResponderState>, mut stop: oneshot::Receiver<()>) {
    let listener =
        tokio::net::TcpListener::from_std(listener).expect("register the responder listener");
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    state.log_line(&format!("accept failed: {e}"));
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(state.answer(request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl ResponderState {
    fn log_line(&self, line: &str) {
        if let Ok(mut log) = self.log.lock() {
            let _ = writeln!(log, "{line}");
        }
    }

    /// One HTTP request: the OCSP request from a POST body or a GET path
    /// (RFC 6960 A.1), answered by `openssl ocsp`.
    async fn answer(self: Arc<Self>, request: Request<Incoming>) -> HttpResponse {
        let method = request.method().clone();
        self.log_line(&format!("{method} {}", request.uri()));
        let der = match method {
            Method::POST => {
                let content_type = request.headers().get(CONTENT_TYPE);
                if content_type.and_then(|v| v.to_str().ok()) != Some("application/ocsp-request") {
                    self.log_line(&format!("refused: Content-Type {content_type:?}"));
                    return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE);
                }
                match Limited::new(request.into_body(), MAX_REQUEST)
                    .collect()
                    .await
                {
                    Ok(body) => body.to_bytes().to_vec(),
                    Err(e) => {
                        self.log_line(&format!("refused: body: {e}"));
                        return plain(StatusCode::PAYLOAD_TOO_LARGE);
                    }
                }
            }
            Method::GET => match decode_get_path(request.uri().path()) {
                Some(der) => der,
                None => {
                    self.requests.fetch_add(1, Ordering::SeqCst);
                    self.log_line("malformed GET request");
                    return ocsp(MALFORMED_REQUEST.to_vec());
                }
            },
            _ => return plain(StatusCode::METHOD_NOT_ALLOWED),
        };
        self.requests.fetch_add(1, Ordering::SeqCst);
        let state = self.clone();
        match tokio::task::spawn_blocking(move || state.run_openssl(&der)).await {
            Ok(Ok(response)) => ocsp(response),
            Ok(Err(())) => plain(StatusCode::INTERNAL_SERVER_ERROR),
            Err(e) => {
                self.log_line(&format!("openssl ocsp task failed: {e}"));
                plain(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    /// Runs `openssl ocsp` once on `der`: the responder's own logic (status
    /// from `index.txt`, the nonce copied from the request, signed by the
    /// signer) without its listener.
    fn run_openssl(&self, der: &[u8]) -> Result<Vec<u8>, ()> {
        let work = tempfile::Builder::new()
            .prefix("ocsp-request")
            .tempdir_in(&self.dir)
            .map_err(|e| self.log_line(&format!("tempdir: {e}")))?;
        let (reqin, respout) = (work.path().join("req.der"), work.path().join("resp.der"));
        std::fs::write(&reqin, der).map_err(|e| self.log_line(&format!("write request: {e}")))?;
        let output = Command::new("openssl")
            .current_dir(&self.dir)
            .args([
                "ocsp",
                "-index",
                "index.txt",
                "-CA",
                "ca.pem",
                "-rsigner",
                &format!("{}.pem", self.signer),
                "-rkey",
                &format!("{}.key", self.signer),
                "-rmd",
                "sha256",
                "-nmin",
                "60",
                // Answer the request as received: -nonce would add a nonce
                // of its own to it (and echo that one).
                "-no_nonce",
                "-reqin",
            ])
            .arg(&reqin)
            .arg("-respout")
            .arg(&respout)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.log_line(&format!("run openssl ocsp: {e}")))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            self.log_line(&format!(
                "openssl ocsp failed ({}): {stderr}",
                output.status
            ));
            // As the listening responder does with a request it cannot read.
            if stderr.contains("Error reading OCSP request") {
                return Ok(MALFORMED_REQUEST.to_vec());
            }
            return Err(());
        }
        if !stderr.trim().is_empty() {
            self.log_line(stderr.trim());
        }
        std::fs::read(&respout).map_err(|e| self.log_line(&format!("read response: {e}")))
    }
}

/// The DER request of a GET path `/<url-encoded base64>`: percent-decoded,
/// then standard base64.
fn decode_get_path(path: &str) -> Option<Vec<u8>> {
    let encoded = path.strip_prefix('/')?.as_bytes();
    let mut b64 = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while i < encoded.len() {
        if encoded[i] == b'%' {
            let hex = encoded.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            b64.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            b64.push(encoded[i]);
            i += 1;
        }
    }
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

fn ocsp(der: Vec<u8>) -> HttpResponse {
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/ocsp-response")
        .body(Full::new(Bytes::from(der)))
        .expect("an OCSP HTTP response")
}

fn plain(status: StatusCode) -> HttpResponse {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("an HTTP response")
}

/// A port nothing listens on right now (bind 127.0.0.1:0, read, release).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}
