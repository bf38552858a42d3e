//! Reading a forwarded certificate chain out of request headers, in each
//! proxy's dialect. Every parser is bounded (total header bytes, number of
//! certificates) before it decodes anything, and every failure names the
//! header and what was wrong with it.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use http::header::{HeaderMap, HeaderName};
use rustls_pki_types::CertificateDer;

/// How a proxy in front of the application forwards the client certificate.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardedDialect {
    /// ALB mutual TLS passthrough: `X-Amzn-Mtls-Clientcert`, the URL-encoded
    /// PEM of the whole presented chain, leaf first (a root in it is only
    /// ever a candidate intermediate: trust comes from the trust store).
    AlbPassthrough,
    /// CloudFront: `CloudFront-Viewer-Cert-Pem`, the URL-encoded PEM leaf.
    CloudFront,
    /// Envoy: `x-forwarded-client-cert`, the element the outermost trusted
    /// proxy added (`Cert="…"` URL-encoded PEM leaf; `Chain="…"` the
    /// URL-encoded PEM chain, leaf first, preferred when present).
    Xfcc,
    /// RFC 9440: `Client-Cert: :<base64 DER>:` and `Client-Cert-Chain:
    /// :<b64>:, :<b64>:` (the chain without the leaf).
    Rfc9440,
    /// A header of the operator's choice holding a URL-encoded PEM
    /// certificate or chain, leaf first (nginx `$ssl_client_escaped_cert`).
    PemHeader(HeaderName),
    /// A header of the operator's choice holding base64 DER (HAProxy
    /// `ssl_c_der,base64`); several comma-separated values are a chain,
    /// leaf first.
    DerHeader(HeaderName),
}

/// A dialect name that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a forwarded-certificate dialect (alb_passthrough, cloudfront, xfcc, rfc9440, \
     pem-header:NAME, der-header:NAME)"
)]
pub struct UnknownDialect(pub String);

impl FromStr for ForwardedDialect {
    type Err = UnknownDialect;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownDialect(s.to_string());
        let folded = s.trim().to_ascii_lowercase().replace('_', "-");
        if let Some((kind, name)) = folded.split_once(':') {
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| unknown())?;
            return match kind {
                "pem-header" => Ok(Self::PemHeader(name)),
                "der-header" => Ok(Self::DerHeader(name)),
                _ => Err(unknown()),
            };
        }
        match folded.as_str() {
            "alb-passthrough" | "alb" => Ok(Self::AlbPassthrough),
            "cloudfront" => Ok(Self::CloudFront),
            "xfcc" | "envoy" => Ok(Self::Xfcc),
            "rfc9440" => Ok(Self::Rfc9440),
            _ => Err(unknown()),
        }
    }
}

impl fmt::Display for ForwardedDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlbPassthrough => f.write_str("alb_passthrough"),
            Self::CloudFront => f.write_str("cloudfront"),
            Self::Xfcc => f.write_str("xfcc"),
            Self::Rfc9440 => f.write_str("rfc9440"),
            Self::PemHeader(name) => write!(f, "pem-header:{name}"),
            Self::DerHeader(name) => write!(f, "der-header:{name}"),
        }
    }
}

const ALB: HeaderName = HeaderName::from_static("x-amzn-mtls-clientcert");
const CLOUDFRONT: HeaderName = HeaderName::from_static("cloudfront-viewer-cert-pem");
const XFCC: HeaderName = HeaderName::from_static("x-forwarded-client-cert");
const CLIENT_CERT: HeaderName = HeaderName::from_static("client-cert");
const CLIENT_CERT_CHAIN: HeaderName = HeaderName::from_static("client-cert-chain");

impl ForwardedDialect {
    /// The headers this dialect reads (lowercase).
    pub fn header_names(&self) -> Vec<HeaderName> {
        match self {
            Self::AlbPassthrough => vec![ALB],
            Self::CloudFront => vec![CLOUDFRONT],
            Self::Xfcc => vec![XFCC],
            Self::Rfc9440 => vec![CLIENT_CERT, CLIENT_CERT_CHAIN],
            Self::PemHeader(name) | Self::DerHeader(name) => vec![name.clone()],
        }
    }

    /// The header whose presence means "a certificate was forwarded".
    pub(crate) fn primary(&self) -> HeaderName {
        match self {
            Self::AlbPassthrough => ALB,
            Self::CloudFront => CLOUDFRONT,
            Self::Xfcc => XFCC,
            Self::Rfc9440 => CLIENT_CERT,
            Self::PemHeader(name) | Self::DerHeader(name) => name.clone(),
        }
    }
}

/// How much a forwarded certificate header may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForwardedLimits {
    /// The dialect's header values together, in bytes (default 64 KiB: a
    /// URL-encoded PEM chain of four RSA-4096 certificates takes about 12 KiB).
    pub max_header_bytes: usize,
    /// Certificates in the forwarded chain, leaf included (default 10).
    pub max_certificates: usize,
}

impl Default for ForwardedLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_certificates: 10,
        }
    }
}

/// Why a forwarded certificate header could not be read.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForwardedError {
    /// The header values exceed [`ForwardedLimits::max_header_bytes`].
    #[error("{header}: {bytes} bytes (limit {limit})")]
    TooLarge {
        /// The header.
        header: HeaderName,
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// More certificates than [`ForwardedLimits::max_certificates`].
    #[error("{header}: more than {limit} certificates")]
    TooManyCertificates {
        /// The header.
        header: HeaderName,
        /// The limit.
        limit: usize,
    },
    /// A single-valued header was sent more than once (which copy a proxy
    /// set cannot be told apart from one a client sent).
    #[error("{header}: sent {count} times")]
    Repeated {
        /// The header.
        header: HeaderName,
        /// How many times.
        count: usize,
    },
    /// A `%` escape that is not two hex digits.
    #[error("{header}: bad URL encoding at byte {offset}")]
    BadUrlEncoding {
        /// The header.
        header: HeaderName,
        /// Where, in the header value.
        offset: usize,
    },
    /// A PEM block without its end line, or text that holds no certificate.
    #[error("{header}: {detail}")]
    BadPem {
        /// The header.
        header: HeaderName,
        /// What is wrong.
        detail: &'static str,
    },
    /// Base64 that does not decode.
    #[error("{header}: certificate #{index}: bad base64")]
    BadBase64 {
        /// The header.
        header: HeaderName,
        /// Which certificate (0: the first in the header).
        index: usize,
    },
    /// A header value that is not what the dialect says (an RFC 9440 byte
    /// sequence without its colons, an XFCC element without `Cert`, text
    /// that is not visible ASCII).
    #[error("{header}: {detail}")]
    Malformed {
        /// The header.
        header: HeaderName,
        /// What is wrong.
        detail: String,
    },
}

/// The forwarded chain, leaf first (`None`: the dialect's headers are
/// absent or empty: no certificate was forwarded).
pub(crate) fn read_chain(
    dialect: &ForwardedDialect,
    headers: &HeaderMap,
    limits: ForwardedLimits,
) -> Result<Option<Vec<CertificateDer<'static>>>, ForwardedError> {
    let mut out = Chain {
        certs: Vec::new(),
        limit: limits.max_certificates,
    };
    match dialect {
        ForwardedDialect::AlbPassthrough
        | ForwardedDialect::CloudFront
        | ForwardedDialect::PemHeader(_) => {
            let name = dialect.primary();
            let Some(value) = single(headers, &name, limits)? else {
                return Ok(None);
            };
            let text = url_decode(&name, value)?;
            pem_certificates(&name, &text, &mut out)?;
        }
        ForwardedDialect::DerHeader(name) => {
            let Some(value) = single(headers, name, limits)? else {
                return Ok(None);
            };
            for item in value.split(|&b| b == b',') {
                base64_certificate(name, trim(item), &mut out)?;
            }
        }
        ForwardedDialect::Rfc9440 => {
            let Some(leaf) = single(headers, &CLIENT_CERT, limits)? else {
                return Ok(None);
            };
            let leaf = byte_sequence(&CLIENT_CERT, leaf)?;
            base64_certificate(&CLIENT_CERT, leaf, &mut out)?;
            let chain = joined(headers, &CLIENT_CERT_CHAIN, limits)?;
            for item in chain.iter().flat_map(|v| v.split(|&b| b == b',')) {
                let item = trim(item);
                if item.is_empty() {
                    continue;
                }
                let item = byte_sequence(&CLIENT_CERT_CHAIN, item)?;
                base64_certificate(&CLIENT_CERT_CHAIN, item, &mut out)?;
            }
        }
        ForwardedDialect::Xfcc => {
            let values = joined(headers, &XFCC, limits)?;
            if values.is_empty() {
                return Ok(None);
            }
            let element = xfcc_client_element(&values)?;
            let Some(element) = element else {
                return Ok(None);
            };
            xfcc_certificates(&element, &mut out)?;
        }
    }
    Ok((!out.certs.is_empty()).then_some(out.certs))
}

/// Certificates read so far, refusing one past the limit before decoding it.
struct Chain {
    certs: Vec<CertificateDer<'static>>,
    limit: usize,
}

impl Chain {
    fn room(&self, header: &HeaderName) -> Result<(), ForwardedError> {
        if self.certs.len() >= self.limit {
            return Err(ForwardedError::TooManyCertificates {
                header: header.clone(),
                limit: self.limit,
            });
        }
        Ok(())
    }
}

/// The one value of a single-valued header (`None`: absent or blank).
fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    limits: ForwardedLimits,
) -> Result<Option<&'h [u8]>, ForwardedError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    let count = 1 + values.count();
    if count > 1 {
        return Err(ForwardedError::Repeated {
            header: name.clone(),
            count,
        });
    }
    let bytes = first.as_bytes();
    check_size(name, bytes.len(), limits)?;
    let bytes = trim(bytes);
    Ok((!bytes.is_empty()).then_some(bytes))
}

/// Every value of a list-valued header, within the size limit together.
fn joined<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    limits: ForwardedLimits,
) -> Result<Vec<&'h [u8]>, ForwardedError> {
    let mut total = 0usize;
    let mut out = Vec::new();
    for value in headers.get_all(name) {
        total = total.saturating_add(value.len());
        check_size(name, total, limits)?;
        let value = trim(value.as_bytes());
        if !value.is_empty() {
            out.push(value);
        }
    }
    Ok(out)
}

fn check_size(
    name: &HeaderName,
    bytes: usize,
    limits: ForwardedLimits,
) -> Result<(), ForwardedError> {
    if bytes > limits.max_header_bytes {
        return Err(ForwardedError::TooLarge {
            header: name.clone(),
            bytes,
            limit: limits.max_header_bytes,
        });
    }
    Ok(())
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

/// Percent-decoding (`+` stays `+`: it is a base64 character, and every
/// proxy that escapes it writes `%2B`).
fn url_decode(header: &HeaderName, value: &[u8]) -> Result<Vec<u8>, ForwardedError> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ForwardedError::BadUrlEncoding {
                    header: header.clone(),
                    offset: i,
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const END: &[u8] = b"-----END CERTIFICATE-----";

/// Every `CERTIFICATE` block of PEM text. Line breaks may have become
/// spaces or tabs on the way (some proxies fold them): whitespace inside a
/// block is ignored. Text outside blocks is ignored; text holding no block
/// at all is an error.
fn pem_certificates(
    header: &HeaderName,
    text: &[u8],
    out: &mut Chain,
) -> Result<(), ForwardedError> {
    let bad = |detail| ForwardedError::BadPem {
        header: header.clone(),
        detail,
    };
    let mut rest = text;
    let mut found = false;
    while let Some(start) = find(rest, BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end =
            find(body, END).ok_or_else(|| bad("a certificate's PEM block has no END line"))?;
        out.room(header)?;
        let b64: Vec<u8> = body[..end]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let index = out.certs.len();
        let der = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .map_err(|_| ForwardedError::BadBase64 {
                header: header.clone(),
                index,
            })?;
        out.certs.push(CertificateDer::from(der));
        found = true;
        rest = &body[end + END.len()..];
    }
    if !found {
        return Err(bad("no `-----BEGIN CERTIFICATE-----` block"));
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One base64 DER certificate (standard alphabet, padding optional).
fn base64_certificate(
    header: &HeaderName,
    b64: &[u8],
    out: &mut Chain,
) -> Result<(), ForwardedError> {
    out.room(header)?;
    let index = out.certs.len();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let der = engine
        .decode(b64)
        .ok()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| ForwardedError::BadBase64 {
            header: header.clone(),
            index,
        })?;
    out.certs.push(CertificateDer::from(der));
    Ok(())
}

/// An RFC 8941 byte sequence `:…:`, its base64 inside.
fn byte_sequence<'v>(header: &HeaderName, item: &'v [u8]) -> Result<&'v [u8], ForwardedError> {
    // Parameters (`;key=value`) may follow the item.
    let item = item.split(|&b| b == b';').next().unwrap_or(item);
    let item = trim(item);
    item.strip_prefix(b":")
        .and_then(|i| i.strip_suffix(b":"))
        .ok_or_else(|| ForwardedError::Malformed {
            header: header.clone(),
            detail: "not a structured-field byte sequence (`:base64:`)".into(),
        })
}

/// One XFCC element: its `key=value` pairs, keys lowercase, values
/// unquoted.
type XfccElement = Vec<(String, Vec<u8>)>;

/// The XFCC element describing the client's certificate: the first one
/// (proxies append theirs after it). A client-sent element cannot take its
/// place when the outermost trusted proxy sanitizes the header (Envoy
/// `SANITIZE_SET`, or a proxy overwriting it), which the operator's
/// trusted-proxy setting asserts.
fn xfcc_client_element(values: &[&[u8]]) -> Result<Option<XfccElement>, ForwardedError> {
    let malformed = |detail: &str| ForwardedError::Malformed {
        header: XFCC,
        detail: detail.to_string(),
    };
    let mut all: Vec<u8> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            all.push(b',');
        }
        all.extend_from_slice(v);
    }
    // Split on `,` and `;` outside quotes; values may be quoted with `\`
    // escapes inside.
    let mut element: XfccElement = Vec::new();
    let mut key = Vec::new();
    let mut value = Vec::new();
    let mut in_key = true;
    let mut quoted = false;
    let mut i = 0;
    while i < all.len() {
        let b = all[i];
        if quoted {
            match b {
                b'\\' => {
                    let next = *all
                        .get(i + 1)
                        .ok_or_else(|| malformed("unterminated quoted value"))?;
                    value.push(next);
                    i += 1;
                }
                b'"' => quoted = false,
                _ => value.push(b),
            }
        } else {
            match b {
                b'"' if !in_key => quoted = true,
                b'=' if in_key => in_key = false,
                b';' => {
                    finish_pair(&mut key, &mut value, &mut element);
                    in_key = true;
                }
                b',' => {
                    finish_pair(&mut key, &mut value, &mut element);
                    // The first element is the client's.
                    return Ok((!element.is_empty()).then_some(element));
                }
                _ if in_key => key.push(b),
                _ => value.push(b),
            }
        }
        i += 1;
    }
    if quoted {
        return Err(malformed("unterminated quoted value"));
    }
    finish_pair(&mut key, &mut value, &mut element);
    Ok((!element.is_empty()).then_some(element))
}

/// Ends one `key=value` pair of an XFCC element.
fn finish_pair(key: &mut Vec<u8>, value: &mut Vec<u8>, element: &mut XfccElement) {
    let k = String::from_utf8_lossy(trim(key)).to_ascii_lowercase();
    if !k.is_empty() {
        element.push((k, std::mem::take(value)));
    }
    key.clear();
    value.clear();
}

fn xfcc_certificates(element: &[(String, Vec<u8>)], out: &mut Chain) -> Result<(), ForwardedError> {
    let get = |name: &str| {
        element
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| trim(v))
            .filter(|v| !v.is_empty())
    };
    let cert = get("cert");
    let chain = get("chain");
    let Some(text) = chain.or(cert) else {
        // An element naming the client (`Hash`, `Subject`) without its
        // certificate: nothing to verify.
        return Err(ForwardedError::Malformed {
            header: XFCC,
            detail: "the client's element carries neither Cert nor Chain".into(),
        });
    };
    let text = url_decode(&XFCC, text)?;
    pem_certificates(&XFCC, &text, out)?;
    if let (Some(cert), Some(_)) = (cert, chain) {
        let mut leaf = Chain {
            certs: Vec::new(),
            limit: 1,
        };
        pem_certificates(&XFCC, &url_decode(&XFCC, cert)?, &mut leaf)?;
        if leaf.certs.first() != out.certs.first() {
            return Err(ForwardedError::Malformed {
                header: XFCC,
                detail: "Cert is not the first certificate of Chain".into(),
            });
        }
    }
    Ok(())
}
