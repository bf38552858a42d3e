//! Stage 2, after the handshake: the revocation answers that need I/O (and
//! every answer again on a resumed session), then the connection policy,
//! which sees the revocation status and may override it as a CloudFront
//! connection function may.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, UnixTime};

use super::Site;
use crate::chain_validator::{ClientCertInfo, VerifiedChain};
use crate::header_builder::{ConnectionFacts, ConnectionHeaders};
use crate::policy::{evaluate, Connection, PolicyOutcome};
use crate::reason::ReasonCode;
use crate::revocation::{RevocationError, RevocationStatus};
use crate::rustls_verifier::Rejection;
use crate::x509::fields::CertFields;

/// Why stage 2 refuses a connection: the reason code, the detail for the
/// log record, and the typed cause for the application.
pub(crate) struct Refused {
    pub(crate) reason: ReasonCode,
    pub(crate) detail: String,
    pub(crate) cause: RefusalCause,
}

/// What refused a connection after its handshake.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefusalCause {
    /// A resumed session's restored chain failed stage 1 again.
    ResumedSession(Rejection),
    /// A revocation source refused the certificate (no policy overrode it).
    Revocation(RevocationError),
    /// The connection policy denied the connection, or failed
    /// (`ConnectionFunctionError`).
    Policy {
        /// `ConnectionFunctionDenied` or `ConnectionFunctionError`.
        reason: ReasonCode,
        /// What failed, for errors and panics.
        detail: Option<String>,
    },
}

/// What the revocation stage found.
pub(crate) struct Revocation {
    /// The status every source answered (`None`: nothing was checked).
    pub(crate) status: Option<RevocationStatus>,
    /// A denial, which a policy may still override.
    pub(crate) denial: Option<Refused>,
}

/// The revocation stage on the verified chain (`None`: nothing was
/// verified, as in `Passthrough` mode). `stage1` is the complete status the
/// handshake found without I/O, if it did: then the sources are not asked
/// again (unless the session was resumed, whose chain rustls did not verify).
pub(crate) async fn revocation(
    site: &Site,
    chain: Option<&VerifiedChain>,
    resumed: bool,
    stage1: Option<RevocationStatus>,
) -> Revocation {
    let Some(chain) = chain else {
        return Revocation {
            status: None,
            denial: None,
        };
    };
    if !resumed && stage1.is_some() {
        return Revocation {
            status: stage1,
            denial: None,
        };
    }
    match site.verifier.check_chain(chain, UnixTime::now()).await {
        Some(outcome) => Revocation {
            denial: outcome.error().map(|e| Refused {
                reason: e.reason_code(),
                detail: e.to_string(),
                cause: RefusalCause::Revocation(e.clone()),
            }),
            status: Some(outcome.status().clone()),
        },
        None => Revocation {
            status: None,
            denial: None,
        },
    }
}

/// What the policy stage decided, with the policy's custom log data.
pub(crate) struct Decision {
    pub(crate) refused: Option<Refused>,
    pub(crate) custom_data: Option<String>,
}

/// What the policy sees of one connection.
pub(crate) struct PolicyInput<'a> {
    pub(crate) peer: SocketAddr,
    pub(crate) connection_id: &'a str,
    pub(crate) sni: Option<String>,
    pub(crate) client_cert: Option<&'a Arc<ClientCertInfo>>,
    /// The verified chain (its intermediates are parsed already).
    pub(crate) chain: Option<&'a VerifiedChain>,
    pub(crate) peer_certs: &'a Arc<[CertificateDer<'static>]>,
}

/// The policy stage: without a policy, a revocation denial refuses.
pub(crate) async fn decide(
    site: &Site,
    input: PolicyInput<'_>,
    revocation: &mut Revocation,
) -> Decision {
    let Some(policy) = &site.policy else {
        return Decision {
            refused: revocation.denial.take(),
            custom_data: None,
        };
    };
    let mut connection = Connection::without_certificate(
        input.peer.ip(),
        &site.distribution_id,
        input.connection_id,
    )
    .with_endpoint(input.sni);
    if let Some(info) = input.client_cert {
        connection = connection.with_presented(info.clone(), input.peer_certs.clone());
        if let Some(chain) = input.chain {
            connection = connection.with_parsed_intermediates(chain.intermediates().to_vec());
        }
    }
    if let Some(status) = &revocation.status {
        connection = connection.with_revocation_status(status.clone());
    }
    match evaluate(policy.as_ref(), &connection).await {
        PolicyOutcome::Allowed { custom_data } => Decision {
            refused: None,
            custom_data,
        },
        PolicyOutcome::Denied {
            reason,
            custom_data,
            detail,
        } => Decision {
            refused: Some(Refused {
                reason,
                detail: detail
                    .clone()
                    .unwrap_or_else(|| "denied by the connection policy".into()),
                cause: RefusalCause::Policy { reason, detail },
            }),
            custom_data,
        },
    }
}

/// The headers every request of a connection receives.
pub(crate) fn render_headers(
    site: &Site,
    cert: Option<&CertFields>,
    verified: bool,
    connection_id: &str,
    tls_version: Option<&str>,
    tls_cipher: Option<&str>,
) -> ConnectionHeaders {
    site.headers.render(&ConnectionFacts {
        cert,
        verified,
        connection_id: Some(connection_id),
        tls_version,
        tls_cipher,
    })
}
