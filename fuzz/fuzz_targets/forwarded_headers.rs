//! Arbitrary header values through every forwarded-certificate dialect's
//! parser and the trust boundary (`X-Forwarded-For` hops): nothing panics,
//! the limits hold (never more certificates than allowed, nothing decoded
//! from a header over its size limit), and every refusal names its header.

#![no_main]

use std::net::IpAddr;

use edge_mtls::internal::{forwarded_chain, forwarded_path};
use edge_mtls::{ForwardedDialect, ForwardedError, ForwardedLimits, IpNet};
use edge_mtls_fuzz::seeds;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 7] = [
    "x-amzn-mtls-clientcert",
    "cloudfront-viewer-cert-pem",
    "x-forwarded-client-cert",
    "client-cert",
    "client-cert-chain",
    "x-ssl-client-cert",
    "x-forwarded-for",
];

fuzz_target!(
    init: {
        seeds::write_if_requested(seeds::forwarded_headers);
    },
    |data: &[u8]| {
    // Lines of `<name index byte><value>`; values that are not valid header
    // values are what a server would have refused already.
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some((&which, value)) = line.split_first() else {
            continue;
        };
        let name = HeaderName::from_static(NAMES[usize::from(which) % NAMES.len()]);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    let limits = ForwardedLimits {
        max_header_bytes: 4096,
        max_certificates: 4,
    };
    let dialects = [
        ForwardedDialect::AlbPassthrough,
        ForwardedDialect::CloudFront,
        ForwardedDialect::Xfcc,
        ForwardedDialect::Rfc9440,
        ForwardedDialect::PemHeader(HeaderName::from_static("x-ssl-client-cert")),
        ForwardedDialect::DerHeader(HeaderName::from_static("x-ssl-client-cert")),
    ];
    for dialect in &dialects {
        match forwarded_chain(dialect, &headers, limits) {
            Ok(Some(chain)) => {
                assert!(!chain.is_empty() && chain.len() <= limits.max_certificates);
            }
            Ok(None) => {}
            Err(e) => {
                let named = match &e {
                    ForwardedError::TooLarge { header, .. }
                    | ForwardedError::TooManyCertificates { header, .. }
                    | ForwardedError::Repeated { header, .. }
                    | ForwardedError::BadUrlEncoding { header, .. }
                    | ForwardedError::BadPem { header, .. }
                    | ForwardedError::BadBase64 { header, .. }
                    | ForwardedError::Malformed { header, .. } => header.clone(),
                    _ => continue,
                };
                assert!(e.to_string().starts_with(named.as_str()));
            }
        }
    }
    let networks: Vec<IpNet> = ["10.0.0.0/8", "2001:db8::/32"]
        .iter()
        .map(|n| n.parse().expect("static network"))
        .collect();
    let peer: IpAddr = "10.1.1.1".parse().expect("static address");
    for hops in 1..4 {
        if let Ok((proxy, _client)) = forwarded_path(&networks, hops, peer, &headers) {
            assert_eq!(proxy, peer);
        }
    }
    }
);
