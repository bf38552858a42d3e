//! The handshake stage: the site chosen from the ClientHello's SNI, the TLS
//! handshake within the timeout (chain validation and the revocation answers
//! available without I/O run inside it, in the verifier), and what the
//! established connection says about itself.

use std::sync::Arc;
use std::time::Duration;

use rustls::HandshakeKind;
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use super::{Inner, Site};
use crate::chain_validator::ClientCertInfo;
use crate::reason::ReasonCode;
use crate::revocation::RevocationStatus;
use crate::rustls_verifier::stage1::{capture_stage1, Stage1Report};
use crate::rustls_verifier::{Refusal, Rejection, Stage1Outcome};
use crate::x509::fields::CertFields;

/// What the handshake stage learnt, whether or not the handshake finished.
pub(super) struct Handshake<'a, IO> {
    /// The site the ClientHello chose (`None` when none arrived).
    pub(super) site: Option<&'a Site>,
    /// The SNI the ClientHello named.
    pub(super) hello_sni: Option<String>,
    /// The established connection, or why there is none.
    pub(super) outcome: Result<Established<IO>, HandshakeFailure>,
}

/// A finished handshake.
pub(super) struct Established<IO> {
    pub(super) stream: TlsStream<IO>,
    /// The complete revocation status, when stage 1 had every answer.
    pub(super) stage1_revocation: Option<RevocationStatus>,
    /// What stage 1 admitted (`None` when the verifier did not run: no
    /// certificate, or a resumed session).
    pub(super) admitted: Option<Stage1Outcome>,
}

/// Why a handshake did not finish.
pub(super) enum HandshakeFailure {
    /// Not within the handshake timeout.
    TimedOut(Duration),
    /// The TLS handshake failed, or the verifier refused the certificate.
    Failed {
        reason: ReasonCode,
        /// The verifier's typed reason, when it refused.
        rejection: Option<Rejection>,
        /// The leaf the verifier refused (a failed connection keeps none).
        presented_leaf: Option<CertificateDer<'static>>,
        /// For the log record: the failed check and certificate, or the TLS
        /// or I/O error.
        detail: String,
        source: std::io::Error,
    },
}

/// Runs the handshake of one connection. The ClientHello is read first,
/// on every listener: its SNI chooses the site (the default one when none
/// matches or the listener has no SNI sites) and names the connection in
/// its log record, whether or not the handshake then succeeds.
pub(super) async fn run<IO>(inner: &Inner, io: IO) -> Handshake<'_, IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut site: Option<&Site> = None;
    let mut hello_sni: Option<String> = None;
    let mut stage1_revocation = None;
    let mut admitted = None;
    if inner.sites.is_empty() {
        // The only site: a connection whose ClientHello never arrives is
        // still this listener's.
        site = Some(&inner.default);
    }
    let handshake = tokio::time::timeout(inner.handshake_timeout, async {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io)
            .await
            .map_err(|e| (e, Stage1Report::default()))?;
        let sni = start.client_hello().server_name().map(str::to_string);
        let chosen = inner.site(sni.as_deref());
        hello_sni = sni;
        site = Some(chosen);
        let (result, mut report) = capture_stage1(start.into_stream(chosen.config.clone())).await;
        stage1_revocation = report.revocation.take();
        admitted = report.admitted.take();
        result.map_err(|e| (e, report))
    })
    .await;
    let outcome = match handshake {
        Err(_) => Err(HandshakeFailure::TimedOut(inner.handshake_timeout)),
        Ok(Err((source, report))) => {
            let Stage1Report {
                rejection,
                presented_leaf,
                detail,
                ..
            } = report;
            let reason = rejection
                .as_ref()
                .map_or_else(|| classify_handshake_error(&source), Rejection::reason_code);
            Err(HandshakeFailure::Failed {
                reason,
                rejection,
                presented_leaf,
                detail: detail.unwrap_or_else(|| source.to_string()),
                source,
            })
        }
        Ok(Ok(stream)) => Ok(Established {
            stream,
            stage1_revocation,
            admitted,
        }),
    };
    Handshake {
        site,
        hello_sni,
        outcome,
    }
}

/// One copy of what the client sent, shared by the certificate fields, the
/// policy's connection object and stage 2.
pub(super) fn peer_certificates(conn: &rustls::ServerConnection) -> Arc<[CertificateDer<'static>]> {
    conn.peer_certificates()
        .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
        .unwrap_or_else(|| Arc::from(Vec::new()))
}

/// The leaf's facts and textual fields, from the leaf stage 1 parsed
/// (`None` without a certificate).
pub(super) fn leaf_fields(
    admitted: Option<&Stage1Outcome>,
    peer_certs: &Arc<[CertificateDer<'static>]>,
) -> (Option<Arc<ClientCertInfo>>, Option<CertFields>) {
    // Shared with the verified-chain cache: a repeating client's
    // connections hold one copy.
    let client_cert = admitted.and_then(|outcome| outcome.leaf().client_cert_info());
    let cert_fields = client_cert
        .as_ref()
        .map(|info| CertFields::from_presented(info.clone(), peer_certs.clone()));
    (client_cert, cert_fields)
}

/// The textual fields of a leaf stage 1 refused (for the log record).
pub(crate) fn refused_leaf_fields(leaf: CertificateDer<'static>) -> Option<CertFields> {
    let info = Arc::new(ClientCertInfo::from_der(&leaf)?);
    Some(CertFields::from_presented(info, Arc::from(vec![leaf])))
}

/// The negotiated protocol and cipher suite, as logs and headers name them.
pub(super) fn tls_names(conn: &rustls::ServerConnection) -> (Option<String>, Option<String>) {
    (
        conn.protocol_version().map(protocol_name),
        conn.negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite())),
    )
}

pub(super) fn is_resumed(conn: &rustls::ServerConnection) -> bool {
    conn.handshake_kind() == Some(HandshakeKind::Resumed)
}

/// What stage 1 admitted on this connection. A handshake that ran the
/// verifier recorded it; a resumed session restored its chain without the
/// verifier seeing it, and a server that ran the handshake itself recorded
/// nothing: stage 1 runs here (the trust store may have been replaced, the
/// certificate may have expired or been denied since; a fresh handshake's
/// chain is answered from the verified-chain cache without parsing).
pub(super) fn admitted(
    site: &Site,
    conn: &rustls::ServerConnection,
    peer_certs: &[CertificateDer<'static>],
    recorded: Option<Stage1Outcome>,
) -> Result<Option<Stage1Outcome>, Refusal> {
    let Some((leaf, rest)) = peer_certs.split_first() else {
        return Ok(None);
    };
    match recorded {
        Some(outcome) if !is_resumed(conn) => Ok(Some(outcome)),
        _ => site.verifier.stage1(leaf, rest, UnixTime::now()).map(Some),
    }
}

pub(super) fn protocol_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

/// A handshake error the verifier did not explain.
pub(super) fn classify_handshake_error(e: &std::io::Error) -> ReasonCode {
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return ReasonCode::TcpError;
    };
    use rustls::InvalidMessage as M;
    match tls {
        rustls::Error::NoCertificatesPresented => ReasonCode::ClientCertMissing,
        rustls::Error::InvalidCertificate(_) => ReasonCode::ClientCertInvalid,
        // rustls' own ceiling on a handshake message, reached by a client
        // Certificate message before the verifier sees it.
        rustls::Error::InvalidMessage(
            M::CertificatePayloadTooLarge | M::HandshakePayloadTooLarge,
        ) => ReasonCode::ClientCertMaxSizeExceeded,
        rustls::Error::PeerIncompatible(_) => ReasonCode::TlsProtocolMismatch,
        rustls::Error::InvalidMessage(_)
        | rustls::Error::PeerMisbehaved(_)
        | rustls::Error::InappropriateHandshakeMessage { .. }
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::DecryptError => ReasonCode::TlsProtocolError,
        _ => ReasonCode::UnmappedConnectionError,
    }
}
