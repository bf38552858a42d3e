//! Arbitrary text as a TOML and as a JSON configuration: never a panic, and
//! every configuration that parses survives a JSON round trip unchanged
//! (what `serde_json::to_string(&config)` writes loads back as the same
//! settings).

#![no_main]

use edge_mtls::MtlsConfig;
use edge_mtls_fuzz::seeds;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        seeds::write_if_requested(seeds::config);
    },
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        for config in [MtlsConfig::from_toml(text), MtlsConfig::from_json(text)]
            .into_iter()
            .flatten()
        {
            let json = serde_json::to_string(&config).expect("a parsed configuration serializes");
            let again = MtlsConfig::from_json(&json).expect("its JSON parses");
            assert_eq!(again, config);
        }
    }
);
