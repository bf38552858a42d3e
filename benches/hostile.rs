//! What a hostile client costs the server, against a valid client.
//!
//! Part 1 (criterion): server CPU time per connection attempt, over real TLS
//! 1.3 on loopback with 8 attempts in flight, for the whole pipeline built through `MtlsConfig` (chain
//! validation, a deny list, one connection-log record, the CloudFront
//! headers). Criterion's "time" here is the server thread's CPU time per
//! attempt (from `/proc/…/schedstat`), not wall time. Cases:
//!
//! - `valid_first`: a valid client whose chain the server has not seen
//!   (verified-chain cache off, so every attempt is a full validation; the
//!   intermediate's signature is answered by the issuer-signature cache, as
//!   in any deployment);
//! - `valid_repeated`: the same client again (verified-chain cache on);
//! - `nc_bomb_*`: a leaf with 1,000 DNS names under an intermediate with
//!   1,000 permitted DNS subtrees, each name matching only the last subtree,
//!   so checking it needs about a million comparisons: it exhausts the
//!   name-constraint budget (`ClientCertValidationBudgetExceeded`);
//! - `nc_worst_*`: the most expensive chain that stays within the budget and
//!   is refused: as many names as the budget allows, the last one outside
//!   every subtree (`ClientCertInvalid`, a name-constraint violation);
//! - `chain30_*`: a leaf with 29 intermediates, a valid chain to the root
//!   with more intermediates than a client may send (8;
//!   `ClientCertMaxSizeExceeded`).
//!
//! `*_first` runs against a server whose refused-chain cache is off, so every
//! attempt costs what the first attempt of a new hostile chain costs;
//! `*_repeated` against the default configuration, where a chain refused once
//! is answered from the cache. The summary prints each case's ratio to
//! `valid_first`.
//!
//! Part 2 (printed after criterion): a valid client's handshake latency (p50,
//! p99 of 300 sequential handshakes, each with a certificate the server has
//! not seen) against a server on a two-worker multi-thread runtime: alone;
//! while 4 other valid clients connect as fast as they can (the same load
//! without hostile chains); and while 4 attacker threads send `nc_worst`
//! chains as fast as they can — once repeating one chain (refused-chain
//! cache on) and once as if every chain were new (cache off). The attackers'
//! and clients' own TLS work runs on the same machine.
//!
//! Run with `cargo bench --bench hostile` (about two minutes).

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use edge_mtls::{Budget, Edge, MtlsConfig, TrustStore, TrustStoreHandle};
use edge_mtls::{LogFormat, QueueSink};
use rcgen::{
    CertificateParams, ExtendedKeyUsagePurpose, GeneralSubtree, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType, SerialNumber,
};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ClientConfig;
use support::{
    ca_params, cpu_time, dn, handshake, localhost_server, p256, thread_id, SignatureOnly,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// Permitted DNS subtrees of the constrained intermediate.
const SUBTREES: usize = 1_000;
/// Attempts in flight in part 1 (as many clients connecting at once).
const IN_FLIGHT: usize = 8;
/// Valid client certificates: enough for the latency runs (300 each).
const VALID_CLIENTS: usize = 1_000;

/// One client certificate chain and key, as a client configuration.
fn client_config(
    provider: &Arc<CryptoProvider>,
    chain: Vec<CertificateDer<'static>>,
    key: &KeyPair,
) -> Arc<ClientConfig> {
    let verifier = Arc::new(SignatureOnly {
        provider: provider.clone(),
        skip: false,
    });
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .expect("client configuration");
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

fn leaf_params(serial: u32, names: Vec<String>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(&format!("client {serial}"));
    p.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
    p.subject_alt_names = names
        .into_iter()
        .map(|n| SanType::DnsName(n.try_into().expect("DNS name")))
        .collect();
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    p
}

struct Pki {
    root_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivatePkcs8KeyDer<'static>,
    valid: Vec<Arc<ClientConfig>>,
    nc_bomb: Arc<ClientConfig>,
    nc_worst: Arc<ClientConfig>,
    chain30: Arc<ClientConfig>,
    /// Bytes each hostile client sends as its chain.
    sizes: [(&'static str, usize); 3],
}

impl Pki {
    fn generate(provider: &Arc<CryptoProvider>) -> Self {
        let root_key = p256();
        let root_params = ca_params("Hostile Bench Root CA");
        let root = root_params.self_signed(&root_key).expect("root");
        let root_issuer = Issuer::from_params(&root_params, &root_key);

        let (server, server_key) = localhost_server(&root_issuer);

        // Valid clients under a plain intermediate.
        let inter_key = p256();
        let inter_params = ca_params("Hostile Bench Intermediate CA");
        let inter = inter_params
            .signed_by(&inter_key, &root_issuer)
            .expect("intermediate");
        let inter_issuer = Issuer::from_params(&inter_params, &inter_key);
        let client_key = p256();
        let valid = (0..VALID_CLIENTS)
            .map(|i| {
                let serial = 0x0100_0000 + u32::try_from(i).expect("fits");
                let leaf = leaf_params(serial, vec![format!("client-{i}.bench.example")])
                    .signed_by(&client_key, &inter_issuer)
                    .expect("client");
                client_config(
                    provider,
                    vec![leaf.der().clone(), inter.der().clone()],
                    &client_key,
                )
            })
            .collect();

        // The name-constraint bombs under a constrained intermediate.
        let nc_key = p256();
        let mut nc_params = ca_params("Hostile Bench Constrained CA");
        nc_params.name_constraints = Some(NameConstraints {
            permitted_subtrees: (0..SUBTREES)
                .map(|i| GeneralSubtree::DnsName(format!("allowed-{i}.example")))
                .collect(),
            excluded_subtrees: Vec::new(),
        });
        let nc_inter = nc_params
            .signed_by(&nc_key, &root_issuer)
            .expect("constrained intermediate");
        let nc_issuer = Issuer::from_params(&nc_params, &nc_key);
        // Each name matches only the last subtree: SUBTREES comparisons per name.
        let late = |i: usize| format!("n{i}.allowed-{}.example", SUBTREES - 1);
        let bomb_leaf = leaf_params(0x0200_0000, (0..1_000).map(late).collect())
            .signed_by(&client_key, &nc_issuer)
            .expect("bomb leaf");
        // Names are compared with subtrees of their form only (the subject
        // DN costs nothing here); the last name is outside every subtree.
        let budget = Budget::default().name_constraint_comparisons;
        let fit = (budget / SUBTREES).saturating_sub(2);
        let mut worst_names: Vec<String> = (0..fit).map(late).collect();
        worst_names.push("outside.example".into());
        let worst_leaf = leaf_params(0x0200_0001, worst_names)
            .signed_by(&client_key, &nc_issuer)
            .expect("worst leaf");

        // A valid 30-certificate chain: root → 29 CAs → leaf.
        let mut cas = Vec::new();
        let mut issuer_params = root_params.clone();
        let mut issuer_key = root_key;
        for i in 0..29 {
            let key = p256();
            let params = ca_params(&format!("Hostile Bench Deep CA {i}"));
            let cert = params
                .signed_by(&key, &Issuer::from_params(&issuer_params, &issuer_key))
                .expect("deep CA");
            cas.push(cert.der().clone());
            issuer_params = params;
            issuer_key = key;
        }
        let deep_leaf = leaf_params(0x0300_0000, vec!["deep.bench.example".into()])
            .signed_by(
                &client_key,
                &Issuer::from_params(&issuer_params, &issuer_key),
            )
            .expect("deep leaf");
        let mut deep_chain = vec![deep_leaf.der().clone()];
        deep_chain.extend(cas.into_iter().rev());

        let bomb_chain = vec![bomb_leaf.der().clone(), nc_inter.der().clone()];
        let worst_chain = vec![worst_leaf.der().clone(), nc_inter.der().clone()];
        let size = |chain: &[CertificateDer<'static>]| chain.iter().map(|c| c.len()).sum();
        let sizes = [
            ("nc_bomb", size(&bomb_chain)),
            ("nc_worst", size(&worst_chain)),
            ("chain30", size(&deep_chain)),
        ];
        Self {
            root_pem: root.pem(),
            server_chain: vec![server.der().clone()],
            server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
            valid,
            nc_bomb: client_config(provider, bomb_chain, &client_key),
            nc_worst: client_config(provider, worst_chain, &client_key),
            chain30: client_config(provider, deep_chain, &client_key),
            sizes,
        }
    }
}

/// The caches a server runs with.
#[derive(Clone, Copy)]
struct Caches {
    verified: usize,
    refused: usize,
}

fn edge(pki: &Pki, provider: &Arc<CryptoProvider>, caches: Caches) -> Edge {
    let store = TrustStore::from_pem(pki.root_pem.as_bytes()).expect("trust store");
    let log =
        Arc::new(QueueSink::new(std::io::sink(), LogFormat::JsonLines, 65_536).expect("log sink"));
    let mut builder = MtlsConfig::builder();
    builder.settings().cache.verified_chains = caches.verified;
    builder.settings().cache.refused_chains = caches.refused;
    builder
        .crypto_provider(provider.clone())
        .distribution_id("EHOSTILE00001")
        .server_identity(
            pki.server_chain.clone(),
            PrivateKeyDer::Pkcs8(pki.server_key.clone_key()),
        )
        .trust_store(TrustStoreHandle::new(store))
        .resumption(false)
        .deny_serials(["7F:00:00:01", "DEADBEEF"])
        .log_sink(log)
        .build()
        .expect("edge configuration")
}

/// A server on its own OS thread.
struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    tid: Option<u32>,
}

impl Server {
    /// `workers`: `None` for a `current_thread` runtime (one thread, whose
    /// CPU time is measured), `Some(n)` for a multi-thread runtime.
    fn start(edge: Edge, workers: Option<usize>) -> Self {
        let (ready, started) = mpsc::channel();
        let accepted = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let (a, r) = (accepted.clone(), refused.clone());
        std::thread::spawn(move || {
            let rt = match workers {
                None => tokio::runtime::Builder::new_current_thread(),
                Some(n) => {
                    let mut b = tokio::runtime::Builder::new_multi_thread();
                    b.worker_threads(n);
                    b
                }
            }
            .enable_all()
            .build()
            .expect("server runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let addr = listener.local_addr().expect("address");
                ready.send((addr, thread_id())).expect("bench waiting");
                loop {
                    let Ok((tcp, peer)) = listener.accept().await else {
                        continue;
                    };
                    let (edge, a, r) = (edge.clone(), a.clone(), r.clone());
                    tokio::spawn(async move {
                        match edge.acceptor().accept_tcp(tcp, peer).await {
                            Ok(mut tls) => {
                                a.fetch_add(1, Ordering::Relaxed);
                                let _ = tls.write_all(b"ok").await;
                                let _ = tls.shutdown().await;
                            }
                            Err(_) => {
                                r.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
            });
        });
        let (addr, tid) = started.recv().expect("server started");
        Self {
            addr,
            accepted,
            refused,
            tid,
        }
    }

    fn cpu_time(&self) -> Duration {
        self.tid
            .and_then(|tid| cpu_time(&format!("/proc/self/task/{tid}/schedstat")))
            .expect("server thread CPU time (Linux /proc)")
    }
}

struct Case<'a> {
    name: &'static str,
    server: &'a Server,
    clients: Vec<Arc<ClientConfig>>,
    valid: bool,
    cursor: AtomicUsize,
    /// Server CPU per attempt of each measured sample, µs.
    samples: Mutex<Vec<f64>>,
}

impl Case<'_> {
    /// `iters` attempts, [`IN_FLIGHT`] at a time; returns the server
    /// thread's CPU time.
    fn run(&self, rt: &tokio::runtime::Runtime, iters: u64) -> Duration {
        let server = self.server;
        let (ok_before, refused_before) = (
            server.accepted.load(Ordering::Relaxed),
            server.refused.load(Ordering::Relaxed),
        );
        let before = server.cpu_time();
        let left = AtomicU64::new(iters);
        let succeeded = rt.block_on(async {
            let workers = (0..IN_FLIGHT).map(|_| async {
                let mut succeeded = 0u64;
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let i = self.cursor.fetch_add(1, Ordering::Relaxed);
                    let config = self.clients[i % self.clients.len()].clone();
                    succeeded += u64::from(handshake(server.addr, config).await);
                }
                succeeded
            });
            futures_util::future::join_all(workers)
                .await
                .into_iter()
                .sum::<u64>()
        });
        // The server counts a refusal once its task ends, which may be just
        // after the client saw the alert.
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.accepted.load(Ordering::Relaxed) - ok_before
            + server.refused.load(Ordering::Relaxed)
            - refused_before
            < iters
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let cpu = server.cpu_time().saturating_sub(before);
        let expected = if self.valid { iters } else { 0 };
        assert_eq!(
            succeeded, expected,
            "{}: {succeeded} of {iters} attempts were served",
            self.name
        );
        self.samples
            .lock()
            .expect("samples")
            .push(cpu.as_secs_f64() * 1e6 / iters as f64);
        cpu
    }

    fn median(&self, samples: usize) -> Option<f64> {
        let all = self.samples.lock().expect("samples");
        let mut measured = all[all.len().checked_sub(samples)?..].to_vec();
        measured.sort_by(f64::total_cmp);
        measured.get(measured.len() / 2).copied()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A valid client's latency (p50, p99) with `attackers` threads sending
/// `hostile` as fast as they can (a valid chain, served, for the baseline
/// of the same load).
fn latency(
    pki: &Pki,
    provider: &Arc<CryptoProvider>,
    caches: Caches,
    attackers: usize,
    hostile: &Arc<ClientConfig>,
) -> (Duration, Duration, u64) {
    const HANDSHAKES: usize = 300;
    let server = Server::start(edge(pki, provider, caches), Some(2));
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let expect_served = Arc::ptr_eq(hostile, &pki.valid[VALID_CLIENTS - 1]);
    let threads: Vec<_> = (0..attackers)
        .map(|_| {
            let (stop, attempts, hostile, addr) =
                (stop.clone(), attempts.clone(), hostile.clone(), server.addr);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("attacker runtime");
                rt.block_on(async {
                    while !stop.load(Ordering::Relaxed) {
                        let served = handshake(addr, hostile.clone()).await;
                        assert_eq!(served, expect_served, "an attempt ended unexpectedly");
                        attempts.fetch_add(1, Ordering::Relaxed);
                    }
                });
            })
        })
        .collect();
    // Let the attack reach its pace.
    std::thread::sleep(Duration::from_millis(300));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let mut times: Vec<Duration> = rt.block_on(async {
        let mut times = Vec::with_capacity(HANDSHAKES);
        for config in pki.valid.iter().take(HANDSHAKES) {
            let start = Instant::now();
            assert!(
                handshake(server.addr, config.clone()).await,
                "valid client refused"
            );
            times.push(start.elapsed());
        }
        times
    });
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("attacker");
    }
    times.sort();
    (
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        attempts.load(Ordering::Relaxed),
    )
}

fn hostile(c: &mut Criterion) {
    const SAMPLES: usize = 10;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let pki = Pki::generate(&provider);
    for (name, bytes) in pki.sizes {
        eprintln!("hostile: {name} chain: {bytes} bytes");
    }
    let fresh = Server::start(
        edge(
            &pki,
            &provider,
            Caches {
                verified: 0,
                refused: 0,
            },
        ),
        None,
    );
    let defaults = MtlsConfig::default().cache;
    let cached = Server::start(
        edge(
            &pki,
            &provider,
            Caches {
                verified: defaults.verified_chains,
                refused: defaults.refused_chains,
            },
        ),
        None,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let case = |name, server, clients: Vec<Arc<ClientConfig>>, valid| Case {
        name,
        server,
        clients,
        valid,
        cursor: AtomicUsize::new(0),
        samples: Mutex::default(),
    };
    let cases = [
        case("valid_first", &fresh, pki.valid.clone(), true),
        case("valid_repeated", &cached, vec![pki.valid[0].clone()], true),
        case("nc_bomb_first", &fresh, vec![pki.nc_bomb.clone()], false),
        case(
            "nc_bomb_repeated",
            &cached,
            vec![pki.nc_bomb.clone()],
            false,
        ),
        case("nc_worst_first", &fresh, vec![pki.nc_worst.clone()], false),
        case(
            "nc_worst_repeated",
            &cached,
            vec![pki.nc_worst.clone()],
            false,
        ),
        case("chain30_first", &fresh, vec![pki.chain30.clone()], false),
        case(
            "chain30_repeated",
            &cached,
            vec![pki.chain30.clone()],
            false,
        ),
    ];
    let mut group = c.benchmark_group("hostile_server_cpu_per_attempt");
    group
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for case in &cases {
        group.bench_function(case.name, |b| b.iter_custom(|iters| case.run(&rt, iters)));
    }
    group.finish();

    let valid = cases[0].median(SAMPLES);
    for case in &cases {
        if let (Some(us), Some(valid)) = (case.median(SAMPLES), valid) {
            eprintln!(
                "hostile: {:<18} {us:>8.0} µs server CPU per attempt (median of {SAMPLES} samples), \
                 {:.2}x valid_first",
                case.name,
                us / valid
            );
        }
    }

    let on = Caches {
        verified: defaults.verified_chains,
        refused: defaults.refused_chains,
    };
    let off = Caches {
        verified: defaults.verified_chains,
        refused: 0,
    };
    let runs = [
        ("no attackers", on, 0, &pki.nc_worst),
        (
            "4 busy valid clients (the same load without hostile chains)",
            on,
            4,
            &pki.valid[VALID_CLIENTS - 1],
        ),
        (
            "4 attackers repeating nc_worst (refused-chain cache on)",
            on,
            4,
            &pki.nc_worst,
        ),
        (
            "4 attackers, every nc_worst attempt new (cache off)",
            off,
            4,
            &pki.nc_worst,
        ),
    ];
    for (what, caches, attackers, client) in runs {
        let (p50, p99, attempts) = latency(&pki, &provider, caches, attackers, client);
        eprintln!(
            "hostile: valid client latency, {what}: p50 {:.2} ms, p99 {:.2} ms ({attempts} attempts by the other clients)",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
        );
    }
}

criterion_group!(benches, hostile);
criterion_main!(benches);
