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

use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::acceptor::ConnectionInfo;
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
