//! Validation profiles: which structure rules a chain is held to.
//!
//! Path validation has two kinds of rules. *Security* rules decide whether
//! the chain proves what it claims: signatures, algorithms and key sizes,
//! validity, `cA` and `pathLenConstraint`, keyUsage and extendedKeyUsage
//! present without the needed purpose, name constraints, unknown critical
//! extensions, depth. Every profile enforces all of them, always.
//!
//! *Structure* rules ([`ProfileRule`]) say how a conforming CA should have
//! written a certificate — RFC 5280 §4 MUSTs for issuers and the CA/Browser
//! Forum's profile for public web PKI. A relying party loses nothing by not
//! enforcing them: OpenSSL's default verification and rustls-webpki do not,
//! and the PKIs people run (easy-rsa, rcgen, keytool, NSS certutil, old
//! OpenSSL configurations) break several of them. [`Profile::Interop`], the
//! default, enforces only the structure rules one of those two verifiers
//! refuses as well; [`Profile::Strict`] enforces every rule, for operators who
//! control their PKI and want it held to the letter.
//!
//! Trust anchors are inputs (RFC 5280 §6.1.1 (d)): under `Interop` only their
//! name, key and constraints are used; under `Strict` they are held to the
//! same rules as every other CA certificate.

use core::fmt;

use super::cert::{Cert, Version};
use super::extensions::{oid, GeneralName, GeneralNames, KeyUsage};
use super::subject_name::{is_valid_dns_name, is_valid_email};
use super::KeyPurpose;

/// Which structure rules a validator enforces.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// The default: refuse for a structure rule only where OpenSSL's default
    /// verification or rustls-webpki refuses too; every security rule holds.
    #[default]
    Interop,
    /// Every RFC 5280 MUST for conforming CAs and the CA/Browser Forum
    /// structure rules, on every certificate of the path, anchors included.
    Strict,
}

impl Profile {
    /// Whether this profile refuses a certificate that breaks `rule` in
    /// any position of the path.
    pub fn enforces(self, rule: ProfileRule) -> bool {
        match self {
            Self::Strict => true,
            Self::Interop => rule.enforced_by_interop(false),
        }
    }

    /// Whether this profile refuses a path whose certificate in `role`
    /// breaks `rule`.
    pub(crate) fn enforces_for(self, rule: ProfileRule, role: Role) -> bool {
        match self {
            Self::Strict => true,
            Self::Interop => rule.enforced_by_interop(role == Role::Anchor),
        }
    }

    /// The profile's name as configured (`interop` or `strict`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Interop => "interop",
            Self::Strict => "strict",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "interop" => Ok(Self::Interop),
            "strict" => Ok(Self::Strict),
            _ => Err(UnknownProfile),
        }
    }
}

/// A profile name other than `interop` or `strict`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown validation profile (expected \"interop\" or \"strict\")")]
pub struct UnknownProfile;

/// Where a structure rule comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleSource {
    /// A MUST of RFC 5280 for conforming CAs (the section).
    Rfc5280(&'static str),
    /// The CA/Browser Forum Baseline Requirements (the section).
    CabForum(&'static str),
}

impl fmt::Display for RuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rfc5280(s) => write!(f, "RFC 5280 §{s}"),
            Self::CabForum(s) => write!(f, "CA/B Forum BR {s}"),
        }
    }
}

/// One structure rule, as a class: every certificate breaking it is judged
/// the same way, whatever tool made it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProfileRule {
    /// The TBS `signature` algorithm differs from the outer
    /// `signatureAlgorithm` (OpenSSL refuses: an ambiguous signature).
    SignatureAlgorithmMismatch,
    /// The serial number is zero or negative.
    SerialNotPositive,
    /// The serial number is longer than 20 octets.
    SerialTooLong,
    /// The issuer name is empty.
    EmptyIssuer,
    /// A date before 2050 is encoded as GeneralizedTime.
    GeneralizedTimeBefore2050,
    /// A BOOLEAN DEFAULT FALSE (an extension's `critical`, basicConstraints
    /// `cA`) is encoded explicitly, which DER forbids (older CA software
    /// writes it).
    DefaultValueEncoded,
    /// An end-entity certificate is not X.509 v3.
    NotVersion3,
    /// A v3 CA certificate (a trust anchor; an intermediate without `cA` is
    /// refused as a security matter) has no basicConstraints.
    MissingBasicConstraints,
    /// The subject is empty and subjectAltName is absent or not critical.
    EmptySubjectWithoutCriticalSan,
    /// A certificate other than a self-signed one has no
    /// authorityKeyIdentifier.
    MissingAuthorityKeyIdentifier,
    /// authorityKeyIdentifier lacks its keyIdentifier field.
    AuthorityKeyIdentifierWithoutKeyId,
    /// A CA certificate has no subjectKeyIdentifier.
    MissingSubjectKeyIdentifier,
    /// authorityKeyIdentifier is marked critical.
    CriticalAuthorityKeyIdentifier,
    /// subjectKeyIdentifier is marked critical.
    CriticalSubjectKeyIdentifier,
    /// authorityInfoAccess is marked critical.
    CriticalAuthorityInfoAccess,
    /// A CA certificate's basicConstraints is not marked critical.
    BasicConstraintsNotCritical,
    /// subjectAltName is critical although the subject is not empty.
    CriticalSubjectAltNameWithSubject,
    /// An end-entity certificate's extendedKeyUsage is critical.
    CriticalExtendedKeyUsage,
    /// A dNSName is not in preferred name syntax.
    MalformedDnsName,
    /// An iPAddress is neither 4 nor 16 octets.
    MalformedIpAddress,
    /// An rfc822Name is not a mailbox.
    MalformedEmailAddress,
    /// keyCertSign is asserted without basicConstraints `cA`.
    KeyCertSignWithoutCa,
    /// An end-entity certificate asserts `cA` while its keyUsage lacks
    /// keyCertSign (for an issuer the security check
    /// [`IssuerKeyUsageInvalid`](crate::ValidationError::IssuerKeyUsageInvalid)
    /// applies).
    CaWithoutKeyCertSign,
    /// pathLenConstraint is present without `cA`.
    PathLenWithoutCa,
    /// nameConstraints appear in a certificate that is not a CA.
    NameConstraintsWithoutCa,
    /// An end-entity extendedKeyUsage contains anyExtendedKeyUsage.
    AnyExtendedKeyUsageInLeaf,
    /// A root certificate carries extendedKeyUsage.
    ExtendedKeyUsageInRoot,
    /// A root's authorityKeyIdentifier names an issuer or serial, or differs
    /// from its own subjectKeyIdentifier.
    RootAuthorityKeyIdentifierNotOwnKeyId,
    /// A certificate of a server-certificate path lists, beside serverAuth,
    /// a purpose the CA/Browser Forum forbids there (codeSigning,
    /// emailProtection, timeStamping, OCSPSigning, anyExtendedKeyUsage, the
    /// Certificate Transparency precertificate purpose).
    ForbiddenExtendedKeyUsage,
    /// A CRL has no cRLNumber extension.
    CrlWithoutCrlNumber,
    /// A CRL lists the same serial number more than once.
    CrlDuplicateSerial,
    /// A server certificate's subject commonName holds a name in a form that
    /// needs normalising to compare (an IP address in any notation, a domain
    /// name with upper case, an internationalised name as U-label or
    /// A-label) without being a character-for-character copy of one of its
    /// subjectAltName values.
    CommonNameNotInSubjectAltName,
}

impl ProfileRule {
    /// Every rule, in the order of the README table.
    pub const ALL: &'static [ProfileRule] = &[
        Self::SignatureAlgorithmMismatch,
        Self::SerialNotPositive,
        Self::SerialTooLong,
        Self::EmptyIssuer,
        Self::GeneralizedTimeBefore2050,
        Self::DefaultValueEncoded,
        Self::NotVersion3,
        Self::MissingBasicConstraints,
        Self::EmptySubjectWithoutCriticalSan,
        Self::MissingAuthorityKeyIdentifier,
        Self::AuthorityKeyIdentifierWithoutKeyId,
        Self::MissingSubjectKeyIdentifier,
        Self::CriticalAuthorityKeyIdentifier,
        Self::CriticalSubjectKeyIdentifier,
        Self::CriticalAuthorityInfoAccess,
        Self::BasicConstraintsNotCritical,
        Self::CriticalSubjectAltNameWithSubject,
        Self::CriticalExtendedKeyUsage,
        Self::MalformedDnsName,
        Self::MalformedIpAddress,
        Self::MalformedEmailAddress,
        Self::KeyCertSignWithoutCa,
        Self::CaWithoutKeyCertSign,
        Self::PathLenWithoutCa,
        Self::NameConstraintsWithoutCa,
        Self::AnyExtendedKeyUsageInLeaf,
        Self::ExtendedKeyUsageInRoot,
        Self::RootAuthorityKeyIdentifierNotOwnKeyId,
        Self::ForbiddenExtendedKeyUsage,
        Self::CommonNameNotInSubjectAltName,
        Self::CrlWithoutCrlNumber,
        Self::CrlDuplicateSerial,
    ];

    /// Where the rule is written.
    pub fn source(self) -> RuleSource {
        use RuleSource::{CabForum as B, Rfc5280 as R};
        match self {
            Self::SignatureAlgorithmMismatch => R("4.1.1.2"),
            Self::SerialNotPositive | Self::SerialTooLong => R("4.1.2.2"),
            Self::EmptyIssuer => R("4.1.2.4"),
            Self::GeneralizedTimeBefore2050 => R("4.1.2.5"),
            Self::DefaultValueEncoded => R("4.1"),
            Self::NotVersion3 => R("4.1.2.1"),
            Self::MissingBasicConstraints => R("4.2.1.9"),
            Self::ForbiddenExtendedKeyUsage => B("7.1.2.7.10, 7.1.2.10.6"),
            Self::CrlWithoutCrlNumber => R("5.2.3"),
            Self::CrlDuplicateSerial => B("7.2.2"),
            Self::EmptySubjectWithoutCriticalSan => R("4.1.2.6"),
            Self::MissingAuthorityKeyIdentifier
            | Self::AuthorityKeyIdentifierWithoutKeyId
            | Self::CriticalAuthorityKeyIdentifier => R("4.2.1.1"),
            Self::MissingSubjectKeyIdentifier | Self::CriticalSubjectKeyIdentifier => R("4.2.1.2"),
            Self::CriticalAuthorityInfoAccess => R("4.2.2.1"),
            Self::BasicConstraintsNotCritical | Self::PathLenWithoutCa => R("4.2.1.9"),
            Self::CriticalSubjectAltNameWithSubject => B("7.1.2.7.12"),
            Self::CriticalExtendedKeyUsage => B("7.1.2.7.10"),
            Self::MalformedDnsName | Self::MalformedIpAddress | Self::MalformedEmailAddress => {
                R("4.2.1.6")
            }
            Self::KeyCertSignWithoutCa | Self::CaWithoutKeyCertSign => R("4.2.1.3"),
            Self::NameConstraintsWithoutCa => R("4.2.1.10"),
            Self::AnyExtendedKeyUsageInLeaf => B("7.1.2.7.10"),
            Self::ExtendedKeyUsageInRoot => B("7.1.2.1.2"),
            Self::RootAuthorityKeyIdentifierNotOwnKeyId => B("7.1.2.1.3"),
            Self::CommonNameNotInSubjectAltName => B("7.1.4.3"),
        }
    }

    /// Whether the default [`Profile::Interop`] enforces the rule (on a
    /// trust anchor when `anchor`): only where OpenSSL's default
    /// verification or rustls-webpki refuses the same certificate.
    pub fn enforced_by_interop(self, anchor: bool) -> bool {
        match self {
            // OpenSSL's X509_verify refuses a signature whose algorithm
            // differs between the TBS and the envelope; an anchor's own
            // signature is never verified.
            Self::SignatureAlgorithmMismatch => !anchor,
            // Neither OpenSSL nor webpki handles these extensions as critical
            // (both refuse them as unhandled critical extensions), on every
            // certificate including the anchor.
            Self::CriticalAuthorityKeyIdentifier
            | Self::CriticalSubjectKeyIdentifier
            | Self::CriticalAuthorityInfoAccess => true,
            // webpki refuses every CA certificate used as an end entity; the
            // interop profile refuses those whose keyUsage contradicts their
            // cA flag (RFC 5280 and OpenSSL allow the others).
            Self::CaWithoutKeyCertSign => true,
            _ => false,
        }
    }

    /// What the rule requires, for logs and the `verify` command.
    pub fn description(self) -> &'static str {
        match self {
            Self::SignatureAlgorithmMismatch => {
                "signature algorithm differs between tbsCertificate and Certificate"
            }
            Self::SerialNotPositive => "serial number is zero or negative",
            Self::SerialTooLong => "serial number longer than 20 octets",
            Self::EmptyIssuer => "empty issuer name",
            Self::GeneralizedTimeBefore2050 => "GeneralizedTime used for a date before 2050",
            Self::DefaultValueEncoded => "DEFAULT FALSE encoded explicitly (not DER)",
            Self::NotVersion3 => "end-entity certificate is not X.509 v3",
            Self::MissingBasicConstraints => "CA certificate without basicConstraints",
            Self::ForbiddenExtendedKeyUsage => {
                "extendedKeyUsage lists a purpose forbidden beside serverAuth"
            }
            Self::CrlWithoutCrlNumber => "CRL without cRLNumber",
            Self::CrlDuplicateSerial => "CRL lists a serial number more than once",
            Self::EmptySubjectWithoutCriticalSan => {
                "empty subject without a critical subjectAltName"
            }
            Self::MissingAuthorityKeyIdentifier => "no authorityKeyIdentifier",
            Self::AuthorityKeyIdentifierWithoutKeyId => {
                "authorityKeyIdentifier without keyIdentifier"
            }
            Self::MissingSubjectKeyIdentifier => "CA certificate without subjectKeyIdentifier",
            Self::CriticalAuthorityKeyIdentifier => "authorityKeyIdentifier marked critical",
            Self::CriticalSubjectKeyIdentifier => "subjectKeyIdentifier marked critical",
            Self::CriticalAuthorityInfoAccess => "authorityInfoAccess marked critical",
            Self::BasicConstraintsNotCritical => {
                "basicConstraints not critical in a CA certificate"
            }
            Self::CriticalSubjectAltNameWithSubject => {
                "subjectAltName critical although the subject is not empty"
            }
            Self::CriticalExtendedKeyUsage => "end-entity extendedKeyUsage marked critical",
            Self::MalformedDnsName => "dNSName not in preferred name syntax",
            Self::MalformedIpAddress => "iPAddress is neither 4 nor 16 octets",
            Self::MalformedEmailAddress => "rfc822Name is not a valid mailbox",
            Self::KeyCertSignWithoutCa => "keyCertSign asserted without basicConstraints cA",
            Self::CaWithoutKeyCertSign => {
                "end-entity basicConstraints cA asserted while keyUsage lacks keyCertSign"
            }
            Self::PathLenWithoutCa => "pathLenConstraint without cA",
            Self::NameConstraintsWithoutCa => "nameConstraints in a non-CA certificate",
            Self::AnyExtendedKeyUsageInLeaf => {
                "end-entity extendedKeyUsage contains anyExtendedKeyUsage"
            }
            Self::ExtendedKeyUsageInRoot => "root certificate carries extendedKeyUsage",
            Self::RootAuthorityKeyIdentifierNotOwnKeyId => {
                "root authorityKeyIdentifier is not its own keyIdentifier alone"
            }
            Self::CommonNameNotInSubjectAltName => {
                "server certificate commonName is not a character-for-character copy of a subjectAltName value"
            }
        }
    }
}

impl fmt::Display for ProfileRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.source())
    }
}

/// Which role a certificate plays in the path, for the profile rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Leaf,
    Intermediate,
    Anchor,
}

/// The first rule `cert` breaks among those `enforced` selects, in
/// [`ProfileRule::ALL`] order. A rule's condition is only evaluated when it
/// is enforced, so `Interop` pays for a few comparisons on the hot path.
pub(crate) fn first_violation(
    cert: &Cert<'_>,
    role: Role,
    purpose: Option<&KeyPurpose>,
    enforced: &dyn Fn(ProfileRule) -> bool,
) -> Option<ProfileRule> {
    let mut found = None;
    // `visit` reports only the rules `enforced` selects; the first one ends it.
    visit(
        cert,
        role,
        purpose,
        &mut |rule| {
            found = Some(rule);
            true
        },
        enforced,
    );
    found
}

/// Every rule `cert` breaks (trust-store warnings, the `verify` command).
pub(crate) fn violations(
    cert: &Cert<'_>,
    role: Role,
    purpose: Option<&KeyPurpose>,
) -> Vec<ProfileRule> {
    let mut out = Vec::new();
    visit(
        cert,
        role,
        purpose,
        &mut |rule| {
            out.push(rule);
            false
        },
        &|_| true,
    );
    out
}

/// Calls `report` for each broken rule `wanted` selects until it returns
/// `true` (stop).
fn visit(
    cert: &Cert<'_>,
    role: Role,
    purpose: Option<&KeyPurpose>,
    report: &mut dyn FnMut(ProfileRule) -> bool,
    wanted: &dyn Fn(ProfileRule) -> bool,
) {
    use ProfileRule as P;
    macro_rules! rule {
        ($rule:expr, $broken:expr) => {
            if wanted($rule) && $broken && report($rule) {
                return;
            }
        };
    }
    let ext = &cert.extensions;
    let is_ca = ext.basic_constraints.is_some_and(|b| b.ca);
    let is_v3 = cert.version == Version::V3;
    let self_signed_root = role == Role::Anchor && cert.is_self_issued();
    let negative = cert.serial.first().is_some_and(|b| b & 0x80 != 0);

    rule!(
        P::SignatureAlgorithmMismatch,
        cert.tbs_signature_alg != cert.signature_alg
    );
    rule!(
        P::SerialNotPositive,
        negative || cert.serial.iter().all(|b| *b == 0)
    );
    // Positive serials may carry a leading sign byte: 20 octets of value.
    rule!(
        P::SerialTooLong,
        cert.serial.len() > 21 || (cert.serial.len() == 21 && cert.serial.first() != Some(&0))
    );
    rule!(P::EmptyIssuer, name_is_empty(cert.issuer));
    rule!(
        P::GeneralizedTimeBefore2050,
        cert.generalized_time_before_2050
    );
    rule!(
        P::EmptySubjectWithoutCriticalSan,
        cert.subject_is_empty()
            && (ext.subject_alt_name.is_none() || !ext.subject_alt_name_critical)
    );
    // The authorityKeyIdentifier leads path building to the issuer; an
    // anchor ends the path, so it needs none (nor does a self-signed root).
    rule!(
        P::MissingAuthorityKeyIdentifier,
        is_v3 && !ext.has_authority_key_id && role != Role::Anchor
    );
    rule!(
        P::AuthorityKeyIdentifierWithoutKeyId,
        ext.has_authority_key_id && ext.authority_key_id.is_none() && role != Role::Anchor
    );
    rule!(
        P::MissingSubjectKeyIdentifier,
        is_ca && ext.subject_key_id.is_none()
    );
    rule!(
        P::CriticalAuthorityKeyIdentifier,
        ext.critical(oid::AUTHORITY_KEY_ID)
    );
    rule!(
        P::CriticalSubjectKeyIdentifier,
        ext.critical(oid::SUBJECT_KEY_ID)
    );
    rule!(
        P::CriticalAuthorityInfoAccess,
        ext.critical(oid::AUTHORITY_INFO_ACCESS)
    );
    rule!(
        P::BasicConstraintsNotCritical,
        ext.basic_constraints.is_some_and(|b| b.ca && !b.critical)
    );
    rule!(
        P::CriticalSubjectAltNameWithSubject,
        ext.subject_alt_name_critical && !cert.subject_is_empty()
    );
    rule!(
        P::CriticalExtendedKeyUsage,
        role == Role::Leaf && ext.critical(oid::EXT_KEY_USAGE)
    );
    let san_rules = [
        P::MalformedDnsName,
        P::MalformedIpAddress,
        P::MalformedEmailAddress,
    ];
    if let Some(san) = ext
        .subject_alt_name
        .filter(|_| san_rules.iter().any(|r| wanted(*r)))
    {
        for name in GeneralNames::new(san) {
            match name {
                Ok(GeneralName::Dns(d)) => rule!(P::MalformedDnsName, !is_valid_dns_name(d, true)),
                Ok(GeneralName::Ip(ip)) => {
                    rule!(P::MalformedIpAddress, !matches!(ip.len(), 4 | 16))
                }
                Ok(GeneralName::Email(e)) => {
                    rule!(P::MalformedEmailAddress, !is_valid_email(e))
                }
                _ => {}
            }
        }
    }
    let key_cert_sign = ext.key_usage.map(|ku| ku.has(KeyUsage::KEY_CERT_SIGN));
    rule!(
        P::KeyCertSignWithoutCa,
        key_cert_sign == Some(true) && !is_ca && is_v3
    );
    rule!(
        P::CaWithoutKeyCertSign,
        role == Role::Leaf && is_ca && key_cert_sign == Some(false)
    );
    rule!(
        P::PathLenWithoutCa,
        ext.basic_constraints
            .is_some_and(|b| b.path_len.is_some() && !b.ca)
    );
    rule!(
        P::NameConstraintsWithoutCa,
        ext.name_constraints.is_some() && !is_ca
    );
    rule!(
        P::AnyExtendedKeyUsageInLeaf,
        role == Role::Leaf && ext.eku_contains(oid::ANY_EKU) == Some(true)
    );
    rule!(
        P::ExtendedKeyUsageInRoot,
        self_signed_root && ext.ext_key_usage.is_some()
    );
    rule!(
        P::RootAuthorityKeyIdentifierNotOwnKeyId,
        self_signed_root
            && ext.has_authority_key_id
            && (ext.authority_key_id_names_issuer
                || match (ext.authority_key_id, ext.subject_key_id) {
                    (Some(aki), Some(ski)) => aki != ski,
                    (None, _) => true,
                    (Some(_), None) => false,
                })
    );
    rule!(
        P::ForbiddenExtendedKeyUsage,
        purpose == Some(&KeyPurpose::ServerAuth)
            && ext.eku_contains(oid::KP_SERVER_AUTH) == Some(true)
            && FORBIDDEN_BESIDE_SERVER_AUTH
                .iter()
                .any(|kp| ext.eku_contains(kp) == Some(true))
    );
    rule!(
        P::CommonNameNotInSubjectAltName,
        role == Role::Leaf
            && purpose == Some(&KeyPurpose::ServerAuth)
            && !common_names_in_san(cert)
    );
}

/// Key purposes CA/B Forum BR 7.1.2.7.10 (subscriber) and 7.1.2.10.6 (CA)
/// forbid in a server-certificate path.
const FORBIDDEN_BESIDE_SERVER_AUTH: [&[u8]; 6] = [
    // id-kp-codeSigning, emailProtection, timeStamping, OCSPSigning
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03],
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04],
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08],
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09],
    oid::ANY_EKU,
    // 1.3.6.1.4.1.11129.2.4.4, the RFC 6962 precertificate signing purpose
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x04],
];

fn name_is_empty(name: &[u8]) -> bool {
    super::der::single(name, super::der::tag::SEQUENCE, "name")
        .map(|t| t.value.is_empty())
        .unwrap_or(true)
}

/// CA/B Forum BR 7.1.4.3: a commonName that is an FQDN or an IP address is
/// a character-for-character copy of a subjectAltName value (a dNSName, or
/// an iPAddress in its canonical text: RFC 3986 dotted decimal, RFC 5952 for
/// IPv6), with P-labels never converted to Unicode. The rule is applied to
/// names whose form makes a look-alike possible — IP literals in any
/// notation, upper case, Unicode or A-labels — since a lower-case ASCII
/// commonName is read by nobody as more than a label.
fn common_names_in_san(cert: &Cert<'_>) -> bool {
    let Some(cns) = super::name::common_names(cert.subject) else {
        return true; // an unreadable subject is refused elsewhere
    };
    cns.iter().filter(|cn| needs_exact_copy(cn)).all(|cn| {
        let Some(san) = cert.extensions.subject_alt_name else {
            return false;
        };
        GeneralNames::new(san).any(|name| match name {
            Ok(GeneralName::Dns(d)) => d == cn.as_bytes(),
            Ok(GeneralName::Ip(ip)) => ip_text(ip).is_some_and(|t| t == *cn),
            _ => false,
        })
    })
}

fn needs_exact_copy(cn: &str) -> bool {
    let ip_like = |s: &str| {
        let v4 = s.split('.').all(|part| {
            let digits = part
                .strip_prefix("0x")
                .or_else(|| part.strip_prefix("0X"))
                .map_or((part, 10), |hex| (hex, 16));
            !digits.0.is_empty() && digits.0.chars().all(|c| c.is_digit(digits.1))
        });
        let v6 = s.contains(':') && s.parse::<std::net::Ipv6Addr>().is_ok();
        v4 || v6
    };
    // A domain name: two or more non-empty labels.
    let domain_like = cn.contains('.') && cn.split('.').all(|label| !label.is_empty());
    ip_like(cn)
        || (domain_like
            && (cn.chars().any(|c| c.is_ascii_uppercase() || !c.is_ascii())
                || cn.split('.').any(|label| {
                    label
                        .get(..4)
                        .is_some_and(|p| p.eq_ignore_ascii_case("xn--"))
                })))
}

fn ip_text(octets: &[u8]) -> Option<String> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        return Some(Ipv4Addr::from(v4).to_string());
    }
    <[u8; 16]>::try_from(octets)
        .ok()
        .map(|v6| Ipv6Addr::from(v6).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's table is the operator's reference: one row per rule,
    /// with its source and what each profile does.
    #[test]
    fn readme_table_lists_every_rule_with_its_source_and_both_profiles() {
        let readme = include_str!("../../README.md");
        for rule in ProfileRule::ALL {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| {}", rule.description())))
                .unwrap_or_else(|| panic!("README has no row for {rule:?}"));
            assert!(row.contains(&rule.source().to_string()), "{row}");
            let interop = row.split('|').nth(3).unwrap_or_default().trim();
            assert_eq!(
                interop.starts_with("refused"),
                rule.enforced_by_interop(false),
                "{row}"
            );
        }
    }

    #[test]
    fn profiles_parse_and_print_as_configured() {
        for p in [Profile::Interop, Profile::Strict] {
            assert_eq!(p.name().parse::<Profile>(), Ok(p));
        }
        assert!("lenient".parse::<Profile>().is_err());
    }

    #[test]
    fn commonname_forms_that_need_an_exact_copy() {
        for cn in [
            "0xC0A80101",
            "192.168.001.001",
            "2001:0db8:0000:0000:0000:0000:0000:0001",
            "Example.COM",
            "xn--nxasmq6b.com",
            "test-測試.com",
        ] {
            assert!(needs_exact_copy(cn), "{cn}");
        }
        for cn in [
            "example.com",
            "alice",
            "x509-limbo-intermediate-pathlen-None",
            "Alice Smith",
        ] {
            assert!(!needs_exact_copy(cn), "{cn}");
        }
    }
}
