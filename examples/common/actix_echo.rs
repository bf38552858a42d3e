//! The quickstart's application on actix-web: answers every request with the
//! headers it received, as one JSON object, after the edge's
//! [`MtlsHeaders`] middleware removed client-sent certificate headers and
//! attached the connection's own. Names are printed as in `echo.rs`.

#![allow(dead_code)]

#[path = "header_names.rs"]
mod header_names;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App, HttpRequest};
use edge_mtls::actix::MtlsHeaders;
use serde_json::Value;

/// An app answering every path with [`echo`].
pub fn app() -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new().wrap(MtlsHeaders).default_service(web::to(echo))
}

/// The request's headers as JSON, names in their documented spelling.
pub async fn echo(req: HttpRequest) -> web::Json<Value> {
    web::Json(header_names::headers_json(
        req.headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
    ))
}
