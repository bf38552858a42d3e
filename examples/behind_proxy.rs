//! Behind a load balancer: the proxy (ALB in mutual TLS passthrough mode,
//! CloudFront, Envoy, nginx, HAProxy) terminates TLS and forwards the client
//! certificate in a header; this app serves plain HTTP, verifies the
//! forwarded certificate on every request (chain, deny list, CRL, policy,
//! headers, connection log) and answers with the verified identity as JSON,
//! or 403 (400 for a header it cannot read) with an empty body.
//!
//! ```text
//! cargo run --example behind_proxy -- --dialect alb_passthrough \
//!     --trusted-proxy 10.0.0.0/8 --ca demo-pki/trust_store_bundle.pem --addr 127.0.0.1:8080
//! ```
//!
//! `--dialect` is `alb_passthrough`, `cloudfront`, `xfcc`, `rfc9440`,
//! `pem-header:NAME` (nginx `$ssl_client_escaped_cert`) or `der-header:NAME`
//! (HAProxy `ssl_c_der,base64`). Other options: `--trusted-proxy` again for
//! more networks, `--hops N` (proxies in a row), `--mode
//! required|optional|passthrough`, `--deny-list FILE` (CloudFront KVS JSON),
//! `--crl FILE` (PEM or DER), `--log stdout|off|FILE` (JSON lines; default
//! stdout), `--shared-secret-header NAME --shared-secret VALUE`.
//! Connection logs are written one JSON line per request; the address the
//! app listens on is printed as `listening on http://ADDR`.

use std::path::PathBuf;

#[path = "common/identity.rs"]
mod identity;

use edge_mtls::{
    CrlSettings, DenyListSettings, ForwardedSettings, HeaderProfile, LogSettings, MtlsConfig,
    ValidationMode,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("behind_proxy: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

struct Options {
    forwarded: ForwardedSettings,
    ca: Option<PathBuf>,
    addr: String,
    mode: ValidationMode,
    deny_lists: Vec<PathBuf>,
    crls: Vec<PathBuf>,
    log: String,
}

fn options() -> Result<Options, Error> {
    let mut o = Options {
        forwarded: ForwardedSettings::default(),
        ca: None,
        addr: "127.0.0.1:8080".into(),
        mode: ValidationMode::Required,
        deny_lists: Vec::new(),
        crls: Vec::new(),
        log: "stdout".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dialect" => o.forwarded.dialect = value()?,
            "--trusted-proxy" => o.forwarded.trusted_proxies.push(value()?),
            "--hops" => o.forwarded.trusted_hops = value()?.parse()?,
            "--shared-secret-header" => o.forwarded.shared_secret_header = Some(value()?),
            "--shared-secret" => o.forwarded.shared_secret = Some(value()?),
            "--ca" => o.ca = Some(value()?.into()),
            "--addr" => o.addr = value()?,
            "--mode" => {
                o.mode = match value()?.as_str() {
                    "required" => ValidationMode::Required,
                    "optional" => ValidationMode::Optional,
                    "passthrough" => ValidationMode::Passthrough,
                    other => {
                        return Err(format!(
                            "--mode: `{other}` is not required, optional or passthrough"
                        )
                        .into())
                    }
                }
            }
            "--deny-list" => o.deny_lists.push(value()?.into()),
            "--crl" => o.crls.push(value()?.into()),
            "--log" => o.log = value()?,
            "-h" | "--help" => {
                println!(
                    "usage: behind_proxy --dialect D --trusted-proxy CIDR --ca BUNDLE [--addr HOST:PORT] \
                     [--hops N] [--mode M] [--deny-list KVS.json] [--crl FILE] [--log stdout|off|FILE] \
                     [--shared-secret-header NAME --shared-secret VALUE]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown option `{other}` (try --help)").into()),
        }
    }
    if o.forwarded.trusted_proxies.is_empty() {
        return Err(
            "--trusted-proxy CIDR is required (the proxies whose headers are believed)".into(),
        );
    }
    Ok(o)
}

async fn run() -> Result<(), Error> {
    let o = options()?;
    let mut builder = MtlsConfig::builder()
        .distribution_id("behind-proxy")
        .mode(o.mode)
        .header_profiles([HeaderProfile::CloudFront])
        .forwarded(o.forwarded);
    if let Some(ca) = &o.ca {
        builder = builder.trust_store_file(ca.clone());
    }
    let settings = builder.settings();
    settings.log = LogSettings {
        target: o.log.clone(),
        ..LogSettings::default()
    };
    if !o.deny_lists.is_empty() {
        settings.revocation.deny_list = Some(DenyListSettings {
            kvs_json: o.deny_lists.clone(),
            ..DenyListSettings::default()
        });
    }
    if !o.crls.is_empty() {
        settings.revocation.crl = Some(CrlSettings {
            files: o.crls.clone(),
            ..CrlSettings::default()
        });
    }
    let edge = builder.build()?;
    let listener = tokio::net::TcpListener::bind(&o.addr)
        .await
        .map_err(|e| format!("--addr {}: {e}", o.addr))?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = identity::router();
    edge_mtls::axum::serve_forwarded_with_shutdown(listener, edge.clone(), app, shutdown()).await?;
    let _ = edge.flush_log();
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = ctrl_c => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
