//! The quickstart example as a real process for tests: examples have no
//! `CARGO_BIN_EXE_`, and `cargo test --test X` does not build them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the quickstart example with this test's features (examples have
/// no `CARGO_BIN_EXE_`) and returns the executable cargo reports.
pub fn build_quickstart() -> PathBuf {
    build_example("quickstart")
}

/// Builds the example `name` with this test's features and returns the
/// executable cargo reports.
pub fn build_example(name: &str) -> PathBuf {
    let features: Vec<&str> = [
        ("aws-lc-rs", cfg!(feature = "aws-lc-rs")),
        ("ring", cfg!(feature = "ring")),
        ("acceptor", cfg!(feature = "acceptor")),
        ("metrics", cfg!(feature = "metrics")),
        ("tower", cfg!(feature = "tower")),
        ("axum", cfg!(feature = "axum")),
        ("cli", cfg!(feature = "cli")),
        ("actix", cfg!(feature = "actix")),
        ("ocsp-http", cfg!(feature = "ocsp-http")),
        ("parquet", cfg!(feature = "parquet")),
        ("redis", cfg!(feature = "redis")),
        ("watch", cfg!(feature = "watch")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let output = Command::new(cargo)
        .args(["build", "--example", name, "--message-format=json"])
        .args(["--no-default-features", "--features", &features.join(",")])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run cargo build --example {name}: {e}"));
    assert!(
        output.status.success(),
        "cargo build --example {name} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no {name} executable"))
}
