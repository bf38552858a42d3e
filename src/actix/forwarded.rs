//! Behind a proxy that terminates TLS: the forwarded-certificate middleware
//! for actix-web apps, what [`ForwardedLayer`](crate::tower::ForwardedLayer)
//! does for tower services.

use std::future::{ready, Ready};
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_service::{Service, Transform};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{HttpMessage as _, HttpResponse};
use futures_util::future::LocalBoxFuture;

use super::middleware::apply;
use super::EdgeConnection;
use crate::config::Edge;
use crate::forwarded::ForwardedVerifier;

/// Per request, verifies the client certificate a trusted proxy forwards
/// ([`ForwardedVerifier::judge`]), removes every certificate header a
/// client could forge, and on success attaches the configured headers and
/// the [`EdgeConnection`] the [`ClientCert`](super::ClientCert) and
/// [`MtlsConnection`](super::MtlsConnection) extractors read. Refused
/// requests are answered 400 or 403 with an empty body; the reason code is
/// in the connection log.
///
/// `App::new().wrap(ForwardedCerts::from_edge(&edge)?)`, served over plain
/// HTTP by actix-web's own `HttpServer` (the proxy terminates TLS).
#[derive(Clone, Debug)]
pub struct ForwardedCerts {
    verifier: ForwardedVerifier,
}

impl ForwardedCerts {
    /// The middleware for `verifier`.
    pub fn new(verifier: ForwardedVerifier) -> Self {
        Self { verifier }
    }

    /// The middleware for `edge`'s `[forwarded]` settings (`None` without
    /// them).
    pub fn from_edge(edge: &Edge) -> Option<Self> {
        edge.forwarded().cloned().map(Self::new)
    }
}

impl<S, B> Transform<S, ServiceRequest> for ForwardedCerts
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = ForwardedCertsMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ForwardedCertsMiddleware {
            service: Rc::new(service),
            verifier: self.verifier.clone(),
        }))
    }
}

/// The service [`ForwardedCerts`] wraps around an app.
#[derive(Debug)]
pub struct ForwardedCertsMiddleware<S> {
    service: Rc<S>,
    verifier: ForwardedVerifier,
}

impl<S, B> Service<ServiceRequest> for ForwardedCertsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let verifier = self.verifier.clone();
        Box::pin(async move {
            // actix-web speaks `http` 0.2: copy the few headers the
            // verifier reads into an `http` 1 map.
            let names = verifier.header_names();
            let mut copied = http::HeaderMap::new();
            for name in &names {
                for value in req.headers().get_all(name.as_str()) {
                    if let Ok(value) = http::HeaderValue::from_bytes(value.as_bytes()) {
                        copied.append(name.clone(), value);
                    }
                }
            }
            let local = Some(req.app_config().local_addr());
            let result = verifier.judge(req.peer_addr(), local, &copied).await;
            for name in names.iter().filter(|n| n.as_str() != "x-forwarded-for") {
                req.headers_mut().remove(name.as_str());
            }
            match result {
                Ok(info) => {
                    let connection = EdgeConnection::new(info);
                    apply(Some(&connection), req.headers_mut());
                    req.extensions_mut().insert(connection);
                    service
                        .call(req)
                        .await
                        .map(ServiceResponse::map_into_left_body)
                }
                Err(refusal) => {
                    apply(None, req.headers_mut());
                    let status = StatusCode::from_u16(refusal.status_code())
                        .unwrap_or(StatusCode::FORBIDDEN);
                    let response = HttpResponse::build(status).finish();
                    Ok(req.into_response(response).map_into_right_body())
                }
            }
        })
    }
}
