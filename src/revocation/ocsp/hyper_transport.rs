//! The default [`OcspTransport`]: hyper-util's pooled HTTP/1 client over
//! plain TCP (OCSP responders serve `http://`; the responses are signed).

use core::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::transport::{
    OcspTransport, TransportError, DEFAULT_MAX_RESPONSE_SIZE, DEFAULT_TRANSPORT_TIMEOUT,
};

/// HTTP/1 over plain TCP with a bounded response size and a timeout.
///
/// Needs a tokio runtime when used (connections are driven by tasks).
#[derive(Clone)]
pub struct HyperTransport {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    max_response_size: usize,
}

impl fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperTransport")
            .field("timeout", &self.timeout)
            .field("max_response_size", &self.max_response_size)
            .finish_non_exhaustive()
    }
}

impl Default for HyperTransport {
    fn default() -> Self {
        Self::new(DEFAULT_TRANSPORT_TIMEOUT, DEFAULT_MAX_RESPONSE_SIZE)
    }
}

impl HyperTransport {
    /// A transport whose exchanges (connect, request, whole body) take at
    /// most `timeout` and whose response bodies are at most
    /// `max_response_size` bytes.
    pub fn new(timeout: Duration, max_response_size: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(connector);
        Self {
            client,
            timeout,
            max_response_size,
        }
    }

    async fn exchange(
        &self,
        method: Method,
        url: &http::Uri,
        body: Option<Bytes>,
    ) -> Result<Bytes, TransportError> {
        if url.scheme_str() != Some("http") {
            return Err(TransportError::UnsupportedScheme(url.to_string()));
        }
        let mut builder = Request::builder()
            .method(method)
            .uri(url.clone())
            .header(ACCEPT, "application/ocsp-response");
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/ocsp-request");
        }
        let request = builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|_| TransportError::InvalidUrl(url.to_string()))?;
        let timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| TransportError::Connect(error_chain(&e)))?;
            if response.status() != StatusCode::OK {
                return Err(TransportError::HttpStatus(response.status().as_u16()));
            }
            let limit = self.max_response_size;
            let declared = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX)) {
                return Err(TransportError::ResponseTooLarge { limit });
            }
            let collected = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<LengthLimitError>().is_some() {
                        TransportError::ResponseTooLarge { limit }
                    } else {
                        TransportError::Connect(e.to_string())
                    }
                })?;
            Ok(collected.to_bytes())
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| TransportError::Timeout { timeout_ms })?
    }
}

/// The error and its sources on one line ("client error (Connect): tcp
/// connect error: Connection refused").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    // Bounded: error chains are short, but never loop forever on a cycle.
    for _ in 0..8 {
        let Some(s) = source else { break };
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[async_trait::async_trait]
impl OcspTransport for HyperTransport {
    async fn post(&self, url: &http::Uri, body: Bytes) -> Result<Bytes, TransportError> {
        self.exchange(Method::POST, url, Some(body)).await
    }

    async fn get(&self, url: &http::Uri) -> Result<Bytes, TransportError> {
        self.exchange(Method::GET, url, None).await
    }
}
