//! axum 0.8 integration.
//!
//! - [`serve`] / [`serve_with_shutdown`]: accept TCP connections, run each
//!   one through the [`Edge`]'s pipeline in its own task (handshakes run
//!   concurrently), and serve the router over HTTP/1.1 on the connections
//!   that were allowed.
//! - [`EdgeAcceptor`]: the same pipeline as an `axum-server` acceptor, for
//!   applications already built on `axum_server::Server`.
//! - [`serve_forwarded`]: behind a proxy that terminates TLS (ALB
//!   passthrough, CloudFront, Envoy, nginx, HAProxy), plain HTTP with the
//!   forwarded certificate verified on every request; or wrap any router in
//!   [`ForwardedLayer`] and serve it with
//!   `into_make_service_with_connect_info::<SocketAddr>()`.
//! - [`ClientCert`] and [`MtlsConnection`]: extractors for handlers, the
//!   same on both paths.
//!
//! Every request reaching the router has had client-sent certificate headers
//! removed and the connection's own headers attached
//! ([`crate::tower::MtlsHeaders`]).
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use edge_mtls::axum::ClientCert;
//! use edge_mtls::MtlsConfig;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let edge = MtlsConfig::from_file("edge.toml")?.into_builder().build()?;
//! let app = Router::new().route(
//!     "/",
//!     get(|ClientCert(cert): ClientCert| async move { format!("hello {}", cert.subject) }),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! edge_mtls::axum::serve(listener, edge, app).await?;
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};

use crate::acceptor::{AcceptBackoff, ConnectionInfo, MtlsStream};
use crate::chain_validator::ClientCertInfo;
use crate::config::Edge;
use crate::tower::{ForwardedLayer, MtlsHeaders};
use tower_layer::Layer as _;

/// Serves `router` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, edge: Edge, router: Router) -> io::Result<()> {
    serve_with_shutdown(listener, edge, router, std::future::pending()).await
}

/// Serves `router` on `listener` until `shutdown` completes; connections
/// already accepted finish their current work in their own tasks.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    edge: Edge,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    accept_each(listener, shutdown, move |tcp, peer| {
        let edge = edge.clone();
        let router = router.clone();
        tokio::spawn(async move {
            // The handshake's state lives in its own allocation, freed once
            // it is done: the task then holds only what serving needs (an
            // idle connection would otherwise keep the handshake's bytes).
            let accepting = Box::pin(edge.acceptor().accept_tcp(tcp, peer));
            // Failures are logged by the pipeline; nothing else to do.
            if let Ok(stream) = accepting.await {
                serve_connection(stream, router).await;
            }
        });
    })
    .await
}

/// Accepts TCP connections until `shutdown` completes, handing each to
/// `serve`; waits out accept errors (out of descriptors and similar: the
/// listener recovers once connections close) instead of spinning or exiting.
async fn accept_each(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    mut serve: impl FnMut(TcpStream, std::net::SocketAddr),
) -> io::Result<()> {
    tokio::pin!(shutdown);
    let mut backoff = AcceptBackoff::default();
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff.recovered();
                    accepted
                }
                Err(e) => {
                    let pause = backoff.failed(&e);
                    tokio::select! {
                        biased;
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep(pause) => continue,
                    }
                }
            },
        };
        serve(tcp, peer);
    }
}

/// Serves HTTP/1.1 on one accepted connection. Between requests the
/// connection holds no HTTP state (hyper's buffers are released while it is
/// idle) unless the listener was configured with
/// `release_idle_buffers = false`.
///
/// The returned future holds the connection from the start (it is not an
/// `async fn`, whose future would keep a second, dead copy of the stream).
pub fn serve_connection(
    stream: MtlsStream<TcpStream>,
    router: Router,
) -> impl Future<Output = ()> + Send {
    let service = TowerToHyperService::new(MtlsHeaders::new(router, stream.info.clone()));
    let release_idle = stream.releases_idle_buffers();
    crate::idle_http1::serve(stream, service, release_idle)
}

/// Behind a proxy that terminates TLS: serves `router` over plain HTTP/1.1
/// on `listener`, verifying on every request the client certificate the
/// proxy forwards (`[forwarded]`, see [`Edge::forwarded`]). The extractors
/// work as behind a direct mTLS listener; refused requests are answered 400
/// or 403 with an empty body and logged with their reason code.
///
/// Fails at once (`InvalidInput`) when `edge` has no `[forwarded]` settings.
pub async fn serve_forwarded(listener: TcpListener, edge: Edge, router: Router) -> io::Result<()> {
    serve_forwarded_with_shutdown(listener, edge, router, std::future::pending()).await
}

/// [`serve_forwarded`] until `shutdown` completes.
pub async fn serve_forwarded_with_shutdown(
    listener: TcpListener,
    edge: Edge,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let verifier = edge.forwarded().cloned().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "serve_forwarded needs the [forwarded] settings (dialect, trusted_proxies)",
        )
    })?;
    let local = listener.local_addr().ok();
    accept_each(listener, shutdown, move |tcp, peer| {
        let _ = tcp.set_nodelay(true);
        let service =
            ForwardedLayer::for_connection(verifier.clone(), peer, local).layer(router.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(
                    hyper_util::rt::TokioIo::new(tcp),
                    TowerToHyperService::new(service),
                )
                .with_upgrades()
                .await;
        });
    })
    .await
}

/// The pipeline as an `axum-server` acceptor:
/// `axum_server::bind(addr).acceptor(EdgeAcceptor::new(edge)).serve(app.into_make_service())`.
#[derive(Clone, Debug)]
pub struct EdgeAcceptor {
    edge: Edge,
}

impl EdgeAcceptor {
    /// An acceptor running `edge`'s pipeline.
    pub fn new(edge: Edge) -> Self {
        Self { edge }
    }
}

impl<S> axum_server::accept::Accept<TcpStream, S> for EdgeAcceptor
where
    S: Send + 'static,
{
    type Stream = MtlsStream<TcpStream>;
    type Service = MtlsHeaders<S>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, tcp: TcpStream, service: S) -> Self::Future {
        let edge = self.edge.clone();
        Box::pin(async move {
            let peer = tcp.peer_addr()?;
            let stream = edge
                .acceptor()
                .accept_tcp(tcp, peer)
                .await
                .map_err(io::Error::other)?;
            let info = stream.info.clone();
            Ok((stream, MtlsHeaders::new(service, info)))
        })
    }
}

pub use crate::acceptor::ExtractError;

impl IntoResponse for ExtractError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, self.to_string()).into_response()
    }
}

/// Everything the pipeline learnt about the request's connection.
#[derive(Clone, Debug)]
pub struct MtlsConnection(pub Arc<ConnectionInfo>);

fn connection(parts: &Parts) -> Option<&Arc<ConnectionInfo>> {
    parts.extensions.get::<Arc<ConnectionInfo>>()
}

impl<St: Send + Sync> FromRequestParts<St> for MtlsConnection {
    type Rejection = ExtractError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        connection(parts)
            .cloned()
            .map(Self)
            .ok_or(ExtractError::NotServedByEdge)
    }
}

impl<St: Send + Sync> OptionalFromRequestParts<St> for MtlsConnection {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Option<Self>, Infallible> {
        Ok(connection(parts).cloned().map(Self))
    }
}

/// The client certificate's leaf, validated against the trust store. A
/// Passthrough listener's certificates are never handed out under this
/// name: they are [`UnverifiedClientCert`]. Use `Option<ClientCert>` where a
/// certificate is optional.
#[derive(Clone, Debug)]
pub struct ClientCert(pub Arc<ClientCertInfo>);

impl<St: Send + Sync> FromRequestParts<St> for ClientCert {
    type Rejection = ExtractError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        let info = connection(parts).ok_or(ExtractError::NotServedByEdge)?;
        match (&info.client_cert, &info.unverified_cert) {
            (Some(cert), _) => Ok(Self(cert.clone())),
            (None, Some(_)) => Err(ExtractError::Unverified),
            (None, None) => Err(ExtractError::NoCertificate),
        }
    }
}

impl<St: Send + Sync> OptionalFromRequestParts<St> for ClientCert {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Option<Self>, Infallible> {
        Ok(connection(parts)
            .and_then(|info| info.client_cert.clone())
            .map(Self))
    }
}

/// Passthrough mode: the leaf the client presented and proved it holds the
/// key of, never validated against a trust store (the application decides
/// what to trust). Use `Option<UnverifiedClientCert>` where a certificate is
/// optional.
#[derive(Clone, Debug)]
pub struct UnverifiedClientCert(pub Arc<ClientCertInfo>);

impl<St: Send + Sync> FromRequestParts<St> for UnverifiedClientCert {
    type Rejection = ExtractError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        let info = connection(parts).ok_or(ExtractError::NotServedByEdge)?;
        info.unverified_cert
            .clone()
            .map(Self)
            .ok_or(ExtractError::NoCertificate)
    }
}

impl<St: Send + Sync> OptionalFromRequestParts<St> for UnverifiedClientCert {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Option<Self>, Infallible> {
        Ok(connection(parts)
            .and_then(|info| info.unverified_cert.clone())
            .map(Self))
    }
}
