//! Seed corpora, written by the targets themselves at start-up when
//! `EDGE_MTLS_FUZZ_SEED_DIR` is set (see `smoke.sh`), so nothing binary is
//! committed and the seeds always match the fixtures.

use std::path::Path;

use crate::fixtures::{fixtures, pem};
use crate::input::{encode_chunked, encode_mutation, flags, op};

/// Writes `seeds` into `$EDGE_MTLS_FUZZ_SEED_DIR` when it is set.
pub fn write_if_requested(seeds: impl FnOnce() -> Vec<Vec<u8>>) {
    let Some(dir) = std::env::var_os("EDGE_MTLS_FUZZ_SEED_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("create seed dir");
    for (i, seed) in seeds().iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), seed).expect("write seed");
    }
}

/// Seeds for `trust_store_bundle`: PEM and DER bundles of the fixture roots
/// and chains, with comments, CRLF, duplicates and a non-CA block.
pub fn trust_store_bundle() -> Vec<Vec<u8>> {
    let f = fixtures();
    let mut out = vec![
        f.roots_pem.clone().into_bytes(),
        f.roots.concat(),
        format!(
            "# comment\r\n\r\n{}\r\nmore text\r\n",
            f.roots_pem.replace('\n', "\r\n")
        )
        .into_bytes(),
        format!("{}{}", f.roots_pem, f.roots_pem).into_bytes(),
        pem("TRUSTED CERTIFICATE", &f.roots[0]).into_bytes(),
        pem("PRIVATE KEY", b"\x30\x03\x02\x01\x00").into_bytes(),
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
    ];
    for chain in &f.chains {
        out.push(chain.intermediates.concat());
        out.push(pem("CERTIFICATE", &chain.leaf).into_bytes());
        let mut bundle = String::new();
        for c in &chain.intermediates {
            bundle.push_str(&pem("CERTIFICATE", c));
        }
        bundle.push_str(&f.roots_pem);
        out.push(bundle.into_bytes());
    }
    out
}

/// Seeds for `chain_validation`: every base chain under several configs,
/// reordered, and with the roots themselves as leaves.
pub fn chain_validation() -> Vec<Vec<u8>> {
    let f = fixtures();
    let mut out = Vec::new();
    for chain in &f.chains {
        for config in [0x00, 0x08, 0x10, 0x20, 0x40, 0x80, 0x18] {
            out.push(encode_chunked(config, &chain.leaf, &chain.intermediates));
        }
        let mut rev = chain.intermediates.clone();
        rev.reverse();
        rev.push(f.roots[0].clone());
        out.push(encode_chunked(0, &chain.leaf, &rev));
    }
    for root in &f.roots {
        out.push(encode_chunked(0, root, &[]));
    }
    out
}

/// Seeds for `differential_webpki`: each base chain untouched, with every
/// flag, a few re-signed edits, and raw chunked chains.
pub fn differential_webpki() -> Vec<Vec<u8>> {
    let f = fixtures();
    let mut out = Vec::new();
    for base in 0..f.chains.len() as u8 {
        out.push(encode_mutation(base, flags::RESIGN, &[]));
        for fl in [
            flags::REVERSE,
            flags::FOREIGN,
            flags::DROP_FIRST,
            flags::DUPLICATE,
        ] {
            out.push(encode_mutation(base, flags::RESIGN | fl, &[]));
        }
        out.push(encode_mutation(
            base,
            flags::RESIGN,
            &[(0, op::XOR, 200, 0x01, &[])],
        ));
        out.push(encode_mutation(
            base,
            flags::RESIGN,
            &[(1, op::SET, 300, 0xff, &[])],
        ));
        out.push(encode_mutation(
            base,
            flags::RESIGN,
            &[(0, op::OVERWRITE, 250, 3, b"*.ex")],
        ));
        out.push(encode_mutation(
            base,
            flags::RAW,
            &[(0, op::XOR, 10, 0x80, &[])],
        ));
        for (kind, index) in [
            (op::NODE_APPEND, 40),
            (op::NODE_DELETE, 45),
            (op::NODE_DUPLICATE, 50),
            (op::NODE_RETAG, 35),
            (op::NODE_TRUNCATE, 55),
        ] {
            out.push(encode_mutation(
                base,
                flags::RESIGN,
                &[(0, kind, index, 0x01, b".")],
            ));
            out.push(encode_mutation(
                base,
                flags::RESIGN,
                &[(1, kind, index, 0x00, b"\xff")],
            ));
        }
    }
    for chain in &f.chains {
        let mut raw = vec![0xff];
        raw.extend(encode_chunked(0, &chain.leaf, &chain.intermediates));
        out.push(raw);
    }
    out
}

/// Seeds for `config_parse`: the README's TOML configuration, its JSON
/// rendering, and small broken variants.
pub fn config() -> Vec<Vec<u8>> {
    let toml = r#"distribution_id = "E2EXAMPLE"
mode = "required"
max_chain_depth = 4
handshake_timeout_ms = 10000
resumption = true
[server]
cert_chain = "server.pem"
key = "server.key"
[trust_store]
files = ["Trust_store_bundle.pem"]
pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
[revocation]
scope = "whole_chain"
[revocation.deny_list]
kvs_json = ["revoked-serials.json"]
serials = ["00:a7:30:9e"]
[revocation.crl]
files = ["ca.crl"]
stale = "treat_as_unknown"
grace_secs = 3600
[revocation.ocsp]
failure_policy = "soft_fail"
[headers]
profiles = ["cloudfront", "rfc9440", "xfcc", "custom:X-Client-"]
connection_id_header = "X-Edge-Connection-Id"
rename = { "cloudfront-viewer-cert-pem" = "X-Cert" }
[log]
format = "alb"
target = "off"
[sni."*.example.com"]
mode = "optional"
"#;
    let json = r#"{"mode":"passthrough","headers":{"profiles":["alb_passthrough"]},"sni":{"a.example":{"eku":"1.3.6.1.5.5.7.3.2"}}}"#;
    vec![
        toml.as_bytes().to_vec(),
        json.as_bytes().to_vec(),
        b"mode = \"sometimes\"".to_vec(),
        b"[sni]\n\"\" = {}".to_vec(),
    ]
}

/// Seeds for `forwarded_headers`: each fixture chain in every dialect's
/// header (lines of `<header index><value>`, the indexes of the target's
/// `NAMES`), with `X-Forwarded-For` hops.
pub fn forwarded_headers() -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let f = fixtures();
    let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
    let urlencode = crate::pki::url_encode;
    let line = |index: u8, value: &str| {
        let mut l = vec![index];
        l.extend_from_slice(value.as_bytes());
        l
    };
    let mut out = Vec::new();
    for chain in f.chains.iter().take(3) {
        let leaf_pem = pem("CERTIFICATE", &chain.leaf);
        let mut chain_pem = leaf_pem.clone();
        for c in &chain.intermediates {
            chain_pem.push_str(&pem("CERTIFICATE", c));
        }
        let rest: Vec<String> = chain
            .intermediates
            .iter()
            .map(|c| format!(":{}:", b64(c)))
            .collect();
        let lines = [
            line(0, &urlencode(&chain_pem)),
            line(1, &urlencode(&leaf_pem)),
            line(
                2,
                &format!(
                    "By=spiffe://a;Hash=00;Cert=\"{}\";Chain=\"{}\",By=x;Cert=\"\"",
                    urlencode(&leaf_pem),
                    urlencode(&chain_pem)
                ),
            ),
            line(3, &format!(":{}:", b64(&chain.leaf))),
            line(4, &rest.join(", ")),
            line(5, &b64(&chain.leaf)),
            line(6, "203.0.113.9, 10.0.0.2:443, [2001:db8::1]:80"),
        ];
        out.push(lines.join(&b'\n'));
        for l in lines {
            out.push(l);
        }
    }
    out
}
