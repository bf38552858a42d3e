//! Signature and key policy: the only place signatures on certificates are checked.
//!
//! Verification always goes through the rustls `CryptoProvider`'s
//! `SignatureVerificationAlgorithm`s, selected by the exact encoded
//! AlgorithmIdentifiers (as webpki does); this crate implements no cryptography.

use rustls::crypto::WebPkiSupportedAlgorithms;

use super::cert::Cert;
use super::der::{single, tag, DerCursor};

/// Contents of the `rsaEncryption` AlgorithmIdentifier (with NULL parameters).
const RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// id-ecPublicKey OID TLV.
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
/// id-Ed25519 AlgorithmIdentifier contents.
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// Which public keys are acceptable (ALB's list: RSA 2048–8192, ECDSA P-256/384/521, Ed25519).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Smallest RSA modulus, in bits.
    pub rsa_min_bits: usize,
    /// Largest RSA modulus, in bits.
    pub rsa_max_bits: usize,
    /// Whether Ed25519 keys are accepted (when the provider supports them).
    pub allow_ed25519: bool,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            rsa_min_bits: 2048,
            rsa_max_bits: 8192,
            allow_ed25519: true,
        }
    }
}

/// The kind of a public key, as recognised by [`KeyPolicy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa { bits: usize },
    EcP256,
    EcP384,
    EcP521,
    Ed25519,
}

/// Why a key is refused; the string names the key or its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRejected(pub(crate) String);

impl KeyPolicy {
    /// Classifies the certificate's key and applies the policy.
    pub(crate) fn check(&self, cert: &Cert<'_>) -> Result<KeyKind, KeyRejected> {
        let kind = classify(cert.spki_alg, cert.public_key)?;
        match kind {
            KeyKind::Rsa { bits } if bits < self.rsa_min_bits || bits > self.rsa_max_bits => {
                Err(KeyRejected(format!(
                    "RSA key of {bits} bits (allowed {}..={})",
                    self.rsa_min_bits, self.rsa_max_bits
                )))
            }
            // CA/Browser Forum BR §6.1.5: the modulus size is a multiple of 8.
            KeyKind::Rsa { bits } if bits % 8 != 0 => Err(KeyRejected(format!(
                "RSA key of {bits} bits (not a multiple of 8)"
            ))),
            KeyKind::Ed25519 if !self.allow_ed25519 => Err(KeyRejected("Ed25519 key".into())),
            k => Ok(k),
        }
    }
}

fn classify(alg: &[u8], key: &[u8]) -> Result<KeyKind, KeyRejected> {
    if alg == RSA_ENCRYPTION {
        return rsa_modulus_bits(key).map(|bits| KeyKind::Rsa { bits });
    }
    if alg == ED25519 {
        return Ok(KeyKind::Ed25519);
    }
    if let Some(params) = alg.strip_prefix(EC_PUBLIC_KEY) {
        return match params {
            P256 => Ok(KeyKind::EcP256),
            P384 => Ok(KeyKind::EcP384),
            P521 => Ok(KeyKind::EcP521),
            _ => Err(KeyRejected("ECDSA key on an unsupported curve".into())),
        };
    }
    Err(KeyRejected(format!(
        "public key algorithm {}",
        describe_algorithm(alg)
    )))
}

fn rsa_modulus_bits(key: &[u8]) -> Result<usize, KeyRejected> {
    let bad = || KeyRejected("malformed RSA public key".into());
    let seq = single(key, tag::SEQUENCE, "RSAPublicKey").map_err(|_| bad())?;
    let mut c = DerCursor::new(seq.value);
    let n = c.expect(tag::INTEGER, "modulus").map_err(|_| bad())?.value;
    c.expect(tag::INTEGER, "publicExponent")
        .map_err(|_| bad())?;
    c.finish("RSAPublicKey").map_err(|_| bad())?;
    if n.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(bad()); // a negative modulus
    }
    let n = match n {
        [0, rest @ ..] => rest,
        other => other,
    };
    let first = *n.first().ok_or_else(bad)?;
    if first == 0 {
        return Err(bad()); // not minimally encoded
    }
    let leading = usize::try_from(first.leading_zeros()).map_err(|_| bad())?;
    Ok((n.len() - 1) * 8 + (8 - leading))
}

/// A readable name for an AlgorithmIdentifier (its OID in dotted form).
pub(crate) fn describe_algorithm(alg: &[u8]) -> String {
    let oid = DerCursor::new(alg)
        .expect(tag::OID, "algorithm")
        .ok()
        .and_then(|t| der::asn1::ObjectIdentifier::from_bytes(t.value).ok());
    match oid {
        Some(oid) => oid.to_string(),
        None => "(malformed AlgorithmIdentifier)".into(),
    }
}

/// Why a signature check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignatureFailure {
    /// No provider algorithm has this signature AlgorithmIdentifier.
    UnsupportedAlgorithm,
    /// The algorithm exists but not for the issuer's key type.
    AlgorithmKeyMismatch,
    /// The signature does not verify.
    Invalid,
}

/// Verifies `child`'s signature with `issuer`'s key.
pub(crate) fn verify_signed_by(
    algorithms: &WebPkiSupportedAlgorithms,
    child: &Cert<'_>,
    issuer: &Cert<'_>,
) -> Result<(), SignatureFailure> {
    verify_raw(
        algorithms,
        issuer.spki_alg,
        issuer.public_key,
        child.signature_alg,
        child.tbs,
        child.signature,
    )
}

/// Verifies `signature` over `message` with a key given by its AlgorithmIdentifier
/// contents and BIT STRING octets.
pub(crate) fn verify_raw(
    algorithms: &WebPkiSupportedAlgorithms,
    key_alg: &[u8],
    key: &[u8],
    signature_alg: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureFailure> {
    let mut known_signature_alg = false;
    for alg in algorithms.all {
        if alg.signature_alg_id().as_ref() != signature_alg {
            continue;
        }
        known_signature_alg = true;
        if alg.public_key_alg_id().as_ref() != key_alg {
            continue;
        }
        return alg
            .verify_signature(key, message, signature)
            .map_err(|_| SignatureFailure::Invalid);
    }
    if known_signature_alg {
        Err(SignatureFailure::AlgorithmKeyMismatch)
    } else {
        Err(SignatureFailure::UnsupportedAlgorithm)
    }
}
