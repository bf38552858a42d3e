//! The certificates of a verified path, as revocation checking sees them.

use std::borrow::Cow;

use crate::chain_validator::VerifiedChain;
use crate::x509::parsed::ParsedCertificate;

use super::{CertPosition, CertToCheck, RevocationError};

/// A verified path: the leaf, its intermediates (leaf's issuer first) and the
/// trust anchor, parsed. The anchor is only ever an issuer: it is never
/// checked.
#[derive(Clone, Debug)]
pub struct RevocationChain<'a> {
    /// Leaf first, then the intermediates, then the anchor.
    certs: Cow<'a, [ParsedCertificate]>,
    /// For each intermediate of the path, its index among what the client
    /// sent (`None`: the path order is the presented order).
    presented: Option<Vec<usize>>,
}

impl RevocationChain<'static> {
    /// A chain from its parsed parts, in path order.
    pub fn new(
        leaf: ParsedCertificate,
        intermediates: impl IntoIterator<Item = ParsedCertificate>,
        anchor: ParsedCertificate,
    ) -> Self {
        let mut certs = vec![leaf];
        certs.extend(intermediates);
        certs.push(anchor);
        Self {
            certs: Cow::Owned(certs),
            presented: None,
        }
    }

    /// A chain from DER parts, in path order, parsing each (for tools and
    /// tests; a handshake uses [`from_verified`](RevocationChain::from_verified)).
    pub fn from_der<'d>(
        leaf: &[u8],
        intermediates: impl IntoIterator<Item = &'d [u8]>,
        anchor: &[u8],
    ) -> Result<Self, RevocationError> {
        let parse = |der: &[u8], position: Option<CertPosition>| {
            ParsedCertificate::from_der(der.to_vec()).ok_or(
                RevocationError::UnreadableCertificate {
                    // The anchor is only an issuer: reported against the last
                    // certificate it issues, the leaf when there is no other.
                    position: position.unwrap_or(CertPosition::Leaf),
                    detail: "certificate",
                },
            )
        };
        let leaf = parse(leaf, Some(CertPosition::Leaf))?;
        let intermediates = intermediates
            .into_iter()
            .enumerate()
            .map(|(i, der)| parse(der, Some(CertPosition::Intermediate(i))))
            .collect::<Result<Vec<_>, _>>()?;
        let anchor = parse(anchor, None)?;
        Ok(Self::new(leaf, intermediates, anchor))
    }
}

impl<'a> RevocationChain<'a> {
    /// The chain of a [`VerifiedChain`]: its certificates, borrowed.
    pub fn from_verified(chain: &'a VerifiedChain) -> Self {
        let presented: Vec<usize> = chain.intermediate_indices().collect();
        let in_order = presented.iter().enumerate().all(|(k, i)| k == *i);
        Self {
            certs: Cow::Borrowed(chain.certificates()),
            presented: (!in_order).then_some(presented),
        }
    }

    /// The leaf.
    pub fn leaf(&self) -> &ParsedCertificate {
        // Every constructor puts a leaf first and an anchor last.
        &self.certs[0]
    }

    /// The number of intermediates.
    pub fn intermediate_count(&self) -> usize {
        self.certs.len().saturating_sub(2)
    }

    /// The certificate at `position` (the leaf, or an intermediate by its
    /// index in what the client sent) with its issuer, when the path holds
    /// it.
    pub fn get(&self, position: CertPosition) -> Option<CertToCheck<'_>> {
        let index = match position {
            CertPosition::Leaf => 0,
            CertPosition::Intermediate(i) => match &self.presented {
                None => i.checked_add(1)?,
                Some(presented) => presented.iter().position(|p| *p == i)? + 1,
            },
            CertPosition::TrustAnchor(_) => return None,
        };
        // The anchor (last) is an issuer only.
        if index + 1 >= self.certs.len() {
            return None;
        }
        Some(CertToCheck {
            cert: self.certs.get(index)?,
            issuer: self.certs.get(index + 1)?,
            position,
        })
    }

    /// The positions to check, in path order: the leaf, and the
    /// intermediates when `whole_chain`.
    pub(crate) fn positions(&self, whole_chain: bool) -> Vec<CertPosition> {
        let mut out = vec![CertPosition::Leaf];
        if whole_chain {
            out.extend((0..self.intermediate_count()).map(|k| {
                CertPosition::Intermediate(
                    self.presented
                        .as_ref()
                        .and_then(|p| p.get(k).copied())
                        .unwrap_or(k),
                )
            }));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(name: &str) -> ParsedCertificate {
        let key = rcgen::KeyPair::generate().unwrap();
        let der = rcgen::CertificateParams::new(vec![name.into()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .der()
            .to_vec();
        ParsedCertificate::from_der(der).unwrap()
    }

    #[test]
    fn issuers_follow_the_path() {
        let (leaf, i0, i1, anchor) = (cert("l"), cert("i0"), cert("i1"), cert("a"));
        let chain = RevocationChain::new(leaf.clone(), [i0.clone(), i1.clone()], anchor.clone());
        let l = chain.get(CertPosition::Leaf).unwrap();
        assert_eq!((l.cert, l.issuer), (&leaf, &i0));
        let top = chain.get(CertPosition::Intermediate(1)).unwrap();
        assert_eq!((top.cert, top.issuer), (&i1, &anchor));
        assert!(chain.get(CertPosition::Intermediate(2)).is_none());
        assert_eq!(chain.positions(true).len(), 3);
        assert_eq!(chain.positions(false), vec![CertPosition::Leaf]);
    }
}
