//! Python as an independent oracle: `cryptography` for distinguished names,
//! `urllib.parse` for percent-encoding. One interpreter per batch, never one
//! per certificate.

use std::path::Path;
use std::process::Command;

/// Runs `python3 -c script args...` in `dir`; panics with its stderr when it
/// fails (a missing `cryptography` module included: `.ci/run` installs it).
pub fn python3(dir: &Path, script: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the python3 binary");
    assert!(
        output.status.success(),
        "python3 failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("python3 prints UTF-8")
}
