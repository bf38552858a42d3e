//! What one listener, or one SNI name of it, serves with.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::ServerConfig;

use crate::header_builder::HeaderBuilder;
use crate::policy::ConnectionPolicy;
use crate::rustls_verifier::{record_sni, MtlsClientVerifier};

/// Serves one certificate chain and tells the connection log which name the
/// ClientHello asked for, even when the handshake then fails.
#[derive(Debug)]
pub struct SniRecordingResolver(SingleCertAndKey);

impl SniRecordingResolver {
    /// Serves `key` to every client.
    pub fn new(key: CertifiedKey) -> Self {
        Self(SingleCertAndKey::from(key))
    }
}

impl ResolvesServerCert for SniRecordingResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        record_sni(hello.server_name());
        self.0.resolve(hello)
    }
}

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
