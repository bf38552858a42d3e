//! Forwarded chains seen recently, keyed by the exact header bytes: a
//! repeated chain is neither decoded nor parsed again, and its textual
//! forms (computed on first use) are shared by every request carrying it.
//!
//! An entry holds what the bytes *are* (the decoded chain, the parsed leaf,
//! the last stage-1 outcome); whether they are still *acceptable* is asked
//! again on every request (trust-store generation, validity window,
//! revocation). Bounded; a full cache forgets its oldest entry.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use http::header::HeaderMap;
use rustls_pki_types::CertificateDer;

use super::dialect::{read_chain, ForwardedDialect, ForwardedError, ForwardedLimits};
use crate::chain_validator::ClientCertInfo;
use crate::rustls_verifier::Stage1Outcome;
use crate::x509::fields::CertFields;

/// A forwarded chain, leaf first, shared with the cache.
#[derive(Clone)]
pub(crate) struct CachedChain(Arc<Entry>);

struct Entry {
    /// The dialect's header values as received, each followed by a 0 byte
    /// (a byte no header value holds).
    raw: Box<[u8]>,
    certs: Arc<[CertificateDer<'static>]>,
    judged: Mutex<Option<Judged>>,
}

/// What the last stage 1 of this chain found.
#[derive(Clone)]
struct Judged {
    outcome: Stage1Outcome,
    client_cert: Arc<ClientCertInfo>,
    fields: CertFields,
}

impl CachedChain {
    /// The leaf and the certificates after it, as forwarded.
    pub(crate) fn split(&self) -> Option<(&CertificateDer<'static>, &[CertificateDer<'static>])> {
        self.0.certs.split_first()
    }

    /// Every forwarded certificate, leaf first.
    pub(crate) fn certs(&self) -> &Arc<[CertificateDer<'static>]> {
        &self.0.certs
    }

    /// The outcome of the last stage 1 on this chain, if any.
    pub(crate) fn outcome(&self) -> Option<Stage1Outcome> {
        let judged = self.0.judged.lock().ok()?;
        judged.as_ref().map(|j| j.outcome.clone())
    }
}

pub(crate) struct ForwardedCache {
    capacity: usize,
    hasher: std::collections::hash_map::RandomState,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<u64, CachedChain>,
    order: VecDeque<u64>,
}

impl ForwardedCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            hasher: std::collections::hash_map::RandomState::new(),
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The forwarded chain of a request (`None`: no certificate), from the
    /// cache when these exact header bytes were read before.
    pub(crate) fn read(
        &self,
        dialect: &ForwardedDialect,
        headers: &HeaderMap,
        limits: ForwardedLimits,
    ) -> Result<Option<CachedChain>, ForwardedError> {
        if self.capacity == 0 {
            return Ok(read_chain(dialect, headers, limits)?.map(|certs| fresh(Box::default(), certs)));
        }
        let names = dialect.header_names();
        let mut hasher = self.hasher.build_hasher();
        let mut len = 0usize;
        for name in &names {
            for value in headers.get_all(name) {
                hasher.write(value.as_bytes());
                hasher.write_u8(0);
                len = len.saturating_add(value.len() + 1);
            }
        }
        if len == 0 {
            return Ok(None);
        }
        // Oversized headers are refused by the parser, never copied here.
        if len > limits.max_header_bytes.saturating_add(names.len() * 2) {
            return read_chain(dialect, headers, limits).map(|_| None);
        }
        let key = hasher.finish();
        let same = |raw: &[u8]| {
            let mut at = 0usize;
            for name in &names {
                for value in headers.get_all(name) {
                    let v = value.as_bytes();
                    let end = at + v.len();
                    if raw.get(at..end) != Some(v) || raw.get(end) != Some(&0) {
                        return false;
                    }
                    at = end + 1;
                }
            }
            at == raw.len()
        };
        if let Ok(entries) = self.entries.lock() {
            if let Some(hit) = entries.map.get(&key) {
                if same(&hit.0.raw) {
                    return Ok(Some(hit.clone()));
                }
            }
        }
        let Some(certs) = read_chain(dialect, headers, limits)? else {
            return Ok(None);
        };
        let mut raw = Vec::with_capacity(len);
        for name in &names {
            for value in headers.get_all(name) {
                raw.extend_from_slice(value.as_bytes());
                raw.push(0);
            }
        }
        let chain = fresh(raw.into_boxed_slice(), certs);
        if let Ok(mut entries) = self.entries.lock() {
            let entries = &mut *entries;
            if entries.map.insert(key, chain.clone()).is_none() {
                entries.order.push_back(key);
            }
            while entries.map.len() > self.capacity {
                let Some(oldest) = entries.order.pop_front() else {
                    break;
                };
                entries.map.remove(&oldest);
            }
        }
        Ok(Some(chain))
    }

    /// Records what stage 1 admitted for `chain` and returns the leaf's
    /// facts and textual forms, computed once per cached chain.
    pub(crate) fn remember(
        &self,
        chain: &CachedChain,
        outcome: &Stage1Outcome,
    ) -> Option<(Arc<ClientCertInfo>, CertFields)> {
        let mut judged = chain.0.judged.lock().ok();
        if let Some(Some(j)) = judged.as_deref_mut() {
            j.outcome = outcome.clone();
            return Some((j.client_cert.clone(), j.fields.clone()));
        }
        let client_cert = Arc::new(ClientCertInfo::from_parsed(outcome.leaf())?);
        let fields = CertFields::from_presented(client_cert.clone(), chain.0.certs.clone());
        if let Some(slot) = judged.as_deref_mut() {
            *slot = Some(Judged {
                outcome: outcome.clone(),
                client_cert: client_cert.clone(),
                fields: fields.clone(),
            });
        }
        Some((client_cert, fields))
    }
}

fn fresh(raw: Box<[u8]>, certs: Vec<CertificateDer<'static>>) -> CachedChain {
    CachedChain(Arc::new(Entry {
        raw,
        certs: certs.into(),
        judged: Mutex::new(None),
    }))
}
