//! Matching names presented in a certificate against reference names.
//!
//! DNS matching follows RFC 6125 §6.4 as webpki does: ASCII case-insensitive,
//! a wildcard only as the complete left-most label of a name with at least
//! three labels, and it matches exactly one label.

use std::net::IpAddr;

/// Whether `name` is a syntactically valid DNS name (LDH labels, optional
/// trailing dot not allowed), optionally with a `*` left-most label.
pub(crate) fn is_valid_dns_name(name: &[u8], allow_wildcard: bool) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let mut labels = name.split(|b| *b == b'.').peekable();
    let mut first = true;
    while let Some(label) = labels.next() {
        let is_wildcard = first && allow_wildcard && label == b"*";
        first = false;
        if is_wildcard {
            continue;
        }
        if label.is_empty() || label.len() > 63 {
            return false;
        }
        if !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        {
            return false;
        }
        if label.first() == Some(&b'-') || label.last() == Some(&b'-') {
            return false;
        }
        if labels.peek().is_none() && label.iter().all(u8::is_ascii_digit) {
            // A numeric final label is an IP address in disguise.
            return false;
        }
    }
    true
}

/// Whether the DNS name presented in a certificate (`presented`, possibly a
/// wildcard) matches the reference name `reference`.
pub fn dns_name_matches(presented: &[u8], reference: &[u8]) -> bool {
    if !is_valid_dns_name(presented, true) || !is_valid_dns_name(reference, false) {
        return false;
    }
    match presented.strip_prefix(b"*.") {
        Some(rest) => {
            // At least two labels after the wildcard ("*.com" never matches).
            if !rest.contains(&b'.') {
                return false;
            }
            match reference.iter().position(|b| *b == b'.') {
                Some(dot) => reference
                    .get(dot + 1..)
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(rest)),
                None => false,
            }
        }
        None => presented.eq_ignore_ascii_case(reference),
    }
}

/// Whether `mailbox` is an RFC 5321 `local-part@domain` with a valid domain
/// (the form RFC 5280 §4.2.1.6 requires of rfc822Name).
pub(crate) fn is_valid_email(mailbox: &[u8]) -> bool {
    let Some(at) = mailbox.iter().position(|b| *b == b'@') else {
        return false;
    };
    let (local, domain) = (&mailbox[..at], &mailbox[at + 1..]);
    !local.is_empty()
        && local.iter().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'@' | b'('
                        | b')'
                        | b','
                        | b';'
                        | b':'
                        | b'<'
                        | b'>'
                        | b'['
                        | b']'
                        | b'\\'
                        | b'"'
                )
        })
        && is_valid_dns_name(domain, false)
}

/// Whether the `iPAddress` SAN octets (4 or 16) equal `reference`.
pub fn ip_address_matches(presented: &[u8], reference: IpAddr) -> bool {
    match reference {
        IpAddr::V4(v4) => presented == v4.octets(),
        IpAddr::V6(v6) => presented == v6.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_exact_and_case() {
        assert!(dns_name_matches(b"Example.COM", b"example.com"));
        assert!(!dns_name_matches(b"example.com", b"example.org"));
    }

    #[test]
    fn wildcards_match_one_label() {
        assert!(dns_name_matches(b"*.example.com", b"a.example.com"));
        assert!(!dns_name_matches(b"*.example.com", b"a.b.example.com"));
        assert!(!dns_name_matches(b"*.example.com", b"example.com"));
        assert!(!dns_name_matches(b"*.com", b"example.com"));
        assert!(!dns_name_matches(b"f*.example.com", b"foo.example.com"));
        assert!(!dns_name_matches(b"a.*.example.com", b"a.b.example.com"));
    }

    #[test]
    fn ip_addresses() {
        assert!(ip_address_matches(
            &[10, 0, 0, 1],
            "10.0.0.1".parse().unwrap()
        ));
        assert!(!ip_address_matches(&[10, 0, 0, 1], "::1".parse().unwrap()));
    }
}
