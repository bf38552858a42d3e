//! Arbitrary bytes as a CA bundle: `TrustStore::from_pem` (PEM and DER
//! paths) must never panic, and an accepted store must round-trip.

#![no_main]

use edge_mtls::TrustStoreWarning;
use edge_mtls::{TrustStore, TrustStoreHandle};
use edge_mtls_fuzz::{fixtures::pem, seeds};
use libfuzzer_sys::fuzz_target;

fn check(bundle: &[u8]) {
    let Ok(store) = TrustStore::from_pem(bundle) else {
        return;
    };
    assert!(!store.is_empty());
    assert_eq!(store.len(), store.anchors().len());
    assert_eq!(store.len(), store.subjects().len());
    // Re-armouring the accepted anchors yields the same store, with no duplicates.
    let again: String = store
        .anchors()
        .iter()
        .map(|a| pem("CERTIFICATE", a.der()))
        .collect();
    let reloaded = TrustStore::from_pem(again.as_bytes()).expect("accepted anchors reload");
    assert_eq!(reloaded.len(), store.len());
    // No duplicates; the structure warnings (rules the anchors break) are
    // the same as the first load's.
    assert!(!reloaded
        .warnings()
        .iter()
        .any(|w| matches!(w, TrustStoreWarning::Duplicate { .. })));
    let structure = |s: &TrustStore| -> Vec<String> {
        s.warnings()
            .iter()
            .filter(|w| matches!(w, TrustStoreWarning::StructureRules { .. }))
            .map(|w| w.to_string())
            .collect()
    };
    assert_eq!(structure(&reloaded).len(), structure(&store).len());
    for (a, b) in store.anchors().iter().zip(reloaded.anchors()) {
        assert_eq!(a.der(), b.der());
        assert_eq!(a.subject(), b.subject());
    }
    let handle = TrustStoreHandle::new(store);
    assert_eq!(handle.generation(), 1);
}

fuzz_target!(
    init: {
        seeds::write_if_requested(seeds::trust_store_bundle);
    },
    |data: &[u8]| {
        // As given: PEM when it has armour, concatenated DER otherwise.
        check(data);
        // The same bytes as the contents of a PEM block, so DER mutations
        // also travel the PEM path.
        check(pem("CERTIFICATE", data).as_bytes());
        // Split into two bundles of one store.
        let mid = data.first().map_or(0, |b| usize::from(*b)) % (data.len() + 1);
        let _ = TrustStore::builder()
            .add_bundle("first", &data[..mid])
            .add_bundle("second", &data[mid..])
            .build();
    }
);
