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
//! Exit codes: 0 accepted/allowed, 1 refused/denied, 2 bad input or error.

#![forbid(unsafe_code)]

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
        #[cfg(feature = "js")]
        Command::TestFunction(args) => test_function::run(&args),
    }
}
