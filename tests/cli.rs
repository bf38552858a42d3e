//! `edge-mtls verify` (feature `cli`) on a PKI made by easy-rsa: the path,
//! every check with pass/fail and the reason, and the exit codes an operator
//! scripts against (0 accepted, 1 refused, 2 bad input).

#![cfg(feature = "cli")]

mod common;

use std::path::Path;
use std::process::Command;

use common::pki_tools::EasyRsa;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn verify(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_edge-mtls"))
        .arg("verify")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run edge-mtls");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// An easy-rsa PKI (its CA's basicConstraints is not critical, and its AKI
/// names the issuer) with clients `alice` and `mallory`; mallory revoked in
/// `pki/crl.pem` (its certificate kept as `mallory.crt`).
fn easy_rsa_pki() -> EasyRsa {
    let easyrsa = EasyRsa::new();
    easyrsa.run("pki", &[], &["init-pki"]);
    easyrsa.run(
        "pki",
        &[("EASYRSA_REQ_CN", "Acme VPN CA")],
        &["build-ca", "nopass"],
    );
    easyrsa.run("pki", &[], &["build-client-full", "alice", "nopass"]);
    easyrsa.run("pki", &[], &["build-client-full", "mallory", "nopass"]);
    // `revoke` moves the certificate out of issued/.
    std::fs::copy(
        easyrsa.pki("pki").join("issued/mallory.crt"),
        easyrsa.dir.join("mallory.crt"),
    )
    .expect("keep mallory.crt");
    easyrsa.run("pki", &[], &["revoke", "mallory"]);
    easyrsa.run("pki", &[], &["gen-crl"]);
    easyrsa
}

#[test]
fn verify_explains_acceptance_refusal_and_bad_input() {
    let pki = easy_rsa_pki();
    let dir = pki.dir.path();
    let ca = "pki/ca.crt";

    // Accepted under the default profile: the path, every check passed, and
    // the structure rules only the strict profile would refuse.
    let ok = verify(dir, &["--ca", ca, "pki/issued/alice.crt"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    for line in [
        "path (leaf first, ends at a trust anchor):",
        "  leaf certificate: CN=alice",
        "  trust anchor #0: CN=Acme VPN CA",
        "    pass  signature",
        "    pass  validity",
        "    pass  is a CA",
        "    note  basicConstraints not critical in a CA certificate (RFC 5280 §4.2.1.9): accepted by this profile, refused by strict",
        "result: accepted",
    ] {
        assert!(ok.stdout.contains(line), "missing {line:?} in:\n{}", ok.stdout);
    }
    assert!(!ok.stdout.contains("FAIL"), "{}", ok.stdout);

    // The same chain under the strict profile: refused, naming the rule.
    let strict = verify(
        dir,
        &["--ca", ca, "--profile", "strict", "pki/issued/alice.crt"],
    );
    assert_eq!(strict.code, 1, "{}", strict.stdout);
    assert!(
        strict.stdout.contains("    FAIL  structure rules: trust anchor #0: basicConstraints not critical in a CA certificate (RFC 5280 §4.2.1.9)"),
        "{}",
        strict.stdout
    );
    assert!(
        strict
            .stdout
            .contains("result: refused (Failed:ClientCertInvalid: trust anchor #0: "),
        "{}",
        strict.stdout
    );

    // Expired at a later time: the failed check names both dates.
    let later = verify(
        dir,
        &[
            "--ca",
            ca,
            "--at",
            "2090-01-01T00:00:00Z",
            "pki/issued/alice.crt",
        ],
    );
    assert_eq!(later.code, 1, "{}", later.stdout);
    assert!(
        later
            .stdout
            .contains("    FAIL  validity: leaf certificate: expired at "),
        "{}",
        later.stdout
    );
    assert!(
        later.stdout.contains("(now 2090-01-01T00:00:00Z)"),
        "{}",
        later.stdout
    );
    assert!(
        later
            .stdout
            .contains("result: refused (Failed:ClientCertExpired: "),
        "{}",
        later.stdout
    );

    // easy-rsa's own CRL: mallory is revoked, alice is not.
    let revoked = verify(dir, &["--ca", ca, "--crl", "pki/crl.pem", "mallory.crt"]);
    assert_eq!(revoked.code, 1, "{}", revoked.stdout);
    assert!(
        revoked.stdout.contains("    FAIL  revocation: "),
        "{}",
        revoked.stdout
    );
    assert!(
        revoked
            .stdout
            .contains("result: refused (Failed:ClientCertRevoked: "),
        "{}",
        revoked.stdout
    );
    let good = verify(
        dir,
        &["--ca", ca, "--crl", "pki/crl.pem", "pki/issued/alice.crt"],
    );
    assert_eq!(good.code, 0, "{}", good.stdout);
    assert!(
        good.stdout.contains("    pass  revocation: "),
        "{}",
        good.stdout
    );

    // An untrusted client: no anchor reached, the issuer named unknown.
    let other = EasyRsa::new();
    other.run("pki", &[], &["init-pki"]);
    other.run(
        "pki",
        &[("EASYRSA_REQ_CN", "Other CA")],
        &["build-ca", "nopass"],
    );
    other.run("pki", &[], &["build-client-full", "eve", "nopass"]);
    let eve = other.pki("pki").join("issued/eve.crt");
    let untrusted = verify(dir, &["--ca", ca, eve.to_str().unwrap()]);
    assert_eq!(untrusted.code, 1, "{}", untrusted.stdout);
    assert!(
        untrusted
            .stdout
            .contains("path (leaf first, no trust anchor reached):"),
        "{}",
        untrusted.stdout
    );
    assert!(
        untrusted
            .stdout
            .contains("result: refused (Failed:ClientCertUntrusted: "),
        "{}",
        untrusted.stdout
    );

    // Bad input: exit 2 with one line naming the file or the setting.
    std::fs::write(
        dir.join("garbage.pem"),
        "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    for (args, needle) in [
        (
            vec!["--ca", "missing.pem", "pki/issued/alice.crt"],
            "missing.pem",
        ),
        (vec!["--ca", ca, "garbage.pem"], "garbage.pem"),
        (
            vec!["--ca", ca, "--at", "yesterday", "pki/issued/alice.crt"],
            "yesterday",
        ),
        (
            vec!["--ca", ca, "--profile", "lenient", "pki/issued/alice.crt"],
            "lenient",
        ),
        (
            vec!["--ca", "pki/issued/alice.crt", "pki/issued/alice.crt"],
            "not a CA certificate",
        ),
    ] {
        let run = verify(dir, &args);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
    }
}

/// `edge-mtls test-function` on seed 000's function and the sample
/// connection: allowed (0), denied with the serial in the KVS (1), a
/// function that never ends (2), an oversized connection object (2).
#[cfg(feature = "js")]
#[test]
fn test_function_prints_cloudfronts_test_output_and_exits_by_decision() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/functions");
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_edge-mtls"))
            .current_dir(&dir)
            .arg("test-function")
            .args(args)
            .output()
            .expect("run edge-mtls");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let base = [
        "--function",
        "kvs-revocation.js",
        "--connection",
        "sample-connection.json",
    ];
    let (code, out) = run(&base);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(r#""decision":"allow""#), "{out}");
    assert!(
        out.contains("Valid certificate: 00a7309e737b3e63bdb7c07ebfd5c986"),
        "{out}"
    );
    assert!(out.contains("Compute utilization: "), "{out}");
    let mut with_kvs = base.to_vec();
    with_kvs.extend(["--kvs", "revoked-serials.json"]);
    let (code, out) = run(&with_kvs);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("Denying connection for revoked certificate"),
        "{out}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let looping = tmp.path().join("loop.js");
    std::fs::write(&looping, "function connectionHandler(c) { for (;;) {} }").unwrap();
    let (code, out) = run(&[
        "--function",
        looping.to_str().unwrap(),
        "--connection",
        "sample-connection.json",
    ]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("interrupted after"), "{out}");
    let big = tmp.path().join("big.json");
    std::fs::write(&big, format!("{{\"pad\":\"{}\"}}", "x".repeat(41_000))).unwrap();
    let (code, _) = run(&[
        "--function",
        "kvs-revocation.js",
        "--connection",
        big.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2));
}
