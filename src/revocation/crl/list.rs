//! [`RevocationList`]: one decoded, indexed CRL.

use crate::revocation::{CrlReason, SerialNumber};
use crate::x509::cert::Cert;
use crate::x509::der::{tag, DerCursor};
use crate::x509::fields::serial_cloudfront;
use crate::x509::name::rfc2253;
use crate::x509::serial::MAX_SERIAL_OCTETS;

use super::index::{arena_bytes, SerialIndex, SerialIndexBuilder};
use super::parse::{CrlVersion, CrlView, RevokedEntries};
use super::scope::IssuingDistributionPoint;
use super::{CrlError, CrlLimits, RevokedEntry};

/// A decoded CRL with its revoked serials indexed for O(1) lookup.
///
/// [`parse`](Self::parse) checks structure only; a list becomes a source of
/// revocation answers only through [`CrlSource`](super::CrlSource), which
/// verifies its signature first.
#[derive(Debug)]
pub struct RevocationList {
    issuer_der: Box<[u8]>,
    issuer: String,
    version: CrlVersion,
    this_update: u64,
    next_update: Option<u64>,
    crl_number: Option<Box<[u8]>>,
    authority_key_id: Option<Box<[u8]>>,
    idp: Option<IssuingDistributionPoint>,
    index: SerialIndex,
    duplicates: usize,
}

impl RevocationList {
    /// Decodes and indexes a DER CRL (no signature check).
    pub fn parse(der: &[u8]) -> Result<Self, CrlError> {
        Self::parse_with_limits(der, &CrlLimits::default())
    }

    pub(crate) fn parse_with_limits(der: &[u8], limits: &CrlLimits) -> Result<Self, CrlError> {
        if der.len() > limits.max_crl_bytes {
            return Err(CrlError::TooLarge {
                bytes: der.len(),
                limit: limits.max_crl_bytes,
            });
        }
        let view = CrlView::parse(der)?;
        Self::from_view(&view, limits)
    }

    pub(crate) fn from_view(view: &CrlView<'_>, limits: &CrlLimits) -> Result<Self, CrlError> {
        // A first pass over the entry headers sizes the arena exactly, so a
        // million-entry CRL is copied once and never reallocated.
        let (count, serial_bytes) = count_entries(view.revoked);
        if count > limits.max_entries {
            return Err(CrlError::TooManyEntries {
                count,
                limit: limits.max_entries,
            });
        }
        let mut builder = SerialIndexBuilder::with_capacity(arena_bytes(count, serial_bytes));
        for entry in RevokedEntries::new(view) {
            let entry = entry?;
            let serial =
                SerialNumber::from_der_contents(entry.serial).ok_or(CrlError::Malformed {
                    field: "userCertificate",
                })?;
            builder
                .push(
                    serial.as_bytes(),
                    RevokedEntry {
                        reason: entry.reason.map(CrlReason::from_code),
                        revoked_at: entry.revoked_at,
                    },
                )
                .map_err(|_| CrlError::TooLarge {
                    bytes: view.revoked.len(),
                    limit: limits.max_crl_bytes,
                })?;
        }
        let (index, duplicates) = builder.build();
        Ok(Self {
            issuer_der: view.issuer.into(),
            issuer: rfc2253(view.issuer).unwrap_or_else(|| "(unreadable issuer name)".into()),
            version: view.version,
            this_update: view.this_update,
            next_update: view.next_update,
            crl_number: view.crl_number.map(Into::into),
            authority_key_id: view.authority_key_id.map(Into::into),
            idp: view.idp.clone(),
            index,
            duplicates,
        })
    }

    /// The issuer, RFC 2253.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The issuer Name's DER encoding.
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer_der
    }

    /// v1 or v2.
    pub fn version(&self) -> CrlVersion {
        self.version
    }

    /// `thisUpdate`, Unix seconds.
    pub fn this_update(&self) -> u64 {
        self.this_update
    }

    /// `nextUpdate`, Unix seconds, when present.
    pub fn next_update(&self) -> Option<u64> {
        self.next_update
    }

    /// The `cRLNumber` INTEGER contents (v2 CRLs).
    pub fn crl_number(&self) -> Option<&[u8]> {
        self.crl_number.as_deref()
    }

    /// The `cRLNumber` in CloudFront's serial spelling (`01:0f`).
    pub fn crl_number_text(&self) -> Option<String> {
        self.crl_number.as_deref().map(serial_cloudfront)
    }

    /// The authorityKeyIdentifier's keyIdentifier.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.authority_key_id.as_deref()
    }

    /// Whether an issuingDistributionPoint narrows the certificates this CRL
    /// speaks for (distribution point names or user/CA-only flags).
    pub fn is_partitioned(&self) -> bool {
        self.idp.is_some()
    }

    /// Distinct revoked serials.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no certificate is revoked.
    pub fn is_empty(&self) -> bool {
        self.index.len() == 0
    }

    /// Entries repeating a serial listed earlier in the CRL (ignored).
    pub fn duplicate_entries(&self) -> usize {
        self.duplicates
    }

    /// Heap bytes of the index.
    pub fn index_heap_bytes(&self) -> usize {
        self.index.heap_bytes()
    }

    /// The entry of `serial`, when the CRL lists it.
    pub fn lookup(&self, serial: &SerialNumber) -> Option<RevokedEntry> {
        self.index.get(serial.as_bytes())
    }

    /// Every entry, in CRL order (canonical serial octets).
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], RevokedEntry)> + '_ {
        self.index.iter()
    }

    /// Whether this CRL speaks for `cert` (issuer name and distribution point).
    pub(crate) fn covers(&self, cert: &Cert<'_>) -> bool {
        cert.issuer == &*self.issuer_der && self.idp.as_ref().map_or(true, |idp| idp.covers(cert))
    }
}

/// Entries and total serial octets, from the entry headers alone; stops at
/// the first malformed entry (the full parse reports it).
fn count_entries(revoked: &[u8]) -> (usize, usize) {
    let mut cursor = DerCursor::new(revoked);
    let (mut count, mut serial_bytes) = (0usize, 0usize);
    while let Ok(entry) = cursor.expect(tag::SEQUENCE, "entry") {
        let Ok(serial) = DerCursor::new(entry.value).expect(tag::INTEGER, "serial") else {
            break;
        };
        count += 1;
        serial_bytes += serial.value.len().min(MAX_SERIAL_OCTETS + 1);
    }
    (count, serial_bytes)
}
