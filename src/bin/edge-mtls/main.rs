//! `edge-mtls`: the operator's command for the edge-mtls library.
//!
//! ```text
//! edge-mtls verify --ca ca.pem [--intermediates chain.pem] [--crl ca.crl]
//!                  [--profile strict] [--at 2026-01-01T00:00:00Z] client.pem
//!
//! edge-mtls test-function --function FILE.js (--connection CONN.json | --cert CLIENT.pem)
//!                         [--kvs KVS.json]        (feature `js`)
//! ```
//!
//! With feature `redis`, the fleet's deny list in Redis:
//!
//! ```text
//! edge-mtls revoke   --redis URL [--store NAME] [--issuer CA.pem] SERIAL…
//! edge-mtls unrevoke --redis URL [--store NAME] [--issuer CA.pem] SERIAL…
//! edge-mtls import   --redis URL [--store NAME] [--replace] FILE   (KVS JSON, CRL, serial list)
//! edge-mtls status   --redis URL [--store NAME] [--json]
//! ```
//!
//! With feature `js`, `edge-mtls test-function --function FILE.js (--connection CONN.json |
//! --cert CLIENT.pem) [--kvs KVS.json]`.
//!
//! Exit codes: 0 accepted/allowed (or done), 1 refused/denied, 2 bad input or failure.

#![forbid(unsafe_code)]

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "js")]
mod test_function;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Client-certificate (mTLS) tools for operators.
#[derive(Parser)]
#[command(name = "edge-mtls", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Explain why a client certificate chain is accepted or refused: the
    /// path built and every check, with the reason of each failure.
    Verify(verify::VerifyArgs),
    /// Add serials to the deny list a fleet shares through Redis.
    #[cfg(feature = "redis")]
    Revoke(redis::ChangeArgs),
    /// Remove serials from the Redis deny list.
    #[cfg(feature = "redis")]
    Unrevoke(redis::ChangeArgs),
    /// Add (or with --replace, set) the serials of a CloudFront KVS JSON
    /// file, a CRL or a serial list to the Redis deny list.
    #[cfg(feature = "redis")]
    Import(redis::ImportArgs),
    /// The Redis deny list: version, count, stream length, per-node lag.
    #[cfg(feature = "redis")]
    Status(redis::StatusArgs),
    /// Run a CloudFront connection function against a connection object
    /// (or one built from a certificate), as CloudFront's
    /// TestConnectionFunction does: exit 0 allow, 1 deny, 2 error.
    #[cfg(feature = "js")]
    TestFunction(test_function::TestFunctionArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors; bad arguments are bad input.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Verify(args) => verify::run(&args),
        #[cfg(feature = "redis")]
        Command::Revoke(args) => redis::change(&args, true),
        #[cfg(feature = "redis")]
        Command::Unrevoke(args) => redis::change(&args, false),
        #[cfg(feature = "redis")]
        Command::Import(args) => redis::import(&args),
        #[cfg(feature = "redis")]
        Command::Status(args) => redis::status(&args),
        #[cfg(feature = "js")]
        Command::TestFunction(args) => test_function::run(&args),
    }
}
