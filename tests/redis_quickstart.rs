//! Two quickstart servers (real processes, started in one directory on
//! different addresses) share the demo PKI and one Redis deny list; the
//! `edge-mtls` CLI revokes a serial and both refuse it. Propagation is
//! measured from the CLI's return to the first refusal seen by a real
//! `curl`, over 20 trials (goal: median ≤ 1 s, p95 ≤ 2 s).

#![cfg(all(feature = "redis", feature = "cli", feature = "axum"))]

mod common;
#[path = "common/quickstart.rs"]
mod quickstart;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::e2e::demo_pki::VALID_SERIAL;
use common::redis::{free_port, median_p95, RedisServer};
use quickstart::build_quickstart;

struct Quickstart(Child);

impl Drop for Quickstart {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(exe: &Path, dir: &Path, port: u16, url: &str) -> Quickstart {
    // Wrapped at once: dropping it kills and waits for the process.
    let quickstart = Quickstart(
        Command::new(exe)
            .current_dir(dir)
            .args([
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--redis",
                url,
                "--store",
                "qs",
            ])
            .stdout(std::fs::File::create(dir.join(format!("log-{port}.jsonl"))).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("err-{port}.txt"))).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .expect("start the quickstart"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let err = std::fs::read_to_string(dir.join(format!("err-{port}.txt"))).unwrap_or_default();
        if err.lines().any(|l| l.starts_with("try")) {
            assert!(err.contains("deny list: Redis store `qs`"), "{err}");
            return quickstart;
        }
        assert!(
            Instant::now() < deadline,
            "quickstart on {port} did not start: {err}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// curl as the seed runs it, from the demo PKI directory: the HTTP status
/// (`None`: the connection was refused).
async fn curl(pki: &Path, port: u16, client: &str) -> Option<u16> {
    let out = tokio::process::Command::new("curl")
        .current_dir(pki)
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(["--cacert", "root_ca.pem", "--key"])
        .arg(format!("{client}.key"))
        .arg("--cert")
        .arg(format!("{client}.pem"))
        .arg(format!("https://127.0.0.1:{port}/"))
        .output()
        .await
        .expect("curl");
    let code: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    (out.status.success() && code != 0).then_some(code)
}

fn cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_edge-mtls"))
        .args(args)
        .output()
        .expect("edge-mtls");
    assert!(
        out.status.success(),
        "edge-mtls {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `port` with curl until `refused` holds; returns when.
async fn until(pki: &Path, port: u16, refused: bool, timeout: Duration) -> Instant {
    let start = Instant::now();
    loop {
        let code = curl(pki, port, "my_client").await;
        if (code.is_none()) == refused {
            return Instant::now();
        }
        assert!(
            start.elapsed() < timeout,
            "port {port}: still {code:?} after {timeout:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serial_revoked_with_the_cli_is_refused_by_both_quickstarts() {
    let redis = RedisServer::start();
    let url = redis.url();
    let exe = build_quickstart();
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (free_port(), free_port());
    let _q1 = start(&exe, dir.path(), p1, &url);
    let _q2 = start(&exe, dir.path(), p2, &url);
    let pki = dir.path().join("demo-pki");

    // The demo's revoked certificate is in Redis; both refuse it.
    for port in [p1, p2] {
        assert_eq!(curl(&pki, port, "my_client").await, Some(200));
        assert_eq!(curl(&pki, port, "revoked_client").await, None);
    }
    let status = cli(&["status", "--redis", &url, "--store", "qs"]);
    assert!(status.contains("revoked keys:  1"), "{status}");

    let serial = format!("{VALID_SERIAL:X}");
    let (mut first, mut both) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        cli(&["revoke", "--redis", &url, "--store", "qs", &serial]);
        let returned = Instant::now();
        let timeout = Duration::from_secs(10);
        let (a, b) = tokio::join!(
            until(&pki, p1, true, timeout),
            until(&pki, p2, true, timeout)
        );
        first.push(a.min(b) - returned);
        both.push(a.max(b) - returned);
        cli(&["unrevoke", "--redis", &url, "--store", "qs", &serial]);
        tokio::join!(
            until(&pki, p1, false, timeout),
            until(&pki, p2, false, timeout)
        );
    }
    let (median, p95) = median_p95(&mut first);
    let (median_both, p95_both) = median_p95(&mut both);
    eprintln!(
        "propagation, CLI return to first refusal over 20 trials: median {median:?}, p95 {p95:?}; \
         to refusal by both: median {median_both:?}, p95 {p95_both:?}"
    );
    assert!(median <= Duration::from_secs(1), "median {median:?}");
    assert!(p95 <= Duration::from_secs(2), "p95 {p95:?}");

    // `status` reports both nodes, without lag once they caught up.
    let status = cli(&["status", "--redis", &url, "--store", "qs", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&status).expect("JSON");
    assert_eq!(json["nodes"].as_array().map(Vec::len), Some(2), "{json}");
    // The refusals are in the quickstarts' logs with the serial.
    let log = std::fs::read_to_string(dir.path().join(format!("log-{p1}.jsonl"))).unwrap();
    assert!(log.contains("\"clientLeafCertSerialNumber\":\"10:01\""));
    assert!(log.contains("Failed:ClientCertRevoked"));
}
