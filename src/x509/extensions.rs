//! The certificate extensions path validation understands (RFC 5280 §4.2).
//!
//! Each value is checked for well-formedness when the certificate is parsed;
//! lists (EKU, SAN, name constraints) stay borrowed and are walked on demand.

use super::der::{check_integer_encoding, CertParseError};
use super::der::{context, single, tag, DerCursor, Tlv};

/// Encoded OID contents of the extensions and key purposes used here.
pub(crate) mod oid {
    pub(crate) const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    pub(crate) const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    pub(crate) const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    pub(crate) const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    pub(crate) const ISSUER_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x12];
    pub(crate) const NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x1e];
    pub(crate) const SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
    pub(crate) const AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
    pub(crate) const CERTIFICATE_POLICIES: &[u8] = &[0x55, 0x1d, 0x20];
    pub(crate) const POLICY_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x24];
    pub(crate) const CRL_DISTRIBUTION_POINTS: &[u8] = &[0x55, 0x1d, 0x1f];
    pub(crate) const FRESHEST_CRL: &[u8] = &[0x55, 0x1d, 0x2e];
    pub(crate) const AUTHORITY_INFO_ACCESS: &[u8] =
        &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
    pub(crate) const SUBJECT_INFO_ACCESS: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x0b];
    /// id-kp-serverAuth 1.3.6.1.5.5.7.3.1
    pub(crate) const KP_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
    /// id-kp-clientAuth 1.3.6.1.5.5.7.3.2
    pub(crate) const KP_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
    /// anyExtendedKeyUsage 2.5.29.37.0
    pub(crate) const ANY_EKU: &[u8] = &[0x55, 0x1d, 0x25, 0x00];
    /// emailAddress 1.2.840.113549.1.9.1 (PKCS #9), constrained like rfc822Name.
    pub(crate) const EMAIL_ADDRESS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
}

/// `basicConstraints` (RFC 5280 §4.2.1.9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BasicConstraints {
    pub(crate) ca: bool,
    pub(crate) path_len: Option<u64>,
    pub(crate) critical: bool,
}

/// `keyUsage` bits, bit `n` of the ASN.1 BIT STRING stored as `1 << n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyUsage(pub(crate) u16);

impl KeyUsage {
    pub(crate) const DIGITAL_SIGNATURE: u16 = 1 << 0;
    pub(crate) const KEY_CERT_SIGN: u16 = 1 << 5;

    pub(crate) fn has(self, bits: u16) -> bool {
        self.0 & bits == bits
    }
}

/// The extensions of one certificate.
#[derive(Clone, Debug, Default)]
pub(crate) struct Extensions<'a> {
    pub(crate) basic_constraints: Option<BasicConstraints>,
    pub(crate) key_usage: Option<KeyUsage>,
    /// Contents of the EKU SEQUENCE OF KeyPurposeId.
    pub(crate) ext_key_usage: Option<&'a [u8]>,
    /// Contents of the SAN SEQUENCE OF GeneralName.
    pub(crate) subject_alt_name: Option<&'a [u8]>,
    pub(crate) subject_alt_name_critical: bool,
    /// The whole subjectAltName extension value (its GeneralNames SEQUENCE).
    pub(crate) subject_alt_name_der: Option<&'a [u8]>,
    /// Contents of the NameConstraints SEQUENCE.
    pub(crate) name_constraints: Option<&'a [u8]>,
    pub(crate) subject_key_id: Option<&'a [u8]>,
    /// `authorityKeyIdentifier` is present (with or without `keyIdentifier`).
    pub(crate) has_authority_key_id: bool,
    pub(crate) authority_key_id: Option<&'a [u8]>,
    /// `authorityKeyIdentifier` carries `authorityCertIssuer` or
    /// `authorityCertSerialNumber`.
    pub(crate) authority_key_id_names_issuer: bool,
    /// Contents of the AuthorityInfoAccess SEQUENCE.
    pub(crate) authority_info_access: Option<&'a [u8]>,
    /// The OID of the first critical extension this crate does not process.
    pub(crate) unsupported_critical: Option<&'a [u8]>,
    /// A BOOLEAN DEFAULT FALSE (an extension's `critical`, basicConstraints
    /// `cA`) is encoded explicitly, which DER forbids.
    pub(crate) default_value_encoded: bool,
    /// policyConstraints is present (certificate policies are not processed,
    /// so its requirements cannot be honoured).
    pub(crate) policy_constraints: bool,
    /// Which of the extensions in [`CRITICALITY_TRACKED`] are marked critical.
    pub(crate) critical_flags: u8,
}

/// Extensions whose criticality the structure rules look at.
const CRITICALITY_TRACKED: [&[u8]; 4] = [
    oid::AUTHORITY_KEY_ID,
    oid::SUBJECT_KEY_ID,
    oid::AUTHORITY_INFO_ACCESS,
    oid::EXT_KEY_USAGE,
];

impl<'a> Extensions<'a> {
    /// Parses the contents of the `Extensions` SEQUENCE.
    pub(crate) fn parse(input: &'a [u8]) -> Result<Self, CertParseError> {
        let mut out = Self::default();
        let mut seen: [&[u8]; 24] = [&[]; 24];
        let mut seen_len = 0usize;
        let mut cursor = DerCursor::new(input);
        if cursor.is_empty() {
            // RFC 5280 §4.1: Extensions ::= SEQUENCE SIZE (1..MAX).
            return Err(CertParseError("extensions (empty SEQUENCE)"));
        }
        while !cursor.is_empty() {
            let ext = cursor.expect(tag::SEQUENCE, "Extension")?;
            let mut e = DerCursor::new(ext.value);
            let id = e.expect(tag::OID, "extnID")?.value;
            let critical = match e.optional(tag::BOOLEAN, "critical")? {
                None => false,
                Some(b) => match b.value {
                    [0xff] => true,
                    // DER never encodes the DEFAULT FALSE, but the value is
                    // unambiguous and OpenSSL and webpki read it: a
                    // structure rule, not a parse error.
                    [0x00] => {
                        out.default_value_encoded = true;
                        false
                    }
                    _ => return Err(CertParseError("critical (not a DER BOOLEAN)")),
                },
            };
            let value = e.expect(tag::OCTET_STRING, "extnValue")?.value;
            e.finish("Extension (trailing data)")?;

            // RFC 5280 §4.2: at most one instance of each extension.
            if seen[..seen_len].contains(&id) {
                return Err(CertParseError("duplicate extension"));
            }
            if let Some(slot) = seen.get_mut(seen_len) {
                *slot = id;
                seen_len += 1;
            } else {
                return Err(CertParseError("too many extensions"));
            }
            out.absorb(id, critical, value)?;
        }
        Ok(out)
    }

    fn absorb(
        &mut self,
        id: &'a [u8],
        critical: bool,
        value: &'a [u8],
    ) -> Result<(), CertParseError> {
        if critical {
            if let Some(i) = CRITICALITY_TRACKED.iter().position(|t| *t == id) {
                self.critical_flags |= 1 << i;
            }
        }
        match id {
            oid::BASIC_CONSTRAINTS => {
                let (bc, explicit_false) = parse_basic_constraints(value, critical)?;
                self.basic_constraints = Some(bc);
                self.default_value_encoded |= explicit_false;
            }
            oid::KEY_USAGE => self.key_usage = Some(parse_key_usage(value)?),
            oid::EXT_KEY_USAGE => {
                let seq = single(value, tag::SEQUENCE, "extKeyUsage")?;
                let mut c = DerCursor::new(seq.value);
                if c.is_empty() {
                    return Err(CertParseError("extKeyUsage (empty)"));
                }
                while !c.is_empty() {
                    c.expect(tag::OID, "extKeyUsage KeyPurposeId")?;
                }
                self.ext_key_usage = Some(seq.value);
            }
            oid::SUBJECT_ALT_NAME => {
                let seq = single(value, tag::SEQUENCE, "subjectAltName")?;
                if seq.value.is_empty() {
                    return Err(CertParseError("subjectAltName (empty)"));
                }
                for name in GeneralNames::new(seq.value) {
                    name?;
                }
                self.subject_alt_name = Some(seq.value);
                self.subject_alt_name_der = Some(value);
                self.subject_alt_name_critical = critical;
            }
            oid::NAME_CONSTRAINTS => {
                let seq = single(value, tag::SEQUENCE, "nameConstraints")?;
                self.name_constraints = Some(seq.value);
            }
            oid::SUBJECT_KEY_ID => {
                self.subject_key_id =
                    Some(single(value, tag::OCTET_STRING, "subjectKeyIdentifier")?.value);
            }
            oid::AUTHORITY_KEY_ID => {
                let seq = single(value, tag::SEQUENCE, "authorityKeyIdentifier")?;
                let mut c = DerCursor::new(seq.value);
                self.authority_key_id = c
                    .optional(context(0, false), "authorityKeyIdentifier.keyIdentifier")?
                    .map(|t| t.value);
                let issuer = c.optional(
                    context(1, true),
                    "authorityKeyIdentifier.authorityCertIssuer",
                )?;
                let serial = c.optional(
                    context(2, false),
                    "authorityKeyIdentifier.authorityCertSerialNumber",
                )?;
                c.finish("authorityKeyIdentifier (trailing data)")?;
                self.has_authority_key_id = true;
                self.authority_key_id_names_issuer = issuer.is_some() || serial.is_some();
            }
            oid::AUTHORITY_INFO_ACCESS => {
                self.authority_info_access =
                    Some(single(value, tag::SEQUENCE, "authorityInfoAccess")?.value);
            }
            // Without policy constraints in the path (any present and critical
            // is refused below), RFC 5280 §6.1 policy processing with
            // initial-any-policy always succeeds, so policies need no state.
            oid::CERTIFICATE_POLICIES => {
                single(value, tag::SEQUENCE, "certificatePolicies")?;
            }
            // RFC 5280 §6.1 policy processing is not implemented: a path
            // carrying policyConstraints is refused whatever its criticality
            // (OpenSSL enforces them), rather than accepted unconstrained.
            oid::POLICY_CONSTRAINTS => self.policy_constraints = true,
            oid::ISSUER_ALT_NAME
            | oid::CRL_DISTRIBUTION_POINTS
            | oid::FRESHEST_CRL
            | oid::SUBJECT_INFO_ACCESS => {}
            _ => {
                if critical && self.unsupported_critical.is_none() {
                    self.unsupported_critical = Some(id);
                }
            }
        }
        Ok(())
    }

    /// Whether `id` (one of the extensions whose criticality the structure
    /// rules examine) is present and marked critical.
    pub(crate) fn critical(&self, id: &[u8]) -> bool {
        CRITICALITY_TRACKED
            .iter()
            .position(|t| *t == id)
            .is_some_and(|i| self.critical_flags & (1 << i) != 0)
    }

    /// Iterates the KeyPurposeId OIDs of the EKU extension, if present.
    pub(crate) fn eku_contains(&self, purpose: &[u8]) -> Option<bool> {
        let list = self.ext_key_usage?;
        let mut c = DerCursor::new(list);
        while let Ok(t) = c.any("KeyPurposeId") {
            if t.value == purpose {
                return Some(true);
            }
        }
        Some(false)
    }
}

/// basicConstraints, and whether its `cA` was encoded as an explicit FALSE
/// (the DEFAULT, which DER omits).
fn parse_basic_constraints(
    value: &[u8],
    critical: bool,
) -> Result<(BasicConstraints, bool), CertParseError> {
    let seq = single(value, tag::SEQUENCE, "basicConstraints")?;
    let mut c = DerCursor::new(seq.value);
    let mut explicit_false = false;
    let ca = match c.optional(tag::BOOLEAN, "basicConstraints.cA")? {
        None => false,
        Some(b) => match b.value {
            [0xff] => true,
            [0x00] => {
                explicit_false = true;
                false
            }
            _ => return Err(CertParseError("basicConstraints.cA (not a DER BOOLEAN)")),
        },
    };
    let path_len = match c.optional(tag::INTEGER, "basicConstraints.pathLenConstraint")? {
        None => None,
        Some(i) => {
            check_integer_encoding(i.value).ok_or(CertParseError("pathLenConstraint"))?;
            if i.value.first().is_some_and(|b| b & 0x80 != 0) || i.value.len() > 8 {
                return Err(CertParseError("pathLenConstraint (negative or too large)"));
            }
            Some(
                i.value
                    .iter()
                    .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
            )
        }
    };
    c.finish("basicConstraints (trailing data)")?;
    Ok((
        BasicConstraints {
            ca,
            path_len,
            critical,
        },
        explicit_false,
    ))
}

fn parse_key_usage(value: &[u8]) -> Result<KeyUsage, CertParseError> {
    let bits = single(value, tag::BIT_STRING, "keyUsage")?;
    let (unused, octets) = bits
        .value
        .split_first()
        .ok_or(CertParseError("keyUsage (empty BIT STRING)"))?;
    if *unused > 7 || octets.len() > 2 || octets.is_empty() {
        return Err(CertParseError("keyUsage (malformed BIT STRING)"));
    }
    let mut word = 0u16;
    for (i, byte) in octets.iter().enumerate() {
        for bit in 0..8u16 {
            if byte & (0x80 >> bit) != 0 {
                word |= 1 << (u16::try_from(i).unwrap_or(0) * 8 + bit);
            }
        }
    }
    if word == 0 {
        // RFC 5280 §4.2.1.3: at least one bit MUST be set.
        return Err(CertParseError("keyUsage (no bit set)"));
    }
    Ok(KeyUsage(word))
}

/// One `GeneralName` (RFC 5280 §4.2.1.6), borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GeneralName<'a> {
    /// `rfc822Name` IA5String.
    Email(&'a [u8]),
    /// `dNSName` IA5String.
    Dns(&'a [u8]),
    /// `directoryName`: the full Name encoding.
    Directory(&'a [u8]),
    /// `uniformResourceIdentifier` IA5String.
    Uri(&'a [u8]),
    /// `iPAddress`: 4 or 16 octets in a SAN; 8 or 32 (address + mask) in a constraint.
    Ip(&'a [u8]),
    /// `otherName`, `x400Address`, `ediPartyName`, `registeredID`.
    Other(u8),
}

/// Iterator over the GeneralName TLVs of a SEQUENCE's contents.
pub(crate) struct GeneralNames<'a> {
    cursor: DerCursor<'a>,
    failed: bool,
}

impl<'a> GeneralNames<'a> {
    pub(crate) fn new(contents: &'a [u8]) -> Self {
        Self {
            cursor: DerCursor::new(contents),
            failed: false,
        }
    }
}

impl<'a> Iterator for GeneralNames<'a> {
    type Item = Result<GeneralName<'a>, CertParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.cursor.is_empty() {
            return None;
        }
        let item = self
            .cursor
            .any("GeneralName")
            .map_err(CertParseError::from)
            .and_then(general_name);
        self.failed = item.is_err();
        Some(item)
    }
}

pub(crate) fn general_name(t: Tlv<'_>) -> Result<GeneralName<'_>, CertParseError> {
    if t.tag & 0xc0 != 0x80 {
        return Err(CertParseError("GeneralName (not context-specific)"));
    }
    let number = t.tag & 0x1f;
    let constructed = t.tag & 0x20 != 0;
    // String forms, iPAddress and registeredID are primitive; otherName,
    // x400Address, directoryName ([4] EXPLICIT) and ediPartyName constructed.
    let must_be_constructed = matches!(number, 0 | 3 | 4 | 5);
    if constructed != must_be_constructed {
        return Err(CertParseError("GeneralName (wrong constructed bit)"));
    }
    let ia5 = |v: &[u8]| -> Result<(), CertParseError> {
        if v.is_ascii() {
            Ok(())
        } else {
            Err(CertParseError("GeneralName (IA5String not ASCII)"))
        }
    };
    Ok(match number {
        1 => {
            ia5(t.value)?;
            GeneralName::Email(t.value)
        }
        2 => {
            ia5(t.value)?;
            GeneralName::Dns(t.value)
        }
        4 => GeneralName::Directory(single(t.value, tag::SEQUENCE, "directoryName")?.full),
        6 => {
            ia5(t.value)?;
            GeneralName::Uri(t.value)
        }
        7 => GeneralName::Ip(t.value),
        // otherName [0], x400Address [3], ediPartyName [5], registeredID [8].
        other @ (0 | 3 | 5 | 8) => GeneralName::Other(other),
        _ => return Err(CertParseError("GeneralName (unknown tag)")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Extension SEQUENCE: extnID, optional critical BOOLEAN, extnValue.
    fn extension(id: &[u8], critical: Option<u8>, value: &[u8]) -> Vec<u8> {
        let mut body = vec![0x06, u8::try_from(id.len()).unwrap()];
        body.extend_from_slice(id);
        if let Some(b) = critical {
            body.extend_from_slice(&[0x01, 0x01, b]);
        }
        body.push(0x04);
        body.push(u8::try_from(value.len()).unwrap());
        body.extend_from_slice(value);
        let mut out = vec![0x30, u8::try_from(body.len()).unwrap()];
        out.extend(body);
        out
    }

    #[test]
    fn an_explicit_default_false_is_read_and_remembered() {
        // basicConstraints { cA FALSE } with critical FALSE written out, as
        // older CA software encodes them.
        let bc = extension(
            oid::BASIC_CONSTRAINTS,
            Some(0x00),
            &[0x30, 0x03, 0x01, 0x01, 0x00],
        );
        let ext = Extensions::parse(&bc).expect("explicit FALSE values are readable");
        assert!(ext.default_value_encoded);
        let bc = ext.basic_constraints.expect("basicConstraints");
        assert!(!bc.ca && !bc.critical);

        let der = extension(oid::BASIC_CONSTRAINTS, Some(0xff), &[0x30, 0x00]);
        let ext = Extensions::parse(&der).expect("DER basicConstraints");
        assert!(!ext.default_value_encoded);

        // A BOOLEAN that is neither 00 nor FF is not DER at all.
        let bad = extension(oid::BASIC_CONSTRAINTS, Some(0x01), &[0x30, 0x00]);
        assert!(Extensions::parse(&bad).is_err());
    }
}
