//! One configuration for every listener.
//!
//! [`MtlsConfig`] is plain data (serde: load it from TOML or JSON) holding
//! everything SPEC'd per listener: the mode, the trust store, the validation
//! options, revocation sources, headers, connection logs, handshake timeout,
//! session resumption and per-SNI overrides. [`MtlsConfigBuilder`] adds what
//! cannot live in a file (a connection policy, a log sink, extra revocation
//! sources, a crypto provider, in-memory keys) and [`build`](MtlsConfigBuilder::build)
//! validates everything at once, returning one [`Edge`]: a cheap-to-clone
//! handle that the axum, actix-web, hyper and plain tokio listeners all share.
//!
//! ```toml
//! distribution_id = "E2EXAMPLE"
//! mode = "required"                 # required | optional | passthrough
//! profile = "interop"               # interop (default) | strict
//! max_chain_depth = 4
//! handshake_timeout_ms = 10000
//! resumption = true
//! max_connections = 10000           # 0: no limit
//!
//! [cache]
//! verified_chains = 4096
//! refused_chains = 1024             # a repeated hostile chain costs a lookup
//! refused_ttl_secs = 60
//!
//! [server]
//! cert_chain = "demo-pki/server.pem"
//! key = "demo-pki/server.key"
//!
//! [trust_store]
//! files = ["demo-pki/ca-bundle.pem"]
//!
//! [revocation.deny_list]
//! kvs_json = ["revoked.json"]        # CloudFront KeyValueStore JSON
//!
//! [headers]
//! profiles = ["cloudfront", "rfc9440"]
//! connection_id_header = "X-Edge-Connection-Id"
//!
//! [log]
//! format = "json_lines"              # json_lines | w3c | alb | parquet (feature)
//! target = "stdout"                  # stdout | stderr | off | a file path | dir:DIR
//! rotate = "1h"                      # dir: targets: 30s, 15m, 1h, 1d
//! max_bytes = 134217728              # dir: targets: a file's size limit
//! hive = false                       # dir: targets: distributionid=…/year=…/…/hour=…/
//!
//! [sni."partners.example.com"]
//! mode = "optional"
//! distribution_id = "E2PARTNERS"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::NoServerSessionStorage;
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::acceptor::{MtlsAcceptor, Site, SniRecordingResolver};
use crate::chain_validator::{ChainValidator, KeyPurpose, Profile, ValidatorBuildError};
use crate::connection_log::{ConnectionLogSink, LogFormat, QueueSink, Rotation};
use crate::file_input::read_bounded;
use crate::header_builder::{HeaderBuilder, HeaderConfigError, HeaderProfile, XfccMode};
use crate::policy::ConnectionPolicy;
use crate::revocation::crl::{CrlSource, MissingCrlPolicy, StalePolicy};
use crate::revocation::kvs::{ImportOptions, MemoryKeyValueStore};
use crate::revocation::ocsp::OcspSource;
use crate::revocation::{
    DenyListSource, FailurePolicy, IssuerScoping, RevocationChecker, RevocationScope,
    RevocationSource,
};
use crate::rustls_verifier::{MtlsClientVerifier, ValidationMode, VerifierBuildError};
use crate::trust_store::{TrustStore, TrustStoreError, TrustStoreHandle};

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

/// PEM files holding the server's certificate chain and private key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFiles {
    /// Server certificate first, then its intermediates.
    pub cert_chain: PathBuf,
    /// The private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

/// Where the trust store's CA certificates come from (all are combined).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustStoreSettings {
    /// PEM bundle files.
    pub files: Vec<PathBuf>,
    /// Directories whose `*.pem` / `*.crt` files are bundles.
    pub directories: Vec<PathBuf>,
    /// PEM text given inline.
    pub pem: Option<String>,
}

impl TrustStoreSettings {
    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.directories.is_empty() && self.pem.is_none()
    }
}

/// A deny list: serial numbers (optionally `issuer/serial`) that are revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DenyListSettings {
    /// CloudFront KeyValueStore JSON files (`{"data":[{"key":…,"value":…}]}`).
    pub kvs_json: Vec<PathBuf>,
    /// Plain-text files, one serial per line, `#` comments.
    pub serial_files: Vec<PathBuf>,
    /// Serials given inline (any common spelling: `00:b1:43…`, `B143…`).
    pub serials: Vec<String>,
    /// Which keys are consulted.
    pub scoping: IssuerScoping,
    /// What an undetermined answer does (a memory store always answers).
    pub failure_policy: FailurePolicy,
}

impl Default for DenyListSettings {
    fn default() -> Self {
        Self {
            kvs_json: Vec::new(),
            serial_files: Vec::new(),
            serials: Vec::new(),
            scoping: IssuerScoping::default(),
            failure_policy: FailurePolicy::HardFail,
        }
    }
}

/// CRLs (DER or PEM files, v1 or v2), checked against the trust store's CAs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrlSettings {
    /// CRL files.
    pub files: Vec<PathBuf>,
    /// What a CRL past `nextUpdate` + grace answers.
    pub stale: StalePolicy,
    /// What certificates of CAs without a CRL answer.
    pub missing: MissingCrlPolicy,
    /// Seconds a CRL still counts as current after `nextUpdate`.
    pub grace_secs: u64,
    /// What an undetermined answer does.
    pub failure_policy: FailurePolicy,
}

impl Default for CrlSettings {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            stale: StalePolicy::default(),
            missing: MissingCrlPolicy::default(),
            grace_secs: 0,
            failure_policy: FailurePolicy::HardFail,
        }
    }
}

/// OCSP, with the responder named in each certificate (or one override).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OcspSettings {
    /// Ask this responder instead of the certificates' AIA URL.
    pub responder_override: Option<String>,
    /// Per-request timeout, milliseconds.
    pub request_timeout_ms: u64,
    /// Deadline for the whole check, milliseconds.
    pub deadline_ms: u64,
    /// How long a good answer is reused at most (bounded by `nextUpdate`), seconds.
    pub cache_ttl_secs: u64,
    /// What an undetermined answer (responder down, `unknown`) does. Default
    /// soft fail, as nginx and Envoy deployments usually run OCSP.
    pub failure_policy: FailurePolicy,
}

impl Default for OcspSettings {
    fn default() -> Self {
        Self {
            responder_override: None,
            request_timeout_ms: 2_000,
            deadline_ms: 3_000,
            cache_ttl_secs: 3_600,
            failure_policy: FailurePolicy::SoftFail,
        }
    }
}

/// Revocation sources, asked in the order deny list, CRL, OCSP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RevocationSettings {
    /// A deny list.
    pub deny_list: Option<DenyListSettings>,
    /// CRLs.
    pub crl: Option<CrlSettings>,
    /// OCSP.
    pub ocsp: Option<OcspSettings>,
    /// Which certificates of the path are checked.
    pub scope: RevocationScope,
}

/// Which headers requests receive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeaderSettings {
    /// Dialects: `cloudfront`, `alb_verify`, `alb_passthrough`, `rfc9440`,
    /// `xfcc` (Envoy SANITIZE_SET), `xfcc_sanitize`, or `custom:<prefix>`.
    pub profiles: Vec<HeaderProfile>,
    /// Adds the connection id under this name.
    pub connection_id_header: Option<String>,
    /// Adds `X-Amzn-Tls-Version` and `X-Amzn-Tls-Cipher-Suite`.
    pub tls_headers: bool,
    /// Emits a header under another name (`from = "to"`).
    pub rename: BTreeMap<String, String>,
    /// Largest value of one header, bytes.
    pub max_value_bytes: Option<usize>,
}

impl Default for HeaderSettings {
    fn default() -> Self {
        Self {
            profiles: vec![HeaderProfile::CloudFront],
            connection_id_header: None,
            tls_headers: false,
            rename: BTreeMap::new(),
            max_value_bytes: None,
        }
    }
}

impl HeaderSettings {
    fn build(&self) -> Result<HeaderBuilder, HeaderConfigError> {
        let mut b = HeaderBuilder::builder().tls_headers(self.tls_headers);
        for p in &self.profiles {
            b = b.profile(p.clone());
        }
        if let Some(name) = &self.connection_id_header {
            b = b.connection_id_header(name);
        }
        for (from, to) in &self.rename {
            b = b.rename(from, to);
        }
        if let Some(max) = self.max_value_bytes {
            b = b.max_value_bytes(max);
        }
        b.build()
    }
}

/// Where connection-log records go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `json_lines`, `w3c`, `alb`, or `parquet` (crate feature `parquet`,
    /// `dir:` targets only).
    pub format: LogFormat,
    /// `stdout`, `stderr`, `off`, a file path (appended to), or `dir:DIR`:
    /// rotating files under `DIR` (see
    /// [`RotatingFiles`](crate::connection_log::RotatingFiles)).
    pub target: String,
    /// Records queued at most before new ones are dropped (and counted).
    pub queue_capacity: usize,
    /// How long shutdown waits for the output to take the remaining records
    /// (a stalled reader cannot keep the process from stopping),
    /// milliseconds.
    pub shutdown_deadline_ms: u64,
    /// `dir:` targets: the interval each file covers, aligned to UTC:
    /// `30s`, `15m`, `1h` (default), `1d`; at least one second.
    pub rotate: String,
    /// `dir:` targets: a file is completed before it passes this many
    /// bytes (default 128 MiB).
    pub max_bytes: u64,
    /// `dir:` targets: Hive-style directories
    /// (`distributionid=…/year=…/month=…/day=…/hour=…/`).
    pub hive: bool,
    /// Parquet: records per row group (default 10,000): the most a row
    /// group holds in memory, and the most a crash loses beyond the queue.
    pub row_group_rows: usize,
}

impl Default for LogSettings {
    fn default() -> Self {
        let rotation = Rotation::default();
        Self {
            format: LogFormat::JsonLines,
            target: "stdout".into(),
            queue_capacity: 8_192,
            shutdown_deadline_ms: 5_000,
            rotate: "1h".into(),
            max_bytes: rotation.max_bytes,
            hive: rotation.hive,
            row_group_rows: rotation.row_group_rows,
        }
    }
}

/// Parses a rotation interval: a whole number followed by `s`, `m`, `h` or
/// `d` (`30s`, `15m`, `1h`, `1d`).
fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{text}` is not an interval (a whole number and s, m, h or d: 30s, 15m, 1h, 1d)"
            ))
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not an interval (e.g. 30s, 15m, 1h, 1d)"))?;
    match n.checked_mul(seconds_per) {
        Some(0) => Err("the interval must be at least 1s".into()),
        Some(secs) => Ok(Duration::from_secs(secs)),
        None => Err(format!("`{text}` is too long")),
    }
}

/// The validation caches (shared by every SNI name of the listener).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Verified chains remembered (0: off). A repeating client's chain is
    /// validated once per trust-store generation and validity window.
    pub verified_chains: usize,
    /// Refused chains remembered, with the reason (0: off): the same
    /// hostile chain presented again costs a hash and a lookup.
    pub refused_chains: usize,
    /// How long a refusal is remembered, seconds (0: off).
    pub refused_ttl_secs: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            verified_chains: 4_096,
            refused_chains: 1_024,
            refused_ttl_secs: 60,
        }
    }
}

/// What one SNI name changes from the listener's settings (every field
/// optional; revocation and logs are shared by the whole listener).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteOverride {
    /// The listener id in logs and policies for this name.
    pub distribution_id: Option<String>,
    /// The mode for this name.
    pub mode: Option<ValidationMode>,
    /// A server certificate for this name.
    pub server: Option<ServerFiles>,
    /// A trust store for this name.
    pub trust_store: Option<TrustStoreSettings>,
    /// See [`MtlsConfig::profile`].
    pub profile: Option<Profile>,
    /// See [`MtlsConfig::ignore_expiration`].
    pub ignore_expiration: Option<bool>,
    /// See [`MtlsConfig::advertise_ca_names`].
    pub advertise_ca_names: Option<bool>,
    /// See [`MtlsConfig::max_chain_depth`].
    pub max_chain_depth: Option<usize>,
    /// See [`MtlsConfig::require_v3`].
    pub require_v3: Option<bool>,
    /// See [`MtlsConfig::eku`].
    pub eku: Option<String>,
    /// Headers for this name.
    pub headers: Option<HeaderSettings>,
}

/// The whole configuration of a listener, as it appears in a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MtlsConfig {
    /// The listener id (CloudFront's distribution id) in logs and policies.
    pub distribution_id: String,
    /// How client certificates are treated.
    pub mode: ValidationMode,
    /// The server certificate and key.
    pub server: Option<ServerFiles>,
    /// The CA certificates client chains must lead to.
    pub trust_store: TrustStoreSettings,
    /// Which structure rules certificates and CRLs are held to: `interop`
    /// (default; what OpenSSL and rustls-webpki accept for structure-only
    /// reasons is accepted) or `strict` (RFC 5280 CA MUSTs and the CA/B
    /// Forum structure rules). Security checks hold under both.
    pub profile: Profile,
    /// Validity dates are not enforced (the policy sees `expired`).
    pub ignore_expiration: bool,
    /// Send the trust store's subject names in the CertificateRequest.
    pub advertise_ca_names: bool,
    /// Longest path, counting the leaf and the anchor (default 4).
    pub max_chain_depth: usize,
    /// Refuse v1/v2 certificates.
    pub require_v3: bool,
    /// Extended key usage the leaf must allow: `client_auth` (default),
    /// `server_auth`, an OID (`1.3.6.1.5.5.7.3.2`), or `any`.
    pub eku: String,
    /// Revocation sources.
    pub revocation: RevocationSettings,
    /// Headers.
    pub headers: HeaderSettings,
    /// Connection logs.
    pub log: LogSettings,
    /// How long a connection may take from TCP accept to the end of the
    /// TLS handshake, milliseconds.
    pub handshake_timeout_ms: u64,
    /// TLS session resumption (tickets and session ids). Resumed sessions
    /// re-run validation, revocation and the policy on the restored chain.
    pub resumption: bool,
    /// ALPN protocols offered (default `http/1.1`).
    pub alpn: Vec<String>,
    /// Connections served at once at most; one more is refused at once
    /// with `Failed:ConnectionLimitExceeded` in the log (0: no limit).
    pub max_connections: usize,
    /// The validation caches.
    pub cache: CacheSettings,
    /// Per-SNI overrides; keys are host names or `*.` wildcards.
    pub sni: BTreeMap<String, SiteOverride>,
}

impl Default for MtlsConfig {
    fn default() -> Self {
        Self {
            distribution_id: "default".into(),
            mode: ValidationMode::Required,
            server: None,
            trust_store: TrustStoreSettings::default(),
            profile: Profile::Interop,
            ignore_expiration: false,
            advertise_ca_names: false,
            max_chain_depth: 4,
            require_v3: false,
            eku: "client_auth".into(),
            revocation: RevocationSettings::default(),
            headers: HeaderSettings::default(),
            log: LogSettings::default(),
            handshake_timeout_ms: 10_000,
            resumption: true,
            alpn: vec!["http/1.1".into()],
            max_connections: 10_000,
            cache: CacheSettings::default(),
            sni: BTreeMap::new(),
        }
    }
}

impl MtlsConfig {
    /// Parses TOML.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            format: "TOML",
            detail: e.to_string(),
        })
    }

    /// Parses JSON.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        serde_json::from_str(text).map_err(|e| ConfigError::Parse {
            format: "JSON",
            detail: e.to_string(),
        })
    }

    /// Reads a `.toml` or `.json` file (by extension; TOML otherwise).
    /// Relative paths inside stay relative to the working directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = read_text("configuration file", path)?;
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Self::from_json(&text)
        } else {
            Self::from_toml(&text)
        }
    }

    /// A builder with every setting at its default.
    pub fn builder() -> MtlsConfigBuilder {
        MtlsConfigBuilder::from(Self::default())
    }

    /// A builder starting from this configuration.
    pub fn into_builder(self) -> MtlsConfigBuilder {
        MtlsConfigBuilder::from(self)
    }
}

/// Adds what a file cannot hold and builds the [`Edge`].
pub struct MtlsConfigBuilder {
    config: MtlsConfig,
    provider: Option<Arc<CryptoProvider>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    trust_store: Option<TrustStoreHandle>,
    sources: Vec<(Arc<dyn RevocationSource>, FailurePolicy)>,
    policy: Option<Arc<dyn ConnectionPolicy>>,
    sni_policies: BTreeMap<String, Arc<dyn ConnectionPolicy>>,
    sink: Option<Arc<dyn ConnectionLogSink>>,
}

impl fmt::Debug for MtlsConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MtlsConfigBuilder")
            .field("config", &self.config)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl From<MtlsConfig> for MtlsConfigBuilder {
    fn from(config: MtlsConfig) -> Self {
        Self {
            config,
            provider: None,
            identity: None,
            trust_store: None,
            sources: Vec::new(),
            policy: None,
            sni_policies: BTreeMap::new(),
            sink: None,
        }
    }
}

impl MtlsConfigBuilder {
    /// The settings, to change any of them in place.
    pub fn settings(&mut self) -> &mut MtlsConfig {
        &mut self.config
    }

    /// The validation mode.
    pub fn mode(mut self, mode: ValidationMode) -> Self {
        self.config.mode = mode;
        self
    }

    /// The listener id in logs and policies.
    pub fn distribution_id(mut self, id: impl Into<String>) -> Self {
        self.config.distribution_id = id.into();
        self
    }

    /// The server certificate chain and key from PEM files.
    pub fn server_files(mut self, cert_chain: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.config.server = Some(ServerFiles {
            cert_chain: cert_chain.into(),
            key: key.into(),
        });
        self
    }

    /// The server certificate chain and key, in memory (wins over files).
    pub fn server_identity(
        mut self,
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.identity = Some((cert_chain, key));
        self
    }

    /// Adds a trust-store PEM bundle file.
    pub fn trust_store_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.trust_store.files.push(path.into());
        self
    }

    /// Uses this trust store (wins over the file settings); keep a clone of
    /// the handle to replace the bundle at run time.
    pub fn trust_store(mut self, store: TrustStoreHandle) -> Self {
        self.trust_store = Some(store);
        self
    }

    /// Which structure rules to enforce (default [`Profile::Interop`]).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.config.profile = profile;
        self
    }

    /// Validity dates are not enforced.
    pub fn ignore_expiration(mut self, yes: bool) -> Self {
        self.config.ignore_expiration = yes;
        self
    }

    /// Send the trust store's subject names in the CertificateRequest.
    pub fn advertise_ca_names(mut self, yes: bool) -> Self {
        self.config.advertise_ca_names = yes;
        self
    }

    /// Longest path, leaf and anchor included.
    pub fn max_chain_depth(mut self, depth: usize) -> Self {
        self.config.max_chain_depth = depth;
        self
    }

    /// Refuse v1/v2 certificates.
    pub fn require_v3(mut self, yes: bool) -> Self {
        self.config.require_v3 = yes;
        self
    }

    /// Serials denied in addition to the configured deny-list files.
    pub fn deny_serials<I, S>(mut self, serials: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list = self
            .config
            .revocation
            .deny_list
            .get_or_insert_with(DenyListSettings::default);
        list.serials.extend(serials.into_iter().map(Into::into));
        self
    }

    /// Adds a revocation source asked after the configured ones.
    pub fn revocation_source(
        mut self,
        source: Arc<dyn RevocationSource>,
        policy: FailurePolicy,
    ) -> Self {
        self.sources.push((source, policy));
        self
    }

    /// The connection policy of the listener (and of SNI names without their own).
    pub fn policy(mut self, policy: Arc<dyn ConnectionPolicy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The connection policy for one SNI pattern (a key of `sni`, which is
    /// created when missing).
    pub fn sni_policy(mut self, pattern: &str, policy: Arc<dyn ConnectionPolicy>) -> Self {
        self.config.sni.entry(pattern.to_string()).or_default();
        self.sni_policies.insert(pattern.to_string(), policy);
        self
    }

    /// Header dialects (replaces the configured list).
    pub fn header_profiles(mut self, profiles: impl IntoIterator<Item = HeaderProfile>) -> Self {
        self.config.headers.profiles = profiles.into_iter().collect();
        self
    }

    /// Where connection-log records go (wins over `log.target`).
    pub fn log_sink(mut self, sink: Arc<dyn ConnectionLogSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// The handshake timeout.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.handshake_timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// TLS session resumption on or off.
    pub fn resumption(mut self, yes: bool) -> Self {
        self.config.resumption = yes;
        self
    }

    /// The crypto provider (default: the one selected by the crate features).
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Validates every setting, reads every file, and builds the shared handle.
    pub fn build(self) -> Result<Edge, ConfigError> {
        let Self {
            config,
            provider,
            identity,
            trust_store,
            sources,
            policy,
            sni_policies,
            sink,
        } = self;
        let provider = match provider {
            Some(provider) => provider,
            None => default_provider()?,
        };
        if config.handshake_timeout_ms == 0 {
            return Err(invalid("handshake_timeout_ms", "must be greater than 0"));
        }
        if config.alpn.iter().any(String::is_empty) {
            return Err(invalid("alpn", "protocol names cannot be empty"));
        }

        // The listener's own trust store; SNI names share it unless they set theirs.
        let store = match trust_store {
            Some(handle) => handle,
            None => TrustStoreHandle::new(load_trust_store(
                "trust_store",
                &config.trust_store,
                config.mode,
            )?),
        };
        let deny_list = deny_list_store(&config.revocation)?;
        let custom_revocation = !sources.is_empty();
        // One checker serves every site, so CRLs follow the listener's
        // profile (a per-SNI `profile` applies to certificates).
        let checker = revocation_checker(
            &config.revocation,
            config.profile,
            deny_list.clone(),
            sources,
            &store.load(),
            &provider,
        )?;
        let identity = match identity {
            Some(identity) => identity,
            None => {
                let files = config
                    .server
                    .as_ref()
                    .ok_or(ConfigError::MissingServerIdentity)?;
                load_identity(files)?
            }
        };

        let base = SiteParts {
            setting: "listener".into(),
            distribution_id: config.distribution_id.clone(),
            mode: config.mode,
            store: store.clone(),
            profile: config.profile,
            ignore_expiration: config.ignore_expiration,
            advertise_ca_names: config.advertise_ca_names,
            max_chain_depth: config.max_chain_depth,
            require_v3: config.require_v3,
            eku: config.eku.clone(),
            headers: config.headers.clone(),
            policy: policy.clone(),
        };
        let tls = TlsParts {
            provider: &provider,
            cache: &config.cache,
            checker: checker.as_ref(),
            resumption: config.resumption,
            alpn: &config.alpn,
        };
        let default_site = base.build(&tls, clone_identity(&identity))?;

        let random = provider.secure_random;
        let mut acceptor = MtlsAcceptor::builder_for(default_site, random)
            .handshake_timeout(Duration::from_millis(config.handshake_timeout_ms))
            .max_connections(config.max_connections);
        for (pattern, o) in &config.sni {
            check_sni_pattern(pattern)?;
            let setting = format!("sni.\"{pattern}\"");
            let site_store = match &o.trust_store {
                Some(settings) => TrustStoreHandle::new(load_trust_store(
                    &format!("{setting}.trust_store"),
                    settings,
                    o.mode.unwrap_or(config.mode),
                )?),
                None => store.clone(),
            };
            let parts = SiteParts {
                setting: setting.clone(),
                distribution_id: o
                    .distribution_id
                    .clone()
                    .unwrap_or_else(|| config.distribution_id.clone()),
                mode: o.mode.unwrap_or(config.mode),
                store: site_store,
                profile: o.profile.unwrap_or(config.profile),
                ignore_expiration: o.ignore_expiration.unwrap_or(config.ignore_expiration),
                advertise_ca_names: o.advertise_ca_names.unwrap_or(config.advertise_ca_names),
                max_chain_depth: o.max_chain_depth.unwrap_or(config.max_chain_depth),
                require_v3: o.require_v3.unwrap_or(config.require_v3),
                eku: o.eku.clone().unwrap_or_else(|| config.eku.clone()),
                headers: o.headers.clone().unwrap_or_else(|| config.headers.clone()),
                policy: sni_policies
                    .get(pattern)
                    .cloned()
                    .or_else(|| policy.clone()),
            };
            let site_identity = match &o.server {
                Some(files) => load_identity(files)?,
                None => clone_identity(&identity),
            };
            acceptor = acceptor.sni(pattern, parts.build(&tls, site_identity)?);
        }

        let (sink, queue) = match sink {
            Some(sink) => (Some(sink), None),
            None => open_log(&config.log)?,
        };
        if let Some(sink) = &sink {
            acceptor = acceptor.log(sink.clone());
        }
        Ok(Edge {
            inner: Arc::new(EdgeInner {
                acceptor: acceptor.build(),
                trust_store: store,
                deny_list,
                sink,
                queue,
                config,
                custom_revocation,
            }),
        })
    }
}

/// The built configuration, shared by every listener. Cloning is a
/// reference-count increment.
#[derive(Clone)]
pub struct Edge {
    inner: Arc<EdgeInner>,
}

struct EdgeInner {
    acceptor: MtlsAcceptor,
    trust_store: TrustStoreHandle,
    deny_list: Option<Arc<MemoryKeyValueStore>>,
    sink: Option<Arc<dyn ConnectionLogSink>>,
    queue: Option<Arc<QueueSink>>,
    config: MtlsConfig,
    custom_revocation: bool,
}

/// A check of the default site that runs after the handshake (the pipeline's
/// stage 2), which a server running the rustls handshake itself with
/// [`Edge::server_config`] would skip.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PostHandshakeCheck {
    /// A connection policy is configured (it is asynchronous).
    ConnectionPolicy,
    /// OCSP is configured: answers not cached yet are fetched after the
    /// handshake.
    Ocsp,
    /// A revocation source added with
    /// [`MtlsConfigBuilder::revocation_source`] may answer only after I/O.
    RevocationSource,
}

impl fmt::Display for PostHandshakeCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ConnectionPolicy => "the connection policy",
            Self::Ocsp => "OCSP fetches",
            Self::RevocationSource => "a custom revocation source",
        })
    }
}

impl fmt::Debug for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Edge")
            .field("acceptor", &self.inner.acceptor)
            .field(
                "trust_store_generation",
                &self.inner.trust_store.generation(),
            )
            .finish_non_exhaustive()
    }
}

impl Edge {
    /// The connection pipeline (accept, handshake, stage 2, log, headers).
    pub fn acceptor(&self) -> &MtlsAcceptor {
        &self.inner.acceptor
    }

    /// The listener's TLS configuration (its default site), for servers that
    /// run the rustls handshake themselves (stage 1 only: the verifier still
    /// validates and checks revocation, but no policy runs and no log record
    /// is written unless the server calls the pipeline).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.inner.acceptor.default_site().config().clone()
    }

    /// What the default site checks only after the handshake. Empty when
    /// stage 1 (the verifier inside the handshake: chain validation, deny
    /// lists, CRLs) decides everything, so a server that runs the handshake
    /// itself with [`server_config`](Self::server_config) enforces the whole
    /// configuration.
    pub fn post_handshake_checks(&self) -> Vec<PostHandshakeCheck> {
        let mut checks = Vec::new();
        if self.inner.acceptor.default_site().policy().is_some() {
            checks.push(PostHandshakeCheck::ConnectionPolicy);
        }
        if self.inner.config.revocation.ocsp.is_some() {
            checks.push(PostHandshakeCheck::Ocsp);
        }
        if self.inner.custom_revocation {
            checks.push(PostHandshakeCheck::RevocationSource);
        }
        checks
    }

    /// The listener's trust store; [`TrustStoreHandle::replace`] swaps the
    /// bundle for new connections without a restart.
    pub fn trust_store(&self) -> &TrustStoreHandle {
        &self.inner.trust_store
    }

    /// The deny list built from `revocation.deny_list` (add or remove
    /// serials at run time; effective for the next connection).
    pub fn deny_list(&self) -> Option<&Arc<MemoryKeyValueStore>> {
        self.inner.deny_list.as_ref()
    }

    /// Where connection-log records go.
    pub fn log_sink(&self) -> Option<&Arc<dyn ConnectionLogSink>> {
        self.inner.sink.as_ref()
    }

    /// The settings this handle was built from.
    pub fn config(&self) -> &MtlsConfig {
        &self.inner.config
    }

    /// The queue sink writing to `log.target`, when the configuration opened
    /// one (its written, dropped and unwritten counts).
    pub fn log_queue(&self) -> Option<&Arc<QueueSink>> {
        self.inner.queue.as_ref()
    }

    /// Writes every queued log record and flushes the output (when the log
    /// goes to `log.target`), waiting at most the sink's shutdown deadline.
    /// Returns the records written.
    pub fn flush_log(&self) -> std::io::Result<u64> {
        match &self.inner.queue {
            Some(queue) => queue.shutdown(),
            None => Ok(0),
        }
    }
}

struct SiteParts {
    setting: String,
    distribution_id: String,
    mode: ValidationMode,
    store: TrustStoreHandle,
    profile: Profile,
    ignore_expiration: bool,
    advertise_ca_names: bool,
    max_chain_depth: usize,
    require_v3: bool,
    eku: String,
    headers: HeaderSettings,
    policy: Option<Arc<dyn ConnectionPolicy>>,
}

struct TlsParts<'a> {
    provider: &'a Arc<CryptoProvider>,
    cache: &'a CacheSettings,
    checker: Option<&'a Arc<RevocationChecker>>,
    resumption: bool,
    alpn: &'a [String],
}

impl SiteParts {
    fn build(
        self,
        tls: &TlsParts<'_>,
        identity: (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
    ) -> Result<Site, ConfigError> {
        let setting = self.setting;
        let eku = KeyPurpose::parse_setting(&self.eku).ok_or_else(|| {
            invalid(
                &format!("{setting}.eku"),
                &format!(
                    "`{}` is not client_auth, server_auth, any or a dotted OID",
                    self.eku
                ),
            )
        })?;
        let validator = ChainValidator::builder(self.store, tls.provider.clone())
            .profile(self.profile)
            .ignore_expiration(self.ignore_expiration)
            .max_chain_depth(self.max_chain_depth)
            .cache_capacity(tls.cache.verified_chains)
            .refusal_cache_capacity(tls.cache.refused_chains)
            .refusal_cache_ttl(Duration::from_secs(tls.cache.refused_ttl_secs))
            .require_v3(self.require_v3)
            .required_eku(eku)
            .build()
            .map_err(|source| ConfigError::Validator {
                setting: setting.clone(),
                source,
            })?;
        let mut verifier = MtlsClientVerifier::builder(Arc::new(validator))
            .mode(self.mode)
            .advertise_ca_names(self.advertise_ca_names);
        if let Some(checker) = tls.checker {
            verifier = verifier.revocation(checker.clone());
        }
        let verifier = Arc::new(verifier.build().map_err(|source| ConfigError::Verifier {
            setting: setting.clone(),
            source,
        })?);
        let tls_error = |source| ConfigError::Tls {
            setting: setting.clone(),
            source,
        };
        let mut config = ServerConfig::builder_with_provider(tls.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_client_cert_verifier(verifier.clone())
            .with_cert_resolver(Arc::new(SniRecordingResolver::new(
                CertifiedKey::from_der(identity.0, identity.1, tls.provider).map_err(tls_error)?,
            )));
        config.alpn_protocols = tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        if !tls.resumption {
            config.session_storage = Arc::new(NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
        }
        let headers = self
            .headers
            .build()
            .map_err(|source| ConfigError::Headers {
                setting: format!("{setting}.headers"),
                source,
            })?;
        Ok(Site::new(Arc::new(config), verifier)
            .with_policy(self.policy)
            .with_headers(Arc::new(headers))
            .with_distribution_id(self.distribution_id))
    }
}

fn invalid(setting: &str, detail: &str) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_string(),
        detail: detail.to_string(),
    }
}

/// The crypto provider when none was given: the one the crate features
/// select, else the process default (`CryptoProvider::install_default`).
fn default_provider() -> Result<Arc<CryptoProvider>, ConfigError> {
    #[cfg(feature = "aws-lc-rs")]
    return Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return Ok(Arc::new(rustls::crypto::ring::default_provider()));
    #[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
    CryptoProvider::get_default()
        .cloned()
        .ok_or(ConfigError::NoCryptoProvider)
}

fn check_sni_pattern(pattern: &str) -> Result<(), ConfigError> {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            &format!("sni.\"{pattern}\""),
            "not a host name or a `*.` wildcard of one",
        ))
    }
}

/// The most a configuration file, a certificate chain or a key may hold.
const SMALL_FILE_LIMIT: u64 = 16 << 20;
/// The most a deny list may hold (a million serials as KVS JSON take about
/// 60 MB).
const DENY_LIST_LIMIT: u64 = 1 << 30;

/// Reads a file the configuration names, bounded by `limit` before
/// allocation.
fn read_bytes(what: &'static str, path: &Path, limit: u64) -> Result<Vec<u8>, ConfigError> {
    read_bounded(path, limit).map_err(|source| ConfigError::File { what, source })
}

fn read_text(what: &'static str, path: &Path) -> Result<String, ConfigError> {
    let bytes = read_bytes(what, path, SMALL_FILE_LIMIT)?;
    String::from_utf8(bytes).map_err(|_| ConfigError::Invalid {
        setting: path.display().to_string(),
        detail: "not UTF-8 text".into(),
    })
}

fn load_trust_store(
    setting: &str,
    settings: &TrustStoreSettings,
    mode: ValidationMode,
) -> Result<TrustStore, ConfigError> {
    if settings.is_empty() {
        // Passthrough validates nothing against a store.
        return if mode == ValidationMode::Passthrough {
            Ok(TrustStore::default())
        } else {
            Err(ConfigError::MissingTrustStore {
                setting: setting.to_string(),
            })
        };
    }
    let mut builder = TrustStore::builder();
    for file in &settings.files {
        builder = builder.add_file(file.clone());
    }
    for dir in &settings.directories {
        builder = builder.add_directory(dir.clone());
    }
    if let Some(pem) = &settings.pem {
        builder = builder.add_bundle(format!("{setting}.pem"), pem.as_bytes());
    }
    builder.build().map_err(|source| ConfigError::TrustStore {
        setting: setting.to_string(),
        source,
    })
}

fn load_identity(
    files: &ServerFiles,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
    let chain_pem = read_bytes("server certificate", &files.cert_chain, SMALL_FILE_LIMIT)?;
    let chain = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            invalid(
                "server.cert_chain",
                &format!("{}: {e}", files.cert_chain.display()),
            )
        })?;
    if chain.is_empty() {
        return Err(invalid(
            "server.cert_chain",
            &format!("{}: no CERTIFICATE block", files.cert_chain.display()),
        ));
    }
    let key_pem = read_bytes("server key", &files.key, SMALL_FILE_LIMIT)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| invalid("server.key", &format!("{}: {e}", files.key.display())))?;
    Ok((chain, key))
}

fn clone_identity(
    identity: &(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    (identity.0.clone(), identity.1.clone_key())
}

fn deny_list_store(
    settings: &RevocationSettings,
) -> Result<Option<Arc<MemoryKeyValueStore>>, ConfigError> {
    let Some(list) = &settings.deny_list else {
        return Ok(None);
    };
    let store = MemoryKeyValueStore::for_serial_numbers();
    let error = |path: &Path, e: &dyn fmt::Display| ConfigError::Revocation {
        source_name: "deny_list",
        detail: format!("{}: {e}", path.display()),
    };
    for path in &list.kvs_json {
        let bytes = read_bytes("deny-list KVS JSON", path, DENY_LIST_LIMIT)?;
        store
            .import_kvs_json(&bytes, ImportOptions::default())
            .map_err(|e| error(path, &e))?;
    }
    for path in &list.serial_files {
        let bytes = read_bytes("deny-list serial file", path, DENY_LIST_LIMIT)?;
        store
            .import_serial_list(&bytes, ImportOptions::default())
            .map_err(|e| error(path, &e))?;
    }
    if !list.serials.is_empty() {
        let text = list.serials.join("\n");
        store
            .import_serial_list(text.as_bytes(), ImportOptions::default())
            .map_err(|e| ConfigError::Revocation {
                source_name: "deny_list",
                detail: format!("serials: {e}"),
            })?;
    }
    Ok(Some(Arc::new(store)))
}

fn revocation_checker(
    settings: &RevocationSettings,
    profile: Profile,
    deny_list: Option<Arc<MemoryKeyValueStore>>,
    extra: Vec<(Arc<dyn RevocationSource>, FailurePolicy)>,
    store: &TrustStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<RevocationChecker>>, ConfigError> {
    let mut builder = RevocationChecker::builder().scope(settings.scope);
    let mut any = false;
    if let (Some(list), Some(kvs)) = (&settings.deny_list, deny_list) {
        let source = DenyListSource::new(kvs).issuer_scoping(list.scoping);
        builder = builder.source_with_policy(Arc::new(source), list.failure_policy);
        any = true;
    }
    if let Some(crl) = &settings.crl {
        let source = CrlSource::builder(provider)
            .profile(profile)
            .stale_policy(crl.stale)
            .missing_crl(crl.missing)
            .grace(Duration::from_secs(crl.grace_secs))
            .build();
        let anchors: Vec<&[u8]> = store.anchors().iter().map(|a| a.der().as_ref()).collect();
        for path in &crl.files {
            source
                .add_file(path, &anchors)
                .map_err(|e| ConfigError::Revocation {
                    source_name: "crl",
                    detail: format!("{}: {e}", path.display()),
                })?;
        }
        builder = builder.source_with_policy(Arc::new(source), crl.failure_policy);
        any = true;
    }
    if let Some(ocsp) = &settings.ocsp {
        let mut b = OcspSource::builder(provider.clone())
            .request_timeout(Duration::from_millis(ocsp.request_timeout_ms))
            .deadline(Duration::from_millis(ocsp.deadline_ms))
            .cache_ttl(Duration::from_secs(ocsp.cache_ttl_secs));
        if let Some(url) = &ocsp.responder_override {
            b = b.responder_override(url.clone());
        }
        let source = b.build().map_err(|e| ConfigError::Revocation {
            source_name: "ocsp",
            detail: e.to_string(),
        })?;
        builder = builder.source_with_policy(Arc::new(source), ocsp.failure_policy);
        any = true;
    }
    for (source, policy) in extra {
        builder = builder.source_with_policy(source, policy);
        any = true;
    }
    if !any {
        return Ok(None);
    }
    builder
        .build()
        .map(|c| Some(Arc::new(c)))
        .map_err(|e| ConfigError::Revocation {
            source_name: "sources",
            detail: e.to_string(),
        })
}

type OpenedLog = (Option<Arc<dyn ConnectionLogSink>>, Option<Arc<QueueSink>>);

fn open_log(settings: &LogSettings) -> Result<OpenedLog, ConfigError> {
    let format = settings.format;
    let capacity = settings.queue_capacity;
    let error = |source| ConfigError::Log {
        target: settings.target.clone(),
        source,
    };
    let target = settings.target.as_str();
    if matches!(target, "off" | "") {
        return Ok((None, None));
    }
    if format == LogFormat::Parquet {
        if !cfg!(feature = "parquet") {
            return Err(invalid(
                "log.format",
                "`parquet` needs the crate feature `parquet`",
            ));
        }
        if !target.starts_with("dir:") {
            return Err(invalid(
                "log.format",
                "`parquet` writes files: set log.target to `dir:DIR`",
            ));
        }
    }
    let queue = match target {
        "stdout" => QueueSink::to_stdout(format, capacity),
        "stderr" => QueueSink::to_stderr(format, capacity),
        dir if dir.starts_with("dir:") => {
            let dir = &dir["dir:".len()..];
            if dir.is_empty() {
                return Err(invalid("log.target", "`dir:` needs a directory"));
            }
            let interval = parse_interval(&settings.rotate)
                .map_err(|detail| invalid("log.rotate", &detail))?;
            if settings.max_bytes == 0 {
                return Err(invalid("log.max_bytes", "must be greater than 0"));
            }
            if settings.row_group_rows == 0 {
                return Err(invalid("log.row_group_rows", "must be greater than 0"));
            }
            let rotation = Rotation {
                interval,
                max_bytes: settings.max_bytes,
                hive: settings.hive,
                row_group_rows: settings.row_group_rows,
                ..Rotation::default()
            };
            QueueSink::to_dir(dir, format, rotation, capacity)
        }
        path => QueueSink::to_file(path, format, capacity),
    }
    .map_err(error)?
    .with_shutdown_deadline(Duration::from_millis(settings.shutdown_deadline_ms));
    let queue = Arc::new(queue);
    Ok((
        Some(queue.clone() as Arc<dyn ConnectionLogSink>),
        Some(queue),
    ))
}

/// `HeaderProfile` in configuration files: `cloudfront`, `alb_verify`,
/// `alb_passthrough`, `rfc9440`, `xfcc`, `xfcc_sanitize`, `custom:<prefix>`.
impl std::str::FromStr for HeaderProfile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "cloudfront" => Self::CloudFront,
            "alb_verify" => Self::AlbVerify,
            "alb_passthrough" => Self::AlbPassthrough,
            "rfc9440" => Self::Rfc9440,
            "xfcc" => Self::EnvoyXfcc(XfccMode::SanitizeSet),
            "xfcc_sanitize" => Self::EnvoyXfcc(XfccMode::Sanitize),
            other => match other.strip_prefix("custom:") {
                Some(prefix) => Self::Custom {
                    prefix: prefix.to_string(),
                },
                None => {
                    return Err(format!(
                    "unknown header profile `{other}` (cloudfront, alb_verify, alb_passthrough, \
                         rfc9440, xfcc, xfcc_sanitize, custom:<prefix>)"
                ))
                }
            },
        })
    }
}

impl fmt::Display for HeaderProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CloudFront => f.write_str("cloudfront"),
            Self::AlbVerify => f.write_str("alb_verify"),
            Self::AlbPassthrough => f.write_str("alb_passthrough"),
            Self::Rfc9440 => f.write_str("rfc9440"),
            Self::EnvoyXfcc(XfccMode::SanitizeSet) => f.write_str("xfcc"),
            Self::EnvoyXfcc(XfccMode::Sanitize) => f.write_str("xfcc_sanitize"),
            Self::Custom { prefix } => write!(f, "custom:{prefix}"),
        }
    }
}

impl Serialize for HeaderProfile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HeaderProfile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_keeps_every_setting() {
        let text = r#"
            distribution_id = "E2EXAMPLE"
            mode = "optional"
            profile = "strict"
            max_chain_depth = 5
            resumption = false
            [server]
            cert_chain = "s.pem"
            key = "s.key"
            [trust_store]
            files = ["ca.pem"]
            [revocation]
            scope = "leaf_only"
            [revocation.deny_list]
            serials = ["01"]
            [headers]
            profiles = ["cloudfront", "rfc9440", "custom:X-Client-"]
            [log]
            format = "w3c"
            target = "off"
            [sni."*.example.com"]
            mode = "passthrough"
            profile = "interop"
        "#;
        let config = MtlsConfig::from_toml(text).unwrap();
        assert_eq!(config.mode, ValidationMode::Optional);
        assert_eq!(config.profile, Profile::Strict);
        assert_eq!(config.sni["*.example.com"].profile, Some(Profile::Interop));
        assert_eq!(MtlsConfig::default().profile, Profile::Interop);
        assert_eq!(config.max_chain_depth, 5);
        assert!(!config.resumption);
        assert_eq!(config.revocation.scope, RevocationScope::LeafOnly);
        assert_eq!(
            config.headers.profiles,
            vec![
                HeaderProfile::CloudFront,
                HeaderProfile::Rfc9440,
                HeaderProfile::Custom {
                    prefix: "X-Client-".into()
                }
            ]
        );
        assert_eq!(config.log.format, LogFormat::W3c);
        assert_eq!(
            config.sni["*.example.com"].mode,
            Some(ValidationMode::Passthrough)
        );
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(MtlsConfig::from_json(&json).unwrap(), config);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = MtlsConfig::from_toml("mode = \"sometimes\"").unwrap_err();
        assert!(e.to_string().contains("sometimes"), "{e}");
        let e = MtlsConfig::from_toml("profile = \"pedantic\"").unwrap_err();
        assert!(e.to_string().contains("pedantic"), "{e}");
        let e = MtlsConfig::from_toml("max_chain_dept = 3").unwrap_err();
        assert!(e.to_string().contains("max_chain_dept"), "{e}");
        let e = MtlsConfig::from_toml("[headers]\nprofiles = [\"nginx\"]").unwrap_err();
        assert!(
            e.to_string().contains("unknown header profile `nginx`"),
            "{e}"
        );
    }

    #[test]
    fn log_settings_for_rotating_files_are_checked_and_named() {
        assert_eq!(parse_interval("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_interval("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_interval("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_interval("1d"), Ok(Duration::from_secs(86_400)));
        for bad in [
            "",
            "1",
            "h",
            "1.5h",
            "-1h",
            "1w",
            "0s",
            "99999999999999999999d",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
        let config = MtlsConfig::from_toml(
            "[log]\ntarget = \"dir:logs/\"\nformat = \"parquet\"\nrotate = \"15m\"\nmax_bytes = 1048576\nhive = true\nrow_group_rows = 500\n",
        )
        .unwrap();
        assert_eq!(config.log.format, LogFormat::Parquet);
        assert_eq!(config.log.target, "dir:logs/");
        assert_eq!(config.log.rotate, "15m");
        assert_eq!(config.log.max_bytes, 1_048_576);
        assert!(config.log.hive);
        assert_eq!(config.log.row_group_rows, 500);

        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let settings = |f: &dyn Fn(&mut LogSettings)| {
            let mut s = LogSettings {
                target: format!("dir:{}", dir.display()),
                ..LogSettings::default()
            };
            f(&mut s);
            s
        };
        let named = |s: LogSettings, setting: &str| match open_log(&s) {
            Err(ConfigError::Invalid { setting: got, .. }) => assert_eq!(got, setting),
            Err(other) => panic!("{setting}: {other}"),
            Ok(_) => panic!("{setting}: accepted"),
        };
        named(settings(&|s| s.rotate = "1 hour".into()), "log.rotate");
        named(settings(&|s| s.max_bytes = 0), "log.max_bytes");
        named(settings(&|s| s.target = "dir:".into()), "log.target");
        named(
            settings(&|s| {
                s.format = LogFormat::Parquet;
                s.target = "stdout".into();
            }),
            "log.format",
        );
        #[cfg(not(feature = "parquet"))]
        named(settings(&|s| s.format = LogFormat::Parquet), "log.format");
        let (sink, queue) = open_log(&settings(&|_| {})).unwrap();
        assert!(sink.is_some());
        assert_eq!(queue.unwrap().shutdown().unwrap(), 0);
    }

    #[test]
    fn build_names_the_missing_or_broken_part() {
        let e = MtlsConfig::builder().build().unwrap_err();
        assert!(matches!(e, ConfigError::MissingTrustStore { .. }), "{e}");
        let e = MtlsConfig::builder()
            .trust_store_file("/nonexistent/ca.pem")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        // Devices, FIFOs and oversized files are refused before any read.
        let e = MtlsConfig::builder()
            .trust_store_file("/dev/zero")
            .build()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("/dev/zero: not a regular file (a character device)"),
            "{e}"
        );
        let e = MtlsConfig::from_file("/dev/zero").unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration file: /dev/zero: not a regular file (a character device)"
        );
        let mut b = MtlsConfig::builder().mode(ValidationMode::Passthrough);
        b.settings().eku = "clientauth".into();
        b.settings().server = Some(ServerFiles {
            cert_chain: "/nonexistent/s.pem".into(),
            key: "/nonexistent/s.key".into(),
        });
        let e = b.build().unwrap_err();
        assert!(e.to_string().contains("/nonexistent/s.pem"), "{e}");
        let e = MtlsConfig::builder()
            .mode(ValidationMode::Passthrough)
            .build()
            .unwrap_err();
        assert!(matches!(e, ConfigError::MissingServerIdentity), "{e}");
        assert!(check_sni_pattern("a.*.example.com").is_err());
        assert!(check_sni_pattern("*.example.com").is_ok());
        assert_eq!(KeyPurpose::parse_setting("clientauth"), None);
        assert_eq!(
            KeyPurpose::parse_setting("1.3.6.1.5.5.7.3.2"),
            Some(Some(KeyPurpose::Other(
                const_oid::db::rfc5280::ID_KP_CLIENT_AUTH
            )))
        );
    }
}
