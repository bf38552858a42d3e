//! axum end to end: the quickstart's application behind `edge_mtls::axum::serve`
//! and behind `axum-server` with [`EdgeAcceptor`], through the whole curl
//! matrix; the `ClientCert` extractor.

mod common;
#[path = "../examples/common/echo.rs"]
mod echo;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use common::e2e::{as_client, curl, run_matrix, Fixture, MemorySink};
use edge_mtls::axum::{ClientCert, EdgeAcceptor};
use edge_mtls::{Edge, ValidationMode};
use tokio::net::TcpListener;

async fn serve(edge: Edge, router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(edge_mtls::axum::serve(listener, edge, router));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_helper_passes_the_curl_matrix() {
    run_matrix("axum::serve", |edge| serve(edge, echo::router())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_server_acceptor_passes_the_curl_matrix() {
    run_matrix("axum-server + EdgeAcceptor", |edge| async move {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let server = axum_server::from_tcp(listener)
            .expect("from_tcp")
            .acceptor(EdgeAcceptor::new(edge));
        tokio::spawn(server.serve(echo::router().into_make_service()));
        addr
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cert_extractor_sees_the_leaf() {
    let fx = Fixture::new();
    let demo = fx.pki.dir.clone();
    let router = || {
        Router::new()
            .route(
                "/",
                get(|cert: Option<ClientCert>| async move {
                    cert.map_or_else(
                        || "anonymous".to_string(),
                        |ClientCert(c)| c.subject.clone(),
                    )
                }),
            )
            .route(
                "/required",
                get(|ClientCert(c): ClientCert| async move { c.subject.clone() }),
            )
    };

    let sink = Arc::new(MemorySink::default());
    let edge = fx
        .builder(ValidationMode::Optional, &sink)
        .build()
        .expect("edge");
    let addr = serve(edge, router()).await;
    let run = as_client(&fx, &demo, addr, "my_client").await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        fx.openssl_field(&demo, "my_client.pem", "-subject")
    );
    let run = curl(&fx, &demo, addr, &[]).await;
    assert_eq!(run.stdout, "anonymous", "{run:?}");

    // `ClientCert` without `Option` answers 401 when no certificate came.
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(fx.pki.root())
        .arg(format!("https://{addr}/required"))
        .output()
        .await
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "401");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_sni_overrides_choose_the_mode_and_listener_id() {
    let fx = Fixture::new();
    let sink = Arc::new(MemorySink::default());
    let mut builder = fx.builder(ValidationMode::Required, &sink);
    let partners = builder
        .settings()
        .sni
        .entry("*.partners.example".into())
        .or_default();
    partners.mode = Some(ValidationMode::Optional);
    partners.distribution_id = Some("E2PARTNERS".into());
    let addr = serve(builder.build().expect("edge"), echo::router()).await;

    // The server certificate names localhost only: -k for the other names.
    let get = |host: &'static str| {
        let root = fx.pki.root();
        async move {
            let output = tokio::process::Command::new("curl")
                .args(["-sS", "-k", "--cacert"])
                .arg(root)
                .arg("--resolve")
                .arg(format!("{host}:{}:127.0.0.1", addr.port()))
                .arg(format!("https://{host}:{}/", addr.port()))
                .output()
                .await
                .expect("curl");
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
            )
        }
    };
    let (code, body) = get("api.partners.example").await;
    assert_eq!(code, Some(0), "optional for *.partners.example: {body}");
    assert!(
        body.contains("\"CloudFront-Viewer-Cert-Present\":\"0\""),
        "{body}"
    );
    let (code, _) = get("localhost").await;
    assert_eq!(code, Some(56), "required elsewhere");
    let (code, _) = get("deep.api.partners.example").await;
    assert_eq!(code, Some(56), "a wildcard covers one label");

    let records = sink.wait_for(3).await;
    let ids: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.tls_sni.clone().unwrap_or_default(),
                r.distribution_id.clone(),
            )
        })
        .collect();
    assert!(
        ids.contains(&("api.partners.example".into(), "E2PARTNERS".into())),
        "{ids:?}"
    );
    assert!(ids.contains(&("localhost".into(), "e2e".into())), "{ids:?}");
}

/// A TLS client presenting the demo PKI's `my_client`.
fn demo_client(fx: &Fixture) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(fx.pki.root()).expect("root CA"))
        .expect("add the root");
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(fx.pki.dir.join("my_client.pem"))
            .expect("client chain")
            .collect::<Result<_, _>>()
            .expect("client chain");
    let key = PrivateKeyDer::from_pem_file(fx.pki.dir.join("my_client.key")).expect("client key");
    Arc::new(
        rustls::ClientConfig::builder_with_provider(common::provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .expect("client identity"),
    )
}

/// Reads one HTTP/1.1 response with a `content-length`: its status line and body.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(
    tls: &mut S,
    pending: &mut Vec<u8>,
) -> (String, String) {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("content-length");
            if pending.len() >= end + 4 + length {
                let body =
                    String::from_utf8_lossy(&pending[end + 4..end + 4 + length]).into_owned();
                pending.drain(..end + 4 + length);
                let status = head.lines().next().unwrap_or_default().to_string();
                return (status, body);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tls.read(&mut chunk).await.expect("read");
        assert!(
            n > 0,
            "connection closed; so far: {:?}",
            String::from_utf8_lossy(pending)
        );
        pending.extend_from_slice(&chunk[..n]);
    }
}

/// One keep-alive connection keeps being served across idle pauses (hyper's
/// buffers are released while it waits, by default), with pipelined
/// requests and a request split by a pause, and every request still gets
/// the connection's certificate; the same with `release_idle_buffers = false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_connection_is_served_across_idle_pauses() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    for release in [true, false] {
        let fx = Fixture::new();
        let sink = Arc::new(MemorySink::default());
        let mut builder = fx.builder(ValidationMode::Required, &sink);
        builder.settings().release_idle_buffers = release;
        let edge = builder.build().expect("edge");
        let router = Router::new().route(
            "/",
            get(|ClientCert(c): ClientCert| async move { c.subject.clone() }),
        );
        let addr = serve(edge, router).await;
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(demo_client(&fx))
            .connect(name, tcp)
            .await
            .expect("handshake");
        let subject = fx.openssl_field(&fx.pki.dir, "my_client.pem", "-subject");
        let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let mut pending = Vec::new();
        for pause_ms in [0, 50, 300, 0, 20] {
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
            tls.write_all(request).await.expect("request");
            let (status, body) = read_response(&mut tls, &mut pending).await;
            assert_eq!(
                status, "HTTP/1.1 200 OK",
                "release {release}, pause {pause_ms} ms"
            );
            assert_eq!(body, subject, "release {release}");
        }
        // Two pipelined requests in one write.
        tls.write_all(&[&request[..], &request[..]].concat())
            .await
            .expect("pipelined requests");
        for _ in 0..2 {
            let (status, body) = read_response(&mut tls, &mut pending).await;
            assert_eq!(status, "HTTP/1.1 200 OK", "release {release}, pipelined");
            assert_eq!(body, subject);
        }
        // A request whose head arrives in two parts, a pause between them.
        tokio::time::sleep(Duration::from_millis(100)).await;
        tls.write_all(&request[..20]).await.expect("first part");
        tls.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(200)).await;
        tls.write_all(&request[20..]).await.expect("second part");
        let (status, body) = read_response(&mut tls, &mut pending).await;
        assert_eq!(
            status, "HTTP/1.1 200 OK",
            "release {release}, split request"
        );
        assert_eq!(body, subject);
        // One connection, one log record.
        assert_eq!(sink.records().len(), 1, "release {release}");
    }
}

/// An upgraded connection (`101 Switching Protocols`) belongs to the
/// application and is never parked, pauses or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_connection_is_not_parked() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fx = Fixture::new();
    let sink = Arc::new(MemorySink::default());
    let edge = fx
        .builder(ValidationMode::Required, &sink)
        .build()
        .expect("edge");
    let router = Router::new().route(
        "/echo",
        get(|mut request: axum::extract::Request| async move {
            let upgrade = hyper::upgrade::on(&mut request);
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.await else { return };
                let mut io = hyper_util::rt::TokioIo::new(upgraded);
                let mut word = [0u8; 5];
                while io.read_exact(&mut word).await.is_ok() {
                    if io.write_all(&word).await.is_err() {
                        return;
                    }
                }
            });
            axum::response::Response::builder()
                .status(101)
                .header("connection", "upgrade")
                .header("upgrade", "echo")
                .body(axum::body::Body::empty())
                .expect("response")
        }),
    );
    let addr = serve(edge, router).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(demo_client(&fx))
        .connect(name, tcp)
        .await
        .expect("handshake");
    tls.write_all(
        b"GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await
    .expect("request");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.expect("101 head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    for (pause_ms, word) in [(0, b"hello"), (300, b"again"), (50, b"third")] {
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        tls.write_all(word).await.expect("write");
        let mut echoed = [0u8; 5];
        tls.read_exact(&mut echoed).await.expect("echo");
        assert_eq!(&echoed, word);
    }
}
