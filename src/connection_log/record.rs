//! The connection-log record (CloudFront's field names).

use core::fmt;
use std::net::IpAddr;

use crate::reason::ReasonCode;
use crate::x509::fields::CertFields;

/// `Success` or `Failed:<ReasonCode>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    /// The connection was accepted.
    #[default]
    Success,
    /// The connection was refused for this reason.
    Failed(ReasonCode),
}

impl fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Success => f.write_str("Success"),
            Self::Failed(code) => write!(f, "Failed:{code}"),
        }
    }
}

/// A connection id: 40 random bytes, base64url with padding (56 characters),
/// shared by the connection log and the connection-id request header.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionId(String);

impl ConnectionId {
    /// A fresh id from `rng` (pass the crypto provider's `secure_random`).
    pub fn random(
        rng: &dyn rustls::crypto::SecureRandom,
    ) -> Result<Self, rustls::crypto::GetRandomFailed> {
        let mut bytes = [0u8; 40];
        rng.fill(&mut bytes)?;
        Ok(Self(base64url_padded(&bytes)))
    }

    /// A fresh id from `pool`, which draws random bytes from the provider
    /// a few kilobytes at a time (one generator call per hundred ids).
    pub(crate) fn from_pool(pool: &RandomPool) -> Result<Self, rustls::crypto::GetRandomFailed> {
        let mut bytes = [0u8; 40];
        pool.fill(&mut bytes)?;
        Ok(Self(base64url_padded(&bytes)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string (no copy).
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `bytes` in base64url with padding, as `URL_SAFE.encode` writes it (a
/// short, fixed-size input: one allocation, no engine set-up).
fn base64url_padded(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let digit = |v: u32| DIGITS[(v & 63) as usize];
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    let mut groups = bytes.chunks_exact(3);
    for g in &mut groups {
        let v = u32::from(g[0]) << 16 | u32::from(g[1]) << 8 | u32::from(g[2]);
        out.extend_from_slice(&[digit(v >> 18), digit(v >> 12), digit(v >> 6), digit(v)]);
    }
    match *groups.remainder() {
        [a] => {
            let v = u32::from(a) << 16;
            out.extend_from_slice(&[digit(v >> 18), digit(v >> 12), b'=', b'=']);
        }
        [a, b] => {
            let v = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[digit(v >> 18), digit(v >> 12), digit(v >> 6), b'=']);
        }
        _ => {}
    }
    // ASCII only: the check cannot fail.
    String::from_utf8(out).unwrap_or_default()
}

/// Random bytes drawn from a `SecureRandom` in blocks: each block is used
/// once, front to back, and never handed out twice.
pub(crate) struct RandomPool {
    random: &'static dyn rustls::crypto::SecureRandom,
    block: std::sync::Mutex<(Box<[u8; RandomPool::BLOCK]>, usize)>,
}

impl RandomPool {
    const BLOCK: usize = 4000;

    pub(crate) fn new(random: &'static dyn rustls::crypto::SecureRandom) -> Self {
        Self {
            random,
            // Empty: the first call fills it.
            block: std::sync::Mutex::new((Box::new([0; Self::BLOCK]), Self::BLOCK)),
        }
    }

    /// Fills `out` (at most one block) with bytes no other caller gets.
    pub(crate) fn fill(&self, out: &mut [u8]) -> Result<(), rustls::crypto::GetRandomFailed> {
        if out.len() > Self::BLOCK {
            return self.random.fill(out);
        }
        let mut guard = self
            .block
            .lock()
            .map_err(|_| rustls::crypto::GetRandomFailed)?;
        let (block, used) = &mut *guard;
        if Self::BLOCK - *used < out.len() {
            self.random.fill(&mut block[..])?;
            *used = 0;
        }
        let start = *used;
        out.copy_from_slice(&block[start..start + out.len()]);
        // Handed out: wipe so the bytes are not kept around.
        block[start..start + out.len()].fill(0);
        *used += out.len();
        Ok(())
    }
}

impl std::fmt::Debug for RandomPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RandomPool")
    }
}

/// One connection attempt. Empty optional fields render as `null` (JSON)
/// or `-` (W3C, ALB).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionLogRecord {
    /// When the attempt ended, Unix epoch milliseconds.
    pub event_timestamp: u64,
    /// The connection id.
    pub connection_id: String,
    /// Success or the reason for failure.
    pub connection_status: ConnectionStatus,
    /// The client's address.
    pub client_ip: Option<IpAddr>,
    /// The client's port.
    pub client_port: Option<u16>,
    /// The server's address.
    pub server_ip: Option<IpAddr>,
    /// The server's (listener's) port.
    pub server_port: Option<u16>,
    /// The listener id (CloudFront's distribution id).
    pub distribution_id: String,
    /// `TLSv1.3` or `TLSv1.2`.
    pub tls_protocol: Option<String>,
    /// The negotiated cipher suite.
    pub tls_cipher: Option<String>,
    /// The key-exchange group (ALB's `tls_keyexchange`).
    pub tls_key_exchange: Option<String>,
    /// Handshake duration in milliseconds.
    pub tls_handshake_duration: Option<u64>,
    /// The SNI host name the client sent.
    pub tls_sni: Option<String>,
    /// Leaf serial, CloudFront style (`00:b1:43:…`).
    pub client_leaf_cert_serial_number: Option<String>,
    /// Leaf subject, CloudFront log style.
    pub client_leaf_cert_subject: Option<String>,
    /// Leaf subject, RFC 2253 (ALB's connection-log form).
    pub client_leaf_cert_subject_rfc2253: Option<String>,
    /// Leaf issuer, CloudFront log style.
    pub client_leaf_cert_issuer: Option<String>,
    /// Leaf validity, `NotBefore=…;NotAfter=…`.
    pub client_leaf_cert_validity: Option<String>,
    /// Leaf SHA-256, lowercase hex.
    pub client_leaf_cert_sha256: Option<String>,
    /// Up to 800 bytes from the connection policy.
    pub connection_log_custom_data: Option<String>,
    /// The trust-store generation that judged the connection.
    pub trust_store_generation: Option<u64>,
    /// Forwarded mode: a trusted proxy forwarded the certificate in a
    /// request header (not a CloudFront field); `client_ip` is then the
    /// client the proxies reported.
    pub forwarded: bool,
    /// Forwarded mode: the proxy's address (not a CloudFront field).
    pub proxy_ip: Option<IpAddr>,
    /// Why the connection failed, for operators (not a CloudFront field):
    /// the failed check and the certificate it concerns, e.g.
    /// `leaf certificate (CN=client,O=Example): expired at … (now …, Unix
    /// seconds)`, or a refusal's detail after the handshake. `None` on
    /// success.
    pub connection_status_detail: Option<String>,
}

impl ConnectionLogRecord {
    /// Fills the leaf-certificate fields.
    pub fn set_leaf(&mut self, cert: &CertFields) {
        self.client_leaf_cert_serial_number = Some(cert.serial_cloudfront().to_owned());
        self.client_leaf_cert_subject = Some(cert.subject_log().to_owned());
        self.client_leaf_cert_subject_rfc2253 = Some(cert.subject().to_owned());
        self.client_leaf_cert_issuer = Some(cert.issuer_log().to_owned());
        self.client_leaf_cert_validity = Some(cert.validity().to_owned());
        self.client_leaf_cert_sha256 = Some(cert.sha256_hex().to_owned());
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    #[test]
    fn connection_ids_are_base64url_with_padding() {
        let bytes: Vec<u8> = (0u8..=255).rev().chain(0..=255).collect();
        for len in 0..=48 {
            for start in [0, 1, 100, 250, 300] {
                let input = &bytes[start..start + len];
                assert_eq!(
                    super::base64url_padded(input),
                    base64::engine::general_purpose::URL_SAFE.encode(input),
                    "{len} bytes from {start}"
                );
            }
        }
    }
}
