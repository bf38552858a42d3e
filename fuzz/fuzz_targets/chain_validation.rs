//! Arbitrary leaf + up to 4 intermediates (chunked encoding, see
//! `edge_mtls_fuzz::input`) validated against the fixture roots: must never
//! panic, must be deterministic, and the cache must not change answers. The
//! strict profile only adds rules, so whatever it accepts the interop
//! profile accepts too; `audit` reports the validator's own verdict.
//!
//! Config byte (high bits): 0x08 ignore_expiration, 0x10 cache enabled,
//! 0x20 require_v3, 0x40 no EKU requirement, 0x80 go through the rustls verifier.

#![no_main]

use std::sync::{Arc, OnceLock};

use edge_mtls::{ChainValidator, ClientCertInfo, MtlsClientVerifier, Profile};
use edge_mtls_fuzz::fixtures::{fixtures, now};
use edge_mtls_fuzz::{input, seeds};
use libfuzzer_sys::fuzz_target;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::CertificateDer;

struct Validators {
    /// Indexed by config bits 3..=6 (ignore_expiration, cache, require_v3, no EKU).
    by_config: Vec<Arc<ChainValidator>>,
    /// The same options under the strict profile, without the cache.
    strict: Vec<ChainValidator>,
}

static VALIDATORS: OnceLock<Validators> = OnceLock::new();

fn validators() -> &'static Validators {
    VALIDATORS.get_or_init(|| {
        let f = fixtures();
        let builder = |bits: u8, profile: Profile| {
            ChainValidator::builder(f.store.clone(), f.provider.clone())
                .profile(profile)
                .ignore_expiration(bits & 1 != 0)
                .cache_capacity(if bits & 2 != 0 && profile == Profile::Interop {
                    64
                } else {
                    0
                })
                .require_v3(bits & 4 != 0)
                .required_eku(if bits & 8 != 0 {
                    None
                } else {
                    Some(edge_mtls::KeyPurpose::ClientAuth)
                })
                .build()
                .expect("validator")
        };
        let by_config = (0u8..16)
            .map(|bits| Arc::new(builder(bits, Profile::Interop)))
            .collect();
        let strict = (0u8..16)
            .map(|bits| builder(bits, Profile::Strict))
            .collect();
        Validators { by_config, strict }
    })
}

fuzz_target!(
    init: {
        seeds::write_if_requested(seeds::chain_validation);
        validators();
    },
    |data: &[u8]| {
        let Some((config, leaf, intermediates)) = input::decode_chunked(data) else {
            return;
        };
        let index = usize::from((config >> 3) & 0x0f);
        let validator = &validators().by_config[index];

        let first = validator.validate(leaf, &intermediates, now());
        let second = validator.validate(leaf, &intermediates, now());
        assert_eq!(first, second, "validation is not deterministic (or the cache changed the answer)");

        match &first {
            Ok(path) => {
                for i in path.intermediate_indices() {
                    assert!(i < intermediates.len(), "intermediate index out of range");
                }
                let store = validator.trust_store().load();
                assert!(
                    store.anchors().iter().any(|a| a.certificate() == path.anchor()),
                    "the path's anchor is not in the store"
                );
                assert_eq!(path.end_entity().der().as_ref(), leaf, "the path starts elsewhere");
                for (cert, i) in path.intermediates().iter().zip(path.intermediate_indices()) {
                    assert_eq!(cert.der().as_ref(), intermediates[i], "intermediate mismatch");
                }
                let _ = path.client_cert_info();
                let _ = path.is_expired_at(now());
            }
            Err(e) => {
                let _ = e.to_string();
                let _ = (e.reason_code(), e.tls_alert());
                let _ = edge_mtls::rustls_error(e);
            }
        }
        let _ = ClientCertInfo::from_der(leaf);

        let strict = validators().strict[index].validate(leaf, &intermediates, now());
        if strict.is_ok() {
            assert!(first.is_ok(), "strict accepts what interop refuses: {first:?}");
        }
        let report = validator.audit(leaf, &intermediates, now());
        assert_eq!(report.verdict, first, "audit reports another verdict");

        if config & 0x80 != 0 {
            let verifier = MtlsClientVerifier::builder(validator.clone())
                .build()
                .expect("verifier");
            let ee = CertificateDer::from(leaf);
            let owned: Vec<CertificateDer<'_>> =
                intermediates.iter().map(|c| CertificateDer::from(*c)).collect();
            let via_rustls = verifier.verify_client_cert(&ee, &owned, now());
            assert_eq!(via_rustls.is_ok(), first.is_ok(), "verifier and validator disagree");
        }
    }
);
