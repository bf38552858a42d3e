//! Full TLS 1.3 mTLS handshakes per second on ONE server thread, side by side:
//!
//! - `bare_webpki`: a bare tokio-rustls server with rustls'
//!   `WebPkiClientVerifier` (chain verification only), the yardstick;
//! - `edge_distinct_certs`: the whole edge pipeline built through
//!   `MtlsConfig` — chain validation, deny list (stage 1 and stage 2), a
//!   connection policy, one connection-log record (JSON lines through a
//!   `QueueSink`), the default CloudFront headers — with a different client
//!   certificate on every connection, so the verified-chain cache never hits
//!   (the issuer-signature cache does, as in any deployment: every leaf comes
//!   from the one intermediate, whose signature is checked once, not per
//!   connection; the leaf's signature is checked every time);
//! - `edge_repeating_cert`: the same pipeline with one client certificate on
//!   every connection (verified-chain cache hits);
//! - `edge_distinct_js` (feature `js`): `edge_distinct_certs` with seed
//!   000's CloudFront connection function (JavaScript, `cf.kvs()` over the
//!   same deny serials) as the policy instead of the built-in Rust SAN rule;
//!   its ratio to `edge_distinct_certs` is printed too, in handshakes/s and in
//!   server CPU per handshake, to three decimals.
//!
//! PKI: P-256 root → intermediate → client leaves (clientAuth); the client
//! sends leaf + intermediate. No resumption anywhere (no session storage, no
//! tickets, client resumption off): every connection is a full handshake.
//!
//! The server is one OS thread with a `current_thread` tokio runtime and one
//! task per connection. The clients run on the bench thread (another
//! `current_thread` runtime, 32 connections in flight) and are kept cheap so
//! the server thread is the bottleneck: they accept the server certificate
//! without building its chain (bench only) but still verify its TLS 1.3
//! CertificateVerify signature, unless `THROUGHPUT_CLIENT_SKIPS_SIGNATURE=1`
//! (same server work, a client about a fifth cheaper: on two cores the
//! clients of the fastest case otherwise compete with the server thread).
//!
//! Every handshake must succeed: the client must read the server's `ok`, and
//! the server counts any connection it could not serve; either panics.
//!
//! The cases run interleaved, in rounds: each criterion sample is one
//! round, and a round is four passes over the cases, every other pass in
//! reverse order (bare, distinct, JS, repeating, then repeating, JS,
//! distinct, bare, …), each pass a quarter of every case's handshakes of
//! the round. A slower stretch of a shared machine thus weighs on every
//! case alike instead of on one, and a case compared with another runs
//! next to it (the JavaScript policy and the Redis deny list beside
//! `edge_distinct_certs`, the two revocation cases together). At the end the bench
//! prints, per case, handshakes/s over the measured rounds, how busy the
//! server thread was and its CPU time per handshake (from
//! `/proc/…/schedstat`: a run where the server was not the bottleneck shows
//! up as a low busy share) and how much CPU other processes took; then, per
//! edge case, the median ratio to the bare server over the rounds and its
//! spread (lowest–highest round), in handshakes/s and in server CPU per
//! handshake. On a shared machine the CPU time per handshake is the steadier
//! figure.
//!
//! Two more cases measure whether a handshake gets slower as revocation data
//! grows: `edge_revocation_empty` is `edge_distinct_certs` with an empty
//! deny list and an empty CRL of the intermediate (a `CrlSource` on the
//! builder), `edge_revocation_1m` the same with 1,000,000 deny-list serials
//! and a 1,000,000-entry CRL (generated with rcgen and signed by the
//! intermediate when the bench starts; no bench client is on either list).
//! The bench prints the median ratio of the second to the first over the
//! rounds. `THROUGHPUT_REVOCATION_ENTRIES` changes the 1,000,000 (0 leaves
//! both cases out).
//!
//! With `--features redis` (and `redis-server` on the PATH) a fourth case,
//! `edge_redis_deny_list`, runs the distinct-certificate pipeline with the
//! deny list in Redis (a `redis-server` the bench starts on a free port,
//! the same three serials), and the bench prints its median ratio to
//! `edge_distinct_certs` over the rounds: the handshake reads the local
//! snapshot, never Redis.
//!
//! `THROUGHPUT_ONLY=<case>,<case>…` runs those cases only (to profile
//! them; the ratios to `bare_webpki` are printed only when it runs).
//!
//! Run with `cargo bench --bench throughput` (about a minute).

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edge_mtls::{ConnectionPolicy, Edge, MtlsConfig, TrustStore, TrustStoreHandle};
use edge_mtls::{CrlSource, FailurePolicy};
use edge_mtls::{LogFormat, QueueSink};
use edge_mtls::{Matcher, NamePattern, Rule};
use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, RevocationReason, RevokedCertParams,
    SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use support::{
    bench_client, ca_params, client_skips_signature, cpu_time, handshake, localhost_server, p256,
    thread_id, SignatureOnly,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Distinct client certificates. A run does well under this many handshakes
/// per benchmark (warm-up included), so no certificate repeats and the
/// verified-chain cache (4096 entries) cannot answer.
const DISTINCT_CLIENTS: usize = 64_000;
/// Handshakes per case per round at least (criterion asks for fewer in
/// its first samples).
const MIN_ROUND_HANDSHAKES: u64 = 400;
/// Connections in flight.
const CONCURRENCY: usize = 32;
/// Passes over the cases per round (each case's handshakes of a round are
/// split evenly between them).
const SLICES: u64 = 4;
/// DNS SANs of the bench clients end with this; the policy allows it.
const CLIENT_DOMAIN: &str = "clients.bench.example";

/// Serials the deny lists hold (no bench client has them).
const DENIED: [&str; 3] = ["00:a7:30:9e:12:34", "7F:00:00:01", "DEADBEEF"];

/// Deny-list serials and CRL entries of `edge_revocation_1m`.
const REVOCATION_ENTRIES: usize = 1_000_000;

/// The revocation data of the large-revocation cases.
struct RevocationData {
    /// Deny-list serials, CloudFront's colon hex.
    serials: Vec<String>,
    /// A CRL of the intermediate, DER.
    crl: Vec<u8>,
}

/// `n` serials no bench client has (theirs are 01:00:00:00 + i): eight
/// bytes, 0x40 followed by a scrambled counter.
fn revoked_serial(i: usize) -> [u8; 8] {
    let scrambled = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 8;
    let mut serial = scrambled.to_be_bytes();
    serial[0] = 0x40;
    serial
}

/// `entries` revoked serials as a deny list and as a CRL signed by `issuer`.
fn revocation_data(issuer: &Issuer<'_, impl rcgen::SigningKey>, entries: usize) -> RevocationData {
    let serials = (0..entries)
        .map(|i| {
            revoked_serial(i)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .collect();
    // Other serials than the deny list's: a lookup misses both, as for a
    // valid client.
    let revoked_certs = (0..entries)
        .map(|i| RevokedCertParams {
            serial_number: SerialNumber::from_slice(&revoked_serial(i + entries)),
            revocation_time: rcgen::date_time_ymd(2025, 1, 1),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        })
        .collect();
    let crl = CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2025, 1, 1),
        next_update: rcgen::date_time_ymd(2045, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .expect("CRL");
    RevocationData {
        serials,
        crl: crl.der().to_vec(),
    }
}

/// A `redis-server` on a free port for the Redis case, holding [`DENIED`],
/// and the runtime its follower task runs on.
#[cfg(feature = "redis")]
struct BenchRedis {
    child: std::process::Child,
    url: String,
    rt: tokio::runtime::Runtime,
}

#[cfg(feature = "redis")]
impl BenchRedis {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let url = format!("redis://127.0.0.1:{port}");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("redis runtime");
        let keys: Vec<String> = DENIED.iter().map(|s| s.to_string()).collect();
        rt.block_on(async {
            for _ in 0..200 {
                if let Ok(mut admin) =
                    edge_mtls::RedisDenyListAdmin::connect(&url, "bench", 1_000).await
                {
                    admin.revoke(&keys).await.expect("revoke");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("redis-server did not start");
        });
        Some(Self { child, url, rt })
    }
}

#[cfg(feature = "redis")]
impl Drop for BenchRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bench PKI and one rustls client configuration per client certificate.
struct Pki {
    root_pem: String,
    root_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivatePkcs8KeyDer<'static>,
    distinct: Vec<Arc<ClientConfig>>,
    repeating: Arc<ClientConfig>,
    /// The intermediate, DER (the issuer of the bench CRLs).
    inter_der: CertificateDer<'static>,
    /// No revocation data; the CRL is the intermediate's, empty.
    revocation_empty: RevocationData,
    /// [`REVOCATION_ENTRIES`] (or `THROUGHPUT_REVOCATION_ENTRIES`) of each.
    revocation_large: Option<RevocationData>,
}

impl Pki {
    fn generate(provider: &Arc<CryptoProvider>, distinct: usize, revoked: usize) -> Self {
        let root_key = p256();
        let root_params = ca_params("Bench Root CA");
        let root = root_params.self_signed(&root_key).expect("root");
        let root_issuer = Issuer::from_params(&root_params, &root_key);

        let inter_key = p256();
        let inter_params = ca_params("Bench Intermediate CA");
        let intermediate = inter_params
            .signed_by(&inter_key, &root_issuer)
            .expect("intermediate");
        let inter_issuer = Issuer::from_params(&inter_params, &inter_key);
        let inter_der = intermediate.der().clone();

        let (server, server_key) = localhost_server(&root_issuer);

        let verifier = Arc::new(SignatureOnly {
            provider: provider.clone(),
            skip: client_skips_signature(),
        });
        // Serials 0x01_00_00_00 + i: never one of the denied serials below.
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
        // Split over two threads: generating thousands of keys takes a moment.
        let half = distinct / 2;
        let (first, second) = std::thread::scope(|s| {
            let a = s.spawn(|| (0..half).map(client).collect::<Vec<_>>());
            let b = s.spawn(|| (half..distinct).map(client).collect::<Vec<_>>());
            (a.join().expect("keygen"), b.join().expect("keygen"))
        });
        let mut configs = first;
        configs.extend(second);
        let repeating = client(distinct);
        let generating = Instant::now();
        let revocation_large = (revoked > 0).then(|| revocation_data(&inter_issuer, revoked));
        if revoked > 0 {
            eprintln!(
                "throughput: {revoked} deny-list serials and a {revoked}-entry CRL ({} MB) \
                 generated in {:.1?}",
                revocation_large.as_ref().map_or(0, |r| r.crl.len()) / 1_000_000,
                generating.elapsed()
            );
        }
        Self {
            inter_der,
            revocation_empty: revocation_data(&inter_issuer, 0),
            revocation_large,
            root_pem: root.pem(),
            root_der: root.der().clone(),
            server_chain: vec![server.der().clone()],
            server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
            distinct: configs,
            repeating,
        }
    }
}

/// What the server thread runs per connection.
#[derive(Clone)]
enum Pipeline {
    Bare(TlsAcceptor),
    Edge(Edge),
}

/// A server on its own OS thread.
struct Server {
    addr: SocketAddr,
    /// Connections the server could not serve (handshake or pipeline failure).
    failures: Arc<AtomicU64>,
    /// The server thread's id, for its CPU time.
    tid: Option<u32>,
}

impl Server {
    fn start(pipeline: Pipeline) -> Self {
        let failures = Arc::new(AtomicU64::new(0));
        let (ready, started) = mpsc::channel();
        let failed = failures.clone();
        std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("server runtime");
                rt.block_on(serve(pipeline, failed, ready));
            })
            .expect("server thread");
        let (addr, tid) = started.recv().expect("server started");
        Self {
            addr,
            failures,
            tid,
        }
    }

    /// The server thread's CPU time so far (Linux).
    fn cpu_time(&self) -> Option<Duration> {
        cpu_time(&format!("/proc/self/task/{}/schedstat", self.tid?))
    }
}

async fn serve(
    pipeline: Pipeline,
    failures: Arc<AtomicU64>,
    ready: mpsc::Sender<(SocketAddr, Option<u32>)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    // Bound to one address, so every connection's local address is this one.
    let local = listener.local_addr().expect("local address");
    ready.send((local, thread_id())).expect("bench waiting");
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                failures.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let pipeline = pipeline.clone();
        let failures = failures.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let served = match pipeline {
                Pipeline::Bare(acceptor) => match acceptor.accept(tcp).await {
                    Ok(mut tls) => reply(&mut tls).await,
                    Err(_) => false,
                },
                Pipeline::Edge(edge) => {
                    match edge.acceptor().accept(tcp, peer, Some(local)).await {
                        // The pipeline ran to the end: verified, CloudFront headers ready.
                        Ok(mut tls) => {
                            tls.info.verified
                                && tls.info.headers.len() == 7
                                && reply(&mut tls).await
                        }
                        Err(_) => false,
                    }
                }
            };
            if !served {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

async fn reply<S: AsyncWriteExt + Unpin>(tls: &mut S) -> bool {
    tls.write_all(b"ok").await.is_ok() && tls.shutdown().await.is_ok()
}

fn no_resumption(config: &mut ServerConfig) {
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
}

fn bare_server(pki: &Pki, provider: &Arc<CryptoProvider>) -> Server {
    let mut roots = RootCertStore::empty();
    roots.add(pki.root_der.clone()).expect("root");
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .expect("client verifier");
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            pki.server_chain.clone(),
            PrivateKeyDer::Pkcs8(pki.server_key.clone_key()),
        )
        .expect("server configuration");
    no_resumption(&mut config);
    Server::start(Pipeline::Bare(TlsAcceptor::from(Arc::new(config))))
}

/// The built-in Rust policy: admit the bench clients by their DNS SAN, after
/// denying one other name.
fn rust_san_policy() -> Arc<dyn ConnectionPolicy> {
    Arc::new(edge_mtls::FirstMatch(vec![
        Arc::new(Rule::deny_if(Matcher::DnsSan(NamePattern::Exact(
            "revoked.bench.example".into(),
        )))),
        Arc::new(Rule::allow_if(Matcher::DnsSan(NamePattern::Suffix(
            CLIENT_DOMAIN.into(),
        )))),
    ]))
}

/// Seed 000's connection function, `cf.kvs()` holding the deny serials.
#[cfg(feature = "js")]
fn seed_000_js_policy() -> Arc<dyn ConnectionPolicy> {
    let store = edge_mtls::MemoryKeyValueStore::for_serial_numbers();
    for serial in DENIED {
        store.put(serial, "revoked").expect("serial");
    }
    let function = edge_mtls::JsFunction::compile(
        "seed000_kvs_revocation.js",
        include_str!("../tests/fixtures/js/seed000_kvs_revocation.js"),
        edge_mtls::JsLimits::default(),
    )
    .expect("seed 000 compiles");
    Arc::new(function.with_kvs(Arc::new(store)))
}

fn edge_server(
    pki: &Pki,
    provider: &Arc<CryptoProvider>,
    redis: Option<&str>,
    policy: Arc<dyn ConnectionPolicy>,
    revocation: Option<&RevocationData>,
) -> (Server, Arc<QueueSink>) {
    let store = TrustStore::from_pem(pki.root_pem.as_bytes()).expect("trust store");
    let log =
        Arc::new(QueueSink::new(std::io::sink(), LogFormat::JsonLines, 65_536).expect("log sink"));
    let mut builder = MtlsConfig::builder()
        .crypto_provider(provider.clone())
        .distribution_id("EBENCH0000001")
        .server_identity(
            pki.server_chain.clone(),
            PrivateKeyDer::Pkcs8(pki.server_key.clone_key()),
        )
        .trust_store(TrustStoreHandle::new(store))
        .resumption(false)
        .policy(policy)
        .log_sink(log.clone());
    if let Some(data) = revocation {
        // The deny list and the CRL, instead of the three serials.
        let crls = CrlSource::builder(provider).build();
        crls.add(&data.crl, &[pki.inter_der.as_ref()])
            .expect("the bench CRL verifies");
        builder = builder
            .deny_serials(data.serials.iter().cloned())
            .revocation_source(Arc::new(crls), FailurePolicy::HardFail);
        let edge = builder.build().expect("edge configuration");
        return (Server::start(Pipeline::Edge(edge)), log);
    }
    match redis {
        // Serials no bench client has (theirs start at 01:00:00:00).
        None => builder = builder.deny_serials(DENIED),
        #[cfg(feature = "redis")]
        Some(url) => {
            builder.settings().revocation.deny_list = Some(edge_mtls::DenyListSettings {
                redis: Some(url.to_string()),
                store: "bench".into(),
                ..Default::default()
            })
        }
        #[cfg(not(feature = "redis"))]
        Some(_) => unreachable!("the Redis case needs the feature"),
    }
    let edge = builder.build().expect("edge configuration");
    (Server::start(Pipeline::Edge(edge)), log)
}

/// Which client certificate a connection presents.
enum Clients<'a> {
    /// The next unused one from the pool.
    Distinct(&'a [Arc<ClientConfig>], &'a AtomicUsize),
    /// Always the same.
    Repeating(&'a Arc<ClientConfig>),
}

impl Clients<'_> {
    fn next(&self) -> Arc<ClientConfig> {
        match self {
            Self::Distinct(pool, cursor) => {
                let i = cursor.fetch_add(1, Ordering::Relaxed);
                pool[i % pool.len()].clone()
            }
            Self::Repeating(config) => Arc::clone(config),
        }
    }
}

/// One case's part of a round.
#[derive(Clone, Copy)]
struct Batch {
    handshakes: u64,
    wall: Duration,
    /// Where the CPU time went (Linux only).
    cpu: Option<Usage>,
}

impl Batch {
    /// Two parts of one case's round, together.
    fn add(self, other: Self) -> Self {
        Self {
            handshakes: self.handshakes + other.handshakes,
            wall: self.wall + other.wall,
            cpu: self.cpu.zip(other.cpu).map(|(a, b)| Usage {
                server: a.server + b.server,
                client: a.client + b.client,
                others: a.others + b.others,
            }),
        }
    }

    fn per_second(&self) -> f64 {
        self.handshakes as f64 / self.wall.as_secs_f64()
    }

    /// The server thread's CPU time per handshake, seconds.
    fn server_cpu_per_handshake(&self) -> Option<f64> {
        Some(self.cpu?.server.as_secs_f64() / self.handshakes as f64)
    }
}

/// CPU time spent during a batch.
#[derive(Clone, Copy, Default)]
struct Usage {
    /// The server thread.
    server: Duration,
    /// The client (bench) thread.
    client: Duration,
    /// Every process on the machine but this one: other load skews the
    /// figures, so the summary says how much there was.
    others: Duration,
}

impl Usage {
    /// A reading of the counters (not a duration).
    fn now(server: &Server) -> Option<Self> {
        // `/proc` counts in clock ticks, 100 per second on Linux.
        let tick = Duration::from_millis(10);
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let machine: u64 = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .take(8)
            .enumerate()
            // user nice system idle iowait irq softirq steal: all but idle and iowait.
            .filter(|(i, _)| *i != 3 && *i != 4)
            .map(|(_, v)| v.parse::<u64>().unwrap_or(0))
            .sum();
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        let after_name = own.rsplit_once(')')?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let process: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Self {
            server: server.cpu_time()?,
            client: cpu_time("/proc/thread-self/schedstat")?,
            others: tick * u32::try_from(machine.saturating_sub(process)).ok()?,
        })
    }

    fn since(self, before: Self) -> Self {
        Self {
            server: self.server.saturating_sub(before.server),
            client: self.client.saturating_sub(before.client),
            others: self.others.saturating_sub(before.others),
        }
    }
}

/// Per-benchmark figures.
#[derive(Default)]
struct Tally {
    batches: Vec<Batch>,
}

impl Tally {
    /// Criterion calls `iter_custom` for warm-up first, then once per
    /// sample: the last `samples` calls are the measurement.
    fn summary(&self, samples: usize) -> Option<String> {
        let measured = &self.batches[self.batches.len().checked_sub(samples)?..];
        let n: u64 = measured.iter().map(|b| b.handshakes).sum();
        let wall: Duration = measured.iter().map(|b| b.wall).sum();
        let rate = n as f64 / wall.as_secs_f64();
        let mut text = format!("{rate:>6.0} handshakes/s");
        let cpu: Option<Vec<Usage>> = measured.iter().map(|b| b.cpu).collect();
        if let Some(cpu) = cpu {
            let server: Duration = cpu.iter().map(|c| c.server).sum();
            let client: Duration = cpu.iter().map(|c| c.client).sum();
            let others: Duration = cpu.iter().map(|c| c.others).sum();
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
            text.push_str(&format!(
                "; server thread busy {:.0}%, {:.0} µs CPU per handshake (client {:.0} µs); \
                 other processes used {:.0}% of the machine",
                100.0 * server.as_secs_f64() / wall.as_secs_f64(),
                per(server),
                per(client),
                100.0 * others.as_secs_f64() / (wall.as_secs_f64() * cores as f64),
            ));
        }
        Some(text)
    }

    /// The batches of the measured rounds (criterion's warm-up comes first).
    fn measured(&self, samples: usize) -> &[Batch] {
        &self.batches[self.batches.len().saturating_sub(samples)..]
    }
}

/// Runs `iters` handshakes against `server`, `CONCURRENCY` at a time;
/// panics if any handshake failed.
fn run_batch(
    rt: &tokio::runtime::Runtime,
    server: &Server,
    clients: &Clients<'_>,
    iters: u64,
) -> Batch {
    let configs: Vec<Arc<ClientConfig>> = (0..iters).map(|_| clients.next()).collect();
    let configs = Arc::new(Mutex::new(configs));
    let failed_before = server.failures.load(Ordering::Relaxed);
    let usage_before = Usage::now(server);
    let addr = server.addr;
    let start = Instant::now();
    let client_failures = rt.block_on(async move {
        let mut workers = JoinSet::new();
        for _ in 0..CONCURRENCY {
            let configs = configs.clone();
            workers.spawn(async move {
                let mut failures = 0u64;
                loop {
                    let next = configs.lock().expect("configs").pop();
                    let Some(config) = next else {
                        return failures;
                    };
                    if !handshake(addr, config).await {
                        failures += 1;
                    }
                }
            });
        }
        let mut failures = 0;
        while let Some(worker) = workers.join_next().await {
            failures += worker.expect("client worker");
        }
        failures
    });
    let elapsed = start.elapsed();
    let cpu = usage_before
        .zip(Usage::now(server))
        .map(|(before, after)| after.since(before));
    let server_failures = server.failures.load(Ordering::Relaxed) - failed_before;
    assert!(
        client_failures == 0 && server_failures == 0,
        "{client_failures} of {iters} handshakes failed on the client, \
         {server_failures} on the server"
    );
    Batch {
        handshakes: iters,
        wall: elapsed,
        cpu,
    }
}

fn throughput(c: &mut Criterion) {
    const SAMPLES: usize = 15;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let generating = Instant::now();
    let revoked = std::env::var("THROUGHPUT_REVOCATION_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(REVOCATION_ENTRIES);
    let pki = Pki::generate(&provider, DISTINCT_CLIENTS, revoked);
    eprintln!(
        "throughput: {} distinct client certificates + 1 repeating one generated in {:.1?}; \
         clients {} the server's CertificateVerify signature",
        pki.distinct.len(),
        generating.elapsed(),
        if client_skips_signature() {
            "do not check"
        } else {
            "check"
        }
    );
    let bare = bare_server(&pki, &provider);
    let (edge, log) = edge_server(&pki, &provider, None, rust_san_policy(), None);
    #[cfg(feature = "js")]
    let (edge_js, _js_log) = edge_server(&pki, &provider, None, seed_000_js_policy(), None);
    #[cfg(feature = "redis")]
    let redis = BenchRedis::start();
    #[cfg(feature = "redis")]
    let redis_edge = redis.as_ref().map(|r| {
        let _enter = r.rt.enter();
        let (server, _) = edge_server(&pki, &provider, Some(&r.url), rust_san_policy(), None);
        server
    });
    #[cfg(not(feature = "redis"))]
    let redis_edge: Option<Server> = None;
    // Side by side: the same pipeline with no revocation data, and with
    // the large deny list and CRL.
    let revocation_edges = pki.revocation_large.as_ref().map(|large| {
        let policy = rust_san_policy();
        let (empty, _) = edge_server(
            &pki,
            &provider,
            None,
            policy.clone(),
            Some(&pki.revocation_empty),
        );
        let (large, _) = edge_server(&pki, &provider, None, policy, Some(large));
        (empty, large)
    });
    let (empty_cursor, large_cursor) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    // webpki keeps no cache, so the bare server's certificates may repeat;
    // the edge's distinct run has a cursor of its own over the whole pool.
    let (bare_cursor, edge_cursor) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let redis_cursor = AtomicUsize::new(0);
    if let Some(server) = &redis_edge {
        // The first handshake waits for the first synchronisation at most
        // 5 s; the rounds start once the snapshot is loaded.
        run_batch(&rt, server, &Clients::Repeating(&pki.repeating), 1);
    }
    #[cfg(feature = "js")]
    let js_cursor = AtomicUsize::new(0);
    // Compared cases side by side (see the module documentation).
    let mut runs = vec![
        (
            "bare_webpki",
            &bare,
            Clients::Distinct(&pki.distinct, &bare_cursor),
        ),
        (
            "edge_distinct_certs",
            &edge,
            Clients::Distinct(&pki.distinct, &edge_cursor),
        ),
    ];
    #[cfg(feature = "js")]
    runs.push((
        "edge_distinct_js",
        &edge_js,
        Clients::Distinct(&pki.distinct, &js_cursor),
    ));
    if let Some(server) = &redis_edge {
        runs.insert(
            1,
            (
                "edge_redis_deny_list",
                server,
                Clients::Distinct(&pki.distinct, &redis_cursor),
            ),
        );
    }
    runs.push((
        "edge_repeating_cert",
        &edge,
        Clients::Repeating(&pki.repeating),
    ));
    if let Some((empty, large)) = &revocation_edges {
        runs.push((
            "edge_revocation_empty",
            empty,
            Clients::Distinct(&pki.distinct, &empty_cursor),
        ));
        runs.push((
            "edge_revocation_1m",
            large,
            Clients::Distinct(&pki.distinct, &large_cursor),
        ));
    }
    if let Ok(only) = std::env::var("THROUGHPUT_ONLY") {
        let only: Vec<&str> = only.split(',').map(str::trim).collect();
        runs.retain(|r| only.contains(&r.0));
        assert!(
            runs.len() == only.len(),
            "THROUGHPUT_ONLY={}: not every name is a case",
            only.join(",")
        );
    }
    let tallies: Vec<Mutex<Tally>> = runs.iter().map(|_| Mutex::default()).collect();

    // One sample is one round: every case with the same number of
    // handshakes (at least MIN_ROUND_HANDSHAKES), in `SLICES` passes.
    let mut group = c.benchmark_group("throughput");
    group
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Elements(runs.len() as u64));
    group.bench_function("interleaved_round", |b| {
        b.iter_custom(|iters| {
            let per_case = iters.max(MIN_ROUND_HANDSHAKES);
            let slice = per_case.div_ceil(SLICES);
            let mut wall = Duration::ZERO;
            let mut round: Vec<Option<Batch>> = vec![None; runs.len()];
            // A round is `SLICES` passes over the cases, every other one
            // in reverse order (A B C, C B A, A B C, …): a stretch of a
            // shared machine that is slower than the rest weighs on every
            // case alike.
            for pass in 0..SLICES {
                let mut order: Vec<usize> = (0..runs.len()).collect();
                if pass % 2 == 1 {
                    order.reverse();
                }
                for i in order {
                    let (_, server, clients) = &runs[i];
                    let batch = run_batch(&rt, server, clients, slice);
                    wall += batch.wall;
                    round[i] = Some(match round[i] {
                        Some(before) => before.add(batch),
                        None => batch,
                    });
                }
            }
            for (batch, tally) in round.into_iter().zip(&tallies) {
                if let Some(batch) = batch {
                    tally.lock().expect("tally").batches.push(batch);
                }
            }
            // Criterion's time per iteration: one handshake of each case.
            wall.mul_f64(iters as f64 / (slice * SLICES) as f64)
        })
    });
    group.finish();

    let used = edge_cursor.load(Ordering::Relaxed);
    if used > 0 {
        eprintln!(
            "throughput: edge_distinct_certs used {used} of {} distinct certificates{}",
            pki.distinct.len(),
            if used > pki.distinct.len() {
                " — the pool wrapped, some certificates repeated"
            } else {
                " (none repeated)"
            }
        );
    }
    eprintln!(
        "throughput: connection-log records dropped: {}",
        log.dropped()
    );
    for ((name, _, _), tally) in runs.iter().zip(&tallies) {
        let tally = tally.lock().expect("tally");
        if let Some(summary) = tally.summary(SAMPLES) {
            eprintln!("throughput: {name:<20} {summary}");
        }
    }
    // A case against the one it is compared with, by name, round by round:
    // `per_round` gives one round's ratio from (base, case).
    let paired = |name: &str, base: &str, per_round: &dyn Fn(&Batch, &Batch) -> Option<f64>| {
        let base = tallies[runs.iter().position(|r| r.0 == base)?]
            .lock()
            .expect("tally");
        let case = tallies[runs.iter().position(|r| r.0 == name)?]
            .lock()
            .expect("tally");
        spread(
            base.measured(SAMPLES)
                .iter()
                .zip(case.measured(SAMPLES))
                .filter_map(|(b, c)| per_round(b, c))
                .collect(),
        )
    };
    let ratio =
        |name: &str, base: &str| paired(name, base, &|b, c| Some(c.per_second() / b.per_second()));
    // The same in server CPU per handshake (steadier on a shared machine).
    let cpu_ratio = |name: &str, base: &str| {
        paired(name, base, &|b, c| {
            Some(b.server_cpu_per_handshake()? / c.server_cpu_per_handshake()?)
        })
    };
    // Every case against the bare server, when it ran (`THROUGHPUT_ONLY`
    // may leave it out).
    for (name, _, _) in runs.iter().filter(|r| r.0 != "bare_webpki") {
        if let Some((median, low, high)) = ratio(name, "bare_webpki") {
            eprintln!(
                "throughput: {name} / bare_webpki = {median:.2}x handshakes/s \
                 (median of {SAMPLES} interleaved rounds, {low:.2}–{high:.2}x)"
            );
        }
        if let Some((median, low, high)) = cpu_ratio(name, "bare_webpki") {
            eprintln!(
                "throughput: {name} / bare_webpki = {median:.2}x less server CPU per handshake \
                 (median, {low:.2}–{high:.2}x)"
            );
        }
    }
    if let Some((median, low, high)) = ratio("edge_redis_deny_list", "edge_distinct_certs") {
        eprintln!(
            "throughput: edge_redis_deny_list / edge_distinct_certs = {median:.3}x handshakes/s \
             (median of {SAMPLES} interleaved rounds, {low:.3}–{high:.3}x)"
        );
    }
    // A case against its base both ways; `about` says what differs.
    let report = |name: &str, base: &str, about: &str| {
        if let Some((median, low, high)) = ratio(name, base) {
            eprintln!(
                "throughput: {name} / {base} = {median:.3}x handshakes/s ({about}; median of \
                 {SAMPLES} interleaved rounds, {low:.3}–{high:.3}x)"
            );
        }
        if let Some((median, low, high)) = cpu_ratio(name, base) {
            eprintln!(
                "throughput: {name} / {base} = {median:.3}x less server CPU per handshake \
                 (median, {low:.3}–{high:.3}x)"
            );
        }
    };
    report(
        "edge_revocation_1m",
        "edge_revocation_empty",
        &format!("{revoked} deny-list serials + a {revoked}-entry CRL vs none"),
    );
    // The JavaScript policy against the Rust SAN rule, same pipeline.
    report(
        "edge_distinct_js",
        "edge_distinct_certs",
        "seed 000 JS function vs the Rust SAN rule",
    );
}

/// The median, lowest and highest of `values`.
fn spread(mut values: Vec<f64>) -> Option<(f64, f64, f64)> {
    values.sort_by(f64::total_cmp);
    let median = *values.get(values.len() / 2)?;
    Some((median, *values.first()?, *values.last()?))
}

criterion_group!(benches, throughput);
criterion_main!(benches);
