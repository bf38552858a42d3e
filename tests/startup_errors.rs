//! The quickstart's startup errors, as an operator meets them: every mistake
//! below is run as a real process of the quickstart example and must exit
//! with code 2 and print exactly one line on stderr naming the option, file
//! or address at fault, never a panic and never Rust `Debug` output. The
//! lines are golden: [`CASES`] holds every one of them, so a reviewer reads
//! all the messages in one place.
//!
//! The goldens hold Linux's `errno` texts, hence the `target_os` gate.

#![cfg(all(feature = "axum", target_os = "linux"))]

mod common;

#[path = "common/quickstart.rs"]
mod quickstart;
use quickstart::build_quickstart;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::e2e::demo_pki;
use common::{openssl, openssl_pkcs8_ec_key};

/// One operator mistake: the quickstart's arguments and the line it must
/// print. `$DIR` is the test's directory (also the process's working
/// directory), `$PORT` a port the test holds a listener on. Every run gets
/// `--pki-dir $DIR/pki --addr 127.0.0.1:0` first; a case's own `--pki-dir`
/// or `--addr` comes later and wins.
struct Case {
    mistake: &'static str,
    args: &'static [&'static str],
    golden: &'static str,
}

const CASES: &[Case] = &[
    Case {
        mistake: "empty trust store",
        args: &["--ca", "$DIR/empty.pem"],
        golden: "quickstart: --ca $DIR/empty.pem: no certificate in the file",
    },
    Case {
        mistake: "trust store holding only a private key",
        args: &["--ca", "$DIR/key-only.pem"],
        golden: "quickstart: --ca $DIR/key-only.pem: block #0: unexpected PEM label `PRIVATE KEY` (expected CERTIFICATE)",
    },
    Case {
        mistake: "server key not matching the server certificate",
        args: &["--cert", "$DIR/pki/server.pem", "--key", "$DIR/other.key"],
        golden: "quickstart: --key $DIR/other.key does not match the certificate in --cert $DIR/pki/server.pem",
    },
    Case {
        mistake: "certificate given as the key",
        args: &["--cert", "$DIR/pki/server.pem", "--key", "$DIR/pki/server.pem"],
        golden: "quickstart: --key $DIR/pki/server.pem: no private key in the file",
    },
    Case {
        mistake: "RSA-1024 server key (PKCS#8)",
        args: &["--cert", "$DIR/rsa1024.pem", "--key", "$DIR/rsa1024.key"],
        golden: "quickstart: --key $DIR/rsa1024.key: RSA key of 1024 bits (allowed: 2048 to 8192)",
    },
    Case {
        mistake: "RSA-1024 server key (PKCS#1)",
        args: &["--cert", "$DIR/rsa1024.pem", "--key", "$DIR/rsa1024-pkcs1.key"],
        golden: "quickstart: --key $DIR/rsa1024-pkcs1.key: RSA key of 1024 bits (allowed: 2048 to 8192)",
    },
    Case {
        mistake: "address already in use",
        args: &["--addr", "127.0.0.1:$PORT"],
        golden: "quickstart: --addr 127.0.0.1:$PORT: Address already in use (os error 98)",
    },
    Case {
        mistake: "--pki-dir naming a regular file",
        args: &["--pki-dir", "$DIR/not-a-dir"],
        golden: "quickstart: --pki-dir $DIR/not-a-dir: not a directory",
    },
    Case {
        mistake: "truncated CA certificate",
        args: &["--ca", "$DIR/truncated.pem"],
        golden: "quickstart: --ca $DIR/truncated.pem: block #0: not a valid certificate (cannot decode Certificate)",
    },
    Case {
        mistake: "truncated server certificate",
        args: &["--cert", "$DIR/truncated.pem", "--key", "$DIR/pki/server.key"],
        golden: "quickstart: --cert $DIR/truncated.pem: the first certificate is not valid DER",
    },
    Case {
        mistake: "trust store on a character device",
        args: &["--ca", "/dev/zero"],
        golden: "quickstart: --ca /dev/zero: not a regular file (a character device)",
    },
    Case {
        mistake: "trust store on a directory",
        args: &["--ca", "$DIR/pki"],
        golden: "quickstart: --ca $DIR/pki: not a regular file (a directory)",
    },
    Case {
        mistake: "missing trust store",
        args: &["--ca", "$DIR/missing.pem"],
        golden: "quickstart: --ca $DIR/missing.pem: No such file or directory (os error 2)",
    },
    Case {
        mistake: "missing server key",
        args: &["--cert", "$DIR/pki/server.pem", "--key", "$DIR/missing.key"],
        golden: "quickstart: --key $DIR/missing.key: No such file or directory (os error 2)",
    },
    Case {
        mistake: "demo PKI directory missing one file",
        args: &["--pki-dir", "$DIR/broken-pki"],
        golden: "quickstart: --pki-dir $DIR/broken-pki: missing server.key; remove the directory to create a new demo PKI",
    },
];

/// How long a run may take before it counts as a server that started.
const TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn every_operator_mistake_exits_2_with_one_line_naming_the_culprit() {
    let quickstart = build_quickstart();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    make_bad_inputs(dir);
    let broken_pki_before = snapshot(&dir.join("broken-pki"));
    // Held for the whole test: the "address already in use" case binds it.
    let held = TcpListener::bind("127.0.0.1:0").expect("bind a port to hold");
    let port = held.local_addr().expect("held port").port().to_string();
    let dir_text = dir.to_str().expect("a UTF-8 temporary path");

    let mut failures = Vec::new();
    for case in CASES {
        let args: Vec<String> = ["--pki-dir", "$DIR/pki", "--addr", "127.0.0.1:0"]
            .iter()
            .chain(case.args)
            .map(|a| a.replace("$DIR", dir_text).replace("$PORT", &port))
            .collect();
        let run = run(&quickstart, dir, &args);
        let stderr = run
            .stderr
            .replace(dir_text, "$DIR")
            .replace(&format!(":{port}"), ":$PORT");
        let mut problems = Vec::new();
        if run.timed_out {
            problems.push(format!(
                "still running after {}s (it started serving)",
                TIMEOUT.as_secs()
            ));
        }
        if run.code != Some(2) {
            problems.push(format!("exit code {:?}, expected 2", run.code));
        }
        if stderr != format!("{}\n", case.golden) {
            problems.push(format!(
                "stderr is not the one golden line\n    expected: {}\n    stderr:   {}",
                case.golden,
                stderr.trim_end().replace('\n', "\n              ")
            ));
        }
        if run.stdout.lines().any(|l| l.contains("panicked")) {
            problems.push(format!("stdout holds a panic:\n{}", run.stdout));
        }
        if !run.stdout.is_empty() {
            problems.push(format!("stdout is not empty:\n{}", run.stdout));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} (quickstart {}):\n  {}",
                case.mistake,
                args.join(" "),
                problems.join("\n  ")
            ));
        }
    }
    drop(held);

    // Nothing was regenerated in the incomplete demo PKI.
    assert_eq!(
        snapshot(&dir.join("broken-pki")),
        broken_pki_before,
        "the incomplete demo PKI was changed"
    );
    assert!(
        failures.is_empty(),
        "{} of {} startup errors are wrong:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

/// Writes the demo PKI and every bad input the cases name into `dir`.
fn make_bad_inputs(dir: &Path) {
    let (pki, created) = demo_pki::ensure(&dir.join("pki")).expect("demo PKI");
    assert!(created);
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).expect(name);

    write("empty.pem", b"");
    write("not-a-dir", b"a regular file\n");
    openssl_pkcs8_ec_key(dir, "other.key");
    std::fs::copy(dir.join("other.key"), dir.join("key-only.pem")).expect("key-only.pem");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-keyout",
            "rsa1024.key",
            "-out",
            "rsa1024.pem",
            "-subj",
            "/CN=localhost",
            "-days",
            "30",
        ],
    );
    openssl(
        dir,
        &[
            "pkey",
            "-in",
            "rsa1024.key",
            "-traditional",
            "-out",
            "rsa1024-pkcs1.key",
        ],
    );
    let pkcs1 = std::fs::read_to_string(dir.join("rsa1024-pkcs1.key")).expect("PKCS#1 key");
    assert!(
        pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "{pkcs1}"
    );

    // The root CA with its base64 body cut in half, at a 4-character
    // boundary so the base64 stays valid and the DER is what is truncated.
    let root = std::fs::read_to_string(pki.root()).expect("root CA");
    let body: String = root.lines().filter(|l| !l.starts_with("-----")).collect();
    let half = &body[..body.len() / 2 / 4 * 4];
    let lines: Vec<&str> = half
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    write(
        "truncated.pem",
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
        .as_bytes(),
    );

    // A demo PKI directory that lost one file.
    let broken = dir.join("broken-pki");
    std::fs::create_dir(&broken).expect("broken-pki");
    for entry in std::fs::read_dir(&pki.dir).expect("demo PKI") {
        let entry = entry.expect("demo PKI entry");
        if entry.file_name() != "server.key" {
            std::fs::copy(entry.path(), broken.join(entry.file_name())).expect("copy");
        }
    }
}

/// Every file of `dir` with its contents, sorted.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("dir entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read file"),
            )
        })
        .collect();
    files.sort();
    files
}

struct Run {
    code: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

/// Runs `program args` in `dir`, killing it after [`TIMEOUT`].
fn run(program: &Path, dir: &Path, args: &[String]) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the quickstart");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + TIMEOUT;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the quickstart") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait for the killed quickstart");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        timed_out,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}
