//! Splitting CA bundles into certificates: PEM (with comments and blank lines
//! between blocks, as CloudFront and ALB accept) or concatenated DER.

use super::TrustStoreError;
use crate::x509::der::{tag, DerCursor};

/// Splits a bundle into DER certificates, in order.
///
/// Text outside `-----BEGIN …-----`/`-----END …-----` blocks is ignored. A
/// bundle with no PEM armour at all is read as concatenated DER.
pub(crate) fn split_bundle(source: &str, bytes: &[u8]) -> Result<Vec<Vec<u8>>, TrustStoreError> {
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        split_pem(source, bytes)
    } else {
        split_der(source, bytes)
    }
}

fn split_pem(source: &str, bytes: &[u8]) -> Result<Vec<Vec<u8>>, TrustStoreError> {
    let text = std::str::from_utf8(bytes).map_err(|e| TrustStoreError::Pem {
        source_name: source.to_string(),
        block: 0,
        detail: format!("bundle is not UTF-8 text (byte {})", e.valid_up_to()),
    })?;
    let mut out = Vec::new();
    let mut rest = text;
    let mut block = 0usize;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start..];
        let label_end =
            after[11..]
                .find("-----")
                .map(|i| i + 11)
                .ok_or_else(|| TrustStoreError::Pem {
                    source_name: source.to_string(),
                    block,
                    detail: "unterminated BEGIN line".into(),
                })?;
        let label = &after[11..label_end];
        let end_marker = format!("-----END {label}-----");
        let end = after
            .find(&end_marker)
            .ok_or_else(|| TrustStoreError::Pem {
                source_name: source.to_string(),
                block,
                detail: format!("no `{end_marker}` line"),
            })?;
        let pem = &after[..end + end_marker.len()];
        rest = &after[end + end_marker.len()..];
        match label {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {}
            other => {
                return Err(TrustStoreError::Pem {
                    source_name: source.to_string(),
                    block,
                    detail: format!("unexpected PEM label `{other}` (expected CERTIFICATE)"),
                })
            }
        }
        let (_, der) = pem_rfc7468::decode_vec(normalise(pem).as_bytes()).map_err(|e| {
            TrustStoreError::Pem {
                source_name: source.to_string(),
                block,
                detail: format!("bad PEM encoding: {e}"),
            }
        })?;
        // OpenSSL's TRUSTED CERTIFICATE appends auxiliary trust data after
        // the certificate; only the certificate itself is kept.
        let der = first_element(&der).unwrap_or(der);
        out.push(der);
        block += 1;
    }
    Ok(out)
}

/// `pem-rfc7468` is strict about line endings and trailing whitespace; bundles
/// edited by hand often have CRLF and stray spaces.
fn normalise(pem: &str) -> String {
    let mut s = String::with_capacity(pem.len());
    for line in pem.lines() {
        let line = line.trim();
        if !line.is_empty() {
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

fn first_element(der: &[u8]) -> Option<Vec<u8>> {
    let mut c = DerCursor::new(der);
    let t = c.expect(tag::SEQUENCE, "certificate").ok()?;
    (!c.is_empty()).then(|| t.full.to_vec())
}

fn split_der(source: &str, bytes: &[u8]) -> Result<Vec<Vec<u8>>, TrustStoreError> {
    let mut out = Vec::new();
    let mut c = DerCursor::new(bytes);
    while !c.is_empty() {
        let block = out.len();
        let t = c
            .expect(tag::SEQUENCE, "certificate")
            .map_err(|_| TrustStoreError::Pem {
                source_name: source.to_string(),
                block,
                detail: "neither PEM nor a DER certificate".into(),
            })?;
        out.push(t.full.to_vec());
    }
    Ok(out)
}
