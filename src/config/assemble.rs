//! Turning settings into parts: files read within their limits, the trust
//! store, revocation sources, the log sink, and one site per listener or SNI
//! name.

#[allow(unused_imports)]
use super::*;

pub(super) struct SiteParts {
    pub(super) setting: String,
    pub(super) distribution_id: String,
    pub(super) mode: ValidationMode,
    pub(super) store: TrustStoreHandle,
    pub(super) profile: Profile,
    pub(super) ignore_expiration: bool,
    pub(super) advertise_ca_names: bool,
    pub(super) max_chain_depth: usize,
    pub(super) require_v3: bool,
    pub(super) eku: String,
    pub(super) headers: HeaderSettings,
    pub(super) policy: Option<Arc<dyn ConnectionPolicy>>,
}

pub(super) struct TlsParts<'a> {
    pub(super) provider: &'a Arc<CryptoProvider>,
    pub(super) cache: &'a CacheSettings,
    pub(super) checker: Option<&'a Arc<RevocationChecker>>,
    pub(super) resumption: bool,
    pub(super) alpn: &'a [String],
}

impl SiteParts {
    pub(super) fn build(
        self,
        tls: &TlsParts<'_>,
        identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
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
        let resolver: Arc<dyn ResolvesServerCert> = match identity {
            Some((chain, key)) => Arc::new(SingleCertAndKey::from(
                CertifiedKey::from_der(chain, key, tls.provider).map_err(tls_error)?,
            )),
            None => Arc::new(NoServerCertificate),
        };
        let mut config = ServerConfig::builder_with_provider(tls.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_client_cert_verifier(verifier.clone())
            .with_cert_resolver(resolver);
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

/// The certificate of a listener that has none (behind a proxy that
/// terminates TLS): every TLS handshake fails.
#[derive(Debug)]
struct NoServerCertificate;

impl ResolvesServerCert for NoServerCertificate {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        None
    }
}

/// The verifier of `[forwarded]`.
pub(super) fn forwarded_verifier(
    settings: &ForwardedSettings,
    acceptor: &MtlsAcceptor,
) -> Result<ForwardedVerifier, ConfigError> {
    let dialect: ForwardedDialect =
        settings
            .dialect
            .parse()
            .map_err(|e: crate::forwarded::UnknownDialect| {
                invalid("forwarded.dialect", &e.to_string())
            })?;
    if settings.trusted_proxies.is_empty() {
        return Err(invalid(
            "forwarded.trusted_proxies",
            "name the proxies' networks (CIDR): a forwarded header is believed only from them",
        ));
    }
    let networks = settings
        .trusted_proxies
        .iter()
        .map(|n| n.parse::<crate::policy::IpNet>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("forwarded.trusted_proxies", &e.to_string()))?;
    if settings.trusted_hops == 0 {
        return Err(invalid("forwarded.trusted_hops", "must be at least 1"));
    }
    if settings.max_certificates == 0 || settings.max_header_bytes == 0 {
        return Err(invalid(
            "forwarded.max_certificates",
            "max_certificates and max_header_bytes must be greater than 0",
        ));
    }
    let secret = match (
        &settings.shared_secret_header,
        &settings.shared_secret,
        &settings.shared_secret_file,
    ) {
        (None, None, None) => None,
        (Some(header), secret, file) => {
            let name = http::header::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                invalid(
                    "forwarded.shared_secret_header",
                    &format!("`{header}` is not a header name"),
                )
            })?;
            let value = match (secret, file) {
                (Some(secret), None) => secret.clone(),
                (None, Some(path)) => read_text("shared secret", path)?.trim().to_string(),
                _ => {
                    return Err(invalid(
                        "forwarded.shared_secret",
                        "set exactly one of shared_secret and shared_secret_file",
                    ))
                }
            };
            if value.is_empty() {
                return Err(invalid("forwarded.shared_secret", "the secret is empty"));
            }
            Some((
                name,
                <sha2::Sha256 as sha2::Digest>::digest(value.as_bytes()).into(),
            ))
        }
        (None, _, _) => {
            return Err(invalid(
                "forwarded.shared_secret_header",
                "a shared secret needs the header that carries it",
            ))
        }
    };
    Ok(ForwardedVerifier::new(
        dialect,
        TrustedProxies {
            networks,
            hops: settings.trusted_hops,
            secret,
        },
        ForwardedLimits {
            max_header_bytes: settings.max_header_bytes,
            max_certificates: settings.max_certificates,
        },
        acceptor.clone(),
        settings.cache_entries,
    ))
}

pub(super) fn invalid(setting: &str, detail: &str) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_string(),
        detail: detail.to_string(),
    }
}

/// The crypto provider when none was given: the one the crate features
/// select, else the process default (`CryptoProvider::install_default`).
pub(super) fn default_provider() -> Result<Arc<CryptoProvider>, ConfigError> {
    #[cfg(feature = "aws-lc-rs")]
    return Ok(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return Ok(Arc::new(rustls::crypto::ring::default_provider()));
    #[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
    CryptoProvider::get_default()
        .cloned()
        .ok_or(ConfigError::NoCryptoProvider)
}

pub(super) fn check_sni_pattern(pattern: &str) -> Result<(), ConfigError> {
    crate::acceptor::SniPattern::parse(pattern)
        .map(|_| ())
        .map_err(|_| {
            invalid(
                &format!("sni.\"{pattern}\""),
                "not a host name or a `*.` wildcard of one",
            )
        })
}

/// The most a configuration file, a certificate chain or a key may hold.
pub(super) const SMALL_FILE_LIMIT: u64 = 16 << 20;
/// The most a deny list may hold (a million serials as KVS JSON take about
/// 60 MB).
pub(super) const DENY_LIST_LIMIT: u64 = 1 << 30;

/// Reads a file the configuration names, bounded by `limit` before
/// allocation.
pub(super) fn read_bytes(
    what: &'static str,
    path: &Path,
    limit: u64,
) -> Result<Vec<u8>, ConfigError> {
    read_bounded(path, limit).map_err(|source| ConfigError::File { what, source })
}

pub(super) fn read_text(what: &'static str, path: &Path) -> Result<String, ConfigError> {
    let bytes = read_bytes(what, path, SMALL_FILE_LIMIT)?;
    String::from_utf8(bytes).map_err(|_| ConfigError::Invalid {
        setting: path.display().to_string(),
        detail: "not UTF-8 text".into(),
    })
}

pub(super) fn load_trust_store(
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
    trust_store_builder(setting, settings)
        .build()
        .map_err(|source| ConfigError::TrustStore {
            setting: setting.to_string(),
            source,
        })
}

/// The builder of a trust store's settings (its files, directories and
/// inline PEM), for the first build and for reloads alike.
pub(super) fn trust_store_builder(
    setting: &str,
    settings: &TrustStoreSettings,
) -> crate::trust_store::TrustStoreBuilder {
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
    builder
}

pub(super) fn load_identity(
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

pub(super) fn clone_identity(
    identity: &(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>),
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    (identity.0.clone(), identity.1.clone_key())
}

pub(super) fn revocation_checker(
    settings: &RevocationSettings,
    extra: Vec<(Arc<dyn RevocationSource>, FailurePolicy)>,
    handle: &TrustStoreHandle,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<RevocationChecker>>, ConfigError> {
    let mut builder = RevocationChecker::builder().scope(settings.scope);
    let mut any = false;
    // The deny list and the CRLs ride along with the trust store (one
    // generation, see `reload`).
    if let Some(list) = &settings.deny_list {
        let source = GenerationDenyList::new(handle.clone());
        builder = builder.source_with_policy(Arc::new(source), list.failure_policy);
        any = true;
    }
    if let Some(crl) = &settings.crl {
        let source = GenerationCrls::new(handle.clone());
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

pub(super) type OpenedLog = (Option<Arc<dyn ConnectionLogSink>>, Option<Arc<QueueSink>>);

pub(super) fn open_log(settings: &LogSettings) -> Result<OpenedLog, ConfigError> {
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
