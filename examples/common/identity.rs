//! The behind-proxy app's answer: the verified identity (the same
//! `ClientCertInfo` a direct mTLS listener hands out) and the certificate
//! headers the app received, as JSON.

#![allow(dead_code)]

use axum::extract::Request;
use axum::response::Json;
use axum::Router;
use edge_mtls::axum::MtlsConnection;
use serde_json::{json, Value};

/// A router answering every path with [`identity`].
pub fn router() -> Router {
    Router::new().fallback(identity)
}

/// The request's verified identity and its `CloudFront-Viewer-Cert-*`
/// headers.
pub async fn identity(MtlsConnection(info): MtlsConnection, request: Request) -> Json<Value> {
    let cert = info.client_cert.as_ref().or(info.unverified_cert.as_ref());
    let headers: serde_json::Map<String, Value> = request
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("cloudfront-viewer-cert-"))
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            )
        })
        .collect();
    Json(json!({
        "verified": info.verified,
        "subject": cert.map(|c| c.subject.clone()),
        "issuer": cert.map(|c| c.issuer.clone()),
        "serialNumber": info.cert_fields.as_ref().map(|f| f.serial_cloudfront().to_string()),
        "sha256": info.cert_fields.as_ref().map(|f| f.sha256_hex().to_string()),
        "clientIp": info.peer.ip().to_string(),
        "forwardedBy": info.forwarded_by.map(|ip| ip.to_string()),
        "connectionId": info.connection_id,
        "headers": headers,
    }))
}
