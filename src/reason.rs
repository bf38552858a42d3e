//! Connection-log reason codes and the TLS alerts that go with them.
//!
//! The set is CloudFront's viewer-mTLS connection-log vocabulary; where the AWS
//! Application Load Balancer uses another word for the same failure the alias
//! is available through [`ReasonCode::alb_alias`].

use core::fmt;

/// Why a connection attempt failed (CloudFront's `connectionStatus` codes).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonCode {
    /// No client certificate was presented where one is required.
    ClientCertMissing,
    /// The chain is longer than `max_chain_depth`.
    ClientCertMaxChainDepthExceeded,
    /// The presented chain is larger than the configured byte or count limit.
    ClientCertMaxSizeExceeded,
    /// No path to a trust anchor could be built.
    ClientCertUntrusted,
    /// A certificate of the path is not valid yet.
    ClientCertNotYetValid,
    /// A certificate of the path has expired.
    ClientCertExpired,
    /// A key type, key size or signature algorithm is not supported.
    ClientCertTypeUnsupported,
    /// A certificate is malformed or violates a structural rule.
    ClientCertInvalid,
    /// Key usage or extended key usage does not allow client authentication
    /// (ALB: `ClientCertPurposeInvalid`).
    ClientCertIntentInvalid,
    /// The certificate was rejected by a trust-store rule (name constraints, pinning).
    ClientCertRejected,
    /// A certificate of the chain is revoked (ALB: `ClientCertCrlHit`).
    ClientCertRevoked,
    /// A CRL could not be used.
    ClientCertCrlProcessingError,
    /// The OCSP responder answered revoked or unknown.
    ClientCertOcspDenied,
    /// The OCSP status could not be determined.
    ClientCertOcspProcessingError,
    /// The connection policy denied the connection.
    ConnectionFunctionDenied,
    /// The connection policy failed (error, panic, timeout or no decision).
    ConnectionFunctionError,
    /// A TCP-level error before the handshake completed.
    TcpError,
    /// The handshake did not complete in time.
    TcpTimeout,
    /// An internal error.
    Internal,
    /// A failure that has no more specific code.
    UnmappedConnectionError,
    /// Not a CloudFront code: the client offers no TLS version, cipher
    /// suite, key-exchange group or signature scheme the listener accepts
    /// (TLS 1.0 or 1.1 only, say).
    TlsProtocolMismatch,
    /// Not a CloudFront code: the client sent bytes that are not a valid TLS
    /// handshake (plain HTTP to the TLS port, a malformed or misordered
    /// message).
    TlsProtocolError,
    /// Not a CloudFront code: validating the presented chain ran out of its
    /// work budget (signatures, path-building steps or name-constraint
    /// comparisons) — a chain built to cost CPU, not a malformed one.
    ClientCertValidationBudgetExceeded,
    /// Not a CloudFront code: the listener already serves `max_connections`
    /// connections; this one was closed at once, before its handshake.
    ConnectionLimitExceeded,
}

impl ReasonCode {
    /// Every reason code, in declaration order (for counters and metrics).
    /// A slice, so that a code added later changes its length, not its type.
    pub const ALL: &'static [ReasonCode] = &[
        Self::ClientCertMissing,
        Self::ClientCertMaxChainDepthExceeded,
        Self::ClientCertMaxSizeExceeded,
        Self::ClientCertUntrusted,
        Self::ClientCertNotYetValid,
        Self::ClientCertExpired,
        Self::ClientCertTypeUnsupported,
        Self::ClientCertInvalid,
        Self::ClientCertIntentInvalid,
        Self::ClientCertRejected,
        Self::ClientCertRevoked,
        Self::ClientCertCrlProcessingError,
        Self::ClientCertOcspDenied,
        Self::ClientCertOcspProcessingError,
        Self::ConnectionFunctionDenied,
        Self::ConnectionFunctionError,
        Self::TcpError,
        Self::TcpTimeout,
        Self::Internal,
        Self::UnmappedConnectionError,
        Self::TlsProtocolMismatch,
        Self::TlsProtocolError,
        Self::ClientCertValidationBudgetExceeded,
        Self::ConnectionLimitExceeded,
    ];

    /// The CloudFront name of the code, as written after `Failed:` in logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientCertMissing => "ClientCertMissing",
            Self::ClientCertMaxChainDepthExceeded => "ClientCertMaxChainDepthExceeded",
            Self::ClientCertMaxSizeExceeded => "ClientCertMaxSizeExceeded",
            Self::ClientCertUntrusted => "ClientCertUntrusted",
            Self::ClientCertNotYetValid => "ClientCertNotYetValid",
            Self::ClientCertExpired => "ClientCertExpired",
            Self::ClientCertTypeUnsupported => "ClientCertTypeUnsupported",
            Self::ClientCertInvalid => "ClientCertInvalid",
            Self::ClientCertIntentInvalid => "ClientCertIntentInvalid",
            Self::ClientCertRejected => "ClientCertRejected",
            Self::ClientCertRevoked => "ClientCertRevoked",
            Self::ClientCertCrlProcessingError => "ClientCertCrlProcessingError",
            Self::ClientCertOcspDenied => "ClientCertOcspDenied",
            Self::ClientCertOcspProcessingError => "ClientCertOcspProcessingError",
            Self::ConnectionFunctionDenied => "ConnectionFunctionDenied",
            Self::ConnectionFunctionError => "ConnectionFunctionError",
            Self::TcpError => "TcpError",
            Self::TcpTimeout => "TcpTimeout",
            Self::Internal => "Internal",
            Self::UnmappedConnectionError => "UnmappedConnectionError",
            Self::TlsProtocolMismatch => "TlsProtocolMismatch",
            Self::TlsProtocolError => "TlsProtocolError",
            Self::ClientCertValidationBudgetExceeded => "ClientCertValidationBudgetExceeded",
            Self::ConnectionLimitExceeded => "ConnectionLimitExceeded",
        }
    }

    /// The Application Load Balancer's name for the same failure.
    pub const fn alb_alias(self) -> &'static str {
        match self {
            Self::ClientCertIntentInvalid => "ClientCertPurposeInvalid",
            Self::ClientCertRevoked => "ClientCertCrlHit",
            other => other.as_str(),
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The TLS alert a rejected handshake ends with (RFC 8446 §6.2).
///
/// Kept independent of any TLS library; the rustls adapter converts it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsAlert {
    /// `bad_certificate` (42).
    BadCertificate,
    /// `unsupported_certificate` (43).
    UnsupportedCertificate,
    /// `certificate_revoked` (44).
    CertificateRevoked,
    /// `certificate_expired` (45).
    CertificateExpired,
    /// `certificate_unknown` (46).
    CertificateUnknown,
    /// `unknown_ca` (48).
    UnknownCa,
    /// `access_denied` (49).
    AccessDenied,
    /// `decode_error` (50).
    DecodeError,
    /// `internal_error` (80).
    InternalError,
    /// `certificate_required` (116).
    CertificateRequired,
}

impl TlsAlert {
    /// The alert's wire value.
    pub const fn code(self) -> u8 {
        match self {
            Self::BadCertificate => 42,
            Self::UnsupportedCertificate => 43,
            Self::CertificateRevoked => 44,
            Self::CertificateExpired => 45,
            Self::CertificateUnknown => 46,
            Self::UnknownCa => 48,
            Self::AccessDenied => 49,
            Self::DecodeError => 50,
            Self::InternalError => 80,
            Self::CertificateRequired => 116,
        }
    }
}
