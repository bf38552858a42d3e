//! Arbitrary bytes as a CloudFront KeyValueStore JSON import and as a
//! plain-text serial list: never a panic; an import is all or nothing; the
//! counts add up; every imported line is found again under any spelling the
//! normaliser maps it to; serial parsing round-trips.

#![no_main]

use edge_mtls::SerialNumber;
use edge_mtls::{
    normalize_key, ImportOptions, KeyNormalization, KeyValueStore, MemoryKeyValueStore,
};
use edge_mtls_fuzz::revocation::kvs_json_seeds;
use edge_mtls_fuzz::seeds;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        seeds::write_if_requested(kvs_json_seeds);
    },
    |data: &[u8]| {
        // KVS JSON, lenient then strict, into serial stores; exact store.
        let lenient = MemoryKeyValueStore::for_serial_numbers();
        let strict = MemoryKeyValueStore::for_serial_numbers();
        match lenient.import_kvs_json(data, ImportOptions::default()) {
            Ok(report) => {
                assert_eq!(lenient.len() + report.duplicates, report.entries);
                assert!(report.opaque_keys.len() <= report.opaque_key_count);
                let strict_result = strict.import_kvs_json(data, ImportOptions::strict());
                if report.opaque_key_count == 0 {
                    assert_eq!(strict_result.map(|r| r.entries), Ok(report.entries));
                    assert_eq!(strict.len(), lenient.len());
                } else {
                    assert!(strict_result.is_err());
                    assert!(strict.is_empty(), "a failed import changes nothing");
                }
            }
            Err(_) => assert!(lenient.is_empty(), "a failed import changes nothing"),
        }
        let exact = MemoryKeyValueStore::new(KeyNormalization::Exact);
        if let Ok(report) = exact.import_kvs_json(data, ImportOptions::default()) {
            assert_eq!(exact.len() + report.duplicates, report.entries);
        }

        // The same bytes as a text list.
        let list = MemoryKeyValueStore::for_serial_numbers();
        if list.import_serial_list(data, ImportOptions::default()).is_ok() {
            let text = String::from_utf8_lossy(data);
            for line in text.lines() {
                let key = line.split('#').next().unwrap_or_default().trim();
                if !key.is_empty() {
                    assert_eq!(list.exists_local(key), Some(true), "{key:?}");
                }
            }
        }

        // Normalisation is idempotent; serials round-trip through their key.
        let text = String::from_utf8_lossy(data);
        for piece in text.split(['\n', '"']).take(64) {
            let once = normalize_key(KeyNormalization::SerialNumbers, piece).into_owned();
            let twice = normalize_key(KeyNormalization::SerialNumbers, &once).into_owned();
            assert_eq!(once, twice, "{piece:?}");
            if let Ok(s) = SerialNumber::parse(piece) {
                assert_eq!(SerialNumber::parse(&s.to_key()), Ok(s.clone()));
                if !s.is_negative() {
                    assert_eq!(SerialNumber::parse(&s.to_cloudfront()), Ok(s));
                }
            }
        }
    }
);
