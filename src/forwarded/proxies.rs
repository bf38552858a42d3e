//! The trust boundary: which peers may forward a certificate, how many
//! proxies stand between the client and the application, and the optional
//! shared secret a proxy proves itself with.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};

use crate::policy::IpNet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The proxies whose forwarded certificates are believed.
#[derive(Clone, Debug)]
pub(crate) struct TrustedProxies {
    pub(crate) networks: Vec<IpNet>,
    /// Proxies between the client and the application, all trusted; the
    /// outermost one terminated the client's TLS (at least 1).
    pub(crate) hops: usize,
    /// A header every request from a proxy carries, and the SHA-256 of its
    /// value.
    pub(crate) secret: Option<(HeaderName, [u8; 32])>,
}

/// Where a request came from, once the proxies are believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProxyPath {
    /// The proxy the application's connection came from.
    pub(crate) proxy: IpAddr,
    /// The client, as the outermost trusted proxy reported it (the proxy
    /// itself when it reported nothing).
    pub(crate) client: IpAddr,
}

/// Why a request's forwarded headers are not believed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Untrusted {
    /// The connection's peer, or a hop `X-Forwarded-For` names, is not in
    /// the trusted networks.
    Address(IpAddr),
    /// Fewer hops were reported in `X-Forwarded-For` than configured.
    MissingHops { reported: usize, hops: usize },
    /// The shared-secret header is missing or wrong.
    Secret,
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Address(ip) => write!(f, "{ip} is not a trusted proxy"),
            Self::MissingHops { reported, hops } => write!(
                f,
                "X-Forwarded-For reports {reported} hop(s); {hops} trusted proxies are configured"
            ),
            Self::Secret => f.write_str("the proxy's shared-secret header is missing or wrong"),
        }
    }
}

impl TrustedProxies {
    fn trusted(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(ip))
    }

    /// Whether the request's forwarded headers are to be believed, and
    /// where it came from. With `hops` = N the peer and the last N − 1
    /// `X-Forwarded-For` entries must all be trusted proxies; the entry
    /// before them is the client.
    pub(crate) fn resolve(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
    ) -> Result<ProxyPath, Untrusted> {
        let peer = canonical(peer);
        if !self.trusted(peer) {
            return Err(Untrusted::Address(peer));
        }
        if let Some((name, digest)) = &self.secret {
            let mut values = headers.get_all(name).iter();
            let ok = match (values.next(), values.next()) {
                (Some(v), None) => Sha256::digest(v.as_bytes()).as_slice() == digest,
                _ => false,
            };
            if !ok {
                return Err(Untrusted::Secret);
            }
        }
        let forwarded_for = forwarded_for(headers);
        let inner_hops = self.hops.saturating_sub(1);
        if forwarded_for.len() < inner_hops {
            return Err(Untrusted::MissingHops {
                reported: forwarded_for.len(),
                hops: self.hops,
            });
        }
        let split = forwarded_for.len() - inner_hops;
        for hop in &forwarded_for[split..] {
            match hop {
                Some(ip) if self.trusted(*ip) => {}
                Some(ip) => return Err(Untrusted::Address(*ip)),
                None => {
                    return Err(Untrusted::MissingHops {
                        reported: forwarded_for.len(),
                        hops: self.hops,
                    })
                }
            }
        }
        let client = split
            .checked_sub(1)
            .and_then(|i| forwarded_for[i])
            .unwrap_or(peer);
        Ok(ProxyPath {
            proxy: peer,
            client,
        })
    }
}

/// The `X-Forwarded-For` entries, oldest first (`None` for one that is
/// not an address: `unknown`, an obfuscated name).
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    for value in headers.get_all(X_FORWARDED_FOR) {
        let Ok(text) = value.to_str() else {
            out.push(None);
            continue;
        };
        // Bounded: a header is bounded by the server's header limits, and
        // only the last few entries matter; keep at most 64.
        for entry in text.split(',') {
            if out.len() == 64 {
                out.remove(0);
            }
            out.push(parse_hop(entry.trim()));
        }
    }
    out
}

/// `203.0.113.7`, `203.0.113.7:5555`, `2001:db8::1`, `[2001:db8::1]:5555`.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (ip, _) = rest.split_once(']')?;
        return ip.parse().ok().map(canonical);
    }
    let (ip, port) = entry.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// IPv4-mapped IPv6 addresses (a dual-stack listener's IPv4 peers) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str], hops: usize) -> TrustedProxies {
        TrustedProxies {
            networks: nets.iter().map(|n| n.parse().unwrap()).collect(),
            hops,
            secret: None,
        }
    }

    fn xff(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, value.parse().unwrap());
        h
    }

    #[test]
    fn one_hop_believes_a_trusted_peer_and_reads_the_client_from_the_last_entry() {
        let p = proxies(&["10.0.0.0/8"], 1);
        let path = p
            .resolve(
                "10.1.2.3".parse().unwrap(),
                &xff("198.51.100.1, 203.0.113.9"),
            )
            .unwrap();
        assert_eq!(path.client, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(path.proxy, "10.1.2.3".parse::<IpAddr>().unwrap());
        assert_eq!(
            p.resolve("192.0.2.1".parse().unwrap(), &HeaderMap::new()),
            Err(Untrusted::Address("192.0.2.1".parse().unwrap()))
        );
        // No X-Forwarded-For: the proxy is all that is known.
        let path = p
            .resolve("::ffff:10.0.0.1".parse().unwrap(), &HeaderMap::new())
            .unwrap();
        assert_eq!(path.client, "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn two_hops_need_the_inner_hop_trusted_too() {
        let p = proxies(&["10.0.0.0/8", "172.16.0.0/12"], 2);
        let ok = p
            .resolve("10.0.0.2".parse().unwrap(), &xff("1.2.3.4, 172.16.0.9:443"))
            .unwrap();
        assert_eq!(ok.client, "1.2.3.4".parse::<IpAddr>().unwrap());
        assert_eq!(
            p.resolve("10.0.0.2".parse().unwrap(), &xff("1.2.3.4, 8.8.8.8")),
            Err(Untrusted::Address("8.8.8.8".parse().unwrap()))
        );
        assert_eq!(
            p.resolve("10.0.0.2".parse().unwrap(), &HeaderMap::new()),
            Err(Untrusted::MissingHops {
                reported: 0,
                hops: 2
            })
        );
    }

    #[test]
    fn the_shared_secret_must_match_exactly_once() {
        let name = HeaderName::from_static("x-origin-verify");
        let mut p = proxies(&["127.0.0.1/32"], 1);
        p.secret = Some((name.clone(), Sha256::digest(b"s3cret").into()));
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(p.resolve(peer, &h), Err(Untrusted::Secret));
        h.insert(name.clone(), "wrong".parse().unwrap());
        assert_eq!(p.resolve(peer, &h), Err(Untrusted::Secret));
        h.insert(name.clone(), "s3cret".parse().unwrap());
        assert!(p.resolve(peer, &h).is_ok());
        h.append(name, "s3cret".parse().unwrap());
        assert_eq!(p.resolve(peer, &h), Err(Untrusted::Secret));
    }
}
