//! The built configuration every listener shares.

#[allow(unused_imports)]
use super::*;

/// The built configuration, shared by every listener. Cloning is a
/// reference-count increment.
#[derive(Clone)]
pub struct Edge {
    pub(super) inner: Arc<EdgeInner>,
}

pub(super) struct EdgeInner {
    pub(super) acceptor: MtlsAcceptor,
    pub(super) forwarded: Option<ForwardedVerifier>,
    pub(super) trust_store: TrustStoreHandle,
    pub(super) reload: ReloadState,
    pub(super) sink: Option<Arc<dyn ConnectionLogSink>>,
    pub(super) queue: Option<Arc<QueueSink>>,
    pub(super) config: MtlsConfig,
    pub(super) custom_revocation: bool,
}

/// A check of the default site that runs after the handshake (the pipeline's
/// stage 2), which a server running the rustls handshake itself with
/// [`Edge::server_config`] would skip.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PostHandshakeCheck {
    /// A connection policy is configured (it is asynchronous).
    ConnectionPolicy,
    /// OCSP is configured: answers not cached yet are fetched after the
    /// handshake.
    Ocsp,
    /// A revocation source added with
    /// [`MtlsConfigBuilder::revocation_source`] may answer only after I/O.
    RevocationSource,
}

impl fmt::Display for PostHandshakeCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ConnectionPolicy => "the connection policy",
            Self::Ocsp => "OCSP fetches",
            Self::RevocationSource => "a custom revocation source",
        })
    }
}

impl fmt::Debug for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Edge")
            .field("acceptor", &self.inner.acceptor)
            .field(
                "trust_store_generation",
                &self.inner.trust_store.generation(),
            )
            .finish_non_exhaustive()
    }
}

impl Edge {
    /// The connection pipeline (accept, handshake, stage 2, log, headers).
    pub fn acceptor(&self) -> &MtlsAcceptor {
        &self.inner.acceptor
    }

    /// The verifier of forwarded certificates (`[forwarded]`), which the
    /// HTTP integrations run on every request behind a trusted proxy.
    pub fn forwarded(&self) -> Option<&ForwardedVerifier> {
        self.inner.forwarded.as_ref()
    }

    /// The listener's TLS configuration (its default site), for servers that
    /// run the rustls handshake themselves (stage 1 only: the verifier still
    /// validates and checks revocation, but no policy runs and no log record
    /// is written unless the server calls the pipeline).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.inner.acceptor.default_site().config().clone()
    }

    /// What the default site checks only after the handshake. Empty when
    /// stage 1 (the verifier inside the handshake: chain validation, deny
    /// lists, CRLs) decides everything, so a server that runs the handshake
    /// itself with [`server_config`](Self::server_config) enforces the whole
    /// configuration.
    pub fn post_handshake_checks(&self) -> Vec<PostHandshakeCheck> {
        let mut checks = Vec::new();
        if self.inner.acceptor.default_site().policy().is_some() {
            checks.push(PostHandshakeCheck::ConnectionPolicy);
        }
        if self.inner.config.revocation.ocsp.is_some() {
            checks.push(PostHandshakeCheck::Ocsp);
        }
        if self.inner.custom_revocation {
            checks.push(PostHandshakeCheck::RevocationSource);
        }
        checks
    }

    /// The listener's trust store; [`TrustStoreHandle::replace`] swaps the
    /// bundle for new connections without a restart.
    pub fn trust_store(&self) -> &TrustStoreHandle {
        &self.inner.trust_store
    }

    /// The current generation's deny list built from the
    /// `revocation.deny_list` files (add or remove serials at run time;
    /// effective for the next connection, until a [`reload`](Self::reload)
    /// reads the files again). `None` for a Redis deny list
    /// (`redis_deny_list`, feature `redis`).
    pub fn deny_list(&self) -> Option<Arc<MemoryKeyValueStore>> {
        self.inner.reload.memory_deny()
    }

    /// Where connection-log records go.
    pub fn log_sink(&self) -> Option<&Arc<dyn ConnectionLogSink>> {
        self.inner.sink.as_ref()
    }

    /// The settings this handle was built from.
    pub fn config(&self) -> &MtlsConfig {
        &self.inner.config
    }

    /// The queue sink writing to `log.target`, when the configuration opened
    /// one (its written, dropped and unwritten counts).
    pub fn log_queue(&self) -> Option<&Arc<QueueSink>> {
        self.inner.queue.as_ref()
    }

    /// Writes every queued log record and flushes the output (when the log
    /// goes to `log.target`), waiting at most the sink's shutdown deadline.
    /// Returns the records written.
    pub fn flush_log(&self) -> std::io::Result<u64> {
        match &self.inner.queue {
            Some(queue) => queue.shutdown(),
            None => Ok(0),
        }
    }
}
