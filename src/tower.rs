//! A tower layer that gives every request of a connection its certificate
//! headers.
//!
//! Per request, [`MtlsHeaders`] removes every client-sent copy of every header
//! any profile could emit (so a client cannot forge `CloudFront-Viewer-Cert-*`,
//! `X-Amzn-Mtls-*`, `Client-Cert`, `x-forwarded-client-cert`, …), appends the
//! connection's prebuilt values (`Bytes` clones) and inserts the connection's
//! [`ConnectionInfo`] as a request extension for extractors. Servers built on
//! the [`MtlsAcceptor`](crate::MtlsAcceptor) wrap their per-connection service with
//! [`MtlsHeadersLayer::new`]; a service reachable without the pipeline can use
//! [`MtlsHeadersLayer::sanitize_only`] so forged headers never pass either.
//!
//! Behind a proxy that terminates TLS, [`ForwardedLayer`] verifies the
//! certificate the proxy forwards, per request, with the same pipeline.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::acceptor::ConnectionInfo;
use crate::forwarded::ForwardedVerifier;
use crate::header_builder::sanitize;

/// Builds [`MtlsHeaders`] for one connection.
#[derive(Clone, Debug, Default)]
pub struct MtlsHeadersLayer {
    info: Option<Arc<ConnectionInfo>>,
}

impl MtlsHeadersLayer {
    /// Attaches `info`'s headers (and `info` itself) to every request.
    pub fn new(info: Arc<ConnectionInfo>) -> Self {
        Self { info: Some(info) }
    }

    /// Only removes client-sent certificate headers.
    pub fn sanitize_only() -> Self {
        Self { info: None }
    }
}

impl<S> Layer<S> for MtlsHeadersLayer {
    type Service = MtlsHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MtlsHeaders {
            inner,
            info: self.info.clone(),
        }
    }
}

/// The service [`MtlsHeadersLayer`] produces.
#[derive(Clone, Debug)]
pub struct MtlsHeaders<S> {
    inner: S,
    info: Option<Arc<ConnectionInfo>>,
}

impl<S> MtlsHeaders<S> {
    /// Wraps `inner` for the connection described by `info`.
    pub fn new(inner: S, info: Arc<ConnectionInfo>) -> Self {
        Self {
            inner,
            info: Some(info),
        }
    }

    /// The connection this service serves, when it came through the pipeline.
    pub fn connection(&self) -> Option<&Arc<ConnectionInfo>> {
        self.info.as_ref()
    }
}

impl<S, B> Service<http::Request<B>> for MtlsHeaders<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match &self.info {
            Some(info) => {
                info.headers.apply(request.headers_mut());
                request.extensions_mut().insert(info.clone());
            }
            None => sanitize(request.headers_mut()),
        }
        self.inner.call(request)
    }
}

/// Builds [`Forwarded`]: behind a trusted proxy, every request's forwarded
/// certificate is verified ([`ForwardedVerifier::verify`]) before the inner
/// service sees it.
///
/// The peer address decides whether the header is believed: give it per
/// connection with [`for_connection`](Self::for_connection) (what
/// [`crate::axum::serve_forwarded`] does), or let the service read it
/// from the request's extensions (`SocketAddr`, or axum's
/// `ConnectInfo<SocketAddr>` when served with
/// `into_make_service_with_connect_info::<SocketAddr>()`). A request whose
/// peer is unknown is never believed.
#[derive(Clone, Debug)]
pub struct ForwardedLayer {
    verifier: ForwardedVerifier,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
}

impl ForwardedLayer {
    /// Reads each request's peer from its extensions.
    pub fn new(verifier: ForwardedVerifier) -> Self {
        Self {
            verifier,
            peer: None,
            local: None,
        }
    }

    /// For the requests of one connection from `peer` to `local`.
    pub fn for_connection(
        verifier: ForwardedVerifier,
        peer: SocketAddr,
        local: Option<SocketAddr>,
    ) -> Self {
        Self {
            verifier,
            peer: Some(peer),
            local,
        }
    }
}

impl<S> Layer<S> for ForwardedLayer {
    type Service = Forwarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Forwarded {
            inner,
            verifier: self.verifier.clone(),
            peer: self.peer,
            local: self.local,
        }
    }
}

/// The service [`ForwardedLayer`] produces: requests refused are answered
/// 400 (a header that cannot be read) or 403 with an empty body (the reason
/// is in the connection log); requests admitted reach the inner service
/// with the configured certificate headers and the [`ConnectionInfo`] the
/// extractors read.
#[derive(Clone, Debug)]
pub struct Forwarded<S> {
    inner: S,
    verifier: ForwardedVerifier,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
}

fn peer_of<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    let extensions = request.extensions();
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    extensions.get::<SocketAddr>().copied()
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Forwarded<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let peer = self.peer.or_else(|| peer_of(&request));
        let local = self.local;
        Box::pin(async move {
            match verifier.verify(peer, local, request.headers_mut()).await {
                Ok(info) => {
                    request.extensions_mut().insert(info);
                    inner.call(request).await
                }
                Err(refusal) => {
                    let mut response = http::Response::new(ResBody::default());
                    *response.status_mut() = http::StatusCode::from_u16(refusal.status_code())
                        .unwrap_or(http::StatusCode::FORBIDDEN);
                    Ok(response)
                }
            }
        })
    }
}
