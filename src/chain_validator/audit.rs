//! Why a chain is accepted or refused, check by check (`edge-mtls verify`).
//!
//! [`ChainValidator::audit`] asks the validator for its verdict, then lays
//! out one path — the verified one, or for a refused chain the path the
//! certificates' names lead to — and runs every check of that path with the
//! same code path building uses, without stopping at the first failure. The
//! verdict is always the validator's own answer: the report explains it, it
//! never overrides it.

use rustls_pki_types::UnixTime;

use super::checks::{Check, Placed, ISSUER_CHECKS, LEAF_CHECKS};
use super::error::{CertPosition, ValidationError};
use super::path::{cas_below, check_name_constraints, signature_error, Node};
use super::{ChainValidator, ProfileRule, VerifiedChain, MAX_DEPTH_LIMIT};
use crate::trust_store::TrustStore;
use crate::x509::cert::Cert;
use crate::x509::fields::serial_cloudfront;
use crate::x509::name::rfc2253;
use crate::x509::profile::{self, Role};
use crate::x509::signature::verify_signed_by;

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOutcome {
    /// The check.
    pub check: Check,
    /// `Ok` when it passed; the refusal it would cause otherwise.
    pub result: Result<(), ValidationError>,
}

/// One certificate of the reported path and its checks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateReport {
    /// Where it sits: the leaf, a presented intermediate, or a trust anchor.
    pub position: CertPosition,
    /// Subject, RFC 2253.
    pub subject: String,
    /// Issuer, RFC 2253.
    pub issuer: String,
    /// Serial number, lowercase colon hex with the DER sign byte.
    pub serial: String,
    /// notBefore, Unix seconds.
    pub not_before: u64,
    /// notAfter, Unix seconds.
    pub not_after: u64,
    /// Every check, in the order path building runs them.
    pub checks: Vec<CheckOutcome>,
    /// Structure rules the certificate breaks that the profile leaves to
    /// issuers (the other profile would refuse it for these).
    pub unenforced_rules: Vec<ProfileRule>,
}

/// A validation explained (see [`ChainValidator::audit`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainReport {
    /// The validator's answer: what a handshake decides.
    pub verdict: Result<VerifiedChain, ValidationError>,
    /// The path reported, leaf first.
    pub certificates: Vec<CertificateReport>,
    /// Whether that path ends at a trust anchor.
    pub reaches_anchor: bool,
    /// Checks of the path as a whole (name constraints, depth).
    pub path_checks: Vec<CheckOutcome>,
}

impl ChainValidator {
    /// Validates like [`validate`](Self::validate) (without the cache) and
    /// explains the answer: the path and the outcome of every check on it.
    pub fn audit(&self, end_entity: &[u8], intermediates: &[&[u8]], now: UnixTime) -> ChainReport {
        let secs = now.as_secs();
        let store = self.trust_store().load();
        let verdict =
            self.validate_uncached(end_entity, intermediates, secs, &store, self.options.budget);
        let mut report = ChainReport {
            verdict,
            certificates: Vec::new(),
            reaches_anchor: false,
            path_checks: Vec::new(),
        };
        let Ok(leaf) = Cert::parse(end_entity) else {
            return report;
        };
        let presented: Vec<Option<Cert<'_>>> =
            intermediates.iter().map(|d| Cert::parse(d).ok()).collect();

        let mut path = vec![Node {
            cert: leaf,
            position: CertPosition::Leaf,
        }];
        report.reaches_anchor = match &report.verdict {
            Ok(verified) => follow_verified(verified, &presented, &store, &mut path),
            Err(_) => follow_names(&store, &presented, &mut path),
        };

        for (i, node) in path.iter().enumerate() {
            let role = match node.position {
                CertPosition::Leaf => Role::Leaf,
                CertPosition::Intermediate(_) => Role::Intermediate,
                CertPosition::TrustAnchor(_) => Role::Anchor,
            };
            let placed = Placed {
                cert: &node.cert,
                position: node.position,
                role,
                cas_below: path.get(..i).map_or(0, cas_below),
            };
            let list = if role == Role::Leaf {
                LEAF_CHECKS
            } else {
                ISSUER_CHECKS
            };
            let mut checks: Vec<CheckOutcome> = list
                .iter()
                .map(|check| CheckOutcome {
                    check: *check,
                    result: self.run_check(*check, &placed, secs),
                })
                .collect();
            if role != Role::Anchor {
                let result = match path.get(i + 1) {
                    Some(issuer) => verify_signed_by(self.algorithms(), &node.cert, &issuer.cert)
                        .map_err(|f| signature_error(f, node)),
                    None => Err(ValidationError::UnknownIssuer {
                        position: node.position,
                    }),
                };
                checks.push(CheckOutcome {
                    check: Check::Signature,
                    result,
                });
            }
            let profile = self.options.profile;
            let unenforced_rules =
                profile::violations(&node.cert, role, self.options.required_eku.as_ref())
                    .into_iter()
                    .filter(|rule| !profile.enforces_for(*rule, role))
                    .collect();
            report.certificates.push(CertificateReport {
                position: node.position,
                subject: name(node.cert.subject),
                issuer: name(node.cert.issuer),
                serial: serial_cloudfront(node.cert.serial),
                not_before: node.cert.not_before,
                not_after: node.cert.not_after,
                checks,
                unenforced_rules,
            });
        }

        let mut budget = self.options.budget.name_constraint_comparisons;
        report.path_checks.push(CheckOutcome {
            check: Check::NameConstraints,
            result: check_name_constraints(&path, &mut budget),
        });
        // Leaf and anchor, and the intermediates that count (RFC 5280
        // §6.1.4 (l): not self-issued ones); a path that stops short of an
        // anchor still needs one.
        let limit = self.options.max_chain_depth;
        let below_anchor = path.len() - usize::from(report.reaches_anchor);
        let depth = 2 + path.get(..below_anchor).map_or(0, cas_below);
        report.path_checks.push(CheckOutcome {
            check: Check::Depth,
            result: if depth > limit {
                Err(ValidationError::MaxChainDepthExceeded { depth, limit })
            } else {
                Ok(())
            },
        });
        report
    }
}

fn name(der: &[u8]) -> String {
    rfc2253(der).unwrap_or_else(|| "(unreadable name)".into())
}

/// The trust anchor at `index`, parsed (only the anchors a path reaches
/// are; the store may hold many).
fn anchor(store: &TrustStore, index: usize) -> Option<Node<'_>> {
    let cert = store.anchor(index)?.view();
    Some(Node {
        cert,
        position: CertPosition::TrustAnchor(index),
    })
}

/// Lays out the path the validator verified.
fn follow_verified<'a>(
    verified: &VerifiedChain,
    presented: &[Option<Cert<'a>>],
    store: &'a TrustStore,
    path: &mut Vec<Node<'a>>,
) -> bool {
    for i in verified.intermediate_indices() {
        if let Some(Some(cert)) = presented.get(i) {
            path.push(Node {
                cert: cert.clone(),
                position: CertPosition::Intermediate(i),
            });
        }
    }
    let index = store
        .anchors()
        .iter()
        .position(|a| a.certificate().same_as(verified.anchor()));
    match index.and_then(|index| anchor(store, index)) {
        Some(node) => {
            path.push(node);
            true
        }
        None => false,
    }
}

/// For a refused chain: follows issuer names from the leaf, an anchor
/// before a presented intermediate and a matching key identifier before
/// another, never revisiting a certificate.
fn follow_names<'a>(
    store: &'a TrustStore,
    presented: &[Option<Cert<'a>>],
    path: &mut Vec<Node<'a>>,
) -> bool {
    while path.len() < MAX_DEPTH_LIMIT {
        let Some(child) = path.last() else {
            return false;
        };
        let issuer = child.cert.issuer;
        let aki = child.cert.extensions.authority_key_id;
        let rank = |c: &Cert<'_>| match (aki, c.extensions.subject_key_id) {
            (Some(a), Some(s)) if a == s => 0,
            (Some(_), Some(_)) => 2,
            _ => 1,
        };
        let named = store
            .anchors_named(issuer)
            .iter()
            .filter_map(|i| anchor(store, *i))
            .min_by_key(|n| rank(&n.cert));
        if let Some(node) = named {
            path.push(node);
            return true;
        }
        let next = presented
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, c.as_ref()?)))
            .filter(|(i, c)| {
                c.subject == issuer
                    && !path.iter().any(|n| {
                        n.position == CertPosition::Intermediate(*i) || n.cert.der == c.der
                    })
            })
            .min_by_key(|(_, c)| rank(c));
        match next {
            Some((i, cert)) => path.push(Node {
                cert: cert.clone(),
                position: CertPosition::Intermediate(i),
            }),
            None => return false,
        }
    }
    false
}
