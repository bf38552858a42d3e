//! The rustls adapter: a [`ClientCertVerifier`] over a [`ChainValidator`].
//!
//! This is the only module that implements the rustls verifier trait, so the
//! core stays independent of its signature (rustls 0.24 renames it).
//!
//! Revocation runs in two stages (SPEC §9). With a [`RevocationChecker`]
//! configured, stage 1 runs inside `verify_client_cert`, right after chain
//! validation, on the verified path: deny lists, CRLs and cached OCSP
//! answers; a revoked certificate ends the handshake with
//! `certificate_revoked`, an undetermined status under hard-fail with
//! `unknown_ca` (as OpenSSL, BoringSSL and rustls do). Certificates that need
//! I/O (OCSP fetches, remote stores) are left to stage 2,
//! [`MtlsClientVerifier::check_connection`], which the acceptor calls after
//! the handshake and before serving — on every connection, resumed sessions
//! included, since rustls does not re-verify a resumed client certificate.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};

use crate::chain_validator::cert::Cert;
use crate::chain_validator::{ChainValidator, ValidationError, VerifiedPath};
use crate::reason::{ReasonCode, TlsAlert};
use crate::revocation::{
    ImmediateCheck, RevocationChain, RevocationChecker, RevocationError, RevocationOutcome,
    RevocationStatus,
};

/// How a listener treats client certificates (SPEC §2).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
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
    revocation: Option<Arc<RevocationChecker>>,
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

    /// Checks revocation of verified chains with `checker` (stage 1 in the
    /// handshake, stage 2 through [`MtlsClientVerifier::check_connection`]).
    /// Not applied in `Passthrough` mode, which validates nothing.
    pub fn revocation(mut self, checker: Arc<RevocationChecker>) -> Self {
        self.revocation = Some(checker);
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
            revocation: self.revocation,
        })
    }
}

/// A rustls client-certificate verifier for the three validation modes.
pub struct MtlsClientVerifier {
    validator: Arc<ChainValidator>,
    mode: ValidationMode,
    hints: Vec<DistinguishedName>,
    schemes: Vec<SignatureScheme>,
    revocation: Option<Arc<RevocationChecker>>,
}

impl fmt::Debug for MtlsClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MtlsClientVerifier")
            .field("mode", &self.mode)
            .field("hints", &self.hints.len())
            .field("revocation", &self.revocation.is_some())
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
            revocation: None,
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

    /// The revocation checker, when configured.
    pub fn revocation(&self) -> Option<&Arc<RevocationChecker>> {
        self.revocation.as_ref()
    }

    /// Stage 2 of revocation, after the handshake: validates the presented
    /// chain again (a cache hit for a fresh handshake; a real check for a
    /// resumed session or a changed trust store) and runs every source,
    /// performing I/O where needed.
    ///
    /// `peer_certificates` is what the TLS connection reports: leaf first,
    /// then the intermediates as sent. Returns `Ok(None)` when nothing is to
    /// be checked (no checker, `Passthrough` mode, no certificate in
    /// `Optional` mode); otherwise the outcome, whose
    /// [`error`](RevocationOutcome::error) says whether to deny (a connection
    /// policy may still see the status first, as CloudFront connection
    /// functions do). `Err` when the chain no longer validates.
    pub async fn check_connection(
        &self,
        peer_certificates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Option<RevocationOutcome>, RevocationError> {
        let Some(checker) = &self.revocation else {
            return Ok(None);
        };
        if self.mode == ValidationMode::Passthrough {
            return Ok(None);
        }
        let Some((end_entity, intermediates)) = peer_certificates.split_first() else {
            return Ok(None);
        };
        let refs: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
        for _ in 0..3 {
            let path = self
                .validator
                .validate(end_entity, &refs, now)
                .map_err(RevocationError::PathRevalidation)?;
            let chain = path.to_chain(end_entity, intermediates, &self.validator);
            // No anchor: the store was replaced between the two loads; the
            // next validation runs against the new one.
            let Ok(revocation_chain) = RevocationChain::from_verified(&chain) else {
                continue;
            };
            return Ok(Some(checker.check(&revocation_chain, now).await));
        }
        Err(RevocationError::AnchorUnavailable)
    }

    /// Stage 1: revocation answers available without I/O, on the verified path.
    fn check_revocation_now(
        &self,
        checker: &RevocationChecker,
        end_entity: &[u8],
        intermediates: &[&[u8]],
        mut path: VerifiedPath,
        now: UnixTime,
    ) -> Result<(), Rejection> {
        for _ in 0..3 {
            let store = self.validator.trust_store().load_guard();
            if store.generation() != path.trust_store_generation() {
                // Replaced since validation: validate against the new store
                // so the anchor index means what it says.
                path = self
                    .validator
                    .validate(end_entity, intermediates, now)
                    .map_err(Rejection::Validation)?;
                continue;
            }
            let anchor = store
                .anchor_der(path.anchor_index())
                .ok_or(Rejection::Revocation(RevocationError::AnchorUnavailable))?;
            let chain = RevocationChain::new(
                end_entity,
                path.intermediate_indices()
                    .filter_map(|i| intermediates.get(i).copied()),
                anchor,
            );
            return match checker.check_now(&chain, now) {
                ImmediateCheck::Denied(e) => Err(Rejection::Revocation(e)),
                ImmediateCheck::Allowed(status) => {
                    record_revocation(status);
                    Ok(())
                }
                // Pending: stage 2 decides after the handshake.
                _ => Ok(()),
            };
        }
        Err(Rejection::Revocation(RevocationError::AnchorUnavailable))
    }

    /// Stage 1 with the reason: what `verify_client_cert` does, returning why
    /// a chain was refused (connection logs need the exact reason code, which
    /// the TLS error alone does not carry).
    pub fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), Rejection> {
        if self.mode == ValidationMode::Passthrough {
            // Only proof of possession is checked, which needs a readable key.
            Cert::parse(end_entity).map_err(|_| Rejection::UnreadableCertificate)?;
            return Ok(());
        }
        let refs: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
        let path = self
            .validator
            .validate(end_entity, &refs, now)
            .map_err(Rejection::Validation)?;
        if let Some(checker) = &self.revocation {
            self.check_revocation_now(checker, end_entity, &refs, path, now)?;
        }
        Ok(())
    }

    fn verify_handshake_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, Error> {
        // Parsed with this crate's parser so v1 leaves (which webpki refuses)
        // can prove possession too; stage 1 parsed the whole certificate
        // already, only the key is read again.
        let head = Cert::parse_head(cert)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let algorithms = self.validator.algorithms();
        if tls13 {
            return rustls::crypto::verify_tls13_signature_with_raw_key(
                message,
                &SubjectPublicKeyInfoDer::from(head.spki),
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
            if alg.public_key_alg_id().as_ref() != head.spki_alg {
                continue;
            }
            return alg
                .verify_signature(head.public_key, message, dss.signature())
                .map(|_| HandshakeSignatureValid::assertion())
                .map_err(|_| Error::InvalidCertificate(CertificateError::BadSignature));
        }
        Err(Error::InvalidCertificate(CertificateError::BadSignature))
    }
}

/// Why stage 1 refused a client certificate.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The chain does not validate.
    #[error(transparent)]
    Validation(ValidationError),
    /// A certificate is revoked or its status cannot be determined.
    #[error(transparent)]
    Revocation(RevocationError),
    /// (Passthrough) the leaf cannot be parsed, so possession cannot be proven.
    #[error("the client certificate cannot be parsed")]
    UnreadableCertificate,
}

impl Rejection {
    /// The connection-log reason code.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::Validation(e) => e.reason_code(),
            Self::Revocation(e) => e.reason_code(),
            Self::UnreadableCertificate => ReasonCode::ClientCertInvalid,
        }
    }

    /// The rustls error carrying the right alert.
    pub fn to_rustls(&self) -> Error {
        match self {
            Self::Validation(e) => rustls_error(e),
            Self::Revocation(e) => rustls_revocation_error(e),
            Self::UnreadableCertificate => Error::InvalidCertificate(CertificateError::BadEncoding),
        }
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

/// The rustls error whose alert is the one the revocation error calls for.
pub fn rustls_revocation_error(error: &RevocationError) -> Error {
    if let RevocationError::PathRevalidation(e) = error {
        return rustls_error(e);
    }
    let cert_error = match error.tls_alert() {
        TlsAlert::CertificateRevoked => CertificateError::Revoked,
        TlsAlert::UnknownCa => CertificateError::UnknownRevocationStatus,
        TlsAlert::BadCertificate => CertificateError::BadEncoding,
        _ => CertificateError::Other(rustls::OtherError(Arc::new(error.clone()))),
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
        self.verify_chain(end_entity, intermediates, now)
            .map(|()| ClientCertVerified::assertion())
            .map_err(|r| {
                let error = r.to_rustls();
                record_rejection(r);
                error
            })
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

/// What stage 1 learnt about one handshake, besides its TLS result.
#[derive(Debug, Default)]
pub struct Stage1Report {
    /// Why the client certificate was refused, when it was.
    pub rejection: Option<Rejection>,
    /// The complete revocation status, when every answer was available
    /// inside the handshake (deny list, CRL, cached OCSP): stage 2 need not
    /// ask the sources again.
    pub revocation: Option<RevocationStatus>,
    /// The ClientHello's SNI, when the configuration's certificate resolver
    /// records it (the listeners built by `MtlsConfig` do).
    pub sni: Option<String>,
}

tokio::task_local! {
    static STAGE1: std::cell::RefCell<Stage1Report>;
}

/// Runs a handshake future and returns, with its output, what stage 1
/// learnt: the reason the client certificate was refused (if it was) and
/// the revocation status when it was complete.
///
/// rustls calls the verifier synchronously while the handshake future is
/// polled, so a task-local slot ties the report to this one connection; the
/// TLS error alone carries only the alert.
pub async fn capture_stage1<F: std::future::Future>(handshake: F) -> (F::Output, Stage1Report) {
    STAGE1
        .scope(
            std::cell::RefCell::new(Stage1Report::default()),
            async move {
                let output = handshake.await;
                let report = STAGE1.with(|slot| std::mem::take(&mut *slot.borrow_mut()));
                (output, report)
            },
        )
        .await
}

fn record_rejection(rejection: Rejection) {
    // Outside `capture_stage1` there is nobody to tell.
    let _ = STAGE1.try_with(|slot| slot.borrow_mut().rejection = Some(rejection));
}

/// Tells the running [`capture_stage1`] which name the ClientHello asked for.
pub fn record_sni(sni: Option<&str>) {
    if let Some(name) = sni {
        let _ = STAGE1.try_with(|slot| slot.borrow_mut().sni = Some(name.to_string()));
    }
}

fn record_revocation(status: RevocationStatus) {
    let _ = STAGE1.try_with(|slot| slot.borrow_mut().revocation = Some(status));
}
