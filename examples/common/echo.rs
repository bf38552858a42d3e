//! The quickstart's application: answers every request with the headers it
//! received, as one JSON object. Certificate headers keep the spelling the
//! edge gave them (`CloudFront-Viewer-Cert-Present`); the others are printed
//! as HTTP/1.1 delivered them (lowercase).

#![allow(dead_code)]

#[path = "header_names.rs"]
mod header_names;

use axum::http::HeaderMap;
use axum::response::Json;
use axum::Router;
use serde_json::{Map, Value};

pub use header_names::display_name;

/// A router answering every path with [`echo`].
pub fn router() -> Router {
    Router::new().fallback(echo)
}

/// The request's headers as JSON, names in their documented spelling
/// (`CloudFront-Viewer-Cert-Present`, `X-Amzn-Mtls-Clientcert-Leaf`, `Host`).
pub async fn echo(headers: HeaderMap) -> Json<Value> {
    let mut out = Map::new();
    for (name, value) in &headers {
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
    Json(Value::Object(out))
}
