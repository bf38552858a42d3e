//! Arbitrary certificates and header sets through the DN/SAN formatters, the
//! header builder and the sanitizer: nothing panics, every value is a valid
//! header value, and no client-sent certificate header survives `apply`.

#![no_main]

use edge_mtls::internal::{log_style, rfc2253};
use edge_mtls::CertFields;
use edge_mtls::ClientCertInfo;
use edge_mtls::{is_reserved_header, ConnectionFacts, HeaderBuilder, HeaderProfile, XfccMode};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn builder() -> HeaderBuilder {
    HeaderBuilder::builder()
        .profile(HeaderProfile::CloudFront)
        .profile(HeaderProfile::AlbVerify)
        .profile(HeaderProfile::AlbPassthrough)
        .profile(HeaderProfile::Rfc9440)
        .profile(HeaderProfile::EnvoyXfcc(XfccMode::SanitizeSet))
        .profile(HeaderProfile::Custom {
            prefix: "X-Client-Cert-".into(),
        })
        .connection_id_header("X-Edge-Connection-Id")
        .tls_headers(true)
        .max_value_bytes(4096)
        .build()
        .expect("static configuration")
}

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input into a certificate and a header set.
    let split = usize::from(data.first().copied().unwrap_or(0)) * 8;
    let (cert, headers) = data
        .get(1..)
        .unwrap_or(&[])
        .split_at(split.min(data.len().saturating_sub(1)));

    // Any bytes as a Name.
    let _ = rfc2253(cert);
    let _ = log_style(cert);

    let info = ClientCertInfo::from_der(cert);
    let fields = info.as_ref().map(|i| CertFields::new(i, &[cert]));
    let rendered = builder().render(&ConnectionFacts {
        cert: fields.as_ref(),
        verified: data.len() % 2 == 0,
        connection_id: Some("fuzz"),
        tls_version: Some("TLSv1.3"),
        tls_cipher: Some("TLS13_AES_128_GCM_SHA256"),
    });

    // A request whose header names and values come from the input.
    let mut map = HeaderMap::new();
    for line in headers.split(|b| *b == b'\n') {
        let mut parts = line.splitn(2, |b| *b == b':');
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    let forged: Vec<HeaderName> = map
        .keys()
        .filter(|n| is_reserved_header(n.as_str()))
        .cloned()
        .collect();
    rendered.apply(&mut map);
    let ours: Vec<&str> = rendered.entries().map(|(n, _)| n).collect();
    for name in forged {
        // Only the values this connection added may carry a reserved name.
        let survivors = map.get_all(&name).iter().count();
        let added = ours.iter().filter(|n| **n == name.as_str()).count();
        assert_eq!(survivors, added, "client-sent {name} survived sanitizing");
    }
});
