//! Connection logs: the JSON, W3C and ALB renderings read back by
//! independent parsers, connection ids, the queue sink under a stuck writer
//! and a million records, and the per-reason counters.

mod common;

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use common::structured_fields::percent_decode;
use common::{provider, LeafOptions, Pki};
use edge_mtls::internal::{alb_line, json_line, w3c_header, w3c_line, W3C_FIELDS};
use edge_mtls::CertFields;
use edge_mtls::{ClientCertInfo, ReasonCode};
use edge_mtls::{
    ConnectionId, ConnectionLogRecord, ConnectionLogSink, ConnectionStatus, LogFormat,
    LogShutdownError, QueueSink, ReasonCounters,
};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use sha2::{Digest, Sha256};

/// A hang guard for steps that must not block: generous, never a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// A real leaf (serial with a sign byte, the ALB document's dates) and its fields.
fn leaf_fields() -> (Vec<u8>, CertFields) {
    let pki = Pki::new(1);
    let leaf = pki.client(
        "client.example.com",
        &LeafOptions {
            serial: Some(vec![0xb1, 0x43, 0xed, 0x93, 0xd2, 0xd8, 0xf3, 0x9d]),
            validity: Some((
                UNIX_EPOCH + Duration::from_secs(1_695_261_017),
                UNIX_EPOCH + Duration::from_secs(1_726_797_017),
            )),
            ..LeafOptions::default()
        },
    );
    let info = ClientCertInfo::from_der(leaf.der()).expect("leaf parses");
    let fields = CertFields::new(&info, &leaf.intermediates());
    (leaf.der().to_vec(), fields)
}

fn populated_record(fields: &CertFields) -> ConnectionLogRecord {
    let mut record = ConnectionLogRecord {
        event_timestamp: 1_695_261_017_123,
        connection_id: "xdzQ6lJUDUt8b7OuqOD8lmzOC9HcMaXPmhH5ZdzLCZpKxqzfCPpR4A==".into(),
        connection_status: ConnectionStatus::Success,
        client_ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
        client_port: Some(52_114),
        server_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 20))),
        server_port: Some(443),
        distribution_id: "E1NXS4MQZH501R".into(),
        tls_protocol: Some("TLSv1.3".into()),
        tls_cipher: Some("TLS_AES_128_GCM_SHA256".into()),
        tls_key_exchange: Some("X25519".into()),
        tls_handshake_duration: Some(12),
        tls_sni: Some("api.example.com".into()),
        connection_log_custom_data: Some("Valid certificate: 00b143ed93d2d8f39d".into()),
        trust_store_generation: Some(3),
        ..ConnectionLogRecord::default()
    };
    record.set_leaf(fields);
    record
}

/// The top-level keys of a JSON object, in order, duplicates kept.
fn json_keys(line: &str) -> Vec<String> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some((key, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                keys.push(key);
            }
            Ok(keys)
        }
    }
    let mut de = serde_json::Deserializer::from_str(line);
    let keys = (&mut de).deserialize_map(Keys).expect("a JSON object");
    de.end().expect("nothing after the object");
    keys
}

/// CloudFront's connection-log field names, in the order the JSON carries them.
const JSON_FIELDS: [&str; 22] = [
    "eventTimestamp",
    "connectionId",
    "connectionStatus",
    "clientIp",
    "clientPort",
    "serverIp",
    "serverPort",
    "distributionId",
    "tlsProtocol",
    "tlsCipher",
    "tlsHandshakeDuration",
    "tlsSni",
    "clientLeafCertSerialNumber",
    "clientLeafCertSubject",
    "clientLeafCertIssuer",
    "clientLeafCertValidity",
    "clientLeafCertSha256",
    "connectionLogCustomData",
    "trustStoreGeneration",
    "forwarded",
    "proxyIp",
    "connectionStatusDetail",
];

#[test]
fn json_line_has_cloudfront_field_names_and_values() {
    let (der, fields) = leaf_fields();
    let record = populated_record(&fields);
    let mut line = String::new();
    json_line(&mut line, &record);
    assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
    assert_eq!(json_keys(&line), JSON_FIELDS);

    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    let sha256: String = Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let expected = serde_json::json!({
        "eventTimestamp": 1_695_261_017_123_u64,
        "connectionId": "xdzQ6lJUDUt8b7OuqOD8lmzOC9HcMaXPmhH5ZdzLCZpKxqzfCPpR4A==",
        "connectionStatus": "Success",
        "clientIp": "203.0.113.7",
        "clientPort": 52114,
        "serverIp": "10.0.1.20",
        "serverPort": 443,
        "distributionId": "E1NXS4MQZH501R",
        "tlsProtocol": "TLSv1.3",
        "tlsCipher": "TLS_AES_128_GCM_SHA256",
        "tlsHandshakeDuration": 12,
        "tlsSni": "api.example.com",
        "clientLeafCertSerialNumber": "00:b1:43:ed:93:d2:d8:f3:9d",
        // rcgen writes O before CN; CloudFront's log style keeps encoded order.
        "clientLeafCertSubject": "O=edge-mtls tests, CN=client.example.com",
        "clientLeafCertIssuer": fields.issuer_log().to_owned(),
        "clientLeafCertValidity": "NotBefore=2023-09-21T01:50:17Z;NotAfter=2024-09-20T01:50:17Z",
        "clientLeafCertSha256": sha256,
        "connectionLogCustomData": "Valid certificate: 00b143ed93d2d8f39d",
        "trustStoreGeneration": 3,
        "forwarded": false,
        "proxyIp": null,
        "connectionStatusDetail": null,
    });
    assert_eq!(v, expected);
    assert!(fields
        .issuer_log()
        .starts_with("O=edge-mtls tests, CN=edge-mtls test intermediate CA "));
}

#[test]
fn json_line_of_a_failed_attempt_without_certificate() {
    let record = ConnectionLogRecord {
        event_timestamp: 1,
        connection_id: "id".into(),
        connection_status: ConnectionStatus::Failed(ReasonCode::ClientCertMissing),
        client_ip: Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))),
        client_port: Some(40_000),
        ..ConnectionLogRecord::default()
    };
    let mut line = String::new();
    json_line(&mut line, &record);
    assert_eq!(json_keys(&line), JSON_FIELDS);
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(v["connectionStatus"], "Failed:ClientCertMissing");
    assert_eq!(v["clientIp"], "2001:db8::1");
    assert_eq!(v["clientPort"], 40_000);
    assert_eq!(v["distributionId"], "");
    for key in [
        "serverIp",
        "serverPort",
        "tlsProtocol",
        "tlsCipher",
        "tlsHandshakeDuration",
        "tlsSni",
        "clientLeafCertSerialNumber",
        "clientLeafCertSubject",
        "clientLeafCertIssuer",
        "clientLeafCertValidity",
        "clientLeafCertSha256",
        "connectionLogCustomData",
        "trustStoreGeneration",
        "proxyIp",
        "connectionStatusDetail",
    ] {
        assert!(v[key].is_null(), "{key} = {}", v[key]);
    }
    assert_eq!(v["forwarded"], false);
    // Every reason code is written by its CloudFront name.
    for &code in ReasonCode::ALL {
        let mut line = String::new();
        json_line(
            &mut line,
            &ConnectionLogRecord {
                connection_status: ConnectionStatus::Failed(code),
                ..ConnectionLogRecord::default()
            },
        );
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(v["connectionStatus"], format!("Failed:{}", code.as_str()));
    }
}

/// A handshake refused for an intermediate: the presented leaf and the
/// refusal's detail, as the acceptor writes them.
fn refused_record(fields: &CertFields) -> ConnectionLogRecord {
    let mut record = populated_record(fields);
    record.connection_status = ConnectionStatus::Failed(ReasonCode::ClientCertInvalid);
    record.tls_protocol = None;
    record.tls_cipher = None;
    record.tls_key_exchange = None;
    record.connection_log_custom_data = None;
    record.connection_status_detail = Some(
        "intermediate certificate #0 (CN=Acme Issuing CA,O=Acme): pathLenConstraint 0 \
         exceeded by 1 intermediate(s) below it"
            .into(),
    );
    record
}

#[test]
fn json_line_of_a_refused_handshake_names_the_leaf_and_the_failed_check() {
    let (_, fields) = leaf_fields();
    let mut line = String::new();
    json_line(&mut line, &refused_record(&fields));
    assert_eq!(json_keys(&line), JSON_FIELDS);
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(v["connectionStatus"], "Failed:ClientCertInvalid");
    assert_eq!(
        v["clientLeafCertSerialNumber"],
        "00:b1:43:ed:93:d2:d8:f3:9d"
    );
    assert_eq!(v["clientLeafCertSha256"], fields.sha256_hex());
    assert_eq!(
        v["connectionStatusDetail"],
        "intermediate certificate #0 (CN=Acme Issuing CA,O=Acme): pathLenConstraint 0 exceeded \
         by 1 intermediate(s) below it"
    );
    // The detail is the last field, after CloudFront's own.
    assert!(
        line.ends_with(
            ",\"trustStoreGeneration\":3,\"forwarded\":false,\"proxyIp\":null,\"connectionStatusDetail\":\"intermediate certificate \
             #0 (CN=Acme Issuing CA,O=Acme): pathLenConstraint 0 exceeded by 1 intermediate(s) \
             below it\"}\n"
        ),
        "{line}"
    );
}

#[test]
fn w3c_and_alb_lines_of_a_refused_handshake() {
    let (_, fields) = leaf_fields();
    let record = refused_record(&fields);
    let mut line = String::new();
    w3c_line(&mut line, &record);
    let values: Vec<&str> = line.trim_end_matches('\n').split(' ').collect();
    assert_eq!(values.len(), W3C_FIELDS.len(), "{line:?}");
    assert_eq!(W3C_FIELDS.last(), Some(&"connectionStatusDetail"));
    assert_eq!(
        values.last(),
        Some(
            &"intermediate%20certificate%20#0%20(CN=Acme%20Issuing%20CA,O=Acme):%20\
              pathLenConstraint%200%20exceeded%20by%201%20intermediate(s)%20below%20it"
        ),
        "{line:?}"
    );
    let position = |name: &str| W3C_FIELDS.iter().position(|n| *n == name).expect(name);
    assert_eq!(
        values[position("clientLeafCertSerialNumber")],
        "00:b1:43:ed:93:d2:d8:f3:9d"
    );

    // ALB's layout is fixed: 15 fields, the detail is not one of them.
    let mut alb = String::new();
    alb_line(&mut alb, &record);
    assert_eq!(
        alb,
        "2023-09-21T01:50:17.123000Z 203.0.113.7 52114 443 - - 0.012 \
         \"CN=client.example.com,O=edge-mtls tests\" \
         NotBefore=2023-09-21T01:50:17Z;NotAfter=2024-09-20T01:50:17Z B143ED93D2D8F39D \
         Failed:ClientCertInvalid xdzQ6lJUDUt8b7OuqOD8lmzOC9HcMaXPmhH5ZdzLCZpKxqzfCPpR4A== - \
         E1NXS4MQZH501R 10.0.1.20\n"
    );
    assert_eq!(alb_fields(&alb).len(), 15);
}

/// Strings a connection policy or a certificate can put into a record.
const HOSTILE: [&str; 8] = [
    "quote \" backslash \\ slash /",
    "line\nbreak\rcarriage\ttab",
    "controls \u{1}\u{1f}\u{7f}",
    "unicode é 中文 😀 \u{2028}\u{2029}",
    "  leading and trailing  ",
    "percent %41 %",
    "} , \"injected\": true, {",
    "",
];

#[test]
fn json_line_escapes_hostile_strings() {
    for text in HOSTILE {
        let record = ConnectionLogRecord {
            connection_id: text.into(),
            distribution_id: text.into(),
            tls_sni: Some(text.into()),
            client_leaf_cert_subject: Some(text.into()),
            connection_log_custom_data: Some(text.into()),
            connection_status_detail: Some(text.into()),
            ..ConnectionLogRecord::default()
        };
        let mut line = String::new();
        json_line(&mut line, &record);
        assert_eq!(line.matches('\n').count(), 1, "{text:?}: one line");
        assert_eq!(json_keys(&line), JSON_FIELDS, "{text:?}");
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        for key in [
            "connectionId",
            "distributionId",
            "tlsSni",
            "clientLeafCertSubject",
            "connectionLogCustomData",
            "connectionStatusDetail",
        ] {
            assert_eq!(v[key], text, "{key} round trip");
        }
    }
}

/// What a W3C reader makes of one field: `-` is empty, `%XX` is a byte.
fn w3c_decode(field: &str) -> Option<String> {
    (field != "-")
        .then(|| String::from_utf8(percent_decode(field).expect("percent escapes")).expect("UTF-8"))
}

#[test]
fn w3c_file_has_directives_and_a_fixed_field_count() {
    let (_, fields) = leaf_fields();
    let mut records = vec![populated_record(&fields)];
    // Non-ASCII text has its own test (`w3c_line_keeps_utf8`).
    for (i, text) in HOSTILE.iter().filter(|t| t.is_ascii()).enumerate() {
        let mut r = populated_record(&fields);
        r.event_timestamp = u64::try_from(i).expect("small") + 1;
        r.client_leaf_cert_subject = Some(format!("C=US, O=Example Inc., CN={text}"));
        r.connection_log_custom_data = Some((*text).to_string());
        r.connection_status_detail = Some(format!("leaf certificate (CN={text}): expired"));
        r.tls_sni = None;
        records.push(r);
    }
    records.push(ConnectionLogRecord {
        connection_status: ConnectionStatus::Failed(ReasonCode::ClientCertUntrusted),
        ..ConnectionLogRecord::default()
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("connections.w3c");
    let sink = QueueSink::to_file(&path, LogFormat::W3c, 1024).expect("sink");
    for r in &records {
        sink.submit(r.clone());
    }
    let written = sink.shutdown().expect("shutdown");
    assert_eq!(written, u64::try_from(records.len()).expect("small"));
    assert_eq!(sink.dropped(), 0);

    let text = std::fs::read_to_string(&path).expect("read log");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("#Version: 1.0"));
    let names: Vec<&str> = lines
        .next()
        .and_then(|l| l.strip_prefix("#Fields: "))
        .expect("#Fields directive")
        .split(' ')
        .collect();
    assert_eq!(names, W3C_FIELDS);
    assert_eq!(
        w3c_header(),
        format!("#Version: 1.0\n#Fields: {}\n", names.join(" "))
    );
    let position = |name: &str| names.iter().position(|n| *n == name).expect(name);
    let data: Vec<&str> = lines.collect();
    assert_eq!(data.len(), records.len());
    for (line, record) in data.iter().zip(&records) {
        let values: Vec<&str> = line.split(' ').collect();
        assert_eq!(values.len(), names.len(), "{line:?}");
        assert!(values.iter().all(|v| !v.is_empty()), "{line:?}");
        let get = |name: &str| w3c_decode(values[position(name)]);
        assert_eq!(
            get("eventTimestamp"),
            Some(record.event_timestamp.to_string())
        );
        assert_eq!(
            get("connectionStatus"),
            Some(record.connection_status.to_string())
        );
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        assert_eq!(
            get("clientLeafCertSubject"),
            non_empty(&record.client_leaf_cert_subject)
        );
        assert_eq!(
            get("connectionLogCustomData"),
            non_empty(&record.connection_log_custom_data)
        );
        assert_eq!(get("tlsSni"), non_empty(&record.tls_sni));
        assert_eq!(
            get("connectionStatusDetail"),
            non_empty(&record.connection_status_detail)
        );
        assert_eq!(get("tlsKeyExchange"), non_empty(&record.tls_key_exchange));
        assert_eq!(get("clientPort"), record.client_port.map(|p| p.to_string()));
    }
    // The same lines come from the pure formatter.
    let mut direct = w3c_header();
    for r in &records {
        w3c_line(&mut direct, r);
    }
    assert_eq!(text, direct);
}

#[test]
fn w3c_line_keeps_utf8() {
    for text in ["é", "CN=中文, O=Straße", "😀", "\u{2028}"] {
        let record = ConnectionLogRecord {
            client_leaf_cert_subject: Some(text.into()),
            connection_log_custom_data: Some(format!("custom {text}")),
            ..ConnectionLogRecord::default()
        };
        let mut line = String::new();
        w3c_line(&mut line, &record);
        let values: Vec<&str> = line.trim_end_matches('\n').split(' ').collect();
        assert_eq!(values.len(), W3C_FIELDS.len(), "{line:?}");
        let position = |name: &str| W3C_FIELDS.iter().position(|n| *n == name).expect(name);
        assert_eq!(
            w3c_decode(values[position("clientLeafCertSubject")]).as_deref(),
            Some(text),
            "{line:?}"
        );
        assert_eq!(
            w3c_decode(values[position("connectionLogCustomData")]),
            Some(format!("custom {text}")),
            "{line:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// ALB layout
// ---------------------------------------------------------------------------

#[test]
fn alb_line_with_a_few_fields() {
    let record = ConnectionLogRecord {
        // 2024-04-05T18:31:29.268Z, the AWS knowledge-center example's time.
        event_timestamp: 1_712_341_889_268,
        connection_id: "TID_f5e5d2b1a3c04e2fa2b5".into(),
        connection_status: ConnectionStatus::Success,
        client_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))),
        client_port: Some(50_412),
        server_port: Some(443),
        distribution_id: "app/my-alb/50dc6c495c0c9188".into(),
        tls_protocol: Some("TLSv1.3".into()),
        tls_cipher: Some("TLS_AES_128_GCM_SHA256".into()),
        tls_handshake_duration: Some(2),
        client_leaf_cert_subject: Some(
            "CN=client-expired.alb-mtls-example.com,OU=IT,O=Company LLC,L=City,ST=State,C=US"
                .into(),
        ),
        client_leaf_cert_validity: Some(
            "NotBefore=2024-01-02T19:17:20Z;NotAfter=2024-04-02T19:17:20Z".into(),
        ),
        client_leaf_cert_serial_number: Some("00:fe:f2:57:37:2d:5c:14:d4".into()),
        ..ConnectionLogRecord::default()
    };
    let mut line = String::new();
    alb_line(&mut line, &record);
    assert_eq!(
        line,
        "2024-04-05T18:31:29.268000Z 192.0.2.10 50412 443 TLSv1.3 TLS_AES_128_GCM_SHA256 0.002 \
         \"CN=client-expired.alb-mtls-example.com,OU=IT,O=Company LLC,L=City,ST=State,C=US\" \
         NotBefore=2024-01-02T19:17:20Z;NotAfter=2024-04-02T19:17:20Z FEF257372D5C14D4 \
         Success TID_f5e5d2b1a3c04e2fa2b5 - app/my-alb/50dc6c495c0c9188 -\n"
    );
}

#[test]
fn alb_line_of_an_empty_failed_record() {
    let mut line = String::new();
    alb_line(
        &mut line,
        &ConnectionLogRecord {
            connection_status: ConnectionStatus::Failed(ReasonCode::ClientCertMissing),
            ..ConnectionLogRecord::default()
        },
    );
    assert_eq!(
        line,
        "1970-01-01T00:00:00.000000Z - - - - - - - - - Failed:ClientCertMissing - - - -\n"
    );
    assert_eq!(line.trim_end().split(' ').count(), 15);
}

#[test]
fn alb_line_uses_alb_reason_names() {
    for &code in ReasonCode::ALL {
        let mut line = String::new();
        alb_line(
            &mut line,
            &ConnectionLogRecord {
                connection_status: ConnectionStatus::Failed(code),
                ..ConnectionLogRecord::default()
            },
        );
        let status = line.split(' ').nth(10).expect("tls_verify_status");
        assert_eq!(status, format!("Failed:{}", code.alb_alias()), "{code:?}");
    }
}

#[test]
fn alb_line_subject_is_rfc2253_like_alb() {
    let (_, fields) = leaf_fields();
    let mut record = ConnectionLogRecord::default();
    record.set_leaf(&fields);
    let mut line = String::new();
    alb_line(&mut line, &record);
    assert!(
        line.contains(&format!(" \"{}\" ", fields.subject())),
        "{line:?} lacks the RFC 2253 subject {:?}",
        fields.subject()
    );
}

/// Reads ALB's layout: space-separated fields, one of which may be a
/// `"…"`-quoted field in which `\` escapes the next character.
fn alb_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut chars = line.trim_end_matches('\n').chars().peekable();
    while chars.peek().is_some() {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => field.extend(chars.next()),
                    Some('"') | None => break,
                    Some(c) => field.push(c),
                }
            }
            chars.next_if_eq(&' ');
        } else {
            for c in chars.by_ref() {
                if c == ' ' {
                    break;
                }
                field.push(c);
            }
        }
        fields.push(field);
    }
    fields
}

#[test]
fn alb_line_subject_with_quotes_reads_back() {
    let subjects = [
        "CN=plain",
        "CN=Company LLC,O=with spaces",
        // What distinguished_name writes for CN `say "hi"` and CN `back\slash`.
        "CN=say \\\"hi\\\"",
        "CN=back\\\\slash",
    ];
    for subject in subjects {
        let mut line = String::new();
        alb_line(
            &mut line,
            &ConnectionLogRecord {
                client_leaf_cert_subject: Some(subject.into()),
                ..ConnectionLogRecord::default()
            },
        );
        let fields = alb_fields(&line);
        assert_eq!(fields.len(), 15, "{line:?}");
        assert_eq!(fields[7], subject, "{line:?}");
    }
}

// ---------------------------------------------------------------------------
// Connection ids
// ---------------------------------------------------------------------------

#[test]
fn connection_ids_are_56_characters_of_base64url() {
    let provider = provider();
    let mut seen = BTreeSet::new();
    for _ in 0..1000 {
        let id = ConnectionId::random(provider.secure_random).expect("random");
        let text = id.as_str();
        assert_eq!(text.len(), 56, "{text}");
        assert_eq!(id.to_string(), text);
        // 40 bytes: 53⅓ base64 digits, so 54 digits and `==` (as in
        // CloudFront's example id), from the URL-safe alphabet only.
        let (digits, padding) = text.split_at(54);
        assert_eq!(padding, "==", "{text}");
        assert!(
            digits
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{text}"
        );
        let bytes = base64::engine::general_purpose::URL_SAFE
            .decode(text)
            .expect("base64url");
        assert_eq!(bytes.len(), 40);
        assert!(seen.insert(text.to_string()), "duplicate id {text}");
    }
}

// ---------------------------------------------------------------------------
// The queue sink
// ---------------------------------------------------------------------------

/// A writer that, on its first write, reports that it was reached and then
/// blocks until the test releases it (or drops the release sender).
struct GatedWriter {
    reached: Option<Sender<()>>,
    release: Receiver<()>,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Write for GatedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(reached) = self.reached.take() {
            let _ = reached.send(());
            let _ = self.release.recv();
        }
        self.out.lock().expect("output lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn numbered(i: u64) -> ConnectionLogRecord {
    ConnectionLogRecord {
        event_timestamp: i,
        connection_id: format!("conn-{i}"),
        ..ConnectionLogRecord::default()
    }
}

#[test]
fn a_stuck_writer_never_delays_submit() {
    const TOTAL: u64 = 10_000;
    const CAPACITY: usize = 16;
    let (reached_tx, reached_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let out = Arc::new(Mutex::new(Vec::new()));
    let writer = GatedWriter {
        reached: Some(reached_tx),
        release: release_rx,
        out: Arc::clone(&out),
    };
    let sink = Arc::new(QueueSink::new(writer, LogFormat::JsonLines, CAPACITY).expect("sink"));

    // The first record reaches the writer, which then blocks for good.
    sink.submit(numbered(0));
    reached_rx
        .recv_timeout(HANG_GUARD)
        .expect("the writer thread reached the writer");

    // Every other submit must return while the writer is stuck.
    let (done_tx, done_rx) = mpsc::channel();
    let submitter = {
        let sink = Arc::clone(&sink);
        thread::spawn(move || {
            for i in 1..TOTAL {
                sink.submit(numbered(i));
            }
            let _ = done_tx.send(());
        })
    };
    done_rx
        .recv_timeout(HANG_GUARD)
        .expect("submit blocked behind a stuck writer");
    submitter.join().expect("submitter");

    // One record is with the writer, at most CAPACITY wait in the queue.
    let dropped = sink.dropped();
    let capacity = u64::try_from(CAPACITY).expect("small");
    assert!(dropped >= TOTAL - capacity - 1, "dropped {dropped}");
    assert_eq!(
        sink.counters().snapshot().success,
        TOTAL,
        "drops are counted too"
    );

    release_tx.send(()).expect("release the writer");
    let written = sink.shutdown().expect("shutdown");
    assert_eq!(written, TOTAL - dropped);
    let out = out.lock().expect("output lock");
    let text = std::str::from_utf8(&out).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(u64::try_from(lines.len()).expect("fits"), written);
    let first: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON");
    assert_eq!(
        first["eventTimestamp"], 0,
        "the first record is the one that got through"
    );

    // After shutdown a submit is dropped, not blocked.
    sink.submit(numbered(TOTAL));
    assert_eq!(sink.dropped(), dropped + 1);
}

#[test]
fn a_million_records_all_reach_the_file() {
    const TOTAL: usize = 1_000_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("million.w3c");
    let sink = QueueSink::to_file(&path, LogFormat::W3c, 1 << 20).expect("sink");
    for i in 0..TOTAL {
        sink.submit(ConnectionLogRecord {
            event_timestamp: u64::try_from(i).expect("fits"),
            ..ConnectionLogRecord::default()
        });
    }
    let written = sink.shutdown().expect("shutdown");
    assert_eq!(sink.dropped(), 0);
    assert_eq!(written, u64::try_from(TOTAL).expect("fits"));

    let text = std::fs::read_to_string(&path).expect("read");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("#Version: 1.0"));
    assert!(lines.next().is_some_and(|l| l.starts_with("#Fields: ")));
    let mut seen = vec![false; TOTAL];
    let mut count = 0;
    for line in lines {
        let first = line.split(' ').next().expect("a field");
        let i: usize = first.parse().expect("eventTimestamp");
        assert!(!seen[i], "record {i} written twice");
        seen[i] = true;
        count += 1;
    }
    assert_eq!(count, TOTAL);
    assert!(seen.iter().all(|s| *s), "a record is missing");
}

// ---------------------------------------------------------------------------
// Reason counters
// ---------------------------------------------------------------------------

#[test]
fn reason_counters_count_each_code() {
    let counters = ReasonCounters::default();
    assert_eq!(counters.snapshot().success, 0);
    assert!(counters.snapshot().failed.is_empty());

    for (i, code) in ReasonCode::ALL.iter().enumerate() {
        for _ in 0..=i {
            counters.record(ConnectionStatus::Failed(*code));
        }
    }
    for _ in 0..7 {
        counters.record(ConnectionStatus::Success);
    }
    let snapshot = counters.snapshot();
    assert_eq!(snapshot.success, 7);
    let expected: Vec<(ReasonCode, u64)> = ReasonCode::ALL
        .iter()
        .enumerate()
        .map(|(i, c)| (*c, u64::try_from(i + 1).expect("small")))
        .collect();
    assert_eq!(snapshot.failed, expected);
    for (code, n) in &expected {
        assert_eq!(snapshot.failed(*code), *n);
    }

    // Codes never seen are left out of the list and read as zero.
    let sparse = ReasonCounters::default();
    sparse.record(ConnectionStatus::Failed(ReasonCode::ClientCertRevoked));
    let snapshot = sparse.snapshot();
    assert_eq!(snapshot.failed, [(ReasonCode::ClientCertRevoked, 1)]);
    assert_eq!(snapshot.failed(ReasonCode::ClientCertExpired), 0);
}

#[test]
fn reason_counters_are_exact_under_concurrency() {
    let counters = Arc::new(ReasonCounters::default());
    let per_thread = 20_000;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let counters = Arc::clone(&counters);
            thread::spawn(move || {
                for i in 0..per_thread {
                    let status = match (i + t) % 3 {
                        0 => ConnectionStatus::Success,
                        1 => ConnectionStatus::Failed(ReasonCode::ClientCertExpired),
                        _ => ConnectionStatus::Failed(ReasonCode::ConnectionFunctionDenied),
                    };
                    counters.record(status);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("counter thread");
    }
    let snapshot = counters.snapshot();
    let total = snapshot.success + snapshot.failed.iter().map(|(_, n)| n).sum::<u64>();
    assert_eq!(total, 4 * per_thread);
    // Each thread's statuses cycle with period 3 from a different phase.
    let expected = |phase: u64| -> u64 {
        (0..4)
            .map(|t| (0..per_thread).filter(|i| (i + t) % 3 == phase).count())
            .map(|n| u64::try_from(n).expect("fits"))
            .sum()
    };
    assert_eq!(snapshot.success, expected(0));
    assert_eq!(snapshot.failed(ReasonCode::ClientCertExpired), expected(1));
    assert_eq!(
        snapshot.failed(ReasonCode::ConnectionFunctionDenied),
        expected(2)
    );
}

/// An output that fails every write while `failing` is set (a full disk, a
/// closed pipe), and takes everything otherwise.
struct FlakyWriter {
    failing: Arc<std::sync::atomic::AtomicBool>,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Write for FlakyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.out.lock().expect("output lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Waits until `done` holds, polling (the writer drains every 20 ms).
fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + HANG_GUARD;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn write_errors_are_counted_and_the_sink_recovers_with_its_output() {
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let out = Arc::new(Mutex::new(Vec::new()));
    let writer = FlakyWriter {
        failing: Arc::clone(&failing),
        out: Arc::clone(&out),
    };
    let sink = QueueSink::new(writer, LogFormat::JsonLines, 1024).expect("sink");

    // The output is full: records are taken, lost, and counted exactly.
    for i in 0..100 {
        sink.submit(numbered(i));
    }
    eventually("the writer tried the first records", || {
        sink.unwritten() > 0
    });
    eventually("every record accounted for", || {
        sink.unwritten() + sink.dropped() + sink.written() == 100 && sink.written() == 0
    });

    // The output recovers: later records flow again.
    failing.store(false, std::sync::atomic::Ordering::SeqCst);
    for i in 100..150 {
        sink.submit(numbered(i));
    }
    let written = sink.shutdown().expect("shutdown");
    assert_eq!(written, 50, "unwritten {}", sink.unwritten());
    assert_eq!(sink.unwritten() + sink.dropped() + written, 150);
    let out = out.lock().expect("output lock");
    let text = std::str::from_utf8(&out).expect("UTF-8");
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a line")).expect("JSON");
    assert_eq!(first["eventTimestamp"], 100);
}

/// An output that takes `room` more bytes, then fails (a file at its size
/// limit: a short write, then EFBIG), until given more room.
struct CappedWriter {
    room: Arc<std::sync::atomic::AtomicUsize>,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Write for CappedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use std::sync::atomic::Ordering::SeqCst;
        let room = self.room.load(SeqCst);
        if room == 0 {
            return Err(io::Error::from_raw_os_error(27)); // EFBIG
        }
        let n = buf.len().min(room);
        self.room.fetch_sub(n, SeqCst);
        self.out
            .lock()
            .expect("output lock")
            .extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A write that fails half-way through a record leaves half a line; the
/// next write ends it first, so every later record is a line of its own and
/// the count of whole records equals `written`.
#[test]
fn a_record_cut_by_a_failed_write_stays_on_its_own_line() {
    use std::sync::atomic::Ordering::SeqCst;
    let room = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(Vec::new()));
    let writer = CappedWriter {
        room: Arc::clone(&room),
        out: Arc::clone(&out),
    };
    let sink = QueueSink::new(writer, LogFormat::JsonLines, 1024).expect("sink");
    let mut line = String::new();
    json_line(&mut line, &numbered(0));
    let record_len = line.len() + usize::from(!line.ends_with('\n'));
    // Room for one record and a half.
    room.store(record_len + record_len / 2, SeqCst);
    for i in 0..4 {
        sink.submit(numbered(i));
    }
    eventually("the output filled up", || {
        sink.written() + sink.unwritten() + sink.dropped() == 4
    });
    assert_eq!(sink.written(), 1);
    // The output recovers.
    room.store(usize::MAX / 2, SeqCst);
    for i in 4..7 {
        sink.submit(numbered(i));
    }
    let written = sink.shutdown().expect("shutdown");
    assert_eq!(written, 4, "unwritten {}", sink.unwritten());
    let out = out.lock().expect("output lock");
    let text = std::str::from_utf8(&out).expect("UTF-8");
    let whole: Vec<u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["eventTimestamp"].as_u64().expect("timestamp"))
        .collect();
    assert_eq!(whole, [0, 4, 5, 6], "{text}");
    assert_eq!(text.lines().count(), 5, "one cut line between: {text}");
}

#[test]
fn shutdown_gives_up_on_a_stalled_output_at_its_deadline() {
    let (reached_tx, reached_rx) = mpsc::channel();
    let (_release_tx, release_rx) = mpsc::channel::<()>();
    let writer = GatedWriter {
        reached: Some(reached_tx),
        release: release_rx,
        out: Arc::new(Mutex::new(Vec::new())),
    };
    let sink = QueueSink::new(writer, LogFormat::JsonLines, 16)
        .expect("sink")
        .with_shutdown_deadline(Duration::from_millis(200));
    sink.submit(numbered(0));
    reached_rx
        .recv_timeout(HANG_GUARD)
        .expect("the writer is blocked in the output");
    sink.submit(numbered(1));

    // The writer never returns; shutdown must, with the count it lost.
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = done_tx.send(sink.shutdown());
    });
    let error = done_rx
        .recv_timeout(HANG_GUARD)
        .expect("shutdown returned")
        .expect_err("a stalled output cannot be flushed");
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    let inner = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<LogShutdownError>())
        .expect("a LogShutdownError inside");
    assert_eq!(
        inner,
        &LogShutdownError::DeadlineExceeded {
            unwritten: 2,
            deadline: Duration::from_millis(200)
        }
    );
}
