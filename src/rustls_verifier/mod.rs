//! The rustls adapter: a [`ClientCertVerifier`] over a [`ChainValidator`].
//!
//! This is the only module that implements the rustls verifier trait, so the
//! core stays independent of its signature (rustls 0.24 renames it).
//!
//! Revocation runs in two stages. With a [`RevocationChecker`]
//! configured, stage 1 runs inside `verify_client_cert`, right after chain
//! validation, on the verified path: deny lists, CRLs and cached OCSP
//! answers; a revoked certificate ends the handshake with
//! `certificate_revoked`, an undetermined status under hard-fail with
//! `unknown_ca` (as OpenSSL, BoringSSL and rustls do). Certificates that need
//! I/O (OCSP fetches, remote stores) are left to stage 2,
//! [`MtlsClientVerifier::check_connection`], which the acceptor calls after
//! the handshake and before serving — on every connection, resumed sessions
//! included, since rustls does not re-verify a resumed client certificate.

pub(crate) mod stage1;

use stage1::{record_admitted, record_refusal, record_revocation, recorded_leaf};
use std::fmt;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};

use crate::chain_validator::{CertPosition, ChainValidator, ValidationError, VerifiedChain};
use crate::reason::{ReasonCode, TlsAlert};
use crate::revocation::{
    ImmediateCheck, KeptAnswer, RevocationChain, RevocationChecker, RevocationError,
    RevocationOutcome,
};
use crate::x509::cert::Cert;
use crate::x509::name::rfc2253;
use crate::x509::parsed::ParsedCertificate;

/// How a listener treats client certificates.
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

    /// Stage 2 of revocation, after the handshake, for a caller holding
    /// only what the TLS connection reports (leaf first, then the
    /// intermediates as sent): validates the chain again (a cache hit for a
    /// fresh handshake, which parses nothing; a real check for a resumed
    /// session or a changed trust store), then runs
    /// [`check_chain`](Self::check_chain).
    ///
    /// Returns `Ok(None)` when nothing is to be checked (no checker,
    /// `Passthrough` mode, no certificate in `Optional` mode); `Err` when the
    /// chain no longer validates.
    pub async fn check_connection(
        &self,
        peer_certificates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Option<RevocationOutcome>, RevocationError> {
        if self.revocation.is_none() || self.mode == ValidationMode::Passthrough {
            return Ok(None);
        }
        let Some((end_entity, intermediates)) = peer_certificates.split_first() else {
            return Ok(None);
        };
        let refs: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
        let chain = self
            .validator
            .validate(end_entity, &refs, now)
            .map_err(RevocationError::PathRevalidation)?;
        Ok(self.check_chain(&chain, now).await)
    }

    /// Stage 2 of revocation on a verified chain: every source, performing
    /// I/O where needed. `None` without a checker; otherwise the outcome,
    /// whose [`error`](RevocationOutcome::error) says whether to deny (a
    /// connection policy may still see the status first, as CloudFront
    /// connection functions do).
    pub async fn check_chain(
        &self,
        chain: &VerifiedChain,
        now: UnixTime,
    ) -> Option<RevocationOutcome> {
        let checker = self.revocation.as_ref()?;
        Some(
            checker
                .check(&RevocationChain::from_verified(chain), now)
                .await,
        )
    }

    /// Stage 1: revocation answers available without I/O, on the verified
    /// path, from the CRLs and deny list of the generation whose trust store
    /// validated it (when a reload swapped in another meanwhile, from the
    /// newer one).
    fn check_revocation_now(
        &self,
        checker: &RevocationChecker,
        chain: &VerifiedChain,
        now: UnixTime,
    ) -> Result<(), Refusal> {
        let store = self.validator.trust_store().load_guard();
        let _pin = (store.generation() == chain.trust_store_generation())
            .then(|| crate::revocation::generation::pin(&store));
        // A chain seen before, with the same data behind every source: the
        // same answer as last time.
        if let Some(kept) = chain.kept::<KeptAnswer>() {
            if checker.still_answers(&kept) {
                record_revocation(kept.status.clone());
                return Ok(());
            }
        }
        // Stamps first: data changed while checking gets a new stamp, so
        // the answer is never kept under the stamp of data it did not see.
        let versions = checker.data_versions();
        match checker.check_now(&RevocationChain::from_verified(chain), now) {
            ImmediateCheck::Allowed(status) => {
                if let Some(versions) = versions {
                    chain.keep(Arc::new(checker.keep(versions, status.clone())));
                }
                record_revocation(status);
                Ok(())
            }
            ImmediateCheck::Denied(e) => Err(Refusal {
                // Revocation names certificates by their place in what the
                // client sent, as validation does.
                position: e.position(),
                rejection: Rejection::Revocation(e),
            }),
            // Pending: stage 2 decides after the handshake.
            _ => Ok(()),
        }
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
        self.stage1(end_entity, intermediates, now)
            .map(drop)
            .map_err(|refusal| refusal.rejection)
    }

    /// Stage 1, saying which presented certificate a refusal concerns: the
    /// verified chain, or in `Passthrough` mode the parsed (unverified) leaf.
    pub(crate) fn stage1(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Stage1Outcome, Refusal> {
        if self.mode == ValidationMode::Passthrough {
            // Only proof of possession is checked, which needs a readable key.
            return ParsedCertificate::from_der(end_entity.clone().into_owned())
                .map(Stage1Outcome::Unverified)
                .ok_or(Refusal {
                    rejection: Rejection::UnreadableCertificate,
                    position: Some(CertPosition::Leaf),
                });
        }
        let refs: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
        let chain = self
            .validator
            .validate(end_entity, &refs, now)
            .map_err(Refusal::from)?;
        if let Some(checker) = &self.revocation {
            self.check_revocation_now(checker, &chain, now)?;
        }
        Ok(Stage1Outcome::Verified(chain))
    }

    /// Stage 1 again for a chain it admitted before (a repeated forwarded
    /// chain): `None` when the chain must be validated anew (the trust store
    /// changed, or the clock left the path's validity window); otherwise
    /// the revocation answers available without I/O, asked again.
    pub(crate) fn stage1_again(
        &self,
        outcome: &Stage1Outcome,
        now: UnixTime,
    ) -> Option<Result<Stage1Outcome, Refusal>> {
        match outcome {
            Stage1Outcome::Unverified(_) => {
                (self.mode == ValidationMode::Passthrough).then(|| Ok(outcome.clone()))
            }
            Stage1Outcome::Verified(chain) => {
                if self.mode == ValidationMode::Passthrough
                    || !self.validator.still_current(chain, now)
                {
                    return None;
                }
                if let Some(checker) = &self.revocation {
                    if let Err(refusal) = self.check_revocation_now(checker, chain, now) {
                        return Some(Err(refusal));
                    }
                }
                Some(Ok(outcome.clone()))
            }
        }
    }

    /// What a refused connection's log record says about the refusal: the
    /// failed check and the certificate it concerns, named by its place in
    /// the presented chain and its subject, e.g. `intermediate certificate #0
    /// (CN=Acme Issuing CA,O=Acme): pathLenConstraint 0 exceeded by 1
    /// intermediate(s) below it`. Chain-wide failures (depth, budgets) concern
    /// no certificate and read as the error alone.
    ///
    /// `end_entity` and `intermediates` are what the client presented. Only
    /// called for refusals: it parses and formats.
    pub(crate) fn refusal_detail(
        &self,
        refusal: &Refusal,
        end_entity: &[u8],
        intermediates: &[CertificateDer<'_>],
    ) -> String {
        let text = refusal.rejection.to_string();
        let Some(position) = refusal.position else {
            return text;
        };
        let presented_subject =
            |der: &[u8]| Cert::parse(der).ok().and_then(|cert| rfc2253(cert.subject));
        let subject = match position {
            CertPosition::Leaf => presented_subject(end_entity),
            CertPosition::Intermediate(i) => {
                intermediates.get(i).and_then(|der| presented_subject(der))
            }
            // The store loaded now: a reload between validation and this
            // line (rare, and only ever on a refusal) could name the anchor
            // of the same index in the new generation.
            CertPosition::TrustAnchor(i) => self
                .validator
                .trust_store()
                .load_guard()
                .anchors()
                .get(i)
                .map(|anchor| anchor.subject().to_owned()),
        };
        let named = match subject.filter(|s| !s.is_empty()) {
            Some(subject) => format!("{position} ({subject})"),
            None => position.to_string(),
        };
        // Most errors start with the certificate's name: the subject joins
        // it there instead of the name being written twice.
        match text.strip_prefix(&position.to_string()) {
            Some(rest) => format!("{named}{rest}"),
            None => format!("{named}: {text}"),
        }
    }

    fn verify_handshake_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, Error> {
        // Read with this crate's parser so v1 leaves (which webpki refuses)
        // can prove possession too. Stage 1 parsed the leaf already: its
        // parse is reused; outside an acceptor (nothing recorded) only the
        // key is read.
        let recorded = recorded_leaf(cert);
        let reparsed;
        let (spki, spki_alg, public_key) = match &recorded {
            Some(leaf) => {
                let view = leaf.view();
                (view.spki, view.spki_alg, view.public_key)
            }
            None => {
                reparsed = Cert::parse_head(cert)
                    .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
                (reparsed.spki, reparsed.spki_alg, reparsed.public_key)
            }
        };
        let algorithms = self.validator.algorithms();
        if tls13 {
            return rustls::crypto::verify_tls13_signature_with_raw_key(
                message,
                &SubjectPublicKeyInfoDer::from(spki),
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
            if alg.public_key_alg_id().as_ref() != spki_alg {
                continue;
            }
            return alg
                .verify_signature(public_key, message, dss.signature())
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

/// A stage-1 refusal and the presented certificate it concerns (the leaf,
/// or an intermediate by its index in what the client sent).
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) rejection: Rejection,
    pub(crate) position: Option<CertPosition>,
}

impl From<ValidationError> for Refusal {
    fn from(e: ValidationError) -> Self {
        Self {
            position: e.position(),
            rejection: Rejection::Validation(e),
        }
    }
}

/// What stage 1 admitted.
#[derive(Clone, Debug)]
pub(crate) enum Stage1Outcome {
    /// The chain validated (and no revocation answer refused it).
    Verified(VerifiedChain),
    /// `Passthrough`: the leaf, parsed but not validated.
    Unverified(ParsedCertificate),
}

impl Stage1Outcome {
    /// The leaf, parsed.
    pub(crate) fn leaf(&self) -> &ParsedCertificate {
        match self {
            Self::Verified(chain) => chain.end_entity(),
            Self::Unverified(leaf) => leaf,
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
        self.stage1(end_entity, intermediates, now)
            .map(|outcome| {
                record_admitted(outcome);
                ClientCertVerified::assertion()
            })
            .map_err(|refusal| {
                let error = refusal.rejection.to_rustls();
                record_refusal(end_entity, || {
                    let detail = self.refusal_detail(&refusal, end_entity, intermediates);
                    (refusal.rejection, detail)
                });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::RevocationMethod;
    use crate::trust_store::{TrustStore, TrustStoreHandle};

    fn cert(common_name: &str, ca: bool) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Acme");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        if ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        (params.self_signed(&key).unwrap(), key)
    }

    /// A verifier whose store holds one anchor, `CN=Acme Root,O=Acme`.
    fn verifier() -> MtlsClientVerifier {
        let (root, _) = cert("Acme Root", true);
        let store = TrustStore::from_pem(root.pem().as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let validator = ChainValidator::builder(TrustStoreHandle::new(store), provider)
            .build()
            .unwrap();
        MtlsClientVerifier::builder(Arc::new(validator))
            .build()
            .unwrap()
    }

    fn detail(error: impl Into<Refusal>) -> String {
        let (leaf, _) = cert("my-client", false);
        let (intermediate, _) = cert("Acme Issuing CA", true);
        let intermediates = [
            CertificateDer::from(vec![0x30, 0x00]),
            intermediate.der().clone(),
        ];
        verifier().refusal_detail(&error.into(), leaf.der(), &intermediates)
    }

    #[test]
    fn names_the_certificate_by_place_and_subject() {
        assert_eq!(
            detail(ValidationError::Expired {
                position: CertPosition::Leaf,
                not_after: 1,
                now: 2,
            }),
            "leaf certificate (CN=my-client,O=Acme): expired at 1970-01-01T00:00:01Z (now 1970-01-01T00:00:02Z)"
        );
        assert_eq!(
            detail(ValidationError::PathLenConstraintViolated {
                position: CertPosition::Intermediate(1),
                limit: 0,
                actual: 1,
            }),
            "intermediate certificate #1 (CN=Acme Issuing CA,O=Acme): pathLenConstraint 0 \
             exceeded by 1 intermediate(s) below it"
        );
        assert_eq!(
            detail(ValidationError::IssuerKeyUsageInvalid {
                position: CertPosition::TrustAnchor(0),
            }),
            "trust anchor #0 (CN=Acme Root,O=Acme): keyUsage lacks keyCertSign"
        );
        // An error whose text does not start with the certificate's name.
        assert_eq!(
            detail(ValidationError::UnknownIssuer {
                position: CertPosition::Leaf,
            }),
            "leaf certificate (CN=my-client,O=Acme): no path to a trust anchor: issuer of the \
             leaf certificate is unknown"
        );
    }

    #[test]
    fn unreadable_or_missing_certificates_keep_their_place() {
        // Intermediate #0 is not a certificate: no subject to show.
        assert_eq!(
            detail(ValidationError::BadEncoding {
                position: CertPosition::Intermediate(0),
                detail: "truncated",
            }),
            "intermediate certificate #0: malformed certificate: truncated"
        );
        assert_eq!(
            detail(ValidationError::IssuerNotCa {
                position: CertPosition::TrustAnchor(7),
            }),
            "trust anchor #7: used as an issuer but is not a CA certificate"
        );
    }

    #[test]
    fn chain_wide_failures_read_as_the_error_alone() {
        assert_eq!(
            detail(ValidationError::MaxChainDepthExceeded { depth: 5, limit: 4 }),
            "chain depth 5 exceeds the limit of 4 (including the trust anchor)"
        );
        assert_eq!(
            detail(ValidationError::BudgetExceeded { what: "signature" }),
            "path building exceeded its signature budget"
        );
    }

    #[test]
    fn revocation_names_the_presented_certificate() {
        // The intermediate was sent second.
        let refusal = Refusal {
            rejection: Rejection::Revocation(RevocationError::Revoked {
                position: CertPosition::Intermediate(1),
                serial: crate::x509::serial::SerialNumber::parse("01").unwrap(),
                method: RevocationMethod::Crl,
                reason: Some(crate::revocation::CrlReason::KEY_COMPROMISE),
            }),
            position: Some(CertPosition::Intermediate(1)),
        };
        assert_eq!(
            detail(refusal),
            "intermediate certificate #1 (CN=Acme Issuing CA,O=Acme) (serial 01) is revoked \
             according to the CRL (reason keyCompromise)"
        );
    }
}
