//! A client certificate as text, in every dialect headers and logs use.
//!
//! [`CertFields`] is computed once per connection from the presented chain;
//! headers and log records then only copy or reference-count its strings.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;

use crate::chain_validator::{ClientCertInfo, SubjectAltName};
use crate::distinguished_name;

/// The textual forms of a leaf certificate (and the chain it came with).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFields {
    /// CloudFront serial: lowercase hex, `:`-separated, DER sign byte kept (`00:b1:43:…`).
    pub serial_cloudfront: String,
    /// ALB serial: uppercase hex, no separators, no sign byte (`FEF257372D5C14D4`).
    pub serial_alb: String,
    /// Subject, RFC 2253 (`CN=…,OU=…,C=US`).
    pub subject: String,
    /// Issuer, RFC 2253.
    pub issuer: String,
    /// Subject in CloudFront's log style (`C=US, ST=WA, …, CN=…`).
    pub subject_log: String,
    /// Issuer in CloudFront's log style.
    pub issuer_log: String,
    /// `NotBefore=2023-09-21T01:50:17Z;NotAfter=2024-09-20T01:50:17Z`.
    pub validity: String,
    /// `notBefore`, ISO 8601 UTC.
    pub not_before: String,
    /// `notAfter`, ISO 8601 UTC.
    pub not_after: String,
    /// SHA-256 of the leaf DER, 64 lowercase hex digits.
    pub sha256_hex: String,
    /// SHA-256 of the leaf DER, uppercase hex pairs joined by `:`.
    pub sha256_colon: String,
    /// The leaf PEM, URL-encoded with `+ = /` literal (ALB and CloudFront).
    pub leaf_pem_urlencoded: String,
    /// Every presented certificate's PEM, leaf first, URL-encoded the same way.
    pub chain_pem_urlencoded: String,
    /// Base64 of the leaf DER (RFC 9440 `Client-Cert` without the colons).
    pub leaf_der_base64: String,
    /// Base64 of each presented certificate after the leaf.
    pub chain_der_base64: Vec<String>,
    /// subjectAltName entries in OpenSSL's print form (`DNS:a,URI:b,IP Address:1.2.3.4,email:c`).
    pub san: String,
    /// The SubjectPublicKeyInfo DER as lowercase hex.
    pub spki_hex: String,
    /// The first OCSP responder URL, when the certificate names one.
    pub ocsp_url: Option<String>,
}

impl CertFields {
    /// Formats `leaf` (already parsed) with the rest of the presented `chain`
    /// (the certificates the client sent after its leaf).
    pub fn new(leaf: &ClientCertInfo, chain: &[impl AsRef<[u8]>]) -> Self {
        let mut chain_pem = url_encode_pem(&pem(&leaf.der));
        for cert in chain {
            chain_pem.push_str(&url_encode_pem(&pem(cert.as_ref())));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        Self {
            serial_cloudfront: serial_cloudfront(&leaf.serial),
            serial_alb: serial_alb(&leaf.serial),
            subject: leaf.subject.clone(),
            issuer: leaf.issuer.clone(),
            subject_log: distinguished_name::log_style(&leaf.subject_der).unwrap_or_default(),
            issuer_log: distinguished_name::log_style(&leaf.issuer_der).unwrap_or_default(),
            validity: validity(leaf.not_before, leaf.not_after),
            not_before: iso8601(leaf.not_before),
            not_after: iso8601(leaf.not_after),
            sha256_hex: hex_lower(&leaf.sha256),
            sha256_colon: hex_upper_colon(&leaf.sha256),
            leaf_pem_urlencoded: url_encode_pem(&pem(&leaf.der)),
            chain_pem_urlencoded: chain_pem,
            leaf_der_base64: b64.encode(&leaf.der),
            chain_der_base64: chain.iter().map(|c| b64.encode(c.as_ref())).collect(),
            san: san_openssl(&leaf.subject_alt_names),
            spki_hex: hex_lower(&leaf.spki),
            ocsp_url: leaf.ocsp_url.clone(),
        }
    }
}

/// CloudFront's serial form: the DER INTEGER contents (sign byte kept) as
/// lowercase hex pairs joined by `:`.
pub fn serial_cloudfront(serial: &[u8]) -> String {
    let mut out = String::with_capacity(serial.len() * 3);
    for (i, b) in serial.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// ALB's serial form: uppercase hex without separators or the `00` sign byte.
pub fn serial_alb(serial: &[u8]) -> String {
    let trimmed = match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    let mut out = String::with_capacity(trimmed.len() * 2);
    for b in trimmed {
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// `NotBefore=…Z;NotAfter=…Z`.
pub fn validity(not_before: u64, not_after: u64) -> String {
    format!(
        "NotBefore={};NotAfter={}",
        iso8601(not_before),
        iso8601(not_after)
    )
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso8601(secs: u64) -> String {
    match der::DateTime::from_unix_duration(Duration::from_secs(secs)) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minutes(),
            t.seconds()
        ),
        // Beyond year 9999: cannot occur for a parsed certificate.
        Err(_) => "9999-12-31T23:59:59Z".to_string(),
    }
}

/// Lowercase hex.
pub fn hex_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Uppercase hex pairs joined by `:` (CloudFront's `sha256Fingerprint`).
pub fn hex_upper_colon(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// PEM armour with 64-column lines and a final newline.
pub fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 60);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Percent-encodes everything except RFC 3986 unreserved characters and
/// `+ = /` (ALB's "with +=/ as safe characters"), so space is `%20` and a
/// line feed `%0A`; any standard percent-decoder restores the input.
pub fn url_encode_pem(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'=' | b'/')
        {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// subjectAltName in OpenSSL's print form, entries joined by `,`.
pub fn san_openssl(names: &[SubjectAltName]) -> String {
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match name {
            SubjectAltName::Dns(d) => {
                out.push_str("DNS:");
                out.push_str(d);
            }
            SubjectAltName::Uri(u) => {
                out.push_str("URI:");
                out.push_str(u);
            }
            SubjectAltName::Email(e) => {
                out.push_str("email:");
                out.push_str(e);
            }
            SubjectAltName::Ip(IpAddr::V4(v4)) => {
                let _ = write!(out, "IP Address:{v4}");
            }
            SubjectAltName::Ip(IpAddr::V6(v6)) => {
                // OpenSSL prints every group, uppercase, without `::` compression.
                out.push_str("IP Address:");
                for (j, seg) in v6.segments().iter().enumerate() {
                    if j > 0 {
                        out.push(':');
                    }
                    let _ = write!(out, "{seg:X}");
                }
            }
            SubjectAltName::Directory(d) => {
                out.push_str("DirName:");
                out.push_str(d);
            }
            _ => out.push_str("othername:<unsupported>"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_forms_from_the_documents() {
        assert_eq!(serial_alb(&[0x03, 0xa5, 0xb1]), "03A5B1");
        assert_eq!(
            serial_alb(&[0x00, 0xfe, 0xf2, 0x57, 0x37, 0x2d, 0x5c, 0x14, 0xd4]),
            "FEF257372D5C14D4"
        );
        assert_eq!(
            serial_cloudfront(&[0x00, 0xb1, 0x43, 0xed, 0x93, 0xd2, 0xd8, 0xf3, 0x9d]),
            "00:b1:43:ed:93:d2:d8:f3:9d"
        );
        assert_eq!(serial_alb(&[0x00]), "00");
    }

    #[test]
    fn validity_string() {
        // 2023-09-21T01:50:17Z and 2024-09-20T01:50:17Z (the ALB document's example).
        assert_eq!(
            validity(1_695_261_017, 1_726_797_017),
            "NotBefore=2023-09-21T01:50:17Z;NotAfter=2024-09-20T01:50:17Z"
        );
    }

    #[test]
    fn url_encoding_keeps_plus_equals_slash() {
        assert_eq!(
            url_encode_pem("-----BEGIN CERTIFICATE-----\nMI+/=\n"),
            "-----BEGIN%20CERTIFICATE-----%0AMI+/=%0A"
        );
    }
}
