//! Path building and the per-certificate checks (RFC 5280 §6.1).
//!
//! Depth-first search from the leaf through the client-sent intermediates
//! (any order, duplicates and extras tolerated) to a trust anchor. Anchors
//! are tried first (shortest path), candidates whose subjectKeyIdentifier
//! matches the child's authorityKeyIdentifier before the others, and every
//! step spends from a [`Budget`] so a hostile chain cannot burn CPU.

use super::checks::{Placed, ISSUER_CHECKS};
use super::error::{CertPosition, ValidationError};
use super::name_constraints::{self, NameConstraintFailure};
use super::{ChainValidator, VerifiedChain, MAX_DEPTH_LIMIT};
use crate::trust_store::TrustStore;
use crate::x509::cert::Cert;
use crate::x509::parsed::ParsedCertificate;
use crate::x509::profile::Role;
use crate::x509::signature::{describe_algorithm, SignatureFailure};

/// Limits on the work one validation may do. Exhausting any of them
/// refuses the chain with `ClientCertValidationBudgetExceeded`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Signature verifications.
    pub signatures: usize,
    /// Path-building steps (candidate issuers considered).
    pub build_chain_calls: usize,
    /// Name-constraint comparisons.
    pub name_constraint_comparisons: usize,
}

impl Default for Budget {
    fn default() -> Self {
        // webpki's defaults are 100 / 200 000 / 250 000; client chains are
        // short, so far less is plenty and fails hostile input sooner. The
        // most expensive chain these admit to validation (100 000
        // same-form name comparisons, about 1.2 ms; 64 signatures cannot be
        // reached with 8 intermediates) costs the server about three valid
        // handshakes (`cargo bench --bench hostile`), while a name-constrained
        // CA with 300 subtrees still vouches for a leaf with 300 names.
        Self {
            signatures: 64,
            build_chain_calls: 2_000,
            name_constraint_comparisons: 100_000,
        }
    }
}

impl Budget {
    /// What a validation may spend on the thread that serves the
    /// connection's I/O: enough for every ordinary client chain (a few
    /// signatures, a handful of candidate issuers, name constraints over a
    /// few dozen names). A chain needing more is validated again, within the
    /// full budget, off that thread (see
    /// [`ChainValidator::validate`](super::ChainValidator::validate)).
    pub const INLINE: Self = Self {
        signatures: 8,
        build_chain_calls: 32,
        name_constraint_comparisons: 4_096,
    };

    /// The smaller of each limit.
    pub fn min(self, other: Self) -> Self {
        Self {
            signatures: self.signatures.min(other.signatures),
            build_chain_calls: self.build_chain_calls.min(other.build_chain_calls),
            name_constraint_comparisons: self
                .name_constraint_comparisons
                .min(other.name_constraint_comparisons),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Node<'a> {
    pub(crate) cert: Cert<'a>,
    pub(crate) position: CertPosition,
}

pub(crate) struct PathBuilder<'v, 'a> {
    pub(crate) validator: &'v ChainValidator,
    pub(crate) store: &'a TrustStore,
    pub(crate) presented: &'v [Cert<'a>],
    pub(crate) now: u64,
    pub(crate) budget: Budget,
    pub(crate) best: Option<ValidationError>,
    pub(crate) aborted: bool,
}

impl<'v, 'a> PathBuilder<'v, 'a> {
    fn record(&mut self, error: ValidationError) {
        let replace = match &self.best {
            None => true,
            Some(best) => error.rank() > best.rank(),
        };
        if replace {
            self.best = Some(error);
        }
    }

    fn abort(&mut self, what: &'static str) {
        self.aborted = true;
        self.best = Some(ValidationError::BudgetExceeded { what });
    }

    pub(crate) fn build(&mut self, path: &mut Vec<Node<'a>>) -> Option<VerifiedChain> {
        let child_issuer = path.last()?.cert.issuer;
        let child_aki = path.last()?.cert.extensions.authority_key_id;
        let mut candidates = 0usize;

        // Anchors named as the child's issuer, those whose key identifier
        // matches its authorityKeyIdentifier first (several CA generations
        // often share one name).
        let named = self.store.anchors_named(child_issuer);
        let by_key = child_aki.map_or(&[][..], |k| self.store.anchors_with_key_id(k));
        let preferred = named.iter().filter(|i| by_key.contains(i));
        let others = named.iter().filter(|i| !by_key.contains(i));
        for &index in preferred.chain(others) {
            candidates += 1;
            let Some(anchor) = self.store.anchor(index) else {
                continue;
            };
            let anchor = anchor.view();
            if let Some(found) = self.try_issuer(path, anchor, CertPosition::TrustAnchor(index)) {
                return Some(found);
            }
            if self.aborted {
                return None;
            }
        }

        for pass in [true, false] {
            for (i, cand) in self.presented.iter().enumerate() {
                if cand.subject != child_issuer {
                    continue;
                }
                let key_ids_agree = match (child_aki, cand.extensions.subject_key_id) {
                    (Some(a), Some(s)) => a == s,
                    _ => true,
                };
                if key_ids_agree != pass {
                    continue;
                }
                let position = CertPosition::Intermediate(i);
                if path
                    .iter()
                    .any(|n| n.position == position || n.cert.der == cand.der)
                {
                    continue; // a loop, or a duplicate copy already on the path
                }
                candidates += 1;
                if let Some(found) = self.try_issuer(path, cand.clone(), position) {
                    return Some(found);
                }
                if self.aborted {
                    return None;
                }
            }
        }

        if candidates == 0 {
            let position = path.last()?.position;
            self.record(ValidationError::UnknownIssuer { position });
        }
        None
    }

    fn try_issuer(
        &mut self,
        path: &mut Vec<Node<'a>>,
        issuer: Cert<'a>,
        position: CertPosition,
    ) -> Option<VerifiedChain> {
        let Some(calls) = self.budget.build_chain_calls.checked_sub(1) else {
            self.abort("path-building");
            return None;
        };
        self.budget.build_chain_calls = calls;

        let is_anchor = matches!(position, CertPosition::TrustAnchor(_));
        // RFC 5280 §6.1.4 (l): self-issued intermediates (key rollover) do
        // not count towards the path length; the hard ceiling bounds them.
        let counted_below = cas_below(path);
        let issuer_counts = is_anchor || !issuer.is_self_issued();
        let depth = 1 + counted_below + usize::from(issuer_counts);
        let limit = self.validator.options.max_chain_depth;
        if depth > limit
            || (!is_anchor && depth >= limit)
            || path.len() + usize::from(!is_anchor) >= MAX_DEPTH_LIMIT
        {
            self.record(ValidationError::MaxChainDepthExceeded {
                depth: depth + usize::from(!is_anchor),
                limit,
            });
            return None;
        }
        if let Err(e) = self.check_issuer(counted_below, &issuer, position, is_anchor) {
            self.record(e);
            return None;
        }

        let Some(signatures) = self.budget.signatures.checked_sub(1) else {
            self.abort("signature");
            return None;
        };
        self.budget.signatures = signatures;
        let child = path.last()?;
        if let Err(f) = self.validator.verify_link(child, &issuer) {
            self.record(signature_error(f, child));
            return None;
        }

        path.push(Node {
            cert: issuer,
            position,
        });
        let found = if is_anchor {
            match self.check_name_constraints(path) {
                Ok(()) => self.finish(path),
                Err(e) => {
                    self.record(e);
                    None
                }
            }
        } else {
            self.build(path)
        };
        path.pop();
        found
    }

    /// `cas_below`: the non-self-issued intermediates below the issuer.
    fn check_issuer(
        &self,
        cas_below: usize,
        issuer: &Cert<'a>,
        position: CertPosition,
        is_anchor: bool,
    ) -> Result<(), ValidationError> {
        let placed = Placed {
            cert: issuer,
            position,
            role: if is_anchor {
                Role::Anchor
            } else {
                Role::Intermediate
            },
            cas_below,
        };
        self.validator.run_checks(ISSUER_CHECKS, &placed, self.now)
    }

    fn check_name_constraints(&mut self, path: &[Node<'a>]) -> Result<(), ValidationError> {
        let result = check_name_constraints(path, &mut self.budget.name_constraint_comparisons);
        if matches!(result, Err(ValidationError::BudgetExceeded { .. })) {
            self.aborted = true;
        }
        result
    }

    /// The owned chain of a path that verified: the presented
    /// certificates take their parse along, the anchor is the store's.
    fn finish(&self, path: &[Node<'a>]) -> Option<VerifiedChain> {
        let (leaf, rest) = path.split_first()?;
        let (top, intermediates) = rest.split_last()?;
        let CertPosition::TrustAnchor(anchor) = top.position else {
            return None;
        };
        let presented = intermediates
            .iter()
            .filter_map(|node| match node.position {
                CertPosition::Intermediate(i) => Some(u16::try_from(i).unwrap_or(u16::MAX)),
                _ => None,
            })
            .collect();
        Some(VerifiedChain::new(
            ParsedCertificate::from_view(&leaf.cert),
            intermediates
                .iter()
                .map(|node| ParsedCertificate::from_view(&node.cert)),
            self.store.anchor(anchor)?.clone(),
            presented,
            self.store.generation(),
        ))
    }
}

/// Non-self-issued intermediates of `path` below its last certificate (the
/// leaf never counts; RFC 5280 §4.2.1.9 and §6.1.4 (l)).
pub(crate) fn cas_below(path: &[Node<'_>]) -> usize {
    path.iter()
        .skip(1)
        .filter(|n| !n.cert.is_self_issued())
        .count()
}

/// The validation error a failed signature check on `child` means.
pub(crate) fn signature_error(failure: SignatureFailure, child: &Node<'_>) -> ValidationError {
    let position = child.position;
    match failure {
        SignatureFailure::Invalid => ValidationError::BadSignature { position },
        SignatureFailure::UnsupportedAlgorithm | SignatureFailure::AlgorithmKeyMismatch => {
            ValidationError::UnsupportedSignatureAlgorithm {
                position,
                algorithm: describe_algorithm(child.cert.signature_alg),
            }
        }
    }
}

/// Every issuer's name constraints over the certificates below it (RFC 5280
/// §6.1.3 (b)-(c); self-issued intermediates exempt), spending `budget`
/// comparisons.
pub(crate) fn check_name_constraints(
    path: &[Node<'_>],
    budget: &mut usize,
) -> Result<(), ValidationError> {
    for (i, ca) in path.iter().enumerate().skip(1) {
        let Some(nc) = ca.cert.extensions.name_constraints else {
            continue;
        };
        for (j, subject) in path.iter().enumerate().take(i) {
            if j > 0 && subject.cert.is_self_issued() {
                continue;
            }
            match name_constraints::check(nc, &subject.cert, budget) {
                Ok(()) => {}
                Err(NameConstraintFailure::BudgetExhausted) => {
                    return Err(ValidationError::BudgetExceeded {
                        what: "name-constraint",
                    });
                }
                Err(NameConstraintFailure::Violation(detail)) => {
                    return Err(ValidationError::NameConstraintViolation {
                        position: subject.position,
                        detail,
                    })
                }
                Err(NameConstraintFailure::Malformed(detail)) => {
                    return Err(ValidationError::BadEncoding {
                        position: ca.position,
                        detail,
                    })
                }
            }
        }
    }
    Ok(())
}
