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
//!
//! Connection logs go to stdout unless `--log-dir DIR` is given: then they
//! are rotating files under `DIR` in `--log-format json_lines|w3c|alb|parquet`
//! (Parquet with `--features parquet`), tuned with `--log-rotate 1h`,
//! `--log-max-bytes N`, `--log-row-group-rows N` and `--log-hive`
//! (CloudFront's `distributionid=…/year=…/month=…/day=…/hour=…/` layout).
//! SIGTERM or Ctrl-C completes the open file.
//!
//! `--redis redis://127.0.0.1:6379 [--store NAME]` (`--features redis`) keeps
//! the deny list in Redis, the demo's revoked certificate included: several
//! quickstarts started in the same directory on different `--addr` share the
//! demo PKI and the store, and `edge-mtls revoke --redis URL SERIAL` reaches
//! all of them. `--watch` (`--features watch`) reloads the trust store, CRLs
//! and deny-list files when they change.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/demo_pki.rs"]
mod demo_pki;
#[path = "common/echo.rs"]
mod echo;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::exit_code("quickstart", run().await)
}

async fn run() -> Result<(), cli::Error> {
    cli::report_events();
    let o = cli::options("quickstart")?;
    #[cfg(feature = "redis")]
    if let Some(url) = &o.redis {
        seed_redis(&o, url).await?;
    }
    let (pki, edge) = cli::edge(&o, "quickstart")?;
    #[cfg(feature = "redis")]
    if let Some(redis) = edge.redis_deny_list() {
        if !redis.wait_synced(std::time::Duration::from_secs(10)).await {
            return Err(format!(
                "--redis: store `{}` did not synchronise within 10 s",
                redis.store_name()
            )
            .into());
        }
        let status = redis.status();
        cli::say(format_args!(
            "deny list: Redis store `{}`, version {}, {} key(s)",
            redis.store_name(),
            status.version,
            status.keys
        ));
    }
    let listener = cli::listen(&o.addr).await?;
    cli::print_banner(&o, &pki, &edge, listener.local_addr()?, "quickstart");

    // Ctrl-C or SIGTERM: stop accepting, then write out the connection log.
    edge_mtls::axum::serve_with_shutdown(
        listener,
        edge.clone(),
        echo::router(),
        cli::shutdown_signal(),
    )
    .await?;
    cli::finish_log(&edge);
    Ok(())
}

/// Puts the demo's revoked serial in the Redis deny list (idempotent).
#[cfg(feature = "redis")]
async fn seed_redis(o: &cli::Options, url: &str) -> Result<(), cli::Error> {
    use edge_mtls::{RedisDenyListAdmin, DEFAULT_STREAM_LENGTH};
    let store = o.store.as_deref().unwrap_or("edge-mtls");
    let mut admin = RedisDenyListAdmin::connect(url, store, DEFAULT_STREAM_LENGTH)
        .await
        .map_err(|e| format!("--redis {url}: {e}"))?;
    let serial = format!("{:X}", demo_pki::REVOKED_SERIAL);
    admin
        .revoke(&[serial])
        .await
        .map_err(|e| format!("--redis {url}: {e}"))?;
    Ok(())
}
