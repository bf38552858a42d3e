//! Atomic replacement of a whole trust store (ALB `ModifyTrustStore`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{TrustStore, TrustStoreBuilder, TrustStoreError, TrustStoreSource};

/// A shared, hot-swappable trust store.
///
/// Readers take a snapshot with [`load`](Self::load) (lock-free); a reload
/// builds and validates the new store first and only then swaps it in, so a
/// bad bundle leaves the old store serving. Every installed store gets the
/// next generation number, which connection logs record.
#[derive(Clone, Debug)]
pub struct TrustStoreHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    current: ArcSwap<TrustStore>,
    next_generation: AtomicU64,
}

impl TrustStoreHandle {
    /// Installs `store` as generation 1.
    pub fn new(mut store: TrustStore) -> Self {
        store.set_generation(1);
        Self {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(store),
                next_generation: AtomicU64::new(2),
            }),
        }
    }

    /// The current store.
    pub fn load(&self) -> Arc<TrustStore> {
        self.inner.current.load_full()
    }

    /// The current store without touching the reference count (hot path).
    pub(crate) fn load_guard(&self) -> arc_swap::Guard<Arc<TrustStore>> {
        self.inner.current.load()
    }

    /// The generation of the current store.
    pub fn generation(&self) -> u64 {
        self.inner.current.load().generation()
    }

    /// Replaces the whole store; returns the new generation. A store without
    /// its own [`RevocationSnapshot`](crate::RevocationSnapshot)
    /// keeps the current one's CRLs and deny list (whatever rides along).
    pub fn replace(&self, mut store: TrustStore) -> u64 {
        let generation = self.inner.next_generation.fetch_add(1, Ordering::Relaxed);
        store.set_generation(generation);
        if store.attached().is_none() {
            if let Some(data) = self.inner.current.load().attached() {
                store = store.with_attached(data.clone());
            }
        }
        let anchors = store.len();
        self.inner.current.store(Arc::new(store));
        tracing::info!(
            generation,
            anchors,
            "trust store generation {generation} in use ({anchors} CA certificate(s))"
        );
        generation
    }

    /// Lets `data` ride along with the current generation (at build time;
    /// the generation number stays).
    #[cfg(feature = "acceptor")]
    pub(crate) fn attach(&self, data: Arc<dyn std::any::Any + Send + Sync>) {
        let store = (**self.inner.current.load()).clone().with_attached(data);
        self.inner.current.store(Arc::new(store));
    }

    /// Rebuilds the store from `source`; on error the current store stays
    /// (and the failure is reported through `tracing`).
    pub fn reload(&self, source: &dyn TrustStoreSource) -> Result<u64, TrustStoreError> {
        match TrustStoreBuilder::default().add_source(source).build() {
            Ok(store) => Ok(self.replace(store)),
            Err(e) => {
                let generation = self.generation();
                tracing::warn!(
                    "trust store reload refused ({e}); generation {generation} keeps serving"
                );
                Err(e)
            }
        }
    }
}
