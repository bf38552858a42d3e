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
use serde_json::Value;

/// A router answering every path with [`echo`].
pub fn router() -> Router {
    Router::new().fallback(echo)
}

/// The request's headers as JSON, names in their documented spelling
/// (`CloudFront-Viewer-Cert-Present`, `X-Amzn-Mtls-Clientcert-Leaf`, `Host`).
pub async fn echo(headers: HeaderMap) -> Json<Value> {
    Json(header_names::headers_json(
        headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
    ))
}
