//! What the quickstart examples share: their command line, the edge they
//! build from it (demo PKI, Required mode, the demo deny list, CloudFront
//! headers, JSON-line connection logs on stdout) and the curl commands they
//! print.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use edge_mtls::config::DenyListSettings;
use edge_mtls::{Edge, HeaderProfile, MtlsConfig, ValidationMode};

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
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: {name} [--ca FILE] [--cert FILE --key FILE] \
                     [--addr HOST:PORT] [--pki-dir DIR] [--ignore-expiration] [--mode MODE]"
                )
                .into())
            }
        }
    }
    if o.cert.is_some() != o.key.is_some() {
        return Err("--cert and --key go together".into());
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
        .map_err(|e| format!("cannot listen on {addr}: {e}").into())
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
    let mut builder = MtlsConfig::builder()
        .distribution_id(distribution_id)
        .mode(o.mode)
        .ignore_expiration(o.ignore_expiration)
        .trust_store_file(o.ca.clone().unwrap_or_else(|| pki.trust_store()))
        .server_files(
            o.cert.clone().unwrap_or_else(|| pki.path("server.pem")),
            o.key.clone().unwrap_or_else(|| pki.path("server.key")),
        )
        .header_profiles([HeaderProfile::CloudFront]);
    let settings = builder.settings();
    settings.headers.connection_id_header = Some("X-Edge-Connection-Id".into());
    settings.revocation.deny_list = Some(DenyListSettings {
        kvs_json: vec![pki.revoked_serials()],
        ..DenyListSettings::default()
    });
    Ok((pki, builder.build()?))
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
    say(format_args!(
        "try (connection logs are the JSON lines on stdout):"
    ));
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
