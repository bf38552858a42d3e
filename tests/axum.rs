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
