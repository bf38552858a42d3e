//! The HTTP seam between [`OcspSource`](super::OcspSource) and a responder.
//!
//! OCSP over HTTP (RFC 6960 Appendix A) is a single request and a single
//! response body, so the trait is two methods. The default implementation,
//! `HyperTransport` (feature `ocsp-http`), lives beside it; tests and
//! deployments with proxies or HTTPS responders supply their own.

use core::fmt;

use bytes::Bytes;

/// The default response size limit: 64 KiB, far above any real response
/// (a few KiB even with a delegated responder chain).
pub(crate) const DEFAULT_MAX_RESPONSE_SIZE: usize = 64 * 1024;

/// The default timeout of one exchange when the transport is used on its own.
#[cfg(feature = "ocsp-http")]
pub(crate) const DEFAULT_TRANSPORT_TIMEOUT: std::time::Duration =
    std::time::Duration::from_secs(10);

/// Why an HTTP exchange with a responder failed.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The URL's scheme is not one this transport speaks.
    #[error("unsupported URL scheme in {0:?} (the default transport speaks plain http)")]
    UnsupportedScheme(String),
    /// The URL could not be used to build a request.
    #[error("invalid request URL {0:?}")]
    InvalidUrl(String),
    /// Connecting or exchanging bytes failed.
    #[error("connection to the OCSP responder failed: {0}")]
    Connect(String),
    /// The exchange did not finish within the timeout.
    #[error("the OCSP responder did not answer within {timeout_ms} ms")]
    Timeout {
        /// The timeout that expired.
        timeout_ms: u64,
    },
    /// The responder answered with an HTTP status other than 200.
    #[error("the OCSP responder answered HTTP {0}")]
    HttpStatus(u16),
    /// The response body is larger than the limit.
    #[error("the OCSP response exceeds {limit} bytes")]
    ResponseTooLarge {
        /// The configured limit.
        limit: usize,
    },
}

/// Sends OCSP requests over HTTP.
///
/// Implementations must bound the size of what they read; the caller bounds
/// the time each call may take.
#[async_trait::async_trait]
pub trait OcspTransport: Send + Sync + fmt::Debug {
    /// POSTs `body` (a DER OCSPRequest) with `Content-Type:
    /// application/ocsp-request` and returns the response body.
    async fn post(&self, url: &http::Uri, body: Bytes) -> Result<Bytes, TransportError>;

    /// GETs `url` (the responder URL with the base64 request appended,
    /// RFC 6960 A.1) and returns the response body.
    async fn get(&self, url: &http::Uri) -> Result<Bytes, TransportError>;
}
