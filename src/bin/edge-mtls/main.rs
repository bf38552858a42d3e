//! `edge-mtls`: the operator's command for the edge-mtls library.
//!
//! ```text
//! edge-mtls verify --ca ca.pem [--intermediates chain.pem] [--crl ca.crl]
//!                  [--profile strict] [--at 2026-01-01T00:00:00Z] client.pem
//! ```
//!
//! Exit codes: 0 accepted, 1 refused, 2 bad input.

#![forbid(unsafe_code)]

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
    }
}
