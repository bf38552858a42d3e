//! actix-web end to end: the quickstart's application behind
//! `edge_mtls::actix::server` through the whole curl matrix; actix-web's own
//! `HttpServer` with the `on_connect` wiring (stage 1, headers, resumed
//! sessions verified again); the extractors.

#![cfg(feature = "actix")]

#[path = "../examples/common/actix_echo.rs"]
mod actix_echo;
mod common;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_server::{Server, ServerHandle};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App, HttpServer};
use common::e2e::{as_client, curl, demo_pki, header, run_matrix, Fixture, MemorySink};
use edge_mtls::actix::{ClientCert, MtlsConnection, OnConnectError};
use edge_mtls::AllowAll;
use edge_mtls::{Edge, PostHandshakeCheck, ValidationMode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// actix servers started by one test, each on its own thread with its own
/// actix system; all are stopped when the test ends, passed or failed.
#[derive(Default)]
struct Servers(Mutex<Vec<ServerHandle>>);

impl Servers {
    /// Starts the server `make` builds on a fresh 127.0.0.1 listener.
    async fn start<F>(&self, make: F) -> SocketAddr
    where
        F: FnOnce(std::net::TcpListener) -> io::Result<Server> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                let addr = listener.local_addr().expect("addr");
                let server = make(listener).expect("server");
                let _ = tx.send((addr, server.handle()));
                let _ = server.await;
            });
        });
        let (addr, handle) = rx.await.expect("server thread");
        self.0.lock().expect("servers").push(handle);
        addr
    }

    /// `edge_mtls::actix::server` with one worker and no signal handlers.
    async fn pipeline<F, A, B>(&self, edge: Edge, app: F) -> SocketAddr
    where
        F: Fn() -> App<A> + Send + Clone + 'static,
        A: ServiceFactory<
                ServiceRequest,
                Config = (),
                Response = ServiceResponse<B>,
                Error = actix_web::Error,
                InitError = (),
            > + 'static,
        B: MessageBody + 'static,
    {
        self.start(move |listener| {
            let builder = Server::build().workers(1).disable_signals();
            Ok(edge_mtls::actix::listen(builder, edge, listener, app)?.run())
        })
        .await
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let handles = self.0.get_mut().unwrap_or_else(PoisonError::into_inner);
        for handle in handles.drain(..) {
            // The stop command is sent at once; its completion is not awaited.
            drop(handle.stop(false));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_passes_the_curl_matrix() {
    let servers = Servers::default();
    run_matrix("edge_mtls::actix::server", |edge| {
        servers.pipeline(edge, actix_echo::app)
    })
    .await;
}

fn extractor_app() -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .route(
            "/",
            web::get().to(|cert: Option<ClientCert>| async move {
                cert.map_or_else(
                    || "anonymous".to_string(),
                    |ClientCert(c)| c.subject.clone(),
                )
            }),
        )
        .route(
            "/required",
            web::get().to(|ClientCert(c): ClientCert| async move { c.subject.clone() }),
        )
        .route(
            "/connection",
            web::get().to(|MtlsConnection(info): MtlsConnection| async move {
                format!("{} {}", info.peer.ip(), info.verified)
            }),
        )
}

/// `curl -w %{http_code}` on a path; returns the status and the body.
async fn status(fx: &Fixture, url: &str, args: &[&str]) -> (String, String) {
    let output = tokio::process::Command::new("curl")
        .current_dir(&fx.pki.dir)
        .args(["-sS", "-w", "\n%{http_code}", "--cacert"])
        .arg(fx.pki.root())
        .args(args)
        .arg(url)
        .output()
        .await
        .expect("curl");
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cert_extractor_sees_the_leaf() {
    let fx = Fixture::new();
    let demo = fx.pki.dir.clone();
    let servers = Servers::default();
    let sink = Arc::new(MemorySink::default());
    let edge = fx
        .builder(ValidationMode::Optional, &sink)
        .build()
        .expect("edge");
    let addr = servers.pipeline(edge, extractor_app).await;

    let run = as_client(&fx, &demo, addr, "my_client").await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        fx.openssl_field(&demo, "my_client.pem", "-subject")
    );
    let run = curl(&fx, &demo, addr, &[]).await;
    assert_eq!(run.stdout, "anonymous", "{run:?}");

    // `ClientCert` without `Option` answers 401 when no certificate came.
    let (code, _) = status(&fx, &format!("https://{addr}/required"), &[]).await;
    assert_eq!(code, "401");
    let (code, body) = status(&fx, &format!("https://{addr}/connection"), &[]).await;
    assert_eq!((code.as_str(), body.as_str()), ("200", "127.0.0.1 false"));

    // A request that did not come through the pipeline: 500, not a panic or
    // an anonymous success.
    let addr = servers
        .start(|listener| {
            Ok(HttpServer::new(extractor_app)
                .workers(1)
                .disable_signals()
                .listen(listener)?
                .run())
        })
        .await;
    let (code, _) = status(&fx, &format!("http://{addr}/required"), &[]).await;
    assert_eq!(code, "500");
    let (code, body) = status(&fx, &format!("http://{addr}/"), &[]).await;
    assert_eq!((code.as_str(), body.as_str()), ("200", "anonymous"));
}

/// actix-web's `HttpServer` bound with the edge's TLS configuration and the
/// `on_connect` callback.
async fn http_server(servers: &Servers, edge: &Edge) -> SocketAddr {
    let on_connect = edge_mtls::actix::on_connect(edge).expect("stage 1 only");
    let config = edge_mtls::actix::rustls_config(edge);
    servers
        .start(move |listener| {
            Ok(HttpServer::new(actix_echo::app)
                .workers(1)
                .disable_signals()
                .on_connect(on_connect)
                .listen_rustls_0_23(listener, config)?
                .run())
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_server_on_connect_serves_stage_one_and_headers() {
    let fx = Fixture::new();
    let demo = fx.pki.dir.clone();
    let servers = Servers::default();
    let sink = Arc::new(MemorySink::default());
    let edge = fx
        .builder(ValidationMode::Required, &sink)
        .build()
        .expect("edge");
    let addr = http_server(&servers, &edge).await;

    let json = curl(
        &fx,
        &demo,
        addr,
        &[
            "--key",
            "my_client.key",
            "--cert",
            "my_client.pem",
            "-H",
            "CloudFront-Viewer-Cert-Subject: CN=forged",
            "-H",
            "client_cert: :Zm9yZ2Vk:",
        ],
    )
    .await
    .json();
    assert_eq!(header(&json, "CloudFront-Viewer-Cert-Present"), Some("1"));
    assert_eq!(
        header(&json, "CloudFront-Viewer-Cert-Subject"),
        Some(
            fx.openssl_field(&demo, "my_client.pem", "-subject")
                .as_str()
        ),
        "the forged subject is removed: {json}"
    );
    assert!(
        header(&json, "Client-Cert").is_some_and(|v| v != ":Zm9yZ2Vk:"),
        "{json}"
    );

    // Stage 1 refuses in the handshake: no certificate, a deny-listed one,
    // an expired one.
    curl(&fx, &demo, addr, &[])
        .await
        .assert_no_certificate_refused();
    for name in ["revoked_client", "expired_client"] {
        let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
        curl(&fx, &demo, addr, &["--key", &key, "--cert", &cert])
            .await
            .assert_refused();
    }
    // As documented: this path writes no connection log.
    assert!(sink.records().is_empty(), "{:?}", sink.records());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_connect_refuses_configurations_it_cannot_enforce() {
    let fx = Fixture::new();
    let sink = Arc::new(MemorySink::default());
    let edge = fx
        .builder(ValidationMode::Required, &sink)
        .policy(Arc::new(AllowAll))
        .build()
        .expect("edge");
    assert_eq!(
        edge_mtls::actix::on_connect(&edge).err(),
        Some(OnConnectError::NeedsPipeline {
            check: PostHandshakeCheck::ConnectionPolicy
        })
    );
    let mut builder = fx.builder(ValidationMode::Required, &sink);
    builder.settings().revocation.ocsp = Some(Default::default());
    let edge = builder.build().expect("edge");
    assert_eq!(
        edge_mtls::actix::on_connect(&edge).err(),
        Some(OnConnectError::NeedsPipeline {
            check: PostHandshakeCheck::Ocsp
        })
    );
    // A per-SNI site would be served with the default site's settings.
    let mut builder = fx.builder(ValidationMode::Required, &sink);
    builder
        .settings()
        .sni
        .insert("admin.localhost".into(), Default::default());
    let edge = builder.build().expect("edge");
    assert_eq!(
        edge_mtls::actix::on_connect(&edge).err(),
        Some(OnConnectError::SniSite {
            pattern: "admin.localhost".into()
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_do_not_hold_up_other_connections() {
    let fx = Fixture::new();
    let demo = fx.pki.dir.clone();
    let servers = Servers::default();
    let sink = Arc::new(MemorySink::default());
    let edge = fx
        .builder(ValidationMode::Required, &sink)
        .handshake_timeout(Duration::from_secs(600))
        .build()
        .expect("edge");
    let addr = servers.pipeline(edge, actix_echo::app).await;
    // Clients that connect and never send a ClientHello, on the server's
    // only worker. Handled one at a time, curl would give up (--max-time)
    // long before their handshakes time out.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
    }
    let json = as_client(&fx, &demo, addr, "my_client").await.json();
    assert_eq!(header(&json, "CloudFront-Viewer-Cert-Present"), Some("1"));
    drop(stalled);
}

/// One HTTPS request over a fresh connection with a rustls client: whether
/// the handshake resumed a session, and what came back before the server
/// closed (empty when it refused the connection).
async fn request(config: &Arc<rustls::ClientConfig>, addr: SocketAddr) -> (bool, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    let _ = tls
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // The end: EOF, close_notify, or the reset of a refused connection.
    while let Ok(n @ 1..) = tls.read(&mut buf).await {
        out.extend_from_slice(&buf[..n]);
    }
    (resumed, String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_connect_verifies_resumed_sessions_again() {
    let fx = Fixture::new();
    let servers = Servers::default();
    let sink = Arc::new(MemorySink::default());
    let edge = fx
        .builder(ValidationMode::Required, &sink)
        .build()
        .expect("edge");
    let addr = http_server(&servers, &edge).await;

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(fx.pki.root()).expect("root"))
        .expect("root");
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(fx.pki.path("my_client.pem"))
            .expect("chain")
            .collect::<Result<_, _>>()
            .expect("chain");
    let key = PrivateKeyDer::from_pem_file(fx.pki.path("my_client.key")).expect("key");
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(common::provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .expect("client auth"),
    );

    let (resumed, response) = request(&config, addr).await;
    assert!(!resumed);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (resumed, response) = request(&config, addr).await;
    assert!(resumed, "the client resumes its session");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // Revoked after the session was established: a resumed session, whose
    // chain the handshake restores without asking the verifier, is refused.
    let serial = format!("{:X}", demo_pki::VALID_SERIAL);
    edge.deny_list()
        .expect("deny list")
        .put(&serial, "revoked after the handshake")
        .expect("put");
    let (resumed, response) = request(&config, addr).await;
    assert!(resumed, "the client resumes its session");
    assert_eq!(response, "", "the resumed connection is refused");
}
