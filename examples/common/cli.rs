//! What the quickstart examples share: their command line, the edge they
//! build from it (demo PKI, Required mode, the demo deny list, CloudFront
//! headers, JSON-line connection logs on stdout or rotating log files) and
//! the curl commands they print.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use edge_mtls::DenyListSettings;
use edge_mtls::{
    ConfigError, Edge, FileInputError, HeaderProfile, LogFormat, MtlsConfig, TrustStoreError,
    ValidationMode,
};

use super::demo_pki::{self, DemoPki};

/// Any error of an example.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The command line.
pub struct Options {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub addr: String,
    pub pki_dir: PathBuf,
    pub ignore_expiration: bool,
    pub mode: ValidationMode,
    /// Rotating connection-log files in this directory instead of stdout.
    pub log_dir: Option<PathBuf>,
    pub log_format: LogFormat,
    pub log_rotate: Option<String>,
    pub log_max_bytes: Option<u64>,
    pub log_row_group_rows: Option<usize>,
    pub log_hive: bool,
    /// The deny list in Redis (`--redis URL [--store NAME]`).
    pub redis: Option<String>,
    pub store: Option<String>,
    /// Reload the trust store and deny-list files when they change.
    pub watch: bool,
    /// A CloudFront connection function (feature `js`); the demo KVS is
    /// bound to its `cf.kvs()` instead of the handshake's deny list.
    pub function: Option<PathBuf>,
}

/// Parses the command line of the example called `name`.
pub fn options(name: &str) -> Result<Options, Error> {
    let mut o = Options {
        ca: None,
        cert: None,
        key: None,
        addr: "127.0.0.1:8443".into(),
        pki_dir: "demo-pki".into(),
        ignore_expiration: false,
        mode: ValidationMode::Required,
        log_dir: None,
        log_format: LogFormat::JsonLines,
        log_rotate: None,
        log_max_bytes: None,
        log_row_group_rows: None,
        log_hive: false,
        redis: None,
        store: None,
        watch: false,
        function: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--ca" => o.ca = Some(value()?.into()),
            "--cert" => o.cert = Some(value()?.into()),
            "--key" => o.key = Some(value()?.into()),
            "--addr" => o.addr = value()?,
            "--pki-dir" => o.pki_dir = value()?.into(),
            "--ignore-expiration" => o.ignore_expiration = true,
            "--mode" => {
                o.mode = match value()?.as_str() {
                    "required" => ValidationMode::Required,
                    "optional" => ValidationMode::Optional,
                    "passthrough" => ValidationMode::Passthrough,
                    other => return Err(format!("unknown mode {other}").into()),
                }
            }
            "--log-dir" => o.log_dir = Some(value()?.into()),
            "--log-format" => {
                o.log_format = match value()?.as_str() {
                    "json_lines" => LogFormat::JsonLines,
                    "w3c" => LogFormat::W3c,
                    "alb" => LogFormat::Alb,
                    "parquet" => LogFormat::Parquet,
                    other => {
                        return Err(format!(
                            "--log-format {other}: unknown format (json_lines, w3c, alb, parquet)"
                        )
                        .into())
                    }
                }
            }
            "--log-rotate" => o.log_rotate = Some(value()?),
            "--log-max-bytes" => {
                let text = value()?;
                o.log_max_bytes = Some(
                    text.parse()
                        .map_err(|_| format!("--log-max-bytes {text}: not a number of bytes"))?,
                );
            }
            "--log-row-group-rows" => {
                let text = value()?;
                o.log_row_group_rows = Some(
                    text.parse()
                        .map_err(|_| format!("--log-row-group-rows {text}: not a number"))?,
                );
            }
            "--log-hive" => o.log_hive = true,
            "--redis" => o.redis = Some(value()?),
            "--store" => o.store = Some(value()?),
            "--watch" => o.watch = true,
            "--function" => o.function = Some(value()?.into()),
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: {name} [--ca FILE] [--cert FILE --key FILE] \
                     [--addr HOST:PORT] [--pki-dir DIR] [--ignore-expiration] [--mode MODE] \
                     [--log-dir DIR [--log-format json_lines|w3c|alb|parquet] [--log-rotate 1h] \
                     [--log-max-bytes N] [--log-row-group-rows N] [--log-hive]] \
                     [--redis URL [--store NAME]] [--watch] [--function FILE.js]"
                )
                .into())
            }
        }
    }
    if o.store.is_some() && o.redis.is_none() {
        return Err("--store NAME needs --redis URL".into());
    }
    if o.cert.is_some() != o.key.is_some() {
        return Err("--cert and --key go together".into());
    }
    let file_options = o.log_rotate.is_some()
        || o.log_max_bytes.is_some()
        || o.log_row_group_rows.is_some()
        || o.log_hive;
    if o.log_dir.is_none() && (file_options || o.log_format == LogFormat::Parquet) {
        return Err(
            "--log-format parquet and the --log-rotate, --log-max-bytes, \
                    --log-row-group-rows and --log-hive options need --log-dir DIR"
                .into(),
        );
    }
    Ok(o)
}

/// Writes one line to stderr. An example never panics on its own output: a
/// closed or full stderr is ignored (the connection log on stdout goes
/// through the library's log sink, which counts what it cannot write).
pub fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Sends the library's operational events (`tracing`: a connection log that
/// cannot be written, and when it recovers) to stderr, ignoring a stderr
/// that cannot be written.
pub fn report_events() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .log_internal_errors(false)
        .try_init();
}

/// Writes out the connection log (within its deadline) and says what was
/// lost, if anything.
pub fn finish_log(edge: &Edge) {
    let outcome = edge.flush_log();
    if let Some(queue) = edge.log_queue() {
        if queue.dropped() + queue.unwritten() > 0 {
            say(format_args!(
                "connection log: {} record(s) written, {} dropped (queue full), {} not written (output failed)",
                queue.written(),
                queue.dropped(),
                queue.unwritten()
            ));
        }
    }
    if let Err(e) = outcome {
        say(format_args!("{e}"));
    }
}

/// Runs an example's body and turns its error into one line on stderr
/// naming the file, setting or address at fault, and exit code 2.
pub fn exit_code(name: &str, result: Result<(), Error>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            say(format_args!("{name}: {e}"));
            std::process::ExitCode::from(2)
        }
    }
}

/// Binds the listener, naming the address when it cannot.
pub async fn listen(addr: &str) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--addr {addr}: {e}").into())
}

/// Creates (or reuses) the demo PKI and builds the edge: `distribution_id`
/// names the listener in the logs.
pub fn edge(o: &Options, distribution_id: &str) -> Result<(DemoPki, Edge), Error> {
    let (pki, created) = demo_pki::ensure(&o.pki_dir)?;
    if created {
        say(format_args!(
            "created the demo PKI under {}",
            pki.dir.display()
        ));
    }
    let files = Files {
        ca: FileArg::new("--ca", o.ca.as_ref(), pki.trust_store()),
        cert: FileArg::new("--cert", o.cert.as_ref(), pki.path("server.pem")),
        key: FileArg::new("--key", o.key.as_ref(), pki.path("server.key")),
    };
    let mut builder = MtlsConfig::builder()
        .distribution_id(distribution_id)
        .mode(o.mode)
        .ignore_expiration(o.ignore_expiration)
        .trust_store_file(files.ca.path.clone())
        .server_files(files.cert.path.clone(), files.key.path.clone())
        .header_profiles([HeaderProfile::CloudFront]);
    let settings = builder.settings();
    settings.headers.connection_id_header = Some("X-Edge-Connection-Id".into());
    settings.revocation.deny_list = Some(match &o.redis {
        // The demo's revoked serial was put in Redis (`seed_redis`).
        Some(url) => DenyListSettings {
            redis: Some(url.clone()),
            store: o.store.clone().unwrap_or_else(|| "edge-mtls".into()),
            ..DenyListSettings::default()
        },
        None => DenyListSettings {
            kvs_json: vec![pki.revoked_serials()],
            ..DenyListSettings::default()
        },
    });
    settings.watch = o.watch;
    if let Some(function) = &o.function {
        // The function decides on revoked serials, as CloudFront's KVS
        // examples do: the demo KVS goes to `cf.kvs()`, not the handshake.
        settings.policy.js = Some(function.clone());
        settings.policy.kvs_json = vec![pki.revoked_serials()];
        settings.revocation.deny_list = None;
    }
    settings.log.format = o.log_format;
    if let Some(dir) = &o.log_dir {
        settings.log.target = format!("dir:{}", dir.display());
        if let Some(rotate) = &o.log_rotate {
            settings.log.rotate = rotate.clone();
        }
        if let Some(max) = o.log_max_bytes {
            settings.log.max_bytes = max;
        }
        if let Some(rows) = o.log_row_group_rows {
            settings.log.row_group_rows = rows;
        }
        settings.log.hive = o.log_hive;
    }
    let edge = builder.build().map_err(|e| match (&e, &o.log_dir) {
        (ConfigError::Log { source, .. }, Some(dir)) => {
            format!("--log-dir {}: {source}", dir.display()).into()
        }
        (ConfigError::Invalid { setting, detail }, _) if setting.starts_with("log.") => {
            let option = match setting.as_str() {
                "log.format" => format!("--log-format {}", o.log_format.as_str()),
                "log.rotate" => format!("--log-rotate {}", o.log_rotate.as_deref().unwrap_or("")),
                "log.max_bytes" => "--log-max-bytes".to_owned(),
                "log.row_group_rows" => "--log-row-group-rows".to_owned(),
                _ => "--log-dir".to_owned(),
            };
            format!("{option}: {detail}").into()
        }
        _ => files.explain(e),
    })?;
    Ok((pki, edge))
}

/// A file the edge reads, named as the operator knows it: by its option when
/// it came from the command line, else by its path in the demo PKI.
struct FileArg {
    path: PathBuf,
    label: String,
}

impl FileArg {
    fn new(option: &str, given: Option<&PathBuf>, demo: PathBuf) -> Self {
        match given {
            Some(path) => Self {
                label: format!("{option} {}", path.display()),
                path: path.clone(),
            },
            None => Self {
                label: demo.display().to_string(),
                path: demo,
            },
        }
    }

    /// `label: problem`, from a library message that starts with the path.
    fn says(&self, message: impl std::fmt::Display) -> String {
        let message = message.to_string();
        let problem = message
            .strip_prefix(&format!("{}: ", self.path.display()))
            .unwrap_or(&message);
        format!("{}: {problem}", self.label)
    }

    /// Why the file could not be read.
    fn unreadable(&self, e: &FileInputError) -> String {
        match e {
            FileInputError::Io { source, .. } => format!("{}: {source}", self.label),
            other => self.says(other),
        }
    }
}

/// The trust store, server certificate and server key the edge is built from.
struct Files {
    ca: FileArg,
    cert: FileArg,
    key: FileArg,
}

impl Files {
    /// The library's error, naming the option (or demo PKI file) at fault.
    fn explain(&self, e: ConfigError) -> Error {
        let (ca, cert, key) = (&self.ca, &self.cert, &self.key);
        match &e {
            ConfigError::TrustStore { source, .. } => match source {
                TrustStoreError::Empty => format!("{}: no certificate in the file", ca.label),
                TrustStoreError::File(e) => ca.unreadable(e),
                other => ca.says(other),
            },
            ConfigError::File { what, source } if *what == "server certificate" => {
                cert.unreadable(source)
            }
            ConfigError::File { what, source } if *what == "server key" => key.unreadable(source),
            ConfigError::Invalid { setting, detail } if setting == "server.cert_chain" => {
                cert.says(detail)
            }
            ConfigError::Invalid { setting, detail } if setting == "server.key" => {
                if detail.ends_with(": no items found") {
                    format!("{}: no private key in the file", key.label)
                } else {
                    key.says(detail)
                }
            }
            ConfigError::Tls { source, .. } => match source {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => format!(
                    "{} does not match the certificate in {}",
                    key.label, cert.label
                ),
                rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding) => {
                    format!("{}: the first certificate is not valid DER", cert.label)
                }
                rustls::Error::General(detail) if detail.contains("private key") => {
                    match rsa_key_bits(&key.path) {
                        Some(bits) => format!(
                            "{}: RSA key of {bits} bits (allowed: 2048 to 8192)",
                            key.label
                        ),
                        None => format!(
                            "{}: not a usable RSA (2048 to 8192 bits), ECDSA or Ed25519 key",
                            key.label
                        ),
                    }
                }
                _ => e.to_string(),
            },
            _ => e.to_string(),
        }
        .into()
    }
}

/// The modulus size of the RSA private key (PKCS#1 or PKCS#8 PEM) in
/// `path`, to say why the crypto provider refused it; `None` for any other
/// key.
fn rsa_key_bits(path: &Path) -> Option<usize> {
    use der::asn1::{ObjectIdentifier, OctetStringRef, UintRef};
    use der::{Decode, Reader, SliceReader};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

    let key = PrivateKeyDer::from_pem_file(path).ok()?;
    let pkcs1 = match &key {
        PrivateKeyDer::Pkcs1(k) => k.secret_pkcs1_der(),
        // PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey, .. }
        PrivateKeyDer::Pkcs8(k) => SliceReader::new(k.secret_pkcs8_der())
            .ok()?
            .sequence(|r| {
                u8::decode(r)?;
                let algorithm = x509_cert::spki::AlgorithmIdentifierRef::decode(r)?;
                let private_key = OctetStringRef::decode(r)?;
                r.read_slice(r.remaining_len())?;
                Ok((algorithm.oid == RSA_ENCRYPTION).then_some(private_key.as_bytes()))
            })
            .ok()??,
        _ => return None,
    };
    // RSAPrivateKey ::= SEQUENCE { version, modulus, .. }
    let modulus = SliceReader::new(pkcs1)
        .ok()?
        .sequence(|r| {
            u8::decode(r)?;
            let modulus = UintRef::decode(r)?.as_bytes();
            r.read_slice(r.remaining_len())?;
            Ok(modulus)
        })
        .ok()?;
    let first = *modulus.first()?;
    Some(modulus.len() * 8 - first.leading_zeros() as usize)
}

/// Says where the server listens and prints the seeds' curl commands.
pub fn print_banner(o: &Options, pki: &DemoPki, edge: &Edge, addr: SocketAddr, what: &str) {
    let d = pki.dir.display();
    let store = edge.trust_store().load();
    say(format_args!(
        "edge-mtls {what} on https://{addr} ({:?} mode, trust store {} with {} CA certificate(s))",
        o.mode,
        o.ca.as_ref()
            .map_or_else(|| pki.trust_store(), Clone::clone)
            .display(),
        store.len(),
    ));
    for warning in store.warnings() {
        say(format_args!("  trust store: {warning}"));
    }
    match &o.log_dir {
        Some(dir) => say(format_args!(
            "try (connection logs go to {} as {} files, rotated every {}):",
            dir.display(),
            o.log_format.as_str(),
            o.log_rotate.as_deref().unwrap_or("1h")
        )),
        None => say(format_args!(
            "try (connection logs are the JSON lines on stdout):"
        )),
    }
    say(format_args!("  curl --cacert {d}/root_ca.pem --key {d}/my_client.key --cert {d}/my_client.pem https://{addr}/"));
    say(format_args!("  curl --cacert {d}/root_ca.pem https://{addr}/                     # no certificate: refused"));
    say(format_args!("  curl --cacert {d}/root_ca.pem --key {d}/revoked_client.key --cert {d}/revoked_client.pem https://{addr}/  # revoked"));
    say(format_args!("  curl --cacert {d}/root_ca.pem --key {d}/expired_client.key --cert {d}/expired_client.pem https://{addr}/  # expired"));
}

/// Completes on Ctrl-C or SIGTERM, so a server can stop cleanly and flush
/// its connection log; a second signal while it does exits at once.
pub async fn shutdown_signal() {
    first_signal().await;
    say(format_args!(
        "stopping (a second Ctrl-C or SIGTERM exits at once)"
    ));
    tokio::spawn(async {
        first_signal().await;
        std::process::exit(130);
    });
}

async fn first_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
