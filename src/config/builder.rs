//! The builder: what a file cannot hold, and `build()`, which validates
//! everything at once.

#[allow(unused_imports)]
use super::*;

/// Adds what a file cannot hold and builds the [`Edge`].
pub struct MtlsConfigBuilder {
    pub(super) config: MtlsConfig,
    pub(super) provider: Option<Arc<CryptoProvider>>,
    pub(super) identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    pub(super) trust_store: Option<TrustStoreHandle>,
    pub(super) sources: Vec<(Arc<dyn RevocationSource>, FailurePolicy)>,
    pub(super) policy: Option<Arc<dyn ConnectionPolicy>>,
    pub(super) sni_policies: BTreeMap<String, Arc<dyn ConnectionPolicy>>,
    pub(super) sink: Option<Arc<dyn ConnectionLogSink>>,
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

    /// Verify the certificate a trusted proxy forwards (`[forwarded]`).
    pub fn forwarded(mut self, settings: ForwardedSettings) -> Self {
        self.config.forwarded = Some(settings);
        self
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

    /// A CloudFront connection function in JavaScript (`[policy] js`; feature
    /// `js`), used when no [`policy`](Self::policy) is set.
    pub fn connection_function(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.policy.js = Some(path.into());
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
        let given_store = trust_store.is_some();
        let store = match trust_store {
            Some(handle) => handle,
            None => TrustStoreHandle::new(load_trust_store(
                "trust_store",
                &config.trust_store,
                config.mode,
            )?),
        };
        if config.watch && !cfg!(feature = "watch") {
            return Err(invalid(
                "watch",
                "watching files needs the crate feature `watch`",
            ));
        }
        // The CRLs and the deny list ride along with the trust store (one
        // generation, swapped together by `Edge::reload`). One checker
        // serves every site, so CRLs follow the listener's profile (a
        // per-SNI `profile` applies to certificates).
        let shared_deny = shared_deny_list(&config.revocation)?;
        let (snapshot, deny_list) = load_snapshot(
            &config.revocation,
            config.profile,
            &store.load(),
            &provider,
            shared_deny.store.as_ref(),
        )
        .map_err(ReloadError::into_config_error)?;
        store.attach_revocation(Arc::new(snapshot));
        let policy = match policy {
            Some(policy) => Some(policy),
            None => file_policy(&config.policy, deny_list.as_ref())?,
        };
        let custom_revocation = !sources.is_empty();
        let checker = revocation_checker(&config.revocation, sources, &store, &provider)?;
        let mut sni_stores = Vec::new();
        // Behind a proxy that terminates TLS the listener needs no
        // certificate of its own (its TLS handshakes then fail).
        let identity = match (identity, &config.server) {
            (Some(identity), _) => Some(identity),
            (None, Some(files)) => Some(load_identity(files)?),
            (None, None) if config.forwarded.is_some() => None,
            (None, None) => return Err(ConfigError::MissingServerIdentity),
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
        let default_site = base.build(&tls, identity.as_ref().map(clone_identity))?;

        let random = provider.secure_random;
        let mut acceptor = MtlsAcceptor::builder_for(default_site, random)
            .handshake_timeout(Duration::from_millis(config.handshake_timeout_ms))
            .max_connections(config.max_connections)
            .release_idle_buffers(config.release_idle_buffers);
        for (pattern, o) in &config.sni {
            check_sni_pattern(pattern)?;
            let setting = format!("sni.\"{pattern}\"");
            let site_store = match &o.trust_store {
                Some(settings) => {
                    let (name, mode) = (
                        format!("{setting}.trust_store"),
                        o.mode.unwrap_or(config.mode),
                    );
                    let handle = TrustStoreHandle::new(load_trust_store(&name, settings, mode)?);
                    sni_stores.push((name, settings.clone(), mode, handle.clone()));
                    handle
                }
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
                Some(files) => Some(load_identity(files)?),
                None => identity.as_ref().map(clone_identity),
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
        let acceptor = acceptor
            .build()
            .map_err(|e| invalid("sni", &e.to_string()))?;
        let forwarded = match &config.forwarded {
            Some(settings) => Some(forwarded_verifier(settings, &acceptor)?),
            None => None,
        };
        let edge = Edge {
            inner: Arc::new(EdgeInner {
                acceptor,
                forwarded,
                trust_store: store,
                reload: ReloadState::new(provider, shared_deny, deny_list, given_store, sni_stores),
                sink,
                queue,
                config,
                custom_revocation,
            }),
        };
        #[cfg(feature = "watch")]
        if edge.inner.config.watch {
            edge.start_watch().map_err(ReloadError::into_config_error)?;
        }
        Ok(edge)
    }
}
