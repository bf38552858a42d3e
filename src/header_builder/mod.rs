//! HTTP headers that describe the client certificate to the application.
//!
//! A [`HeaderBuilder`] is configured once per listener with the dialects the
//! application understands (CloudFront, ALB verify, ALB passthrough, RFC 9440,
//! Envoy XFCC, or a custom prefix). Per connection it renders
//! [`ConnectionHeaders`] once; per request, [`ConnectionHeaders::apply`]
//! removes every client-sent copy of every header any profile could emit and
//! appends the prebuilt values, which are `bytes::Bytes`-backed, so attaching
//! them costs a reference-count increment each.

mod sanitize;

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::x509::fields::CertFields;

pub use sanitize::{is_reserved_header, sanitize};

/// Envoy's `forward_client_cert_details` modes that are safe at the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XfccMode {
    /// Remove any client-sent `x-forwarded-client-cert` and add none.
    Sanitize,
    /// Remove any client-sent `x-forwarded-client-cert` and set it from the
    /// verified connection.
    SanitizeSet,
}

/// One header dialect.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HeaderProfile {
    /// `CloudFront-Viewer-Cert-*`.
    CloudFront,
    /// `X-Amzn-Mtls-Clientcert-*` (ALB verify mode).
    AlbVerify,
    /// `X-Amzn-Mtls-Clientcert` with the whole presented chain (ALB passthrough).
    AlbPassthrough,
    /// RFC 9440 `Client-Cert` and `Client-Cert-Chain`.
    Rfc9440,
    /// Envoy's `x-forwarded-client-cert`.
    EnvoyXfcc(XfccMode),
    /// CloudFront's formats under another prefix, e.g. `X-Client-Cert-` gives
    /// `X-Client-Cert-Serial-Number`, `X-Client-Cert-Subject`, …
    Custom {
        /// The prefix, including its trailing separator.
        prefix: String,
    },
}

/// A configuration error caught by [`HeaderBuilderBuilder::build`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderConfigError {
    /// A configured header name is not a valid HTTP field name.
    #[error("`{0}` is not a valid header name")]
    InvalidName(String),
    /// A custom profile's prefix is empty (it would reserve, and strip, every header).
    #[error("a custom header profile needs a non-empty prefix")]
    EmptyPrefix,
}

/// What a connection contributes to its headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnectionFacts<'a> {
    /// The presented certificate, formatted; `None` when none was presented.
    pub cert: Option<&'a CertFields>,
    /// Whether `cert` was validated against the trust store. Passthrough
    /// certificates are not: they get only the passthrough dialects
    /// (`X-Amzn-Mtls-Clientcert`, RFC 9440), never `…-Present: 1`.
    pub verified: bool,
    /// The connection id shared with the connection log.
    pub connection_id: Option<&'a str>,
    /// The negotiated protocol, e.g. `TLSv1.3`.
    pub tls_version: Option<&'a str>,
    /// The negotiated cipher suite, e.g. `TLS13_AES_128_GCM_SHA256`.
    pub tls_cipher: Option<&'a str>,
}

/// Configures a [`HeaderBuilder`].
#[derive(Clone, Debug)]
pub struct HeaderBuilderBuilder {
    profiles: Vec<HeaderProfile>,
    renames: Vec<(String, String)>,
    connection_id_header: Option<String>,
    tls_headers: bool,
    max_value_bytes: usize,
    too_large_header: String,
}

impl HeaderBuilderBuilder {
    /// Adds a dialect (several may be combined).
    pub fn profile(mut self, profile: HeaderProfile) -> Self {
        self.profiles.push(profile);
        self
    }

    /// Emits the header `from` under the name `to` instead.
    pub fn rename(mut self, from: &str, to: &str) -> Self {
        self.renames
            .push((from.to_ascii_lowercase(), to.to_string()));
        self
    }

    /// Adds the connection id under this header name (e.g. `X-Edge-Connection-Id`).
    pub fn connection_id_header(mut self, name: &str) -> Self {
        self.connection_id_header = Some(name.to_string());
        self
    }

    /// Adds ALB's `X-Amzn-Tls-Version` and `X-Amzn-Tls-Cipher-Suite`.
    pub fn tls_headers(mut self, yes: bool) -> Self {
        self.tls_headers = yes;
        self
    }

    /// Largest value of one header; larger values are not sent and their
    /// names are listed in the "too large" header instead (default 32 KiB).
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// The name of the "too large" marker header (default `X-Edge-Mtls-Too-Large`).
    pub fn too_large_header(mut self, name: &str) -> Self {
        self.too_large_header = name.to_string();
        self
    }

    /// Validates every name.
    pub fn build(self) -> Result<HeaderBuilder, HeaderConfigError> {
        let name = |s: &str| {
            HeaderName::from_bytes(s.as_bytes())
                .map_err(|_| HeaderConfigError::InvalidName(s.to_string()))
        };
        let mut extra_reserved = Vec::new();
        let mut renames = Vec::new();
        for (from, to) in &self.renames {
            let to_name = name(to)?;
            extra_reserved.push(to_name.as_str().to_string());
            renames.push((name(from)?, to_name));
        }
        let connection_id_header = match &self.connection_id_header {
            Some(n) => {
                let n = name(n)?;
                extra_reserved.push(n.as_str().to_string());
                Some(n)
            }
            None => None,
        };
        let too_large_header = name(&self.too_large_header)?;
        extra_reserved.push(too_large_header.as_str().to_string());
        let mut extra_prefixes = Vec::new();
        for p in &self.profiles {
            if let HeaderProfile::Custom { prefix } = p {
                if prefix.is_empty() {
                    return Err(HeaderConfigError::EmptyPrefix);
                }
                name(&format!("{prefix}Present"))?;
                extra_prefixes.push(prefix.to_ascii_lowercase().replace('_', "-"));
            }
        }
        let extra_reserved = extra_reserved
            .into_iter()
            .map(|n| n.replace('_', "-"))
            .collect();
        Ok(HeaderBuilder {
            profiles: self.profiles,
            renames,
            connection_id_header,
            tls_headers: self.tls_headers,
            max_value_bytes: self.max_value_bytes,
            too_large_header,
            reserved: Arc::new(sanitize::Reserved {
                names: extra_reserved,
                prefixes: extra_prefixes,
            }),
        })
    }
}

/// Renders per-connection headers for the configured dialects.
#[derive(Clone, Debug)]
pub struct HeaderBuilder {
    profiles: Vec<HeaderProfile>,
    renames: Vec<(HeaderName, HeaderName)>,
    connection_id_header: Option<HeaderName>,
    tls_headers: bool,
    max_value_bytes: usize,
    too_large_header: HeaderName,
    reserved: Arc<sanitize::Reserved>,
}

impl Default for HeaderBuilder {
    /// No profile: requests are only sanitized.
    fn default() -> Self {
        Self {
            profiles: Vec::new(),
            renames: Vec::new(),
            connection_id_header: None,
            tls_headers: false,
            max_value_bytes: 32 * 1024,
            too_large_header: HeaderName::from_static("x-edge-mtls-too-large"),
            reserved: Arc::new(sanitize::Reserved {
                names: vec!["x-edge-mtls-too-large".to_string()],
                prefixes: Vec::new(),
            }),
        }
    }
}

impl HeaderBuilder {
    /// A builder with no profile yet.
    pub fn builder() -> HeaderBuilderBuilder {
        HeaderBuilderBuilder {
            profiles: Vec::new(),
            renames: Vec::new(),
            connection_id_header: None,
            tls_headers: false,
            max_value_bytes: 32 * 1024,
            too_large_header: "X-Edge-Mtls-Too-Large".to_string(),
        }
    }

    /// Whether [`render`](Self::render) reads more than the certificate and
    /// whether it was verified (the connection id or TLS parameters): when
    /// not, connections with the same certificate can share one rendering.
    pub fn per_connection(&self) -> bool {
        self.connection_id_header.is_some() || self.tls_headers
    }

    /// Renders the headers of one connection (call once per connection).
    pub fn render(&self, facts: &ConnectionFacts<'_>) -> ConnectionHeaders {
        let mut out = Render {
            builder: self,
            entries: Vec::with_capacity(12),
            too_large: Vec::new(),
        };
        for profile in &self.profiles {
            out.profile(profile, facts);
        }
        if let (Some(name), Some(id)) = (&self.connection_id_header, facts.connection_id) {
            out.push_named(name.clone(), copy(id));
        }
        if self.tls_headers {
            if let Some(v) = facts.tls_version {
                out.push("x-amzn-tls-version", copy(v));
            }
            if let Some(c) = facts.tls_cipher {
                out.push("x-amzn-tls-cipher-suite", copy(c));
            }
        }
        let Render {
            mut entries,
            too_large,
            ..
        } = out;
        if !too_large.is_empty() {
            if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(too_large.join(", "))) {
                entries.push((self.too_large_header.clone(), v));
            }
        }
        // Kept for the connection's lifetime (no spare capacity), and
        // cheap to clone.
        ConnectionHeaders {
            entries: entries.into(),
            reserved: self.reserved.clone(),
        }
    }
}

struct Render<'b> {
    builder: &'b HeaderBuilder,
    entries: Vec<(HeaderName, HeaderValue)>,
    too_large: Vec<String>,
}

/// A header value from text held elsewhere (one copy into the value).
fn copy(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// Text a header value shares with the connection's [`CertFields`].
struct SharedText(Arc<str>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// A header value sharing `text` (the certificate PEMs: the largest values,
/// kept once per connection instead of twice).
fn shared(text: &Arc<str>) -> Bytes {
    Bytes::from_owner(SharedText(text.clone()))
}

const PRESENT: Bytes = Bytes::from_static(b"1");
const ABSENT: Bytes = Bytes::from_static(b"0");

impl Render<'_> {
    fn push(&mut self, name: &'static str, value: Bytes) {
        self.push_named(HeaderName::from_static(name), value);
    }

    fn push_named(&mut self, name: HeaderName, value: Bytes) {
        let name = self
            .builder
            .renames
            .iter()
            .find(|(from, _)| *from == name)
            .map_or(name, |(_, to)| to.clone());
        if value.len() > self.builder.max_value_bytes {
            self.too_large.push(name.as_str().to_string());
            return;
        }
        match HeaderValue::from_maybe_shared(value) {
            Ok(v) => self.entries.push((name, v)),
            // A value no field can carry (a control character): withheld and flagged.
            Err(_) => self.too_large.push(name.as_str().to_string()),
        }
    }

    fn profile(&mut self, profile: &HeaderProfile, facts: &ConnectionFacts<'_>) {
        let cert = facts.cert;
        let passthrough_only = cert.is_some() && !facts.verified;
        let verified_dialect = !matches!(
            profile,
            HeaderProfile::AlbPassthrough | HeaderProfile::Rfc9440
        );
        if passthrough_only && verified_dialect {
            return;
        }
        match profile {
            HeaderProfile::CloudFront => match cert {
                Some(c) => {
                    self.push(
                        "cloudfront-viewer-cert-serial-number",
                        copy(c.serial_cloudfront()),
                    );
                    self.push("cloudfront-viewer-cert-issuer", copy(c.issuer()));
                    self.push("cloudfront-viewer-cert-subject", copy(c.subject()));
                    self.push("cloudfront-viewer-cert-validity", copy(c.validity()));
                    self.push(
                        "cloudfront-viewer-cert-pem",
                        shared(c.leaf_pem_urlencoded_shared()),
                    );
                    self.push("cloudfront-viewer-cert-present", PRESENT);
                    self.push("cloudfront-viewer-cert-sha256", copy(c.sha256_hex()));
                }
                None => self.push("cloudfront-viewer-cert-present", ABSENT),
            },
            HeaderProfile::AlbVerify => {
                if let Some(c) = cert {
                    self.push("x-amzn-mtls-clientcert-serial-number", copy(c.serial_alb()));
                    self.push("x-amzn-mtls-clientcert-issuer", copy(c.issuer()));
                    self.push("x-amzn-mtls-clientcert-subject", copy(c.subject()));
                    self.push("x-amzn-mtls-clientcert-validity", copy(c.validity()));
                    self.push(
                        "x-amzn-mtls-clientcert-leaf",
                        shared(c.leaf_pem_urlencoded_shared()),
                    );
                }
            }
            HeaderProfile::AlbPassthrough => {
                if let Some(c) = cert {
                    self.push(
                        "x-amzn-mtls-clientcert",
                        shared(c.chain_pem_urlencoded_shared()),
                    );
                }
            }
            HeaderProfile::Rfc9440 => {
                if let Some(c) = cert {
                    self.push(
                        "client-cert",
                        Bytes::from(format!(":{}:", c.leaf_der_base64())),
                    );
                    if !c.chain_der_base64().is_empty() {
                        let chain: Vec<String> = c
                            .chain_der_base64()
                            .iter()
                            .map(|b| format!(":{b}:"))
                            .collect();
                        self.push("client-cert-chain", Bytes::from(chain.join(", ")));
                    }
                }
            }
            HeaderProfile::EnvoyXfcc(XfccMode::Sanitize) => {}
            HeaderProfile::EnvoyXfcc(XfccMode::SanitizeSet) => {
                if let Some(c) = cert {
                    self.push("x-forwarded-client-cert", Bytes::from(xfcc(c)));
                }
            }
            HeaderProfile::Custom { prefix } => {
                let mut custom = |suffix: &str, value: Bytes| {
                    if let Ok(name) = HeaderName::from_bytes(format!("{prefix}{suffix}").as_bytes())
                    {
                        self.push_named(name, value);
                    }
                };
                match cert {
                    Some(c) => {
                        custom("Serial-Number", copy(c.serial_cloudfront()));
                        custom("Issuer", copy(c.issuer()));
                        custom("Subject", copy(c.subject()));
                        custom("Validity", copy(c.validity()));
                        custom("Pem", shared(c.leaf_pem_urlencoded_shared()));
                        custom("Present", PRESENT);
                        custom("SHA256", copy(c.sha256_hex()));
                        if !c.san().is_empty() {
                            custom("SAN", copy(c.san()));
                        }
                    }
                    None => custom("Present", ABSENT),
                }
            }
        }
    }
}

/// Envoy's XFCC element: `Hash=…;Cert="…";Chain="…";Subject="…";URI=…;DNS=…`.
fn xfcc(c: &CertFields) -> String {
    let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = format!(
        "Hash={};Cert={};Chain={};Subject={}",
        c.sha256_hex(),
        quote(c.leaf_pem_urlencoded()),
        quote(c.chain_pem_urlencoded()),
        quote(c.subject())
    );
    for entry in c.san().split(',') {
        let (key, value) = match entry.split_once(':') {
            Some(("URI", v)) => ("URI", v),
            Some(("DNS", v)) => ("DNS", v),
            _ => continue,
        };
        out.push(';');
        out.push_str(key);
        out.push('=');
        if value.contains([',', ';', '=', '"']) {
            out.push_str(&quote(value));
        } else {
            out.push_str(value);
        }
    }
    out
}

/// The headers of one connection, ready to attach to each of its requests.
#[derive(Clone, Debug, Default)]
pub struct ConnectionHeaders {
    entries: Arc<[(HeaderName, HeaderValue)]>,
    reserved: Arc<sanitize::Reserved>,
}

impl ConnectionHeaders {
    /// Removes every client-sent copy of every header any profile could emit,
    /// then appends this connection's headers (reference-counted clones).
    pub fn apply(&self, headers: &mut HeaderMap) {
        sanitize::sanitize_with(headers, &self.reserved);
        headers.reserve(self.entries.len());
        for (name, value) in self.entries.iter() {
            headers.append(name.clone(), value.clone());
        }
    }

    /// The rendered headers, for servers on other `http` crate versions
    /// (actix-web): names are lowercase, values are the raw bytes.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))
    }

    /// Whether a (lowercased) header name must be stripped from requests.
    pub fn is_reserved(&self, name: &str) -> bool {
        sanitize::is_reserved_with(name, &self.reserved)
    }

    /// How many headers a request receives.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no header is added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
