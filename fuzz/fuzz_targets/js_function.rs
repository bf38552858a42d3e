//! Arbitrary JavaScript source and connection objects run as a CloudFront
//! connection function under CloudFront's limits: never a panic, never a
//! call past its deadline (plus scheduling slack), and a failed call always
//! reports why.
//!
//! Input: the function's source, a NUL byte, the connection object (JSON).
//! Without a NUL the whole input is the source, run on a sample connection.

#![no_main]

use std::sync::Arc;
use std::time::Duration;

use edge_mtls::{JsFunction, JsLimits};
use edge_mtls::MemoryKeyValueStore;
use edge_mtls_fuzz::seeds;
use libfuzzer_sys::fuzz_target;

const SAMPLE: &str = include_str!("../../examples/functions/sample-connection.json");

fn js_seeds() -> Vec<Vec<u8>> {
    let functions = [
        include_str!("../../tests/fixtures/js/seed000_kvs_revocation.js"),
        include_str!("../../tests/fixtures/js/seed003_ocsp_trusted_ip.js"),
        include_str!("../../tests/fixtures/js/seed003_ocsp_soft_fail.js"),
        include_str!("../../tests/fixtures/js/seed003_kvs_revocation.js"),
        include_str!("../../tests/fixtures/js/seed003_ocsp_kvs_grace.js"),
        "function connectionHandler(c) { while (true) {} }",
        "async function connectionHandler(c) { for (;;) await null; }",
        "function connectionHandler(c) { const a = []; for (;;) a.push(new Array(1e5)); }",
        "function f() { return f() + 1; } function connectionHandler(c) { f(); }",
        "async function connectionHandler(c) { await new Promise(() => {}); }",
        "function connectionHandler(c) { c.clientIp = 1; }",
        "import cf from 'cloudfront'; async function connectionHandler(c) { const k = cf.kvs(); c.logCustomData(JSON.stringify(await k.meta())); await k.get('x', {format: 'json'}); }",
    ];
    let mut out = Vec::new();
    for f in functions {
        out.push(f.as_bytes().to_vec());
        out.push(format!("{f}\0{SAMPLE}").into_bytes());
        out.push(format!("{f}\0{{\"clientIp\":\"10.0.0.1\"}}").into_bytes());
    }
    out
}

fuzz_target!(
    init: {
        seeds::write_if_requested(js_seeds);
    },
    |data: &[u8]| {
        let (source, connection) = match data.iter().position(|b| *b == 0) {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, SAMPLE.as_bytes()),
        };
        let (Ok(source), Ok(connection)) =
            (std::str::from_utf8(source), std::str::from_utf8(connection))
        else {
            return;
        };
        let limits = JsLimits::default();
        let Ok(function) = JsFunction::compile("fuzz.js", source, limits) else {
            return;
        };
        let store = MemoryKeyValueStore::for_serial_numbers();
        let _ = store.put("00a7309e737b3e63bdb7c07ebfd5c986", "revoked");
        let _ = store.put("x", "{\"a\":1}");
        let function = function.with_kvs(Arc::new(store));
        for _ in 0..2 {
            let run = function.run_json(connection);
            assert!(
                run.elapsed < limits.time() + Duration::from_millis(250),
                "a call ran {:?}: {:?}",
                run.elapsed,
                run.error
            );
            if let Some(data) = &run.custom_data {
                assert!(data.len() <= 800);
            }
        }
    }
);
