//! Turning fuzz input into certificate chains.
//!
//! Two encodings:
//!
//! * **Chunked** (`chain_validation`, and `differential_webpki` when the first
//!   byte is `0xff`): one config byte whose low three bits are the number of
//!   intermediates (capped at 4), then the leaf and each intermediate as a
//!   2-byte big-endian length followed by that many bytes (a short final chunk
//!   takes what is left).
//! * **Mutation** (`differential_webpki`): byte 0 picks a generated base chain,
//!   byte 1 holds flags, and the rest is a list of edit operations applied to
//!   the chain's certificates, by default to the `tbsCertificate` contents with
//!   the certificate re-signed by its real issuer key afterwards, so edits get
//!   past signature checks and reach the semantic ones.

use rcgen::{KeyPair, SigningKey};

use crate::der;
use crate::fixtures::Fixtures;

/// Most intermediates the chunked encoding yields.
pub const MAX_INTERMEDIATES: usize = 4;

/// Decodes the chunked encoding: (config byte, leaf, intermediates).
pub fn decode_chunked(data: &[u8]) -> Option<(u8, &[u8], Vec<&[u8]>)> {
    let (&config, mut rest) = data.split_first()?;
    let count = usize::from(config & 0x07).min(MAX_INTERMEDIATES);
    let take = |rest: &mut &'_ [u8]| -> Option<usize> {
        let len = match rest {
            [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
            _ => return None,
        };
        *rest = &rest[2..];
        Some(len.min(rest.len()))
    };
    let mut chunks = Vec::with_capacity(count + 1);
    for _ in 0..=count {
        let Some(len) = take(&mut rest) else { break };
        let (chunk, after) = rest.split_at(len);
        chunks.push(chunk);
        rest = after;
    }
    let (leaf, intermediates) = chunks.split_first()?;
    Some((config, leaf, intermediates.to_vec()))
}

/// Encodes certificates in the chunked encoding with `config`'s high bits
/// (the intermediate count is filled in).
pub fn encode_chunked(config: u8, leaf: &[u8], intermediates: &[Vec<u8>]) -> Vec<u8> {
    let count = intermediates.len().min(MAX_INTERMEDIATES) as u8;
    let mut out = vec![(config & !0x07) | count];
    for c in std::iter::once(leaf).chain(intermediates.iter().map(Vec::as_slice)) {
        let len = c.len().min(usize::from(u16::MAX));
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&c[..len]);
    }
    out
}

/// Flags of the mutation encoding (byte 1).
pub mod flags {
    /// Re-sign every certificate whose tbsCertificate was edited.
    pub const RESIGN: u8 = 0x01;
    /// Send the intermediates in reverse order.
    pub const REVERSE: u8 = 0x02;
    /// Append an intermediate from another base chain.
    pub const FOREIGN: u8 = 0x04;
    /// Drop the first intermediate.
    pub const DROP_FIRST: u8 = 0x08;
    /// Send the first intermediate twice.
    pub const DUPLICATE: u8 = 0x10;
    /// Edit whole certificate encodings instead of tbsCertificate contents
    /// (nothing is re-signed).
    pub const RAW: u8 = 0x20;
}

/// Edit operations (op byte modulo 11): byte edits 0-4, structure-aware
/// edits 5-10 (see [`crate::tree`]; the offset selects a DER node, and every
/// enclosing length is fixed up afterwards).
pub mod op {
    /// XOR one byte with the value.
    pub const XOR: u8 = 0;
    /// Set one byte to the value.
    pub const SET: u8 = 1;
    /// Delete `value % 8 + 1` bytes.
    pub const DELETE: u8 = 2;
    /// Overwrite with the next `value % 16 + 1` input bytes.
    pub const OVERWRITE: u8 = 3;
    /// Insert the next `value % 16 + 1` input bytes.
    pub const INSERT: u8 = 4;
    /// Replace a node's contents with the next `value % 16 + 1` input bytes.
    pub const NODE_SET: u8 = 5;
    /// Append the next `value % 16 + 1` input bytes to a node.
    pub const NODE_APPEND: u8 = 6;
    /// Delete a node.
    pub const NODE_DELETE: u8 = 7;
    /// Duplicate a node.
    pub const NODE_DUPLICATE: u8 = 8;
    /// Set a node's tag to the value.
    pub const NODE_RETAG: u8 = 9;
    /// Truncate a node to `value % (len + 1)` bytes or children.
    pub const NODE_TRUNCATE: u8 = 10;
    /// Number of operations.
    pub const COUNT: u8 = 11;
}

/// At most this many edits are applied.
pub const MAX_OPS: usize = 16;

/// A decoded differential case.
#[derive(Debug, Clone)]
pub struct Case {
    /// The leaf DER.
    pub leaf: Vec<u8>,
    /// The intermediates, in the order sent.
    pub intermediates: Vec<Vec<u8>>,
}

fn apply(buf: &mut Vec<u8>, kind: u8, offset: u16, value: u8, chunk: &[u8]) {
    use crate::tree::{self, Edit};
    let edit = match kind {
        op::NODE_SET => Some(Edit::SetContent),
        op::NODE_APPEND => Some(Edit::Append),
        op::NODE_DELETE => Some(Edit::Delete),
        op::NODE_DUPLICATE => Some(Edit::Duplicate),
        op::NODE_RETAG => Some(Edit::Retag),
        op::NODE_TRUNCATE => Some(Edit::Truncate),
        _ => None,
    };
    if let Some(edit) = edit {
        tree::apply(buf, edit, offset, value, chunk);
        return;
    }
    if buf.is_empty() && kind != op::INSERT {
        return;
    }
    let at = if buf.is_empty() {
        0
    } else {
        usize::from(offset) % (buf.len() + usize::from(kind == op::INSERT))
    };
    match kind {
        op::XOR => buf[at] ^= value,
        op::SET => buf[at] = value,
        op::DELETE => {
            let end = (at + usize::from(value % 8) + 1).min(buf.len());
            buf.drain(at..end);
        }
        op::OVERWRITE => {
            for (i, b) in chunk.iter().enumerate() {
                if let Some(slot) = buf.get_mut(at + i) {
                    *slot = *b;
                }
            }
        }
        _ => {
            buf.splice(at..at, chunk.iter().copied());
        }
    }
}

/// Re-signs TBS contents with `key`, keeping the original signatureAlgorithm.
fn resign(tbs_contents: &[u8], sig_alg_full: &[u8], key: &KeyPair) -> Vec<u8> {
    let tbs = der::wrap(0x30, tbs_contents);
    let signature = key.sign(&tbs).unwrap_or_default();
    der::assemble(tbs_contents, sig_alg_full, &signature)
}

/// Decodes the mutation encoding (or the chunked one after a `0xff` byte).
pub fn decode_mutation(f: &Fixtures, data: &[u8]) -> Option<Case> {
    let (&selector, rest) = data.split_first()?;
    if selector == 0xff {
        let (_, leaf, intermediates) = decode_chunked(rest)?;
        return Some(Case {
            leaf: leaf.to_vec(),
            intermediates: intermediates.iter().map(|c| c.to_vec()).collect(),
        });
    }
    let base = &f.chains[usize::from(selector) % f.chains.len()];
    let (&fl, mut ops) = rest.split_first().unwrap_or((&flags::RESIGN, &[]));
    let raw = fl & flags::RAW != 0;

    let certs = base.certs();
    // Working buffers: whole DERs in raw mode, TBS contents otherwise.
    let mut bufs: Vec<Vec<u8>> = certs
        .iter()
        .map(|c| match (raw, der::envelope(c)) {
            (false, Some(env)) => env.tbs.value.to_vec(),
            _ => c.clone(),
        })
        .collect();
    let mut touched = vec![false; certs.len()];

    for _ in 0..MAX_OPS {
        let [target, kind, lo, hi, value, after @ ..] = ops else {
            break;
        };
        let kind = kind % op::COUNT;
        let n = if matches!(
            kind,
            op::OVERWRITE | op::INSERT | op::NODE_SET | op::NODE_APPEND
        ) {
            (usize::from(*value % 16) + 1).min(after.len())
        } else {
            0
        };
        let (chunk, after) = after.split_at(n);
        let t = usize::from(*target) % certs.len();
        apply(
            &mut bufs[t],
            kind,
            u16::from_le_bytes([*lo, *hi]),
            *value,
            chunk,
        );
        touched[t] = true;
        ops = after;
    }

    let mut out = Vec::with_capacity(certs.len());
    for (i, buf) in bufs.into_iter().enumerate() {
        if raw || !touched[i] {
            out.push(if raw { buf } else { certs[i].clone() });
            continue;
        }
        let env = der::envelope(&certs[i])?;
        out.push(if fl & flags::RESIGN != 0 {
            resign(&buf, env.sig_alg.full, base.signers[i])
        } else {
            der::assemble(
                &buf,
                env.sig_alg.full,
                env.sig.value.get(1..).unwrap_or(&[]),
            )
        });
    }

    let leaf = out.remove(0);
    let mut intermediates = out;
    if fl & flags::DROP_FIRST != 0 && !intermediates.is_empty() {
        intermediates.remove(0);
    }
    if fl & flags::REVERSE != 0 {
        intermediates.reverse();
    }
    if fl & flags::DUPLICATE != 0 {
        if let Some(first) = intermediates.first().cloned() {
            intermediates.push(first);
        }
    }
    if fl & flags::FOREIGN != 0 {
        let other = &f.chains[(usize::from(selector) + 1) % f.chains.len()];
        intermediates.push(
            other
                .intermediates
                .first()
                .cloned()
                .unwrap_or_else(|| other.leaf.clone()),
        );
    }
    Some(Case {
        leaf,
        intermediates,
    })
}

/// Encodes a mutation input: base chain, flags, and `(target, op, offset,
/// value, chunk)` edits.
pub fn encode_mutation(base: u8, fl: u8, ops: &[(u8, u8, u16, u8, &[u8])]) -> Vec<u8> {
    let mut out = vec![base, fl];
    for (target, kind, offset, value, chunk) in ops {
        out.push(*target);
        out.push(*kind);
        out.extend_from_slice(&offset.to_le_bytes());
        out.push(*value);
        out.extend_from_slice(chunk);
    }
    out
}
