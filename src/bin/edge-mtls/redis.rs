//! `edge-mtls revoke|unrevoke|import|status --redis URL`: the fleet's deny
//! list in Redis (feature `redis`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use edge_mtls::internal::read_bounded;
use edge_mtls::issuer_id;
use edge_mtls::RevocationList;
use edge_mtls::SerialNumber;
use edge_mtls::{ImportOptions, MemoryKeyValueStore};
use edge_mtls::{RedisDenyListAdmin, RedisStoreError, DEFAULT_STORE_NAME, DEFAULT_STREAM_LENGTH};

/// Larger imports are refused before they are read in full.
const MAX_IMPORT_BYTES: u64 = 1 << 30;

/// Where the store is.
#[derive(clap::Args)]
pub struct StoreArgs {
    /// The Redis URL (`redis://host:port/db`).
    #[arg(long, value_name = "URL")]
    redis: String,
    /// The store name.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_STORE_NAME)]
    store: String,
    /// The approximate length the change stream is trimmed to.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_STREAM_LENGTH)]
    stream_length: u64,
}

/// Arguments of `edge-mtls revoke` and `unrevoke`.
#[derive(clap::Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Scope the serials to this CA certificate (PEM or DER): the keys
    /// become `<issuer id>/<serial>`.
    #[arg(long, value_name = "CA_CERT")]
    issuer: Option<PathBuf>,
    /// Serial numbers in any common spelling (`00:b1:43…`, `B143…`), or
    /// `<issuer id>/<serial>` keys.
    #[arg(value_name = "SERIAL", required = true)]
    serials: Vec<String>,
}

/// What an import file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// By content: a CRL (PEM or DER), CloudFront KVS JSON (`{`), else a
    /// serial list.
    Auto,
    /// CloudFront KeyValueStore JSON.
    KvsJson,
    /// A CRL, PEM or DER.
    Crl,
    /// One serial per line, `#` comments.
    Serials,
}

/// Arguments of `edge-mtls import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The file's format.
    #[arg(long, value_enum, default_value = "auto")]
    format: ImportFormat,
    /// Scope the serials to this CA certificate (PEM or DER).
    #[arg(long, value_name = "CA_CERT")]
    issuer: Option<PathBuf>,
    /// Replace the whole list instead of adding to it.
    #[arg(long)]
    replace: bool,
    /// The file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Arguments of `edge-mtls status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

async fn connect(args: &StoreArgs) -> Result<RedisDenyListAdmin, RedisStoreError> {
    RedisDenyListAdmin::connect(&args.redis, &args.store, args.stream_length).await
}

fn failed(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("edge-mtls: {message}");
    ExitCode::from(2)
}

fn issuer_prefix(path: Option<&Path>) -> Result<Option<String>, String> {
    let Some(path) = path else { return Ok(None) };
    let bytes = read_bounded(path, 1 << 20).map_err(|e| e.to_string())?;
    let der = match pem_rfc7468::decode_vec(&bytes) {
        Ok((_, der)) => der,
        Err(_) => bytes,
    };
    issuer_id(&der)
        .map(Some)
        .ok_or_else(|| format!("{}: not a certificate", path.display()))
}

fn scoped(prefix: Option<&str>, keys: Vec<String>) -> Vec<String> {
    match prefix {
        Some(p) => keys.into_iter().map(|k| format!("{p}/{k}")).collect(),
        None => keys,
    }
}

/// `revoke` (`revoke = true`) or `unrevoke`.
pub fn change(args: &ChangeArgs, revoke: bool) -> ExitCode {
    let prefix = match issuer_prefix(args.issuer.as_deref()) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    for serial in &args.serials {
        let serial_part = serial.rsplit('/').next().unwrap_or(serial);
        if let Err(e) = SerialNumber::parse(serial_part) {
            return failed(format!("`{serial}` is not a serial number: {e}"));
        }
    }
    let keys = scoped(prefix.as_deref(), args.serials.clone());
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return failed(e),
    };
    let started = Instant::now();
    let result = rt.block_on(async {
        let mut admin = connect(&args.store).await?;
        if revoke {
            admin.revoke(&keys).await
        } else {
            admin.unrevoke(&keys).await
        }
    });
    match result {
        Ok(report) => {
            println!(
                "{} {} of {} key(s) in store `{}` (version {}, {} ms)",
                if revoke { "revoked" } else { "unrevoked" },
                report.changed,
                keys.len(),
                args.store.store,
                report.version,
                started.elapsed().as_millis()
            );
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

/// The keys of an import file.
fn import_keys(args: &ImportArgs) -> Result<Vec<String>, String> {
    let path = &args.file;
    let name = path.display();
    let bytes = read_bounded(path, MAX_IMPORT_BYTES).map_err(|e| e.to_string())?;
    let trimmed = bytes.trim_ascii_start();
    let format = match args.format {
        ImportFormat::Auto if trimmed.starts_with(b"-----BEGIN X509 CRL") => ImportFormat::Crl,
        ImportFormat::Auto if trimmed.starts_with(b"{") => ImportFormat::KvsJson,
        ImportFormat::Auto if bytes.first() == Some(&0x30) => ImportFormat::Crl,
        ImportFormat::Auto => ImportFormat::Serials,
        other => other,
    };
    let keys = match format {
        ImportFormat::Crl => {
            let der = if trimmed.starts_with(b"-----BEGIN") {
                pem_rfc7468::decode_vec(trimmed)
                    .map_err(|e| format!("{name}: not a PEM CRL: {e}"))?
                    .1
            } else {
                bytes
            };
            let crl = RevocationList::parse(&der).map_err(|e| format!("{name}: {e}"))?;
            crl.entries()
                .filter_map(|(serial, _)| SerialNumber::from_der_contents(serial))
                .map(|s| s.to_key())
                .collect()
        }
        ImportFormat::KvsJson | ImportFormat::Serials | ImportFormat::Auto => {
            let store = MemoryKeyValueStore::for_serial_numbers();
            let options = ImportOptions {
                max_input_bytes: usize::try_from(MAX_IMPORT_BYTES).unwrap_or(usize::MAX),
                ..ImportOptions::default()
            };
            let report = if format == ImportFormat::KvsJson {
                store.import_kvs_json(&bytes, options)
            } else {
                store.import_serial_list(&bytes, options)
            }
            .map_err(|e| format!("{name}: {e}"))?;
            if report.opaque_key_count > 0 {
                eprintln!(
                    "edge-mtls: {name}: {} key(s) are not serial numbers and can never match a certificate (first: {:?})",
                    report.opaque_key_count,
                    report.opaque_keys.first()
                );
            }
            store.keys()
        }
    };
    let prefix = issuer_prefix(args.issuer.as_deref())?;
    Ok(scoped(prefix.as_deref(), keys))
}

/// `import`.
pub fn import(args: &ImportArgs) -> ExitCode {
    let keys = match import_keys(args) {
        Ok(keys) => keys,
        Err(e) => return failed(e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return failed(e),
    };
    let started = Instant::now();
    let result = rt.block_on(async {
        let mut admin = connect(&args.store).await?;
        if args.replace {
            admin.replace_all(&keys).await
        } else {
            admin.revoke(&keys).await
        }
    });
    match result {
        Ok(report) if args.replace => {
            println!(
                "replaced the list of store `{}` with the {} key(s) of {}: version {}, {} ms",
                args.store.store,
                report.changed,
                args.file.display(),
                report.version,
                started.elapsed().as_millis()
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            println!(
                "imported {} key(s) from {} into store `{}`: {} new, version {}, {} change event(s), {} ms",
                keys.len(),
                args.file.display(),
                args.store.store,
                report.changed,
                report.version,
                report.events,
                started.elapsed().as_millis()
            );
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

/// `status`.
pub fn status(args: &StatusArgs) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return failed(e),
    };
    let status = match rt.block_on(async { connect(&args.store).await?.status().await }) {
        Ok(status) => status,
        Err(e) => return failed(e),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if args.json {
        let nodes: Vec<serde_json::Value> = status
            .nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "node": n.node,
                    "version": n.version,
                    "lag": status.version.saturating_sub(n.version),
                    "reportedSecondsAgo": now.saturating_sub(n.reported_at),
                })
            })
            .collect();
        let json = serde_json::json!({
            "store": status.store,
            "version": status.version,
            "count": status.count,
            "streamLength": status.stream_length,
            "firstId": status.first_id,
            "lastId": status.last_id,
            "nodes": nodes,
        });
        println!("{json}");
        return ExitCode::SUCCESS;
    }
    println!("store:         {}", status.store);
    println!("version:       {}", status.version);
    println!("revoked keys:  {}", status.count);
    println!(
        "stream:        {} entries ({} .. {})",
        status.stream_length,
        status.first_id.as_deref().unwrap_or("-"),
        status.last_id.as_deref().unwrap_or("-")
    );
    if status.nodes.is_empty() {
        println!("nodes:         none reported");
    }
    for node in &status.nodes {
        println!(
            "node {}: version {}, lag {}, reported {} s ago",
            node.node,
            node.version,
            status.version.saturating_sub(node.version),
            now.saturating_sub(node.reported_at)
        );
    }
    ExitCode::SUCCESS
}
