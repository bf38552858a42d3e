//! The quickstart server under load, a client that never speaks, and TLS
//! session resumption: real TLS over 127.0.0.1 with rustls clients.

mod common;
#[path = "../examples/common/echo.rs"]
mod echo;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::e2e::{demo_pki, Fixture, MemorySink};
use edge_mtls::ConnectionStatus;
use edge_mtls::{Connection, ConnectionPolicy, PolicyError, Verdict};
use edge_mtls::{Edge, ReasonCode, ValidationMode};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, HandshakeKind, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

async fn serve(edge: Edge) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(edge_mtls::axum::serve(listener, edge, echo::router()));
    addr
}

fn client_config(fx: &Fixture, name: &str, resumption: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(fx.pki.root()).expect("root"))
        .expect("add root");
    let chain = CertificateDer::pem_file_iter(fx.pki.path(&format!("{name}.pem")))
        .expect("chain")
        .collect::<Result<Vec<_>, _>>()
        .expect("chain pem");
    let key = PrivateKeyDer::from_pem_file(fx.pki.path(&format!("{name}.key"))).expect("key");
    let mut config = ClientConfig::builder_with_provider(common::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client auth");
    if !resumption {
        config.resumption = Resumption::disabled();
    }
    Arc::new(config)
}

/// One HTTPS GET; the status line and how the handshake went.
async fn get(
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
) -> Result<(String, Option<HandshakeKind>), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let kind = tls.get_ref().1.handshake_kind();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    Ok((text.lines().next().unwrap_or_default().to_string(), kind))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_handshakes_from_64_clients_and_a_silent_one() {
    const TOTAL: usize = 2_000;
    const CLIENTS: usize = 64;
    let fx = Fixture::new();
    let sink = Arc::new(MemorySink::default());
    let edge = fx
        .builder(ValidationMode::Required, &sink)
        .handshake_timeout(Duration::from_secs(2))
        .build()
        .expect("edge");
    let addr = serve(edge).await;

    // A client that opens TCP and never sends a ClientHello.
    let silent = tokio::spawn(async move {
        let started = Instant::now();
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let mut buf = [0u8; 16];
        let closed = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf)).await;
        (closed.is_ok(), started.elapsed())
    });

    let config = client_config(&fx, "my_client", false);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (config, next) = (config.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < TOTAL {
                match get(&config, addr).await {
                    Ok((status, kind)) if status == "HTTP/1.1 200 OK" => {
                        assert_eq!(kind, Some(HandshakeKind::Full), "resumption is off");
                    }
                    other => failures.push(format!("{other:?}")),
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.expect("client task"));
    }
    assert!(
        failures.is_empty(),
        "{} failures: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    let (closed, after) = silent.await.expect("silent task");
    assert!(closed, "the silent client was never cut off");
    assert!(
        after >= Duration::from_millis(1_900),
        "cut off after {after:?}"
    );

    let records = sink.wait_for(TOTAL + 1).await;
    let success = records
        .iter()
        .filter(|r| r.connection_status == ConnectionStatus::Success)
        .count();
    let timeouts = records
        .iter()
        .filter(|r| r.connection_status == ConnectionStatus::Failed(ReasonCode::TcpTimeout))
        .count();
    assert_eq!((records.len(), success, timeouts), (TOTAL + 1, TOTAL, 1));
    let mut ids: Vec<_> = records.iter().map(|r| r.connection_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        TOTAL + 1,
        "one record, with its own id, per connection"
    );
}

/// Counts policy evaluations.
#[derive(Debug, Default)]
struct Counting(AtomicUsize);

#[async_trait::async_trait]
impl ConnectionPolicy for Counting {
    async fn evaluate(&self, _: &Connection) -> Result<Verdict, PolicyError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Verdict::allow())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_sessions_rerun_revocation_and_the_policy() {
    let fx = Fixture::new();
    let sink = Arc::new(MemorySink::default());
    let policy = Arc::new(Counting::default());
    let edge = fx
        .builder(ValidationMode::Required, &sink)
        .policy(policy.clone())
        .build()
        .expect("edge");
    let addr = serve(edge.clone()).await;
    let config = client_config(&fx, "my_client", true);

    let (status, kind) = get(&config, addr).await.expect("first");
    assert_eq!(
        (status.as_str(), kind),
        ("HTTP/1.1 200 OK", Some(HandshakeKind::Full))
    );
    let (status, kind) = get(&config, addr).await.expect("second");
    assert_eq!(
        (status.as_str(), kind),
        ("HTTP/1.1 200 OK", Some(HandshakeKind::Resumed))
    );
    assert_eq!(
        policy.0.load(Ordering::SeqCst),
        2,
        "the policy ran for the resumed session"
    );

    // Revoked while its session is still resumable: the resumed handshake
    // succeeds at the TLS level, the restored chain is checked again.
    edge.deny_list()
        .expect("deny list")
        .put(
            &format!("{:X}", demo_pki::VALID_SERIAL),
            "revoked at run time",
        )
        .expect("put");
    let refused = get(&config, addr).await;
    assert!(refused.is_err(), "{refused:?}");
    let records = sink.wait_for(3).await;
    assert_eq!(
        records[2].connection_status,
        ConnectionStatus::Failed(ReasonCode::ClientCertRevoked),
        "{records:?}"
    );

    // With resumption off every handshake is full.
    let sink = Arc::new(MemorySink::default());
    let edge = fx
        .builder(ValidationMode::Required, &sink)
        .resumption(false)
        .build()
        .expect("edge");
    let addr = serve(edge).await;
    let config = client_config(&fx, "my_client", true);
    for _ in 0..2 {
        let (status, kind) = get(&config, addr).await.expect("get");
        assert_eq!(
            (status.as_str(), kind),
            ("HTTP/1.1 200 OK", Some(HandshakeKind::Full))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_closing_before_its_client_hello_is_logged_tcp_error() {
    let fx = Fixture::new();
    let sink = Arc::new(MemorySink::default());
    let edge = fx
        .builder(ValidationMode::Required, &sink)
        .build()
        .expect("edge");
    let addr = serve(edge).await;
    let tcp = TcpStream::connect(addr).await.expect("connect");
    drop(tcp);
    // A full handshake afterwards: the server is unaffected.
    let config = client_config(&fx, "my_client", false);
    let (status, _) = get(&config, addr).await.expect("get");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let records = sink.wait_for(2).await;
    let statuses: Vec<_> = records.iter().map(|r| r.connection_status).collect();
    assert!(
        statuses.contains(&ConnectionStatus::Failed(ReasonCode::TcpError)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&ConnectionStatus::Success),
        "{statuses:?}"
    );
}
