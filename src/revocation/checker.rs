//! [`RevocationChecker`]: sources in a declared order, a failure policy per
//! source, and a scope, producing CloudFront's `revocationStatus` object.
//!
//! For each certificate in scope, every source that applies is asked, in
//! order, and the answers combine as follows:
//!
//! 1. a `Revoked` answer from any source wins (the first one is reported);
//! 2. otherwise an answer that must deny (`Unknown` or `Error` from a
//!    hard-fail source; an `Error` of kind `Error` — an answer that failed
//!    verification — from any source) is reported and denies;
//! 3. otherwise the first `Good` is reported;
//! 4. otherwise a forgiven `Unknown`/`Error` of a soft-fail source is
//!    reported and the connection proceeds;
//! 5. a certificate no source applies to (an issuer that publishes no CRL) is
//!    reported `Unknown` without `errorType`, and does not deny.
//!
//! `chainValidity` is `Invalid` when any certificate is revoked, `Unknown`
//! when none is but some status is `Unknown` or `Error`, `Valid` otherwise.

use core::future::Future;
use core::pin::Pin;
use core::task::Poll;
use std::sync::Arc;

use rustls_pki_types::UnixTime;

use super::status::{CertificateRevocationStatus, RevocationStatus};
use super::{
    CertPosition, CertStatus, CertStatusKind, CertToCheck, RevocationChain, RevocationError,
    RevocationMethod, RevocationSource, SerialNumber, StatusErrorKind,
};

/// What an undetermined status (`Unknown`, `Error`) of a source does.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Undetermined denies (CloudFront's default).
    #[default]
    HardFail,
    /// Unavailability is forgiven: `Unknown` and `Error` of kind
    /// `InternalError` (responder unreachable, timeout, store down) let the
    /// connection proceed, reported as such in `revocationStatus` so a
    /// connection policy can still decide. An answer that failed verification
    /// (`Error` of kind `Error`: bad signature, stale CRL under
    /// [`StalePolicy::Deny`](super::crl::StalePolicy::Deny)) still denies.
    SoftFail,
}

/// Which certificates of the path are checked.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RevocationScope {
    /// Only the leaf.
    LeafOnly,
    /// The leaf and every intermediate (CloudFront's OCSP behaviour). The
    /// trust anchor is never checked.
    #[default]
    WholeChain,
}

/// A configuration error caught by [`RevocationCheckerBuilder::build`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckerBuildError {
    /// A checker needs at least one source.
    #[error("a revocation checker needs at least one source")]
    NoSources,
}

#[derive(Clone, Debug)]
struct ConfiguredSource {
    source: Arc<dyn RevocationSource>,
    policy: FailurePolicy,
}

/// Builds a [`RevocationChecker`].
#[derive(Debug, Default)]
pub struct RevocationCheckerBuilder {
    sources: Vec<ConfiguredSource>,
    scope: RevocationScope,
}

impl RevocationCheckerBuilder {
    /// Adds a hard-fail source; sources are asked in the order added.
    pub fn source(self, source: Arc<dyn RevocationSource>) -> Self {
        self.source_with_policy(source, FailurePolicy::HardFail)
    }

    /// Adds a source with an explicit failure policy.
    pub fn source_with_policy(
        mut self,
        source: Arc<dyn RevocationSource>,
        policy: FailurePolicy,
    ) -> Self {
        self.sources.push(ConfiguredSource { source, policy });
        self
    }

    /// Which certificates are checked (default: the whole chain).
    pub fn scope(mut self, scope: RevocationScope) -> Self {
        self.scope = scope;
        self
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<RevocationChecker, CheckerBuildError> {
        if self.sources.is_empty() {
            return Err(CheckerBuildError::NoSources);
        }
        Ok(RevocationChecker {
            sources: self.sources,
            scope: self.scope,
            id: super::next_data_stamp(),
        })
    }
}

/// Composes [`RevocationSource`]s into one verdict per chain.
#[derive(Debug)]
pub struct RevocationChecker {
    sources: Vec<ConfiguredSource>,
    scope: RevocationScope,
    /// Names this checker in answers kept with a chain.
    id: u64,
}

/// The answers of [`RevocationChecker::check_now`] for one chain, with the
/// checker and the data stamps they were given under.
#[derive(Debug)]
pub(crate) struct KeptAnswer {
    checker: u64,
    versions: Box<[u64]>,
    /// What `check_now` answered (`Allowed` only).
    pub(crate) status: RevocationStatus,
}

/// The result of the synchronous stage (inside the handshake).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImmediateCheck {
    /// Every certificate was answered without I/O and nothing denies.
    Allowed(RevocationStatus),
    /// An answer available now denies the connection.
    Denied(RevocationError),
    /// Nothing denies yet; these certificates still need
    /// [`RevocationChecker::check`] (after the handshake).
    Pending(Vec<CertPosition>),
}

/// The result of the complete (asynchronous) check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationOutcome {
    status: RevocationStatus,
    error: Option<RevocationError>,
}

impl RevocationOutcome {
    /// CloudFront's `revocationStatus` object for the connection.
    pub fn status(&self) -> &RevocationStatus {
        &self.status
    }

    /// Why the connection is denied, when it is.
    pub fn error(&self) -> Option<&RevocationError> {
        self.error.as_ref()
    }

    /// Whether the connection may proceed.
    pub fn is_allowed(&self) -> bool {
        self.error.is_none()
    }

    /// The status when allowed, the denial otherwise.
    pub fn into_result(self) -> Result<RevocationStatus, RevocationError> {
        match self.error {
            None => Ok(self.status),
            Some(e) => Err(e),
        }
    }
}

/// One source's answer for one certificate.
struct Answer {
    method: RevocationMethod,
    policy: FailurePolicy,
    status: CertStatus,
}

/// The combined verdict for one certificate.
struct Verdict {
    entry: CertificateRevocationStatus,
    error: Option<RevocationError>,
}

impl RevocationChecker {
    /// A builder.
    pub fn builder() -> RevocationCheckerBuilder {
        RevocationCheckerBuilder::default()
    }

    /// The configured scope.
    pub fn scope(&self) -> RevocationScope {
        self.scope
    }

    /// Every source's [`data_version`](RevocationSource::data_version), in
    /// order; `None` when one has none (its answers must be asked for).
    pub(crate) fn data_versions(&self) -> Option<Box<[u64]>> {
        self.sources
            .iter()
            .map(|c| c.source.data_version())
            .collect()
    }

    /// `status` (an `Allowed` answer) kept with the stamps read before it
    /// was asked for.
    pub(crate) fn keep(&self, versions: Box<[u64]>, status: RevocationStatus) -> KeptAnswer {
        KeptAnswer {
            checker: self.id,
            versions,
            status,
        }
    }

    /// Whether `kept` was answered by this checker from the data its
    /// sources hold now (so `check_now` would answer the same).
    pub(crate) fn still_answers(&self, kept: &KeptAnswer) -> bool {
        kept.checker == self.id
            && kept.versions.len() == self.sources.len()
            && self
                .sources
                .iter()
                .zip(kept.versions.iter())
                .all(|(c, v)| c.source.data_version() == Some(*v))
    }

    /// Stage 1: answers only from sources that need no I/O (deny lists,
    /// CRLs, cached OCSP answers). Denies as soon as an available answer
    /// denies; otherwise reports the certificates still needing
    /// [`check`](Self::check).
    pub fn check_now(&self, chain: &RevocationChain<'_>, now: UnixTime) -> ImmediateCheck {
        let mut entries = Vec::new();
        let mut pending = Vec::new();
        for position in chain.positions(self.scope == RevocationScope::WholeChain) {
            let Some(cert) = chain.get(position) else {
                continue;
            };
            let serial = match serial_of(&cert) {
                Ok(s) => s,
                Err(e) => return ImmediateCheck::Denied(e),
            };
            let mut answers = Vec::with_capacity(self.sources.len());
            let mut waiting = false;
            for configured in &self.sources {
                if !configured.source.applies_to(&cert) {
                    continue;
                }
                match configured.source.check_now(&cert, now) {
                    Some(status) => answers.push(Answer {
                        method: configured.source.method(),
                        policy: configured.policy,
                        status,
                    }),
                    None => waiting = true,
                }
            }
            let verdict = self.combine(position, &serial, &answers);
            if let Some(error) = verdict.error {
                return ImmediateCheck::Denied(error);
            }
            if waiting {
                pending.push(position);
            }
            entries.push(verdict.entry);
        }
        if !pending.is_empty() {
            return ImmediateCheck::Pending(pending);
        }
        let mut entries = entries.into_iter();
        match entries.next() {
            Some(leaf) => {
                ImmediateCheck::Allowed(RevocationStatus::from_entries(leaf, entries.collect()))
            }
            None => ImmediateCheck::Denied(RevocationError::UnreadableCertificate {
                position: CertPosition::Leaf,
                detail: "empty chain",
            }),
        }
    }

    /// Stage 2: the complete answer, performing I/O where a source needs it.
    /// Certificates are checked concurrently; each certificate's sources in
    /// their declared order.
    pub async fn check(&self, chain: &RevocationChain<'_>, now: UnixTime) -> RevocationOutcome {
        let positions = chain.positions(self.scope == RevocationScope::WholeChain);
        let futures: Vec<BoxedFuture<'_, Verdict>> = positions
            .into_iter()
            .filter_map(|position| chain.get(position))
            .map(|cert| Box::pin(self.check_one(cert, now)) as BoxedFuture<'_, Verdict>)
            .collect();
        let verdicts = join_all(futures).await;
        let mut error = None;
        let mut entries = Vec::with_capacity(verdicts.len());
        for v in verdicts {
            if error.is_none() {
                error = v.error;
            }
            entries.push(v.entry);
        }
        let mut entries = entries.into_iter();
        let Some(leaf) = entries.next() else {
            // A chain always has a leaf; keep the signature total anyway.
            let error = RevocationError::UnreadableCertificate {
                position: CertPosition::Leaf,
                detail: "empty chain",
            };
            let entry = CertificateRevocationStatus::new(
                self.first_method(),
                &CertStatus::Unknown,
                String::new(),
            );
            return RevocationOutcome {
                status: RevocationStatus::from_entries(entry, Vec::new()),
                error: Some(error),
            };
        };
        RevocationOutcome {
            status: RevocationStatus::from_entries(leaf, entries.collect()),
            error,
        }
    }

    async fn check_one(&self, cert: CertToCheck<'_>, now: UnixTime) -> Verdict {
        let serial = match serial_of(&cert) {
            Ok(s) => s,
            Err(error) => {
                return Verdict {
                    entry: CertificateRevocationStatus::new(
                        self.first_method(),
                        &CertStatus::Error(StatusErrorKind::Error("unreadable certificate".into())),
                        String::new(),
                    ),
                    error: Some(error),
                }
            }
        };
        let mut answers = Vec::with_capacity(self.sources.len());
        for configured in &self.sources {
            if !configured.source.applies_to(&cert) {
                continue;
            }
            let status = match configured.source.check_now(&cert, now) {
                Some(status) => status,
                None => configured.source.check(&cert, now).await,
            };
            answers.push(Answer {
                method: configured.source.method(),
                policy: configured.policy,
                status,
            });
        }
        self.combine(cert.position, &serial, &answers)
    }

    fn first_method(&self) -> RevocationMethod {
        self.sources
            .first()
            .map_or(RevocationMethod::DenyList, |s| s.source.method())
    }

    /// The combination rules of the module documentation.
    fn combine(
        &self,
        position: CertPosition,
        serial: &SerialNumber,
        answers: &[Answer],
    ) -> Verdict {
        let serial_text = serial.to_cloudfront();
        let serial = serial.clone();
        let entry =
            |a: &Answer| CertificateRevocationStatus::new(a.method, &a.status, serial_text.clone());
        if let Some(a) = answers
            .iter()
            .find(|a| matches!(a.status, CertStatus::Revoked { .. }))
        {
            let reason = match a.status {
                CertStatus::Revoked { reason, .. } => reason,
                _ => None,
            };
            let error = match a.method {
                RevocationMethod::Ocsp => RevocationError::OcspDenied {
                    position,
                    serial,
                    status: CertStatusKind::Revoked,
                    reason,
                },
                method => RevocationError::Revoked {
                    position,
                    serial,
                    method,
                    reason,
                },
            };
            return Verdict {
                entry: entry(a),
                error: Some(error),
            };
        }
        if let Some(a) = answers.iter().find(|a| denies(a)) {
            return Verdict {
                entry: entry(a),
                error: Some(undetermined_error(a, position, serial)),
            };
        }
        if let Some(a) = answers.iter().find(|a| a.status == CertStatus::Good) {
            return Verdict {
                entry: entry(a),
                error: None,
            };
        }
        if let Some(a) = answers.first() {
            return Verdict {
                entry: entry(a),
                error: None,
            };
        }
        Verdict {
            entry: CertificateRevocationStatus::new(
                self.first_method(),
                &CertStatus::Unknown,
                serial_text,
            ),
            error: None,
        }
    }
}

/// Whether an undetermined answer denies under its source's policy.
fn denies(a: &Answer) -> bool {
    match (&a.status, a.policy) {
        (CertStatus::Good | CertStatus::Revoked { .. }, _) => false,
        (_, FailurePolicy::HardFail) => true,
        (CertStatus::Error(StatusErrorKind::Error(_)), FailurePolicy::SoftFail) => true,
        (_, FailurePolicy::SoftFail) => false,
    }
}

fn undetermined_error(a: &Answer, position: CertPosition, serial: SerialNumber) -> RevocationError {
    let detail = match &a.status {
        CertStatus::Error(kind) => kind.detail().to_string(),
        CertStatus::Unknown => "the source does not know the certificate".to_string(),
        other => other.as_str().to_string(),
    };
    match a.method {
        RevocationMethod::Ocsp if a.status == CertStatus::Unknown => RevocationError::OcspDenied {
            position,
            serial,
            status: CertStatusKind::Unknown,
            reason: None,
        },
        RevocationMethod::Ocsp => RevocationError::OcspProcessing {
            position,
            serial,
            detail,
        },
        RevocationMethod::Crl => RevocationError::CrlProcessing {
            position,
            serial,
            detail,
        },
        RevocationMethod::DenyList => RevocationError::DenyListUnavailable {
            position,
            serial,
            detail,
        },
    }
}

fn serial_of(cert: &CertToCheck<'_>) -> Result<SerialNumber, RevocationError> {
    cert.cert
        .serial()
        .ok_or(RevocationError::UnreadableCertificate {
            position: cert.position,
            detail: "serialNumber",
        })
}

type BoxedFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Polls every future to completion and returns their outputs in order
/// (runtime-agnostic; the core depends on no executor).
async fn join_all<T>(futures: Vec<BoxedFuture<'_, T>>) -> Vec<T> {
    let mut positions: Vec<(BoxedFuture<'_, T>, Option<T>)> =
        futures.into_iter().map(|f| (f, None)).collect();
    core::future::poll_fn(|cx| {
        let mut all_done = true;
        for (future, output) in positions.iter_mut() {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    positions.into_iter().filter_map(|(_, o)| o).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source answering a fixed status for every certificate.
    #[derive(Debug)]
    struct Fixed {
        method: RevocationMethod,
        status: Option<CertStatus>,
    }

    #[async_trait::async_trait]
    impl RevocationSource for Fixed {
        fn method(&self) -> RevocationMethod {
            self.method
        }
        fn check_now(&self, _: &CertToCheck<'_>, _: UnixTime) -> Option<CertStatus> {
            self.status.clone()
        }
        async fn check(&self, _: &CertToCheck<'_>, _: UnixTime) -> CertStatus {
            self.status.clone().unwrap_or(CertStatus::Good)
        }
    }

    fn source(method: RevocationMethod, status: Option<CertStatus>) -> Arc<dyn RevocationSource> {
        Arc::new(Fixed { method, status })
    }

    fn revoked() -> Option<CertStatus> {
        Some(CertStatus::Revoked {
            reason: Some(crate::revocation::CrlReason::KEY_COMPROMISE),
            revoked_at: None,
        })
    }

    fn internal() -> Option<CertStatus> {
        Some(CertStatus::Error(StatusErrorKind::InternalError(
            "down".into(),
        )))
    }

    fn verification() -> Option<CertStatus> {
        Some(CertStatus::Error(StatusErrorKind::Error(
            "bad signature".into(),
        )))
    }

    /// A real certificate (the checker reads serials); the issuer is only
    /// passed through to the sources.
    fn cert() -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x05]));
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn run(checker: &RevocationChecker) -> ImmediateCheck {
        let der = cert();
        checker.check_now(
            &RevocationChain::from_der(&der, [], &der).unwrap(),
            UnixTime::now(),
        )
    }

    #[test]
    fn revoked_wins_over_earlier_errors() {
        let checker = RevocationChecker::builder()
            .source(source(RevocationMethod::Ocsp, internal()))
            .source(source(RevocationMethod::Crl, revoked()))
            .build()
            .unwrap();
        assert!(matches!(
            run(&checker),
            ImmediateCheck::Denied(RevocationError::Revoked {
                method: RevocationMethod::Crl,
                reason: Some(crate::revocation::CrlReason::KEY_COMPROMISE),
                ..
            })
        ));
    }

    #[test]
    fn soft_fail_forgives_unavailability_not_failed_verification() {
        let soft = |status| {
            RevocationChecker::builder()
                .source_with_policy(
                    source(RevocationMethod::Ocsp, status),
                    FailurePolicy::SoftFail,
                )
                .build()
                .unwrap()
        };
        let ImmediateCheck::Allowed(status) = run(&soft(internal())) else {
            panic!("InternalError is forgiven under soft-fail")
        };
        assert_eq!(status.chain_validity, super::super::ChainValidity::Unknown);
        assert_eq!(status.certificates.leaf.serial_number, "05");
        assert!(matches!(
            run(&soft(Some(CertStatus::Unknown))),
            ImmediateCheck::Allowed(_)
        ));
        assert!(matches!(
            run(&soft(verification())),
            ImmediateCheck::Denied(RevocationError::OcspProcessing { .. })
        ));
        let hard = RevocationChecker::builder()
            .source(source(RevocationMethod::Ocsp, Some(CertStatus::Unknown)))
            .build()
            .unwrap();
        assert!(matches!(
            run(&hard),
            ImmediateCheck::Denied(RevocationError::OcspDenied {
                status: CertStatusKind::Unknown,
                ..
            })
        ));
    }

    #[test]
    fn good_is_reported_from_the_first_source_that_says_so() {
        let checker = RevocationChecker::builder()
            .source_with_policy(
                source(RevocationMethod::Ocsp, internal()),
                FailurePolicy::SoftFail,
            )
            .source(source(RevocationMethod::DenyList, Some(CertStatus::Good)))
            .build()
            .unwrap();
        let ImmediateCheck::Allowed(status) = run(&checker) else {
            panic!("allowed")
        };
        assert_eq!(
            status.certificates.leaf.method,
            super::super::RevocationMethod::DenyList
        );
        assert_eq!(status.chain_validity, super::super::ChainValidity::Valid);
    }

    #[test]
    fn sources_without_a_synchronous_answer_are_pending_and_answered_in_stage_two() {
        let checker = RevocationChecker::builder()
            .source(source(RevocationMethod::Ocsp, None))
            .build()
            .unwrap();
        assert_eq!(
            run(&checker),
            ImmediateCheck::Pending(vec![CertPosition::Leaf])
        );
        let der = cert();
        let chain = RevocationChain::from_der(&der, [], &der).unwrap();
        let outcome = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(checker.check(&chain, UnixTime::now()));
        assert!(outcome.is_allowed());
        assert!(RevocationChecker::builder().build().is_err());
    }

    #[test]
    fn kept_answers_hold_only_while_every_source_keeps_its_data() {
        use crate::revocation::kvs::MemoryKeyValueStore;
        use crate::revocation::DenyListSource;

        let store = Arc::new(MemoryKeyValueStore::for_serial_numbers());
        let deny_list: Arc<dyn RevocationSource> = Arc::new(DenyListSource::new(store.clone()));
        let checker = RevocationChecker::builder()
            .source(deny_list.clone())
            .build()
            .unwrap();
        let status = match run(&checker) {
            ImmediateCheck::Allowed(status) => status,
            other => panic!("allowed expected, got {other:?}"),
        };
        let versions = checker.data_versions().expect("a deny list has a version");
        let kept = checker.keep(versions, status);
        assert!(checker.still_answers(&kept));
        // Any change to the list, even of another key, takes a new stamp.
        store.put("0badc0de", "").unwrap();
        assert!(!checker.still_answers(&kept));
        // Another checker over the same sources never takes this one's answer.
        let other = RevocationChecker::builder()
            .source(deny_list)
            .build()
            .unwrap();
        let kept = checker.keep(checker.data_versions().unwrap(), kept.status.clone());
        assert!(checker.still_answers(&kept));
        assert!(!other.still_answers(&kept));
        // A source without a stamp (time-dependent answers): nothing is kept.
        let timed = RevocationChecker::builder()
            .source(source(RevocationMethod::Crl, Some(CertStatus::Good)))
            .build()
            .unwrap();
        assert!(timed.data_versions().is_none());
    }
}
