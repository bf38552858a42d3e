//! The OCSP CertID (RFC 6960 §4.1.1): which certificate a request or a
//! response is about. It is also the key of the answer cache, so computing it
//! is on the handshake path and reads only the few certificate fields it needs.

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::x509::der::{tag, DerCursor};

/// The hash algorithm of a CertID.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    /// SHA-1, what every responder understands (RFC 5019 §2.1.1; the default).
    #[default]
    Sha1,
    /// SHA-256.
    Sha256,
}

/// id-sha1 1.3.14.3.2.26
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// id-sha256 2.16.840.1.101.3.4.2.1
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

/// The longest serial number accepted in a CertID. RFC 5280 caps serials at
/// 20 octets (21 with the sign byte); a little slack for broken CAs.
pub(crate) const MAX_SERIAL_LEN: usize = 32;

impl CertIdHash {
    /// The algorithm's OID contents.
    pub(crate) fn oid(self) -> &'static [u8] {
        match self {
            Self::Sha1 => OID_SHA1,
            Self::Sha256 => OID_SHA256,
        }
    }

    /// Recognises a CertID `hashAlgorithm` from its AlgorithmIdentifier
    /// contents: the OID with NULL or absent parameters.
    pub(crate) fn from_algorithm(contents: &[u8]) -> Option<Self> {
        let mut c = DerCursor::new(contents);
        let oid = c.expect(tag::OID, "hashAlgorithm").ok()?;
        if let Ok(Some(params)) = c.optional(0x05, "hashAlgorithm parameters") {
            if !params.value.is_empty() {
                return None;
            }
        }
        c.finish("hashAlgorithm").ok()?;
        match oid.value {
            OID_SHA1 => Some(Self::Sha1),
            OID_SHA256 => Some(Self::Sha256),
            _ => None,
        }
    }

    /// Hashes `data`; SHA-1 digests fill the first 20 of the 32 bytes.
    pub(crate) fn digest(self, data: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        match self {
            Self::Sha1 => {
                let d = Sha1::digest(data);
                if let Some(dst) = out.get_mut(..d.len()) {
                    dst.copy_from_slice(&d);
                }
            }
            Self::Sha256 => out.copy_from_slice(&Sha256::digest(data)),
        }
        out
    }

    /// The digest length in bytes.
    pub(crate) fn len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }
}

/// A CertID in comparable form: the cache and single-flight key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CertIdKey {
    pub(crate) hash: CertIdHash,
    /// issuerNameHash, zero-padded to 32 bytes.
    pub(crate) issuer_name_hash: [u8; 32],
    /// issuerKeyHash, zero-padded to 32 bytes.
    pub(crate) issuer_key_hash: [u8; 32],
    /// serialNumber INTEGER contents.
    pub(crate) serial: Box<[u8]>,
}

impl CertIdKey {
    /// The CertID of the certificate with `serial` issued by `issuer`.
    /// `issuer_name` is the issuer's whole subject Name encoding,
    /// `issuer_key` its subjectPublicKey bits.
    pub(crate) fn new(
        hash: CertIdHash,
        issuer_name: &[u8],
        issuer_key: &[u8],
        serial: &[u8],
    ) -> Self {
        Self {
            hash,
            issuer_name_hash: hash.digest(issuer_name),
            issuer_key_hash: hash.digest(issuer_key),
            serial: serial.into(),
        }
    }

    /// issuerNameHash as sent.
    pub(crate) fn name_hash(&self) -> &[u8] {
        self.issuer_name_hash
            .get(..self.hash.len())
            .unwrap_or(&self.issuer_name_hash)
    }

    /// issuerKeyHash as sent.
    pub(crate) fn key_hash(&self) -> &[u8] {
        self.issuer_key_hash
            .get(..self.hash.len())
            .unwrap_or(&self.issuer_key_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_hash_algorithms_with_and_without_null() {
        let sha1_null = [0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00];
        let sha1_bare = [0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a];
        assert_eq!(
            CertIdHash::from_algorithm(&sha1_null),
            Some(CertIdHash::Sha1)
        );
        assert_eq!(
            CertIdHash::from_algorithm(&sha1_bare),
            Some(CertIdHash::Sha1)
        );
        let mut sha256 = vec![0x06, 0x09];
        sha256.extend_from_slice(OID_SHA256);
        assert_eq!(
            CertIdHash::from_algorithm(&sha256),
            Some(CertIdHash::Sha256)
        );
        // MD5 and trailing junk are refused.
        let md5 = [
            0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05, 0x05, 0x00,
        ];
        assert_eq!(CertIdHash::from_algorithm(&md5), None);
        assert_eq!(
            CertIdHash::from_algorithm(&[0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x01]),
            None
        );
    }

    #[test]
    fn digests_are_padded_to_32_bytes() {
        let d = CertIdHash::Sha1.digest(b"abc");
        assert_eq!(&d[..4], &[0xa9, 0x99, 0x3e, 0x36]);
        assert_eq!(&d[20..], &[0u8; 12]);
    }
}
