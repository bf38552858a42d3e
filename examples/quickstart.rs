//! Quickstart: an axum server behind edge-mtls on https://127.0.0.1:8443 in
//! `Required` mode.
//!
//! ```text
//! cargo run --example quickstart
//! cargo run --example quickstart -- --ca Root_CA.pem          # the seed's CA
//! cargo run --example quickstart -- --cert server.pem --key server.key
//! ```
//!
//! On first start it creates `./demo-pki/` (root CA, intermediate CA, a server
//! certificate for localhost / 127.0.0.1, and valid, revoked and expired
//! client certificates) and reuses it afterwards. The revoked certificate's
//! serial is in `demo-pki/revoked-serials.json` (CloudFront KeyValueStore
//! JSON), loaded as a deny list. Every request is answered with the headers
//! it received as JSON; every connection attempt prints one JSON log line.
//!
//! Options: `--ca FILE` (trust store bundle), `--cert FILE --key FILE` (server
//! certificate chain and key), `--addr HOST:PORT`, `--pki-dir DIR`,
//! `--ignore-expiration`, `--mode required|optional|passthrough`.

#[path = "common/demo_pki.rs"]
mod demo_pki;
#[path = "common/echo.rs"]
mod echo;

use std::path::PathBuf;

use edge_mtls::config::DenyListSettings;
use edge_mtls::{HeaderProfile, MtlsConfig, ValidationMode};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Options {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    addr: String,
    pki_dir: PathBuf,
    ignore_expiration: bool,
    mode: ValidationMode,
}

fn options() -> Result<Options> {
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
                "unknown argument {other}; usage: quickstart [--ca FILE] [--cert FILE --key FILE] \
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

#[tokio::main]
async fn main() -> Result<()> {
    let o = options()?;
    let (pki, created) = demo_pki::ensure(&o.pki_dir)?;
    if created {
        eprintln!("created the demo PKI under {}", pki.dir.display());
    }

    let mut builder = MtlsConfig::builder()
        .distribution_id("quickstart")
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
    let edge = builder.build()?;

    let listener = tokio::net::TcpListener::bind(&o.addr).await?;
    let addr = listener.local_addr()?;
    let d = pki.dir.display();
    eprintln!(
        "edge-mtls quickstart on https://{addr} ({:?} mode, trust store {} with {} CA certificate(s))",
        o.mode,
        o.ca.as_ref().map_or_else(|| pki.trust_store(), Clone::clone).display(),
        edge.trust_store().load().len(),
    );
    eprintln!("try (connection logs are the JSON lines on stdout):");
    eprintln!("  curl --cacert {d}/root_ca.pem --key {d}/my_client.key --cert {d}/my_client.pem https://{addr}/");
    eprintln!("  curl --cacert {d}/root_ca.pem https://{addr}/                     # no certificate: refused");
    eprintln!("  curl --cacert {d}/root_ca.pem --key {d}/revoked_client.key --cert {d}/revoked_client.pem https://{addr}/  # revoked");
    eprintln!("  curl --cacert {d}/root_ca.pem --key {d}/expired_client.key --cert {d}/expired_client.pem https://{addr}/  # expired");

    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    edge_mtls::axum::serve_with_shutdown(listener, edge.clone(), echo::router(), shutdown).await?;
    edge.flush_log()?;
    Ok(())
}
