//! What can go wrong loading or building a configuration.

#[allow(unused_imports)]
use super::*;

/// Why a configuration could not be loaded or built. Each variant names the
/// setting (or file) at fault.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file the configuration names is missing, unreadable, not a regular
    /// file, or larger than the limit for what it holds.
    #[error("{what}: {source}")]
    File {
        /// What the file is for.
        what: &'static str,
        /// Which file and why.
        #[source]
        source: crate::file_input::FileInputError,
    },
    /// The TOML or JSON text does not describe a configuration.
    #[error("invalid {format} configuration: {detail}")]
    Parse {
        /// `TOML` or `JSON`.
        format: &'static str,
        /// The parser's message (with line and column).
        detail: String,
    },
    /// A setting has a value that cannot work.
    #[error("invalid setting `{setting}`: {detail}")]
    Invalid {
        /// The setting, e.g. `sni."*.example.com".eku`.
        setting: String,
        /// What is wrong.
        detail: String,
    },
    /// No server certificate and key were configured.
    #[error("no server certificate: set [server] cert_chain and key, or call server_identity()")]
    MissingServerIdentity,
    /// No trust store was configured (only `passthrough` mode works without one).
    #[error("{setting}: no trust store configured (set trust_store.files, .directories or .pem)")]
    MissingTrustStore {
        /// Which listener (`trust_store` or `sni."name".trust_store`).
        setting: String,
    },
    /// The trust store bundle was refused.
    #[error("{setting}: {source}")]
    TrustStore {
        /// Which listener's trust store.
        setting: String,
        /// Why.
        #[source]
        source: TrustStoreError,
    },
    /// The chain validator options were refused.
    #[error("{setting}: {source}")]
    Validator {
        /// Which listener.
        setting: String,
        /// Why.
        #[source]
        source: ValidatorBuildError,
    },
    /// The verifier could not be built (e.g. too many CA names to advertise).
    #[error("{setting}: {source}")]
    Verifier {
        /// Which listener.
        setting: String,
        /// Why.
        #[source]
        source: VerifierBuildError,
    },
    /// The header configuration was refused.
    #[error("{setting}: {source}")]
    Headers {
        /// Which listener.
        setting: String,
        /// Why.
        #[source]
        source: HeaderConfigError,
    },
    /// A revocation source could not be set up.
    #[error("revocation.{source_name}: {detail}")]
    Revocation {
        /// `deny_list`, `crl` or `ocsp`.
        source_name: &'static str,
        /// Why.
        detail: String,
    },
    /// rustls refused the TLS configuration (usually the server key). The
    /// refusals an operator causes are spelled out (rustls's own text for
    /// them is its `Debug` form).
    #[error("{setting}: {}", match .source {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            "the server key does not match the server certificate".to_owned()
        }
        rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding) => {
            "the server certificate (the first of the chain) is not valid DER".to_owned()
        }
        rustls::Error::General(detail) if detail.contains("private key") => {
            "the server key is not a usable RSA (2048 to 8192 bits), ECDSA or Ed25519 key"
                .to_owned()
        }
        other => format!("TLS configuration refused: {other}"),
    })]
    Tls {
        /// Which listener.
        setting: String,
        /// rustls's error.
        #[source]
        source: rustls::Error,
    },
    /// No crypto provider: none was given, neither the `aws-lc-rs` nor the
    /// `ring` feature is enabled, and no process default is installed.
    #[error(
        "no crypto provider: enable the `aws-lc-rs` or `ring` feature, pass one with \
         `crypto_provider`, or install a process default"
    )]
    NoCryptoProvider,
    /// The connection function (`policy.js`) cannot be loaded.
    #[cfg(feature = "js")]
    #[error("policy.js: {0}")]
    Function(#[from] crate::policy::js::JsLoadError),
    /// The connection-log output could not be opened.
    #[error("log.target `{target}`: {source}")]
    Log {
        /// The configured target.
        target: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
