//! Configuration of an [`OcspSource`], validated once by
//! [`OcspSourceBuilder::build`].

use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;

use super::cert_id::CertIdHash;
use super::error::OcspBuildError;
#[cfg(feature = "ocsp-http")]
use super::hyper_transport::HyperTransport;
use super::source::OcspSource;
use super::transport::{OcspTransport, DEFAULT_MAX_RESPONSE_SIZE};

/// Everything an [`OcspSource`] is told; valid once built.
#[derive(Clone, Debug)]
pub(crate) struct OcspConfig {
    pub(crate) responder_override: Option<String>,
    pub(crate) use_get: bool,
    pub(crate) request_timeout: Duration,
    pub(crate) deadline: Duration,
    pub(crate) cache_ttl: Duration,
    pub(crate) negative_cache_ttl: Duration,
    pub(crate) cache_capacity: usize,
    pub(crate) clock_skew: Duration,
    pub(crate) nonce_len: Option<usize>,
    pub(crate) require_responder_url: bool,
    pub(crate) cert_id_hash: CertIdHash,
    pub(crate) max_age_without_next_update: Option<Duration>,
}

impl Default for OcspConfig {
    fn default() -> Self {
        Self {
            responder_override: None,
            use_get: true,
            request_timeout: Duration::from_secs(3),
            deadline: Duration::from_secs(5),
            // CloudFront caches OCSP responses "about 30 minutes".
            cache_ttl: Duration::from_secs(30 * 60),
            negative_cache_ttl: Duration::from_secs(30),
            cache_capacity: 100_000,
            clock_skew: Duration::from_secs(5 * 60),
            nonce_len: None,
            require_responder_url: false,
            cert_id_hash: CertIdHash::Sha1,
            max_age_without_next_update: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// Builds an [`OcspSource`]; see [`OcspSource::builder`].
#[derive(Debug)]
pub struct OcspSourceBuilder {
    provider: Arc<CryptoProvider>,
    transport: Option<Arc<dyn OcspTransport>>,
    max_response_size: usize,
    config: OcspConfig,
}

impl OcspSourceBuilder {
    pub(crate) fn new(provider: Arc<CryptoProvider>) -> Self {
        Self {
            provider,
            transport: None,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            config: OcspConfig::default(),
        }
    }

    /// The HTTP transport (default, with the `ocsp-http` feature:
    /// `HyperTransport` with the request
    /// timeout and response size limit configured here).
    pub fn transport(mut self, transport: Arc<dyn OcspTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Ask this responder for every certificate instead of the URL in its
    /// authorityInfoAccess (a local responder or a caching proxy).
    pub fn responder_override(mut self, url: impl Into<String>) -> Self {
        self.config.responder_override = Some(url.into());
        self
    }

    /// Use HTTP GET when the encoded request is shorter than 255 bytes
    /// (RFC 5019 §5; cacheable by HTTP caches). Default: on; POST otherwise.
    pub fn use_get(mut self, yes: bool) -> Self {
        self.config.use_get = yes;
        self
    }

    /// Time allowed for one HTTP exchange (default 3 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Time allowed for a whole check, including waiting on a lookup another
    /// connection started (default 5 s).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.config.deadline = deadline;
        self
    }

    /// Longest time a verified answer is kept; shorter when its
    /// `nextUpdate` comes first (default 30 min, as CloudFront).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.config.cache_ttl = ttl;
        self
    }

    /// How long a failure is remembered before the responder is asked again
    /// (default 30 s; zero disables the negative cache).
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.config.negative_cache_ttl = ttl;
        self
    }

    /// Most answers kept (default 100,000; zero disables the cache).
    pub fn cache_capacity(mut self, entries: usize) -> Self {
        self.config.cache_capacity = entries;
        self
    }

    /// Clock difference tolerated on `thisUpdate` and `nextUpdate` and on
    /// a delegated responder certificate's validity (default 5 min).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.config.clock_skew = skew;
        self
    }

    /// Send a random 16-byte nonce and require the response to echo it
    /// (default off: most production responders serve pre-signed answers
    /// without nonces).
    pub fn nonce(mut self, yes: bool) -> Self {
        self.config.nonce_len = yes.then_some(16);
        self
    }

    /// Require every checked certificate to carry an OCSP URL in
    /// authorityInfoAccess, as CloudFront does when OCSP is enabled; one
    /// without yields an `Error` status. Default off: such a certificate is
    /// `Unknown` to this source (it has nothing to say about it).
    pub fn require_responder_url(mut self, yes: bool) -> Self {
        self.config.require_responder_url = yes;
        self
    }

    /// The CertID hash algorithm of requests (default SHA-1, which every
    /// responder supports; answers in SHA-1 or SHA-256 are accepted either way).
    pub fn cert_id_hash(mut self, hash: CertIdHash) -> Self {
        self.config.cert_id_hash = hash;
        self
    }

    /// Largest response body read by the default transport (default 64 KiB).
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_response_size = bytes;
        self
    }

    /// Refuse answers without `nextUpdate` whose `thisUpdate` is older than
    /// this (default 7 days, the CA/Browser Forum's cap on OCSP validity;
    /// `None` accepts any age).
    pub fn max_age_without_next_update(mut self, age: Option<Duration>) -> Self {
        self.config.max_age_without_next_update = age;
        self
    }

    /// Validates the configuration and builds the source.
    pub fn build(self) -> Result<OcspSource, OcspBuildError> {
        let c = &self.config;
        if let Some(url) = &c.responder_override {
            let uri = url
                .parse::<http::Uri>()
                .map_err(|_| OcspBuildError::InvalidOverrideUrl(url.clone()))?;
            if uri.scheme().is_none() || uri.authority().is_none() {
                return Err(OcspBuildError::InvalidOverrideUrl(url.clone()));
            }
        }
        for (name, d) in [
            ("request_timeout", c.request_timeout),
            ("deadline", c.deadline),
        ] {
            if d.is_zero() {
                return Err(OcspBuildError::ZeroDuration(name));
            }
        }
        if c.request_timeout > c.deadline {
            return Err(OcspBuildError::TimeoutExceedsDeadline {
                request_ms: millis(c.request_timeout),
                deadline_ms: millis(c.deadline),
            });
        }
        if !(1024..=1024 * 1024).contains(&self.max_response_size) {
            return Err(OcspBuildError::InvalidResponseSizeLimit(
                self.max_response_size,
            ));
        }
        if let Some(n) = c.nonce_len {
            if !(1..=32).contains(&n) {
                return Err(OcspBuildError::InvalidNonceLength(n));
            }
        }
        if self
            .provider
            .signature_verification_algorithms
            .all
            .is_empty()
        {
            return Err(OcspBuildError::NoSignatureAlgorithms);
        }
        let transport = match self.transport {
            Some(transport) => transport,
            #[cfg(feature = "ocsp-http")]
            None => Arc::new(HyperTransport::new(
                self.config.request_timeout,
                self.max_response_size,
            )),
            #[cfg(not(feature = "ocsp-http"))]
            None => return Err(OcspBuildError::NoTransport),
        };
        Ok(OcspSource::from_parts(
            self.provider,
            transport,
            self.config,
        ))
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
