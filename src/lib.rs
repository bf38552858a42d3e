//! # edge-mtls
//!
//! Client-certificate (mTLS) authentication for Rust servers, with the
//! semantics of Amazon CloudFront viewer mTLS and the AWS Application Load
//! Balancer: trust stores, RFC 5280 chain validation, and a rustls client
//! certificate verifier for the `Required`, `Optional` and `Passthrough` modes.
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `aws-lc-rs` | yes | aws-lc-rs as the crypto provider |
//! | `ring` | no | ring as the crypto provider |
//! | `acceptor` | yes | the tokio connection pipeline (handshake, stage 2, logs, headers) and `MtlsConfig` |
//! | `ocsp-http` | yes | the built-in OCSP HTTP transport (hyper-util); without it, OCSP needs a transport of your own |
//! | `metrics` | no | connection outcome counters exported to the `metrics` crate |
//! | `tower` | no | a tower layer that sanitizes and attaches the certificate headers |
//! | `axum` | yes | axum 0.8: serve helper, axum-server acceptor, `ClientCert` extractor |
//! | `actix` | no | actix-web 4: actix-server over the pipeline, `HttpServer::on_connect` wiring, `ClientCert` extractor, header middleware |
//! | `cli` | no | the `edge-mtls` operator command |
//! | `parquet` | no | connection logs as Parquet files (rotating `dir:` targets; needs Rust 1.88) |
//!
//! Without default features the crate is the framework-free core: trust
//! stores, chain validation, offline revocation (deny lists, CRLs), the
//! rustls verifier, headers and log formatting; a crypto provider comes from
//! `aws-lc-rs`, `ring` or the process default.
//!
//! ```
//! use std::sync::Arc;
//! use edge_mtls::{ChainValidator, MtlsClientVerifier, TrustStore, TrustStoreHandle, ValidationMode};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
//! # let mut ca = ca; ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
//! # let ca_pem = ca.self_signed(&rcgen::KeyPair::generate()?)?.pem();
//! let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
//! // Any PEM bundle of root and intermediate CAs (comments between blocks are fine).
//! let store = TrustStoreHandle::new(TrustStore::from_pem(ca_pem.as_bytes())?);
//! let validator = ChainValidator::builder(store, provider.clone())
//!     .max_chain_depth(4)
//!     .ignore_expiration(false)
//!     .build()?;
//! let verifier = MtlsClientVerifier::builder(Arc::new(validator))
//!     .mode(ValidationMode::Required)
//!     .build()?;
//! let _config = rustls::ServerConfig::builder_with_provider(provider)
//!     .with_safe_default_protocol_versions()?
//!     .with_client_cert_verifier(Arc::new(verifier));
//! // ... .with_single_cert(server_chain, server_key) and serve with tokio-rustls.
//! # Ok(())
//! # }
//! ```

//!
//! ## How a connection is judged
//!
//! **Stage 1, inside the TLS handshake.** The [`MtlsClientVerifier`] that
//! rustls calls validates the presented chain with a [`ChainValidator`]
//! (path building to an anchor of the current [`TrustStore`], the RFC 5280
//! checks of the chosen [`Profile`], work budgets, the verified- and
//! refused-chain caches) and asks every revocation source that can answer
//! without I/O: deny lists, CRLs, cached OCSP answers. A refusal ends the
//! handshake with the TLS alert of its [`ValidationError`] or
//! [`RevocationError`].
//!
//! **Stage 2, after the handshake** (the `acceptor` pipeline). Revocation
//! answers that need I/O (an OCSP responder), then the connection policy —
//! a [`ConnectionPolicy`], CloudFront's connection function in Rust — which
//! sees the certificate, the client address and the revocation status, and
//! may override a revocation failure as a connection function may. A
//! connection refused here is reset; under TLS 1.3 the client learns of it
//! on its first read.
//!
//! **What the application gets.** Every attempt, accepted or refused,
//! produces one connection-log record with a [`ReasonCode`] (CloudFront's
//! vocabulary, plus a few codes for what CloudFront lumps together) and,
//! for refusals, a detail naming the failed check and the certificate.
//! Accepted connections carry the certificate headers of the configured
//! dialects (CloudFront, ALB, RFC 9440, Envoy XFCC), rendered once per
//! connection and attached to every request after client-sent copies are
//! removed, so a client can never forge them.
//!
//! **Behind a proxy.** Where ALB, CloudFront, Envoy, nginx or HAProxy
//! terminate TLS and forward the client certificate in a header,
//! [`ForwardedVerifier`] (`[forwarded]` in the configuration) runs the same
//! validation, revocation, policy, headers and log record on every request,
//! believing the header only from the configured proxy networks.
//!
//! **One configuration.** `MtlsConfig` (TOML or JSON) and its builder
//! produce one `Edge` that the axum, actix-web, hyper and plain tokio
//! listeners share; `build()` checks everything at once and names the
//! setting or file at fault.
//!
//! ## Layout
//!
//! Each module imports only those listed before it: `x509` (DER, certificates,
//! names, serials, key policy, structure rules, textual forms) →
//! `trust_store` → `chain_validator` → `revocation` → `policy` →
//! `header_builder` / `connection_log` → `rustls_verifier` → `acceptor` →
//! `forwarded` → `config` → the integrations (`axum`, `tower`, `actix`). The library never
//! prints; operational events go through `tracing`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

#[cfg(feature = "acceptor")]
mod acceptor;
#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
mod chain_validator;
#[cfg(feature = "acceptor")]
mod config;
mod connection_log;
mod file_input;
#[cfg(feature = "acceptor")]
mod forwarded;
mod header_builder;
#[cfg(feature = "axum")]
mod idle_http1;
mod policy;
mod reason;
mod revocation;
mod rustls_verifier;
#[cfg(feature = "tower")]
pub mod tower;
mod trust_store;
mod x509;

/// Hooks for this crate's own tests, benches, fuzz targets and tools; not a
/// stable API.
#[doc(hidden)]
pub mod internal {
    pub use crate::connection_log::format::{
        alb_line, json_line, w3c_header, w3c_line, JSON_FIELDS, W3C_FIELDS,
    };
    pub use crate::file_input::read_bounded;
    pub use crate::rustls_verifier::stage1::{capture_stage1, Stage1Report};
    pub use crate::x509::fields::{iso8601, parse_rfc3339};
    pub use crate::x509::name::{log_style, rfc2253};
    pub use crate::x509::subject_name::{dns_name_matches, ip_address_matches};

    /// The forwarded chain a dialect reads from `headers` (the parser the
    /// forwarded-certificate path runs before anything else).
    #[cfg(feature = "acceptor")]
    pub fn forwarded_chain(
        dialect: &crate::ForwardedDialect,
        headers: &http::HeaderMap,
        limits: crate::ForwardedLimits,
    ) -> Result<Option<Vec<rustls_pki_types::CertificateDer<'static>>>, crate::ForwardedError> {
        crate::forwarded::read_chain(dialect, headers, limits)
    }

    /// Whether a request from `peer` with `headers` passes the trust
    /// boundary of `networks` and `hops`: the proxy and the client it
    /// reports, or why not.
    #[cfg(feature = "acceptor")]
    pub fn forwarded_path(
        networks: &[crate::IpNet],
        hops: usize,
        peer: std::net::IpAddr,
        headers: &http::HeaderMap,
    ) -> Result<(std::net::IpAddr, std::net::IpAddr), String> {
        let proxies = crate::forwarded::TrustedProxies {
            networks: networks.to_vec(),
            hops,
            secret: None,
        };
        proxies
            .resolve(peer, headers)
            .map(|p| (p.proxy, p.client))
            .map_err(|why| why.to_string())
    }

    /// How many certificates this process has parsed, in whole or in part
    /// (debug builds count; `None` in release builds): lets tests show that
    /// a handshake parses each certificate once.
    pub fn certificate_parses() -> Option<u64> {
        crate::x509::cert::parses_so_far()
    }
}

// Certificates: parsed once, with the facts and textual forms applications
// and logs see.
pub use x509::fields::CertFields;
pub use x509::info::{ClientCertInfo, SubjectAltName};
pub use x509::parsed::ParsedCertificate;
pub use x509::profile::{Profile, ProfileRule, RuleSource, UnknownProfile};
pub use x509::serial::{SerialNumber, SerialParseError, MAX_SERIAL_OCTETS};
pub use x509::signature::KeyPolicy;
pub use x509::KeyPurpose;

// Trust stores.
pub use trust_store::{
    BytesSource, DirectorySource, FileSource, TrustAnchor, TrustStore, TrustStoreBuilder,
    TrustStoreError, TrustStoreHandle, TrustStoreLimits, TrustStoreSource, TrustStoreWarning,
};

// Chain validation.
pub use chain_validator::{
    Budget, CertPosition, CertificateReport, ChainReport, ChainValidator, ChainValidatorBuilder,
    Check, CheckOutcome, ValidationError, ValidatorBuildError, VerifiedChain, MAX_DEPTH_LIMIT,
};

// Revocation: the checker, its sources (deny list, CRL, OCSP) and statuses.
pub use revocation::crl::{
    CrlError, CrlInfo, CrlLimits, CrlSource, CrlSourceBuilder, CrlVersion, Freshness,
    MissingCrlPolicy, RevocationId, RevocationList, RevokedEntry, StalePolicy,
};
pub use revocation::generation::RevocationSnapshot;
pub use revocation::kvs::{
    normalize_key, ImportLocation, ImportOptions, ImportReport, KeyNormalization, KeyValueStore,
    KvsError, KvsMeta, MemoryKeyValueStore, MAX_KEY_BYTES, MAX_VALUE_BYTES,
};
#[cfg(feature = "redis")]
pub use revocation::kvs::{
    ChangeReport, NodeReport, RedisDenyListAdmin, RedisKeyValueStore, RedisStoreError,
    RedisStoreOptions, StoreStatus, SyncState, SyncStatus, DEFAULT_STORE_NAME,
    DEFAULT_STREAM_LENGTH, MAX_KEYS_PER_CHANGE,
};
#[cfg(feature = "ocsp-http")]
pub use revocation::ocsp::HyperTransport;
pub use revocation::ocsp::{
    CertIdHash, OcspAnswer, OcspBuildError, OcspError, OcspSource, OcspSourceBuilder,
    OcspTransport, TransportError,
};
pub use revocation::{
    issuer_id, next_data_stamp, scoped_key, CertStatus, CertStatusKind, CertToCheck,
    CertificateRevocationStatus, ChainRevocationStatuses, ChainValidity, CheckerBuildError,
    CrlReason, DenyListSource, FailurePolicy, ImmediateCheck, IssuerScoping, RevocationChain,
    RevocationChecker, RevocationCheckerBuilder, RevocationError, RevocationMethod,
    RevocationOutcome, RevocationScope, RevocationSource, RevocationStatus, StatusErrorKind,
};

// The rustls verifier (stage 1, inside the handshake).
pub use rustls_verifier::{
    rustls_error, rustls_revocation_error, MtlsClientVerifier, MtlsClientVerifierBuilder,
    Rejection, ValidationMode, VerifierBuildError,
};

// Connection policies (CloudFront connection functions).
pub use policy::{
    evaluate as evaluate_policy, truncate_custom_data, AllOf, AllowAll, AnyOf, CertificateObject,
    Certificates, ClientCertificate, Connection, ConnectionPolicy, Decision, FirstMatch, IpNet,
    IpNetParseError, Matcher, NamePattern, PolicyError, PolicyOutcome, Rule, Validity, Verdict,
    MAX_CUSTOM_DATA_BYTES,
};

// CloudFront connection functions in JavaScript (feature `js`).
#[cfg(feature = "js")]
pub use policy::js::{
    FingerprintFormat, JsError, JsFunction, JsLimits, JsLoadError, JsRun, MAX_CONNECTION_JSON_BYTES,
};

// Headers that describe the certificate to the application.
pub use header_builder::{
    is_reserved_header, sanitize as sanitize_headers, ConnectionFacts, ConnectionHeaders,
    HeaderBuilder, HeaderBuilderBuilder, HeaderConfigError, HeaderProfile, XfccMode,
};

// Connection logs.
#[cfg(feature = "parquet")]
pub use connection_log::parquet_schema;
pub use connection_log::{
    ConnectionId, ConnectionLogRecord, ConnectionLogSink, ConnectionStatus, CountersSnapshot,
    LogFormat, LogOutput, LogShutdownError, Progress, QueueSink, ReasonCounters, RotatingFiles,
    Rotation, StreamOutput,
};
pub use file_input::FileInputError;
pub use reason::{ReasonCode, TlsAlert};

// The acceptor (both stages, the policy, headers and the log for one
// connection) and the one configuration every listener shares.
#[cfg(feature = "acceptor")]
pub use acceptor::{
    AcceptBackoff, AcceptError, AcceptorBuildError, ConnectionInfo, ExtractError, MtlsAcceptor,
    MtlsAcceptorBuilder, MtlsStream, RefusalCause, Site, SniPattern,
};
// Behind a load balancer: certificates a trusted proxy forwards in a header.
#[cfg(feature = "acceptor")]
pub use config::{
    CacheSettings, ConfigError, CrlSettings, DenyListSettings, Edge, ForwardedSettings,
    HeaderSettings, LogSettings, MtlsConfig, MtlsConfigBuilder, OcspSettings, PolicySettings,
    PostHandshakeCheck, ReloadError, RevocationSettings, ServerFiles, SiteOverride,
    TrustStoreSettings,
};
#[cfg(feature = "acceptor")]
pub use forwarded::{
    ForwardedDialect, ForwardedError, ForwardedLimits, ForwardedRefusal, ForwardedVerifier,
    UnknownDialect,
};
