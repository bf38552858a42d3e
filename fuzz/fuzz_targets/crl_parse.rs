//! Arbitrary bytes as a CRL: decoding (DER and PEM, v1 and v2), the index,
//! and `CrlSource::add` with its lookups must never panic; an accepted CRL's
//! index must hold exactly its entries.
//!
//! Input: a mode byte (`revocation::mode`), then either a CRL as is or a
//! tbsCertList that the target signs with the fixture CA's key, so mutated
//! structures get past the signature check and reach indexing and lookups.

#![no_main]

use std::borrow::Cow;
use std::time::Duration;

use edge_mtls::{
    CertPosition, CertToCheck, RevocationChain, RevocationChecker, RevocationSource, SerialNumber,
};
use edge_mtls::{CrlSource, RevocationList, StalePolicy};
use edge_mtls_fuzz::revocation::{crl_der, crl_fixture, crl_parse_seeds, mode, CRL_NOW};
use edge_mtls_fuzz::seeds;
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::UnixTime;

fuzz_target!(
    init: {
        seeds::write_if_requested(crl_parse_seeds);
    },
    |data: &[u8]| {
        let Some((&m, rest)) = data.split_first() else {
            return;
        };
        let f = crl_fixture();
        let input: Cow<'_, [u8]> = if m & 1 == mode::SIGN_TBS {
            Cow::Owned(crl_der::sign_tbs(rest, &f.key_pkcs8))
        } else {
            Cow::Borrowed(rest)
        };

        // The pure decoder: every entry is canonical and found again.
        if let Ok(list) = RevocationList::parse(&input) {
            let mut entries = 0usize;
            for (serial, entry) in list.entries() {
                entries += 1;
                let s = SerialNumber::from_der_contents(serial).expect("stored serials are canonical");
                assert_eq!(s.as_bytes(), serial);
                let found = list.lookup(&s).expect("an entry is found by its own serial");
                assert!(entries > 1 || found == entry);
            }
            assert_eq!(list.len() + list.duplicate_entries(), entries);
        }

        // The source: signature, issuer match, index, lookups.
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let policy = if m & 2 == 0 { StalePolicy::Deny } else { StalePolicy::TreatAsUnknown };
        let source = CrlSource::builder(&provider)
            .stale_policy(policy)
            .grace(Duration::from_secs(u64::from(m >> 2) * 3600))
            .build();
        let Ok(info) = source.add(&input, &[&f.ca_der]) else {
            return;
        };
        assert_eq!(source.list().len(), 1);
        let cert = CertToCheck {
            cert: &parsed(&f.leaf_der),
            issuer: &parsed(&f.ca_der),
            position: CertPosition::Leaf,
        };
        let now = UnixTime::since_unix_epoch(Duration::from_secs(CRL_NOW));
        let _ = source.applies_to(&cert);
        let _ = source.check_now(&cert, now);
        let source = std::sync::Arc::new(source);
        let checker = RevocationChecker::builder()
            .source(source.clone())
            .build()
            .expect("checker");
        let _ = checker.check_now(&RevocationChain::from_der(&f.leaf_der, [], &f.ca_der).unwrap(), now);
        assert_eq!(source.remove(info.id).map(|i| i.id), Ok(info.id));
    }
);

/// A certificate parsed, as the validator hands them to revocation sources.
fn parsed(der: &[u8]) -> edge_mtls::ParsedCertificate {
    edge_mtls::ParsedCertificate::from_der(der.to_vec()).expect("a certificate")
}
