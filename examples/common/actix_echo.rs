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
use serde_json::{Map, Value};

pub use header_names::display_name;

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
    let mut out = Map::new();
    for (name, value) in req.headers() {
        let name = display_name(name.as_str());
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match out.get_mut(&name) {
            // Repeated fields are combined as HTTP allows (RFC 9110 §5.3).
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                out.insert(name, Value::String(value));
            }
        }
    }
    web::Json(Value::Object(out))
}
