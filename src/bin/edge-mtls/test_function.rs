//! `edge-mtls test-function`: run a CloudFront connection function locally,
//! as CloudFront's TestConnectionFunction does.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use edge_mtls::internal::read_bounded;
use edge_mtls::Connection;
use edge_mtls::ImportOptions;
use edge_mtls::{ClientCertInfo, Decision, MemoryKeyValueStore};
use edge_mtls::{FingerprintFormat, JsFunction, JsLimits, JsRun, MAX_CONNECTION_JSON_BYTES};

use crate::verify::{read_certificates, BadInput};

/// Arguments of `edge-mtls test-function`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["connection", "cert"])))]
pub struct TestFunctionArgs {
    /// The connection function (JavaScript, `cloudfront-js-2.0`).
    #[arg(long, value_name = "FILE.js")]
    function: PathBuf,
    /// A connection object as JSON (at most 40,960 bytes).
    #[arg(long, value_name = "CONN.json")]
    connection: Option<PathBuf>,
    /// Build the connection object from a client certificate (PEM: leaf
    /// first, then intermediates; or DER).
    #[arg(long, value_name = "CLIENT.pem")]
    cert: Option<PathBuf>,
    /// `clientIp` of a connection built with `--cert`.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    client_ip: std::net::IpAddr,
    /// CloudFront KeyValueStore JSON that `cf.kvs()` reads (default: an
    /// empty store).
    #[arg(long, value_name = "KVS.json")]
    kvs: Option<PathBuf>,
    /// `sha256Fingerprint` of a connection built with `--cert`: colon_hex,
    /// hex or base64_url.
    #[arg(long, value_name = "FORMAT", default_value = "colon_hex", value_parser = parse_format)]
    fingerprint: FingerprintFormat,
    /// Time limit per call, microseconds.
    #[arg(long, value_name = "US", default_value_t = 5_000)]
    time_limit_us: u64,
}

fn parse_format(text: &str) -> Result<FingerprintFormat, String> {
    match text {
        "colon_hex" => Ok(FingerprintFormat::ColonHex),
        "hex" => Ok(FingerprintFormat::Hex),
        "base64_url" => Ok(FingerprintFormat::Base64Url),
        _ => Err(format!("`{text}` is not colon_hex, hex or base64_url")),
    }
}

/// Runs the command: exit 0 allowed, 1 denied, 2 error or bad input.
pub fn run(args: &TestFunctionArgs) -> ExitCode {
    match test(args) {
        Ok(run) => {
            print(args, &run);
            match (&run.error, run.decision) {
                (None, Some(Decision::Allow)) => ExitCode::SUCCESS,
                (None, _) => ExitCode::from(1),
                (Some(_), _) => ExitCode::from(2),
            }
        }
        Err(BadInput(message)) => {
            eprintln!("edge-mtls test-function: {message}");
            ExitCode::from(2)
        }
    }
}

fn test(args: &TestFunctionArgs) -> Result<JsRun, BadInput> {
    let limits = JsLimits {
        time_us: args.time_limit_us,
        ..JsLimits::default()
    };
    let mut function = JsFunction::load(&args.function, limits)
        .map_err(|e| BadInput(e.to_string()))?
        .fingerprint_format(args.fingerprint);
    // Without --kvs, `cf.kvs()` reads an empty store.
    let store = MemoryKeyValueStore::for_serial_numbers();
    if let Some(path) = &args.kvs {
        let bytes = read_bounded(path, 256 << 20).map_err(|e| BadInput(e.to_string()))?;
        store
            .import_kvs_json(&bytes, ImportOptions::default())
            .map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    }
    function = function.with_kvs(Arc::new(store));
    if let Some(path) = &args.connection {
        let limit = u64::try_from(MAX_CONNECTION_JSON_BYTES).unwrap_or(u64::MAX);
        let bytes = read_bounded(path, limit).map_err(|e| BadInput(e.to_string()))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| BadInput(format!("{}: not UTF-8", path.display())))?;
        return Ok(function.run_json(&text));
    }
    let path = args
        .cert
        .as_ref()
        .ok_or_else(|| BadInput("no input".into()))?;
    let chain = read_certificates(path)?;
    let leaf = chain
        .first()
        .and_then(|c| ClientCertInfo::from_der(c))
        .ok_or_else(|| BadInput(format!("{}: no parsable certificate", path.display())))?;
    let connection =
        Connection::without_certificate(args.client_ip, "test-function", "test-function")
            .with_chain(Arc::new(leaf), &chain[1..]);
    Ok(function.run(&connection))
}

fn print(args: &TestFunctionArgs, run: &JsRun) {
    let decision = match (&run.error, run.decision) {
        (Some(_), _) => "error",
        (None, Some(Decision::Allow)) => "allow",
        (None, Some(Decision::Deny)) => "deny",
        (None, None) => "none (denied)",
    };
    let output = serde_json::json!({
        "decision": decision,
        "connectionLogCustomData": run.custom_data,
    });
    println!("Function:            {}", args.function.display());
    println!("Output:              {output}");
    println!(
        "Compute utilization: {} ({} µs of CPU time of {} µs)",
        run.compute_utilization(),
        run.cpu_time.as_micros(),
        run.limit.as_micros()
    );
    println!("Execution logs:");
    for line in &run.logs {
        println!("  {line}");
    }
    match &run.error {
        Some(e) => println!("Error message:       {e}"),
        None => println!("Error message:       (none)"),
    }
    let summary = match (&run.error, run.decision) {
        (Some(_), _) => "the function failed: the connection is denied (ConnectionFunctionError)",
        (None, Some(Decision::Allow)) => "the connection is allowed",
        (None, Some(Decision::Deny)) => "the connection is denied (ConnectionFunctionDenied)",
        (None, None) => "no decision: the connection is denied (ConnectionFunctionDenied)",
    };
    println!("Summary:             {summary}");
}
