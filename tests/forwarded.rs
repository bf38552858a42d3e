//! Forwarded certificates behind a trusted proxy, in process: every dialect,
//! the trust boundary (forged headers from untrusted peers), malformed
//! values, chain order, hops, the shared secret, the cache re-checking
//! revocation, and the actix-web middleware. The real nginx and HAProxy in
//! front are in `forwarded_proxies.rs`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Json;
use axum::Router;
use base64::Engine as _;
use common::e2e::demo_pki::pki::url_encode as urlencode;
use common::e2e::demo_pki::DemoPki;
use common::e2e::{Fixture, MemorySink};
use edge_mtls::axum::{ClientCert, MtlsConnection};
use edge_mtls::tower::ForwardedLayer;
use edge_mtls::{
    ConnectionStatus, DenyListSettings, Edge, ForwardedSettings, HeaderProfile, MtlsConfig,
    ReasonCode, ValidationMode,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use tower_layer::Layer as _;
use tower_service::Service as _;

/// The demo client's subject, RFC 2253.
const MY_CLIENT: &str = "CN=my-client,O=edge-mtls demo,C=US";
const PROXY: &str = "10.0.0.7:40000";
const STRANGER: &str = "192.0.2.66:40000";

fn b64(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

fn pem_file(pki: &DemoPki, name: &str) -> String {
    std::fs::read_to_string(pki.path(name)).expect("PEM file")
}

fn der_file(pki: &DemoPki, name: &str) -> Vec<u8> {
    CertificateDer::from_pem_file(pki.path(name))
        .expect("certificate")
        .to_vec()
}

/// An edge reading `dialect` from 10.0.0.0/8, with the demo trust store
/// and deny list, CloudFront headers, logs into `sink`.
fn forwarding_edge(
    fx: &Fixture,
    dialect: &str,
    mode: ValidationMode,
    sink: &Arc<MemorySink>,
) -> Edge {
    edge_with(fx, dialect, mode, sink, |_| {})
}

fn edge_with(
    fx: &Fixture,
    dialect: &str,
    mode: ValidationMode,
    sink: &Arc<MemorySink>,
    adjust: impl FnOnce(&mut ForwardedSettings),
) -> Edge {
    let mut settings = ForwardedSettings {
        dialect: dialect.into(),
        trusted_proxies: vec!["10.0.0.0/8".into()],
        ..ForwardedSettings::default()
    };
    adjust(&mut settings);
    let mut b = MtlsConfig::builder()
        .distribution_id("forwarded")
        .mode(mode)
        .trust_store_file(fx.pki.trust_store())
        .header_profiles([HeaderProfile::CloudFront])
        .log_sink(sink.clone())
        .forwarded(settings);
    b.settings().revocation.deny_list = Some(DenyListSettings {
        kvs_json: vec![fx.pki.revoked_serials()],
        ..DenyListSettings::default()
    });
    b.build().expect("edge")
}

/// The app: the verified identity and the certificate headers it received.
fn app() -> Router {
    Router::new().fallback(
        |connection: Option<MtlsConnection>, cert: Option<ClientCert>, request: Request<Body>| async move {
            let headers: serde_json::Map<String, Value> = request
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), json!(String::from_utf8_lossy(v.as_bytes()))))
                .collect();
            Json(json!({
                "subject": cert.map(|ClientCert(c)| c.subject.clone()),
                "forwardedBy": connection.as_ref().and_then(|MtlsConnection(i)| i.forwarded_by).map(|ip| ip.to_string()),
                "clientIp": connection.as_ref().map(|MtlsConnection(i)| i.peer.ip().to_string()),
                "headers": headers,
            }))
        },
    )
}

/// One request from `peer` with `headers`: the status and the app's JSON.
async fn request(edge: &Edge, peer: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let peer: SocketAddr = peer.parse().expect("address");
    let verifier = edge.forwarded().expect("[forwarded]").clone();
    let mut service = ForwardedLayer::for_connection(verifier, peer, None).layer(app());
    let mut builder = Request::builder().uri("/");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = service
        .call(builder.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).expect("JSON")
    };
    (status, json)
}

/// Each dialect's header(s) carrying the demo's `name` client certificate
/// (leaf, then the intermediate where the dialect carries a chain).
fn dialect_headers(pki: &DemoPki, dialect: &str, name: &str) -> Vec<(String, String)> {
    let leaf_der = der_file(pki, &format!("{name}.pem"));
    let inter_der = der_file(pki, "intermediate_ca.pem");
    headers_for(dialect, &leaf_der, &inter_der)
}

/// Each dialect's header(s) carrying `leaf_der` (and `inter_der` where the
/// dialect carries a chain).
fn headers_for(dialect: &str, leaf_der: &[u8], inter_der: &[u8]) -> Vec<(String, String)> {
    let leaf_pem = common::der_to_pem(leaf_der);
    let inter_pem = common::der_to_pem(inter_der);
    let (leaf_der, inter_der) = (leaf_der.to_vec(), inter_der.to_vec());
    let chain_pem = format!("{leaf_pem}{inter_pem}");
    match dialect {
        "alb_passthrough" => vec![("X-Amzn-Mtls-Clientcert".into(), urlencode(&chain_pem))],
        "cloudfront" => vec![("CloudFront-Viewer-Cert-Pem".into(), urlencode(&leaf_pem))],
        "xfcc" => vec![(
            "x-forwarded-client-cert".into(),
            format!(
                "By=spiffe://proxy;Hash=00;Cert=\"{}\";Chain=\"{}\";Subject=\"CN=x\"",
                urlencode(&leaf_pem),
                urlencode(&chain_pem)
            ),
        )],
        "rfc9440" => vec![
            ("Client-Cert".into(), format!(":{}:", b64(&leaf_der))),
            ("Client-Cert-Chain".into(), format!(":{}:", b64(&inter_der))),
        ],
        "pem-header:X-SSL-Client-Cert" => {
            vec![("X-SSL-Client-Cert".into(), urlencode(&leaf_pem))]
        }
        "der-header:X-SSL-Client-Der" => vec![("X-SSL-Client-Der".into(), b64(&leaf_der))],
        other => panic!("no such dialect {other}"),
    }
}

const DIALECTS: [&str; 6] = [
    "alb_passthrough",
    "cloudfront",
    "xfcc",
    "rfc9440",
    "pem-header:X-SSL-Client-Cert",
    "der-header:X-SSL-Client-Der",
];

fn refs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

#[tokio::test]
async fn every_dialect_authenticates_from_a_trusted_proxy_with_the_direct_paths_identity() {
    let fx = Fixture::new();
    for dialect in DIALECTS {
        let sink = Arc::new(MemorySink::default());
        let edge = forwarding_edge(&fx, dialect, ValidationMode::Required, &sink);
        let mut headers = dialect_headers(&fx.pki, dialect, "my_client");
        headers.push(("X-Forwarded-For".into(), "203.0.113.9".into()));
        let (status, json) = request(&edge, PROXY, &refs(&headers)).await;
        assert_eq!(status, StatusCode::OK, "{dialect}: {:?}", sink.records());
        assert_eq!(json["subject"], json!(MY_CLIENT), "{dialect}");
        assert_eq!(json["forwardedBy"], json!("10.0.0.7"), "{dialect}");
        assert_eq!(json["clientIp"], json!("203.0.113.9"), "{dialect}");
        let h = &json["headers"];
        assert_eq!(
            h["cloudfront-viewer-cert-present"],
            json!("1"),
            "{dialect}: {h}"
        );
        assert_eq!(
            h["cloudfront-viewer-cert-serial-number"],
            json!("10:01"),
            "{dialect}: {h}"
        );
        // The forwarded header itself never reaches the app.
        for (name, _) in dialect_headers(&fx.pki, dialect, "my_client") {
            if !name.eq_ignore_ascii_case("cloudfront-viewer-cert-pem") {
                assert!(
                    h.get(name.to_ascii_lowercase()).is_none(),
                    "{dialect}: {name} leaked"
                );
            }
        }
        let records = sink.records();
        assert_eq!(records.len(), 1, "{dialect}");
        let r = &records[0];
        assert_eq!(r.connection_status, ConnectionStatus::Success, "{dialect}");
        assert!(r.forwarded, "{dialect}");
        assert_eq!(r.proxy_ip, Some("10.0.0.7".parse().unwrap()), "{dialect}");
        assert_eq!(
            r.client_ip,
            Some("203.0.113.9".parse().unwrap()),
            "{dialect}"
        );
        assert_eq!(r.client_leaf_cert_serial_number.as_deref(), Some("10:01"));
    }
}

#[tokio::test]
async fn revoked_expired_and_untrusted_forwarded_certificates_get_403_with_their_reason() {
    let fx = Fixture::new();
    // A client of another CA.
    let foreign = common::Pki::new(1);
    let stranger = foreign.client("stranger", &common::LeafOptions::default());
    for dialect in DIALECTS {
        let sink = Arc::new(MemorySink::default());
        let edge = forwarding_edge(&fx, dialect, ValidationMode::Required, &sink);
        for (name, reason) in [
            ("revoked_client", ReasonCode::ClientCertRevoked),
            ("expired_client", ReasonCode::ClientCertExpired),
        ] {
            let headers = dialect_headers(&fx.pki, dialect, name);
            let (status, body) = request(&edge, PROXY, &refs(&headers)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{dialect} {name}");
            assert_eq!(body, Value::Null, "{dialect} {name}: a refusal has no body");
            let record = sink.records().pop().expect("record");
            assert_eq!(
                record.connection_status,
                ConnectionStatus::Failed(reason),
                "{dialect} {name}: {record:?}"
            );
            assert!(record.forwarded);
        }
        let headers = headers_for(dialect, stranger.der(), stranger.intermediates()[0]);
        let (status, _) = request(&edge, PROXY, &refs(&headers)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{dialect} untrusted");
        let record = sink.records().pop().expect("record");
        assert_eq!(
            record.connection_status,
            ConnectionStatus::Failed(ReasonCode::ClientCertUntrusted),
            "{dialect}: {record:?}"
        );
    }
}

#[tokio::test]
async fn forged_headers_from_an_untrusted_peer_never_authenticate_in_any_dialect() {
    let fx = Fixture::new();
    for dialect in DIALECTS {
        // Optional mode: the request goes on, without a certificate.
        let sink = Arc::new(MemorySink::default());
        let edge = forwarding_edge(&fx, dialect, ValidationMode::Optional, &sink);
        // Every dialect's header, in three spellings, from a stranger (the
        // named headers of the `pem-header`/`der-header` dialects mean
        // nothing to the others, which leave them alone).
        let mut forged: Vec<(String, String)> = Vec::new();
        for d in DIALECTS {
            for (name, value) in dialect_headers(&fx.pki, d, "my_client") {
                forged.push((name.to_ascii_uppercase(), value.clone()));
                forged.push((name.replace('-', "_"), value.clone()));
                forged.push((name, value));
            }
        }
        forged.push(("CloudFront-Viewer-Cert-Present".into(), "1".into()));
        let (status, json) = request(&edge, STRANGER, &refs(&forged)).await;
        assert_eq!(status, StatusCode::OK, "{dialect}");
        assert_eq!(
            json["subject"],
            Value::Null,
            "{dialect}: authenticated by a forged header"
        );
        let h = json["headers"].as_object().expect("headers");
        assert_eq!(
            h.get("cloudfront-viewer-cert-present"),
            Some(&json!("0")),
            "{dialect}"
        );
        for name in h.keys() {
            let folded = name.replace('_', "-");
            assert!(
                !(folded.starts_with("x-amzn-mtls")
                    || folded.starts_with("client-cert")
                    || folded.starts_with("x-forwarded-client-cert")
                    || dialect
                        .to_ascii_lowercase()
                        .ends_with(&format!(":{folded}"))
                    || (folded.starts_with("cloudfront-viewer-cert")
                        && folded != "cloudfront-viewer-cert-present")),
                "{dialect}: {name} reached the app"
            );
        }
        let record = sink.records().pop().expect("record");
        assert!(!record.forwarded, "{dialect}");
        assert!(
            record
                .connection_status_detail
                .as_deref()
                .unwrap_or_default()
                .contains("192.0.2.66 is not a trusted proxy"),
            "{dialect}: {record:?}"
        );

        // Required mode: refused, as without a certificate.
        let sink = Arc::new(MemorySink::default());
        let edge = forwarding_edge(&fx, dialect, ValidationMode::Required, &sink);
        let (status, _) = request(&edge, STRANGER, &refs(&forged)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{dialect}");
        assert_eq!(
            sink.records().pop().expect("record").connection_status,
            ConnectionStatus::Failed(ReasonCode::ClientCertMissing)
        );
    }
}

#[tokio::test]
async fn malformed_values_get_400_or_403_with_a_clear_reason_and_never_panic() {
    let fx = Fixture::new();
    let leaf_pem = pem_file(&fx.pki, "my_client.pem");
    let truncated = urlencode(&leaf_pem[..leaf_pem.len() / 2]);
    let no_end = urlencode(
        leaf_pem
            .trim_end()
            .trim_end_matches("-----END CERTIFICATE-----"),
    );
    let bad_base64 = urlencode(&leaf_pem.replacen("MII", "M!I", 1));
    let huge = "A".repeat(1 << 20);
    let hundred = urlencode(&leaf_pem.repeat(100));
    let cases: Vec<(&str, String, u16, ReasonCode, &str)> = vec![
        (
            "alb_passthrough",
            truncated,
            400,
            ReasonCode::ClientCertInvalid,
            "no END line",
        ),
        (
            "alb_passthrough",
            no_end,
            400,
            ReasonCode::ClientCertInvalid,
            "no END line",
        ),
        (
            "alb_passthrough",
            "%ZZ%0A".into(),
            400,
            ReasonCode::ClientCertInvalid,
            "bad URL encoding",
        ),
        (
            "alb_passthrough",
            bad_base64,
            400,
            ReasonCode::ClientCertInvalid,
            "bad base64",
        ),
        (
            "alb_passthrough",
            "hello".into(),
            400,
            ReasonCode::ClientCertInvalid,
            "no `-----BEGIN CERTIFICATE-----` block",
        ),
        (
            "alb_passthrough",
            huge.clone(),
            400,
            ReasonCode::ClientCertMaxSizeExceeded,
            "limit 65536",
        ),
        (
            "der-header:X-SSL-Client-Der",
            "not base64!".into(),
            400,
            ReasonCode::ClientCertInvalid,
            "bad base64",
        ),
        (
            "der-header:X-SSL-Client-Der",
            huge,
            400,
            ReasonCode::ClientCertMaxSizeExceeded,
            "limit 65536",
        ),
        (
            "der-header:X-SSL-Client-Der",
            b64(b"\x30\x03\x02\x01\x01"),
            403,
            ReasonCode::ClientCertInvalid,
            "leaf certificate",
        ),
        (
            "rfc9440",
            "no-colons".into(),
            400,
            ReasonCode::ClientCertInvalid,
            "byte sequence",
        ),
        (
            "xfcc",
            "Hash=abc;Subject=\"CN=x\"".into(),
            400,
            ReasonCode::ClientCertInvalid,
            "neither Cert nor Chain",
        ),
        (
            "xfcc",
            "Cert=\"unterminated".into(),
            400,
            ReasonCode::ClientCertInvalid,
            "unterminated",
        ),
    ];
    for (dialect, value, status, reason, detail) in cases {
        let sink = Arc::new(MemorySink::default());
        let edge = forwarding_edge(&fx, dialect, ValidationMode::Required, &sink);
        let name = match dialect {
            "alb_passthrough" => "X-Amzn-Mtls-Clientcert",
            "rfc9440" => "Client-Cert",
            "xfcc" => "x-forwarded-client-cert",
            _ => "X-SSL-Client-Der",
        };
        let (got, body) = request(&edge, PROXY, &[(name, &value)]).await;
        assert_eq!(got.as_u16(), status, "{dialect} {detail}");
        assert_eq!(body, Value::Null);
        let record = sink.records().pop().expect("record");
        assert_eq!(
            record.connection_status,
            ConnectionStatus::Failed(reason),
            "{dialect}: {record:?}"
        );
        let logged = record.connection_status_detail.unwrap_or_default();
        assert!(
            logged.contains(detail),
            "{dialect}: `{logged}` does not say `{detail}`"
        );
    }
    // 100 certificates, with room for them in the header.
    let sink = Arc::new(MemorySink::default());
    let edge = edge_with(
        &fx,
        "alb_passthrough",
        ValidationMode::Required,
        &sink,
        |s| {
            s.max_header_bytes = 1 << 20;
        },
    );
    let (got, _) = request(&edge, PROXY, &[("X-Amzn-Mtls-Clientcert", &hundred)]).await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    let record = sink.records().pop().expect("record");
    assert_eq!(
        record.connection_status,
        ConnectionStatus::Failed(ReasonCode::ClientCertMaxChainDepthExceeded)
    );
    assert!(record
        .connection_status_detail
        .unwrap_or_default()
        .contains("more than 10 certificates"));

    // A single-valued header sent twice is ambiguous.
    let sink = Arc::new(MemorySink::default());
    let edge = forwarding_edge(&fx, "cloudfront", ValidationMode::Required, &sink);
    let v = urlencode(&leaf_pem);
    let (got, _) = request(
        &edge,
        PROXY,
        &[
            ("CloudFront-Viewer-Cert-Pem", &v),
            ("CloudFront-Viewer-Cert-Pem", &v),
        ],
    )
    .await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    assert!(sink.records()[0]
        .connection_status_detail
        .as_deref()
        .unwrap_or_default()
        .contains("sent 2 times"));
}

#[tokio::test]
async fn alb_chain_order_with_the_root_in_the_header_trusts_only_the_store() {
    let fx = Fixture::new();
    let sink = Arc::new(MemorySink::default());
    let edge = forwarding_edge(&fx, "alb_passthrough", ValidationMode::Required, &sink);
    // Leaf, intermediate, root: as the seed describes ALB's header.
    let full = format!(
        "{}{}{}",
        pem_file(&fx.pki, "my_client.pem"),
        pem_file(&fx.pki, "intermediate_ca.pem"),
        pem_file(&fx.pki, "root_ca.pem")
    );
    let (status, _) = request(
        &edge,
        PROXY,
        &[("X-Amzn-Mtls-Clientcert", &urlencode(&full))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{:?}", sink.records());

    // Another PKI's full chain, its own root included: the root in the
    // header is not an anchor.
    let foreign = common::Pki::new(1);
    let stranger = foreign.client("stranger", &common::LeafOptions::default());
    let forged = format!("{}{}", stranger.chain_pem(), foreign.root.pem());
    let (status, _) = request(
        &edge,
        PROXY,
        &[("X-Amzn-Mtls-Clientcert", &urlencode(&forged))],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        sink.records().pop().expect("record").connection_status,
        ConnectionStatus::Failed(ReasonCode::ClientCertUntrusted)
    );
}

#[tokio::test]
async fn a_repeated_chain_is_rechecked_against_the_deny_list_every_request() {
    let fx = Fixture::new();
    let sink = Arc::new(MemorySink::default());
    let edge = forwarding_edge(&fx, "alb_passthrough", ValidationMode::Required, &sink);
    let headers = dialect_headers(&fx.pki, "alb_passthrough", "my_client");
    for _ in 0..3 {
        assert_eq!(
            request(&edge, PROXY, &refs(&headers)).await.0,
            StatusCode::OK
        );
    }
    edge.deny_list()
        .expect("file deny list")
        .put("1001", "revoked now")
        .expect("put");
    assert_eq!(
        request(&edge, PROXY, &refs(&headers)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        sink.records().pop().expect("record").connection_status,
        ConnectionStatus::Failed(ReasonCode::ClientCertRevoked)
    );
}

#[tokio::test]
async fn two_hops_and_a_shared_secret_are_both_required_when_configured() {
    let fx = Fixture::new();
    let sink = Arc::new(MemorySink::default());
    let edge = edge_with(&fx, "cloudfront", ValidationMode::Required, &sink, |s| {
        s.trusted_proxies.push("172.16.0.0/12".into());
        s.trusted_hops = 2;
        s.shared_secret_header = Some("X-Origin-Verify".into());
        s.shared_secret = Some("s3cret".into());
    });
    let mut headers = dialect_headers(&fx.pki, "cloudfront", "my_client");
    headers.push(("X-Origin-Verify".into(), "s3cret".into()));
    headers.push(("X-Forwarded-For".into(), "198.51.100.20, 172.16.5.5".into()));
    let (status, json) = request(&edge, PROXY, &refs(&headers)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["clientIp"], json!("198.51.100.20"));
    assert!(
        json["headers"].get("x-origin-verify").is_none(),
        "the secret reached the app"
    );

    // The inner hop is not a trusted proxy.
    let mut wrong_hop = headers.clone();
    wrong_hop.pop();
    wrong_hop.push(("X-Forwarded-For".into(), "172.16.5.5, 198.51.100.20".into()));
    assert_eq!(
        request(&edge, PROXY, &refs(&wrong_hop)).await.0,
        StatusCode::FORBIDDEN
    );
    // The secret is wrong.
    let mut wrong_secret = headers.clone();
    wrong_secret[1].1 = "guess".into();
    assert_eq!(
        request(&edge, PROXY, &refs(&wrong_secret)).await.0,
        StatusCode::FORBIDDEN
    );
    let detail = sink
        .records()
        .pop()
        .unwrap()
        .connection_status_detail
        .unwrap_or_default();
    assert!(detail.contains("shared-secret"), "{detail}");
}

#[test]
fn settings_are_checked_at_build_naming_the_setting() {
    let fx = Fixture::new();
    let sink = Arc::new(MemorySink::default());
    let build = |f: &dyn Fn(&mut ForwardedSettings)| {
        let mut s = ForwardedSettings {
            trusted_proxies: vec!["10.0.0.0/8".into()],
            ..ForwardedSettings::default()
        };
        f(&mut s);
        MtlsConfig::builder()
            .trust_store_file(fx.pki.trust_store())
            .log_sink(sink.clone())
            .forwarded(s)
            .build()
            .map(drop)
            .map_err(|e| e.to_string())
    };
    assert!(
        build(&|_| {}).is_ok(),
        "no [server] is needed behind a proxy"
    );
    let err = build(&|s| s.dialect = "nginx".into()).unwrap_err();
    assert!(
        err.contains("forwarded.dialect") && err.contains("`nginx`"),
        "{err}"
    );
    let err = build(&|s| s.trusted_proxies = vec!["10.0.0.0/33".into()]).unwrap_err();
    assert!(err.contains("forwarded.trusted_proxies"), "{err}");
    let err = build(&|s| s.trusted_proxies.clear()).unwrap_err();
    assert!(err.contains("forwarded.trusted_proxies"), "{err}");
    let err = build(&|s| s.trusted_hops = 0).unwrap_err();
    assert!(err.contains("forwarded.trusted_hops"), "{err}");
    let err = build(&|s| s.shared_secret = Some("x".into())).unwrap_err();
    assert!(err.contains("forwarded.shared_secret_header"), "{err}");
    // The same from TOML.
    let config = MtlsConfig::from_toml(
        "[trust_store]\nfiles = [\"x.pem\"]\n[forwarded]\ndialect = \"pem-header:X-SSL-Client-Cert\"\ntrusted_proxies = [\"127.0.0.1/32\"]\ntrusted_hops = 2\n",
    )
    .expect("TOML");
    let forwarded = config.forwarded.expect("[forwarded]");
    assert_eq!(forwarded.dialect, "pem-header:X-SSL-Client-Cert");
    assert_eq!(forwarded.trusted_hops, 2);
}

#[test]
fn the_actix_middleware_gives_the_same_extractors() {
    actix_rt::System::new().block_on(actix_middleware());
}

async fn actix_middleware() {
    use actix_web::{test, web, App};
    use edge_mtls::actix::{ClientCert as ActixCert, ForwardedCerts};
    let fx = Fixture::new();
    let sink = Arc::new(MemorySink::default());
    let edge = forwarding_edge(&fx, "alb_passthrough", ValidationMode::Required, &sink);
    let app = test::init_service(
        App::new()
            .wrap(ForwardedCerts::from_edge(&edge).expect("[forwarded]"))
            .route(
                "/",
                web::get().to(
                    |ActixCert(cert): ActixCert, req: actix_web::HttpRequest| async move {
                        let present = req
                            .headers()
                            .get("cloudfront-viewer-cert-present")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let leaked = req.headers().contains_key("x-amzn-mtls-clientcert");
                        format!("{}|{present}|{leaked}", cert.subject)
                    },
                ),
            ),
    )
    .await;
    let headers = dialect_headers(&fx.pki, "alb_passthrough", "my_client");
    let from = |peer: &str| {
        let mut r = test::TestRequest::get()
            .uri("/")
            .peer_addr(peer.parse().unwrap());
        for (n, v) in &headers {
            r = r.insert_header((n.as_str(), v.as_str()));
        }
        r.to_request()
    };
    let response = test::call_service(&app, from(PROXY)).await;
    assert_eq!(response.status().as_u16(), 200);
    let body = test::read_body(response).await;
    assert_eq!(body, format!("{MY_CLIENT}|1|false"));
    let response = test::call_service(&app, from(STRANGER)).await;
    assert_eq!(response.status().as_u16(), 403);
    let records = sink.records();
    assert_eq!(records.len(), 2);
    assert!(records[0].forwarded && !records[1].forwarded);
}

/// Denies connections from 198.51.100.0/24 and logs which client it saw.
#[derive(Debug)]
struct DenyDocumentationNet;

#[async_trait::async_trait]
impl edge_mtls::ConnectionPolicy for DenyDocumentationNet {
    async fn evaluate(
        &self,
        connection: &edge_mtls::Connection,
    ) -> Result<edge_mtls::Verdict, edge_mtls::PolicyError> {
        let seen = format!(
            "client {} serial {}",
            connection.client_ip,
            connection
                .client_certificate()
                .map(|c| c.certificates.leaf.serial_number.clone())
                .unwrap_or_default()
        );
        let verdict = if connection.client_ip.to_string().starts_with("198.51.100.") {
            edge_mtls::Verdict::deny()
        } else {
            edge_mtls::Verdict::allow()
        };
        Ok(verdict.with_custom_data(seen))
    }
}

#[tokio::test]
async fn the_connection_policy_sees_the_reported_client_and_the_forwarded_certificate() {
    let fx = Fixture::new();
    let sink = Arc::new(MemorySink::default());
    let edge = MtlsConfig::builder()
        .trust_store_file(fx.pki.trust_store())
        .log_sink(sink.clone())
        .policy(Arc::new(DenyDocumentationNet))
        .forwarded(ForwardedSettings {
            dialect: "cloudfront".into(),
            trusted_proxies: vec!["10.0.0.0/8".into()],
            ..ForwardedSettings::default()
        })
        .build()
        .expect("edge");
    let mut headers = dialect_headers(&fx.pki, "cloudfront", "my_client");
    headers.push(("X-Forwarded-For".into(), "203.0.113.5".into()));
    assert_eq!(
        request(&edge, PROXY, &refs(&headers)).await.0,
        StatusCode::OK
    );
    headers.pop();
    headers.push(("X-Forwarded-For".into(), "198.51.100.5".into()));
    assert_eq!(
        request(&edge, PROXY, &refs(&headers)).await.0,
        StatusCode::FORBIDDEN
    );
    let records = sink.records();
    assert_eq!(
        records[0].connection_log_custom_data.as_deref(),
        Some("client 203.0.113.5 serial 10:01")
    );
    assert_eq!(
        records[1].connection_status,
        ConnectionStatus::Failed(ReasonCode::ConnectionFunctionDenied)
    );
    assert_eq!(
        records[1].connection_log_custom_data.as_deref(),
        Some("client 198.51.100.5 serial 10:01")
    );
}
