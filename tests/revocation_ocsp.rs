//! OCSP against the real `openssl ocsp` responder: certificates issued and
//! revoked with `openssl ca` (an `index.txt` database), responders signing
//! as the CA or as a delegated responder, plus responders that are down,
//! slow or answer garbage, a burst of 1,000 concurrent checks, the source
//! composed into the `RevocationChecker` under hard- and soft-fail, and in
//! real TLS handshakes (stage 2 fetches, stage 1 answers from the cache).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::openssl_ca::{client_extensions, free_port, responder_extensions, OpensslCa};
use common::revocation::{openssl_identity, revocation_verifier};
use edge_mtls::ReasonCode;
use edge_mtls::{
    CertPosition, CertStatus, CertStatusKind, CertToCheck, ChainValidity, FailurePolicy,
    ImmediateCheck, OcspSource, OcspSourceBuilder, RevocationChain, RevocationChecker,
    RevocationError, RevocationScope, RevocationSource,
};
use edge_mtls::{HyperTransport, OcspTransport, TransportError};
use rustls::AlertDescription;
use rustls_pki_types::UnixTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn now() -> UnixTime {
    UnixTime::now()
}

/// The leaf `$cert` (DER) issued by `$ca` (DER), to check. A macro so the
/// parsed certificates are temporaries of the caller's statement.
macro_rules! leaf {
    ($cert:expr, $ca:expr) => {
        &CertToCheck {
            cert: &parsed($cert),
            issuer: &parsed($ca),
            position: CertPosition::Leaf,
        }
    };
}

/// A CA with a responder port chosen up front, so certificates can name
/// `http://127.0.0.1:PORT` in authorityInfoAccess before it starts.
struct Fixture {
    ca: OpensslCa,
    port: u16,
    ca_der: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        let ca = OpensslCa::new("OCSP Test CA");
        let ca_der = ca.der();
        Fixture {
            ca,
            port: free_port(),
            ca_der,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn client(&self, name: &str) -> Vec<u8> {
        self.ca
            .issue(name, name, &client_extensions(Some(&self.url())))
    }
}

fn source() -> OcspSourceBuilder {
    OcspSource::builder(common::provider())
}

fn error_detail(status: &CertStatus) -> (&'static str, String) {
    match status {
        CertStatus::Error(kind) => (kind.error_type(), kind.detail().to_string()),
        other => panic!("expected an Error status, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_revoked_and_unknown_from_the_real_responder() {
    let f = Fixture::new();
    let good = f.client("good");
    let revoked = f.client("revoked");
    f.ca.revoke("revoked", "keyCompromise");
    let stranger =
        f.ca.issue_outside_database("stranger", "stranger", "0x7777");
    let _responder = f.ca.start_responder(f.port, "ca");

    for use_get in [true, false] {
        let src = source().use_get(use_get).build().unwrap();
        let status = src.check(leaf!(&good, &f.ca_der), now()).await;
        assert_eq!(status, CertStatus::Good, "GET {use_get}");
        // Now cached: stage 1 answers without I/O.
        assert_eq!(
            src.check_now(leaf!(&good, &f.ca_der), now()),
            Some(CertStatus::Good)
        );

        let status = src.check(leaf!(&revoked, &f.ca_der), now()).await;
        let CertStatus::Revoked { reason, revoked_at } = status else {
            panic!("expected Revoked, got {status:?}");
        };
        assert_eq!(
            reason,
            Some(edge_mtls::CrlReason::KEY_COMPROMISE),
            "keyCompromise"
        );
        let at = revoked_at.expect("revocation time");
        assert!(at.abs_diff(now().as_secs()) < 600, "revoked just now: {at}");

        // A serial the CA's database has never seen (and no OCSP URL of its
        // own: asked through the override).
        let src = source()
            .use_get(use_get)
            .responder_override(f.url())
            .build()
            .unwrap();
        assert_eq!(
            src.check(leaf!(&stranger, &f.ca_der), now()).await,
            CertStatus::Unknown
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nonce_is_echoed_by_the_real_responder() {
    let f = Fixture::new();
    let good = f.client("good");
    let _responder = f.ca.start_responder(f.port, "ca");
    let src = source().nonce(true).build().unwrap();
    assert_eq!(
        src.check(leaf!(&good, &f.ca_der), now()).await,
        CertStatus::Good
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegated_responder_with_ocsp_signing_is_accepted() {
    let f = Fixture::new();
    let good = f.client("good");
    let revoked = f.client("revoked");
    f.ca.revoke("revoked", "superseded");
    f.ca.issue("responder", "OCSP Responder", &responder_extensions(true));
    let _responder = f.ca.start_responder(f.port, "responder");

    let src = source().build().unwrap();
    assert_eq!(
        src.check(leaf!(&good, &f.ca_der), now()).await,
        CertStatus::Good
    );
    assert!(matches!(
        src.check(leaf!(&revoked, &f.ca_der), now()).await,
        CertStatus::Revoked {
            reason: Some(edge_mtls::CrlReason::SUPERSEDED),
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegated_responder_without_ocsp_signing_is_refused() {
    let f = Fixture::new();
    let good = f.client("good");
    f.ca.issue("impostor", "Not A Responder", &responder_extensions(false));
    let _responder = f.ca.start_responder(f.port, "impostor");

    let status = source()
        .build()
        .unwrap()
        .check(leaf!(&good, &f.ca_der), now())
        .await;
    let (kind, detail) = error_detail(&status);
    assert_eq!(kind, "Error");
    assert!(detail.contains("OCSPSigning"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_of_another_ca_is_refused() {
    let f = Fixture::new();
    let good = f.client("good");
    let other = OpensslCa::new("Other CA");
    let _responder = other.start_responder(f.port, "ca");
    let status = source()
        .build()
        .unwrap()
        .check(leaf!(&good, &f.ca_der), now())
        .await;
    let (kind, detail) = error_detail(&status);
    assert_eq!(kind, "Error");
    assert!(
        detail.contains("not issued by the certificate's issuer"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_must_carry_an_ocsp_url_when_required() {
    let f = Fixture::new();
    let bare = f.ca.issue("bare", "bare", &client_extensions(None));
    let lenient = source().build().unwrap();
    assert_eq!(
        lenient.check_now(leaf!(&bare, &f.ca_der), now()),
        Some(CertStatus::Unknown)
    );
    let strict = source().require_responder_url(true).build().unwrap();
    let status = strict.check(leaf!(&bare, &f.ca_der), now()).await;
    let (kind, detail) = error_detail(&status);
    assert_eq!(kind, "Error");
    assert!(detail.contains("no OCSP responder URL"), "{detail}");
}

// ---------------------------------------------------------------------------
// Responders that fail: every check ends in Error within the deadline.
// ---------------------------------------------------------------------------

const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
const DEADLINE: Duration = Duration::from_millis(1500);
/// Scheduling slack on a shared 2-core machine.
const MARGIN: Duration = Duration::from_millis(500);

fn failing_source() -> OcspSource {
    source()
        .request_timeout(REQUEST_TIMEOUT)
        .deadline(DEADLINE)
        .build()
        .unwrap()
}

/// Checks `cert`, asserting it ends in an Error within the deadline;
/// returns the error type and detail and the time taken.
async fn check_fails_in_time(cert: &[u8], ca: &[u8]) -> (&'static str, String, Duration) {
    let started = Instant::now();
    let status = failing_source().check(leaf!(cert, ca), now()).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < DEADLINE + MARGIN,
        "took {elapsed:?} (deadline {DEADLINE:?})"
    );
    let (kind, detail) = error_detail(&status);
    eprintln!("{kind}: {detail} after {elapsed:?}");
    (kind, detail, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_that_is_down_is_an_internal_error() {
    let f = Fixture::new();
    let good = f.client("good"); // nothing listens on f.port
    let (kind, detail, _) = check_fails_in_time(&good, &f.ca_der).await;
    assert_eq!(kind, "InternalError");
    assert!(
        detail.contains("connection to the OCSP responder failed"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds connections without ever answering.
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let ca = OpensslCa::new("OCSP Test CA");
    let cert = ca.issue(
        "good",
        "good",
        &client_extensions(Some(&format!("http://127.0.0.1:{port}"))),
    );
    let (kind, detail, elapsed) = check_fails_in_time(&cert, &ca.der()).await;
    server.abort();
    assert_eq!(kind, "InternalError");
    assert!(detail.contains("did not answer within 500 ms"), "{detail}");
    assert!(elapsed >= REQUEST_TIMEOUT, "{elapsed:?}");
}

/// A one-trick HTTP server on 127.0.0.1: reads a request, writes `head`
/// then `body_chunks`, closes. Returns its URL and task.
async fn raw_http_server(
    head: String,
    body_chunks: Vec<Vec<u8>>,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(head.as_bytes()).await;
            for chunk in &body_chunks {
                if socket.write_all(chunk).await.is_err() {
                    break;
                }
            }
            let _ = socket.shutdown().await;
        }
    });
    (url, task)
}

/// Issues a client certificate naming `url` as its responder and checks it.
async fn check_against(url: &str) -> (&'static str, String, Duration) {
    let ca = OpensslCa::new("OCSP Test CA");
    let cert = ca.issue("client", "client", &client_extensions(Some(url)));
    check_fails_in_time(&cert, &ca.der()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_answering_garbage_is_an_error() {
    let body = b"this is not an OCSP response".to_vec();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (url, server) = raw_http_server(head, vec![body]).await;
    let (kind, detail, _) = check_against(&url).await;
    server.abort();
    assert_eq!(kind, "Error");
    assert!(
        detail.starts_with("OCSP response verification failed: malformed OCSP response"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_responses_are_cut_off() {
    // Declared too large: refused from the headers.
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n";
    let (url, server) = raw_http_server(head.into(), vec![vec![0x30; 4096]]).await;
    let (kind, detail, _) = check_against(&url).await;
    server.abort();
    assert_eq!(kind, "InternalError");
    assert!(detail.contains("exceeds 65536 bytes"), "{detail}");

    // Chunked without a length: cut off while streaming.
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let mut chunk = b"4000\r\n".to_vec();
    chunk.extend_from_slice(&[0x30u8; 0x4000]);
    chunk.extend_from_slice(b"\r\n");
    let (url, server) = raw_http_server(head.into(), vec![chunk; 8]).await;
    let (kind, detail, _) = check_against(&url).await;
    server.abort();
    assert_eq!(kind, "InternalError");
    assert!(detail.contains("exceeds 65536 bytes"), "{detail}");
}

// ---------------------------------------------------------------------------
// Single flight
// ---------------------------------------------------------------------------

/// The default transport, counting the requests that reach it.
#[derive(Debug)]
struct CountingTransport {
    inner: HyperTransport,
    requests: AtomicUsize,
}

#[async_trait::async_trait]
impl OcspTransport for CountingTransport {
    async fn post(&self, url: &http::Uri, body: Bytes) -> Result<Bytes, TransportError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.inner.post(url, body).await
    }

    async fn get(&self, url: &http::Uri) -> Result<Bytes, TransportError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.inner.get(url).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_checks_send_one_request() {
    let f = Fixture::new();
    let good: Arc<[u8]> = f.client("good").into();
    let ca: Arc<[u8]> = f.ca_der.clone().into();
    let _responder = f.ca.start_responder(f.port, "ca");
    let transport = Arc::new(CountingTransport {
        inner: HyperTransport::default(),
        requests: AtomicUsize::new(0),
    });
    let src = source().transport(transport.clone()).build().unwrap();

    let started = Instant::now();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (src, good, ca) = (src.clone(), good.clone(), ca.clone());
            tokio::spawn(async move { src.check(leaf!(&good, &ca), now()).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), CertStatus::Good);
    }
    let requests = transport.requests.load(Ordering::SeqCst);
    eprintln!(
        "1000 concurrent checks: {requests} OCSP request(s) in {:?}",
        started.elapsed()
    );
    assert_eq!(requests, 1);
    assert_eq!(src.lookups_in_flight(), 0);
    assert_eq!(src.cached_entries(), 1);
}

// ---------------------------------------------------------------------------
// Composed into the RevocationChecker: hard-fail and soft-fail outcomes
// ---------------------------------------------------------------------------

fn checker(source: OcspSource, policy: FailurePolicy, scope: RevocationScope) -> RevocationChecker {
    RevocationChecker::builder()
        .source_with_policy(Arc::new(source), policy)
        .scope(scope)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_denies_under_hard_fail_and_is_allowed_under_soft_fail() {
    let f = Fixture::new();
    let stranger =
        f.ca.issue_outside_database("stranger", "stranger", "0x7777");
    let _responder = f.ca.start_responder(f.port, "ca");
    let chain = RevocationChain::from_der(&stranger, [], &f.ca_der).unwrap();
    let ocsp = || source().responder_override(f.url()).build().unwrap();

    let hard = checker(ocsp(), FailurePolicy::HardFail, RevocationScope::LeafOnly);
    let outcome = hard.check(&chain, now()).await;
    assert!(!outcome.is_allowed());
    let error = outcome.error().unwrap();
    assert!(
        matches!(
            error,
            RevocationError::OcspDenied {
                status: CertStatusKind::Unknown,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.reason_code(), ReasonCode::ClientCertOcspDenied);
    assert_eq!(outcome.status().chain_validity, ChainValidity::Unknown);
    assert_eq!(
        outcome.status().certificates.leaf.status,
        CertStatusKind::Unknown
    );

    let soft = checker(ocsp(), FailurePolicy::SoftFail, RevocationScope::LeafOnly);
    let outcome = soft.check(&chain, now()).await;
    assert!(outcome.is_allowed(), "{:?}", outcome.error());
    assert_eq!(
        outcome.status().certificates.leaf.status,
        CertStatusKind::Unknown
    );
    assert_eq!(outcome.status().chain_validity, ChainValidity::Unknown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_responder_denies_under_hard_fail_only() {
    let f = Fixture::new();
    let good = f.client("good"); // nothing listens on f.port
    let chain = RevocationChain::from_der(&good, [], &f.ca_der).unwrap();

    let hard = checker(
        failing_source(),
        FailurePolicy::HardFail,
        RevocationScope::LeafOnly,
    );
    let outcome = hard.check(&chain, now()).await;
    let error = outcome.error().expect("hard-fail denies");
    assert!(
        matches!(error, RevocationError::OcspProcessing { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.reason_code(),
        ReasonCode::ClientCertOcspProcessingError
    );
    let leaf = &outcome.status().certificates.leaf;
    assert_eq!(leaf.status, CertStatusKind::Error);
    assert_eq!(leaf.error_type.as_deref(), Some("InternalError"));

    let soft = checker(
        failing_source(),
        FailurePolicy::SoftFail,
        RevocationScope::LeafOnly,
    );
    let outcome = soft.check(&chain, now()).await;
    assert!(outcome.is_allowed(), "{:?}", outcome.error());
    assert_eq!(
        outcome.status().certificates.leaf.status,
        CertStatusKind::Error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_denies_under_both_policies() {
    let f = Fixture::new();
    let revoked = f.client("revoked");
    f.ca.revoke("revoked", "keyCompromise");
    let _responder = f.ca.start_responder(f.port, "ca");
    let chain = RevocationChain::from_der(&revoked, [], &f.ca_der).unwrap();
    for policy in [FailurePolicy::HardFail, FailurePolicy::SoftFail] {
        let c = checker(source().build().unwrap(), policy, RevocationScope::LeafOnly);
        let outcome = c.check(&chain, now()).await;
        let error = outcome.error().expect("revoked denies");
        assert!(
            matches!(
                error,
                RevocationError::OcspDenied {
                    status: CertStatusKind::Revoked,
                    reason: Some(edge_mtls::CrlReason::KEY_COMPROMISE),
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(error.tls_alert(), edge_mtls::TlsAlert::CertificateRevoked);
        assert_eq!(outcome.status().chain_validity, ChainValidity::Invalid);
    }
}

/// CloudFront checks the leaf and every intermediate against their own
/// responders, never the root; answers then serve stage 1 from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_chain_is_checked_except_the_root() {
    let root = OpensslCa::new("OCSP Test Root");
    let (root_port, inter_port) = (free_port(), free_port());
    let inter = root.issue_intermediate(
        "inter",
        "OCSP Test Intermediate",
        Some(&format!("http://127.0.0.1:{root_port}")),
    );
    let leaf = inter.issue(
        "leaf",
        "leaf",
        &client_extensions(Some(&format!("http://127.0.0.1:{inter_port}"))),
    );
    let (root_der, inter_der) = (root.der(), inter.der());
    let root_responder = root.start_responder(root_port, "ca");
    let _inter_responder = inter.start_responder(inter_port, "ca");
    let chain = RevocationChain::from_der(&leaf, [inter_der.as_slice()], &root_der).unwrap();

    let c = checker(
        source().build().unwrap(),
        FailurePolicy::HardFail,
        RevocationScope::WholeChain,
    );
    assert!(
        matches!(c.check_now(&chain, now()), ImmediateCheck::Pending(ref positions) if positions.len() == 2),
        "nothing cached: both certificates wait for stage 2"
    );
    let outcome = c.check(&chain, now()).await;
    assert!(outcome.is_allowed(), "{:?}", outcome.error());
    let status = outcome.status();
    assert_eq!(status.chain_validity, ChainValidity::Valid);
    assert_eq!(status.certificates.leaf.status, CertStatusKind::Good);
    assert_eq!(status.certificates.intermediates.len(), 1);
    assert_eq!(
        status.certificates.intermediates[0].status,
        CertStatusKind::Good
    );
    let ImmediateCheck::Allowed(cached) = c.check_now(&chain, now()) else {
        panic!("stage 1 answers from the cache");
    };
    assert_eq!(&cached, status);

    // The root revokes the intermediate: the chain is invalid. (The
    // responder is also stopped and started again on the same port, which
    // checks that it releases its address.)
    drop(root_responder);
    root.revoke("inter", "cACompromise");
    let _root_responder = root.start_responder(root_port, "ca");
    let fresh = checker(
        source().build().unwrap(),
        FailurePolicy::HardFail,
        RevocationScope::WholeChain,
    );
    let outcome = fresh.check(&chain, now()).await;
    assert_eq!(outcome.status().chain_validity, ChainValidity::Invalid);
    assert_eq!(
        outcome.status().certificates.intermediates[0].status,
        CertStatusKind::Revoked
    );
    assert!(matches!(
        outcome.error(),
        Some(RevocationError::OcspDenied {
            position: CertPosition::Intermediate(0),
            status: CertStatusKind::Revoked,
            reason: Some(edge_mtls::CrlReason::CA_COMPROMISE),
            ..
        })
    ));
}

/// An intermediate without an OCSP URL is not OCSP's business unless every
/// certificate must carry one (CloudFront's rule), which then denies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intermediate_without_an_ocsp_url() {
    let root = OpensslCa::new("OCSP Test Root");
    let inter_port = free_port();
    let inter = root.issue_intermediate("inter", "OCSP Test Intermediate", None);
    let leaf = inter.issue(
        "leaf",
        "leaf",
        &client_extensions(Some(&format!("http://127.0.0.1:{inter_port}"))),
    );
    let (root_der, inter_der) = (root.der(), inter.der());
    let _responder = inter.start_responder(inter_port, "ca");
    let chain = RevocationChain::from_der(&leaf, [inter_der.as_slice()], &root_der).unwrap();

    let lenient = checker(
        source().build().unwrap(),
        FailurePolicy::HardFail,
        RevocationScope::WholeChain,
    );
    let outcome = lenient.check(&chain, now()).await;
    assert!(outcome.is_allowed(), "{:?}", outcome.error());
    assert_eq!(
        outcome.status().certificates.leaf.status,
        CertStatusKind::Good
    );
    let entry = &outcome.status().certificates.intermediates[0];
    assert_eq!(entry.status, CertStatusKind::Unknown);
    assert_eq!(entry.error_type, None);

    let strict = checker(
        source().require_responder_url(true).build().unwrap(),
        FailurePolicy::HardFail,
        RevocationScope::WholeChain,
    );
    let outcome = strict.check(&chain, now()).await;
    let entry = &outcome.status().certificates.intermediates[0];
    assert_eq!(entry.status, CertStatusKind::Error);
    assert!(
        entry
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("no OCSP responder URL"),
        "{entry:?}"
    );
    assert!(matches!(
        outcome.error(),
        Some(RevocationError::OcspProcessing {
            position: CertPosition::Intermediate(0),
            ..
        })
    ));
}

// ---------------------------------------------------------------------------
// In real TLS handshakes (§9): stage 1 uses cached answers, stage 2 fetches
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_fetch_in_stage_2_then_answer_from_the_cache_in_stage_1() {
    let f = Fixture::new();
    f.client("good");
    f.client("revoked");
    f.ca.revoke("revoked", "keyCompromise");
    let _responder = f.ca.start_responder(f.port, "ca");
    let checker = Arc::new(checker(
        source().build().unwrap(),
        FailurePolicy::HardFail,
        RevocationScope::WholeChain,
    ));
    let store = common::trust_store(&f.ca.pem());
    let config = common::server_config(revocation_verifier(store.clone(), checker.clone(), |b| b));
    // The acceptor's view: the same checker (and OCSP cache) after the handshake.
    let verifier = revocation_verifier(store, checker.clone(), |b| b);

    for name in ["good", "revoked"] {
        let identity = openssl_identity(&f.ca, name);
        let chain = RevocationChain::from_der(&identity.chain[0], [], &f.ca_der).unwrap();
        assert!(matches!(
            checker.check_now(&chain, now()),
            ImmediateCheck::Pending(_)
        ));

        // First connection: nothing cached, the handshake completes and
        // stage 2 asks the responder.
        let (outcome, served) = common::handshake(config.clone(), Some(&identity)).await;
        outcome.expect_accepted();
        let peer = served.expect("served").peer_certificates.expect("peer");
        let stage2 = verifier
            .check_connection(&peer, now())
            .await
            .expect("the chain validates")
            .expect("revocation is configured");

        // Second connection: stage 1 answers from the cache.
        let (outcome, served) = common::handshake(config.clone(), Some(&identity)).await;
        if name == "good" {
            assert!(stage2.is_allowed(), "{:?}", stage2.error());
            assert_eq!(
                stage2.status().certificates.leaf.status,
                CertStatusKind::Good
            );
            outcome.expect_accepted();
            assert!(matches!(
                checker.check_now(&chain, now()),
                ImmediateCheck::Allowed(_)
            ));
        } else {
            let error = stage2.error().expect("stage 2 denies");
            assert_eq!(error.reason_code(), ReasonCode::ClientCertOcspDenied);
            outcome.expect_alert(AlertDescription::CertificateRevoked);
            assert!(served.unwrap_err().contains("Revoked"));
        }
    }
}

/// A certificate parsed, as the validator hands them to revocation sources.
fn parsed(der: &[u8]) -> edge_mtls::ParsedCertificate {
    edge_mtls::ParsedCertificate::from_der(der.to_vec()).expect("a certificate")
}
