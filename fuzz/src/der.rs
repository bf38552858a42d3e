//! A small, independent DER reader for the harnesses: rebuilding mutated
//! certificates and inspecting them for the differential exception list. It
//! deliberately shares no code with `edge_mtls`.

/// One element: tag, contents, whole encoding.
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    /// Identifier octet.
    pub tag: u8,
    /// Contents.
    pub value: &'a [u8],
    /// Header and contents.
    pub full: &'a [u8],
}

/// Reads one element from the front of `input`, returning it and the rest.
pub fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        rest = &rest[n..];
        bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b))
    };
    let value = rest.get(..len)?;
    let header = input.len() - rest.len();
    let full = &input[..header + len];
    Some((Tlv { tag, value, full }, &rest[len..]))
}

/// Every element of a run of elements (stops at the first malformed one).
pub fn elements(mut input: &[u8]) -> Vec<Tlv<'_>> {
    let mut out = Vec::new();
    while let Some((t, rest)) = read(input) {
        out.push(t);
        input = rest;
    }
    out
}

/// Exactly one element spanning `input`.
pub fn single(input: &[u8]) -> Option<Tlv<'_>> {
    match read(input)? {
        (t, []) => Some(t),
        _ => None,
    }
}

/// A DER header for `tag` and `len`.
pub fn header(tag: u8, len: usize) -> Vec<u8> {
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out
}

/// `tag` wrapped around `contents`.
pub fn wrap(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = header(tag, contents.len());
    out.extend_from_slice(contents);
    out
}

/// The three parts of a certificate envelope.
pub struct Envelope<'a> {
    /// tbsCertificate, whole encoding.
    pub tbs: Tlv<'a>,
    /// signatureAlgorithm, whole encoding.
    pub sig_alg: Tlv<'a>,
    /// signatureValue BIT STRING, whole encoding.
    pub sig: Tlv<'a>,
}

/// Splits a certificate into its envelope (no further checks).
pub fn envelope(cert: &[u8]) -> Option<Envelope<'_>> {
    let outer = single(cert)?;
    if outer.tag != 0x30 {
        return None;
    }
    let e = elements(outer.value);
    match e.as_slice() {
        [tbs, sig_alg, sig] if tbs.tag == 0x30 && sig_alg.tag == 0x30 && sig.tag == 0x03 => {
            Some(Envelope {
                tbs: *tbs,
                sig_alg: *sig_alg,
                sig: *sig,
            })
        }
        _ => None,
    }
}

/// Builds a certificate from TBS contents, the signature AlgorithmIdentifier
/// encoding and raw signature octets.
pub fn assemble(tbs_contents: &[u8], sig_alg_full: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(signature);
    let mut body = wrap(0x30, tbs_contents);
    body.extend_from_slice(sig_alg_full);
    body.extend_from_slice(&wrap(0x03, &bits));
    wrap(0x30, &body)
}

/// One extension.
#[derive(Clone, Copy, Debug)]
pub struct Ext<'a> {
    /// OID contents.
    pub oid: &'a [u8],
    /// Whether `critical` is encoded as TRUE.
    pub critical: bool,
    /// extnValue contents.
    pub value: &'a [u8],
}

/// What the exception list needs to know about a certificate.
#[derive(Debug, Default)]
pub struct Inspected<'a> {
    /// The `[0]` version field is present.
    pub has_version: bool,
    /// issuerUniqueID or subjectUniqueID is present.
    pub has_unique_ids: bool,
    /// Issuer Name, whole encoding.
    pub issuer: &'a [u8],
    /// Subject Name, whole encoding.
    pub subject: &'a [u8],
    /// SubjectPublicKeyInfo, whole encoding.
    pub spki: &'a [u8],
    /// Extensions in order.
    pub extensions: Vec<Ext<'a>>,
    /// The whole tbsCertificate.
    pub tbs: &'a [u8],
    /// signatureAlgorithm contents.
    pub sig_alg: &'a [u8],
    /// Signature octets (after the unused-bits octet).
    pub signature: &'a [u8],
}

/// Inspects a certificate leniently; `None` when the layout is unreadable.
pub fn inspect(cert: &[u8]) -> Option<Inspected<'_>> {
    let env = envelope(cert)?;
    let mut out = Inspected {
        tbs: env.tbs.full,
        sig_alg: env.sig_alg.value,
        signature: env.sig.value.get(1..)?,
        ..Inspected::default()
    };
    let mut fields = elements(env.tbs.value).into_iter().peekable();
    if fields.peek().is_some_and(|t| t.tag == 0xa0) {
        out.has_version = true;
        fields.next();
    }
    let _serial = fields.next()?;
    let _sig = fields.next()?;
    out.issuer = fields.next()?.full;
    let _validity = fields.next()?;
    out.subject = fields.next()?.full;
    out.spki = fields.next()?.full;
    for f in fields {
        match f.tag {
            0x81 | 0x82 | 0xa1 | 0xa2 => out.has_unique_ids = true,
            0xa3 => {
                let seq = single(f.value)?;
                for ext in elements(seq.value) {
                    let parts = elements(ext.value);
                    let (oid, rest) = parts.split_first()?;
                    let (critical, value) = match rest {
                        [c, v] if c.tag == 0x01 => (c.value == [0xff], v),
                        [v] => (false, v),
                        _ => continue,
                    };
                    out.extensions.push(Ext {
                        oid: oid.value,
                        critical,
                        value: value.value,
                    });
                }
            }
            _ => {}
        }
    }
    Some(out)
}

/// Encoded OID contents used by the harnesses.
pub mod oid {
    /// 2.5.29.14
    pub const SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
    /// 2.5.29.18
    pub const ISSUER_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x12];
    /// 2.5.29.19
    pub const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    /// 2.5.29.30
    pub const NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x1e];
    /// 2.5.29.31
    pub const CRL_DISTRIBUTION_POINTS: &[u8] = &[0x55, 0x1d, 0x1f];
    /// 2.5.29.32
    pub const CERTIFICATE_POLICIES: &[u8] = &[0x55, 0x1d, 0x20];
    /// 2.5.29.35
    pub const AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
    /// 2.5.29.37
    pub const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    /// 2.5.29.46
    pub const FRESHEST_CRL: &[u8] = &[0x55, 0x1d, 0x2e];
    /// 1.3.6.1.5.5.7.1.1
    pub const AUTHORITY_INFO_ACCESS: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
    /// 1.3.6.1.5.5.7.1.11
    pub const SUBJECT_INFO_ACCESS: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x0b];
    /// 1.3.6.1.4.1.11129.2.4.2 (RFC 6962 SCT list)
    pub const SCT_LIST: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];
    /// 2.5.29.37.0
    pub const ANY_EKU: &[u8] = &[0x55, 0x1d, 0x25, 0x00];
    /// 1.3.6.1.5.5.7.3.2
    pub const KP_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
}

impl<'a> Inspected<'a> {
    /// The extension with this OID.
    pub fn ext(&self, oid: &[u8]) -> Option<Ext<'a>> {
        self.extensions.iter().copied().find(|e| e.oid == oid)
    }

    /// basicConstraints as (cA, pathLenConstraint contents).
    pub fn basic_constraints(&self) -> Option<(bool, Option<&'a [u8]>)> {
        let e = self.ext(oid::BASIC_CONSTRAINTS)?;
        let seq = single(e.value)?;
        let mut ca = false;
        let mut path_len = None;
        for t in elements(seq.value) {
            match t.tag {
                0x01 => ca = t.value == [0xff],
                0x02 => path_len = Some(t.value),
                _ => {}
            }
        }
        Some((ca, path_len))
    }

    /// The KeyPurposeId OIDs of extKeyUsage.
    pub fn ekus(&self) -> Option<Vec<&'a [u8]>> {
        let e = self.ext(oid::EXT_KEY_USAGE)?;
        let seq = single(e.value)?;
        Some(elements(seq.value).into_iter().map(|t| t.value).collect())
    }

    /// The base GeneralNames of the permitted and excluded subtrees.
    pub fn name_constraints(&self) -> Vec<Tlv<'a>> {
        let Some(e) = self.ext(oid::NAME_CONSTRAINTS) else {
            return Vec::new();
        };
        let Some(seq) = single(e.value) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for subtrees in elements(seq.value) {
            for subtree in elements(subtrees.value) {
                if let Some((base, _)) = read(subtree.value) {
                    out.push(base);
                }
            }
        }
        out
    }

    /// The GeneralName tags of the permitted and excluded subtrees.
    pub fn name_constraint_tags(&self) -> Vec<u8> {
        self.name_constraints().iter().map(|t| t.tag).collect()
    }

    /// The GeneralNames of subjectAltName.
    pub fn san(&self) -> Vec<Tlv<'a>> {
        let Some(e) = self.ext(&[0x55, 0x1d, 0x11]) else {
            return Vec::new();
        };
        let Some(seq) = single(e.value) else {
            return Vec::new();
        };
        elements(seq.value)
    }

    /// The GeneralName tags of subjectAltName.
    pub fn san_tags(&self) -> Vec<u8> {
        self.san().iter().map(|t| t.tag).collect()
    }
}

/// Whether a dNSName constraint is in preferred name syntax (RFC 5280
/// §4.2.1.10: empty, or labels of letters, digits, `-` and `_`, with an
/// optional leading dot), roughly as webpki checks it.
pub fn is_dns_constraint_syntax(name: &[u8]) -> bool {
    if name.is_empty() {
        return true;
    }
    let name = name.strip_prefix(b".").unwrap_or(name);
    name.len() <= 253
        && name.split(|b| *b == b'.').all(|label| {
            (1..=63).contains(&label.len())
                && label.first() != Some(&b'-')
                && label.last() != Some(&b'-')
                && label
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        })
}
