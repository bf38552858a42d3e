//! Extractors: handlers receive the connection's certificate and facts.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, ResponseError};

use super::EdgeConnection;
use crate::acceptor::ConnectionInfo;
use crate::chain_validator::ClientCertInfo;

/// Why an extractor found nothing.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// The request did not come through [`server`](super::server) or an
    /// [`on_connect`](super::on_connect) listener (a wiring mistake): 500.
    #[error("the request was not served through the edge-mtls pipeline")]
    NotServedByEdge,
    /// No certificate was presented (Optional or Passthrough mode): 401.
    #[error("no client certificate was presented")]
    NoCertificate,
}

impl ResponseError for ExtractError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotServedByEdge => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NoCertificate => StatusCode::UNAUTHORIZED,
        }
    }
}

fn connection(req: &HttpRequest) -> Result<&EdgeConnection, ExtractError> {
    req.conn_data::<EdgeConnection>()
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

/// The client certificate's leaf (validated, unless the listener runs in
/// Passthrough mode: check [`ConnectionInfo::verified`]). Use
/// `Option<ClientCert>` where a certificate is optional.
#[derive(Clone, Debug)]
pub struct ClientCert(pub Arc<ClientCertInfo>);

impl FromRequest for ClientCert {
    type Error = ExtractError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(connection(req).and_then(|c| {
            c.info()
                .client_cert
                .clone()
                .map(Self)
                .ok_or(ExtractError::NoCertificate)
        }))
    }
}
