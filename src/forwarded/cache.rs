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

use std::sync::{Arc, Mutex, OnceLock};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use rustls_pki_types::CertificateDer;

use super::dialect::{read_chain, ForwardedDialect, ForwardedError, ForwardedLimits};
use crate::chain_validator::ClientCertInfo;
use crate::header_builder::ConnectionHeaders;
use crate::rustls_verifier::Stage1Outcome;
use crate::x509::fields::CertFields;

/// How many bytes at each end of a header value the cache key hashes.
const SAMPLE: usize = 256;

/// A forwarded chain, leaf first, shared with the cache.
#[derive(Clone)]
pub(crate) struct CachedChain(Arc<Entry>);

struct Entry {
    /// The dialect's header values as received, each followed by a 0 byte
    /// (a byte no header value holds).
    raw: Box<[u8]>,
    certs: Arc<[CertificateDer<'static>]>,
    judged: Mutex<Option<Arc<Judged>>>,
}

/// What the last stage 1 of this chain found, with the leaf's facts and
/// textual forms: computed on first use, kept for the next request.
pub(crate) struct Judged {
    pub(crate) outcome: Stage1Outcome,
    pub(crate) client_cert: Arc<ClientCertInfo>,
    pub(crate) fields: CertFields,
    /// The certificate headers, rendered for the first request that needed
    /// them (only where they depend on nothing else; see
    /// [`HeaderBuilder::per_connection`](crate::HeaderBuilder::per_connection)).
    pub(crate) headers: OnceLock<ConnectionHeaders>,
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
    /// Seeds the header hash per process.
    seed: u64,
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
            seed: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The forwarded chain of a request (`None`: no certificate), from the
    /// cache when these exact header bytes were read before. `names` are the
    /// dialect's header names, in its order.
    pub(crate) fn read(
        &self,
        dialect: &ForwardedDialect,
        names: &[HeaderName],
        headers: &HeaderMap,
        limits: ForwardedLimits,
    ) -> Result<Option<CachedChain>, ForwardedError> {
        if self.capacity == 0 {
            return Ok(
                read_chain(dialect, headers, limits)?.map(|certs| fresh(Box::default(), certs))
            );
        }
        // Every value of every name, in order (one lookup per name).
        let mut values: Vec<&[u8]> = Vec::with_capacity(names.len());
        for name in names {
            values.extend(headers.get_all(name).iter().map(HeaderValue::as_bytes));
        }
        let mut hasher = WordHasher(self.seed);
        let mut len = 0usize;
        for v in &values {
            // A sample picks the entry (the whole value is compared on a
            // hit): the length, and the first and last bytes, where every
            // dialect puts what differs between clients (the leaf's serial,
            // hash and signature).
            hasher.write_usize(v.len());
            hasher.write(&v[..v.len().min(SAMPLE)]);
            hasher.write(&v[v.len().saturating_sub(SAMPLE)..]);
            len = len.saturating_add(v.len() + 1);
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
            for v in &values {
                let end = at + v.len();
                if raw.get(at..end) != Some(*v) || raw.get(end) != Some(&0) {
                    return false;
                }
                at = end + 1;
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
        for v in &values {
            raw.extend_from_slice(v);
            raw.push(0);
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

    /// Records what stage 1 admitted for `chain` and returns it with the
    /// leaf's facts and textual forms, shared by every request carrying the
    /// chain (forms computed for one request are there for the next).
    pub(crate) fn remember(
        &self,
        chain: &CachedChain,
        outcome: Stage1Outcome,
    ) -> Option<Arc<Judged>> {
        let mut slot = chain.0.judged.lock().ok();
        let known = slot.as_deref().and_then(Option::as_ref);
        let judged = match known {
            Some(j) if same_outcome(&j.outcome, &outcome) => return Some(j.clone()),
            // Judged again (a new trust-store generation, say): same leaf,
            // same forms.
            Some(j) => Arc::new(Judged {
                outcome,
                client_cert: j.client_cert.clone(),
                fields: j.fields.clone(),
                headers: OnceLock::new(),
            }),
            None => {
                let client_cert = Arc::new(ClientCertInfo::from_parsed(outcome.leaf())?);
                let fields = CertFields::from_presented(client_cert.clone(), chain.0.certs.clone());
                Arc::new(Judged {
                    outcome,
                    client_cert,
                    fields,
                    headers: OnceLock::new(),
                })
            }
        };
        if let Some(slot) = slot.as_deref_mut() {
            *slot = Some(judged.clone());
        }
        Some(judged)
    }
}

fn fresh(raw: Box<[u8]>, certs: Vec<CertificateDer<'static>>) -> CachedChain {
    CachedChain(Arc::new(Entry {
        raw,
        certs: certs.into(),
        judged: Mutex::new(None),
    }))
}

/// Whether two stage-1 outcomes are the same judgement (the same verified
/// path object, or the same unverified leaf).
fn same_outcome(a: &Stage1Outcome, b: &Stage1Outcome) -> bool {
    match (a, b) {
        (Stage1Outcome::Verified(a), Stage1Outcome::Verified(b)) => a.same(b),
        (Stage1Outcome::Unverified(a), Stage1Outcome::Unverified(b)) => a == b,
        _ => false,
    }
}

/// A fast hash of the header bytes, eight at a time (seeded per process).
/// Not collision-resistant, and it need not be: it only picks the entry,
/// which is used for bytes equal to its own and nothing else; a collision
/// costs a decode.
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        // The last words' high bits reach the low ones.
        self.0 ^ (self.0 >> 29)
    }
}
