//! The configuration as plain data (serde: TOML or JSON).

#[allow(unused_imports)]
use super::*;

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
    pub(super) fn is_empty(&self) -> bool {
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
    /// A deny list shared through Redis (`redis://host:port/db`; crate
    /// feature `redis`) instead of files: change it with `edge-mtls
    /// revoke|unrevoke|import`.
    pub redis: Option<String>,
    /// The Redis store name (default `edge-mtls`).
    pub store: String,
    /// The approximate length the Redis change stream is trimmed to.
    pub stream_length: u64,
    /// After Redis has been unreachable this long (`30s`, `5m`), new
    /// connections are refused (default: never; decisions keep using the
    /// last snapshot).
    pub fail_closed_after: Option<String>,
    /// This node's name in the store's lag reports (default `host:pid`).
    pub node_name: Option<String>,
}

impl Default for DenyListSettings {
    fn default() -> Self {
        Self {
            kvs_json: Vec::new(),
            serial_files: Vec::new(),
            serials: Vec::new(),
            scoping: IssuerScoping::default(),
            failure_policy: FailurePolicy::HardFail,
            redis: None,
            store: "edge-mtls".into(),
            stream_length: 100_000,
            fail_closed_after: None,
            node_name: None,
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
    pub(super) fn build(&self) -> Result<HeaderBuilder, HeaderConfigError> {
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
pub(super) fn parse_interval(text: &str) -> Result<Duration, String> {
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

/// The connection policy given in the file: a CloudFront connection
/// function in JavaScript (feature `js`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// The function's file (`function.js`).
    pub js: Option<PathBuf>,
    /// Wall-clock time per call, microseconds (CloudFront: 5,000).
    pub time_limit_us: u64,
    /// Memory of the function's runtime, bytes (CloudFront: 2 MiB).
    pub memory_limit_bytes: usize,
    /// Size of the function's source, bytes (CloudFront: 10 KiB).
    pub code_limit_bytes: usize,
    /// `sha256Fingerprint` as `colon_hex` (default, `AB:CD:…`), `hex` or
    /// `base64_url`.
    pub fingerprint: String,
    /// CloudFront KeyValueStore JSON files `cf.kvs()` reads; empty: the
    /// deny list's store.
    pub kvs_json: Vec<PathBuf>,
    /// A new context for every call instead of a frozen realm reused across
    /// calls (about 100 µs more per call).
    pub fresh_context_per_call: bool,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            js: None,
            time_limit_us: 5_000,
            memory_limit_bytes: 2 << 20,
            code_limit_bytes: 10 << 10,
            fingerprint: "colon_hex".into(),
            kvs_json: Vec::new(),
            fresh_context_per_call: false,
        }
    }
}

/// Behind a load balancer (`[forwarded]`): the client certificate a
/// trusted proxy forwards in a request header, verified per request by the
/// HTTP integrations ([`Edge::forwarded`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardedSettings {
    /// `alb_passthrough` (`X-Amzn-Mtls-Clientcert`), `cloudfront`
    /// (`CloudFront-Viewer-Cert-Pem`), `xfcc` (Envoy), `rfc9440`
    /// (`Client-Cert`, `Client-Cert-Chain`), `pem-header:NAME` (URL-encoded
    /// PEM, nginx `$ssl_client_escaped_cert`) or `der-header:NAME` (base64
    /// DER, HAProxy `ssl_c_der,base64`).
    pub dialect: String,
    /// The proxies' networks in CIDR notation (`10.0.0.0/8`, `::1/128`); a
    /// header from any other peer is stripped and logged. Required.
    pub trusted_proxies: Vec<String>,
    /// How many trusted proxies stand between the client and the
    /// application (default 1): with N, the peer and the last N − 1
    /// `X-Forwarded-For` entries must all be trusted proxies.
    pub trusted_hops: usize,
    /// A header every request from the proxy carries (e.g.
    /// `X-Origin-Verify`), with [`shared_secret`](Self::shared_secret) or
    /// [`shared_secret_file`](Self::shared_secret_file) as its value.
    pub shared_secret_header: Option<String>,
    /// The shared secret, inline.
    pub shared_secret: Option<String>,
    /// A file holding the shared secret (surrounding whitespace ignored).
    pub shared_secret_file: Option<PathBuf>,
    /// The most the dialect's header values may hold together, in bytes
    /// (default 65536).
    pub max_header_bytes: usize,
    /// The most certificates a forwarded chain may hold, leaf included
    /// (default 10).
    pub max_certificates: usize,
    /// Forwarded chains remembered by their exact header bytes, so a
    /// repeated chain is not decoded or parsed again (default 4096; 0
    /// disables).
    pub cache_entries: usize,
}

impl Default for ForwardedSettings {
    fn default() -> Self {
        let limits = crate::forwarded::ForwardedLimits::default();
        Self {
            dialect: "alb_passthrough".into(),
            trusted_proxies: Vec::new(),
            trusted_hops: 1,
            shared_secret_header: None,
            shared_secret: None,
            shared_secret_file: None,
            max_header_bytes: limits.max_header_bytes,
            max_certificates: limits.max_certificates,
            cache_entries: 4096,
        }
    }
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
    /// Release hyper's read and write buffers (8 KiB each) while a
    /// keep-alive connection is idle (default `true`; `edge_mtls::axum`).
    pub release_idle_buffers: bool,
    /// The validation caches.
    pub cache: CacheSettings,
    /// Per-SNI overrides; keys are host names or `*.` wildcards.
    pub sni: BTreeMap<String, SiteOverride>,
    /// Reload the trust stores, CRLs and deny-list files when they change
    /// (crate feature `watch`); see [`Edge::reload`].
    pub watch: bool,
    /// The connection function (a policy set on the builder wins).
    pub policy: PolicySettings,
    /// Behind a load balancer: verify the certificate a trusted proxy
    /// forwards (the `[server]` certificate is then optional: the proxy
    /// terminates TLS).
    pub forwarded: Option<ForwardedSettings>,
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
            release_idle_buffers: true,
            cache: CacheSettings::default(),
            sni: BTreeMap::new(),
            watch: false,
            policy: PolicySettings::default(),
            forwarded: None,
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
