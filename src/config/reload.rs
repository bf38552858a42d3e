//! Atomic hot reload: the trust store, the CRLs and the deny list form one
//! generation, rebuilt from the configured files and swapped in together
//! ([`Edge::reload`], or a file watch with `watch = true`).
//!
//! Everything is read and checked before anything is swapped: a bad input is
//! refused whole with a [`ReloadError`] naming the file, and the previous
//! generation keeps serving. The new generation is one `arc-swap` store (the
//! CRLs and the deny list ride along with the trust store, see
//! [`RevocationSnapshot`]); a handshake's stage 1 finishes on the generation
//! that validated its chain. The generation number is the trust store's, in
//! every connection-log record as `trustStoreGeneration`.
//!
//! A Redis deny list (`revocation.deny_list.redis`) is not reloaded from
//! files: it follows Redis continuously and every generation shares it.

#[allow(unused_imports)]
use super::*;

use std::sync::Mutex;

use arc_swap::ArcSwapOption;

use crate::file_input::FileInputError;
use crate::revocation::crl::CrlError;
use crate::revocation::kvs::{KeyValueStore, KvsError};

/// Why a reload was refused; the previous generation keeps serving.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// A trust store bundle was refused (most errors also name the block).
    #[error("{setting} ({}): {source}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "))]
    TrustStore {
        /// `trust_store` or `sni."name".trust_store`.
        setting: String,
        /// The files and directories it was read from.
        files: Vec<PathBuf>,
        /// Why.
        #[source]
        source: Box<TrustStoreError>,
    },
    /// A file could not be read within its limit.
    #[error("{what}: {source}")]
    File {
        /// What the file is for.
        what: &'static str,
        /// Which file and why.
        #[source]
        source: FileInputError,
    },
    /// A CRL file was refused.
    #[error("revocation.crl: {}: {source}", path.display())]
    Crl {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: CrlError,
    },
    /// A deny-list file was refused.
    #[error("revocation.deny_list: {}: {source}", path.display())]
    DenyList {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: KvsError,
    },
    /// The inline `serials` were refused.
    #[error("revocation.deny_list.serials: {source}")]
    DenyListSerials {
        /// Why.
        #[source]
        source: KvsError,
    },
    /// A file watch could not be set up.
    #[cfg(feature = "watch")]
    #[error("watch: {}: {source}", path.display())]
    Watch {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: notify::Error,
    },
}

impl ReloadError {
    /// The same refusal as a build error (the messages `build()` gives).
    pub(super) fn into_config_error(self) -> ConfigError {
        match self {
            Self::TrustStore {
                setting, source, ..
            } => ConfigError::TrustStore {
                setting,
                source: *source,
            },
            Self::File { what, source } => ConfigError::File { what, source },
            Self::Crl { path, source } => ConfigError::Revocation {
                source_name: "crl",
                detail: format!("{}: {source}", path.display()),
            },
            Self::DenyList { path, source } => ConfigError::Revocation {
                source_name: "deny_list",
                detail: format!("{}: {source}", path.display()),
            },
            Self::DenyListSerials { source } => ConfigError::Revocation {
                source_name: "deny_list",
                detail: format!("serials: {source}"),
            },
            #[cfg(feature = "watch")]
            other @ Self::Watch { .. } => invalid("watch", &other.to_string()),
        }
    }
}

/// What `reload` needs besides the settings.
pub(super) struct ReloadState {
    lock: Mutex<()>,
    provider: Arc<CryptoProvider>,
    /// A deny list every generation shares (Redis), when configured.
    shared_deny: Option<Arc<dyn KeyValueStore>>,
    #[cfg(feature = "redis")]
    redis: Option<crate::revocation::kvs::RedisKeyValueStore>,
    /// The file-based deny list of the current generation.
    memory_deny: ArcSwapOption<MemoryKeyValueStore>,
    /// The trust store came from the builder as a handle: reloads keep
    /// its anchors and rebuild the rest.
    given_store: bool,
    /// SNI names with a trust store of their own.
    sni_stores: Vec<(String, TrustStoreSettings, ValidationMode, TrustStoreHandle)>,
    #[cfg(feature = "watch")]
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
}

impl ReloadState {
    pub(super) fn new(
        provider: Arc<CryptoProvider>,
        shared: SharedDenyList,
        memory_deny: Option<Arc<MemoryKeyValueStore>>,
        given_store: bool,
        sni_stores: Vec<(String, TrustStoreSettings, ValidationMode, TrustStoreHandle)>,
    ) -> Self {
        Self {
            lock: Mutex::new(()),
            provider,
            shared_deny: shared.store,
            #[cfg(feature = "redis")]
            redis: shared.redis,
            memory_deny: ArcSwapOption::new(memory_deny),
            given_store,
            sni_stores,
            #[cfg(feature = "watch")]
            watcher: Mutex::new(None),
        }
    }

    pub(super) fn memory_deny(&self) -> Option<Arc<MemoryKeyValueStore>> {
        self.memory_deny.load_full()
    }
}

/// A deny list shared by every generation (Redis), when configured.
#[derive(Default)]
pub(super) struct SharedDenyList {
    pub(super) store: Option<Arc<dyn KeyValueStore>>,
    #[cfg(feature = "redis")]
    redis: Option<crate::revocation::kvs::RedisKeyValueStore>,
}

/// Starts following `revocation.deny_list.redis`, when set.
pub(super) fn shared_deny_list(
    settings: &RevocationSettings,
) -> Result<SharedDenyList, ConfigError> {
    let Some(list) = &settings.deny_list else {
        return Ok(SharedDenyList::default());
    };
    let Some(url) = &list.redis else {
        return Ok(SharedDenyList::default());
    };
    if !list.kvs_json.is_empty() || !list.serial_files.is_empty() || !list.serials.is_empty() {
        return Err(invalid(
            "revocation.deny_list.redis",
            "a Redis deny list takes no files or serials here: put them in Redis with `edge-mtls import`",
        ));
    }
    #[cfg(feature = "redis")]
    {
        use crate::revocation::kvs::{RedisKeyValueStore, RedisStoreOptions};
        let fail_closed_after = list
            .fail_closed_after
            .as_deref()
            .map(parse_interval)
            .transpose()
            .map_err(|detail| invalid("revocation.deny_list.fail_closed_after", &detail))?;
        if list.stream_length == 0 {
            return Err(invalid(
                "revocation.deny_list.stream_length",
                "must be greater than 0",
            ));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(invalid(
                "revocation.deny_list.redis",
                "following Redis needs a tokio runtime: build the configuration inside one",
            ));
        }
        let mut options = RedisStoreOptions {
            store: list.store.clone(),
            fail_closed_after,
            ..RedisStoreOptions::default()
        };
        if let Some(node) = &list.node_name {
            options.node_name.clone_from(node);
        }
        let store =
            RedisKeyValueStore::connect(url, options).map_err(|e| ConfigError::Revocation {
                source_name: "deny_list",
                detail: e.to_string(),
            })?;
        Ok(SharedDenyList {
            store: Some(Arc::new(store.clone())),
            redis: Some(store),
        })
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = url;
        Err(invalid(
            "revocation.deny_list.redis",
            "a Redis deny list needs the crate feature `redis`",
        ))
    }
}

/// The file-based deny list, all files read and checked.
fn memory_deny_list(list: &DenyListSettings) -> Result<Arc<MemoryKeyValueStore>, ReloadError> {
    let store = MemoryKeyValueStore::for_serial_numbers();
    let read = |what, path: &PathBuf| {
        crate::file_input::read_bounded(path, DENY_LIST_LIMIT)
            .map_err(|source| ReloadError::File { what, source })
    };
    for path in &list.kvs_json {
        let bytes = read("deny-list KVS JSON", path)?;
        store
            .import_kvs_json(&bytes, ImportOptions::default())
            .map_err(|source| ReloadError::DenyList {
                path: path.clone(),
                source,
            })?;
    }
    for path in &list.serial_files {
        let bytes = read("deny-list serial file", path)?;
        store
            .import_serial_list(&bytes, ImportOptions::default())
            .map_err(|source| ReloadError::DenyList {
                path: path.clone(),
                source,
            })?;
    }
    if !list.serials.is_empty() {
        store
            .import_serial_list(list.serials.join("\n").as_bytes(), ImportOptions::default())
            .map_err(|source| ReloadError::DenyListSerials { source })?;
    }
    Ok(Arc::new(store))
}

/// The CRLs and deny list of a generation whose trust store is `store`.
pub(super) fn load_snapshot(
    settings: &RevocationSettings,
    profile: Profile,
    store: &TrustStore,
    provider: &Arc<CryptoProvider>,
    shared_deny: Option<&Arc<dyn KeyValueStore>>,
) -> Result<(RevocationSnapshot, Option<Arc<MemoryKeyValueStore>>), ReloadError> {
    let mut memory = None;
    let deny_list = match &settings.deny_list {
        None => None,
        Some(list) => {
            let kvs: Arc<dyn KeyValueStore> = match shared_deny {
                Some(shared) => shared.clone(),
                None => {
                    let m = memory_deny_list(list)?;
                    memory = Some(m.clone());
                    m
                }
            };
            Some(Arc::new(
                DenyListSource::new(kvs).issuer_scoping(list.scoping),
            ))
        }
    };
    let crls = match &settings.crl {
        None => None,
        Some(crl) => {
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
                    .map_err(|source| ReloadError::Crl {
                        path: path.clone(),
                        source,
                    })?;
            }
            Some(Arc::new(source))
        }
    };
    Ok((RevocationSnapshot::new(crls, deny_list), memory))
}

/// A trust store from its settings, for a reload.
fn reload_trust_store(
    setting: &str,
    settings: &TrustStoreSettings,
    mode: ValidationMode,
) -> Result<TrustStore, ReloadError> {
    if settings.is_empty() && mode == ValidationMode::Passthrough {
        return Ok(TrustStore::default());
    }
    trust_store_builder(setting, settings)
        .build()
        .map_err(|source| ReloadError::TrustStore {
            setting: setting.to_string(),
            files: settings
                .files
                .iter()
                .chain(&settings.directories)
                .cloned()
                .collect(),
            source: Box::new(source),
        })
}

impl Edge {
    /// Rebuilds the trust stores, the CRLs and the file-based deny list from
    /// the configured files and swaps them in as one new generation;
    /// returns its number (the `trustStoreGeneration` of later log records).
    ///
    /// All inputs are read and checked first: on any error nothing changes,
    /// the current generation keeps serving, and the error names the file.
    /// Connections whose handshake is under way finish on the generation
    /// they started with. Reloads are serialised.
    pub fn reload(&self) -> Result<u64, ReloadError> {
        let state = &self.inner.reload;
        let _serial = state.lock.lock().unwrap_or_else(|p| p.into_inner());
        match self.build_generation() {
            Ok(generation) => Ok(generation),
            Err(e) => {
                let generation = self.inner.trust_store.generation();
                tracing::warn!(
                    generation,
                    "reload refused ({e}); generation {generation} keeps serving"
                );
                Err(e)
            }
        }
    }

    fn build_generation(&self) -> Result<u64, ReloadError> {
        let state = &self.inner.reload;
        let config = &self.inner.config;
        let store = if state.given_store {
            // Anchors from the application's handle; only revocation data
            // is read again.
            (*self.inner.trust_store.load()).clone()
        } else {
            reload_trust_store("trust_store", &config.trust_store, config.mode)?
        };
        let mut sni = Vec::with_capacity(state.sni_stores.len());
        for (setting, settings, mode, handle) in &state.sni_stores {
            sni.push((handle, reload_trust_store(setting, settings, *mode)?));
        }
        let (snapshot, memory) = load_snapshot(
            &config.revocation,
            config.profile,
            &store,
            &state.provider,
            state.shared_deny.as_ref(),
        )?;
        let anchors = store.len();
        let crls = snapshot.crls().map_or(0, |c| c.list().len());
        let denied = memory.as_ref().map(|m| m.len());
        // One atomic store: trust store, CRLs and deny list together.
        let generation = self
            .inner
            .trust_store
            .replace(store.with_revocation(Arc::new(snapshot)));
        for (handle, store) in sni {
            handle.replace(store);
        }
        state.memory_deny.store(memory);
        tracing::info!(
            generation,
            anchors,
            crls,
            "generation {generation} in use: {anchors} CA certificate(s), {crls} CRL(s){}",
            denied.map_or_else(String::new, |n| format!(", {n} deny-list key(s)"))
        );
        Ok(generation)
    }

    /// The current generation (the trust store's; see [`reload`](Self::reload)).
    pub fn generation(&self) -> u64 {
        self.inner.trust_store.generation()
    }

    /// The Redis deny list this node follows, when configured.
    #[cfg(feature = "redis")]
    pub fn redis_deny_list(&self) -> Option<&crate::revocation::kvs::RedisKeyValueStore> {
        self.inner.reload.redis.as_ref()
    }

    /// The files a reload reads (trust stores, CRLs, deny lists).
    pub fn reload_inputs(&self) -> Vec<PathBuf> {
        let config = &self.inner.config;
        let mut paths = Vec::new();
        let mut trust = |t: &TrustStoreSettings| {
            paths.extend(t.files.iter().cloned());
            paths.extend(t.directories.iter().cloned());
        };
        if !self.inner.reload.given_store {
            trust(&config.trust_store);
        }
        for (_, settings, _, _) in &self.inner.reload.sni_stores {
            trust(settings);
        }
        if let Some(crl) = &config.revocation.crl {
            paths.extend(crl.files.iter().cloned());
        }
        if let Some(list) = &config.revocation.deny_list {
            paths.extend(list.kvs_json.iter().cloned());
            paths.extend(list.serial_files.iter().cloned());
        }
        paths
    }

    /// Starts the file watch (`watch = true`): a change to any file
    /// [`reload_inputs`](Self::reload_inputs) names reloads, after 200 ms
    /// without further changes. Stops when the last clone of the handle is
    /// dropped.
    #[cfg(feature = "watch")]
    pub(super) fn start_watch(&self) -> Result<(), ReloadError> {
        use notify::{RecursiveMode, Watcher};
        use std::collections::HashSet;
        use std::sync::mpsc;

        let inputs: Vec<PathBuf> = self
            .reload_inputs()
            .into_iter()
            .map(|p| std::path::absolute(&p).unwrap_or(p))
            .collect();
        let files: HashSet<PathBuf> = inputs.iter().cloned().collect();
        let dirs: HashSet<PathBuf> = inputs.iter().filter(|p| p.is_dir()).cloned().collect();
        let (tx, rx) = mpsc::channel::<()>();
        let relevant_files = files.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if event.kind.is_access() {
                    return;
                }
                let relevant = event.paths.iter().any(|p| {
                    relevant_files.contains(p) || p.parent().is_some_and(|d| dirs.contains(d))
                });
                if relevant {
                    let _ = tx.send(());
                }
            })
            .map_err(|source| ReloadError::Watch {
                path: PathBuf::new(),
                source,
            })?;
        // Parent directories, so a file replaced by a rename is seen.
        let mut watched = HashSet::new();
        for path in &inputs {
            let dir = if path.is_dir() {
                path.clone()
            } else {
                path.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            if watched.insert(dir.clone()) {
                watcher
                    .watch(&dir, RecursiveMode::NonRecursive)
                    .map_err(|source| ReloadError::Watch { path: dir, source })?;
            }
        }
        *self
            .inner
            .reload
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(watcher);
        let weak = Arc::downgrade(&self.inner);
        std::thread::Builder::new()
            .name("edge-mtls-watch".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // Settle: editors write in several steps.
                    while rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
                    let Some(inner) = weak.upgrade() else { return };
                    // Errors are logged by reload itself.
                    let _ = Edge { inner }.reload();
                }
            })
            .map_err(|e| ReloadError::Watch {
                path: PathBuf::new(),
                source: notify::Error::io(e),
            })?;
        tracing::info!(
            files = inputs.len(),
            "watching {} file(s) and director(ies) for changes",
            inputs.len()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_settings_parse_and_are_checked() {
        let config = MtlsConfig::from_toml(
            "watch = true\n[revocation.deny_list]\nredis = \"redis://127.0.0.1:6379/0\"\nstore = \"fleet\"\nstream_length = 5000\nfail_closed_after = \"30s\"\n",
        )
        .unwrap();
        let list = config.revocation.deny_list.as_ref().unwrap();
        assert_eq!(list.redis.as_deref(), Some("redis://127.0.0.1:6379/0"));
        assert_eq!((list.store.as_str(), list.stream_length), ("fleet", 5000));
        assert_eq!(list.fail_closed_after.as_deref(), Some("30s"));
        assert!(config.watch);

        let named = |settings: &RevocationSettings, setting: &str| match shared_deny_list(settings)
        {
            Err(ConfigError::Invalid { setting: got, .. }) => assert_eq!(got, setting),
            Err(other) => panic!("{setting}: {other}"),
            Ok(_) => panic!("{setting}: accepted"),
        };
        let mut with_files = config.revocation.clone();
        with_files.deny_list.as_mut().unwrap().serials = vec!["01".into()];
        named(&with_files, "revocation.deny_list.redis");
        #[cfg(feature = "redis")]
        {
            // No runtime here: named, not a panic.
            named(&config.revocation, "revocation.deny_list.redis");
            let mut bad = config.revocation.clone();
            bad.deny_list.as_mut().unwrap().fail_closed_after = Some("soon".into());
            named(&bad, "revocation.deny_list.fail_closed_after");
        }
        #[cfg(not(feature = "redis"))]
        named(&config.revocation, "revocation.deny_list.redis");
    }
}
