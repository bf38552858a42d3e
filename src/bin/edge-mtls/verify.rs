//! `edge-mtls verify`: the "why is my certificate refused?" command.
//!
//! Runs the library's own validator (the code a handshake runs) and prints
//! the path it built, every check of every certificate with pass or fail and
//! the reason, the structure rules the other profile would refuse, and, with
//! `--crl`, the revocation answer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use edge_mtls::internal::read_bounded;
use edge_mtls::internal::{iso8601, parse_rfc3339};
use edge_mtls::{ChainReport, CheckOutcome};
use edge_mtls::{ChainValidator, KeyPurpose, Profile, TrustStore, TrustStoreHandle};
use edge_mtls::{CrlError, CrlSource};
use edge_mtls::{ImmediateCheck, RevocationChain, RevocationChecker};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

/// Larger inputs are refused before they are read in full.
const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// Arguments of `edge-mtls verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Trusted CA certificates: a PEM or DER bundle, or a directory of them
    /// (repeatable). Every certificate in it is a trust anchor.
    #[arg(long = "ca", value_name = "BUNDLE", required = true)]
    ca: Vec<PathBuf>,
    /// More intermediates, as a client would send them (repeatable).
    #[arg(long, value_name = "FILE")]
    intermediates: Vec<PathBuf>,
    /// CRLs to check the verified path against, PEM or DER (repeatable).
    #[arg(long, value_name = "FILE")]
    crl: Vec<PathBuf>,
    /// Validation profile: `interop` (default) or `strict`.
    #[arg(long, value_name = "PROFILE", default_value = "interop", value_parser = parse_profile)]
    profile: Profile,
    /// Validation time: RFC 3339 UTC (`2026-01-01T00:00:00Z`) or Unix
    /// seconds (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    at: Option<u64>,
    /// The purpose the leaf must allow: client_auth (default), server_auth,
    /// any, or a dotted OID.
    #[arg(long, value_name = "PURPOSE", default_value = "client_auth", value_parser = parse_purpose)]
    eku: Purpose,
    /// Longest path, leaf and anchor included.
    #[arg(long, value_name = "N", default_value_t = 4)]
    max_chain_depth: usize,
    /// Do not enforce validity dates (CloudFront's ignoreCertificateExpiry).
    #[arg(long)]
    ignore_expiration: bool,
    /// Refuse X.509 v1 leaves.
    #[arg(long)]
    require_v3: bool,
    /// The client certificate: PEM (leaf first, then any intermediates, as
    /// `curl --cert` reads it) or DER.
    #[arg(value_name = "CLIENT_CERT")]
    client: PathBuf,
}

fn parse_profile(text: &str) -> Result<Profile, String> {
    text.parse().map_err(|e| format!("{e}"))
}

fn parse_time(text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .ok()
        .or_else(|| parse_rfc3339(text))
        .ok_or_else(|| format!("`{text}` is neither RFC 3339 UTC nor Unix seconds"))
}

/// The `--eku` value: a purpose, or none for `any`.
#[derive(Clone)]
struct Purpose(Option<KeyPurpose>);

fn parse_purpose(text: &str) -> Result<Purpose, String> {
    KeyPurpose::parse_setting(text)
        .map(Purpose)
        .ok_or_else(|| format!("`{text}` is not client_auth, server_auth, any or a dotted OID"))
}

/// What stops the command before a verdict: bad input (exit 2).
pub(crate) struct BadInput(pub(crate) String);

/// Runs the command; prints to stdout, bad input to stderr.
pub fn run(args: &VerifyArgs) -> ExitCode {
    match verify(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(BadInput(message)) => {
            eprintln!("edge-mtls verify: {message}");
            ExitCode::from(2)
        }
    }
}

/// The crypto provider the build selects (aws-lc-rs, else ring, else a
/// process default).
fn provider() -> Result<Arc<rustls::crypto::CryptoProvider>, BadInput> {
    #[cfg(feature = "aws-lc-rs")]
    return Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return Ok(Arc::new(rustls::crypto::ring::default_provider()));
    #[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .ok_or_else(|| {
            BadInput("built without a crypto provider (the aws-lc-rs or ring feature)".into())
        })
}

fn verify(args: &VerifyArgs) -> Result<bool, BadInput> {
    let provider = provider()?;
    let store = load_store(&args.ca)?;
    let mut chain = read_certificates(&args.client)?;
    if chain.is_empty() {
        return Err(BadInput(format!(
            "{}: no certificate found",
            args.client.display()
        )));
    }
    let leaf = chain.remove(0);
    for file in &args.intermediates {
        chain.extend(read_certificates(file)?);
    }
    let now_secs = match args.at {
        Some(secs) => secs,
        None => UnixTime::now().as_secs(),
    };
    let now = UnixTime::since_unix_epoch(Duration::from_secs(now_secs));

    println!(
        "trust store: {} certificate(s) from {}",
        store.len(),
        list(&args.ca)
    );
    for warning in store.warnings() {
        println!("  warning: {warning}");
    }
    let anchors: Vec<Vec<u8>> = store.anchors().iter().map(|a| a.der().to_vec()).collect();
    let validator = ChainValidator::builder(TrustStoreHandle::new(store), provider.clone())
        .profile(args.profile)
        .required_eku(args.eku.0.clone())
        .max_chain_depth(args.max_chain_depth)
        .ignore_expiration(args.ignore_expiration)
        .require_v3(args.require_v3)
        .cache_capacity(0)
        .signature_cache_capacity(0)
        .build()
        .map_err(|e| BadInput(format!("--max-chain-depth: {e}")))?;
    println!(
        "validation: profile {}, at {}, {} intermediate(s) presented",
        args.profile,
        iso8601(now_secs),
        chain.len()
    );

    let refs: Vec<&[u8]> = chain.iter().map(|c| c.as_ref()).collect();
    let report = validator.audit(leaf.as_ref(), &refs, now);
    print_report(&report, args.profile);

    let verdict = match &report.verdict {
        Ok(verified) if !args.crl.is_empty() => {
            let issuers: Vec<&[u8]> = anchors
                .iter()
                .map(Vec::as_slice)
                .chain(refs.iter().copied())
                .collect();
            check_crls(args, &provider, &issuers, verified, now)?
        }
        Ok(_) => Ok(()),
        Err(e) => Err(format!("Failed:{}: {e}", e.reason_code())),
    };
    match verdict {
        Ok(()) => {
            println!("result: accepted");
            Ok(true)
        }
        Err(why) => {
            println!("result: refused ({why})");
            Ok(false)
        }
    }
}

fn print_report(report: &ChainReport, profile: Profile) {
    let other = match profile {
        Profile::Interop => "strict",
        Profile::Strict => "interop",
    };
    if report.certificates.is_empty() {
        println!("path: the leaf certificate cannot be parsed");
    } else if report.reaches_anchor {
        println!("path (leaf first, ends at a trust anchor):");
    } else {
        println!("path (leaf first, no trust anchor reached):");
    }
    for cert in &report.certificates {
        println!("  {}: {}", cert.position, cert.subject);
        println!(
            "    issuer {}, serial {}, valid {} .. {}",
            cert.issuer,
            cert.serial,
            iso8601(cert.not_before),
            iso8601(cert.not_after)
        );
        for outcome in &cert.checks {
            print_outcome(outcome);
        }
        for rule in &cert.unenforced_rules {
            println!("    note  {rule}: accepted by this profile, refused by {other}");
        }
    }
    if !report.certificates.is_empty() {
        println!("  whole path:");
        for outcome in &report.path_checks {
            print_outcome(outcome);
        }
    }
}

fn print_outcome(outcome: &CheckOutcome) {
    match &outcome.result {
        Ok(()) => println!("    pass  {}", outcome.check),
        Err(e) => println!("    FAIL  {}: {e}", outcome.check),
    }
}

/// Revocation of the verified path by the given CRLs, hard-fail.
fn check_crls(
    args: &VerifyArgs,
    provider: &Arc<rustls::crypto::CryptoProvider>,
    issuers: &[&[u8]],
    verified: &edge_mtls::VerifiedChain,
    now: UnixTime,
) -> Result<Result<(), String>, BadInput> {
    let source = CrlSource::builder(provider).profile(args.profile).build();
    println!("revocation:");
    for file in &args.crl {
        match source.add_file(file, issuers) {
            Ok(info) => println!(
                "  CRL {}: issuer {}, {} entr(ies), next update {}",
                file.display(),
                info.issuer,
                info.entries,
                info.next_update.map_or_else(|| "none".into(), iso8601)
            ),
            Err(CrlError::IssuerNotFound { issuer }) => println!(
                "  CRL {}: issued by {issuer}, which is not in the path or the trust store; not used",
                file.display()
            ),
            Err(e @ CrlError::ProfileViolation { .. }) => {
                return Ok(Err(format!("CRL {}: {e}", file.display())))
            }
            Err(e) => return Err(BadInput(format!("{}: {e}", file.display()))),
        }
    }
    let checker = RevocationChecker::builder()
        .source(Arc::new(source))
        .build()
        .map_err(|e| BadInput(e.to_string()))?;
    let chain = RevocationChain::from_verified(verified);
    Ok(match checker.check_now(&chain, now) {
        ImmediateCheck::Allowed(status) => {
            println!("    pass  revocation: {}", status.to_json());
            Ok(())
        }
        ImmediateCheck::Denied(e) => {
            println!("    FAIL  revocation: {e}");
            Err(format!("Failed:{}: {e}", e.reason_code()))
        }
        _ => {
            println!("    FAIL  revocation: not determined by the CRLs given");
            Err("revocation status not determined".into())
        }
    })
}

fn load_store(paths: &[PathBuf]) -> Result<TrustStore, BadInput> {
    let mut builder = TrustStore::builder();
    for path in paths {
        builder = if path.is_dir() {
            builder.add_directory(path.clone())
        } else {
            builder.add_bundle(path.display().to_string(), &read_file(path)?)
        };
    }
    builder
        .build()
        .map_err(|e| BadInput(format!("trust store: {e}")))
}

/// Every certificate of a PEM file (in order), or the one of a DER file.
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, BadInput> {
    let bytes = read_file(path)?;
    // PEM may follow a text dump (easy-rsa and `openssl ca` write one).
    if !bytes.windows(10).any(|w| w == b"-----BEGIN") {
        return Ok(vec![CertificateDer::from(bytes)]);
    }
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BadInput(format!("{}: not PEM certificates: {e}", path.display())))
}

fn read_file(path: &Path) -> Result<Vec<u8>, BadInput> {
    read_bounded(path, MAX_INPUT_BYTES).map_err(|e| BadInput(e.to_string()))
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
