//! What one listener, or one SNI name of it, serves with.

use std::sync::Arc;

use rustls::ServerConfig;

use crate::header_builder::HeaderBuilder;
use crate::policy::ConnectionPolicy;
use crate::rustls_verifier::MtlsClientVerifier;

/// What one listener (or one SNI name of it) uses: a TLS configuration with
/// its client-certificate verifier, the connection policy, the headers and
/// the listener id that logs and policies see.
#[derive(Clone)]
pub struct Site {
    pub(super) config: Arc<ServerConfig>,
    pub(super) verifier: Arc<MtlsClientVerifier>,
    pub(super) policy: Option<Arc<dyn ConnectionPolicy>>,
    pub(super) headers: Arc<HeaderBuilder>,
    pub(super) distribution_id: String,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("distribution_id", &self.distribution_id)
            .field("mode", &self.verifier.mode())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Site {
    /// A site serving `config`, which must have been built with `verifier` as
    /// its client-certificate verifier. No policy, CloudFront headers,
    /// listener id `default`.
    pub fn new(config: Arc<ServerConfig>, verifier: Arc<MtlsClientVerifier>) -> Self {
        Self {
            config,
            verifier,
            policy: None,
            headers: Arc::new(HeaderBuilder::default()),
            distribution_id: "default".into(),
        }
    }

    /// The connection policy (none: every authenticated connection is allowed).
    pub fn with_policy(mut self, policy: Option<Arc<dyn ConnectionPolicy>>) -> Self {
        self.policy = policy;
        self
    }

    /// The headers each connection's requests receive.
    pub fn with_headers(mut self, headers: Arc<HeaderBuilder>) -> Self {
        self.headers = headers;
        self
    }

    /// The listener id (CloudFront's distribution id) in logs and policies.
    pub fn with_distribution_id(mut self, id: impl Into<String>) -> Self {
        self.distribution_id = id.into();
        self
    }

    /// The TLS configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// The client-certificate verifier.
    pub fn verifier(&self) -> &Arc<MtlsClientVerifier> {
        &self.verifier
    }

    /// The connection policy, when one is configured.
    pub fn policy(&self) -> Option<&Arc<dyn ConnectionPolicy>> {
        self.policy.as_ref()
    }

    /// The header builder.
    pub fn headers(&self) -> &Arc<HeaderBuilder> {
        &self.headers
    }

    /// The listener id.
    pub fn distribution_id(&self) -> &str {
        &self.distribution_id
    }
}

/// A name an SNI site answers for: a host name (`api.example.com`) or a
/// wildcard of one label (`*.example.com`), kept lowercase. Labels are 1 to
/// 63 letters, digits, `-` or `_`; the name at most 253 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SniPattern(String);

impl SniPattern {
    /// Reads a pattern.
    pub fn parse(text: &str) -> Result<Self, AcceptorBuildError> {
        let name = text.strip_prefix("*.").unwrap_or(text);
        let ok = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if ok {
            Ok(Self(text.to_ascii_lowercase()))
        } else {
            Err(AcceptorBuildError::InvalidSniPattern {
                pattern: text.to_string(),
            })
        }
    }

    /// The pattern, lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SniPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mistake caught by [`MtlsAcceptorBuilder::build`](super::MtlsAcceptorBuilder::build).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcceptorBuildError {
    /// An SNI pattern is neither a host name nor a `*.` wildcard of one.
    #[error("SNI pattern `{pattern}` is not a host name or a `*.` wildcard of one")]
    InvalidSniPattern {
        /// The pattern as given.
        pattern: String,
    },
    /// Two SNI sites were given the same pattern.
    #[error("SNI pattern `{pattern}` is given twice")]
    DuplicateSniPattern {
        /// The pattern, lowercase.
        pattern: String,
    },
}
