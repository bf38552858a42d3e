//! The quickstart on actix-web: an actix-web app behind edge-mtls on
//! https://127.0.0.1:8443 in `Required` mode, served through the whole
//! connection pipeline (`edge_mtls::actix::server`).
//!
//! ```text
//! cargo run --example actix --features actix
//! cargo run --example actix --features actix -- --ca Root_CA.pem   # the seed's CA
//! ```
//!
//! As the quickstart: on first start it creates `./demo-pki/` (root CA,
//! intermediate CA, a server certificate for localhost / 127.0.0.1, valid,
//! revoked and expired client certificates) and reuses it afterwards; the
//! revoked certificate's serial is in `demo-pki/revoked-serials.json`
//! (CloudFront KeyValueStore JSON), loaded as a deny list. Every request is
//! answered with the headers it received as JSON; every connection attempt
//! prints one JSON log line on stdout. Ctrl-C stops the server.
//!
//! Options: `--ca FILE` (trust store bundle), `--cert FILE --key FILE` (server
//! certificate chain and key), `--addr HOST:PORT`, `--pki-dir DIR`,
//! `--ignore-expiration`, `--mode required|optional|passthrough`.

#[path = "common/actix_echo.rs"]
mod actix_echo;
#[path = "common/cli.rs"]
mod cli;
#[path = "common/demo_pki.rs"]
mod demo_pki;

fn main() -> std::process::ExitCode {
    cli::exit_code("actix", run())
}

fn run() -> Result<(), cli::Error> {
    cli::report_events();
    let o = cli::options("actix")?;
    let (pki, edge) = cli::edge(&o, "actix")?;
    let listener =
        std::net::TcpListener::bind(&o.addr).map_err(|e| format!("--addr {}: {e}", o.addr))?;
    cli::print_banner(&o, &pki, &edge, listener.local_addr()?, "actix-web");

    let server = edge_mtls::actix::server(edge.clone(), listener, actix_echo::app)?;
    // The server stops on Ctrl-C / SIGTERM after finishing its requests.
    actix_rt::System::new().block_on(server)?;
    cli::finish_log(&edge);
    Ok(())
}
