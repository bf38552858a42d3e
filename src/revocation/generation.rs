//! Revocation data that is swapped together with the trust store.
//!
//! A configuration generation is one trust store, one CRL set and one
//! deny-list snapshot. The CRLs and the deny list ride along in the
//! [`TrustStore`] a
//! [`TrustStoreHandle`] holds ([`RevocationSnapshot`]), so one `arc-swap`
//! store replaces all three at once: no connection can see a new trust store
//! with old CRLs. [`GenerationCrls`] and [`GenerationDenyList`] are the
//! revocation sources a checker holds: each lookup reads the generation the
//! handshake pinned (stage 1 pins the store it validated against), or the
//! current one.

// The wrapper sources are built by the configuration (feature `acceptor`).
#![cfg_attr(not(feature = "acceptor"), allow(dead_code))]

use core::fmt;
use std::cell::RefCell;
use std::sync::Arc;

use rustls_pki_types::UnixTime;

use super::crl::CrlSource;
use super::{
    CertStatus, CertToCheck, DenyListSource, RevocationMethod, RevocationSource, StatusErrorKind,
};
use crate::trust_store::{TrustStore, TrustStoreHandle};

/// The CRLs and the deny list of one generation.
#[derive(Clone, Default)]
pub struct RevocationSnapshot {
    crls: Option<Arc<CrlSource>>,
    deny_list: Option<Arc<DenyListSource>>,
}

impl fmt::Debug for RevocationSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationSnapshot")
            .field("crls", &self.crls.as_ref().map(|c| c.list().len()))
            .field("deny_list", &self.deny_list.is_some())
            .finish()
    }
}

impl RevocationSnapshot {
    /// A snapshot of `crls` and `deny_list`.
    pub fn new(crls: Option<Arc<CrlSource>>, deny_list: Option<Arc<DenyListSource>>) -> Self {
        Self { crls, deny_list }
    }

    /// The CRLs.
    pub fn crls(&self) -> Option<&Arc<CrlSource>> {
        self.crls.as_ref()
    }

    /// The deny list.
    pub fn deny_list(&self) -> Option<&Arc<DenyListSource>> {
        self.deny_list.as_ref()
    }
}

thread_local! {
    /// The generation a synchronous stage-1 check runs on.
    static PINNED: RefCell<Option<Arc<RevocationSnapshot>>> = const { RefCell::new(None) };
}

impl TrustStore {
    /// The CRLs and deny list installed with this store, if any.
    pub fn revocation(&self) -> Option<Arc<RevocationSnapshot>> {
        self.attached()?
            .clone()
            .downcast::<RevocationSnapshot>()
            .ok()
    }

    /// Attaches the CRLs and deny list of the same generation.
    pub fn with_revocation(self, snapshot: Arc<RevocationSnapshot>) -> Self {
        self.with_attached(snapshot)
    }
}

impl TrustStoreHandle {
    /// Installs the CRLs and deny list of the current generation (at build
    /// time; the generation number stays).
    #[cfg(feature = "acceptor")]
    pub(crate) fn attach_revocation(&self, snapshot: Arc<RevocationSnapshot>) {
        self.attach(snapshot);
    }
}

/// Pins `store`'s revocation snapshot for the current thread until the
/// guard drops: stage 1 runs every source against the generation whose
/// trust store validated the chain, even if a reload swaps a new one in
/// meanwhile.
pub(crate) fn pin(store: &TrustStore) -> PinGuard {
    let previous = PINNED.with(|p| p.replace(store.revocation()));
    PinGuard { previous }
}

/// Restores the previous pin when dropped.
pub(crate) struct PinGuard {
    previous: Option<Arc<RevocationSnapshot>>,
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        PINNED.with(|p| *p.borrow_mut() = previous);
    }
}

fn with_snapshot<T>(handle: &TrustStoreHandle, f: impl FnOnce(&RevocationSnapshot) -> T) -> T {
    let pinned = PINNED.with(|p| p.borrow().clone());
    match pinned {
        Some(snapshot) => f(&snapshot),
        None => {
            let store = handle.load_guard();
            match store.revocation() {
                Some(snapshot) => f(&snapshot),
                None => f(&RevocationSnapshot::default()),
            }
        }
    }
}

fn current(handle: &TrustStoreHandle) -> Arc<RevocationSnapshot> {
    handle.load().revocation().unwrap_or_default()
}

/// A generation without the source (a store installed without its
/// snapshot): undetermined, so the source's failure policy decides.
fn missing() -> CertStatus {
    CertStatus::Error(StatusErrorKind::InternalError(
        "the current generation has no data for this source".into(),
    ))
}

/// The CRLs of the handle's current generation, as a revocation source.
#[derive(Clone, Debug)]
pub(crate) struct GenerationCrls {
    handle: TrustStoreHandle,
}

impl GenerationCrls {
    /// The CRLs that ride along with `handle`'s trust store.
    pub(crate) fn new(handle: TrustStoreHandle) -> Self {
        Self { handle }
    }
}

#[async_trait::async_trait]
impl RevocationSource for GenerationCrls {
    fn method(&self) -> RevocationMethod {
        RevocationMethod::Crl
    }

    fn applies_to(&self, cert: &CertToCheck<'_>) -> bool {
        with_snapshot(&self.handle, |s| {
            s.crls.as_ref().map_or(true, |crls| crls.applies_to(cert))
        })
    }

    fn check_now(&self, cert: &CertToCheck<'_>, now: UnixTime) -> Option<CertStatus> {
        with_snapshot(&self.handle, |s| match &s.crls {
            Some(crls) => crls.check_now(cert, now),
            None => Some(missing()),
        })
    }

    async fn check(&self, cert: &CertToCheck<'_>, now: UnixTime) -> CertStatus {
        match current(&self.handle).crls.clone() {
            Some(crls) => crls.check(cert, now).await,
            None => missing(),
        }
    }
}

/// The deny list of the handle's current generation, as a revocation source.
#[derive(Clone, Debug)]
pub(crate) struct GenerationDenyList {
    handle: TrustStoreHandle,
}

impl GenerationDenyList {
    /// The deny list that rides along with `handle`'s trust store.
    pub(crate) fn new(handle: TrustStoreHandle) -> Self {
        Self { handle }
    }
}

#[async_trait::async_trait]
impl RevocationSource for GenerationDenyList {
    fn method(&self) -> RevocationMethod {
        RevocationMethod::DenyList
    }

    fn applies_to(&self, cert: &CertToCheck<'_>) -> bool {
        with_snapshot(&self.handle, |s| {
            s.deny_list
                .as_ref()
                .map_or(true, |list| list.applies_to(cert))
        })
    }

    fn check_now(&self, cert: &CertToCheck<'_>, now: UnixTime) -> Option<CertStatus> {
        with_snapshot(&self.handle, |s| match &s.deny_list {
            Some(list) => list.check_now(cert, now),
            None => Some(missing()),
        })
    }

    /// The version of the generation's list (stamps are unique to a store,
    /// so a swap to another list changes it); 0 for a generation without
    /// one, whose answer never changes.
    fn data_version(&self) -> Option<u64> {
        with_snapshot(&self.handle, |s| match &s.deny_list {
            Some(list) => list.data_version(),
            None => Some(0),
        })
    }

    async fn check(&self, cert: &CertToCheck<'_>, now: UnixTime) -> CertStatus {
        match current(&self.handle).deny_list.clone() {
            Some(list) => list.check(cert, now).await,
            None => missing(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::kvs::MemoryKeyValueStore;
    use crate::revocation::{CertPosition, ParsedCertificate};

    fn cert() -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x05]));
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn snapshot(denied: &[&str]) -> Arc<RevocationSnapshot> {
        let store = MemoryKeyValueStore::for_serial_numbers();
        for serial in denied {
            store.put(serial, "").unwrap();
        }
        Arc::new(RevocationSnapshot::new(
            None,
            Some(Arc::new(DenyListSource::new(Arc::new(store)))),
        ))
    }

    #[test]
    fn a_pinned_check_answers_from_its_generation_after_a_swap() {
        let parsed = ParsedCertificate::from_der(cert()).unwrap();
        let cert = CertToCheck {
            cert: &parsed,
            issuer: &parsed,
            position: CertPosition::Leaf,
        };
        let now = UnixTime::now();
        let handle =
            TrustStoreHandle::new(TrustStore::default().with_revocation(snapshot(&["05"])));
        let source = GenerationDenyList::new(handle.clone());
        let revoked = |s: Option<CertStatus>| matches!(s, Some(CertStatus::Revoked { .. }));
        assert!(revoked(source.check_now(&cert, now)));

        // A check that started on generation 1 (pinned as stage 1 pins it)
        // keeps its answers after generation 2 is swapped in.
        let started_on = handle.load();
        {
            let _pin = pin(&started_on);
            handle.replace(TrustStore::default().with_revocation(snapshot(&[])));
            assert!(
                revoked(source.check_now(&cert, now)),
                "pinned: generation 1"
            );
        }
        assert_eq!(handle.generation(), 2);
        assert_eq!(
            source.check_now(&cert, now),
            Some(CertStatus::Good),
            "unpinned: generation 2"
        );
        // A store replaced without a snapshot keeps the current one.
        handle.replace(TrustStore::default());
        assert_eq!(source.check_now(&cert, now), Some(CertStatus::Good));
        // The CRL wrapper of a generation without CRLs is undetermined.
        assert!(matches!(
            GenerationCrls::new(handle).check_now(&cert, now),
            Some(CertStatus::Error(_))
        ));
    }
}
