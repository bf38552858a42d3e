//! Stage 1's report of one handshake: rustls calls the verifier
//! synchronously while the handshake future is polled, so a task-local slot
//! ties what the verifier learnt (why it refused, the refused leaf, the
//! revocation status, the SNI) to this one connection.

use rustls_pki_types::CertificateDer;

use super::{Rejection, Stage1Outcome};
use crate::revocation::RevocationStatus;
use crate::x509::parsed::ParsedCertificate;

/// What stage 1 learnt about one handshake, besides its TLS result.
#[derive(Debug, Default)]
pub struct Stage1Report {
    /// Why the client certificate was refused, when it was.
    pub rejection: Option<Rejection>,
    /// The leaf the client presented, when stage 1 refused it: a failed
    /// rustls connection does not keep it, and the connection log names it.
    /// Copied only on refusal.
    pub presented_leaf: Option<CertificateDer<'static>>,
    /// The refusal's detail for the connection log: the failed check and the
    /// certificate it concerns (`leaf certificate (CN=…): expired at …`).
    pub detail: Option<String>,
    /// The complete revocation status, when every answer was available
    /// inside the handshake (deny list, CRL, cached OCSP): stage 2 need not
    /// ask the sources again.
    pub revocation: Option<RevocationStatus>,
    /// What stage 1 admitted: the verified chain, or in `Passthrough` mode
    /// the unverified leaf, parsed once for everything after the handshake.
    pub(crate) admitted: Option<Stage1Outcome>,
}

tokio::task_local! {
    static STAGE1: std::cell::RefCell<Stage1Report>;
}

/// Runs a handshake future and returns, with its output, what stage 1
/// learnt: the reason the client certificate was refused (if it was, with
/// the refused leaf and the refusal's detail) and the revocation status when
/// it was complete.
///
/// rustls calls the verifier synchronously while the handshake future is
/// polled, so a task-local slot ties the report to this one connection; the
/// TLS error alone carries only the alert.
pub async fn capture_stage1<F: std::future::Future>(handshake: F) -> (F::Output, Stage1Report) {
    STAGE1
        .scope(
            std::cell::RefCell::new(Stage1Report::default()),
            async move {
                let output = handshake.await;
                let report = STAGE1.with(|slot| std::mem::take(&mut *slot.borrow_mut()));
                (output, report)
            },
        )
        .await
}

/// Tells the running [`capture_stage1`] that stage 1 refused `leaf`, and why.
pub(crate) fn record_refusal(leaf: &CertificateDer<'_>, why: impl FnOnce() -> (Rejection, String)) {
    // Outside `capture_stage1` there is nobody to tell, and nothing is
    // copied or formatted.
    let _ = STAGE1.try_with(|slot| {
        let (rejection, detail) = why();
        let mut report = slot.borrow_mut();
        report.rejection = Some(rejection);
        report.detail = Some(detail);
        report.presented_leaf = Some(leaf.clone().into_owned());
    });
}

/// Tells the running [`capture_stage1`] what stage 1 admitted.
pub(crate) fn record_admitted(outcome: Stage1Outcome) {
    let _ = STAGE1.try_with(|slot| slot.borrow_mut().admitted = Some(outcome));
}

/// The leaf stage 1 admitted in this handshake, when it is `der` (the
/// CertificateVerify check reuses its parse).
pub(crate) fn recorded_leaf(der: &[u8]) -> Option<ParsedCertificate> {
    STAGE1
        .try_with(|slot| {
            slot.borrow()
                .admitted
                .as_ref()
                .map(Stage1Outcome::leaf)
                .filter(|leaf| leaf.der().as_ref() == der)
                .cloned()
        })
        .ok()
        .flatten()
}

pub(crate) fn record_revocation(status: RevocationStatus) {
    let _ = STAGE1.try_with(|slot| slot.borrow_mut().revocation = Some(status));
}
