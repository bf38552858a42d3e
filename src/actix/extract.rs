//! Extractors: handlers receive the connection's certificate and facts.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, ResponseError};

use super::EdgeConnection;
use crate::acceptor::ConnectionInfo;
use crate::chain_validator::ClientCertInfo;

pub use crate::acceptor::ExtractError;

impl ResponseError for ExtractError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(ExtractError::status_code(*self))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// The request's connection: a forwarded request's own (set by
/// [`ForwardedCerts`](super::ForwardedCerts)), else the TLS connection's.
fn connection(req: &HttpRequest) -> Result<EdgeConnection, ExtractError> {
    if let Some(forwarded) = req.extensions().get::<EdgeConnection>() {
        return Ok(forwarded.clone());
    }
    req.conn_data::<EdgeConnection>()
        .cloned()
        .ok_or(ExtractError::NotServedByEdge)
}

/// Everything the pipeline learnt about the request's connection. Use
/// `Option<MtlsConnection>` for routes also served without the pipeline.
#[derive(Clone, Debug)]
pub struct MtlsConnection(pub Arc<ConnectionInfo>);

impl FromRequest for MtlsConnection {
    type Error = ExtractError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(connection(req).map(|c| Self(c.info().clone())))
    }
}

/// The client certificate's leaf, validated against the trust store. A
/// Passthrough listener's certificates are never handed out under this
/// name: they are [`UnverifiedClientCert`]. Use `Option<ClientCert>` where a
/// certificate is optional.
#[derive(Clone, Debug)]
pub struct ClientCert(pub Arc<ClientCertInfo>);

impl FromRequest for ClientCert {
    type Error = ExtractError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(connection(req).and_then(|c| {
            let info = c.info();
            match (&info.client_cert, &info.unverified_cert) {
                (Some(cert), _) => Ok(Self(cert.clone())),
                (None, Some(_)) => Err(ExtractError::Unverified),
                (None, None) => Err(ExtractError::NoCertificate),
            }
        }))
    }
}

/// Passthrough mode: the leaf the client presented and proved it holds the
/// key of, never validated against a trust store (the application decides
/// what to trust). Use `Option<UnverifiedClientCert>` where a certificate is
/// optional.
#[derive(Clone, Debug)]
pub struct UnverifiedClientCert(pub Arc<ClientCertInfo>);

impl FromRequest for UnverifiedClientCert {
    type Error = ExtractError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(connection(req).and_then(|c| {
            c.info()
                .unverified_cert
                .clone()
                .map(Self)
                .ok_or(ExtractError::NoCertificate)
        }))
    }
}
