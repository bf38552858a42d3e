//! [`OcspSource`]: the OCSP [`RevocationSource`].

use core::fmt;
use std::sync::Arc;

use bytes::Bytes;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::UnixTime;
use tokio::sync::watch;
use tokio::time::Instant;

use super::builder::{millis, OcspConfig, OcspSourceBuilder};
use super::cache::OcspCache;
use super::cert_id::{CertIdKey, MAX_SERIAL_LEN};
use super::error::OcspError;
use super::request::{encode_request, get_url};
use super::response::{verify_response, Expectation, OcspAnswer};
use super::single_flight::{Join, Leader, SingleFlight};
use super::transport::{OcspTransport, TransportError};
use crate::revocation::{CertStatus, CertToCheck, RevocationMethod, RevocationSource};
use crate::x509::info::ocsp_url;
use crate::x509::parsed::ParsedCertificate;

/// Asks OCSP responders (RFC 6960) about client certificates.
///
/// - The responder is the certificate's authorityInfoAccess id-ad-ocsp URL,
///   or the configured override.
/// - Requests carry a SHA-1 CertID (configurable) and go out as GET when
///   short, POST otherwise; answers with SHA-1 or SHA-256 CertIDs are
///   accepted.
/// - A response counts only when `responseStatus` is successful, it is a
///   BasicOCSPResponse signed by the issuer or by a delegated responder the
///   issuer certified directly with id-kp-OCSPSigning, its responderID names
///   that signer, its CertID is the one asked about, and it is current
///   (`thisUpdate`/`nextUpdate` with clock skew); plus the nonce echo when
///   nonces are on.
/// - Answers are cached per CertID until `nextUpdate`, capped by a TTL
///   (30 min by default, as CloudFront); failures for a short negative TTL.
///   [`check_now`](RevocationSource::check_now) answers from this cache
///   only, so the handshake never waits on the network.
/// - Concurrent checks of one certificate share one HTTP request; each
///   exchange has a timeout and a whole check a deadline.
///
/// Hard- or soft-fail is decided by the checker composing sources (its
/// per-source failure policy); this source reports `Unknown` and `Error`
/// faithfully.
///
/// Needs a tokio runtime for [`check`](RevocationSource::check).
#[derive(Clone)]
pub struct OcspSource {
    inner: Arc<Inner>,
}

struct Inner {
    provider: Arc<CryptoProvider>,
    transport: Arc<dyn OcspTransport>,
    config: OcspConfig,
    cache: OcspCache,
    flights: Arc<SingleFlight<CertIdKey, CertStatus>>,
}

impl fmt::Debug for OcspSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OcspSource")
            .field("transport", &self.inner.transport)
            .field("config", &self.inner.config)
            .field("cached", &self.inner.cache.len())
            .finish_non_exhaustive()
    }
}

impl OcspSource {
    /// Starts configuring a source; `provider` verifies response signatures
    /// and supplies nonces.
    pub fn builder(provider: Arc<CryptoProvider>) -> OcspSourceBuilder {
        OcspSourceBuilder::new(provider)
    }

    pub(crate) fn from_parts(
        provider: Arc<CryptoProvider>,
        transport: Arc<dyn OcspTransport>,
        config: OcspConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                provider,
                transport,
                cache: OcspCache::new(config.cache_capacity),
                config,
                flights: Arc::new(SingleFlight::new()),
            }),
        }
    }

    /// The responder this source would ask about `cert`: the override,
    /// else the certificate's OCSP URL; `Ok(None)` when there is none and
    /// none is required.
    pub fn responder_url(&self, cert: &ParsedCertificate) -> Result<Option<String>, OcspError> {
        let own = cert
            .view()
            .extensions
            .authority_info_access
            .and_then(ocsp_url);
        if own.is_none() && self.inner.config.require_responder_url {
            return Err(OcspError::NoResponderUrl);
        }
        Ok(self.inner.config.responder_override.clone().or(own))
    }

    /// Verifies an OCSP response obtained elsewhere (a stapled or
    /// pre-fetched one) for `cert`, with this source's clock skew and age
    /// rules; pure: no I/O, no cache.
    pub fn verify_response(
        &self,
        cert: &CertToCheck<'_>,
        response: &[u8],
        now: UnixTime,
    ) -> Result<OcspAnswer, OcspError> {
        self.inner
            .verify(cert.cert, cert.issuer, response, None, now.as_secs())
    }

    /// How many answers are cached.
    pub fn cached_entries(&self) -> usize {
        self.inner.cache.len()
    }

    /// Forgets every cached answer.
    pub fn clear_cache(&self) {
        self.inner.cache.clear();
    }

    /// How many lookups are in flight.
    pub fn lookups_in_flight(&self) -> usize {
        self.inner.flights.len()
    }
}

impl Inner {
    /// The CertID of `cert`.
    fn locate(&self, cert: &CertToCheck<'_>) -> Result<CertIdKey, OcspError> {
        let serial = cert.cert.serial_bytes();
        if serial.is_empty() || serial.len() > MAX_SERIAL_LEN {
            return Err(OcspError::CertificateUnreadable {
                which: "certificate",
                field: "serialNumber (length)",
            });
        }
        let issuer = cert.issuer.view();
        Ok(CertIdKey::new(
            self.config.cert_id_hash,
            issuer.subject,
            issuer.public_key,
            serial,
        ))
    }

    fn verify(
        &self,
        cert: &ParsedCertificate,
        issuer: &ParsedCertificate,
        response: &[u8],
        nonce_value: Option<&[u8]>,
        now: u64,
    ) -> Result<OcspAnswer, OcspError> {
        let issuer = issuer.view();
        let c = &self.config;
        let expect = Expectation {
            issuer: &issuer,
            serial: cert.serial_bytes(),
            nonce_value,
            now,
            clock_skew: c.clock_skew.as_secs(),
            max_age_without_next_update: c.max_age_without_next_update.map(|d| d.as_secs()),
        };
        verify_response(
            &self.provider.signature_verification_algorithms,
            &expect,
            response,
        )
    }
}

fn error_status(e: &OcspError) -> CertStatus {
    CertStatus::Error(e.to_status_error())
}

fn parse_uri(url: &str) -> Result<http::Uri, OcspError> {
    let invalid = || OcspError::InvalidResponderUrl { url: url.into() };
    let uri = url.parse::<http::Uri>().map_err(|_| invalid())?;
    if uri.scheme().is_none() || uri.authority().is_none() {
        return Err(invalid());
    }
    Ok(uri)
}

/// Waits for the shared lookup's answer until `deadline`.
async fn wait(
    mut rx: watch::Receiver<Option<CertStatus>>,
    deadline: Instant,
    deadline_ms: u64,
) -> CertStatus {
    let answer = tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await;
    match answer {
        Ok(Ok(value)) => value
            .clone()
            .unwrap_or_else(|| error_status(&OcspError::LookupAbandoned)),
        Ok(Err(_)) => error_status(&OcspError::LookupAbandoned),
        Err(_) => error_status(&OcspError::DeadlineExceeded { deadline_ms }),
    }
}

/// One responder lookup, owned so it can outlive the check that started
/// it: followers still get the answer when the leader's connection is gone.
struct Lookup {
    inner: Arc<Inner>,
    key: CertIdKey,
    url: String,
    cert: ParsedCertificate,
    issuer: ParsedCertificate,
    now: u64,
    deadline: Instant,
}

impl Lookup {
    async fn run(self, leader: Leader<CertIdKey, CertStatus>) {
        let c = &self.inner.config;
        let deadline_ms = millis(c.deadline);
        let outcome = tokio::time::timeout_at(self.deadline, self.fetch())
            .await
            .unwrap_or(Err(OcspError::DeadlineExceeded { deadline_ms }));
        let (status, expires_at) = match outcome {
            Ok(answer) => {
                let cap = self.now.saturating_add(c.cache_ttl.as_secs());
                let until = answer.next_update.map_or(cap, |n| n.min(cap));
                (answer.status, until)
            }
            Err(e) => (
                error_status(&e),
                self.now.saturating_add(c.negative_cache_ttl.as_secs()),
            ),
        };
        let cached = status.clone();
        leader.finish(status, || {
            self.inner
                .cache
                .insert(self.key.clone(), cached, expires_at, self.now)
        });
    }

    async fn fetch(&self) -> Result<OcspAnswer, OcspError> {
        let nonce = match self.inner.config.nonce_len {
            Some(n) => {
                let mut bytes = vec![0u8; n];
                self.inner
                    .provider
                    .secure_random
                    .fill(&mut bytes)
                    .map_err(|_| {
                        OcspError::RequestEncoding("no randomness for the nonce".into())
                    })?;
                Some(bytes)
            }
            None => None,
        };
        let request = encode_request(&self.key, nonce.as_deref())?;
        let body = self.exchange(request.der).await.inspect_err(|e| {
            tracing::warn!("OCSP request to {} failed: {e}", self.url);
        })?;
        self.inner.verify(
            &self.cert,
            &self.issuer,
            &body,
            request.nonce_value.as_deref(),
            self.now,
        )
    }

    /// GET when enabled and short enough, else POST; a responder that
    /// refuses the GET with an HTTP error status gets the POST.
    async fn exchange(&self, der: Vec<u8>) -> Result<Bytes, OcspError> {
        let c = &self.inner.config;
        let transport = &self.inner.transport;
        let timeout = c.request_timeout;
        let timed_out = || {
            OcspError::Transport(TransportError::Timeout {
                timeout_ms: millis(timeout),
            })
        };
        if c.use_get {
            if let Some(url) = get_url(&self.url, &der) {
                let uri = parse_uri(&url)?;
                match tokio::time::timeout(timeout, transport.get(&uri)).await {
                    Err(_) => return Err(timed_out()),
                    Ok(Ok(body)) => return Ok(body),
                    Ok(Err(TransportError::HttpStatus(_))) => {}
                    Ok(Err(e)) => return Err(e.into()),
                }
            }
        }
        let uri = parse_uri(&self.url)?;
        match tokio::time::timeout(timeout, transport.post(&uri, Bytes::from(der))).await {
            Err(_) => Err(timed_out()),
            Ok(result) => result.map_err(Into::into),
        }
    }
}

#[async_trait::async_trait]
impl RevocationSource for OcspSource {
    fn method(&self) -> RevocationMethod {
        RevocationMethod::Ocsp
    }

    /// With an override responder or CloudFront's "every certificate has an
    /// OCSP URL" rule, every certificate; otherwise only those whose
    /// authorityInfoAccess names a responder (an unreadable one too, so the
    /// error is reported).
    fn applies_to(&self, cert: &CertToCheck<'_>) -> bool {
        let c = &self.inner.config;
        c.responder_override.is_some()
            || c.require_responder_url
            || !matches!(self.responder_url(cert.cert), Ok(None))
    }

    fn check_now(&self, cert: &CertToCheck<'_>, now: UnixTime) -> Option<CertStatus> {
        let key = match self.inner.locate(cert) {
            Ok(key) => key,
            Err(e) => return Some(error_status(&e)),
        };
        if let Some(status) = self.inner.cache.get(&key, now.as_secs()) {
            return Some(status);
        }
        match self.responder_url(cert.cert) {
            Err(e) => Some(error_status(&e)),
            Ok(None) => Some(CertStatus::Unknown),
            Ok(Some(_)) => None,
        }
    }

    async fn check(&self, cert: &CertToCheck<'_>, now: UnixTime) -> CertStatus {
        let now = now.as_secs();
        let key = match self.inner.locate(cert) {
            Ok(key) => key,
            Err(e) => return error_status(&e),
        };
        if let Some(status) = self.inner.cache.get(&key, now) {
            return status;
        }
        let url = match self.responder_url(cert.cert) {
            Err(e) => return error_status(&e),
            Ok(None) => return CertStatus::Unknown,
            Ok(Some(url)) => url,
        };
        let c = &self.inner.config;
        let deadline_ms = millis(c.deadline);
        let deadline = Instant::now() + c.deadline;
        let inner = &self.inner;
        match inner.flights.join(&key, || inner.cache.get(&key, now)) {
            Join::Ready(status) => status,
            Join::Follower(rx) => wait(rx, deadline, deadline_ms).await,
            Join::Leader(leader) => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return error_status(&OcspError::NoRuntime);
                };
                let rx = leader.subscribe();
                let lookup = Lookup {
                    inner: Arc::clone(&self.inner),
                    key,
                    url,
                    cert: cert.cert.clone(),
                    issuer: cert.issuer.clone(),
                    now,
                    deadline,
                };
                runtime.spawn(lookup.run(leader));
                wait(rx, deadline, deadline_ms).await
            }
        }
    }
}
