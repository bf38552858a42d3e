//! Rotating Parquet connection logs of a real server process (the
//! quickstart example) that is killed with SIGKILL, and that runs out of
//! disk space: the files a reader can see are always whole, a crash loses at
//! most the open row group, and a full disk costs records (counted,
//! reported once), never service.

#![cfg(all(feature = "axum", feature = "parquet", target_os = "linux"))]

mod common;
#[path = "common/quickstart.rs"]
mod quickstart;
#[path = "log_files_support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::e2e::demo_pki;
use quickstart::build_quickstart;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use support::{file_name, files_under, read_parquet_dir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A running quickstart and what it printed on stderr so far.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `command` (the quickstart, possibly behind a wrapper) and
    /// waits for its banner.
    fn start(mut command: Command) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the quickstart");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        let text = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                let mut text = text.lock().expect("stderr lock");
                text.push_str(&line);
                text.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seen = stderr.lock().expect("stderr lock").clone();
            if let Some(addr) = seen
                .lines()
                .find_map(|l| l.split("on https://").nth(1))
                .and_then(|rest| rest.split(' ').next())
                .and_then(|addr| addr.parse().ok())
            {
                return Server {
                    child,
                    addr,
                    stderr,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the quickstart exited ({status}):\n{seen}");
            }
            assert!(Instant::now() < deadline, "no banner:\n{seen}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// SIGTERM, then waits for the exit; returns the exit code and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "SIGTERM did not stop the server");
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread drains the pipe after the exit.
        std::thread::sleep(Duration::from_millis(100));
        (status.code(), self.stderr())
    }
}

/// The quickstart's arguments for rotating Parquet logs in `logs`.
fn quickstart_args(pki: &Path, logs: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--pki-dir",
        pki.to_str().expect("UTF-8 path"),
        "--addr",
        "127.0.0.1:0",
        "--log-dir",
        logs.to_str().expect("UTF-8 path"),
        "--log-format",
        "parquet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// TLS clients of the demo PKI: one with `my_client`'s certificate, one
/// without a certificate.
fn demo_clients(pki: &Path) -> (Arc<ClientConfig>, Arc<ClientConfig>) {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.join("root_ca.pem")).expect("root CA"))
        .expect("add the root");
    let builder = || {
        ClientConfig::builder_with_provider(common::provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots.clone())
    };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(pki.join("my_client.pem"))
            .expect("client chain")
            .collect::<Result<_, _>>()
            .expect("client chain");
    let key = PrivateKeyDer::from_pem_file(pki.join("my_client.key")).expect("client key");
    let valid = builder()
        .with_client_auth_cert(chain, key)
        .expect("client identity");
    (Arc::new(valid), Arc::new(builder().with_no_client_auth()))
}

/// One HTTPS request; whether the server answered 200.
async fn request(addr: SocketAddr, config: Arc<ClientConfig>) -> bool {
    let attempt = async {
        let tcp = TcpStream::connect(addr).await.ok()?;
        let name = ServerName::try_from("localhost").expect("server name");
        let mut tls = TlsConnector::from(config).connect(name, tcp).await.ok()?;
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut reply = Vec::new();
        // A refusal shows on the first read (TLS 1.3); an answer may end
        // without close_notify: what arrived decides.
        let _ = tls.read_to_end(&mut reply).await;
        Some(reply.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(20), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// `attempts` requests, 8 at a time; every fourth presents the valid
/// certificate (and must be served), the others none (and must be
/// refused). Returns how many were served.
fn drive(addr: SocketAddr, pki: &Path, attempts: usize) -> usize {
    let (valid, none) = demo_clients(pki);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let next = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let (next, served) = (next.clone(), served.clone());
                let (valid, none) = (valid.clone(), none.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= attempts {
                            return;
                        }
                        let with_certificate = i % 4 == 0;
                        let config = if with_certificate {
                            valid.clone()
                        } else {
                            none.clone()
                        };
                        let ok = request(addr, config).await;
                        assert_eq!(ok, with_certificate, "attempt {i}");
                        if ok {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.expect("client worker");
        }
        served.load(Ordering::Relaxed)
    })
}

fn pki_dir(tmp: &Path) -> PathBuf {
    let (pki, _) = demo_pki::ensure(&tmp.join("pki")).expect("demo PKI");
    pki.dir
}

#[test]
fn kill_9_leaves_whole_files_and_loses_at_most_the_open_row_group() {
    const ATTEMPTS: usize = 650;
    const ROW_GROUP: u64 = 100;
    let quickstart = build_quickstart();
    let _ = support::venv_python();
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = pki_dir(tmp.path());
    let logs = tmp.path().join("logs");
    let args = quickstart_args(
        &pki,
        &logs,
        &["--log-row-group-rows", "100", "--log-max-bytes", "24576"],
    );

    let mut command = Command::new(&quickstart);
    command.args(&args).current_dir(tmp.path());
    let mut server = Server::start(command);
    let served = drive(server.addr, &pki, ATTEMPTS);
    assert_eq!(served, ATTEMPTS.div_ceil(4));
    // The queue drains within 20 ms; the open row group stays in memory.
    std::thread::sleep(Duration::from_millis(500));
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("wait");

    // What a reader sees: only whole files.
    let after_kill = files_under(&logs);
    let leftovers: Vec<&String> = after_kill
        .iter()
        .filter(|f| file_name(f).starts_with('.'))
        .collect();
    let visible = read_parquet_dir(&logs, false);
    let visible_rows = visible["pyarrow_rows"].as_u64().expect("rows");
    assert_eq!(visible["duckdb_rows"], visible_rows);
    assert!(
        visible["files"].as_object().expect("files").len() >= 2,
        "several files were completed before the kill: {after_kill:?}"
    );

    // The next start completes the open file with its whole row groups.
    let mut command = Command::new(&quickstart);
    command.args(&args).current_dir(tmp.path());
    let restarted = Server::start(command);
    std::thread::sleep(Duration::from_millis(300));
    let (code, stderr) = restarted.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let after_restart = files_under(&logs);
    assert!(
        after_restart.iter().all(|f| !file_name(f).starts_with('.')),
        "left after the restart: {after_restart:?}"
    );
    let read = read_parquet_dir(&logs, false);
    let rows = read["pyarrow_rows"].as_u64().expect("rows");
    assert_eq!(read["duckdb_rows"], rows);
    assert_eq!(read["distinct_ids"], rows);
    let attempts = ATTEMPTS as u64;
    assert!(rows <= attempts, "{rows} rows for {attempts} attempts");
    assert!(
        attempts - rows < ROW_GROUP,
        "the crash lost {} records, more than the open row group ({ROW_GROUP}): {read}",
        attempts - rows
    );
    if !leftovers.is_empty() {
        assert!(
            stderr.contains("completed 1 file(s)") || rows == visible_rows,
            "{stderr}"
        );
    }
    eprintln!(
        "kill -9 after {attempts} attempts: {} whole file(s) with {visible_rows} rows visible, \
         leftovers {leftovers:?}; after the restart {} file(s) with {rows} rows: {} lost \
         (the open row group)",
        visible["files"].as_object().map_or(0, |f| f.len()),
        read["files"].as_object().map_or(0, |f| f.len()),
        attempts - rows
    );
}

#[test]
fn a_full_disk_costs_records_never_service() {
    const ATTEMPTS: usize = 1_500;
    let quickstart = build_quickstart();
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = pki_dir(tmp.path());
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).expect("log dir");
    let args = quickstart_args(&pki, &logs, &["--log-row-group-rows", "100"]);

    // A 64 KiB tmpfs over the log directory, in a mount namespace of the
    // server's own (as root; otherwise in a user namespace mapping root).
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut command = Command::new("unshare");
    if !root {
        command.arg("--map-root-user");
    }
    command
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg("mount -t tmpfs -o size=64k tmpfs \"$0\" && exec \"$@\"")
        .arg(&logs)
        .arg(&quickstart)
        .args(&args)
        .current_dir(tmp.path());
    let server = Server::start(command);
    let served = drive(server.addr, &pki, ATTEMPTS);
    // Serving went on: every valid client was served, every other refused.
    assert_eq!(served, ATTEMPTS.div_ceil(4));
    let (code, stderr) = server.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.matches("connection log: cannot write").count(),
        1,
        "reported once:\n{stderr}"
    );
    assert!(
        stderr.contains("No space left on device"),
        "the cause is named:\n{stderr}"
    );
    let summary = stderr
        .lines()
        .find(|l| l.contains(" record(s) written, "))
        .unwrap_or_else(|| panic!("no summary:\n{stderr}"));
    let numbers: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let [written, dropped, unwritten] = numbers[..] else {
        panic!("{summary}");
    };
    assert_eq!(written + dropped + unwritten, ATTEMPTS as u64, "{summary}");
    assert!(written > 0 && unwritten > 0, "{summary}");
    eprintln!("64 KiB tmpfs, {ATTEMPTS} attempts, all served or refused as due: {summary}");
}
