//! Name constraints (RFC 5280 §4.2.1.10, §6.1.3 (b)–(c), §6.1.4 (g)).
//!
//! A CA's permitted and excluded subtrees apply to the subject DN and every
//! subjectAltName of each certificate below it, except self-issued
//! intermediates. Supported forms: dNSName, iPAddress, rfc822Name (also the
//! subject's emailAddress attributes), uniformResourceIdentifier (its host)
//! and directoryName. A constraint of any other form, or a name of a form
//! that a constraint of that form cannot be evaluated for, fails closed.

use crate::x509::cert::{Cert, CertParseError};
use crate::x509::der::{context, tag, DerCursor};
use crate::x509::extensions::{general_name, oid, GeneralName, GeneralNames};
use crate::x509::subject_name::{is_valid_dns_name, is_valid_email};

/// Why a name constraint check failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NameConstraintFailure {
    /// A name is outside the permitted subtrees or inside an excluded one.
    Violation(String),
    /// The constraint extension is malformed or uses an unsupported form.
    Malformed(&'static str),
    /// The comparison budget ran out.
    BudgetExhausted,
}

impl From<CertParseError> for NameConstraintFailure {
    fn from(e: CertParseError) -> Self {
        Self::Malformed(e.0)
    }
}

/// Checks every name of `cert` against the constraints of `ca_constraints`
/// (the contents of the NameConstraints SEQUENCE).
pub(crate) fn check(
    ca_constraints: &[u8],
    cert: &Cert<'_>,
    budget: &mut usize,
) -> Result<(), NameConstraintFailure> {
    let mut c = DerCursor::new(ca_constraints);
    let permitted = c
        .optional(context(0, true), "permittedSubtrees")
        .map_err(|_| NameConstraintFailure::Malformed("permittedSubtrees"))?
        .map(|t| t.value);
    let excluded = c
        .optional(context(1, true), "excludedSubtrees")
        .map_err(|_| NameConstraintFailure::Malformed("excludedSubtrees"))?
        .map(|t| t.value);
    c.finish("nameConstraints")
        .map_err(|_| NameConstraintFailure::Malformed("nameConstraints (trailing data)"))?;
    if permitted.is_none() && excluded.is_none() {
        // RFC 5280 §4.2.1.10: at least one of the two MUST be present.
        return Err(NameConstraintFailure::Malformed("nameConstraints (empty)"));
    }
    let permitted = permitted.map(ByKind::parse).transpose()?;
    let excluded = excluded.map(ByKind::parse).transpose()?;

    let mut names: Vec<GeneralName<'_>> = Vec::new();
    if !cert.subject_is_empty() {
        names.push(GeneralName::Directory(cert.subject));
    }
    for email in subject_email_addresses(cert.subject) {
        names.push(GeneralName::Email(email));
    }
    if let Some(san) = cert.extensions.subject_alt_name {
        for name in GeneralNames::new(san) {
            names.push(name?);
        }
    }

    // Each name is compared with the subtrees of its own form only (every
    // comparison spends from the budget).
    for name in &names {
        let permitted = permitted.as_ref().map_or(&[][..], |p| p.of(name));
        let excluded = excluded.as_ref().map_or(&[][..], |e| e.of(name));
        // A malformed name cannot be shown to lie inside or outside a
        // subtree, so under a constraint of its form it fails closed
        // (webpki refuses it too). Without constraints its syntax is a
        // structure rule of the profile.
        let malformed = match name {
            GeneralName::Dns(n) => !is_valid_dns_name(n, true),
            GeneralName::Email(n) => !is_valid_email(n),
            _ => false,
        };
        if malformed {
            for base in permitted.iter().chain(excluded) {
                spend(budget)?;
                if matches(base, name, false)? != Match::OtherKind {
                    return Err(NameConstraintFailure::Violation(format!(
                        "{} is malformed and cannot be checked against a name constraint of its form",
                        describe(name)
                    )));
                }
            }
        }
        let mut any_of_kind = false;
        let mut matched = false;
        for base in permitted {
            spend(budget)?;
            match matches(base, name, false)? {
                Match::OtherKind => {}
                Match::Yes => {
                    any_of_kind = true;
                    matched = true;
                    break;
                }
                Match::No => any_of_kind = true,
            }
        }
        if any_of_kind && !matched {
            return Err(NameConstraintFailure::Violation(format!(
                "{} is not within the permitted subtrees",
                describe(name)
            )));
        }
        for base in excluded {
            spend(budget)?;
            if matches(base, name, true)? == Match::Yes {
                return Err(NameConstraintFailure::Violation(format!(
                    "{} is within an excluded subtree",
                    describe(name)
                )));
            }
        }
    }
    Ok(())
}

/// Subtrees of one GeneralSubtrees, parsed and checked once, grouped by
/// the form of their base name.
struct ByKind<'a> {
    /// Indexed by [`kind`].
    groups: [Vec<GeneralName<'a>>; 6],
}

/// The group of a name's form.
fn kind(name: &GeneralName<'_>) -> usize {
    match name {
        GeneralName::Dns(_) => 0,
        GeneralName::Ip(_) => 1,
        GeneralName::Email(_) => 2,
        GeneralName::Uri(_) => 3,
        GeneralName::Directory(_) => 4,
        GeneralName::Other(_) => 5,
    }
}

impl<'a> ByKind<'a> {
    /// Every subtree must be well-formed, not only those of a form the
    /// certificate happens to use (a malformed constraint fails closed).
    fn parse(subtrees: &'a [u8]) -> Result<Self, NameConstraintFailure> {
        if subtrees.is_empty() {
            return Err(NameConstraintFailure::Malformed("GeneralSubtrees (empty)"));
        }
        let mut groups: [Vec<GeneralName<'a>>; 6] = Default::default();
        for subtree in Subtrees(DerCursor::new(subtrees)) {
            let base = subtree?;
            match base {
                GeneralName::Dns(c) if !c.is_empty() && !is_valid_dns_name(c, false) => {
                    // RFC 5280 §4.2.1.10: a dNSName constraint is a DNS name;
                    // the leading-period form is only defined for URIs.
                    return Err(NameConstraintFailure::Malformed(
                        "dNSName constraint is not a valid DNS name",
                    ));
                }
                GeneralName::Ip(c) if !matches!(c.len(), 8 | 32) => {
                    return Err(NameConstraintFailure::Malformed(
                        "iPAddress constraint length",
                    ))
                }
                // RFC 5280 §4.2.1.10: a mailbox, a host, or a `.domain`.
                GeneralName::Email(c) if !is_valid_email_constraint(c) => {
                    return Err(NameConstraintFailure::Malformed(
                        "rfc822Name constraint is neither a mailbox, a host nor a domain",
                    ))
                }
                _ => {}
            }
            if let Some(group) = groups.get_mut(kind(&base)) {
                group.push(base);
            }
        }
        Ok(Self { groups })
    }

    /// The subtrees a name of `name`'s form is compared with.
    fn of(&self, name: &GeneralName<'_>) -> &[GeneralName<'a>] {
        self.groups.get(kind(name)).map_or(&[], Vec::as_slice)
    }
}

fn is_valid_email_constraint(c: &[u8]) -> bool {
    if c.is_empty() {
        return true;
    }
    if c.contains(&b'@') {
        return is_valid_email(c);
    }
    let host = c.strip_prefix(b".").unwrap_or(c);
    is_valid_dns_name(host, false)
}

fn spend(budget: &mut usize) -> Result<(), NameConstraintFailure> {
    *budget = budget
        .checked_sub(1)
        .ok_or(NameConstraintFailure::BudgetExhausted)?;
    Ok(())
}

fn describe(name: &GeneralName<'_>) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match name {
        GeneralName::Dns(n) => format!("DNS name {:?}", text(n)),
        GeneralName::Email(n) => format!("email {:?}", text(n)),
        GeneralName::Uri(n) => format!("URI {:?}", text(n)),
        GeneralName::Ip(n) => format!("IP address {n:02x?}"),
        GeneralName::Directory(_) => "directory name".to_string(),
        GeneralName::Other(tag) => format!("GeneralName [{tag}]"),
    }
}

struct Subtrees<'a>(DerCursor<'a>);

impl<'a> Iterator for Subtrees<'a> {
    type Item = Result<GeneralName<'a>, NameConstraintFailure>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        Some(self.read())
    }
}

impl<'a> Subtrees<'a> {
    fn read(&mut self) -> Result<GeneralName<'a>, NameConstraintFailure> {
        let subtree = self
            .0
            .expect(tag::SEQUENCE, "GeneralSubtree")
            .map_err(|_| NameConstraintFailure::Malformed("GeneralSubtree"))?;
        let mut c = DerCursor::new(subtree.value);
        let base = c
            .any("GeneralSubtree.base")
            .map_err(|_| NameConstraintFailure::Malformed("GeneralSubtree.base"))?;
        // RFC 5280: minimum MUST be zero (hence absent in DER), maximum MUST be absent.
        if !c.is_empty() {
            return Err(NameConstraintFailure::Malformed(
                "GeneralSubtree with minimum/maximum",
            ));
        }
        Ok(general_name(base)?)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Match {
    Yes,
    No,
    OtherKind,
}

/// `excluding`: the constraint is an excluded subtree, where a wildcard name
/// matches when any name it stands for could (CVE-2025-61727).
fn matches(
    base: &GeneralName<'_>,
    name: &GeneralName<'_>,
    excluding: bool,
) -> Result<Match, NameConstraintFailure> {
    let m = |b: bool| if b { Match::Yes } else { Match::No };
    Ok(match (base, name) {
        // `base` was checked when the subtrees were parsed (`ByKind::parse`).
        (GeneralName::Dns(c), GeneralName::Dns(n)) => {
            let wildcard_base = n.strip_prefix(b"*.");
            m(dns_within(n, c)
                || (excluding && wildcard_base.is_some_and(|b| ends_with_label(c, b))))
        }
        (GeneralName::Ip(c), GeneralName::Ip(n)) => m(ip_within(n, c)?),
        (GeneralName::Email(c), GeneralName::Email(n)) => m(email_within(n, c)),
        (GeneralName::Uri(c), GeneralName::Uri(n)) => match uri_host(n) {
            Some(host) => m(host_within(host, c)),
            // A URI without a host cannot satisfy a host-based constraint.
            None => Match::No,
        },
        (GeneralName::Directory(c), GeneralName::Directory(n)) => m(directory_within(n, c)?),
        (GeneralName::Other(a), GeneralName::Other(b)) if a == b => {
            return Err(NameConstraintFailure::Malformed(
                "name constraint of an unsupported GeneralName form",
            ))
        }
        _ => Match::OtherKind,
    })
}

/// RFC 5280: a DNS name satisfies the constraint when it is the constraint
/// with zero or more labels added on the left. A leading-dot constraint
/// (common in practice) only admits proper subdomains.
fn dns_within(name: &[u8], constraint: &[u8]) -> bool {
    if constraint.is_empty() {
        return true;
    }
    let name = name.strip_prefix(b"*.").map_or(name, |rest| rest);
    name.eq_ignore_ascii_case(constraint) || ends_with_label(name, constraint)
}

fn ends_with_label(name: &[u8], suffix: &[u8]) -> bool {
    if name.len() <= suffix.len() {
        return false;
    }
    let split = name.len() - suffix.len();
    name.get(split..)
        .is_some_and(|t| t.eq_ignore_ascii_case(suffix))
        && name.get(split - 1) == Some(&b'.')
}

/// `host` is the bare host of a URI or the domain of a mailbox.
fn host_within(host: &[u8], constraint: &[u8]) -> bool {
    if let Some(suffix) = constraint.strip_prefix(b".") {
        return ends_with_label(host, suffix);
    }
    host.eq_ignore_ascii_case(constraint)
}

fn email_within(name: &[u8], constraint: &[u8]) -> bool {
    let Some(at) = name.iter().rposition(|b| *b == b'@') else {
        return false;
    };
    let (local, domain) = (&name[..at], &name[at + 1..]);
    if let Some(c_at) = constraint.iter().rposition(|b| *b == b'@') {
        // A full mailbox: local part exact, domain case-insensitive.
        return local == &constraint[..c_at]
            && domain.eq_ignore_ascii_case(&constraint[c_at + 1..]);
    }
    host_within(domain, constraint)
}

fn uri_host(uri: &[u8]) -> Option<&[u8]> {
    let colon = uri.iter().position(|b| *b == b':')?;
    let rest = uri.get(colon + 1..)?.strip_prefix(b"//")?;
    let end = rest
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    let host_port = match authority.iter().rposition(|b| *b == b'@') {
        Some(at) => authority.get(at + 1..)?,
        None => authority,
    };
    if host_port.first() == Some(&b'[') {
        return None; // IP-literal hosts cannot match a DNS-style constraint.
    }
    let host = match host_port.iter().rposition(|b| *b == b':') {
        Some(c) => host_port.get(..c)?,
        None => host_port,
    };
    (!host.is_empty()).then_some(host)
}

fn ip_within(name: &[u8], constraint: &[u8]) -> Result<bool, NameConstraintFailure> {
    let half = constraint.len() / 2;
    if !matches!(constraint.len(), 8 | 32) {
        return Err(NameConstraintFailure::Malformed(
            "iPAddress constraint length",
        ));
    }
    let (addr, mask) = constraint.split_at(half);
    // The mask must be a contiguous prefix (RFC 4632 CIDR).
    let mut seen_zero = false;
    for byte in mask {
        for bit in 0..8 {
            let set = byte & (0x80 >> bit) != 0;
            if set && seen_zero {
                return Err(NameConstraintFailure::Malformed(
                    "iPAddress constraint mask",
                ));
            }
            seen_zero |= !set;
        }
    }
    if !matches!(name.len(), 4 | 16) {
        return Err(NameConstraintFailure::Malformed("iPAddress name length"));
    }
    if name.len() != half {
        return Ok(false);
    }
    Ok(name
        .iter()
        .zip(addr.iter().zip(mask))
        .all(|(n, (a, m))| n & m == a & m))
}

/// The RDNs of `name` begin with all the RDNs of `constraint` (byte-compared).
fn directory_within(name: &[u8], constraint: &[u8]) -> Result<bool, NameConstraintFailure> {
    let seq = |b| {
        crate::x509::der::single(b, tag::SEQUENCE, "Name")
            .map(|t| t.value)
            .map_err(|_| NameConstraintFailure::Malformed("Name"))
    };
    let mut n = DerCursor::new(seq(name)?);
    let mut c = DerCursor::new(seq(constraint)?);
    while !c.is_empty() {
        let want = c
            .any("RDN")
            .map_err(|_| NameConstraintFailure::Malformed("RDN"))?;
        match n.any("RDN") {
            Ok(got) if got.full == want.full => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// The emailAddress attribute values of a Name (RFC 5280 §4.2.1.10: they are
/// constrained by rfc822Name subtrees).
fn subject_email_addresses(name: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let Ok(seq) = crate::x509::der::single(name, tag::SEQUENCE, "Name") else {
        return out;
    };
    let mut rdns = DerCursor::new(seq.value);
    while let Ok(rdn) = rdns.any("RDN") {
        let mut atvs = DerCursor::new(rdn.value);
        while let Ok(atv) = atvs.any("AttributeTypeAndValue") {
            let mut f = DerCursor::new(atv.value);
            if let (Ok(t), Ok(v)) = (f.any("type"), f.any("value")) {
                if t.value == oid::EMAIL_ADDRESS {
                    out.push(v.value);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subtrees() {
        assert!(dns_within(b"a.example.com", b"example.com"));
        assert!(dns_within(b"example.com", b"example.com"));
        assert!(!dns_within(b"badexample.com", b"example.com"));
    }

    #[test]
    fn ip_subtrees() {
        let c = [10, 0, 0, 0, 255, 0, 0, 0];
        assert_eq!(ip_within(&[10, 1, 2, 3], &c), Ok(true));
        assert_eq!(ip_within(&[11, 1, 2, 3], &c), Ok(false));
        assert!(ip_within(&[10, 1, 2, 3], &[10, 0, 0, 0, 255, 0, 255, 0]).is_err());
    }

    #[test]
    fn email_and_uri() {
        assert!(email_within(b"a@example.com", b"example.com"));
        assert!(email_within(b"a@x.example.com", b".example.com"));
        assert!(!email_within(b"a@example.com", b"b@example.com"));
        assert_eq!(
            uri_host(b"spiffe://td.example/ns/a"),
            Some(&b"td.example"[..])
        );
        assert_eq!(uri_host(b"urn:uuid:1234"), None);
        assert_eq!(
            uri_host(b"https://u@h.example:8443/x"),
            Some(&b"h.example"[..])
        );
    }
}
