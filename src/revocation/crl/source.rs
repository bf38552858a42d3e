//! [`CrlSource`]: the CRLs of a trust store, with ALB revocation ids.

use core::fmt;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls_pki_types::UnixTime;

use super::list::RevocationList;
use super::parse::{CrlVersion, CrlView};
use super::pem::crl_der;
use super::{CrlError, CrlLimits, Freshness, MissingCrlPolicy, StalePolicy};
use crate::file_input::{read_bounded, FileInputError};
use crate::revocation::{
    CertStatus, CertToCheck, RevocationMethod, RevocationSource, SerialNumber, StatusErrorKind,
};
use crate::trust_store::TrustStore;
use crate::x509::cert::Cert;
use crate::x509::name::rfc2253;
use crate::x509::profile::{Profile, ProfileRule};
use crate::x509::signature::{describe_algorithm, verify_raw, SignatureFailure};

/// A CRL's id in its source: assigned in increasing order when added, kept
/// across reloads, never reused after removal (ALB `RevocationId`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RevocationId(pub u64);

impl fmt::Display for RevocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A description of one CRL in a source (ALB `DescribeTrustStoreRevocations`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CrlInfo {
    /// Its id.
    pub id: RevocationId,
    /// The issuer, RFC 2253.
    pub issuer: String,
    /// v1 or v2.
    pub version: CrlVersion,
    /// `thisUpdate`, Unix seconds.
    pub this_update: u64,
    /// `nextUpdate`, Unix seconds.
    pub next_update: Option<u64>,
    /// `cRLNumber`, CloudFront serial spelling.
    pub crl_number: Option<String>,
    /// Distinct revoked serials (ALB `NumberOfRevokedEntries`).
    pub entries: usize,
    /// The file it was loaded from, when it was.
    pub path: Option<PathBuf>,
    /// Heap bytes of its index.
    pub index_bytes: usize,
}

struct LoadedCrl {
    id: RevocationId,
    list: RevocationList,
    /// The certificate whose key verified the CRL (kept for reloads).
    signer: Box<[u8]>,
    /// Its SubjectPublicKeyInfo: a lookup uses the CRL only for
    /// certificates whose issuer in the path has this very key.
    signer_spki: Box<[u8]>,
    path: Option<PathBuf>,
    /// Whether its being past `nextUpdate` (+ grace) was reported already.
    stale_reported: std::sync::atomic::AtomicBool,
}

impl LoadedCrl {
    fn info(&self) -> CrlInfo {
        CrlInfo {
            id: self.id,
            issuer: self.list.issuer().to_string(),
            version: self.list.version(),
            this_update: self.list.this_update(),
            next_update: self.list.next_update(),
            crl_number: self.list.crl_number_text(),
            entries: self.list.len(),
            path: self.path.clone(),
            index_bytes: self.list.index_heap_bytes(),
        }
    }
}

#[derive(Default, Clone)]
struct CrlSet {
    by_id: BTreeMap<RevocationId, Arc<LoadedCrl>>,
    by_issuer: HashMap<Box<[u8]>, Vec<Arc<LoadedCrl>>>,
}

impl CrlSet {
    fn rebuild(by_id: BTreeMap<RevocationId, Arc<LoadedCrl>>) -> Self {
        let mut by_issuer: HashMap<Box<[u8]>, Vec<Arc<LoadedCrl>>> = HashMap::new();
        for crl in by_id.values() {
            by_issuer
                .entry(crl.list.issuer_der().into())
                .or_default()
                .push(crl.clone());
        }
        Self { by_id, by_issuer }
    }
}

/// Builds a [`CrlSource`].
#[derive(Debug, Clone)]
pub struct CrlSourceBuilder {
    algorithms: WebPkiSupportedAlgorithms,
    profile: Profile,
    freshness: Freshness,
    missing: MissingCrlPolicy,
    limits: CrlLimits,
}

impl CrlSourceBuilder {
    /// Which structure rules a CRL is held to (default
    /// [`Profile::Interop`]: a CRL without cRLNumber, as OpenSSL's
    /// `ca -gencrl` writes without a crlnumber file, or one listing a serial
    /// twice, is loaded; [`Profile::Strict`] refuses both).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// How long after `nextUpdate` a CRL is still current (default 0).
    pub fn grace(mut self, grace: core::time::Duration) -> Self {
        self.freshness.grace = grace;
        self
    }

    /// Tolerated skew for a `thisUpdate` in the future (default 5 minutes).
    pub fn clock_skew(mut self, skew: core::time::Duration) -> Self {
        self.freshness.clock_skew = skew;
        self
    }

    /// What a stale CRL answers (default [`StalePolicy::Deny`]).
    pub fn stale_policy(mut self, policy: StalePolicy) -> Self {
        self.freshness.stale = policy;
        self
    }

    /// What a certificate whose issuer has no CRL answers (default
    /// [`MissingCrlPolicy::NotChecked`]).
    pub fn missing_crl(mut self, policy: MissingCrlPolicy) -> Self {
        self.missing = policy;
        self
    }

    /// Size guards.
    pub fn limits(mut self, limits: CrlLimits) -> Self {
        self.limits = limits;
        self
    }

    /// An empty source.
    pub fn build(self) -> CrlSource {
        CrlSource {
            algorithms: self.algorithms,
            profile: self.profile,
            freshness: self.freshness,
            missing: self.missing,
            limits: self.limits,
            set: ArcSwap::from_pointee(CrlSet::default()),
            writer: Mutex::new(()),
            next_id: AtomicU64::new(1),
        }
    }
}

/// CRLs answering revocation checks (method `CRL`); lookups are lock-free
/// and O(1), changes swap a new snapshot in atomically.
pub struct CrlSource {
    algorithms: WebPkiSupportedAlgorithms,
    profile: Profile,
    freshness: Freshness,
    missing: MissingCrlPolicy,
    limits: CrlLimits,
    set: ArcSwap<CrlSet>,
    writer: Mutex<()>,
    next_id: AtomicU64,
}

impl fmt::Debug for CrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrlSource")
            .field("freshness", &self.freshness)
            .field("missing", &self.missing)
            .field("crls", &self.set.load().by_id.len())
            .finish_non_exhaustive()
    }
}

/// A candidate issuer chosen for a CRL.
struct Signer {
    der: Box<[u8]>,
    spki: Box<[u8]>,
}

impl CrlSource {
    /// A builder verifying CRL signatures with `provider`'s algorithms.
    pub fn builder(provider: &CryptoProvider) -> CrlSourceBuilder {
        CrlSourceBuilder {
            algorithms: provider.signature_verification_algorithms,
            profile: Profile::Interop,
            freshness: Freshness::default(),
            missing: MissingCrlPolicy::default(),
            limits: CrlLimits::default(),
        }
    }

    /// Adds a CRL (PEM or DER) whose signature must verify with one of
    /// `issuers` (DER CA certificates; those named as the CRL's issuer are
    /// tried, the one matching its authorityKeyIdentifier first).
    pub fn add(&self, crl: &[u8], issuers: &[&[u8]]) -> Result<CrlInfo, CrlError> {
        self.insert(crl, issuers, None)
    }

    /// Adds a CRL signed by one of the trust store's CA certificates.
    pub fn add_with_trust_store(
        &self,
        crl: &[u8],
        store: &TrustStore,
    ) -> Result<CrlInfo, CrlError> {
        let anchors: Vec<&[u8]> = store.anchors().iter().map(|a| a.der().as_ref()).collect();
        self.add(crl, &anchors)
    }

    /// Adds a CRL file; [`reload`](Self::reload) re-reads it later.
    pub fn add_file(&self, path: impl AsRef<Path>, issuers: &[&[u8]]) -> Result<CrlInfo, CrlError> {
        let path = path.as_ref();
        let bytes = self.read(path)?;
        self.insert(&bytes, issuers, Some(path.to_path_buf()))
    }

    /// Reads a CRL file, bounded by the size limit before allocation (PEM
    /// armour takes a third more than the DER it holds).
    fn read(&self, path: &Path) -> Result<Vec<u8>, CrlError> {
        let limit = u64::try_from(self.limits.max_crl_bytes)
            .unwrap_or(u64::MAX)
            .saturating_mul(4)
            / 3
            + 4096;
        read_bounded(path, limit).map_err(|e| CrlError::Io {
            path: path.to_path_buf(),
            detail: match e {
                FileInputError::Io { source, .. } => source.to_string(),
                other => other.to_string(),
            },
        })
    }

    /// Removes a CRL; its id is never given out again.
    pub fn remove(&self, id: RevocationId) -> Result<CrlInfo, CrlError> {
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_id = self.set.load().by_id.clone();
        let removed = by_id.remove(&id).ok_or(CrlError::NotFound(id))?;
        self.set.store(Arc::new(CrlSet::rebuild(by_id)));
        Ok(removed.info())
    }

    /// Re-reads a file-backed CRL, keeping its id. The new CRL must come from
    /// the same issuer, verify with the same CA certificate, and not be older
    /// (no rollback to a CRL that predates a revocation); on any error the
    /// current CRL stays in use.
    pub fn reload(&self, id: RevocationId) -> Result<CrlInfo, CrlError> {
        let result = self.reload_inner(id);
        match &result {
            Ok(info) => tracing::info!(
                "CRL {id} reloaded: {} entries from {}, thisUpdate {}",
                info.entries,
                info.issuer,
                crate::x509::fields::iso8601(info.this_update)
            ),
            Err(e) => tracing::warn!("CRL {id} reload refused ({e}); the current CRL stays in use"),
        }
        result
    }

    fn reload_inner(&self, id: RevocationId) -> Result<CrlInfo, CrlError> {
        let current = self
            .set
            .load()
            .by_id
            .get(&id)
            .cloned()
            .ok_or(CrlError::NotFound(id))?;
        let path = current.path.clone().ok_or(CrlError::NotFromFile(id))?;
        let bytes = self.read(&path)?;
        let der = crl_der(&bytes)?;
        if der.len() > self.limits.max_crl_bytes {
            return Err(CrlError::TooLarge {
                bytes: der.len(),
                limit: self.limits.max_crl_bytes,
            });
        }
        let view = CrlView::parse(&der)?;
        if view.issuer != current.list.issuer_der() {
            return Err(CrlError::IssuerChanged {
                issuer: current.list.issuer().to_string(),
                new_issuer: rfc2253(view.issuer).unwrap_or_default(),
            });
        }
        let older_number = match (view.crl_number, current.list.crl_number()) {
            (Some(new), Some(old)) => compare_unsigned(new, old).is_lt(),
            _ => false,
        };
        if view.this_update < current.list.this_update() || older_number {
            return Err(CrlError::Older {
                new_this_update: view.this_update,
                current_this_update: current.list.this_update(),
            });
        }
        let signer = self.choose_signer(&view, &[&current.signer])?;
        let list = RevocationList::from_view(&view, &self.limits)?;
        let loaded = Arc::new(LoadedCrl {
            id,
            list,
            signer: signer.der,
            signer_spki: signer.spki,
            path: Some(path),
            stale_reported: Default::default(),
        });
        let info = loaded.info();
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_id = self.set.load().by_id.clone();
        if !by_id.contains_key(&id) {
            return Err(CrlError::NotFound(id)); // removed meanwhile
        }
        by_id.insert(id, loaded);
        self.set.store(Arc::new(CrlSet::rebuild(by_id)));
        Ok(info)
    }

    /// Reloads every file-backed CRL; one result per CRL, in id order.
    pub fn reload_all(&self) -> Vec<(RevocationId, Result<CrlInfo, CrlError>)> {
        let ids: Vec<RevocationId> = self
            .set
            .load()
            .by_id
            .values()
            .filter(|c| c.path.is_some())
            .map(|c| c.id)
            .collect();
        ids.into_iter().map(|id| (id, self.reload(id))).collect()
    }

    /// Every CRL, in id order.
    pub fn list(&self) -> Vec<CrlInfo> {
        self.set.load().by_id.values().map(|c| c.info()).collect()
    }

    /// One CRL's description.
    pub fn get(&self, id: RevocationId) -> Option<CrlInfo> {
        self.set.load().by_id.get(&id).map(|c| c.info())
    }

    fn insert(
        &self,
        crl: &[u8],
        issuers: &[&[u8]],
        path: Option<PathBuf>,
    ) -> Result<CrlInfo, CrlError> {
        if crl.len() > self.limits.max_crl_bytes {
            return Err(CrlError::TooLarge {
                bytes: crl.len(),
                limit: self.limits.max_crl_bytes,
            });
        }
        let der = crl_der(crl)?;
        let view = CrlView::parse(&der)?;
        // The signature is checked before the entries are indexed, so a
        // forged CRL costs one hash of its bytes and nothing more.
        let signer = self.choose_signer(&view, issuers)?;
        let list = RevocationList::from_view(&view, &self.limits)?;
        let broken = [
            (
                ProfileRule::CrlWithoutCrlNumber,
                list.crl_number().is_none(),
            ),
            (
                ProfileRule::CrlDuplicateSerial,
                list.duplicate_entries() > 0,
            ),
        ];
        if let Some((rule, _)) = broken
            .into_iter()
            .find(|(rule, broken)| *broken && self.profile.enforces(*rule))
        {
            return Err(CrlError::ProfileViolation { rule });
        }
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let id = RevocationId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let loaded = Arc::new(LoadedCrl {
            id,
            list,
            signer: signer.der,
            signer_spki: signer.spki,
            path,
            stale_reported: Default::default(),
        });
        let info = loaded.info();
        let mut by_id = self.set.load().by_id.clone();
        by_id.insert(id, loaded);
        self.set.store(Arc::new(CrlSet::rebuild(by_id)));
        Ok(info)
    }

    /// The CA certificate among `issuers` whose key verifies the CRL.
    fn choose_signer(&self, view: &CrlView<'_>, issuers: &[&[u8]]) -> Result<Signer, CrlError> {
        let issuer_name = || rfc2253(view.issuer).unwrap_or_else(|| "(unreadable name)".into());
        let mut named: Vec<Cert<'_>> = issuers
            .iter()
            .filter_map(|der| Cert::parse(der).ok())
            .filter(|c| c.subject == view.issuer)
            .collect();
        if named.is_empty() {
            return Err(CrlError::IssuerNotFound {
                issuer: issuer_name(),
            });
        }
        // Key-identifier matches first: CA generations often share a name.
        named.sort_by_key(|c| {
            !matches!((view.authority_key_id, c.extensions.subject_key_id), (Some(a), Some(s)) if a == s)
        });
        let candidates = named.len();
        let mut may_sign = 0usize;
        let mut unsupported = None;
        for cert in named {
            // RFC 5280 §4.2.1.3 and §6.3.3 (f): keyUsage, when present, must allow cRLSign.
            if cert.extensions.key_usage.is_some_and(|ku| !ku.has(1 << 6)) {
                continue;
            }
            may_sign += 1;
            match verify_raw(
                &self.algorithms,
                cert.spki_alg,
                cert.public_key,
                view.signature_alg,
                view.tbs,
                view.signature,
            ) {
                Ok(()) => {
                    return Ok(Signer {
                        der: cert.der.into(),
                        spki: cert.spki.into(),
                    })
                }
                Err(SignatureFailure::Invalid) => {}
                Err(
                    SignatureFailure::UnsupportedAlgorithm | SignatureFailure::AlgorithmKeyMismatch,
                ) => {
                    unsupported = Some(describe_algorithm(view.signature_alg));
                }
            }
        }
        if may_sign == 0 {
            return Err(CrlError::IssuerCannotSignCrls {
                issuer: issuer_name(),
            });
        }
        if let Some(algorithm) = unsupported {
            return Err(CrlError::UnsupportedSignatureAlgorithm { algorithm });
        }
        Err(CrlError::BadSignature {
            issuer: issuer_name(),
            candidates,
        })
    }

    /// The CRLs that speak for `cert` issued by `issuer`.
    fn applicable<'s>(
        set: &'s CrlSet,
        cert: &Cert<'_>,
        issuer: &Cert<'_>,
    ) -> impl Iterator<Item = &'s Arc<LoadedCrl>> {
        let spki = issuer.spki;
        set.by_issuer
            .get(cert.issuer)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(move |crl| &*crl.signer_spki == spki)
            .filter(|crl| crl.list.covers(cert))
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn is_fresh(&self, list: &RevocationList, now: u64) -> bool {
        let skew = self.freshness.clock_skew.as_secs();
        let grace = self.freshness.grace.as_secs();
        list.this_update() <= now.saturating_add(skew)
            && list
                .next_update()
                .map_or(true, |next| now <= next.saturating_add(grace))
    }

    fn answer(&self, cert: &CertToCheck<'_>, now: UnixTime) -> CertStatus {
        let (leaf, issuer) = (cert.cert.view(), cert.issuer.view());
        let Some(serial) = SerialNumber::from_der_contents(leaf.serial) else {
            return CertStatus::Error(StatusErrorKind::Error("serial number unreadable".into()));
        };
        let set = self.set.load();
        let mut stale: Option<&Arc<LoadedCrl>> = None;
        let mut any = false;
        let mut fresh = false;
        for crl in Self::applicable(&set, &leaf, &issuer) {
            any = true;
            // A revocation stays a revocation even in a stale CRL.
            if let Some(entry) = crl.list.lookup(&serial) {
                return CertStatus::Revoked {
                    reason: entry.reason,
                    revoked_at: Some(entry.revoked_at),
                };
            }
            if self.is_fresh(&crl.list, now.as_secs()) {
                fresh = true;
            } else if stale.is_none() {
                stale = Some(crl);
            }
        }
        if !any {
            return CertStatus::Unknown; // only reached with MissingCrlPolicy::Unknown
        }
        if fresh {
            return CertStatus::Good;
        }
        let Some(crl) = stale else {
            return CertStatus::Good;
        };
        let detail = format!(
            "CRL {} from {} is not current (thisUpdate {}, nextUpdate {}, grace {} s, now {})",
            crl.id,
            crl.list.issuer(),
            crate::x509::fields::iso8601(crl.list.this_update()),
            crl.list
                .next_update()
                .map_or_else(|| "none".into(), crate::x509::fields::iso8601),
            self.freshness.grace.as_secs(),
            crate::x509::fields::iso8601(now.as_secs()),
        );
        // Reported once per loaded CRL (a reload starts afresh), not per
        // handshake.
        if !crl
            .stale_reported
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!("{detail}; stale policy {:?}", self.freshness.stale);
        }
        match self.freshness.stale {
            StalePolicy::Deny => CertStatus::Error(StatusErrorKind::Error(detail)),
            StalePolicy::TreatAsUnknown => CertStatus::Unknown,
            StalePolicy::KeepUsing => CertStatus::Good,
        }
    }
}

#[async_trait::async_trait]
impl RevocationSource for CrlSource {
    fn method(&self) -> RevocationMethod {
        RevocationMethod::Crl
    }

    fn applies_to(&self, cert: &CertToCheck<'_>) -> bool {
        if self.missing == MissingCrlPolicy::Unknown {
            return true;
        }
        let (leaf, issuer) = (cert.cert.view(), cert.issuer.view());
        Self::applicable(&self.set.load(), &leaf, &issuer)
            .next()
            .is_some()
    }

    fn check_now(&self, cert: &CertToCheck<'_>, now: UnixTime) -> Option<CertStatus> {
        Some(self.answer(cert, now))
    }

    async fn check(&self, cert: &CertToCheck<'_>, now: UnixTime) -> CertStatus {
        self.answer(cert, now)
    }
}

/// Orders two non-negative DER INTEGER contents.
fn compare_unsigned(a: &[u8], b: &[u8]) -> core::cmp::Ordering {
    let strip = |x: &[u8]| -> Vec<u8> { x.iter().copied().skip_while(|b| *b == 0).collect() };
    let (a, b) = (strip(a), strip(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}
