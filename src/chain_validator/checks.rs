//! The checks one certificate of a path gets, each on its own.
//!
//! Path building runs them in the order of [`LEAF_CHECKS`] and
//! [`ISSUER_CHECKS`] and stops at the first failure; the `verify` command
//! ([`ChainValidator::audit`]) runs every one of them on the path it reports,
//! so what an operator reads is what a handshake decided.

use core::fmt;

use super::error::{CertPosition, ValidationError};
use super::{ChainValidator, ProfileRule};
use crate::x509::cert::{Cert, Version};
use crate::x509::extensions::{oid, KeyUsage};
use crate::x509::profile::{self, Role};

/// One check of one certificate (or of the whole path).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    /// The X.509 version is accepted (v1 leaves unless `require_v3`).
    Version,
    /// An issuer may act as a CA: basicConstraints `cA`, or a configured
    /// anchor (RFC 5280 §6.1.4 (k)).
    IsCa,
    /// The structure rules the validation profile enforces.
    Structure,
    /// The issuer's pathLenConstraint holds for the CAs below it.
    PathLength,
    /// An issuer's keyUsage, when present, asserts keyCertSign.
    IssuerKeyUsage,
    /// The leaf's keyUsage, when present, asserts the required bits.
    LeafKeyUsage,
    /// extendedKeyUsage, when present, allows the required purpose.
    ExtendedKeyUsage,
    /// The validation time is within notBefore..notAfter.
    Validity,
    /// No critical extension is left unprocessed.
    CriticalExtensions,
    /// No policyConstraints (certificate policies are not processed).
    PolicyConstraints,
    /// The key type and size are allowed.
    KeyPolicy,
    /// The signature verifies with the issuer's key.
    Signature,
    /// Names are within every issuer's name constraints.
    NameConstraints,
    /// The path is not longer than `max_chain_depth`.
    Depth,
}

impl Check {
    /// The check's name as the `verify` command prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Version => "version",
            Self::IsCa => "is a CA",
            Self::Structure => "structure rules",
            Self::PathLength => "pathLenConstraint",
            Self::IssuerKeyUsage => "keyUsage keyCertSign",
            Self::LeafKeyUsage => "keyUsage",
            Self::ExtendedKeyUsage => "extendedKeyUsage",
            Self::Validity => "validity",
            Self::CriticalExtensions => "critical extensions",
            Self::PolicyConstraints => "policy constraints",
            Self::KeyPolicy => "key type and size",
            Self::Signature => "signature",
            Self::NameConstraints => "name constraints",
            Self::Depth => "chain depth",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the leaf is checked for, in order.
pub(crate) const LEAF_CHECKS: &[Check] = &[
    Check::Version,
    Check::Structure,
    Check::LeafKeyUsage,
    Check::ExtendedKeyUsage,
    Check::Validity,
    Check::CriticalExtensions,
    Check::PolicyConstraints,
    Check::KeyPolicy,
];

/// What an issuer (intermediate or anchor) is checked for, in order.
pub(crate) const ISSUER_CHECKS: &[Check] = &[
    Check::IsCa,
    Check::Structure,
    Check::PathLength,
    Check::IssuerKeyUsage,
    Check::ExtendedKeyUsage,
    Check::Validity,
    Check::CriticalExtensions,
    Check::PolicyConstraints,
    Check::KeyPolicy,
];

/// A certificate in its place in a path.
pub(crate) struct Placed<'c, 'a> {
    pub(crate) cert: &'c Cert<'a>,
    pub(crate) position: CertPosition,
    pub(crate) role: Role,
    /// Non-self-issued intermediates between this issuer and the leaf.
    pub(crate) cas_below: usize,
}

impl ChainValidator {
    /// Runs `checks` on `placed` in order; the first failure wins.
    pub(crate) fn run_checks(
        &self,
        checks: &[Check],
        placed: &Placed<'_, '_>,
        now: u64,
    ) -> Result<(), ValidationError> {
        checks
            .iter()
            .try_for_each(|check| self.run_check(*check, placed, now))
    }

    /// One per-certificate check (not `Signature`, `NameConstraints` or
    /// `Depth`, which concern links and the whole path).
    pub(crate) fn run_check(
        &self,
        check: Check,
        placed: &Placed<'_, '_>,
        now: u64,
    ) -> Result<(), ValidationError> {
        let Placed {
            cert,
            position,
            role,
            cas_below,
        } = *placed;
        let opts = &self.options;
        let ext = &cert.extensions;
        match check {
            Check::Version => match cert.version {
                Version::V3 => Ok(()),
                Version::V1 if !opts.require_v3 => Ok(()),
                Version::V1 => Err(ValidationError::UnsupportedVersion {
                    position,
                    detail: "v1 certificate and require_v3 is set",
                }),
                Version::V2 => Err(ValidationError::UnsupportedVersion {
                    position,
                    detail: "v2 certificate",
                }),
            },
            Check::IsCa => {
                let is_ca = match role {
                    // RFC 5280 §6.1.4 (k): v1/v2 certificates are CAs only
                    // as configured anchors.
                    Role::Intermediate => {
                        cert.version == Version::V3 && ext.basic_constraints.is_some_and(|b| b.ca)
                    }
                    Role::Anchor => cert.may_act_as_anchor_ca(),
                    Role::Leaf => true,
                };
                if is_ca {
                    Ok(())
                } else {
                    Err(ValidationError::IssuerNotCa { position })
                }
            }
            Check::Structure => {
                let profile = opts.profile;
                let enforced = |rule: ProfileRule| profile.enforces_for(rule, role);
                match profile::first_violation(cert, role, opts.required_eku.as_ref(), &enforced) {
                    Some(rule) => Err(ValidationError::ProfileViolation { position, rule }),
                    None => Ok(()),
                }
            }
            Check::PathLength => match ext.basic_constraints.and_then(|b| b.path_len) {
                Some(limit) => {
                    let actual = u64::try_from(cas_below).unwrap_or(u64::MAX);
                    if actual > limit {
                        Err(ValidationError::PathLenConstraintViolated {
                            position,
                            limit,
                            actual,
                        })
                    } else {
                        Ok(())
                    }
                }
                None => Ok(()),
            },
            Check::IssuerKeyUsage => {
                if ext
                    .key_usage
                    .is_some_and(|ku| !ku.has(KeyUsage::KEY_CERT_SIGN))
                {
                    Err(ValidationError::IssuerKeyUsageInvalid { position })
                } else {
                    Ok(())
                }
            }
            Check::LeafKeyUsage => match ext.key_usage {
                Some(ku) if !ku.has(opts.leaf_key_usage) => {
                    Err(ValidationError::LeafKeyUsageInvalid {
                        required: opts.leaf_key_usage,
                    })
                }
                _ => Ok(()),
            },
            Check::ExtendedKeyUsage => {
                let Some(required) = &opts.required_eku else {
                    return Ok(());
                };
                let purpose = required.oid_bytes();
                let allowed = match role {
                    Role::Leaf => ext.eku_contains(purpose) != Some(false),
                    // A CA's EKU restricts what it may issue for (the
                    // CA/Browser Forum reading that webpki and Go apply);
                    // anyExtendedKeyUsage allows all.
                    Role::Intermediate | Role::Anchor => {
                        ext.eku_contains(purpose).unwrap_or(true)
                            || ext.eku_contains(oid::ANY_EKU) == Some(true)
                    }
                };
                if allowed {
                    Ok(())
                } else {
                    Err(ValidationError::RequiredEkuNotFound {
                        position,
                        required: required.to_string(),
                    })
                }
            }
            Check::Validity => {
                if opts.ignore_expiration {
                    Ok(())
                } else if now < cert.not_before {
                    Err(ValidationError::NotYetValid {
                        position,
                        not_before: cert.not_before,
                        now,
                    })
                } else if now > cert.not_after {
                    Err(ValidationError::Expired {
                        position,
                        not_after: cert.not_after,
                        now,
                    })
                } else {
                    Ok(())
                }
            }
            Check::CriticalExtensions => match ext.unsupported_critical {
                Some(id) => Err(ValidationError::UnsupportedCriticalExtension {
                    position,
                    oid: const_oid::ObjectIdentifier::from_bytes(id)
                        .map(|o| o.to_string())
                        .unwrap_or_else(|_| "(malformed OID)".into()),
                }),
                None => Ok(()),
            },
            Check::PolicyConstraints => {
                if ext.policy_constraints {
                    Err(ValidationError::PolicyConstraintsNotProcessed { position })
                } else {
                    Ok(())
                }
            }
            Check::KeyPolicy => opts.key_policy.check(cert).map(|_| ()).map_err(|e| {
                ValidationError::UnsupportedKey {
                    position,
                    detail: e.0,
                }
            }),
            // Link and path checks are run by path building and the audit.
            Check::Signature | Check::NameConstraints | Check::Depth => Ok(()),
        }
    }
}
