//! Extractors: handlers receive the connection's certificate and facts.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, ResponseError};

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
