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
use common::e2e::{curl, run_matrix, Fixture, MemorySink};
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
    let run = curl(
        &fx,
        &demo,
        addr,
        &["--key", "my_client.key", "--cert", "my_client.pem"],
    )
    .await;
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
