//! Behind a load balancer: verifying the client certificate a trusted proxy
//! forwards in a request header (ALB mutual TLS passthrough, CloudFront,
//! Envoy XFCC, RFC 9440, nginx, HAProxy).
//!
//! The proxy terminates the client's TLS and forwards the certificate (and
//! chain, where its dialect carries one); [`ForwardedVerifier::verify`] runs
//! on every request what a direct TLS connection runs once: chain
//! validation against the configured trust store (a root in the header is
//! only a candidate intermediate, never an anchor), revocation (deny lists,
//! CRLs, OCSP), the connection policy, the certificate headers and one
//! connection-log record (`forwarded: true`, the proxy's address in
//! `proxyIp`). The application sees the same [`ConnectionInfo`] and so the
//! same extractors as behind a direct mTLS listener.
//!
//! **The trust boundary.** The header is believed only from a peer inside
//! the configured proxy networks (and, behind a chain of proxies, with the
//! configured number of trusted hops in `X-Forwarded-For`, and the shared
//! secret header when one is configured). From anyone else every
//! certificate header is stripped before the application sees the request
//! and the event is logged; the request then counts as one without a
//! certificate (refused in `Required` mode).
//!
//! **Cost.** A repeated forwarded chain (the same header bytes) is looked
//! up, not decoded or parsed again: the cache keeps the parsed chain and
//! its textual forms, and each request re-checks what can change (the
//! trust-store generation, the validity window, the deny list and CRLs).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use http::header::{HeaderMap, HeaderName};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::acceptor::stage2::{self, PolicyInput, RefusalCause};
use crate::acceptor::{handshake, ConnectionInfo, MtlsAcceptor, Site};
use crate::connection_log::{ConnectionLogRecord, ConnectionStatus};
use crate::reason::ReasonCode;
use crate::revocation::RevocationStatus;
use crate::rustls_verifier::stage1::capture_stage1;
use crate::rustls_verifier::{Rejection, Stage1Outcome, ValidationMode};

mod cache;
mod dialect;
mod proxies;

pub(crate) use dialect::read_chain;
pub use dialect::{ForwardedDialect, ForwardedError, ForwardedLimits, UnknownDialect};
pub(crate) use proxies::TrustedProxies;

use cache::{ForwardedCache, Judged};
use proxies::Untrusted;

/// Why a forwarded request was refused. The response carries only the
/// status code; the reason and detail go to the connection log.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForwardedRefusal {
    /// The forwarded header could not be read (answered 400).
    #[error("the forwarded certificate header is malformed: {0}")]
    Malformed(ForwardedError),
    /// No certificate reached the application in `Required` mode: none was
    /// forwarded, or the request did not come from a trusted proxy
    /// (answered 403).
    #[error("no client certificate was forwarded by a trusted proxy")]
    NoCertificate,
    /// The forwarded chain failed validation or a revocation check that
    /// needs no I/O (answered 403).
    #[error("{0}")]
    Rejected(Rejection),
    /// Revocation or the connection policy refused it (answered 403).
    #[error("refused: {0:?}")]
    Refused(RefusalCause),
}

impl ForwardedRefusal {
    /// The HTTP status the request is answered with: 400 for a header that
    /// cannot be read, 403 otherwise.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            _ => 403,
        }
    }

    /// The connection-log reason code.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::Malformed(ForwardedError::TooLarge { .. }) => {
                ReasonCode::ClientCertMaxSizeExceeded
            }
            Self::Malformed(ForwardedError::TooManyCertificates { .. }) => {
                ReasonCode::ClientCertMaxChainDepthExceeded
            }
            Self::Malformed(_) => ReasonCode::ClientCertInvalid,
            Self::NoCertificate => ReasonCode::ClientCertMissing,
            Self::Rejected(r) => r.reason_code(),
            Self::Refused(cause) => match cause {
                RefusalCause::ResumedSession(r) => r.reason_code(),
                RefusalCause::Revocation(e) => e.reason_code(),
                RefusalCause::Policy { reason, .. } => *reason,
            },
        }
    }
}

/// Verifies forwarded client certificates for one listener's default
/// site. Cheap to clone; built by `MtlsConfigBuilder` from `[forwarded]`
/// (see [`Edge::forwarded`](crate::Edge::forwarded)).
#[derive(Clone)]
pub struct ForwardedVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    dialect: ForwardedDialect,
    proxies: TrustedProxies,
    limits: ForwardedLimits,
    acceptor: MtlsAcceptor,
    cache: ForwardedCache,
    /// The dialect's header names, in its order.
    names: Vec<HeaderName>,
    /// Headers removed from every request besides the reserved certificate
    /// headers: a named dialect's header and the shared-secret header.
    strip: Vec<HeaderName>,
}

impl std::fmt::Debug for ForwardedVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardedVerifier")
            .field("dialect", &self.inner.dialect)
            .field("trusted_proxies", &self.inner.proxies.networks)
            .field("hops", &self.inner.proxies.hops)
            .finish_non_exhaustive()
    }
}

impl ForwardedVerifier {
    /// A verifier reading `dialect` from requests whose peer `proxies`
    /// trusts, judging them with `acceptor`'s default site and logging to
    /// its log sink.
    pub(crate) fn new(
        dialect: ForwardedDialect,
        proxies: TrustedProxies,
        limits: ForwardedLimits,
        acceptor: MtlsAcceptor,
        cache_capacity: usize,
    ) -> Self {
        let names = dialect.header_names();
        let mut strip: Vec<HeaderName> = names.clone();
        if let Some((name, _)) = &proxies.secret {
            strip.push(name.clone());
        }
        Self {
            inner: Arc::new(Inner {
                dialect,
                proxies,
                limits,
                acceptor,
                cache: ForwardedCache::new(cache_capacity),
                names,
                strip,
            }),
        }
    }

    /// The dialect read.
    pub fn dialect(&self) -> &ForwardedDialect {
        &self.inner.dialect
    }

    /// The headers the verifier reads, besides `X-Forwarded-For` (for a
    /// server on another `http` version: copy just these).
    pub fn header_names(&self) -> Vec<HeaderName> {
        let mut names = self.inner.strip.clone();
        names.push(HeaderName::from_static("x-forwarded-for"));
        names
    }

    /// Removes from `headers` every certificate header a client could
    /// forge: the reserved ones of every profile, the dialect's own and the
    /// shared-secret header.
    pub fn strip(&self, headers: &mut HeaderMap) {
        for name in &self.inner.strip {
            headers.remove(name);
        }
        // Spelled with `_` for `-` (some servers and gateways fold them).
        let folded: Vec<HeaderName> = headers
            .keys()
            .filter(|n| n.as_str().contains('_'))
            .filter(|n| {
                let dashed = n.as_str().replace('_', "-");
                self.inner.strip.iter().any(|s| s.as_str() == dashed)
            })
            .cloned()
            .collect();
        for name in folded {
            headers.remove(name);
        }
        crate::header_builder::sanitize(headers);
    }

    /// Judges one request: `peer` is the address its connection came from
    /// (`None` when the server cannot tell, which is never trusted),
    /// `local` the listener's. On success the request's certificate headers
    /// are replaced by the configured ones (client- and proxy-sent copies
    /// removed) and the connection facts are returned for the extractors;
    /// on refusal the caller answers
    /// [`status_code`](ForwardedRefusal::status_code) without detail.
    /// Either way one connection-log record is written.
    pub async fn verify(
        &self,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        headers: &mut HeaderMap,
    ) -> Result<Arc<ConnectionInfo>, ForwardedRefusal> {
        let result = self.judge(peer, local, headers).await;
        self.strip(headers);
        if let Ok(info) = &result {
            info.headers.apply(headers);
        }
        result
    }

    /// [`verify`](Self::verify) without touching the headers (for servers
    /// on another `http` version, which strip with
    /// [`header_names`](Self::header_names) and
    /// [`is_reserved_header`](crate::is_reserved_header) and attach
    /// `ConnectionInfo::headers` themselves).
    pub async fn judge(
        &self,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> Result<Arc<ConnectionInfo>, ForwardedRefusal> {
        let inner = &*self.inner;
        let site = inner.acceptor.default_site();
        let started = Instant::now();
        let connection_id = inner.acceptor.connection_id();
        let mut record = ConnectionLogRecord {
            connection_id: connection_id.clone(),
            client_ip: peer.map(|p| p.ip()),
            client_port: peer.map(|p| p.port()),
            server_ip: local.map(|a| a.ip()),
            server_port: local.map(|a| a.port()),
            distribution_id: site.distribution_id().to_string(),
            trust_store_generation: Some(site.verifier().validator().trust_store().generation()),
            ..ConnectionLogRecord::default()
        };
        let refuse =
            |mut record: ConnectionLogRecord, refusal: ForwardedRefusal, detail: String| {
                record.connection_status_detail = Some(detail);
                inner.acceptor.finish(
                    record,
                    started,
                    ConnectionStatus::Failed(refusal.reason_code()),
                );
                Err(refusal)
            };

        // The trust boundary.
        let present = headers.contains_key(inner.dialect.primary());
        let path = match peer {
            Some(peer) => inner.proxies.resolve(peer.ip(), headers),
            None => Err(Untrusted::Address(IpAddr::from([0, 0, 0, 0]))),
        };
        let (client, chain) = match path {
            Ok(path) => {
                record.forwarded = true;
                record.proxy_ip = Some(path.proxy);
                record.client_ip = Some(path.client);
                record.client_port = None;
                let chain =
                    match inner
                        .cache
                        .read(&inner.dialect, &inner.names, headers, inner.limits)
                    {
                        Ok(chain) => chain,
                        Err(e) => {
                            let detail = format!("forwarded certificate: {e}");
                            return refuse(record, ForwardedRefusal::Malformed(e), detail);
                        }
                    };
                (SocketAddr::new(path.client, 0), chain)
            }
            Err(why) => {
                if present {
                    tracing::warn!(
                        peer = ?peer,
                        header = %inner.dialect.primary(),
                        "a forwarded certificate header from an untrusted peer was stripped: {why}"
                    );
                    record.connection_status_detail =
                        Some(format!("forwarded certificate header stripped: {why}"));
                }
                let client = peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                (client, None)
            }
        };

        let Some(chain) = chain else {
            if site.verifier().mode() == ValidationMode::Required {
                let detail = record.connection_status_detail.take().unwrap_or_else(|| {
                    "no client certificate was forwarded (Required mode)".into()
                });
                return refuse(record, ForwardedRefusal::NoCertificate, detail);
            }
            return self.admit(site, record, started, client, None, None).await;
        };

        let Some((leaf, rest)) = chain.split() else {
            return refuse(
                record,
                ForwardedRefusal::NoCertificate,
                "the forwarded header holds no certificate".into(),
            );
        };

        // Stage 1 on the forwarded chain (for a chain judged before: only
        // what can have changed since).
        let (result, mut report) = capture_stage1(async {
            let now = UnixTime::now();
            let again = chain
                .outcome()
                .and_then(|o| site.verifier().stage1_again(&o, now));
            match again {
                Some(result) => result,
                None => site.verifier().stage1(leaf, rest, now),
            }
        })
        .await;
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(refusal) => {
                if let Some(fields) = handshake::refused_leaf_fields(leaf.clone()) {
                    record.set_leaf(&fields);
                }
                let detail = site.verifier().refusal_detail(&refusal, leaf, rest);
                return refuse(
                    record,
                    ForwardedRefusal::Rejected(refusal.rejection),
                    detail,
                );
            }
        };
        let Some(judged) = inner.cache.remember(&chain, outcome) else {
            let detail = "leaf certificate: cannot be described".to_string();
            return refuse(
                record,
                ForwardedRefusal::Rejected(Rejection::UnreadableCertificate),
                detail,
            );
        };
        record.set_leaf(&judged.fields);
        let admitted = Admitted {
            judged,
            certs: chain.certs().clone(),
        };
        let stage1_revocation = report.revocation.take();
        self.admit(
            site,
            record,
            started,
            client,
            Some(admitted),
            stage1_revocation,
        )
        .await
    }

    /// Stage 2 (revocation answers needing I/O, the connection policy), the
    /// headers and the log record of a request stage 1 admitted (or one
    /// without a certificate, where the mode allows it).
    async fn admit(
        &self,
        site: &Site,
        mut record: ConnectionLogRecord,
        started: Instant,
        client: SocketAddr,
        admitted: Option<Admitted>,
        stage1_revocation: Option<RevocationStatus>,
    ) -> Result<Arc<ConnectionInfo>, ForwardedRefusal> {
        let inner = &*self.inner;
        let connection_id = record.connection_id.clone();
        let chain = match admitted.as_ref().map(|a| &a.judged.outcome) {
            Some(Stage1Outcome::Verified(chain)) => Some(chain),
            _ => None,
        };
        let verified = chain.is_some();
        let mut revocation = stage2::revocation(site, chain, false, stage1_revocation).await;
        let no_certs: Arc<[CertificateDer<'static>]> = Arc::from(Vec::new());
        let input = PolicyInput {
            peer: client,
            connection_id: &connection_id,
            sni: None,
            client_cert: admitted.as_ref().map(|a| &a.judged.client_cert),
            chain,
            peer_certs: admitted.as_ref().map_or(&no_certs, |a| &a.certs),
        };
        let decision = stage2::decide(site, input, &mut revocation).await;
        record.connection_log_custom_data = decision.custom_data.clone();
        if let Some(refused) = decision.refused {
            let refusal = ForwardedRefusal::Refused(refused.cause);
            record.connection_status_detail = Some(refused.detail);
            inner.acceptor.finish(
                record,
                started,
                ConnectionStatus::Failed(refusal.reason_code()),
            );
            return Err(refusal);
        }
        let render = || {
            stage2::render_headers(
                site,
                admitted.as_ref().map(|a| &a.judged.fields),
                verified,
                &connection_id,
                None,
                None,
            )
        };
        // A repeated chain's headers are rendered once (unless they carry
        // the connection id).
        let headers = match &admitted {
            Some(a) if !site.headers().per_connection() => {
                a.judged.headers.get_or_init(render).clone()
            }
            _ => render(),
        };
        let forwarded_by = record.proxy_ip;
        inner
            .acceptor
            .finish(record, started, ConnectionStatus::Success);
        let chain = chain.cloned();
        let (client_cert, cert_fields) = match admitted {
            Some(a) => (
                Some(a.judged.client_cert.clone()),
                Some(a.judged.fields.clone()),
            ),
            None => (None, None),
        };
        Ok(Arc::new(ConnectionInfo {
            connection_id,
            peer: client,
            forwarded_by,
            sni: None,
            client_cert: client_cert.clone().filter(|_| verified),
            chain,
            unverified_cert: client_cert.filter(|_| !verified),
            cert_fields,
            verified,
            revocation_status: revocation.status,
            headers,
            custom_data: decision.custom_data,
        }))
    }
}

/// What stage 1 admitted of a forwarded chain.
struct Admitted {
    judged: Arc<Judged>,
    certs: Arc<[CertificateDer<'static>]>,
}
