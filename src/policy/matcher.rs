//! What a rule can match on: names in the certificate, pins, the client's
//! address, the deny list.

use core::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{Connection, PolicyError};
use crate::chain_validator::SubjectAltName;
use crate::revocation::kvs::KeyValueStore;
use crate::x509::fields::serial_cloudfront;
use crate::x509::subject_name::dns_name_matches;

/// How a name is compared.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NamePattern {
    /// Equal (DNS: case-insensitive, `*.` wildcards on either side per RFC 6125).
    Exact(String),
    /// Starts with (e.g. `spiffe://prod.example.org/ns/payments/`).
    Prefix(String),
    /// Ends with (DNS and email domains: case-insensitive, on a label boundary).
    Suffix(String),
}

impl NamePattern {
    fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(p) => value == p,
            Self::Prefix(p) => value.starts_with(p.as_str()),
            Self::Suffix(p) => value.ends_with(p.as_str()),
        }
    }

    fn matches_dns(&self, value: &str) -> bool {
        match self {
            Self::Exact(p) => {
                value.eq_ignore_ascii_case(p)
                    || dns_name_matches(value.as_bytes(), p.as_bytes())
                    || dns_name_matches(p.as_bytes(), value.as_bytes())
            }
            Self::Prefix(p) => value
                .as_bytes()
                .get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p.as_bytes())),
            Self::Suffix(p) => label_suffix(value, p),
        }
    }

    fn matches_email(&self, value: &str) -> bool {
        match self {
            Self::Suffix(p) => {
                let domain = value.rsplit_once('@').map_or("", |(_, d)| d);
                let p = p.trim_start_matches('@');
                label_suffix(domain, p) || domain.eq_ignore_ascii_case(p)
            }
            other => other.matches(value),
        }
    }
}

/// `value` ends with `suffix` at a label boundary (or equals it), ASCII case-insensitively.
fn label_suffix(value: &str, suffix: &str) -> bool {
    let suffix = suffix.trim_start_matches('.');
    let Some(split) = value.len().checked_sub(suffix.len()) else {
        return false;
    };
    let bytes = value.as_bytes();
    bytes
        .get(split..)
        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix.as_bytes()))
        && (split == 0 || bytes.get(split - 1) == Some(&b'.'))
}

/// An IP network in CIDR notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// A CIDR string that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP network in CIDR notation")]
pub struct IpNetParseError(String);

impl FromStr for IpNet {
    type Err = IpNetParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IpNetParseError(s.to_string());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a.parse::<IpAddr>().map_err(|_| err())?,
                Some(p.parse::<u8>().map_err(|_| err())?),
            ),
            None => (s.parse::<IpAddr>().map_err(|_| err())?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(err());
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl IpNet {
    /// Whether `ip` is inside the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a.get(..full) != b.get(..full) {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    match (a.get(full), b.get(full)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

/// A condition on a connection.
#[non_exhaustive]
#[derive(Clone)]
pub enum Matcher {
    /// A dNSName SAN matches.
    DnsSan(NamePattern),
    /// A URI SAN matches (SPIFFE ids included).
    UriSan(NamePattern),
    /// An rfc822Name SAN matches.
    EmailSan(NamePattern),
    /// An iPAddress SAN is inside the network.
    IpSan(IpNet),
    /// The subject (RFC 2253) matches.
    Subject(NamePattern),
    /// The issuer (RFC 2253) matches (issuer pinning by name).
    Issuer(NamePattern),
    /// SHA-256 of the leaf DER is one of these.
    LeafSha256(Vec<[u8; 32]>),
    /// SHA-256 of the leaf's SubjectPublicKeyInfo is one of these (key pinning).
    SpkiSha256(Vec<[u8; 32]>),
    /// The client address is inside one of these networks.
    ClientIp(Vec<IpNet>),
    /// The leaf serial is a key of this store (deny list).
    SerialIn(Arc<dyn KeyValueStore>),
    /// No certificate was presented.
    NoCertificate,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DnsSan(p) => f.debug_tuple("DnsSan").field(p).finish(),
            Self::UriSan(p) => f.debug_tuple("UriSan").field(p).finish(),
            Self::EmailSan(p) => f.debug_tuple("EmailSan").field(p).finish(),
            Self::IpSan(n) => f.debug_tuple("IpSan").field(n).finish(),
            Self::Subject(p) => f.debug_tuple("Subject").field(p).finish(),
            Self::Issuer(p) => f.debug_tuple("Issuer").field(p).finish(),
            Self::LeafSha256(p) => write!(f, "LeafSha256({} pins)", p.len()),
            Self::SpkiSha256(p) => write!(f, "SpkiSha256({} pins)", p.len()),
            Self::ClientIp(n) => f.debug_tuple("ClientIp").field(n).finish(),
            Self::SerialIn(_) => f.write_str("SerialIn(..)"),
            Self::NoCertificate => f.write_str("NoCertificate"),
        }
    }
}

impl Matcher {
    /// Whether the connection satisfies the condition.
    pub async fn matches(&self, connection: &Connection) -> Result<bool, PolicyError> {
        let leaf = connection.leaf.as_deref();
        let sans = leaf.map_or(&[][..], |l| l.subject_alt_names.as_slice());
        Ok(match self {
            Self::DnsSan(p) => sans
                .iter()
                .any(|s| matches!(s, SubjectAltName::Dns(d) if p.matches_dns(d))),
            Self::UriSan(p) => sans
                .iter()
                .any(|s| matches!(s, SubjectAltName::Uri(u) if p.matches(u))),
            Self::EmailSan(p) => sans
                .iter()
                .any(|s| matches!(s, SubjectAltName::Email(e) if p.matches_email(e))),
            Self::IpSan(net) => sans
                .iter()
                .any(|s| matches!(s, SubjectAltName::Ip(ip) if net.contains(*ip))),
            Self::Subject(p) => leaf.is_some_and(|l| p.matches(&l.subject)),
            Self::Issuer(p) => leaf.is_some_and(|l| p.matches(&l.issuer)),
            Self::LeafSha256(pins) => leaf.is_some_and(|l| pins.contains(&l.sha256)),
            Self::SpkiSha256(pins) => leaf.is_some_and(|l| {
                let digest: [u8; 32] = Sha256::digest(&l.spki).into();
                pins.contains(&digest)
            }),
            Self::ClientIp(nets) => nets.iter().any(|n| n.contains(connection.client_ip)),
            Self::SerialIn(store) => match leaf {
                None => false,
                Some(l) => store
                    .exists(&serial_cloudfront(&l.serial))
                    .await
                    .map_err(|e| PolicyError::Lookup(e.to_string()))?,
            },
            Self::NoCertificate => leaf.is_none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()));
        let v6: IpNet = "2001:db8::/33".parse().unwrap();
        assert!(v6.contains("2001:db8:7fff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:8000::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
    }

    #[test]
    fn dns_patterns() {
        assert!(NamePattern::Exact("*.example.com".into()).matches_dns("a.example.com"));
        assert!(NamePattern::Exact("a.example.com".into()).matches_dns("*.example.com"));
        assert!(NamePattern::Suffix("example.com".into()).matches_dns("a.b.Example.com"));
        assert!(!NamePattern::Suffix("example.com".into()).matches_dns("badexample.com"));
    }
}
