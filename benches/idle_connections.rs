//! Resident memory per idle mTLS connection, in the serving process.
//!
//! For each server, a child process (this bench binary run again with
//! `IDLE_CONNECTIONS_ROLE` set) serves on 127.0.0.1; this process, the
//! client, opens `IDLE_CONNECTIONS` (default 3,000) connections to it, each
//! with its own client certificate, sends one keep-alive HTTP/1.1 request on
//! each, reads the answer and keeps the connection open and idle. The figure
//! is the growth of the server process's resident memory (`VmRSS` in
//! `/proc/<pid>/status`) from before the connections were opened (after a
//! warm-up of 4,400 connections, each opened, used and closed, at most 32
//! open at a time, which fills the
//! edge's verified-chain cache) to when they are all idle, divided by the
//! number of connections. The client's own memory
//! is never counted: it is another process.
//!
//! The servers:
//!
//! - `bare`: the floor, a bare tokio-rustls server (rustls'
//!   `WebPkiClientVerifier`) serving hyper's HTTP/1.1 (`http1::Builder`
//!   defaults, tokio timer) on every connection;
//! - `edge`: the full pipeline, `edge_mtls::axum::serve` with an axum router
//!   whose handler takes the `ClientCert` extractor: chain validation, a deny
//!   list, a connection policy, the default CloudFront headers, one JSON
//!   connection-log record per connection (a `QueueSink`), hyper's buffers
//!   released while a connection is idle (`release_idle_buffers`, the
//!   default; `IDLE_CONNECTIONS_RELEASE=0` turns it off).
//!
//! Both run a multi-threaded tokio runtime with one worker per core (as
//! `#[tokio::main]` does), TLS 1.3, no session resumption. Three runs, the
//! servers interleaved (bare, edge, bare, edge, …), each in a fresh process;
//! the bench prints every run and the median per server.
//!
//! `IDLE_CONNECTIONS=N` changes the number of connections,
//! `IDLE_CONNECTIONS_RUNS` the number of runs, `IDLE_CONNECTIONS_WARM_UP`
//! the warm-up connections, `IDLE_CONNECTIONS_SERVERS`
//! which servers run (`bare,edge`), and `IDLE_CONNECTIONS_SERVER_PREFIX` a
//! command the servers run under (a profiler: `heaptrack -o /tmp/edge`; the
//! memory figures then include the profiler's).
//!
//! The allocator is the system one (glibc malloc on Linux), whose per-thread
//! arenas are part of what is measured; `MALLOC_ARENA_MAX=1` in the
//! environment (inherited by the server processes) shows the figure with one
//! arena. The library does not choose an allocator.
//!
//! Run with `cargo bench --bench idle_connections` (about two minutes).

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::Issuer;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::ClientConfig;
use support::{bench_client, ca_params, localhost_server, p256, SignatureOnly};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The child's role (`bare` or `edge`) and where its PKI files are.
const ROLE: &str = "IDLE_CONNECTIONS_ROLE";
const PKI_DIR: &str = "IDLE_CONNECTIONS_PKI";
/// Connections held idle per run.
const DEFAULT_CONNECTIONS: usize = 3_000;
/// Connections opened, used and closed before the baseline reading, each
/// with its own certificate: more than the verified-chain cache holds (4,096
/// by default), so the cache is full before the measured connections
/// arrive. A cache that fills up is a fixed cost, not a per-connection one:
/// at a million connections it still holds 4,096 chains.
const WARM_UP: usize = 4_400;
/// Handshakes in flight while opening.
const CONCURRENCY: usize = 32;
/// Runs per server.
const RUNS: usize = 3;
/// DNS SANs of the clients end with this; the edge's policy allows it.
const CLIENT_DOMAIN: &str = "clients.idle.example";

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    match std::env::var(ROLE).as_deref() {
        Ok("bare") => server::run(false),
        Ok("edge") => server::run(true),
        Ok(other) => panic!("unknown {ROLE} `{other}`"),
        Err(_) => client::run(),
    }
}

/// The serving process.
mod server {
    use super::*;
    use edge_mtls::{LogFormat, Matcher, MtlsConfig, NamePattern, QueueSink, Rule, TrustStore};
    use edge_mtls::{TrustStoreHandle, ValidationMode};
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
    use rustls::{RootCertStore, ServerConfig};
    use tokio::net::TcpListener;

    pub fn run(edge: bool) {
        let dir = PathBuf::from(std::env::var_os(PKI_DIR).expect("PKI directory"));
        // The measuring process closes stdin when it is done: exit then,
        // with every connection still open (a profiler sees them as the
        // memory still allocated at exit).
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(0);
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let port = listener.local_addr().expect("address").port();
            if edge {
                let edge = edge_server(&dir);
                println!("listening {port}");
                let app = axum::Router::new().route(
                    "/",
                    axum::routing::get(|edge_mtls::axum::ClientCert(cert)| async move {
                        if cert.subject.is_empty() {
                            "no subject"
                        } else {
                            "ok"
                        }
                    }),
                );
                edge_mtls::axum::serve(listener, edge, app)
                    .await
                    .expect("serve");
            } else {
                let acceptor = bare_acceptor(&dir);
                println!("listening {port}");
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let _ = tcp.set_nodelay(true);
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(|_request| async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from_static(b"ok"),
                            )))
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            }
        });
    }

    fn read(dir: &Path, name: &str) -> Vec<u8> {
        std::fs::read(dir.join(name)).expect("PKI file")
    }

    fn server_identity(dir: &Path) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let chain = vec![CertificateDer::from(read(dir, "server.der"))];
        let key = PrivateKeyDer::Pkcs8(read(dir, "server.key.der").into());
        (chain, key)
    }

    fn bare_acceptor(dir: &Path) -> tokio_rustls::TlsAcceptor {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(read(dir, "root.der")))
            .expect("root");
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .expect("client verifier");
        let (chain, key) = server_identity(dir);
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .expect("server configuration");
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    fn edge_server(dir: &Path) -> edge_mtls::Edge {
        let store = TrustStore::from_pem(&read(dir, "root.pem")).expect("trust store");
        let log = Arc::new(
            QueueSink::new(std::io::sink(), LogFormat::JsonLines, 65_536).expect("log sink"),
        );
        let (chain, key) = server_identity(dir);
        let policy = Arc::new(edge_mtls::FirstMatch(vec![
            Arc::new(Rule::deny_if(Matcher::DnsSan(NamePattern::Exact(
                "revoked.idle.example".into(),
            )))),
            Arc::new(Rule::allow_if(Matcher::DnsSan(NamePattern::Suffix(
                CLIENT_DOMAIN.into(),
            )))),
        ]));
        let mut builder = MtlsConfig::builder()
            .mode(ValidationMode::Required)
            .distribution_id("EIDLE00000001")
            .server_identity(chain, key)
            .trust_store(TrustStoreHandle::new(store))
            .resumption(false)
            .deny_serials(["DEADBEEF", "7F:00:00:01"])
            .policy(policy)
            .log_sink(log);
        // `IDLE_CONNECTIONS_RELEASE=0`: hyper keeps its buffers while idle.
        builder.settings().release_idle_buffers =
            std::env::var("IDLE_CONNECTIONS_RELEASE").map_or(true, |v| v != "0");
        builder.build().expect("edge configuration")
    }
}

/// The measuring process.
mod client {
    use super::*;

    /// The bench PKI, written where the server processes read it.
    struct Pki {
        dir: tempfile::TempDir,
        clients: Vec<Arc<ClientConfig>>,
    }

    fn generate(provider: &Arc<CryptoProvider>, clients: usize) -> Pki {
        let dir = tempfile::tempdir().expect("temporary directory");
        let write = |name: &str, bytes: &[u8]| {
            std::fs::write(dir.path().join(name), bytes).expect("PKI file");
        };
        let root_key = p256();
        let root_params = ca_params("Idle Root CA");
        let root = root_params.self_signed(&root_key).expect("root");
        let root_issuer = Issuer::from_params(&root_params, &root_key);
        let inter_key = p256();
        let inter_params = ca_params("Idle Intermediate CA");
        let intermediate = inter_params
            .signed_by(&inter_key, &root_issuer)
            .expect("intermediate");
        let inter_issuer = Issuer::from_params(&inter_params, &inter_key);
        let inter_der = intermediate.der().clone();

        let (server, server_key) = localhost_server(&root_issuer);
        write("root.pem", root.pem().as_bytes());
        write("root.der", root.der());
        write("server.der", server.der());
        write("server.key.der", &server_key.serialize_der());

        let verifier = Arc::new(SignatureOnly {
            provider: provider.clone(),
            skip: false,
        });
        let client = |i: usize| {
            bench_client(
                i,
                CLIENT_DOMAIN,
                &inter_issuer,
                &inter_der,
                provider,
                &verifier,
            )
        };
        let clients = (0..clients).map(client).collect();
        Pki { dir, clients }
    }

    /// `IDLE_CONNECTIONS_WARM_UP`, or [`WARM_UP`].
    fn warm_up_count() -> usize {
        std::env::var("IDLE_CONNECTIONS_WARM_UP")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(WARM_UP)
    }

    /// A server process.
    struct Server {
        child: Child,
        addr: SocketAddr,
    }

    impl Server {
        fn start(role: &str, dir: &Path) -> Self {
            let exe = std::env::current_exe().expect("bench executable");
            // A profiler to run the server under (`heaptrack`, …).
            let prefix = std::env::var("IDLE_CONNECTIONS_SERVER_PREFIX").unwrap_or_default();
            let mut words = prefix.split_whitespace();
            let mut command = match words.next() {
                Some(program) => {
                    let mut c = Command::new(program);
                    c.args(words).arg(exe);
                    c
                }
                None => Command::new(exe),
            };
            let mut child = command
                .env(ROLE, role)
                .env(PKI_DIR, dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("server process");
            // A profiler may say something first.
            let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
            let port: u16 = lines
                .find_map(|line| {
                    line.expect("server output")
                        .trim()
                        .strip_prefix("listening ")
                        .and_then(|p| p.parse().ok())
                })
                .expect("the server's port");
            Self {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            }
        }

        /// The process's resident memory, KiB.
        fn rss_kib(&self) -> u64 {
            let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
                .expect("/proc/<pid>/status (Linux)");
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .expect("VmRSS")
        }

        /// The resident memory once it stopped changing (at most 2 s).
        fn settled_rss_kib(&self) -> u64 {
            let mut last = self.rss_kib();
            for _ in 0..20 {
                std::thread::sleep(Duration::from_millis(100));
                let now = self.rss_kib();
                if now == last {
                    break;
                }
                last = now;
            }
            last
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            // Closing stdin asks the server to exit; it is killed if it
            // has not within 10 s.
            drop(self.child.stdin.take());
            for _ in 0..100 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// A handshake and one keep-alive request; the connection stays open.
    async fn open(addr: SocketAddr, config: Arc<ClientConfig>) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from("localhost").expect("server name");
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .expect("handshake");
        tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .expect("request");
        let mut answer = Vec::with_capacity(512);
        let mut chunk = [0u8; 512];
        while !answer.ends_with(b"\r\n\r\nok") {
            let n = tls.read(&mut chunk).await.expect("answer");
            assert!(
                n > 0,
                "closed before the answer: {}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&chunk[..n]);
        }
        assert!(answer.starts_with(b"HTTP/1.1 200"), "not a 200 answer");
        tls
    }

    /// Opens, uses and closes one connection per configuration, at most
    /// `CONCURRENCY` open at a time.
    fn warm_up(rt: &tokio::runtime::Runtime, addr: SocketAddr, configs: &[Arc<ClientConfig>]) {
        rt.block_on(async {
            for batch in configs.chunks(CONCURRENCY) {
                let mut set = tokio::task::JoinSet::new();
                for config in batch {
                    let config = config.clone();
                    set.spawn(async move {
                        let mut tls = open(addr, config).await;
                        let _ = tls.shutdown().await;
                    });
                }
                while let Some(done) = set.join_next().await {
                    done.expect("client task");
                }
            }
        });
    }

    /// Opens one connection per configuration, `CONCURRENCY` at a time.
    fn open_all(
        rt: &tokio::runtime::Runtime,
        addr: SocketAddr,
        configs: &[Arc<ClientConfig>],
    ) -> Vec<TlsStream<TcpStream>> {
        rt.block_on(async {
            let mut open_ones = Vec::with_capacity(configs.len());
            for batch in configs.chunks(CONCURRENCY) {
                let mut set = tokio::task::JoinSet::new();
                for config in batch {
                    set.spawn(open(addr, config.clone()));
                }
                while let Some(stream) = set.join_next().await {
                    open_ones.push(stream.expect("client task"));
                }
            }
            open_ones
        })
    }

    /// One server's run: KiB per idle connection, and the baseline.
    fn measure(
        rt: &tokio::runtime::Runtime,
        role: &str,
        pki: &Pki,
        connections: usize,
    ) -> (f64, u64, u64) {
        let server = Server::start(role, pki.dir.path());
        let (warm, held) = pki.clients.split_at(warm_up_count());
        warm_up(rt, server.addr, warm);
        std::thread::sleep(Duration::from_millis(300));
        let before = server.settled_rss_kib();
        let idle = open_all(rt, server.addr, &held[..connections]);
        let after = server.settled_rss_kib();
        // The server goes first, so the connections' TIME_WAIT is its own.
        drop(server);
        drop(idle);
        let per = (after.saturating_sub(before)) as f64 / connections as f64;
        (per, before, after)
    }

    pub fn run() {
        let connections: usize = std::env::var("IDLE_CONNECTIONS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(DEFAULT_CONNECTIONS);
        let runs = std::env::var("IDLE_CONNECTIONS_RUNS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(RUNS);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let generating = Instant::now();
        let pki = generate(&provider, warm_up_count() + connections);
        eprintln!(
            "idle_connections: {} client certificates generated in {:.1?}; {connections} idle \
             connections per run, {runs} runs; MALLOC_ARENA_MAX={}",
            pki.clients.len(),
            generating.elapsed(),
            std::env::var("MALLOC_ARENA_MAX").unwrap_or_else(|_| "(unset)".into()),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        let servers = std::env::var("IDLE_CONNECTIONS_SERVERS").unwrap_or("bare,edge".into());
        let mut figures: Vec<(&str, Vec<f64>)> = ["bare", "edge"]
            .into_iter()
            .filter(|s| servers.split(',').any(|w| w.trim() == *s))
            .map(|s| (s, Vec::new()))
            .collect();
        for run in 1..=runs {
            for (role, values) in &mut figures {
                let (per, before, after) = measure(&rt, role, &pki, connections);
                eprintln!(
                    "idle_connections: run {run} {role:<4} {per:>6.1} KiB per idle connection \
                     (server RSS {before} KiB -> {after} KiB)"
                );
                values.push(per);
            }
        }
        for (role, mut values) in figures {
            values.sort_by(f64::total_cmp);
            let Some(median) = values.get(values.len() / 2).copied() else {
                continue;
            };
            let runs: Vec<String> = values.iter().map(|v| format!("{v:.1}")).collect();
            eprintln!(
                "idle_connections: {role:<4} median {:.1} KiB per idle connection (runs: {})",
                median,
                runs.join(", ")
            );
        }
    }
}
