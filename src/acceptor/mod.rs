//! The tokio connection pipeline: TLS handshake (stage 1 inside the
//! verifier), then stage 2 (OCSP misses, the connection policy), one
//! connection-log record, and the connection handed to the server with what
//! it needs per request already computed.
//!
//! Under TLS 1.3 the client sends its certificate after it considers the
//! handshake complete, so a client refused here learns of it on its first
//! read (`curl` reports the alert, or "Connection reset by peer").

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::crypto::SecureRandom;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tracing::Instrument as _;

use crate::chain_validator::{ClientCertInfo, VerifiedChain};
use crate::connection_log::{
    ConnectionId, ConnectionLogRecord, ConnectionLogSink, ConnectionStatus, RandomPool,
};
use crate::header_builder::{ConnectionHeaders, HeaderBuilder};
use crate::policy::ConnectionPolicy;
use crate::reason::ReasonCode;
use crate::revocation::RevocationStatus;
use crate::rustls_verifier::{MtlsClientVerifier, Rejection, Stage1Outcome};
use crate::x509::fields::CertFields;

pub(crate) mod handshake;
mod limit;
mod site;
pub(crate) mod stage2;

use handshake::{
    admitted, is_resumed, leaf_fields, peer_certificates, refused_leaf_fields, tls_names,
    Established, HandshakeFailure,
};
use limit::{ConnectionCount, ConnectionSlot};
use stage2::render_headers;
pub use stage2::RefusalCause;

pub use limit::AcceptBackoff;
pub use site::{AcceptorBuildError, Site, SniPattern};

/// What the application learns about a connection, computed once.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The id shared by the connection log and the connection-id header.
    pub connection_id: String,
    /// The client's address. Behind a trusted proxy (forwarded mode), the
    /// client's address as the proxies reported it in `X-Forwarded-For`
    /// (port 0: not reported), or the proxy's when they reported none.
    pub peer: SocketAddr,
    /// Forwarded mode: the trusted proxy the request came from (`None` for
    /// a connection that presented its certificate to this server).
    pub forwarded_by: Option<IpAddr>,
    /// The SNI host name.
    pub sni: Option<String>,
    /// The verified leaf (`None` without a certificate, and in Passthrough
    /// mode, whose certificate is [`unverified_cert`](Self::unverified_cert)).
    pub client_cert: Option<Arc<ClientCertInfo>>,
    /// The verified chain, leaf to trust anchor, parsed once.
    pub chain: Option<VerifiedChain>,
    /// Passthrough mode: the leaf the client presented and proved it holds
    /// the key of, never validated against a trust store.
    pub unverified_cert: Option<Arc<ClientCertInfo>>,
    /// The leaf in every textual dialect, each form computed on first use
    /// (the headers and the log record have already asked for theirs).
    pub cert_fields: Option<CertFields>,
    /// Whether the certificate was validated (false in Passthrough mode).
    pub verified: bool,
    /// Revocation results, when revocation checking is configured.
    pub revocation_status: Option<RevocationStatus>,
    /// The headers every request of this connection receives.
    pub headers: ConnectionHeaders,
    /// The policy's custom log data.
    pub custom_data: Option<String>,
}

/// An accepted, authorised connection.
#[derive(Debug)]
pub struct MtlsStream<IO> {
    /// The TLS stream.
    pub stream: TlsStream<IO>,
    /// What was learnt about the connection.
    pub info: Arc<ConnectionInfo>,
    /// Counts the connection against `max_connections` until dropped.
    _slot: ConnectionSlot,
    /// See [`MtlsAcceptorBuilder::release_idle_buffers`].
    release_idle: bool,
}

impl<IO> MtlsStream<IO> {
    /// Whether the HTTP server integrations release their per-connection
    /// buffers while this connection is idle
    /// ([`MtlsAcceptorBuilder::release_idle_buffers`]).
    pub fn releases_idle_buffers(&self) -> bool {
        self.release_idle
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for MtlsStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MtlsStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Why a request extractor (axum, actix-web) found nothing.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// The request did not come through the edge pipeline (a routing or
    /// wiring mistake): answered 500.
    #[error("the request was not served through the edge-mtls pipeline")]
    NotServedByEdge,
    /// No certificate was presented (Optional or Passthrough mode): answered 401.
    #[error("no client certificate was presented")]
    NoCertificate,
    /// A verified certificate was asked for on a Passthrough listener, whose
    /// certificates are never validated (a wiring mistake: such handlers
    /// take the unverified-certificate extractor): answered 500.
    #[error("the client certificate was not validated (Passthrough mode)")]
    Unverified,
}

impl ExtractError {
    /// The HTTP status code the rejection is answered with.
    pub fn status_code(self) -> u16 {
        match self {
            Self::NotServedByEdge | Self::Unverified => 500,
            Self::NoCertificate => 401,
        }
    }
}

/// Why a connection was not handed over (it has been logged already).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The handshake did not finish in time.
    #[error("TLS handshake timed out")]
    Timeout,
    /// The handshake failed (the reason code says why).
    #[error("TLS handshake failed ({reason}): {}", handshake_cause(.rejection.as_ref(), .source))]
    Handshake {
        /// The connection-log reason code.
        reason: ReasonCode,
        /// Why the verifier refused the client certificate, when it did
        /// (`None` for failures it did not see: no certificate, a TLS or I/O
        /// error). Match on [`Rejection::Validation`] for the failed check.
        rejection: Option<Rejection>,
        /// The I/O or TLS error.
        #[source]
        source: std::io::Error,
    },
    /// The listener already serves `max_connections` connections; this one
    /// was closed before its handshake.
    #[error("connection refused: {limit} connections are open (max_connections)")]
    ConnectionLimit {
        /// The configured limit.
        limit: usize,
    },
    /// Stage 2 (revocation or the connection policy), or the re-verification
    /// of a resumed session, refused the connection.
    #[error("connection refused after the handshake ({reason})")]
    Refused {
        /// The connection-log reason code.
        reason: ReasonCode,
        /// Detail for logs.
        detail: Option<String>,
        /// What refused it, typed: match on it rather than on `detail`.
        cause: RefusalCause,
    },
}

/// A refused certificate reads as the check that failed; other failures as
/// the TLS or I/O error.
fn handshake_cause<'a>(
    rejection: Option<&'a Rejection>,
    source: &'a std::io::Error,
) -> &'a dyn std::fmt::Display {
    match rejection {
        Some(r) => r,
        None => source,
    }
}

impl AcceptError {
    /// The connection-log reason code.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::Timeout => ReasonCode::TcpTimeout,
            Self::ConnectionLimit { .. } => ReasonCode::ConnectionLimitExceeded,
            Self::Handshake { reason, .. } | Self::Refused { reason, .. } => *reason,
        }
    }
}

/// Configures an [`MtlsAcceptor`].
pub struct MtlsAcceptorBuilder {
    inner: Inner,
    /// The SNI patterns as given, checked by `build`.
    patterns: Vec<String>,
}

impl MtlsAcceptorBuilder {
    /// The connection policy of the default site (none: every authenticated
    /// connection is allowed).
    pub fn policy(mut self, policy: Arc<dyn ConnectionPolicy>) -> Self {
        self.inner.default.policy = Some(policy);
        self
    }

    /// The headers each connection's requests receive (default site).
    pub fn headers(mut self, headers: Arc<HeaderBuilder>) -> Self {
        self.inner.default.headers = headers;
        self
    }

    /// Where connection-log records go.
    pub fn log(mut self, sink: Arc<dyn ConnectionLogSink>) -> Self {
        self.inner.log = Some(sink);
        self
    }

    /// The listener id (CloudFront's distribution id) of the default site.
    pub fn distribution_id(mut self, id: impl Into<String>) -> Self {
        self.inner.default.distribution_id = id.into();
        self
    }

    /// How long a handshake may take, from accepting the TCP connection
    /// (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.inner.handshake_timeout = timeout;
        self
    }

    /// Connections served at once at most (default 0: no limit). One more
    /// is closed before its handshake and logged as
    /// `Failed:ConnectionLimitExceeded`: it costs a log record, not a
    /// handshake, and valid clients already connected keep being served.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.inner.connections = Arc::new(ConnectionCount::new(max));
        self
    }

    /// Serves connections whose SNI matches `pattern` with `site` instead of
    /// the default one. `pattern` is a host name (`api.example.com`) or a
    /// wildcard of one label (`*.example.com`), compared case-insensitively;
    /// exact names win over wildcards, earlier entries over later ones.
    ///
    /// The pattern is checked by [`build`](Self::build).
    pub fn sni(mut self, pattern: &str, site: Site) -> Self {
        self.patterns.push(pattern.to_string());
        self.inner.sites.push((pattern.to_ascii_lowercase(), site));
        self
    }

    /// Whether the HTTP/1.1 server integrations (`edge_mtls::axum`) release
    /// hyper's read and write buffers (8 KiB each) while a keep-alive
    /// connection waits for its next request (default `true`): an idle
    /// connection then holds its TLS stream and its connection facts only,
    /// at the cost of setting up hyper's connection state again for the
    /// next request (about a microsecond).
    pub fn release_idle_buffers(mut self, release: bool) -> Self {
        self.inner.release_idle_buffers = release;
        self
    }

    /// Finishes the configuration; refuses an SNI pattern that is not a
    /// host name or a `*.` wildcard of one, and a pattern given twice (the
    /// checks `MtlsConfig` makes for `sni."…"` keys).
    pub fn build(self) -> Result<MtlsAcceptor, AcceptorBuildError> {
        let mut seen = std::collections::HashSet::new();
        for pattern in &self.patterns {
            let pattern = SniPattern::parse(pattern)?;
            if !seen.insert(pattern.as_str().to_string()) {
                return Err(AcceptorBuildError::DuplicateSniPattern {
                    pattern: pattern.as_str().to_string(),
                });
            }
        }
        Ok(MtlsAcceptor {
            inner: Arc::new(self.inner),
        })
    }
}

struct Inner {
    default: Site,
    sites: Vec<(String, Site)>,
    log: Option<Arc<dyn ConnectionLogSink>>,
    handshake_timeout: Duration,
    /// Connection ids: random bytes drawn from the provider in blocks.
    ids: RandomPool,
    connections: Arc<ConnectionCount>,
    release_idle_buffers: bool,
}

impl Inner {
    /// The site for a ClientHello's SNI.
    fn site(&self, sni: Option<&str>) -> &Site {
        let Some(sni) = sni else {
            return &self.default;
        };
        let sni = sni.trim_end_matches('.');
        let exact = self.sites.iter().find(|(p, _)| p.eq_ignore_ascii_case(sni));
        let wildcard = || {
            let (_, parent) = sni.split_once('.')?;
            self.sites.iter().find(|(p, _)| {
                p.strip_prefix("*.")
                    .is_some_and(|suffix| suffix.eq_ignore_ascii_case(parent))
            })
        };
        exact
            .or_else(wildcard)
            .map_or(&self.default, |(_, site)| site)
    }
}

/// Accepts mTLS connections; cheap to clone, share it across tasks.
#[derive(Clone)]
pub struct MtlsAcceptor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MtlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsAcceptor")
            .field("default", &self.inner.default)
            .field("sni", &self.inner.sites)
            .finish_non_exhaustive()
    }
}

impl MtlsAcceptor {
    /// A builder. `config` must have been built with `verifier` as its client
    /// certificate verifier; `random` is the provider's `secure_random`
    /// (connection ids).
    pub fn builder(
        config: Arc<ServerConfig>,
        verifier: Arc<MtlsClientVerifier>,
        random: &'static dyn SecureRandom,
    ) -> MtlsAcceptorBuilder {
        Self::builder_for(Site::new(config, verifier), random)
    }

    /// A builder whose default site (no SNI, or no SNI pattern matched) is
    /// `site`.
    pub fn builder_for(site: Site, random: &'static dyn SecureRandom) -> MtlsAcceptorBuilder {
        MtlsAcceptorBuilder {
            patterns: Vec::new(),
            inner: Inner {
                default: site,
                sites: Vec::new(),
                log: None,
                handshake_timeout: Duration::from_secs(10),
                ids: RandomPool::new(random),
                connections: Arc::new(ConnectionCount::new(0)),
                release_idle_buffers: true,
            },
        }
    }

    /// The site used without SNI or when no SNI pattern matches.
    pub fn default_site(&self) -> &Site {
        &self.inner.default
    }

    /// The site a ClientHello naming `sni` is served by.
    pub fn site_for(&self, sni: Option<&str>) -> &Site {
        self.inner.site(sni)
    }

    /// Runs the whole pipeline for one accepted TCP connection. Every
    /// outcome, success or failure, produces exactly one log record.
    ///
    /// Returns quickly for every failure and never holds a lock across
    /// `.await`, so call it from one task per connection: handshakes then run
    /// concurrently.
    pub async fn accept<IO>(
        &self,
        io: IO,
        peer: SocketAddr,
        local: Option<SocketAddr>,
    ) -> Result<MtlsStream<IO>, AcceptError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        self.run(io, peer, local, None).await
    }

    /// [`accept`](Self::accept) for a TCP connection. A connection refused
    /// after its handshake (stage 2: revocation, the policy) is reset, as
    /// CloudFront does: under TLS 1.3 the client learns of the refusal on its
    /// first read, and curl prints "Connection reset by peer".
    pub async fn accept_tcp(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Result<MtlsStream<TcpStream>, AcceptError> {
        let local = tcp.local_addr().ok();
        // Alerts and small responses go out at once.
        let _ = tcp.set_nodelay(true);
        let reset = |tcp: &TcpStream| {
            let _ = tcp.set_zero_linger();
        };
        self.run(tcp, peer, local, Some(&reset)).await
    }

    /// The stages of one connection, in a `tracing` span naming it:
    /// admission (`max_connections`), the handshake (stage 1 inside the
    /// verifier), a resumed session's re-verification, stage 2 (revocation,
    /// the policy), and the headers; one log record whatever the outcome.
    async fn run<IO>(
        &self,
        io: IO,
        peer: SocketAddr,
        local: Option<SocketAddr>,
        refuse: Option<&(dyn Fn(&IO) + Sync)>,
    ) -> Result<MtlsStream<IO>, AcceptError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let connection_id = self.connection_id();
        let span = tracing::debug_span!("connection", id = %connection_id, peer = %peer);
        self.run_stages(io, peer, local, refuse, connection_id)
            .instrument(span)
            .await
    }

    async fn run_stages<IO>(
        &self,
        io: IO,
        peer: SocketAddr,
        local: Option<SocketAddr>,
        refuse: Option<&(dyn Fn(&IO) + Sync)>,
        connection_id: String,
    ) -> Result<MtlsStream<IO>, AcceptError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let inner = &self.inner;
        let started = Instant::now();
        let mut record = ConnectionLogRecord {
            connection_id: connection_id.clone(),
            client_ip: Some(peer.ip()),
            client_port: Some(peer.port()),
            server_ip: local.map(|a| a.ip()),
            server_port: local.map(|a| a.port()),
            distribution_id: inner.default.distribution_id.clone(),
            trust_store_generation: Some(
                inner
                    .default
                    .verifier
                    .validator()
                    .trust_store()
                    .generation(),
            ),
            ..ConnectionLogRecord::default()
        };

        let Some(slot) = ConnectionSlot::take(&inner.connections) else {
            let limit = inner.connections.max;
            record.connection_status_detail = Some(format!(
                "{limit} connections are open already (max_connections {limit})"
            ));
            if let Some(refuse) = refuse {
                refuse(&io);
            }
            drop(io);
            self.finish(
                record,
                started,
                ConnectionStatus::Failed(ReasonCode::ConnectionLimitExceeded),
            );
            return Err(AcceptError::ConnectionLimit { limit });
        };

        // The site is chosen from the ClientHello's SNI; the log record says
        // which one served (or refused) the connection.
        let handshake = handshake::run(inner, io).await;
        record.tls_sni = handshake.hello_sni;
        if let Some(site) = handshake.site {
            record.distribution_id.clone_from(&site.distribution_id);
            record.trust_store_generation =
                Some(site.verifier.validator().trust_store().generation());
        }
        let Established {
            stream,
            stage1_revocation,
            admitted: recorded,
        } = match handshake.outcome {
            Ok(established) => established,
            Err(HandshakeFailure::TimedOut(after)) => {
                record.connection_status_detail = Some(format!(
                    "the TLS handshake did not finish within {} ms",
                    after.as_millis()
                ));
                self.finish(
                    record,
                    started,
                    ConnectionStatus::Failed(ReasonCode::TcpTimeout),
                );
                return Err(AcceptError::Timeout);
            }
            Err(HandshakeFailure::Failed {
                reason,
                rejection,
                presented_leaf,
                detail,
                source,
            }) => {
                // The failed connection does not keep the certificate: the
                // verifier handed over a copy of the leaf it refused.
                if let Some(fields) = presented_leaf.and_then(refused_leaf_fields) {
                    record.set_leaf(&fields);
                }
                record.connection_status_detail = Some(detail);
                self.finish(record, started, ConnectionStatus::Failed(reason));
                return Err(AcceptError::Handshake {
                    reason,
                    rejection,
                    source,
                });
            }
        };
        let site = handshake.site.unwrap_or(&inner.default);

        let (_, conn) = stream.get_ref();
        (record.tls_protocol, record.tls_cipher) = tls_names(conn);
        record.tls_key_exchange = conn
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name()));
        let sni = conn.server_name().map(str::to_string);
        record.tls_sni = sni.clone();
        let peer_certs = peer_certificates(conn);
        let resumed = is_resumed(conn);
        // Resumed sessions: stage 1 again on the restored chain.
        let admitted = match admitted(site, conn, &peer_certs, recorded) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                if let Some(fields) = peer_certs.first().cloned().and_then(refused_leaf_fields) {
                    record.set_leaf(&fields);
                }
                let detail = match peer_certs.split_first() {
                    Some((leaf, rest)) => site.verifier.refusal_detail(&refusal, leaf, rest),
                    None => refusal.rejection.to_string(),
                };
                let refused = stage2::Refused {
                    reason: refusal.rejection.reason_code(),
                    detail: format!("resumed session: {detail}"),
                    cause: RefusalCause::ResumedSession(refusal.rejection),
                };
                return Err(self.refuse(stream, refuse, record, started, refused));
            }
        };
        let (client_cert, cert_fields) = leaf_fields(admitted.as_ref(), &peer_certs);
        if let Some(fields) = &cert_fields {
            record.set_leaf(fields);
        }
        let chain = match &admitted {
            Some(Stage1Outcome::Verified(chain)) => Some(chain),
            _ => None,
        };
        let verified = chain.is_some();

        // Stage 2: revocation, then the policy.
        let mut revocation = stage2::revocation(site, chain, resumed, stage1_revocation).await;
        let input = stage2::PolicyInput {
            peer,
            connection_id: &connection_id,
            sni: sni.clone(),
            client_cert: client_cert.as_ref(),
            chain,
            peer_certs: &peer_certs,
        };
        let decision = stage2::decide(site, input, &mut revocation).await;
        record.connection_log_custom_data = decision.custom_data.clone();
        if let Some(refused) = decision.refused {
            return Err(self.refuse(stream, refuse, record, started, refused));
        }

        let headers = render_headers(
            site,
            cert_fields.as_ref(),
            verified,
            &connection_id,
            record.tls_protocol.as_deref(),
            record.tls_cipher.as_deref(),
        );
        self.finish(record, started, ConnectionStatus::Success);
        Ok(MtlsStream {
            _slot: slot,
            release_idle: inner.release_idle_buffers,
            stream,
            info: Arc::new(ConnectionInfo {
                connection_id,
                peer,
                forwarded_by: None,
                sni,
                client_cert: client_cert.clone().filter(|_| verified),
                chain: chain.cloned(),
                unverified_cert: client_cert.filter(|_| !verified),
                cert_fields,
                verified,
                revocation_status: revocation.status,
                headers,
                custom_data: decision.custom_data,
            }),
        })
    }

    /// What the application learns about a connection whose handshake the
    /// server ran itself with the default site's configuration
    /// ([`Site::config`]), for servers that cannot hand their connections to
    /// [`accept`](Self::accept) (actix-web's `HttpServer::on_connect`).
    ///
    /// This is stage 1 only: the verifier validated the chain and checked the
    /// revocation answers available without I/O inside the handshake, but no
    /// revocation answer is fetched, no connection policy runs and no log
    /// record is written. A resumed session's restored chain is verified
    /// again here (rustls restores it without asking the verifier); `Err`
    /// means the connection must be refused.
    pub fn describe_handshake(
        &self,
        conn: &rustls::ServerConnection,
        peer: SocketAddr,
    ) -> Result<ConnectionInfo, Rejection> {
        let site = &self.inner.default;
        let peer_certs = peer_certificates(conn);
        let admitted = admitted(site, conn, &peer_certs, None).map_err(|r| r.rejection)?;
        let (client_cert, cert_fields) = leaf_fields(admitted.as_ref(), &peer_certs);
        let verified = matches!(admitted, Some(Stage1Outcome::Verified(_)));
        let connection_id = self.connection_id();
        let (tls_version, tls_cipher) = tls_names(conn);
        let headers = render_headers(
            site,
            cert_fields.as_ref(),
            verified,
            &connection_id,
            tls_version.as_deref(),
            tls_cipher.as_deref(),
        );
        Ok(ConnectionInfo {
            connection_id,
            peer,
            forwarded_by: None,
            sni: conn.server_name().map(str::to_string),
            client_cert: client_cert.clone().filter(|_| verified),
            chain: match admitted {
                Some(Stage1Outcome::Verified(chain)) => Some(chain),
                _ => None,
            },
            unverified_cert: client_cert.filter(|_| !verified),
            cert_fields,
            verified,
            revocation_status: None,
            headers,
            custom_data: None,
        })
    }

    pub(crate) fn connection_id(&self) -> String {
        ConnectionId::from_pool(&self.inner.ids)
            .map(ConnectionId::into_string)
            .unwrap_or_default()
    }

    /// Refuses an established connection after its handshake: resets it
    /// (when the transport can), logs `reason`, and says why.
    fn refuse<IO>(
        &self,
        stream: TlsStream<IO>,
        reset: Option<&(dyn Fn(&IO) + Sync)>,
        mut record: ConnectionLogRecord,
        started: Instant,
        refused: stage2::Refused,
    ) -> AcceptError {
        if let Some(reset) = reset {
            reset(stream.get_ref().0);
        }
        drop(stream);
        let stage2::Refused {
            reason,
            detail,
            cause,
        } = refused;
        record.connection_status_detail = Some(detail.clone());
        self.finish(record, started, ConnectionStatus::Failed(reason));
        AcceptError::Refused {
            reason,
            detail: Some(detail),
            cause,
        }
    }

    pub(crate) fn finish(
        &self,
        mut record: ConnectionLogRecord,
        started: Instant,
        status: ConnectionStatus,
    ) {
        record.connection_status = status;
        record.tls_handshake_duration =
            Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        record.event_timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        if let Some(log) = &self.inner.log {
            log.submit(record);
        }
    }
}
