//! Differential fuzzing against rustls-webpki 0.103: generated chains edited
//! (and re-signed) by the input; wherever edge-mtls accepts, webpki must
//! accept too, except for the documented deliberate differences
//! (`edge_mtls_fuzz::differential`).

#![no_main]

use std::sync::OnceLock;

use edge_mtls::ChainValidator;
use edge_mtls_fuzz::differential::{compare, Verdict};
use edge_mtls_fuzz::fixtures::{differential_validator, fixtures};
use edge_mtls_fuzz::{input, seeds};
use libfuzzer_sys::fuzz_target;

static VALIDATOR: OnceLock<ChainValidator> = OnceLock::new();

fuzz_target!(
    init: {
        seeds::write_if_requested(seeds::differential_webpki);
        VALIDATOR.get_or_init(|| differential_validator(fixtures()));
    },
    |data: &[u8]| {
        let f = fixtures();
        let Some(case) = input::decode_mutation(f, data) else {
            return;
        };
        let validator = VALIDATOR.get_or_init(|| differential_validator(f));
        if let Some(dir) = std::env::var_os("EDGE_MTLS_FUZZ_DEBUG") {
            // Debugging aid: dump the case as DER files into the given directory.
            let dir = std::path::Path::new(&dir);
            if dir.is_dir() {
                let _ = std::fs::write(dir.join("leaf.der"), &case.leaf);
                for (i, c) in case.intermediates.iter().enumerate() {
                    let _ = std::fs::write(dir.join(format!("intermediate-{i}.der")), c);
                }
            }
            let refs: Vec<&[u8]> = case.intermediates.iter().map(Vec::as_slice).collect();
            eprintln!(
                "edge: {:?}\nwebpki: {:?}",
                validator.validate(&case.leaf, &refs, edge_mtls_fuzz::fixtures::now()),
                edge_mtls_fuzz::differential::webpki_verify(f, &case)
            );
        }
        if let Verdict::Mismatch(why) = compare(f, validator, &case) {
            panic!("differential mismatch: {why}\ncase: {case:02x?}");
        }
    }
);
