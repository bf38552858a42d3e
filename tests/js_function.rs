//! JavaScript connection functions run directly (no TLS): the runtime
//! contract, the limits, the KVS API and load-time errors.
#![cfg(feature = "js")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_mtls::{Decision, KeyValueStore, MemoryKeyValueStore};
use edge_mtls::{FingerprintFormat, JsError, JsFunction, JsLimits, JsLoadError};

const SAMPLE: &str = include_str!("../examples/functions/sample-connection.json");
const SEED_000: &str = include_str!("fixtures/js/seed000_kvs_revocation.js");

/// Tests that are not about time run under a generous limit (the limit is
/// wall-clock, and test machines are shared); the hostile ones use
/// CloudFront's 5 ms.
fn function(source: &str) -> JsFunction {
    let limits = JsLimits {
        time_us: 1_000_000,
        ..JsLimits::default()
    };
    JsFunction::compile("test.js", source, limits).expect("compiles")
}

fn function_5ms(source: &str) -> JsFunction {
    JsFunction::compile("test.js", source, JsLimits::default()).expect("compiles")
}

fn store(keys: &[&str]) -> Arc<dyn KeyValueStore> {
    let store = MemoryKeyValueStore::new(Default::default());
    for k in keys {
        store.put(k, "revoked").unwrap();
    }
    Arc::new(store)
}

/// A connection from a real chain (an rcgen leaf and its intermediate) with
/// a revocation status, as the acceptor builds it.
fn sample_connection() -> edge_mtls::Connection {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Sample Intermediate");
    let intermediate = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["client.example.com".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();
    let info = edge_mtls::ClientCertInfo::from_der(leaf.der()).unwrap();
    let entry = |serial: &str| {
        edge_mtls::CertificateRevocationStatus::new(
            edge_mtls::RevocationMethod::DenyList,
            &edge_mtls::CertStatus::Good,
            serial.to_string(),
        )
    };
    edge_mtls::Connection::without_certificate("203.0.113.9".parse().unwrap(), "E1", "id-1")
        .with_endpoint(Some("api.example.com".into()))
        .with_chain(Arc::new(info), &[intermediate.der().as_ref()])
        .with_revocation_status(edge_mtls::RevocationStatus::from_entries(
            entry("01:02"),
            vec![entry("03:04")],
        ))
}

#[test]
fn seed_000_allows_a_valid_and_denies_a_revoked_serial() {
    let f = function(SEED_000).with_kvs(store(&["00a7309e737b3e63bdb7c07ebfd5c986"]));
    let run = f.run_json(SAMPLE);
    assert_eq!(run.error, None);
    assert_eq!(run.decision, Some(Decision::Deny));
    assert_eq!(
        run.custom_data.as_deref(),
        Some("Revoked certificate: 00a7309e737b3e63bdb7c07ebfd5c986")
    );
    assert_eq!(
        run.logs,
        ["Denying connection for revoked certificate: 00a7309e737b3e63bdb7c07ebfd5c986"]
    );
    let f = function(SEED_000).with_kvs(store(&["01"]));
    let run = f.run_json(SAMPLE);
    assert_eq!(run.decision, Some(Decision::Allow));
    assert_eq!(
        run.custom_data.as_deref(),
        Some("Valid certificate: 00a7309e737b3e63bdb7c07ebfd5c986")
    );
}

/// The seed 003 fixtures differ from the seed text only in whitespace: the
/// seed prints each function on one line, which turns everything after a
/// `//` comment into comment; the fixtures restore the line break that ends
/// each comment.
#[test]
fn seed_003_fixtures_are_the_seed_text_up_to_line_breaks() {
    let seed = std::fs::read_to_string(
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/seeds"))
            .ok()
            .and_then(|d| {
                d.flatten()
                    .find(|e| e.file_name().to_string_lossy().starts_with("003_"))
            })
            .map(|e| e.path())
            .unwrap_or_else(|| "/work/shared/seeds/003_f4cc0c09bce8dc44.txt".into()),
    )
    .unwrap();
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let lines: Vec<String> = seed.lines().map(squash).collect();
    for (file, text) in [
        (
            "seed003_ocsp_trusted_ip.js",
            include_str!("fixtures/js/seed003_ocsp_trusted_ip.js"),
        ),
        (
            "seed003_ocsp_soft_fail.js",
            include_str!("fixtures/js/seed003_ocsp_soft_fail.js"),
        ),
        (
            "seed003_kvs_revocation.js",
            include_str!("fixtures/js/seed003_kvs_revocation.js"),
        ),
        (
            "seed003_ocsp_kvs_grace.js",
            include_str!("fixtures/js/seed003_ocsp_kvs_grace.js"),
        ),
    ] {
        assert!(lines.contains(&squash(text)), "{file} is not in seed 003");
        function(text);
    }
    let seed000 = std::fs::read_to_string(
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/seeds"))
            .ok()
            .and_then(|d| {
                d.flatten()
                    .find(|e| e.file_name().to_string_lossy().starts_with("000_"))
            })
            .map(|e| e.path())
            .unwrap_or_else(|| "/work/shared/seeds/000_57babcd396286e7a.txt".into()),
    )
    .unwrap();
    assert!(seed000.contains(SEED_000), "seed 000 fixture is verbatim");
}

#[test]
fn the_contract() {
    // No decision denies (the policy layer turns None into a deny).
    let run = function("function connectionHandler(c) {}").run_json(SAMPLE);
    assert_eq!((run.decision, run.error), (None, None));
    // The first decision stands; `return` is optional.
    let run = function("function connectionHandler(c) { c.deny(); c.allow(); }").run_json(SAMPLE);
    assert_eq!(run.decision, Some(Decision::Deny));
    // clientCertInfo is the leaf; the object is frozen.
    let run = function(
        "function connectionHandler(c) {
            if (c.clientCertInfo.serialNumber !== c.clientCertificate.certificates.leaf.serialNumber) return;
            if (!Object.isFrozen(c) || !Object.isFrozen(c.clientCertificate.certificates.intermediates[0])) return;
            c.allow();
        }",
    )
    .run_json(SAMPLE);
    assert_eq!(run.decision, Some(Decision::Allow), "{run:?}");
    // Custom data is cut to 800 bytes at a character boundary.
    let run =
        function("function connectionHandler(c) { c.logCustomData('é'.repeat(500)); c.allow(); }")
            .run_json(SAMPLE);
    assert_eq!(run.custom_data.unwrap().len(), 800);
    // No ambient capabilities.
    let run = function(
        "function connectionHandler(c) {
            const missing = ['fetch', 'require', 'process', 'setTimeout', 'setInterval', 'eval', 'Function', 'std', 'os']
                .filter(n => { try { return n === 'Function' ? (Function('return 1')() === 1) : typeof globalThis[n] !== 'undefined' && (n !== 'eval' || eval('1') === 1); } catch (e) { return false; } });
            c.logCustomData(missing.join(','));
            c.allow();
        }",
    )
    .run_json(SAMPLE);
    assert_eq!(run.custom_data.as_deref(), Some(""), "{run:?}");
}

#[test]
fn kvs_get_formats_and_meta() {
    let s = MemoryKeyValueStore::new(Default::default());
    s.put("j", r#"{"a":[1,2]}"#).unwrap();
    s.put("s", "text").unwrap();
    let f = function(
        "import cf from 'cloudfront';
         async function connectionHandler(c) {
            const kvs = cf.kvs();
            const j = await kvs.get('j', { format: 'json' });
            const s = await kvs.get('s');
            const b = await kvs.get('s', { format: 'bytes' });
            const m = await kvs.meta();
            let missing = 'no';
            try { await kvs.get('nope'); } catch (e) { missing = e.message; }
            c.logCustomData([j.a[1], s, b.length, b[0], m.keyCount, typeof m.creationDateTime, missing].join('|'));
            c.allow();
         }",
    )
    .with_kvs(Arc::new(s));
    let run = f.run_json(SAMPLE);
    assert_eq!(run.error, None);
    assert_eq!(
        run.custom_data.as_deref(),
        Some("2|text|4|116|2|string|Key not found: nope")
    );
}

#[test]
fn fingerprint_formats() {
    let source = "function connectionHandler(c) { c.logCustomData(c.clientCertInfo.sha256Fingerprint); c.allow(); }";
    let pki = rcgen::generate_simple_self_signed(vec!["client.example".into()]).unwrap();
    let info = edge_mtls::ClientCertInfo::from_der(pki.cert.der()).unwrap();
    let connection =
        edge_mtls::Connection::without_certificate("127.0.0.1".parse().unwrap(), "E1", "id")
            .with_chain(Arc::new(info), &[] as &[&[u8]]);
    let colon = function(source).run(&connection).custom_data.unwrap();
    assert_eq!(colon.len(), 95);
    let hex = function(source)
        .fingerprint_format(FingerprintFormat::Hex)
        .run(&connection)
        .custom_data
        .unwrap();
    assert_eq!(hex, colon.replace(':', "").to_lowercase());
    let b64 = function(source)
        .fingerprint_format(FingerprintFormat::Base64Url)
        .run(&connection)
        .custom_data
        .unwrap();
    assert_eq!(b64.len(), 43);
}

#[test]
fn load_errors_name_the_file_and_the_limit() {
    let big = format!(
        "function connectionHandler(c) {{ c.allow(); }}\n//{}",
        "x".repeat(10 * 1024)
    );
    match JsFunction::compile("big.js", &big, JsLimits::default()) {
        Err(JsLoadError::TooLarge { name, limit, .. }) => {
            assert_eq!((name.as_str(), limit), ("big.js", 10240))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        JsFunction::compile(
            "s.js",
            "function connectionHandler(c) {",
            JsLimits::default()
        ),
        Err(JsLoadError::Syntax { .. })
    ));
    assert!(matches!(
        JsFunction::compile("n.js", "function handler(c) {}", JsLimits::default()),
        Err(JsLoadError::NoHandler { .. })
    ));
    assert!(matches!(
        JsFunction::compile("v.js", "var connectionHandler = 1;", JsLimits::default()),
        Err(JsLoadError::NoHandler { .. })
    ));
    match JsFunction::compile(
        "i.js",
        "import fs from 'fs'; function connectionHandler(c) {}",
        JsLimits::default(),
    ) {
        Err(JsLoadError::Syntax { message, .. }) => assert!(message.contains("fs"), "{message}"),
        other => panic!("{other:?}"),
    }
}

fn hostile(source: &str) -> (JsError, Duration) {
    let f = function_5ms(source);
    let start = Instant::now();
    let run = f.run_json(SAMPLE);
    let took = start.elapsed();
    eprintln!(
        "call {:?} (with realm set-up {took:?}): {:?} for {source}",
        run.elapsed, run.error
    );
    let error = run.error.clone();
    (error.unwrap_or_else(|| panic!("no error: {run:?}")), took)
}

#[test]
fn hostile_functions_end_within_their_limits() {
    // Wall-clock: on a loaded machine a call may be preempted past its
    // deadline; what matters is that it ends, denied, soon after.
    let limit = Duration::from_millis(5);
    let slack = Duration::from_millis(250);
    let (e, t) = hostile("function connectionHandler(c) { while (true) {} }");
    assert!(matches!(e, JsError::Timeout { .. }), "{e:?}");
    assert!(t < limit + slack, "{t:?}");
    let (e, t) = hostile("async function connectionHandler(c) { await null; while (true) {} }");
    assert!(matches!(e, JsError::Timeout { .. }), "{e:?}");
    assert!(t < limit + slack, "{t:?}");
    let (e, _) = hostile("function connectionHandler(c) { const a = []; while (true) a.push(new Array(100000).fill(a.length)); }");
    assert!(matches!(e, JsError::OutOfMemory { .. }), "{e:?}");
    let (e, _) =
        hostile("function f(n) { return f(n + 1) + 1; } function connectionHandler(c) { f(0); }");
    assert!(matches!(e, JsError::StackOverflow { .. }), "{e:?}");
    let (e, _) = hostile("function connectionHandler(c) { throw new TypeError('nope'); }");
    assert_eq!(
        (e.to_string().as_str()),
        "connection function threw TypeError: nope"
    );
    let (e, _) =
        hostile("async function connectionHandler(c) { await new Promise(() => {}); c.allow(); }");
    assert_eq!(e, JsError::NeverSettled);
    let (e, _) = hostile("function connectionHandler(c) { c.clientIp = '10.0.0.1'; c.allow(); }");
    assert!(
        matches!(&e, JsError::Uncaught { name, .. } if name == "TypeError"),
        "{e:?}"
    );
    let (e, _) = hostile("function connectionHandler(c) { c.logCustomData('x'.repeat(10 * 1024 * 1024)); c.allow(); }");
    assert!(matches!(e, JsError::OutOfMemory { .. }), "{e:?}");
    let (e, t) = hostile("async function connectionHandler(c) { for (;;) await null; }");
    assert!(matches!(e, JsError::Timeout { .. }), "{e:?}");
    assert!(t < limit + slack, "{t:?}");
}

#[test]
fn nothing_leaks_between_calls() {
    for fresh in [false, true] {
        // Globals and built-ins cannot be written: the write throws.
        let f = function(
            "function connectionHandler(c) {
                if (globalThis.seen !== undefined || [].evil !== undefined) return c.deny();
                try { globalThis.seen = 1; } catch (e) { c.logCustomData(e.name); }
                try { Array.prototype.evil = 1; } catch (e) { c.logCustomData(e.name + '2'); }
                c.allow();
             }",
        )
        .fresh_context_per_call(fresh);
        for _ in 0..100 {
            let run = f.run_json(SAMPLE);
            assert_eq!(run.decision, Some(Decision::Allow), "{run:?}");
            // A frozen realm refuses the writes; a fresh context takes them
            // and is gone before the next call.
            let expected = if fresh { None } else { Some("TypeError2") };
            assert_eq!(run.custom_data.as_deref(), expected);
        }
        // Top-level bindings are fresh for every call.
        let f = function(
            "let calls = 0; const seen = [];
             function connectionHandler(c) { calls++; seen.push(c.connectionId); c.logCustomData(calls + ':' + seen.length); c.allow(); }",
        )
        .fresh_context_per_call(fresh);
        for _ in 0..100 {
            assert_eq!(f.run_json(SAMPLE).custom_data.as_deref(), Some("1:1"));
        }
        // An earlier call's instance cannot be imported.
        let f = function(
            "export async function connectionHandler(c) {
                try { await import('connection-function.js'); } catch (e) { c.logCustomData('refused'); }
                try { await import('connection-function.js?1'); } catch (e) { c.logCustomData(c.logCustomData === undefined ? '' : 'refused'); }
                c.allow();
             }",
        )
        .fresh_context_per_call(fresh);
        for _ in 0..3 {
            assert_eq!(f.run_json(SAMPLE).custom_data.as_deref(), Some("refused"));
        }
        // The `cf` object is frozen too.
        let f = function(
            "import cf from 'cloudfront';
             function connectionHandler(c) { if (cf.leak) return c.deny(); try { cf.leak = 1; } catch (e) {} c.allow(); }",
        )
        .with_kvs(store(&[]))
        .fresh_context_per_call(fresh);
        for _ in 0..3 {
            assert_eq!(f.run_json(SAMPLE).decision, Some(Decision::Allow));
        }
        // So are the functions the realm shares between calls: `cf.kvs`,
        // the key-value store handle and its methods, and the connection's
        // methods, on both kinds of connection object.
        let f = function(
            "import cf from 'cloudfront';
             const targets = (c) => [cf.kvs, cf.kvs(), cf.kvs().exists, cf.kvs().get, cf.kvs().meta,
                                     c.allow, c.deny, c.logCustomData, console, console.log];
             function connectionHandler(c) {
                const seen = targets(c).map((t, i) => t.leak !== undefined || Object.getOwnPropertyDescriptor(t, 'name')?.value === 'leak' ? i : -1)
                    .filter(i => i >= 0);
                for (const t of targets(c)) {
                    try { t.leak = 1; } catch (e) {}
                    try { Object.defineProperty(t, 'name', { value: 'leak' }); } catch (e) {}
                }
                if (seen.length > 0) { c.logCustomData('seen ' + seen.join(',')); return c.deny(); }
                c.allow();
             }",
        )
        .with_kvs(store(&[]))
        .fresh_context_per_call(fresh);
        for _ in 0..3 {
            let run = f.run_json(SAMPLE);
            assert_eq!(run.decision, Some(Decision::Allow), "{run:?}");
            let run = f.run(&sample_connection());
            assert_eq!(run.decision, Some(Decision::Allow), "{run:?}");
        }
    }
}

#[test]
fn warm_call_cost() {
    let f = function_5ms(SEED_000).with_kvs(store(&["01"]));
    for _ in 0..200 {
        f.run_json(SAMPLE);
    }
    let mut times = Vec::new();
    let mut allowed = 0;
    for _ in 0..2000 {
        let run = f.run_json(SAMPLE);
        allowed += usize::from(run.decision == Some(Decision::Allow));
        times.push(run.elapsed);
    }
    times.sort();
    eprintln!(
        "seed 000 warm call (run_json): median {:?}",
        times[times.len() / 2]
    );
    // A wall-clock limit: a call preempted on a loaded machine may time out.
    assert!(allowed >= 1900, "{allowed} of 2000 allowed");
}

/// `[policy] js` in the configuration file: the function is loaded with the
/// configured limits, and a function over the code limit is refused naming
/// the file and the limit.
#[test]
fn config_file_names_the_function_and_its_limits() {
    use edge_mtls::{ConfigError, MtlsConfig};
    let dir = tempfile::tempdir().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let big = dir.path().join("big.js");
    std::fs::write(
        &big,
        format!(
            "function connectionHandler(c) {{ c.allow(); }}\n//{}",
            "x".repeat(12_000)
        ),
    )
    .unwrap();
    let toml = |extra: &str| {
        format!(
            "[trust_store]\nfiles = [{:?}]\n[policy]\njs = {:?}\n{extra}",
            ca_path.display().to_string(),
            big.display().to_string()
        )
    };
    let err = MtlsConfig::from_toml(&toml(""))
        .unwrap()
        .into_builder()
        .build()
        .unwrap_err();
    match err {
        ConfigError::Function(JsLoadError::TooLarge { name, limit, .. }) => {
            assert!(name.ends_with("big.js"));
            assert_eq!(limit, 10_240);
        }
        other => panic!("{other:?}"),
    }
    // With a larger code limit the function loads; the build then stops at
    // the next missing piece (the server's identity).
    let err = MtlsConfig::from_toml(&toml("code_limit_bytes = 20000\ntime_limit_us = 20000"))
        .unwrap()
        .into_builder()
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::MissingServerIdentity), "{err:?}");
    let err = MtlsConfig::from_toml(&toml("code_limit_bytes = 20000\nfingerprint = \"sha1\""))
        .unwrap()
        .into_builder()
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("policy.fingerprint"), "{err}");
}
