//! Arbitrary bytes as an OCSP response about a fixture certificate
//! (encoding in `edge_mtls_fuzz::ocsp`): parsing and verification must never
//! panic, must be deterministic, and an accepted answer must be current and
//! carry a definite status.

#![no_main]

use edge_mtls::CertStatus;
use edge_mtls_fuzz::ocsp::{decode, ocsp_fixtures, seeds};
use libfuzzer_sys::fuzz_target;

/// The source's clock skew (the builder's default).
const SKEW: u64 = 5 * 60;

fuzz_target!(
    init: {
        edge_mtls_fuzz::seeds::write_if_requested(seeds);
        ocsp_fixtures();
    },
    |data: &[u8]| {
        let Some((cert, now, response)) = decode(data) else {
            return;
        };
        let source = &ocsp_fixtures().source;
        let first = source.verify_response(&cert, response, now);
        let second = source.verify_response(&cert, response, now);
        assert_eq!(first, second, "verification is not deterministic");
        match first {
            Ok(answer) => {
                assert!(matches!(
                    answer.status,
                    CertStatus::Good | CertStatus::Revoked { .. } | CertStatus::Unknown
                ));
                let now = now.as_secs();
                assert!(answer.this_update <= now + SKEW, "thisUpdate in the future");
                if let Some(next) = answer.next_update {
                    assert!(next + SKEW >= now, "stale answer accepted");
                    assert!(next >= answer.this_update);
                }
            }
            Err(e) => {
                let _ = e.to_string();
                let kind = e.to_status_error();
                assert!(matches!(kind.error_type(), "InternalError" | "Error"));
                assert!(!kind.detail().is_empty());
            }
        }
    }
);
