//! The certificates of a verified path, as revocation checking sees them.

use crate::chain_validator::VerifiedChain;

use super::{CertToCheck, ChainSlot, RevocationError};

/// A verified path: the leaf, its intermediates (leaf's issuer first) and the
/// trust anchor. The anchor is only ever an issuer: it is never checked.
#[derive(Clone, Debug)]
pub struct RevocationChain<'a> {
    /// Leaf first, then the intermediates, then the anchor.
    certs: Vec<&'a [u8]>,
}

impl<'a> RevocationChain<'a> {
    /// A chain from its parts, in path order.
    pub fn new(
        leaf: &'a [u8],
        intermediates: impl IntoIterator<Item = &'a [u8]>,
        anchor: &'a [u8],
    ) -> Self {
        let mut certs = vec![leaf];
        certs.extend(intermediates);
        certs.push(anchor);
        Self { certs }
    }

    /// The chain of a [`VerifiedChain`] (after the handshake).
    pub fn from_verified(chain: &'a VerifiedChain) -> Result<Self, RevocationError> {
        let anchor = chain.anchor().ok_or(RevocationError::AnchorUnavailable)?;
        Ok(Self::new(
            chain.end_entity().as_ref(),
            chain.intermediates().iter().map(|c| c.as_ref()),
            anchor.as_ref(),
        ))
    }

    /// The leaf.
    pub fn leaf(&self) -> &'a [u8] {
        self.certs.first().copied().unwrap_or_default()
    }

    /// The number of intermediates.
    pub fn intermediate_count(&self) -> usize {
        self.certs.len().saturating_sub(2)
    }

    /// The certificate at `slot` with its issuer, when the slot exists.
    pub fn get(&self, slot: ChainSlot) -> Option<CertToCheck<'a>> {
        let index = match slot {
            ChainSlot::Leaf => 0,
            ChainSlot::Intermediate(i) => i.checked_add(1)?,
        };
        // The anchor (last) is an issuer only.
        if index + 1 >= self.certs.len() {
            return None;
        }
        Some(CertToCheck {
            cert: self.certs.get(index)?,
            issuer: self.certs.get(index + 1)?,
            slot,
        })
    }

    /// The slots to check: the leaf, and the intermediates when `whole_chain`.
    pub(crate) fn slots(&self, whole_chain: bool) -> Vec<ChainSlot> {
        let mut out = vec![ChainSlot::Leaf];
        if whole_chain {
            out.extend((0..self.intermediate_count()).map(ChainSlot::Intermediate));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_follow_the_path() {
        let (leaf, i0, i1, anchor) = (&[1u8][..], &[2u8][..], &[3u8][..], &[4u8][..]);
        let chain = RevocationChain::new(leaf, [i0, i1], anchor);
        let l = chain.get(ChainSlot::Leaf).unwrap();
        assert_eq!((l.cert, l.issuer), (leaf, i0));
        let top = chain.get(ChainSlot::Intermediate(1)).unwrap();
        assert_eq!((top.cert, top.issuer), (i1, anchor));
        assert!(chain.get(ChainSlot::Intermediate(2)).is_none());
        assert_eq!(chain.slots(true).len(), 3);
        assert_eq!(chain.slots(false), vec![ChainSlot::Leaf]);
    }
}
