//! The header middleware: what [`MtlsHeaders`](crate::tower::MtlsHeaders)
//! does for tower services, for actix-web apps.

use std::future::{ready, Ready};
use std::task::{Context, Poll};

use actix_service::{Service, Transform};
use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderMap, HeaderName};

use super::EdgeConnection;
use crate::header_builder::is_reserved_header;

/// Per request, removes every client-sent copy of every header any profile
/// could emit (a client cannot forge `CloudFront-Viewer-Cert-*`,
/// `X-Amzn-Mtls-*`, `Client-Cert`, `x-forwarded-client-cert`, …; names
/// compared case-insensitively, `_` read as `-`) and appends the
/// connection's prebuilt headers (reference-counted clones). On requests of
/// connections that came through neither [`server`](super::server) nor
/// [`on_connect`](super::on_connect) it only removes.
///
/// `App::new().wrap(MtlsHeaders)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MtlsHeaders;

impl<S> Transform<S, ServiceRequest> for MtlsHeaders
where
    S: Service<ServiceRequest>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Transform = MtlsHeadersMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(MtlsHeadersMiddleware { service }))
    }
}

/// The service [`MtlsHeaders`] wraps around an app.
#[derive(Debug)]
pub struct MtlsHeadersMiddleware<S> {
    service: S,
}

impl<S> Service<ServiceRequest> for MtlsHeadersMiddleware<S>
where
    S: Service<ServiceRequest>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let connection = req.conn_data::<EdgeConnection>().cloned();
        apply(connection.as_ref(), req.headers_mut());
        self.service.call(req)
    }
}

pub(super) fn apply(connection: Option<&EdgeConnection>, headers: &mut HeaderMap) {
    // The connection's own list also covers renamed headers and the
    // connection-id header of its configuration.
    let reserved = |name: &HeaderName| match connection {
        Some(c) => c.info().headers.is_reserved(name.as_str()),
        None => is_reserved_header(name.as_str()),
    };
    // Collected first: the map cannot change while its keys are borrowed.
    // Nothing is allocated when no reserved header was sent.
    let doomed: Vec<HeaderName> = headers.keys().filter(|n| reserved(n)).cloned().collect();
    for name in doomed {
        headers.remove(name);
    }
    if let Some(c) = connection {
        for (name, value) in c.headers() {
            headers.append(name.clone(), value.clone());
        }
    }
}
