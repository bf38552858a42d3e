//! Rendering connection-log records: JSON lines, W3C extended, ALB layout.
//!
//! Pure functions writing into a caller's `String`, so a sink reuses one
//! buffer for every record.

use std::fmt::Write as _;
use std::time::Duration;

use super::ConnectionLogRecord;

/// An output format.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line, CloudFront field names.
    #[default]
    JsonLines,
    /// W3C extended log format with `#Version` and `#Fields` directives.
    W3c,
    /// ALB's space-separated connection-log layout.
    Alb,
    /// Apache Parquet files, one string column per JSON field (feature
    /// `parquet`; written only by rotating file outputs).
    Parquet,
}

impl LogFormat {
    /// The extension of its files: `jsonl`, `w3c.log`, `alb.log`, `parquet`.
    pub fn file_extension(self) -> &'static str {
        match self {
            Self::JsonLines => "jsonl",
            Self::W3c => "w3c.log",
            Self::Alb => "alb.log",
            Self::Parquet => "parquet",
        }
    }

    /// How the format is named in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JsonLines => "json_lines",
            Self::W3c => "w3c",
            Self::Alb => "alb",
            Self::Parquet => "parquet",
        }
    }
}

/// The JSON fields, in order: the keys of [`json_line`] and the columns of
/// the Parquet files.
pub const JSON_FIELDS: [&str; 22] = [
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

/// The W3C fields, in order.
pub const W3C_FIELDS: [&str; 23] = [
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
    "tlsKeyExchange",
    "forwarded",
    "proxyIp",
    "connectionStatusDetail",
];

/// The directives that open a W3C log file.
pub fn w3c_header() -> String {
    let mut out = String::from("#Version: 1.0\n#Fields: ");
    out.push_str(&W3C_FIELDS.join(" "));
    out.push('\n');
    out
}

/// Appends `record` to `out` in `format`, ending with a newline. Parquet is
/// columnar and has no line form: its records are rendered as JSON lines,
/// which carry the same fields under the same names.
pub(crate) fn write_record(out: &mut String, record: &ConnectionLogRecord, format: LogFormat) {
    match format {
        LogFormat::JsonLines | LogFormat::Parquet => json_line(out, record),
        LogFormat::W3c => w3c_line(out, record),
        LogFormat::Alb => alb_line(out, record),
    }
}

/// One JSON object and a newline.
pub fn json_line(out: &mut String, r: &ConnectionLogRecord) {
    let _ = write!(out, "{{\"eventTimestamp\":{}", r.event_timestamp);
    json_str(out, "connectionId", Some(&r.connection_id));
    let _ = write!(out, ",\"connectionStatus\":\"{}\"", r.connection_status);
    json_display(out, "clientIp", r.client_ip.as_ref());
    json_num(out, "clientPort", r.client_port.map(u64::from));
    json_display(out, "serverIp", r.server_ip.as_ref());
    json_num(out, "serverPort", r.server_port.map(u64::from));
    json_str(out, "distributionId", Some(&r.distribution_id));
    json_str(out, "tlsProtocol", r.tls_protocol.as_deref());
    json_str(out, "tlsCipher", r.tls_cipher.as_deref());
    json_num(out, "tlsHandshakeDuration", r.tls_handshake_duration);
    json_str(out, "tlsSni", r.tls_sni.as_deref());
    json_str(
        out,
        "clientLeafCertSerialNumber",
        r.client_leaf_cert_serial_number.as_deref(),
    );
    json_str(
        out,
        "clientLeafCertSubject",
        r.client_leaf_cert_subject.as_deref(),
    );
    json_str(
        out,
        "clientLeafCertIssuer",
        r.client_leaf_cert_issuer.as_deref(),
    );
    json_str(
        out,
        "clientLeafCertValidity",
        r.client_leaf_cert_validity.as_deref(),
    );
    json_str(
        out,
        "clientLeafCertSha256",
        r.client_leaf_cert_sha256.as_deref(),
    );
    json_str(
        out,
        "connectionLogCustomData",
        r.connection_log_custom_data.as_deref(),
    );
    json_num(out, "trustStoreGeneration", r.trust_store_generation);
    let _ = write!(out, ",\"forwarded\":{}", r.forwarded);
    json_display(out, "proxyIp", r.proxy_ip.as_ref());
    json_str(
        out,
        "connectionStatusDetail",
        r.connection_status_detail.as_deref(),
    );
    out.push_str("}\n");
}

fn json_num(out: &mut String, key: &str, value: Option<u64>) {
    json_value(out, key, value.as_ref(), false);
}

fn json_display(out: &mut String, key: &str, value: Option<&impl std::fmt::Display>) {
    json_value(out, key, value, true);
}

/// `,"key":value`, `,"key":"value"` (a value needing no escapes) or `,"key":null`.
fn json_value(out: &mut String, key: &str, value: Option<&impl std::fmt::Display>, quoted: bool) {
    let _ = match value {
        Some(v) if quoted => write!(out, ",\"{key}\":\"{v}\""),
        Some(v) => write!(out, ",\"{key}\":{v}"),
        None => write!(out, ",\"{key}\":null"),
    };
}

fn json_str(out: &mut String, key: &str, value: Option<&str>) {
    let _ = write!(out, ",\"{key}\":");
    match value {
        None => out.push_str("null"),
        Some(v) => {
            out.push('"');
            for ch in v.chars() {
                match ch {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if u32::from(c) < 0x20 => {
                        let _ = write!(out, "\\u{:04x}", u32::from(c));
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
    }
}

/// One W3C line: space-separated, `-` for empty, spaces and controls
/// percent-encoded so a field never splits.
pub fn w3c_line(out: &mut String, r: &ConnectionLogRecord) {
    let fields: [Option<String>; W3C_FIELDS.len()] = [
        Some(r.event_timestamp.to_string()),
        Some(r.connection_id.clone()),
        Some(r.connection_status.to_string()),
        r.client_ip.map(|i| i.to_string()),
        r.client_port.map(|p| p.to_string()),
        r.server_ip.map(|i| i.to_string()),
        r.server_port.map(|p| p.to_string()),
        Some(r.distribution_id.clone()),
        r.tls_protocol.clone(),
        r.tls_cipher.clone(),
        r.tls_handshake_duration.map(|d| d.to_string()),
        r.tls_sni.clone(),
        r.client_leaf_cert_serial_number.clone(),
        r.client_leaf_cert_subject.clone(),
        r.client_leaf_cert_issuer.clone(),
        r.client_leaf_cert_validity.clone(),
        r.client_leaf_cert_sha256.clone(),
        r.connection_log_custom_data.clone(),
        r.trust_store_generation.map(|g| g.to_string()),
        r.tls_key_exchange.clone(),
        r.forwarded.then(|| "1".to_string()),
        r.proxy_ip.map(|i| i.to_string()),
        r.connection_status_detail.clone(),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        w3c_field(out, field.as_deref());
    }
    out.push('\n');
}

fn w3c_field(out: &mut String, value: Option<&str>) {
    match value {
        None | Some("") => out.push('-'),
        Some(v) => {
            for ch in v.chars() {
                if ch <= ' ' || ch == '%' || ch == '"' || ch == '\u{7f}' {
                    let _ = write!(out, "%{:02X}", u32::from(ch));
                } else {
                    // Non-ASCII passes through as UTF-8.
                    out.push(ch);
                }
            }
        }
    }
}

/// One line of ALB's connection-log layout (15 fields, `-` when absent):
///
/// `time client_ip client_port listener_port tls_protocol tls_cipher
/// tls_handshake_latency "leaf_client_cert_subject" leaf_client_cert_validity
/// leaf_client_cert_serial_number tls_verify_status conn_trace_id
/// tls_keyexchange elb ip_address`
///
/// `time` is ISO 8601 with microseconds, the latency is in seconds, the
/// serial in ALB's uppercase form, `elb` the listener id and `ip_address`
/// the server address. The layout is ALB's own, so `connectionStatusDetail`
/// is not in it.
pub fn alb_line(out: &mut String, r: &ConnectionLogRecord) {
    let millis = r.event_timestamp;
    let time =
        der::DateTime::from_unix_duration(Duration::from_millis(millis - millis % 1000)).ok();
    match time {
        Some(t) => {
            let _ = write!(
                out,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minutes(),
                t.seconds(),
                (millis % 1000) * 1000
            );
        }
        None => out.push('-'),
    }
    let dash = |v: Option<String>| {
        v.filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".to_string())
    };
    let serial_alb = r.client_leaf_cert_serial_number.as_deref().map(|s| {
        let hex: String = s
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_uppercase();
        match hex.strip_prefix("00") {
            Some(rest) if !rest.is_empty() => rest.to_string(),
            _ => hex,
        }
    });
    // ALB logs the RFC 2253 subject, quoted; backslashes and quotes escaped
    // so a reader honouring `\` sees exactly one field.
    let subject = match r
        .client_leaf_cert_subject_rfc2253
        .as_deref()
        .or(r.client_leaf_cert_subject.as_deref())
    {
        Some(s) if !s.is_empty() => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        _ => "-".to_string(),
    };
    let status = match r.connection_status {
        super::ConnectionStatus::Success => "Success".to_string(),
        super::ConnectionStatus::Failed(code) => format!("Failed:{}", code.alb_alias()),
    };
    let fields = [
        dash(r.client_ip.map(|i| i.to_string())),
        dash(r.client_port.map(|p| p.to_string())),
        dash(r.server_port.map(|p| p.to_string())),
        dash(r.tls_protocol.clone()),
        dash(r.tls_cipher.clone()),
        dash(
            r.tls_handshake_duration
                .map(|ms| format!("{}.{:03}", ms / 1000, ms % 1000)),
        ),
        subject,
        dash(r.client_leaf_cert_validity.clone()),
        dash(serial_alb),
        status,
        dash(Some(r.connection_id.clone())),
        dash(r.tls_key_exchange.clone()),
        dash(Some(r.distribution_id.clone())),
        dash(r.server_ip.map(|i| i.to_string())),
    ];
    for f in fields {
        out.push(' ');
        out.push_str(&f);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_are_the_keys_of_a_json_line_in_order() {
        let mut line = String::new();
        json_line(&mut line, &ConnectionLogRecord::default());
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let object = value.as_object().unwrap();
        assert_eq!(object.len(), JSON_FIELDS.len());
        // Each key appears, in the order JSON_FIELDS lists them.
        let positions: Vec<usize> = JSON_FIELDS
            .iter()
            .map(|key| line.find(&format!("\"{key}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{line}");
    }
}
