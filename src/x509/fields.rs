//! A client certificate as text, in every dialect headers and logs use.
//!
//! [`CertFields`] is created once per connection from the presented chain.
//! Each textual form is computed the first time something asks for it and
//! then kept, so a connection pays only for the dialects its header profiles
//! and connection log use (the default CloudFront profile never needs the
//! chain's PEM, base64 DER, the SAN list or the SPKI hex, for instance).

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use rustls_pki_types::CertificateDer;

use super::info::{ClientCertInfo, SubjectAltName};
use super::name;

/// The textual forms of a leaf certificate (and the chain it came with),
/// each computed on first use.
///
/// Cheap to clone: clones share the parsed leaf, the presented certificates
/// and every form computed so far (or later, by any of them), so a
/// repeated client's forms are computed once however many connections or
/// requests carry them.
#[derive(Clone)]
pub struct CertFields(Arc<Fields>);

struct Fields {
    leaf: Arc<ClientCertInfo>,
    /// What the client sent, leaf first.
    presented: Arc<[CertificateDer<'static>]>,
    serial_cloudfront: OnceLock<String>,
    serial_alb: OnceLock<String>,
    subject_log: OnceLock<String>,
    issuer_log: OnceLock<String>,
    validity: OnceLock<String>,
    not_before: OnceLock<String>,
    not_after: OnceLock<String>,
    sha256_hex: OnceLock<String>,
    sha256_colon: OnceLock<String>,
    /// Shared with the header values that carry them (no second copy).
    leaf_pem_urlencoded: OnceLock<Arc<str>>,
    chain_pem_urlencoded: OnceLock<Arc<str>>,
    leaf_der_base64: OnceLock<String>,
    chain_der_base64: OnceLock<Vec<String>>,
    san: OnceLock<String>,
    spki_hex: OnceLock<String>,
}

impl CertFields {
    /// Formats `leaf` (already parsed) with the rest of the presented `chain`
    /// (the certificates the client sent after its leaf). Copies both; the
    /// connection pipeline shares them with [`CertFields::from_presented`].
    pub fn new(leaf: &ClientCertInfo, chain: &[impl AsRef<[u8]>]) -> Self {
        let presented = std::iter::once(CertificateDer::from(leaf.der.clone()))
            .chain(
                chain
                    .iter()
                    .map(|c| CertificateDer::from(c.as_ref().to_vec())),
            )
            .collect();
        Self::from_presented(Arc::new(leaf.clone()), presented)
    }

    /// Formats `leaf`, the parsed form of `presented[0]`, with the
    /// certificates the client sent after it (`presented[1..]`). Nothing is
    /// copied or computed until asked for.
    pub fn from_presented(
        leaf: Arc<ClientCertInfo>,
        presented: Arc<[CertificateDer<'static>]>,
    ) -> Self {
        Self(Arc::new(Fields {
            leaf,
            presented,
            serial_cloudfront: OnceLock::new(),
            serial_alb: OnceLock::new(),
            subject_log: OnceLock::new(),
            issuer_log: OnceLock::new(),
            validity: OnceLock::new(),
            not_before: OnceLock::new(),
            not_after: OnceLock::new(),
            sha256_hex: OnceLock::new(),
            sha256_colon: OnceLock::new(),
            leaf_pem_urlencoded: OnceLock::new(),
            chain_pem_urlencoded: OnceLock::new(),
            leaf_der_base64: OnceLock::new(),
            chain_der_base64: OnceLock::new(),
            san: OnceLock::new(),
            spki_hex: OnceLock::new(),
        }))
    }

    /// The parsed leaf.
    pub fn leaf(&self) -> &Arc<ClientCertInfo> {
        &self.0.leaf
    }

    /// The certificates the client sent after its leaf, in the order sent.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        self.0.presented.get(1..).unwrap_or_default()
    }

    /// CloudFront serial: lowercase hex, `:`-separated, DER sign byte kept (`00:b1:43:…`).
    pub fn serial_cloudfront(&self) -> &str {
        self.0
            .serial_cloudfront
            .get_or_init(|| serial_cloudfront(&self.0.leaf.serial))
    }

    /// ALB serial: uppercase hex, no separators, no sign byte (`FEF257372D5C14D4`).
    pub fn serial_alb(&self) -> &str {
        self.0
            .serial_alb
            .get_or_init(|| serial_alb(&self.0.leaf.serial))
    }

    /// Subject, RFC 2253 (`CN=…,OU=…,C=US`).
    pub fn subject(&self) -> &str {
        &self.0.leaf.subject
    }

    /// Issuer, RFC 2253.
    pub fn issuer(&self) -> &str {
        &self.0.leaf.issuer
    }

    /// Subject in CloudFront's log style (`C=US, ST=WA, …, CN=…`).
    pub fn subject_log(&self) -> &str {
        self.0
            .subject_log
            .get_or_init(|| name::log_style(&self.0.leaf.subject_der).unwrap_or_default())
    }

    /// Issuer in CloudFront's log style.
    pub fn issuer_log(&self) -> &str {
        self.0
            .issuer_log
            .get_or_init(|| name::log_style(&self.0.leaf.issuer_der).unwrap_or_default())
    }

    /// `NotBefore=2023-09-21T01:50:17Z;NotAfter=2024-09-20T01:50:17Z`.
    pub fn validity(&self) -> &str {
        self.0
            .validity
            .get_or_init(|| validity(self.0.leaf.not_before, self.0.leaf.not_after))
    }

    /// `notBefore`, ISO 8601 UTC.
    pub fn not_before(&self) -> &str {
        self.0
            .not_before
            .get_or_init(|| iso8601(self.0.leaf.not_before))
    }

    /// `notAfter`, ISO 8601 UTC.
    pub fn not_after(&self) -> &str {
        self.0
            .not_after
            .get_or_init(|| iso8601(self.0.leaf.not_after))
    }

    /// SHA-256 of the leaf DER, 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> &str {
        self.0
            .sha256_hex
            .get_or_init(|| hex_lower(&self.0.leaf.sha256))
    }

    /// SHA-256 of the leaf DER, uppercase hex pairs joined by `:`.
    pub fn sha256_colon(&self) -> &str {
        self.0
            .sha256_colon
            .get_or_init(|| hex_upper_colon(&self.0.leaf.sha256))
    }

    /// The leaf PEM, URL-encoded with `+ = /` literal (ALB and CloudFront).
    pub fn leaf_pem_urlencoded(&self) -> &str {
        self.leaf_pem_urlencoded_shared()
    }

    /// [`leaf_pem_urlencoded`](Self::leaf_pem_urlencoded), shared (the
    /// headers carry it without copying it).
    pub(crate) fn leaf_pem_urlencoded_shared(&self) -> &Arc<str> {
        self.0.leaf_pem_urlencoded.get_or_init(|| {
            let mut out = String::with_capacity(url_encoded_pem_len(&self.0.leaf.der));
            push_url_encoded_pem(&mut out, &self.0.leaf.der);
            Arc::from(out)
        })
    }

    /// Every presented certificate's PEM, leaf first, URL-encoded the same way.
    pub fn chain_pem_urlencoded(&self) -> &str {
        self.chain_pem_urlencoded_shared()
    }

    /// [`chain_pem_urlencoded`](Self::chain_pem_urlencoded), shared.
    pub(crate) fn chain_pem_urlencoded_shared(&self) -> &Arc<str> {
        self.0.chain_pem_urlencoded.get_or_init(|| {
            let leaf = self.leaf_pem_urlencoded();
            let rest: usize = self.chain().iter().map(|c| url_encoded_pem_len(c)).sum();
            let mut out = String::with_capacity(leaf.len() + rest);
            out.push_str(leaf);
            for cert in self.chain() {
                push_url_encoded_pem(&mut out, cert);
            }
            Arc::from(out)
        })
    }

    /// Base64 of the leaf DER (RFC 9440 `Client-Cert` without the colons).
    pub fn leaf_der_base64(&self) -> &str {
        self.0
            .leaf_der_base64
            .get_or_init(|| base64::engine::general_purpose::STANDARD.encode(&self.0.leaf.der))
    }

    /// Base64 of each presented certificate after the leaf.
    pub fn chain_der_base64(&self) -> &[String] {
        self.0.chain_der_base64.get_or_init(|| {
            let b64 = base64::engine::general_purpose::STANDARD;
            self.chain().iter().map(|c| b64.encode(c)).collect()
        })
    }

    /// subjectAltName entries in OpenSSL's print form (`DNS:a,URI:b,IP Address:1.2.3.4,email:c`).
    pub fn san(&self) -> &str {
        self.0
            .san
            .get_or_init(|| san_openssl(&self.0.leaf.subject_alt_names))
    }

    /// The SubjectPublicKeyInfo DER as lowercase hex.
    pub fn spki_hex(&self) -> &str {
        self.0.spki_hex.get_or_init(|| hex_lower(&self.0.leaf.spki))
    }

    /// The first OCSP responder URL, when the certificate names one.
    pub fn ocsp_url(&self) -> Option<&str> {
        self.0.leaf.ocsp_url.as_deref()
    }
}

impl PartialEq for CertFields {
    /// Equal when formatted from the same certificates (whatever has been
    /// computed so far).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.leaf == other.0.leaf && self.0.presented == other.0.presented)
    }
}

impl Eq for CertFields {}

impl fmt::Debug for CertFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertFields")
            .field("serial", &self.serial_cloudfront())
            .field("subject", &self.subject())
            .field("issuer", &self.issuer())
            .field("chain", &self.chain().len())
            .finish_non_exhaustive()
    }
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// The two hex digits of `b` from `digits`.
fn hex_pair(b: u8, digits: &[u8; 16]) -> [u8; 2] {
    // Both indices are nibbles, below 16.
    [digits[usize::from(b >> 4)], digits[usize::from(b & 0x0f)]]
}

/// Hex pairs of `bytes`, separated by `separator` (ASCII) when given.
fn hex(bytes: &[u8], digits: &[u8; 16], separator: Option<u8>) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if let (Some(sep), true) = (separator, i > 0) {
            out.push(sep);
        }
        out.extend_from_slice(&hex_pair(*b, digits));
    }
    // Hex digits and an ASCII separator are UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// CloudFront's serial form: the DER INTEGER contents (sign byte kept) as
/// lowercase hex pairs joined by `:`.
pub(crate) fn serial_cloudfront(serial: &[u8]) -> String {
    hex(serial, HEX_LOWER, Some(b':'))
}

/// ALB's serial form: uppercase hex without separators or the `00` sign byte.
pub(crate) fn serial_alb(serial: &[u8]) -> String {
    let trimmed = match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    hex(trimmed, HEX_UPPER, None)
}

/// `NotBefore=…Z;NotAfter=…Z`.
pub(crate) fn validity(not_before: u64, not_after: u64) -> String {
    let mut out = String::with_capacity(50);
    out.push_str("NotBefore=");
    push_iso8601(&mut out, not_before);
    out.push_str(";NotAfter=");
    push_iso8601(&mut out, not_after);
    out
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso8601(secs: u64) -> String {
    let mut out = String::with_capacity(20);
    push_iso8601(&mut out, secs);
    out
}

/// Parses an RFC 3339 UTC time (`YYYY-MM-DDTHH:MM:SS`, optional fraction,
/// then `Z`, `+00:00` or nothing) into Unix seconds, fractions truncated:
/// the inverse of [`iso8601`]. Other offsets are refused.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let (date_time, mut offset) = text.split_at_checked(19)?;
    if let Some(frac) = offset.strip_prefix('.') {
        offset = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    if !matches!(offset, "Z" | "z" | "+00:00" | "") {
        return None;
    }
    let bytes = date_time.as_bytes();
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|(i, c)| bytes.get(*i) != Some(c))
        || !matches!(bytes.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let num = |r: core::ops::Range<usize>| date_time.get(r)?.parse::<u16>().ok();
    let dt = der::DateTime::new(
        num(0..4)?,
        u8::try_from(num(5..7)?).ok()?,
        u8::try_from(num(8..10)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(14..16)?).ok()?,
        u8::try_from(num(17..19)?).ok()?,
    )
    .ok()?;
    Some(dt.unix_duration().as_secs())
}

fn push_iso8601(out: &mut String, secs: u64) {
    let Ok(t) = der::DateTime::from_unix_duration(Duration::from_secs(secs)) else {
        // Beyond year 9999: cannot occur for a parsed certificate.
        out.push_str("9999-12-31T23:59:59Z");
        return;
    };
    let year = t.year();
    for divisor in [1000u16, 100, 10, 1] {
        push_digit(out, year / divisor % 10);
    }
    for (sep, value) in [
        ('-', t.month()),
        ('-', t.day()),
        ('T', t.hour()),
        (':', t.minutes()),
        (':', t.seconds()),
    ] {
        out.push(sep);
        push_digit(out, u16::from(value / 10));
        push_digit(out, u16::from(value % 10));
    }
    out.push('Z');
}

fn push_digit(out: &mut String, digit: u16) {
    // Callers pass `n % 10`, or the tens digit of a date field below 100.
    out.push(char::from_digit(u32::from(digit), 10).unwrap_or('0'));
}

/// Lowercase hex.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    hex(bytes, HEX_LOWER, None)
}

/// Uppercase hex pairs joined by `:` (CloudFront's `sha256Fingerprint`).
pub(crate) fn hex_upper_colon(bytes: &[u8]) -> String {
    hex(bytes, HEX_UPPER, Some(b':'))
}

const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const PEM_END: &str = "-----END CERTIFICATE-----";

/// The length of `url_encode_pem(&pem(der))`.
fn url_encoded_pem_len(der: &[u8]) -> usize {
    let b64 = der.len().div_ceil(3) * 4;
    // Two armour lines with `%20` for their space; `%0A` after every line.
    let lines = b64.div_ceil(64) + 2;
    b64 + PEM_BEGIN.len() + PEM_END.len() + 2 * 2 + lines * 3
}

/// Appends `url_encode_pem(&pem(der))` without building the PEM first: the
/// base64 alphabet (`A–Z a–z 0–9 + / =`) passes through URL encoding
/// unchanged, so only the armour's spaces and the line feeds are escaped.
fn push_url_encoded_pem(out: &mut String, der: &[u8]) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    out.reserve(url_encoded_pem_len(der));
    out.push_str("-----BEGIN%20CERTIFICATE-----%0A");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push_str("%0A");
        rest = tail;
    }
    out.push_str("-----END%20CERTIFICATE-----%0A");
}

/// subjectAltName in OpenSSL's print form, entries joined by `,`.
pub(crate) fn san_openssl(names: &[SubjectAltName]) -> String {
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
    fn rfc3339_is_the_inverse_of_iso8601() {
        for secs in [0, 1, 1_700_000_000, 2_524_608_000, 32_503_680_000] {
            assert_eq!(parse_rfc3339(&iso8601(secs)), Some(secs));
        }
        assert_eq!(
            parse_rfc3339("2024-01-01T00:00:00.999+00:00"),
            Some(1_704_067_200)
        );
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00"), Some(1_704_067_200));
        for bad in [
            "2024-01-01T00:00:00+02:00",
            "2024-13-01T00:00:00Z",
            "2024/01/01T00:00:00Z",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

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
    fn iso8601_matches_the_date_fields() {
        for secs in [
            0,
            59,
            951_782_400,
            1_695_261_017,
            4_102_444_799,
            253_402_300_799,
        ] {
            let t = der::DateTime::from_unix_duration(Duration::from_secs(secs)).unwrap();
            let expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minutes(),
                t.seconds()
            );
            assert_eq!(iso8601(secs), expected, "{secs}");
        }
        assert_eq!(iso8601(u64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn hex_forms() {
        assert_eq!(hex_lower(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex_upper_colon(&[0x00, 0x0f, 0xa5, 0xff]), "00:0F:A5:FF");
        assert_eq!(hex_lower(&[]), "");
        assert_eq!(hex_upper_colon(&[0xab]), "AB");
    }

    // The two-step reference the direct encoder is checked against.
    /// PEM armour with 64-column lines and a final newline.
    fn pem(der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 60);
        push_pem_lines(&mut out, &b64, "\n");
        out
    }

    /// `-----BEGIN CERTIFICATE-----`, the base64 in 64-column lines, the END
    /// line, each followed by `newline`.
    fn push_pem_lines(out: &mut String, b64: &str, newline: &str) {
        out.push_str(PEM_BEGIN);
        out.push_str(newline);
        let mut rest = b64;
        while !rest.is_empty() {
            let (line, tail) = rest.split_at(rest.len().min(64));
            out.push_str(line);
            out.push_str(newline);
            rest = tail;
        }
        out.push_str(PEM_END);
        out.push_str(newline);
    }

    /// Percent-encodes everything except RFC 3986 unreserved characters and
    /// `+ = /` (ALB's "with +=/ as safe characters"), so space is `%20` and a
    /// line feed `%0A`; any standard percent-decoder restores the input.
    fn url_encode_pem(text: &str) -> String {
        let mut out = String::with_capacity(text.len() + text.len() / 16);
        for b in text.bytes() {
            if b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'=' | b'/')
            {
                out.push(char::from(b));
            } else {
                out.push('%');
                out.extend(hex_pair(b, HEX_UPPER).map(char::from));
            }
        }
        out
    }

    #[test]
    fn url_encoded_pem_is_the_encoded_pem() {
        // Lengths around the 48-byte (64-column) line boundary and base64 padding.
        for len in (0..200).chain([1000, 1500]) {
            let der: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let mut direct = String::new();
            push_url_encoded_pem(&mut direct, &der);
            assert_eq!(direct, url_encode_pem(&pem(&der)), "{len} bytes");
            assert_eq!(url_encoded_pem_len(&der), direct.len(), "{len} bytes");
        }
    }

    #[test]
    fn url_encoding_keeps_plus_equals_slash() {
        assert_eq!(
            url_encode_pem("-----BEGIN CERTIFICATE-----\nMI+/=\n"),
            "-----BEGIN%20CERTIFICATE-----%0AMI+/=%0A"
        );
    }
}
