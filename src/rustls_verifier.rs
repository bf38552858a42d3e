//! The rustls adapter: a [`ClientCertVerifier`] over a [`ChainValidator`].
//!
//! This is the only module that implements the rustls verifier trait, so the
//! core stays independent of its signature (rustls 0.24 renames it).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};

use crate::chain_validator::cert::Cert;
use crate::chain_validator::{ChainValidator, ValidationError};
use crate::reason::TlsAlert;

/// How a listener treats client certificates (SPEC §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ValidationMode {
    /// A certificate is mandatory and must chain to the trust store.
    #[default]
    Required,
    /// A certificate is requested; without one the connection proceeds, with
    /// one it must be valid.
    Optional,
    /// A certificate is requested but not validated against a trust store; only
    /// proof of possession (CertificateVerify) is checked. The application
    /// receives it in headers.
    Passthrough,
}

/// A configuration error caught by [`MtlsClientVerifierBuilder::build`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifierBuildError {
    /// The CA names to advertise exceed the cap.
    #[error("advertised CA names take {size} bytes, more than the cap of {limit}; raise the cap or turn advertise_ca_names off")]
    CaNamesTooLarge {
        /// Their encoded size.
        size: usize,
        /// The cap.
        limit: usize,
    },
}

/// Builds an [`MtlsClientVerifier`].
#[derive(Debug)]
pub struct MtlsClientVerifierBuilder {
    validator: Arc<ChainValidator>,
    mode: ValidationMode,
    advertise_ca_names: bool,
    ca_names_limit: usize,
}

impl MtlsClientVerifierBuilder {
    /// The validation mode (default `Required`).
    pub fn mode(mut self, mode: ValidationMode) -> Self {
        self.mode = mode;
        self
    }

    /// Send the trust store's subject DNs in CertificateRequest (default off).
    ///
    /// The names are taken when the verifier is built; a reloaded trust store
    /// keeps validating immediately, and the hints follow on the next build.
    pub fn advertise_ca_names(mut self, yes: bool) -> Self {
        self.advertise_ca_names = yes;
        self
    }

    /// Cap on the encoded size of advertised CA names (default 16 KiB; the
    /// TLS field itself cannot exceed 65 535 bytes).
    pub fn ca_names_limit(mut self, bytes: usize) -> Self {
        self.ca_names_limit = bytes.min(65_535);
        self
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<MtlsClientVerifier, VerifierBuildError> {
        let hints = if self.advertise_ca_names {
            let store = self.validator.trust_store().load();
            let names = store.subjects().to_vec();
            // Each name is sent with a two-byte length prefix.
            let size: usize = names.iter().map(|n| n.as_ref().len() + 2).sum();
            if size > self.ca_names_limit {
                return Err(VerifierBuildError::CaNamesTooLarge {
                    size,
                    limit: self.ca_names_limit,
                });
            }
            names
        } else {
            Vec::new()
        };
        let schemes = self
            .validator
            .algorithms()
            .mapping
            .iter()
            .map(|(scheme, _)| *scheme)
            .collect();
        Ok(MtlsClientVerifier {
            validator: self.validator,
            mode: self.mode,
            hints,
            schemes,
        })
    }
}

/// A rustls client-certificate verifier for the three validation modes.
pub struct MtlsClientVerifier {
    validator: Arc<ChainValidator>,
    mode: ValidationMode,
    hints: Vec<DistinguishedName>,
    schemes: Vec<SignatureScheme>,
}

impl fmt::Debug for MtlsClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MtlsClientVerifier")
            .field("mode", &self.mode)
            .field("hints", &self.hints.len())
            .finish_non_exhaustive()
    }
}

impl MtlsClientVerifier {
    /// A builder over `validator`.
    pub fn builder(validator: Arc<ChainValidator>) -> MtlsClientVerifierBuilder {
        MtlsClientVerifierBuilder {
            validator,
            mode: ValidationMode::Required,
            advertise_ca_names: false,
            ca_names_limit: 16 * 1024,
        }
    }

    /// The mode.
    pub fn mode(&self) -> ValidationMode {
        self.mode
    }

    /// The validator.
    pub fn validator(&self) -> &Arc<ChainValidator> {
        &self.validator
    }

    fn verify_handshake_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, Error> {
        // Parsed with this crate's parser so v1 leaves (which webpki refuses)
        // can prove possession too.
        let parsed = Cert::parse(cert)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let algorithms = self.validator.algorithms();
        if tls13 {
            return rustls::crypto::verify_tls13_signature_with_raw_key(
                message,
                &SubjectPublicKeyInfoDer::from(parsed.spki),
                dss,
                algorithms,
            );
        }
        let candidates = algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ))?;
        for alg in candidates {
            if alg.public_key_alg_id().as_ref() != parsed.spki_alg {
                continue;
            }
            return alg
                .verify_signature(parsed.public_key, message, dss.signature())
                .map(|_| HandshakeSignatureValid::assertion())
                .map_err(|_| Error::InvalidCertificate(CertificateError::BadSignature));
        }
        Err(Error::InvalidCertificate(CertificateError::BadSignature))
    }
}

/// The rustls error whose alert is the one the validation error calls for.
pub fn rustls_error(error: &ValidationError) -> Error {
    let cert_error = match (error.tls_alert(), error) {
        (_, ValidationError::NotYetValid { .. }) => CertificateError::NotValidYet,
        (TlsAlert::CertificateExpired, _) => CertificateError::Expired,
        (TlsAlert::UnknownCa, _) => CertificateError::UnknownIssuer,
        (TlsAlert::CertificateRevoked, _) => CertificateError::Revoked,
        (TlsAlert::AccessDenied, _) => CertificateError::ApplicationVerificationFailure,
        (_, ValidationError::UnsupportedCriticalExtension { .. }) => {
            CertificateError::UnhandledCriticalExtension
        }
        (TlsAlert::UnsupportedCertificate, _) => CertificateError::InvalidPurpose,
        (_, ValidationError::NameConstraintViolation { .. }) => CertificateError::NotValidForName,
        _ => CertificateError::BadEncoding,
    };
    Error::InvalidCertificate(cert_error)
}

impl ClientCertVerifier for MtlsClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mode == ValidationMode::Required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if self.mode == ValidationMode::Passthrough {
            // Only proof of possession is checked, which needs a readable key.
            Cert::parse(end_entity)
                .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
            return Ok(ClientCertVerified::assertion());
        }
        let refs: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
        self.validator
            .validate(end_entity, &refs, now)
            .map(|_| ClientCertVerified::assertion())
            .map_err(|e| rustls_error(&e))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.verify_handshake_signature(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.verify_handshake_signature(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}
