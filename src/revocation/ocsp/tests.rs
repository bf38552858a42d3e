//! Unit tests of response verification and of the source's cache,
//! single-flight and request selection, with responses built in-process
//! (`x509-ocsp` types signed by rcgen keys) and a scripted transport. The
//! real `openssl ocsp` responder is exercised in `tests/revocation_ocsp.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use der::asn1::{BitString, ObjectIdentifier, OctetString};
use der::{DateTime, Decode, Encode};
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, ExtendedKeyUsagePurpose, Issuer,
    KeyPair, KeyUsagePurpose, SigningKey,
};
use rustls_pki_types::UnixTime;
use sha1::{Digest, Sha1};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, OcspGeneralizedTime, OcspResponse, ResponderId, ResponseData,
    RevokedInfo, SingleResponse,
};

use super::*;
use crate::revocation::{
    CertPosition, CertStatus, CertToCheck, ParsedCertificate, RevocationSource, StatusErrorKind,
};

const NOW: u64 = 1_750_000_000;
const HOUR: u64 = 3600;

fn now() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(NOW))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

#[path = "../../../testkit/pki.rs"]
mod pki;

fn dn(cn: &str) -> DistinguishedName {
    pki::name(None, None, cn)
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
}

impl Ca {
    fn new(cn: &str) -> Self {
        let params = pki::ca_params(dn(cn), None);
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Self { params, key, der }
    }

    fn issue(&self, mut params: CertificateParams, key: &KeyPair) -> Vec<u8> {
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_params(&self.params, &self.key);
        params.signed_by(key, &issuer).unwrap().der().to_vec()
    }

    /// A client certificate with `serial` and, optionally, an AIA OCSP URL.
    fn leaf(&self, serial: u64, ocsp_url: Option<&str>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn("client");
        params.serial_number = Some(serial.into());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if let Some(url) = ocsp_url {
            params.custom_extensions = vec![aia_extension(url)];
        }
        self.issue(params, &KeyPair::generate().unwrap())
    }

    /// A delegated responder certificate (with or without id-kp-OCSPSigning).
    fn responder(&self, ocsp_signing: bool) -> (Vec<u8>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(if ocsp_signing {
            "delegated responder"
        } else {
            "not a responder"
        });
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = if ocsp_signing {
            vec![ExtendedKeyUsagePurpose::OcspSigning]
        } else {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        };
        (self.issue(params, &key), key)
    }
}

/// authorityInfoAccess with one id-ad-ocsp URI.
fn aia_extension(url: &str) -> CustomExtension {
    let ad_ocsp = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    let mut uri = vec![0x86, u8::try_from(url.len()).unwrap()];
    uri.extend_from_slice(url.as_bytes());
    let mut desc = ad_ocsp.to_vec();
    desc.extend_from_slice(&uri);
    let mut seq = vec![0x30, u8::try_from(desc.len()).unwrap()];
    seq.extend_from_slice(&desc);
    let mut outer = vec![0x30, u8::try_from(seq.len()).unwrap()];
    outer.extend_from_slice(&seq);
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], outer)
}

fn time(secs: u64) -> OcspGeneralizedTime {
    DateTime::from_unix_duration(Duration::from_secs(secs))
        .unwrap()
        .into()
}

/// Who signs a test response and how `responderID` names it.
enum Signer<'a> {
    IssuerByName,
    IssuerByKey,
    Delegated(&'a [u8], &'a KeyPair),
}

struct Spec<'a> {
    status: x509_ocsp::CertStatus,
    this_update: u64,
    next_update: Option<u64>,
    sha256: bool,
    serial: Option<u64>,
    signer: Signer<'a>,
    nonce: Option<Vec<u8>>,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Self {
            status: x509_ocsp::CertStatus::good(),
            this_update: NOW - HOUR,
            next_update: Some(NOW + HOUR),
            sha256: false,
            serial: None,
            signer: Signer::IssuerByName,
            nonce: None,
        }
    }
}

fn cert_id(ca: &Ca, leaf: &[u8], spec: &Spec<'_>) -> CertId {
    let issuer = x509_cert::Certificate::from_der(&ca.der).unwrap();
    let leaf = x509_cert::Certificate::from_der(leaf).unwrap();
    let serial = match spec.serial {
        Some(s) => x509_cert::serial_number::SerialNumber::from(s),
        None => leaf.tbs_certificate.serial_number.clone(),
    };
    if spec.sha256 {
        CertId::from_issuer::<sha2::Sha256>(&issuer, serial).unwrap()
    } else {
        CertId::from_issuer::<Sha1>(&issuer, serial).unwrap()
    }
}

fn respond(ca: &Ca, leaf: &[u8], spec: Spec<'_>) -> Vec<u8> {
    let (name_der, key, certs): (Vec<u8>, &KeyPair, Option<Vec<x509_cert::Certificate>>) =
        match spec.signer {
            Signer::IssuerByName | Signer::IssuerByKey => (subject_of(&ca.der), &ca.key, None),
            Signer::Delegated(der, key) => (
                subject_of(der),
                key,
                Some(vec![x509_cert::Certificate::from_der(der).unwrap()]),
            ),
        };
    let responder_id = match spec.signer {
        Signer::IssuerByKey => {
            let spki = x509_cert::Certificate::from_der(&ca.der)
                .unwrap()
                .tbs_certificate
                .subject_public_key_info;
            let hash = Sha1::digest(spki.subject_public_key.raw_bytes());
            ResponderId::ByKey(OctetString::new(hash.to_vec()).unwrap())
        }
        _ => ResponderId::ByName(x509_cert::name::Name::from_der(&name_der).unwrap()),
    };
    let id = cert_id(ca, leaf, &spec);
    let response_extensions = spec.nonce.map(|n| {
        vec![x509_cert::ext::Extension {
            extn_id: ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2"),
            critical: false,
            extn_value: OctetString::new(OctetString::new(n).unwrap().to_der().unwrap()).unwrap(),
        }]
    });
    let tbs = ResponseData {
        version: x509_ocsp::Version::V1,
        responder_id,
        produced_at: time(NOW - 60),
        responses: vec![SingleResponse {
            cert_id: id,
            cert_status: spec.status,
            this_update: time(spec.this_update),
            next_update: spec.next_update.map(time),
            single_extensions: None,
        }],
        response_extensions,
    };
    let signature = key.sign(&tbs.to_der().unwrap()).unwrap();
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        // ecdsa-with-SHA256 (rcgen's default key is P-256).
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2"),
            parameters: None,
        },
        signature: BitString::from_bytes(&signature).unwrap(),
        certs,
    };
    OcspResponse::successful(basic).unwrap().to_der().unwrap()
}

fn subject_of(der: &[u8]) -> Vec<u8> {
    x509_cert::Certificate::from_der(der)
        .unwrap()
        .tbs_certificate
        .subject
        .to_der()
        .unwrap()
}

fn source() -> OcspSource {
    OcspSource::builder(provider()).build().unwrap()
}

fn parsed(der: &[u8]) -> ParsedCertificate {
    ParsedCertificate::from_der(der.to_vec()).expect("a certificate")
}

/// The leaf `$leaf` (DER) of `$ca`, to check. A macro so the parsed
/// certificates are temporaries of the caller's statement.
macro_rules! check {
    ($leaf:expr, $ca:expr) => {
        &CertToCheck {
            cert: &parsed($leaf),
            issuer: &parsed(&$ca.der),
            position: CertPosition::Leaf,
        }
    };
}

// ---------------------------------------------------------------------------
// Response verification
// ---------------------------------------------------------------------------

#[test]
fn good_revoked_and_unknown_map_to_statuses() {
    let ca = Ca::new("CA");
    let leaf = ca.leaf(42, None);
    let src = source();
    let good = respond(&ca, &leaf, Spec::default());
    let answer = src
        .verify_response(check!(&leaf, &ca), &good, now())
        .unwrap();
    assert_eq!(answer.status, CertStatus::Good);
    assert_eq!(answer.this_update, NOW - HOUR);
    assert_eq!(answer.next_update, Some(NOW + HOUR));
    assert_eq!(answer.produced_at, NOW - 60);

    let revoked = respond(
        &ca,
        &leaf,
        Spec {
            status: x509_ocsp::CertStatus::revoked(RevokedInfo {
                revocation_time: time(NOW - 2 * HOUR),
                revocation_reason: Some(CrlReason::KeyCompromise),
            }),
            ..Spec::default()
        },
    );
    let answer = src
        .verify_response(check!(&leaf, &ca), &revoked, now())
        .unwrap();
    assert_eq!(
        answer.status,
        CertStatus::Revoked {
            reason: Some(crate::revocation::CrlReason::KEY_COMPROMISE),
            revoked_at: Some(NOW - 2 * HOUR)
        }
    );

    let unknown = respond(
        &ca,
        &leaf,
        Spec {
            status: x509_ocsp::CertStatus::unknown(),
            ..Spec::default()
        },
    );
    let answer = src
        .verify_response(check!(&leaf, &ca), &unknown, now())
        .unwrap();
    assert_eq!(answer.status, CertStatus::Unknown);
}

#[test]
fn sha256_cert_ids_and_by_key_responder_ids_are_accepted() {
    let ca = Ca::new("CA");
    let leaf = ca.leaf(7, None);
    let resp = respond(
        &ca,
        &leaf,
        Spec {
            sha256: true,
            signer: Signer::IssuerByKey,
            ..Spec::default()
        },
    );
    let answer = source()
        .verify_response(check!(&leaf, &ca), &resp, now())
        .unwrap();
    assert_eq!(answer.status, CertStatus::Good);
}

#[test]
fn a_delegated_responder_needs_ocsp_signing_and_the_issuer() {
    let ca = Ca::new("CA");
    let leaf = ca.leaf(7, None);
    let src = source();

    let (delegate, key) = ca.responder(true);
    let resp = respond(
        &ca,
        &leaf,
        Spec {
            signer: Signer::Delegated(&delegate, &key),
            ..Spec::default()
        },
    );
    let answer = src
        .verify_response(check!(&leaf, &ca), &resp, now())
        .unwrap();
    assert_eq!(answer.status, CertStatus::Good);

    let (no_eku, key) = ca.responder(false);
    let resp = respond(
        &ca,
        &leaf,
        Spec {
            signer: Signer::Delegated(&no_eku, &key),
            ..Spec::default()
        },
    );
    assert_eq!(
        src.verify_response(check!(&leaf, &ca), &resp, now()),
        Err(OcspError::ResponderMissingOcspSigning)
    );

    // A responder certified by another CA cannot speak for this one.
    let other = Ca::new("Other CA");
    let (foreign, key) = other.responder(true);
    let resp = respond(
        &ca,
        &leaf,
        Spec {
            signer: Signer::Delegated(&foreign, &key),
            ..Spec::default()
        },
    );
    assert_eq!(
        src.verify_response(check!(&leaf, &ca), &resp, now()),
        Err(OcspError::ResponderNotIssuedByIssuer)
    );
}

#[test]
fn a_response_signed_by_another_key_is_refused() {
    let ca = Ca::new("CA");
    let impostor = Ca::new("CA"); // same name, different key
    let leaf = ca.leaf(7, None);
    let resp = respond(&impostor, &leaf, Spec::default());
    assert_eq!(
        source().verify_response(check!(&leaf, &ca), &resp, now()),
        Err(OcspError::Signature("invalid signature"))
    );
}

#[test]
fn the_cert_id_must_match() {
    let ca = Ca::new("CA");
    let leaf = ca.leaf(7, None);
    let resp = respond(
        &ca,
        &leaf,
        Spec {
            serial: Some(8),
            ..Spec::default()
        },
    );
    assert_eq!(
        source().verify_response(check!(&leaf, &ca), &resp, now()),
        Err(OcspError::CertIdMismatch)
    );
}

#[test]
fn update_times_are_checked_with_clock_skew() {
    let ca = Ca::new("CA");
    let leaf = ca.leaf(7, None);
    let src = source(); // 5 min skew
    let at = |this_update, next_update| {
        let resp = respond(
            &ca,
            &leaf,
            Spec {
                this_update,
                next_update,
                ..Spec::default()
            },
        );
        src.verify_response(check!(&leaf, &ca), &resp, now())
            .map(|a| a.status)
    };
    assert_eq!(at(NOW + 200, Some(NOW + HOUR)), Ok(CertStatus::Good));
    assert_eq!(
        at(NOW + 400, Some(NOW + HOUR)),
        Err(OcspError::ThisUpdateInFuture {
            this_update: NOW + 400,
            now: NOW
        })
    );
    assert_eq!(at(NOW - HOUR, Some(NOW - 200)), Ok(CertStatus::Good));
    assert_eq!(
        at(NOW - HOUR, Some(NOW - 400)),
        Err(OcspError::Expired {
            next_update: NOW - 400,
            now: NOW
        })
    );
    assert_eq!(at(NOW - HOUR, None), Ok(CertStatus::Good));
    assert_eq!(
        at(NOW - 8 * 24 * HOUR, None),
        Err(OcspError::TooOld {
            this_update: NOW - 8 * 24 * HOUR,
            now: NOW
        })
    );
}

#[test]
fn responder_errors_and_garbage_are_errors() {
    let ca = Ca::new("CA");
    let leaf = ca.leaf(7, None);
    let src = source();
    let try_later = OcspResponse::try_later().to_der().unwrap();
    let err = src
        .verify_response(check!(&leaf, &ca), &try_later, now())
        .unwrap_err();
    assert_eq!(err, OcspError::ResponderStatus { status: "tryLater" });
    assert_eq!(err.to_status_error().error_type(), "InternalError");

    let err = src
        .verify_response(check!(&leaf, &ca), b"<html>hello</html>", now())
        .unwrap_err();
    assert_eq!(err, OcspError::Malformed("OCSPResponse"));
    assert_eq!(err.to_status_error().error_type(), "Error");
    assert!(err
        .to_status_error()
        .detail()
        .starts_with("OCSP response verification failed: "));

    let mut good = respond(&ca, &leaf, Spec::default());
    good.push(0);
    assert!(matches!(
        src.verify_response(check!(&leaf, &ca), &good, now()),
        Err(OcspError::Malformed(_))
    ));
    // Every truncation of a valid response fails cleanly.
    let good = respond(&ca, &leaf, Spec::default());
    for n in 0..good.len() {
        assert!(src
            .verify_response(check!(&leaf, &ca), &good[..n], now())
            .is_err());
    }
}

// ---------------------------------------------------------------------------
// The source: requests, cache, single-flight, deadlines
// ---------------------------------------------------------------------------

/// How a [`Scripted`] transport answers a request DER.
type Answer = Box<dyn Fn(&[u8]) -> Result<Bytes, TransportError> + Send + Sync>;

/// A transport answering every request with `answer(request DER)`, after
/// `delay`, counting calls.
struct Scripted {
    answer: Answer,
    delay: Duration,
    gets: AtomicUsize,
    posts: AtomicUsize,
    urls: Mutex<Vec<String>>,
}

impl core::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Scripted")
    }
}

impl Scripted {
    fn new(
        answer: impl Fn(&[u8]) -> Result<Bytes, TransportError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Self::slow(Duration::ZERO, answer)
    }

    fn slow(
        delay: Duration,
        answer: impl Fn(&[u8]) -> Result<Bytes, TransportError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            answer: Box::new(answer),
            delay,
            gets: AtomicUsize::new(0),
            posts: AtomicUsize::new(0),
            urls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> usize {
        self.gets.load(Ordering::SeqCst) + self.posts.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl OcspTransport for Scripted {
    async fn post(&self, url: &http::Uri, body: Bytes) -> Result<Bytes, TransportError> {
        self.posts.fetch_add(1, Ordering::SeqCst);
        self.urls.lock().unwrap().push(url.to_string());
        tokio::time::sleep(self.delay).await;
        (self.answer)(&body)
    }

    async fn get(&self, url: &http::Uri) -> Result<Bytes, TransportError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.urls.lock().unwrap().push(url.to_string());
        tokio::time::sleep(self.delay).await;
        let segment = url.path().rsplit('/').next().unwrap_or_default();
        let b64 = segment
            .replace("%2B", "+")
            .replace("%2F", "/")
            .replace("%3D", "=");
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| TransportError::HttpStatus(400))?;
        (self.answer)(&der)
    }
}

fn source_with(transport: Arc<Scripted>) -> OcspSourceBuilder {
    OcspSource::builder(provider()).transport(transport)
}

#[tokio::test]
async fn answers_are_fetched_once_then_served_from_the_cache() {
    let ca = Arc::new(Ca::new("CA"));
    let leaf = ca.leaf(9, Some("http://ocsp.test/ca"));
    let response = Bytes::from(respond(
        &ca,
        &leaf,
        Spec {
            next_update: Some(NOW + 600),
            ..Spec::default()
        },
    ));
    let transport = Scripted::new(move |_| Ok(response.clone()));
    let src = source_with(transport.clone()).build().unwrap();
    let cert = check!(&leaf, &ca);

    assert_eq!(src.check_now(cert, now()), None, "nothing cached yet");
    assert_eq!(src.check(cert, now()).await, CertStatus::Good);
    assert_eq!(src.check_now(cert, now()), Some(CertStatus::Good));
    assert_eq!(src.check(cert, now()).await, CertStatus::Good);
    assert_eq!(transport.calls(), 1);
    assert_eq!(
        transport.gets.load(Ordering::SeqCst),
        1,
        "short requests use GET"
    );
    assert!(transport.urls.lock().unwrap()[0].starts_with("http://ocsp.test/ca/M"));

    // Cached until nextUpdate (10 min here), before the 30-minute TTL.
    let later = |s| UnixTime::since_unix_epoch(Duration::from_secs(NOW + s));
    assert_eq!(src.check_now(cert, later(599)), Some(CertStatus::Good));
    assert_eq!(src.check_now(cert, later(600)), None);
}

#[tokio::test]
async fn the_ttl_caps_the_cache_and_post_is_used_when_get_is_off() {
    let ca = Arc::new(Ca::new("CA"));
    let leaf = ca.leaf(9, Some("http://ocsp.test"));
    let response = Bytes::from(respond(
        &ca,
        &leaf,
        Spec {
            next_update: Some(NOW + 24 * HOUR),
            ..Spec::default()
        },
    ));
    let transport = Scripted::new(move |_| Ok(response.clone()));
    let src = source_with(transport.clone())
        .use_get(false)
        .cache_ttl(Duration::from_secs(600))
        .build()
        .unwrap();
    let cert = check!(&leaf, &ca);
    assert_eq!(src.check(cert, now()).await, CertStatus::Good);
    assert_eq!(transport.posts.load(Ordering::SeqCst), 1);
    let later = |s| UnixTime::since_unix_epoch(Duration::from_secs(NOW + s));
    assert_eq!(src.check_now(cert, later(599)), Some(CertStatus::Good));
    assert_eq!(src.check_now(cert, later(600)), None);
}

#[tokio::test]
async fn failures_are_negatively_cached() {
    let ca = Arc::new(Ca::new("CA"));
    let leaf = ca.leaf(9, Some("http://ocsp.test"));
    let transport = Scripted::new(|_| Err(TransportError::Connect("refused".into())));
    let src = source_with(transport.clone()).build().unwrap();
    let cert = check!(&leaf, &ca);
    let status = src.check(cert, now()).await;
    assert!(
        matches!(&status, CertStatus::Error(StatusErrorKind::InternalError(d)) if d.contains("refused")),
        "{status:?}"
    );
    assert_eq!(src.check_now(cert, now()), Some(status.clone()));
    let later = UnixTime::since_unix_epoch(Duration::from_secs(NOW + 30));
    assert_eq!(src.check_now(cert, later), None, "30 s negative TTL");
    assert_eq!(transport.calls(), 1);
}

#[tokio::test]
async fn an_http_error_on_get_falls_back_to_post() {
    let ca = Arc::new(Ca::new("CA"));
    let leaf = ca.leaf(9, Some("http://ocsp.test"));
    let response = Bytes::from(respond(&ca, &leaf, Spec::default()));
    let posts_only = Arc::new(AtomicUsize::new(0));
    let seen = posts_only.clone();
    let transport = Scripted::new(move |_| {
        // The first call is the GET: refuse it.
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(TransportError::HttpStatus(405))
        } else {
            Ok(response.clone())
        }
    });
    let src = source_with(transport.clone()).build().unwrap();
    assert_eq!(src.check(check!(&leaf, &ca), now()).await, CertStatus::Good);
    assert_eq!(transport.gets.load(Ordering::SeqCst), 1);
    assert_eq!(transport.posts.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_share_one_request() {
    let ca = Arc::new(Ca::new("CA"));
    let leaf: Arc<[u8]> = ca.leaf(9, Some("http://ocsp.test")).into();
    let response = Bytes::from(respond(&ca, &leaf, Spec::default()));
    let transport = Scripted::slow(Duration::from_millis(100), move |_| Ok(response.clone()));
    let src = source_with(transport.clone()).build().unwrap();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (src, ca, leaf) = (src.clone(), ca.clone(), leaf.clone());
        tasks.push(tokio::spawn(async move {
            src.check(check!(&leaf, &ca), now()).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), CertStatus::Good);
    }
    assert_eq!(transport.calls(), 1);
    assert_eq!(src.lookups_in_flight(), 0);
}

#[tokio::test]
async fn a_slow_responder_hits_the_timeout_within_the_deadline() {
    let ca = Arc::new(Ca::new("CA"));
    let leaf = ca.leaf(9, Some("http://ocsp.test"));
    let transport = Scripted::slow(Duration::from_secs(30), |_| {
        Err(TransportError::Connect("never".into()))
    });
    let src = source_with(transport)
        .request_timeout(Duration::from_millis(100))
        .deadline(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let status = src.check(check!(&leaf, &ca), now()).await;
    assert!(started.elapsed() < Duration::from_millis(300));
    assert!(
        matches!(&status, CertStatus::Error(StatusErrorKind::InternalError(d)) if d.contains("100 ms")),
        "{status:?}"
    );
}

#[tokio::test]
async fn nonces_are_sent_and_must_be_echoed() {
    let ca = Arc::new(Ca::new("CA"));
    let leaf: Arc<[u8]> = ca.leaf(9, Some("http://ocsp.test")).into();
    let echo = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (ca2, leaf2, echo2) = (ca.clone(), leaf.clone(), echo.clone());
    let transport = Scripted::new(move |request| {
        let req = x509_ocsp::OcspRequest::from_der(request).unwrap();
        let nonce = req.nonce().expect("a nonce was sent").0.as_bytes().to_vec();
        assert_eq!(nonce.len(), 16);
        let nonce = if echo2.load(Ordering::SeqCst) {
            nonce
        } else {
            vec![0; 16]
        };
        Ok(Bytes::from(respond(
            &ca2,
            &leaf2,
            Spec {
                nonce: Some(nonce),
                ..Spec::default()
            },
        )))
    });
    let src = source_with(transport.clone()).nonce(true).build().unwrap();
    assert_eq!(src.check(check!(&leaf, &ca), now()).await, CertStatus::Good);

    src.clear_cache();
    echo.store(false, Ordering::SeqCst);
    let status = src.check(check!(&leaf, &ca), now()).await;
    assert!(
        matches!(&status, CertStatus::Error(StatusErrorKind::Error(d)) if d.contains("nonce")),
        "{status:?}"
    );
}

#[tokio::test]
async fn certificates_without_a_responder_url() {
    let ca = Arc::new(Ca::new("CA"));
    let leaf = ca.leaf(9, None);
    let response = Bytes::from(respond(&ca, &leaf, Spec::default()));
    let transport = Scripted::new(move |_| Ok(response.clone()));
    let cert = check!(&leaf, &ca);

    // Nothing to ask: the source does not apply; asked anyway, Unknown
    // without I/O.
    let src = source_with(transport.clone()).build().unwrap();
    assert!(!src.applies_to(cert));
    assert_eq!(src.check_now(cert, now()), Some(CertStatus::Unknown));
    assert_eq!(src.check(cert, now()).await, CertStatus::Unknown);

    // CloudFront's rule: every certificate must carry an OCSP URL.
    let strict = source_with(transport.clone())
        .require_responder_url(true)
        .build()
        .unwrap();
    assert!(strict.applies_to(cert));
    let status = strict.check(cert, now()).await;
    assert!(
        matches!(&status, CertStatus::Error(StatusErrorKind::Error(d)) if d.contains("no OCSP responder URL")),
        "{status:?}"
    );
    assert_eq!(transport.calls(), 0);

    // An override responder answers for every certificate.
    let overridden = source_with(transport.clone())
        .responder_override("http://127.0.0.1:1/ocsp")
        .build()
        .unwrap();
    assert!(overridden.applies_to(cert));
    assert_eq!(overridden.check(cert, now()).await, CertStatus::Good);
    assert_eq!(transport.calls(), 1);
    assert!(transport.urls.lock().unwrap()[0].starts_with("http://127.0.0.1:1/ocsp/"));
}

#[test]
fn the_builder_validates() {
    let b = || OcspSource::builder(provider());
    assert_eq!(
        b().responder_override("not a url").build().unwrap_err(),
        OcspBuildError::InvalidOverrideUrl("not a url".into())
    );
    assert_eq!(
        b().deadline(Duration::ZERO).build().unwrap_err(),
        OcspBuildError::ZeroDuration("deadline")
    );
    assert!(matches!(
        b().request_timeout(Duration::from_secs(10))
            .deadline(Duration::from_secs(1))
            .build(),
        Err(OcspBuildError::TimeoutExceedsDeadline { .. })
    ));
    assert_eq!(
        b().max_response_size(10).build().unwrap_err(),
        OcspBuildError::InvalidResponseSizeLimit(10)
    );
}
